//! Depthwise convolution (paper eq. 3): one k x k filter per output channel, each reading a single
//! input channel, with TensorFlow SAME padding given explicitly as (top, bottom, left, right).
//!
//! candle's grouped `conv2d` runs one convolution per group, i.e. one per channel: for a
//! 1024-channel layer that is 1024 tiny im2col + gemm calls, orders of magnitude slower than the
//! arithmetic needs. [`depthwise_conv`] is the single entry point the network uses so that a
//! faster kernel can replace it later without touching the model:
//! - on the CPU it runs a direct kernel ([`DepthwiseOp`]) that reads the zero padding implicitly
//!   (no padded copy) and walks contiguous rows so the inner loop vectorises;
//! - on other devices it falls back to [`depthwise_conv_taps`], a sum over the k*k taps of a
//!   strided slice of the padded input times the per-channel tap weight, in whole-tensor ops.
//!
//! Both are exact up to f32 summation order; the tests compare them with candle's grouped conv2d.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

/// TF SAME padding, (top, bottom, left, right), as `Layer::same_padding` returns it.
pub type Padding = (u32, u32, u32, u32);

/// Depthwise convolution of `x` [N, C, H, W] with `weight` [C * dm, 1, k, k] (dm = depth
/// multiplier; output channel o reads input channel o / dm, as grouped conv and TF do), at
/// `stride`, with zero `padding` (top, bottom, left, right). Returns [N, C * dm, H', W'] where
/// H' = (H + top + bottom - k) / stride + 1.
pub fn depthwise_conv(x: &Tensor, weight: &Tensor, stride: usize, padding: Padding) -> Result<Tensor> {
    let geometry = Geometry::new(x, weight, stride, padding)?;
    if x.device().is_cpu() && x.dtype() == DType::F32 && weight.dtype() == DType::F32 {
        x.contiguous()?
            .apply_op2_no_bwd(&weight.contiguous()?, &DepthwiseOp { geometry })
    } else {
        depthwise_conv_taps(x, weight, stride, padding)
    }
}

/// The device-independent formulation: pad with `pad_with_zeros` (asymmetric), then for every
/// tap (ky, kx) multiply the strided window of the padded input by that tap's per-channel weight
/// and accumulate. k*k whole-tensor multiply-adds instead of one convolution per channel.
pub fn depthwise_conv_taps(x: &Tensor, weight: &Tensor, stride: usize, padding: Padding) -> Result<Tensor> {
    let g = Geometry::new(x, weight, stride, padding)?;
    let (top, bottom, left, right) = padding;
    let mut padded = x
        .pad_with_zeros(2, top as usize, bottom as usize)?
        .pad_with_zeros(3, left as usize, right as usize)?;
    if g.multiplier > 1 {
        // Output channel o reads input channel o / dm: repeat each input channel dm times.
        let (n, c, h, w) = padded.dims4()?;
        padded = padded
            .unsqueeze(2)?
            .broadcast_as((n, c, g.multiplier, h, w))?
            .reshape((n, c * g.multiplier, h, w))?;
    }
    let mut acc: Option<Tensor> = None;
    for ky in 0..g.kernel {
        let rows = strided_window(&padded, 2, ky, g.out_h, stride)?;
        for kx in 0..g.kernel {
            let window = strided_window(&rows, 3, kx, g.out_w, stride)?;
            let tap = weight
                .narrow(2, ky, 1)?
                .narrow(3, kx, 1)?
                .reshape((1, g.out_c, 1, 1))?;
            let term = window.broadcast_mul(&tap)?;
            acc = Some(match acc {
                Some(sum) => (sum + term)?,
                None => term,
            });
        }
    }
    match acc {
        Some(sum) => Ok(sum),
        None => bail!("depthwise_conv: empty kernel"),
    }
}

/// Elements `start, start + stride, ...` (`len` of them) along `dim`. candle has no step slicing,
/// so for stride > 1 the range is padded to a multiple of the stride, split into (len, stride)
/// and the first phase kept.
fn strided_window(t: &Tensor, dim: usize, start: usize, len: usize, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return t.narrow(dim, start, len);
    }
    let available = t.dim(dim)? - start;
    let span = (len - 1) * stride + 1;
    let t = t.narrow(dim, start, span.min(available))?;
    let t = t.pad_with_zeros(dim, 0, len * stride - span.min(available))?;
    let mut dims = t.dims().to_vec();
    dims[dim] = len;
    dims.insert(dim + 1, stride);
    t.reshape(dims)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// Shapes of one depthwise convolution, checked once.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    in_c: usize,
    in_h: usize,
    in_w: usize,
    out_c: usize,
    multiplier: usize,
    kernel: usize,
    stride: usize,
    top: usize,
    left: usize,
    out_h: usize,
    out_w: usize,
}

impl Geometry {
    fn new(x: &Tensor, weight: &Tensor, stride: usize, padding: Padding) -> Result<Self> {
        let (batch, in_c, in_h, in_w) = x.dims4()?;
        let (out_c, one, kernel, kernel_w) = weight.dims4()?;
        if one != 1 || kernel != kernel_w || kernel == 0 {
            bail!(
                "depthwise_conv: weight must be [C*dm, 1, k, k], got {:?}",
                weight.dims()
            );
        }
        if in_h == 0 || in_w == 0 {
            bail!("depthwise_conv: empty {in_h}x{in_w} input");
        }
        if in_c == 0 || out_c % in_c != 0 {
            bail!("depthwise_conv: {out_c} output channels is not a multiple of {in_c} input channels");
        }
        if stride == 0 {
            bail!("depthwise_conv: stride must be positive");
        }
        let (top, bottom, left, right) = padding;
        let padded_h = in_h + top as usize + bottom as usize;
        let padded_w = in_w + left as usize + right as usize;
        if padded_h < kernel || padded_w < kernel {
            bail!(
                "depthwise_conv: padded input {padded_h}x{padded_w} is smaller than the {kernel}x{kernel} kernel"
            );
        }
        Ok(Geometry {
            batch,
            in_c,
            in_h,
            in_w,
            out_c,
            multiplier: out_c / in_c,
            kernel,
            stride,
            top: top as usize,
            left: left as usize,
            out_h: (padded_h - kernel) / stride + 1,
            out_w: (padded_w - kernel) / stride + 1,
        })
    }
}

/// The CPU kernel behind [`depthwise_conv`], as a candle custom op on contiguous f32 tensors.
struct DepthwiseOp {
    geometry: Geometry,
}

impl CustomOp2 for DepthwiseOp {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry;
        let (Some((x0, x1)), Some((w0, w1))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            bail!("depthwise_conv: inputs must be contiguous");
        };
        let x = &s1.as_slice::<f32>()?[x0..x1];
        let w = &s2.as_slice::<f32>()?[w0..w1];
        let plane = g.out_h * g.out_w;
        let mut out = vec![0f32; g.batch * g.out_c * plane];
        if plane == 0 {
            return Ok((
                CpuStorage::F32(out),
                Shape::from((g.batch, g.out_c, g.out_h, g.out_w)),
            ));
        }
        // Planes are independent. Split them on rayon's pool, the one candle's gemm uses, so
        // the pointwise and depthwise layers share threads instead of oversubscribing cores;
        // small planes are grouped so each task has a few thousand outputs.
        let min_planes = (4096 / plane).max(1);
        out.par_chunks_mut(plane)
            .with_min_len(min_planes)
            .enumerate()
            .for_each(|(index, out_plane)| depthwise_plane(&g, x, w, index, out_plane));
        Ok((
            CpuStorage::F32(out),
            Shape::from((g.batch, g.out_c, g.out_h, g.out_w)),
        ))
    }
}

/// One output plane (batch b, output channel o). Taps outside the input read the zero padding,
/// so they are skipped by clamping the output column range instead of materialising the pad.
fn depthwise_plane(g: &Geometry, x: &[f32], w: &[f32], plane_index: usize, out: &mut [f32]) {
    let (b, o) = (plane_index / g.out_c, plane_index % g.out_c);
    let in_plane = g.in_h * g.in_w;
    let start = (b * g.in_c + o / g.multiplier) * in_plane;
    let input = &x[start..start + in_plane];
    let taps = &w[o * g.kernel * g.kernel..(o + 1) * g.kernel * g.kernel];
    for (oy, out_row) in out.chunks_mut(g.out_w).enumerate() {
        for ky in 0..g.kernel {
            let Some(iy) = (oy * g.stride + ky).checked_sub(g.top).filter(|&iy| iy < g.in_h) else {
                continue;
            };
            let in_row = &input[iy * g.in_w..(iy + 1) * g.in_w];
            for kx in 0..g.kernel {
                let tap = taps[ky * g.kernel + kx];
                // Output columns whose input column ox*stride + kx - left lies inside the row.
                let lo = g.left.saturating_sub(kx).div_ceil(g.stride);
                let Some(last_in) = (g.in_w - 1 + g.left).checked_sub(kx) else {
                    continue;
                };
                let hi = (last_in / g.stride + 1).min(g.out_w);
                if lo >= hi {
                    continue;
                }
                let first_in = lo * g.stride + kx - g.left;
                if g.stride == 1 {
                    let src = &in_row[first_in..first_in + (hi - lo)];
                    for (dst, &v) in out_row[lo..hi].iter_mut().zip(src) {
                        *dst += tap * v;
                    }
                } else {
                    let src = in_row[first_in..].iter().step_by(g.stride);
                    for (dst, &v) in out_row[lo..hi].iter_mut().zip(src) {
                        *dst += tap * v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::test_util::max_abs_diff;
    use candle_core::Device;

    /// Deterministic pseudo-random values in [-1, 1) without a RNG dependency.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn tensor(dims: (usize, usize, usize, usize), seed: u64) -> Tensor {
        let n = dims.0 * dims.1 * dims.2 * dims.3;
        Tensor::from_vec(values(n, seed), dims, &Device::Cpu).unwrap()
    }

    /// candle's grouped conv2d on an explicitly padded input: slow but independent.
    fn reference(x: &Tensor, w: &Tensor, stride: usize, padding: Padding) -> Tensor {
        let (top, bottom, left, right) = padding;
        let padded = x
            .pad_with_zeros(2, top as usize, bottom as usize)
            .unwrap()
            .pad_with_zeros(3, left as usize, right as usize)
            .unwrap();
        let groups = x.dim(1).unwrap();
        padded.conv2d(w, 0, stride, 1, groups).unwrap()
    }

    /// TF SAME padding for a k x k kernel, computed independently of the arch module.
    fn same(size: usize, k: usize, stride: usize) -> (u32, u32) {
        let out = size.div_ceil(stride);
        let total = ((out - 1) * stride + k).saturating_sub(size);
        ((total / 2) as u32, (total - total / 2) as u32)
    }

    #[test]
    fn matches_grouped_conv2d() {
        let mut seed = 1;
        for (h, w) in [(7, 7), (8, 8), (9, 6), (1, 1), (2, 5), (16, 13)] {
            for stride in [1, 2] {
                for multiplier in [1, 2] {
                    for (channels, batch, kernel) in [(3, 1, 3), (4, 2, 3), (2, 1, 5), (5, 1, 1)] {
                        seed += 1;
                        let x = tensor((batch, channels, h, w), seed);
                        let wt = tensor((channels * multiplier, 1, kernel, kernel), seed + 1000);
                        let (top, bottom) = same(h, kernel, stride);
                        let (left, right) = same(w, kernel, stride);
                        let padding = (top, bottom, left, right);
                        let expected = reference(&x, &wt, stride, padding);
                        let fast = depthwise_conv(&x, &wt, stride, padding).unwrap();
                        let taps = depthwise_conv_taps(&x, &wt, stride, padding).unwrap();
                        let case = format!("{h}x{w} s{stride} dm{multiplier} c{channels} n{batch} k{kernel}");
                        assert!(max_abs_diff(&fast, &expected) < 1e-5, "kernel: {case}");
                        assert!(max_abs_diff(&taps, &expected) < 1e-5, "taps: {case}");
                    }
                }
            }
        }
    }

    #[test]
    fn valid_padding_and_asymmetric_padding() {
        let x = tensor((1, 3, 10, 10), 7);
        let w = tensor((3, 1, 3, 3), 8);
        for padding in [(0, 0, 0, 0), (0, 1, 0, 1), (2, 0, 1, 0), (1, 1, 1, 1)] {
            for stride in [1, 2, 3] {
                let expected = reference(&x, &w, stride, padding);
                let got = depthwise_conv(&x, &w, stride, padding).unwrap();
                assert!(max_abs_diff(&got, &expected) < 1e-5, "{padding:?} s{stride}");
            }
        }
    }

    #[test]
    fn large_layer_runs_in_parallel_and_still_agrees() {
        // 64 planes of 28x28, split over the thread pool.
        let x = tensor((2, 16, 56, 56), 3);
        let w = tensor((32, 1, 3, 3), 4);
        let padding = (0, 1, 0, 1);
        let expected = reference(&x, &w, 2, padding);
        let got = depthwise_conv(&x, &w, 2, padding).unwrap();
        assert!(max_abs_diff(&got, &expected) < 1e-5);
    }

    #[test]
    fn rejects_bad_shapes() {
        let x = tensor((1, 3, 8, 8), 1);
        assert!(depthwise_conv(&x, &tensor((4, 1, 3, 3), 2), 1, (1, 1, 1, 1)).is_err());
        assert!(depthwise_conv(&x, &tensor((3, 2, 3, 3), 2), 1, (1, 1, 1, 1)).is_err());
        assert!(depthwise_conv(&x, &tensor((3, 1, 3, 3), 2), 0, (1, 1, 1, 1)).is_err());
        assert!(depthwise_conv(&x, &tensor((3, 1, 11, 11), 2), 1, (1, 1, 1, 1)).is_err());
        let empty = Tensor::zeros((1, 3, 0, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(depthwise_conv(&empty, &tensor((3, 1, 3, 3), 2), 1, (1, 1, 1, 1)).is_err());
    }
}

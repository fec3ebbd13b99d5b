//! Depthwise convolution (paper eq. 3): one `k x k` filter per channel, TF SAME padding, bias
//! and the activation fused.
//!
//! In NHWC a pixel's channels are contiguous, so the kernel vectorises over channels: for one
//! output row and one vector of channels the `k * k` tap vectors and the bias stay in
//! registers while the row is swept, each output vector costing `k * k` loads and FMAs. Out-of-image
//! input rows point at a shared zero row, so the only branches are per output row (choose `k`
//! row pointers) and per border column (the first and last `k / 2` output columns or so, which
//! check each tap's column); the interior columns run an unconditional `k x k` body.
//!
//! The fast path covers the networks' cases, 3x3 (v1, v2, v3) and 5x5 (MobileNetV3's later
//! blocks, Howard et al. 2019 Tables 1-2) with depth multiplier 1, at any stride. A 5x5 tap set is
//! 25 vectors, which with the bias and the partial sums still fits AVX-512's 32 registers; on
//! AVX2 and the portable path some taps live in L1 and become memory operands of the FMAs.
//! Any other kernel size or a depth multiplier > 1 takes a correct scalar path.

use super::LayerWeights;
use super::act::{Act, with_act};
use super::pack::DepthwiseTaps;
use super::parallel::Work;
use super::plan::Dims;
use super::simd::{self, F32Vec, Isa, Kernel};
use crate::arch::Layer;

/// A planned depthwise layer. Channel counts are padded ([`super::pack::padded`]).
#[derive(Debug)]
pub(crate) struct DepthwiseOp {
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) multiplier: usize,
    pub(crate) in_hw: (usize, usize),
    pub(crate) out_hw: (usize, usize),
    /// Logical and padded input channels.
    pub(crate) in_c: (usize, usize),
    /// Logical and padded output channels.
    pub(crate) out_c: (usize, usize),
    /// TF SAME (top, left) padding; bottom/right follow from the shapes.
    pub(crate) pad: (usize, usize),
    pub(crate) taps: DepthwiseTaps,
    pub(crate) act: Act,
}

/// One output row of the multiplier-1 fast path for a `K x K` kernel.
struct Row<const K: usize> {
    /// Input rows for the `K` kernel rows (the zero row where outside the image).
    rows: [*const f32; K],
    out: *mut f32,
    taps: *const f32,
    bias: *const f32,
    channels: usize,
    in_w: usize,
    out_w: usize,
    stride: usize,
    pad_left: usize,
    act: Act,
}

impl DepthwiseOp {
    /// Checks and packs a depthwise layer's taps (`[c * dm, 1, k, k]`) and bias.
    pub(crate) fn plan(layer: &Layer, weights: &LayerWeights) -> Result<DepthwiseOp, String> {
        let d = Dims::of(layer);
        let w = weights.dense()?;
        w.expect("", d.cout * d.kernel * d.kernel, d.cout)?;
        Ok(DepthwiseOp {
            kernel: d.kernel,
            stride: d.stride,
            multiplier: d.cout / d.cin,
            in_hw: d.in_hw,
            out_hw: d.out_hw,
            in_c: (d.cin, d.cin_pad),
            out_c: (d.cout, d.cout_pad),
            pad: d.pad,
            taps: DepthwiseTaps::new(&w.weight, &w.bias, d.kernel, d.cout),
            act: layer.activation.into(),
        })
    }

    /// Floats of zeros the op needs for rows outside the image.
    pub(crate) fn zero_row_len(&self) -> usize {
        self.in_hw.1 * self.in_c.1
    }

    /// Runs the output rows this thread claims.
    ///
    /// # Safety
    /// `isa` must be available; `src` must hold `batch` NHWC images of the input shape and
    /// `dst` room for `batch` output images; `zero_row` must hold [`Self::zero_row_len`] zeros.
    /// All threads must call this together (each claimed row is written by one thread).
    pub(crate) unsafe fn run(
        &self,
        work: &Work<'_>,
        isa: Isa,
        src: *const f32,
        dst: *mut f32,
        zero_row: *const f32,
        batch: usize,
    ) {
        let ((in_h, in_w), (out_h, out_w)) = (self.in_hw, self.out_hw);
        let (cin, cout) = (self.in_c.1, self.out_c.1);
        work.for_each(batch * out_h, 1, |rows| {
            for row in rows {
                let (n, oy) = (row / out_h, row % out_h);
                // SAFETY: `n < batch` and `oy < out_h`, so the image and output row are in the
                // buffers the caller vouched for; this row belongs to this thread only.
                let (image, out) = unsafe { (src.add(n * in_h * in_w * cin), dst.add(row * out_w * cout)) };
                let input_row = |ky: usize| {
                    let iy = (oy * self.stride + ky)
                        .checked_sub(self.pad.0)
                        .filter(|&iy| iy < in_h);
                    // SAFETY: `iy < in_h` keeps the row inside the image.
                    iy.map_or(zero_row, |iy| unsafe { image.add(iy * in_w * cin) })
                };
                // SAFETY: the row pointers cover `in_w * cin` floats each and `out` the output
                // row; `isa` is available (caller).
                unsafe {
                    match (self.kernel, self.multiplier) {
                        (3, 1) => simd::dispatch(isa, &self.row::<3>(&input_row, out)),
                        (5, 1) => simd::dispatch(isa, &self.row::<5>(&input_row, out)),
                        _ => self.generic_row(&input_row, out),
                    }
                }
            }
        });
    }

    /// The fast path's view of one output row.
    fn row<const K: usize>(&self, input_row: &dyn Fn(usize) -> *const f32, out: *mut f32) -> Row<K> {
        Row {
            rows: std::array::from_fn(input_row),
            out,
            taps: self.taps.taps.as_ptr(),
            bias: self.taps.bias.as_ptr(),
            channels: self.out_c.1,
            in_w: self.in_hw.1,
            out_w: self.out_hw.1,
            stride: self.stride,
            pad_left: self.pad.1,
            act: self.act,
        }
    }

    /// Any kernel size and depth multiplier, one output value at a time.
    ///
    /// # Safety
    /// `input_row(ky)` must return `in_w * in_c.1` readable floats; `out` must be writable for
    /// `out_w * out_c.1` floats.
    unsafe fn generic_row(&self, input_row: &dyn Fn(usize) -> *const f32, out: *mut f32) {
        let (in_w, out_w) = (self.in_hw.1, self.out_hw.1);
        let (cin, (cout, cout_pad)) = (self.in_c.1, self.out_c);
        let (k, taps, bias) = (self.kernel, self.taps.taps.as_slice(), self.taps.bias.as_slice());
        for ox in 0..out_w {
            for o in 0..cout_pad {
                let mut acc = bias[o];
                if o < cout {
                    let c = o / self.multiplier;
                    for ky in 0..k {
                        let row = input_row(ky);
                        for kx in 0..k {
                            let Some(ix) = (ox * self.stride + kx).checked_sub(self.pad.1) else {
                                continue;
                            };
                            if ix < in_w {
                                // SAFETY: `ix < in_w` and `c < cin`: inside the row.
                                let x = unsafe { *row.add(ix * cin + c) };
                                acc += taps[(ky * k + kx) * cout_pad + o] * x;
                            }
                        }
                    }
                }
                // SAFETY: `ox < out_w`, `o < cout_pad`: inside the output row.
                unsafe { *out.add(ox * cout_pad + o) = self.act.scalar(acc) };
            }
        }
    }
}

impl<const K: usize> Kernel for &Row<K> {
    type Output = ();

    /// Runs the row with the activation known at compile time.
    ///
    /// # Safety
    /// `V`'s ISA must be enabled; the row's pointers as [`row`] requires.
    #[inline(always)]
    unsafe fn run<V: F32Vec>(self) {
        // SAFETY: forwarded from the caller.
        unsafe { with_act!(self.act, act => row::<V, K>(self, act)) }
    }
}

/// # Safety
/// `V`'s ISA must be enabled; `r.rows` must each hold `in_w * channels` floats, `r.out`
/// `out_w * channels`, `r.taps` `K * K * channels`, `r.bias` `channels`; `channels` must be a
/// multiple of `V::LANES`.
#[inline(always)]
unsafe fn row<V: F32Vec, const K: usize>(r: &Row<K>, act: Act) {
    let (c, s) = (r.channels, r.stride);
    // Output columns whose `K` taps all fall inside the image.
    let first = r.pad_left.div_ceil(s).min(r.out_w);
    let end = if r.in_w + r.pad_left >= K {
        (r.in_w + r.pad_left - K) / s + 1
    } else {
        0
    };
    let end = end.clamp(first, r.out_w);
    // SAFETY: all offsets stay inside the extents listed in the contract: interior columns
    // read input columns `ox * s - pad_left + 0..K` in `0..in_w` by the choice of
    // `first..end`; border columns check each tap.
    unsafe {
        for c0 in (0..c).step_by(V::LANES) {
            let w: [[V; K]; K] = std::array::from_fn(|ky| {
                std::array::from_fn(|kx| V::load(r.taps.add((ky * K + kx) * c + c0)))
            });
            let bias = V::load(r.bias.add(c0));
            let rows = r.rows.map(|row| row.add(c0));
            let out = r.out.add(c0);
            for ox in (0..first).chain(end..r.out_w) {
                border_pixel(r, &rows, &w, bias, act, ox, out.add(ox * c));
            }
            for ox in first..end {
                let ix = (ox * s - r.pad_left) * c;
                // One partial sum per kernel row: `K` chains of `K` FMAs instead of one of
                // `K * K`, so a pixel's latency does not bound the loop.
                let mut acc = [V::splat(0.0); K];
                acc[0] = bias;
                for ((sum, row), taps) in acc.iter_mut().zip(&rows).zip(&w) {
                    let p = row.add(ix);
                    for (kx, &tap) in taps.iter().enumerate() {
                        *sum = V::load(p.add(kx * c)).mul_add(tap, *sum);
                    }
                }
                let sum = acc[1..].iter().fold(acc[0], |sum, &a| sum.add(a));
                act.apply(sum).store(out.add(ox * c));
            }
        }
    }
}

/// An output column next to the left or right edge: taps outside the image are skipped. Not a
/// closure: closures do not inherit `#[target_feature]`, so it would compile for the baseline.
///
/// # Safety
/// As for [`row`]; `rows` already offset to the channel vector, `out` to the output pixel.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `kx` indexes the taps of every kernel row
unsafe fn border_pixel<V: F32Vec, const K: usize>(
    r: &Row<K>,
    rows: &[*const f32; K],
    w: &[[V; K]; K],
    bias: V,
    act: Act,
    ox: usize,
    out: *mut f32,
) {
    let mut acc = bias;
    for kx in 0..K {
        let Some(ix) = (ox * r.stride + kx)
            .checked_sub(r.pad_left)
            .filter(|&ix| ix < r.in_w)
        else {
            continue;
        };
        for (ky, row) in rows.iter().enumerate() {
            // SAFETY: `ix < in_w`, inside the row (caller's contract).
            acc = unsafe { V::load(row.add(ix * r.channels)).mul_add(w[ky][kx], acc) };
        }
    }
    // SAFETY: `out` is the pixel's channel vector (caller's contract).
    unsafe { act.apply(acc).store(out) };
}

//! Full `k x k` convolution (the stem, paper eq. 1; and every layer of the full-conv ablation)
//! as an implicit GEMM read straight from its input.
//!
//! Input element (channel `c`, row `y`, column `x`) lies at `c * cs + y * rs + x * ps` for
//! strides that describe either the caller's NCHW image (the stem) or an NHWC activation.
//! For an output pixel whose window lies inside the image, the `k * k * C` inputs it needs
//! are at fixed offsets from the window's corner, and consecutive output pixels' corners are
//! `stride * ps` apart: a GEMM over a table of offsets ([`Gemm::offsets`]). So the stem reads
//! the NCHW input in place; the layout conversion to NHWC happens in its output.
//!
//! Pixels whose window crosses the TF SAME padding (for an even input at stride 2 only the
//! last row and column) are gathered with explicit zeros into a small per-thread im2col
//! scratch and go through the contiguous GEMM. Bias and the activation (v3's stem: hard-swish)
//! are fused in the GEMM epilogue.

use std::ops::Range;

use super::LayerWeights;
use super::act::Act;
use super::gemm::Gemm;
use super::pack::PackedB;
use super::parallel::Work;
use super::plan::Dims;
use super::simd::{Isa, prefetch};
use crate::arch::Layer;

/// How many output rows ahead the input is prefetched (each row is about a microsecond of
/// work, several memory latencies).
const PREFETCH_ROWS: usize = 2;

#[derive(Debug)]
pub(crate) struct ConvOp {
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) in_hw: (usize, usize),
    pub(crate) in_c: usize,
    /// Element strides of the input: (channel, row, column).
    pub(crate) in_strides: (usize, usize, usize),
    /// Floats per input image.
    pub(crate) in_image: usize,
    pub(crate) out_hw: (usize, usize),
    /// Padded output channels.
    pub(crate) out_c_pad: usize,
    /// TF SAME (top, left).
    pub(crate) pad: (usize, usize),
    /// Offsets of the `k * k * in_c` window inputs from its corner, in (ky, kx, c) order.
    pub(crate) offsets: Vec<u32>,
    /// Output columns whose window lies inside the image horizontally.
    pub(crate) interior: Range<usize>,
    /// `[k * k * in_c, out_c_pad]`, rows in the offsets' order.
    pub(crate) weights: PackedB,
    pub(crate) act: Act,
}

impl ConvOp {
    /// Checks and packs a `k x k` convolution's weights. With `nchw_input` it reads the
    /// caller's NCHW image (the stem), else an NHWC activation with padded channels.
    pub(crate) fn plan(layer: &Layer, weights: &LayerWeights, nchw_input: bool) -> Result<ConvOp, String> {
        let Dims {
            cin,
            cout,
            cin_pad,
            cout_pad,
            kernel: k,
            stride,
            in_hw,
            out_hw,
            pad,
        } = Dims::of(layer);
        let w = weights.dense()?;
        w.expect("", cout * cin * k * k, cout)?;
        let (h, w_in) = in_hw;
        let (in_strides, in_image) = if nchw_input {
            ((h * w_in, w_in, 1), cin * h * w_in)
        } else {
            ((1, w_in * cin_pad, cin_pad), h * w_in * cin_pad)
        };
        let (cs, rs, ps) = in_strides;
        let mut offsets = Vec::with_capacity(k * k * cin);
        for ky in 0..k {
            for kx in 0..k {
                for c in 0..cin {
                    let offset = u32::try_from(c * cs + ky * rs + kx * ps)
                        .map_err(|_| "input too large for 32-bit window offsets".to_string())?;
                    offsets.push(offset);
                }
            }
        }
        // B row (ky, kx, c) matches the offsets' order.
        let packed = PackedB::new(k * k * cin, cout_pad, &w.bias, |row, o| {
            let (tap, c) = (row / cin, row % cin);
            if o < cout {
                w.weight[(o * cin + c) * k * k + tap]
            } else {
                0.0
            }
        });
        // Output columns whose window lies inside the image horizontally.
        let pad_left = pad.1;
        let first_col = pad_left.div_ceil(stride).min(out_hw.1);
        let end_col = if w_in + pad_left >= k {
            (w_in + pad_left - k) / stride + 1
        } else {
            0
        };
        Ok(ConvOp {
            kernel: k,
            stride,
            in_hw,
            in_c: cin,
            in_strides,
            in_image,
            out_hw,
            out_c_pad: cout_pad,
            pad,
            offsets,
            interior: first_col..end_col.clamp(first_col, out_hw.1),
            weights: packed,
            act: layer.activation.into(),
        })
    }

    /// Floats of per-thread im2col scratch: one output row of border pixels.
    pub(crate) fn scratch_len(&self) -> usize {
        self.out_hw.1 * self.offsets.len()
    }

    /// Runs the output rows this thread claims.
    ///
    /// # Safety
    /// `isa` must be available; `src` must hold `batch` input images (`in_image` floats each,
    /// laid out as `in_strides` say), `dst` room for `batch` output images and `scratch`
    /// [`Self::scratch_len`] floats that no other thread uses. All threads must call this
    /// together (each claimed row is written by one thread).
    pub(crate) unsafe fn run(
        &self,
        work: &Work<'_>,
        isa: Isa,
        src: *const f32,
        dst: *mut f32,
        scratch: *mut f32,
        batch: usize,
    ) {
        let total = batch * self.out_hw.0;
        work.for_each(total, 1, |rows| {
            for row in rows.clone().take(PREFETCH_ROWS) {
                self.prefetch_input(src, row, true);
            }
            for row in rows {
                if row + PREFETCH_ROWS < total {
                    self.prefetch_input(src, row + PREFETCH_ROWS, false);
                }
                // SAFETY: forwarded from the caller; `row < batch * out_h`.
                unsafe { self.row(isa, src, dst, scratch, row) };
            }
        });
    }

    /// Computes output row `row` (image `row / out_h`).
    ///
    /// # Safety
    /// As for [`ConvOp::run`], with `row` claimed by this thread.
    unsafe fn row(&self, isa: Isa, src: *const f32, dst: *mut f32, scratch: *mut f32, row: usize) {
        let ((in_h, _), (out_h, out_w)) = (self.in_hw, self.out_hw);
        let (_, rs, ps) = self.in_strides;
        let (k, s) = (self.kernel, self.stride);
        let (n, oy) = (row / out_h, row % out_h);
        // SAFETY: image `n` and output row `row` are inside the caller's buffers; this
        // row belongs to this thread only.
        let (image, out) = unsafe { (src.add(n * self.in_image), dst.add(row * out_w * self.out_c_pad)) };
        let top = (oy * s).checked_sub(self.pad.0).filter(|&y| y + k <= in_h);
        let interior = if top.is_some() {
            self.interior.clone()
        } else {
            0..0
        };
        if let Some(top) = top.filter(|_| !interior.is_empty()) {
            let left = interior.start * s - self.pad.1;
            let gemm = Gemm {
                // SAFETY: the window of every interior pixel lies inside the image, so the
                // corner and all offsets from it stay inside image `n`.
                a: unsafe { image.add(top * rs + left * ps) },
                lda: s * ps,
                offsets: Some(&self.offsets),
                b: &self.weights,
                // SAFETY: the interior columns of this thread's output row.
                c: unsafe { out.add(interior.start * self.out_c_pad) },
                ldc: self.out_c_pad,
                act: self.act,
                residual: std::ptr::null(),
            };
            // SAFETY: see the pointers above.
            unsafe { gemm.run(isa, 0..interior.len(), 0..self.weights.panels()) };
        }
        let border = if interior.is_empty() {
            [0..out_w, out_w..out_w]
        } else {
            [0..interior.start, interior.end..out_w]
        };
        for columns in border.into_iter().filter(|c| !c.is_empty()) {
            let k_len = self.offsets.len();
            // SAFETY: `scratch` holds `out_w * k_len` floats for this thread alone.
            let patches = unsafe { std::slice::from_raw_parts_mut(scratch, columns.len() * k_len) };
            // SAFETY: image `n` is inside `src`.
            unsafe { self.im2col(image, oy, columns.clone(), patches) };
            let gemm = Gemm {
                a: patches.as_ptr(),
                lda: k_len,
                offsets: None,
                b: &self.weights,
                // SAFETY: columns of this thread's output row.
                c: unsafe { out.add(columns.start * self.out_c_pad) },
                ldc: self.out_c_pad,
                act: self.act,
                residual: std::ptr::null(),
            };
            // SAFETY: `patches` holds `columns.len()` rows of `k_len`; C as above.
            unsafe { gemm.run(isa, 0..columns.len(), 0..self.weights.panels()) };
        }
    }

    /// Prefetches the input rows that output row `row` (of all images) reads, or with
    /// `!whole_window` only those the previous output row did not read. The stem's NCHW input
    /// arrives cold from the caller, and the hardware prefetcher does not follow nine strided
    /// row streams (3 channels x 3 kernel rows) well enough: this took the stem from 0.32 to
    /// 0.26 ms in a 1.0-MobileNet-224 pass. Addresses are computed with wrapping arithmetic and
    /// never dereferenced.
    fn prefetch_input(&self, src: *const f32, row: usize, whole_window: bool) {
        let ((h, w), (cs, rs, ps)) = (self.in_hw, self.in_strides);
        let (n, oy) = (row / self.out_hw.0, row % self.out_hw.0);
        let image = src.wrapping_add(n * self.in_image);
        let reused = if whole_window {
            0
        } else {
            self.kernel.saturating_sub(self.stride)
        };
        let first_new = (oy * self.stride + reused).saturating_sub(self.pad.0);
        let end = (oy * self.stride + self.kernel).saturating_sub(self.pad.0).min(h);
        // NHWC rows hold every channel; NCHW has a plane per channel.
        let planes = if cs == 1 { 1 } else { self.in_c };
        for c in 0..planes {
            for y in first_new..end {
                let line = image.wrapping_add(c * cs + y * rs);
                for x in (0..w * ps).step_by(16) {
                    prefetch(line.wrapping_add(x));
                }
            }
        }
    }

    /// Writes the windows of output pixels (`oy`, `columns`) as rows of `patches`, in the
    /// offsets' (ky, kx, c) order, with zeros where the window leaves the image.
    ///
    /// # Safety
    /// `image` must hold one input image.
    unsafe fn im2col(&self, image: *const f32, oy: usize, columns: Range<usize>, patches: &mut [f32]) {
        let ((h, w), (cs, rs, ps)) = (self.in_hw, self.in_strides);
        let (k, s) = (self.kernel, self.stride);
        let rows = patches.chunks_exact_mut(self.offsets.len());
        for (ox, patch) in columns.zip(rows) {
            let mut taps = patch.chunks_exact_mut(self.in_c);
            for ky in 0..k {
                let y = (oy * s + ky).checked_sub(self.pad.0).filter(|&y| y < h);
                for kx in 0..k {
                    let x = (ox * s + kx).checked_sub(self.pad.1).filter(|&x| x < w);
                    let tap = taps.next().expect("k * k taps");
                    match y.zip(x) {
                        Some((y, x)) => {
                            for (c, value) in tap.iter_mut().enumerate() {
                                // SAFETY: `c < in_c`, `y < h`, `x < w`: inside the image.
                                *value = unsafe { *image.add(c * cs + y * rs + x * ps) };
                            }
                        }
                        None => tap.fill(0.0),
                    }
                }
            }
        }
    }
}

//! Full `k x k` convolution (the stem, paper eq. 1; and every layer of the full-conv ablation)
//! as an implicit GEMM over a zero-padded NHWC copy of the input.
//!
//! The stem's input arrives NCHW from the rest of the crate. Copying it once into a padded
//! NHWC staging image does the layout conversion and the TF SAME padding together (for an
//! even input and stride 2 that is 0 rows/columns before and 1 after). In the staged image the
//! `k * C` inputs of one kernel row are contiguous and consecutive output pixels are `stride * C`
//! floats apart, so the GEMM reads the "im2col" matrix in place: `k` segments of `k * C` floats
//! per output pixel, one GEMM of `out_w` rows per output row. Bias and ReLU6 are fused in the
//! GEMM epilogue.

use super::gemm::{Act, Gemm, Segment};
use super::pack::PackedB;
use super::parallel::Ctx;
use super::simd::Isa;

/// How the convolution's input is laid out in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The caller's `[N, C, H, W]` input (the first layer).
    Nchw,
    /// An engine activation, `[N, H, W, C_pad]`.
    Nhwc,
}

#[derive(Debug)]
pub(crate) struct ConvOp {
    pub(crate) source: Source,
    pub(crate) stride: usize,
    pub(crate) in_hw: (usize, usize),
    /// Logical input channels, and their stride in the source (equal for NCHW).
    pub(crate) in_c: (usize, usize),
    pub(crate) out_hw: (usize, usize),
    /// Padded output channels.
    pub(crate) out_c_pad: usize,
    /// TF SAME (top, left).
    pub(crate) pad: (usize, usize),
    /// Staged image (height, width, channel stride) including the padding.
    pub(crate) staged: (usize, usize, usize),
    pub(crate) segs: Vec<Segment>,
    pub(crate) weights: PackedB,
    pub(crate) act: Act,
}

impl ConvOp {
    /// Floats of staging per image.
    pub(crate) fn stage_len(&self) -> usize {
        self.staged.0 * self.staged.1 * self.staged.2
    }

    /// Stages this thread's share of the padded input, waits for the other threads, then runs
    /// its share of output rows.
    ///
    /// # Safety
    /// `isa` must be available; `src` must hold `batch` input images in `self.source` layout,
    /// `stage` room for `batch * stage_len()` floats and `dst` for `batch` output images. All
    /// threads of `ctx` must call this together.
    pub(crate) unsafe fn run(
        &self,
        ctx: &Ctx<'_>,
        isa: Isa,
        src: *const f32,
        stage: *mut f32,
        dst: *mut f32,
        batch: usize,
    ) {
        let (hp, wp, cs) = self.staged;
        for row in ctx.share(batch * hp, 1) {
            // SAFETY: `row < batch * hp` is inside the staging buffer; rows are disjoint
            // between threads.
            let out = unsafe { std::slice::from_raw_parts_mut(stage.add(row * wp * cs), wp * cs) };
            // SAFETY: forwarded from the caller's guarantee on `src`.
            unsafe { self.stage_row(src, row / hp, row % hp, out) };
        }
        ctx.sync();
        let (out_h, out_w) = self.out_hw;
        let image = hp * wp * cs;
        for row in ctx.share(batch * out_h, 1) {
            let (n, oy) = (row / out_h, row % out_h);
            let gemm = Gemm {
                // SAFETY: the window of output row `oy` starts inside image `n` of the staging
                // buffer; the segments stay inside it because the staged size includes the
                // SAME padding: (out - 1) * stride + k <= padded size.
                a: unsafe { stage.add(n * image + oy * self.stride * wp * cs) },
                lda: self.stride * cs,
                segs: &self.segs,
                b: &self.weights,
                // SAFETY: output row `row` is inside `dst` and only this thread writes it.
                c: unsafe { dst.add(row * out_w * self.out_c_pad) },
                ldc: self.out_c_pad,
                act: self.act,
            };
            // SAFETY: see the pointer comments above; `isa` is available.
            unsafe { gemm.run(isa, 0..out_w, 0..self.weights.panels()) };
        }
    }

    /// Writes staged row `y` of image `n`: zeros in the padding, the input elsewhere.
    ///
    /// # Safety
    /// `src` must hold image `n` in `self.source` layout.
    unsafe fn stage_row(&self, src: *const f32, n: usize, y: usize, out: &mut [f32]) {
        let ((h, w), (c, c_stride), cs) = (self.in_hw, self.in_c, self.staged.2);
        let (pad_top, pad_left) = self.pad;
        out.fill(0.0);
        let Some(iy) = y.checked_sub(pad_top).filter(|&iy| iy < h) else {
            return;
        };
        let pixels = out[pad_left * cs..].chunks_exact_mut(cs).take(w);
        match self.source {
            Source::Nchw => {
                // SAFETY: image `n` is `c * h * w` floats, all inside `src`.
                let image = unsafe { std::slice::from_raw_parts(src.add(n * c * h * w), c * h * w) };
                for (x, pixel) in pixels.enumerate() {
                    for (ch, value) in pixel[..c].iter_mut().enumerate() {
                        *value = image[(ch * h + iy) * w + x];
                    }
                }
            }
            Source::Nhwc => {
                // SAFETY: row `iy` of image `n` is `w * c_stride` floats inside `src`.
                let row =
                    unsafe { std::slice::from_raw_parts(src.add((n * h + iy) * w * c_stride), w * c_stride) };
                for (pixel, input) in pixels.zip(row.chunks_exact(c_stride)) {
                    pixel[..c_stride].copy_from_slice(input);
                }
            }
        }
    }
}

//! Pointwise (1x1) convolution, the second half of paper eq. 5 and ~95% of MobileNet's
//! mult-adds: in NHWC it is exactly a GEMM `[N*H*W, C_in] x [C_in, C_out]` on the activation
//! as it lies in memory, so no im2col or transpose is needed.
//!
//! With two or more threads the work is split where it moves the least memory: early layers
//! (many pixels, few channels) split the rows, so each thread streams half the activation past
//! the whole (small) weight matrix; late layers (49 or 196 pixels, up to 1024 x 1024 weights)
//! split the 32-column weight panels, so each thread reads only its half of the weights.

use super::gemm::{self, Act, Gemm, Segment};
use super::pack::PackedB;
use super::parallel::Ctx;
use super::simd::Isa;

#[derive(Debug)]
pub(crate) struct PointwiseOp {
    /// Pixels per image (H * W).
    pub(crate) pixels: usize,
    pub(crate) in_c_pad: usize,
    pub(crate) out_c_pad: usize,
    /// `[in_c_pad, out_c_pad]`.
    pub(crate) weights: PackedB,
    pub(crate) act: Act,
}

impl PointwiseOp {
    /// Runs this thread's share.
    ///
    /// # Safety
    /// `isa` must be available; `src` must hold `batch * pixels * in_c_pad` floats and `dst`
    /// room for `batch * pixels * out_c_pad`. All threads of `ctx` must call this together.
    pub(crate) unsafe fn run(&self, ctx: &Ctx<'_>, isa: Isa, src: *const f32, dst: *mut f32, batch: usize) {
        let segs = [Segment {
            offset: 0,
            len: self.in_c_pad,
        }];
        let gemm = Gemm {
            a: src,
            lda: self.in_c_pad,
            segs: &segs,
            b: &self.weights,
            c: dst,
            ldc: self.out_c_pad,
            act: self.act,
        };
        let (rows, panels) = share(ctx, isa, batch * self.pixels, &self.weights);
        // SAFETY: the caller's buffer sizes cover every row; `share` gives this thread rows or
        // panels disjoint from the other threads'.
        unsafe { gemm.run(isa, rows, panels) };
    }
}

/// This thread's (rows, panels) of an `m`-row GEMM with weights `b`: split the operand that
/// is larger (`A` is `m x k`, `B` is `k x n`), so each thread streams half of it, unless there
/// are too few rows for every thread to get two tiles.
pub(crate) fn share(
    ctx: &Ctx<'_>,
    isa: Isa,
    m: usize,
    b: &PackedB,
) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let panels = b.panels();
    let mr = gemm::tile_rows(isa);
    let split_panels = panels >= ctx.threads && (b.n > m || m < 2 * mr * ctx.threads);
    if ctx.threads == 1 {
        (0..m, 0..panels)
    } else if split_panels {
        (0..m, ctx.share(panels, 1))
    } else {
        (ctx.share(m, mr), 0..panels)
    }
}

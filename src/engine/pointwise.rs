//! Pointwise (1x1) convolution, the second half of paper eq. 5 and ~95% of MobileNet's
//! mult-adds: in NHWC it is exactly a GEMM `[N*H*W, C_in] x [C_in, C_out]` on the activation
//! as it lies in memory, so no im2col or transpose is needed.
//!
//! With two or more threads the work is split where it moves the least memory: early layers
//! (many pixels, few channels) split the rows, so each thread streams its part of the
//! activation past the whole (small) weight matrix; late layers (49 or 196 pixels, up to
//! 1024 x 1024 weights) split the 32-column weight panels, so each thread reads only its part
//! of the weights.

use super::LayerWeights;
use super::act::Act;
use super::gemm::{Gemm, run_shared};
use super::pack::PackedB;
use super::parallel::Work;
use super::plan::Dims;
use super::simd::Isa;
use crate::arch::Layer;

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
    /// Checks and packs a 1x1 convolution's `[out, in, 1, 1]` weight into `[in_c_pad,
    /// out_c_pad]` panels, zero in the padded rows and columns.
    pub(crate) fn plan(layer: &Layer, weights: &LayerWeights) -> Result<PointwiseOp, String> {
        let d = Dims::of(layer);
        let (cin, cout) = (d.cin, d.cout);
        let w = weights.dense()?;
        w.expect("", cout * cin, cout)?;
        Ok(PointwiseOp {
            pixels: d.in_hw.0 * d.in_hw.1,
            in_c_pad: d.cin_pad,
            out_c_pad: d.cout_pad,
            weights: PackedB::transposed(&w.weight, &w.bias, (cin, d.cin_pad), (cout, d.cout_pad)),
            act: layer.activation.into(),
        })
    }

    /// Runs the rows or panels this thread claims.
    ///
    /// # Safety
    /// `isa` must be available; `src` must hold `batch * pixels * in_c_pad` floats and `dst`
    /// room for `batch * pixels * out_c_pad`; `residual` must be null or hold
    /// `batch * pixels * out_c_pad` floats that no thread writes during the call (it is added
    /// to the output before the activation). All threads must call this together.
    pub(crate) unsafe fn run(
        &self,
        work: &Work<'_>,
        isa: Isa,
        src: *const f32,
        dst: *mut f32,
        residual: *const f32,
        batch: usize,
    ) {
        let gemm = Gemm {
            a: src,
            lda: self.in_c_pad,
            offsets: None,
            b: &self.weights,
            c: dst,
            ldc: self.out_c_pad,
            act: self.act,
            residual,
        };
        // SAFETY: the caller's buffer sizes cover every row; `run_shared` gives threads
        // disjoint parts.
        unsafe { run_shared(&gemm, work, isa, batch * self.pixels) };
    }
}

//! The classifier head: global average pooling, then the fully connected layer as a GEMM with
//! `batch` rows (a GEMV at batch 1) over the packed `[C, classes]` weights.
//!
//! Both read the activation where it lies: pooling sums each image's pixels into a
//! `[batch, C_pad]` buffer, and the FC layer takes that buffer as its `A` operand and writes
//! the logits unpadded, `[batch, classes]`, straight into the engine's output.

use super::LayerWeights;
use super::act::Act;
use super::gemm::{Gemm, run_shared};
use super::pack::{CHANNEL_ALIGN, PackedB};
use super::parallel::Work;
use super::plan::Dims;
use super::simd::Isa;
use crate::arch::{Activation, Layer};

#[derive(Debug)]
pub(crate) struct PoolOp {
    pub(crate) pixels: usize,
    pub(crate) c_pad: usize,
}

impl PoolOp {
    /// A global average pool, which has no weights and no activation.
    pub(crate) fn plan(layer: &Layer, weights: &LayerWeights) -> Result<PoolOp, String> {
        let d = Dims::of(layer);
        weights.none()?;
        if layer.activation != Activation::Linear {
            return Err(format!(
                "is a pool with {}: the fast engine pools without an activation",
                layer.activation.name()
            ));
        }
        Ok(PoolOp {
            pixels: d.in_hw.0 * d.in_hw.1,
            c_pad: d.cin_pad,
        })
    }

    /// Averages the channel vectors this thread claims, for every image.
    ///
    /// # Safety
    /// `src` must hold `batch * pixels * c_pad` floats and `dst` room for `batch * c_pad`. All
    /// threads must call this together.
    pub(crate) unsafe fn run(&self, work: &Work<'_>, src: *const f32, dst: *mut f32, batch: usize) {
        work.for_each(self.c_pad, CHANNEL_ALIGN, |channels| {
            // SAFETY: forwarded; the claimed channels are this thread's alone.
            unsafe { self.pool(channels, src, dst, batch) }
        });
    }

    /// # Safety
    /// As for [`PoolOp::run`], `channels` being claimed by this thread.
    unsafe fn pool(&self, channels: std::ops::Range<usize>, src: *const f32, dst: *mut f32, batch: usize) {
        let scale = 1.0 / self.pixels as f32;
        for n in 0..batch {
            // SAFETY: image `n` and its pooled row are inside the buffers; this thread owns
            // `channels` of the pooled row.
            let (image, pooled) = unsafe {
                (
                    std::slice::from_raw_parts(
                        src.add(n * self.pixels * self.c_pad),
                        self.pixels * self.c_pad,
                    ),
                    std::slice::from_raw_parts_mut(dst.add(n * self.c_pad + channels.start), channels.len()),
                )
            };
            // Fixed-width blocks so the baseline compiler vectorises the sum.
            for (block, out) in pooled.chunks_exact_mut(CHANNEL_ALIGN).enumerate() {
                let c0 = channels.start + block * CHANNEL_ALIGN;
                let mut sum = [0.0f32; CHANNEL_ALIGN];
                for pixel in image.chunks_exact(self.c_pad) {
                    for (s, x) in sum.iter_mut().zip(&pixel[c0..c0 + CHANNEL_ALIGN]) {
                        *s += x;
                    }
                }
                for (o, s) in out.iter_mut().zip(sum) {
                    *o = s * scale;
                }
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct FcOp {
    pub(crate) in_c_pad: usize,
    pub(crate) classes: usize,
    /// `[in_c_pad, classes]`.
    pub(crate) weights: PackedB,
    pub(crate) act: Act,
}

impl FcOp {
    /// Checks and packs the `[classes, in]` weight into `[in_c_pad, classes]` panels: the
    /// logits are written unpadded.
    pub(crate) fn plan(layer: &Layer, weights: &LayerWeights) -> Result<FcOp, String> {
        let d = Dims::of(layer);
        let (cin, cout) = (d.cin, d.cout);
        let w = weights.dense()?;
        w.expect("", cout * cin, cout)?;
        Ok(FcOp {
            in_c_pad: d.cin_pad,
            classes: cout,
            weights: PackedB::transposed(&w.weight, &w.bias, (cin, d.cin_pad), (cout, cout)),
            act: layer.activation.into(),
        })
    }

    /// # Safety
    /// `isa` must be available; `src` must hold `batch * in_c_pad` floats and `dst` room for
    /// `batch * classes`. All threads must call this together.
    pub(crate) unsafe fn run(&self, work: &Work<'_>, isa: Isa, src: *const f32, dst: *mut f32, batch: usize) {
        let gemm = Gemm {
            a: src,
            lda: self.in_c_pad,
            offsets: None,
            b: &self.weights,
            c: dst,
            ldc: self.classes,
            act: self.act,
            residual: std::ptr::null(),
        };
        // SAFETY: buffer sizes from the caller; `run_shared` gives threads disjoint parts.
        unsafe { run_shared(&gemm, work, isa, batch) };
    }
}

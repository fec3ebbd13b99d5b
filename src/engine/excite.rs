//! Squeeze-and-excite (Hu et al. 2018; MobileNetV3, Howard et al. 2019 Section 5.3 and
//! Figure 4), on the depthwise layer's activated output: average each channel over the image
//! (squeeze), a 1x1 conv to `se` channels with bias and ReLU, a 1x1 conv back with bias and
//! hard-sigmoid relu6(x + 3) / 6 (excite), then every pixel's channels multiplied by that gate.
//! The gate is the candle network's, 1/6 exactly (`Act::HardSigmoid`), also for the shipped
//! TF-slim MobileNetV3-Small, whose graph writes relu6(x + 3) * 0.16667 (see `src/nn/model_id.rs`).
//!
//! The op is per image and tiny next to the convolutions around it, so a thread takes whole
//! images: it pools them, runs the two 1x1 convs as GEMMs with one row per image (the engine's
//! microkernel, ReLU and hard-sigmoid fused in their epilogues) and scales the images. When the
//! planner finds nothing else reads the depthwise output, source and destination are the same
//! buffer and the scaling is in place.

use super::LayerWeights;
use super::act::Act;
use super::gemm::Gemm;
use super::pack::{PackedB, padded};
use super::parallel::Work;
use super::plan::Dims;
use super::simd::{self, F32Vec, Isa, Kernel};
use crate::arch::{Activation, Layer};

/// Images a thread squeezes and excites together: the two GEMMs then read their weights once
/// per chunk of images instead of once per image (v3-large's SE weights are ~2.6 M floats, half
/// the network's, and at batch 1 they stream from L3 on every pass).
const CHUNK: usize = 8;

/// Channel vectors summed at once while pooling: independent add chains enough to cover the
/// add latency of two pipes.
const POOL_VECTORS: usize = 8;

/// A planned squeeze-and-excite layer. Channel counts are padded ([`super::pack::padded`]).
#[derive(Debug)]
pub(crate) struct SqueezeExciteOp {
    pub(crate) pixels: usize,
    pub(crate) c_pad: usize,
    pub(crate) se_pad: usize,
    /// `[c_pad, se_pad]`: pooled channels to the squeezed ones.
    pub(crate) reduce: PackedB,
    /// `[se_pad, c_pad]`: squeezed channels to the gate.
    pub(crate) expand: PackedB,
}

impl SqueezeExciteOp {
    /// Checks and packs the reduce (`[se, C, 1, 1]`, bias `[se]`) and expand (`[C, se, 1, 1]`,
    /// bias `[C]`) convs. The layer's shape was checked: it has `se_channels`.
    pub(crate) fn plan(layer: &Layer, weights: &LayerWeights) -> Result<SqueezeExciteOp, String> {
        let d = Dims::of(layer);
        let (c, se) = (d.cin, layer.se_channels.unwrap_or_default() as usize);
        let (reduce, expand) = weights.squeeze_excite()?;
        reduce.expect("reduce ", se * c, se)?;
        expand.expect("expand ", c * se, c)?;
        if layer.activation != Activation::Linear {
            return Err(format!(
                "is squeeze-and-excite with a {} after the channel scaling, which no MobileNet has",
                layer.activation.name()
            ));
        }
        let se_pad = padded(se);
        Ok(SqueezeExciteOp {
            pixels: d.in_hw.0 * d.in_hw.1,
            c_pad: d.cin_pad,
            se_pad,
            reduce: PackedB::transposed(&reduce.weight, &reduce.bias, (c, d.cin_pad), (se, se_pad)),
            // Padded output channels get the gate hard_sigmoid(0) = 1/2; they scale zeros.
            expand: PackedB::transposed(&expand.weight, &expand.bias, (se, se_pad), (c, d.cin_pad)),
        })
    }

    /// Floats of per-thread scratch: a chunk's pooled vectors (overwritten by the gates, which
    /// are computed once the pooled values have been read) and its squeezed vectors.
    pub(crate) fn scratch_len(&self) -> usize {
        CHUNK * (self.c_pad + self.se_pad)
    }

    /// Squeezes and excites the images this thread claims.
    ///
    /// # Safety
    /// `isa` must be available; `src` must hold `batch` NHWC images of `pixels * c_pad` floats
    /// and `dst` room for as many (`dst == src` is allowed: each value is read before it is
    /// written, by the same thread); `scratch` must hold [`Self::scratch_len`] floats no other
    /// thread uses. All threads must call this together.
    pub(crate) unsafe fn run(
        &self,
        work: &Work<'_>,
        isa: Isa,
        src: *const f32,
        dst: *mut f32,
        scratch: *mut f32,
        batch: usize,
    ) {
        let image = self.pixels * self.c_pad;
        work.for_each(batch, 1, |images| {
            for first in images.clone().step_by(CHUNK) {
                let count = (images.end - first).min(CHUNK);
                // SAFETY: images `first..first + count` are inside the buffers and claimed by
                // this thread; the scratch is this thread's and sized for `CHUNK` images.
                unsafe {
                    let (pooled, squeezed) = (scratch, scratch.add(CHUNK * self.c_pad));
                    for i in 0..count {
                        let x = src.add((first + i) * image);
                        let mean = pooled.add(i * self.c_pad);
                        simd::dispatch(isa, self.pass(Pass::Pool, x, mean, std::ptr::null_mut()));
                    }
                    self.fc(isa, &self.reduce, pooled, squeezed, Act::Relu, count);
                    // The gates overwrite the pooled values, all read by now.
                    let gates = pooled;
                    self.fc(isa, &self.expand, squeezed, gates, Act::HardSigmoid, count);
                    for i in 0..count {
                        let offset = (first + i) * image;
                        let gate = gates.add(i * self.c_pad);
                        simd::dispatch(
                            isa,
                            self.pass(Pass::Scale, src.add(offset), gate, dst.add(offset)),
                        );
                    }
                }
            }
        });
    }

    /// One image's pool or scale pass.
    fn pass(&self, which: Pass, image: *const f32, vector: *mut f32, out: *mut f32) -> ImageKernel {
        ImageKernel {
            which,
            pixels: self.pixels,
            c_pad: self.c_pad,
            image,
            vector,
            out,
        }
    }

    /// `c = act(a * b + bias)` for `rows` rows, `a` and `c` dense with `b.k` and `b.n` columns.
    ///
    /// # Safety
    /// `isa` must be available; `a` readable for `rows * b.k` floats, `c` writable for
    /// `rows * b.n`, not overlapping `a`.
    unsafe fn fc(&self, isa: Isa, b: &PackedB, a: *const f32, c: *mut f32, act: Act, rows: usize) {
        let gemm = Gemm {
            a,
            lda: b.k,
            offsets: None,
            b,
            c,
            ldc: b.n,
            act,
            residual: std::ptr::null(),
        };
        // SAFETY: forwarded from the caller.
        unsafe { gemm.run(isa, 0..rows, 0..b.panels()) };
    }
}

#[derive(Clone, Copy)]
enum Pass {
    /// `vector[c] = mean over pixels of image[p, c]`; `out` is unused.
    Pool,
    /// `out[p, c] = image[p, c] * vector[c]`.
    Scale,
}

/// One of the two per-image passes on `pixels * c_pad` floats at `image`.
struct ImageKernel {
    which: Pass,
    pixels: usize,
    c_pad: usize,
    image: *const f32,
    vector: *mut f32,
    out: *mut f32,
}

impl Kernel for ImageKernel {
    type Output = ();

    /// # Safety
    /// `V`'s ISA must be enabled; `image` must hold `pixels * c_pad` floats and `vector`
    /// `c_pad`, with `c_pad` a multiple of `V::LANES`; for [`Pass::Scale`] `out` must be
    /// writable for `pixels * c_pad` floats (it may be `image`).
    #[inline(always)]
    unsafe fn run<V: F32Vec>(self) {
        let ImageKernel {
            which,
            pixels,
            c_pad,
            image,
            vector,
            out,
        } = self;
        // SAFETY: every offset is `p * c_pad + c` with `p < pixels`, `c < c_pad`, or `c < c_pad`.
        unsafe {
            match which {
                Pass::Pool => {
                    let block = POOL_VECTORS * V::LANES;
                    let mut c0 = 0;
                    while c0 + block <= c_pad {
                        pool_block::<V, POOL_VECTORS>(pixels, c_pad, image.add(c0), vector.add(c0));
                        c0 += block;
                    }
                    while c0 < c_pad {
                        pool_block::<V, 1>(pixels, c_pad, image.add(c0), vector.add(c0));
                        c0 += V::LANES;
                    }
                }
                Pass::Scale => {
                    for p in 0..pixels {
                        let (x, y) = (image.add(p * c_pad), out.add(p * c_pad));
                        for c in (0..c_pad).step_by(V::LANES) {
                            V::load(x.add(c)).mul(V::load(vector.add(c))).store(y.add(c));
                        }
                    }
                }
            }
        }
    }
}

/// The means over `pixels` of `N` channel vectors starting at `image` (pixels `c_pad` apart).
///
/// # Safety
/// `V`'s ISA must be enabled; `image + p * c_pad` readable for `N * V::LANES` floats for every
/// `p < pixels`, `mean` writable for as many.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops over const-size arrays unroll into registers
unsafe fn pool_block<V: F32Vec, const N: usize>(
    pixels: usize,
    c_pad: usize,
    image: *const f32,
    mean: *mut f32,
) {
    // SAFETY: within the caller's bounds.
    unsafe {
        let mut acc = [V::splat(0.0); N];
        for p in 0..pixels {
            let x = image.add(p * c_pad);
            for v in 0..N {
                acc[v] = acc[v].add(V::load(x.add(v * V::LANES)));
            }
        }
        let scale = V::splat(1.0 / pixels as f32);
        for v in 0..N {
            acc[v].mul(scale).store(mean.add(v * V::LANES));
        }
    }
}

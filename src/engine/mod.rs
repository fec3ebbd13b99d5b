//! A self-contained CPU inference engine for MobileNet v1, v2 and v3: f32, batch-first,
//! BatchNorm folded into biases, no candle. MobileNetV2's linear projections are pointwise
//! layers without activation, and their residual adds are fused into the GEMM epilogue
//! (`out = acc + bias + block input`). MobileNetV3 (Howard et al. 2019, arXiv:1905.02244) adds
//! three things, all handled here:
//! - hard-swish, `h-swish(x) = x * relu6(x + 3) / 6` (Section 5.2, eq. 2), and plain ReLU,
//!   fused into every kernel's epilogue like ReLU6 (`act.rs`);
//! - 5x5 depthwise kernels (Tables 1-2), on the same register-resident fast path as 3x3
//!   (`depthwise.rs`);
//! - squeeze-and-excite after the depthwise activation (Section 5.3, Figure 4): average pool,
//!   1x1 conv + ReLU, 1x1 conv + hard-sigmoid `relu6(x + 3) / 6`, channel-wise scaling of the
//!   depthwise output, in place (`excite.rs`).
//!
//! Its head, a 1x1 conv with BatchNorm and h-swish, the pool, then `conv_head`, a 1x1 conv with
//! bias and h-swish on the pooled vector (Section 5.1, Figure 5), needs nothing new: the
//! pooled vector is a 1x1 image, so `conv_head` is a pointwise layer with one pixel per image.
//!
//! # What it computes
//! Howard et al. 2017 factor a standard convolution into a depthwise convolution, eq. 3
//! (`G[k,l,m] = sum_ij K[i,j,m] F[k+i-1, l+j-1, m]`, one `D_K x D_K` filter per input channel,
//! cost eq. 4 `D_K^2 M D_F^2`), followed by a 1x1 pointwise convolution that mixes channels
//! (cost `M N D_F^2`); eq. 5 gives the separable layer's total, `D_K^2 M D_F^2 + M N D_F^2`.
//! At 1.0-MobileNet-224 the pointwise term is ~95% of the mult-adds, the depthwise term ~3%
//! and the stem ~2%, so this is a GEMM engine first: pointwise layers run a register-blocked
//! AVX-512 microkernel (`gemm.rs`) and everything else is arranged around it.
//!
//! # Why NHWC with channels padded to 16
//! - A pointwise layer over NHWC is a plain GEMM `[pixels, C_in] x [C_in, C_out]` on the
//!   activation exactly as the previous layer wrote it: no im2col, no transpose.
//! - A depthwise layer applies the same taps to every pixel of a channel; with channels
//!   contiguous, one 16-lane vector holds 16 channels of a pixel and each tap is one FMA.
//! - Padding channels to a multiple of 16 (zero weights, zero bias, so the pads stay exactly
//!   zero) removes every channel tail from the kernels; the cost is nil for the usual widths
//!   (only 8- and 24-channel layers grow).
//!
//! The caller's NCHW input is never converted as such: the stem, an implicit GEMM, reads its
//! windows straight from the NCHW image and writes NHWC (`stem.rs`).
//!
//! # Instruction sets
//! Kernels exist for AVX-512F (14 x 32 GEMM tiles), AVX2 + FMA (6 x 16) and a portable path
//! (plain Rust the compiler vectorises for the baseline: SSE2 on x86-64, NEON on aarch64),
//! chosen at run time ([`Isa`]), so the binary needs no `-C target-cpu`. AVX-512 intrinsics
//! need Rust 1.89. Each kernel is written once over a vector type and run through one
//! dispatch point (`simd.rs`), which compiles it once per instruction set. The integer
//! dot-product tiers an int8 engine would use are detected too ([`IntIsa`]).
//!
//! # Execution
//! [`Engine::new`] validates the layers (`plan.rs`) and has each op check and pack its
//! weights, given as one [`LayerWeights`] per layer, into its kernel's layout (each op's
//! `plan`, beside its kernel; `pack.rs`), picks the instruction set once ([`Isa::detect`]) and
//! allocates every buffer (activation buffers sized for the largest layer: two ping-pong ones
//! for v1, a third for v2 and v3, whose block input stays alive until the projection adds it;
//! the output, a zero row for the depthwise padding, per-thread scratch for the few padded
//! stem pixels' im2col and the squeeze-and-excite vectors). A forward pass allocates nothing
//! unless the batch grows. With `threads > 1` each forward pass is one dispatch to the engine's
//! own rayon pool; every thread runs the layer loop, takes its own share of each layer (rows,
//! channel blocks, weight panels or, for squeeze-and-excite, images), steals what a slower
//! thread has not started, and waits for the layer to complete before the next
//! (`parallel.rs`).
//!
//! # Features
//! [`Engine::forward_features`] stops before the final FC layer and returns its input, the
//! backbone's pooled features (candle's `*_no_final_layer` models are the shape), at the cost
//! of the full pass less the classifier's; an engine can also be built without its FC layer.
//! Either way the vector is read out of its padded buffer in place.

mod act;
mod buffer;
mod depthwise;
mod excite;
mod gemm;
mod head;
mod pack;
pub(crate) mod parallel;
mod plan;
mod pointwise;
mod simd;
mod stem;
mod weights;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::time::{Duration, Instant};

use buffer::AlignedBuf;
use parallel::{SyncPtr, Team};
use plan::{Io, Op, Plan, Readout};
pub use simd::{IntIsa, Isa};
pub use weights::{Dense, LayerWeights};

use crate::arch::Layer;

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("the network has no layers")]
    Empty,
    #[error("{weights} weight entries for {layers} layers (one per layer, empty for the pool)")]
    WeightCount { layers: usize, weights: usize },
    #[error("layer {index} ({name}) {reason}")]
    Layer {
        index: usize,
        name: String,
        reason: String,
    },
    #[error("threads must be at least 1")]
    Threads,
    #[error("could not start the engine's threads: {0}")]
    ThreadPool(String),
    #[error("this CPU cannot run the {0} kernels")]
    IsaUnavailable(Isa),
}

/// A MobileNet ready to run: packed weights, buffers and threads.
#[derive(Debug)]
pub struct Engine {
    plan: Plan,
    isa: Isa,
    team: Team,
    /// Images the buffers currently hold.
    capacity: usize,
    /// The activation buffers, `plan.buffers` of them.
    act: Vec<AlignedBuf>,
    /// `threads` im2col scratch areas of `plan.scratch_len` floats.
    scratch: AlignedBuf,
    zero_row: AlignedBuf,
    /// The last layer's output: the logits, or the features of a network without its FC layer.
    output: AlignedBuf,
}

impl Engine {
    /// Builds an engine for `layers` (from [`crate::arch::instantiate`]) with one
    /// [`LayerWeights`] per layer, running on `threads` threads (the caller's thread
    /// counts as one) with the fastest instruction set this CPU has.
    ///
    /// The layers end in one vector per image: the FC layer's logits, or, for a backbone
    /// without its classifier (`&layers[..layers.len() - 1]`), the features the FC layer would
    /// read (see [`Engine::forward_features`]).
    pub fn new(layers: &[Layer], weights: &[LayerWeights], threads: usize) -> Result<Engine, EngineError> {
        Engine::with_isa(layers, weights, threads, Isa::detect())
    }

    /// As [`Engine::new`] with a chosen instruction set (to test or time the slower paths).
    pub fn with_isa(
        layers: &[Layer],
        weights: &[LayerWeights],
        threads: usize,
        isa: Isa,
    ) -> Result<Engine, EngineError> {
        if !isa.is_available() {
            return Err(EngineError::IsaUnavailable(isa));
        }
        let plan = plan::build(layers, weights)?;
        let team = Team::new(threads, plan.ops.len())?;
        let zero_row = AlignedBuf::zeroed(plan.zero_row_len);
        // Rounded to whole cache lines so that threads' scratch areas share none.
        let scratch = AlignedBuf::zeroed(threads * plan.scratch_len.next_multiple_of(16));
        let mut engine = Engine {
            plan,
            isa,
            team,
            capacity: 0,
            act: Vec::new(),
            scratch,
            zero_row,
            output: AlignedBuf::zeroed(0),
        };
        engine.reserve(1);
        Ok(engine)
    }

    /// The instruction set the kernels run on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    pub fn threads(&self) -> usize {
        self.team.threads()
    }

    /// Values per image [`Engine::forward`] returns: the classes, or the features' length for
    /// a network without its FC layer.
    pub fn output_len(&self) -> usize {
        self.plan.output.len
    }

    /// Values per image [`Engine::forward_features`] returns.
    pub fn feature_len(&self) -> usize {
        self.plan.features.len
    }

    /// Floats of NCHW input per image (`3 * R * R`).
    pub fn input_len(&self) -> usize {
        self.plan.input_len
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.plan.ops.iter().map(Op::weight_bytes).sum()
    }

    /// Sizes the buffers for batches up to `batch` now, so that the first forward pass at that
    /// batch does not allocate. Buffers never shrink.
    pub fn reserve(&mut self, batch: usize) {
        if batch <= self.capacity {
            return;
        }
        let plan = &self.plan;
        self.act = (0..plan.buffers)
            .map(|_| AlignedBuf::zeroed(batch * plan.act_len))
            .collect();
        self.output = AlignedBuf::zeroed(batch * plan.output.stride);
        self.capacity = batch;
    }

    /// Runs the network on `batch` images, `input_nchw` being `[batch, 3, R, R]`, and returns
    /// the last layer's output `[batch, output_len]`: the logits (softmax is the caller's), or
    /// the features of a network without its FC layer.
    ///
    /// # Panics
    /// If `input_nchw.len() != batch * self.input_len()`.
    pub fn forward(&mut self, input_nchw: &[f32], batch: usize) -> &[f32] {
        self.forward_timed(input_nchw, batch, |_, _| {})
    }

    /// As [`Engine::forward`], calling `on_layer(layer index, wall time)` after each layer
    /// (all threads finished it), on the calling thread.
    ///
    /// # Panics
    /// If `input_nchw.len() != batch * self.input_len()`.
    pub fn forward_timed(
        &mut self,
        input_nchw: &[f32],
        batch: usize,
        mut on_layer: impl FnMut(usize, Duration),
    ) -> &[f32] {
        let mut start = Instant::now();
        let layers = 0..self.plan.ops.len();
        self.execute(
            input_nchw,
            batch,
            layers,
            |index| {
                let now = Instant::now();
                on_layer(index, now - start);
                start = now;
            },
            None,
        );
        self.read(self.plan.output, batch)
    }

    /// Runs the network up to its features, the input of the final FC layer (the whole network
    /// when it has none), on `batch` images, and returns them, `[batch, feature_len]`: the
    /// pooled vector of v1 and v2 (v2's conv_last pooled), v3's conv_head output after
    /// hard-swish. The FC layer is not run, so this takes the time of [`Engine::forward`]
    /// less the classifier's.
    ///
    /// # Panics
    /// If `input_nchw.len() != batch * self.input_len()`.
    pub fn forward_features(&mut self, input_nchw: &[f32], batch: usize) -> &[f32] {
        let features = self.plan.features;
        self.execute(input_nchw, batch, 0..features.layer + 1, |_| {}, None);
        self.read(features, batch)
    }

    /// The values `readout` names for `batch` images, after a pass that ran its layer. Padded
    /// channels are dropped by moving each image's values down to `len` apart, in place: the
    /// buffer is scratch until the next pass.
    fn read(&mut self, readout: Readout, batch: usize) -> &[f32] {
        let buffer = match self.plan.slots[readout.layer].dst {
            Some(b) => &mut self.act[b],
            None => &mut self.output,
        };
        let values = buffer.as_mut_slice();
        if readout.stride != readout.len {
            for n in 1..batch {
                let start = n * readout.stride;
                values.copy_within(start..start + readout.len, n * readout.len);
            }
        }
        &values[..batch * readout.len]
    }

    /// Runs layer `index` alone, for profiling one kernel in its real context (shapes, packed
    /// weights, threads). Layer 0 reads `input_nchw`; any other layer reads whatever its input
    /// buffer holds, so the values it computes are meaningless. Call [`Engine::forward`] to get
    /// logits again.
    ///
    /// # Panics
    /// If `index` is not a layer, or `input_nchw.len() != batch * self.input_len()`.
    pub fn profile_layer(&mut self, input_nchw: &[f32], batch: usize, index: usize) {
        assert!(index < self.plan.ops.len(), "layer {index} out of range");
        self.execute(input_nchw, batch, index..index + 1, |_| {}, None);
    }

    /// Runs layers `layers`, calling `on_layer(index)` on this thread as each one completes
    /// and, if given, showing `inspect` its output (NHWC, padded channels, all images). With
    /// `inspect` no thread starts a layer before this one has inspected the previous one (the
    /// next layer may overwrite it in place).
    fn execute(
        &mut self,
        input_nchw: &[f32],
        batch: usize,
        layers: Range<usize>,
        mut on_layer: impl FnMut(usize),
        mut inspect: Option<&mut Inspect<'_>>,
    ) {
        assert_eq!(
            input_nchw.len(),
            batch * self.plan.input_len,
            "input must be [batch, C, H, W] = {batch} x {} floats",
            self.plan.input_len
        );
        if batch == 0 {
            return;
        }
        self.reserve(batch);
        let buffers = Buffers {
            input: SyncPtr(input_nchw.as_ptr().cast_mut()),
            act: self.act.iter_mut().map(|b| SyncPtr(b.as_mut_ptr())).collect(),
            scratch: SyncPtr(self.scratch.as_mut_ptr()),
            zero_row: SyncPtr(self.zero_row.as_ptr().cast_mut()),
            output: SyncPtr(self.output.as_mut_ptr()),
        };
        let (ops, slots, isa) = (&self.plan.ops, &self.plan.slots, self.isa);
        let scratch_len = self.plan.scratch_len.next_multiple_of(16);
        let run = |ctx: parallel::Ctx<'_>,
                   after_layer: &mut dyn FnMut(&parallel::Ctx<'_>, usize, *const f32)| {
            let io = Io {
                // SAFETY: `scratch` holds `threads` areas of `scratch_len` floats.
                scratch: unsafe { buffers.scratch.get().add(ctx.tid * scratch_len) },
                zero_row: buffers.zero_row.get(),
            };
            for (index, op) in ops.iter().enumerate().take(layers.end).skip(layers.start) {
                let slot = slots[index];
                let src = slot.src.map_or(buffers.input.get(), |b| buffers.act[b].get());
                let dst = slot.dst.map_or(buffers.output.get(), |b| buffers.act[b].get());
                let residual = slot
                    .residual
                    .map_or(std::ptr::null(), |b| buffers.act[b].get().cast_const());
                // SAFETY: `isa` was checked in `with_isa`; `reserve(batch)` sized every buffer
                // for `batch` images of the largest layer (`Plan`) and they always hold
                // finite floats; the input was checked above and is only read; layer `index`
                // writes a buffer that no later layer reads before the write
                // (`plan::assign_buffers`: its source and residual are in other buffers, except
                // for squeeze-and-excite, which reads each value before it scales it in place),
                // and no thread starts a layer before the previous one is complete
                // (`Work::for_each`); each thread has its own scratch.
                unsafe { op.run(&ctx.layer(index), isa, &io, src, dst, residual, batch) };
                after_layer(&ctx, index, dst);
            }
        };
        let gate = inspect.is_some().then_some(layers.start);
        self.team.run(
            gate,
            |ctx| run(ctx, &mut |_, _, _| {}),
            |ctx| {
                run(ctx, &mut |ctx, index, dst| {
                    on_layer(index);
                    if let Some(inspect) = inspect.as_mut() {
                        // SAFETY: every unit of layer `index` is finished (`for_each` returned
                        // on this thread), and in a gated pass no thread starts the next layer,
                        // which may write `dst` (squeeze-and-excite scales it in place), before
                        // `inspected(index)` below. The length is the op's output for `batch`
                        // images.
                        let output = unsafe { std::slice::from_raw_parts(dst, batch * ops[index].out_len()) };
                        inspect(index, output);
                        ctx.inspected(index);
                    }
                });
            },
        );
    }
}

/// A look at layer `index`'s output (NHWC, padded channels, all images) during a pass.
type Inspect<'a> = dyn FnMut(usize, &[f32]) + 'a;

/// The engine's buffers as raw pointers that the team's threads share for one forward pass.
struct Buffers {
    /// Read-only: the caller's input.
    input: SyncPtr<f32>,
    act: Vec<SyncPtr<f32>>,
    scratch: SyncPtr<f32>,
    /// Read-only.
    zero_row: SyncPtr<f32>,
    output: SyncPtr<f32>,
}

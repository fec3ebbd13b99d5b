//! A self-contained CPU inference engine for MobileNet v1: f32, batch-first, BatchNorm folded
//! into biases, no candle.
//!
//! # What it computes
//! Howard et al. 2017 factor a standard convolution into a depthwise convolution, eq. 3
//! (`G[k,l,m] = sum_ij K[i,j,m] F[k+i-1, l+j-1, m]`, one `D_K x D_K` filter per input channel,
//! cost eq. 4 `D_K^2 M D_F^2`), followed by a 1x1 pointwise convolution that mixes channels
//! (cost `M N D_F^2`); eq. 5 gives the separable layer's total, `D_K^2 M D_F^2 + M N D_F^2`.
//! At 1.0-MobileNet-224 the pointwise term is ~95% of the mult-adds, the depthwise term ~3%
//! and the stem ~2%, so this is a GEMM engine first: pointwise layers run a register-blocked
//! AVX-512 microkernel ([`gemm`](self::gemm)) and everything else is arranged around it.
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
//! The caller's NCHW input is converted while the stem stages its zero-padded input
//! ([`stem`](self::stem)), so the conversion costs no extra pass.
//!
//! # Execution
//! [`Engine::new`] validates the layers and weights, packs the weights into the kernels'
//! layouts ([`pack`](self::pack)), picks the instruction set once ([`Isa::detect`]) and
//! allocates every activation buffer (two ping-pong buffers sized for the largest layer, a
//! staging buffer for the stem, the logits). A forward pass allocates nothing unless the batch
//! grows. With `threads > 1` each forward pass is one dispatch to the engine's own rayon pool;
//! threads split every layer statically and meet at a spin barrier between layers
//! ([`parallel`](self::parallel)).

mod buffer;
mod depthwise;
mod gemm;
mod head;
mod pack;
mod parallel;
mod plan;
mod pointwise;
mod simd;
mod stem;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::time::{Duration, Instant};

use buffer::AlignedBuf;
use parallel::{SyncPtr, Team};
use plan::{Io, Op, Plan};
pub use simd::Isa;

use crate::arch::Layer;

/// One layer's weights with BatchNorm already folded in, in PyTorch/candle (OIHW) order:
/// conv `[out, in, k, k]`, depthwise `[c * dm, 1, k, k]`, pointwise `[out, in, 1, 1]`,
/// fc `[classes, in]`. Both vectors are empty for the average pool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoldedLayerWeights {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

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
    act: [AlignedBuf; 2],
    stage: AlignedBuf,
    zero_row: AlignedBuf,
    logits: AlignedBuf,
}

impl Engine {
    /// Builds an engine for `layers` (from [`crate::arch::instantiate`]) with one
    /// [`FoldedLayerWeights`] per layer, running on `threads` threads (the caller's thread
    /// counts as one) with the fastest instruction set this CPU has.
    pub fn new(
        layers: &[Layer],
        weights: &[FoldedLayerWeights],
        threads: usize,
    ) -> Result<Engine, EngineError> {
        Engine::with_isa(layers, weights, threads, Isa::detect())
    }

    /// As [`Engine::new`] with a chosen instruction set (to test or time the slower paths).
    pub fn with_isa(
        layers: &[Layer],
        weights: &[FoldedLayerWeights],
        threads: usize,
        isa: Isa,
    ) -> Result<Engine, EngineError> {
        if !isa.is_available() {
            return Err(EngineError::IsaUnavailable(isa));
        }
        let plan = plan::build(layers, weights)?;
        let team = Team::new(threads)?;
        let zero_row = AlignedBuf::zeroed(plan.zero_row_len);
        let mut engine = Engine {
            plan,
            isa,
            team,
            capacity: 0,
            act: [AlignedBuf::zeroed(0), AlignedBuf::zeroed(0)],
            stage: AlignedBuf::zeroed(0),
            zero_row,
            logits: AlignedBuf::zeroed(0),
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

    /// Logits per image.
    pub fn classes(&self) -> usize {
        self.plan.classes
    }

    /// Floats of NCHW input per image (`3 * R * R`).
    pub fn input_len(&self) -> usize {
        self.plan.input_len
    }

    /// Bytes of packed weights.
    pub fn weight_bytes(&self) -> usize {
        self.plan
            .ops
            .iter()
            .map(|op| match op {
                Op::Conv(op) => op.weights.bytes(),
                Op::Depthwise(op) => 4 * (op.taps.taps.len() + op.taps.bias.len()),
                Op::Pointwise(op) => op.weights.bytes(),
                Op::Pool(_) => 0,
                Op::Fc(op) => op.weights.bytes(),
            })
            .sum()
    }

    /// Sizes the buffers for batches up to `batch` now, so that the first forward pass at that
    /// batch does not allocate. Buffers never shrink.
    pub fn reserve(&mut self, batch: usize) {
        if batch <= self.capacity {
            return;
        }
        let plan = &self.plan;
        self.act = [
            AlignedBuf::zeroed(batch * plan.act_len),
            AlignedBuf::zeroed(batch * plan.act_len),
        ];
        self.stage = AlignedBuf::zeroed(batch * plan.stage_len);
        self.logits = AlignedBuf::zeroed(batch * plan.classes);
        self.capacity = batch;
    }

    /// Runs the network on `batch` images, `input_nchw` being `[batch, 3, R, R]`, and returns
    /// the logits `[batch, classes]` (softmax is the caller's).
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
        self.execute(input_nchw, batch, 0..self.plan.ops.len(), |index, _| {
            let now = Instant::now();
            on_layer(index, now - start);
            start = now;
        });
        &self.logits.as_slice()[..batch * self.plan.classes]
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
        self.execute(input_nchw, batch, index..index + 1, |_, _| {});
    }

    /// Runs layers `layers`, showing `inspect` each one's output (NHWC, padded channels, all
    /// images) once every thread has finished it.
    fn execute(
        &mut self,
        input_nchw: &[f32],
        batch: usize,
        layers: Range<usize>,
        mut inspect: impl FnMut(usize, &[f32]),
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
            act: [
                SyncPtr(self.act[0].as_mut_ptr()),
                SyncPtr(self.act[1].as_mut_ptr()),
            ],
            stage: SyncPtr(self.stage.as_mut_ptr()),
            zero_row: SyncPtr(self.zero_row.as_ptr().cast_mut()),
            logits: SyncPtr(self.logits.as_mut_ptr()),
        };
        let (ops, isa) = (&self.plan.ops, self.isa);
        let run = |ctx: parallel::Ctx<'_>, after_layer: &mut dyn FnMut(usize, *const f32)| {
            let io = Io {
                stage: buffers.stage.get(),
                zero_row: buffers.zero_row.get(),
            };
            for (index, op) in ops.iter().enumerate().take(layers.end).skip(layers.start) {
                let src = if index == 0 {
                    buffers.input.get()
                } else {
                    buffers.act[(index - 1) % 2].get()
                };
                let dst = if index + 1 == ops.len() {
                    buffers.logits.get()
                } else {
                    buffers.act[index % 2].get()
                };
                // SAFETY: `isa` was checked in `with_isa`; `reserve(batch)` sized every buffer
                // for `batch` images of the largest layer (`Plan`) and they always hold
                // finite floats; the input was checked above and is only read; layer `index` reads one ping-pong buffer and writes
                // the other, and the barrier after each layer orders the hand-over.
                unsafe { op.run(&ctx, isa, &io, src, dst, batch) };
                ctx.sync();
                after_layer(index, dst);
            }
        };
        self.team.run(
            |ctx| run(ctx, &mut |_, _| {}),
            |ctx| {
                run(ctx, &mut |index, dst| {
                    // SAFETY: every thread has finished layer `index` (barrier) and the next
                    // layer only reads `dst`; it is written again two layers on, which needs
                    // this thread. The length is the op's output for `batch` images.
                    let output = unsafe { std::slice::from_raw_parts(dst, batch * ops[index].out_len()) };
                    inspect(index, output);
                });
            },
        );
    }
}

/// The engine's buffers as raw pointers that the team's threads share for one forward pass.
struct Buffers {
    /// Read-only: the caller's input.
    input: SyncPtr<f32>,
    act: [SyncPtr<f32>; 2],
    stage: SyncPtr<f32>,
    /// Read-only.
    zero_row: SyncPtr<f32>,
    logits: SyncPtr<f32>,
}

//! A prepared quantized network and its forward pass: TFLite's uint8 graph for MobileNet v1
//! and v2 (README section 1), op by op.

use std::ops::Range;
use std::sync::Mutex;

use super::add::{AddParams, AddQuant};
use super::fixed_point::{QuantizedMultiplier, activation_range};
use super::kernels::{self, DepthwiseWeights, GemmWeights, Geometry, Requantize, StemWeights};
use super::params::{LayerParams, NetworkParams, add_name, supported_shape};
use super::softmax::SoftmaxParams;
use super::{ConvParams, Quant, QuantError, reference};
use crate::arch::{Layer, LayerKind, Shape, instantiate};
use crate::engine::parallel::{Ctx, SyncPtr, Team, UNITS_PER_THREAD};
use crate::nn::SplitMix64;

/// The largest reduction length (taps x input channels) a convolution may have. With biases below
/// [`MAX_BIAS`] every partial sum of every kernel stays within int32: the u8 x s8 formulation adds
/// `sum x w'` (at most 255 * 128 per tap), `zx sum (w - zw)` (255 * 255) and `(zw - 128) sum x`
/// (128 * 255) to the bias: 2^29 + 130,305 * 12,288 < 2^31.
pub const MAX_REDUCTION: usize = 12_288;
/// The largest magnitude of an int32 bias (the shipped models' are below 111,000).
pub const MAX_BIAS: u32 = 1 << 29;

/// Which convolution kernels run. All give the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// The portable kernels: im2col + u8 x s8 GEMM for full and pointwise
    /// convolutions, a direct depthwise kernel.
    Portable,
    /// The straightforward `(x - zx)(w - zw)` loops on the uint8 weights (slow; for tests).
    Reference,
    /// The AVX-512 kernels, x86-64 with AVX-512 VNNI only: the GEMM on `vpdpbusd`, the depthwise
    /// convolution and both requantizations in 512-bit vectors.
    Vnni,
    /// The AVX2 kernels, x86-64 with AVX2: the same GEMM on `vpmaddwd` (no `vpmaddubsw`, whose
    /// i16 sums saturate), depthwise, ADD and requantization in 256-bit vectors.
    Avx2,
    /// The AMX kernels, x86-64 with AMX-INT8 (and AVX-512 VNNI) where the OS grants the tile
    /// state: the GEMM on `tdpbusd` tiles, the other layers on the [`Kernels::Vnni`] kernels.
    Amx,
}

impl Kernels {
    /// Whether this CPU runs these kernels.
    pub fn available(self) -> bool {
        match self {
            Kernels::Portable | Kernels::Reference => true,
            #[cfg(target_arch = "x86_64")]
            Kernels::Vnni => super::vnni::available(),
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => super::avx2::available(),
            #[cfg(target_arch = "x86_64")]
            Kernels::Amx => super::amx::available(),
            #[cfg(not(target_arch = "x86_64"))]
            Kernels::Vnni | Kernels::Avx2 | Kernels::Amx => false,
        }
    }

    /// Why this CPU does not run these kernels (None where it does), for messages.
    pub fn unavailable_reason(self) -> Option<String> {
        if self.available() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        if self == Kernels::Amx {
            return Some(super::amx::support().to_string());
        }
        Some(match self {
            Kernels::Vnni => "this CPU lacks AVX-512 VNNI".into(),
            Kernels::Avx2 => "this CPU lacks AVX2 with FMA".into(),
            _ => "this CPU cannot run them".into(),
        })
    }

    /// The fastest kernels this CPU runs: AMX, else VNNI, else AVX2, else the portable ones.
    /// (This is the int8 precision's one ISA dispatch point.)
    pub fn best() -> Kernels {
        [Kernels::Amx, Kernels::Vnni, Kernels::Avx2]
            .into_iter()
            .find(|k| k.available())
            .unwrap_or(Kernels::Portable)
    }

    /// The kernel sets this CPU runs that use their own instructions (not [`Kernels::Reference`]),
    /// fastest last: what the tests compare byte for byte.
    pub fn fast() -> Vec<Kernels> {
        [Kernels::Portable, Kernels::Avx2, Kernels::Vnni, Kernels::Amx]
            .into_iter()
            .filter(|k| k.available())
            .collect()
    }

    /// The kernels behind these kernels' name.
    fn set(self) -> KernelSet {
        #[cfg(target_arch = "x86_64")]
        if self == Kernels::Avx2 {
            return KernelSet {
                gemm: super::avx2::gemm,
                depthwise: super::avx2::depthwise,
                add: super::avx2::add,
                stem: None,
            };
        }
        #[cfg(target_arch = "x86_64")]
        if self == Kernels::Amx {
            return KernelSet {
                gemm: super::amx::gemm,
                depthwise: super::vnni::depthwise,
                add: super::vnni::add,
                stem: Some(super::vnni::stem),
            };
        }
        #[cfg(target_arch = "x86_64")]
        if self == Kernels::Vnni {
            return KernelSet {
                gemm: super::vnni::gemm,
                depthwise: super::vnni::depthwise,
                add: super::vnni::add,
                stem: Some(super::vnni::stem),
            };
        }
        KernelSet {
            gemm: kernels::gemm,
            depthwise: kernels::depthwise,
            add: AddParams::run,
            stem: None,
        }
    }
}

/// What sees every layer's output in a traced run.
type Trace<'a> = &'a mut dyn FnMut(&str, &[u8]);

type GemmFn = fn(&[u8], usize, &GemmWeights, &Requantize, &mut [u8]);
type DepthwiseFn = fn(&[u8], &Geometry, &DepthwiseWeights, i32, &Requantize, Range<usize>, &mut [u8]);
type AddFn = fn(&AddParams, &[u8], &[u8], &mut [u8]);
type StemFn = fn(&[u8], &Geometry, &StemWeights, i32, &Requantize, Range<usize>, &mut [u8]);

/// One instruction set's kernels.
#[derive(Clone, Copy)]
struct KernelSet {
    gemm: GemmFn,
    depthwise: DepthwiseFn,
    add: AddFn,
    /// A direct kernel for a 3x3 convolution on 3 channels ([`ConvKernel::Im2col`]'s stem
    /// weights), where the set has one.
    stem: Option<StemFn>,
}

/// Where the forward pass stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The pooled features before the logits: `[batch, C]` uint8, quantized as
    /// [`QuantizedNetwork::features_quant`].
    Features,
    /// The logits: `[batch, classes]` uint8, quantized as [`QuantizedNetwork::logits_quant`].
    Logits,
    /// The softmax: `[batch, classes]` uint8, probability = q / 256.
    Probabilities,
}

/// The constants a convolution's Prepare derives, as TFLite would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvConstants {
    /// From the FLOAT32 product `s_in * s_w` divided by `s_out`.
    pub multiplier: QuantizedMultiplier,
    pub act_min: u8,
    pub act_max: u8,
    /// The residual ADD after the layer: its constants and the index of the layer whose input
    /// it adds.
    pub add: Option<(AddParams, usize)>,
}

/// The form of a layer's requantization in the vector kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStage {
    /// `floor(fma(acc, m, c))` in single precision, proved equal for every int32 accumulator
    /// at load (module `float_form`): three instructions per 16 accumulators.
    Float,
    /// TFLite's 64-bit fixed point (no float form was proved): eight.
    FixedPoint,
}

/// A convolution ready to run.
struct ConvOp {
    geometry: Geometry,
    constants: ConvConstants,
    requantize: Requantize,
    input_zero_point: i32,
    kernel: ConvKernel,
}

enum ConvKernel {
    /// A full convolution through im2col (out-of-image taps hold the input zero point), and for
    /// a 3x3 convolution on 3 channels with at most 64 outputs (the stem) the weights of the
    /// direct kernel the instruction set may have instead.
    Im2col(GemmWeights, Option<StemWeights>),
    /// A 1x1 convolution straight on the NHWC pixels (pointwise layers and the logits).
    Pointwise(GemmWeights),
    /// A depthwise convolution (boxed: its packings for each vector width make it several
    /// times the size of the other variants).
    Depthwise(Box<DepthwiseWeights>),
}

enum Op {
    Conv(Box<ConvOp>),
    Pool,
}

/// A quantized MobileNet v1 or v2 ready to run: the description it was built from, each
/// convolution's packed weights and constants, and the softmax's constants.
pub struct QuantizedNetwork {
    params: NetworkParams,
    layers: Vec<Layer>,
    ops: Vec<Op>,
    features: Quant,
    softmax: SoftmaxParams,
    /// The forward pass as steps over buffers.
    plan: Plan,
    /// The threads of [`Self::with_threads`]; `None` for one.
    team: Option<Mutex<Team>>,
    threads: usize,
    /// The buffers of the last pass, reused by the next one that finds them free.
    workspace: Mutex<Vec<u8>>,
}

impl std::fmt::Debug for QuantizedNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QuantizedNetwork({}, {} threads)",
            self.params.config.label(),
            self.threads()
        )
    }
}

/// Where a step reads a tensor: the caller's input or one of the plan's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tensor {
    Input,
    Buffer(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepKind {
    /// The layer's convolution or pool.
    Layer,
    /// The residual ADD after the layer: the layer's output plus `skip`.
    Add { skip: Tensor },
}

/// One op of the forward pass: layer `layer`'s op or its ADD, from `input` into buffer `output`
/// (`len` bytes per image).
#[derive(Debug, Clone, Copy)]
struct Step {
    layer: usize,
    kind: StepKind,
    input: Tensor,
    output: usize,
    len: usize,
}

/// The steps and the buffers they use: a buffer is reused once the tensor it holds has been
/// read for the last time, so a step's output never shares a buffer with a tensor it reads or
/// one a later step still needs.
#[derive(Debug, Clone)]
struct Plan {
    steps: Vec<Step>,
    /// Bytes per image of each buffer.
    buffers: Vec<usize>,
}

impl Plan {
    fn new(layers: &[Layer], ops: &[Op]) -> Plan {
        // Tensors: 0 is the input; each step produces the next one.
        let mut steps: Vec<(usize, StepKind, usize, Option<usize>, usize)> = Vec::new(); // layer, kind, input, skip, len
        let mut layer_input = Vec::with_capacity(layers.len());
        let mut current = 0;
        for (index, (layer, op)) in layers.iter().zip(ops).enumerate() {
            layer_input.push(current);
            let len = match op {
                Op::Conv(op) => op.geometry.output_len(),
                Op::Pool => layer.input.c as usize,
            };
            steps.push((index, StepKind::Layer, current, None, len));
            current = steps.len();
            if let Some((_, from)) = op.add() {
                let skip = layer_input[from];
                steps.push((
                    index,
                    StepKind::Add { skip: Tensor::Input },
                    current,
                    Some(skip),
                    len,
                ));
                current = steps.len();
            }
        }
        // The last step reading each tensor (the final output lives to the end).
        let mut last_use = vec![0; steps.len() + 1];
        for (s, &(_, _, input, skip, _)) in steps.iter().enumerate() {
            last_use[input] = s + 1;
            if let Some(skip) = skip {
                last_use[skip] = s + 1;
            }
        }
        for l in last_use.iter_mut().skip(1) {
            *l = (*l).max(steps.len() + 1);
        }
        // Step s produces tensor s + 1; `busy[b]`: the step after which buffer b is free.
        let mut buffers: Vec<usize> = Vec::new();
        let mut busy: Vec<usize> = Vec::new();
        let mut holder = vec![Tensor::Input; steps.len() + 1];
        let mut planned = Vec::with_capacity(steps.len());
        for (s, &(layer, kind, input, skip, len)) in steps.iter().enumerate() {
            let step = s + 1;
            let free = (0..buffers.len()).find(|&b| busy[b] < step);
            let b = free.unwrap_or_else(|| {
                buffers.push(0);
                busy.push(0);
                buffers.len() - 1
            });
            buffers[b] = buffers[b].max(len);
            busy[b] = last_use[step];
            holder[step] = Tensor::Buffer(b);
            let kind = match kind {
                StepKind::Layer => StepKind::Layer,
                StepKind::Add { .. } => StepKind::Add {
                    skip: holder[skip.expect("an ADD has a skip input")],
                },
            };
            planned.push(Step {
                layer,
                kind,
                input: holder[input],
                output: b,
                len,
            });
        }
        Plan {
            steps: planned,
            buffers,
        }
    }
}

impl QuantizedNetwork {
    /// Validates `params` against `arch::instantiate(&params.config)` and prepares every op
    /// (TFLite's Prepare: multipliers, activation ranges, ADD and softmax constants), packing
    /// the weights for the portable kernels. Each layer's input quantization must equal the
    /// output quantization of the tensor it reads (TFLite's graph shares that tensor).
    pub fn new(params: NetworkParams) -> Result<Self, QuantError> {
        let layers = instantiate(&params.config);
        if layers.len() != params.layers.len() {
            return Err(QuantError::Invalid {
                layer: params.config.label(),
                problem: format!(
                    "{} layer parameters for {} layers",
                    params.layers.len(),
                    layers.len()
                ),
            });
        }
        let mut ops = Vec::with_capacity(layers.len());
        // The quantization of the tensor flowing into each layer.
        let mut inputs: Vec<Quant> = Vec::with_capacity(layers.len());
        let mut current: Option<Quant> = None;
        for (layer, layer_params) in layers.iter().zip(&params.layers) {
            let invalid = |problem: String| QuantError::Invalid {
                layer: layer.name.clone(),
                problem,
            };
            let shape = supported_shape(layer)?;
            match (shape, layer_params) {
                (None, LayerParams::Pool) => {
                    let input =
                        current.ok_or_else(|| invalid("the network cannot start with a pool".into()))?;
                    inputs.push(input);
                    if layer.input.h != layer.kernel || layer.input.w != layer.kernel {
                        return Err(invalid("only a global average pool is supported".into()));
                    }
                    ops.push(Op::Pool);
                }
                (Some(shape), LayerParams::Conv { conv, residual }) => {
                    let input = *current.get_or_insert(conv.input);
                    inputs.push(input);
                    if conv.input != input {
                        return Err(invalid(format!(
                            "input quantization {} differs from the {} of the tensor it reads",
                            conv.input, input
                        )));
                    }
                    let mut op = prepare_conv(layer, &shape, conv).map_err(invalid)?;
                    current = Some(conv.output);
                    match (layer.residual_from, residual) {
                        (None, None) => {}
                        (Some(from), Some(add)) => {
                            op.constants.add = Some((
                                prepare_add(add, conv.output, inputs[from]).map_err(invalid)?,
                                from,
                            ));
                            current = Some(add.output);
                        }
                        (Some(_), None) => {
                            return Err(invalid("a residual layer without ADD parameters".into()));
                        }
                        (None, Some(_)) => {
                            return Err(invalid("ADD parameters on a layer without residual".into()));
                        }
                    }
                    ops.push(Op::Conv(Box::new(op)));
                }
                (None, LayerParams::Conv { .. }) => {
                    return Err(invalid("a pool given convolution parameters".into()));
                }
                (Some(_), LayerParams::Pool) => {
                    return Err(invalid("a convolution given no parameters".into()));
                }
            }
        }
        let last = layers.last().filter(|l| l.kind == LayerKind::Fc);
        let (Some(logits), Some(features)) = (last, inputs.last().copied()) else {
            return Err(QuantError::Invalid {
                layer: params.config.label(),
                problem: "the network does not end with its logits".into(),
            });
        };
        let logits_quant = current.unwrap_or(features);
        let softmax = SoftmaxParams::new(1.0, logits_quant.scale).ok_or_else(|| QuantError::Invalid {
            layer: logits.name.clone(),
            problem: format!(
                "output scale {} is too small for TFLite's softmax",
                logits_quant.scale
            ),
        })?;
        let plan = Plan::new(&layers, &ops);
        Ok(QuantizedNetwork {
            params,
            layers,
            ops,
            features,
            softmax,
            plan,
            team: None,
            threads: 1,
            workspace: Mutex::new(Vec::new()),
        })
    }

    /// The same network run by `threads` threads (the calling one and `threads - 1` workers):
    /// each layer's rows, pixels or elements are shared out, with the same bytes as one thread.
    pub fn with_threads(mut self, threads: usize) -> Result<Self, QuantError> {
        if threads == 0 {
            return Err(QuantError::Threads("threads must be at least 1".into()));
        }
        self.team = if threads > 1 {
            let team =
                Team::new(threads, self.plan.steps.len()).map_err(|e| QuantError::Threads(e.to_string()))?;
            Some(Mutex::new(team))
        } else {
            None
        };
        self.threads = threads;
        Ok(self)
    }

    /// The threads a forward pass uses.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The description the network was built from.
    pub fn params(&self) -> &NetworkParams {
        &self.params
    }

    /// The layers, as `arch::instantiate` gives them.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The constants of layer `index` (`None` for the pool).
    pub fn conv_constants(&self, index: usize) -> Option<&ConvConstants> {
        match &self.ops[index] {
            Op::Conv(op) => Some(&op.constants),
            Op::Pool => None,
        }
    }

    /// How the vector kernels requantize layer `index`'s accumulators, the same bytes either way
    /// (`None` for the pool): read off the layer's requantization, which holds the proved float
    /// form or not.
    pub fn output_stage(&self, index: usize) -> Option<OutputStage> {
        match &self.ops[index] {
            Op::Conv(op) => Some(match op.requantize.float {
                Some(_) => OutputStage::Float,
                None => OutputStage::FixedPoint,
            }),
            Op::Pool => None,
        }
    }

    /// The softmax's constants.
    pub fn softmax_params(&self) -> SoftmaxParams {
        self.softmax
    }

    /// One input image: height x width x 3, uint8 NHWC, quantized as [`Self::input_quant`].
    pub fn input_shape(&self) -> Shape {
        self.layers[0].input
    }

    pub fn input_quant(&self) -> Quant {
        match &self.params.layers[0] {
            LayerParams::Conv { conv, .. } => conv.input,
            LayerParams::Pool => unreachable!("validated: the network starts with a convolution"),
        }
    }

    /// The quantization of the pooled features ([`Output::Features`]).
    pub fn features_quant(&self) -> Quant {
        self.features
    }

    /// The quantization of the logits ([`Output::Logits`]).
    pub fn logits_quant(&self) -> Quant {
        match self.params.layers.last() {
            Some(LayerParams::Conv { conv, .. }) => conv.output,
            _ => unreachable!("validated: the network ends with its logits"),
        }
    }

    /// Values per image of `output`.
    pub fn output_len(&self, output: Output) -> usize {
        let logits = &self.layers[self.layers.len() - 1];
        match output {
            Output::Features => logits.input.c as usize,
            Output::Logits | Output::Probabilities => logits.output.c as usize,
        }
    }

    /// `batch` images of uniformly random uint8 values, deterministic in `seed`: input for
    /// timing and for comparing kernels.
    pub fn random_input(&self, batch: usize, seed: u64) -> Vec<u8> {
        let mut rng = SplitMix64(seed);
        let len = batch * self.input_shape().elements() as usize;
        (0..len).map(|_| (rng.next_u64() >> 56) as u8).collect()
    }

    /// Runs `batch` images (`input`: `batch x H x W x 3` uint8, NHWC) with the fastest kernels
    /// this CPU runs ([`Kernels::best`]) up to `output`, on [`Self::threads`] threads.
    pub fn run(&self, input: &[u8], batch: usize, output: Output) -> Result<Vec<u8>, QuantError> {
        self.forward(input, batch, output, Kernels::best(), None)
    }

    /// As [`Self::run`] with a choice of kernels (the same bytes on every set).
    pub fn run_with(
        &self,
        input: &[u8],
        batch: usize,
        output: Output,
        kernels: Kernels,
    ) -> Result<Vec<u8>, QuantError> {
        self.forward(input, batch, output, kernels, None)
    }

    /// As [`Self::run`] with a choice of kernels; `trace` sees every layer's uint8 output (NHWC,
    /// the whole batch) under the layer's name, each residual ADD's as `block_k.add` and the
    /// softmax's as `softmax`.
    pub fn run_traced(
        &self,
        input: &[u8],
        batch: usize,
        output: Output,
        kernels: Kernels,
        trace: &mut dyn FnMut(&str, &[u8]),
    ) -> Result<Vec<u8>, QuantError> {
        self.forward(input, batch, output, kernels, Some(trace))
    }

    fn forward(
        &self,
        input: &[u8],
        batch: usize,
        output: Output,
        kernels: Kernels,
        trace: Option<Trace<'_>>,
    ) -> Result<Vec<u8>, QuantError> {
        if !kernels.available() {
            return Err(QuantError::Kernels(kernels));
        }
        self.forward_set(
            input,
            batch,
            output,
            kernels.set(),
            kernels == Kernels::Reference,
            trace,
        )
    }

    /// [`Self::forward`] on a set of kernels (`reference`: the straightforward loops instead).
    fn forward_set(
        &self,
        input: &[u8],
        batch: usize,
        output: Output,
        set: KernelSet,
        reference: bool,
        mut trace: Option<Trace<'_>>,
    ) -> Result<Vec<u8>, QuantError> {
        let shape = self.input_shape();
        let expected = batch * shape.elements() as usize;
        if batch == 0 || input.len() != expected {
            return Err(QuantError::Input {
                got: input.len(),
                batch,
                shape,
            });
        }
        // The steps to run: up to the pool for the features.
        let steps = match output {
            Output::Features => {
                let fc = self.layers.iter().position(|l| l.kind == LayerKind::Fc);
                self.plan.steps.iter().take_while(|s| Some(s.layer) != fc).count()
            }
            Output::Logits | Output::Probabilities => self.plan.steps.len(),
        };
        // The buffers: the cached workspace if no other pass holds it.
        let offsets: Vec<usize> = self
            .plan
            .buffers
            .iter()
            .scan(0, |at, &len| {
                let start = *at;
                *at += len * batch;
                Some(start)
            })
            .collect();
        let total: usize = self.plan.buffers.iter().map(|len| len * batch).sum();
        let mut cached = self.workspace.try_lock().ok();
        let mut own = Vec::new();
        let workspace: &mut Vec<u8> = match cached.as_deref_mut() {
            Some(w) => w,
            None => &mut own,
        };
        if workspace.len() < total {
            workspace.resize(total, 0);
        }
        let pass = Pass {
            network: self,
            set,
            reference,
            input,
            batch,
            steps,
            offsets: &offsets,
            workspace: SyncPtr(workspace.as_mut_ptr()),
        };
        let gate = trace.is_some().then_some(0);
        let main = |ctx: Ctx<'_>| {
            pass.steps(ctx, &mut |index, values| {
                if let Some(trace) = trace.as_deref_mut() {
                    let step = &self.plan.steps[index];
                    let layer = &self.layers[step.layer];
                    match step.kind {
                        StepKind::Layer => trace(&layer.name, values),
                        StepKind::Add { .. } => trace(&add_name(layer), values),
                    }
                }
            })
        };
        let worker = |ctx: Ctx<'_>| pass.steps(ctx, &mut |_, _| {});
        let team = self.team.as_ref().and_then(|team| team.try_lock().ok());
        match team {
            Some(mut team) => team.run(gate, worker, main),
            None => Team::new(1, steps)
                .map_err(|e| QuantError::Threads(e.to_string()))?
                .run(None, worker, main),
        }
        let result = match steps.checked_sub(1) {
            // SAFETY: every step has finished (`Team::run` returned); the last one's output
            // lies inside the workspace.
            Some(last) => unsafe {
                pass.tensor(
                    Tensor::Buffer(self.plan.steps[last].output),
                    self.plan.steps[last].len,
                )
            }
            .to_vec(),
            None => input.to_vec(),
        };
        if output != Output::Probabilities {
            return Ok(result);
        }
        let mut probabilities = vec![0; result.len()];
        self.softmax
            .run(&result, result.len() / batch, &mut probabilities);
        if let Some(trace) = trace {
            trace("softmax", &probabilities);
        }
        Ok(probabilities)
    }
}

/// One forward pass in progress: what every thread needs to run the steps.
struct Pass<'a> {
    network: &'a QuantizedNetwork,
    set: KernelSet,
    reference: bool,
    input: &'a [u8],
    batch: usize,
    /// Steps to run (a prefix of the plan's).
    steps: usize,
    /// Each buffer's start in the workspace.
    offsets: &'a [usize],
    workspace: SyncPtr<u8>,
}

// SAFETY: the workspace pointer is shared by the threads of one pass, which write disjoint
// ranges of a step's output buffer and read only tensors no step of the pass writes until
// their last reader has finished (see `Pass::steps`); the rest is shared references.
unsafe impl Sync for Pass<'_> {}

/// Rows per unit of work of the GEMMs (a whole number of the VNNI tile's rows).
const ROW_ALIGN: usize = 4;

/// Units of work of a parallel GEMM: every unit streams all the layer's weights through the
/// cache once per tile of rows it runs, so a unit gets at least [`GEMM_UNIT_ROWS`] rows where
/// the layer has them (fewer units, one per thread at least), and at most eight units per
/// thread balance the load. On the 7x7 and 14x14 layers (49 and 196 rows against 256 KiB-1 MiB
/// of weights) 4-row units re-streamed the weights 12-16 times per layer. The units are as equal
/// as whole tiles of [`ROW_ALIGN`] rows allow (49 rows on two threads: 24 and 25, where rounding
/// each unit up to a tile gave 28 and 21 and the 7x7 layers waited for the larger).
fn gemm_units(rows: usize, threads: usize) -> usize {
    (rows / GEMM_UNIT_ROWS / threads.max(1)).clamp(1, UNITS_PER_THREAD) * threads.max(1)
}

/// See [`gemm_units`].
const GEMM_UNIT_ROWS: usize = 64;

/// Units of a split by output rows (stem, im2col, depthwise), as (rows per unit, units): at
/// least four rows each, since each unit pads its first input rows afresh (the depthwise kernel
/// keeps them across its rows), and equal where the rows allow: `threads x m` units for the
/// largest `m <= UNITS_PER_THREAD` that divides them (14 rows on two threads: 7 and 7, where
/// four-row units gave one thread 8 rows and the other 6); else four-row units, as many as
/// `Work::for_each` cuts.
fn output_row_units(rows: usize, threads: usize) -> (usize, usize) {
    (1..=UNITS_PER_THREAD)
        .rev()
        .map(|m| threads.max(1) * m)
        .find(|&parts| rows.is_multiple_of(parts) && rows / parts >= 4)
        .map_or((4, UNITS_PER_THREAD * threads.max(1)), |parts| {
            (rows / parts, parts)
        })
}

/// Bytes per unit of work of the ADDs (one vector).
const BYTE_ALIGN: usize = 64;

impl Pass<'_> {
    /// The whole batch of `tensor`, `len` bytes per image.
    ///
    /// # Safety
    /// No thread may write the tensor's buffer while the slice lives.
    unsafe fn tensor(&self, tensor: Tensor, len: usize) -> &[u8] {
        match tensor {
            Tensor::Input => self.input,
            // SAFETY: the buffer lies inside the workspace (sized for the plan's buffers at
            // this batch); the caller rules out writers.
            Tensor::Buffer(b) => unsafe {
                std::slice::from_raw_parts(self.workspace.get().add(self.offsets[b]), len * self.batch)
            },
        }
    }

    /// Bytes `range` of buffer `b`, to write.
    ///
    /// # Safety
    /// No other slice of that range may live meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn output(&self, b: usize, range: Range<usize>) -> &mut [u8] {
        // SAFETY: inside the workspace (the range is within the buffer's batch of outputs);
        // exclusive by the caller's contract.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.workspace.get().add(self.offsets[b] + range.start),
                range.len(),
            )
        }
    }

    /// Runs the steps on this thread's share of each; `after(step, output)` is called on
    /// thread 0 once every thread has finished the step.
    fn steps(&self, ctx: Ctx<'_>, after: &mut dyn FnMut(usize, &[u8])) {
        let network = self.network;
        for (index, step) in network.plan.steps[..self.steps].iter().enumerate() {
            let work = ctx.layer(index);
            let layer = &network.layers[step.layer];
            let in_len = match step.input {
                Tensor::Input => network.input_shape().elements() as usize,
                Tensor::Buffer(_) => match &network.ops[step.layer] {
                    Op::Conv(op) if step.kind == StepKind::Layer => op.geometry.input_len(),
                    Op::Pool if step.kind == StepKind::Layer => {
                        (layer.input.h * layer.input.w * layer.input.c) as usize
                    }
                    _ => step.len,
                },
            };
            // SAFETY: the plan gives a step's output a buffer that holds none of the tensors
            // it reads, and reuses a buffer only after the last step reading its tensor: every
            // thread has passed that step's `for_each`, which returns once all its units are
            // done. So while this step runs, no one writes what it reads.
            let x = unsafe { self.tensor(step.input, in_len) };
            // Units write disjoint ranges of the output (below), each through its own slice.
            match (step.kind, &network.ops[step.layer]) {
                (StepKind::Add { skip }, Op::Conv(op)) => {
                    let (add, _) = op.constants.add.expect("planned for an ADD");
                    // SAFETY: as for `x`.
                    let skip = unsafe { self.tensor(skip, step.len) };
                    work.for_each(step.len * self.batch, BYTE_ALIGN, |range| {
                        // SAFETY: this unit's range only.
                        let out = unsafe { self.output(step.output, range.clone()) };
                        (self.set.add)(&add, &x[range.clone()], &skip[range], out);
                    });
                }
                (StepKind::Layer, Op::Pool) => {
                    let (pixels, channels) =
                        ((layer.input.h * layer.input.w) as usize, layer.input.c as usize);
                    work.for_each(self.batch, 1, |images| {
                        // SAFETY: this unit's images only.
                        let out = unsafe {
                            self.output(step.output, images.start * channels..images.end * channels)
                        };
                        let x = &x[images.start * pixels * channels..images.end * pixels * channels];
                        kernels::global_average_pool(x, pixels, channels, out);
                    });
                }
                (StepKind::Layer, Op::Conv(op)) => self.conv(op, &work, x, step),
                (StepKind::Add { .. }, Op::Pool) => unreachable!("a pool has no ADD"),
            }
            if ctx.tid == 0 {
                // SAFETY: the step is done and no thread writes its output before thread 0
                // marks it inspected (when gated) or a later step reuses the buffer.
                after(index, unsafe {
                    self.tensor(Tensor::Buffer(step.output), step.len)
                });
                ctx.inspected(index);
            }
        }
    }

    /// The unit of work of the kernels split by output rows (stem, im2col, depthwise): on this
    /// thread's share of the batch's output rows, `f(image's input, its output rows, their
    /// output)` for each image the share touches.
    fn for_each_output_rows(
        &self,
        work: &crate::engine::parallel::Work<'_>,
        g: &Geometry,
        x: &[u8],
        output: usize,
        mut f: impl FnMut(&[u8], Range<usize>, &mut [u8]),
    ) {
        let (input_len, output_len) = (g.input_len(), g.output_len());
        let row = g.out_w * g.out_c;
        // Units of at least four output rows, as equal as the rows allow (output_row_units).
        let total = self.batch * g.out_h;
        let (align, units) = output_row_units(total, work.threads);
        work.for_each_units(total, align, units, |rows| {
            for (image, oy) in image_rows(rows, g.out_h) {
                // SAFETY: this unit's output rows only (the units of `work` are disjoint).
                let out = unsafe {
                    self.output(
                        output,
                        image * output_len + oy.start * row..image * output_len + oy.end * row,
                    )
                };
                f(&x[image * input_len..][..input_len], oy, out);
            }
        });
    }

    /// One convolution's share.
    fn conv(&self, op: &ConvOp, work: &crate::engine::parallel::Work<'_>, x: &[u8], step: &Step) {
        let g = &op.geometry;
        let (input_len, output_len) = (g.input_len(), g.output_len());
        let params = match &self.network.params.layers[step.layer] {
            LayerParams::Conv { conv, .. } => conv,
            LayerParams::Pool => unreachable!("validated in new"),
        };
        if self.reference {
            let depthwise = matches!(op.kernel, ConvKernel::Depthwise(_));
            work.for_each(self.batch, 1, |images| {
                for i in images {
                    // SAFETY: this unit's images only.
                    let out = unsafe { self.output(step.output, i * output_len..(i + 1) * output_len) };
                    reference::conv(
                        &x[i * input_len..][..input_len],
                        g,
                        depthwise,
                        params,
                        &op.requantize,
                        out,
                    );
                }
            });
            return;
        }
        match &op.kernel {
            ConvKernel::Pointwise(w) => {
                let rows = self.batch * g.in_h * g.in_w;
                work.for_each_units(rows, ROW_ALIGN, gemm_units(rows, work.threads), |rows| {
                    // SAFETY: this unit's rows only.
                    let out = unsafe { self.output(step.output, rows.start * w.o..rows.end * w.o) };
                    (self.set.gemm)(
                        &x[rows.start * w.k..rows.end * w.k],
                        rows.len(),
                        w,
                        &op.requantize,
                        out,
                    );
                });
            }
            ConvKernel::Im2col(_, Some(stem)) if self.set.stem.is_some() => {
                let run = self.set.stem.expect("checked");
                self.for_each_output_rows(work, g, x, step.output, |x, oy, out| {
                    run(x, g, stem, op.input_zero_point, &op.requantize, oy, out);
                });
            }
            ConvKernel::Im2col(w, _) => {
                // The input zero point is a uint8 value (checked in prepare_conv).
                let pad = op.input_zero_point as u8;
                let mut cols = Vec::new();
                self.for_each_output_rows(work, g, x, step.output, |x, oy, out| {
                    kernels::im2col(x, g, pad, oy.clone(), &mut cols);
                    (self.set.gemm)(&cols, oy.len() * g.out_w, w, &op.requantize, out);
                });
            }
            ConvKernel::Depthwise(w) => {
                self.for_each_output_rows(work, g, x, step.output, |x, oy, out| {
                    (self.set.depthwise)(x, g, w, op.input_zero_point, &op.requantize, oy, out);
                });
            }
        }
    }
}

/// Rows `rows` of a batch of images of `height` rows each, as (image, rows of that image).
fn image_rows(rows: Range<usize>, height: usize) -> impl Iterator<Item = (usize, Range<usize>)> {
    let (first, last) = (rows.start / height, rows.end.div_ceil(height));
    (first..last).map(move |image| {
        let start = rows.start.max(image * height) - image * height;
        let end = rows.end.min((image + 1) * height) - image * height;
        (image, start..end)
    })
}

impl Op {
    /// The residual ADD after this op, if any.
    fn add(&self) -> Option<(AddParams, usize)> {
        match self {
            Op::Conv(op) => op.constants.add,
            Op::Pool => None,
        }
    }
}

impl ConvOp {
    /// The layer's output for the whole batch on one thread (for tests).
    #[cfg(test)]
    fn run(&self, x: &[u8], batch: usize, kernels: Kernels, params: &ConvParams) -> Vec<u8> {
        let g = &self.geometry;
        let mut out = vec![0; batch * g.output_len()];
        let images = x
            .chunks_exact(g.input_len())
            .zip(out.chunks_exact_mut(g.output_len()));
        let set = kernels.set();
        match (kernels, &self.kernel) {
            (Kernels::Reference, kernel) => {
                let depthwise = matches!(kernel, ConvKernel::Depthwise(_));
                for (image, out) in images {
                    reference::conv(image, g, depthwise, params, &self.requantize, out);
                }
            }
            (_, ConvKernel::Pointwise(w)) => {
                (set.gemm)(x, batch * g.in_h * g.in_w, w, &self.requantize, &mut out);
            }
            (_, ConvKernel::Im2col(_, Some(stem))) if set.stem.is_some() => {
                for (image, out) in images {
                    (set.stem.expect("checked"))(
                        image,
                        g,
                        stem,
                        self.input_zero_point,
                        &self.requantize,
                        0..g.out_h,
                        out,
                    );
                }
            }
            (_, ConvKernel::Im2col(w, _)) => {
                let mut cols = Vec::new();
                for (image, out) in images {
                    kernels::im2col(image, g, self.input_zero_point as u8, 0..g.out_h, &mut cols);
                    (set.gemm)(&cols, g.out_h * g.out_w, w, &self.requantize, out);
                }
            }
            (_, ConvKernel::Depthwise(w)) => {
                for (image, out) in images {
                    (set.depthwise)(
                        image,
                        g,
                        w,
                        self.input_zero_point,
                        &self.requantize,
                        0..g.out_h,
                        out,
                    );
                }
            }
        }
        out
    }
}

/// A uint8 quantization's sanity: positive finite scale, zero point in [0, 255].
fn check_quant(what: &str, q: Quant) -> Result<(), String> {
    if !(q.scale.is_finite() && q.scale > 0.0 && (0..=255).contains(&q.zero_point)) {
        return Err(format!("{what} quantization {q} is not a uint8 quantization"));
    }
    Ok(())
}

/// TFLite's Prepare for one convolution, and its weights packed for the portable kernels.
fn prepare_conv(layer: &Layer, shape: &[usize], conv: &ConvParams) -> Result<ConvOp, String> {
    check_quant("input", conv.input)?;
    check_quant("output", conv.output)?;
    check_quant("weight", conv.weight_quant)?;
    let expected: usize = shape.iter().product();
    if conv.weight.len() != expected || conv.bias.len() != shape[0] {
        return Err(format!(
            "{} weights and {} biases for a weight of shape {shape:?}",
            conv.weight.len(),
            conv.bias.len()
        ));
    }
    let reduction = expected / shape[0];
    if reduction > MAX_REDUCTION {
        return Err(format!(
            "a reduction over {reduction} values could overflow int32 (at most {MAX_REDUCTION})"
        ));
    }
    if conv.bias.iter().any(|b| b.unsigned_abs() >= MAX_BIAS) {
        return Err(format!("a bias of {MAX_BIAS} or more could overflow int32"));
    }
    let multiplier =
        QuantizedMultiplier::convolution(conv.input.scale, conv.weight_quant.scale, conv.output.scale);
    let (act_min, act_max) = activation_range(layer.activation, conv.output)
        .ok_or_else(|| format!("activation {} cannot be fused", layer.activation.name()))?;
    let (top, _, left, _) = layer.same_padding();
    let geometry = Geometry {
        kernel: layer.kernel as usize,
        stride: layer.stride as usize,
        in_h: layer.input.h as usize,
        in_w: layer.input.w as usize,
        in_c: layer.input.c as usize,
        out_h: layer.output.h as usize,
        out_w: layer.output.w as usize,
        out_c: layer.output.c as usize,
        pad_top: top as usize,
        pad_left: left as usize,
    };
    let (o, zw, zx) = (shape[0], conv.weight_quant.zero_point, conv.input.zero_point);
    let kernel = match layer.kind {
        LayerKind::Depthwise => ConvKernel::Depthwise(Box::new(DepthwiseWeights::new(
            &conv.weight,
            o,
            geometry.kernel,
            zw,
            zx,
            &conv.bias,
        ))),
        LayerKind::Conv => {
            // OIHW -> [O][(ky, kx, c)]: the order of the im2col rows of NHWC pixels.
            let (c, taps) = (geometry.in_c, geometry.kernel * geometry.kernel);
            let mut reordered = vec![0u8; conv.weight.len()];
            for (oc, filter) in conv.weight.chunks_exact(c * taps).enumerate() {
                for (i, &w) in filter.iter().enumerate() {
                    let (ci, tap) = (i / taps, i % taps);
                    reordered[oc * c * taps + tap * c + ci] = w;
                }
            }
            let gemm = GemmWeights::new(&reordered, o, reduction, zw, zx, &conv.bias);
            let stem = (geometry.kernel == 3 && c == 3)
                .then(|| StemWeights::new(&gemm, &reordered))
                .flatten();
            ConvKernel::Im2col(gemm, stem)
        }
        LayerKind::Pointwise | LayerKind::Fc => {
            if geometry.stride != 1 || geometry.in_h != geometry.out_h || geometry.in_w != geometry.out_w {
                return Err("a strided 1x1 convolution is not supported".into());
            }
            ConvKernel::Pointwise(GemmWeights::new(&conv.weight, o, reduction, zw, zx, &conv.bias))
        }
        LayerKind::SqueezeExcite | LayerKind::AvgPool => unreachable!("not a convolution"),
    };
    let requantize = Requantize {
        multiplier,
        zero_point: conv.output.zero_point,
        min: act_min,
        max: act_max,
        float: None,
    }
    .with_float_form();
    Ok(ConvOp {
        geometry,
        constants: ConvConstants {
            multiplier,
            act_min,
            act_max,
            add: None,
        },
        requantize,
        input_zero_point: zx,
        kernel,
    })
}

/// The residual ADD's Prepare: input1 is the projection's output, input2 the block's input.
fn prepare_add(add: &AddQuant, output: Quant, block_input: Quant) -> Result<AddParams, String> {
    check_quant("ADD output", add.output)?;
    if add.input1 != output || add.input2 != block_input {
        return Err(format!(
            "ADD inputs quantized {} and {}, but the projection's output is {} and the block's input {}",
            add.input1, add.input2, output, block_input
        ));
    }
    // MobileNetV2's ADDs have no fused activation.
    AddParams::new(*add, 0, 255).ok_or_else(|| "an ADD multiplier is not below one".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Activation, Config, Family, Role};

    /// The AMX kernels' schedule on emulated tiles (`amx::gemm_emulated`) through whole random
    /// v1 and v2 networks: every pointwise shape, the fixed-point logits, residual ADDs, a
    /// batch of three (rows not a multiple of the tiles'), on one thread and on two (each GEMM
    /// cut into units of rows), against the portable bytes.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_amx_schedule_gives_the_portable_bytes_through_networks() {
        if !Kernels::Vnni.available() {
            println!("skipped: this CPU lacks AVX-512 VNNI (the AMX kernels' epilogue)");
            return;
        }
        let set = KernelSet {
            gemm: super::super::amx::gemm_emulated,
            ..Kernels::Vnni.set()
        };
        for (family, alpha, resolution) in [(Family::V1, 0.25, 128), (Family::V2, 0.35, 96)] {
            let config = Config::family(family, alpha, resolution).unwrap();
            let net = QuantizedNetwork::new(NetworkParams::random(&config, 3).unwrap()).unwrap();
            let input = net.random_input(3, 11);
            let expected = net
                .run_with(&input, 3, Output::Logits, Kernels::Portable)
                .unwrap();
            let tiles = net
                .forward_set(&input, 3, Output::Logits, set, false, None)
                .unwrap();
            assert_eq!(tiles, expected, "{family:?} {alpha} {resolution}");
            let net = net.with_threads(2).unwrap();
            let tiles = net
                .forward_set(&input, 3, Output::Logits, set, false, None)
                .unwrap();
            assert_eq!(tiles, expected, "{family:?} {alpha} {resolution}, 2 threads");
        }
    }

    /// A 1x1 convolution of `k` inputs to one output on a 1x1 image.
    fn pointwise(k: usize) -> Layer {
        Layer {
            name: "pw".into(),
            block: None,
            kind: LayerKind::Pointwise,
            role: Role::Pointwise,
            kernel: 1,
            stride: 1,
            input: Shape::new(1, 1, k as u32),
            output: Shape::new(1, 1, 1),
            batch_norm: true,
            bias: false,
            activation: Activation::Linear,
            residual_from: None,
            se_channels: None,
        }
    }

    /// Weights `w`, bias `bias`, input zero point `zx`, weight zero point `zw`.
    fn params(k: usize, w: u8, bias: i32, zx: i32, zw: i32) -> ConvParams {
        let quant = |zero_point| Quant {
            scale: 0.01,
            zero_point,
        };
        ConvParams {
            input: quant(zx),
            // Multiplier 5e-8: the largest accumulators (about 1.3e9) map to about +-67.
            output: Quant {
                scale: 2e3,
                zero_point: 128,
            },
            weight: vec![w; k],
            weight_quant: quant(zw),
            bias: vec![bias],
        }
    }

    #[test]
    fn row_units_are_equal_where_the_rows_allow() {
        // (rows per unit, units): equal halves or more on two threads, four-row units else.
        assert_eq!(output_row_units(14, 2), (7, 2));
        assert_eq!(output_row_units(28, 2), (7, 4));
        assert_eq!(output_row_units(112, 2), (7, 16));
        assert_eq!(output_row_units(7, 2), (4, 16));
        assert_eq!(output_row_units(112, 1), (14, 8));
        // GEMMs: one unit per thread on the 7x7 and 14x14 layers, more on larger ones.
        assert_eq!(gemm_units(49, 2), 2);
        assert_eq!(gemm_units(196, 2), 2);
        assert_eq!(gemm_units(3136, 2), 16);
        assert_eq!(gemm_units(1, 3), 3);
    }

    #[test]
    fn sums_that_could_overflow_int32_are_refused() {
        let k = MAX_REDUCTION;
        assert!(prepare_conv(&pointwise(k), &[1, k, 1, 1], &params(k, 1, 0, 0, 128)).is_ok());
        let err = prepare_conv(&pointwise(k + 1), &[1, k + 1, 1, 1], &params(k + 1, 1, 0, 0, 128))
            .err()
            .unwrap();
        assert!(err.contains("could overflow int32"), "{err}");
        let big = MAX_BIAS as i32;
        assert!(prepare_conv(&pointwise(8), &[1, 8, 1, 1], &params(8, 1, big - 1, 0, 128)).is_ok());
        let err = prepare_conv(&pointwise(8), &[1, 8, 1, 1], &params(8, 1, -big, 0, 128))
            .err()
            .unwrap();
        assert!(err.contains("could overflow int32"), "{err}");
    }

    #[test]
    fn extreme_values_at_the_limits_give_the_reference_bytes() {
        let k = MAX_REDUCTION;
        let big = MAX_BIAS as i32 - 1;
        // Every input and weight at an end of its range, every zero point at the other.
        for (x, w, zx, zw, bias) in [
            (255u8, 255u8, 0, 0, big),
            (255, 0, 0, 255, -big),
            (0, 255, 255, 0, big),
            (255, 0, 255, 255, -big),
            (255, 1, 0, 255, big),
        ] {
            let conv = params(k, w, bias, zx, zw);
            let op = prepare_conv(&pointwise(k), &[1, k, 1, 1], &conv).unwrap();
            let input = vec![x; k];
            let expected = op.run(&input, 1, Kernels::Reference, &conv);
            assert!((40..=216).contains(&expected[0]), "{expected:?}: not saturated");
            for kernels in [Kernels::Portable, Kernels::Vnni] {
                if kernels.available() {
                    assert_eq!(
                        op.run(&input, 1, kernels, &conv),
                        expected,
                        "{kernels:?} {x} {w} {zx} {zw}"
                    );
                }
            }
        }
    }
}

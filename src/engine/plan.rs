//! Validation of a layer list, the buffers its operations use, and the one list of
//! operations; each operation is planned (weights checked and packed) beside its kernel.

use super::depthwise::DepthwiseOp;
use super::excite::SqueezeExciteOp;
use super::head::{FcOp, PoolOp};
use super::pack::padded;
use super::parallel::Work;
use super::pointwise::PointwiseOp;
use super::simd::Isa;
use super::stem::ConvOp;
use super::{EngineError, LayerWeights};
use crate::arch::{Layer, LayerKind};

/// One layer, planned.
#[derive(Debug)]
pub(crate) enum Op {
    Conv(ConvOp),
    Depthwise(DepthwiseOp),
    Pointwise(PointwiseOp),
    SqueezeExcite(SqueezeExciteOp),
    Pool(PoolOp),
    Fc(FcOp),
}

/// Per-thread pointers a forward pass works on.
pub(crate) struct Io {
    /// This thread's scratch (the stem's im2col, squeeze-and-excite's pooled vectors),
    /// [`Plan::scratch_len`] floats.
    pub(crate) scratch: *mut f32,
    pub(crate) zero_row: *const f32,
}

impl Op {
    /// Floats of output per image, as stored (padded channels included; logits unpadded).
    pub(crate) fn out_len(&self) -> usize {
        match self {
            Op::Conv(op) => op.out_hw.0 * op.out_hw.1 * op.out_c_pad,
            Op::Depthwise(op) => op.out_hw.0 * op.out_hw.1 * op.out_c.1,
            Op::Pointwise(op) => op.pixels * op.out_c_pad,
            Op::SqueezeExcite(op) => op.pixels * op.c_pad,
            Op::Pool(op) => op.c_pad,
            Op::Fc(op) => op.classes,
        }
    }

    /// Bytes of packed weights (biases included).
    pub(crate) fn weight_bytes(&self) -> usize {
        match self {
            Op::Conv(op) => op.weights.bytes(),
            Op::Depthwise(op) => op.taps.bytes(),
            Op::Pointwise(op) => op.weights.bytes(),
            Op::SqueezeExcite(op) => op.reduce.bytes() + op.expand.bytes(),
            Op::Pool(_) => 0,
            Op::Fc(op) => op.weights.bytes(),
        }
    }

    /// # Safety
    /// `isa` must be available, `src`/`dst` must be sized for this op's input and output at
    /// `batch` (the same buffer only for squeeze-and-excite), `residual` null or (pointwise
    /// only) sized like `dst` and not written by any thread during the call, and `io` must
    /// point at this thread's scratch and the zero row, sized by [`Plan`]. All threads must
    /// call this together.
    #[allow(clippy::too_many_arguments)] // the pointers are this op's operands for one pass
    pub(crate) unsafe fn run(
        &self,
        work: &Work<'_>,
        isa: Isa,
        io: &Io,
        src: *const f32,
        dst: *mut f32,
        residual: *const f32,
        batch: usize,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                Op::Conv(op) => op.run(work, isa, src, dst, io.scratch, batch),
                Op::Depthwise(op) => op.run(work, isa, src, dst, io.zero_row, batch),
                Op::Pointwise(op) => op.run(work, isa, src, dst, residual, batch),
                Op::SqueezeExcite(op) => op.run(work, isa, src, dst, io.scratch, batch),
                Op::Pool(op) => op.run(work, src, dst, batch),
                Op::Fc(op) => op.run(work, isa, src, dst, batch),
            }
        }
    }
}

/// Where a pass's result lies: layer `layer`'s output (a vector per image), `len` values per
/// image stored `stride` floats apart (its channels padded; the FC layer's logits are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Readout {
    pub(crate) layer: usize,
    pub(crate) len: usize,
    pub(crate) stride: usize,
}

/// The activation buffers one op uses, as indices into the engine's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slots {
    /// `None`: the caller's NCHW input (the first op).
    pub(crate) src: Option<usize>,
    /// `None`: the engine's output (the last op).
    pub(crate) dst: Option<usize>,
    /// The buffer holding the input of the layer `residual_from` names, if any.
    pub(crate) residual: Option<usize>,
}

/// A validated network: its ops and the buffer sizes they need.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) ops: Vec<Op>,
    /// Per op, which buffers it reads and writes.
    pub(crate) slots: Vec<Slots>,
    /// Activation buffers of `act_len` floats per image: 2 (ping-pong) for v1, 3 when
    /// residual connections keep a block's input alive across the block (v2, v3).
    pub(crate) buffers: usize,
    /// Floats of NCHW input per image.
    pub(crate) input_len: usize,
    /// The last layer's output: the logits, or the features of a network without its FC.
    pub(crate) output: Readout,
    /// The input of the final FC layer (the last layer's output when there is none).
    pub(crate) features: Readout,
    /// Floats per image of the largest padded NHWC activation.
    pub(crate) act_len: usize,
    /// Floats of scratch per thread.
    pub(crate) scratch_len: usize,
    pub(crate) zero_row_len: usize,
}

/// Validates `layers` and `weights` and packs the weights.
pub(crate) fn build(layers: &[Layer], weights: &[LayerWeights]) -> Result<Plan, EngineError> {
    if layers.is_empty() {
        return Err(EngineError::Empty);
    }
    if layers.len() != weights.len() {
        return Err(EngineError::WeightCount {
            layers: layers.len(),
            weights: weights.len(),
        });
    }
    let mut ops = Vec::with_capacity(layers.len());
    let (mut act_len, mut scratch_len, mut zero_row_len) = (0, 0, 0);
    for (index, (layer, w)) in layers.iter().zip(weights).enumerate() {
        let fail = |reason: String| EngineError::Layer {
            index,
            name: layer.name.clone(),
            reason,
        };
        check_shapes(layers, index).map_err(fail)?;
        let op = match layer.kind {
            // The first layer reads the caller's NCHW input; later ones an NHWC activation.
            LayerKind::Conv => ConvOp::plan(layer, w, index == 0).map(Op::Conv),
            LayerKind::Depthwise => DepthwiseOp::plan(layer, w).map(Op::Depthwise),
            LayerKind::Pointwise => PointwiseOp::plan(layer, w).map(Op::Pointwise),
            LayerKind::SqueezeExcite => SqueezeExciteOp::plan(layer, w).map(Op::SqueezeExcite),
            LayerKind::AvgPool => PoolOp::plan(layer, w).map(Op::Pool),
            LayerKind::Fc => FcOp::plan(layer, w).map(Op::Fc),
        }
        .map_err(fail)?;
        match &op {
            Op::Conv(op) => scratch_len = scratch_len.max(op.scratch_len()),
            Op::SqueezeExcite(op) => scratch_len = scratch_len.max(op.scratch_len()),
            Op::Depthwise(op) => zero_row_len = zero_row_len.max(op.zero_row_len()),
            _ => {}
        }
        if layer.kind != LayerKind::Fc {
            let out = layer.output;
            act_len = act_len.max(out.h as usize * out.w as usize * padded(out.c as usize));
        }
        ops.push(op);
    }
    let first = layers[0].input;
    let (slots, buffers) = assign_buffers(layers);
    let readout = |layer: usize| Readout {
        layer,
        len: layers[layer].output.c as usize,
        stride: ops[layer].out_len(),
    };
    // `check_shapes` put the FC layer last, after the first (a convolution) and on one vector.
    let last = layers.len() - 1;
    let features = if layers[last].kind == LayerKind::Fc {
        last - 1
    } else {
        last
    };
    let (output, features) = (readout(last), readout(features));
    Ok(Plan {
        ops,
        slots,
        buffers,
        input_len: first.c as usize * first.h as usize * first.w as usize,
        output,
        features,
        act_len,
        scratch_len,
        zero_row_len,
    })
}

/// Gives every op's output a buffer that holds no value still to be read: value `i` (layer
/// `i`'s output) is read by layer `i + 1` and, as a residual, by every layer whose
/// `residual_from` is `i + 1`. A squeeze-and-excite layer scales its input in place when that
/// input has no other reader, as in every v3 block (the residual is the block's input, not the
/// depthwise output): one pass over the activation fewer and no extra buffer. Expects the
/// layers `check_shapes` accepted. Returns the slots and the number of buffers.
///
/// The forward pass's soundness rests on this assignment: see the SAFETY comment on the op
/// loop in `Engine::execute`.
fn assign_buffers(layers: &[Layer]) -> (Vec<Slots>, usize) {
    let n = layers.len();
    let mut last_use: Vec<usize> = (0..n).map(|i| i + 1).collect();
    for (j, layer) in layers.iter().enumerate() {
        if let Some(from) = layer.residual_from {
            last_use[from - 1] = last_use[from - 1].max(j);
        }
    }
    // Per buffer: the value it holds and that value's last reader.
    let mut holds: Vec<(usize, usize)> = Vec::new();
    let mut where_is = vec![usize::MAX; n];
    let mut slots = Vec::with_capacity(n);
    for (i, layer) in layers.iter().enumerate() {
        let src = (i > 0).then(|| where_is[i - 1]);
        let residual = layer.residual_from.map(|from| where_is[from - 1]);
        let dst = (i + 1 < n).then(|| {
            if let Some(b) = src.filter(|_| layer.kind == LayerKind::SqueezeExcite && last_use[i - 1] == i) {
                holds[b] = (i, last_use[i]);
                where_is[i] = b;
                return b;
            }
            let free = holds.iter().position(|&(_, last)| last < i);
            let b = free.unwrap_or_else(|| {
                holds.push((0, 0));
                holds.len() - 1
            });
            holds[b] = (i, last_use[i]);
            where_is[i] = b;
            b
        });
        slots.push(Slots { src, dst, residual });
    }
    (slots, holds.len().max(1))
}

/// Checks the layer's place in the network and its shape rules.
fn check_shapes(layers: &[Layer], index: usize) -> Result<(), String> {
    let layer = &layers[index];
    let (input, output) = (layer.input, layer.output);
    let last = index + 1 == layers.len();
    if index > 0 && layers[index - 1].output != input {
        return Err(format!(
            "takes {input} but the previous layer produces {}",
            layers[index - 1].output
        ));
    }
    if [
        input.h,
        input.w,
        input.c,
        output.h,
        output.w,
        output.c,
        layer.kernel,
        layer.stride,
    ]
    .contains(&0)
    {
        return Err("has a zero dimension, kernel or stride".into());
    }
    if index == 0 && layer.kind != LayerKind::Conv {
        return Err("the first layer must be a full convolution (it reads the NCHW input)".into());
    }
    if layer.kind == LayerKind::Fc && !last {
        return Err("the fully connected layer must be the last".into());
    }
    if last && (output.h, output.w) != (1, 1) {
        return Err(format!(
            "ends the network with {output}: it must end in one vector per image (the FC layer's logits, or the pooled features without it)"
        ));
    }
    if let Some(from) = layer.residual_from {
        if layer.kind != LayerKind::Pointwise {
            return Err(format!(
                "has a residual connection on a {} layer: the fast engine fuses residuals into pointwise layers only",
                layer.kind
            ));
        }
        if from == 0 || from > index {
            return Err(format!(
                "adds the input of layer {from}: a residual must come from an earlier layer's input, not the network's"
            ));
        }
        if layers[from].input != output {
            return Err(format!(
                "adds the input of layer {from} ({}) to its output {output}: shapes differ",
                layers[from].input
            ));
        }
    }
    let same = |stride: u32| output.h == input.h.div_ceil(stride) && output.w == input.w.div_ceil(stride);
    let ok = match layer.kind {
        LayerKind::Conv => same(layer.stride),
        LayerKind::Depthwise => same(layer.stride) && output.c % input.c == 0,
        LayerKind::Pointwise => layer.kernel == 1 && layer.stride == 1 && same(1),
        LayerKind::AvgPool => output.h == 1 && output.w == 1 && output.c == input.c,
        LayerKind::Fc => input.h == 1 && input.w == 1 && output.h == 1 && output.w == 1,
        LayerKind::SqueezeExcite => {
            layer.kernel == 1
                && layer.stride == 1
                && output == input
                && layer.se_channels.is_some_and(|se| se > 0)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unsupported {} shape {input} -> {output}", layer.kind))
    }
}

/// A layer's sizes as the kernels count them, channels logical and padded.
pub(crate) struct Dims {
    pub(crate) cin: usize,
    pub(crate) cout: usize,
    pub(crate) cin_pad: usize,
    pub(crate) cout_pad: usize,
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) in_hw: (usize, usize),
    pub(crate) out_hw: (usize, usize),
    /// TF SAME (top, left) padding; bottom and right follow from the shapes.
    pub(crate) pad: (usize, usize),
}

impl Dims {
    pub(crate) fn of(layer: &Layer) -> Dims {
        let (input, output) = (layer.input, layer.output);
        let (top, _, left, _) = layer.same_padding();
        let (cin, cout) = (input.c as usize, output.c as usize);
        Dims {
            cin,
            cout,
            cin_pad: padded(cin),
            cout_pad: padded(cout),
            kernel: layer.kernel as usize,
            stride: layer.stride as usize,
            in_hw: (input.h as usize, input.w as usize),
            out_hw: (output.h as usize, output.w as usize),
            pad: (top as usize, left as usize),
        }
    }
}

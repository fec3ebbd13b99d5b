//! A prepared quantized network and its forward pass: TFLite's uint8 graph for MobileNet v1
//! and v2 (README section 1), op by op.

use super::add::{AddParams, AddQuant};
use super::fixed_point::{QuantizedMultiplier, activation_range};
use super::kernels::{self, DepthwiseWeights, GemmWeights, Geometry, Requantize};
use super::params::{LayerParams, NetworkParams, add_name, supported_shape};
use super::softmax::SoftmaxParams;
use super::{ConvParams, Quant, QuantError, reference};
use crate::arch::{Layer, LayerKind, Shape, instantiate};
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
}

impl Kernels {
    /// Whether this CPU runs these kernels.
    pub fn available(self) -> bool {
        match self {
            Kernels::Portable | Kernels::Reference => true,
            #[cfg(target_arch = "x86_64")]
            Kernels::Vnni => super::vnni::available(),
            #[cfg(not(target_arch = "x86_64"))]
            Kernels::Vnni => false,
        }
    }

    /// The fastest kernels this CPU runs: VNNI where available, else the portable ones.
    pub fn best() -> Kernels {
        if Kernels::Vnni.available() {
            Kernels::Vnni
        } else {
            Kernels::Portable
        }
    }

    /// The u8 x s8 GEMM of these kernels.
    fn gemm(self) -> fn(&[u8], usize, &GemmWeights, &Requantize, &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if self == Kernels::Vnni {
            return super::vnni::gemm;
        }
        kernels::gemm
    }

    /// The depthwise kernel of these kernels.
    fn depthwise(self) -> fn(&[u8], &Geometry, &DepthwiseWeights, i32, &Requantize, &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if self == Kernels::Vnni {
            return super::vnni::depthwise;
        }
        kernels::depthwise
    }
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

/// A convolution ready to run.
struct ConvOp {
    geometry: Geometry,
    constants: ConvConstants,
    requantize: Requantize,
    input_zero_point: i32,
    kernel: ConvKernel,
}

enum ConvKernel {
    /// A full convolution through im2col (out-of-image taps hold the input zero point).
    Im2col(GemmWeights),
    /// A 1x1 convolution straight on the NHWC pixels (pointwise layers and the logits).
    Pointwise(GemmWeights),
    Depthwise(DepthwiseWeights),
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
    /// For each layer, whether its input is needed again by a later residual ADD.
    kept: Vec<bool>,
    features: Quant,
    softmax: SoftmaxParams,
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
        let mut kept = vec![false; layers.len()];
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
                            kept[from] = true;
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
        Ok(QuantizedNetwork {
            params,
            layers,
            ops,
            kept,
            features,
            softmax,
        })
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
    /// this CPU runs ([`Kernels::best`]) up to `output`.
    pub fn run(&self, input: &[u8], batch: usize, output: Output) -> Result<Vec<u8>, QuantError> {
        self.run_traced(input, batch, output, Kernels::best(), &mut |_, _| {})
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
        if !kernels.available() {
            return Err(QuantError::Kernels(kernels));
        }
        let shape = self.input_shape();
        let expected = batch * shape.elements() as usize;
        if batch == 0 || input.len() != expected {
            return Err(QuantError::Input {
                got: input.len(),
                batch,
                shape,
            });
        }
        let mut x = input.to_vec();
        let mut kept: Vec<Option<Vec<u8>>> = vec![None; self.layers.len()];
        for (index, ((layer, op), layer_params)) in self
            .layers
            .iter()
            .zip(&self.ops)
            .zip(&self.params.layers)
            .enumerate()
        {
            if output == Output::Features && layer.kind == LayerKind::Fc {
                return Ok(x);
            }
            if self.kept[index] {
                kept[index] = Some(x.clone());
            }
            let y = match (op, layer_params) {
                (Op::Pool, _) => {
                    let pixels = (layer.input.h * layer.input.w) as usize;
                    kernels::global_average_pool(&x, batch, pixels, layer.input.c as usize)
                }
                (Op::Conv(op), LayerParams::Conv { conv, .. }) => op.run(&x, batch, kernels, conv),
                (Op::Conv(_), LayerParams::Pool) => unreachable!("validated in new"),
            };
            trace(&layer.name, &y);
            x = match self.conv_constants(index).and_then(|c| c.add) {
                None => y,
                Some((add, from)) => {
                    let skip = kept[from].take().expect("kept for the residual");
                    let mut sum = vec![0; y.len()];
                    add.run(&y, &skip, &mut sum);
                    trace(&add_name(layer), &sum);
                    sum
                }
            };
        }
        if output == Output::Logits {
            return Ok(x);
        }
        let mut probabilities = vec![0; x.len()];
        self.softmax.run(&x, x.len() / batch, &mut probabilities);
        trace("softmax", &probabilities);
        Ok(probabilities)
    }
}

impl ConvOp {
    /// The layer's output for the whole batch.
    fn run(&self, x: &[u8], batch: usize, kernels: Kernels, params: &ConvParams) -> Vec<u8> {
        let g = &self.geometry;
        let mut out = vec![0; batch * g.output_len()];
        let images = x
            .chunks_exact(g.input_len())
            .zip(out.chunks_exact_mut(g.output_len()));
        match (kernels, &self.kernel) {
            (Kernels::Reference, kernel) => {
                let depthwise = matches!(kernel, ConvKernel::Depthwise(_));
                for (image, out) in images {
                    reference::conv(image, g, depthwise, params, &self.requantize, out);
                }
            }
            (_, ConvKernel::Pointwise(w)) => {
                kernels.gemm()(x, batch * g.in_h * g.in_w, w, &self.requantize, &mut out);
            }
            (_, ConvKernel::Im2col(w)) => {
                let mut cols = Vec::with_capacity(g.out_h * g.out_w * w.k);
                // The input zero point is a uint8 value (checked in prepare_conv).
                let pad = self.input_zero_point as u8;
                for (image, out) in images {
                    kernels::im2col(image, g, pad, &mut cols);
                    kernels.gemm()(&cols, g.out_h * g.out_w, w, &self.requantize, out);
                }
            }
            (_, ConvKernel::Depthwise(w)) => {
                for (image, out) in images {
                    kernels.depthwise()(image, g, w, self.input_zero_point, &self.requantize, out);
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
        LayerKind::Depthwise => ConvKernel::Depthwise(DepthwiseWeights::new(
            &conv.weight,
            o,
            geometry.kernel,
            zw,
            &conv.bias,
        )),
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
            ConvKernel::Im2col(GemmWeights::new(&reordered, o, reduction, zw, zx, &conv.bias))
        }
        LayerKind::Pointwise | LayerKind::Fc => {
            if geometry.stride != 1 || geometry.in_h != geometry.out_h || geometry.in_w != geometry.out_w {
                return Err("a strided 1x1 convolution is not supported".into());
            }
            ConvKernel::Pointwise(GemmWeights::new(&conv.weight, o, reduction, zw, zx, &conv.bias))
        }
        LayerKind::SqueezeExcite | LayerKind::AvgPool => unreachable!("not a convolution"),
    };
    Ok(ConvOp {
        geometry,
        constants: ConvConstants {
            multiplier,
            act_min,
            act_max,
            add: None,
        },
        requantize: Requantize {
            multiplier,
            zero_point: conv.output.zero_point,
            min: act_min,
            max: act_max,
        },
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
    use crate::arch::{Activation, Role};

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

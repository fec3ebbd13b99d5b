//! The quantized network's description: per layer of `arch::instantiate(&config)`, the uint8
//! quantization of its input and output, its uint8 weights with their scale and zero point, its
//! int32 bias, and for MobileNetV2's residual blocks the ADD's quantization.
//!
//! A description comes from safetensors ([`NetworkParams::from_safetensors`]: the weights as
//! the shipped files store them, the activation quantization under the names of
//! [`activation_tensor_names`]) or is synthetic ([`NetworkParams::random`], for timing any
//! configuration). [`super::QuantizedNetwork::new`] validates and prepares it.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};

use super::add::AddQuant;
use super::{Quant, QuantError};
use crate::arch::{Activation, Config, Layer, LayerKind, instantiate};
use crate::nn::{SplitMix64, names, weight_shape};

/// The largest distance from an integer that `bias_f32 / float32(s_in * s_w)` may have when the
/// float bias is read back as TFLite's int32 bias. On the shipped models it is at most 0.013
/// (the float bias was written as `int32 * bias_scale`, and TFLite's `bias_scale` equals
/// `s_in * s_w` to 1.2e-7 relative); a wrong input scale puts it anywhere in [0, 0.5].
pub const BIAS_ROUNDING_TOLERANCE: f64 = 0.1;

/// One convolution's quantized parameters: conv_0, a depthwise or pointwise layer, or the
/// logits (a 1x1 convolution in TFLite's graph).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvParams {
    /// The quantization of the layer's input tensor.
    pub input: Quant,
    /// The quantization of the layer's output tensor.
    pub output: Quant,
    /// uint8 weights in the weight files' OIHW order: `[O, I, k, k]` for a full convolution,
    /// `[C, 1, k, k]` depthwise, `[O, I, 1, 1]` pointwise, `[O, I]` for the logits.
    pub weight: Vec<u8>,
    /// real weight = `weight_quant.scale * (q - weight_quant.zero_point)`.
    pub weight_quant: Quant,
    /// int32 bias per output channel, scale `s_in * s_w`, zero point 0.
    pub bias: Vec<i32>,
}

/// One layer's parameters, index-aligned with `instantiate(&config)`.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerParams {
    /// A convolution; `residual` is the ADD after it where the layer has `residual_from` (v2's
    /// stride-1 projections): input1 is this layer's output, input2 the block's input.
    Conv {
        conv: ConvParams,
        residual: Option<AddQuant>,
    },
    /// The global average pool: uint8 in and out with the same quantization, no parameters.
    Pool,
}

/// A whole network's quantized description.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkParams {
    pub config: Config,
    /// One entry per layer of `instantiate(&config)`.
    pub layers: Vec<LayerParams>,
}

/// The activation-quantization tensors a file must hold for the layers of `config`, by layer:
/// `NAME.input_scale`, `NAME.input_zero_point`, `NAME.output_scale`, `NAME.output_zero_point`
/// for every convolution (`F32 [1]`; zero points `F32` or `I32 [1]`, integral), and for a residual
/// block `block_k.add.{input1,input2,output}_{scale,zero_point}`: the weight files' naming,
/// [`crate::nn::names::activation_tensors`]. The pool and the softmax need none (the pool keeps
/// its input's quantization; the softmax reads the logits' and outputs scale 1/256, zero point 0).
pub fn activation_tensor_names(config: &Config) -> Vec<String> {
    names::activation_tensors(&instantiate(config))
}

/// The name of the ADD after `layer` (a block's projection): `block_k.add`.
pub(crate) fn add_name(layer: &Layer) -> String {
    names::residual_add(&layer.name)
}

impl NetworkParams {
    /// Reads a description: uint8 weights from `weights` (`NAME.weight` U8 in OIHW,
    /// `NAME.weight_scale` `F32 [1]`, `NAME.weight_zero_point` `[1]`, `NAME.bias` `F32 [O]`, as the
    /// shipped files store them) and the activation quantization from `activations` (the tensors
    /// [`activation_tensor_names`] lists). Both may be the same file. The float bias is turned
    /// back into TFLite's int32 bias by [`bias_from_f32`].
    pub fn from_safetensors(config: &Config, weights: &[u8], activations: &[u8]) -> Result<Self, QuantError> {
        let weights = Tensors::parse(weights, "weights")?;
        let activations = Tensors::parse(activations, "activations")?;
        let layers = instantiate(config)
            .iter()
            .map(|layer| {
                let Some(shape) = supported_shape(layer)? else {
                    return Ok(LayerParams::Pool);
                };
                let name = &layer.name;
                let input = activations.quant(name, "input")?;
                let weight_quant = Quant {
                    scale: weights.scalar_f32(&names::weight_scale(name))?,
                    zero_point: weights.scalar_int(&names::weight_zero_point(name))?,
                };
                let bias_name = names::bias(name);
                let bias = bias_from_f32(
                    &weights.f32s(&bias_name, &[shape[0]])?,
                    input.scale,
                    weight_quant.scale,
                )
                .map_err(|(index, residual)| QuantError::Tensor {
                    tensor: bias_name.clone(),
                    problem: format!(
                        "element {index} is {residual:.3} from a whole multiple of input_scale * weight_scale \
                         (more than {BIAS_ROUNDING_TOLERANCE}): not a quantized bias for this input scale"
                    ),
                })?;
                let conv = ConvParams {
                    input,
                    output: activations.quant(name, "output")?,
                    weight: weights.u8s(&names::weight(name), &shape)?,
                    weight_quant,
                    bias,
                };
                let residual = match layer.residual_from {
                    None => None,
                    Some(_) => {
                        let add = add_name(layer);
                        Some(AddQuant {
                            input1: activations.quant(&add, "input1")?,
                            input2: activations.quant(&add, "input2")?,
                            output: activations.quant(&add, "output")?,
                        })
                    }
                };
                Ok(LayerParams::Conv { conv, residual })
            })
            .collect::<Result<Vec<_>, QuantError>>()?;
        Ok(NetworkParams {
            config: *config,
            layers,
        })
    }

    /// Random uint8 weights with synthetic quantization, deterministic in `seed`, for timing
    /// and for comparing kernels: weights near their zero point (zero points 52..=236, values
    /// 1..=255), scales chosen so that each layer's outputs spread over the uint8 range; ReLU6
    /// outputs with zero points 0..=40 (clamps inside [0, 255]), linear outputs (projections,
    /// ADDs, logits) with zero points near 128; the input as TFLite's (1/128, 128).
    pub fn random(config: &Config, seed: u64) -> Result<Self, QuantError> {
        let mut rng = SplitMix64(seed);
        let mut range = |lo: i32, hi: i32| lo + (rng.next_u64() % (hi - lo + 1) as u64) as i32;
        let layers = instantiate(config);
        let mut current = Quant {
            scale: 1.0 / 128.0,
            zero_point: 128,
        };
        // The quantization of each layer's input, for the residual ADDs.
        let mut inputs = Vec::with_capacity(layers.len());
        let mut params = Vec::with_capacity(layers.len());
        for layer in &layers {
            inputs.push(current);
            let Some(shape) = supported_shape(layer)? else {
                params.push(LayerParams::Pool);
                continue;
            };
            let output = match layer.activation {
                Activation::Relu6 | Activation::Relu => {
                    let zero_point = range(0, 40);
                    Quant {
                        scale: 6.0 / range(150, 255 - zero_point) as f32,
                        zero_point,
                    }
                }
                _ => Quant {
                    scale: 0.05 * range(10, 40) as f32,
                    zero_point: range(100, 156),
                },
            };
            let weight_zero_point = range(52, 236);
            let count: usize = shape.iter().product();
            let weight: Vec<u8> = (0..count)
                .map(|_| (weight_zero_point + range(-40, 40)).clamp(1, 255) as u8)
                .collect();
            // Accumulators spread like sqrt(taps) * 100 * 23; aim at outputs spread over ~64 steps.
            let taps = count / shape[0];
            let multiplier = 64.0 / ((taps as f64).sqrt() * 100.0 * 23.0);
            let weight_quant = Quant {
                scale: (multiplier * f64::from(output.scale) / f64::from(current.scale)) as f32,
                zero_point: weight_zero_point,
            };
            let spread = (taps as f64).sqrt() as i32 * 1000;
            let bias = (0..shape[0]).map(|_| range(-spread, spread)).collect();
            let conv = ConvParams {
                input: current,
                output,
                weight,
                weight_quant,
                bias,
            };
            current = output;
            let residual = layer.residual_from.map(|from| {
                let input2 = inputs[from];
                let sum = Quant {
                    scale: output.scale.max(input2.scale) * (1.0 + range(0, 10) as f32 / 10.0),
                    zero_point: range(100, 156),
                };
                current = sum;
                AddQuant {
                    input1: output,
                    input2,
                    output: sum,
                }
            });
            params.push(LayerParams::Conv { conv, residual });
        }
        Ok(NetworkParams {
            config: *config,
            layers: params,
        })
    }
}

/// The weight shape of a layer this precision runs (`None` for the pool); an error for the
/// layers it does not (squeeze-and-excite, hard-swish: MobileNetV3).
pub(crate) fn supported_shape(layer: &Layer) -> Result<Option<Vec<usize>>, QuantError> {
    let unsupported = |reason: &str| QuantError::Unsupported {
        layer: layer.name.clone(),
        reason: reason.to_string(),
    };
    if layer.activation == Activation::HardSwish {
        return Err(unsupported("hard-swish has no int8 kernel yet"));
    }
    match layer.kind {
        LayerKind::AvgPool => Ok(None),
        LayerKind::SqueezeExcite => Err(unsupported("squeeze-and-excite has no int8 kernel yet")),
        LayerKind::Depthwise if layer.output.c != layer.input.c => {
            Err(unsupported("a depth multiplier above 1 has no int8 kernel"))
        }
        _ => Ok(weight_shape(layer)),
    }
}

/// TFLite's int32 bias from the float bias the weight files store (`int32 * bias_scale`):
/// `round(bias / float32(s_in * s_w))`. Checked on every layer of the shipped models against
/// the .tflite's own int32 biases. An element further than [`BIAS_ROUNDING_TOLERANCE`] from an
/// integer is returned as `Err((index, distance))`.
pub fn bias_from_f32(bias: &[f32], input_scale: f32, weight_scale: f32) -> Result<Vec<i32>, (usize, f64)> {
    let scale = f64::from(input_scale * weight_scale);
    bias.iter()
        .enumerate()
        .map(|(i, &b)| {
            let exact = f64::from(b) / scale;
            let rounded = exact.round();
            let distance = (exact - rounded).abs();
            if distance <= BIAS_ROUNDING_TOLERANCE && rounded.abs() < f64::from(i32::MAX) {
                Ok(rounded as i32)
            } else {
                Err((i, distance))
            }
        })
        .collect()
}

/// A parsed safetensors file with typed, checked reads; errors name the tensor.
struct Tensors<'a> {
    tensors: HashMap<String, safetensors::tensor::TensorView<'a>>,
}

impl<'a> Tensors<'a> {
    fn parse(bytes: &'a [u8], what: &str) -> Result<Self, QuantError> {
        let parsed = SafeTensors::deserialize(bytes).map_err(|e| QuantError::Format {
            file: what.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Tensors {
            tensors: parsed.tensors().into_iter().collect(),
        })
    }

    fn view(&self, name: &str) -> Result<&safetensors::tensor::TensorView<'a>, QuantError> {
        self.tensors.get(name).ok_or_else(|| QuantError::Tensor {
            tensor: name.to_string(),
            problem: "is missing".to_string(),
        })
    }

    fn problem(name: &str, problem: String) -> QuantError {
        QuantError::Tensor {
            tensor: name.to_string(),
            problem,
        }
    }

    /// The tensor's bytes after checking its dtype and shape.
    fn data(&self, name: &str, dtype: Dtype, shape: &[usize]) -> Result<&'a [u8], QuantError> {
        let view = self.view(name)?;
        if view.dtype() != dtype {
            return Err(Self::problem(
                name,
                format!("has dtype {:?}, expected {dtype:?}", view.dtype()),
            ));
        }
        if view.shape() != shape {
            return Err(Self::problem(
                name,
                format!("has shape {:?}, expected {shape:?}", view.shape()),
            ));
        }
        Ok(view.data())
    }

    fn u8s(&self, name: &str, shape: &[usize]) -> Result<Vec<u8>, QuantError> {
        Ok(self.data(name, Dtype::U8, shape)?.to_vec())
    }

    fn f32s(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, QuantError> {
        let values: Vec<f32> = self
            .data(name, Dtype::F32, shape)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        match values.iter().position(|v| !v.is_finite()) {
            Some(i) => Err(Self::problem(name, format!("has a non-finite value at {i}"))),
            None => Ok(values),
        }
    }

    fn scalar_f32(&self, name: &str) -> Result<f32, QuantError> {
        Ok(self.f32s(name, &[1])?[0])
    }

    /// An integral scalar stored as I32 or F32 (the shipped files store weight zero points as
    /// F32).
    fn scalar_int(&self, name: &str) -> Result<i32, QuantError> {
        let dtype = self.view(name)?.dtype();
        if dtype == Dtype::I32 {
            let b = self.data(name, Dtype::I32, &[1])?;
            return Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        }
        let value = self.scalar_f32(name)?;
        if value.fract() != 0.0 || value.abs() > 1e9 {
            return Err(Self::problem(name, format!("is {value}, not an integer")));
        }
        Ok(value as i32)
    }

    /// The quantization of `base`'s `tensor` ([`names::quantization`]).
    fn quant(&self, base: &str, tensor: &str) -> Result<Quant, QuantError> {
        let (scale, zero_point) = names::quantization(base, tensor);
        Ok(Quant {
            scale: self.scalar_f32(&scale)?,
            zero_point: self.scalar_int(&zero_point)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Family;

    #[test]
    fn activation_names_cover_convolutions_and_adds() {
        let v1 = activation_tensor_names(&Config::paper(0.25, 128).unwrap());
        // 28 convolutions (conv_0, 13 x dw + pw, logits), four tensors each.
        assert_eq!(v1.len(), 28 * 4);
        assert_eq!(v1[..2], ["conv_0.input_scale", "conv_0.input_zero_point"]);
        assert!(v1.contains(&"logits.output_zero_point".to_string()));
        let v2 = activation_tensor_names(&Config::family(Family::V2, 1.0, 224).unwrap());
        assert_eq!(v2.len(), (1 + 2 + 16 * 3 + 2) * 4 + 10 * 6);
        assert!(v2.contains(&"block_2.add.input2_zero_point".to_string()));
        assert!(!v2.iter().any(|n| n.starts_with("pool")));
    }

    #[test]
    fn the_float_bias_rounds_back_to_int32() {
        let (s_in, s_w) = (0.023528477f32, 0.01f32);
        let scale = f64::from(s_in * s_w);
        let ints = [-110_212, -1, 0, 1, 17_557];
        let floats: Vec<f32> = ints.iter().map(|&i| (f64::from(i) * scale) as f32).collect();
        assert_eq!(bias_from_f32(&floats, s_in, s_w).unwrap(), ints);
        // A wrong input scale leaves fractions: refused, naming the first such element.
        let err = bias_from_f32(&floats, s_in * 1.37, s_w).unwrap_err();
        assert!(err.1 > BIAS_ROUNDING_TOLERANCE, "{err:?}");
    }

    #[test]
    fn random_params_chain_their_quantization() {
        let config = Config::family(Family::V2, 0.35, 96).unwrap();
        let params = NetworkParams::random(&config, 7).unwrap();
        assert_eq!(params, NetworkParams::random(&config, 7).unwrap());
        assert_ne!(params, NetworkParams::random(&config, 8).unwrap());
        let layers = instantiate(&config);
        assert_eq!(params.layers.len(), layers.len());
        let adds = params
            .layers
            .iter()
            .filter(|p| {
                matches!(
                    p,
                    LayerParams::Conv {
                        residual: Some(_),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(adds, layers.iter().filter(|l| l.residual_from.is_some()).count());
        for (layer, p) in layers.iter().zip(&params.layers) {
            if let LayerParams::Conv { conv, .. } = p {
                assert_eq!(
                    conv.weight.len(),
                    weight_shape(layer).unwrap().iter().product::<usize>()
                );
                assert!(conv.weight.iter().all(|&w| w >= 1));
                assert_eq!(conv.bias.len(), layer.output.c as usize);
            }
        }
    }

    #[test]
    fn v3_is_refused_by_name() {
        let config = Config::family(Family::V3Small, 1.0, 224).unwrap();
        let err = NetworkParams::random(&config, 1).unwrap_err();
        assert!(err.to_string().contains("conv_0"), "{err}");
        assert!(err.to_string().contains("hard-swish"), "{err}");
    }
}

//! Each layer's tensors: checked (presence, dtype, shape) for every layer first, then read.

use std::collections::HashSet;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::{Context, FileCtx, WeightsError, names};
use crate::arch::{Layer, LayerKind};
use crate::nn::layers::{RawAffine, RawDense, RawLayer, squeeze_excite_shapes, weight_shape};

const WEIGHT_DTYPES: &str = "U8 (with weight_scale and weight_zero_point), F32, F16 or BF16";
const FLOAT_DTYPES: &str = "F32, F16 or BF16";

/// A weight tensor's values in the form the file stores them: the loader keeps uint8 weights
/// quantized, and each consumer dequantizes (the f32 networks where they build) or uses the
/// integers as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// F32, or F16 and BF16 widened to f32 (exactly).
    F32(Vec<f32>),
    /// U8 with one affine quantization per tensor, real = scale * (q - zero_point) (Jacob et
    /// al. 2018, arXiv:1712.05877, eq. 1; the shipped files' form). The zero point is stored
    /// as a float, as the files do.
    U8 { q: Vec<u8>, scale: f32, zero_point: f32 },
}

impl Values {
    /// Values stored (the parameter count's unit).
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::U8 { q, .. } => q.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The real values: F32 as stored, U8 dequantized ([`dequantize`]).
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            Values::F32(v) => v,
            Values::U8 { q, scale, zero_point } => {
                q.iter().map(|&q| dequantize(q, scale, zero_point)).collect()
            }
        }
    }
}

/// scale * (q - zero_point), computed as the reference does: `q - zero_point` is exact in f32
/// for 8-bit `q` (and a zero point in 0..=255), so the only rounding is the product's.
pub fn dequantize(q: u8, scale: f32, zero_point: f32) -> f32 {
    (f32::from(q) - zero_point) * scale
}

/// The validated tensor names of one layer, read only once every layer has passed.
pub(super) enum LayerPlan {
    /// A convolution or the FC layer.
    Dense(DensePlan),
    /// Squeeze-and-excite's two convs, each with a bias.
    SqueezeExcite { reduce: DensePlan, expand: DensePlan },
}

/// One weight tensor and the tensors after it.
pub(super) struct DensePlan {
    /// The conv's base name ([`names`]).
    base: String,
    quantized: bool,
    affine: Vec<String>,
    batch_norm: bool,
}

impl LayerPlan {
    /// Whether the layer stores BatchNorm tensors (else a bias).
    pub(super) fn batch_norm(&self) -> bool {
        match self {
            LayerPlan::Dense(plan) => plan.batch_norm,
            LayerPlan::SqueezeExcite { .. } => false,
        }
    }

    pub(super) fn load(self, f: &FileCtx) -> Result<RawLayer, WeightsError> {
        Ok(match self {
            LayerPlan::Dense(plan) => RawLayer::Dense(plan.load(f)?),
            LayerPlan::SqueezeExcite { reduce, expand } => RawLayer::SqueezeExcite {
                reduce: reduce.load(f)?,
                expand: expand.load(f)?,
            },
        })
    }
}

/// Validates the tensors of `layer`, marking them used. None for the pool. Squeeze-and-excite
/// layers have two 1x1 convs with biases: `NAME.reduce.{weight,bias}` and
/// `NAME.expand.{weight,bias}` (see `squeeze_excite_shapes`).
pub(super) fn plan_layer(
    f: &FileCtx,
    layer: &Layer,
    context: &Context,
    used: &mut HashSet<String>,
) -> Result<Option<LayerPlan>, WeightsError> {
    if let Some((reduce, expand)) = squeeze_excite_shapes(layer) {
        let (reduce_base, expand_base) = names::squeeze_excite(&layer.name);
        return Ok(Some(LayerPlan::SqueezeExcite {
            reduce: plan_conv(f, &reduce_base, &reduce, false, true, context, used)?,
            expand: plan_conv(f, &expand_base, &expand, false, true, context, used)?,
        }));
    }
    let Some(shape) = weight_shape(layer) else {
        return Ok(None);
    };
    let is_fc = layer.kind == LayerKind::Fc;
    let plan = plan_conv(f, &layer.name, &shape, is_fc, is_fc, context, used)?;
    Ok(Some(LayerPlan::Dense(plan)))
}

/// One weight tensor `BASE.weight` of `shape` (with its quantisation scalars when U8) and its
/// bias or BatchNorm tensors (`bias_only`: a bias is required).
fn plan_conv(
    f: &FileCtx,
    base: &str,
    shape: &[usize],
    is_fc: bool,
    bias_only: bool,
    context: &Context,
    used: &mut HashSet<String>,
) -> Result<DensePlan, WeightsError> {
    let weight = names::weight(base);
    let dtype = check(f, &weight, shape, Allowed::Weight, context, is_fc)?;
    used.insert(weight);
    let quantized = dtype == Dtype::U8;
    if quantized {
        for name in [names::weight_scale(base), names::weight_zero_point(base)] {
            check(f, &name, &[1], Allowed::Scalar, context, false)?;
            used.insert(name);
        }
    }
    let channels = shape[0];
    let bn_names = names::batch_norm(base);
    let batch_norm = !bias_only && bn_names.iter().any(|n| f.has(n));
    let affine = if batch_norm {
        bn_names.to_vec()
    } else {
        vec![names::bias(base)]
    };
    for name in &affine {
        check(f, name, &[channels], Allowed::Float, context, is_fc)?;
        used.insert(name.clone());
    }
    Ok(DensePlan {
        base: base.to_string(),
        quantized,
        affine,
        batch_norm,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Allowed {
    Weight,
    Float,
    /// A one-element float (quantisation scale or zero point): shape [1] or [].
    Scalar,
}

/// Checks presence, dtype and shape of one tensor; returns its dtype.
fn check(
    f: &FileCtx,
    name: &str,
    expected: &[usize],
    allowed: Allowed,
    context: &Context,
    with_classes: bool,
) -> Result<Dtype, WeightsError> {
    let file = f.file.to_string();
    let expected_dtypes = if allowed == Allowed::Weight {
        WEIGHT_DTYPES
    } else {
        FLOAT_DTYPES
    };
    let Ok(view) = f.tensors.tensor(name) else {
        return Err(WeightsError::MissingTensor {
            file,
            tensor: name.to_string(),
            expected: format!("{expected_dtypes} of shape {expected:?}"),
        });
    };
    let dtype = view.dtype();
    let ok = match dtype {
        Dtype::F32 | Dtype::F16 | Dtype::BF16 => true,
        Dtype::U8 => allowed == Allowed::Weight,
        _ => false,
    };
    if !ok {
        return Err(WeightsError::Dtype {
            file,
            tensor: name.to_string(),
            dtype: format!("{dtype:?}"),
            expected: expected_dtypes.to_string(),
        });
    }
    let shape_ok = match allowed {
        Allowed::Scalar => view.shape().iter().product::<usize>() == 1 && view.shape().len() <= 1,
        _ => view.shape() == expected,
    };
    if !shape_ok {
        return Err(WeightsError::Shape {
            file,
            tensor: name.to_string(),
            shape: view.shape().to_vec(),
            expected: expected.to_vec(),
            context: context.describe(with_classes),
        });
    }
    Ok(dtype)
}

impl DensePlan {
    fn load(self, f: &FileCtx) -> Result<RawDense, WeightsError> {
        let weight = self.read_weight(f)?;
        let mut values = self
            .affine
            .iter()
            .map(|name| read_f32(f, name))
            .collect::<Result<Vec<_>, _>>()?;
        let affine = if self.batch_norm {
            let var = values.pop().unwrap_or_default();
            if let Some(i) = var.iter().position(|v| *v < 0.0) {
                return Err(WeightsError::Value {
                    file: f.file.to_string(),
                    tensor: self.affine[3].clone(),
                    problem: format!("has a negative variance ({}) at index {i}", var[i]),
                });
            }
            let mean = values.pop().unwrap_or_default();
            let beta = values.pop().unwrap_or_default();
            let gamma = values.pop().unwrap_or_default();
            RawAffine::BatchNorm {
                gamma,
                beta,
                mean,
                var,
            }
        } else {
            RawAffine::Bias(values.pop().unwrap_or_default())
        };
        Ok(RawDense { weight, affine })
    }

    /// The weight as stored: U8 with its scale and zero point, else f32. A U8 weight whose
    /// dequantized values would not be finite is refused like a non-finite float.
    fn read_weight(&self, f: &FileCtx) -> Result<Values, WeightsError> {
        let name = names::weight(&self.base);
        if !self.quantized {
            return read_f32(f, &name).map(Values::F32);
        }
        let scalar = |name: String| -> Result<f32, WeightsError> {
            let values = read_f32(f, &name)?;
            Ok(values.first().copied().unwrap_or(f32::NAN))
        };
        let scale = scalar(names::weight_scale(&self.base))?;
        let zero_point = scalar(names::weight_zero_point(&self.base))?;
        let q = view(f, &name)?.data().to_vec();
        if let Some(i) = q
            .iter()
            .position(|&q| !dequantize(q, scale, zero_point).is_finite())
        {
            return Err(non_finite(f, &name, i, dequantize(q[i], scale, zero_point)));
        }
        Ok(Values::U8 { q, scale, zero_point })
    }
}

/// The tensor `name`, which [`check`] found.
fn view<'data>(f: &FileCtx<'_, 'data>, name: &str) -> Result<TensorView<'data>, WeightsError> {
    f.tensors.tensor(name).map_err(|e| WeightsError::Format {
        file: f.file.to_string(),
        reason: e.to_string(),
    })
}

/// One float tensor as f32 values, refusing NaN and infinity.
fn read_f32(f: &FileCtx, name: &str) -> Result<Vec<f32>, WeightsError> {
    let candle = |source| WeightsError::Candle {
        file: f.file.to_string(),
        source,
    };
    let view = view(f, name)?;
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 | Dtype::BF16 => {
            let dtype = if view.dtype() == Dtype::F16 {
                candle_core::DType::F16
            } else {
                candle_core::DType::BF16
            };
            let device = candle_core::Device::Cpu;
            candle_core::Tensor::from_raw_buffer(data, dtype, &[data.len() / 2], &device)
                .and_then(|t| t.to_dtype(candle_core::DType::F32))
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(candle)?
        }
        other => {
            return Err(WeightsError::Dtype {
                file: f.file.to_string(),
                tensor: name.to_string(),
                dtype: format!("{other:?}"),
                expected: FLOAT_DTYPES.to_string(),
            });
        }
    };
    finite(f, name, &values)?;
    Ok(values)
}

fn finite(f: &FileCtx, name: &str, values: &[f32]) -> Result<(), WeightsError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(non_finite(f, name, i, values[i])),
    }
}

fn non_finite(f: &FileCtx, name: &str, index: usize, value: f32) -> WeightsError {
    WeightsError::Value {
        file: f.file.to_string(),
        tensor: name.to_string(),
        problem: format!("contains a non-finite value ({value}) at index {index}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LayerWeights;
    use crate::nn::weights::{WeightOverrides, parse};
    use crate::nn::{MobileNet, ModelId};

    /// The shipped files' uint8 weights are read as they are stored, and the network built
    /// from them holds exactly scale * (q - zero_point): what the loader used to produce.
    #[test]
    fn uint8_weights_stay_quantized_until_a_network_is_built() {
        for id in ModelId::ALL {
            let parsed = parse(id.bytes(), id.file_name(), &WeightOverrides::default()).unwrap();
            let net = MobileNet::from_embedded(id, &candle_core::Device::Cpu).unwrap();
            let mut checked = 0;
            for (raw, folded) in parsed.layers.into_iter().zip(net.folded_weights().unwrap()) {
                let (Some(RawLayer::Dense(raw)), LayerWeights::Dense(folded)) = (raw, folded) else {
                    continue;
                };
                let Values::U8 { q, scale, zero_point } = &raw.weight else {
                    panic!("{}: a shipped weight is not uint8", id.name());
                };
                assert_eq!(q.len(), folded.weight.len());
                if let RawAffine::Bias(_) = raw.affine {
                    let real: Vec<f32> = q.iter().map(|&q| dequantize(q, *scale, *zero_point)).collect();
                    assert_eq!(real, folded.weight, "{}", id.name());
                    assert_eq!(raw.weight.into_f32(), real);
                    checked += 1;
                }
            }
            assert!(checked > 0, "{}", id.name());
        }
    }

    /// A uint8 weight is refused when a value would dequantize to infinity, as a float weight
    /// holding one is.
    #[test]
    fn uint8_weights_that_dequantize_to_infinity_are_refused() {
        let device = candle_core::Device::Cpu;
        let id = ModelId::V1_025_128;
        let mut tensors = candle_core::safetensors::load_buffer(id.bytes(), &device).unwrap();
        let huge = candle_core::Tensor::new(&[3e38f32], &device).unwrap();
        tensors.insert(names::weight_scale("pw_2"), huge);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge_scale.safetensors");
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let Err(err) = parse(&bytes, "huge", &WeightOverrides::default()) else {
            panic!("a scale of 3e38 loaded");
        };
        let zero_point = tensors[&names::weight_zero_point("pw_2")]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        let q = tensors[&names::weight("pw_2")]
            .flatten_all()
            .unwrap()
            .to_vec1::<u8>()
            .unwrap();
        // |q - zero_point| >= 2 overflows.
        let index = q
            .iter()
            .position(|&q| (f32::from(q) - zero_point).abs() >= 2.0)
            .unwrap();
        let sign = if f32::from(q[index]) > zero_point { "" } else { "-" };
        assert_eq!(
            err.to_string(),
            format!("huge: tensor pw_2.weight contains a non-finite value ({sign}inf) at index {index}")
        );
    }
}

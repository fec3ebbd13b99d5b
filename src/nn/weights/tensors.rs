//! Each layer's tensors: checked (presence, dtype, shape) for every layer first, then read.

use std::collections::HashSet;

use safetensors::Dtype;

use super::{Context, FileCtx, WeightsError, names};
use crate::arch::{Layer, LayerKind};
use crate::nn::layers::{RawAffine, RawLayer, squeeze_excite_shapes, weight_shape};

const WEIGHT_DTYPES: &str = "U8 (with weight_scale and weight_zero_point), F32, F16 or BF16";
const FLOAT_DTYPES: &str = "F32, F16 or BF16";

/// The validated tensor names of one layer, loaded only once every layer has passed.
pub(super) struct LayerPlan {
    /// The conv's base name ([`names`]).
    base: String,
    quantized: bool,
    affine: Vec<String>,
    pub(super) batch_norm: bool,
    /// Squeeze-and-excite: the expand conv's plan (this plan is then the reduce conv's).
    second: Option<Box<LayerPlan>>,
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
        let mut first = plan_conv(f, &reduce_base, &reduce, false, true, context, used)?;
        let second = plan_conv(f, &expand_base, &expand, false, true, context, used)?;
        first.second = Some(Box::new(second));
        return Ok(Some(first));
    }
    let Some(shape) = weight_shape(layer) else {
        return Ok(None);
    };
    let is_fc = layer.kind == LayerKind::Fc;
    plan_conv(f, &layer.name, &shape, is_fc, is_fc, context, used).map(Some)
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
) -> Result<LayerPlan, WeightsError> {
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
    Ok(LayerPlan {
        base: base.to_string(),
        quantized,
        affine,
        batch_norm,
        second: None,
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

impl LayerPlan {
    pub(super) fn load(self, f: &FileCtx) -> Result<RawLayer, WeightsError> {
        let second = match self.second {
            Some(plan) => Some(Box::new(plan.load(f)?)),
            None => None,
        };
        let weight_name = names::weight(&self.base);
        let mut weight = read_f32(f, &weight_name)?;
        if self.quantized {
            let scalar = |name: String| -> Result<f32, WeightsError> {
                let values = read_f32(f, &name)?;
                Ok(values.first().copied().unwrap_or(f32::NAN))
            };
            let scale = scalar(names::weight_scale(&self.base))?;
            let zero_point = scalar(names::weight_zero_point(&self.base))?;
            // (q - zp) is exact in f32 for 8-bit q; one rounding in the product, as the
            // reference computes it.
            for w in &mut weight {
                *w = (*w - zero_point) * scale;
            }
            finite(f, &weight_name, &weight)?;
        }
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
        Ok(RawLayer {
            weight,
            affine,
            second,
        })
    }
}

/// One tensor as f32 values (U8 as its integer values), refusing NaN and infinity.
fn read_f32(f: &FileCtx, name: &str) -> Result<Vec<f32>, WeightsError> {
    let candle = |source| WeightsError::Candle {
        file: f.file.to_string(),
        source,
    };
    let view = f.tensors.tensor(name).map_err(|e| WeightsError::Format {
        file: f.file.to_string(),
        reason: e.to_string(),
    })?;
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::U8 => data.iter().map(|&q| f32::from(q)).collect(),
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
        Some(i) => Err(WeightsError::Value {
            file: f.file.to_string(),
            tensor: name.to_string(),
            problem: format!("contains a non-finite value ({}) at index {i}", values[i]),
        }),
    }
}

//! Reading and validating safetensors weight files against the architecture spec.
//!
//! Every tensor is checked before any is used: the expected names follow `arch::instantiate`
//! (NAME.weight for each convolution and the FC layer; NAME.bias, or BatchNorm's
//! NAME.bn.{weight,bias,running_mean,running_var} for convolutions; logits.bias; for v3's
//! squeeze-and-excite layers NAME.reduce.{weight,bias} [se, C, 1, 1] / [se] and
//! NAME.expand.{weight,bias} [C, se, 1, 1] / [C], e.g. `block_3.se.reduce.weight`), with allowed
//! dtypes and OIHW shapes. The first problem, in layer order, is reported by tensor and file
//! name; tensors the spec does not know are refused too, so a file for another architecture
//! cannot load by accident.
//!
//! Weights may be F32, F16, BF16, or U8 with per-tensor NAME.weight_scale and
//! NAME.weight_zero_point (real = scale * (q - zero_point), the shipped files' format); all are
//! converted to f32 at load, and non-finite values are refused.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use safetensors::{Dtype, SafeTensors};

use super::layers::{RawAffine, RawLayer, squeeze_excite_shapes, weight_shape};
use crate::arch::{Alpha, Config, ConfigError, Family, Layer, LayerKind, Resolution, Variant, instantiate};

/// Resolution assumed when neither the file nor the caller gives one: the paper's 224.
pub const DEFAULT_RESOLUTION: u32 = 224;

/// Configuration the caller supplies for files whose metadata lacks it. The file's metadata
/// wins where present; fields left `None` are inferred from tensor shapes where that is
/// unambiguous (alpha from logits.weight's input width, classes from its rows, depth
/// multiplier from dw_1.weight, variant from the layer names); the resolution cannot be
/// inferred and defaults to [`DEFAULT_RESOLUTION`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WeightOverrides {
    pub alpha: Option<f64>,
    pub resolution: Option<u32>,
    pub classes: Option<u32>,
    pub depth_multiplier: Option<u32>,
    pub variant: Option<Variant>,
    /// The family (`--family`) when the metadata has neither `family` nor `architecture`.
    pub family: Option<Family>,
    /// MobileNetV3 minimalistic (`--minimalistic`) when the metadata lacks `minimalistic`.
    pub minimalistic: Option<bool>,
}

/// Why a weight file was refused. Every message starts with the file name.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a valid safetensors file ({reason}); is it truncated?")]
    Format { file: String, reason: String },
    #[error("{file}: {size} bytes is larger than any MobileNet weight file ({limit} bytes at most)")]
    TooLarge { file: String, size: u64, limit: u64 },
    #[error("{file}: metadata {key} = '{value}' is not {expected}")]
    Metadata {
        file: String,
        key: String,
        value: String,
        expected: String,
    },
    #[error("{file}: invalid model configuration: {source}")]
    Config {
        file: String,
        #[source]
        source: ConfigError,
    },
    #[error("{file}: missing tensor {tensor} ({expected})")]
    MissingTensor {
        file: String,
        tensor: String,
        expected: String,
    },
    #[error("{file}: unexpected tensor {tensor}: not part of {context}")]
    UnexpectedTensor {
        file: String,
        tensor: String,
        context: String,
    },
    #[error("{file}: tensor {tensor} has dtype {dtype}, expected {expected}")]
    Dtype {
        file: String,
        tensor: String,
        dtype: String,
        expected: String,
    },
    #[error("{file}: tensor {tensor} has shape {shape:?}, expected {expected:?} for {context}")]
    Shape {
        file: String,
        tensor: String,
        shape: Vec<usize>,
        expected: Vec<usize>,
        context: String,
    },
    #[error("{file}: tensor {tensor} {problem}")]
    Value {
        file: String,
        tensor: String,
        problem: String,
    },
    #[error("{file}: {source}")]
    Candle {
        file: String,
        #[source]
        source: candle_core::Error,
    },
}

/// A validated file: the configuration it fits and each layer's values, index-aligned with
/// `instantiate(&config)` (None for the pool).
pub(crate) struct ParsedWeights {
    pub config: Config,
    pub trained_resolution: Option<u32>,
    pub layers: Vec<Option<RawLayer>>,
    pub batch_norm: bool,
}

const WEIGHT_DTYPES: &str = "U8 (with weight_scale and weight_zero_point), F32, F16 or BF16";
const FLOAT_DTYPES: &str = "F32, F16 or BF16";

/// Parses `bytes` (the content of `file`) into validated per-layer values.
pub(crate) fn parse(
    bytes: &[u8],
    file: &str,
    overrides: &WeightOverrides,
) -> Result<ParsedWeights, WeightsError> {
    let format = |e: safetensors::SafeTensorError| WeightsError::Format {
        file: file.to_string(),
        reason: e.to_string(),
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(format)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(format)?;
    let file_ctx = FileCtx {
        file,
        tensors: &tensors,
    };
    let metadata = header.metadata().clone().unwrap_or_default();
    let (config, trained_resolution, inferred_alpha) = resolve_config(&file_ctx, &metadata, overrides)?;
    let layers = instantiate(&config);
    let context = Context {
        config,
        inferred_alpha,
    };

    let mut used = HashSet::new();
    let mut plans = Vec::with_capacity(layers.len());
    for layer in &layers {
        plans.push(plan_layer(&file_ctx, layer, &context, &mut used)?);
    }
    let mut extra: Vec<String> = tensors
        .names()
        .into_iter()
        .filter(|n| !used.contains(*n))
        .map(str::to_string)
        .collect();
    extra.sort();
    if let Some(tensor) = extra.into_iter().next() {
        return Err(WeightsError::UnexpectedTensor {
            file: file.to_string(),
            tensor,
            context: format!("{} {}", context.config.family.title(), context.describe(false)),
        });
    }

    let batch_norm = plans
        .iter()
        .any(|p| matches!(p, Some(LayerPlan { batch_norm: true, .. })));
    let layers = plans
        .into_iter()
        .map(|plan| plan.map(|p| p.load(&file_ctx)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ParsedWeights {
        config,
        trained_resolution,
        layers,
        batch_norm,
    })
}

struct FileCtx<'a, 'data> {
    file: &'a str,
    tensors: &'a SafeTensors<'data>,
}

impl FileCtx<'_, '_> {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.tensor(name).ok().map(|t| t.shape().to_vec())
    }

    fn has(&self, name: &str) -> bool {
        self.tensors.tensor(name).is_ok()
    }
}

/// What shape errors say the expectation was derived from.
struct Context {
    config: Config,
    inferred_alpha: bool,
}

impl Context {
    fn describe(&self, with_classes: bool) -> String {
        let c = &self.config;
        let mut s = format!("alpha {}", alpha_text(c.alpha));
        if self.inferred_alpha {
            s.push_str(" (inferred from logits.weight)");
        }
        if c.depth_multiplier != 1 {
            s.push_str(&format!(", depth multiplier {}", c.depth_multiplier));
        }
        if c.variant != Variant::Standard {
            s.push_str(&format!(", variant {}", c.variant));
        }
        if with_classes {
            s.push_str(&format!(", {} classes", c.classes));
        }
        s
    }
}

/// "1.0", "0.75": alpha as model names print it.
pub(crate) fn alpha_text(alpha: f64) -> String {
    let s = format!("{alpha}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

fn meta<T: FromStr>(
    file: &str,
    metadata: &HashMap<String, String>,
    keys: &[&str],
    expected: &str,
) -> Result<Option<T>, WeightsError> {
    for key in keys {
        if let Some(value) = metadata.get(*key) {
            return value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| WeightsError::Metadata {
                    file: file.to_string(),
                    key: key.to_string(),
                    value: value.clone(),
                    expected: expected.to_string(),
                });
        }
    }
    Ok(None)
}

/// The configuration from metadata, else the caller's overrides, else the tensors' shapes.
/// Returns it with the trained resolution (metadata only) and whether alpha was inferred.
fn resolve_config(
    f: &FileCtx,
    metadata: &HashMap<String, String>,
    overrides: &WeightOverrides,
) -> Result<(Config, Option<u32>, bool), WeightsError> {
    let file = f.file;
    let family = resolve_family(f, metadata, overrides)?;
    // Alpha and resolution go through their one parser, so a bad value is reported as this
    // file's metadata, with the range it must be in.
    let trained_resolution: Option<u32> = meta::<Resolution>(
        file,
        metadata,
        &["resolution"],
        "an integer resolution from 32 to 8192",
    )?
    .map(Resolution::get);
    let variant = match meta::<Variant>(file, metadata, &["variant"], "standard, full-conv or shallow")? {
        Some(v) => v,
        None if family == Family::V1 => overrides.variant.unwrap_or_else(|| infer_variant(f)),
        None => overrides.variant.unwrap_or(Variant::Standard),
    };
    let minimalistic = match meta::<bool>(file, metadata, &["minimalistic"], "true or false")? {
        Some(m) => m,
        // A v3 file without any squeeze-and-excite tensor is a minimalistic one.
        None => overrides
            .minimalistic
            .unwrap_or_else(|| family.is_v3() && !f.tensors.names().iter().any(|n| n.contains(".se."))),
    };
    let logits = f.shape("logits.weight").filter(|s| s.len() == 2);
    let mut inferred_alpha = false;
    let alpha = match meta::<Alpha>(file, metadata, &["alpha"], "a width multiplier in (0, 2]")?
        .map(Alpha::get)
        .or(overrides.alpha)
    {
        Some(a) => a,
        None if family == Family::V1 => {
            let Some(logits) = &logits else {
                return Err(missing_logits(f));
            };
            inferred_alpha = true;
            logits[1] as f64 / 1024.0
        }
        // v2/v3 keep the head width when alpha < 1, so logits do not give alpha: assume 1.0
        // (the shape check then names the first tensor that disagrees).
        None => 1.0,
    };
    let classes = match meta(file, metadata, &["num_classes", "classes"], "an integer")?.or(overrides.classes)
    {
        Some(c) => c,
        None => match &logits {
            Some(l) => u32::try_from(l[0]).unwrap_or(u32::MAX),
            None => return Err(missing_logits(f)),
        },
    };
    let depth_multiplier = meta(file, metadata, &["depth_multiplier"], "an integer")?
        .or(overrides.depth_multiplier)
        .unwrap_or_else(|| {
            if family == Family::V1 {
                infer_depth_multiplier(f)
            } else {
                1
            }
        });
    let resolution = trained_resolution
        .or(overrides.resolution)
        .unwrap_or(DEFAULT_RESOLUTION);
    let config = Config::build(
        family,
        alpha,
        resolution,
        depth_multiplier,
        classes,
        variant,
        minimalistic,
    )
    .map_err(|source| WeightsError::Config {
        file: file.to_string(),
        source,
    })?;
    Ok((config, trained_resolution, inferred_alpha))
}

/// The family: metadata `family` (v1, v2, v3-large, v3-small) or `architecture`
/// (mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small), else `--family`, else
/// the tensor names (`block_0.dw.weight` means v2 or v3; `conv_head.weight` means v3, large
/// with 1280 outputs, small with 1024), else v1.
fn resolve_family(
    f: &FileCtx,
    metadata: &HashMap<String, String>,
    overrides: &WeightOverrides,
) -> Result<Family, WeightsError> {
    let bad = |key: &str, value: &str, expected: &str| WeightsError::Metadata {
        file: f.file.to_string(),
        key: key.into(),
        value: value.into(),
        expected: expected.into(),
    };
    if let Some(value) = metadata.get("family") {
        return value
            .trim()
            .parse()
            .map_err(|_| bad("family", value, "v1, v2, v3-large or v3-small"));
    }
    if let Some(value) = metadata.get("architecture") {
        return match value.trim() {
            "mobilenet_v1" => Ok(Family::V1),
            "mobilenet_v2" => Ok(Family::V2),
            "mobilenet_v3_large" => Ok(Family::V3Large),
            "mobilenet_v3_small" => Ok(Family::V3Small),
            _ => Err(bad(
                "architecture",
                value,
                "mobilenet_v1, mobilenet_v2, mobilenet_v3_large or mobilenet_v3_small",
            )),
        };
    }
    if let Some(family) = overrides.family {
        return Ok(family);
    }
    if !f.has("block_0.dw.weight") {
        return Ok(Family::V1);
    }
    Ok(
        match f.shape("conv_head.weight").and_then(|s| s.first().copied()) {
            None => Family::V2,
            Some(1024) => Family::V3Small,
            Some(_) => Family::V3Large,
        },
    )
}

fn missing_logits(f: &FileCtx) -> WeightsError {
    WeightsError::MissingTensor {
        file: f.file.to_string(),
        tensor: "logits.weight".into(),
        expected: "a [classes, channels] matrix, needed to infer alpha and classes".into(),
    }
}

fn infer_variant(f: &FileCtx) -> Variant {
    if f.has("conv_1.weight") {
        return Variant::FullConv;
    }
    let removed_any = (7..=11).any(|i| f.has(&format!("dw_{i}.weight")) || f.has(&format!("pw_{i}.weight")));
    if f.has("dw_1.weight") && !removed_any {
        Variant::Shallow
    } else {
        Variant::Standard
    }
}

/// dw_1's output channels over the stem's; 1 when that is not a whole number (the shape
/// check then reports the mismatch).
fn infer_depth_multiplier(f: &FileCtx) -> u32 {
    let stem = f.shape("conv_0.weight").and_then(|s| s.first().copied());
    let dw = f.shape("dw_1.weight").and_then(|s| s.first().copied());
    match (stem, dw) {
        (Some(stem), Some(dw)) if stem > 0 && dw % stem == 0 => u32::try_from(dw / stem).unwrap_or(1).max(1),
        _ => 1,
    }
}

/// The validated tensor names of one layer, loaded only once every layer has passed.
struct LayerPlan {
    weight: String,
    quantized: bool,
    affine: Vec<String>,
    batch_norm: bool,
    /// Squeeze-and-excite: the expand conv's plan (this plan is then the reduce conv's).
    second: Option<Box<LayerPlan>>,
}

/// Validates the tensors of `layer`, marking them used. None for the pool. Squeeze-and-excite
/// layers have two 1x1 convs with biases: `NAME.reduce.{weight,bias}` and
/// `NAME.expand.{weight,bias}` (see `squeeze_excite_shapes`).
fn plan_layer(
    f: &FileCtx,
    layer: &Layer,
    context: &Context,
    used: &mut HashSet<String>,
) -> Result<Option<LayerPlan>, WeightsError> {
    if let Some((reduce, expand)) = squeeze_excite_shapes(layer) {
        let mut first = plan_conv(
            f,
            &format!("{}.reduce", layer.name),
            &reduce,
            false,
            true,
            context,
            used,
        )?;
        let second = plan_conv(
            f,
            &format!("{}.expand", layer.name),
            &expand,
            false,
            true,
            context,
            used,
        )?;
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
    let weight = format!("{base}.weight");
    let dtype = check(f, &weight, shape, Allowed::Weight, context, is_fc)?;
    used.insert(weight.clone());
    let quantized = dtype == Dtype::U8;
    if quantized {
        for suffix in ["weight_scale", "weight_zero_point"] {
            let name = format!("{base}.{suffix}");
            check(f, &name, &[1], Allowed::Scalar, context, false)?;
            used.insert(name);
        }
    }
    let channels = shape[0];
    let bn_names: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
        .iter()
        .map(|s| format!("{base}.bn.{s}"))
        .collect();
    let batch_norm = !bias_only && bn_names.iter().any(|n| f.has(n));
    let affine = if batch_norm {
        bn_names
    } else {
        vec![format!("{base}.bias")]
    };
    for name in &affine {
        check(f, name, &[channels], Allowed::Float, context, is_fc)?;
        used.insert(name.clone());
    }
    Ok(LayerPlan {
        weight,
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
    fn load(self, f: &FileCtx) -> Result<RawLayer, WeightsError> {
        let second = match self.second {
            Some(plan) => Some(Box::new(plan.load(f)?)),
            None => None,
        };
        let mut weight = read_f32(f, &self.weight)?;
        if self.quantized {
            let base = self.weight.trim_end_matches(".weight");
            let scalar = |suffix: &str| -> Result<f32, WeightsError> {
                let values = read_f32(f, &format!("{base}.{suffix}"))?;
                Ok(values.first().copied().unwrap_or(f32::NAN))
            };
            let (scale, zero_point) = (scalar("weight_scale")?, scalar("weight_zero_point")?);
            // (q - zp) is exact in f32 for 8-bit q; one rounding in the product, as the
            // reference computes it.
            for w in &mut weight {
                *w = (*w - zero_point) * scale;
            }
            finite(f, &self.weight, &weight)?;
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

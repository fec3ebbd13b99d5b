//! Reading and validating safetensors weight files against the architecture spec.
//!
//! Every tensor is checked before any is used: the expected names follow `arch::instantiate`
//! through one naming scheme ([`names`]), with allowed dtypes and OIHW shapes. The first
//! problem, in layer order, is reported by tensor and file name; tensors the spec does not
//! know are refused too, so a file for another architecture cannot load by accident.
//!
//! - [`metadata`]: the configuration a file fits (metadata, else the caller's flags, else the
//!   tensors' shapes);
//! - [`tensors`]: each layer's tensors checked, then read;
//! - [`names`]: the tensor-naming scheme, shared with writers;
//! - [`activations`]: the optional activation quantization (`--precision int8`), typed.
//!
//! Weights may be F32, F16, BF16, or U8 with per-tensor NAME.weight_scale and
//! NAME.weight_zero_point (real = scale * (q - zero_point), the shipped files' format). Floats
//! are read as f32; U8 weights stay quantized ([`Values::U8`]) until a network is built from
//! them. Non-finite values, and U8 values that would dequantize to one, are refused.

mod activations;
mod metadata;
pub mod names;
mod tensors;

use std::collections::HashSet;

use safetensors::SafeTensors;

use super::layers::RawLayer;
use crate::arch::{Config, ConfigError, Variant, instantiate};
pub use activations::{ActivationQuantization, LayerActivations};
pub(crate) use metadata::alpha_text;
pub use metadata::{DEFAULT_RESOLUTION, LABELS_KEY, WeightOverrides};
use metadata::{resolve_config, resolve_labels};
use tensors::{LayerPlan, plan_layer};
pub use tensors::{Values, dequantize};

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
    /// The class names of metadata `labels`, when the file has its own.
    pub labels: Option<Vec<String>>,
    pub layers: Vec<Option<RawLayer>>,
    pub batch_norm: bool,
    /// The file's activation quantization, when it has one.
    pub activations: Option<ActivationQuantization>,
}

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
    let labels = resolve_labels(file, &metadata, config.classes)?;
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
    let activations = activations::read(&file_ctx, &layers, &mut used)?;
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

    let batch_norm = plans.iter().flatten().any(LayerPlan::batch_norm);
    let layers = plans
        .into_iter()
        .map(|plan| plan.map(|p| p.load(&file_ctx)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ParsedWeights {
        config,
        trained_resolution,
        labels,
        layers,
        batch_norm,
        activations,
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

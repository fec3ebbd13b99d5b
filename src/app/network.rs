//! Loading the network a plan names (shipped weights, a file, or seeded random weights),
//! moving it to the resolution asked for, and preparing it at the plan's precision: at int8
//! the same file's uint8 weights and activation quantization as TFLite's graph
//! ([`crate::quant::NetworkParams::from_safetensors`]), or synthetic quantization for random
//! weights ([`crate::quant::NetworkParams::random`]).

use std::borrow::Cow;

use anyhow::{Context, Result};
use candle_core::Device;

use super::plan::{ModelChoice, ModelSource, RunPlan, UsageError};
use crate::arch::Config;
use crate::bench::WeightsOrigin;
use crate::infer::{Precision, Runner, int8_unsupported};
use crate::memory::estimate;
use crate::nn::{MAX_WEIGHTS_BYTES, MobileNet, names};
use crate::output::path_text;
use crate::quant::{NetworkParams, QuantizedNetwork};

/// Seed of the random weights used to time variants without pretrained weights.
pub const RANDOM_SEED: u64 = super::plan::bench::RANDOM_SEED;

/// A loaded network, where its weights came from, and at int8 its quantized form.
pub struct Loaded {
    pub net: MobileNet,
    pub origin: WeightsOrigin,
    pub quantized: Option<QuantizedNetwork>,
}

impl Loaded {
    /// The runner the plan asks for: the engine at f32, the int8 kernels at int8.
    pub fn runner(self, run: &RunPlan) -> Result<Runner> {
        match self.quantized {
            Some(network) => Runner::int8(self.net, network.with_threads(run.threads)?, run.int8_kernels()),
            None => Runner::new(self.net, run.engine, run.threads),
        }
    }
}

/// Refuses a run whose memory, estimated from the cost model, exceeds the limit: before loading
/// when the configuration is known from the flags, else (a weights file) once its header and
/// tensors are read, before the engine allocates anything.
fn check_memory(
    config: &Config,
    source: &str,
    run: &RunPlan,
    batch: usize,
    decoding: u64,
) -> Result<(), UsageError> {
    run.check_memory(
        estimate(config, batch, run.engine, run.precision, decoding),
        format!("{source} at {r}x{r}, batch {batch},", r = config.resolution),
        "lower --res or --batch",
    )
}

/// Loads `choice` for batches of `batch` images, `decoding` bytes being the most one image
/// decode may allocate (0 when no image is decoded).
pub fn load(choice: &ModelChoice, run: &RunPlan, batch: usize, decoding: u64) -> Result<Loaded> {
    load_from(choice, None, run, batch, decoding)
}

/// The weights file `choice` names, whole: the embedded bytes of a shipped model, a file's
/// content (at most [`MAX_WEIGHTS_BYTES`]); None for random weights, which have no file.
pub fn weights_bytes(choice: &ModelChoice) -> Result<Option<Cow<'static, [u8]>>> {
    Ok(match &choice.source {
        ModelSource::Shipped(id) => Some(Cow::Borrowed(id.bytes())),
        ModelSource::File { path, .. } => {
            let size = std::fs::metadata(path)
                .with_context(|| format!("{}: cannot read", path_text(path)))?
                .len();
            if size > MAX_WEIGHTS_BYTES {
                anyhow::bail!(
                    "{}: {size} bytes is larger than any MobileNet weight file ({MAX_WEIGHTS_BYTES} bytes at most)",
                    path_text(path)
                );
            }
            let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path_text(path)))?;
            Some(Cow::Owned(bytes))
        }
        ModelSource::Random(_) => None,
    })
}

/// [`load`], a file's network built from `bytes` (its content, as [`weights_bytes`] read it)
/// when given, so that what runs is what was read.
pub fn load_from(
    choice: &ModelChoice,
    bytes: Option<&[u8]>,
    run: &RunPlan,
    batch: usize,
    decoding: u64,
) -> Result<Loaded> {
    if let Some(config) = choice.config() {
        check_memory(&config, &config.label(), run, batch, decoding)?;
    }
    let device = Device::Cpu;
    let (net, origin) = match &choice.source {
        ModelSource::Shipped(id) => (
            MobileNet::from_embedded(*id, &device)?,
            WeightsOrigin::Shipped {
                model: id.name().to_string(),
            },
        ),
        ModelSource::File { path, overrides } => (
            match bytes {
                Some(bytes) => {
                    let name = path
                        .file_stem()
                        .map_or_else(|| path_text(path), |s| s.to_string_lossy().into_owned());
                    MobileNet::from_bytes(bytes, &name, &path_text(path), *overrides, &device)?
                }
                None => MobileNet::from_file(path, *overrides, &device)?,
            },
            WeightsOrigin::File {
                path: path_text(path),
            },
        ),
        ModelSource::Random(config) => (
            MobileNet::random(*config, RANDOM_SEED, &device)?,
            WeightsOrigin::Random { seed: RANDOM_SEED },
        ),
    };
    let net = match choice.resolution {
        Some(r) if r != net.config().resolution => {
            net.with_resolution(r).map_err(|e| UsageError::Invalid {
                flag: "--res",
                value: r.to_string(),
                reason: e.to_string(),
            })?
        }
        _ => net,
    };
    if let ModelSource::File { path, .. } = &choice.source {
        let config = net.config();
        check_memory(
            config,
            &format!("{} ({})", path_text(path), config.label()),
            run,
            batch,
            decoding,
        )?;
    }
    let quantized = match run.precision {
        Precision::F32 => None,
        Precision::Int8 => Some(quantize(&choice.source, &net)?),
    };
    Ok(Loaded {
        net,
        origin,
        quantized,
    })
}

/// `net` as TFLite's uint8 graph: from the weights file's uint8 weights and activation
/// quantization, or synthetic for random weights. Refused in one line naming the file and what
/// it lacks.
fn quantize(source: &ModelSource, net: &MobileNet) -> Result<QuantizedNetwork> {
    let config = net.config();
    let (file, params) = match source {
        ModelSource::Random(_) => (
            "random weights".to_string(),
            NetworkParams::random(config, RANDOM_SEED),
        ),
        ModelSource::Shipped(id) => (
            format!("embedded {}", id.file_name()),
            NetworkParams::from_safetensors(config, id.bytes(), id.bytes()),
        ),
        ModelSource::File { path, .. } => {
            let file = path_text(path);
            let refuse = |reason: String| UsageError::Conflict {
                flag: "--precision",
                other: format!("--weights {file}"),
                reason,
            };
            if let Some(reason) = int8_unsupported(config) {
                return Err(refuse(format!("it holds a {}: {reason}", config.label())).into());
            }
            if net.activation_quantization().is_none() {
                let tensors = names::activation_tensors(net.layers());
                let adds = if tensors.iter().any(|t| t.contains(".add.")) {
                    " and each residual ADD's block_k.add.{input1,input2,output}_{scale,zero_point}"
                } else {
                    ""
                };
                return Err(refuse(format!(
                    "the file has no activation quantization: int8 needs {} tensors, each convolution's NAME.{{input,output}}_{{scale,zero_point}}{adds} ({} first); run it at --precision f32",
                    tensors.len(),
                    tensors.first().map_or("", String::as_str)
                ))
                .into());
            }
            let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{file}: cannot read: {e}"))?;
            let params = NetworkParams::from_safetensors(config, &bytes, &bytes);
            (file, params)
        }
    };
    params
        .and_then(QuantizedNetwork::new)
        .map_err(|e| anyhow::anyhow!("{file}: cannot run at --precision int8: {e}"))
}

/// The note printed when a network runs off the resolution it was trained at.
pub fn off_resolution_note(net: &MobileNet) -> Option<String> {
    let trained = net.trained_resolution()?;
    let r = net.config().resolution;
    (trained != r).then(|| {
        format!(
            "note: {} was trained at {trained}x{trained}; running at {r}x{r}, off its trained resolution (accuracy will differ)",
            net.name()
        )
    })
}

//! Loading the network a plan names (shipped weights, a file, or seeded random weights) and
//! moving it to the resolution asked for.

use anyhow::Result;
use candle_core::Device;

use super::plan::{ModelChoice, ModelSource, RunPlan, UsageError};
use crate::arch::Config;
use crate::bench::WeightsOrigin;
use crate::memory::estimate;
use crate::nn::MobileNet;
use crate::output::path_text;

/// Seed of the random weights used to time variants without pretrained weights.
pub const RANDOM_SEED: u64 = super::plan::bench::RANDOM_SEED;

/// A loaded network and where its weights came from.
pub struct Loaded {
    pub net: MobileNet,
    pub origin: WeightsOrigin,
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
        estimate(config, batch, run.engine, decoding),
        format!("{source} at {r}x{r}, batch {batch},", r = config.resolution),
        "lower --res or --batch",
    )
}

/// Loads `choice` for batches of `batch` images, `decoding` bytes being the most one image
/// decode may allocate (0 when no image is decoded).
pub fn load(choice: &ModelChoice, run: &RunPlan, batch: usize, decoding: u64) -> Result<Loaded> {
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
            MobileNet::from_file(path, *overrides, &device)?,
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
    Ok(Loaded { net, origin })
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

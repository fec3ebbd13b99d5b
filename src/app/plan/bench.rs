//! The plan of `bench`: which network (shipped, a file, or random weights for any
//! configuration), the timing schedule, threads and memory.

use super::{ModelChoice, ModelSource, OutputPlan, RunPlan, UsageError, config_from};
use crate::bench::TimingPlan;
use crate::cli::{BenchArgs, ModelArgs};
use crate::nn::WeightOverrides;

/// Seed of the random weights used to time variants without pretrained weights.
pub const RANDOM_SEED: u64 = 0;

#[derive(Debug)]
pub struct BenchPlan {
    pub model: ModelChoice,
    pub timing: TimingPlan,
    pub batch: usize,
    /// Synthetic timings (tests): nothing runs.
    pub mock_timer: bool,
    pub per_layer: bool,
    pub run: RunPlan,
    pub output: OutputPlan,
    /// `--quiet` (global; set by `Plan::try_from`).
    pub quiet: bool,
}

/// The architecture flags given, by name, with the value shown in messages.
fn spec_flags(spec: &ModelArgs) -> Vec<(&'static str, String)> {
    let mut given = Vec::new();
    if let Some(a) = spec.alpha {
        given.push(("--alpha", a.to_string()));
    }
    if let Some(f) = spec.family {
        given.push(("--family", f.to_string()));
    }
    if let Some(v) = spec.variant {
        given.push(("--variant", v.to_string()));
    }
    if let Some(d) = spec.depth_multiplier {
        given.push(("--depth-multiplier", d.to_string()));
    }
    if let Some(c) = spec.classes {
        given.push(("--classes", c.to_string()));
    }
    if spec.minimalistic {
        given.push(("--minimalistic", String::new()));
    }
    given
}

impl TryFrom<&BenchArgs> for BenchPlan {
    type Error = UsageError;

    fn try_from(args: &BenchArgs) -> Result<Self, UsageError> {
        let spec = &args.spec;
        let resolution = spec.resolution.or(spec.rho).map(|r| r.get());
        let source = match (&args.model, &args.weights) {
            (Some(id), _) => {
                // A shipped model's architecture is fixed: refuse what would be ignored.
                if let Some((flag, value)) = spec_flags(spec).into_iter().next() {
                    return Err(UsageError::Conflict {
                        flag,
                        other: format!("--model {id}"),
                        reason: format!(
                            "{id} is the fixed {} ({flag} {value} would be ignored; only --res moves it)",
                            id.config().label()
                        )
                        .replace(" )", ")"),
                    });
                }
                ModelSource::Shipped(*id)
            }
            (None, Some(path)) => ModelSource::File {
                path: path.clone(),
                overrides: WeightOverrides {
                    alpha: spec.alpha.map(|a| a.get()),
                    resolution,
                    classes: spec.classes,
                    depth_multiplier: spec.depth_multiplier,
                    variant: spec.variant,
                    family: spec.family,
                    minimalistic: spec.minimalistic.then_some(true),
                },
            },
            (None, None) => ModelSource::Random(config_from(spec)?),
        };
        let model = ModelChoice {
            resolution: match source {
                // A random configuration already has its resolution.
                ModelSource::Random(_) => None,
                _ => resolution,
            },
            source,
        };
        let run = RunPlan::try_from(&args.run)?;
        model.check_int8(&run)?;
        let batch = args.timing.batch.unwrap_or(1) as usize;
        run.check_batch(&model, batch, 0)?;
        Ok(BenchPlan {
            model,
            timing: TimingPlan::try_from(&args.timing)?,
            batch,
            mock_timer: args.timing.mock_timer,
            per_layer: args.per_layer,
            run,
            output: OutputPlan::try_from(&args.out)?,
            quiet: false,
        })
    }
}

//! Plans of the commands that run real images through pretrained weights: `classify` and
//! `evaluate`.

use std::path::PathBuf;

use super::{ModelChoice, ModelSource, OutputPlan, RunPlan, Target, UsageError};
use crate::cli::{ClassifyArgs, ClassifyFormat, EvaluateArgs, WeightsArgs};
use crate::nn::{ModelId, WeightOverrides};
use crate::vision::Crop;

/// One thing to classify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `-`: one image read from standard input.
    Stdin,
    /// A file, or a directory whose images are classified.
    Path(PathBuf),
}

/// `classify`: the network, the images, and how results are written (streamed for JSON Lines
/// and CSV).
#[derive(Debug)]
pub struct ClassifyPlan {
    pub model: ModelChoice,
    pub inputs: Vec<Input>,
    pub top: usize,
    pub batch: usize,
    /// `--crop`: the fraction of each side the central crop keeps.
    pub crop: Crop,
    pub run: RunPlan,
    pub format: ClassifyFormat,
    pub target: Target,
    /// `--quiet` (global; set by `Plan::try_from`).
    pub quiet: bool,
}

/// `evaluate`: the network, the labelled folder, the report.
#[derive(Debug)]
pub struct EvaluatePlan {
    pub model: ModelChoice,
    pub dir: PathBuf,
    pub batch: usize,
    pub confusions: usize,
    /// `--crop`: the fraction of each side the central crop keeps.
    pub crop: Crop,
    pub run: RunPlan,
    pub output: OutputPlan,
    /// `--quiet` (global; set by `Plan::try_from`).
    pub quiet: bool,
}

/// The network `--model`/`--weights` name, refusing the flags that only describe a weights file
/// when a shipped model is used.
pub(super) fn model_choice(args: &WeightsArgs) -> Result<ModelChoice, UsageError> {
    let resolution = args.resolution.map(|r| r.get());
    let source = match &args.weights {
        Some(path) => ModelSource::File {
            path: path.clone(),
            overrides: WeightOverrides {
                alpha: args.alpha.map(|a| a.get()),
                resolution,
                family: args.family,
                ..WeightOverrides::default()
            },
        },
        None => {
            let model = args.model.unwrap_or(ModelId::V1_10_224);
            if let Some(family) = args.family {
                return Err(UsageError::Requires {
                    flag: "--family",
                    needs: format!(
                        "--weights FILE: it gives the family of your own weights file (--family {family}); the shipped models are chosen with --model{}",
                        match ModelId::of_family(family).map(ModelId::name).collect::<Vec<_>>() {
                            none if none.is_empty() => format!(", and no {} weights ship", family.title()),
                            names => format!(" ({family}: {})", names.join(", ")),
                        }
                    ),
                });
            }
            if let Some(alpha) = args.alpha {
                return Err(UsageError::Conflict {
                    flag: "--alpha",
                    other: format!("--model {model}"),
                    reason: format!(
                        "a shipped model's width is fixed ({model} has alpha {}); --alpha {alpha} describes a --weights file",
                        crate::arch::config::format_alpha(model.alpha())
                    ),
                });
            }
            ModelSource::Shipped(model)
        }
    };
    Ok(ModelChoice { source, resolution })
}

impl TryFrom<&ClassifyArgs> for ClassifyPlan {
    type Error = UsageError;

    fn try_from(args: &ClassifyArgs) -> Result<Self, UsageError> {
        let model = model_choice(&args.weights)?;
        let run = RunPlan::try_from(&args.run)?;
        model.check_int8(&run)?;
        // The memory check waits for the image list: a batch is never larger than the images
        // there are (`app::classify`).
        let batch = args.batch as usize;
        let mut inputs = Vec::with_capacity(args.inputs.len());
        for path in &args.inputs {
            if path.as_os_str() == "-" {
                if inputs.contains(&Input::Stdin) {
                    return Err(UsageError::Invalid {
                        flag: "IMAGE_OR_DIR",
                        value: "-".into(),
                        reason: "standard input can be read once".into(),
                    });
                }
                inputs.push(Input::Stdin);
            } else {
                inputs.push(Input::Path(path.clone()));
            }
        }
        Ok(ClassifyPlan {
            model,
            inputs,
            top: args.top as usize,
            batch,
            crop: crop(args.crop)?,
            run,
            format: args.format,
            target: Target::new("--output", args.output.as_deref())?,
            quiet: false,
        })
    }
}

impl TryFrom<&EvaluateArgs> for EvaluatePlan {
    type Error = UsageError;

    fn try_from(args: &EvaluateArgs) -> Result<Self, UsageError> {
        let model = model_choice(&args.weights)?;
        let run = RunPlan::try_from(&args.run)?;
        model.check_int8(&run)?;
        let batch = args.batch as usize;
        Ok(EvaluatePlan {
            model,
            dir: args.dir.clone(),
            batch,
            confusions: args.confusions,
            crop: crop(args.crop)?,
            run,
            output: OutputPlan::try_from(&args.out)?,
            quiet: false,
        })
    }
}

/// `--crop`: a fraction of each side in (0, 1].
fn crop(fraction: f64) -> Result<Crop, UsageError> {
    Crop::new(fraction).map_err(|reason| UsageError::Invalid {
        flag: "--crop",
        value: fraction.to_string(),
        reason,
    })
}

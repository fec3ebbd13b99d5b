//! The plan of `retrain`: the base model, the data and its split, where features are cached,
//! the head's training settings, and where the network and the report go. Every path is
//! checked here: the folders exist, no held-out folder is DIR itself, the output files can be
//! written (and are not one file), the cache folder can be created and written.

use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};

use super::images::model_choice;
use super::{ModelChoice, OutputPlan, RunPlan, Target, UsageError, distinct_outputs};
use crate::cli::RetrainArgs;
use crate::infer::Precision;
use crate::output::{OutputFile, path_text};
use crate::transfer::{HeadSettings, Source, SplitRule};
use crate::vision::MAX_ALLOC_BYTES;

/// Where features are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachePlan {
    /// `--no-cache`.
    Off,
    /// `--cache-dir`, checked: created and writable.
    Given(PathBuf),
    /// The user's cache folder, when the environment names one (used if it can be created).
    Default(Option<PathBuf>),
}

#[derive(Debug)]
pub struct RetrainPlan {
    pub model: ModelChoice,
    pub dir: PathBuf,
    pub split: SplitRule,
    pub cache: CachePlan,
    pub batch: usize,
    /// Augmented views per training image (None: no augmentation).
    pub augment: Option<usize>,
    pub head: HeadSettings,
    pub run: RunPlan,
    /// The network file.
    pub output: OutputFile,
    /// The report: format and target.
    pub report: OutputPlan,
    /// `--features-out`: where every image's feature vector, class and split go.
    pub features_out: Option<OutputFile>,
    /// `--quiet` (global; set by `Plan::try_from`).
    pub quiet: bool,
}

/// A folder flag's value: an existing directory.
pub(super) fn folder(flag: &'static str, path: &Path) -> Result<PathBuf, UsageError> {
    if path.is_dir() {
        Ok(path.to_path_buf())
    } else {
        Err(UsageError::Path {
            flag,
            path: path_text(path),
            reason: if path.exists() {
                "not a directory".into()
            } else {
                "no such directory".into()
            },
        })
    }
}

/// Whether two paths name one folder.
fn same_folder(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// A real-valued flag that must be finite and in `range`; `reason` says the range in words.
fn setting(
    flag: &'static str,
    value: f64,
    range: impl RangeBounds<f64>,
    reason: &str,
) -> Result<f64, UsageError> {
    if value.is_finite() && range.contains(&value) {
        return Ok(value);
    }
    Err(UsageError::Invalid {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    })
}

/// A percentage flag, or its default: in [0, 100).
fn percent(flag: &'static str, value: Option<f64>) -> Result<f64, UsageError> {
    let value = value.unwrap_or(SplitRule::DEFAULT_PERCENT);
    setting(flag, value, 0.0..100.0, "must be at least 0 and below 100")
}

/// The split flags of `retrain` and `sweep --data`.
pub(super) struct SplitFlags<'a> {
    pub dir: &'a Path,
    pub validation: &'a Option<PathBuf>,
    pub test: &'a Option<PathBuf>,
    pub validation_percent: Option<f64>,
    pub test_percent: Option<f64>,
}

/// The split the flags describe.
pub(super) fn split_rule(args: &SplitFlags) -> Result<SplitRule, UsageError> {
    let dir = args.dir;
    let given = |flag: &'static str, path: &Option<PathBuf>| -> Result<Option<PathBuf>, UsageError> {
        let Some(path) = path else { return Ok(None) };
        let checked = folder(flag, path)?;
        if same_folder(&checked, dir) {
            return Err(UsageError::Conflict {
                flag,
                other: format!("DIR ({})", path_text(dir)),
                reason: "held-out images must not be training images; give another folder, or a percentage"
                    .into(),
            });
        }
        Ok(Some(checked))
    };
    let validation = given("--validation", args.validation)?;
    let test = given("--test", args.test)?;
    if let (Some(v), Some(t)) = (&validation, &test)
        && same_folder(v, t)
    {
        return Err(UsageError::Conflict {
            flag: "--test",
            other: format!("--validation (both name {})", path_text(t)),
            reason: "test images must not be the validation images early stopping chose the head on".into(),
        });
    }
    let validation = match validation {
        Some(path) => Source::Folder(path),
        None => Source::Percent(percent("--validation-percent", args.validation_percent)?),
    };
    let test = match test {
        Some(path) => Source::Folder(path),
        None => Source::Percent(percent("--test-percent", args.test_percent)?),
    };
    let rule = SplitRule { validation, test };
    let (v, t) = rule.percents();
    if v + t >= 100.0 {
        return Err(UsageError::Conflict {
            flag: "--test-percent",
            other: format!("--validation-percent {v}"),
            reason: format!("{v}% + {t}% leaves no image of DIR for training"),
        });
    }
    Ok(rule)
}

/// The cache folder the flags name, created and proved writable now.
pub(super) fn cache_plan(no_cache: bool, cache_dir: &Option<PathBuf>) -> Result<CachePlan, UsageError> {
    if no_cache {
        return Ok(CachePlan::Off);
    }
    let Some(dir) = cache_dir else {
        return Ok(CachePlan::Default(crate::transfer::default_root()));
    };
    let fail = |reason: String| UsageError::Path {
        flag: "--cache-dir",
        path: path_text(dir),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create: {e}")))?;
    if !dir.is_dir() {
        return Err(fail("not a directory".into()));
    }
    let probe = dir.join(format!(".probe.{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| fail(format!("cannot write in it: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(CachePlan::Given(dir.clone()))
}

impl TryFrom<&RetrainArgs> for RetrainPlan {
    type Error = UsageError;

    fn try_from(args: &RetrainArgs) -> Result<Self, UsageError> {
        let model = model_choice(&args.weights)?;
        let run = RunPlan::try_from(&args.run)?;
        if run.precision != Precision::F32 {
            return Err(UsageError::Conflict {
                flag: "--precision",
                other: "retrain".into(),
                reason: format!(
                    "the head is trained on f32 features of the backbone (--precision {}); drop --precision",
                    run.precision
                ),
            });
        }
        let batch = args.batch as usize;
        run.check_batch(&model, batch, MAX_ALLOC_BYTES)?;
        let dir = folder("DIR", &args.dir)?;
        let split = split_rule(&SplitFlags {
            dir: &args.dir,
            validation: &args.validation,
            test: &args.test,
            validation_percent: args.validation_percent,
            test_percent: args.test_percent,
        })?;
        let output = Target::new("--output", Some(&args.output))?;
        let report = OutputPlan {
            format: args.format,
            target: Target::new("--report", args.report.as_deref())?,
        };
        let features_out = Target::new("--features-out", args.features_out.as_deref())?;
        distinct_outputs(("--output", &output), ("--report", &report.target))?;
        distinct_outputs(("--output", &output), ("--features-out", &features_out))?;
        distinct_outputs(("--report", &report.target), ("--features-out", &features_out))?;
        let head = HeadSettings {
            learning_rate: setting(
                "--learning-rate",
                args.learning_rate,
                (Bound::Excluded(0.0), Bound::Included(10.0)),
                "must be more than 0 and at most 10",
            )?,
            weight_decay: setting("--weight-decay", args.weight_decay, 0.0..=10.0, "must be 0 to 10")?,
            label_smoothing: setting(
                "--label-smoothing",
                args.label_smoothing,
                0.0..1.0,
                "must be at least 0 and below 1",
            )?,
            batch: args.train_batch as usize,
            max_epochs: args.epochs as usize,
            patience: args.patience as usize,
            seed: args.seed,
        };
        let Target::File(output) = output else {
            unreachable!("--output is required and names a file")
        };
        let features_out = match features_out {
            Target::File(file) => Some(file),
            Target::Stdout => None,
        };
        Ok(RetrainPlan {
            model,
            dir,
            split,
            cache: cache_plan(args.no_cache, &args.cache_dir)?,
            batch,
            augment: args.augment.then_some(args.augment_copies as usize),
            head,
            run,
            output,
            report,
            features_out,
            quiet: false,
        })
    }
}

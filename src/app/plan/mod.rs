//! The validated plans: one per command, built from the parsed flags by `TryFrom<&XxxArgs>`
//! (ripgrep's `LowArgs -> HiArgs`, hyperfine's `Options`). Everything that can be checked before
//! work starts is checked here, once: flag combinations (a flag that would be ignored is
//! refused, naming both), the thread count against this machine, output paths (the directory
//! exists and is writable, `--plot` is not `--output`), and the memory a run will need against
//! the limit. The commands in `app` consume only plans, and every error here is a
//! [`UsageError`] that names its flag (exit code 2).

mod analyze;
pub mod bench;
mod images;
mod retrain;
mod sweep;

pub use analyze::{AnalyzePlan, PresetsPlan};
pub use bench::BenchPlan;
pub use images::{ClassifyPlan, EvaluatePlan, Input};
pub use retrain::{CachePlan, RetrainPlan};
pub use sweep::{DataPlan, FEATURE_BATCH, SweepPlan, SweepPoint, WeightsRow};

use std::path::{Path, PathBuf};

use crate::arch::{Config, Family};
use crate::cli::{Cli, Command, ManArgs, ModelArgs, OutputArgs, RunArgs, TimingArgs};
use crate::infer::{EngineKind, Precision, int8_unsupported, kernels_name};
use crate::memory::{LimitSource, MemoryEstimate, MemoryLimit};
use crate::nn::{ModelId, WeightOverrides};
use crate::output::OutputFile;
use crate::report::Format;
use crate::report::units::bytes_binary;

/// An invalid flag value or combination (exit code 2). Every message names the flag.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UsageError {
    /// A value that is out of range or invalid where it is used.
    #[error("invalid value '{value}' for {flag}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// Two flags that cannot both apply: refused rather than one silently ignored.
    #[error("{flag} cannot be used with {other}: {reason}")]
    Conflict {
        flag: &'static str,
        other: String,
        reason: String,
    },
    /// A flag that only makes sense with another.
    #[error("{flag} needs {needs}")]
    Requires { flag: &'static str, needs: String },
    /// An output path that cannot be written, found before any work.
    #[error("{flag} {path}: {reason}")]
    Path {
        flag: &'static str,
        path: String,
        reason: String,
    },
    /// The run would need more memory than the limit allows.
    #[error(
        "{what} needs an estimated {} (weights {}, activations {}, input {}{}, runtime {}), above the memory limit of {} ({}); {hint}",
        bytes_binary(estimate.total()),
        bytes_binary(estimate.weights),
        bytes_binary(estimate.activations),
        bytes_binary(estimate.input),
        decoding_text(estimate.decoding),
        bytes_binary(estimate.runtime),
        bytes_binary(limit.bytes),
        limit_text(limit.source)
    )]
    Memory {
        what: String,
        estimate: MemoryEstimate,
        limit: MemoryLimit,
        hint: String,
    },
}

fn decoding_text(bytes: u64) -> String {
    if bytes == 0 {
        String::new()
    } else {
        format!(", image decoding {}", bytes_binary(bytes))
    }
}

fn limit_text(source: LimitSource) -> String {
    match source {
        LimitSource::Flag => "--max-memory".into(),
        LimitSource::Default { physical: Some(p) } => {
            format!(
                "the default: at most 8.0 GiB and half of this machine's {}",
                bytes_binary(p)
            )
        }
        LimitSource::Default { physical: None } => "the default".into(),
        LimitSource::AddressSpace { rlimit } => format!(
            "what the address-space limit of {} (ulimit -v) leaves",
            bytes_binary(rlimit)
        ),
    }
}

/// A plan for each command.
#[derive(Debug)]
pub enum Plan {
    Analyze(AnalyzePlan),
    Presets(PresetsPlan),
    Classify(ClassifyPlan),
    Evaluate(EvaluatePlan),
    Bench(BenchPlan),
    Sweep(SweepPlan),
    Retrain(RetrainPlan),
    Completions(clap_complete::Shell),
    Man(ManPlan),
}

/// `man`: one page to stdout, or every page into a folder.
#[derive(Debug)]
pub enum ManPlan {
    Print { command: Option<String> },
    WriteAll { dir: PathBuf },
}

impl TryFrom<&Cli> for Plan {
    type Error = UsageError;

    fn try_from(cli: &Cli) -> Result<Self, UsageError> {
        // --quiet is global: each plan is built from its command's flags, then told.
        let quiet = cli.quiet;
        Ok(match &cli.command {
            Command::Analyze(args) => Plan::Analyze(AnalyzePlan::try_from(args)?),
            Command::Presets(args) => Plan::Presets(PresetsPlan::try_from(args)?),
            Command::Classify(args) => Plan::Classify(ClassifyPlan {
                quiet,
                ..ClassifyPlan::try_from(args)?
            }),
            Command::Evaluate(args) => Plan::Evaluate(EvaluatePlan {
                quiet,
                ..EvaluatePlan::try_from(args)?
            }),
            Command::Bench(args) => Plan::Bench(BenchPlan {
                quiet,
                ..BenchPlan::try_from(args)?
            }),
            Command::Sweep(args) => Plan::Sweep(SweepPlan {
                quiet,
                ..SweepPlan::try_from(args)?
            }),
            Command::Retrain(args) => Plan::Retrain(RetrainPlan {
                quiet,
                ..RetrainPlan::try_from(args)?
            }),
            Command::Completions { shell } => Plan::Completions(*shell),
            Command::Man(args) => Plan::Man(ManPlan::try_from(args)?),
        })
    }
}

impl Plan {
    /// The inference threads of commands that run the network.
    pub fn threads(&self) -> Option<usize> {
        match self {
            Plan::Classify(p) => Some(p.run.threads),
            Plan::Evaluate(p) => Some(p.run.threads),
            Plan::Bench(p) => Some(p.run.threads),
            Plan::Sweep(p) => (!p.no_timing).then_some(p.run.threads),
            Plan::Retrain(p) => Some(p.run.threads),
            _ => None,
        }
    }
}

impl TryFrom<&ManArgs> for ManPlan {
    type Error = UsageError;

    fn try_from(args: &ManArgs) -> Result<Self, UsageError> {
        use clap::CommandFactory;
        if let Some(dir) = &args.dir {
            if !dir.is_dir() {
                return Err(UsageError::Path {
                    flag: "--dir",
                    path: crate::output::path_text(dir),
                    reason: "not an existing directory".into(),
                });
            }
            return Ok(ManPlan::WriteAll { dir: dir.clone() });
        }
        if let Some(name) = &args.command
            && Cli::command().find_subcommand(name).is_none()
        {
            let names: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            return Err(UsageError::Invalid {
                flag: "COMMAND",
                value: name.clone(),
                reason: format!("expected one of {}", names.join(", ")),
            });
        }
        Ok(ManPlan::Print {
            command: args.command.clone(),
        })
    }
}

/// How inference runs: engine, precision, threads (resolved against this machine), memory
/// limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPlan {
    pub engine: EngineKind,
    /// `sweep` runs every precision of its list: this is the first.
    pub precision: Precision,
    /// At least 1 and at most the logical CPUs: `--threads 0` (or none) is every CPU, so
    /// reports show the real count (f32 and int8 alike).
    pub threads: usize,
    pub memory_limit: MemoryLimit,
    /// The int8 kernels `--int8-kernels` forced (checked against this CPU); None: the fastest
    /// it runs, chosen when an int8 pass is built ([`RunPlan::int8_kernels`]), so runs without
    /// one do not probe for them (the AMX probe asks Linux for the tile state).
    pub forced_int8_kernels: Option<crate::quant::Kernels>,
}

/// Logical CPUs available to this process.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl TryFrom<&RunArgs> for RunPlan {
    type Error = UsageError;

    /// One precision (`--precision` given at most once).
    fn try_from(args: &RunArgs) -> Result<Self, UsageError> {
        let precision = match args.precision.as_slice() {
            [] => Precision::F32,
            [one] => *one,
            [_, second, ..] => {
                return Err(UsageError::Invalid {
                    flag: "--precision",
                    value: second.to_string(),
                    reason: "one precision per run; sweep compares several".into(),
                });
            }
        };
        RunPlan::for_precisions(args, &[precision])
    }
}

impl RunPlan {
    /// The plan for runs at each of `precisions` (at least one; `sweep` gives its list): the
    /// engine, threads and int8 kernels must suit every one.
    pub fn for_precisions(args: &RunArgs, precisions: &[Precision]) -> Result<RunPlan, UsageError> {
        let cpus = available_cpus();
        let int8 = precisions.contains(&Precision::Int8);
        let engine = args.engine.unwrap_or(EngineKind::Fast);
        if int8 && engine == EngineKind::Reference {
            return Err(UsageError::Conflict {
                flag: "--engine",
                other: "--precision int8".into(),
                reason: "the reference engine is candle's f32 network; int8 runs the project's integer kernels (drop --engine reference)".into(),
            });
        }
        let threads = match args.threads {
            None | Some(0) => cpus,
            Some(n) if n <= cpus => n,
            Some(n) => {
                return Err(UsageError::Invalid {
                    flag: "--threads",
                    value: n.to_string(),
                    reason: format!(
                        "this machine has {cpus} logical CPU{}; use 1 to {cpus}, or 0 for all",
                        if cpus == 1 { "" } else { "s" }
                    ),
                });
            }
        };
        let forced_int8_kernels = match args.int8_kernels {
            Some(kernels) if !int8 => {
                return Err(UsageError::Requires {
                    flag: "--int8-kernels",
                    needs: format!("--precision int8 (--int8-kernels {})", kernels_name(kernels)),
                });
            }
            Some(kernels) if !kernels.available() => {
                return Err(UsageError::Invalid {
                    flag: "--int8-kernels",
                    value: kernels_name(kernels).into(),
                    reason: kernels.unavailable_reason().unwrap_or_default(),
                });
            }
            forced => forced,
        };
        Ok(RunPlan {
            engine,
            precision: precisions.first().copied().unwrap_or(Precision::F32),
            threads,
            memory_limit: MemoryLimit::resolve(args.max_memory, threads),
            forced_int8_kernels,
        })
    }

    /// Refuses int8 for a configuration it cannot run (MobileNetV3), naming the flag that
    /// chose the configuration (`--model v3-small_1.0_224`).
    pub fn check_int8(&self, config: &Config, chosen_by: String) -> Result<(), UsageError> {
        match int8_unsupported(config) {
            Some(reason) if self.precision == Precision::Int8 => Err(UsageError::Conflict {
                flag: "--precision",
                other: chosen_by,
                reason: reason.into(),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses a run whose estimated memory exceeds the limit; `what` names the flags that
    /// drove the estimate ("--batch 1000000 at 0.25-MobileNet-128").
    pub fn check_memory(&self, estimate: MemoryEstimate, what: String, hint: &str) -> Result<(), UsageError> {
        if estimate.total() <= self.memory_limit.bytes {
            return Ok(());
        }
        Err(UsageError::Memory {
            what,
            estimate,
            limit: self.memory_limit,
            hint: format!("{hint}, or raise --max-memory"),
        })
    }
}

impl RunPlan {
    /// The int8 kernels to run: the forced ones, else the fastest this CPU runs.
    pub fn int8_kernels(&self) -> crate::quant::Kernels {
        self.forced_int8_kernels
            .unwrap_or_else(crate::quant::Kernels::best)
    }

    /// Refuses batches of `batch` images of `model` (each decode taking up to `decoding`
    /// bytes) above the memory limit, when the configuration is known before loading (a
    /// weights file is checked once its metadata is read).
    pub fn check_batch(&self, model: &ModelChoice, batch: usize, decoding: u64) -> Result<(), UsageError> {
        let Some(config) = model.config() else {
            return Ok(());
        };
        self.check_memory(
            crate::memory::estimate(&config, batch, self.engine, self.precision, decoding),
            format!(
                "--batch {batch} at {} ({r}x{r})",
                config.label(),
                r = config.resolution
            ),
            "lower --batch or --res",
        )
    }
}

/// Where results go: stdout, or a file checked before any work.
#[derive(Debug, Clone)]
pub enum Target {
    Stdout,
    File(OutputFile),
}

impl Target {
    /// `--output FILE` (or another flag's path) checked now: its directory exists and is
    /// writable, it is not a directory.
    pub fn new(flag: &'static str, path: Option<&Path>) -> Result<Target, UsageError> {
        match path {
            None => Ok(Target::Stdout),
            Some(p) => OutputFile::check(p)
                .map(Target::File)
                .map_err(|reason| UsageError::Path {
                    flag,
                    path: crate::output::path_text(p),
                    reason,
                }),
        }
    }

    pub fn file(&self) -> Option<&OutputFile> {
        match self {
            Target::Stdout => None,
            Target::File(f) => Some(f),
        }
    }
}

/// A command's output: format and target.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    pub format: Format,
    pub target: Target,
}

impl TryFrom<&OutputArgs> for OutputPlan {
    type Error = UsageError;

    fn try_from(args: &OutputArgs) -> Result<Self, UsageError> {
        Ok(OutputPlan {
            format: args.format,
            target: Target::new("--output", args.output.as_deref())?,
        })
    }
}

/// Refuses two output flags naming one file (after symbolic links are resolved).
fn distinct_outputs(
    first: (&'static str, &Target),
    second: (&'static str, &Target),
) -> Result<(), UsageError> {
    if let (Some(a), Some(b)) = (first.1.file(), second.1.file())
        && a.same_file(b)
    {
        return Err(UsageError::Conflict {
            flag: second.0,
            other: format!("{} (both name {})", first.0, crate::output::path_text(b.shown())),
            reason: "each needs its own file".into(),
        });
    }
    Ok(())
}

/// The timing schedule, validated.
impl TryFrom<&TimingArgs> for crate::bench::TimingPlan {
    type Error = UsageError;

    fn try_from(timing: &TimingArgs) -> Result<Self, UsageError> {
        let min_time = match timing.min_time {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Some(std::time::Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(UsageError::Invalid {
                    flag: "--min-time",
                    value: s.to_string(),
                    reason: "must be more than 0 and at most 3600 seconds".into(),
                });
            }
        };
        Ok(crate::bench::TimingPlan {
            warmup: timing.warmup.unwrap_or(3) as usize,
            runs: timing.runs.unwrap_or(20) as usize,
            min_time,
        })
    }
}

/// Which network a command runs, before anything is loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// Weights that ship in the binary.
    Shipped(ModelId),
    /// The user's weights file, with what its metadata may not say.
    File {
        path: PathBuf,
        overrides: WeightOverrides,
    },
    /// Random weights (seeded) for a configuration: timing only.
    Random(Config),
}

/// A network to load, and the resolution to run it at when not its own.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChoice {
    pub source: ModelSource,
    pub resolution: Option<u32>,
}

impl ModelChoice {
    /// Refuses `--precision int8` for a configuration known now that it cannot run (a file's
    /// is checked once it is read).
    pub fn check_int8(&self, run: &RunPlan) -> Result<(), UsageError> {
        let Some(config) = self.config() else {
            return Ok(());
        };
        let chosen_by = match &self.source {
            ModelSource::Shipped(id) => format!("--model {id}"),
            ModelSource::Random(c) if c.depth_multiplier != 1 => {
                format!("--depth-multiplier {}", c.depth_multiplier)
            }
            ModelSource::Random(c) => format!("--family {}", c.family),
            ModelSource::File { path, .. } => format!("--weights {}", crate::output::path_text(path)),
        };
        run.check_int8(&config, chosen_by)
    }

    /// The configuration that will run, when known before loading (not for a file, whose
    /// metadata decides).
    pub fn config(&self) -> Option<Config> {
        let config = match &self.source {
            ModelSource::Shipped(id) => id.config(),
            ModelSource::Random(config) => *config,
            ModelSource::File { .. } => return None,
        };
        Some(match self.resolution {
            Some(r) => Config {
                resolution: r,
                ..config
            },
            None => config,
        })
    }
}

/// The configuration the architecture flags describe (analyze, bench, sweep), with the
/// defaults of their help: v1, alpha 1.0, 224, depth multiplier 1, 1000 classes, standard.
pub fn config_from(args: &ModelArgs) -> Result<Config, UsageError> {
    let family = args.family.unwrap_or(Family::V1);
    let resolution = args.resolution.or(args.rho).map_or(224, |r| r.get());
    Config::build(
        family,
        args.alpha.map_or(1.0, |a| a.get()),
        resolution,
        args.depth_multiplier.unwrap_or(1),
        args.classes.unwrap_or(1000),
        args.variant.unwrap_or(crate::arch::Variant::Standard),
        args.minimalistic,
    )
    .map_err(|e| config_conflict(args, e))
}

/// A configuration refused for a combination of flags: name the flags involved.
fn config_conflict(args: &ModelArgs, error: crate::arch::ConfigError) -> UsageError {
    use crate::arch::ConfigError as E;
    let flag = match &error {
        E::Minimalistic(_) => "--minimalistic",
        E::VariantFamily(..) => "--variant",
        E::DepthMultiplierFamily(_) => "--depth-multiplier",
        // Every single value was range-checked by its parser, so only combinations are left;
        // should another appear, it is still reported against the family it was built for.
        other => {
            return UsageError::Invalid {
                flag: "--family",
                value: args.family.unwrap_or(Family::V1).to_string(),
                reason: other.to_string(),
            };
        }
    };
    UsageError::Conflict {
        flag,
        other: format!("--family {}", args.family.unwrap_or(Family::V1)),
        reason: error.to_string(),
    }
}

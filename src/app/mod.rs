//! Dispatch: validates the parsed command line into typed configurations, calls the computing
//! modules and hands their results to `report` and `output`. The only module that wires
//! everything together.

use std::process::ExitCode;

use std::io::IsTerminal;

use anyhow::Result;
use clap::CommandFactory;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::arch::{Config, Family, Variant};
use crate::cli::{AnalyzeArgs, Cli, Command, ModelArgs, OutputArgs, PresetsArgs};
use crate::cost::analyze;
use crate::output::emit;
use crate::published::{Store, compare, compare_table2};
use crate::report::{self, AnalyzeReport, Format};

/// Exit codes (documented in the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A runtime failure: unreadable file, bad weights, failed write.
    pub const FAILURE: u8 = 1;
    /// A usage error: unknown flag, invalid flag value.
    pub const USAGE: u8 = 2;
    /// Some inputs of a multi-input run failed; the others have results.
    pub const PARTIAL: u8 = 3;
}

/// An invalid flag value or combination (exit code 2). The message names the flag.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl From<crate::arch::ConfigError> for UsageError {
    fn from(e: crate::arch::ConfigError) -> Self {
        UsageError(e.to_string())
    }
}

/// The exit code for an error: usage errors are 2, everything else 1.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<UsageError>().is_some() {
        exit::USAGE
    } else {
        exit::FAILURE
    }
}

mod images;
mod measure;

pub use measure::{RANDOM_SEED, parse_grid, thread_count};

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Analyze(args) => run_analyze(&args),
        Command::Presets(args) => run_presets(&args),
        Command::Classify(args) => images::run_classify(&args),
        Command::Evaluate(args) => images::run_evaluate(&args),
        Command::Bench(args) => measure::run_bench(&args),
        Command::Sweep(args) => measure::run_sweep(&args),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mobilenet-cli", &mut out);
            emit(None, &String::from_utf8(out)?)?;
            Ok(ExitCode::from(exit::OK))
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            emit(None, &String::from_utf8(out)?)?;
            Ok(ExitCode::from(exit::OK))
        }
    }
}

/// The model configuration the flags describe.
pub fn config_from(args: &ModelArgs) -> Result<Config, UsageError> {
    let family: Family = args.family.parse()?;
    let variant: Variant = args.variant.parse()?;
    let resolution = match (args.resolution, args.rho) {
        (Some(res), _) => u32::try_from(res).map_err(|_| crate::arch::ConfigError::Resolution(res))?,
        (None, Some(rho)) => Config::resolution_from_rho(rho)?,
        (None, None) => 224,
    };
    Ok(Config::build(
        family,
        args.alpha,
        resolution,
        args.depth_multiplier,
        args.classes,
        variant,
        args.minimalistic,
    )?)
}

/// A progress bar on stderr, hidden with --quiet or when stderr is not a terminal (so pipes and
/// CI logs stay clean). `unit` names what is counted ("images", "points").
pub(crate) fn progress_bar(len: u64, quiet: bool, prefix: &'static str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template =
        format!("{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} ({{elapsed}}, eta {{eta}})");
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

pub(crate) fn write_json<T: Serialize>(out: &OutputArgs, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    emit(out.output.as_deref(), &text)
}

fn run_analyze(args: &AnalyzeArgs) -> Result<ExitCode> {
    let config = config_from(&args.model)?;
    let store = Store::embedded();
    let cost = analyze(&config);
    let report = AnalyzeReport {
        table2: compare_table2(&store, &config, &cost.by_kind),
        published: compare(&store, &config),
        cost,
    };
    let text = match args.out.format {
        Format::Json => report::analyze_json(&report)?,
        Format::Csv => report::analyze_csv(&report)?,
        format => report::render(&report::analyze_document(&report), format)?,
    };
    emit(args.out.output.as_deref(), &text)?;
    Ok(ExitCode::from(exit::OK))
}

fn run_presets(args: &PresetsArgs) -> Result<ExitCode> {
    if let Some(alpha) = args.alpha
        && !(alpha.is_finite() && alpha > 0.0)
    {
        return Err(UsageError(format!("--alpha must be a finite number > 0, got {alpha}")).into());
    }
    let store = Store::embedded();
    if let Some(source) = &args.source
        && store.source(source).is_none()
    {
        let ids: Vec<&str> = store.sources.iter().map(|s| s.id.as_str()).collect();
        return Err(UsageError(format!(
            "unknown --source '{source}' (expected one of {})",
            ids.join(", ")
        ))
        .into());
    }
    let rows = store.select(
        args.family.as_deref(),
        args.alpha,
        args.resolution,
        args.source.as_deref(),
    );
    match args.out.format {
        Format::Json => write_json(&args.out, &report::presets::json(&store, &rows))?,
        Format::Csv => emit(args.out.output.as_deref(), &report::presets::csv(&rows)?)?,
        format => emit(
            args.out.output.as_deref(),
            &report::render(&report::presets::document(&store, &rows), format)?,
        )?,
    }
    Ok(ExitCode::from(exit::OK))
}

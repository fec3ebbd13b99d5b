//! The commands: each takes its validated plan (`plan`), calls the computing modules and hands
//! their results to `report` and `output`. The only module that wires everything together,
//! and, with `main`, the only one that prints.
//!
//! Layout: `plan/` turns the parsed flags into one plan per command (every check that can be
//! made before work); `analyze.rs` (analyze, presets), `classify.rs` (classify, evaluate),
//! `bench.rs`, `sweep.rs` and `retrain.rs` run them; `network.rs` loads the network a plan names;
//! `interrupt.rs` turns SIGINT/SIGTERM into a clean stop; `emit.rs` is the one output path.

mod analyze;
mod bench;
mod classify;
mod emit;
pub mod interrupt;
mod network;
pub mod plan;
mod retrain;
mod sweep;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Cli;
pub use interrupt::Interrupted;
pub use plan::{Plan, UsageError};

/// Exit codes (documented in `--help`, the man pages and the README).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// A runtime failure: unreadable file, bad weights, failed write.
    pub const FAILURE: u8 = 1;
    /// A usage error: unknown flag, invalid flag value or combination, unwritable output
    /// path, a run over the memory limit.
    pub const USAGE: u8 = 2;
    /// Some inputs of a multi-input run failed; the others have results.
    pub const PARTIAL: u8 = 3;
}

/// The exit code for an error: usage errors are 2, interruptions 128 + the signal, everything
/// else 1.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<UsageError>().is_some() {
        exit::USAGE
    } else if let Some(interrupted) = error.downcast_ref::<Interrupted>() {
        interrupted.exit_code()
    } else {
        exit::FAILURE
    }
}

/// Runs a validated plan.
pub fn run(plan: Plan) -> Result<ExitCode> {
    match plan {
        Plan::Analyze(plan) => analyze::run_analyze(&plan),
        Plan::Presets(plan) => analyze::run_presets(&plan),
        Plan::Classify(plan) => classify::run_classify(&plan),
        Plan::Evaluate(plan) => classify::run_evaluate(&plan),
        Plan::Bench(plan) => bench::run_bench(&plan),
        Plan::Sweep(plan) => sweep::run_sweep(&plan),
        Plan::Retrain(plan) => retrain::run_retrain(&plan),
        Plan::Completions(shell) => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mobilenet-cli", &mut out);
            crate::output::write_stdout(&out)?;
            Ok(ExitCode::from(exit::OK))
        }
        Plan::Man(plan) => analyze::run_man(&plan),
    }
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

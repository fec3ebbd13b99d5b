//! The `mobilenet-cli` binary: parses the command line into a validated plan, runs it, and
//! reports errors as one line with a documented exit code.

// As in the library: every unsafe block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use mobilenet_cli::app::{self, Plan, exit};
use mobilenet_cli::cli::Cli;

/// clap's message on one line: its first paragraph (which names the flag) and its tips
/// (clap's "did you mean" suggestions), without the usage block.
fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let mut parts = vec![first.join(" ")];
    parts.extend(
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("tip:"))
            .map(str::to_string),
    );
    format!("{} (see --help)", parts.join("; "))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(exit::USAGE);
        }
        Err(e) => {
            eprintln!("{}", one_line(&e));
            return ExitCode::from(exit::USAGE);
        }
    };
    let plan = match Plan::try_from(&cli) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    if let Some(threads) = plan.threads() {
        // candle sizes its rayon pool from these on first use and gemm reads RAYON_NUM_THREADS
        // per call, so they must be set now, while the process is still single-threaded.
        // SAFETY: no other thread exists yet (planning starts none).
        unsafe {
            std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
            std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
        }
        // Commands that run the network stop cleanly on SIGINT/SIGTERM and keep what they
        // finished; without handlers they would still stop, only without writing it.
        if let Err(e) = app::interrupt::install() {
            eprintln!("warning: cannot install signal handlers: {e}");
        }
    }
    match app::run(plan) {
        Ok(code) => code,
        Err(error) => {
            // One line: the context chain joined with ": ".
            eprintln!("error: {error:#}");
            ExitCode::from(app::exit_code_for(&error))
        }
    }
}

//! The `mobilenet-cli` binary: parses the command line and reports errors as one line.

// As in the library: every unsafe block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use mobilenet_cli::{app, cli::Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(app::exit::USAGE);
        }
        Err(e) => {
            // clap's message is several paragraphs (message, usage, tips): keep the first, which
            // names the flag, on one line.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{} (see --help)", first.join(" "));
            return ExitCode::from(app::exit::USAGE);
        }
    };
    if let Some(threads) = cli.command.threads() {
        // candle sizes its rayon pool from these on first use and gemm reads RAYON_NUM_THREADS
        // per call, so they must be set now, while the process is still single-threaded.
        // SAFETY: no other thread exists yet.
        unsafe {
            std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
            std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
        }
    }
    match app::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the context chain joined with ": ".
            eprintln!("error: {error:#}");
            ExitCode::from(app::exit_code_for(&error))
        }
    }
}

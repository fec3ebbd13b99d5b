//! The `mobilenet-cli` binary: parses the command line and reports errors as one line.

use std::process::ExitCode;

use clap::Parser;
use mobilenet_cli::{app, cli::Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match app::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the context chain joined with ": ".
            eprintln!("error: {error:#}");
            ExitCode::from(app::exit_code_for(&error))
        }
    }
}

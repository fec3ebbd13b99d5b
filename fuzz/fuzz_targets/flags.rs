//! Flag and grid parsing: arbitrary command lines for `analyze` and `sweep`, validated into
//! configurations; usage errors are values, never panics.
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use mobilenet_cli::app::{config_from, parse_grid};
use mobilenet_cli::cli::{Cli, Command};
use mobilenet_cli::cost::analyze;

fuzz_target!(|data: &str| {
    let mut argv = vec!["mobilenet-cli"];
    argv.extend(data.split(' ').take(16));
    if let Ok(cli) = Cli::try_parse_from(&argv)
        && let Command::Analyze(args) = &cli.command
        && let Ok(config) = config_from(&args.model)
    {
        // Validated configurations must be analysable without overflow or panic.
        let totals = analyze(&config).totals;
        assert_eq!(totals.flops, 2 * totals.mult_adds);
    }
    let _ = parse_grid(
        "--alphas",
        data,
        |s| s.parse::<f64>().ok(),
        |a| a.is_finite() && a > 0.0 && a <= 2.0,
    );
    let _ = parse_grid(
        "--resolutions",
        data,
        |s| s.parse::<u32>().ok(),
        |r| (32..=8192).contains(&r),
    );
});

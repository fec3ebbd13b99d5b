//! Arbitrary command lines through the parser and the plan layer (`app::plan`): every
//! `analyze` and `sweep` plan validates or returns a usage error, never panics, and every
//! validated analyze configuration is analysable without overflow.
#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use mobilenet_cli::app::plan::{AnalyzePlan, SweepPlan};
use mobilenet_cli::cli::{Cli, Command};
use mobilenet_cli::cost::analyze;

fuzz_target!(|data: &str| {
    let mut argv = vec!["mobilenet-cli"];
    argv.extend(data.split(' ').take(16));
    // Planning checks output paths by creating a probe file: keep the fuzzer off the disk.
    if argv.iter().any(|a| a.starts_with("--o") || a.starts_with("-o") || a.starts_with("--p")) {
        return;
    }
    let Ok(cli) = Cli::try_parse_from(&argv) else {
        return;
    };
    match &cli.command {
        Command::Analyze(args) => {
            if let Ok(plan) = AnalyzePlan::try_from(args) {
                let totals = analyze(&plan.config).totals;
                assert_eq!(totals.flops, 2 * totals.mult_adds);
            }
        }
        Command::Sweep(args) => {
            if let Ok(plan) = SweepPlan::try_from(args) {
                assert!(!plan.members.is_empty() && !plan.points.is_empty());
                assert!(plan.points.iter().all(|p| p.member < plan.members.len()));
            }
        }
        _ => {}
    }
});

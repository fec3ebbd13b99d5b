//! `analyze`, `presets` and `man`: reports computed from the spec, the published tables and
//! the command-line definitions, with nothing to run.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::emit::emit;
use super::exit;
use super::plan::{AnalyzePlan, ManPlan, PresetsPlan};
use crate::cli::Cli;
use crate::cost::analyze;
use crate::output::{path_text, write_stdout};
use crate::published::{Store, compare, compare_table2};
use crate::report::{AnalyzeReport, PresetsView};

pub fn run_analyze(plan: &AnalyzePlan) -> Result<ExitCode> {
    let store = Store::embedded();
    let cost = analyze(&plan.config);
    let report = AnalyzeReport {
        table2: compare_table2(&store, &plan.config, &cost.by_kind),
        published: compare(&store, &plan.config),
        cost,
    };
    emit(&plan.output, &report)?;
    Ok(ExitCode::from(exit::OK))
}

pub fn run_presets(plan: &PresetsPlan) -> Result<ExitCode> {
    let store = Store::embedded();
    let rows = store.select(
        plan.family.as_deref(),
        plan.alpha,
        plan.resolution,
        plan.source.as_deref(),
    );
    emit(&plan.output, &PresetsView { store: &store, rows })?;
    Ok(ExitCode::from(exit::OK))
}

/// The man page of the tool or of one command; every page into a folder.
pub fn run_man(plan: &ManPlan) -> Result<ExitCode> {
    let page = |command: clap::Command| -> Result<Vec<u8>> {
        let mut out = Vec::new();
        clap_mangen::Man::new(command).render(&mut out)?;
        Ok(out)
    };
    let root = Cli::command();
    match plan {
        ManPlan::Print { command: None } => write_stdout(&page(root)?)?,
        ManPlan::Print { command: Some(name) } => {
            let sub = root
                .find_subcommand(name)
                .with_context(|| format!("no command {name}"))?
                .clone();
            write_stdout(&page(sub.name(format!("mobilenet-cli-{name}")))?)?;
        }
        ManPlan::WriteAll { dir } => {
            let mut pages = vec![("mobilenet-cli.1".to_string(), page(root.clone())?)];
            for sub in root.get_subcommands() {
                let name = format!("mobilenet-cli-{}", sub.get_name());
                pages.push((format!("{name}.1"), page(sub.clone().name(name))?));
            }
            for (file, bytes) in pages {
                let path = dir.join(&file);
                std::fs::write(&path, bytes)
                    .with_context(|| format!("--dir {}: cannot write {file}", path_text(dir)))?;
            }
        }
    }
    Ok(ExitCode::from(exit::OK))
}

//! The one output path of every command: the result rendered in the plan's format (see
//! `report::Render`) and written to the plan's target.

use anyhow::{Context, Result};

use super::plan::{OutputPlan, Target};
use crate::output::{path_text, write_stdout};
use crate::report::{self, Render};

/// Writes `bytes` to the target (a file is replaced atomically).
pub fn write(target: &Target, bytes: &[u8]) -> Result<()> {
    match target {
        Target::Stdout => write_stdout(bytes).context("cannot write to standard output"),
        Target::File(file) => file
            .write(bytes)
            .with_context(|| format!("--output {}: write failed", path_text(file.shown()))),
    }
}

/// Renders and writes a command's result; a table for a terminal is fitted to its width.
pub fn emit(output: &OutputPlan, result: &impl Render) -> Result<()> {
    write(&output.target, render(output, result)?.as_bytes())
}

/// A command's result as the plan's output wants it.
pub fn render(output: &OutputPlan, result: &impl Render) -> Result<String> {
    let width = report::table_width(output.format, matches!(output.target, Target::Stdout));
    result.render(output.format, width)
}

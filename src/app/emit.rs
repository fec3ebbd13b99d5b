//! The one output path of every command: the result rendered in the plan's format (see
//! `report::Render`) and written to the plan's target.

use anyhow::{Context, Result};

use super::plan::{OutputPlan, Target};
use crate::output::{path_text, write_stdout};
use crate::report::Render;

/// Writes `bytes` to the target (a file is replaced atomically).
pub fn write(target: &Target, bytes: &[u8]) -> Result<()> {
    match target {
        Target::Stdout => write_stdout(bytes).context("cannot write to standard output"),
        Target::File(file) => file
            .write(bytes)
            .with_context(|| format!("--output {}: write failed", path_text(file.shown()))),
    }
}

/// Renders and writes a command's result.
pub fn emit(output: &OutputPlan, result: &impl Render) -> Result<()> {
    write(&output.target, result.render(output.format)?.as_bytes())
}

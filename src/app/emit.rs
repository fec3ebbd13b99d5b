//! The one output path of every command: JSON serialised from the result's own data, every
//! other format rendered from its report document, written to the plan's target.

use anyhow::{Context, Result};
use serde::Serialize;

use super::plan::{OutputPlan, Target};
use crate::output::{path_text, write_stdout};
use crate::report::{self, Document, Format};

/// The text of `value` in `format`: JSON from its serde form, the others from `document`.
pub fn render<T: Serialize>(
    format: Format,
    value: &T,
    document: impl FnOnce(Format) -> Document,
) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(value)? + "\n",
        format => report::render(&document(format), format)?,
    })
}

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
pub fn emit<T: Serialize>(
    output: &OutputPlan,
    value: &T,
    document: impl FnOnce(Format) -> Document,
) -> Result<()> {
    write(&output.target, render(output.format, value, document)?.as_bytes())
}

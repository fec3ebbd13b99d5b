//! Formatting: every report is a [`Document`] of titled tables and text lines, rendered as a
//! terminal table (comfy-table), Markdown or CSV; JSON is serialised from the computing modules'
//! own serde structs. Nothing here computes a figure: it only turns values into text.

mod analyze;
mod bench;
mod document;
mod images;
mod plot;
pub mod presets;
mod render;
mod retrain;
mod sweep;
pub mod units;

pub use analyze::{AnalyzeReport, analyze_csv, analyze_document, analyze_json};
pub use bench::{bench_document, bench_warnings};
pub use document::{Align, Document, Section, TextTable, stdout_width};
pub use images::{
    classify_csv_header, classify_csv_rows, classify_document, classify_failure, classify_json_line,
    evaluate_document, evaluate_failures, evaluate_notes,
};
pub use plot::{PlotError, sweep_plot_svg};
pub use render::{PresetsView, Render, json};
pub use retrain::{retrain_document, retrain_failures};

/// Terminal width for [`render_width`]: stdout's, when it is a terminal and `format` is a table.
pub fn table_width(format: Format, to_stdout: bool) -> Option<u16> {
    (format == Format::Table && to_stdout)
        .then(stdout_width)
        .flatten()
}
pub use sweep::{sweep_document, sweep_failures};

use std::fmt;
use std::str::FromStr;

/// Output formats shared by every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables (comfy-table).
    Table,
    /// JSON, for scripts and plotting.
    Json,
    /// CSV of the command's main table.
    Csv,
    /// GitHub-flavoured Markdown tables.
    Markdown,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Markdown => "markdown",
        })
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Format as clap::ValueEnum>::from_str(s, false)
            .map_err(|_| format!("unknown format '{s}' (expected table, json, csv or markdown)"))
    }
}

/// Renders a document in a text format (not JSON: JSON comes from the data structs).
pub fn render(doc: &Document, format: Format) -> anyhow::Result<String> {
    render_width(doc, format, None)
}

/// [`render`], with terminal tables wrapped to fit `width` columns when given (stdout is a
/// terminal of that width: see [`stdout_width`]).
pub fn render_width(doc: &Document, format: Format, width: Option<u16>) -> anyhow::Result<String> {
    Ok(match format {
        Format::Table => doc.to_terminal_width(width),
        Format::Markdown => doc.to_markdown(),
        Format::Csv => doc.to_csv()?,
        Format::Json => anyhow::bail!("JSON is serialised from the report data, not a document"),
    })
}

//! The one contract every command's result meets so that output has one path (hyperfine's
//! `Exporter`): JSON from the result's own data, each text format from its report. The
//! formats a result renders specially (a per-layer CSV, a raw-number table) are decided here,
//! once per result type, not at each call site.

use serde::Serialize;

use super::{AnalyzeReport, Document, Format, analyze_csv, analyze_document, analyze_json, render_width};
use crate::bench::BenchResult;
use crate::classify::EvalReport;
use crate::published::{PublishedModel, Store};
use crate::sweep::SweepReport;
use crate::transfer::RetrainReport;

/// A result in every output format.
pub trait Render {
    /// The result in `format`; terminal tables wrapped to `width` columns when given.
    fn render(&self, format: Format, width: Option<u16>) -> anyhow::Result<String>;
}

/// JSON of a serde value, pretty-printed with a final newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// A result whose JSON is its serde form and whose text formats come from one document
/// builder (which may lay CSV out differently).
fn serde_or_document<T: Serialize + ?Sized>(
    value: &T,
    format: Format,
    width: Option<u16>,
    document: impl FnOnce(Format) -> Document,
) -> anyhow::Result<String> {
    match format {
        Format::Json => json(value),
        format => render_width(&document(format), format, width),
    }
}

impl Render for AnalyzeReport {
    fn render(&self, format: Format, width: Option<u16>) -> anyhow::Result<String> {
        match format {
            Format::Json => Ok(analyze_json(self)?),
            Format::Csv => analyze_csv(self),
            format => render_width(&analyze_document(self), format, width),
        }
    }
}

/// The `presets` listing: the selected rows and the store their sources come from.
pub struct PresetsView<'a> {
    pub store: &'a Store,
    pub rows: Vec<&'a PublishedModel>,
}

impl Render for PresetsView<'_> {
    fn render(&self, format: Format, width: Option<u16>) -> anyhow::Result<String> {
        match format {
            Format::Json => json(&super::presets::json(self.store, &self.rows)),
            Format::Csv => super::presets::csv(&self.rows),
            format => render_width(&super::presets::document(self.store, &self.rows), format, width),
        }
    }
}

impl Render for BenchResult {
    fn render(&self, format: Format, width: Option<u16>) -> anyhow::Result<String> {
        serde_or_document(self, format, width, |f| super::bench_document(self, f))
    }
}

impl Render for SweepReport {
    fn render(&self, format: Format, width: Option<u16>) -> anyhow::Result<String> {
        serde_or_document(self, format, width, |f| super::sweep_document(self, f))
    }
}

impl Render for EvalReport {
    fn render(&self, format: Format, width: Option<u16>) -> anyhow::Result<String> {
        serde_or_document(self, format, width, |f| super::evaluate_document(self, f))
    }
}

impl Render for RetrainReport {
    fn render(&self, format: Format, width: Option<u16>) -> anyhow::Result<String> {
        serde_or_document(self, format, width, |f| super::retrain_document(self, f))
    }
}

//! The `analyze` report: paper Table 1 with costs (v2 Table 2 / v3 Tables 1-2 layouts with
//! expand, dw, SE and project rows for the inverted residual "bneck" blocks), totals under every
//! counting convention with the class count they were computed for, Table 2, the separable
//! saving, memory and the published figures for the variant.
//!
//! Three renderings of one [`AnalyzeReport`]: [`analyze_document`] (terminal and Markdown, one
//! function per section in `sections`), [`analyze_json`] (the JSON contract, `json`) and
//! [`analyze_csv`] (typed per-layer records, `rows`). None of them computes a figure.

mod cells;
mod json;
mod rows;
mod sections;

pub use json::analyze_json;
pub use rows::analyze_csv;

use super::document::Document;
use crate::cost::CostReport;
use crate::published::{Comparison, Table2Check};

/// What `analyze` computed: the cost report and the published comparison.
#[derive(Debug, Clone)]
pub struct AnalyzeReport {
    pub cost: CostReport,
    pub published: Vec<Comparison>,
    /// The paper's Table 2 against `cost.by_kind` (only for 1.0 MobileNet-224).
    pub table2: Vec<Table2Check>,
}

/// The human-readable report.
pub fn analyze_document(report: &AnalyzeReport) -> Document {
    let cost = &report.cost;
    let mut doc = Document::default();
    sections::introduction(&mut doc, cost);
    sections::layers(&mut doc, cost);
    sections::totals(&mut doc, cost);
    sections::kinds(&mut doc, report);
    sections::separable(&mut doc, cost);
    sections::omitted_expansions(&mut doc, cost);
    sections::memory(&mut doc, cost);
    sections::published(&mut doc, report);
    doc
}

#[cfg(test)]
mod tests;

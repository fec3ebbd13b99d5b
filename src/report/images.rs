//! Reports of `classify` and `evaluate`.

use super::Format;
use super::document::{Align, Document, TextTable};
use super::units::percent;
use crate::classify::{EvalReport, ImageResult};
use crate::text::escape_controls;

/// `classify`: CSV gets one flat row per (image, rank); the other formats a table per image.
pub fn classify_document(results: &[ImageResult], format: Format) -> Document {
    let mut doc = Document::default();
    if format == Format::Csv {
        let mut table = TextTable::new(&[
            ("image", Align::Left),
            ("model", Align::Left),
            ("rank", Align::Right),
            ("class_index", Align::Right),
            ("label", Align::Left),
            ("probability", Align::Right),
        ]);
        for r in results {
            for p in &r.predictions {
                table.push(vec![
                    r.image.clone(),
                    r.model.clone(),
                    p.rank.to_string(),
                    p.class_index.to_string(),
                    p.label.clone(),
                    format!("{:.6}", p.probability),
                ]);
            }
        }
        doc.main_table(table);
        return doc;
    }
    for r in results {
        doc.heading(format!("{} ({})", r.image, r.model));
        let mut table = TextTable::new(&[
            ("#", Align::Right),
            ("label", Align::Left),
            ("class", Align::Right),
            ("probability", Align::Right),
        ]);
        for p in &r.predictions {
            table.push(vec![
                p.rank.to_string(),
                p.label.clone(),
                p.class_index.to_string(),
                format!("{:.2}%", p.probability * 100.0),
            ]);
        }
        doc.table(table);
    }
    doc
}

/// `evaluate`: summary, notes, per-class accuracy, the most frequent confusions and the failed
/// images. CSV gets the per-class table with raw numbers (accuracies as fractions, empty when a
/// class has none).
pub fn evaluate_document(report: &EvalReport, format: Format) -> Document {
    let mut doc = Document::default();
    if format == Format::Csv {
        doc.main_table(class_table(report, true));
        return doc;
    }
    doc.heading(format!("Evaluation of {} on {}", report.model, report.dir));
    let mut summary = vec![
        format!(
            "top-1: {} ({} of {})    top-5: {} ({} of {})",
            percent(report.top1_accuracy * 100.0),
            report.top1_correct,
            report.images,
            percent(report.top5_accuracy * 100.0),
            report.top5_correct,
            report.images
        ),
        format!(
            "images failed: {}; non-image files skipped: {}",
            report.failed.len(),
            report.skipped_files
        ),
    ];
    summary.extend(evaluate_notes(report));
    doc.lines(summary);
    let classes = class_table(report, false);
    doc.heading("Per class");
    doc.main_table(classes);
    if !report.confusions.is_empty() {
        let mut confusions = TextTable::new(&[
            ("true", Align::Left),
            ("predicted", Align::Left),
            ("count", Align::Right),
        ]);
        for c in &report.confusions {
            confusions.push(vec![
                c.true_label.clone(),
                c.predicted_label.clone(),
                c.count.to_string(),
            ]);
        }
        doc.heading("Most frequent confusions (top-1)");
        doc.table(confusions);
    }
    if !report.failed.is_empty() {
        doc.heading("Failed images");
        doc.lines(evaluate_failures(report));
    }
    doc
}

/// The per-class table: for reading (accuracies in percent, "-" for none) or `raw` (for CSV:
/// column names as the JSON fields, accuracies as fractions, empty for none).
fn class_table(report: &EvalReport, raw: bool) -> TextTable {
    let name = |readable, field| if raw { field } else { readable };
    let mut table = TextTable::new(&[
        ("folder", Align::Left),
        (name("class", "label"), Align::Left),
        ("class_index", Align::Right),
        ("images", Align::Right),
        ("failed", Align::Right),
        ("top1_correct", Align::Right),
        (name("top1", "top1_accuracy"), Align::Right),
        ("top5_correct", Align::Right),
        (name("top5", "top5_accuracy"), Align::Right),
    ]);
    let accuracy = |a: Option<f64>| match (a, raw) {
        (Some(a), true) => a.to_string(),
        (Some(a), false) => percent(a * 100.0),
        (None, true) => String::new(),
        (None, false) => "-".to_string(),
    };
    for c in &report.classes {
        table.push(vec![
            c.folder.clone(),
            c.label.clone(),
            c.class_index.to_string(),
            c.images.to_string(),
            c.failed.to_string(),
            c.top1_correct.to_string(),
            accuracy(c.top1_accuracy),
            c.top5_correct.to_string(),
            accuracy(c.top5_accuracy),
        ]);
    }
    table
}

/// What an evaluation left out, one sentence each: images outside every class folder and
/// class folders without images. Empty when nothing was left out.
pub fn evaluate_notes(report: &EvalReport) -> Vec<String> {
    let mut notes = Vec::new();
    if !report.unlabelled_images.is_empty() {
        notes.push(format!(
            "not in any class folder, so not evaluated: {}",
            escape_all(&report.unlabelled_images).join(", ")
        ));
    }
    if !report.empty_classes.is_empty() {
        notes.push(format!(
            "class folders without images, so not scored: {}",
            escape_all(&report.empty_classes).join(", ")
        ));
    }
    notes
}

/// "IMAGE: REASON" for each image an evaluation could not decode, escaped for a terminal.
pub fn evaluate_failures(report: &EvalReport) -> Vec<String> {
    report
        .failed
        .iter()
        .map(|f| escape_controls(&format!("{}: {}", f.image, f.error)))
        .collect()
}

fn escape_all(texts: &[String]) -> Vec<String> {
    texts.iter().map(|t| escape_controls(t)).collect()
}

//! Reports of `classify` and `evaluate`.

use super::Format;
use super::document::{Align, Document, TextTable};
use super::units::percent;
use crate::classify::{EvalReport, ImageResult};

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

/// `evaluate`: summary, per-class accuracy and the most frequent confusions.
pub fn evaluate_document(report: &EvalReport) -> Document {
    let mut doc = Document::default();
    doc.heading(format!("Evaluation of {} on {}", report.model, report.dir));
    doc.lines(vec![
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
    ]);
    let mut classes = TextTable::new(&[
        ("folder", Align::Left),
        ("class", Align::Left),
        ("class_index", Align::Right),
        ("images", Align::Right),
        ("top1_correct", Align::Right),
        ("top1", Align::Right),
        ("top5_correct", Align::Right),
        ("top5", Align::Right),
    ]);
    for c in &report.classes {
        classes.push(vec![
            c.folder.clone(),
            c.label.clone(),
            c.class_index.to_string(),
            c.images.to_string(),
            c.top1_correct.to_string(),
            percent(c.top1_accuracy * 100.0),
            c.top5_correct.to_string(),
            percent(c.top5_accuracy * 100.0),
        ]);
    }
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
        doc.lines(
            report
                .failed
                .iter()
                .map(|f| format!("{}: {}", f.image, f.error))
                .collect(),
        );
    }
    doc
}

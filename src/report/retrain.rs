//! The report of `retrain`: what was trained on what, the test score with its interval, the
//! classes and their splits, the training curve, the confusion matrix, the mistakes, and what
//! the run cost. CSV is the training curve (one row per epoch, raw numbers).

use super::Format;
use super::document::{Align, Document, TextTable};
use super::units::percent;
use crate::text::escape_controls;
use crate::transfer::report::RetrainReport;
use crate::transfer::{FeatureSource, Score, Source};

/// `retrain`'s report in `format` (not JSON: that is the report's serde form).
pub fn retrain_document(report: &RetrainReport, format: Format) -> Document {
    let mut doc = Document::default();
    if format == Format::Csv {
        doc.main_table(epoch_table(report, true));
        return doc;
    }
    doc.heading(format!(
        "Retrained {} on {}, written to {}",
        report.model.name, report.data.dir, report.output
    ));
    let mut summary = vec![feature_line(report), split_line(report)];
    if let Some(path) = &report.features_out {
        summary.push(format!("features of every image, with class and split: {path}"));
    }
    summary.push(match &report.test {
        Some(t) => format!("test accuracy: {}", score_text(t)),
        None => "test accuracy: no test images".into(),
    });
    if let Some(v) = &report.validation {
        summary.push(format!("validation accuracy: {}", score_text(v)));
    }
    let t = &report.training;
    summary.push(format!(
        "head kept from epoch {} of {}{} ({} training vectors{})",
        t.best_epoch,
        t.epochs.len(),
        if t.stopped_early { ", stopped early" } else { "" },
        t.vectors,
        report
            .augment
            .map_or_else(String::new, |n| format!(", {n} augmented views per image"))
    ));
    summary.extend(cost_lines(report));
    summary.extend(notes(report));
    doc.lines(summary);

    doc.heading("Classes");
    doc.table(class_table(report));
    doc.heading("Training (per epoch)");
    doc.main_table(epoch_table(report, false));
    if let Some(test) = &report.test {
        doc.heading("Confusion matrix on the test images (rows: true class, columns: predicted)");
        doc.table(confusion_table(report, test));
        if !test.misclassified.is_empty() {
            doc.heading("Misclassified test images");
            let mut table = TextTable::new(&[
                ("image", Align::Left),
                ("class", Align::Left),
                ("predicted", Align::Left),
                ("probability", Align::Right),
            ]);
            for m in &test.misclassified {
                table.push(vec![
                    m.image.clone(),
                    m.class.clone(),
                    m.predicted.clone(),
                    percent(f64::from(m.probability) * 100.0),
                ]);
            }
            doc.table(table);
        }
    }
    if !report.data.failed.is_empty() {
        doc.heading("Images left out (unreadable)");
        doc.lines(retrain_failures(report));
    }
    doc
}

fn feature_line(report: &RetrainReport) -> String {
    let f = &report.feature;
    let what = match &f.source {
        FeatureSource::Pooled { conv } => format!("the global average pool of {conv}"),
        FeatureSource::ConvHead { conv } => {
            format!("conv_head (1x1 convolution, hard-swish) after the pool of {conv}")
        }
    };
    format!("features: {} values of {} ({what})", f.width, f.layer)
}

fn split_line(report: &RetrainReport) -> String {
    let part = |name: &str, source: &Source| match source {
        Source::Percent(p) => format!("{name} {p}% of DIR"),
        Source::Folder(dir) => format!("{name} {}", dir.display()),
    };
    format!(
        "split: {}, {} (by a hash of each path under DIR), training the rest",
        part("validation", &report.data.split.validation),
        part("test", &report.data.split.test)
    )
}

/// "84.00% (42 of 50), 95% interval 71.49% to 91.66%".
fn score_text(s: &Score) -> String {
    format!(
        "{} ({} of {}), 95% interval {} to {}",
        percent(s.accuracy * 100.0),
        s.correct,
        s.images,
        percent(s.interval.low * 100.0),
        percent(s.interval.high * 100.0)
    )
}

fn cost_lines(report: &RetrainReport) -> Vec<String> {
    let f = &report.features;
    let rate = |t: Option<f64>| t.map_or_else(String::new, |t| format!(": {t:.1} images/s"));
    let mut lines = vec![format!(
        "time: features {:.2} s{} (forward {:.2} s{}, cache writes {:.2} s, waiting for decoded images {:.2} s; beside them, read and hash {:.2} s, decode {:.2} s), training {:.2} s, total {:.2} s",
        f.total_seconds(),
        rate(f.throughput()),
        f.forward_seconds,
        rate(f.forward_throughput()),
        f.write_seconds,
        f.wait_seconds,
        f.read_seconds,
        f.decode_seconds,
        report.training.seconds,
        report.total_seconds
    )];
    if let Some(a) = &report.augmentation {
        lines.push(format!(
            "augmentation: {} views, {:.2} s (forward {:.2} s, waiting for decoded images {:.2} s; beside them, decode {:.2} s), not cached",
            a.forwarded,
            a.total_seconds(),
            a.forward_seconds,
            a.wait_seconds,
            a.decode_seconds
        ));
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    lines.push(format!(
        "engine {}, {} thread{}, batch {}; images decoded {} at a time beside them",
        report.engine,
        report.threads,
        plural(report.threads),
        report.batch,
        report.decode_threads
    ));
    lines.push(match &report.cache_dir {
        Some(dir) => format!(
            "cache: {} hits, {} misses, {} damaged entries replaced, {} written{}; {dir}",
            f.cache_hits,
            f.cache_misses,
            f.cache_invalid,
            f.cache_writes,
            match f.cache_write_errors {
                0 => String::new(),
                n => format!(", {n} could not be written"),
            }
        ),
        None => "cache: none (every image ran through the backbone)".into(),
    });
    lines
}

fn notes(report: &RetrainReport) -> Vec<String> {
    let d = &report.data;
    let mut notes = Vec::new();
    if !d.failed.is_empty() {
        notes.push(format!(
            "{} image{} could not be read or decoded and {} left out (listed below)",
            d.failed.len(),
            if d.failed.len() == 1 { "" } else { "s" },
            if d.failed.len() == 1 { "is" } else { "are" }
        ));
    }
    if !d.unlabelled.is_empty() {
        notes.push(format!(
            "not in any class folder, so not used: {}",
            d.unlabelled
                .iter()
                .map(|s| escape_controls(s))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let few: Vec<&str> = d
        .classes
        .iter()
        .filter(|c| c.counts.train < FEW_IMAGES)
        .map(|c| c.name.as_str())
        .collect();
    if !few.is_empty() {
        notes.push(format!(
            "fewer than {FEW_IMAGES} training images in {}: expect a noisy head",
            few.join(", ")
        ));
    }
    notes
}

/// Training images per class below which the report warns (retrain.py warns below 20).
const FEW_IMAGES: usize = 20;

fn class_table(report: &RetrainReport) -> TextTable {
    let mut table = TextTable::new(&[
        ("class", Align::Left),
        ("train", Align::Right),
        ("validation", Align::Right),
        ("test", Align::Right),
        ("test correct", Align::Right),
        ("test accuracy", Align::Right),
    ]);
    for (i, c) in report.data.classes.iter().enumerate() {
        let scored = report.test.as_ref().and_then(|t| t.per_class.get(i));
        table.push(vec![
            c.name.clone(),
            c.counts.train.to_string(),
            c.counts.validation.to_string(),
            c.counts.test.to_string(),
            scored.map_or_else(|| "-".into(), |s| s.correct.to_string()),
            scored
                .and_then(|s| s.accuracy)
                .map_or_else(|| "-".into(), |a| percent(a * 100.0)),
        ]);
    }
    table
}

/// The training curve: for reading (losses to 4 decimals, accuracy in percent, "-" for none)
/// or `raw` (for CSV: the JSON's field names and numbers, empty for none).
fn epoch_table(report: &RetrainReport, raw: bool) -> TextTable {
    let name = |readable, field| if raw { field } else { readable };
    let mut table = TextTable::new(&[
        ("epoch", Align::Right),
        (name("training loss", "train_loss"), Align::Right),
        (name("validation loss", "validation_loss"), Align::Right),
        (name("validation accuracy", "validation_accuracy"), Align::Right),
    ]);
    let number = |v: Option<f64>, readable: fn(f64) -> String| match (v, raw) {
        (Some(v), true) => v.to_string(),
        (Some(v), false) => readable(v),
        (None, true) => String::new(),
        (None, false) => "-".into(),
    };
    let kept = report.training.best_epoch;
    for e in &report.training.epochs {
        let epoch = if !raw && e.epoch == kept {
            format!("{} (kept)", e.epoch)
        } else {
            e.epoch.to_string()
        };
        table.push(vec![
            epoch,
            number(Some(e.train_loss), |v| format!("{v:.4}")),
            number(e.validation_loss, |v| format!("{v:.4}")),
            number(e.validation_accuracy, |v| percent(v * 100.0)),
        ]);
    }
    table
}

fn confusion_table(report: &RetrainReport, test: &Score) -> TextTable {
    let names: Vec<&str> = report.data.classes.iter().map(|c| c.name.as_str()).collect();
    let mut columns: Vec<(&str, Align)> = vec![("true \\ predicted", Align::Left)];
    columns.extend(names.iter().map(|n| (*n, Align::Right)));
    let mut table = TextTable::new(&columns);
    for (name, row) in names.iter().zip(&test.confusion) {
        let mut cells = vec![name.to_string()];
        cells.extend(row.iter().map(usize::to_string));
        table.push(cells);
    }
    table
}

/// "IMAGE: REASON" for each image left out, escaped for a terminal.
pub fn retrain_failures(report: &RetrainReport) -> Vec<String> {
    report
        .data
        .failed
        .iter()
        .map(|f| escape_controls(&format!("{}: {}", f.image, f.error)))
        .collect()
}

//! The report of `retrain`: what was trained on what, the test score with its interval, the
//! classes and their splits, the training curve, the confusion matrix, the mistakes, and what
//! the run cost. CSV is the training curve (one row per epoch, raw numbers); the readable
//! report shows a compact curve ([`curve_rows`]: the first epochs, every k-th, the kept one and
//! the last), since JSON and CSV hold every epoch.

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
        doc.main_table(epoch_table(report, None));
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
    let shown = curve_rows(t.epochs.len(), t.best_epoch);
    doc.heading("Training (per epoch)");
    if shown.len() < t.epochs.len() {
        let k = curve_stride(t.epochs.len());
        doc.lines(vec![format!(
            "{} epochs ran; shown: the first {CURVE_FIRST}, every {k}{}, the kept one and the last (--format json and csv hold every epoch)",
            t.epochs.len(),
            ordinal_suffix(k)
        )]);
    }
    doc.main_table(epoch_table(report, Some(&shown)));
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

/// Rows of the readable training curve at most (beside the kept epoch, should it fall between).
const CURVE_MAX_ROWS: usize = 12;
/// The first epochs always shown: where the loss moves most.
const CURVE_FIRST: usize = 3;

/// The stride of the compact curve for `n` epochs: the smallest of 1, 2, 5, 10, 20, 50, ...
/// whose multiples after the first epochs, with those and the last, fit in
/// [`CURVE_MAX_ROWS`] less one (room for the kept epoch).
fn curve_stride(n: usize) -> usize {
    let fits = |k: usize| {
        let multiples = (CURVE_FIRST + 1..n).filter(|e| e % k == 0).count();
        CURVE_FIRST.min(n) + multiples + 1 < CURVE_MAX_ROWS
    };
    let mut decade = 1;
    loop {
        for k in [decade, 2 * decade, 5 * decade] {
            if fits(k) {
                return k;
            }
        }
        decade *= 10;
    }
}

/// "st", "nd", "rd" or "th" after `n`.
fn ordinal_suffix(n: usize) -> &'static str {
    match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// Which epochs (1-based, ascending) the readable curve shows of `n`, the kept one being
/// `kept`: every epoch when they fit in [`CURVE_MAX_ROWS`]; otherwise the first
/// [`CURVE_FIRST`], the multiples of [`curve_stride`], the kept epoch and the last.
fn curve_rows(n: usize, kept: usize) -> Vec<usize> {
    if n <= CURVE_MAX_ROWS {
        return (1..=n).collect();
    }
    let k = curve_stride(n);
    (1..=n)
        .filter(|&e| e <= CURVE_FIRST || e % k == 0 || e == kept || e == n)
        .collect()
}

/// The training curve: for reading, the epochs in `shown` (losses to 4 decimals, accuracy in
/// percent, "-" for none), or with `None` every epoch raw (for CSV: the JSON's field names and
/// numbers, empty for none).
fn epoch_table(report: &RetrainReport, shown: Option<&[usize]>) -> TextTable {
    let raw = shown.is_none();
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
    let epochs = report
        .training
        .epochs
        .iter()
        .filter(|e| shown.is_none_or(|shown| shown.binary_search(&e.epoch).is_ok()));
    for e in epochs {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_curves_are_shown_whole() {
        assert_eq!(curve_rows(0, 0), Vec::<usize>::new());
        assert_eq!(curve_rows(5, 2), vec![1, 2, 3, 4, 5]);
        assert_eq!(curve_rows(12, 12), (1..=12).collect::<Vec<_>>());
    }

    #[test]
    fn long_curves_keep_the_first_every_kth_the_kept_and_the_last() {
        assert_eq!(curve_stride(100), 20);
        assert_eq!(curve_rows(100, 100), vec![1, 2, 3, 20, 40, 60, 80, 100]);
        assert_eq!(curve_rows(100, 37), vec![1, 2, 3, 20, 37, 40, 60, 80, 100]);
        assert_eq!(curve_stride(13), 2);
        assert_eq!(curve_rows(13, 5), vec![1, 2, 3, 4, 5, 6, 8, 10, 12, 13]);
        assert_eq!(curve_rows(30, 21), vec![1, 2, 3, 5, 10, 15, 20, 21, 25, 30]);
        assert_eq!(
            curve_rows(1000, 999),
            vec![1, 2, 3, 200, 400, 600, 800, 999, 1000]
        );
        assert_eq!(
            [1, 2, 3, 4, 11, 12, 20, 22, 50].map(|n| format!("{n}{}", ordinal_suffix(n))),
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "20th", "22nd", "50th"]
        );
    }

    #[test]
    fn the_compact_curve_never_passes_its_limit() {
        for n in 1..=2000 {
            for kept in [1, n / 2, n] {
                let rows = curve_rows(n, kept);
                assert!(rows.len() <= CURVE_MAX_ROWS, "{n} epochs, kept {kept}: {rows:?}");
                assert!(
                    rows.contains(&kept.max(1)) && rows.contains(&n),
                    "{n}, {kept}: {rows:?}"
                );
                assert!(rows.windows(2).all(|w| w[0] < w[1]), "{rows:?}");
            }
        }
    }
}

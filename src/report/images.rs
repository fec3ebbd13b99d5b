//! Reports of `classify` and `evaluate`.

use super::Format;
use super::document::{Align, Document, TextTable, csv_line};
use super::units::percent;
use crate::classify::{EvalReport, ImageRecord, Outcome, Prediction};
use crate::text::escape_controls;
use crate::vision::Crop;

/// Columns of classify's CSV: one row per (image, rank), or one row for a failed image with
/// `status` "failed", its `error` and the prediction columns empty. Raw values: probabilities
/// as fractions (at int8 exactly q / 256), `imagenet_index` empty where the JSON has null.
const CLASSIFY_COLUMNS: [&str; 12] = [
    "image",
    "model",
    "precision",
    "resolution",
    "crop",
    "status",
    "rank",
    "class_index",
    "imagenet_index",
    "label",
    "probability",
    "error",
];

/// The CSV rows of one record.
fn classify_rows(record: &ImageRecord) -> Vec<Vec<String>> {
    let row = |status: &str, prediction: Option<&Prediction>, error: String| {
        let mut row = vec![
            record.image.clone(),
            record.model.clone(),
            record.precision.to_string(),
            record.resolution.to_string(),
            record.crop.get().to_string(),
            status.to_string(),
        ];
        row.extend(match prediction {
            Some(p) => [
                p.rank.to_string(),
                p.class_index.to_string(),
                p.imagenet_index.map_or_else(String::new, |i| i.to_string()),
                p.label.clone(),
                p.probability.to_string(),
            ],
            None => Default::default(),
        });
        row.push(error);
        row
    };
    match &record.outcome {
        Outcome::Ok { predictions } => predictions
            .iter()
            .map(|p| row("ok", Some(p), String::new()))
            .collect(),
        Outcome::Failed { error } => vec![row("failed", None, error.to_string())],
    }
}

/// classify's CSV header line (with its line break), to write once before the rows.
pub fn classify_csv_header() -> String {
    csv_line(&CLASSIFY_COLUMNS.map(String::from))
}

/// classify's CSV lines for `records` (no header), so a caller can write each batch as it
/// finishes.
pub fn classify_csv_rows(records: &[ImageRecord]) -> String {
    records
        .iter()
        .flat_map(classify_rows)
        .map(|row| csv_line(&row))
        .collect()
}

/// One record as a line of JSON Lines (with its line break).
pub fn classify_json_line(record: &ImageRecord) -> serde_json::Result<String> {
    Ok(serde_json::to_string(record)? + "\n")
}

/// "IMAGE: REASON" for a failed record, escaped for a terminal; None for a classified one.
pub fn classify_failure(record: &ImageRecord) -> Option<String> {
    record
        .failure()
        .map(|error| escape_controls(&format!("{}: {error}", record.image)))
}

/// `classify`: a table per image (a line for a failed one); CSV gets the flat rows of
/// [`classify_csv_rows`].
pub fn classify_document(records: &[ImageRecord], format: Format) -> Document {
    let mut doc = Document::default();
    if format == Format::Csv {
        let columns: Vec<(&str, Align)> = CLASSIFY_COLUMNS.iter().map(|c| (*c, Align::Left)).collect();
        let mut table = TextTable::new(&columns);
        for row in records.iter().flat_map(classify_rows) {
            table.push(row);
        }
        doc.main_table(table);
        return doc;
    }
    for r in records {
        let mut model = match r.trained_resolution {
            Some(trained) if trained != r.resolution => {
                format!("{} at {res}x{res}, {}", r.model, r.precision, res = r.resolution)
            }
            _ => format!("{}, {}", r.model, r.precision),
        };
        // The default crop goes unsaid, as TF-slim's evaluation crop; any other is named.
        if r.crop != Crop::TF_SLIM {
            model.push_str(&format!(", crop {}", r.crop.get()));
        }
        doc.heading(format!("{} ({model})", r.image));
        match &r.outcome {
            Outcome::Ok { predictions } => {
                let mut table = TextTable::new(&[
                    ("#", Align::Right),
                    ("label", Align::Left),
                    ("class", Align::Right),
                    ("probability", Align::Right),
                ]);
                for p in predictions {
                    table.push(vec![
                        p.rank.to_string(),
                        p.label.clone(),
                        p.class_index.to_string(),
                        format!("{:.2}%", p.probability * 100.0),
                    ]);
                }
                doc.table(table);
            }
            Outcome::Failed { error } => doc.lines(vec![format!("failed: {error}")]),
        }
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
    doc.heading(format!(
        "Evaluation of {} ({}) on {}",
        report.model, report.precision, report.dir
    ));
    let mut summary = vec![
        format!(
            "top-1: {} ({} of {})    {}",
            percent(report.top1_accuracy * 100.0),
            report.top1_correct,
            report.images,
            if shows_top5(report) {
                format!(
                    "top-5: {} ({} of {})",
                    percent(report.top5_accuracy * 100.0),
                    report.top5_correct,
                    report.images
                )
            } else {
                format!("top-5: - (the model has {} classes)", report.model_classes)
            }
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
/// Whether top-5 says anything: the model has more than 5 classes.
fn shows_top5(report: &EvalReport) -> bool {
    report.model_classes > crate::classify::TOP5
}

fn class_table(report: &EvalReport, raw: bool) -> TextTable {
    let name = |readable, field| if raw { field } else { readable };
    // CSV keeps its columns whatever the model; the readable table drops a top-5 that is 100%
    // by construction.
    let top5 = raw || shows_top5(report);
    let mut columns = vec![
        ("folder", Align::Left),
        (name("class", "label"), Align::Left),
        ("class_index", Align::Right),
        ("images", Align::Right),
        ("failed", Align::Right),
        ("top1_correct", Align::Right),
        (name("top1", "top1_accuracy"), Align::Right),
    ];
    if top5 {
        columns.extend([
            ("top5_correct", Align::Right),
            (name("top5", "top5_accuracy"), Align::Right),
        ]);
    }
    let mut table = TextTable::new(&columns);
    let accuracy = |a: Option<f64>| match (a, raw) {
        (Some(a), true) => a.to_string(),
        (Some(a), false) => percent(a * 100.0),
        (None, true) => String::new(),
        (None, false) => "-".to_string(),
    };
    for c in &report.classes {
        let mut row = vec![
            c.folder.clone(),
            c.label.clone(),
            c.class_index.to_string(),
            c.images.to_string(),
            c.failed.to_string(),
            c.top1_correct.to_string(),
            accuracy(c.top1_accuracy),
        ];
        if top5 {
            row.extend([c.top5_correct.to_string(), accuracy(c.top5_accuracy)]);
        }
        table.push(row);
    }
    table
}

/// What an evaluation left out, one sentence each: images outside every class folder and
/// class folders without images. Empty when nothing was left out.
pub fn evaluate_notes(report: &EvalReport) -> Vec<String> {
    let mut notes = Vec::new();
    if !report.complete {
        notes.push(format!(
            "interrupted: the figures cover the {} images classified before the stop",
            report.images
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Failure, top_k};
    use crate::infer::Precision;
    use crate::vision::{ClassLayout, Crop, ImageErrorKind};

    fn record(image: &str, outcome: Outcome) -> ImageRecord {
        ImageRecord {
            image: image.into(),
            model: "0.25_128".into(),
            precision: Precision::Int8,
            crop: Crop::TF_SLIM,
            resolution: 128,
            trained_resolution: Some(128),
            class_layout: ClassLayout::Imagenet1001,
            outcome,
        }
    }

    fn records() -> Vec<ImageRecord> {
        let mut probs = vec![0.0f32; 1001];
        probs[286] = 0.75;
        probs[0] = 0.25;
        vec![
            record(
                "a, b.jpg",
                Outcome::Ok {
                    predictions: top_k(&probs, 2, &crate::vision::ClassNames::Imagenet1001),
                },
            ),
            record(
                "cut.jpg",
                Outcome::Failed {
                    error: Failure::Image(ImageErrorKind::Truncated {
                        reason: "Exhausted data in the image".into(),
                    }),
                },
            ),
        ]
    }

    #[test]
    fn csv_rows_are_raw_and_failed_images_have_a_row() {
        let header = classify_csv_header();
        assert_eq!(
            header,
            "image,model,precision,resolution,crop,status,rank,class_index,imagenet_index,label,probability,error\n"
        );
        let rows = classify_csv_rows(&records());
        assert_eq!(
            rows,
            "\"a, b.jpg\",0.25_128,int8,128,0.875,ok,1,286,285,Egyptian cat,0.75,\n\
             \"a, b.jpg\",0.25_128,int8,128,0.875,ok,2,0,,background,0.25,\n\
             cut.jpg,0.25_128,int8,128,0.875,failed,,,,,,truncated image (Exhausted data in the image)\n"
        );
        let doc = classify_document(&records(), Format::Csv);
        assert_eq!(
            doc.to_csv().unwrap(),
            header + &rows,
            "one layout for streamed and whole CSV"
        );
    }

    #[test]
    fn json_lines_hold_one_record_each() {
        let lines: Vec<String> = records().iter().map(|r| classify_json_line(r).unwrap()).collect();
        assert!(
            lines
                .iter()
                .all(|l| l.ends_with('\n') && l.matches('\n').count() == 1)
        );
        let failed: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"], "truncated image (Exhausted data in the image)");
        let ok: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(ok["predictions"][1]["imagenet_index"], serde_json::Value::Null);
    }

    #[test]
    fn failures_are_named_once_and_escaped() {
        let mut records = records();
        assert_eq!(classify_failure(&records[0]), None);
        records[1].image = "cut\u{1b}[2J.jpg".into();
        assert_eq!(
            classify_failure(&records[1]).unwrap(),
            "cut\\x1b[2J.jpg: truncated image (Exhausted data in the image)"
        );
        let text = classify_document(&records, Format::Table).to_terminal();
        assert!(
            text.contains("failed: truncated image (Exhausted data in the image)"),
            "{text}"
        );
    }
}

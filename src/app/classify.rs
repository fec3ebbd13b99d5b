//! `classify` and `evaluate`: the shipped (or the user's) ImageNet weights on real images.
//!
//! classify writes JSON Lines and CSV as each batch finishes (so `| head` gets the first result
//! early and an interrupted run keeps what it classified); the table, Markdown and JSON array
//! are written once, at the end. Every image gets a record, classified or failed.

use std::io::Read;
use std::ops::ControlFlow;
use std::process::ExitCode;

use anyhow::{Context, Result};
use indicatif::ProgressBar;

use super::emit::{emit, write};
use super::network::{load, off_resolution_note};
use super::plan::{ClassifyPlan, EvaluatePlan, Input, Target};
use super::{exit, interrupt, progress_bar};
use crate::classify::{ImageRecord, Source, classify_sources, evaluate};
use crate::cli::ClassifyFormat;
use crate::output::{PendingFile, write_stdout};
use crate::report::{self, Format};
use crate::text::path_text;
use crate::vision::MAX_ALLOC_BYTES;

/// Most bytes read from standard input for one image: the decoder's own allocation cap.
const MAX_STDIN_BYTES: u64 = MAX_ALLOC_BYTES;

/// The images to classify, in order: each file given, the images directly inside each
/// directory given (sorted, hidden files skipped), and standard input where `-` was given.
/// Paths that do not exist are kept, so that they fail with their own record; a directory that
/// cannot be listed or holds no image is an error line.
fn sources(inputs: &[Input]) -> (Vec<Source>, Vec<String>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        match input {
            Input::Stdin => sources.push(Source::Bytes {
                name: "-".into(),
                bytes: Vec::new(),
            }),
            Input::Path(path) if !path.is_dir() => sources.push(Source::File(path.clone())),
            Input::Path(dir) => match crate::dataset::list_dir(dir) {
                Err(e) => errors.push(e.to_string()),
                Ok(listing) => {
                    if listing.images.is_empty() {
                        errors.push(format!(
                            "{}: directory has no images (jpg, png, bmp, webp)",
                            path_text(dir)
                        ));
                    }
                    sources.extend(listing.images.into_iter().map(Source::File));
                }
            },
        }
    }
    (sources, errors)
}

/// Reads standard input into the `-` source (once, before the first batch).
fn read_stdin(source: &mut Source) -> Result<(), String> {
    let Source::Bytes { bytes, .. } = source else {
        return Ok(());
    };
    std::io::stdin()
        .lock()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(bytes)
        .map_err(|e| format!("-: cannot read standard input: {e}"))?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        return Err(format!(
            "-: standard input is larger than {} MiB",
            MAX_STDIN_BYTES >> 20
        ));
    }
    Ok(())
}

/// Where streamed records go as each batch finishes.
enum Stream {
    Stdout,
    File(PendingFile),
}

impl Stream {
    fn write(&mut self, bytes: &[u8], target: &Target) -> Result<()> {
        match self {
            Stream::Stdout => write_stdout(bytes).context("cannot write to standard output"),
            Stream::File(file) => file.append(bytes).with_context(|| output_failed(target)),
        }
    }
}

fn output_failed(target: &Target) -> String {
    match target.file() {
        Some(f) => format!("--output {}: write failed", path_text(f.shown())),
        None => "cannot write to standard output".into(),
    }
}

/// The text of freshly finished records in a streamed format.
fn streamed(format: ClassifyFormat, records: &[ImageRecord], first: bool) -> Result<String> {
    Ok(match format {
        ClassifyFormat::Jsonl => {
            let mut lines = String::new();
            for r in records {
                lines.push_str(&report::classify_json_line(r)?);
            }
            lines
        }
        _ => {
            let rows = report::classify_csv_rows(records);
            if first {
                report::classify_csv_header() + &rows
            } else {
                rows
            }
        }
    })
}

pub fn run_classify(plan: &ClassifyPlan) -> Result<ExitCode> {
    let (mut sources, mut errors) = sources(&plan.inputs);
    // A batch is never larger than the images there are: the memory check uses that.
    let loaded = load(
        &plan.model,
        &plan.run,
        plan.batch.min(sources.len().max(1)),
        MAX_ALLOC_BYTES,
    )?;
    if let Some(note) = off_resolution_note(&loaded.net)
        && !plan.quiet
    {
        eprintln!("{note}");
    }
    let mut runner = loaded.runner(&plan.run)?;
    for e in &errors {
        eprintln!("error: {e}");
    }
    if let Some(stdin) = sources.iter_mut().find(|s| matches!(s, Source::Bytes { .. }))
        && let Err(e) = read_stdin(stdin)
    {
        eprintln!("error: {e}");
        errors.push(e);
        sources.retain(|s| !matches!(s, Source::Bytes { .. }));
    }
    let streaming = matches!(plan.format, ClassifyFormat::Jsonl | ClassifyFormat::Csv);
    let mut stream = match (&plan.target, streaming) {
        (Target::File(file), true) => Some(Stream::File(
            file.begin().with_context(|| output_failed(&plan.target))?,
        )),
        (Target::Stdout, true) => Some(Stream::Stdout),
        _ => None,
    };
    let bar = progress_bar(sources.len() as u64, plan.quiet, "classify", "images");
    let mut records: Vec<ImageRecord> = Vec::new();
    let mut interrupted = None;
    for chunk in sources.chunks(plan.batch) {
        if let Err(signal) = interrupt::check() {
            interrupted = Some(signal);
            break;
        }
        let fresh = classify_sources(&mut runner, chunk, plan.top, plan.crop);
        for record in &fresh {
            if let Some(line) = report::classify_failure(record) {
                bar.suspend(|| eprintln!("error: {line}"));
                errors.push(line);
            }
        }
        if let Some(stream) = &mut stream {
            let text = streamed(plan.format, &fresh, records.is_empty())?;
            stream.write(text.as_bytes(), &plan.target)?;
        }
        records.extend(fresh);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    // Nothing classified: no results file (a streamed one is dropped uncommitted), exit 1.
    let classified = records.iter().any(|r| r.predictions().is_some());
    match stream {
        Some(Stream::File(file)) if classified => {
            file.commit().with_context(|| output_failed(&plan.target))?
        }
        Some(_) => {}
        None if classified => {
            let format = match plan.format {
                ClassifyFormat::Json => Format::Json,
                ClassifyFormat::Markdown => Format::Markdown,
                _ => Format::Table,
            };
            let text = match format {
                Format::Json => report::json(&records)?,
                format => report::render_width(
                    &report::classify_document(&records, format),
                    format,
                    report::table_width(format, matches!(plan.target, Target::Stdout)),
                )?,
            };
            write(&plan.target, text.as_bytes())?;
        }
        None => {}
    }
    if let Some(signal) = interrupted {
        return Err(signal.into());
    }
    if !classified {
        if errors.is_empty() {
            eprintln!("error: no images to classify");
        }
        return Ok(ExitCode::from(exit::FAILURE));
    }
    Ok(ExitCode::from(if errors.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }))
}

pub fn run_evaluate(plan: &EvaluatePlan) -> Result<ExitCode> {
    let loaded = load(&plan.model, &plan.run, plan.batch, MAX_ALLOC_BYTES)?;
    if let Some(note) = off_resolution_note(&loaded.net)
        && !plan.quiet
    {
        eprintln!("{note}");
    }
    let mut runner = loaded.runner(&plan.run)?;
    let mut bar: Option<ProgressBar> = None;
    let report = evaluate(
        &mut runner,
        &plan.dir,
        plan.batch,
        plan.confusions,
        plan.crop,
        |done, total| {
            let b = bar.get_or_insert_with(|| progress_bar(total as u64, plan.quiet, "evaluate", "images"));
            b.set_position(done as u64);
            // An interruption stops after this batch; the images so far are scored.
            match interrupt::check() {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for line in report::evaluate_failures(&report) {
        eprintln!("error: {line}");
    }
    // The table shows its notes; the machine formats carry them as data, so say them here.
    if !plan.quiet && matches!(plan.output.format, Format::Json | Format::Csv) {
        for line in report::evaluate_notes(&report) {
            eprintln!("note: {line}");
        }
    }
    emit(&plan.output, &report)?;
    if let Some(signal) = interrupt::requested() {
        return Err(signal.into());
    }
    Ok(ExitCode::from(if report.failed.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }))
}

/// Paths of the images an input list names, for tests of the listing.
#[cfg(test)]
fn listed(inputs: &[Input]) -> Vec<std::path::PathBuf> {
    sources(inputs)
        .0
        .into_iter()
        .filter_map(|s| match s {
            Source::File(p) => Some(p),
            Source::Bytes { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn directories_expand_to_their_images_and_stdin_keeps_its_place() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.jpg", "a.png", "._a.jpg", "notes.txt"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let inputs = [
            Input::Stdin,
            Input::Path(dir.path().to_path_buf()),
            Input::Path("missing.jpg".into()),
        ];
        let (all, errors) = sources(&inputs);
        assert!(errors.is_empty());
        assert!(matches!(all[0], Source::Bytes { .. }));
        assert_eq!(
            listed(&inputs),
            [
                dir.path().join("a.png"),
                dir.path().join("b.jpg"),
                PathBuf::from("missing.jpg")
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        let (_, errors) = sources(&[Input::Path(empty.path().to_path_buf())]);
        assert!(errors[0].ends_with("directory has no images (jpg, png, bmp, webp)"));
    }
}

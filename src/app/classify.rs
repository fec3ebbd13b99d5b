//! `classify` and `evaluate`: the shipped (or the user's) ImageNet weights on real images.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use indicatif::ProgressBar;

use super::emit::emit;
use super::network::{load, off_resolution_note};
use super::plan::{ClassifyPlan, EvaluatePlan, Input, Target};
use super::{exit, interrupt, progress_bar};
use crate::classify::{ImageResult, classify_batch, evaluate, top_k};
use crate::cli::ClassifyFormat;
use crate::infer::Runner;
use crate::output::{PendingFile, path_text, write_stdout};
use crate::report::{self, Format};
use crate::vision::{MAX_ALLOC_BYTES, decode_bytes, eval_preprocess};

/// Image file extensions `classify` picks up from a directory.
const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "jpe", "png", "bmp", "webp"];

/// Most bytes read from standard input for one image: the decoder's own allocation cap.
const MAX_STDIN_BYTES: u64 = MAX_ALLOC_BYTES;

/// Files to classify: the files given, and the images directly inside the directories given
/// (sorted by name). Paths that do not exist are kept, so that they fail with their own error.
fn expand_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        match std::fs::read_dir(input) {
            Err(e) => errors.push(format!("{}: cannot read directory: {e}", path_text(input))),
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && has_image_extension(p))
                    .collect();
                found.sort();
                if found.is_empty() {
                    errors.push(format!(
                        "{}: directory has no images (jpg, png, bmp, webp)",
                        path_text(input)
                    ));
                }
                files.extend(found);
            }
        }
    }
    (files, errors)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
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

/// One image read from standard input and classified.
fn classify_stdin(runner: &mut Runner, top: usize) -> Result<ImageResult, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("-: cannot read standard input: {e}"))?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        return Err(format!(
            "-: standard input is larger than {} MiB",
            MAX_STDIN_BYTES >> 20
        ));
    }
    let image = decode_bytes(&bytes, "-").map_err(|e| e.to_string())?;
    let input = eval_preprocess(&image, runner.net().config().resolution);
    let probs =
        crate::classify::probabilities(runner, &[input]).map_err(|e| format!("-: inference failed: {e}"))?;
    let row = probs
        .into_iter()
        .next()
        .ok_or("-: the network returned no result")?;
    Ok(ImageResult {
        image: "-".into(),
        model: runner.net().name().to_string(),
        predictions: top_k(&row, top),
    })
}

pub fn run_classify(plan: &ClassifyPlan) -> Result<ExitCode> {
    let paths: Vec<PathBuf> = plan
        .inputs
        .iter()
        .filter_map(|i| match i {
            Input::Path(p) => Some(p.clone()),
            Input::Stdin => None,
        })
        .collect();
    let (files, mut errors) = expand_inputs(&paths);
    let images = files.len() + usize::from(plan.inputs.contains(&Input::Stdin));
    let loaded = load(
        &plan.model,
        &plan.run,
        plan.batch.min(images.max(1)),
        MAX_ALLOC_BYTES,
    )?;
    if let Some(note) = off_resolution_note(&loaded.net)
        && !plan.quiet
    {
        eprintln!("{note}");
    }
    let mut runner = Runner::new(loaded.net, plan.run.engine, plan.run.threads)?;
    for e in &errors {
        eprintln!("error: {e}");
    }
    let streaming = matches!(plan.format, ClassifyFormat::Jsonl | ClassifyFormat::Csv);
    let mut stream = match (&plan.target, streaming) {
        (Target::File(file), true) => Some(Stream::File(
            file.begin().with_context(|| output_failed(&plan.target))?,
        )),
        (Target::Stdout, true) => Some(Stream::Stdout),
        _ => None,
    };
    let mut header_written = false;
    let mut results: Vec<ImageResult> = Vec::new();
    let mut emitted = 0usize;
    let bar = progress_bar(images as u64, plan.quiet, "classify", "images");
    let mut interrupted = None;
    if plan.inputs.contains(&Input::Stdin) {
        match classify_stdin(&mut runner, plan.top) {
            Ok(r) => results.push(r),
            Err(line) => {
                bar.suspend(|| eprintln!("error: {line}"));
                errors.push(line);
            }
        }
        bar.inc(1);
    }
    let mut chunks = files.chunks(plan.batch);
    loop {
        if let Some(stream) = &mut stream
            && emitted < results.len()
        {
            let fresh = &results[emitted..];
            let text = match plan.format {
                ClassifyFormat::Jsonl => {
                    let mut lines = String::new();
                    for r in fresh {
                        lines.push_str(&serde_json::to_string(r)?);
                        lines.push('\n');
                    }
                    lines
                }
                _ => {
                    let csv = report::render(&report::classify_document(fresh, Format::Csv), Format::Csv)?;
                    if header_written {
                        csv.split_once('\n')
                            .map_or(String::new(), |(_, rows)| rows.to_string())
                    } else {
                        csv
                    }
                }
            };
            header_written = true;
            stream.write(text.as_bytes(), &plan.target)?;
            emitted = results.len();
        }
        if let Err(signal) = interrupt::check() {
            interrupted = Some(signal);
            break;
        }
        let Some(chunk) = chunks.next() else {
            break;
        };
        for outcome in classify_batch(&mut runner, chunk, plan.top) {
            match outcome {
                Ok(r) => results.push(r),
                Err(e) => {
                    let line = e.to_string();
                    bar.suspend(|| eprintln!("error: {line}"));
                    errors.push(line);
                }
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    match stream {
        Some(Stream::File(file)) => file.commit().with_context(|| output_failed(&plan.target))?,
        Some(Stream::Stdout) => {}
        None if !results.is_empty() => {
            let format = match plan.format {
                ClassifyFormat::Json => Format::Json,
                ClassifyFormat::Markdown => Format::Markdown,
                _ => Format::Table,
            };
            let text = match format {
                Format::Json => report::json(&results)?,
                format => report::render(&report::classify_document(&results, format), format)?,
            };
            super::emit::write(&plan.target, text.as_bytes())?;
        }
        None => {}
    }
    if let Some(signal) = interrupted {
        return Err(signal.into());
    }
    if results.is_empty() {
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
    let mut runner = Runner::new(loaded.net, plan.run.engine, plan.run.threads)?;
    let mut bar: Option<ProgressBar> = None;
    let report = evaluate(
        &mut runner,
        &plan.dir,
        plan.batch,
        plan.confusions,
        |done, total| {
            let b = bar.get_or_insert_with(|| progress_bar(total as u64, plan.quiet, "evaluate", "images"));
            b.set_position(done as u64);
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for f in &report.failed {
        eprintln!("error: {}: {}", f.image, f.error);
    }
    emit(&plan.output, &report)?;
    Ok(ExitCode::from(if report.failed.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }))
}

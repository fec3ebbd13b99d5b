//! `classify` and `evaluate`: the shipped (or the user's) ImageNet weights on real images.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use candle_core::Device;
use indicatif::ProgressBar;

use super::measure::thread_count;
use super::{UsageError, exit, progress_bar, write_json};
use crate::classify::{ImageRecord, classify_batch, evaluate};
use crate::cli::{ClassifyArgs, EvaluateArgs, WeightsArgs};
use crate::infer::Runner;
use crate::nn::{MobileNet, ModelId, WeightOverrides};
use crate::output::emit;
use crate::report::{self, Format};

/// Loads the network the flags name and moves it to the requested resolution.
fn load_network(args: &WeightsArgs, device: &Device) -> Result<MobileNet> {
    if let Some(alpha) = args.alpha
        && !(alpha.is_finite() && alpha > 0.0 && alpha <= crate::arch::config::MAX_ALPHA)
    {
        return Err(UsageError(format!("--alpha must be a finite number in (0, 2], got {alpha}")).into());
    }
    let resolution = match args.resolution {
        None => None,
        Some(r) => Some(
            u32::try_from(r)
                .ok()
                .filter(|r| {
                    (crate::arch::config::MIN_RESOLUTION..=crate::arch::config::MAX_RESOLUTION).contains(r)
                })
                .ok_or_else(|| UsageError(crate::arch::ConfigError::Resolution(r).to_string()))?,
        ),
    };
    let family = match &args.family {
        None => None,
        Some(f) => Some(
            f.parse::<crate::arch::Family>()
                .map_err(|e| UsageError(e.to_string()))?,
        ),
    };
    let wants_v3 = family.is_some_and(|f| f.is_v3())
        || args.model.trim().starts_with("v3")
        || args.model.trim().starts_with("mobilenet_v3");
    if args.weights.is_none() && wants_v3 {
        return Err(UsageError(
            "no pretrained MobileNetV3 weights ship with the tool; pass --weights FILE".into(),
        )
        .into());
    }
    let net = match &args.weights {
        Some(path) => MobileNet::from_file(
            path,
            WeightOverrides {
                alpha: args.alpha,
                resolution,
                family,
                ..WeightOverrides::default()
            },
            device,
        )?,
        None => {
            let id: ModelId = args
                .model
                .parse()
                .map_err(|e: crate::nn::UnknownModel| UsageError(e.to_string()))?;
            MobileNet::from_embedded(id, device)?
        }
    };
    let net = match resolution {
        Some(r) if r != net.config().resolution => {
            net.with_resolution(r).map_err(|e| UsageError(e.to_string()))?
        }
        _ => net,
    };
    if let Some(trained) = net.trained_resolution()
        && trained != net.config().resolution
    {
        eprintln!(
            "note: {} was trained at {trained}x{trained}; running at {r}x{r}, off its trained resolution (accuracy will differ)",
            net.name(),
            r = net.config().resolution
        );
    }
    Ok(net)
}

/// Files to classify: the files given, and the images directly inside the directories given
/// (sorted by name, hidden files skipped). Paths that do not exist are kept, so that they fail
/// with their own error.
fn expand_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        match crate::dataset::list_dir(input) {
            Err(e) => errors.push(e.to_string()),
            Ok(listing) => {
                if listing.images.is_empty() {
                    errors.push(format!(
                        "{}: directory has no images (jpg, png, bmp, webp)",
                        input.display()
                    ));
                }
                files.extend(listing.images);
            }
        }
    }
    (files, errors)
}

pub fn run_classify(args: &ClassifyArgs) -> Result<ExitCode> {
    if args.batch == 0 {
        return Err(UsageError("--batch must be at least 1".into()).into());
    }
    if args.top == 0 {
        return Err(UsageError("--top must be at least 1".into()).into());
    }
    let device = Device::Cpu;
    let net = load_network(&args.weights, &device)?;
    let mut runner = Runner::new(net, args.run.engine, thread_count(&args.run))?;
    let (files, mut errors) = expand_inputs(&args.inputs);
    for e in &errors {
        eprintln!("error: {e}");
    }
    let bar = progress_bar(files.len() as u64, args.quiet, "classify", "images");
    let mut records: Vec<ImageRecord> = Vec::new();
    for chunk in files.chunks(args.batch) {
        for record in classify_batch(&mut runner, chunk, args.top) {
            if let Some(line) = report::classify_failure(&record) {
                bar.suspend(|| eprintln!("error: {line}"));
                errors.push(line);
            }
            records.push(record);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if records.iter().all(|r| r.predictions().is_none()) {
        if errors.is_empty() {
            eprintln!("error: no images to classify");
        }
        return Ok(ExitCode::from(exit::FAILURE));
    }
    match args.out.format {
        Format::Json => write_json(&args.out, &records)?,
        format => emit(
            args.out.output.as_deref(),
            &report::render(&report::classify_document(&records, format), format)?,
        )?,
    }
    Ok(ExitCode::from(if errors.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }))
}

pub fn run_evaluate(args: &EvaluateArgs) -> Result<ExitCode> {
    if args.batch == 0 {
        return Err(UsageError("--batch must be at least 1".into()).into());
    }
    let device = Device::Cpu;
    let net = load_network(&args.weights, &device)?;
    let mut runner = Runner::new(net, args.run.engine, thread_count(&args.run))?;
    let mut bar: Option<ProgressBar> = None;
    let report = evaluate(
        &mut runner,
        &args.dir,
        args.batch,
        args.confusions,
        |done, total| {
            let b = bar.get_or_insert_with(|| progress_bar(total as u64, args.quiet, "evaluate", "images"));
            b.set_position(done as u64);
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for line in report::evaluate_failures(&report) {
        eprintln!("error: {line}");
    }
    match args.out.format {
        Format::Json => write_json(&args.out, &report)?,
        format => emit(
            args.out.output.as_deref(),
            &report::render(&report::evaluate_document(&report, format), format)?,
        )?,
    }
    Ok(ExitCode::from(if report.failed.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }))
}

//! `sweep`: every grid point's analytic columns, timing and accuracy; the Pareto front, the
//! budget and the plot.
//!
//! With `--output`, a sweep keeps what it has measured if it is interrupted: on SIGINT or
//! SIGTERM it stops after the current point and writes the rows so far (`complete: false`).
//! Against a crash it also rewrites the file now and then, at most once a second and never
//! more than 1/20 of the time spent measuring, so the writes stay linear in the rows: the
//! earlier rewrite after every point made 10,000 points take 84 s instead of 0.12 s.

use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::bench::{environment, time_runner};
use super::emit::{render, write};
use super::network::{load, load_from};
use super::plan::{
    DataPlan, FEATURE_BATCH, ModelChoice, ModelSource, RunPlan, SweepPlan, Target, WeightsRow,
};
use super::retrain::{checkpoint, decoders, open_cache};
use super::{exit, interrupt, progress_bar};
use crate::arch::Config;
use crate::bench::{MockTimer, Summary, measure, throughput};
use crate::cost::analyze;
use crate::infer::{Precision, Runner};
use crate::nn::ModelId;
use crate::output::path_text;
use crate::published::Store;
use crate::report;
use crate::sweep::{Accuracy, AccuracyModel, MeasuredOn, Provenance, SweepReport, SweepRow, Unavailable};
use crate::transfer::report::ClassInfo;
use crate::transfer::{
    CacheKey, Epoch, Observer, Options, Split, SplitDataset, TransferError, retrain, sha256, split_folder,
    wilson,
};
use crate::vision::{CROP_FRACTION, Crop, MAX_ALLOC_BYTES, load_pixels};

/// Shortest time between two checkpoint rewrites of `--output`.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Checkpoint writes take at most this share of the time between them.
const CHECKPOINT_SHARE: u32 = 20;

/// When to rewrite the partial output file: throttled so the total cost stays linear.
struct Checkpoints {
    last: Instant,
    cost: Duration,
}

impl Checkpoints {
    fn due(&self) -> bool {
        let since = self.last.elapsed();
        since >= CHECKPOINT_INTERVAL && since >= self.cost * CHECKPOINT_SHARE
    }

    fn write(&mut self, plan: &SweepPlan, report: &SweepReport) -> Result<()> {
        let start = Instant::now();
        write_report(plan, report)?;
        self.cost = start.elapsed();
        self.last = Instant::now();
        Ok(())
    }
}

fn write_report(plan: &SweepPlan, report: &SweepReport) -> Result<()> {
    write(&plan.output.target, render(&plan.output, report)?.as_bytes())
}

/// One row: analytic columns, accuracy and (unless --no-timing) the measured latency, at
/// `accuracy`'s precision (random weights; at int8 with synthetic quantization).
fn measure_row(
    plan: &SweepPlan,
    point: &super::plan::SweepPoint,
    accuracy: &AccuracyModel,
) -> Result<SweepRow> {
    let config = point.config;
    let totals = analyze(&config).totals;
    let mut row = SweepRow::new(&config, &totals, accuracy);
    time_row(plan, &config, accuracy.precision, totals.mult_adds, &mut row)?;
    Ok(row)
}

/// Stops a retraining when SIGINT or SIGTERM arrives.
struct Interruptible;

impl Observer for Interruptible {
    fn features(&mut self, _augmented: bool, _done: usize, _total: usize) -> ControlFlow<()> {
        checkpoint()
    }

    fn epoch(&mut self, _epoch: &Epoch, _max_epochs: usize) -> ControlFlow<()> {
        checkpoint()
    }
}

/// A `--data` row: `id`'s head retrained on `split` at the point's resolution, its test
/// accuracy the row's top-1; the analytic columns and the timing for the retrained network
/// (the data's classes). Adds the run's costs to `on`.
fn measured_row(
    plan: &SweepPlan,
    point: &super::plan::SweepPoint,
    id: ModelId,
    data: &DataPlan,
    split: &SplitDataset,
    on: &mut MeasuredOn,
) -> Result<SweepRow> {
    let trained = id.config().resolution;
    let choice = ModelChoice {
        source: ModelSource::Shipped(id),
        resolution: (point.config.resolution != trained).then_some(point.config.resolution),
    };
    let base = id.bytes();
    let loaded = load_from(&choice, Some(base), &plan.run, FEATURE_BATCH, MAX_ALLOC_BYTES)?;
    let config = *loaded.net.config();
    let mut runner = Runner::new(loaded.net, plan.run.engine, plan.run.threads)?;
    let key = CacheKey {
        model: id.name().to_string(),
        weights: sha256(base),
        resolution: config.resolution,
        crop: CROP_FRACTION,
        feature_len: runner.feature_len(),
    };
    let cache = open_cache(&data.cache, &key, plan.quiet)?;
    let options = Options {
        batch: FEATURE_BATCH,
        decoders: decoders(&plan.run, &config, FEATURE_BATCH),
        augment: None,
        head: data.head.clone(),
    };
    let retrained = match retrain(&mut runner, split, cache.as_ref(), &options, &mut Interruptible) {
        Ok(r) => r,
        Err(TransferError::Stopped) => {
            return Err(interrupt::requested()
                .unwrap_or(super::Interrupted(libc::SIGINT))
                .into());
        }
        Err(e) => return Err(anyhow::Error::from(e).context(format!("--data: retraining on {}", id.name()))),
    };
    drop(runner);
    on.feature_seconds += retrained.extraction.total_seconds();
    on.training_seconds += retrained.training.seconds;
    on.cache_hits += retrained.extraction.cache_hits;
    on.forwarded += retrained.extraction.forwarded;
    if on.classes.is_empty() {
        on.classes = ClassInfo::list(&split.classes, &retrained.counts);
        on.failed = retrained.failed.clone();
    }
    let top1 = match &retrained.test {
        Some(test) => Ok(Accuracy {
            value: test.accuracy * 100.0,
            provenance: Provenance::Measured {
                data: path_text(&split.dir),
                model: id.name().to_string(),
                resolution: config.resolution,
                trained_resolution: trained,
                images: test.images,
                correct: test.correct,
                interval: [test.interval.low * 100.0, test.interval.high * 100.0],
            },
        }),
        None => Err(Unavailable::NotMeasured),
    };
    // The user's network: the backbone with a head of the data's classes.
    let deployed = Config {
        classes: split.classes.len() as u32,
        ..config
    };
    let totals = analyze(&deployed).totals;
    let mut row = SweepRow::with_figures(&deployed, &totals, top1, Err(Unavailable::NotMeasured));
    time_row(plan, &deployed, Precision::F32, totals.mult_adds, &mut row)?;
    Ok(row)
}

/// A `--weights` file's row at `precision`: the file's own network (its classes, its
/// resolution), timed as it is unless --no-timing; with `--data` its test accuracy as given.
fn weights_row(
    plan: &SweepPlan,
    file: &WeightsRow,
    precision: Precision,
    split: Option<&SplitDataset>,
) -> Result<SweepRow> {
    let run = RunPlan {
        precision,
        ..plan.run
    };
    let loaded = load_from(
        &file.choice(),
        Some(&file.bytes),
        &run,
        WeightsRow::batch(plan),
        MAX_ALLOC_BYTES,
    )?;
    let config = *loaded.net.config();
    let totals = analyze(&config).totals;
    let mut runner = loaded.runner(&run)?;
    let (top1, top5) = match (split, &file.classes) {
        (Some(split), Some(classes)) => {
            let (correct, images) = score_as_given(&mut runner, split, classes)?;
            let top1 = match wilson(correct, images) {
                Some(interval) => Ok(Accuracy {
                    value: correct as f64 / images as f64 * 100.0,
                    provenance: Provenance::MeasuredAsGiven {
                        data: path_text(&split.dir),
                        weights: path_text(&file.path),
                        images,
                        correct,
                        interval: [interval.low * 100.0, interval.high * 100.0],
                    },
                }),
                None => Err(Unavailable::NotMeasured),
            };
            (top1, Err(Unavailable::NotMeasured))
        }
        _ => (
            Err(Unavailable::NoPublishedFigure),
            Err(Unavailable::NoPublishedFigure),
        ),
    };
    let mut row = SweepRow {
        weights: Some(path_text(&file.path)),
        precision,
        ..SweepRow::with_figures(&config, &totals, top1, top5)
    };
    if !plan.no_timing {
        let samples = if plan.mock_timer {
            measure(
                &plan.timing,
                &mut MockTimer::new(totals.mult_adds, plan.batch),
                &mut || Ok(()),
            )?
        } else {
            time_runner(&mut runner, &plan.timing, plan.batch)?
        };
        row.latency_ms = Summary::of(&samples);
        row.throughput = row.latency_ms.as_ref().map(|l| throughput(plan.batch, l.median));
    }
    Ok(row)
}

/// The file's network as it is on `split`'s test images: (correct, scored) top-1, each image
/// preprocessed as retrain's features are (its resolution, the TF-slim crop). Images that do
/// not decode are left out (the pretrained rows' runs list them).
fn score_as_given(
    runner: &mut Runner,
    split: &SplitDataset,
    classes: &[(String, usize)],
) -> Result<(usize, usize)> {
    // The file's output for each of the split's classes, by folder name.
    let truth: Vec<Option<usize>> = split
        .classes
        .iter()
        .map(|name| classes.iter().find(|(n, _)| n == name).map(|(_, i)| *i))
        .collect();
    let resolution = runner.net().config().resolution;
    // retrain's features use the TF-slim crop (CROP_FRACTION), so the file's head expects it.
    let crop = Crop::TF_SLIM;
    let test: Vec<_> = split.split(Split::Test).collect();
    let (mut correct, mut images) = (0, 0);
    for chunk in test.chunks(FEATURE_BATCH) {
        interrupt::check()?;
        let mut inputs = Vec::with_capacity(chunk.len());
        let mut owners = Vec::with_capacity(chunk.len());
        for example in chunk {
            if let (Ok(pixels), Some(Some(class))) = (
                load_pixels(&example.path, resolution, crop),
                truth.get(example.class),
            ) {
                inputs.push(pixels);
                owners.push(*class);
            }
        }
        let probabilities = crate::classify::probabilities(runner, &inputs)?;
        for (class, probs) in owners.into_iter().zip(probabilities) {
            let best = probs
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i);
            images += 1;
            correct += usize::from(best == Some(class));
        }
    }
    Ok((correct, images))
}

/// Times `config` at `precision` into `row` (unless --no-timing): random weights, at int8 with
/// synthetic quantization (latency does not depend on the values).
fn time_row(
    plan: &SweepPlan,
    config: &Config,
    precision: Precision,
    mult_adds: u64,
    row: &mut SweepRow,
) -> Result<()> {
    let config = *config;
    if plan.no_timing {
        return Ok(());
    }
    let samples = if plan.mock_timer {
        // Synthetic timings need no network.
        measure(
            &plan.timing,
            &mut MockTimer::new(mult_adds, plan.batch),
            &mut || Ok(()),
        )?
    } else {
        let run = RunPlan {
            precision,
            ..plan.run
        };
        let choice = ModelChoice {
            source: ModelSource::Random(config),
            resolution: None,
        };
        let mut runner = load(&choice, &run, plan.batch, 0)?.runner(&run)?;
        time_runner(&mut runner, &plan.timing, plan.batch)?
    };
    row.latency_ms = Summary::of(&samples);
    row.throughput = row.latency_ms.as_ref().map(|l| throughput(plan.batch, l.median));
    Ok(())
}

/// What one row of the sweep measures: a grid or pretrained point (with the index of its
/// accuracy model), or a `--weights` file.
#[derive(Clone, Copy)]
enum Row<'a> {
    Point(&'a super::plan::SweepPoint, usize),
    File(&'a WeightsRow),
}

pub fn run_sweep(plan: &SweepPlan) -> Result<ExitCode> {
    // Every --weights file is read and checked before any work.
    let files = plan.weights_rows()?;
    let store = Store::embedded();
    // With --data every figure is measured: no published table is read. Otherwise one model per
    // member and precision: member m's at precision p is m * precisions + p.
    let accuracy: Vec<AccuracyModel> = if plan.data.is_some() {
        Vec::new()
    } else {
        plan.members
            .iter()
            .flat_map(|&m| plan.precisions.iter().map(move |&p| (m, p)))
            .map(|(m, p)| AccuracyModel::new(&store, plan.accuracy_source, m, p))
            .collect()
    };
    let split = match &plan.data {
        Some(data) => Some(split_folder(&data.dir, &data.split)?),
        None => None,
    };
    let mut report = SweepReport::new(
        environment(plan.mock_timer, plan.run.threads, plan.run.engine),
        plan.batch,
        plan.timing.warmup,
        plan.accuracy_source,
        &accuracy,
        plan.budget,
    );
    report.families = plan.members.clone();
    report.precisions = plan.precisions.clone();
    if let (Some(data), Some(split)) = (&plan.data, &split) {
        report.data = Some(MeasuredOn {
            dir: path_text(&split.dir),
            split: split.rule.clone(),
            classes: Vec::new(),
            head: data.head.clone(),
            failed: Vec::new(),
            feature_seconds: 0.0,
            training_seconds: 0.0,
            cache_hits: 0,
            forwarded: 0,
        });
    }
    let bar = progress_bar(
        ((plan.points.len() + files.len()) * plan.precisions.len()) as u64,
        plan.quiet,
        "sweep",
        "rows",
    );
    let mut checkpoints = Checkpoints {
        last: Instant::now(),
        cost: Duration::ZERO,
    };
    let mut interrupted = None;
    // A row per point and precision; `model` indexes `accuracy` (unused with --data).
    // The --weights files' rows come after the grid's, in the order given.
    let grid = plan.points.iter().flat_map(|point| {
        (0..plan.precisions.len())
            .map(move |p| (Row::Point(point, point.member * plan.precisions.len() + p), p))
    });
    let given = files
        .iter()
        .flat_map(|file| (0..plan.precisions.len()).map(move |p| (Row::File(file), p)));
    for (item, precision) in grid.chain(given) {
        let label = match item {
            Row::Point(point, _) => point.config.label(),
            Row::File(file) => path_text(&file.path),
        };
        bar.set_message(format!("{label} {}", plan.precisions[precision]));
        let row = match interrupt::check().map_err(anyhow::Error::from).and_then(|()| {
            match (item, &plan.data, &split, report.data.as_mut()) {
                (Row::File(file), _, split, _) => {
                    weights_row(plan, file, plan.precisions[precision], split.as_ref())
                }
                (
                    Row::Point(point @ &super::plan::SweepPoint { model: Some(id), .. }, _),
                    Some(data),
                    Some(split),
                    Some(on),
                ) => measured_row(plan, point, id, data, split, on),
                (Row::Point(point, model), ..) => measure_row(plan, point, &accuracy[model]),
            }
        }) {
            Ok(row) => row,
            Err(e) => match e.downcast::<interrupt::Interrupted>() {
                Ok(signal) => {
                    interrupted = Some(signal);
                    break;
                }
                Err(e) => {
                    // Keep what was measured before the failing point.
                    bar.finish_and_clear();
                    if matches!(plan.output.target, Target::File(_)) && !report.rows.is_empty() {
                        write_report(plan, &report)?;
                    }
                    return Err(e);
                }
            },
        };
        report.rows.push(row);
        if matches!(plan.output.target, Target::File(_)) && checkpoints.due() {
            checkpoints.write(plan, &report)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    report.finish();
    // An interrupted sweep's front and budget cover the rows it measured; it says it stopped.
    report.complete = interrupted.is_none();
    write_report(plan, &report)?;
    if let Some(signal) = interrupted {
        return Err(signal.into());
    }
    if let Some(file) = &plan.plot {
        let svg = report::sweep_plot_svg(&report).map_err(|e| anyhow::anyhow!("--plot: {e}"))?;
        file.write(svg.as_bytes())
            .with_context(|| format!("--plot {}: write failed", path_text(file.shown())))?;
    }
    let failures = report::sweep_failures(&report);
    for line in &failures {
        eprintln!("error: {line}");
    }
    Ok(ExitCode::from(if failures.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }))
}

//! `sweep`: every grid point's analytic columns, timing and accuracy; the Pareto front, the
//! budget and the plot.
//!
//! With `--output`, a sweep keeps what it has measured if it is interrupted: on SIGINT or
//! SIGTERM it stops after the current point and writes the rows so far (`complete: false`).
//! Against a crash it also rewrites the file now and then, at most once a second and never
//! more than 1/20 of the time spent measuring, so the writes stay linear in the rows: the
//! earlier rewrite after every point made 10,000 points take 84 s instead of 0.12 s.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::bench::{environment, time_runner};
use super::emit::{render, write};
use super::network::load;
use super::plan::{ModelChoice, ModelSource, RunPlan, SweepPlan, Target};
use super::{exit, interrupt, progress_bar};
use crate::bench::{MockTimer, Summary, measure, throughput};
use crate::cost::analyze;
use crate::output::path_text;
use crate::published::Store;
use crate::report;
use crate::sweep::{AccuracyModel, SweepReport, SweepRow};

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
    if plan.no_timing {
        return Ok(row);
    }
    let samples = if plan.mock_timer {
        // Synthetic timings need no network.
        measure(
            &plan.timing,
            &mut MockTimer::new(totals.mult_adds, plan.batch),
            &mut || Ok(()),
        )?
    } else {
        let run = RunPlan {
            precision: accuracy.precision,
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
    Ok(row)
}

pub fn run_sweep(plan: &SweepPlan) -> Result<ExitCode> {
    let store = Store::embedded();
    // One model per member and precision: member m's at precision p is m * precisions + p.
    let accuracy: Vec<AccuracyModel> = plan
        .members
        .iter()
        .flat_map(|&m| plan.precisions.iter().map(move |&p| (m, p)))
        .map(|(m, p)| AccuracyModel::new(&store, plan.accuracy_source, m, p))
        .collect();
    let mut report = SweepReport::new(
        environment(plan.mock_timer, plan.run.threads, plan.run.engine),
        plan.batch,
        plan.timing.warmup,
        plan.accuracy_source,
        &accuracy,
        plan.budget,
    );
    let bar = progress_bar(
        (plan.points.len() * plan.precisions.len()) as u64,
        plan.quiet,
        "sweep",
        "rows",
    );
    let mut checkpoints = Checkpoints {
        last: Instant::now(),
        cost: Duration::ZERO,
    };
    let mut interrupted = None;
    let rows = plan.points.iter().flat_map(|point| {
        (0..plan.precisions.len()).map(move |p| (point, point.member * plan.precisions.len() + p))
    });
    for (point, model) in rows {
        bar.set_message(format!("{} {}", point.config.label(), accuracy[model].precision));
        let row = match interrupt::check()
            .map_err(anyhow::Error::from)
            .and_then(|()| measure_row(plan, point, &accuracy[model]))
        {
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
    Ok(ExitCode::from(exit::OK))
}

//! `bench`: time one network on this machine.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::emit::emit;
use super::network::{load, off_resolution_note};
use super::plan::{BenchPlan, Target};
use super::{exit, interrupt};
use crate::bench::{
    BenchModel, BenchResult, Environment, MockTimer, Peak, Summary, TimingPlan, WallClock, gflops, measure,
    per_layer, throughput, warnings,
};
use crate::cost::analyze;
use crate::infer::{EngineKind, Runner};
use crate::report::{self, Format};

/// The machine, engine and threads a timing ran with (fixed under the mock timer, so test
/// output is stable).
pub(super) fn environment(mock: bool, threads: usize, engine: EngineKind) -> Environment {
    if mock {
        Environment::mock(threads, engine)
    } else {
        Environment::probe(threads, engine)
    }
}

/// Times `runner` per `plan` on a synthetic input of `batch` images (the logits, at the
/// runner's precision); stops at an interruption.
pub(super) fn time_runner(runner: &mut Runner, plan: &TimingPlan, batch: usize) -> Result<Vec<f64>> {
    let input = runner.synthetic_batch(batch);
    measure(plan, &mut WallClock, &mut || {
        interrupt::check()?;
        Ok(runner.forward_batch(&input, batch, &mut |_, _| {}).map(drop)?)
    })
}

/// Each layer's timed runs in milliseconds (after the plan's warm-up).
fn time_layers(runner: &mut Runner, plan: &TimingPlan, batch: usize) -> Result<Vec<Vec<f64>>> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); runner.net().layers().len()];
    let input = runner.synthetic_batch(batch);
    for _ in 0..plan.warmup {
        interrupt::check()?;
        runner.forward_batch(&input, batch, &mut |_, _| {})?;
    }
    for _ in 0..plan.runs.max(1) {
        interrupt::check()?;
        runner.forward_batch(&input, batch, &mut |i, d| samples[i].push(d.as_secs_f64() * 1e3))?;
    }
    Ok(samples)
}

pub fn run_bench(plan: &BenchPlan) -> Result<ExitCode> {
    let loaded = load(&plan.model, &plan.run, plan.batch, 0)?;
    if let Some(note) = off_resolution_note(&loaded.net) {
        eprintln!("{note}");
    }
    let config = *loaded.net.config();
    let trained_resolution = loaded.net.trained_resolution();
    let mult_adds = analyze(&config).totals.mult_adds;
    let origin = loaded.origin.clone();
    let mut runner = loaded.runner(&plan.run)?;
    if let Some((_, kernels)) = runner.quantized() {
        let cpu_has_amx = crate::quant::cpu_has_amx_int8();
        if let Some(note) = crate::infer::amx_note(
            kernels,
            cpu_has_amx,
            crate::quant::Kernels::Amx.unavailable_reason(),
        ) {
            eprintln!("{note}");
        }
    }
    // The peak the int8 layers are put against, measured once (before timing, on a quiet core).
    let peak = match runner.quantized() {
        Some(_) if plan.per_layer && plan.mock_timer => Some(Peak::mock()),
        Some((_, kernels)) if plan.per_layer => Peak::measure(kernels),
        _ => None,
    }
    .map(|peak| peak.with_threads(plan.run.threads));
    let (samples, layer_samples) = if plan.mock_timer {
        let samples = measure(
            &plan.timing,
            &mut MockTimer::new(mult_adds, plan.batch),
            &mut || Ok(()),
        )?;
        let layers = plan
            .per_layer
            .then(|| MockTimer::per_layer(runner.net().layers(), plan.batch));
        (samples, layers)
    } else {
        let samples = time_runner(&mut runner, &plan.timing, plan.batch)?;
        let layers = if plan.per_layer {
            Some(time_layers(&mut runner, &plan.timing, plan.batch)?)
        } else {
            None
        };
        (samples, layers)
    };
    let latency = Summary::of(&samples).context("no timed runs")?;
    let result = BenchResult {
        schema_version: 3,
        model: BenchModel::new(&config, trained_resolution, origin),
        engine: plan.run.engine,
        precision: runner.precision(),
        // Fixed under the mock timer, like the environment, so test output is stable.
        isa: if plan.mock_timer {
            runner.isa().map(|_| "mock".to_string())
        } else {
            runner.isa().map(str::to_string)
        },
        threads: plan.run.threads,
        batch: plan.batch,
        runs: samples.len(),
        warmup: plan.timing.warmup,
        throughput: throughput(plan.batch, latency.median),
        gflops: gflops(mult_adds, plan.batch, latency.median),
        warnings: warnings(&latency),
        latency_ms: latency,
        times_ms: samples,
        mult_adds,
        environment: environment(plan.mock_timer, plan.run.threads, plan.run.engine),
        per_layer: layer_samples.map(|s| per_layer(runner.net().layers(), &s, plan.batch, peak.as_ref())),
        peak,
    };
    // The table and Markdown documents end with the warnings; said again on stderr only when
    // that document is not what the terminal shows (a file, or JSON/CSV for a script).
    let document_shows_warnings = matches!(plan.output.target, Target::Stdout)
        && matches!(plan.output.format, Format::Table | Format::Markdown);
    if !plan.quiet && !document_shows_warnings {
        for line in report::bench_warnings(&result) {
            eprintln!("warning: {line}");
        }
    }
    emit(&plan.output, &result)?;
    Ok(ExitCode::from(exit::OK))
}

//! `bench` and `sweep`: timing the network on this machine.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use candle_core::Device;

use super::{UsageError, config_from, exit, progress_bar, write_json};
use crate::arch::{Config, LayerKind};
use crate::bench::{
    BenchModel, BenchPlan, BenchResult, Environment, LayerTiming, MockTimer, Summary, Timer, WallClock,
    gflops, measure, throughput,
};
use crate::cli::{BenchArgs, RunArgs, SweepArgs, TimingArgs};
use crate::cost::analyze;
use crate::infer::{Runner, synthetic_input};
use crate::nn::{MobileNet, ModelId};
use crate::output::{emit, write_file};
use crate::published::Store;
use crate::report::{self, Format};
use crate::sweep::{AccuracyModel, Budget, Member, SweepReport, SweepRow};

/// Seed of the random weights used to time variants without pretrained weights.
pub const RANDOM_SEED: u64 = 0;

/// Threads inference runs on: --threads, else every core.
pub fn thread_count(run: &RunArgs) -> usize {
    run.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn plan_from(timing: &TimingArgs) -> Result<BenchPlan, UsageError> {
    if timing.batch == 0 {
        return Err(UsageError("--batch must be at least 1".into()));
    }
    if timing.runs == 0 {
        return Err(UsageError("--runs must be at least 1".into()));
    }
    let min_time = match timing.min_time {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(UsageError(format!(
                "--min-time must be between 0 and 3600 seconds, got {s}"
            )));
        }
    };
    Ok(BenchPlan {
        warmup: timing.warmup,
        runs: timing.runs,
        min_time,
    })
}

fn environment(timing: &TimingArgs, run: &RunArgs) -> Environment {
    let engine = format!("{:?}", run.engine).to_lowercase();
    if timing.mock_timer {
        Environment::mock(thread_count(run), &engine)
    } else {
        Environment::probe(thread_count(run), &engine)
    }
}

fn timer_for(timing: &TimingArgs, mult_adds: u64) -> Box<dyn Timer> {
    if timing.mock_timer {
        Box::new(MockTimer::new(mult_adds, timing.batch))
    } else {
        Box::new(WallClock)
    }
}

/// Times `runner` per `plan` on a synthetic input.
fn time_runner(
    runner: &mut Runner,
    plan: &BenchPlan,
    timing: &TimingArgs,
    mult_adds: u64,
) -> Result<Vec<f64>> {
    let mut timer = timer_for(timing, mult_adds);
    let input = synthetic_input(
        timing.batch,
        runner.net().config().resolution,
        runner.net().device(),
    )?;
    measure(plan, timer.as_mut(), &mut || {
        Ok(runner.forward(&input).map(drop)?)
    })
}

/// Median time of each layer over `plan.runs` runs (after the warm-up).
fn time_layers(runner: &mut Runner, plan: &BenchPlan, timing: &TimingArgs) -> Result<Vec<LayerTiming>> {
    let layers = runner.net().layers().to_vec();
    let costs: Vec<u64> = layers
        .iter()
        .map(|l| crate::cost::layer_cost(l).mult_adds)
        .collect();
    let total_macs: u64 = costs.iter().sum();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); layers.len()];
    if timing.mock_timer {
        // Synthetic: depthwise layers cost ten times their share, as on real CPUs.
        for (i, layer) in layers.iter().enumerate() {
            let weight = if layer.kind == LayerKind::Depthwise {
                10.0
            } else {
                1.0
            };
            let ns = costs[i] as f64 * timing.batch as f64 * weight / 10.0 + 2_000.0;
            samples[i].push(ns / 1e6);
        }
    } else {
        let input = synthetic_input(
            timing.batch,
            runner.net().config().resolution,
            runner.net().device(),
        )?;
        for _ in 0..plan.warmup {
            runner.forward(&input)?;
        }
        for _ in 0..plan.runs {
            runner.forward_layers(&input, &mut |i, d| samples[i].push(d.as_secs_f64() * 1e3))?;
        }
    }
    let medians: Vec<f64> = samples
        .iter()
        .map(|s| Summary::of(s).map_or(0.0, |s| s.median))
        .collect();
    let total_ms: f64 = medians.iter().sum();
    Ok(layers
        .iter()
        .enumerate()
        .map(|(i, layer)| LayerTiming {
            index: i,
            name: layer.name.clone(),
            kind: layer.kind,
            mult_adds: costs[i],
            time_ms: medians[i],
            time_pct: if total_ms > 0.0 {
                100.0 * medians[i] / total_ms
            } else {
                0.0
            },
            mult_adds_pct: if total_macs > 0 {
                100.0 * costs[i] as f64 / total_macs as f64
            } else {
                0.0
            },
            gflops: if medians[i] > 0.0 {
                gflops(costs[i], timing.batch, medians[i])
            } else {
                0.0
            },
        })
        .collect())
}

pub fn run_bench(args: &BenchArgs) -> Result<ExitCode> {
    let plan = plan_from(&args.timing)?;
    let device = Device::Cpu;
    let (net, weights) = match &args.model {
        Some(name) => {
            let id: ModelId = name
                .parse()
                .map_err(|e: crate::nn::UnknownModel| UsageError(e.to_string()))?;
            (
                MobileNet::from_embedded(id, &device)?,
                format!("shipped {}", id.name()),
            )
        }
        None => {
            // Every family runs from random weights; the fast engine refuses what it cannot
            // run (v2/v3 for now) with a hint to pass --engine reference.
            let config = config_from(&args.spec)?;
            (
                MobileNet::random(config, RANDOM_SEED, &device)?,
                format!("random (seed {RANDOM_SEED})"),
            )
        }
    };
    let config = *net.config();
    let mult_adds = analyze(&config).totals.mult_adds;
    let mut runner = Runner::new(net, args.run.engine, thread_count(&args.run))?;
    let samples = time_runner(&mut runner, &plan, &args.timing, mult_adds)?;
    let latency = Summary::of(&samples).context("no timed runs")?;
    let per_layer = if args.per_layer {
        Some(time_layers(&mut runner, &plan, &args.timing)?)
    } else {
        None
    };
    let result = BenchResult {
        schema_version: 1,
        model: bench_model(&config, weights),
        engine: format!("{:?}", args.run.engine).to_lowercase(),
        threads: thread_count(&args.run),
        batch: args.timing.batch,
        runs: samples.len(),
        warmup: plan.warmup,
        throughput: throughput(args.timing.batch, latency.median),
        gflops: gflops(mult_adds, args.timing.batch, latency.median),
        latency_ms: latency,
        mult_adds,
        environment: environment(&args.timing, &args.run),
        per_layer,
    };
    match args.out.format {
        Format::Json => write_json(&args.out, &result)?,
        format => emit(
            args.out.output.as_deref(),
            &report::render(&report::bench_document(&result), format)?,
        )?,
    }
    Ok(ExitCode::from(exit::OK))
}

fn bench_model(config: &Config, weights: String) -> BenchModel {
    BenchModel {
        label: config.label(),
        family: config.family.name().into(),
        alpha: config.alpha,
        resolution: config.resolution,
        depth_multiplier: config.depth_multiplier,
        classes: config.classes,
        variant: config.variant.name().into(),
        weights,
    }
}

/// Parses a comma-separated grid flag: non-empty, no duplicates, every value valid.
pub fn parse_grid<T: PartialEq + Copy + std::fmt::Display>(
    flag: &str,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
    valid: impl Fn(T) -> bool,
) -> Result<Vec<T>, UsageError> {
    parse_list(flag, text, |item| {
        parse(item)
            .filter(|v| valid(*v))
            .ok_or_else(|| format!("invalid value '{item}'"))
    })
}

/// Parses a comma-separated list flag: non-empty items, no duplicates, each item through
/// `parse`, whose error says what is wrong with it.
fn parse_list<T: PartialEq + std::fmt::Display>(
    flag: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, UsageError> {
    let mut values = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(UsageError(format!("{flag}: empty value in '{text}'")));
        }
        let value = parse(item).map_err(|reason| UsageError(format!("{flag}: {reason}")))?;
        if values.contains(&value) {
            return Err(UsageError(format!("{flag}: duplicate value {value}")));
        }
        values.push(value);
    }
    Ok(values)
}

fn render_sweep(report: &SweepReport, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        format => report::render(&report::sweep_document(report, format), format)?,
    })
}

/// The members of `--families`, in the order given; "all" is every member.
fn parse_members(text: &str) -> Result<Vec<Member>, UsageError> {
    if text.trim() == "all" {
        return Ok(crate::sweep::member::ALL.to_vec());
    }
    parse_list("--families", text, str::parse)
}

pub fn run_sweep(args: &SweepArgs) -> Result<ExitCode> {
    let members = parse_members(&args.families)?;
    let alphas = args
        .alphas
        .as_deref()
        .map(|text| {
            parse_grid(
                "--alphas",
                text,
                |s| s.parse::<f64>().ok(),
                |a| a.is_finite() && a > 0.0 && a <= crate::arch::config::MAX_ALPHA,
            )
        })
        .transpose()?;
    let resolutions = args
        .resolutions
        .as_deref()
        .map(|text| {
            parse_grid(
                "--resolutions",
                text,
                |s| s.parse::<u32>().ok(),
                |r| (crate::arch::config::MIN_RESOLUTION..=crate::arch::config::MAX_RESOLUTION).contains(&r),
            )
        })
        .transpose()?;
    let plan = plan_from(&args.timing)?;
    let budget = Budget {
        max_latency_ms: args.max_latency_ms,
        max_size_mb: args.max_size_mb,
        min_top1: args.min_top1,
    };
    for (flag, value) in [
        ("--max-latency-ms", args.max_latency_ms),
        ("--max-size-mb", args.max_size_mb),
        ("--min-top1", args.min_top1),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(UsageError(format!("{flag} must be a finite number >= 0, got {v}")).into());
        }
    }
    if args.no_timing && args.max_latency_ms.is_some() {
        return Err(UsageError("--max-latency-ms needs timing: drop --no-timing".into()).into());
    }
    if let Some(plot_path) = &args.plot
        && plot_path.extension().is_none_or(|e| e != "svg")
    {
        return Err(UsageError(format!(
            "--plot {}: the plot is SVG; name it FILE.svg",
            plot_path.display()
        ))
        .into());
    }

    let store = Store::embedded();
    let accuracy: Vec<AccuracyModel> = members
        .iter()
        .map(|&m| AccuracyModel::new(&store, args.accuracy_source, m))
        .collect();
    // Every config is built before anything is timed, so a bad grid fails before any output.
    let mut points: Vec<(usize, Config)> = Vec::new();
    for (i, member) in members.iter().enumerate() {
        for (alpha, resolution) in member.grid(&store, alphas.as_deref(), resolutions.as_deref()) {
            let config = member
                .config(alpha, resolution)
                .map_err(|e| UsageError(format!("--families {member}: {e}")))?;
            points.push((i, config));
        }
    }
    let mut report = SweepReport::new(
        environment(&args.timing, &args.run),
        args.timing.batch,
        plan.warmup,
        args.accuracy_source,
        &accuracy,
        budget,
    );
    let bar = progress_bar(points.len() as u64, args.quiet, "sweep", "points");
    let device = Device::Cpu;
    for (member_index, config) in points {
        bar.set_message(config.label());
        let totals = analyze(&config).totals;
        let mut row = SweepRow::new(&config, &totals, &accuracy[member_index]);
        if !args.no_timing {
            let samples = if args.timing.mock_timer {
                // Synthetic timings need no network.
                measure(
                    &plan,
                    &mut MockTimer::new(totals.mult_adds, args.timing.batch),
                    &mut || Ok(()),
                )?
            } else {
                let net = MobileNet::random(config, RANDOM_SEED, &device)?;
                let mut runner = Runner::new(net, args.run.engine, thread_count(&args.run))?;
                time_runner(&mut runner, &plan, &args.timing, totals.mult_adds)?
            };
            row.latency_ms = Summary::of(&samples);
            row.throughput = row
                .latency_ms
                .as_ref()
                .map(|l| throughput(args.timing.batch, l.median));
        }
        report.rows.push(row);
        // Keep what was measured if a later point fails or the sweep is interrupted.
        if let Some(path) = &args.out.output {
            write_file(path, render_sweep(&report, args.out.format)?.as_bytes())?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    report.finish();
    emit(
        args.out.output.as_deref(),
        &render_sweep(&report, args.out.format)?,
    )?;
    if let Some(path) = &args.plot {
        let svg = report::sweep_plot_svg(&report).map_err(|e| anyhow::anyhow!("--plot: {e}"))?;
        write_file(path, svg.as_bytes())?;
    }
    Ok(ExitCode::from(exit::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_are_validated() {
        let alphas = |s| parse_grid("--alphas", s, |x| x.parse::<f64>().ok(), |a| a > 0.0);
        assert_eq!(alphas("1.0, 0.5").unwrap(), [1.0, 0.5]);
        assert!(alphas("").unwrap_err().0.contains("empty"));
        assert!(alphas("1.0,,0.5").is_err());
        assert!(alphas("1.0,1.0").unwrap_err().0.contains("duplicate"));
        assert!(alphas("x").unwrap_err().0.contains("--alphas"));
        assert!(alphas("-1").is_err());
    }

    #[test]
    fn families_are_validated() {
        assert_eq!(parse_members("all").unwrap().len(), 6);
        let two = parse_members("v2, v3-small").unwrap();
        assert_eq!(
            two.iter().map(|m| m.name()).collect::<Vec<_>>(),
            ["v2", "v3-small"]
        );
        assert!(parse_members("v1,v1").unwrap_err().0.contains("duplicate"));
        assert!(
            parse_members("v1,")
                .unwrap_err()
                .0
                .contains("--families: empty value")
        );
        assert!(parse_members("v4").unwrap_err().0.contains("unknown family 'v4'"));
    }
}

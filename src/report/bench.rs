//! The report of `bench`, and the environment lines every timed report shows.

use super::Format;
use super::document::{Align, Document, TextTable};
use super::units::{millis, percent, thousands};
use crate::bench::{
    BenchResult, Environment, MAX_OUTLIER_SHARE, MAX_P90_RATIO, MIN_RELIABLE_RUNS, Peak, PeakSource,
    TimingWarning, WeightsOrigin,
};
use crate::infer::Precision;

/// The machine and engine a timing came from, as report lines.
pub(crate) fn environment_lines(env: &Environment) -> Vec<String> {
    vec![
        format!(
            "CPU: {} ({} logical cores; SIMD: {})",
            env.cpu_model,
            env.cores,
            env.simd.join(" ")
        ),
        format!(
            "Engine: {}, {} thread(s); candle {}; {} build; {}/{}",
            env.engine, env.threads, env.candle_version, env.build_profile, env.os, env.arch
        ),
    ]
}

fn weights_text(origin: &WeightsOrigin) -> String {
    match origin {
        WeightsOrigin::Shipped { model } => format!("shipped {model} weights"),
        WeightsOrigin::File { path } => format!("weights from {path}"),
        WeightsOrigin::Random { seed } => format!("random weights, seed {seed}"),
    }
}

/// Each warning of a timing as one sentence (stderr and the report).
pub fn bench_warnings(result: &BenchResult) -> Vec<String> {
    result
        .warnings
        .iter()
        .map(|w| match w {
            TimingWarning::Outliers { outliers, runs } => format!(
                "{outliers} of {runs} runs are statistical outliers (more than {:.0}%): the machine was busy or changed frequency; rerun on a quiet machine, or with --warmup or --min-time",
                MAX_OUTLIER_SHARE * 100.0
            ),
            TimingWarning::WideSpread { p90_over_median } => format!(
                "the 90th percentile is {p90_over_median:.2}x the median (above {MAX_P90_RATIO}x): the timing is noisy; rerun with more --runs"
            ),
            TimingWarning::FewRuns { runs } => format!(
                "only {runs} timed run(s) (fewer than {MIN_RELIABLE_RUNS}): the median and p90 are rough"
            ),
        })
        .collect()
}

/// The statistics row: readable for tables, raw numbers for CSV.
fn stats_table(result: &BenchResult, raw: bool) -> TextTable {
    let l = &result.latency_ms;
    if raw {
        let mut t = TextTable::new(&[
            ("median_ms", Align::Right),
            ("mean_ms", Align::Right),
            ("stddev_ms", Align::Right),
            ("min_ms", Align::Right),
            ("max_ms", Align::Right),
            ("p90_ms", Align::Right),
            ("outliers", Align::Right),
            ("runs", Align::Right),
            ("images_per_s", Align::Right),
            ("gflops", Align::Right),
            ("mult_adds", Align::Right),
            ("classes", Align::Right),
            ("precision", Align::Left),
        ]);
        let mut row: Vec<String> = [
            l.median,
            l.mean,
            l.stddev,
            l.min,
            l.max,
            l.p90,
            l.outliers as f64,
            result.runs as f64,
            result.throughput,
            result.gflops,
            result.mult_adds as f64,
            f64::from(result.model.classes),
        ]
        .iter()
        .map(f64::to_string)
        .collect();
        row.push(result.precision.to_string());
        t.push(row);
        return t;
    }
    let mut t = TextTable::new(&[
        ("median ms", Align::Right),
        ("mean ms", Align::Right),
        ("stddev ms", Align::Right),
        ("min ms", Align::Right),
        ("max ms", Align::Right),
        ("p90 ms", Align::Right),
        ("outliers", Align::Right),
        ("images/s", Align::Right),
        (ops_per_second(result.precision), Align::Right),
    ]);
    t.push(vec![
        millis(l.median),
        millis(l.mean),
        millis(l.stddev),
        millis(l.min),
        millis(l.max),
        millis(l.p90),
        l.outliers.to_string(),
        format!("{:.1}", result.throughput),
        format!("{:.1}", result.gflops),
    ]);
    t
}

/// "GFLOP/s", or "GOP/s" for the integer operations of int8.
fn ops_per_second(precision: Precision) -> &'static str {
    match precision {
        Precision::F32 => "GFLOP/s",
        Precision::Int8 => "GOP/s",
    }
}

/// The per-layer rows: readable for tables, raw numbers for CSV (with `peak_pct`, empty
/// without a peak); the readable table shows `% peak` when there is one.
fn layers_table(result: &BenchResult, raw: bool) -> Option<TextTable> {
    let layers = result.per_layer.as_ref()?;
    let mut columns: Vec<(&str, &str)> = vec![
        ("layer", "layer"),
        ("kind", "kind"),
        ("mult-adds", "mult_adds"),
        ("time ms", "time_ms"),
        ("% time", "time_pct"),
        ("% mult-adds", "mult_adds_pct"),
        (ops_per_second(result.precision), "gflops"),
    ];
    let peak = raw || result.peak.is_some();
    if peak {
        columns.push(("% peak", "peak_pct"));
    }
    let header: Vec<(&str, Align)> = columns
        .iter()
        .enumerate()
        .map(|(i, (readable, snake))| {
            (
                if raw { *snake } else { *readable },
                if i < 2 { Align::Left } else { Align::Right },
            )
        })
        .collect();
    let mut table = TextTable::new(&header);
    for t in layers {
        let mut row = if raw {
            vec![
                t.name.clone(),
                t.kind.to_string(),
                t.mult_adds.to_string(),
                t.time_ms.to_string(),
                t.time_pct.to_string(),
                t.mult_adds_pct.to_string(),
                t.gflops.to_string(),
                t.peak_pct.map_or_else(String::new, |p| p.to_string()),
            ]
        } else {
            vec![
                t.name.clone(),
                t.kind.to_string(),
                thousands(t.mult_adds),
                format!("{:.3}", t.time_ms),
                percent(t.time_pct),
                percent(t.mult_adds_pct),
                format!("{:.1}", t.gflops),
            ]
        };
        if peak && !raw {
            row.push(t.peak_pct.map_or_else(|| "-".into(), percent));
        }
        table.push(row);
    }
    Some(table)
}

/// The line that says what `% peak` is measured against.
fn peak_line(peak: &Peak) -> String {
    let how = match peak.source {
        PeakSource::Measured => "measured now on one thread: independent chains on registers, best of 5",
        PeakSource::Mock => "a fixed figure for the mock timer",
    };
    let over = match peak.threads {
        0 | 1 => "it".to_string(),
        n => format!("{n} times it ({n} threads)"),
    };
    format!(
        "Peak: {} {:.1} GMAC/s per thread ({how}); % peak = a layer's multiply-accumulates per second over {over}",
        peak.instruction, peak.gmacs
    )
}

/// `bench`: statistics, environment and (with --per-layer) the layer table. CSV is the
/// per-layer table when there is one, else the statistics row, in raw numbers.
pub fn bench_document(result: &BenchResult, format: Format) -> Document {
    let m = &result.model;
    let mut doc = Document::default();
    if format == Format::Csv {
        match layers_table(result, true) {
            Some(layers) => doc.main_table(layers),
            None => doc.main_table(stats_table(result, true)),
        }
        return doc;
    }
    doc.heading(format!(
        "{} ({}), {}, batch {}, {} runs after {} warm-up",
        m.label,
        weights_text(&m.weights),
        result.precision,
        result.batch,
        result.runs,
        result.warmup
    ));
    doc.main_table(stats_table(result, false));
    let mut lines = environment_lines(&result.environment);
    if let Some(isa) = &result.isa {
        lines.push(format!("Kernels: {isa} ({})", result.precision));
    }
    lines.push(format!(
        "Work: {} mult-adds per image, {} classes in the final layer ({} = 2 x mult-adds x batch / median)",
        thousands(result.mult_adds),
        m.classes,
        ops_per_second(result.precision)
    ));
    if let Some(peak) = &result.peak {
        lines.push(peak_line(peak));
    }
    if let Some(trained) = m.trained_resolution
        && m.off_trained_resolution()
    {
        lines.push(format!(
            "Resolution: {r}x{r}, off the {trained}x{trained} the weights were trained at (--res)",
            r = m.resolution
        ));
    }
    lines.extend(
        bench_warnings(result)
            .into_iter()
            .map(|w| format!("warning: {w}")),
    );
    doc.lines(lines);
    if let Some(layers) = layers_table(result, false) {
        doc.heading("Per layer (median of the timed runs)");
        doc.table(layers);
    }
    doc
}

//! The report of `bench`, and the environment lines every timed report shows.

use super::document::{Align, Document, TextTable};
use super::units::{millis, percent, thousands};
use crate::bench::{BenchResult, Environment};

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

/// `bench`: statistics, environment and (with --per-layer) the layer table.
pub fn bench_document(result: &BenchResult) -> Document {
    let m = &result.model;
    let l = &result.latency_ms;
    let mut doc = Document::default();
    doc.heading(format!(
        "{} ({} weights), batch {}, {} runs after {} warm-up",
        m.label, m.weights, result.batch, result.runs, result.warmup
    ));
    let mut stats = TextTable::new(&[
        ("median ms", Align::Right),
        ("mean ms", Align::Right),
        ("stddev ms", Align::Right),
        ("min ms", Align::Right),
        ("max ms", Align::Right),
        ("p90 ms", Align::Right),
        ("outliers", Align::Right),
        ("images/s", Align::Right),
        ("GFLOP/s", Align::Right),
    ]);
    stats.push(vec![
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
    doc.main_table(stats);
    let mut lines = environment_lines(&result.environment);
    lines.push(format!(
        "Work: {} mult-adds per image (GFLOP/s = 2 x mult-adds x batch / median)",
        thousands(result.mult_adds)
    ));
    doc.lines(lines);
    if let Some(layers) = &result.per_layer {
        let mut table = TextTable::new(&[
            ("layer", Align::Left),
            ("kind", Align::Left),
            ("mult-adds", Align::Right),
            ("time ms", Align::Right),
            ("% time", Align::Right),
            ("% mult-adds", Align::Right),
            ("GFLOP/s", Align::Right),
        ]);
        for t in layers {
            table.push(vec![
                t.name.clone(),
                t.kind.to_string(),
                thousands(t.mult_adds),
                format!("{:.3}", t.time_ms),
                percent(t.time_pct),
                percent(t.mult_adds_pct),
                format!("{:.1}", t.gflops),
            ]);
        }
        doc.heading("Per layer (median of the timed runs)");
        doc.table(table);
    }
    doc
}

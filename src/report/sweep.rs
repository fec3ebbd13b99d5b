//! The report of `sweep`: the trade-off table, the Pareto front, budgets and accuracy sources.

use super::Format;
use super::bench::environment_lines;
use super::document::{Align, Document, TextTable};
use super::units::{megabytes, millis};
use crate::sweep::{SweepReport, SweepRow};

fn top_cell(row: &SweepRow, top5: bool) -> String {
    let acc = if top5 { &row.top5 } else { &row.top1 };
    match acc {
        Some(a) if a.estimated => format!("{:.1}*", a.value),
        Some(a) => format!("{:.1}", a.value),
        None => "-".into(),
    }
}

/// `sweep`: the trade-off table. CSV gets raw values; the other formats readable ones.
pub fn sweep_document(report: &SweepReport, format: Format) -> Document {
    let mut doc = Document::default();
    if format == Format::Csv {
        let mut t = TextTable::new(&[
            ("family", Align::Left),
            ("minimalistic", Align::Left),
            ("alpha", Align::Right),
            ("resolution", Align::Right),
            ("mult_adds", Align::Right),
            ("params", Align::Right),
            ("weight_bytes_f32", Align::Right),
            ("weight_bytes_int8", Align::Right),
            ("activation_peak_bytes", Align::Right),
            ("latency_median_ms", Align::Right),
            ("latency_p90_ms", Align::Right),
            ("throughput", Align::Right),
            ("top1", Align::Right),
            ("top1_estimated", Align::Left),
            ("top1_source", Align::Left),
            ("top5", Align::Right),
            ("pareto", Align::Left),
            ("fits_budget", Align::Left),
            ("best", Align::Left),
        ]);
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        for r in &report.rows {
            t.push(vec![
                r.family.name().to_string(),
                r.minimalistic.to_string(),
                r.alpha.to_string(),
                r.resolution.to_string(),
                r.mult_adds.to_string(),
                r.params.to_string(),
                r.weight_bytes_f32.to_string(),
                r.weight_bytes_int8.to_string(),
                r.activation_peak_bytes.to_string(),
                opt(r.latency_ms.as_ref().map(|l| l.median)),
                opt(r.latency_ms.as_ref().map(|l| l.p90)),
                opt(r.throughput),
                opt(r.top1.as_ref().map(|a| a.value)),
                r.top1.as_ref().map_or(String::new(), |a| a.estimated.to_string()),
                r.top1.as_ref().map_or(String::new(), |a| a.source.clone()),
                opt(r.top5.as_ref().map(|a| a.value)),
                r.pareto.to_string(),
                r.fits_budget.map_or(String::new(), |b| b.to_string()),
                r.best.to_string(),
            ]);
        }
        doc.main_table(t);
        return doc;
    }
    let timed = report.rows.iter().any(|r| r.latency_ms.is_some());
    let budget = report.budget.is_set();
    let mut columns = vec![
        ("family", Align::Left),
        ("alpha", Align::Right),
        ("res", Align::Right),
        ("mult-adds", Align::Right),
        ("params", Align::Right),
        ("f32 weights", Align::Right),
        ("int8 weights", Align::Right),
        ("peak act.", Align::Right),
    ];
    if timed {
        columns.extend([
            ("median ms", Align::Right),
            ("p90 ms", Align::Right),
            ("images/s", Align::Right),
        ]);
    }
    columns.extend([
        ("top-1", Align::Right),
        ("top-5", Align::Right),
        ("pareto", Align::Left),
    ]);
    if budget {
        columns.push(("budget", Align::Left));
    }
    let mut t = TextTable::new(&columns);
    for r in &report.rows {
        let mut row = vec![
            r.member().name(),
            crate::arch::config::format_alpha(r.alpha),
            r.resolution.to_string(),
            format!("{:.1}M", r.mult_adds as f64 / 1e6),
            format!("{:.2}M", r.params as f64 / 1e6),
            megabytes(r.weight_bytes_f32),
            megabytes(r.weight_bytes_int8),
            megabytes(r.activation_peak_bytes),
        ];
        if timed {
            match &r.latency_ms {
                Some(l) => row.extend([millis(l.median), millis(l.p90)]),
                None => row.extend(["-".into(), "-".into()]),
            }
            row.push(r.throughput.map_or("-".into(), |t| format!("{t:.1}")));
        }
        row.extend([
            top_cell(r, false),
            top_cell(r, true),
            if r.pareto { "*" } else { "" }.into(),
        ]);
        if budget {
            row.push(match (r.best, r.fits_budget) {
                (true, _) => "BEST".into(),
                (false, Some(true)) => "fits".into(),
                _ => String::new(),
            });
        }
        t.push(row);
    }
    let cost_axis = if timed { "median latency" } else { "mult-adds" };
    doc.heading(format!(
        "MobileNet trade-off ({}): {} points, batch {}, accuracy from {}",
        report.families.join(", "),
        report.rows.len(),
        report.batch,
        report.accuracy_source.title()
    ));
    doc.main_table(t);
    let mut lines = Vec::new();
    if timed {
        lines.extend(environment_lines(&report.environment));
    }
    lines.push(format!(
        "pareto *: no other row is both at least as fast ({cost_axis}) and at least as accurate (top-1), and better in one"
    ));
    let mut sources: Vec<&str> = Vec::new();
    for source in report
        .rows
        .iter()
        .filter_map(|r| r.top1.as_ref())
        .filter(|a| !a.estimated)
        .map(|a| a.source.split(',').next().unwrap_or(""))
    {
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    if !sources.is_empty() {
        lines.push(format!("published accuracy: {}", sources.join("; ")));
    }
    for fit in &report.fits {
        let used = |top5: bool| {
            report.rows.iter().any(|r| {
                let acc = if top5 { &r.top5 } else { &r.top1 };
                r.member().name() == fit.family && acc.as_ref().is_some_and(|a| a.estimated)
            })
        };
        for (metric_fit, top5) in [(&fit.top1, false), (&fit.top5, true)] {
            if let Some(metric_fit) = metric_fit
                && used(top5)
            {
                lines.push(format!("* {}: {}", fit.family, metric_fit.description));
            }
        }
    }
    let extrapolated: Vec<&str> = report
        .rows
        .iter()
        .filter(|r| [&r.top1, &r.top5].into_iter().flatten().any(|a| a.extrapolated))
        .map(|r| r.label.as_str())
        .collect();
    if !extrapolated.is_empty() {
        lines.push(format!(
            "extrapolated beyond the published widths or resolutions the fit was made on, so less reliable: {}",
            extrapolated.join(", ")
        ));
    }
    let unknown: Vec<&str> = report
        .rows
        .iter()
        .filter(|r| r.top1.is_none())
        .map(|r| r.label.as_str())
        .collect();
    if !unknown.is_empty() {
        lines.push(format!(
            "top-1 -: no published figure and too few published points to estimate one ({})",
            unknown.join(", ")
        ));
    }
    if budget {
        lines.push(match &report.best {
            Some(best) => format!("best within budget: {best}"),
            None => "no row fits the budget".into(),
        });
    }
    doc.lines(lines);
    doc
}

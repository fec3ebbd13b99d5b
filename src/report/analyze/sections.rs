//! The sections of the human-readable `analyze` report, one function each, in the order the
//! report prints them.

use super::AnalyzeReport;
use super::cells::{
    STATUS_LEGEND, activation, classes_note, filter_shape, kind_label, pct_cell, status_cell, type_stride,
};
use crate::arch::Family;
use crate::arch::config::format_alpha;
use crate::cost::{Convention, CostReport, Quantity, Totals};
use crate::published::Status;
use crate::report::document::{Align, Document, TextTable};
use crate::report::units::{megabytes, percent, si, thousands};

/// v1 keeps the layout it always had; v2/v3 add the columns their layers need.
fn is_v1(cost: &CostReport) -> bool {
    cost.config.family == Family::V1
}

/// The title line and how the network was instantiated.
pub fn introduction(doc: &mut Document, cost: &CostReport) {
    let c = &cost.config;
    doc.heading(format!(
        "MobileNet {} {}: alpha {}, {}x{} (rho {:.3}), depth multiplier {}, {} classes, {} variant",
        c.family,
        c.label(),
        format_alpha(c.alpha),
        c.resolution,
        c.resolution,
        c.rho(),
        c.depth_multiplier,
        c.classes,
        c.published_variant()
    ));
    doc.lines(vec![
        format!("Width rule: {}", c.family.width_rule()),
        "Spatial sizes: TensorFlow SAME padding, output = ceil(input / stride)".into(),
        format!("Classes: {}", classes_note(c.classes)),
    ]);
}

/// Table 1 with costs: one row per layer and the totals row. The main table (CSV comes from
/// typed rows instead, see `analyze_csv`).
pub fn layers(doc: &mut Document, cost: &CostReport) {
    let v1 = is_v1(cost);
    let mut columns = vec![
        ("Layer", Align::Left),
        ("Type / Stride", Align::Left),
        ("Filter Shape", Align::Left),
        ("Input Size", Align::Left),
        ("Output Size", Align::Left),
    ];
    if !v1 {
        columns.extend([("Activation", Align::Left), ("Residual", Align::Left)]);
    }
    columns.extend([("Mult-Adds", Align::Right), ("Params", Align::Right)]);
    if !v1 {
        columns.push(("Elementwise Ops", Align::Right));
    }
    let mut table = TextTable::new(&columns);
    for row in &cost.layers {
        let l = &row.layer;
        let mut cells = vec![
            l.name.clone(),
            type_stride(l),
            filter_shape(l),
            l.input.to_string(),
            l.output.to_string(),
        ];
        if !v1 {
            let residual = l
                .residual_from
                .and_then(|from| cost.layers.get(from))
                .map_or_else(String::new, |from| format!("+ input of {}", from.layer.name));
            cells.extend([activation(l).to_string(), residual]);
        }
        cells.extend([thousands(row.cost.mult_adds), thousands(row.cost.params)]);
        if !v1 {
            cells.push(thousands(row.cost.elementwise_ops));
        }
        table.push(cells);
    }
    let t = &cost.totals;
    let mut total = vec!["total".to_string()];
    total.extend(std::iter::repeat_n(String::new(), if v1 { 4 } else { 6 }));
    total.extend([thousands(t.mult_adds), thousands(t.params)]);
    if !v1 {
        total.push(thousands(t.elementwise_ops));
    }
    table.push(total);
    doc.heading(match cost.config.family {
        Family::V1 => "Layers (paper Table 1 layout; params are weights only)",
        Family::V2 => "Layers (v2 paper Table 2 with one row per layer; params are weights only)",
        Family::V3Large | Family::V3Small => {
            "Layers (v3 paper Tables 1-2 with one row per layer; params are weights, and SE's weights and biases)"
        }
    });
    doc.main_table(table);
}

/// Whether the totals list `convention`: every one with a figure, but the squeeze-and-excite
/// parts and the figures without it only for a network that has squeeze-and-excite.
fn shown(convention: Convention, totals: &Totals) -> bool {
    convention.value(totals) != 0 && (!convention.concerns_squeeze_excite() || totals.se_params > 0)
}

/// Every figure under its convention, the class count it was computed for, and what each
/// convention counts.
pub fn totals(doc: &mut Document, cost: &CostReport) {
    let t = &cost.totals;
    let mut table = TextTable::new(&[
        ("Quantity", Align::Left),
        ("Value", Align::Right),
        ("Approx.", Align::Right),
    ]);
    let mut explained = Vec::new();
    for c in Convention::ALL.into_iter().filter(|&c| shown(c, t)) {
        let value = c.value(t);
        let approx = match c.quantity() {
            Quantity::Memory => megabytes(value),
            Quantity::Operations | Quantity::Parameters => si(value),
        };
        table.push(vec![c.name().into(), thousands(value), approx]);
        explained.push(format!("{}: {}", c.name(), c.describe()));
    }
    doc.heading(format!("Totals for {}", classes_note(cost.config.classes)));
    doc.table(table);
    doc.lines(explained);
}

/// The paper's Table 2: mult-adds and parameters per layer kind, against the printed shares for
/// 1.0 MobileNet-224.
pub fn kinds(doc: &mut Document, report: &AnalyzeReport) {
    let cost = &report.cost;
    let v1 = is_v1(cost);
    let with_paper = !report.table2.is_empty();
    let mut columns = vec![
        ("Type", Align::Left),
        ("Layers", Align::Right),
        ("Mult-Adds", Align::Right),
        ("% Mult-Adds", Align::Right),
        ("Params", Align::Right),
        ("% Params", Align::Right),
    ];
    if !v1 {
        columns.push(("Elementwise Ops", Align::Right));
    }
    if with_paper {
        columns.extend([
            ("Paper % Mult-Adds", Align::Right),
            ("Paper % Params", Align::Right),
        ]);
    }
    let mut table = TextTable::new(&columns);
    for share in &cost.by_kind {
        let mut row = vec![
            kind_label(share),
            share.layers.to_string(),
            thousands(share.mult_adds),
            percent(share.mult_adds_pct),
            thousands(share.params),
            percent(share.params_pct),
        ];
        if !v1 {
            row.push(thousands(share.elementwise_ops));
        }
        if with_paper {
            match report.table2.iter().find(|c| c.kind == share.kind) {
                Some(c) => row.extend([pct_cell(&c.mult_adds_pct), pct_cell(&c.params_pct)]),
                None => row.extend(["-".to_string(), "-".to_string()]),
            }
        }
        table.push(row);
    }
    doc.heading("Resource per layer type (paper Table 2)");
    doc.table(table);
    let errata: Vec<String> = report
        .table2
        .iter()
        .filter_map(|c| {
            c.erratum
                .as_ref()
                .map(|e| format!("erratum, paper-v1 Table 2 {}: {e}", c.kind))
        })
        .collect();
    if !errata.is_empty() {
        doc.lines(errata);
    }
}

/// Each depthwise separable pair against the standard convolution it replaces (eq. 5 / eq. 2).
pub fn separable(doc: &mut Document, cost: &CostReport) {
    let Some(total) = &cost.separable_total else {
        return;
    };
    let mut table = TextTable::new(&[
        ("Layers", Align::Left),
        ("Separable Mult-Adds", Align::Right),
        ("Standard Conv Mult-Adds", Align::Right),
        ("Ratio", Align::Right),
        ("1/N + 1/Dk^2", Align::Right),
    ]);
    for s in &cost.separable {
        table.push(vec![
            format!("{} + {}", s.depthwise, s.pointwise),
            thousands(s.separable_mult_adds),
            thousands(s.standard_mult_adds),
            format!("{:.4}", s.ratio),
            format!("{:.4}", s.formula),
        ]);
    }
    doc.heading("Depthwise separable vs standard convolution (eq. 5 / eq. 2)");
    doc.table(table);
    let standard = if is_v1(cost) {
        "standard 3x3 convolutions"
    } else {
        "standard convolutions of the same kernel"
    };
    doc.lines(vec![
        format!(
            "Separable layers: {} mult-adds instead of {} as {standard}: {:.2}x less computation (ratio {:.4}).",
            thousands(total.separable_mult_adds),
            thousands(total.standard_mult_adds),
            total.reduction,
            total.ratio
        ),
        format!(
            "The whole network with standard convolutions: {} mult-adds.",
            thousands(total.network_with_standard_convs)
        ),
    ]);
}

/// The inverted residual blocks built without an expansion conv, and what counting one adds
/// (v2's 300 vs 314 M).
pub fn omitted_expansions(doc: &mut Document, cost: &CostReport) {
    if cost.omitted_expansions.is_empty() {
        return;
    }
    let t = &cost.totals;
    let mut lines: Vec<String> = cost
        .omitted_expansions
        .iter()
        .map(|e| {
            format!(
                "{}: no 1x1 expansion conv (expansion not wider than the input, TF-slim expanded_conv); one would add {} mult-adds and {} weights",
                e.layer,
                thousands(e.mult_adds),
                thousands(e.params)
            )
        })
        .collect();
    let with = cost.mult_adds_with_omitted_expansions();
    lines.push(format!(
        "mult_adds as built: {} ({:.1} M); with those expansion convs counted: {} ({:.1} M).",
        thousands(t.mult_adds),
        t.mult_adds as f64 / 1e6,
        thousands(with),
        with as f64 / 1e6
    ));
    if cost.config.family == Family::V2 {
        lines.push(
            "The published v2 \"300 M\" is the first figure truncated; the \"314 M\" of tensorflow/models#4516 counts an expansion in the first bottleneck (t = 1), as a literal reading of the v2 paper's Table 2 does."
                .into(),
        );
    }
    doc.heading("Bottlenecks without an expansion conv");
    doc.lines(lines);
}

/// Weight sizes at each precision and the peak activation memory.
pub fn memory(doc: &mut Document, cost: &CostReport) {
    let t = &cost.totals;
    doc.heading("Memory");
    doc.lines(vec![
        format!(
            "Weights (params_deployed = {} at {} classes): {} at f32, {} at f16, {} at int8",
            thousands(t.params_deployed),
            cost.config.classes,
            megabytes(t.weight_bytes_f32),
            megabytes(t.weight_bytes_f16),
            megabytes(t.weight_bytes_int8)
        ),
        format!(
            "Peak activation memory, batch 1, f32 (largest input + output of one layer): {}",
            megabytes(t.activation_peak_bytes)
        ),
    ]);
}

/// The published rows for this variant, each checked at its source's own class count.
pub fn published(doc: &mut Document, report: &AnalyzeReport) {
    doc.heading("Published figures for this variant (mult-adds and params in millions)");
    if report.published.is_empty() {
        doc.lines(vec![
            "None: no source publishes this (alpha, resolution, variant, depth multiplier).".into(),
        ]);
        return;
    }
    let mut table = TextTable::new(&[
        ("Source", Align::Left),
        ("Table", Align::Left),
        ("Model", Align::Left),
        ("Top-1", Align::Right),
        ("Top-5", Align::Right),
        ("Classes", Align::Right),
        ("Mult-Adds (M) published vs computed", Align::Left),
        ("Params (M) published vs computed", Align::Left),
        ("Params convention", Align::Left),
    ]);
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut notes = Vec::new();
    for p in &report.published {
        table.push(vec![
            p.row.source.clone(),
            p.row.table.clone(),
            p.row.model.clone(),
            dash(&p.row.top1),
            dash(&p.row.top5),
            p.row.classes.map_or_else(|| "-".into(), |c| c.to_string()),
            status_cell(&p.mult_adds),
            status_cell(&p.params),
            p.row
                .params_convention
                .map_or_else(|| "-".into(), |c| c.to_string()),
        ]);
        let flagged = [&p.mult_adds, &p.params]
            .iter()
            .any(|c| c.as_ref().is_some_and(|c| c.status != Status::Agrees));
        if let (true, Some(erratum)) = (flagged, &p.row.erratum) {
            notes.push(format!("erratum, {} {}: {erratum}", p.row.source, p.row.model));
        }
        if let Some(note) = &p.row.note {
            notes.push(format!("note, {} {}: {note}", p.row.source, p.row.model));
        }
    }
    doc.table(table);
    if report
        .published
        .iter()
        .any(|p| p.row.classes.is_some_and(|c| c != report.cost.config.classes))
    {
        notes.push(format!(
            "computed at each source's class count (Classes), not this report's {}",
            report.cost.config.classes
        ));
    }
    notes.push(STATUS_LEGEND.into());
    let mut sources: Vec<&str> = Vec::new();
    for p in &report.published {
        if !sources.contains(&p.row.source.as_str()) {
            sources.push(&p.row.source);
            notes.push(format!("{}: {}", p.row.source, p.source_title));
        }
    }
    doc.lines(notes);
}

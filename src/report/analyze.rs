//! The `analyze` report: paper Table 1 with costs (v2 Table 2 / v3 Tables 1-2 layouts with
//! expand, dw, SE and project rows for the inverted residual "bneck" blocks), totals, Table 2,
//! the separable saving, memory and the published figures for the variant.

use serde::Serialize;

use super::document::{Align, Document, TextTable};
use super::units::{megabytes, percent, si, thousands};
use crate::arch::config::format_alpha;
use crate::arch::{Activation, Family, Layer, LayerKind, Role};
use crate::cost::{CostReport, KindShare, OmittedExpansion, SavingTotal, SeparableSaving, Totals};
use crate::published::{Comparison, FigureCheck, FigureCheckPct, Status, Table2Check};

/// What `analyze` computed: the cost report and the published comparison.
#[derive(Debug, Clone)]
pub struct AnalyzeReport {
    pub cost: CostReport,
    pub published: Vec<Comparison>,
    /// The paper's Table 2 against `cost.by_kind` (only for 1.0 MobileNet-224).
    pub table2: Vec<Table2Check>,
}

/// Counting conventions, stated in every report.
pub const MULT_ADDS_CONVENTION: &str = "mult-adds: multiply-adds of convolution and fully connected layers (paper eq. 2, 4, 5); BatchNorm, ReLU6, pooling and softmax count zero";
pub const FLOPS_CONVENTION: &str =
    "FLOPs = 2 x mult-adds (one multiply and one add); many tools print mult-adds (MACs) as \"FLOPs\"";
/// Squeeze-and-excite, reported apart from `mult_adds` and `params`.
pub const SE_CONVENTION: &str = "se_mult_adds: squeeze-and-excite's two 1x1 convs on the pooled vector (2 x C x R per block, v3 Section 5.3); se_params: their weights and biases (2 x C x R + R + C); neither is inside mult_adds or params";
/// Element-wise operations, reported apart from `mult_adds`.
pub const ELEMENTWISE_CONVENTION: &str = "elementwise_ops: one per output element for each residual add, squeeze-and-excite channel multiply and hard-swish product; ReLU, ReLU6 and hard-sigmoid count zero; never inside mult_adds";
/// How the published MobileNetV3 figures are matched.
pub const V3_PUBLISHED_CONVENTION: &str = "published MobileNetV3 MAdds and params include squeeze-and-excite: they are compared with mult_adds_with_se and params_with_se";

#[derive(Serialize)]
struct ModelJson<'a> {
    family: &'a str,
    alpha: f64,
    resolution: u32,
    rho: f64,
    depth_multiplier: u32,
    classes: u32,
    variant: &'a str,
    minimalistic: bool,
    label: String,
}

#[derive(Serialize)]
struct LayerJson<'a> {
    name: &'a str,
    kind: LayerKind,
    role: Role,
    block: Option<usize>,
    kernel: u32,
    stride: u32,
    input: [u32; 3],
    output: [u32; 3],
    mult_adds: u64,
    params: u64,
    bn_channels: u64,
    bias: u64,
    output_elements: u64,
    activation: Activation,
    /// Index of the layer whose input is added to this layer's output.
    residual_from: Option<usize>,
    se_channels: Option<u32>,
    se_mult_adds: u64,
    se_params: u64,
    elementwise_ops: u64,
}

#[derive(Serialize)]
struct ConventionsJson {
    width_rule: &'static str,
    mult_adds: &'static str,
    se: &'static str,
    elementwise_ops: &'static str,
    v3_published: &'static str,
    flops: &'static str,
    params: &'static str,
    params_trainable: &'static str,
    params_keras: &'static str,
    params_deployed: &'static str,
    activation_peak_bytes: &'static str,
}

fn conventions(family: Family) -> ConventionsJson {
    ConventionsJson {
        width_rule: family.width_rule(),
        mult_adds: MULT_ADDS_CONVENTION,
        se: SE_CONVENTION,
        elementwise_ops: ELEMENTWISE_CONVENTION,
        v3_published: V3_PUBLISHED_CONVENTION,
        flops: FLOPS_CONVENTION,
        params: "convolution and FC weights only (the paper's Table 2 convention)",
        params_trainable: "weights + BatchNorm gamma and beta + FC bias (PyTorch/timm)",
        params_keras: "weights + BatchNorm gamma, beta, moving mean and variance + FC bias (Keras \"Total params\")",
        params_deployed: "BatchNorm folded: weights + one bias per conv output channel + FC bias (the element count of a deployed weight file)",
        activation_peak_bytes: "largest input + output of one layer at batch 1, float32",
    }
}

#[derive(Serialize)]
struct SeparableJson<'a> {
    layers: &'a [SeparableSaving],
    total: Option<SavingTotal>,
}

#[derive(Serialize)]
struct AnalyzeJson<'a> {
    schema_version: u32,
    model: ModelJson<'a>,
    conventions: ConventionsJson,
    layers: Vec<LayerJson<'a>>,
    totals: &'a Totals,
    by_kind: &'a [KindShare],
    separable: SeparableJson<'a>,
    published: &'a [Comparison],
    paper_table2: &'a [Table2Check],
    omitted_expansions: OmittedJson<'a>,
}

#[derive(Serialize)]
struct OmittedJson<'a> {
    blocks: &'a [OmittedExpansion],
    /// Mult-adds with every omitted expansion conv counted (v2 1.0/224: 313.6 M, not 300.8 M).
    mult_adds_with_expansions: u64,
}

/// The JSON document (see README, "JSON schema").
pub fn analyze_json(report: &AnalyzeReport) -> serde_json::Result<String> {
    let cost = &report.cost;
    let c = &cost.config;
    let json = AnalyzeJson {
        schema_version: 1,
        model: ModelJson {
            family: c.family.name(),
            alpha: c.alpha,
            resolution: c.resolution,
            rho: c.rho(),
            depth_multiplier: c.depth_multiplier,
            classes: c.classes,
            variant: c.published_variant(),
            minimalistic: c.minimalistic,
            label: c.label(),
        },
        conventions: conventions(c.family),
        layers: cost
            .layers
            .iter()
            .map(|r| LayerJson {
                name: &r.layer.name,
                kind: r.layer.kind,
                role: r.layer.role,
                block: r.layer.block,
                kernel: r.layer.kernel,
                stride: r.layer.stride,
                input: r.layer.input.to_array(),
                output: r.layer.output.to_array(),
                mult_adds: r.cost.mult_adds,
                params: r.cost.weights,
                bn_channels: r.cost.bn_channels,
                bias: r.cost.bias,
                output_elements: r.cost.output_elements,
                activation: r.layer.activation,
                residual_from: r.layer.residual_from,
                se_channels: r.layer.se_channels,
                se_mult_adds: r.cost.se_mult_adds,
                se_params: r.cost.se_params,
                elementwise_ops: r.cost.elementwise_ops,
            })
            .collect(),
        totals: &cost.totals,
        by_kind: &cost.by_kind,
        separable: SeparableJson {
            layers: &cost.separable,
            total: cost.separable_total,
        },
        published: &report.published,
        paper_table2: &report.table2,
        omitted_expansions: OmittedJson {
            blocks: &cost.omitted_expansions,
            mult_adds_with_expansions: cost.mult_adds_with_omitted_expansions(),
        },
    };
    serde_json::to_string_pretty(&json).map(|s| s + "\n")
}

/// Table 1's "Type / Stride" cell. v2/v3 layers inside a bottleneck read "bneck expand",
/// "bneck dw", "bneck SE", "bneck project" (the v3 paper's "bneck"); v3's conv_head, a 1x1 conv
/// without BatchNorm, is "Conv NBN" as v3's Tables 1 and 2 print it.
fn type_stride(layer: &Layer) -> String {
    let kind = match layer.role {
        Role::Stem | Role::Conv | Role::Pointwise | Role::ConvLast => "Conv",
        Role::Depthwise => "Conv dw",
        Role::Expand => "bneck expand",
        Role::BottleneckDepthwise => "bneck dw",
        // SE acts on the pooled vector: no stride.
        Role::SqueezeExcite => return "bneck SE".into(),
        Role::Project => "bneck project",
        Role::ConvHead => "Conv NBN",
        Role::Pool => "Avg Pool",
        Role::Logits => "FC",
    };
    format!("{kind} / s{}", layer.stride)
}

/// Table 1's "Filter Shape" cell.
fn filter_shape(layer: &Layer) -> String {
    let (k, m, n) = (layer.kernel, layer.input.c, layer.output.c);
    match layer.kind {
        LayerKind::Conv | LayerKind::Pointwise => format!("{k}x{k}x{m}x{n}"),
        LayerKind::Depthwise if n == m => format!("{k}x{k}x{m} dw"),
        LayerKind::Depthwise => format!("{k}x{k}x{m}x{} dw", n / m),
        LayerKind::SqueezeExcite => format!("{m}->{}->{m} SE", layer.se_channels.unwrap_or(0)),
        LayerKind::AvgPool => format!("Pool {k}x{k}"),
        LayerKind::Fc => format!("{m}x{n}"),
    }
}

/// Table 2's row names; `kernels` lists the kind's distinct kernel sizes (v3 mixes 3x3 and 5x5
/// depthwise layers).
fn kind_label(kind: LayerKind, kernels: &[u32]) -> String {
    let sizes = kernels
        .iter()
        .map(|k| format!("{k}x{k}"))
        .collect::<Vec<_>>()
        .join("/");
    match kind {
        LayerKind::Pointwise => "Conv 1x1".into(),
        LayerKind::Depthwise => format!("Conv DW {sizes}"),
        LayerKind::Conv => format!("Conv {sizes}"),
        LayerKind::SqueezeExcite => "Squeeze-Excite".into(),
        LayerKind::AvgPool => "Avg Pool".into(),
        LayerKind::Fc => "Fully Connected".into(),
    }
}

fn mark(status: Status) -> &'static str {
    match status {
        Status::Agrees => "ok",
        Status::Erratum => "ERRATUM",
        Status::Disagrees => "DIFFERS",
    }
}

fn pct_cell(check: &FigureCheckPct) -> String {
    format!("{}% ({})", check.published, mark(check.status))
}

fn status_cell(check: &Option<FigureCheck>) -> String {
    match check {
        None => "-".into(),
        Some(c) => {
            format!("{} vs {} ({})", c.published, si_m(c.computed), mark(c.status))
        }
    }
}

/// Millions with three decimals: the computed side of a published comparison.
fn si_m(n: u64) -> String {
    format!("{:.3}", n as f64 / 1e6)
}

/// The human-readable report.
pub fn analyze_document(report: &AnalyzeReport) -> Document {
    let cost = &report.cost;
    let c = &cost.config;
    let t = &cost.totals;
    let mut doc = Document::default();

    // v1 keeps the layout it always had; v2/v3 add the columns their layers need.
    let v1 = c.family == Family::V1;
    let with_se = t.se_params > 0;
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
    let mut intro = vec![
        format!("Width rule: {}", c.family.width_rule()),
        "Spatial sizes: TensorFlow SAME padding, output = ceil(input / stride)".into(),
        format!("Counting: {MULT_ADDS_CONVENTION}"),
    ];
    if !v1 {
        intro.push(format!("Counted apart: {SE_CONVENTION}"));
        intro.push(format!("Counted apart: {ELEMENTWISE_CONVENTION}"));
    }
    doc.lines(intro);

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
    if with_se {
        columns.extend([("SE Mult-Adds", Align::Right), ("SE Params", Align::Right)]);
    }
    if !v1 {
        columns.push(("Elementwise Ops", Align::Right));
    }
    let mut layers = TextTable::new(&columns);
    let extra = |row: &mut Vec<String>, se_mult_adds: u64, se_params: u64, elementwise: u64| {
        if with_se {
            row.extend([thousands(se_mult_adds), thousands(se_params)]);
        }
        if !v1 {
            row.push(thousands(elementwise));
        }
    };
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
            // SE's own nonlinearities sit inside it: ReLU after the reduce, hard-sigmoid gate.
            let activation = if l.kind == LayerKind::SqueezeExcite {
                "ReLU, h-sigmoid"
            } else {
                l.activation.name()
            };
            cells.extend([activation.to_string(), residual]);
        }
        cells.extend([thousands(row.cost.mult_adds), thousands(row.cost.weights)]);
        extra(
            &mut cells,
            row.cost.se_mult_adds,
            row.cost.se_params,
            row.cost.elementwise_ops,
        );
        layers.push(cells);
    }
    let mut total = vec!["total".to_string()];
    total.extend(std::iter::repeat_n(String::new(), if v1 { 4 } else { 6 }));
    total.extend([thousands(t.mult_adds), thousands(t.params)]);
    extra(&mut total, t.se_mult_adds, t.se_params, t.elementwise_ops);
    layers.push(total);
    doc.heading(match c.family {
        Family::V1 => "Layers (paper Table 1 layout; params are weights only)",
        Family::V2 => "Layers (v2 paper Table 2 with one row per layer; params are weights only)",
        Family::V3Large | Family::V3Small => {
            "Layers (v3 paper Tables 1-2 with one row per layer; params are weights only, SE apart)"
        }
    });
    doc.main_table(layers);

    let mut totals = TextTable::new(&[
        ("Quantity", Align::Left),
        ("Value", Align::Right),
        ("Convention", Align::Left),
    ]);
    let mut rows: Vec<(&str, u64, &str)> = vec![
        ("mult_adds", t.mult_adds, "paper: conv + FC multiply-adds"),
        ("flops", t.flops, "2 x mult_adds"),
        ("params", t.params, "conv + FC weights (paper Table 2)"),
        (
            "params_trainable",
            t.params_trainable,
            "+ BN gamma/beta + FC bias (PyTorch, timm)",
        ),
        (
            "params_keras",
            t.params_keras,
            "+ BN moving mean/var (Keras \"Total params\")",
        ),
        (
            "params_deployed",
            t.params_deployed,
            "BN folded: weights + conv biases + FC bias",
        ),
    ];
    if !v1 {
        rows.extend([
            (
                "se_mult_adds",
                t.se_mult_adds,
                "squeeze-and-excite 1x1 convs (not in mult_adds)",
            ),
            (
                "se_params",
                t.se_params,
                "squeeze-and-excite weights + biases (not in params; in the three above)",
            ),
            (
                "mult_adds_with_se",
                t.mult_adds_with_se,
                "mult_adds + se_mult_adds (published v3 MAdds)",
            ),
            (
                "params_with_se",
                t.params_with_se,
                "params + se_params (published v3 params)",
            ),
            (
                "elementwise_ops",
                t.elementwise_ops,
                "residual adds + SE multiplies + hard-swish (not in mult_adds)",
            ),
        ]);
    }
    for (name, value, convention) in rows {
        totals.push(vec![
            name.into(),
            format!("{} ({})", thousands(value), si(value)),
            convention.into(),
        ]);
    }
    doc.heading("Totals");
    doc.table(totals);

    let with_paper = !report.table2.is_empty();
    let mut columns = vec![
        ("Type", Align::Left),
        ("Layers", Align::Right),
        ("Mult-Adds", Align::Right),
        ("% Mult-Adds", Align::Right),
        ("Params", Align::Right),
        ("% Params", Align::Right),
    ];
    if with_se {
        columns.extend([("SE Mult-Adds", Align::Right), ("SE Params", Align::Right)]);
    }
    if !v1 {
        columns.push(("Elementwise Ops", Align::Right));
    }
    if with_paper {
        columns.extend([
            ("Paper % Mult-Adds", Align::Right),
            ("Paper % Params", Align::Right),
        ]);
    }
    let mut kinds = TextTable::new(&columns);
    for share in &cost.by_kind {
        let mut kernels: Vec<u32> = Vec::new();
        for r in cost.layers.iter().filter(|r| r.layer.kind == share.kind) {
            if !kernels.contains(&r.layer.kernel) {
                kernels.push(r.layer.kernel);
            }
        }
        kernels.sort_unstable();
        let mut row = vec![
            kind_label(share.kind, &kernels),
            share.layers.to_string(),
            thousands(share.mult_adds),
            percent(share.mult_adds_pct),
            thousands(share.params),
            percent(share.params_pct),
        ];
        extra(
            &mut row,
            share.se_mult_adds,
            share.se_params,
            share.elementwise_ops,
        );
        if with_paper {
            match report.table2.iter().find(|c| c.kind == share.kind) {
                Some(c) => row.extend([pct_cell(&c.mult_adds_pct), pct_cell(&c.params_pct)]),
                None => row.extend(["-".to_string(), "-".to_string()]),
            }
        }
        kinds.push(row);
    }
    doc.heading("Resource per layer type (paper Table 2)");
    doc.table(kinds);
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

    if let Some(total) = &cost.separable_total {
        let mut saving = TextTable::new(&[
            ("Layers", Align::Left),
            ("Separable Mult-Adds", Align::Right),
            ("Standard Conv Mult-Adds", Align::Right),
            ("Ratio", Align::Right),
            ("1/N + 1/Dk^2", Align::Right),
        ]);
        for s in &cost.separable {
            saving.push(vec![
                s.layers.clone(),
                thousands(s.separable_mult_adds),
                thousands(s.standard_mult_adds),
                format!("{:.4}", s.ratio),
                format!("{:.4}", s.formula),
            ]);
        }
        doc.heading("Depthwise separable vs standard convolution (eq. 5 / eq. 2)");
        doc.table(saving);
        let standard = if v1 {
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

    if !cost.omitted_expansions.is_empty() {
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
        if c.family == Family::V2 {
            lines.push(
                "The published v2 \"300 M\" is the first figure truncated; the \"314 M\" of tensorflow/models#4516 counts an expansion in the first bottleneck (t = 1), as a literal reading of the v2 paper's Table 2 does."
                    .into(),
            );
        }
        doc.heading("Bottlenecks without an expansion conv");
        doc.lines(lines);
    }

    doc.heading("Memory");
    doc.lines(vec![
        format!(
            "Weights (params_deployed = {}): {} at f32, {} at f16, {} at int8",
            thousands(t.params_deployed),
            megabytes(t.weight_bytes_f32),
            megabytes(t.weight_bytes_f16),
            megabytes(t.weight_bytes_int8)
        ),
        format!(
            "Peak activation memory, batch 1, f32 (largest input + output of one layer): {}",
            megabytes(t.activation_peak_bytes)
        ),
    ]);

    doc.heading("Published figures for this variant (mult-adds and params in millions)");
    if report.published.is_empty() {
        doc.lines(vec![
            "None: no source publishes this (alpha, resolution, variant, depth multiplier).".into(),
        ]);
    } else {
        let mut published = TextTable::new(&[
            ("Source", Align::Left),
            ("Table", Align::Left),
            ("Model", Align::Left),
            ("Top-1", Align::Right),
            ("Top-5", Align::Right),
            ("Mult-Adds (M) published vs computed", Align::Left),
            ("Params (M) published vs computed", Align::Left),
            ("Params convention", Align::Left),
        ]);
        let mut notes = Vec::new();
        for p in &report.published {
            published.push(vec![
                p.row.source.clone(),
                p.row.table.clone(),
                p.row.model.clone(),
                p.row.top1.clone().unwrap_or_else(|| "-".into()),
                p.row.top5.clone().unwrap_or_else(|| "-".into()),
                status_cell(&p.mult_adds),
                status_cell(&p.params),
                match p.row.params_convention.as_deref() {
                    Some(conv) if p.classes != 1000 => format!("{conv} ({} classes)", p.classes),
                    Some(conv) => conv.to_string(),
                    None => "-".into(),
                },
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
        doc.table(published);
        if c.family.is_v3() {
            notes.push(format!("note: {V3_PUBLISHED_CONVENTION}"));
        }
        notes.push(
            "ok = within one unit of the last printed digit; ERRATUM = a known misprint recorded in presets/published; DIFFERS = unexplained"
                .into(),
        );
        let mut sources: Vec<&str> = report.published.iter().map(|p| p.row.source.as_str()).collect();
        sources.dedup();
        for id in sources {
            if let Some(p) = report.published.iter().find(|p| p.row.source == id) {
                notes.push(format!("{id}: {}", p.source_title));
            }
        }
        doc.lines(notes);
    }
    doc
}

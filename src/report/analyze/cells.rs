//! The text of single cells and labels in the `analyze` tables, in the papers' vocabulary.

use crate::arch::{Layer, LayerKind, Role};
use crate::cost::KindShare;
use crate::published::{FigureCheck, FigureCheckPct, Status};

/// The class count of the shipped pretrained weights: TensorFlow's background class + ImageNet's
/// 1000.
const SHIPPED_CLASSES: u32 = 1001;
/// ImageNet's classes, the papers' FC width.
const IMAGENET_CLASSES: u32 = 1000;

/// The class count a set of counts was computed for, with what it means: the FC layer's width
/// changes the mult-adds and every parameter count, so a count without it is ambiguous.
pub fn classes_note(classes: u32) -> String {
    match classes {
        IMAGENET_CLASSES => format!(
            "{classes} classes (the papers'; the shipped weights have {SHIPPED_CLASSES}: background + ImageNet's {IMAGENET_CLASSES})"
        ),
        SHIPPED_CLASSES => {
            format!("{classes} classes (background + ImageNet's {IMAGENET_CLASSES}, as the shipped weights)")
        }
        _ => format!("{classes} classes"),
    }
}

/// Table 1's "Type / Stride" cell. v2/v3 layers inside a bottleneck read "bneck expand",
/// "bneck dw", "bneck SE", "bneck project" (the v3 paper's "bneck"); v3's conv_head, a 1x1 conv
/// without BatchNorm, is "Conv NBN" as v3's Tables 1 and 2 print it.
pub fn type_stride(layer: &Layer) -> String {
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
pub fn filter_shape(layer: &Layer) -> String {
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

/// The activation cell; SE's own nonlinearities sit inside it: ReLU after the reduce,
/// hard-sigmoid on the gate.
pub fn activation(layer: &Layer) -> &'static str {
    match layer.role {
        Role::SqueezeExcite => "ReLU, h-sigmoid",
        _ => layer.activation.name(),
    }
}

/// Table 2's row names, with the kind's kernel sizes (v3 mixes 3x3 and 5x5 depthwise layers).
pub fn kind_label(share: &KindShare) -> String {
    let sizes = share
        .kernels
        .iter()
        .map(|k| format!("{k}x{k}"))
        .collect::<Vec<_>>()
        .join("/");
    match share.kind {
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

/// The legend of [`status_cell`]'s and [`pct_cell`]'s marks.
pub const STATUS_LEGEND: &str = "ok = within one unit of the last printed digit; ERRATUM = a known misprint recorded in presets/published; DIFFERS = unexplained";

/// A printed Table 2 percentage with its status: "1.19% (ERRATUM)".
pub fn pct_cell(check: &FigureCheckPct) -> String {
    format!("{}% ({})", check.published, mark(check.status))
}

/// A published figure against the computed one in millions: "569 vs 568.740 (ok)".
pub fn status_cell(check: &Option<FigureCheck>) -> String {
    match check {
        None => "-".into(),
        Some(c) => format!(
            "{} vs {:.3} ({})",
            c.published,
            c.computed as f64 / 1e6,
            mark(c.status)
        ),
    }
}

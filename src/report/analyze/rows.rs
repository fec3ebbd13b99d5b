//! `analyze --format csv`: one typed record per layer, serialised with serde so the headers are
//! the field names (snake_case) and every count is a plain integer, as scripts read it.

use serde::Serialize;

use super::AnalyzeReport;
use crate::arch::{Activation, LayerKind, Role};

/// One layer. Shapes are split into their dimensions; absent values are empty cells.
#[derive(Serialize)]
struct LayerRecord<'a> {
    layer: &'a str,
    role: Role,
    kind: LayerKind,
    block: Option<usize>,
    kernel: u32,
    stride: u32,
    input_h: u32,
    input_w: u32,
    input_c: u32,
    output_h: u32,
    output_w: u32,
    output_c: u32,
    activation: Activation,
    residual_from: Option<usize>,
    se_channels: Option<u32>,
    mult_adds: u64,
    params: u64,
    se_mult_adds: u64,
    se_params: u64,
    bn_channels: u64,
    bias: u64,
    elementwise_ops: u64,
}

/// The per-layer table as CSV (RFC 4180). The logits row's `output_c` is the class count.
pub fn analyze_csv(report: &AnalyzeReport) -> anyhow::Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for r in &report.cost.layers {
        let (l, c) = (&r.layer, &r.cost);
        writer.serialize(LayerRecord {
            layer: &l.name,
            role: l.role,
            kind: l.kind,
            block: l.block,
            kernel: l.kernel,
            stride: l.stride,
            input_h: l.input.h,
            input_w: l.input.w,
            input_c: l.input.c,
            output_h: l.output.h,
            output_w: l.output.w,
            output_c: l.output.c,
            activation: l.activation,
            residual_from: l.residual_from,
            se_channels: l.se_channels,
            mult_adds: c.mult_adds,
            params: c.params,
            se_mult_adds: c.se_mult_adds,
            se_params: c.se_params,
            bn_channels: c.bn_channels,
            bias: c.bias,
            elementwise_ops: c.elementwise_ops,
        })?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

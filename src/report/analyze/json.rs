//! The `analyze --format json` document (docs/schema/analyze.schema.json): serde views of the
//! cost report that rename or regroup its fields for the JSON contract, and nothing else.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::AnalyzeReport;
use crate::arch::{Activation, Family, LayerKind, Role};
use crate::cost::{Convention, KindShare, OmittedExpansion, SavingTotal, SeparableSaving, Totals};
use crate::published::{Comparison, Table2Check};

/// Version 2: headline `mult_adds`/`params` include squeeze-and-excite (`*_excluding_se` leave
/// it out; `mult_adds_with_se`/`params_with_se` are gone), `totals.classes`, layer `role`,
/// `by_kind[].kernels`, one `conventions` entry per convention name, and separable pairs as
/// `depthwise`/`pointwise` names.
pub const SCHEMA_VERSION: u32 = 2;

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

/// The width rule of the family, then every convention's name and `describe()` text, in
/// [`Convention::ALL`]'s order.
struct ConventionsJson {
    family: Family,
}

impl Serialize for ConventionsJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1 + Convention::ALL.len()))?;
        map.serialize_entry("width_rule", self.family.width_rule())?;
        for c in Convention::ALL {
            map.serialize_entry(c.name(), c.describe())?;
        }
        map.end()
    }
}

/// The totals with the class count they were computed for beside them: the FC layer's width
/// changes `mult_adds` and every parameter count.
#[derive(Serialize)]
struct TotalsJson<'a> {
    classes: u32,
    #[serde(flatten)]
    totals: &'a Totals,
}

#[derive(Serialize)]
struct SeparableJson<'a> {
    layers: &'a [SeparableSaving],
    total: Option<SavingTotal>,
}

#[derive(Serialize)]
struct OmittedJson<'a> {
    blocks: &'a [OmittedExpansion],
    /// Mult-adds with every omitted expansion conv counted (v2 1.0/224: 313.6 M, not 300.8 M).
    mult_adds_with_expansions: u64,
}

#[derive(Serialize)]
struct AnalyzeJson<'a> {
    schema_version: u32,
    model: ModelJson<'a>,
    conventions: ConventionsJson,
    layers: Vec<LayerJson<'a>>,
    totals: TotalsJson<'a>,
    by_kind: &'a [KindShare],
    separable: SeparableJson<'a>,
    published: &'a [Comparison],
    paper_table2: &'a [Table2Check],
    omitted_expansions: OmittedJson<'a>,
}

/// The JSON document (see README, "JSON schema").
pub fn analyze_json(report: &AnalyzeReport) -> serde_json::Result<String> {
    let cost = &report.cost;
    let c = &cost.config;
    let json = AnalyzeJson {
        schema_version: SCHEMA_VERSION,
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
        conventions: ConventionsJson { family: c.family },
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
                params: r.cost.params,
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
        totals: TotalsJson {
            classes: c.classes,
            totals: &cost.totals,
        },
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

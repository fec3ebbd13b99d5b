//! The renderings of hand-built reports compared as strings (hyperfine's exporter tests): a
//! formatting change shows here, apart from the cost model's arithmetic.

use super::*;
use crate::arch::{Activation, Config, Family, Layer, Role, Shape};
use crate::cost::{Convention, KindShare, LayerCost, LayerRow, Totals};
use crate::published::{FigureCheck, Status, Store};
use crate::report::document::Section;

fn layer(name: &str, role: Role, kernel: u32, stride: u32, input: Shape, output: Shape) -> Layer {
    Layer {
        name: name.into(),
        block: None,
        kind: role.kind(),
        role,
        kernel,
        stride,
        input,
        output,
        batch_norm: role == Role::Stem,
        bias: role == Role::Logits,
        activation: Activation::Relu6,
        residual_from: None,
        se_channels: None,
    }
}

fn cost(mult_adds: u64, params: u64) -> LayerCost {
    LayerCost {
        mult_adds,
        params,
        ..LayerCost::default()
    }
}

/// A three-layer network (stem, pool, logits) with made-up but consistent figures.
fn tiny(classes: u32) -> AnalyzeReport {
    let config = Config::paper(1.0, 224).unwrap().with_classes(classes);
    let fc = u64::from(classes) * 32;
    let layers = vec![
        LayerRow {
            layer: layer(
                "conv_0",
                Role::Stem,
                3,
                2,
                Shape::new(224, 224, 3),
                Shape::new(112, 112, 32),
            ),
            cost: LayerCost {
                bn_channels: 32,
                ..cost(10_838_016, 864)
            },
        },
        LayerRow {
            layer: layer(
                "pool",
                Role::Pool,
                112,
                1,
                Shape::new(112, 112, 32),
                Shape::new(1, 1, 32),
            ),
            cost: cost(0, 0),
        },
        LayerRow {
            layer: layer(
                "logits",
                Role::Logits,
                1,
                1,
                Shape::new(1, 1, 32),
                Shape::new(1, 1, classes),
            ),
            cost: LayerCost {
                bias: u64::from(classes),
                ..cost(fc, fc)
            },
        },
    ];
    let totals = Totals {
        mult_adds: 10_838_016 + fc,
        mult_adds_excluding_se: 10_838_016 + fc,
        flops: 2 * (10_838_016 + fc),
        params: 864 + fc,
        params_excluding_se: 864 + fc,
        params_deployed: 864 + fc + 32 + u64::from(classes),
        activation_peak_bytes: 4 * (224 * 224 * 3 + 112 * 112 * 32),
        ..Totals::default()
    };
    let share = |kind, kernels: Vec<u32>| KindShare {
        kind,
        layers: 1,
        kernels,
        mult_adds: 0,
        params: 0,
        mult_adds_pct: 0.0,
        params_pct: 0.0,
        elementwise_ops: 0,
    };
    AnalyzeReport {
        cost: CostReport {
            config,
            layers,
            totals,
            by_kind: vec![share(crate::arch::LayerKind::Conv, vec![3])],
            separable: Vec::new(),
            separable_total: None,
            omitted_expansions: Vec::new(),
        },
        published: Vec::new(),
        table2: Vec::new(),
    }
}

fn main_table(doc: &Document) -> &crate::report::document::TextTable {
    doc.sections
        .iter()
        .find_map(|s| match s {
            Section::Table { table, main: true } => Some(table),
            _ => None,
        })
        .unwrap()
}

fn text(doc: &Document) -> String {
    doc.to_terminal()
}

#[test]
fn layer_table_reads_like_the_paper() {
    let doc = analyze_document(&tiny(1000));
    let table = main_table(&doc);
    assert_eq!(
        table.header,
        [
            "Layer",
            "Type / Stride",
            "Filter Shape",
            "Input Size",
            "Output Size",
            "Mult-Adds",
            "Params"
        ]
    );
    let rows: Vec<Vec<&str>> = table
        .rows
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "conv_0",
                "Conv / s2",
                "3x3x3x32",
                "224x224x3",
                "112x112x32",
                "10,838,016",
                "864"
            ],
            vec![
                "pool",
                "Avg Pool / s1",
                "Pool 112x112",
                "112x112x32",
                "1x1x32",
                "0",
                "0"
            ],
            vec![
                "logits", "FC / s1", "32x1000", "1x1x32", "1x1x1000", "32,000", "32,000"
            ],
            vec!["total", "", "", "", "", "10,870,016", "32,864"],
        ]
    );
}

#[test]
fn csv_has_raw_numbers_and_snake_case_headers() {
    let csv = analyze_csv(&tiny(1000)).unwrap();
    let expected = "\
layer,role,kind,block,kernel,stride,input_h,input_w,input_c,output_h,output_w,output_c,activation,residual_from,se_channels,mult_adds,params,se_mult_adds,se_params,bn_channels,bias,elementwise_ops
conv_0,stem,conv,,3,2,224,224,3,112,112,32,relu6,,,10838016,864,0,0,32,0,0
pool,pool,avgpool,,112,1,112,112,32,1,1,32,relu6,,,0,0,0,0,0,0,0
logits,logits,fc,,1,1,1,1,32,1,1,1000,relu6,,,32000,32000,0,0,0,1000,0
";
    assert_eq!(csv, expected);
}

#[test]
fn totals_state_the_class_count_and_their_conventions() {
    let out = text(&analyze_document(&tiny(1001)));
    assert!(
        out.contains("Totals for 1001 classes (background + ImageNet's 1000, as the shipped weights)"),
        "{out}"
    );
    let out = text(&analyze_document(&tiny(1000)));
    assert!(
        out.contains("Totals for 1000 classes (the papers'; the shipped weights have 1001: background + ImageNet's 1000)"),
        "{out}"
    );
    assert!(out.contains("Classes: 1000 classes"), "{out}");
    // Each shown figure is explained by its convention's own text; squeeze-and-excite's
    // figures and zero figures are not shown for a network without them.
    for c in [
        Convention::MultAdds,
        Convention::Params,
        Convention::ParamsDeployed,
    ] {
        assert!(out.contains(&format!("{}: {}", c.name(), c.describe())), "{c}");
    }
    for c in [
        Convention::SeParams,
        Convention::ParamsExcludingSe,
        Convention::ParamsKeras,
    ] {
        assert!(!out.contains(&format!("{}: ", c.name())), "{c} shown:\n{out}");
    }
    assert!(out.contains("10,870,016") && out.contains("10.9M"), "{out}");
    // Memory figures in megabytes.
    assert!(out.contains("2.21 MB"), "{out}");
}

#[test]
fn bottleneck_rows_name_their_role() {
    let mut report = tiny(1000);
    let mut se = layer(
        "block_3.se",
        Role::SqueezeExcite,
        1,
        1,
        Shape::new(28, 28, 72),
        Shape::new(28, 28, 72),
    );
    se.se_channels = Some(24);
    se.activation = Activation::Linear;
    report.cost.config = Config::family(Family::V3Large, 1.0, 224).unwrap();
    report.cost.layers.insert(
        1,
        LayerRow {
            layer: se,
            cost: LayerCost {
                se_mult_adds: 3456,
                se_params: 3552,
                elementwise_ops: 56_448,
                ..cost(3456, 3552)
            },
        },
    );
    report.cost.totals.se_params = 3552;
    let doc = analyze_document(&report);
    let row = &main_table(&doc).rows[1];
    assert_eq!(
        row,
        &[
            "block_3.se",
            "bneck SE",
            "72->24->72 SE",
            "28x28x72",
            "28x28x72",
            "ReLU, h-sigmoid",
            "",
            "3,456",
            "3,552",
            "56,448"
        ]
    );
    // With squeeze-and-excite, its own figures are listed among the totals.
    assert!(text(&doc).contains("se_params: "));
}

#[test]
fn published_rows_show_status_classes_and_convention() {
    let mut report = tiny(1000);
    let row = Store::embedded()
        .models
        .into_iter()
        .find(|m| m.model == "MobileNet_v1_1.0_224")
        .unwrap();
    report.published.push(crate::published::Comparison {
        source_title: "TF-slim".into(),
        row,
        mult_adds_convention: Convention::MultAdds,
        mult_adds: Some(FigureCheck {
            published: "569".into(),
            computed: 568_740_352,
            difference_m: 0.26,
            status: Status::Agrees,
        }),
        params: Some(FigureCheck {
            published: "4.24".into(),
            computed: 4_243_945,
            difference_m: -0.004,
            status: Status::Agrees,
        }),
    });
    let out = text(&analyze_document(&report));
    for expected in [
        "569 vs 568.740 (ok)",
        "4.24 vs 4.244 (ok)",
        "params_slim_checkpoint",
        "computed at each source's class count (Classes), not this report's 1000",
        "slim-v1: TF-slim",
    ] {
        assert!(out.contains(expected), "{expected}:\n{out}");
    }
    let markdown = analyze_document(&report).to_markdown();
    assert!(
        markdown.contains("| slim-v1 | model table | MobileNet_v1_1.0_224 | 70.9 | 89.9 | 1001 |"),
        "{markdown}"
    );
}

#[test]
fn json_states_classes_beside_the_totals_and_every_convention() {
    let v: serde_json::Value = serde_json::from_str(&analyze_json(&tiny(1001)).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 2);
    assert_eq!(v["totals"]["classes"], 1001);
    assert_eq!(v["totals"]["mult_adds"], 10_838_016 + 32 * 1001);
    assert_eq!(v["layers"][0]["role"], "stem");
    assert_eq!(v["by_kind"][0]["kernels"], serde_json::json!([3]));
    let conventions = v["conventions"].as_object().unwrap();
    assert!(conventions["width_rule"].is_string());
    for c in Convention::ALL {
        assert_eq!(conventions[c.name()], c.describe(), "{c}");
    }
}

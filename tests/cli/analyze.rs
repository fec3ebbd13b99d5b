//! `analyze` and `presets` through the real binary.

use crate::common::*;

use predicates::prelude::*;
use serde_json::Value;

fn analyze_json(args: &[&str]) -> Value {
    let out = cli()
        .arg("analyze")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The published row for `model` in an analyze JSON document.
fn published_row<'a>(v: &'a Value, model: &str) -> &'a Value {
    v["published"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["model"] == model)
        .unwrap_or_else(|| panic!("no published row {model}"))
}

#[test]
fn json_contract_for_1_0_224() {
    let v = analyze_json(&[]);
    assert_eq!(v["schema_version"], 2);
    let model = &v["model"];
    assert_eq!(model["alpha"], 1.0);
    assert_eq!(model["resolution"], 224);
    assert_eq!(model["depth_multiplier"], 1);
    assert_eq!(model["classes"], 1000);
    assert_eq!(model["variant"], "standard");
    let t = &v["totals"];
    assert_eq!(t["classes"], 1000);
    assert_eq!(t["mult_adds"].as_u64(), Some(568_740_352));
    assert_eq!(t["mult_adds_excluding_se"].as_u64(), Some(568_740_352));
    assert_eq!(t["flops"].as_u64(), Some(1_137_480_704));
    assert_eq!(t["params"].as_u64(), Some(4_209_088));
    assert_eq!(t["params_trainable"].as_u64(), Some(4_231_976));
    assert_eq!(t["params_keras"].as_u64(), Some(4_253_864));
    assert_eq!(t["params_deployed"].as_u64(), Some(4_221_032));
    assert_eq!(t["weight_bytes_f32"].as_u64(), Some(4 * 4_221_032));
    assert!(t["activation_peak_bytes"].is_u64());
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 29);
    for key in [
        "name",
        "kind",
        "kernel",
        "stride",
        "input",
        "output",
        "mult_adds",
        "params",
        "role",
    ] {
        assert!(layers.iter().all(|l| !l[key].is_null()), "layer key {key}");
    }
    assert_eq!(layers[1]["kind"], "depthwise");
    assert_eq!(layers[1]["role"], "depthwise");
    assert_eq!(layers[0]["role"], "stem");
    assert_eq!(layers[1]["input"], serde_json::json!([112, 112, 32]));
    assert!(v["by_kind"].as_array().unwrap().len() >= 4);
    let published = v["published"].as_array().unwrap();
    assert!(published.iter().all(|p| p["source"].is_string()));
    assert!(published.iter().any(|p| p["source"] == "paper-v1"));
}

#[test]
fn tf_slim_per_layer_table_matches_exactly() {
    let v = analyze_json(&[]);
    let layers = v["layers"].as_array().unwrap();
    let slim = include_str!("../../presets/published/v1-slim-layers.csv");
    let mut rows = slim.lines().skip(1);
    // TF-slim's body: every layer but the pool and logits, in order.
    for layer in &layers[..27] {
        let row = rows.next().unwrap();
        let cells: Vec<&str> = row.split(',').collect();
        let (params, macs): (u64, u64) = (cells[4].parse().unwrap(), cells[5].parse().unwrap());
        assert_eq!(layer["params"].as_u64(), Some(params), "{row}");
        assert_eq!(layer["mult_adds"].as_u64(), Some(macs), "{row}");
    }
}

#[test]
fn all_sixteen_paper_points_agree_or_flag_errata() {
    for alpha in ["1.0", "0.75", "0.5", "0.25"] {
        for res in ["224", "192", "160", "128"] {
            let v = analyze_json(&["--alpha", alpha, "--res", res]);
            let published = v["published"].as_array().unwrap();
            assert!(!published.is_empty(), "{alpha}/{res}");
            for p in published {
                for key in ["mult_adds", "params"] {
                    if let Some(status) = p[key]["status"].as_str() {
                        assert_ne!(status, "disagrees", "{alpha}/{res} {} {key}", p["model"]);
                        if status == "erratum" {
                            assert!(p["erratum"].is_string());
                        }
                    }
                }
            }
        }
    }
    let v = analyze_json(&["--alpha", "0.75", "--res", "224"]);
    let slim = published_row(&v, "MobileNet_v1_0.75_224");
    assert_eq!(slim["mult_adds"]["status"], "erratum");
    assert_eq!(slim["mult_adds"]["published"], "317");
}

#[test]
fn table_output_shows_every_section() {
    cli()
        .args(["analyze", "--alpha", "0.5", "--res", "160"])
        .assert()
        .success()
        .stdout(predicate::str::contains("0.5-MobileNet-160"))
        .stdout(predicate::str::contains("max(int(c * alpha), 8)"))
        .stdout(predicate::str::contains("76,524,800"))
        .stdout(predicate::str::contains("Totals for 1000 classes (the papers'"))
        .stdout(predicate::str::contains("Resource per layer type"))
        .stdout(predicate::str::contains("Depthwise separable vs standard"))
        .stdout(predicate::str::contains("Peak activation memory"))
        .stdout(predicate::str::contains("0.50 MobileNet-160"));
}

#[test]
fn table2_erratum_and_full_conv_are_flagged() {
    cli()
        .arg("analyze")
        .assert()
        .success()
        .stdout(predicate::str::contains("1.19% (ERRATUM)"))
        .stdout(predicate::str::contains("94.86% (ok)"))
        .stdout(predicate::str::contains("1.91%"));
    let v = analyze_json(&[]);
    let conv = v["paper_table2"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "conv")
        .unwrap();
    assert_eq!(conv["mult_adds_pct"]["status"], "erratum");
    cli()
        .args(["analyze", "--variant", "full-conv"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ERRATUM"))
        .stdout(predicate::str::contains("4,867,293,184"));
}

#[test]
fn rho_and_odd_resolutions() {
    let v = analyze_json(&["--rho", "0.714"]);
    assert_eq!(v["model"]["resolution"], 160);
    let v = analyze_json(&["--res", "97", "--alpha", "0.3"]);
    assert_eq!(v["layers"][0]["output"], serde_json::json!([49, 49, 9]));
}

/// Defect 11: 0.5/160's 76,524,800 mult-adds at 1000 classes and 76,525,312 at the shipped
/// weights' 1001 are both labelled with their class count.
#[test]
fn counts_state_their_class_count() {
    for (classes, mult_adds, note) in [
        (
            "1000",
            "76,524,800",
            "Totals for 1000 classes (the papers'; the shipped weights have 1001: background + ImageNet's 1000)",
        ),
        (
            "1001",
            "76,525,312",
            "Totals for 1001 classes (background + ImageNet's 1000, as the shipped weights)",
        ),
    ] {
        cli()
            .args(["analyze", "--alpha", "0.5", "--res", "160", "--classes", classes])
            .assert()
            .success()
            .stdout(predicate::str::contains(mult_adds))
            .stdout(predicate::str::contains(note));
        let v = analyze_json(&["--alpha", "0.5", "--res", "160", "--classes", classes]);
        assert_eq!(v["totals"]["classes"].to_string(), classes);
        // The published rows keep their own class count whatever the configuration's.
        let slim = published_row(&v, "MobileNet_v1_0.50_160");
        assert_eq!(slim["classes"], 1001);
    }
}

#[test]
fn csv_and_markdown() {
    let out = cli().args(["analyze", "--format", "csv"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("layer,role,kind,block,kernel,stride,input_h,"),
        "{text}"
    );
    assert!(!text.contains('"') && !text.contains('%'), "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (mult_adds, output_c) = (column("mult_adds"), column("output_c"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let total: u64 = rows.iter().map(|r| r[mult_adds].parse::<u64>().unwrap()).sum();
    assert_eq!(total, 568_740_352);
    assert_eq!((&rows[0][0], &rows[0][mult_adds]), ("conv_0", "10838016"));
    // The logits row's width is the class count.
    assert_eq!(&rows.last().unwrap()[output_c], "1000");
    cli()
        .args(["analyze", "--format", "markdown"])
        .assert()
        .success()
        .stdout(predicate::str::contains("| Layer | Type / Stride |"));
}

#[test]
fn output_file_is_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.json");
    cli()
        .args(["analyze", "--format", "json", "--output"])
        .arg(&path)
        .assert()
        .success()
        .stdout("");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["totals"]["mult_adds"].as_u64(), Some(568_740_352));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn invalid_flags_name_the_flag_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.json");
    for (flag, value) in [
        ("--alpha", "0"),
        ("--alpha", "-0.5"),
        ("--alpha", "NaN"),
        ("--alpha", "inf"),
        ("--alpha", "2.5"),
        ("--res", "31"),
        ("--res", "0"),
        ("--res", "100000"),
        ("--variant", "deep"),
        ("--format", "yaml"),
        ("--depth-multiplier", "0"),
    ] {
        let out = cli()
            .args(["analyze", flag, value, "--output"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(flag.trim_start_matches('-')),
            "{flag} {value}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!path.exists());
    }
    // An output path that cannot be written is a usage error found before any work.
    let out = cli()
        .args(["analyze", "--output", "/nonexistent/dir/x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --output /nonexistent/dir/x.json: directory /nonexistent/dir does not exist\n"
    );
}

#[test]
fn presets_lists_and_filters() {
    cli()
        .args(["presets", "--alpha", "0.75", "--source", "slim-v1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("MobileNet_v1_0.75_192"))
        .stdout(predicate::str::contains("erratum").and(predicate::str::contains("317")));
    let out = cli()
        .args(["presets", "--family", "v1", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let models = v["models"].as_array().unwrap();
    assert!(
        models
            .iter()
            .all(|m| m["family"] == "v1" && m["source"].is_string())
    );
    assert!(models.len() >= 80);
    assert!(models.iter().all(|m| m["params_convention"] != "slim_checkpoint"));
    assert_eq!(v["schema_version"], 2);
    let out = cli().args(["presets", "--source", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // CSV: the data file's own columns and cells, unformatted.
    let out = cli()
        .args([
            "presets", "--source", "slim-v1", "--alpha", "1.0", "--res", "224", "--format", "csv",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let file = include_str!("../../presets/published/models.csv");
    assert_eq!(text.lines().next(), file.lines().next());
    assert!(text.contains(",569,4.24,params_slim_checkpoint,1001,"), "{text}");
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn v2_json_layers_totals_and_published() {
    let v = analyze_json(&["--family", "v2", "--alpha", "1.0", "--res", "224"]);
    assert_eq!(v["model"]["family"], "v2");
    assert_eq!(v["model"]["label"], "1.0-MobileNetV2-224");
    assert!(
        v["conventions"]["width_rule"]
            .as_str()
            .unwrap()
            .contains("make_divisible")
    );
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 54);
    assert_eq!(layers[1]["name"], "block_0.dw");
    assert_eq!(layers[3]["name"], "block_1.expand");
    assert_eq!(layers[3]["output"], serde_json::json!([112, 112, 96]));
    let project = layers.iter().find(|l| l["name"] == "block_2.project").unwrap();
    assert_eq!(project["activation"], "linear");
    let from = project["residual_from"].as_u64().unwrap() as usize;
    assert_eq!(layers[from]["name"], "block_2.expand");
    assert_eq!(layers[from]["input"], project["output"]);
    assert!(layers.iter().all(|l| l["se_channels"].is_null()));
    let t = &v["totals"];
    assert_eq!(t["mult_adds"].as_u64(), Some(300_774_272));
    assert_eq!(t["params"].as_u64(), Some(3_469_760));
    assert_eq!(t["params_trainable"].as_u64(), Some(3_504_872));
    assert_eq!(t["se_mult_adds"].as_u64(), Some(0));
    let omitted = &v["omitted_expansions"];
    assert_eq!(omitted["blocks"][0]["mult_adds"].as_u64(), Some(12_845_056));
    assert_eq!(omitted["mult_adds_with_expansions"].as_u64(), Some(313_619_328));
    let published = v["published"].as_array().unwrap();
    let slim = published_row(&v, "mobilenet_v2_1.0_224");
    assert_eq!(slim["mult_adds"]["status"], "agrees");
    assert_eq!(slim["params"]["status"], "agrees");
    assert!(published.iter().any(|p| p["source"] == "paper-v2"));
    // 1001 classes: the shipped v2 file's element count.
    let v = analyze_json(&["--family", "v2", "--classes", "1001"]);
    assert_eq!(v["totals"]["params_deployed"].as_u64(), Some(3_489_097));
}

#[test]
fn v2_table_shows_bottlenecks_and_the_300_vs_314_note() {
    cli()
        .args(["analyze", "--family", "v2"])
        .assert()
        .success()
        .stdout(predicate::str::contains("1.0-MobileNetV2-224"))
        .stdout(predicate::str::contains("make_divisible"))
        .stdout(predicate::str::contains("bneck expand / s1"))
        .stdout(predicate::str::contains("+ input of block_2.expand"))
        .stdout(predicate::str::contains("300,774,272"))
        .stdout(predicate::str::contains("313,619,328 (313.6 M)"))
        .stdout(predicate::str::contains("tensorflow/models#4516"))
        .stdout(predicate::str::contains("mobilenet_v2_1.0_224"));
}

#[test]
fn v3_json_separates_squeeze_excite_and_elementwise() {
    let v = analyze_json(&["--family", "v3-large"]);
    let layers = v["layers"].as_array().unwrap();
    let se: Vec<&Value> = layers.iter().filter(|l| l["kind"] == "squeeze_excite").collect();
    assert_eq!(se.len(), 8);
    assert_eq!(se[0]["name"], "block_3.se");
    assert_eq!(se[0]["se_channels"], 24);
    assert_eq!(se[0]["role"], "squeeze_excite");
    assert_eq!(se[0]["mult_adds"], 2 * 72 * 24);
    assert_eq!(se[0]["se_mult_adds"], 2 * 72 * 24);
    assert_eq!(se[0]["params"], 2 * 72 * 24 + 24 + 72);
    assert!(layers.iter().any(|l| l["activation"] == "hardswish"));
    let head = layers.iter().find(|l| l["name"] == "conv_head").unwrap();
    assert_eq!(
        (head["bn_channels"].as_u64(), head["bias"].as_u64()),
        (Some(0), Some(1280))
    );
    // Defect 5: the headline counts every layer the network runs, SE included.
    let t = &v["totals"];
    assert_eq!(t["mult_adds"].as_u64(), Some(216_589_760));
    assert_eq!(t["mult_adds_excluding_se"].as_u64(), Some(215_082_560));
    assert_eq!(t["se_mult_adds"].as_u64(), Some(1_507_200));
    assert_eq!(t["params"].as_u64(), Some(5_456_352));
    assert_eq!(t["params_excluding_se"].as_u64(), Some(3_944_072));
    assert_eq!(t["se_params"].as_u64(), Some(1_512_280));
    assert!(t.get("mult_adds_with_se").is_none() && t.get("params_with_se").is_none());
    assert_eq!(t["elementwise_ops"].as_u64(), Some(2_532_032));
    let sum = |key: &str| layers.iter().map(|l| l[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("mult_adds"), 216_589_760);
    assert_eq!(sum("params"), 5_456_352);
    assert_eq!(sum("se_mult_adds"), 1_507_200);
    assert_eq!(sum("elementwise_ops"), 2_532_032);
    let kinds = v["by_kind"].as_array().unwrap();
    let se_kind = kinds.iter().find(|k| k["kind"] == "squeeze_excite").unwrap();
    assert_eq!(se_kind["mult_adds"], 1_507_200);
    let dw = kinds.iter().find(|k| k["kind"] == "depthwise").unwrap();
    assert_eq!(dw["kernels"], serde_json::json!([3, 5]));
    let published = v["published"].as_array().unwrap();
    let status = |source: &str, model: &str| {
        let p = published
            .iter()
            .find(|p| p["source"] == source && p["model"] == model)
            .unwrap();
        p["mult_adds"]["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status("slim-v3", "Large dm=1 (float)"), "agrees");
    let slim = published_row(&v, "Large dm=1 (float)");
    assert_eq!(slim["params"]["status"], "agrees");
    assert_eq!(slim["params_convention"], "params");
    assert_eq!(status("paper-v3", "V3-Large 1.0"), "erratum");
}

#[test]
fn v3_minimalistic_and_small() {
    let v = analyze_json(&["--family", "v3-large", "--minimalistic"]);
    assert_eq!(v["model"]["variant"], "minimalistic");
    assert_eq!(v["model"]["minimalistic"], true);
    assert_eq!(v["totals"]["se_params"].as_u64(), Some(0));
    let published = v["published"].as_array().unwrap();
    assert!(!published.is_empty());
    assert!(published.iter().all(|p| p["mult_adds"]["status"] == "agrees"));
    cli()
        .args(["analyze", "--family", "v3-small", "--alpha", "0.75"])
        .assert()
        .success()
        .stdout(predicate::str::contains("bneck SE"))
        .stdout(predicate::str::contains("Conv DW 3x3/5x5"))
        .stdout(predicate::str::contains("Small dm=0.75 (float)"))
        .stdout(predicate::str::contains("mult_adds_excluding_se"));
}

#[test]
fn family_flags_are_validated() {
    for args in [
        vec!["analyze", "--family", "v4"],
        vec!["analyze", "--minimalistic"],
        vec!["analyze", "--family", "v2", "--minimalistic"],
        vec!["analyze", "--family", "v2", "--variant", "shallow"],
        vec!["analyze", "--family", "v3-small", "--depth-multiplier", "2"],
    ] {
        let out = cli().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            ["--family", "--minimalistic", "--variant", "--depth-multiplier"]
                .iter()
                .any(|flag| stderr.contains(flag)),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn bench_times_every_family_on_both_engines() {
    for args in [
        vec!["--family", "v2", "--alpha", "0.5", "--res", "96"],
        vec!["--family", "v3-large", "--alpha", "1.0", "--res", "96"],
        vec![
            "--family",
            "v3-small",
            "--minimalistic",
            "--alpha",
            "0.75",
            "--res",
            "96",
        ],
    ] {
        // No --engine: the fast engine, the default, runs every family.
        for engine in [None, Some("reference")] {
            let out = cli()
                .arg("bench")
                .args(&args)
                .args(engine.map(|e| ["--engine", e]).iter().flatten())
                .args(["--mock-timer", "--runs", "3", "--format", "json"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?} {engine:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["engine"], engine.unwrap_or("fast"), "{args:?}");
            assert_eq!(v["model"]["family"], args[1], "{args:?}");
        }
    }
}

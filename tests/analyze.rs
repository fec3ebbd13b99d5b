//! `analyze` and `presets` through the real binary.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn cli() -> Command {
    let mut cmd = Command::cargo_bin("mobilenet-cli").unwrap();
    cmd.env("NO_COLOR", "1");
    cmd
}

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

#[test]
fn json_contract_for_1_0_224() {
    let v = analyze_json(&[]);
    let model = &v["model"];
    assert_eq!(model["alpha"], 1.0);
    assert_eq!(model["resolution"], 224);
    assert_eq!(model["depth_multiplier"], 1);
    assert_eq!(model["classes"], 1000);
    assert_eq!(model["variant"], "standard");
    let t = &v["totals"];
    assert_eq!(t["mult_adds"].as_u64(), Some(568_740_352));
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
    ] {
        assert!(layers.iter().all(|l| !l[key].is_null()), "layer key {key}");
    }
    assert_eq!(layers[1]["kind"], "depthwise");
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
    let slim = include_str!("../presets/published/v1-slim-layers.csv");
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
    let slim = v["published"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["model"] == "MobileNet_v1_0.75_224")
        .unwrap();
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

#[test]
fn csv_and_markdown() {
    let out = cli().args(["analyze", "--format", "csv"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("Layer,Type / Stride,Filter Shape"));
    assert!(text.contains("\"568,740,352\""));
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
    let out = cli()
        .args(["analyze", "--output", "/nonexistent/dir/x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
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
    let out = cli().args(["presets", "--source", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

//! `bench` and `sweep` through the real binary, with the hidden mock timer so that every output
//! is deterministic: snapshot tests of each format, and no test asserts a real duration.

use crate::common::*;

use serde_json::Value;

fn stdout(args: &[&str]) -> String {
    let out = cli().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const SWEEP: [&str; 4] = ["sweep", "--mock-timer", "--threads", "1"];

#[test]
fn sweep_snapshots_of_every_format() {
    for format in ["table", "json", "csv", "markdown"] {
        let mut args = SWEEP.to_vec();
        args.extend(["--format", format, "--max-latency-ms", "20", "--min-top1", "60"]);
        assert_snapshot(&format!("sweep.{format}"), &stdout(&args));
    }
}

#[test]
fn sweep_json_schema() {
    let v: Value = serde_json::from_str(&stdout(&[&SWEEP[..], &["--format", "json"]].concat())).unwrap();
    assert_eq!(v["schema_version"], 4);
    assert_eq!(v["families"], serde_json::json!(["v1"]));
    assert!(v["environment"]["cpu_model"].is_string());
    assert_eq!(v["complete"], true);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 16);
    for row in rows {
        for key in [
            "alpha",
            "resolution",
            "mult_adds",
            "params",
            "weight_bytes_f32",
            "pareto",
        ] {
            assert!(!row[key].is_null(), "{key}");
        }
        assert!(row["mult_adds"].is_u64());
        assert!(row["latency_ms"]["median"].is_f64() && row["latency_ms"]["p90"].is_f64());
        assert_eq!(row["classes"], 1000);
        let top1 = &row["top1"];
        assert!(top1["value"].is_f64());
        assert_eq!(
            top1["provenance"]["type"], "published",
            "the paper grid is published"
        );
        assert_eq!(top1["provenance"]["source"], "slim-v1");
        assert!(
            top1["provenance"]["model"]
                .as_str()
                .unwrap()
                .starts_with("MobileNet_v1_")
        );
        assert_eq!(
            (&top1["estimated"], &top1["extrapolated"]),
            (&Value::Bool(false), &Value::Bool(false))
        );
    }
    // The mock latency is proportional to mult-adds, so the front is every point that is more
    // accurate than every cheaper one: 1.0-224 is on it.
    assert!(
        rows.iter()
            .any(|r| r["alpha"] == 1.0 && r["resolution"] == 224 && r["pareto"] == true)
    );
    assert!(rows.iter().any(|r| r["pareto"] == false));
}

#[test]
fn sweep_estimates_unpublished_points_and_applies_budgets() {
    let out = stdout(
        &[
            &SWEEP[..],
            &[
                "--alphas",
                "0.6,1.0",
                "--resolutions",
                "176,224",
                "--format",
                "json",
                "--max-size-mb",
                "10",
            ],
        ]
        .concat(),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let estimated: Vec<&Value> = rows.iter().filter(|r| r["top1"]["estimated"] == true).collect();
    assert_eq!(estimated.len(), 3, "only 1.0-224 is published");
    for e in estimated {
        assert_eq!(
            e["top1"]["provenance"],
            serde_json::json!({"type": "estimated", "fit": "v1", "extrapolation": null})
        );
        assert_eq!(
            e["top1"]["extrapolated"], false,
            "176 and 0.6 are inside v1's published span"
        );
    }
    // 1.0 weights are 16.9 MB at f32: over the 10 MB budget; the best is the larger 0.6 model.
    let best = &rows[v["best"].as_u64().unwrap() as usize];
    assert_eq!(
        (&best["alpha"], &best["resolution"], &best["best"]),
        (&Value::from(0.6), &Value::from(224), &Value::Bool(true))
    );
    assert!(v["no_best"].is_null());
    assert!(
        rows.iter()
            .filter(|r| r["alpha"] == 1.0)
            .all(|r| r["fits_budget"] == false)
    );
}

#[test]
fn sweep_without_timing_and_with_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("tradeoff.svg");
    let json = dir.path().join("sweep.json");
    cli()
        .args(["sweep", "--no-timing", "--format", "json", "--output"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .assert()
        .success()
        .stdout("");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["latency_ms"].is_null())
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("0.75-192") && svg.contains("Pareto front"));
    assert!(!svg.contains("measured latency"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary files left"
    );
}

#[test]
fn sweep_rejects_bad_grids_and_budgets() {
    for args in [
        vec!["--alphas", ""],
        vec!["--alphas", "1.0,1.0"],
        vec!["--alphas", "0"],
        vec!["--alphas", "nan"],
        vec!["--resolutions", "31"],
        vec!["--resolutions", "224,,160"],
        vec!["--max-latency-ms", "-1"],
        vec!["--no-timing", "--max-latency-ms", "5"],
        vec!["--plot", "x.png"],
        vec!["--batch", "0"],
        vec!["--families", "v4"],
        vec!["--families", "v2,v2"],
    ] {
        let out = cli()
            .arg("sweep")
            .arg("--mock-timer")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(args[args.len() - 2].trim_start_matches('-')) || stderr.contains("--"),
            "{stderr}"
        );
    }
}

#[test]
fn sweep_across_families_has_one_front_and_one_budget() {
    let v: Value = serde_json::from_str(&stdout(
        &[
            &SWEEP[..],
            &["--families", "all", "--format", "json", "--max-latency-ms", "7"],
        ]
        .concat(),
    ))
    .unwrap();
    let rows = v["rows"].as_array().unwrap();
    let count = |family: &str, minimalistic: bool| {
        rows.iter()
            .filter(|r| r["family"] == family && r["minimalistic"] == minimalistic)
            .count()
    };
    // Each member's published TF-slim checkpoints.
    assert_eq!(
        [
            count("v1", false),
            count("v2", false),
            count("v3-large", false),
            count("v3-small", false),
            count("v3-large", true),
            count("v3-small", true)
        ],
        [16, 22, 2, 2, 1, 1]
    );
    assert_eq!(v["fits"].as_array().unwrap().len(), 6);
    // Every point is a published checkpoint, so no accuracy is estimated.
    assert!(rows.iter().all(|r| r["top1"]["estimated"] == false));
    // The front spans families: v3-large 1.0 (75.2%) is the most accurate, v2 0.35-96 among
    // the cheapest.
    let row = |family: &str, alpha: f64, resolution: u32| {
        rows.iter()
            .find(|r| {
                r["family"] == family
                    && r["minimalistic"] == false
                    && r["alpha"] == alpha
                    && r["resolution"] == resolution
            })
            .unwrap()
    };
    let on_front = |family, alpha, resolution| row(family, alpha, resolution)["pareto"] == true;
    assert!(on_front("v3-large", 1.0, 224) && on_front("v2", 0.35, 96));
    assert!(
        !on_front("v1", 1.0, 224),
        "v1 1.0-224 is dominated by v3-large 0.75-224"
    );
    // The budget picks across families: the most accurate row within 7 ms (mock: 10 mult-adds
    // per ns plus up to 9% jitter, so 64-70 M mult-adds).
    let best = rows.iter().find(|r| r["best"] == true).unwrap();
    assert_eq!(&rows[v["best"].as_u64().unwrap() as usize], best);
    let best_top1 = best["top1"]["value"].as_f64().unwrap();
    for r in rows.iter().filter(|r| r["fits_budget"] == true) {
        assert!(r["top1"]["value"].as_f64().unwrap() <= best_top1);
    }
    assert_eq!(best, row("v3-small", 1.0, 224));
}

#[test]
fn sweep_families_with_a_resolution_axis_estimate_by_family() {
    let out = stdout(&[
        "sweep",
        "--no-timing",
        "--families",
        "v2,v3-small,v3-small-minimalistic",
        "--resolutions",
        "160",
        "--format",
        "markdown",
    ]);
    // v2 at 160 is published for every width but 1.4 and 1.3; v3-small's 160 is estimated from
    // the v2 shape; the minimalistic model has one published point: no estimate.
    assert!(out.contains("| v2 | 1.4 | 160 |") && out.contains("| v2 | 1.0 | 160 |"));
    assert!(out.contains(
        "* v2 top-1: quadratic fit in (ln alpha, ln resolution) over the 22 published points of slim-v2"
    ));
    assert!(out.contains(
        "* v3-small top-1: the quadratic fit over the 22 published points of slim-v2 v2 (alpha 0.35-1.4, resolution 96-224), shifted by"
    ));
    assert!(out.contains("top-1 -: no published figure and too few published points to estimate one (v3-small-minimalistic 1.0-160)"));
    // TF-slim publishes no top-5 for v3.
    assert!(out.contains(
        "top-5 -: no published figure and too few published points to estimate one (v3-small 1.0-160,"
    ));
    let csv = stdout(&[
        "sweep",
        "--no-timing",
        "--families",
        "v3-large-minimalistic",
        "--format",
        "csv",
    ]);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("family,minimalistic,alpha,resolution,precision,classes,")
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("v3-large,true,1,224,f32,1000,"), "{row}");
    assert!(
        row.contains(",72.3,published,slim-v3,Large minimalistic (float),,no-fit,,,"),
        "{row}"
    );
}

/// Defect 6, first reproduction: a grid reaching past v1's published widths and resolutions.
#[test]
fn sweep_budget_best_is_published_or_in_span_never_extrapolated() {
    let args = [
        "sweep",
        "--no-timing",
        "--alphas",
        "0.6,1.0,1.8",
        "--resolutions",
        "96,224,300",
        "--max-size-mb",
        "60",
    ];
    // 1.8-300 (an extrapolation to 74%) used to be named best.
    let table = stdout(&args);
    assert!(table.contains("best within budget: v1 1.0-224"), "{table}");
    assert!(
        table.contains("top-1 -: no estimate more than 25% beyond the span of the fit's points (v1: alpha 0.25-1.0, resolution 128-224): v1 0.6-96,"),
        "{table}"
    );

    let v: Value = serde_json::from_str(&stdout(&[&args[..], &["--format", "json"]].concat())).unwrap();
    let rows = v["rows"].as_array().unwrap();
    // Every row fits 60 MB.
    assert!(rows.iter().all(|r| r["fits_budget"] == true));
    let best = &rows[v["best"].as_u64().expect("a best row") as usize];
    assert_eq!(
        (&best["alpha"], &best["resolution"]),
        (&Value::from(1.0), &Value::from(224))
    );
    assert_eq!(best["top1"]["provenance"]["type"], "published");
    // Every figure says whether it is extrapolated; 1.8, 96 and 300 are more than 25% outside
    // v1's published 0.25-1.0 and 128-224, so they get none, with the reason.
    for r in rows {
        for metric in ["top1", "top5"] {
            let figure = &r[metric];
            let inside = [0.6, 1.0].contains(&r["alpha"].as_f64().unwrap()) && r["resolution"] == 224;
            if inside {
                assert_eq!(figure["extrapolated"], false, "{r}");
            } else {
                assert!(figure["value"].is_null(), "{r}");
                assert_eq!(figure["unavailable"]["reason"], "beyond-limit", "{r}");
            }
        }
    }
    // Within 25% of the span an estimate is given but marked; it is neither on the front nor
    // best, and when only such rows fit, the report says so.
    let near = [
        "sweep",
        "--no-timing",
        "--alphas",
        "1.0,1.2",
        "--resolutions",
        "224",
        "--max-size-mb",
        "60",
    ];
    let v: Value = serde_json::from_str(&stdout(&[&near[..], &["--format", "json"]].concat())).unwrap();
    let widest = &v["rows"][1];
    assert_eq!(
        (&widest["top1"]["estimated"], &widest["top1"]["extrapolated"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    assert!(
        widest["top1"]["provenance"]["extrapolation"]["ln_alpha"]
            .as_f64()
            .unwrap()
            > 0.18
    );
    assert!(widest["top1"]["value"].as_f64().unwrap() > v["rows"][0]["top1"]["value"].as_f64().unwrap());
    assert_eq!(
        (&widest["pareto"], &widest["best"]),
        (&Value::Bool(false), &Value::Bool(false))
    );
    assert_eq!(v["best"], 0);
    let only = [
        "sweep",
        "--no-timing",
        "--alphas",
        "1.2",
        "--resolutions",
        "224",
        "--max-size-mb",
        "60",
    ];
    let v: Value = serde_json::from_str(&stdout(&[&only[..], &["--format", "json"]].concat())).unwrap();
    assert_eq!(
        (&v["best"], &v["no_best"]),
        (&Value::Null, &Value::from("no-trusted-top1"))
    );
    let table = stdout(&only);
    assert!(table.contains("72.2?"), "{table}");
    assert!(
        table.contains("no best within budget: the rows that fit it have only an extrapolated top-1 estimate or none (v1 1.2-224)"),
        "{table}"
    );
}

/// Defect 6, second reproduction: alpha 2.0 at 1024 was estimated at 65.1%, below 1.0/224.
#[test]
fn sweep_gives_no_estimate_far_beyond_the_fit() {
    let args = [
        "sweep",
        "--no-timing",
        "--alphas",
        "1.0,2.0",
        "--resolutions",
        "224,1024",
    ];
    let v: Value = serde_json::from_str(&stdout(&[&args[..], &["--format", "json"]].concat())).unwrap();
    let far = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alpha"] == 2.0 && r["resolution"] == 1024)
        .unwrap();
    for metric in ["top1", "top5"] {
        assert!(far[metric]["value"].is_null(), "{far}");
        let unavailable = &far[metric]["unavailable"];
        assert_eq!(unavailable["reason"], "beyond-limit");
        assert!((unavailable["extrapolation"]["ln_alpha"].as_f64().unwrap() - 2f64.ln()).abs() < 1e-9);
        assert!(
            (unavailable["extrapolation"]["ln_resolution"].as_f64().unwrap() - (1024f64 / 224.0).ln()).abs()
                < 1e-9
        );
    }
    assert_eq!(far["pareto"], false);
    assert_eq!(v["max_extrapolation_ratio"], 1.25);
    let table = stdout(&args);
    assert!(table.contains("v1 1.0-1024, v1 2.0-224, v1 2.0-1024"), "{table}");
    let csv = stdout(&[&args[..], &["--format", "csv"]].concat());
    assert!(
        csv.lines()
            .last()
            .unwrap()
            .contains(",,beyond-limit,,,,beyond-limit,,,"),
        "{csv}"
    );
}

#[test]
fn bench_mock_statistics_and_formats() {
    let args = [
        "bench",
        "--mock-timer",
        "--alpha",
        "0.5",
        "--res",
        "160",
        "--threads",
        "1",
    ];
    let v: Value = serde_json::from_str(&stdout(&[&args[..], &["--format", "json"]].concat())).unwrap();
    for key in [
        "model",
        "threads",
        "batch",
        "runs",
        "warmup",
        "latency_ms",
        "throughput",
        "environment",
    ] {
        assert!(!v[key].is_null(), "{key}");
    }
    assert_eq!(
        (v["runs"].as_u64(), v["warmup"].as_u64(), v["threads"].as_u64()),
        (Some(20), Some(3), Some(1))
    );
    // Mock: 76,524,800 mult-adds at 10 per ns = 7.65248 ms, jitter +0..9% cycling; the warm-up
    // takes the first three, so the 20 timed runs have jitters 3..9,0..9,0..2: median +4.5%.
    let median = v["latency_ms"]["median"].as_f64().unwrap();
    assert!((median - 7.652_48 * 1.045).abs() < 1e-5, "{median}");
    for key in ["median", "mean", "stddev", "min", "max", "p90"] {
        assert!(v["latency_ms"][key].is_f64(), "{key}");
    }
    assert_snapshot("bench.table", &stdout(&args));
    assert_snapshot(
        "bench.markdown",
        &stdout(&[&args[..], &["--format", "markdown"]].concat()),
    );
    assert_snapshot("bench.csv", &stdout(&[&args[..], &["--format", "csv"]].concat()));
}

#[test]
fn bench_per_layer_shows_time_next_to_mult_adds() {
    let out = stdout(&[
        "bench",
        "--mock-timer",
        "--model",
        "0.25_128",
        "--per-layer",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let layers = v["per_layer"].as_array().unwrap();
    assert_eq!(layers.len(), 29);
    let share = |kind: &str, key: &str| -> f64 {
        layers
            .iter()
            .filter(|l| l["kind"] == kind)
            .map(|l| l[key].as_f64().unwrap())
            .sum()
    };
    let total: f64 = layers.iter().map(|l| l["time_pct"].as_f64().unwrap()).sum();
    assert!((total - 100.0).abs() < 1e-6);
    assert!(share("depthwise", "time_pct") > share("depthwise", "mult_adds_pct"));
    assert_eq!(
        v["model"]["weights"],
        serde_json::json!({"kind": "shipped", "model": "0.25_128"})
    );
}

#[test]
fn bench_times_the_shipped_v3_small() {
    let v = json_of(&[
        "bench",
        "--mock-timer",
        "--model",
        "v3_small_1.0_224",
        "--format",
        "json",
    ]);
    let model = &v["model"];
    assert_eq!(model["family"], "v3-small");
    assert_eq!(model["minimalistic"], false);
    assert_eq!(model["classes"], 1001);
    assert_eq!(model["trained_resolution"], 224);
    assert_eq!(
        model["weights"],
        serde_json::json!({"kind": "shipped", "model": "v3-small_1.0_224"})
    );
}

#[test]
fn bench_rejects_bad_flags() {
    for args in [
        vec!["--model", "2.0_999"],
        vec!["--runs", "0"],
        vec!["--min-time", "-1"],
        vec!["--alpha", "0"],
        vec!["--res", "31"],
    ] {
        let out = cli()
            .arg("bench")
            .arg("--mock-timer")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[cfg(unix)]
#[test]
fn an_interrupted_sweep_keeps_the_rows_it_measured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.json");
    // Real timing, many runs per point: long enough to interrupt after the first rows.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mobilenet-cli"))
        .args([
            "sweep",
            "--alphas",
            "0.25,0.5,0.75,1.0",
            "--resolutions",
            "64,96,128,160,192,224",
        ])
        .args([
            "--runs",
            "2000",
            "--warmup",
            "0",
            "--threads",
            "1",
            "--format",
            "json",
            "--output",
        ])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (up to a generous bound) for the first partial file, then interrupt.
    for _ in 0..600 {
        if path.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SIGTERM rather than Ctrl-C's SIGINT: a test harness started in the background by a
    // non-interactive shell passes SIGINT on as ignored, and then the sweep would run to the
    // end. Both end the process the same way (no handler), which is what this test is about.
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap().len();
    assert!((1..=24).contains(&rows), "{rows}");
    if !status.success() {
        // Interrupted before the end: the file is the last complete rewrite.
        assert_eq!(v["complete"], false);
        assert!(v["rows"][0]["latency_ms"]["median"].is_f64());
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        leftovers.len() <= 2,
        "at most the results file and one temporary being written"
    );
}

//! `sweep --weights FILE` end to end: a network retrained by `retrain` on a generated 2-class
//! task (solid colours, as tests/cli/retrain.rs builds them) becomes one more row of the
//! trade-off table, at its own family, resolution and classes. Without `--data` its top-1 is
//! "-" (nothing publishes it) and it stays off the front; with `--data` on the same folders it
//! is measured as given on the test split; a file whose labels do not match the class folders,
//! and `--precision int8` for a file without activation quantization, are refused before any
//! work; the JSON validates against docs/schema/sweep.schema.json (tests/cli/schema.rs).

use std::path::PathBuf;

use serde_json::Value;

use crate::common::*;

const COLOURS: [(&str, [u8; 3]); 2] = [("blue", [30, 60, 200]), ("red", [200, 40, 30])];

/// train/ (6 images a class), val/ (2), test/ (3), and `mine.safetensors` retrained on them
/// with the small backbone.
pub struct Retrained {
    dir: tempfile::TempDir,
}

impl Retrained {
    pub fn new() -> Retrained {
        let dir = tempfile::tempdir().unwrap();
        colour_task(&dir.path().join("train"), &COLOURS, 6, 21);
        colour_task(&dir.path().join("val"), &COLOURS, 2, 22);
        colour_task(&dir.path().join("test"), &COLOURS, 3, 23);
        let task = Retrained { dir };
        let out = cli()
            .args(["retrain", &task.text("train")])
            .args(["--validation", &task.text("val"), "--test", &task.text("test")])
            .args(["--model", "0.25_128", "--cache-dir", &task.text("cache")])
            .args(["--output", &task.text("mine.safetensors"), "--quiet"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        task
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn text(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// `sweep --weights mine.safetensors` with `extra`, as JSON.
    pub fn json(&self, extra: &[&str]) -> Value {
        let weights = self.text("mine.safetensors");
        let mut args = vec!["sweep", "--weights", &weights, "--format", "json", "--quiet"];
        args.extend(extra);
        json_of(&args)
    }

    /// `--data` on the retraining's own split (given folders: the same test images).
    pub fn data_args(&self) -> Vec<String> {
        [
            "--data",
            &self.text("train"),
            "--validation",
            &self.text("val"),
            "--test",
            &self.text("test"),
            "--cache-dir",
            &self.text("cache"),
        ]
        .map(String::from)
        .to_vec()
    }
}

/// The row of the file in a sweep's JSON.
fn file_row(v: &Value) -> &Value {
    let rows = v["rows"].as_array().unwrap();
    let files: Vec<&Value> = rows.iter().filter(|r| r.get("weights").is_some()).collect();
    assert_eq!(files.len(), 1, "{v}");
    files[0]
}

#[test]
fn a_file_is_a_row_with_its_own_network_and_no_published_accuracy() {
    let task = Retrained::new();
    let v = task.json(&["--no-timing"]);
    let rows = v["rows"].as_array().unwrap();
    // v1's 16 published points, then the file.
    assert_eq!(rows.len(), 17);
    let row = &rows[16];
    assert!(row["weights"].as_str().unwrap().ends_with("mine.safetensors"));
    assert_eq!(
        (&row["family"], &row["alpha"], &row["resolution"], &row["classes"]),
        (
            &Value::from("v1"),
            &Value::from(0.25),
            &Value::from(128),
            &Value::from(2)
        )
    );
    // The cost model's figures for the 2-class network, not the 1000-class grid point's.
    let grid = rows
        .iter()
        .find(|r| r["alpha"] == 0.25 && r["resolution"] == 128 && r.get("weights").is_none())
        .unwrap();
    assert_eq!(grid["classes"], 1000);
    assert!(row["params"].as_u64().unwrap() < grid["params"].as_u64().unwrap());
    assert!(row["mult_adds"].as_u64().unwrap() < grid["mult_adds"].as_u64().unwrap());
    for metric in ["top1", "top5"] {
        assert_eq!(row[metric]["value"], Value::Null);
        assert_eq!(row[metric]["unavailable"]["reason"], "no-published-figure");
    }
    assert_eq!(row["pareto"], false);
    assert_eq!(row["pareto_mult_adds"], false);

    // The table: the weights column names the file, the classes column its 2 classes, a
    // footnote says why its top-1 is "-".
    let weights = task.text("mine.safetensors");
    let out = cli()
        .args([
            "sweep",
            "--no-timing",
            "--weights",
            &weights,
            "--format",
            "markdown",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let line = table
        .lines()
        .find(|l| l.contains("mine.safetensors |"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains("| v1 | 0.25 | 128 | f32 | 2 |"), "{line}");
    assert!(
        table.contains("| weights | family | alpha | res | precision | classes |"),
        "{table}"
    );
    assert!(
        table.contains("top-1 -: your own weights have no published figure")
            && table.contains("not on the Pareto front"),
        "{table}"
    );
    assert!(table.contains("1000/2 classes"), "{table}");

    // Timed (mock timer): the file's row is timed like the others.
    let timed = task.json(&["--mock-timer", "--runs", "3"]);
    assert!(file_row(&timed)["latency_ms"]["median"].as_f64().unwrap() > 0.0);
}

#[test]
fn with_data_the_file_is_measured_as_given_on_the_test_split() {
    let task = Retrained::new();
    let data = task.data_args();
    let mut extra: Vec<&str> = data.iter().map(String::as_str).collect();
    extra.extend(["--no-timing", "--threads", "1"]);
    let v = task.json(&extra);
    let rows = v["rows"].as_array().unwrap();
    // The seven pretrained backbones, then the file.
    assert_eq!(rows.len(), 8);
    let row = file_row(&v);
    let top1 = &row["top1"];
    let p = &top1["provenance"];
    assert_eq!(p["type"], "measured-as-given", "{row}");
    assert!(p["weights"].as_str().unwrap().ends_with("mine.safetensors"));
    // The same 6 test images as every retrained head.
    assert_eq!(p["images"], 6);
    assert_eq!(rows[0]["top1"]["provenance"]["images"], 6);
    let value = top1["value"].as_f64().unwrap();
    assert_eq!(value, p["correct"].as_f64().unwrap() / 6.0 * 100.0);
    let [low, high] = [0, 1].map(|i| p["interval"][i].as_f64().unwrap());
    assert!(low <= value && value <= high, "{p}");
    // Chance is 50%; the colours are separable and the file was trained on them.
    assert!(value >= 80.0, "{top1}");
    assert_eq!(row["top5"]["unavailable"]["reason"], "not-measured");
    assert_eq!(row["classes"], 2);

    // The table says how it was measured.
    let mut args = vec!["sweep".to_string()];
    args.extend(data.iter().cloned());
    args.extend(["--no-timing", "--weights", &task.text("mine.safetensors")].map(String::from));
    let out = cli().args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("mine.safetensors: measured as given (its own classifier, not retrained; its labels matched to the class folders) on the same 6 test images"),
        "{table}"
    );
}

#[test]
fn mismatched_labels_and_missing_quantization_are_refused_before_any_work() {
    let task = Retrained::new();
    let weights = task.text("mine.safetensors");
    // Folders the file's labels (blue, red) do not name.
    let other = task.path("other");
    colour_task(
        &other,
        &[("blue", [30, 60, 200]), ("green", [40, 170, 60])],
        6,
        24,
    );
    let cache = task.text("other-cache");
    let out = cli()
        .args(["sweep", "--no-timing", "--weights", &weights])
        .args(["--data", other.to_str().unwrap(), "--cache-dir", &cache])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--weights cannot be used with --data")
            && stderr.contains("mine.safetensors's labels (blue, red) do not match the class folders: green matches none of them"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    // The plan creates the cache folder; no feature was computed into it.
    let cached = std::fs::read_dir(task.path("other-cache")).map_or(0, |d| d.count());
    assert_eq!(cached, 0, "no features were computed");

    // retrain writes a float network: int8 needs the activation quantization it lacks.
    let out = cli()
        .args([
            "sweep",
            "--no-timing",
            "--weights",
            &weights,
            "--precision",
            "f32,int8",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--precision cannot be used with --weights")
            && stderr.contains("no activation quantization"),
        "{stderr}"
    );

    // A file that is not weights: a runtime failure naming it (exit 1, as bench), nothing written.
    let bogus = task.path("bogus.safetensors");
    std::fs::write(&bogus, b"not weights").unwrap();
    let json = task.text("sweep.json");
    let out = cli()
        .args([
            "sweep",
            "--no-timing",
            "--weights",
            bogus.to_str().unwrap(),
            "--output",
            &json,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("bogus.safetensors"), "{stderr}");
    assert!(!task.path("sweep.json").exists());

    // The same file twice.
    let out = cli()
        .args([
            "sweep",
            "--no-timing",
            "--weights",
            &weights,
            "--weights",
            &weights,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("duplicate value"));
}

#[test]
fn a_file_with_activation_quantization_gets_a_row_per_precision() {
    // The shipped uint8 file, given as a file: its own quantization runs the int8 row.
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("presets/weights/mobilenet_v1_0.25_128.safetensors");
    let v = json_of(&[
        "sweep",
        "--alphas",
        "0.5",
        "--resolutions",
        "160",
        "--precision",
        "f32,int8",
        "--mock-timer",
        "--runs",
        "2",
        "--weights",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{v}");
    let files: Vec<&Value> = rows.iter().filter(|r| r.get("weights").is_some()).collect();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["precision"], "f32");
    assert_eq!(files[1]["precision"], "int8");
    for row in files {
        assert_eq!(
            (&row["alpha"], &row["resolution"], &row["classes"]),
            (&Value::from(0.25), &Value::from(128), &Value::from(1001))
        );
        assert!(row["latency_ms"]["median"].as_f64().unwrap() > 0.0);
    }
}

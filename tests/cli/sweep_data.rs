//! `sweep --data` end to end on a generated separable task (solid colours, one per class): every
//! shipped pretrained backbone gets a head retrained on one split, and its measured test accuracy
//! with the interval is the row's top-1 (JSON provenance `measured`, schema-valid); `--resolutions`
//! adds off-resolution rows; a second run reads every vector from the cache; bad flags are
//! refused before any work.

use serde_json::Value;

use crate::common::*;

/// The shipped pretrained backbones, in the order they ship.
const BACKBONES: [&str; 7] = [
    "0.25_128",
    "0.5_160",
    "0.75_192",
    "0.75_224",
    "1.0_224",
    "v2_1.0_224",
    "v3-small_1.0_224",
];

const COLOURS: [(&str, [u8; 3]); 2] = [("blue", [30, 60, 200]), ("red", [200, 40, 30])];

struct Task {
    dir: tempfile::TempDir,
}

impl Task {
    /// train/ (6 images a class), val/ (2) and test/ (3).
    fn new() -> Task {
        let dir = tempfile::tempdir().unwrap();
        colour_task(&dir.path().join("train"), &COLOURS, 6, 11);
        colour_task(&dir.path().join("val"), &COLOURS, 2, 12);
        colour_task(&dir.path().join("test"), &COLOURS, 3, 13);
        Task { dir }
    }

    fn text(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "sweep",
            "--data",
            &self.text("train"),
            "--validation",
            &self.text("val"),
        ]
        .map(String::from)
        .to_vec();
        args.extend([
            "--test".into(),
            self.text("test"),
            "--cache-dir".into(),
            self.text("cache"),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn json(&self, extra: &[&str]) -> Value {
        let mut args = self.args(extra);
        args.extend(["--format".into(), "json".into()]);
        json_of(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

#[test]
fn every_pretrained_backbone_gets_a_measured_top1() {
    let task = Task::new();
    // --threads sets the feature extraction's threads, timed or not.
    let v = task.json(&["--no-timing", "--threads", "1"]);
    assert_eq!(v["accuracy_source"], "measured");
    assert_eq!(v["families"], serde_json::json!(["v1", "v2", "v3-small"]));
    let data = &v["data"];
    assert_eq!(data["classes"][1]["name"], "red");
    assert_eq!(data["classes"][1]["test"], 3);
    assert_eq!(data["forwarded"], 7 * 22);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    for (row, backbone) in rows.iter().zip(BACKBONES) {
        let top1 = &row["top1"];
        let p = &top1["provenance"];
        assert_eq!(p["type"], "measured", "{row}");
        assert_eq!(p["model"], backbone);
        assert_eq!(p["resolution"], p["trained_resolution"]);
        assert_eq!(p["images"], 6);
        let value = top1["value"].as_f64().unwrap();
        assert_eq!(value, p["correct"].as_f64().unwrap() / 6.0 * 100.0);
        let [low, high] = [0, 1].map(|i| p["interval"][i].as_f64().unwrap());
        assert!(low <= value && value <= high, "{p}");
        // Chance is 50%; the colours are separable.
        assert!(value >= 80.0, "{backbone}: {top1}");
        assert_eq!(row["top5"]["unavailable"]["reason"], "not-measured");
        // The costs are the retrained network's: two classes.
        assert_eq!(row["classes"], 2);
    }

    // A second run: every vector from the cache, the same figures.
    let again = task.json(&["--no-timing"]);
    assert_eq!(again["data"]["forwarded"], 0);
    assert_eq!(again["data"]["cache_hits"], 7 * 22);
    for (a, b) in rows.iter().zip(again["rows"].as_array().unwrap()) {
        assert_eq!(a["top1"], b["top1"]);
    }
}

#[test]
fn other_resolutions_are_measured_and_marked_off_their_trained_one() {
    let task = Task::new();
    let plot = task.text("plot.svg");
    let args = task.args(&[
        "--no-timing",
        "--resolutions",
        "96",
        "--plot",
        &plot,
        "--seed",
        "3",
    ]);
    let out = cli().args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("accuracy from heads retrained and tested on your data"),
        "{table}"
    );
    assert!(
        table.contains("~ off the backbone's trained resolution (the pretrained weights run at another input size): 0.25_128 at 96, 0.5_160 at 96,"),
        "{table}"
    );
    assert!(
        table.contains("6 test images, the same split for every row"),
        "{table}"
    );
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("top-1 from heads retrained and tested on your data"));

    let v = task.json(&["--no-timing", "--resolutions", "96", "--seed", "3"]);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 14);
    let off: Vec<&Value> = rows
        .iter()
        .filter(|r| r["top1"]["provenance"]["trained_resolution"] != r["resolution"])
        .collect();
    assert_eq!(off.len(), 7);
    assert!(off.iter().all(|r| r["resolution"] == 96));
    assert_eq!(v["data"]["head"]["seed"], 3);
}

#[test]
fn data_flags_are_checked_before_any_work() {
    let task = Task::new();
    let refused = |args: &[&str], expected: &str| {
        let out = cli().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    let train = task.text("train");
    refused(&["sweep", "--data", &train, "--families", "v2"], "--families");
    refused(&["sweep", "--data", &train, "--alphas", "0.5"], "--alphas");
    refused(
        &["sweep", "--data", &train, "--accuracy-source", "paper"],
        "--accuracy-source",
    );
    refused(&["sweep", "--test", &train], "--data");
    refused(&["sweep", "--data", &task.text("nowhere")], "--data");
    refused(
        &["sweep", "--data", &train, "--test-percent", "0"],
        "--test-percent",
    );
    refused(
        &["sweep", "--data", &train, "--test", &train],
        "--test cannot be used with DIR",
    );
    assert!(!task.dir.path().join("cache").exists());
}

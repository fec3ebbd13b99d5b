//! `retrain` end to end on generated images (solid colours with noise and a stripe, one colour
//! per class, written by the test): the pipeline (labels in the written file, classify and
//! evaluate with them, bench on it, cache hits on a second run, the same bytes under one seed,
//! accuracy far above chance on a separable task) and bad input (one class, an empty class,
//! unreadable images, labels that do not match evaluate's folders, paths that cannot be used,
//! refused before any work).

use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use serde_json::Value;

use crate::common::*;

const COLOURS: [(&str, [u8; 3]); 3] = [
    ("blue", [30, 60, 200]),
    ("green", [40, 170, 60]),
    ("red", [200, 40, 30]),
];

/// A task: `train/` (8 images a class), `val/` and `test/` (3 a class), and a cache folder.
struct Task {
    dir: tempfile::TempDir,
}

impl Task {
    fn new() -> Task {
        let dir = tempfile::tempdir().unwrap();
        colour_task(&dir.path().join("train"), &COLOURS, 8, 1);
        colour_task(&dir.path().join("val"), &COLOURS, 3, 2);
        colour_task(&dir.path().join("test"), &COLOURS, 3, 3);
        Task { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn text(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// `retrain` on train/ with the given folders, the small model, this task's cache, JSON.
    fn args(&self, output: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "retrain",
            &self.text("train"),
            "--validation",
            &self.text("val"),
            "--test",
            &self.text("test"),
            "--model",
            "0.25_128",
            "--cache-dir",
            &self.text("cache"),
            "--output",
            &self.text(output),
            "--format",
            "json",
            "--quiet",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn run(&self, output: &str, extra: &[&str]) -> Value {
        let args = self.args(output, extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        json_of(&refs)
    }
}

fn metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    header.metadata().clone().unwrap()
}

#[test]
fn a_separable_task_is_learnt_and_the_network_carries_its_labels() {
    let task = Task::new();
    let report = task.run("mine.safetensors", &[]);
    assert_eq!(report["schema_version"], 1);
    let classes: Vec<&str> = report["data"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["blue", "green", "red"]);
    assert_eq!(report["data"]["classes"][0]["train"], 8);
    assert_eq!(report["data"]["classes"][0]["validation"], 3);
    assert_eq!(report["data"]["classes"][0]["test"], 3);
    assert_eq!(report["feature"]["layer"], "pool");
    assert_eq!(report["feature"]["width"], 256);
    let test = &report["test"];
    assert_eq!(test["images"], 9);
    // Chance is 1/3; colours are separable.
    assert!(test["accuracy"].as_f64().unwrap() >= 0.99, "{test}");
    assert!(test["interval"]["low"].as_f64().unwrap() > 0.6, "{test}");
    assert_eq!(
        test["confusion"],
        serde_json::json!([[3, 0, 0], [0, 3, 0], [0, 0, 3]])
    );

    // The file: the user's labels, three classes, the backbone as shipped.
    let out = task.path("mine.safetensors");
    let meta = metadata(&out);
    assert_eq!(meta["labels"], r#"["blue","green","red"]"#);
    assert_eq!(
        (meta["num_classes"].as_str(), meta["base_model"].as_str()),
        ("3", "0.25_128")
    );
    let bytes = std::fs::read(&out).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(tensors.tensor("logits.weight").unwrap().shape(), [3, 256]);
    assert_eq!(
        tensors.tensor("pw_13.weight").unwrap().dtype(),
        safetensors::Dtype::U8
    );

    // classify prints the labels, and says the layout is the file's own.
    let out_text = out.to_str().unwrap();
    let red = task.path("test/red/red_00.png");
    let records = json_of(&[
        "classify",
        red.to_str().unwrap(),
        "--weights",
        out_text,
        "--format",
        "json",
    ]);
    assert_eq!(records[0]["class_layout"], "custom");
    assert_eq!(records[0]["predictions"][0]["label"], "red");
    assert_eq!(records[0]["predictions"].as_array().unwrap().len(), 3);

    // evaluate matches the folders to the labels and agrees with retrain's test score.
    let eval = json_of(&[
        "evaluate",
        &task.text("test"),
        "--weights",
        out_text,
        "--format",
        "json",
    ]);
    assert_eq!(eval["images"], 9);
    assert_eq!(eval["top1_correct"], test["correct"]);
    assert_eq!(eval["classes"][2]["label"], "red");
    assert_eq!(eval["model_classes"], 3);
    // With 3 classes every image is in the top 5: the table says so instead of 100%.
    let table = cli()
        .args(["evaluate", &task.text("test"), "--weights", out_text])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("top-5: - (the model has 3 classes)"), "{table}");
    assert!(!table.contains("top5"), "{table}");

    // bench times it.
    let bench = json_of(&[
        "bench",
        "--weights",
        out_text,
        "--runs",
        "1",
        "--warmup",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(bench["model"]["classes"], 3);
}

#[test]
fn a_second_run_hits_the_cache_and_one_seed_gives_one_file() {
    let task = Task::new();
    let first = task.run("a.safetensors", &["--seed", "5"]);
    let images = 3 * (8 + 3 + 3);
    assert_eq!(first["features"]["cache_misses"], images);
    assert_eq!(first["features"]["forwarded"], images);
    assert_eq!(first["features"]["cache_writes"], images);
    let second = task.run("b.safetensors", &["--seed", "5"]);
    assert_eq!(second["features"]["cache_hits"], images);
    assert_eq!(
        second["features"]["forwarded"], 0,
        "no forward pass on a warm cache"
    );
    let a = std::fs::read(task.path("a.safetensors")).unwrap();
    assert_eq!(
        a,
        std::fs::read(task.path("b.safetensors")).unwrap(),
        "same seed, same bytes"
    );
    task.run("c.safetensors", &["--seed", "6"]);
    assert_ne!(
        a,
        std::fs::read(task.path("c.safetensors")).unwrap(),
        "another seed, another head"
    );

    // A damaged entry is not trusted: recomputed and rewritten.
    let dir = PathBuf::from(second["cache_dir"].as_str().unwrap());
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .and_then(|d| std::fs::read_dir(d).unwrap().next())
        .unwrap()
        .unwrap()
        .path();
    let good = std::fs::read(&entry).unwrap();
    std::fs::write(&entry, &good[..good.len() / 2]).unwrap();
    let third = task.run("d.safetensors", &["--seed", "5"]);
    assert_eq!(third["features"]["cache_invalid"], 1);
    assert_eq!(third["features"]["forwarded"], 1);
    assert_eq!(
        std::fs::read(&entry).unwrap().len(),
        good.len(),
        "rewritten whole"
    );
    let mut uncached = task.args("e.safetensors", &["--seed", "5", "--no-cache"]);
    let at = uncached.iter().position(|a| a == "--cache-dir").unwrap();
    uncached.drain(at..at + 2);
    let fourth = json_of(&uncached.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(fourth["cache_dir"], Value::Null);
    assert_eq!(fourth["features"]["forwarded"], images);
}

#[test]
fn augmented_views_are_computed_every_run_and_seeded() {
    let task = Task::new();
    let args = [
        "--augment",
        "--augment-copies",
        "2",
        "--epochs",
        "5",
        "--seed",
        "1",
    ];
    let first = task.run("a.safetensors", &args);
    let train_images = 3 * 8;
    assert_eq!(first["augment"], 2);
    assert_eq!(first["augmentation"]["forwarded"], 2 * train_images);
    assert_eq!(first["training"]["vectors"], 3 * train_images);
    let second = task.run("b.safetensors", &args);
    assert_eq!(second["features"]["forwarded"], 0, "the plain views are cached");
    assert_eq!(
        second["augmentation"]["forwarded"],
        2 * train_images,
        "the augmented ones never"
    );
    assert_eq!(
        std::fs::read(task.path("a.safetensors")).unwrap(),
        std::fs::read(task.path("b.safetensors")).unwrap()
    );
}

#[test]
fn a_hash_split_holds_out_a_share_and_the_table_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    colour_task(&dir.path().join("data"), &COLOURS[..2], 20, 4);
    let out = dir.path().join("m.safetensors");
    let cache = dir.path().join("cache");
    let run = cli()
        .args([
            "retrain",
            dir.path().join("data").to_str().unwrap(),
            "--model",
            "0.25_128",
        ])
        .args([
            "--validation-percent",
            "20",
            "--test-percent",
            "20",
            "--epochs",
            "20",
        ])
        .args([
            "--cache-dir",
            cache.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let table = String::from_utf8(run.stdout).unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        table.contains("test accuracy: ") && table.contains("95% interval"),
        "{table}"
    );
    assert!(
        table.contains("features: 256 values of pool (the global average pool of pw_13)"),
        "{table}"
    );
    assert!(
        table.contains("split: validation 20% of DIR, test 20% of DIR"),
        "{table}"
    );
    assert!(table.contains("Confusion matrix on the test images"), "{table}");
    // Every image is in one split, and each split has some.
    let json = json_of(&[
        "retrain",
        dir.path().join("data").to_str().unwrap(),
        "--model",
        "0.25_128",
        "--validation-percent",
        "20",
        "--test-percent",
        "20",
        "--epochs",
        "20",
        "--cache-dir",
        cache.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    for class in json["data"]["classes"].as_array().unwrap() {
        let (t, v, s) = (
            class["train"].as_u64().unwrap(),
            class["validation"].as_u64().unwrap(),
            class["test"].as_u64().unwrap(),
        );
        assert_eq!(t + v + s, 20);
        assert!(t > v && t > s && v > 0 && s > 0, "{class}");
    }
    let csv = cli()
        .args([
            "retrain",
            dir.path().join("data").to_str().unwrap(),
            "--model",
            "0.25_128",
            "--epochs",
            "3",
        ])
        .args([
            "--cache-dir",
            cache.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(
        csv.starts_with("epoch,train_loss,validation_loss,validation_accuracy\n1,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4);
}

/// The stderr of a run that must fail with `code` (and write no output file).
fn failure(args: &[&str], code: i32) -> String {
    let out = cli().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn folders_that_cannot_be_retrained_on_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let out = dir.path().join("m.safetensors");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "retrain",
            root.to_str().unwrap(),
            "--model",
            "0.25_128",
            "--no-cache",
            "-o",
        ]
        .map(String::from)
        .to_vec();
        a.push(out.to_str().unwrap().into());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&str], code| {
        let a = args(extra);
        failure(&a.iter().map(String::as_str).collect::<Vec<_>>(), code)
    };
    colour_task(&root, &COLOURS[..1], 5, 5);
    let e = run(&[], 1);
    assert!(
        e.contains("only one class folder ('blue'); retraining needs at least 2 classes"),
        "{e}"
    );
    std::fs::create_dir(root.join("empty")).unwrap();
    let e = run(&[], 1);
    assert!(e.contains("class folder without images: empty"), "{e}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn unreadable_images_are_listed_and_left_out() {
    let task = Task::new();
    std::fs::write(task.path("train/red/broken.jpg"), b"not a jpeg").unwrap();
    std::fs::write(task.path("train/red/empty.png"), b"").unwrap();
    let args = task.args("m.safetensors", &[]);
    let out = cli().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "some inputs failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.jpg: ") && stderr.contains("empty.png: empty file"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["data"]["failed"].as_array().unwrap().len(), 2);
    assert_eq!(report["data"]["classes"][2]["train"], 8, "the others are used");
    assert!(task.path("m.safetensors").exists());
}

#[test]
fn evaluate_refuses_folders_that_are_not_the_labels() {
    let task = Task::new();
    task.run("m.safetensors", &["--epochs", "2"]);
    let other = task.path("other");
    colour_task(
        &other,
        &[("purple", [120, 30, 160]), ("red", [200, 40, 30])],
        2,
        9,
    );
    let e = failure(
        &[
            "evaluate",
            other.to_str().unwrap(),
            "--weights",
            &task.text("m.safetensors"),
        ],
        1,
    );
    assert!(
        e.contains("purple: folder name matches none of the model's labels (blue, green, red)"),
        "{e}"
    );
    // The ImageNet models still match ImageNet names only.
    let e = failure(
        &["evaluate", task.text("test").as_str(), "--model", "0.25_128"],
        1,
    );
    assert!(e.contains("folder name matches no ImageNet class"), "{e}");
}

#[test]
fn paths_and_settings_are_checked_before_any_work() {
    let task = Task::new();
    let cache = task.path("cache");
    let mut bad_output = task.args("no/such/dir/m.safetensors", &[]);
    bad_output.retain(|a| a != "--quiet");
    let refs: Vec<&str> = bad_output.iter().map(String::as_str).collect();
    let e = failure(&refs, 2);
    assert!(
        e.starts_with("error: --output ") && e.contains("does not exist"),
        "{e}"
    );
    assert!(!cache.exists(), "refused before the cache was made");

    let train = task.text("train");
    let base = [
        "retrain",
        train.as_str(),
        "--model",
        "0.25_128",
        "--no-cache",
        "-o",
    ];
    let out = task.text("m.safetensors");
    let check = |extra: &[&str], expected: &str| {
        let mut args: Vec<&str> = base.to_vec();
        args.push(&out);
        args.extend(extra);
        let e = failure(&args, 2);
        assert!(e.contains(expected), "{extra:?}: {e}");
    };
    check(&["--test", &train], "--test cannot be used with DIR");
    check(&["--validation", &task.text("nowhere")], "--validation");
    check(
        &["--validation-percent", "60", "--test-percent", "50"],
        "leaves no image of DIR for training",
    );
    check(&["--test-percent", "100"], "--test-percent");
    check(&["--learning-rate", "0"], "--learning-rate");
    check(&["--label-smoothing", "1"], "--label-smoothing");
    check(&["--report", &out], "each needs its own file");
    check(&["--family", "v2"], "--family needs --weights");
    assert!(!task.path("m.safetensors").exists());
    // Flags that would be ignored are refused by the parser.
    let mut args: Vec<&str> = base.to_vec();
    args.extend([out.as_str(), "--test", &train, "--test-percent", "5"]);
    let e = failure(&args, 2);
    assert!(e.contains("--test-percent"), "{e}");
}

#[test]
fn features_out_holds_every_images_vector_class_and_split() {
    let task = Task::new();
    let feats = task.path("feats.safetensors");
    let report = task.run("m.safetensors", &["--features-out", feats.to_str().unwrap()]);
    assert_eq!(report["features_out"], feats.to_str().unwrap());
    let bytes = std::fs::read(&feats).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let n = 3 * (8 + 3 + 3);
    let features = tensors.tensor("features").unwrap();
    assert_eq!(
        (features.dtype(), features.shape()),
        (safetensors::Dtype::F32, &[n, 256][..])
    );
    let labels: Vec<i64> = tensors
        .tensor("labels")
        .unwrap()
        .data()
        .chunks(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let split = tensors.tensor("split").unwrap().data().to_vec();
    // Rows follow the dataset: DIR's images (all training here), then validation, then test.
    let meta = metadata(&feats);
    let paths: Vec<String> = serde_json::from_str(&meta["paths"]).unwrap();
    assert_eq!(meta["classes"], r#"["blue","green","red"]"#);
    assert_eq!(meta["base_model"], "0.25_128");
    for (i, path) in paths.iter().enumerate() {
        let (expected_split, within) = if path.contains("/train/") {
            (0, "/train/")
        } else if path.contains("/val/") {
            (1, "/val/")
        } else {
            (2, "/test/")
        };
        assert_eq!(split[i], expected_split, "{path}");
        let class = path.split(within).nth(1).unwrap().split('/').next().unwrap();
        assert_eq!(COLOURS[labels[i] as usize].0, class, "{path}");
    }
    assert_eq!(paths.len(), n);
    assert_eq!(split.iter().filter(|&&s| s == 2).count(), 9);

    // Its path is checked before any work, like the others.
    let bad = task.text("no/such/dir/feats.safetensors");
    let mut args = task.args("n.safetensors", &["--features-out", &bad]);
    args.retain(|a| a != "--quiet");
    let e = failure(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(e.starts_with("error: --features-out "), "{e}");
    assert!(!task.path("n.safetensors").exists());
    let same = task.text("m.safetensors");
    let args = task.args("m.safetensors", &["--features-out", &same]);
    let e = failure(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    assert!(e.contains("each needs its own file"), "{e}");
}

/// Each image's split in a features file, by path relative to `root`.
fn splits_of(features: &Path, root: &Path) -> std::collections::BTreeMap<String, u8> {
    let bytes = std::fs::read(features).unwrap();
    let split = SafeTensors::deserialize(&bytes)
        .unwrap()
        .tensor("split")
        .unwrap()
        .data()
        .to_vec();
    let paths: Vec<String> = serde_json::from_str(&metadata(features)["paths"]).unwrap();
    let root = root.to_str().unwrap();
    paths
        .into_iter()
        .map(|p| p.strip_prefix(root).unwrap().to_string())
        .zip(split)
        .collect()
}

#[test]
fn adding_images_moves_no_image_to_another_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    colour_task(&data, &COLOURS[..2], 20, 4);
    let run = |features: &str| {
        let features = dir.path().join(features);
        json_of(&[
            "retrain",
            data.to_str().unwrap(),
            "--model",
            "0.25_128",
            "--validation-percent",
            "20",
            "--test-percent",
            "20",
            "--epochs",
            "2",
            "--cache-dir",
            dir.path().join("cache").to_str().unwrap(),
            "-o",
            dir.path().join("m.safetensors").to_str().unwrap(),
            "--features-out",
            features.to_str().unwrap(),
            "--format",
            "json",
        ]);
        splits_of(&features, &data)
    };
    let before = run("a.safetensors");
    assert_eq!(before.len(), 40);
    assert!((0..3).all(|s| before.values().any(|&v| v == s)), "{before:?}");
    // More images in both classes (other names), and a third class.
    colour_task(&dir.path().join("more"), &COLOURS, 15, 8);
    for entry in walk(&dir.path().join("more")) {
        let rel = entry.strip_prefix(dir.path().join("more")).unwrap();
        let to = data
            .join(rel.parent().unwrap())
            .join(format!("new_{}", rel.file_name().unwrap().to_str().unwrap()));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::rename(&entry, to).unwrap();
    }
    let after = run("b.safetensors");
    assert_eq!(after.len(), 40 + 45);
    for (path, split) in &before {
        assert_eq!(after[path], *split, "{path} moved");
    }
}

/// The files under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_table_shows_a_compact_curve_and_json_and_csv_every_epoch() {
    let task = Task::new();
    let extra = ["--epochs", "30", "--patience", "30"];
    let json = task.run("m.safetensors", &extra);
    let epochs = json["training"]["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 30, "patience 30 never stops 30 epochs early");
    let kept = json["training"]["best_epoch"].as_u64().unwrap();

    let args = task.args("m.safetensors", &extra);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let format = args.iter().position(|a| *a == "--format").unwrap();
    args.drain(format..format + 2);
    let table = String::from_utf8(cli().args(&args).output().unwrap().stdout).unwrap();
    assert!(
        table.contains(
            "30 epochs ran; shown: the first 3, every 5th, the kept one and the last (--format json and csv hold every epoch)"
        ),
        "{table}"
    );
    // The epoch column of the curve, up to the next heading.
    let curve = table.split("Training (per epoch)").nth(1).unwrap();
    let curve = curve.split("\n\n").next().unwrap();
    let shown: Vec<String> = curve
        .lines()
        .filter_map(|l| l.strip_prefix('│')?.split('┆').next())
        .map(|cell| cell.trim().to_string())
        .filter(|cell| cell != "epoch")
        .collect();
    let mut expected: Vec<u64> = vec![1, 2, 3, 5, 10, 15, 20, 25, 30, kept];
    expected.sort_unstable();
    expected.dedup();
    let expected: Vec<String> = expected
        .iter()
        .map(|e| {
            if *e == kept {
                format!("{e} (kept)")
            } else {
                e.to_string()
            }
        })
        .collect();
    assert_eq!(shown, expected, "{table}");

    args.extend(["--format", "csv"]);
    let csv = String::from_utf8(cli().args(&args).output().unwrap().stdout).unwrap();
    assert_eq!(csv.lines().count(), 31, "a header and every epoch: {csv}");
}

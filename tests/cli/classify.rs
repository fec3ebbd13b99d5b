//! `classify` and `evaluate` through the real binary: labels, formats, exit codes and bad input.

use crate::common::*;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use mobilenet_cli::arch::{Config, Family, Variant};
use mobilenet_cli::nn::{MobileNet, ModelId, squeeze_excite_shapes, weight_shape};
use predicates::prelude::*;
use serde_json::Value;

/// A PNG whose header claims `w` x `h` pixels, with no pixel data behind it.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut crc_input = b"IHDR".to_vec();
    crc_input.extend_from_slice(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&crc_input);
    png.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn grace_hopper_is_a_military_uniform() {
    cli()
        .arg("classify")
        .arg(photo("grace_hopper.jpg"))
        .assert()
        .success()
        .stdout(predicate::str::contains("military uniform"))
        .stderr("");
}

#[test]
fn json_contract_and_every_shipped_model() {
    for model in ModelId::ALL.map(ModelId::name) {
        let out = cli()
            .args(["classify", "--model", model, "--format", "json", "--top", "3"])
            .arg(photo("chelsea.png"))
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let first = &v.as_array().unwrap()[0];
        assert_eq!(first["model"], model);
        assert!(first["image"].as_str().unwrap().ends_with("chelsea.png"));
        let predictions = first["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), 3);
        for (i, p) in predictions.iter().enumerate() {
            assert_eq!(p["rank"], i + 1);
            assert!(p["class_index"].is_u64() && p["label"].is_string() && p["probability"].is_f64());
        }
        assert_eq!(predictions[0]["label"], "Egyptian cat", "{model}");
    }
}

#[test]
fn both_engines_give_the_same_labels() {
    for engine in ["fast", "reference"] {
        cli()
            .args(["classify", "--engine", engine, "--format", "csv"])
            .arg(photo("hot_dog.jpg"))
            .assert()
            .success()
            .stdout(predicate::str::starts_with(
                "image,model,rank,class_index,label,probability",
            ))
            .stdout(predicate::str::contains("hotdog, hot dog, red hot"));
    }
}

#[test]
fn directories_batches_and_partial_failures() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(photo("chelsea.png"), dir.path().join("a.png")).unwrap();
    std::fs::copy(photo("grace_hopper.jpg"), dir.path().join("b.jpg")).unwrap();
    std::fs::write(dir.path().join("c.jpg"), "this is text, not a JPEG").unwrap();
    std::fs::write(dir.path().join("d.png"), b"").unwrap();
    std::fs::write(
        dir.path().join("e.png"),
        &std::fs::read(photo("chelsea.png")).unwrap()[..500],
    )
    .unwrap();
    std::fs::write(dir.path().join("f.png"), png_header(60_000, 60_000)).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "skipped: not an image extension").unwrap();
    let out = cli()
        .args(["classify", "--batch", "2", "--format", "json"])
        .arg(dir.path())
        .arg(dir.path().join("missing.jpg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "some images failed");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["predictions"][0]["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Egyptian cat", "military uniform"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"));
    for name in ["c.jpg", "d.png", "e.png", "f.png", "missing.jpg"] {
        let line = stderr
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name}: {stderr}"));
        assert!(line.starts_with("error: "), "{line}");
    }
    assert_eq!(stderr.lines().count(), 5, "{stderr}");
}

#[test]
fn nothing_classified_is_a_failure_without_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.json");
    let out = cli()
        .arg("classify")
        .arg(dir.path().join("missing.jpg"))
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!output.exists());
    let empty = tempfile::tempdir().unwrap();
    cli()
        .arg("classify")
        .arg(empty.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("has no images"));
}

#[test]
fn other_resolutions_are_noted() {
    cli()
        .args(["classify", "--res", "160"])
        .arg(photo("grace_hopper.jpg"))
        .assert()
        .success()
        .stderr(predicate::str::contains("off its trained resolution"));
}

#[test]
fn bad_flags_and_weights() {
    let photo = photo("chelsea.png");
    for (args, code) in [
        (vec!["--model", "2.0_300"], 2),
        (vec!["--top", "0"], 2),
        (vec!["--batch", "0"], 2),
        (vec!["--res", "31"], 2),
        (vec!["--engine", "turbo"], 2),
        (vec!["--weights", "/nonexistent/w.safetensors"], 1),
    ] {
        let out = cli().arg("classify").args(&args).arg(&photo).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"));
    }
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    let shipped = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/weights/mobilenet_v1_0.25_128.safetensors"),
    )
    .unwrap();
    std::fs::write(&truncated, &shipped[..shipped.len() / 2]).unwrap();
    cli()
        .arg("classify")
        .arg("--weights")
        .arg(&truncated)
        .arg(&photo)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("truncated.safetensors"));
    // The shipped file loaded as user weights works and gives the shipped answer.
    let copy = dir.path().join("mine.safetensors");
    std::fs::write(&copy, &shipped).unwrap();
    cli()
        .arg("classify")
        .arg("--weights")
        .arg(&copy)
        .arg(&photo)
        .assert()
        .success()
        .stdout(predicate::str::contains("mine"));
}

#[test]
fn evaluate_a_labelled_folder() {
    let dir = tempfile::tempdir().unwrap();
    for (folder, file) in [
        ("military uniform", "grace_hopper.jpg"),
        ("Egyptian cat", "chelsea.png"),
    ] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        std::fs::copy(photo(file), dir.path().join(folder).join(file)).unwrap();
    }
    let out = cli()
        .args(["evaluate", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["images"].as_u64(), v["top1_correct"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(v["top1_accuracy"], 1.0);
    cli()
        .arg("evaluate")
        .arg(dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains("top-1: 100.00% (2 of 2)"));
    cli()
        .arg("evaluate")
        .arg(dir.path().join("absent"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("absent"));
}

#[test]
fn broken_pipe_is_not_an_error() {
    // `| head -1`: the reader goes away; the tool exits quietly.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mobilenet-cli"))
        .args(["analyze", "--res", "1024", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn every_pixel_format_is_handled() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/odd");
    let out = cli()
        .args(["classify", "--top", "1", "--format", "json"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v.as_array().unwrap();
    assert_eq!(results.len(), 8);
    for r in results {
        let image = r["image"].as_str().unwrap();
        let label = r["predictions"][0]["label"].as_str().unwrap();
        // CMYK and grayscale JPEG, 8- and 16-bit grayscale PNG, RGBA PNG, BMP, WebP.
        if image.contains("cat_") {
            assert_eq!(label, "Egyptian cat", "{image}");
        }
    }
}

#[cfg(unix)]
#[test]
fn symlink_loops_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jpg"), dir.path().join("b.jpg"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let out = cli()
        .arg("classify")
        .arg(&a)
        .arg(photo("chelsea.png"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: ") && stderr.contains("a.jpg"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn classify_runs_the_shipped_v2_on_the_reference_engine() {
    let out = cli()
        .args([
            "classify",
            "--model",
            "v2_1.0_224",
            "--engine",
            "reference",
            "--top",
            "1",
        ])
        .arg(photo("grace_hopper.jpg"))
        .arg(photo("chelsea.png"))
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("(v2_1.0_224)"), "{text}");
    assert!(text.contains("military uniform"), "{text}");
    assert!(text.contains("Egyptian cat"), "{text}");
}

#[test]
fn classify_v2_weights_file_with_family_flag() {
    let weights = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("presets/weights/mobilenet_v2_1.0_224.safetensors");
    let out = cli()
        .args([
            "classify",
            "--engine",
            "reference",
            "--family",
            "v2",
            "--top",
            "1",
            "--weights",
        ])
        .arg(&weights)
        .arg(photo("chelsea.png"))
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("Egyptian cat"), "{text}");
}

#[test]
fn the_shipped_v2_runs_on_the_fast_engine() {
    cli()
        .args(["classify", "--model", "v2_1.0_224", "--format", "csv"])
        .arg(photo("grace_hopper.jpg"))
        .assert()
        .success()
        .stdout(predicates::str::contains("v2_1.0_224,1,653,military uniform"));
}

#[test]
fn the_shipped_v3_small_runs_on_both_engines() {
    for (engine, spelling) in [
        ("fast", "v3-small_1.0_224"),
        ("reference", "mobilenet_v3_small_1.0_224"),
    ] {
        cli()
            .args([
                "classify", "--model", spelling, "--engine", engine, "--format", "csv",
            ])
            .arg(photo("grace_hopper.jpg"))
            .assert()
            .success()
            .stdout(predicates::str::contains(
                "v3-small_1.0_224,1,653,military uniform",
            ));
    }
}

#[test]
fn family_without_weights_is_refused_in_one_line_naming_what_ships() {
    for (family, says) in [
        ("v3-large", "--model, and no MobileNetV3-Large weights ship"),
        ("v3-small", "--model (v3-small: v3-small_1.0_224)"),
        (
            "v1",
            "--model (v1: 0.25_128, 0.5_160, 0.75_192, 0.75_224, 1.0_224)",
        ),
    ] {
        let out = cli()
            .args(["classify", "--family", family])
            .arg(photo("grace_hopper.jpg"))
            .assert()
            .code(2);
        let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: --family needs --weights FILE") && err.contains(says),
            "{err}"
        );
    }
}

/// A random MobileNetV3 with 10 classes, saved in the documented tensor naming (SE as
/// NAME.reduce.* / NAME.expand.*, conv_head with a bias), as `--weights` reads it.
fn random_v3_weights(path: &Path, family: Family, minimalistic: bool) {
    let dev = Device::Cpu;
    let config = Config::build(family, 1.0, 224, 1, 10, Variant::Standard, minimalistic).unwrap();
    let net = MobileNet::random(config, 9, &dev).unwrap();
    let folded = net.folded_weights().unwrap();
    let se = net.squeeze_excite_weights().unwrap();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, values: Vec<f32>, shape: &[usize]| {
        tensors.insert(name, Tensor::from_vec(values, shape, &dev).unwrap());
    };
    for (i, layer) in net.layers().iter().enumerate() {
        let name = &layer.name;
        if let Some((reduce, expand)) = squeeze_excite_shapes(layer) {
            let w = se[i].clone().unwrap();
            put(format!("{name}.reduce.weight"), w.reduce_weight, &reduce);
            put(format!("{name}.reduce.bias"), w.reduce_bias, &[reduce[0]]);
            put(format!("{name}.expand.weight"), w.expand_weight, &expand);
            put(format!("{name}.expand.bias"), w.expand_bias, &[expand[0]]);
        } else if let Some(shape) = weight_shape(layer) {
            let (weight, bias) = folded[i].clone();
            let n = bias.len();
            put(format!("{name}.weight"), weight, &shape);
            put(format!("{name}.bias"), bias, &[n]);
        }
    }
    candle_core::safetensors::save(&tensors, path).unwrap();
}

/// Class index -> probability from `classify --format json` for one image.
fn probabilities(args: &[&str], weights: &Path) -> HashMap<u64, f64> {
    let out = cli()
        .args([
            "classify",
            "--format",
            "json",
            "--top",
            "10",
            "--res",
            "131",
            "--weights",
        ])
        .arg(weights)
        .args(args)
        .arg(photo("chelsea.png"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["class_index"].as_u64().unwrap(),
                p["probability"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn v3_weights_files_run_on_both_engines_and_agree() {
    let dir = tempfile::tempdir().unwrap();
    for (family, minimalistic) in [(Family::V3Large, false), (Family::V3Small, true)] {
        let path = dir
            .path()
            .join(format!("{}-{minimalistic}.safetensors", family.name()));
        random_v3_weights(&path, family, minimalistic);
        // The default engine is the fast one.
        let fast = probabilities(&[], &path);
        let reference = probabilities(&["--engine", "reference"], &path);
        assert_eq!(fast.len(), 10, "{family}");
        for (class, p) in &reference {
            let diff = (fast[class] - p).abs();
            assert!(
                diff <= 1e-4,
                "{family} class {class}: fast {} vs reference {p}",
                fast[class]
            );
        }
    }
}

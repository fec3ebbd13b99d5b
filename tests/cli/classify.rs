//! `classify` and `evaluate` through the real binary: labels, formats, exit codes and bad input.

use crate::common::*;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use mobilenet_cli::arch::{Config, Family, Variant};
use mobilenet_cli::nn::{MobileNet, ModelId, names};
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
                "image,model,precision,resolution,crop,status,rank,class_index,imagenet_index,label,probability,error\n",
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
    // One record per image, in order: classified ones with predictions, failed ones with the
    // reason (which the record's "image" names, so the reason does not).
    let records: Vec<(&str, &str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let image = r["image"].as_str().unwrap();
            let name = &image[image.rfind('/').unwrap() + 1..];
            match r["status"].as_str().unwrap() {
                "ok" => (name, "ok", r["predictions"][0]["label"].as_str().unwrap()),
                status => (name, status, r["error"].as_str().unwrap()),
            }
        })
        .collect();
    let names: Vec<&str> = records.iter().map(|r| r.0).collect();
    assert_eq!(
        names,
        [
            "a.png",
            "b.jpg",
            "c.jpg",
            "d.png",
            "e.png",
            "f.png",
            "missing.jpg"
        ]
    );
    assert_eq!(records[0], ("a.png", "ok", "Egyptian cat"));
    assert_eq!(records[1], ("b.jpg", "ok", "military uniform"));
    assert_eq!(records[3], ("d.png", "failed", "empty file"));
    assert!(records[4].2.starts_with("truncated image ("), "{records:?}");
    for (name, status, error) in &records[2..] {
        assert_eq!(*status, "failed", "{name}");
        assert!(!error.contains(name), "{name}: {error}");
    }
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

/// Runs `command` (classify or evaluate) with `args` on `paths`: (exit code, stdout, stderr).
fn run(command: &str, args: &[&str], paths: &[&Path]) -> (Option<i32>, String, String) {
    let out = cli().arg(command).args(args).args(paths).output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn classify(args: &[&str], inputs: &[&Path]) -> (Option<i32>, String, String) {
    run("classify", args, inputs)
}

#[test]
fn truncated_jpegs_are_errors_and_the_others_are_still_classified() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = std::fs::read(photo("grace_hopper.jpg")).unwrap();
    for (name, length) in [
        ("third.jpg", jpeg.len() / 3),
        ("head.jpg", 700),
        ("no_eoi.jpg", jpeg.len() - 2),
    ] {
        let cut = dir.path().join(name);
        std::fs::write(&cut, &jpeg[..length]).unwrap();
        let (code, stdout, stderr) = classify(&["--top", "1"], &[&cut, &photo("chelsea.png")]);
        assert_eq!(code, Some(3), "{name}: {stdout}{stderr}");
        assert!(stdout.contains("Egyptian cat"), "{name}: {stdout}");
        assert!(
            !stdout.contains(name) || stdout.contains("truncated image"),
            "{name}: {stdout}"
        );
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {}: truncated image (", cut.display())),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn every_error_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.jpg");
    std::fs::write(&zero, b"").unwrap();
    let header = dir.path().join("header.jpg");
    std::fs::write(&header, &std::fs::read(photo("grace_hopper.jpg")).unwrap()[..100]).unwrap();
    let (code, _, stderr) = classify(&[], &[&zero, &header, &photo("chelsea.png")]);
    assert_eq!(code, Some(3));
    assert_eq!(
        stderr,
        format!(
            "error: {}: empty file\nerror: {}: truncated image (I/O errors Not enough bytes, expected 64 but found 3)\n",
            zero.display(),
            header.display()
        )
    );
}

#[test]
fn records_state_the_resolution_and_the_class_layout() {
    let chelsea = photo("chelsea.png");
    let (code, json, stderr) = classify(&["--res", "160", "--top", "2", "--format", "json"], &[&chelsea]);
    assert_eq!(code, Some(0), "{stderr}");
    let v: Value = serde_json::from_str(&json).unwrap();
    let record = &v[0];
    assert_eq!(record["resolution"], 160);
    assert_eq!(record["trained_resolution"], 224);
    assert_eq!(record["class_layout"], "imagenet_1001");
    let best = &record["predictions"][0];
    assert_eq!(
        (best["class_index"].as_u64(), best["imagenet_index"].as_u64()),
        (Some(286), Some(285))
    );
    let (_, table, _) = classify(&["--res", "160", "--top", "1"], &[&chelsea]);
    assert!(
        table.starts_with(&format!("{} (1.0_224 at 160x160, f32)\n", chelsea.display())),
        "{table}"
    );
    let (_, table, _) = classify(&["--top", "1"], &[&chelsea]);
    assert!(
        table.starts_with(&format!("{} (1.0_224, f32)\n", chelsea.display())),
        "{table}"
    );
}

#[test]
fn failed_images_are_records_in_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &std::fs::read(photo("grace_hopper.jpg")).unwrap()[..700]).unwrap();
    let chelsea = photo("chelsea.png");
    let (code, json, _) = classify(&["--top", "1", "--format", "json"], &[&cut, &chelsea]);
    assert_eq!(code, Some(3));
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(
        (v[0]["status"].as_str(), v[1]["status"].as_str()),
        (Some("failed"), Some("ok"))
    );
    assert_eq!(v[0]["image"], cut.to_str().unwrap());
    assert!(
        v[0]["error"].as_str().unwrap().starts_with("truncated image ("),
        "{}",
        v[0]
    );
    assert!(v[0].get("predictions").is_none());

    let (code, csv, _) = classify(&["--top", "1", "--format", "csv"], &[&cut, &chelsea]);
    assert_eq!(code, Some(3));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].starts_with(&format!(
            "{},1.0_224,f32,224,0.875,failed,,,,,,truncated image (",
            cut.display()
        )),
        "{csv}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "{},1.0_224,f32,224,0.875,ok,1,286,285,Egyptian cat,0.9",
            chelsea.display()
        )),
        "{csv}"
    );
    assert!(lines[2].ends_with(','), "no error: {csv}");
    assert!(!csv.contains('%'), "{csv}");
}

/// A folder holding chelsea.png under a name with an ESC sequence and under a name that is not
/// UTF-8, and a cut JPEG whose name has an ESC.
#[cfg(unix)]
fn hostile_names() -> tempfile::TempDir {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let cat = std::fs::read(photo("chelsea.png")).unwrap();
    std::fs::write(dir.path().join("\u{1b}[31mred.png"), &cat).unwrap();
    std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff.png")), &cat).unwrap();
    let jpeg = std::fs::read(photo("grace_hopper.jpg")).unwrap();
    std::fs::write(dir.path().join("\u{1b}[2Jcut.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    dir
}

#[cfg(unix)]
#[test]
fn control_characters_and_invalid_utf8_in_names_are_escaped() {
    let dir = hostile_names();
    let root = dir.path().display().to_string();
    for format in ["table", "markdown"] {
        let out = cli()
            .args(["classify", "--top", "1", "--format", format])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{format}");
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !stream.contains(&0x1b),
                "{format}: {}",
                String::from_utf8_lossy(stream)
            );
        }
        let stdout = String::from_utf8(out.stdout).expect("escaped output is UTF-8");
        assert!(
            stdout.contains(&format!("{root}/\\x1b[31mred.png (1.0_224, f32)")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("{root}/bad\\xff.png (1.0_224, f32)")),
            "{stdout}"
        );
        assert!(!stdout.contains('\u{fffd}'), "no lossy replacement: {stdout}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.starts_with(&format!("error: {root}/\\x1b[2Jcut.jpg: truncated image (")),
            "{stderr}"
        );
    }
    // JSON keeps a UTF-8 name as it is (serde escapes the ESC), and escapes invalid bytes.
    let (_, json, _) = classify(&["--top", "1", "--format", "json"], &[dir.path()]);
    assert!(!json.contains('\u{1b}'), "{json}");
    let v: Value = serde_json::from_str(&json).unwrap();
    let images: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        images,
        [
            format!("{root}/\u{1b}[2Jcut.jpg"),
            format!("{root}/\u{1b}[31mred.png"),
            format!("{root}/bad\\xff.png")
        ]
    );

    // evaluate: the same names inside a class folder.
    let labelled = tempfile::tempdir().unwrap();
    std::fs::rename(dir.path(), labelled.path().join("Egyptian cat")).unwrap();
    let out = cli().arg("evaluate").arg(labelled.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(!out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("/Egyptian cat/\\x1b[2Jcut.jpg: truncated image ("),
        "{stderr}"
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("top-1: 100.00% (2 of 2)")
    );
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

/// A labelled folder: (class folder, photo) pairs copied in; a folder with no photo is created
/// empty.
fn labelled_folder(entries: &[(&str, Option<&str>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (folder, file) in entries {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        if let Some(file) = file {
            std::fs::copy(photo(file), dir.path().join(folder).join(file)).unwrap();
        }
    }
    dir
}

fn evaluate(args: &[&str], dir: &Path) -> (Option<i32>, String, String) {
    run("evaluate", args, &[dir])
}

#[test]
fn evaluate_names_a_path_that_is_no_folder_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = photo("chelsea.png");
    let missing = dir.path().join("absent");
    for (path, reason) in [(&file, "not a directory"), (&missing, "no such directory")] {
        let (code, stdout, stderr) = evaluate(&[], path);
        assert_eq!(code, Some(1));
        assert_eq!(stdout, "");
        assert_eq!(stderr, format!("error: {}: {reason}\n", path.display()));
    }
}

#[test]
fn an_empty_class_folder_is_listed_not_scored() {
    let dir = labelled_folder(&[
        ("military uniform", Some("grace_hopper.jpg")),
        ("Egyptian cat", None),
    ]);
    let (code, stdout, stderr) = evaluate(&["--format", "json"], dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["top1_accuracy"], 1.0);
    assert_eq!(v["empty_classes"], serde_json::json!(["Egyptian cat"]));
    let cat = &v["classes"][0];
    assert_eq!(
        (cat["folder"].as_str(), cat["images"].as_u64()),
        (Some("Egyptian cat"), Some(0))
    );
    assert!(
        cat["top1_accuracy"].is_null() && cat["top5_accuracy"].is_null(),
        "{cat}"
    );
    let (_, table, _) = evaluate(&[], dir.path());
    let row = table.lines().find(|l| l.contains("Egyptian cat ")).unwrap();
    assert!(!row.contains('%') && row.contains(" - "), "{table}");
    assert!(
        table.contains("class folders without images, so not scored: Egyptian cat"),
        "{table}"
    );

    let all_empty = labelled_folder(&[("military uniform", None), ("Egyptian cat", None)]);
    let (code, stdout, stderr) = evaluate(&[], all_empty.path());
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert_eq!(
        stderr,
        format!(
            "error: {}: no images in the class folders\n",
            all_empty.path().display()
        )
    );
}

#[test]
fn images_outside_the_class_folders_are_named_in_a_note() {
    let dir = labelled_folder(&[("military uniform", Some("grace_hopper.jpg"))]);
    let loose = dir.path().join("chelsea.png");
    std::fs::copy(photo("chelsea.png"), &loose).unwrap();
    let (code, table, stderr) = evaluate(&[], dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        table.contains(&format!(
            "not in any class folder, so not evaluated: {}",
            loose.display()
        )),
        "{table}"
    );
    assert!(table.contains("non-image files skipped: 0"), "{table}");
    let (_, json, _) = evaluate(&["--format", "json"], dir.path());
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["unlabelled_images"],
        serde_json::json!([loose.to_str().unwrap()])
    );
    assert_eq!(
        (v["images"].as_u64(), v["skipped_files"].as_u64()),
        (Some(1), Some(0))
    );
}

#[test]
fn appledouble_files_are_skipped_by_evaluate_and_classify() {
    let dir = labelled_folder(&[("military uniform", Some("grace_hopper.jpg"))]);
    let class = dir.path().join("military uniform");
    // What macOS writes beside grace_hopper.jpg on a FAT or SMB volume: metadata, not a JPEG.
    std::fs::write(
        class.join("._grace_hopper.jpg"),
        b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X",
    )
    .unwrap();
    std::fs::write(dir.path().join("._military uniform"), b"\x00\x05\x16\x07").unwrap();
    let (code, stdout, stderr) = evaluate(&["--format", "json"], dir.path());
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["failed"], serde_json::json!([]));
    assert_eq!(
        (v["images"].as_u64(), v["skipped_files"].as_u64()),
        (Some(1), Some(0))
    );
    let (code, stdout, stderr) = classify(&["--top", "1"], &[&class]);
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    assert!(
        stdout.contains("military uniform") && !stdout.contains("._"),
        "{stdout}"
    );
}

#[test]
fn a_failed_image_of_evaluate_is_named_once() {
    let dir = labelled_folder(&[("military uniform", Some("grace_hopper.jpg"))]);
    let broken = dir.path().join("military uniform").join("broken.jpg");
    std::fs::write(
        &broken,
        &std::fs::read(photo("grace_hopper.jpg")).unwrap()[..5000],
    )
    .unwrap();
    let (code, _, stderr) = evaluate(&[], dir.path());
    assert_eq!(code, Some(3));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: {}: truncated image (", broken.display())),
        "{stderr}"
    );
    assert_eq!(stderr.matches("broken.jpg").count(), 1, "{stderr}");
    // With nothing that decodes, there is no accuracy to report.
    std::fs::remove_file(dir.path().join("military uniform").join("grace_hopper.jpg")).unwrap();
    let (code, stdout, stderr) = evaluate(&[], dir.path());
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(
        stderr.starts_with(&format!(
            "error: {}: no image could be decoded (1 failed; the first: {}: truncated image (",
            dir.path().display(),
            broken.display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn evaluate_csv_is_raw() {
    let dir = labelled_folder(&[
        ("military uniform", Some("grace_hopper.jpg")),
        ("Egyptian cat", None),
    ]);
    let (code, csv, stderr) = evaluate(&["--format", "csv"], dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        csv,
        "folder,label,class_index,images,failed,top1_correct,top1_accuracy,top5_correct,top5_accuracy\n\
         Egyptian cat,Egyptian cat,286,0,0,0,,0,\n\
         military uniform,military uniform,653,1,0,1,1,1,1\n"
    );
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
    assert!(text.contains("(v2_1.0_224, f32)"), "{text}");
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
        .stdout(predicates::str::contains(
            "v2_1.0_224,f32,224,0.875,ok,1,653,652,military uniform,0.7",
        ));
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
                "v3-small_1.0_224,f32,224,0.875,ok,1,653,652,military uniform,",
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
    let tensors: HashMap<String, Tensor> = names::folded_tensors(net.layers(), &folded)
        .into_iter()
        .map(|(name, shape, values)| (name, Tensor::from_vec(values, shape, &dev).unwrap()))
        .collect();
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
    assert_eq!(v[0]["class_layout"], "other", "10 classes");
    assert!(v[0]["predictions"][0]["imagenet_index"].is_null());
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

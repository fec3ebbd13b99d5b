//! The plan layer through the binary: conflicting flags refused with one line naming both,
//! thread counts, the memory estimate, output paths checked before work, interruptions, and
//! the conventions users expect (suggestions, completions, man pages, quiet).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// stderr of a run that must fail with `code`, checked to be one line without a panic.
fn one_line_error(args: &[&str], code: i32) -> String {
    let out = cli().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "{args:?} wrote output");
    stderr
}

fn grace() -> String {
    photo("grace_hopper.jpg").to_str().unwrap().to_string()
}

#[test]
fn conflicting_flags_are_refused_naming_both() {
    let g = grace();
    let e = one_line_error(&["classify", "--model", "0.5_160", "--alpha", "0.75", &g], 2);
    assert!(
        e.starts_with("error: --alpha cannot be used with --model 0.5_160"),
        "{e}"
    );
    let e = one_line_error(&["classify", "--family", "v2", &g], 2);
    assert!(e.starts_with("error: --family needs --weights FILE"), "{e}");
    let e = one_line_error(&["bench", "--model", "v2_1.0_224", "--family", "v3-large"], 2);
    assert!(
        e.starts_with("error: --family cannot be used with --model v2_1.0_224"),
        "{e}"
    );
    let e = one_line_error(&["bench", "--model", "0.5_160", "--classes", "10"], 2);
    assert!(e.contains("--classes") && e.contains("--model 0.5_160"), "{e}");
    let e = one_line_error(&["sweep", "--no-timing", "--runs", "5"], 2);
    assert!(
        e.starts_with("error: --runs cannot be used with --no-timing"),
        "{e}"
    );
    let e = one_line_error(&["sweep", "--no-timing", "--threads", "1"], 2);
    assert!(
        e.starts_with("error: --threads cannot be used with --no-timing"),
        "{e}"
    );
    let e = one_line_error(&["analyze", "--family", "v2", "--minimalistic"], 2);
    assert!(
        e.starts_with("error: --minimalistic cannot be used with --family v2"),
        "{e}"
    );
    let e = one_line_error(&["bench", "--runs", "5", "--min-time", "1"], 2);
    assert!(e.contains("--runs") && e.contains("--min-time"), "{e}");
}

#[test]
fn a_resolution_off_the_trained_one_takes_effect_and_says_so() {
    let out = cli()
        .args(["bench", "--model", "0.5_160", "--res", "224", "--mock-timer"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("0.5-MobileNet-224") && text.contains("off the 160x160 the weights were trained at"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("running at 224x224, off its trained resolution"));
    let v = json_of(&[
        "bench",
        "--model",
        "0.5_160",
        "--res",
        "224",
        "--mock-timer",
        "--format",
        "json",
    ]);
    assert_eq!(v["model"]["resolution"], 224);
    assert_eq!(v["model"]["trained_resolution"], 160);
    assert_eq!(v["model"]["classes"], 1001);
}

#[test]
fn threads_are_bounded_and_zero_means_every_cpu() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let e = one_line_error(&["bench", "--mock-timer", "--threads", "100000"], 2);
    assert!(
        e.starts_with("error: invalid value '100000' for --threads: this machine has")
            && e.contains(&format!("use 1 to {cpus}, or 0 for all")),
        "{e}"
    );
    for threads in ["0", &cpus.to_string()] {
        let v = json_of(&[
            "bench",
            "--alpha",
            "0.25",
            "--res",
            "128",
            "--runs",
            "3",
            "--threads",
            threads,
            "--format",
            "json",
        ]);
        assert_eq!(v["threads"], cpus, "--threads {threads}");
        assert_eq!(v["environment"]["threads"], cpus);
    }
}

#[test]
fn memory_is_estimated_and_refused_before_allocating() {
    let e = one_line_error(
        &["bench", "--alpha", "0.25", "--res", "128", "--batch", "1000000"],
        2,
    );
    assert!(
        e.contains("--batch 1000000 at 0.25-MobileNet-128")
            && e.contains("needs an estimated")
            && e.contains("TiB")
            && e.contains("raise --max-memory"),
        "{e}"
    );
    let e = one_line_error(&["classify", "--res", "8192", &grace()], 2);
    assert!(
        e.contains("1.0-MobileNet-8192 at 8192x8192, batch 1") && e.contains("GiB"),
        "{e}"
    );
    // The limit is the flag's when given.
    let e = one_line_error(
        &["bench", "--alpha", "0.25", "--res", "128", "--max-memory", "1M"],
        2,
    );
    assert!(e.contains("memory limit of 1.0 MiB (--max-memory)"), "{e}");
    let e = one_line_error(&["bench", "--max-memory", "lots"], 2);
    assert!(e.contains("--max-memory"), "{e}");
}

#[cfg(unix)]
#[test]
fn an_address_space_limit_gives_a_refusal_not_an_abort() {
    let bin = assert_cmd::cargo::cargo_bin("mobilenet-cli");
    for args in [
        "bench --alpha 0.25 --res 128 --batch 1000000",
        "bench --res 4096 --batch 4",
    ] {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v 4000000 && exec '{}' {args}", bin.display()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args}: {stderr}");
        assert!(stderr.contains("(ulimit -v)"), "{args}: {stderr}");
    }
}

#[test]
fn output_paths_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing/plot.svg");
    let out = dir.path().join("sweep.json");
    let e = one_line_error(
        &[
            "sweep",
            "--mock-timer",
            "--output",
            out.to_str().unwrap(),
            "--plot",
            missing.to_str().unwrap(),
        ],
        2,
    );
    assert!(
        e.starts_with(&format!(
            "error: --plot {}: directory {} does not exist",
            missing.display(),
            missing.parent().unwrap().display()
        )),
        "{e}"
    );
    assert!(!out.exists(), "the sweep ran before the plot path was checked");
    let e = one_line_error(&["bench", "--min-time", "0"], 2);
    assert_eq!(
        e.trim(),
        "error: invalid value '0' for --min-time: must be more than 0 and at most 3600 seconds"
    );
    let same = dir.path().join("x.svg");
    let same = same.to_str().unwrap();
    let e = one_line_error(&["sweep", "--no-timing", "--plot", same, "--output", same], 2);
    assert!(e.starts_with("error: --plot cannot be used with --output"), "{e}");
    assert!(!Path::new(same).exists());
}

#[cfg(unix)]
#[test]
fn output_keeps_permissions_and_writes_through_links() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    std::fs::write(&real, "old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path().join("link.json");
    symlink(&real, &link).unwrap();
    cli()
        .args(["analyze", "--format", "json", "--output"])
        .arg(&link)
        .assert()
        .success();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    assert!(written["totals"].is_object());
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A link and its target are one file: --plot through a link to --output is refused.
    let target = dir.path().join("out.svg");
    let alias = dir.path().join("alias.svg");
    symlink(&target, &alias).unwrap();
    let e = one_line_error(
        &[
            "sweep",
            "--no-timing",
            "--output",
            target.to_str().unwrap(),
            "--plot",
            alias.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.starts_with("error: --plot cannot be used with --output"), "{e}");
}

/// Waits for `child` to become a zombie (exited, not yet reaped) and returns the bytes it
/// wrote (`wchar` of /proc/PID/io), then reaps it.
#[cfg(target_os = "linux")]
fn bytes_written(mut child: Child) -> (u64, std::process::ExitStatus) {
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat.rsplit_once(") ").unwrap().1.chars().next().unwrap();
        if state == 'Z' {
            break;
        }
        assert!(Instant::now() < deadline, "the sweep did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let wchar = io
        .lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (wchar, child.wait().unwrap())
}

/// 10,000 points to a file: the writes stay linear in the rows (they were quadratic: the whole
/// file after every point). Counted in bytes written, not in seconds.
#[cfg(target_os = "linux")]
#[test]
fn a_long_sweep_writes_its_output_file_a_bounded_number_of_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.json");
    let alphas: Vec<String> = (1..=100).map(|i| format!("{}", i as f64 / 50.0)).collect();
    let resolutions: Vec<String> = (0..100).map(|i| (32 + 8 * i).to_string()).collect();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mobilenet-cli"))
        .args([
            "sweep",
            "--no-timing",
            "--alphas",
            &alphas.join(","),
            "--resolutions",
            &resolutions.join(","),
            "--format",
            "json",
            "--output",
        ])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (written, status) = bytes_written(child);
    assert!(status.success());
    let size = std::fs::metadata(&path).unwrap().len();
    let rows = serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap()).unwrap()["rows"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(rows, 10_000);
    assert!(
        written <= 4 * size,
        "{written} bytes written for a {size}-byte file"
    );
}

/// Spawns the binary with piped stdout and waits for its first stdout line.
fn spawn_and_wait_for_a_line(args: &[String]) -> (Child, BufReader<std::process::ChildStdout>, String) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mobilenet-cli"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    (child, reader, first)
}

/// Waits for `child`, killing it if it runs past `limit` (a hang is a failure, not a wait).
fn wait_or_kill(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn sigterm_stops_a_long_classify_and_keeps_what_was_classified() {
    let dir = tempfile::tempdir().unwrap();
    let images = 400;
    for i in 0..images {
        std::fs::copy(photo("grace_hopper.jpg"), dir.path().join(format!("{i:04}.jpg"))).unwrap();
    }
    let args: Vec<String> = [
        "classify",
        dir.path().to_str().unwrap(),
        "--format",
        "jsonl",
        "--batch",
        "1",
        "--threads",
        "1",
        "--top",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (mut child, mut reader, first) = spawn_and_wait_for_a_line(&args);
    let record: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(record["predictions"][0]["label"], "military uniform");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_or_kill(&mut child, Duration::from_secs(120));
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    let lines = 1 + rest.lines().count();
    assert!(
        lines < images,
        "all {images} images were classified before stopping"
    );
    for line in rest.lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
}

#[test]
fn classify_reads_one_image_from_stdin() {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mobilenet-cli"))
        .args(["classify", "-", "--top", "1", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(photo("grace_hopper.jpg")).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["image"], "-");
    assert_eq!(v[0]["predictions"][0]["label"], "military uniform");
}

#[test]
fn bench_json_has_the_raw_times_and_warns_when_unreliable() {
    let v = json_of(&["bench", "--mock-timer", "--runs", "3", "--format", "json"]);
    let times = v["times_ms"].as_array().unwrap();
    assert_eq!(times.len(), 3);
    assert_eq!(v["latency_ms"]["samples"], 3);
    assert_eq!(v["warnings"][0]["kind"], "few_runs");
    // JSON for a script: the warning is said on stderr too.
    let out = cli()
        .args(["bench", "--mock-timer", "--runs", "3", "--format", "json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("warning: only 3 timed run(s)"));
    // The table on the terminal ends with the warning: it is not said a second time on stderr.
    let table = cli()
        .args(["bench", "--mock-timer", "--runs", "3"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("warning: only 3 timed run(s)"));
    assert!(
        table.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let quiet = cli()
        .args(["-q", "bench", "--mock-timer", "--runs", "3", "--format", "json"])
        .output()
        .unwrap();
    assert!(quiet.stderr.is_empty());
    let steady = json_of(&["bench", "--mock-timer", "--format", "json"]);
    assert_eq!(steady["warnings"], serde_json::json!([]));
}

#[test]
fn a_bad_alpha_in_metadata_is_the_files_not_a_flags() {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/weights/mobilenet_v1_0.25_128.safetensors"),
    )
    .unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"]["alpha"] = "3".into();
    let mut text = serde_json::to_vec(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad_alpha.safetensors");
    let mut file = (text.len() as u64).to_le_bytes().to_vec();
    file.extend(&text);
    file.extend(&bytes[8 + n..]);
    std::fs::write(&path, file).unwrap();
    let e = one_line_error(&["classify", "--weights", path.to_str().unwrap(), &grace()], 1);
    assert!(
        e.contains("bad_alpha.safetensors: metadata alpha = '3' is not a width multiplier in (0, 2]"),
        "{e}"
    );
    assert!(!e.contains("--alpha"), "{e}");
}

#[test]
fn suggestions_completions_and_man_pages() {
    let e = one_line_error(&["analyze", "--alpah", "1"], 2);
    assert!(e.contains("tip: a similar argument exists: '--alpha'"), "{e}");
    let bash = String::from_utf8(cli().args(["completions", "bash"]).output().unwrap().stdout).unwrap();
    for value in [
        "v3-small-minimalistic",
        "0.25_128",
        "v2_1.0_224",
        "full-conv",
        "jsonl",
    ] {
        assert!(bash.contains(value), "completions lack {value}");
    }
    let dir = tempfile::tempdir().unwrap();
    cli().args(["man", "--dir"]).arg(dir.path()).assert().success();
    for command in [
        "",
        "-analyze",
        "-classify",
        "-evaluate",
        "-bench",
        "-sweep",
        "-presets",
    ] {
        let page = std::fs::read_to_string(dir.path().join(format!("mobilenet-cli{command}.1"))).unwrap();
        assert!(page.contains("Exit codes"), "mobilenet-cli{command}.1");
    }
    let classify = String::from_utf8(cli().args(["man", "classify"]).output().unwrap().stdout).unwrap();
    assert!(classify.contains("mobilenet\\-cli\\-classify") && classify.contains("jsonl"));
    let e = one_line_error(&["man", "nope"], 2);
    assert!(e.contains("expected one of"), "{e}");
}

#[test]
fn quiet_is_global() {
    for args in [
        vec!["-q", "analyze"],
        vec!["analyze", "--quiet"],
        vec!["sweep", "--no-timing", "-q"],
    ] {
        cli().args(&args).assert().success();
    }
}

#[cfg(unix)]
#[test]
fn sigterm_stops_an_evaluation_and_scores_what_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("military uniform");
    std::fs::create_dir(&class).unwrap();
    let images = 1000;
    let png = image::RgbImage::from_pixel(40, 40, image::Rgb([90, 120, 60]));
    let first = class.join("0000.png");
    png.save(&first).unwrap();
    for i in 1..images {
        std::fs::hard_link(&first, class.join(format!("{i:04}.png"))).unwrap();
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mobilenet-cli"))
        .args(["evaluate", dir.path().to_str().unwrap()])
        .args(["--batch", "1", "--threads", "1", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for the handlers (installed before the weights load) and a few batches.
    std::thread::sleep(Duration::from_millis(1500));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_or_kill(&mut child, Duration::from_secs(120));
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert_eq!(status.code(), Some(143));
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["complete"], false);
    let seen = v["images"].as_u64().unwrap();
    assert!(seen >= 1 && seen < images, "{seen}");
}

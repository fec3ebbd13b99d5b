//! Helpers shared by every integration test: the binary under test, fixture paths, tensor
//! comparisons and snapshot files.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use candle_core::Tensor;

/// The real binary, with colour off so that output is plain text.
pub fn cli() -> Command {
    let mut cmd = Command::cargo_bin("mobilenet-cli").unwrap();
    cmd.env("NO_COLOR", "1");
    cmd
}

/// The JSON a successful run prints.
pub fn json_of(args: &[&str]) -> serde_json::Value {
    let out = cli().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A file under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A photo under tests/fixtures/photos.
pub fn photo(name: &str) -> PathBuf {
    fixture("photos").join(name)
}

/// Largest absolute element-wise difference of two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs_diff_scaled(a, b).0
}

/// Largest absolute difference, and the scale to judge it by: the largest magnitude in `b`
/// (at least 1).
pub fn max_abs_diff_scaled(a: &Tensor, b: &Tensor) -> (f32, f32) {
    assert_eq!(a.dims(), b.dims());
    max_diff(&values(a), &values(b))
}

/// As [`max_abs_diff_scaled`], for flat values (what `Runner` returns).
pub fn max_diff(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(1.0f32, f32::max);
    (diff, scale)
}

/// A tensor's values, flat.
pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Compares `actual` with tests/snapshots/NAME; `UPDATE_SNAPSHOTS=1` rewrites the file.
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing snapshot {}; run with UPDATE_SNAPSHOTS=1", path.display()));
    assert_eq!(
        actual, expected,
        "snapshot {name} differs; rerun with UPDATE_SNAPSHOTS=1 if intended"
    );
}

/// Writes a generated labelled folder under `root`: for each (class, colour), `per_class` PNGs
/// of that colour with noise, of varied sizes and with a darker stripe at a varied place
/// (deterministic in `seed`). Returns the image paths, class by class.
pub fn colour_task(root: &Path, classes: &[(&str, [u8; 3])], per_class: usize, seed: u64) -> Vec<PathBuf> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u32| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % u64::from(n)) as u32
    };
    let mut paths = Vec::new();
    for (name, colour) in classes {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let (w, h) = (40 + next(50), 40 + next(50));
            let stripe = next(w);
            let mut image = image::RgbImage::new(w, h);
            for (x, _, pixel) in image.enumerate_pixels_mut() {
                let dark = if x.abs_diff(stripe) < 4 { 60 } else { 0 };
                pixel.0 = colour.map(|c| (i32::from(c) + next(41) as i32 - 20 - dark).clamp(0, 255) as u8);
            }
            let path = dir.join(format!("{name}_{i:02}.png"));
            image.save(&path).unwrap();
            paths.push(path);
        }
    }
    paths
}

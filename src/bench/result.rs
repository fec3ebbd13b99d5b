//! What `bench` reports: a serde struct the formatters render.

use serde::Serialize;

use super::{Environment, Summary};
use crate::arch::LayerKind;

/// The model a benchmark ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchModel {
    pub label: String,
    pub family: String,
    pub alpha: f64,
    pub resolution: u32,
    pub depth_multiplier: u32,
    pub classes: u32,
    pub variant: String,
    /// "shipped 1.0_224", "random (seed 0)" or a file path.
    pub weights: String,
}

/// One layer's share of the time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerTiming {
    pub index: usize,
    pub name: String,
    pub kind: LayerKind,
    pub mult_adds: u64,
    /// Median over the timed runs, milliseconds.
    pub time_ms: f64,
    pub time_pct: f64,
    pub mult_adds_pct: f64,
    /// Achieved GFLOP/s of this layer (2 x mult-adds x batch / time).
    pub gflops: f64,
}

/// A benchmark result (README: "bench JSON").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchResult {
    pub schema_version: u32,
    pub model: BenchModel,
    pub engine: String,
    pub threads: usize,
    pub batch: usize,
    pub runs: usize,
    pub warmup: usize,
    /// Per forward pass of `batch` images.
    pub latency_ms: Summary,
    /// Images per second at the median.
    pub throughput: f64,
    /// Mult-adds per image (paper convention).
    pub mult_adds: u64,
    /// 2 x mult-adds x batch / median latency.
    pub gflops: f64,
    pub environment: Environment,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_layer: Option<Vec<LayerTiming>>,
}

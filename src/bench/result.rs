//! What `bench` reports: a serde struct the formatters render.

use serde::Serialize;

use super::{Environment, Peak, Summary, TimingWarning};
use crate::arch::{Config, Family, LayerKind, Variant};
use crate::infer::{EngineKind, Precision};

/// Where the weights of a timed network came from (latency does not depend on their values).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WeightsOrigin {
    /// A model that ships in the binary.
    Shipped { model: String },
    /// The user's file.
    File { path: String },
    /// Seeded random weights.
    Random { seed: u64 },
}

/// The model a benchmark ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchModel {
    pub label: String,
    pub family: Family,
    pub minimalistic: bool,
    pub alpha: f64,
    /// The resolution it ran at.
    pub resolution: u32,
    /// The resolution its weights were trained at, when known; differs from `resolution`
    /// when `--res` moved it.
    pub trained_resolution: Option<u32>,
    pub depth_multiplier: u32,
    /// Classes of the final layer: 1001 for the shipped ImageNet models (index 0 is
    /// background), 1000 for the paper's configurations. Counts include this layer.
    pub classes: u32,
    pub variant: Variant,
    pub weights: WeightsOrigin,
}

impl BenchModel {
    pub fn new(config: &Config, trained_resolution: Option<u32>, weights: WeightsOrigin) -> Self {
        BenchModel {
            label: config.label(),
            family: config.family,
            minimalistic: config.minimalistic,
            alpha: config.alpha,
            resolution: config.resolution,
            trained_resolution,
            depth_multiplier: config.depth_multiplier,
            classes: config.classes,
            variant: config.variant,
            weights,
        }
    }

    /// Running off the trained resolution (accuracy, not speed, is what changes).
    pub fn off_trained_resolution(&self) -> bool {
        self.trained_resolution.is_some_and(|t| t != self.resolution)
    }
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
    /// Achieved GFLOP/s of this layer (2 x mult-adds x batch / time; integer operations at
    /// int8).
    pub gflops: f64,
    /// The layer's multiply-accumulates per second as a percentage of `BenchResult::peak`;
    /// None without a peak (f32, or int8 kernels without a dot-product instruction).
    pub peak_pct: Option<f64>,
}

/// A benchmark result (README: "bench JSON").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchResult {
    pub schema_version: u32,
    pub model: BenchModel,
    pub engine: EngineKind,
    /// The arithmetic timed: f32, or int8 (TFLite's uint8 kernels).
    pub precision: Precision,
    /// The kernels' instruction set: the fast engine's ("avx512f", "avx2+fma", "portable"),
    /// the int8 kernels' ("amx", "avx512vnni", "avx2", "portable", "reference"); None for the reference
    /// engine.
    pub isa: Option<String>,
    pub threads: usize,
    pub batch: usize,
    pub runs: usize,
    pub warmup: usize,
    /// Per forward pass of `batch` images.
    pub latency_ms: Summary,
    /// Every timed run in milliseconds, in the order measured (hyperfine's `times`).
    pub times_ms: Vec<f64>,
    /// Why the timing may be unreliable; empty when it looks steady.
    pub warnings: Vec<TimingWarning>,
    /// Images per second at the median.
    pub throughput: f64,
    /// Mult-adds per image (paper convention).
    pub mult_adds: u64,
    /// 2 x mult-adds x batch / median latency.
    pub gflops: f64,
    pub environment: Environment,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_layer: Option<Vec<LayerTiming>>,
    /// With `per_layer` at int8 on VNNI: the `vpdpbusd` peak each layer's `peak_pct` is of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak: Option<Peak>,
}

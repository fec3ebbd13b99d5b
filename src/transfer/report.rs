//! The result of the `retrain` command, as data: what was trained on what, how training went,
//! the scores, the costs. `report::retrain` formats it; `--format json` is its serde form
//! (documented in `docs/schema/retrain.schema.json`).

use serde::Serialize;

use super::features::{ExtractionStats, FeatureVector};
use super::head::{Epoch, HeadSettings};
use super::metrics::Score;
use super::split::{SplitCounts, SplitRule};
use crate::arch::{Family, Variant};
use crate::classify::FailedImage;
use crate::infer::EngineKind;

/// The whole retraining.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrainReport {
    /// 1.
    pub schema_version: u32,
    pub model: BaseModelInfo,
    /// The backbone vector the head reads.
    pub feature: FeatureVector,
    /// The network file written.
    pub output: String,
    /// The features file written with `--features-out` (null: none).
    pub features_out: Option<String>,
    pub engine: EngineKind,
    /// Threads of the forward passes.
    pub threads: usize,
    /// Images decoded at once, beside the forward passes (on the reading thread, or the
    /// rayon pool's workers).
    pub decode_threads: usize,
    /// Images per forward pass.
    pub batch: usize,
    pub data: DataInfo,
    pub settings: HeadSettings,
    /// Augmented views per training image (null: no augmentation).
    pub augment: Option<usize>,
    pub training: TrainingInfo,
    /// The kept head on the validation images (null without any).
    pub validation: Option<Score>,
    /// The kept head on the test images (null without any).
    pub test: Option<Score>,
    /// The evaluation-view features: cache hits and misses, forward passes, time per stage.
    pub features: ExtractionStats,
    /// The augmented training views (never cached); null without augmentation.
    pub augmentation: Option<ExtractionStats>,
    /// The feature cache's folder for this model and preprocessing (null: no cache).
    pub cache_dir: Option<String>,
    /// Wall time of the whole command, loading and writing included.
    pub total_seconds: f64,
}

/// The base model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseModelInfo {
    /// "1.0_224", or a weights file's stem.
    pub name: String,
    pub family: Family,
    pub alpha: f64,
    pub depth_multiplier: u32,
    pub variant: Variant,
    pub minimalistic: bool,
    /// The resolution the features were computed at (and the written file runs at).
    pub resolution: u32,
    /// The resolution the base weights were trained at, when known.
    pub trained_resolution: Option<u32>,
    /// SHA-256 of the base weights file (part of the feature cache's key).
    pub weights_sha256: String,
}

/// The data and its split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataInfo {
    pub dir: String,
    pub split: SplitRule,
    /// In output order.
    pub classes: Vec<ClassInfo>,
    /// Images that could not be read or decoded: left out.
    pub failed: Vec<FailedImage>,
    /// Images outside every class folder: not used.
    pub unlabelled: Vec<String>,
    /// Other entries left out (non-image files, nested folders).
    pub skipped: usize,
}

/// One class: its name (its folder's) and usable images per split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassInfo {
    pub name: String,
    #[serde(flatten)]
    pub counts: SplitCounts,
}

impl ClassInfo {
    /// One per class: the class names beside their usable images per split.
    pub fn list(names: &[String], counts: &[SplitCounts]) -> Vec<ClassInfo> {
        names
            .iter()
            .zip(counts)
            .map(|(name, counts)| ClassInfo {
                name: name.clone(),
                counts: *counts,
            })
            .collect()
    }
}

/// How training went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingInfo {
    pub epochs: Vec<Epoch>,
    /// The epoch whose head was kept (lowest validation loss; the last without validation).
    pub best_epoch: usize,
    pub stopped_early: bool,
    /// Training vectors (augmented views included).
    pub vectors: usize,
    pub seconds: f64,
}

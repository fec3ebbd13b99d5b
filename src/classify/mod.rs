//! Classifying images with a loaded network and evaluating it on a labelled folder.
//!
//! Everything here returns plain serde structs; printing and formatting belong to the CLI.
//! Images are decoded and run in bounded batches, so memory stays flat however many files are
//! given, and one unreadable image never aborts the others: each image given gets one
//! [`ImageRecord`], classified or failed, which classify's JSON, JSON Lines and CSV all report.

mod evaluate;

use std::path::PathBuf;

use serde::{Serialize, Serializer};

use image::RgbImage;

use crate::infer::{Precision, Runner};
use crate::nn::MobileNet;
use crate::text::{one_line, path_text};
use crate::vision::{
    ClassLayout, ClassNames, Crop, ImageError, ImageErrorKind, decode_bytes, load_pixels, preprocess_pixels,
};

pub use evaluate::{
    ClassReport, Confusion, EvalError, EvalReport, FailedImage, TOP5, custom_label, evaluate,
};

/// Most images decoded and run at once by [`classify_batch`].
pub const MAX_BATCH: usize = 32;

/// One ranked class of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// 1 for the most probable class.
    pub rank: usize,
    /// The network's output index, in the record's `class_layout` (for `imagenet_1001`, 0 is
    /// "background" and ImageNet class i is output i + 1; for `custom`, the index of `label` in
    /// the weights file's labels).
    pub class_index: usize,
    /// The 0-999 ImageNet class (`class_index - 1` in the `imagenet_1001` layout); None for
    /// background and for other layouts.
    pub imagenet_index: Option<usize>,
    pub label: String,
    pub probability: f32,
}

/// What became of one image.
#[derive(Debug, Serialize)]
pub struct ImageRecord {
    /// The path as given (see [`path_text`]).
    pub image: String,
    /// `MobileNet::name()`, e.g. "1.0_224".
    pub model: String,
    /// The arithmetic the network ran in: at int8 every probability is TFLite's uint8 softmax
    /// output q as q / 256, exactly.
    pub precision: Precision,
    /// The fraction of each side the central crop kept.
    pub crop: Crop,
    /// The input resolution (pixels per side) the image was run at.
    pub resolution: u32,
    /// The resolution the weights were trained at, when known; differs from `resolution` after
    /// `--res`.
    pub trained_resolution: Option<u32>,
    /// How `class_index` maps to classes.
    pub class_layout: ClassLayout,
    /// `"status": "ok"` with `predictions`, or `"status": "failed"` with `error`.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A classified image's predictions, or why it has none.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok { predictions: Vec<Prediction> },
    Failed { error: Failure },
}

impl ImageRecord {
    /// The predictions of a classified image.
    pub fn predictions(&self) -> Option<&[Prediction]> {
        match &self.outcome {
            Outcome::Ok { predictions } => Some(predictions),
            Outcome::Failed { .. } => None,
        }
    }

    /// Why the image was not classified.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.outcome {
            Outcome::Ok { .. } => None,
            Outcome::Failed { error } => Some(error),
        }
    }
}

/// Why one image has no predictions. The message does not name the image: the record does.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Image(#[from] ImageErrorKind),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A failure serialises as its message.
impl Serialize for Failure {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The names of `net`'s outputs: the labels its weights file carries, else ImageNet's for a
/// 1001-way output, else none.
pub fn class_names(net: &MobileNet) -> ClassNames {
    ClassNames::new(net.config().classes as usize, net.labels())
}

/// The `k` most probable classes of one probability row, best first (ties by lower index),
/// labelled by `names`.
pub fn top_k(probs: &[f32], k: usize, names: &ClassNames) -> Vec<Prediction> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .enumerate()
        .map(|(rank, class_index)| Prediction {
            rank: rank + 1,
            class_index,
            imagenet_index: names.imagenet_index(class_index),
            label: names.label(class_index),
            probability: probs[class_index],
        })
        .collect()
}

/// Probabilities for preprocessed images (R x R pixels each, [`preprocess_pixels`]), one row
/// per image, at the runner's precision ([`Runner::probabilities_batch`]).
pub fn probabilities(model: &mut Runner, images: &[RgbImage]) -> candle_core::Result<Vec<Vec<f32>>> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let pixels: Vec<u8> = images
        .iter()
        .flat_map(|image| image.as_raw().iter().copied())
        .collect();
    let batch = model.batch_from_pixels(pixels, images.len())?;
    let probs = model.probabilities_batch(&batch, images.len())?;
    Ok(probs
        .chunks_exact(probs.len() / images.len())
        .map(<[f32]>::to_vec)
        .collect())
}

/// An image to classify: a file, or one already read into memory (standard input, `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Bytes { name: String, bytes: Vec<u8> },
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::File(path) => path_text(path),
            Source::Bytes { name, .. } => name.clone(),
        }
    }

    /// Decoded, cropped and resized for a network at `resolution`.
    fn pixels(&self, resolution: u32, crop: Crop) -> Result<RgbImage, ImageError> {
        match self {
            Source::File(path) => load_pixels(path, resolution, crop),
            Source::Bytes { name, bytes } => {
                Ok(preprocess_pixels(&decode_bytes(bytes, name)?, resolution, crop))
            }
        }
    }
}

/// Classifies each image in `paths` with TF-slim's crop, returning its `top` predictions: one
/// record per path, in the order of `paths`.
pub fn classify_batch(model: &mut Runner, paths: &[PathBuf], top: usize) -> Vec<ImageRecord> {
    let sources: Vec<Source> = paths.iter().cloned().map(Source::File).collect();
    classify_sources(model, &sources, top, Crop::TF_SLIM)
}

/// Classifies each source (cropped by `crop`), returning its `top` predictions: one record per
/// source, in order.
pub fn classify_sources(model: &mut Runner, sources: &[Source], top: usize, crop: Crop) -> Vec<ImageRecord> {
    let precision = model.precision();
    let net = model.net();
    let (name, resolution) = (net.name().to_string(), net.config().resolution);
    let trained_resolution = net.trained_resolution();
    let names = class_names(net);
    let class_layout = names.layout();
    let mut records = Vec::with_capacity(sources.len());
    for chunk in sources.chunks(MAX_BATCH) {
        let mut inputs = Vec::with_capacity(chunk.len());
        let mut outcomes: Vec<Option<Failure>> = Vec::with_capacity(chunk.len());
        for source in chunk {
            match source.pixels(resolution, crop) {
                Ok(input) => {
                    inputs.push(input);
                    outcomes.push(None);
                }
                Err(e) => outcomes.push(Some(Failure::Image(e.kind))),
            }
        }
        let mut rows = match probabilities(model, &inputs) {
            Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>().into_iter(),
            Err(e) => vec![Err(one_line(&e.to_string())); inputs.len()].into_iter(),
        };
        for (source, failure) in chunk.iter().zip(outcomes) {
            let outcome = match failure {
                Some(error) => Outcome::Failed { error },
                None => match rows.next() {
                    Some(Ok(probs)) => Outcome::Ok {
                        predictions: top_k(&probs, top, &names),
                    },
                    Some(Err(message)) => Outcome::Failed {
                        error: Failure::Inference(message),
                    },
                    None => Outcome::Failed {
                        error: Failure::Inference("the network returned fewer rows than images".into()),
                    },
                },
            };
            records.push(ImageRecord {
                image: source.name(),
                model: name.clone(),
                precision,
                crop,
                resolution,
                trained_resolution,
                class_layout,
                outcome,
            });
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_ranks_by_probability_then_index() {
        let probs = [0.1, 0.4, 0.1, 0.4];
        let unnamed = ClassNames::Unnamed { classes: 4 };
        let top = top_k(&probs, 3, &unnamed);
        let order: Vec<(usize, usize)> = top.iter().map(|p| (p.rank, p.class_index)).collect();
        assert_eq!(order, [(1, 1), (2, 3), (3, 0)]);
        assert_eq!(top[0].label, "class 1");
        assert_eq!(top[0].imagenet_index, None);
        assert_eq!(top_k(&probs, 10, &unnamed).len(), 4);
        assert!(top_k(&probs, 0, &unnamed).is_empty());
        let custom = ClassNames::Custom(["a", "b", "c", "d"].map(String::from).to_vec());
        assert_eq!(top_k(&probs, 1, &custom)[0].label, "b");
        let mut imagenet = vec![0.0f32; 1001];
        imagenet[286] = 0.9;
        let best = &top_k(&imagenet, 1, &ClassNames::Imagenet1001)[0];
        assert_eq!(
            (best.label.as_str(), best.class_index, best.imagenet_index),
            ("Egyptian cat", 286, Some(285))
        );
        imagenet[0] = 1.0;
        assert_eq!(
            top_k(&imagenet, 1, &ClassNames::Imagenet1001)[0].imagenet_index,
            None,
            "background"
        );
    }

    fn record(outcome: Outcome) -> ImageRecord {
        ImageRecord {
            image: "dir/a.jpg".into(),
            model: "1.0_224".into(),
            precision: Precision::F32,
            crop: Crop::TF_SLIM,
            resolution: 160,
            trained_resolution: Some(224),
            class_layout: ClassLayout::Imagenet1001,
            outcome,
        }
    }

    #[test]
    fn records_serialise_flat_with_a_status() {
        let ok = record(Outcome::Ok {
            predictions: top_k(&[0.25, 0.75], 1, &ClassNames::Unnamed { classes: 2 }),
        });
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            serde_json::json!({
                "image": "dir/a.jpg", "model": "1.0_224", "precision": "f32", "crop": 0.875,
                "resolution": 160,
                "trained_resolution": 224, "class_layout": "imagenet_1001", "status": "ok",
                "predictions": [{"rank": 1, "class_index": 1, "imagenet_index": null,
                                 "label": "class 1", "probability": 0.75}]
            })
        );
        let failed = record(Outcome::Failed {
            error: Failure::Image(ImageErrorKind::EmptyFile),
        });
        let v = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            (v["status"].as_str(), v["error"].as_str()),
            (Some("failed"), Some("empty file"))
        );
        assert!(v.get("predictions").is_none());
        assert!(failed.predictions().is_none() && ok.failure().is_none());
    }
}

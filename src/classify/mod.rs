//! Classifying images with a loaded network and evaluating it on a labelled folder.
//!
//! Everything here returns plain serde structs; printing and formatting belong to the CLI.
//! Images are decoded and run in bounded batches, so memory stays flat however many files are
//! given, and one unreadable image never aborts the others.

mod evaluate;

use std::path::PathBuf;

use serde::Serialize;

use crate::infer::Runner;
use crate::vision::{ImageError, batch_tensor, label_for, load_input};

pub use evaluate::{ClassReport, Confusion, EvalError, EvalReport, FailedImage, evaluate};

/// Most images decoded and run at once by [`classify_batch`].
pub const MAX_BATCH: usize = 32;

/// One ranked class of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// 1 for the most probable class.
    pub rank: usize,
    /// Output index (for the ImageNet models, 0 is "background").
    pub class_index: usize,
    pub label: String,
    pub probability: f32,
}

/// The top predictions for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageResult {
    /// The path as given.
    pub image: String,
    /// `MobileNet::name()`, e.g. "1.0_224".
    pub model: String,
    pub predictions: Vec<Prediction>,
}

/// Why one image has no result.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("{image}: inference failed: {message}")]
    Inference { image: String, message: String },
}

/// The `k` most probable classes of one probability row, best first (ties by lower index).
/// Labels are the ImageNet names for a 1001-way output, "class N" otherwise.
pub fn top_k(probs: &[f32], k: usize) -> Vec<Prediction> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .enumerate()
        .map(|(rank, class_index)| Prediction {
            rank: rank + 1,
            class_index,
            label: label_for(class_index, probs.len()),
            probability: probs[class_index],
        })
        .collect()
}

/// Softmax probabilities for preprocessed inputs ([3, R, R] each), one row per input.
pub fn probabilities(model: &mut Runner, inputs: &[Vec<f32>]) -> candle_core::Result<Vec<Vec<f32>>> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let batch = batch_tensor(inputs, model.net().config().resolution, model.net().device())?;
    model.probabilities(&batch)?.to_vec2::<f32>()
}

/// Classifies each image in `paths`, returning its `top` predictions; results are in the order
/// of `paths`, each independently Ok or Err.
pub fn classify_batch(
    model: &mut Runner,
    paths: &[PathBuf],
    top: usize,
) -> Vec<Result<ImageResult, ClassifyError>> {
    let resolution = model.net().config().resolution;
    let mut results = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(MAX_BATCH) {
        let mut inputs = Vec::with_capacity(chunk.len());
        let mut failures: Vec<Option<ImageError>> = Vec::with_capacity(chunk.len());
        for path in chunk {
            match load_input(path, resolution) {
                Ok(input) => {
                    inputs.push(input);
                    failures.push(None);
                }
                Err(e) => failures.push(Some(e)),
            }
        }
        let rows = probabilities(model, &inputs).map_err(|e| e.to_string());
        let mut rows = match rows {
            Ok(rows) => rows.into_iter().map(Ok).collect::<Vec<_>>().into_iter(),
            Err(message) => vec![Err(message); inputs.len()].into_iter(),
        };
        for (path, failure) in chunk.iter().zip(failures) {
            let image = path.display().to_string();
            results.push(match failure {
                Some(e) => Err(ClassifyError::Image(e)),
                None => match rows.next() {
                    Some(Ok(probs)) => Ok(ImageResult {
                        image,
                        model: model.net().name().to_string(),
                        predictions: top_k(&probs, top),
                    }),
                    Some(Err(message)) => Err(ClassifyError::Inference { image, message }),
                    None => Err(ClassifyError::Inference {
                        image,
                        message: "the network returned fewer rows than images".into(),
                    }),
                },
            });
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_ranks_by_probability_then_index() {
        let probs = [0.1, 0.4, 0.1, 0.4];
        let top = top_k(&probs, 3);
        let order: Vec<(usize, usize)> = top.iter().map(|p| (p.rank, p.class_index)).collect();
        assert_eq!(order, [(1, 1), (2, 3), (3, 0)]);
        assert_eq!(top[0].label, "class 1");
        assert_eq!(top_k(&probs, 10).len(), 4);
        assert!(top_k(&probs, 0).is_empty());
        let mut imagenet = vec![0.0f32; 1001];
        imagenet[286] = 0.9;
        assert_eq!(top_k(&imagenet, 1)[0].label, "Egyptian cat");
    }
}

//! Accuracy of a classifier on a labelled folder ([`crate::dataset`]): one subfolder per class,
//! named by one of the model's classes. A model whose weights file carries its own labels (a
//! `retrain` output) is matched by those: the folder name as the label is written, else the one
//! label it equals ignoring case and with '_' for a space; a folder no label matches is an
//! error that lists the labels. A 1001-class ImageNet model is matched by the ImageNet label
//! ("Egyptian cat", case-insensitive, '_' for spaces), a synonym unique to one class ("hot
//! dog") or the WordNet id ("n02124075"). A model with neither has no class names to match.
//!
//! Files are listed first (names only), then decoded and run `batch` at a time, so memory is
//! bounded by one batch whatever the folder's size. Unreadable images are listed, not fatal. A
//! class folder with no image, or none that decodes, is listed but has no accuracy (it is not a
//! 0% class); images directly in the folder belong to no class and are listed, not run.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;

use serde::Serialize;

use super::probabilities;
use crate::dataset::{DatasetError, LabelledFolder, read_labelled_folder};
use crate::infer::{Precision, Runner};
use crate::text::{escape_controls, one_line, path_text};
use crate::vision::{ClassNames, Crop, LabelMatch, labels, load_pixels, match_label};

/// Top-5 accuracy, the paper's and TF-slim's second metric.
pub const TOP5: usize = 5;

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub model: String,
    /// The arithmetic the network ran in.
    pub precision: Precision,
    /// The fraction of each side the central crop kept.
    pub crop: Crop,
    pub dir: String,
    /// Outputs of the model's classifier (1001 for ImageNet, a retrained one's classes): with
    /// 5 or fewer every image is in the top 5, and reports leave top-5 out.
    pub model_classes: usize,
    /// Images classified (failed ones excluded); at least 1.
    pub images: usize,
    pub top1_correct: usize,
    pub top5_correct: usize,
    /// top1_correct / images.
    pub top1_accuracy: f64,
    pub top5_accuracy: f64,
    /// One entry per class folder, in folder name order, empty ones included.
    pub classes: Vec<ClassReport>,
    /// The class folders that hold no image file (also in `classes`, with no accuracy).
    pub empty_classes: Vec<String>,
    /// The most frequent top-1 mistakes, most frequent first.
    pub confusions: Vec<Confusion>,
    /// Images that could not be decoded.
    pub failed: Vec<FailedImage>,
    /// Images directly in `dir`, outside every class folder: not evaluated.
    pub unlabelled_images: Vec<String>,
    /// Files ignored because their extension is not an image's, and folders inside class folders.
    pub skipped_files: usize,
    /// False when the evaluation was stopped before every image was seen (the figures cover
    /// the images before the stop).
    pub complete: bool,
}

/// Accuracy on one class folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassReport {
    pub folder: String,
    pub class_index: usize,
    pub label: String,
    /// Images classified.
    pub images: usize,
    /// Images of this folder that could not be decoded.
    pub failed: usize,
    pub top1_correct: usize,
    pub top5_correct: usize,
    /// top1_correct / images; None when no image of the class was classified.
    pub top1_accuracy: Option<f64>,
    pub top5_accuracy: Option<f64>,
}

/// How often images of one class were classified (top-1) as another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confusion {
    pub true_index: usize,
    pub true_label: String,
    pub predicted_index: usize,
    pub predicted_label: String,
    pub count: usize,
}

/// An image that could not be used: its path and the reason (which does not repeat the path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedImage {
    pub image: String,
    pub error: String,
}

/// Why an evaluation could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(
        "{}: no class folders (expected one subfolder per class, named by ImageNet label or WordNet id){}",
        escape_controls(.dir),
        unlabelled_note(*.unlabelled)
    )]
    NoClasses { dir: String, unlabelled: usize },
    #[error("{}: no images in the class folders", escape_controls(.dir))]
    NoImages { dir: String },
    #[error(
        "{}: no image could be decoded ({failed} failed; the first: {})",
        escape_controls(.dir),
        escape_controls(.first)
    )]
    NothingDecoded {
        dir: String,
        failed: usize,
        first: String,
    },
    #[error(
        "{}: folder name matches no ImageNet class (use the label, e.g. 'Egyptian cat', or the WordNet id, e.g. 'n02124075')",
        escape_controls(.folder)
    )]
    UnknownClass { folder: String },
    #[error(
        "{}: folder name is ambiguous, it could be {candidates}; use the full label or the WordNet id",
        escape_controls(.folder)
    )]
    AmbiguousClass { folder: String, candidates: String },
    #[error(
        "folders '{}' and '{}' both name class {index} ({label})",
        escape_controls(.first),
        escape_controls(.second)
    )]
    DuplicateClass {
        first: String,
        second: String,
        index: usize,
        label: String,
    },
    #[error(
        "{}: folder name matches none of the model's labels ({}); name each class folder by one of them",
        escape_controls(.folder),
        escape_controls(&.labels.join(", "))
    )]
    LabelMismatch { folder: String, labels: Vec<String> },
    #[error(
        "evaluation needs the names of the model's classes: a 1001-class ImageNet model, or a weights file whose metadata lists its labels (as retrain writes); this one has {classes} unnamed classes"
    )]
    Unnamed { classes: usize },
    #[error("batch size must be at least 1")]
    BatchSize,
    /// The network's error, on one line (not also a `source`, so it is printed once).
    #[error("inference failed: {0}")]
    Inference(String),
}

fn unlabelled_note(unlabelled: usize) -> String {
    match unlabelled {
        0 => String::new(),
        n => format!("; the {n} images directly inside belong to no class"),
    }
}

/// Running counts of one class.
#[derive(Default, Clone, Copy)]
struct Tally {
    images: usize,
    failed: usize,
    top1: usize,
    top5: usize,
}

/// `part / whole`, None for an empty whole.
fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Evaluates `model` on the labelled folder `dir`, `batch` images at a time (each cropped by
/// `crop`), listing the `top` most frequent confusions. `progress(done, total)` is called once
/// before the first batch and after each one, with `done` counting failed images too.
pub fn evaluate(
    model: &mut Runner,
    dir: &Path,
    batch: usize,
    top: usize,
    crop: Crop,
    mut progress: impl FnMut(usize, usize) -> ControlFlow<()>,
) -> Result<EvalReport, EvalError> {
    let names = super::class_names(model.net());
    if let ClassNames::Unnamed { classes } = names {
        return Err(EvalError::Unnamed { classes });
    }
    if batch == 0 {
        return Err(EvalError::BatchSize);
    }
    let dir_text = path_text(dir);
    let folder = read_labelled_folder(dir)?;
    if folder.classes.is_empty() {
        return Err(EvalError::NoClasses {
            dir: dir_text,
            unlabelled: folder.unlabelled.len(),
        });
    }
    let truth = match &names {
        ClassNames::Custom(labels) => custom_classes(&folder, labels)?,
        _ => imagenet_classes(&folder)?,
    };
    let items: Vec<(usize, &Path)> = folder.images().collect();
    if items.is_empty() {
        return Err(EvalError::NoImages { dir: dir_text });
    }

    let total = items.len();
    let resolution = model.net().config().resolution;
    let mut tallies = vec![Tally::default(); folder.classes.len()];
    let mut confusions: HashMap<(usize, usize), usize> = HashMap::new();
    let mut failed = Vec::new();
    let mut done = 0;
    let mut complete = progress(done, total).is_continue();
    for chunk in items.chunks(batch) {
        if !complete {
            break;
        }
        let mut inputs = Vec::with_capacity(chunk.len());
        let mut owners = Vec::with_capacity(chunk.len());
        for &(class, path) in chunk {
            match load_pixels(path, resolution, crop) {
                Ok(input) => {
                    inputs.push(input);
                    owners.push(class);
                }
                Err(e) => {
                    tallies[class].failed += 1;
                    failed.push(FailedImage {
                        image: e.file,
                        error: e.kind.to_string(),
                    });
                }
            }
        }
        let rows =
            probabilities(model, &inputs).map_err(|e| EvalError::Inference(one_line(&e.to_string())))?;
        for (class, probs) in owners.into_iter().zip(rows) {
            let truth = truth[class];
            let ranked = super::top_k(&probs, TOP5, &names);
            let tally = &mut tallies[class];
            tally.images += 1;
            if ranked.first().is_some_and(|p| p.class_index == truth) {
                tally.top1 += 1;
            } else if let Some(p) = ranked.first() {
                *confusions.entry((truth, p.class_index)).or_default() += 1;
            }
            if ranked.iter().any(|p| p.class_index == truth) {
                tally.top5 += 1;
            }
        }
        done += chunk.len();
        // The caller may stop the evaluation (an interruption): the images so far are scored.
        complete = progress(done, total).is_continue();
    }

    let images: usize = tallies.iter().map(|t| t.images).sum();
    if images == 0 {
        return Err(EvalError::NothingDecoded {
            dir: dir_text,
            failed: failed.len(),
            first: failed
                .first()
                .map(|f| format!("{}: {}", f.image, f.error))
                .unwrap_or_default(),
        });
    }
    let label = |i: usize| names.label(i);
    let class_reports: Vec<ClassReport> = folder
        .classes
        .iter()
        .zip(&truth)
        .zip(&tallies)
        .map(|((class, &index), t)| ClassReport {
            folder: class.name.clone(),
            class_index: index,
            label: label(index),
            images: t.images,
            failed: t.failed,
            top1_correct: t.top1,
            top5_correct: t.top5,
            top1_accuracy: ratio(t.top1, t.images),
            top5_accuracy: ratio(t.top5, t.images),
        })
        .collect();
    let mut confusions: Vec<Confusion> = confusions
        .into_iter()
        .map(|((t, p), count)| Confusion {
            true_index: t,
            true_label: label(t),
            predicted_index: p,
            predicted_label: label(p),
            count,
        })
        .collect();
    confusions.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.true_index.cmp(&b.true_index))
            .then(a.predicted_index.cmp(&b.predicted_index))
    });
    confusions.truncate(top);
    let top1: usize = tallies.iter().map(|t| t.top1).sum();
    let top5: usize = tallies.iter().map(|t| t.top5).sum();
    Ok(EvalReport {
        model: model.net().name().to_string(),
        precision: model.precision(),
        crop,
        dir: dir_text,
        model_classes: model.net().config().classes as usize,
        images,
        top1_correct: top1,
        top5_correct: top5,
        top1_accuracy: top1 as f64 / images as f64,
        top5_accuracy: top5 as f64 / images as f64,
        classes: class_reports,
        empty_classes: folder
            .classes
            .iter()
            .filter(|c| c.images.is_empty())
            .map(|c| c.name.clone())
            .collect(),
        confusions,
        failed,
        unlabelled_images: folder.unlabelled.iter().map(|p| path_text(p)).collect(),
        skipped_files: folder.skipped.len(),
        complete,
    })
}

/// The output index of the model's own label a class folder named `folder` stands for: the
/// label written as the folder is named, else the one label it equals ignoring case and with
/// '_' for a space. `sweep --weights` matches `--data`'s folders by this too.
pub fn custom_label(folder: &str, labels: &[String]) -> Option<usize> {
    let normalise = |s: &str| s.trim().replace('_', " ").to_lowercase();
    labels.iter().position(|l| l == folder).or_else(|| {
        let wanted = normalise(folder);
        let found: Vec<usize> = (0..labels.len())
            .filter(|&i| normalise(&labels[i]) == wanted)
            .collect();
        match found.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    })
}

/// The output index of the model's own label each class folder names, in folder order.
fn custom_classes(folder: &LabelledFolder, labels: &[String]) -> Result<Vec<usize>, EvalError> {
    let mut indices: Vec<usize> = Vec::with_capacity(folder.classes.len());
    for class in &folder.classes {
        let Some(index) = custom_label(&class.name, labels) else {
            return Err(EvalError::LabelMismatch {
                folder: path_text(&class.path),
                labels: labels.to_vec(),
            });
        };
        if let Some(other) = indices.iter().position(|&i| i == index) {
            return Err(EvalError::DuplicateClass {
                first: folder.classes[other].name.clone(),
                second: class.name.clone(),
                index,
                label: labels[index].clone(),
            });
        }
        indices.push(index);
    }
    Ok(indices)
}

/// The ImageNet output index each class folder names, in folder order.
fn imagenet_classes(folder: &LabelledFolder) -> Result<Vec<usize>, EvalError> {
    let mut indices: Vec<usize> = Vec::with_capacity(folder.classes.len());
    for class in &folder.classes {
        let index = match match_label(&class.name) {
            LabelMatch::Class(i) => i,
            LabelMatch::Unknown => {
                return Err(EvalError::UnknownClass {
                    folder: path_text(&class.path),
                });
            }
            LabelMatch::Ambiguous(candidates) => {
                let names: Vec<String> = candidates
                    .iter()
                    .map(|&i| format!("{i} ({})", labels().get(i).copied().unwrap_or("?")))
                    .collect();
                return Err(EvalError::AmbiguousClass {
                    folder: path_text(&class.path),
                    candidates: names.join(" or "),
                });
            }
        };
        if let Some(other) = indices.iter().position(|&i| i == index) {
            return Err(EvalError::DuplicateClass {
                first: folder.classes[other].name.clone(),
                second: class.name.clone(),
                index,
                label: labels().get(index).copied().unwrap_or("?").to_string(),
            });
        }
        indices.push(index);
    }
    Ok(indices)
}

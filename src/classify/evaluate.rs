//! Accuracy of a 1001-class ImageNet model on a labelled folder: one subfolder per class, named
//! by the ImageNet label ("Egyptian cat", case-insensitive, '_' for spaces), a synonym unique to
//! one class ("hot dog") or the WordNet id ("n02124075").
//!
//! Files are listed first (names only), then decoded and run `batch` at a time, so memory is
//! bounded by one batch whatever the folder's size. Unreadable images are listed, not fatal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::probabilities;
use crate::infer::Runner;
use crate::nn::IMAGENET_CLASSES;
use crate::vision::{LabelMatch, labels, load_input, match_label};

/// Extensions (lowercase) treated as images; other files are skipped and counted.
const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "jpe", "png", "bmp", "webp"];

/// Top-5 accuracy, the paper's and TF-slim's second metric.
const TOP5: usize = 5;

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub dir: String,
    /// Images classified (failed ones excluded).
    pub images: usize,
    pub top1_correct: usize,
    pub top5_correct: usize,
    /// top1_correct / images (0 when no image could be classified).
    pub top1_accuracy: f64,
    pub top5_accuracy: f64,
    /// One entry per class folder, in folder name order.
    pub classes: Vec<ClassReport>,
    /// The most frequent top-1 mistakes, most frequent first.
    pub confusions: Vec<Confusion>,
    /// Images that could not be decoded.
    pub failed: Vec<FailedImage>,
    /// Files ignored because their extension is not an image's.
    pub skipped_files: usize,
}

/// Accuracy on one class folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassReport {
    pub folder: String,
    pub class_index: usize,
    pub label: String,
    pub images: usize,
    pub top1_correct: usize,
    pub top5_correct: usize,
    pub top1_accuracy: f64,
    pub top5_accuracy: f64,
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

/// An image that could not be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedImage {
    pub image: String,
    pub error: String,
}

/// Why an evaluation could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{dir}: cannot read directory: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{dir}: no class folders (expected one subfolder per class, named by ImageNet label or WordNet id)"
    )]
    NoClasses { dir: String },
    #[error("{dir}: no images in the class folders")]
    NoImages { dir: String },
    #[error(
        "{folder}: folder name matches no ImageNet class (use the label, e.g. 'Egyptian cat', or the WordNet id, e.g. 'n02124075')"
    )]
    UnknownClass { folder: String },
    #[error(
        "{folder}: folder name is ambiguous, it could be {candidates}; use the full label or the WordNet id"
    )]
    AmbiguousClass { folder: String, candidates: String },
    #[error("folders '{first}' and '{second}' both name class {index} ({label})")]
    DuplicateClass {
        first: String,
        second: String,
        index: usize,
        label: String,
    },
    #[error("evaluation needs a 1001-class ImageNet model; this one has {classes} classes")]
    NotImageNet { classes: u32 },
    #[error("batch size must be at least 1")]
    BatchSize,
    #[error("inference failed: {0}")]
    Inference(#[from] candle_core::Error),
}

/// One class folder and its image files.
struct ClassDir {
    folder: String,
    index: usize,
    files: Vec<PathBuf>,
}

/// Running counts of one class.
#[derive(Default, Clone, Copy)]
struct Tally {
    images: usize,
    top1: usize,
    top5: usize,
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Evaluates `model` on the labelled folder `dir`, `batch` images at a time, listing the `top`
/// most frequent confusions. `progress(done, total)` is called once before the first batch and
/// after each one, with `done` counting failed images too.
pub fn evaluate(
    model: &mut Runner,
    dir: &Path,
    batch: usize,
    top: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<EvalReport, EvalError> {
    if model.net().config().classes != IMAGENET_CLASSES {
        return Err(EvalError::NotImageNet {
            classes: model.net().config().classes,
        });
    }
    if batch == 0 {
        return Err(EvalError::BatchSize);
    }
    let (classes, skipped_files) = scan(dir)?;
    let items: Vec<(usize, &PathBuf)> = classes
        .iter()
        .enumerate()
        .flat_map(|(c, class)| class.files.iter().map(move |f| (c, f)))
        .collect();
    let dir_text = dir.display().to_string();
    if items.is_empty() {
        return Err(EvalError::NoImages { dir: dir_text });
    }

    let total = items.len();
    let resolution = model.net().config().resolution;
    let mut tallies = vec![Tally::default(); classes.len()];
    let mut confusions: HashMap<(usize, usize), usize> = HashMap::new();
    let mut failed = Vec::new();
    let mut done = 0;
    progress(done, total);
    for chunk in items.chunks(batch) {
        let mut inputs = Vec::with_capacity(chunk.len());
        let mut owners = Vec::with_capacity(chunk.len());
        for &(class, path) in chunk {
            match load_input(path, resolution) {
                Ok(input) => {
                    inputs.push(input);
                    owners.push(class);
                }
                Err(e) => failed.push(FailedImage {
                    image: path.display().to_string(),
                    error: e.to_string(),
                }),
            }
        }
        for (class, probs) in owners.into_iter().zip(probabilities(model, &inputs)?) {
            let truth = classes[class].index;
            let ranked = super::top_k(&probs, TOP5);
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
        progress(done, total);
    }

    let label = |i: usize| {
        labels()
            .get(i)
            .map_or_else(|| format!("class {i}"), |l| l.to_string())
    };
    let class_reports: Vec<ClassReport> = classes
        .iter()
        .zip(&tallies)
        .map(|(class, t)| ClassReport {
            folder: class.folder.clone(),
            class_index: class.index,
            label: label(class.index),
            images: t.images,
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
    let images: usize = tallies.iter().map(|t| t.images).sum();
    let top1: usize = tallies.iter().map(|t| t.top1).sum();
    let top5: usize = tallies.iter().map(|t| t.top5).sum();
    Ok(EvalReport {
        model: model.net().name().to_string(),
        dir: dir_text,
        images,
        top1_correct: top1,
        top5_correct: top5,
        top1_accuracy: ratio(top1, images),
        top5_accuracy: ratio(top5, images),
        classes: class_reports,
        confusions,
        failed,
        skipped_files,
    })
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, EvalError> {
    let io = |source| EvalError::Io {
        dir: dir.display().to_string(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_hidden(&name) {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

/// The class folders of `dir` with their image files, and the number of non-image files seen.
fn scan(dir: &Path) -> Result<(Vec<ClassDir>, usize), EvalError> {
    let mut classes: Vec<ClassDir> = Vec::new();
    let mut skipped = 0;
    for (folder, path) in sorted_entries(dir)? {
        if !path.is_dir() {
            skipped += 1;
            continue;
        }
        let index = match match_label(&folder) {
            LabelMatch::Class(i) => i,
            LabelMatch::Unknown => {
                return Err(EvalError::UnknownClass {
                    folder: path.display().to_string(),
                });
            }
            LabelMatch::Ambiguous(candidates) => {
                let names: Vec<String> = candidates
                    .iter()
                    .map(|&i| format!("{i} ({})", labels().get(i).copied().unwrap_or("?")))
                    .collect();
                return Err(EvalError::AmbiguousClass {
                    folder: path.display().to_string(),
                    candidates: names.join(" or "),
                });
            }
        };
        if let Some(other) = classes.iter().find(|c| c.index == index) {
            return Err(EvalError::DuplicateClass {
                first: other.folder.clone(),
                second: folder,
                index,
                label: labels().get(index).copied().unwrap_or("?").to_string(),
            });
        }
        let mut files = Vec::new();
        for (name, file) in sorted_entries(&path)? {
            let extension = Path::new(&name)
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase());
            let is_image = extension.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()));
            if is_image && !file.is_dir() {
                files.push(file);
            } else {
                skipped += 1;
            }
        }
        classes.push(ClassDir { folder, index, files });
    }
    if classes.is_empty() {
        return Err(EvalError::NoClasses {
            dir: dir.display().to_string(),
        });
    }
    Ok((classes, skipped))
}

//! One retraining, start to end: the features of every image of a split dataset (cached), the
//! augmented training views if asked, the head trained with early stopping, and its scores on
//! the validation and test images. Nothing here reads flags or prints: `retrain` wires it to
//! the command line, and a sweep over backbones calls [`retrain`] once per backbone on the same
//! [`SplitDataset`].

use std::ops::ControlFlow;
use std::path::PathBuf;

use super::cache::FeatureCache;
use super::features::{
    ExtractError, Extracted, ExtractionStats, Extractor, FeatureVector, Views, feature_vector,
};
use super::head::{Epoch, Head, HeadError, HeadSettings, Samples, Training, train};
use super::metrics::{Score, Scored, score};
use super::split::{Split, SplitCounts, SplitDataset, SplitError};
use crate::classify::FailedImage;
use crate::infer::Runner;
use crate::text::path_text;

/// How features are computed and the head trained.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Images per forward pass, at least 1.
    pub batch: usize,
    /// Images decoded at once, at least 1.
    pub decoders: usize,
    /// Augmented views per training image (None: no augmentation).
    pub augment: Option<usize>,
    pub head: HeadSettings,
}

/// What a retraining reports as it goes; each method may stop it (an interruption), which
/// ends the run with [`TransferError::Stopped`].
pub trait Observer {
    /// `done` of `total` images have their features (`augmented`: the training views).
    fn features(&mut self, _augmented: bool, _done: usize, _total: usize) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    /// An epoch has finished.
    fn epoch(&mut self, _epoch: &Epoch, _max_epochs: usize) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// An observer that sees nothing and never stops.
pub struct Quiet;

impl Observer for Quiet {}

/// A finished retraining.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrained {
    /// Which vector of the backbone the head reads.
    pub feature: FeatureVector,
    pub head: Head,
    pub training: Training,
    /// Each class's usable images per split (failed images left out).
    pub counts: Vec<SplitCounts>,
    /// The kept head on the validation images (None without them).
    pub validation: Option<Score>,
    /// The kept head on the test images (None without them).
    pub test: Option<Score>,
    /// Images that could not be read or decoded, left out.
    pub failed: Vec<FailedImage>,
    /// The evaluation-view features: cache hits, forward passes, times.
    pub extraction: ExtractionStats,
    /// The augmented training views (never cached), when asked for.
    pub augmentation: Option<ExtractionStats>,
    /// Each image's feature vector (None: unreadable), in the dataset's `examples` order: what
    /// `--features-out` writes and a sweep could reuse.
    pub features: Vec<Option<Vec<f32>>>,
}

/// Why a retraining did not finish.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error("{0}")]
    Inference(String),
    #[error(transparent)]
    Head(HeadError),
    #[error(
        "no usable training image for {} ({} image{} could not be read or decoded)",
        .classes.join(", "),
        .failed,
        if *.failed == 1 { "" } else { "s" }
    )]
    Unusable { classes: Vec<String>, failed: usize },
    /// The observer asked to stop.
    #[error("stopped")]
    Stopped,
}

impl From<ExtractError> for TransferError {
    fn from(e: ExtractError) -> Self {
        match e {
            ExtractError::Stopped => TransferError::Stopped,
            ExtractError::Inference(message) => TransferError::Inference(message),
            thread @ ExtractError::Thread(_) => TransferError::Inference(thread.to_string()),
        }
    }
}

impl From<HeadError> for TransferError {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::Stopped => TransferError::Stopped,
            other => TransferError::Head(other),
        }
    }
}

/// Retrains `runner`'s head on `data`: features through `cache` (None: none), the head per
/// `options`, scores on the held-out splits.
pub fn retrain(
    runner: &mut Runner,
    data: &SplitDataset,
    cache: Option<&FeatureCache>,
    options: &Options,
    observer: &mut dyn Observer,
) -> Result<Retrained, TransferError> {
    let feature = feature_vector(runner.net().layers());
    let paths: Vec<PathBuf> = data.examples.iter().map(|e| e.path.clone()).collect();
    let mut extractor = Extractor {
        runner,
        cache,
        batch: options.batch.max(1),
        decoders: options.decoders.max(1),
    };
    let extracted = extractor.extract(&paths, Views::Eval, &mut |done, total| {
        observer.features(false, done, total)
    })?;
    let mut failed = extracted.failed.clone();

    let classes = data.classes.len();
    let mut sets = [Samples::new(extracted.width), Samples::new(extracted.width)];
    let mut counts = vec![SplitCounts::default(); classes];
    for (example, values) in data.examples.iter().zip(&extracted.features) {
        let Some(values) = values else { continue };
        let c = &mut counts[example.class];
        match example.split {
            Split::Train => {
                c.train += 1;
                sets[0].push(values, example.class);
            }
            Split::Validation => {
                c.validation += 1;
                sets[1].push(values, example.class);
            }
            Split::Test => c.test += 1,
        }
    }
    let untrained: Vec<String> = counts
        .iter()
        .zip(&data.classes)
        .filter(|(c, _)| c.train == 0)
        .map(|(_, name)| name.clone())
        .collect();
    if !untrained.is_empty() {
        return Err(TransferError::Unusable {
            classes: untrained,
            failed: failed.len(),
        });
    }
    let [mut train_set, validation_set] = sets;

    let augmentation = match options.augment {
        Some(copies) if copies > 0 => {
            let train_examples: Vec<(PathBuf, usize)> = data
                .examples
                .iter()
                .zip(&extracted.features)
                .filter(|(e, v)| e.split == Split::Train && v.is_some())
                .map(|(e, _)| (e.path.clone(), e.class))
                .collect();
            let train_paths: Vec<PathBuf> = train_examples.iter().map(|(p, _)| p.clone()).collect();
            let views = Views::Augmented {
                copies,
                seed: options.head.seed,
            };
            let augmented: Extracted = extractor.extract(&train_paths, views, &mut |done, total| {
                observer.features(true, done, total)
            })?;
            for (slot, values) in augmented.features.iter().enumerate() {
                if let Some(values) = values {
                    train_set.push(values, train_examples[slot / augmented.views].1);
                }
            }
            // A file that decoded once decodes again; should it not, it is listed once.
            for f in augmented.failed.iter().cloned() {
                if !failed.contains(&f) {
                    failed.push(f);
                }
            }
            Some(augmented.stats)
        }
        _ => None,
    };

    let max_epochs = options.head.max_epochs;
    let validation = (!validation_set.is_empty()).then_some(&validation_set);
    let training = train(&train_set, validation, classes, &options.head, &mut |e| {
        observer.epoch(e, max_epochs)
    })?;
    let head = training.head.clone();
    let scored = |split: Split| {
        let items = data
            .examples
            .iter()
            .zip(&extracted.features)
            .filter(move |(e, _)| e.split == split)
            .filter_map(|(e, v)| {
                v.as_deref().map(|features| Scored {
                    image: path_text(&e.path),
                    class: e.class,
                    features,
                })
            });
        score(&head, items, &data.classes)
    };
    Ok(Retrained {
        feature,
        validation: scored(Split::Validation),
        test: scored(Split::Test),
        head,
        training,
        counts,
        failed,
        extraction: extracted.stats,
        augmentation,
        features: extracted.features,
    })
}

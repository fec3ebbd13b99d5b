//! The backbone's features of each image: read from the cache, or computed by the backbone's
//! features-only forward pass ([`Runner::features`]: every layer but the final FC one), batched
//! and on the runner's threads.
//!
//! Which vector that is depends on the family ([`FeatureVector`]): v1's global average pool of
//! `pw_13` (1024 x alpha values), v2's pool of `conv_last` (1280), v3's `conv_head` output after
//! its hard-swish (1024 for Small, 1280 for Large): the input of each network's `logits` layer,
//! so the head retrained on it replaces `logits` and nothing else.
//!
//! Files are read and hashed one by one (the content hash keys the cache); the images that
//! miss are decoded `decoders` at a time on the rayon pool, preprocessed as `classify` does
//! (central crop, resize, scale) and run `batch` at a time. An image that cannot be read or
//! decoded is listed and left out, as `classify` and `evaluate` do. Augmented views (random
//! crop and flip, [`crate::vision::augment`]) are computed every time and never cached: their
//! values depend on the seed, not only on the file.
//!
//! The time of each stage is measured apart (reading and hashing, decoding and
//! preprocessing, the forward passes, cache writes), so the forward passes' throughput can be
//! set beside `bench`'s at the same batch and threads.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::cache::{FeatureCache, Lookup, Sha, sha256};
use crate::arch::{Layer, Role};
use crate::classify::FailedImage;
use crate::infer::Runner;
use crate::nn::SplitMix64;
use crate::text::{one_line, path_text};
use crate::vision::{Augmentation, ImageErrorKind, MAX_ALLOC_BYTES, decode_bytes, eval_preprocess};

/// Which vector of the backbone the head reads: the input of its `logits` layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeatureVector {
    /// The layer whose output it is: `pool` (v1, v2) or `conv_head` (v3).
    pub layer: String,
    pub source: FeatureSource,
    /// Values per image.
    pub width: usize,
}

/// What the feature layer computes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureSource {
    /// The global average pool of the last convolution, `conv` (v1 `pw_13`, v2 `conv_last`).
    Pooled { conv: String },
    /// MobileNetV3's 1x1 convolution after the pool (`conv_head`, bias and hard-swish, no
    /// BatchNorm), which reads the pool of `conv` (`conv_last`).
    ConvHead { conv: String },
}

/// The feature vector of a network with these layers (`arch::instantiate`'s, ending in
/// `logits`).
pub fn feature_vector(layers: &[Layer]) -> FeatureVector {
    let n = layers.len();
    let name = |i: usize| layers.get(i).map_or_else(String::new, |l| l.name.clone());
    let feature = n.checked_sub(2).map(|i| &layers[i]);
    let source = match feature.map(|l| l.role) {
        Some(Role::ConvHead) => FeatureSource::ConvHead {
            conv: name(n.saturating_sub(4)),
        },
        _ => FeatureSource::Pooled {
            conv: name(n.saturating_sub(3)),
        },
    };
    FeatureVector {
        layer: feature.map_or_else(String::new, |l| l.name.clone()),
        source,
        width: layers.last().map_or(0, |fc| fc.input.c as usize),
    }
}

/// Which views of each image to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Views {
    /// The evaluation preprocessing (central crop): one view, cached.
    Eval,
    /// `copies` random training views per image ([`Augmentation`]), drawn from `seed` and the
    /// file's content: not cached.
    Augmented { copies: usize, seed: u64 },
}

impl Views {
    /// Views per image.
    pub fn count(self) -> usize {
        match self {
            Views::Eval => 1,
            Views::Augmented { copies, .. } => copies,
        }
    }
}

/// Counts and times of one extraction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExtractionStats {
    /// Images asked for.
    pub images: usize,
    /// Images whose features came from the cache.
    pub cache_hits: usize,
    /// Images without a cache entry.
    pub cache_misses: usize,
    /// Damaged or foreign entries found, not used, and replaced.
    pub cache_invalid: usize,
    /// Entries written.
    pub cache_writes: usize,
    /// Entries that could not be written (the run goes on without them).
    pub cache_write_errors: usize,
    /// Views run through the backbone (images times views per image, less failures).
    pub forwarded: usize,
    /// Images that could not be read or decoded.
    pub failed: usize,
    /// Reading, hashing and cache look-ups.
    pub read_seconds: f64,
    /// Decoding and preprocessing (`decoders` at a time).
    pub decode_seconds: f64,
    /// The backbone's forward passes.
    pub forward_seconds: f64,
    /// Writing cache entries.
    pub write_seconds: f64,
}

impl ExtractionStats {
    /// Every stage's time.
    pub fn total_seconds(&self) -> f64 {
        self.read_seconds + self.decode_seconds + self.forward_seconds + self.write_seconds
    }

    /// Views per second of the forward passes alone (None before any).
    pub fn forward_throughput(&self) -> Option<f64> {
        (self.forwarded > 0 && self.forward_seconds > 0.0)
            .then(|| self.forwarded as f64 / self.forward_seconds)
    }

    /// Adds another extraction's counts and times.
    pub fn add(&mut self, other: &ExtractionStats) {
        self.images += other.images;
        self.cache_hits += other.cache_hits;
        self.cache_misses += other.cache_misses;
        self.cache_invalid += other.cache_invalid;
        self.cache_writes += other.cache_writes;
        self.cache_write_errors += other.cache_write_errors;
        self.forwarded += other.forwarded;
        self.failed += other.failed;
        self.read_seconds += other.read_seconds;
        self.decode_seconds += other.decode_seconds;
        self.forward_seconds += other.forward_seconds;
        self.write_seconds += other.write_seconds;
    }
}

/// The features of a list of images.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// Values per view.
    pub width: usize,
    /// Views per image.
    pub views: usize,
    /// For image `i`, view `v`: entry `i * views + v`; None for an image that failed.
    pub features: Vec<Option<Vec<f32>>>,
    pub failed: Vec<FailedImage>,
    pub stats: ExtractionStats,
}

/// Why an extraction stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The caller asked to stop (an interruption).
    #[error("stopped")]
    Stopped,
    /// The network's error, on one line.
    #[error("inference failed: {0}")]
    Inference(String),
}

/// The backbone, the cache and how to batch.
pub struct Extractor<'a> {
    pub runner: &'a mut Runner,
    /// None: nothing is read from or written to disk.
    pub cache: Option<&'a FeatureCache>,
    /// Images per forward pass, at least 1.
    pub batch: usize,
    /// Images decoded at once, at least 1.
    pub decoders: usize,
}

/// A read file waiting for its forward pass.
struct Pending {
    index: usize,
    name: String,
    bytes: Vec<u8>,
    content: Sha,
}

/// Reads an image file whole (a file larger than the decoder could take is refused unread).
fn read_image(path: &Path) -> Result<Vec<u8>, ImageErrorKind> {
    let len = std::fs::metadata(path).map_err(ImageErrorKind::Io)?.len();
    if len > MAX_ALLOC_BYTES {
        return Err(ImageErrorKind::Decode {
            reason: format!("file of {len} bytes is larger than any image this tool decodes"),
        });
    }
    std::fs::read(path).map_err(ImageErrorKind::Io)
}

/// The `copy`-th training view of the image whose content hash is `content`, under `seed`.
pub fn augmentation(seed: u64, content: &Sha, copy: usize) -> Augmentation {
    let mut head = [0u8; 8];
    head.copy_from_slice(&content[..8]);
    let mut rng =
        SplitMix64(seed ^ u64::from_le_bytes(head) ^ (copy as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let mut uniform = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    Augmentation::from_uniforms([uniform(), uniform(), uniform(), uniform()])
}

impl Extractor<'_> {
    /// The features of `paths` in `views`. `progress(done, total)` is called before the first
    /// image and as images finish; `Break` stops the extraction.
    pub fn extract(
        &mut self,
        paths: &[PathBuf],
        views: Views,
        progress: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
    ) -> Result<Extracted, ExtractError> {
        let per = views.count();
        let mut out = Extracted {
            width: self.runner.feature_len(),
            views: per,
            features: vec![None; paths.len() * per],
            failed: Vec::new(),
            stats: ExtractionStats {
                images: paths.len(),
                ..ExtractionStats::default()
            },
        };
        let cache = match views {
            Views::Eval => self.cache,
            Views::Augmented { .. } => None,
        };
        // A group fills about one batch with views.
        let group = (self.batch / per).max(1);
        let mut pending: Vec<Pending> = Vec::with_capacity(group);
        let total = paths.len();
        if progress(0, total).is_break() {
            return Err(ExtractError::Stopped);
        }
        for (index, path) in paths.iter().enumerate() {
            let start = Instant::now();
            let name = path_text(path);
            match read_image(path) {
                Err(kind) => out.failed.push(FailedImage {
                    image: name,
                    error: kind.to_string(),
                }),
                Ok(bytes) => {
                    let content = sha256(&bytes);
                    let lookup = cache.map(|c| c.get(&content));
                    match lookup {
                        Some(Lookup::Hit(values)) => {
                            out.stats.cache_hits += 1;
                            out.features[index] = Some(values);
                        }
                        other => {
                            match other {
                                Some(Lookup::Miss) => out.stats.cache_misses += 1,
                                Some(Lookup::Invalid) => out.stats.cache_invalid += 1,
                                _ => {}
                            }
                            pending.push(Pending {
                                index,
                                name,
                                bytes,
                                content,
                            });
                        }
                    }
                }
            }
            out.stats.read_seconds += start.elapsed().as_secs_f64();
            if pending.len() >= group {
                self.run(&mut pending, views, cache, &mut out)?;
            }
            if progress(index + 1 - pending.len(), total).is_break() {
                return Err(ExtractError::Stopped);
            }
        }
        self.run(&mut pending, views, cache, &mut out)?;
        out.stats.failed = out.failed.len();
        if progress(total, total).is_break() {
            return Err(ExtractError::Stopped);
        }
        Ok(out)
    }

    /// Decodes the pending images, runs their views through the backbone and caches them.
    fn run(
        &mut self,
        pending: &mut Vec<Pending>,
        views: Views,
        cache: Option<&FeatureCache>,
        out: &mut Extracted,
    ) -> Result<(), ExtractError> {
        if pending.is_empty() {
            return Ok(());
        }
        let resolution = self.runner.net().config().resolution;
        let start = Instant::now();
        let decode = |p: &Pending| -> Result<Vec<Vec<f32>>, ImageErrorKind> {
            let image = decode_bytes(&p.bytes, &p.name).map_err(|e| e.kind)?;
            Ok(match views {
                Views::Eval => vec![eval_preprocess(&image, resolution)],
                Views::Augmented { copies, seed } => (0..copies)
                    .map(|c| augmentation(seed, &p.content, c).apply(&image, resolution))
                    .collect(),
            })
        };
        // At most `decoders` images are decoded at once: each takes one chunk in turn.
        let chunk = pending.len().div_ceil(self.decoders.max(1));
        let decoded: Vec<Result<Vec<Vec<f32>>, ImageErrorKind>> = pending
            .par_chunks(chunk)
            .map(|c| c.iter().map(decode).collect::<Vec<_>>())
            .collect::<Vec<_>>()
            .into_iter()
            .flatten()
            .collect();
        out.stats.decode_seconds += start.elapsed().as_secs_f64();

        let mut owners: Vec<(usize, Sha)> = Vec::new();
        let mut input: Vec<f32> = Vec::new();
        for (p, result) in pending.drain(..).zip(decoded) {
            match result {
                Err(kind) => out.failed.push(FailedImage {
                    image: p.name,
                    error: kind.to_string(),
                }),
                Ok(inputs) => {
                    for (v, values) in inputs.into_iter().enumerate() {
                        owners.push((p.index * out.views + v, p.content));
                        input.extend(values);
                    }
                }
            }
        }
        let per_input = self.runner.input_len();
        let width = out.width;
        for (owners, input) in owners
            .chunks(self.batch.max(1))
            .zip(input.chunks(self.batch.max(1) * per_input))
        {
            let start = Instant::now();
            let rows = self
                .runner
                .features(input, owners.len())
                .map_err(|e| ExtractError::Inference(one_line(&e.to_string())))?;
            out.stats.forward_seconds += start.elapsed().as_secs_f64();
            out.stats.forwarded += owners.len();
            let start = Instant::now();
            for (&(slot, content), row) in owners.iter().zip(rows.chunks_exact(width)) {
                if let Some(cache) = cache {
                    match cache.put(&content, row) {
                        Ok(()) => out.stats.cache_writes += 1,
                        Err(_) => out.stats.cache_write_errors += 1,
                    }
                }
                out.features[slot] = Some(row.to_vec());
            }
            out.stats.write_seconds += start.elapsed().as_secs_f64();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Config, Family, Variant, instantiate};

    fn layers(family: Family) -> Vec<Layer> {
        instantiate(&Config::build(family, 1.0, 224, 1, 1001, Variant::Standard, false).unwrap())
    }

    #[test]
    fn each_family_reads_the_input_of_its_logits() {
        assert_eq!(
            feature_vector(&layers(Family::V1)),
            FeatureVector {
                layer: "pool".into(),
                source: FeatureSource::Pooled { conv: "pw_13".into() },
                width: 1024
            }
        );
        assert_eq!(
            feature_vector(&layers(Family::V2)),
            FeatureVector {
                layer: "pool".into(),
                source: FeatureSource::Pooled {
                    conv: "conv_last".into()
                },
                width: 1280
            }
        );
        assert_eq!(
            feature_vector(&layers(Family::V3Small)),
            FeatureVector {
                layer: "conv_head".into(),
                source: FeatureSource::ConvHead {
                    conv: "conv_last".into()
                },
                width: 1024
            }
        );
        assert_eq!(feature_vector(&layers(Family::V3Large)).width, 1280);
    }

    #[test]
    fn augmentations_depend_on_seed_content_and_copy_only() {
        let (a, b) = (sha256(b"a"), sha256(b"b"));
        assert_eq!(augmentation(1, &a, 0), augmentation(1, &a, 0));
        assert_ne!(augmentation(1, &a, 0), augmentation(2, &a, 0));
        assert_ne!(augmentation(1, &a, 0), augmentation(1, &b, 0));
        assert_ne!(augmentation(1, &a, 0), augmentation(1, &a, 1));
    }
}

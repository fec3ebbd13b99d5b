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
//! miss are decoded `decoders` at a time, preprocessed as `classify` does (central crop,
//! resize, scale) and run `batch` at a time. Reading and decoding run on a thread of their own
//! ([`Reader`]), one group ahead of the forward passes, which run on the calling thread and the
//! runner's: decoding no longer waits for inference nor inference for decoding. An image that cannot be read or
//! decoded is listed and left out, as `classify` and `evaluate` do. Augmented views (random
//! crop and flip, [`crate::vision::augment`]) are computed every time and never cached: their
//! values depend on the seed, not only on the file.
//!
//! The time of each stage is measured apart (reading and hashing, decoding and
//! preprocessing, the forward passes, cache writes, the forward side's waits for decoded
//! images), beside the wall time, so both the forward passes' throughput and the whole
//! extraction's can be set beside `bench`'s at the same batch and threads.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
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
    /// Wall time of the whole extraction. Reading and decoding run on their own thread, beside
    /// the forward passes and cache writes, so the stages' times add up to more than this.
    pub seconds: f64,
    /// Reading, hashing and cache look-ups (on the reading thread).
    pub read_seconds: f64,
    /// Decoding and preprocessing (on the reading thread, `decoders` at a time).
    pub decode_seconds: f64,
    /// The backbone's forward passes.
    pub forward_seconds: f64,
    /// Writing cache entries.
    pub write_seconds: f64,
    /// Time the forward passes waited for the reading thread (for files read, or decoded
    /// images): what reading and decoding add to the wall time.
    pub wait_seconds: f64,
}

impl ExtractionStats {
    /// Wall time of the extraction (the stages overlap: see [`ExtractionStats::seconds`]).
    pub fn total_seconds(&self) -> f64 {
        self.seconds
    }

    /// Images per second of the whole extraction, wall time (None before any).
    pub fn throughput(&self) -> Option<f64> {
        (self.images > 0 && self.seconds > 0.0).then(|| self.images as f64 / self.seconds)
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
        self.seconds += other.seconds;
        self.read_seconds += other.read_seconds;
        self.decode_seconds += other.decode_seconds;
        self.forward_seconds += other.forward_seconds;
        self.write_seconds += other.write_seconds;
        self.wait_seconds += other.wait_seconds;
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
    /// The reading thread could not be started.
    #[error("cannot start the thread that reads and decodes images: {0}")]
    Thread(String),
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

/// What the reading thread hands the forward thread, in file order.
enum Step {
    /// An image with nothing to run: its cached features, or why it could not be read.
    Ready {
        index: usize,
        outcome: Result<Vec<f32>, FailedImage>,
    },
    /// A group of images that missed the cache, decoded and preprocessed.
    Decoded(Group),
}

/// Decoded views waiting for their forward passes.
struct Group {
    /// Images in the group, failures included (for the progress count).
    images: usize,
    /// For each view, in order: its slot in [`Extracted::features`] and its file's hash.
    owners: Vec<(usize, Sha)>,
    /// The views' inputs, one after the other.
    input: Vec<f32>,
    /// Images of the group that could not be decoded.
    failed: Vec<FailedImage>,
}

/// Decoded groups queued between the reading thread and the forward passes. With one queued,
/// at most three groups of decoded inputs exist at once (one in the forward pass, one queued,
/// one being decoded): memory stays at a few batches however large the folder.
const QUEUED_GROUPS: usize = 1;

/// The reading side of an extraction: reads, hashes and looks up each file, and decodes the
/// misses a group at a time. It runs on its own thread so that decoding group k + 1 overlaps
/// the forward passes of group k; it owns nothing of the runner.
struct Reader<'a> {
    cache: Option<&'a FeatureCache>,
    views: Views,
    /// Images per group (a group fills about one batch with views).
    group: usize,
    decoders: usize,
    resolution: u32,
}

impl Reader<'_> {
    /// Sends every path's step in order; stops early when the receiver is gone (the forward
    /// side stopped). Returns its counts and the time it spent reading and decoding.
    fn run(&self, paths: &[PathBuf], tx: &SyncSender<Step>) -> ExtractionStats {
        let mut stats = ExtractionStats::default();
        let mut pending: Vec<Pending> = Vec::with_capacity(self.group);
        for (index, path) in paths.iter().enumerate() {
            let start = Instant::now();
            let name = path_text(path);
            let ready = match read_image(path) {
                Err(kind) => Some(Err(FailedImage {
                    image: name,
                    error: kind.to_string(),
                })),
                Ok(bytes) => {
                    let content = sha256(&bytes);
                    match self.cache.map(|c| c.get(&content)) {
                        Some(Lookup::Hit(values)) => {
                            stats.cache_hits += 1;
                            Some(Ok(values))
                        }
                        other => {
                            match other {
                                Some(Lookup::Miss) => stats.cache_misses += 1,
                                Some(Lookup::Invalid) => stats.cache_invalid += 1,
                                _ => {}
                            }
                            pending.push(Pending {
                                index,
                                name,
                                bytes,
                                content,
                            });
                            None
                        }
                    }
                }
            };
            stats.read_seconds += start.elapsed().as_secs_f64();
            if let Some(outcome) = ready
                && tx.send(Step::Ready { index, outcome }).is_err()
            {
                return stats;
            }
            if pending.len() >= self.group {
                let group = self.decode(&mut pending, &mut stats);
                if tx.send(Step::Decoded(group)).is_err() {
                    return stats;
                }
            }
        }
        if !pending.is_empty() {
            let group = self.decode(&mut pending, &mut stats);
            // A closed channel here only means the forward side stopped; nothing is left to do.
            let _ = tx.send(Step::Decoded(group));
        }
        stats
    }

    /// Decodes and preprocesses the pending images' views, `decoders` images at a time.
    fn decode(&self, pending: &mut Vec<Pending>, stats: &mut ExtractionStats) -> Group {
        let start = Instant::now();
        let (views, resolution) = (self.views, self.resolution);
        let decode = |p: &Pending| -> Result<Vec<Vec<f32>>, ImageErrorKind> {
            let image = decode_bytes(&p.bytes, &p.name).map_err(|e| e.kind)?;
            Ok(match views {
                Views::Eval => vec![eval_preprocess(&image, resolution)],
                Views::Augmented { copies, seed } => (0..copies)
                    .map(|c| augmentation(seed, &p.content, c).apply(&image, resolution))
                    .collect(),
            })
        };
        // One decoder works on this thread; more take one chunk each on the rayon pool.
        let decoded: Vec<Result<Vec<Vec<f32>>, ImageErrorKind>> = if self.decoders <= 1 {
            pending.iter().map(decode).collect()
        } else {
            let chunk = pending.len().div_ceil(self.decoders);
            pending
                .par_chunks(chunk)
                .map(|c| c.iter().map(decode).collect::<Vec<_>>())
                .collect::<Vec<_>>()
                .into_iter()
                .flatten()
                .collect()
        };
        let mut group = Group {
            images: pending.len(),
            owners: Vec::new(),
            input: Vec::new(),
            failed: Vec::new(),
        };
        let per = views.count();
        for (p, result) in pending.drain(..).zip(decoded) {
            match result {
                Err(kind) => group.failed.push(FailedImage {
                    image: p.name,
                    error: kind.to_string(),
                }),
                Ok(inputs) => {
                    for (v, values) in inputs.into_iter().enumerate() {
                        group.owners.push((p.index * per + v, p.content));
                        group.input.extend(values);
                    }
                }
            }
        }
        stats.decode_seconds += start.elapsed().as_secs_f64();
        group
    }
}

impl Extractor<'_> {
    /// The features of `paths` in `views`. `progress(done, total)` is called before the first
    /// image and as images finish (on the calling thread); `Break` stops the extraction.
    ///
    /// Files are read, hashed and decoded on a second thread ([`Reader`]) while this one runs
    /// the forward passes on the runner's threads, so decoding overlaps inference; the groups
    /// and batches are the same as one thread doing both would form, in file order, so the
    /// features are the same.
    pub fn extract(
        &mut self,
        paths: &[PathBuf],
        views: Views,
        progress: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
    ) -> Result<Extracted, ExtractError> {
        let started = Instant::now();
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
        let total = paths.len();
        if progress(0, total).is_break() {
            return Err(ExtractError::Stopped);
        }
        let reader = Reader {
            cache: match views {
                Views::Eval => self.cache,
                Views::Augmented { .. } => None,
            },
            views,
            group: (self.batch / per).max(1),
            decoders: self.decoders.max(1),
            resolution: self.runner.net().config().resolution,
        };
        let cache = reader.cache;
        let (tx, rx) = mpsc::sync_channel(QUEUED_GROUPS);
        let finished = std::thread::scope(|scope| {
            let reading = std::thread::Builder::new()
                .name("mobilenet-decode".into())
                .spawn_scoped(scope, move || reader.run(paths, &tx))
                .map_err(|e| ExtractError::Thread(e.to_string()))?;
            // `rx` moves into `consume` and is dropped when it returns, early or not, so a
            // reader blocked on a full queue wakes, sees the channel closed and ends.
            let consumed = self.consume(rx, cache, &mut out, progress);
            let read = reading
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            out.stats.add(&read);
            consumed
        });
        out.stats.failed = out.failed.len();
        out.stats.seconds = started.elapsed().as_secs_f64();
        finished?;
        if progress(total, total).is_break() {
            return Err(ExtractError::Stopped);
        }
        Ok(out)
    }

    /// Takes the reader's steps in order: records ready images, runs decoded groups through
    /// the backbone and caches their features, reporting progress after each step.
    fn consume(
        &mut self,
        rx: Receiver<Step>,
        cache: Option<&FeatureCache>,
        out: &mut Extracted,
        progress: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
    ) -> Result<(), ExtractError> {
        let total = out.features.len() / out.views.max(1);
        let mut done = 0;
        loop {
            let start = Instant::now();
            let Ok(step) = rx.recv() else { break };
            out.stats.wait_seconds += start.elapsed().as_secs_f64();
            match step {
                Step::Ready { index, outcome } => {
                    match outcome {
                        Ok(values) => out.features[index] = Some(values),
                        Err(failed) => out.failed.push(failed),
                    }
                    done += 1;
                }
                Step::Decoded(group) => {
                    self.forward(&group, cache, out)?;
                    out.failed.extend(group.failed);
                    done += group.images;
                }
            }
            if progress(done, total).is_break() {
                return Err(ExtractError::Stopped);
            }
        }
        Ok(())
    }

    /// Runs a decoded group's views through the backbone, `batch` at a time, and caches them.
    fn forward(
        &mut self,
        group: &Group,
        cache: Option<&FeatureCache>,
        out: &mut Extracted,
    ) -> Result<(), ExtractError> {
        let per_input = self.runner.input_len();
        let width = out.width;
        let batch = self.batch.max(1);
        for (owners, input) in group
            .owners
            .chunks(batch)
            .zip(group.input.chunks(batch * per_input))
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

    /// Seven images with an unreadable file third, a small random v1 on 2 threads, batch 2.
    fn setup(dir: &Path) -> (Vec<PathBuf>, Runner, FeatureCache) {
        let mut paths = Vec::new();
        for i in 0..7u8 {
            let path = dir.join(format!("{i}.png"));
            if i == 2 {
                std::fs::write(&path, b"not an image").unwrap();
            } else {
                let image = image::RgbImage::from_fn(40 + u32::from(i), 36, |x, y| {
                    image::Rgb([i * 30, (x * 5) as u8, (y * 7) as u8])
                });
                image.save(&path).unwrap();
            }
            paths.push(path);
        }
        let config = crate::arch::Config::family(Family::V1, 0.25, 64).unwrap();
        let net = crate::nn::MobileNet::random(config, 7, &candle_core::Device::Cpu).unwrap();
        let runner = Runner::new(net, crate::infer::EngineKind::Fast, 2).unwrap();
        let key = super::super::cache::CacheKey {
            model: "random".into(),
            weights: sha256(b"random"),
            resolution: 64,
            crop: crate::vision::CROP_FRACTION,
            feature_len: runner.feature_len(),
        };
        let cache = FeatureCache::open(&dir.join("cache"), &key).unwrap();
        (paths, runner, cache)
    }

    #[test]
    fn pipelined_extraction_matches_one_forward_pass_per_image_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let (paths, mut runner, cache) = setup(dir.path());
        // Alone, each image's features (batch 1, no cache).
        let alone: Vec<Option<Vec<f32>>> = paths
            .iter()
            .map(|p| {
                let image = decode_bytes(&std::fs::read(p).unwrap(), "x").ok()?;
                Some(runner.features(&eval_preprocess(&image, 64), 1).unwrap())
            })
            .collect();
        // Image 4 is already cached: a hit between misses.
        let four = sha256(&std::fs::read(&paths[4]).unwrap());
        cache.put(&four, alone[4].as_ref().unwrap()).unwrap();
        let mut seen = Vec::new();
        let mut extractor = Extractor {
            runner: &mut runner,
            cache: Some(&cache),
            batch: 2,
            decoders: 2,
        };
        let out = extractor
            .extract(&paths, Views::Eval, &mut |done, total| {
                seen.push((done, total));
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(out.failed.len(), 1);
        assert!(out.failed[0].image.ends_with("2.png"), "{:?}", out.failed);
        assert_eq!(out.features.len(), 7);
        for (i, (got, want)) in out.features.iter().zip(&alone).enumerate() {
            match (got, want) {
                (Some(got), Some(want)) => {
                    let diff = got
                        .iter()
                        .zip(want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0, f32::max);
                    assert!(diff < 1e-4, "image {i}: off by {diff}");
                }
                (None, None) => {}
                _ => panic!("image {i}: {got:?} against {want:?}"),
            }
        }
        // The file that is no image reads (a miss) and fails to decode.
        let s = &out.stats;
        assert_eq!(
            (
                s.cache_hits,
                s.cache_misses,
                s.forwarded,
                s.cache_writes,
                s.failed
            ),
            (1, 6, 5, 5, 1)
        );
        assert!(
            s.seconds > 0.0
                && s.seconds
                    <= s.read_seconds
                        + s.decode_seconds
                        + s.forward_seconds
                        + s.write_seconds
                        + s.wait_seconds
                        + 1.0
        );
        assert_eq!(seen.first(), Some(&(0, 7)));
        assert_eq!(seen.last(), Some(&(7, 7)));
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");

        // A second run takes everything from the cache: the same values, bit for bit.
        let again = extractor
            .extract(&paths, Views::Eval, &mut |_, _| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!(again.features, out.features);
        assert_eq!((again.stats.cache_hits, again.stats.forwarded), (6, 0));
    }

    #[test]
    fn a_stop_ends_the_reading_thread_too() {
        let dir = tempfile::tempdir().unwrap();
        let (paths, mut runner, _) = setup(dir.path());
        let mut extractor = Extractor {
            runner: &mut runner,
            cache: None,
            batch: 1,
            decoders: 1,
        };
        let mut calls = 0;
        let stopped = extractor.extract(&paths, Views::Eval, &mut |done, _| {
            calls += 1;
            if done >= 1 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        // Returning at all means the reader, blocked on a full queue, saw it closed and ended.
        assert!(matches!(stopped, Err(ExtractError::Stopped)), "{stopped:?}");
        assert_eq!(calls, 2, "stopped at the first image done");
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

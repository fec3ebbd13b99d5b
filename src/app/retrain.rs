//! `retrain`: a new classifier head for a pretrained backbone on the user's labelled folder,
//! written as the whole network (`transfer` does the work; this wires it to the plan, the
//! progress bars, the output files and the report).

use std::ops::ControlFlow;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use indicatif::ProgressBar;
use serde_json::json;

use super::emit::emit;
use super::network::{load_from, off_resolution_note, weights_bytes};
use super::plan::{CachePlan, RetrainPlan, RunPlan, available_cpus};
use super::{exit, interrupt, progress_bar};
use crate::arch::Config;
use crate::infer::Runner;
use crate::memory::estimate;
use crate::nn::{MobileNet, WeightOverrides};
use crate::output::path_text;
use crate::report;
use crate::transfer::report::{BaseModelInfo, ClassInfo, DataInfo, TrainingInfo};
use crate::transfer::{
    CacheKey, Epoch, ExportInfo, FeatureCache, FeaturesInfo, Observer, Options, RetrainReport, TransferError,
    features_file, network_file, retrain, sha256, split_folder,
};
use crate::vision::{CROP_FRACTION, MAX_ALLOC_BYTES};

/// Images decoded at once. Decoding overlaps the forward passes, which keep `--threads` CPUs
/// busy, so it takes the CPUs left beside them (one thread, the reading thread itself, when
/// `--threads` takes them all), no more than the rayon pool's `--threads` workers or the batch,
/// and no more than the memory limit leaves room for beside the run's own estimate (each
/// decode may take [`MAX_ALLOC_BYTES`]); at least one.
pub(super) fn decoders(run: &RunPlan, config: &Config, batch: usize) -> usize {
    let own = estimate(config, batch, run.engine, run.precision, 0).total();
    let room = run.memory_limit.bytes.saturating_sub(own) / MAX_ALLOC_BYTES;
    let spare = available_cpus().saturating_sub(run.threads);
    usize::try_from(room)
        .unwrap_or(usize::MAX)
        .min(spare)
        .clamp(1, run.threads.min(batch).max(1))
}

/// The cache the plan asks for, opened; a default cache that cannot be created is a warning,
/// not a failure (the run goes on without one).
pub(super) fn open_cache(plan: &CachePlan, key: &CacheKey, quiet: bool) -> Result<Option<FeatureCache>> {
    match plan {
        CachePlan::Off => Ok(None),
        CachePlan::Given(root) => FeatureCache::open(root, key)
            .map(Some)
            .with_context(|| format!("--cache-dir {}: cannot create the cache", path_text(root))),
        CachePlan::Default(None) => {
            if !quiet {
                eprintln!(
                    "warning: no cache folder (neither XDG_CACHE_HOME nor HOME is set): features are not cached"
                );
            }
            Ok(None)
        }
        CachePlan::Default(Some(root)) => match FeatureCache::open(root, key) {
            Ok(cache) => Ok(Some(cache)),
            Err(e) => {
                if !quiet {
                    eprintln!(
                        "warning: {}: cannot create the feature cache ({e}); features are not cached",
                        path_text(root)
                    );
                }
                Ok(None)
            }
        },
    }
}

/// Progress bars on stderr (hidden with --quiet or off a terminal); every update is also the
/// interruption checkpoint.
struct Bars {
    quiet: bool,
    features: Option<ProgressBar>,
    training: Option<ProgressBar>,
}

pub(super) fn checkpoint() -> ControlFlow<()> {
    match interrupt::check() {
        Ok(()) => ControlFlow::Continue(()),
        Err(_) => ControlFlow::Break(()),
    }
}

impl Observer for Bars {
    fn features(&mut self, augmented: bool, done: usize, total: usize) -> ControlFlow<()> {
        let quiet = self.quiet;
        let bar = self.features.get_or_insert_with(|| {
            progress_bar(
                total as u64,
                quiet,
                if augmented { "augment" } else { "features" },
                "images",
            )
        });
        bar.set_position(done as u64);
        if done == total {
            bar.finish_and_clear();
            self.features = None;
        }
        checkpoint()
    }

    fn epoch(&mut self, epoch: &Epoch, max_epochs: usize) -> ControlFlow<()> {
        let quiet = self.quiet;
        let bar = self
            .training
            .get_or_insert_with(|| progress_bar(max_epochs as u64, quiet, "train", "epochs"));
        bar.set_position(epoch.epoch as u64);
        bar.set_message(match (epoch.validation_loss, epoch.validation_accuracy) {
            (Some(loss), Some(accuracy)) => format!(
                "loss {:.4}, validation loss {loss:.4}, accuracy {:.1}%",
                epoch.train_loss,
                accuracy * 100.0
            ),
            _ => format!("loss {:.4}", epoch.train_loss),
        });
        checkpoint()
    }
}

impl Bars {
    fn finish(&mut self) {
        for bar in [self.features.take(), self.training.take()].into_iter().flatten() {
            bar.finish_and_clear();
        }
    }
}

pub fn run_retrain(plan: &RetrainPlan) -> Result<ExitCode> {
    let started = Instant::now();
    let data = split_folder(&plan.dir, &plan.split)?;
    let base = weights_bytes(&plan.model)?.context("retrain needs pretrained weights")?;
    let loaded = load_from(&plan.model, Some(&base), &plan.run, plan.batch, MAX_ALLOC_BYTES)?;
    if let Some(note) = off_resolution_note(&loaded.net)
        && !plan.quiet
    {
        eprintln!("{note}");
    }
    let config = *loaded.net.config();
    let trained_resolution = loaded.net.trained_resolution();
    let name = loaded.net.name().to_string();
    let base_sha = sha256(&base);
    let mut runner = Runner::new(loaded.net, plan.run.engine, plan.run.threads)?;
    let key = CacheKey {
        model: name.clone(),
        weights: base_sha,
        resolution: config.resolution,
        crop: CROP_FRACTION,
        feature_len: runner.feature_len(),
    };
    let cache = open_cache(&plan.cache, &key, plan.quiet)?;
    let options = Options {
        batch: plan.batch,
        decoders: decoders(&plan.run, &config, plan.batch),
        augment: plan.augment,
        head: plan.head.clone(),
    };
    let mut bars = Bars {
        quiet: plan.quiet,
        features: None,
        training: None,
    };
    let outcome = retrain(&mut runner, &data, cache.as_ref(), &options, &mut bars);
    bars.finish();
    let retrained = match outcome {
        Ok(r) => r,
        Err(TransferError::Stopped) => {
            return Err(interrupt::requested()
                .unwrap_or(super::Interrupted(libc::SIGINT))
                .into());
        }
        Err(e) => return Err(e.into()),
    };

    let training = json!({
        "settings": plan.head,
        "augment_copies": plan.augment,
        "split": data.rule,
        "train_vectors": train_vectors(&retrained),
        "epochs_run": retrained.training.epochs.len(),
        "best_epoch": retrained.training.best_epoch,
        "validation_accuracy": retrained.validation.as_ref().map(|s| s.accuracy),
        "test_accuracy": retrained.test.as_ref().map(|s| s.accuracy),
        "test_images": retrained.test.as_ref().map(|s| s.images),
    });
    let file = network_file(
        &base,
        &retrained.head,
        &ExportInfo {
            config: &config,
            labels: &data.classes,
            base_model: &name,
            base_weights: &base_sha,
            feature: &retrained.feature,
            training: &training,
        },
    )?;
    // What is written must load back as the network it claims to be.
    let check = MobileNet::from_bytes(
        &file,
        "retrained",
        "the retrained network",
        WeightOverrides::default(),
        &Device::Cpu,
    )
    .context("the retrained network does not load back")?;
    anyhow::ensure!(
        check.labels() == Some(&data.classes[..]),
        "the retrained network does not load back with its labels"
    );
    plan.output
        .write(&file)
        .with_context(|| format!("--output {}: write failed", path_text(plan.output.shown())))?;
    if let Some(out) = &plan.features_out {
        let bytes = features_file(
            &data.examples,
            &retrained.features,
            &FeaturesInfo {
                classes: &data.classes,
                base_model: &name,
                base_weights: &base_sha,
                resolution: config.resolution,
                feature: &retrained.feature,
            },
        )?;
        out.write(&bytes)
            .with_context(|| format!("--features-out {}: write failed", path_text(out.shown())))?;
    }

    let report = RetrainReport {
        schema_version: 1,
        model: BaseModelInfo {
            name,
            family: config.family,
            alpha: config.alpha,
            depth_multiplier: config.depth_multiplier,
            variant: config.variant,
            minimalistic: config.minimalistic,
            resolution: config.resolution,
            trained_resolution,
            weights_sha256: crate::transfer::cache::hex(&base_sha),
        },
        feature: retrained.feature.clone(),
        output: path_text(plan.output.shown()),
        features_out: plan.features_out.as_ref().map(|f| path_text(f.shown())),
        engine: plan.run.engine,
        threads: plan.run.threads,
        decode_threads: options.decoders,
        batch: plan.batch,
        data: DataInfo {
            dir: path_text(&data.dir),
            split: data.rule.clone(),
            classes: ClassInfo::list(&data.classes, &retrained.counts),
            failed: retrained.failed.clone(),
            unlabelled: data.unlabelled.iter().map(|p| path_text(p)).collect(),
            skipped: data.skipped.len(),
        },
        settings: plan.head.clone(),
        augment: plan.augment,
        training: TrainingInfo {
            vectors: train_vectors(&retrained),
            epochs: retrained.training.epochs.clone(),
            best_epoch: retrained.training.best_epoch,
            stopped_early: retrained.training.stopped_early,
            seconds: retrained.training.seconds,
        },
        validation: retrained.validation.clone(),
        test: retrained.test.clone(),
        features: retrained.extraction.clone(),
        augmentation: retrained.augmentation.clone(),
        cache_dir: cache.as_ref().map(|c| path_text(c.dir())),
        total_seconds: started.elapsed().as_secs_f64(),
    };
    for line in report::retrain_failures(&report) {
        eprintln!("error: {line}");
    }
    emit(&plan.report, &report)?;
    Ok(ExitCode::from(if report.data.failed.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    }))
}

/// Training vectors: the usable training images, and their augmented views.
fn train_vectors(retrained: &crate::transfer::Retrained) -> usize {
    let images: usize = retrained.counts.iter().map(|c| c.train).sum();
    images + retrained.augmentation.as_ref().map_or(0, |a| a.forwarded)
}

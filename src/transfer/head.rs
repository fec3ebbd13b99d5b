//! The new classifier head: softmax regression on the backbone's features (one fully connected
//! layer, `logits`), trained with candle-nn.
//!
//! Training minimises cross-entropy with label smoothing (the target puts 1 - s on the true
//! class and s / K on each of the K classes; Szegedy et al. 2016, arXiv:1512.00567 section 7)
//! by AdamW (Loshchilov and Hutter 2019, arXiv:1711.05101: decoupled weight decay, applied to
//! the weights, not the biases) over shuffled minibatches. The features are standardised first
//! (each value minus its training mean, over its training standard deviation), which makes one
//! learning rate fit every backbone; the standardisation is folded back into the weights at the
//! end (W / sigma, b - W mu / sigma), so the head reads the raw features as the network's own
//! `logits` layer does.
//!
//! After each epoch the validation loss (plain cross-entropy) and accuracy are measured; the
//! head kept is the one of the epoch with the lowest validation loss, and training stops when
//! `patience` epochs in a row have not lowered it (early stopping). Without validation images
//! every epoch runs and the last head is kept. The weights start at zero and the only
//! randomness is the minibatch order, drawn from the seed: the same seed and data give the same
//! head, bit for bit.
//!
//! A hidden layer is not offered: the head must be the network's own `logits` layer for the
//! written file to be a MobileNet that `classify`, `evaluate`, `bench` and both engines read.
//! A second FC layer would be a new layer in the architecture spec (`arch::spec`), in the
//! weights format, in both engines and in the cost model; none of those has one.

use std::ops::ControlFlow;
use std::time::Instant;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use serde::Serialize;

use crate::nn::SplitMix64;

/// How the head is trained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadSettings {
    /// AdamW's step size.
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay (per step, times the learning rate), on the weights.
    pub weight_decay: f64,
    /// The share of the target spread over all classes, in [0, 1).
    pub label_smoothing: f64,
    /// Feature vectors per training step.
    pub batch: usize,
    /// The most epochs to run.
    pub max_epochs: usize,
    /// Epochs without a lower validation loss before training stops.
    pub patience: usize,
    /// Seeds the minibatch order (and the augmentation).
    pub seed: u64,
}

impl Default for HeadSettings {
    fn default() -> Self {
        HeadSettings {
            learning_rate: 1e-3,
            weight_decay: 1e-2,
            label_smoothing: 0.1,
            batch: 32,
            max_epochs: 100,
            patience: 10,
            seed: 0,
        }
    }
}

/// Labelled feature vectors, row-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    pub width: usize,
    /// `[len, width]`.
    pub values: Vec<f32>,
    /// Class of each row.
    pub labels: Vec<usize>,
}

impl Samples {
    pub fn new(width: usize) -> Samples {
        Samples {
            width,
            ..Samples::default()
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn push(&mut self, row: &[f32], label: usize) {
        debug_assert_eq!(row.len(), self.width);
        self.values.extend_from_slice(row);
        self.labels.push(label);
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
}

/// A trained head: `logits = weight x + bias` on the raw features.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub classes: usize,
    pub width: usize,
    /// `[classes, width]`, row-major (the `logits.weight` layout).
    pub weight: Vec<f32>,
    /// `[classes]`.
    pub bias: Vec<f32>,
}

impl Head {
    /// The logits of one feature vector.
    pub fn logits(&self, features: &[f32]) -> Vec<f32> {
        self.weight
            .chunks_exact(self.width)
            .zip(&self.bias)
            .map(|(w, b)| w.iter().zip(features).map(|(w, x)| w * x).sum::<f32>() + b)
            .collect()
    }

    /// Softmax probabilities of one feature vector.
    pub fn probabilities(&self, features: &[f32]) -> Vec<f32> {
        let logits = self.logits(features);
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        exp.into_iter().map(|e| e / sum).collect()
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Epoch {
    /// From 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps (with label smoothing).
    pub train_loss: f64,
    /// Cross-entropy on the validation images after the epoch (None without them).
    pub validation_loss: Option<f64>,
    pub validation_accuracy: Option<f64>,
}

/// The outcome of training.
#[derive(Debug, Clone, PartialEq)]
pub struct Training {
    /// The head of the best epoch.
    pub head: Head,
    pub epochs: Vec<Epoch>,
    /// The epoch whose head was kept (from 1).
    pub best_epoch: usize,
    /// Whether early stopping ended training before `max_epochs`.
    pub stopped_early: bool,
    pub seconds: f64,
}

/// Why training could not run.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("no training vectors")]
    Empty,
    #[error("a label is outside the {classes} classes")]
    Label { classes: usize },
    #[error("invalid training setting: {0}")]
    Settings(String),
    /// The caller asked to stop (an interruption).
    #[error("stopped")]
    Stopped,
    #[error("training failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Per-feature mean and standard deviation of the training rows (a constant feature gets 1).
fn moments(train: &Samples) -> (Vec<f64>, Vec<f64>) {
    let n = train.len() as f64;
    let mut mean = vec![0f64; train.width];
    for i in 0..train.len() {
        for (m, &x) in mean.iter_mut().zip(train.row(i)) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; train.width];
    for i in 0..train.len() {
        for ((v, &x), m) in var.iter_mut().zip(train.row(i)).zip(&mean) {
            *v += (f64::from(x) - m).powi(2);
        }
    }
    let std = var
        .into_iter()
        .map(|v| {
            let s = (v / n).sqrt();
            if s > 1e-6 { s } else { 1.0 }
        })
        .collect();
    (mean, std)
}

/// `samples` standardised, as a `[len, width]` tensor, with the labels as a u32 tensor.
fn tensors(
    samples: &Samples,
    mean: &[f64],
    std: &[f64],
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let values: Vec<f32> = samples
        .values
        .chunks_exact(samples.width)
        .flat_map(|row| {
            row.iter()
                .zip(mean.iter().zip(std))
                .map(|(&x, (m, s))| ((f64::from(x) - m) / s) as f32)
        })
        .collect();
    let labels: Vec<u32> = samples.labels.iter().map(|&l| l as u32).collect();
    Ok((
        Tensor::from_vec(values, (samples.len(), samples.width), device)?,
        Tensor::from_vec(labels, samples.len(), device)?,
    ))
}

/// Cross-entropy of `logits` against targets spreading `smoothing` over the classes.
fn loss(logits: &Tensor, labels: &Tensor, classes: usize, smoothing: f64) -> candle_core::Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let one_hot = candle_nn::encoding::one_hot(labels.clone(), classes, 1f32, 0f32)?;
    let targets = ((one_hot * (1.0 - smoothing))? + smoothing / classes as f64)?;
    (log_p * targets)?.sum(D::Minus1)?.mean_all()?.neg()
}

/// Trains a head on `train`, stopping early on `validation`. `on_epoch` sees each epoch's
/// figures; `Break` stops training (an interruption: an error, no head).
pub fn train(
    train: &Samples,
    validation: Option<&Samples>,
    classes: usize,
    settings: &HeadSettings,
    on_epoch: &mut dyn FnMut(&Epoch) -> ControlFlow<()>,
) -> Result<Training, HeadError> {
    let started = Instant::now();
    if train.is_empty() {
        return Err(HeadError::Empty);
    }
    let all_labels = train
        .labels
        .iter()
        .chain(validation.iter().flat_map(|v| &v.labels));
    if classes < 2 || all_labels.clone().any(|&l| l >= classes) {
        return Err(HeadError::Label { classes });
    }
    let valid = settings.learning_rate.is_finite()
        && settings.learning_rate > 0.0
        && (0.0..1.0).contains(&settings.label_smoothing)
        && settings.weight_decay.is_finite()
        && settings.weight_decay >= 0.0
        && settings.batch > 0
        && settings.max_epochs > 0;
    if !valid {
        return Err(HeadError::Settings(format!("{settings:?}")));
    }
    let device = Device::Cpu;
    let width = train.width;
    let (mean, std) = moments(train);
    let (xs, ys) = tensors(train, &mean, &std, &device)?;
    let validation = validation
        .filter(|v| !v.is_empty())
        .map(|v| tensors(v, &mean, &std, &device).map(|t| (t, v.labels.clone())))
        .transpose()?;

    let weight = Var::zeros((classes, width), DType::F32, &device)?;
    let bias = Var::zeros(classes, DType::F32, &device)?;
    let adam = |decay: f64| ParamsAdamW {
        lr: settings.learning_rate,
        weight_decay: decay,
        ..ParamsAdamW::default()
    };
    let mut weight_opt = AdamW::new(vec![weight.clone()], adam(settings.weight_decay))?;
    let mut bias_opt = AdamW::new(vec![bias.clone()], adam(0.0))?;
    let forward = |x: &Tensor| {
        x.matmul(&weight.as_tensor().t()?)?
            .broadcast_add(bias.as_tensor())
    };

    let mut rng = SplitMix64(settings.seed);
    let mut order: Vec<u32> = (0..train.len() as u32).collect();
    let mut epochs = Vec::new();
    let mut best: Option<(f64, usize, Vec<f32>, Vec<f32>)> = None;
    let mut stopped_early = false;
    for epoch in 1..=settings.max_epochs {
        // Fisher-Yates, from the seed.
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut total = 0f64;
        for chunk in order.chunks(settings.batch) {
            let index = Tensor::from_slice(chunk, chunk.len(), &device)?;
            let x = xs.index_select(&index, 0)?;
            let y = ys.index_select(&index, 0)?;
            let batch_loss = loss(&forward(&x)?, &y, classes, settings.label_smoothing)?;
            let grads = batch_loss.backward()?;
            weight_opt.step(&grads)?;
            bias_opt.step(&grads)?;
            total += f64::from(batch_loss.to_scalar::<f32>()?) * chunk.len() as f64;
        }
        let (validation_loss, validation_accuracy) = match &validation {
            Some(((vx, vy), labels)) => {
                let logits = forward(vx)?;
                let l = f64::from(loss(&logits, vy, classes, 0.0)?.to_scalar::<f32>()?);
                let predicted: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
                let correct = predicted
                    .iter()
                    .zip(labels)
                    .filter(|(p, l)| **p as usize == **l)
                    .count();
                (Some(l), Some(correct as f64 / labels.len() as f64))
            }
            None => (None, None),
        };
        let figures = Epoch {
            epoch,
            train_loss: total / train.len() as f64,
            validation_loss,
            validation_accuracy,
        };
        let stop = on_epoch(&figures).is_break();
        epochs.push(figures);
        if stop {
            return Err(HeadError::Stopped);
        }
        let score = validation_loss.unwrap_or(f64::NEG_INFINITY);
        if best
            .as_ref()
            .is_none_or(|(b, ..)| score < *b || validation_loss.is_none())
        {
            best = Some((
                score,
                epoch,
                weight.as_tensor().flatten_all()?.to_vec1()?,
                bias.as_tensor().to_vec1()?,
            ));
        } else if best
            .as_ref()
            .is_some_and(|(_, e, ..)| epoch - e >= settings.patience)
        {
            stopped_early = epoch < settings.max_epochs;
            break;
        }
    }
    let Some((_, best_epoch, w, b)) = best else {
        return Err(HeadError::Empty);
    };
    Ok(Training {
        head: unstandardise(&w, &b, &mean, &std, classes),
        epochs,
        best_epoch,
        stopped_early,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The head on raw features equal to `w`, `b` on standardised ones: W / sigma and
/// b - W mu / sigma, computed in f64.
fn unstandardise(w: &[f32], b: &[f32], mean: &[f64], std: &[f64], classes: usize) -> Head {
    let width = mean.len();
    let mut weight = Vec::with_capacity(w.len());
    let mut bias = Vec::with_capacity(classes);
    for (row, &b) in w.chunks_exact(width).zip(b) {
        let mut shift = f64::from(b);
        for ((&w, m), s) in row.iter().zip(mean).zip(std) {
            let scaled = f64::from(w) / s;
            weight.push(scaled as f32);
            shift -= scaled * m;
        }
        bias.push(shift as f32);
    }
    Head {
        classes,
        width,
        weight,
        bias,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` vectors of `width` values in `classes` Gaussian-ish clusters (a fixed LCG), with
    /// an offset and scale far from standard, so standardisation matters.
    pub(crate) fn clusters(n: usize, width: usize, classes: usize, seed: u64) -> Samples {
        let mut rng = SplitMix64(seed);
        let mut samples = Samples::new(width);
        for i in 0..n {
            let class = i % classes;
            let row: Vec<f32> = (0..width)
                .map(|j| {
                    let noise = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    let centre = if j % classes == class { 1.0 } else { 0.0 };
                    50.0 + 10.0 * (centre + noise)
                })
                .collect();
            samples.push(&row, class);
        }
        samples
    }

    fn accuracy(head: &Head, samples: &Samples) -> f64 {
        let correct = (0..samples.len())
            .filter(|&i| {
                let logits = head.logits(samples.row(i));
                let best = (0..logits.len())
                    .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
                    .unwrap();
                best == samples.labels[i]
            })
            .count();
        correct as f64 / samples.len() as f64
    }

    #[test]
    fn a_separable_task_is_learnt_and_the_folded_head_reads_raw_features() {
        let train_set = clusters(300, 16, 3, 1);
        let val = clusters(60, 16, 3, 2);
        let settings = HeadSettings {
            max_epochs: 30,
            ..HeadSettings::default()
        };
        let mut seen = 0;
        let trained = train(&train_set, Some(&val), 3, &settings, &mut |e| {
            seen += 1;
            assert_eq!(e.epoch, seen);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seen, trained.epochs.len());
        assert!(
            accuracy(&trained.head, &val) > 0.95,
            "{:?}",
            trained.epochs.last()
        );
        let best = &trained.epochs[trained.best_epoch - 1];
        assert!(
            trained
                .epochs
                .iter()
                .all(|e| e.validation_loss.unwrap() >= best.validation_loss.unwrap())
        );
        // The probabilities sum to 1 and the head's argmax is the logits'.
        let p = trained.head.probabilities(val.row(0));
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }

    #[test]
    fn the_same_seed_gives_the_same_head_and_another_seed_another() {
        let data = clusters(100, 8, 2, 3);
        let settings = HeadSettings {
            max_epochs: 5,
            ..HeadSettings::default()
        };
        let run = |seed| {
            train(
                &data,
                None,
                2,
                &HeadSettings {
                    seed,
                    ..settings.clone()
                },
                &mut |_| ControlFlow::Continue(()),
            )
            .unwrap()
        };
        let (a, b, c) = (run(7), run(7), run(8));
        assert_eq!(a.head, b.head);
        assert_eq!(a.epochs, b.epochs);
        assert_ne!(a.head, c.head);
        assert_eq!(
            (a.best_epoch, a.stopped_early),
            (5, false),
            "no validation: the last epoch"
        );
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch() {
        // Labels that carry no signal: validation loss stops improving soon.
        let mut noise = clusters(200, 8, 2, 4);
        noise
            .labels
            .iter_mut()
            .enumerate()
            .for_each(|(i, l)| *l = (i / 2) % 2);
        let val = clusters(40, 8, 2, 5);
        let settings = HeadSettings {
            patience: 3,
            max_epochs: 200,
            ..HeadSettings::default()
        };
        let t = train(&noise, Some(&val), 2, &settings, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(t.stopped_early, "{} epochs", t.epochs.len());
        assert_eq!(t.epochs.len(), t.best_epoch + 3);
    }

    #[test]
    fn bad_input_and_a_stop_are_errors() {
        let data = clusters(10, 4, 2, 6);
        let go = &mut |_: &Epoch| ControlFlow::Continue(());
        let s = HeadSettings::default();
        assert!(matches!(
            train(&Samples::new(4), None, 2, &s, go),
            Err(HeadError::Empty)
        ));
        assert!(matches!(
            train(&data, None, 1, &s, go),
            Err(HeadError::Label { .. })
        ));
        let bad = HeadSettings {
            label_smoothing: 1.0,
            ..s.clone()
        };
        assert!(matches!(
            train(&data, None, 2, &bad, go),
            Err(HeadError::Settings(_))
        ));
        let stop = &mut |_: &Epoch| ControlFlow::Break(());
        assert!(matches!(train(&data, None, 2, &s, stop), Err(HeadError::Stopped)));
    }

    /// Issue 12's figure: a head on 10,000 vectors of 1024 values, 10 classes, trains in
    /// seconds. Run with `--release --nocapture` (`cargo test --release --lib ten_thousand --
    /// --nocapture`) to see the time; nothing here asserts it.
    #[test]
    fn ten_thousand_vectors_train() {
        let data = clusters(10_000, 1024, 10, 9);
        let val = clusters(1_000, 1024, 10, 10);
        let settings = HeadSettings {
            max_epochs: 10,
            ..HeadSettings::default()
        };
        let t = train(&data, Some(&val), 10, &settings, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        eprintln!(
            "10,000 x 1024 vectors, 10 classes: {} epochs in {:.2} s ({:.3} s per epoch)",
            t.epochs.len(),
            t.seconds,
            t.seconds / t.epochs.len() as f64
        );
        assert!(accuracy(&t.head, &val) > 0.95);
    }
}

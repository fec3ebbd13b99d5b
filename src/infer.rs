//! The inference engines behind `classify`, `evaluate`, `bench` and `sweep`: one [`Runner`] over
//! a loaded [`MobileNet`], either the project's own kernels (`fast`, the default: see
//! `crate::engine`) or the plain candle-ops network (`reference`, kept to check the fast one).
//!
//! Inputs and outputs are flat `f32` slices (NCHW images in, one row per image out), so the
//! fast engine reads the caller's batch where it lies; only the reference engine wraps it in a
//! candle tensor. Besides logits and probabilities a runner returns each image's features,
//! the input of the final FC layer, for work on the backbone's embedding (a new classifier
//! head, issue 12).

use std::time::{Duration, Instant};

use candle_core::{Result, Tensor, bail};
use serde::Serialize;

use crate::engine::Engine;
use crate::nn::MobileNet;

/// Which inference implementation runs the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The project's own kernels: direct depthwise, GEMM pointwise on NHWC, fused bias and
    /// activation, squeeze-and-excite.
    Fast,
    /// Plain candle tensor operations.
    Reference,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Fast => "fast",
            EngineKind::Reference => "reference",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A network ready to run on one engine.
pub struct Runner {
    net: MobileNet,
    fast: Option<Box<Engine>>,
}

impl Runner {
    /// Prepares `net` for `kind` with `threads` inference threads: the fast engine packs the
    /// weights (BatchNorm folded) and allocates its buffers once, here.
    pub fn new(net: MobileNet, kind: EngineKind, threads: usize) -> anyhow::Result<Runner> {
        let fast = match kind {
            EngineKind::Reference => None,
            EngineKind::Fast => {
                let weights = net.folded_weights()?;
                // The fast engine decides what it supports; a network it refuses is an error
                // telling the user how to run it, never a silent switch to the reference.
                match Engine::new(net.layers(), &weights, threads.max(1)) {
                    Ok(engine) => Some(Box::new(engine)),
                    Err(e) => anyhow::bail!(
                        "the fast engine cannot run {} ({e}); pass --engine reference",
                        net.config().label()
                    ),
                }
            }
        };
        Ok(Runner { net, fast })
    }

    pub fn net(&self) -> &MobileNet {
        &self.net
    }

    pub fn kind(&self) -> EngineKind {
        if self.fast.is_some() {
            EngineKind::Fast
        } else {
            EngineKind::Reference
        }
    }

    /// The instruction set the fast engine's kernels run on (`Isa::name`: "avx512f",
    /// "avx2+fma", "portable"), as `bench` records it; None for the reference engine.
    pub fn isa(&self) -> Option<&'static str> {
        self.fast.as_ref().map(|e| e.isa().name())
    }

    /// Floats of input per image: `[3, R, R]` at the network's resolution, NCHW.
    pub fn input_len(&self) -> usize {
        let r = self.net.config().resolution as usize;
        3 * r * r
    }

    /// Values per image [`Runner::features`] returns.
    pub fn feature_len(&self) -> usize {
        self.net.feature_len()
    }

    /// Logits `[batch, classes]`, row-major, for `input` `[batch, 3, R, R]` (NCHW, flat).
    pub fn forward(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.forward_layers(input, batch, &mut |_, _| {})
    }

    /// Softmax probabilities `[batch, classes]`, row-major.
    pub fn probabilities(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        let logits = self.forward(input, batch)?;
        if batch == 0 {
            return Ok(logits);
        }
        let classes = logits.len() / batch;
        // candle's softmax for both engines, so that they differ only where their logits do.
        let logits = Tensor::from_vec(logits, (batch, classes), self.net.device())?;
        candle_nn::ops::softmax_last_dim(&logits)?
            .flatten_all()?
            .to_vec1()
    }

    /// Logits, reporting each layer's wall time (index into `net().layers()`) as it finishes.
    pub fn forward_layers(
        &mut self,
        input: &[f32],
        batch: usize,
        on_layer: &mut dyn FnMut(usize, Duration),
    ) -> Result<Vec<f32>> {
        self.check_input(input, batch)?;
        if batch == 0 {
            return Ok(Vec::new());
        }
        let Some(engine) = self.fast.as_mut() else {
            let mut mark = Instant::now();
            let input = self.tensor(input, batch)?;
            let logits = self.net.forward_with_hook(&input, |index, _| {
                let now = Instant::now();
                on_layer(index, now - mark);
                mark = now;
            })?;
            return logits.flatten_all()?.to_vec1();
        };
        Ok(engine.forward_timed(input, batch, on_layer).to_vec())
    }

    /// The features `[batch, feature_len]`, row-major: the input of the network's final FC
    /// layer, computed without it ([`MobileNet::forward_features`]; on the fast engine
    /// `Engine::forward_features`, batched and threaded like a full pass).
    pub fn features(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.check_input(input, batch)?;
        if batch == 0 {
            return Ok(Vec::new());
        }
        match self.fast.as_mut() {
            Some(engine) => Ok(engine.forward_features(input, batch).to_vec()),
            None => {
                let input = self.tensor(input, batch)?;
                self.net.forward_features(&input)?.flatten_all()?.to_vec1()
            }
        }
    }

    fn check_input(&self, input: &[f32], batch: usize) -> Result<()> {
        let r = self.net.config().resolution;
        if input.len() != batch * self.input_len() {
            bail!(
                "input has {} values for {batch} images, expected [N, 3, {r}, {r}] with N = {batch}",
                input.len()
            );
        }
        Ok(())
    }

    /// `input` as the `[batch, 3, R, R]` tensor the reference engine runs on.
    fn tensor(&self, input: &[f32], batch: usize) -> Result<Tensor> {
        let r = self.net.config().resolution as usize;
        Tensor::from_slice(input, (batch, 3, r, r), self.net.device())
    }
}

/// A deterministic pseudo-random input in [-1, 1], `[batch, 3, res, res]` flat (a 64-bit LCG:
/// benchmarks need the same input every run, not good randomness).
pub fn synthetic_input(batch: usize, resolution: u32) -> Vec<f32> {
    let r = resolution as usize;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..batch * 3 * r * r)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

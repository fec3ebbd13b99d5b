//! The inference engines behind `classify`, `evaluate`, `bench` and `sweep`: one [`Runner`] over
//! a loaded [`MobileNet`], either the project's own kernels (`fast`, the default: see
//! `crate::engine`) or the plain candle-ops network (`reference`, kept to check the fast one).

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

    /// The instruction set the fast engine's kernels use ("avx512", "avx2", "portable"), if fast.
    pub fn isa(&self) -> Option<&'static str> {
        self.fast.as_ref().map(|e| e.isa().name())
    }

    /// Logits [N, classes] for `input` [N, 3, R, R].
    pub fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        self.forward_layers(input, &mut |_, _| {})
    }

    /// Softmax probabilities [N, classes].
    pub fn probabilities(&mut self, input: &Tensor) -> Result<Tensor> {
        candle_nn::ops::softmax_last_dim(&self.forward(input)?)
    }

    /// Logits, reporting each layer's wall time (index into `net().layers()`) as it finishes.
    pub fn forward_layers(
        &mut self,
        input: &Tensor,
        on_layer: &mut dyn FnMut(usize, Duration),
    ) -> Result<Tensor> {
        let Some(engine) = self.fast.as_mut() else {
            let mut mark = Instant::now();
            return self.net.forward_with_hook(input, |index, _| {
                let now = Instant::now();
                on_layer(index, now - mark);
                mark = now;
            });
        };
        let r = self.net.config().resolution as usize;
        let n = match input.dims4() {
            Ok((n, 3, h, w)) if h == r && w == r && n > 0 => n,
            _ => bail!("input has shape {:?}, expected [N, 3, {r}, {r}]", input.dims()),
        };
        let data = input
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let logits = engine.forward_timed(&data, n, on_layer).to_vec();
        let classes = logits.len() / n;
        Tensor::from_vec(logits, (n, classes), self.net.device())
    }
}

/// A deterministic pseudo-random input in [-1, 1] of shape [batch, 3, res, res] (a 64-bit LCG:
/// benchmarks need the same input every run, not good randomness).
pub fn synthetic_input(batch: usize, resolution: u32, device: &candle_core::Device) -> Result<Tensor> {
    let r = resolution as usize;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<f32> = (0..batch * 3 * r * r)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_vec(data, (batch, 3, r, r), device)
}

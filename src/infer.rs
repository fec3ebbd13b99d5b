//! The inference engines behind `classify`, `evaluate`, `bench` and `sweep`: one [`Runner`] over
//! a loaded [`MobileNet`], either the project's own kernels (`fast`, the default: see
//! `crate::engine`) or the plain candle-ops network (`reference`, kept to check the fast one),
//! at one [`Precision`]: f32, or int8, TFLite's uint8 arithmetic byte for byte
//! ([`crate::quant::QuantizedNetwork`], built by [`Runner::int8`]).
//!
//! The int8 network reads the preprocessed uint8 pixels as they are (its input quantization is
//! scale 1/128, zero point 128), the f32 networks pixel / 127.5 - 1: [`Runner::batch_from_pixels`]
//! turns one resized crop batch into either ([`Batch`]).
//!
//! Inputs and outputs are flat `f32` slices (NCHW images in, one row per image out), so the
//! fast engine reads the caller's batch where it lies; only the reference engine wraps it in a
//! candle tensor. Besides logits and probabilities a runner returns each image's features,
//! the input of the final FC layer, for work on the backbone's embedding (a new classifier
//! head, issue 12).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use candle_core::{Result, Tensor, bail};
use serde::Serialize;

use crate::engine::Engine;
use crate::nn::{MobileNet, names};
use crate::quant::{Kernels, Output, QuantizedNetwork};
use crate::vision::pixels_to_chw;

/// Which inference implementation runs the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The project's own kernels: direct depthwise, GEMM pointwise on NHWC, fused bias and
    /// activation, squeeze-and-excite (and at int8, the quantized kernels).
    Fast,
    /// Plain candle tensor operations (f32 only).
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

/// The arithmetic a network runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats: the uint8 weights dequantized at load.
    F32,
    /// TFLite's uint8 reference kernels, byte for byte: uint8 activations, integer
    /// convolutions, TFLite's requantization, average pool, residual ADD and softmax
    /// (MobileNet v1 and v2; needs a weights file with uint8 weights and activation
    /// quantization).
    Int8,
}

impl Precision {
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::Int8];

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why `config` cannot run at int8, if it cannot: the layers [`crate::quant`] has no exact
/// kernels for.
pub fn int8_unsupported(config: &crate::arch::Config) -> Option<&'static str> {
    if config.family.is_v3() {
        Some(
            "MobileNetV3's hard-swish and squeeze-and-excite (MUL, ADD) have no exact int8 kernels yet; run it at --precision f32",
        )
    } else if config.depth_multiplier != 1 {
        Some("a depthwise channel multiplier above 1 has no int8 kernel; run it at --precision f32")
    } else {
        None
    }
}

/// Every int8 kernel set, fastest first (what `--int8-kernels` may name).
pub const INT8_KERNELS: [Kernels; 5] = [
    Kernels::Amx,
    Kernels::Vnni,
    Kernels::Avx2,
    Kernels::Portable,
    Kernels::Reference,
];

/// How reports and `--int8-kernels` name a set of int8 kernels.
pub fn kernels_name(kernels: Kernels) -> &'static str {
    match kernels {
        Kernels::Amx => "amx",
        Kernels::Vnni => "avx512vnni",
        Kernels::Avx2 => "avx2",
        Kernels::Portable => "portable",
        Kernels::Reference => "reference",
    }
}

/// A note for a run on `kernels` on a CPU whose CPUID reports AMX-INT8 (`cpu_has_amx`) but
/// whose AMX kernels do not run (`amx_unavailable`: why), so the user learns why the tiles sit
/// idle (an old kernel, a hypervisor that hides the tile state, a refused permission).
pub fn amx_note(kernels: Kernels, cpu_has_amx: bool, amx_unavailable: Option<String>) -> Option<String> {
    match (kernels, cpu_has_amx, amx_unavailable) {
        (Kernels::Amx, ..) | (_, false, _) | (_, _, None) => None,
        (kernels, true, Some(why)) => Some(format!(
            "note: this CPU has AMX-INT8 but {why}; the int8 layers run on the {} kernels",
            kernels_name(kernels)
        )),
    }
}

/// The int8 kernels named `name` ([`kernels_name`]).
pub fn kernels_named(name: &str) -> Option<Kernels> {
    INT8_KERNELS.into_iter().find(|k| kernels_name(*k) == name)
}

/// One batch in the form a runner's network reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    /// `[N, 3, R, R]`, pixel / 127.5 - 1: what the f32 networks read.
    F32(Vec<f32>),
    /// `[N, R, R, 3]` uint8 RGB pixels, unscaled: what the int8 network reads.
    U8(Vec<u8>),
}

/// The int8 network with the kernels it runs on.
struct Int8 {
    network: QuantizedNetwork,
    kernels: Kernels,
    /// The layer index of each traced name: the layers', and each residual ADD's (`block_k.add`)
    /// as its projection's.
    index: HashMap<String, usize>,
}

enum Backend {
    Fast(Box<Engine>),
    Reference,
    Int8(Box<Int8>),
}

/// A network ready to run on one engine at one precision.
pub struct Runner {
    net: MobileNet,
    backend: Backend,
}

impl Runner {
    /// Prepares `net` for `kind` at f32 with `threads` inference threads: the fast engine packs
    /// the weights (BatchNorm folded) and allocates its buffers once, here.
    pub fn new(net: MobileNet, kind: EngineKind, threads: usize) -> anyhow::Result<Runner> {
        let backend = match kind {
            EngineKind::Reference => Backend::Reference,
            EngineKind::Fast => {
                let weights = net.folded_weights()?;
                // The fast engine decides what it supports; a network it refuses is an error
                // telling the user how to run it, never a silent switch to the reference.
                match Engine::new(net.layers(), &weights, threads.max(1)) {
                    Ok(engine) => Backend::Fast(Box::new(engine)),
                    Err(e) => anyhow::bail!(
                        "the fast engine cannot run {} ({e}); pass --engine reference",
                        net.config().label()
                    ),
                }
            }
        };
        Ok(Runner { net, backend })
    }

    /// `net` at int8: `network` (the same configuration, quantized, with its threads) on
    /// `kernels`.
    pub fn int8(net: MobileNet, network: QuantizedNetwork, kernels: Kernels) -> anyhow::Result<Runner> {
        if !kernels.available() {
            anyhow::bail!(
                "the {} int8 kernels do not run on this CPU",
                kernels_name(kernels)
            );
        }
        if network.params().config != *net.config() {
            anyhow::bail!(
                "the quantized network is {}, the network {}",
                network.params().config.label(),
                net.config().label()
            );
        }
        let mut index = HashMap::new();
        for (i, layer) in network.layers().iter().enumerate() {
            index.insert(layer.name.clone(), i);
            if layer.residual_from.is_some() {
                index.insert(names::residual_add(&layer.name), i);
            }
        }
        let int8 = Int8 {
            network,
            kernels,
            index,
        };
        Ok(Runner {
            net,
            backend: Backend::Int8(Box::new(int8)),
        })
    }

    pub fn net(&self) -> &MobileNet {
        &self.net
    }

    pub fn kind(&self) -> EngineKind {
        match self.backend {
            Backend::Reference => EngineKind::Reference,
            Backend::Fast(_) | Backend::Int8(_) => EngineKind::Fast,
        }
    }

    pub fn precision(&self) -> Precision {
        match self.backend {
            Backend::Int8(_) => Precision::Int8,
            Backend::Fast(_) | Backend::Reference => Precision::F32,
        }
    }

    /// The instruction set the kernels run on, as `bench` records it: the fast engine's
    /// (`Isa::name`: "avx512f", "avx2+fma", "portable"), the int8 kernels' ([`kernels_name`]:
    /// "avx512vnni", "portable", "reference"); None for the reference engine.
    pub fn isa(&self) -> Option<&'static str> {
        match &self.backend {
            Backend::Fast(engine) => Some(engine.isa().name()),
            Backend::Int8(int8) => Some(kernels_name(int8.kernels)),
            Backend::Reference => None,
        }
    }

    /// The int8 network and its kernels; None at f32.
    pub fn quantized(&self) -> Option<(&QuantizedNetwork, Kernels)> {
        match &self.backend {
            Backend::Int8(int8) => Some((&int8.network, int8.kernels)),
            Backend::Fast(_) | Backend::Reference => None,
        }
    }

    /// Values of input per image: `3 x R x R` at the network's resolution.
    pub fn input_len(&self) -> usize {
        let r = self.net.config().resolution as usize;
        3 * r * r
    }

    /// Values per image [`Runner::features`] returns.
    pub fn feature_len(&self) -> usize {
        self.net.feature_len()
    }

    /// `pixels` (`[batch, R, R, 3]` uint8 RGB: preprocessed, unscaled) in the form this runner's
    /// network reads: as they are at int8, scaled to pixel / 127.5 - 1 in NCHW at f32.
    pub fn batch_from_pixels(&self, pixels: Vec<u8>, batch: usize) -> Result<Batch> {
        if pixels.len() != batch * self.input_len() {
            let r = self.net.config().resolution;
            bail!(
                "input has {} bytes for {batch} images, expected [N, {r}, {r}, 3] with N = {batch}",
                pixels.len()
            );
        }
        Ok(match self.precision() {
            Precision::Int8 => Batch::U8(pixels),
            Precision::F32 => {
                let mut scaled = Vec::with_capacity(pixels.len());
                for image in pixels.chunks_exact(self.input_len().max(1)) {
                    pixels_to_chw(image, &mut scaled);
                }
                Batch::F32(scaled)
            }
        })
    }

    /// A deterministic synthetic batch in this runner's form (for timing): [`synthetic_input`]
    /// at f32, uniformly random pixels at int8.
    pub fn synthetic_batch(&self, batch: usize) -> Batch {
        match &self.backend {
            Backend::Int8(int8) => Batch::U8(int8.network.random_input(batch, 0)),
            Backend::Fast(_) | Backend::Reference => {
                Batch::F32(synthetic_input(batch, self.net.config().resolution))
            }
        }
    }

    /// Logits `[batch, classes]` of `input`, reporting each layer's wall time (index into
    /// `net().layers()`) as it finishes. At int8 the uint8 logits, dequantized; a residual
    /// ADD's time counts to its block's projection.
    pub fn forward_batch(
        &mut self,
        input: &Batch,
        batch: usize,
        on_layer: &mut dyn FnMut(usize, Duration),
    ) -> Result<Vec<f32>> {
        match input {
            Batch::F32(values) => self.forward_layers(values, batch, on_layer),
            Batch::U8(pixels) => {
                let (logits, quant) = {
                    let int8 = self.int8_for(pixels, batch)?;
                    let logits = int8.run_timed(pixels, batch, Output::Logits, on_layer)?;
                    (logits, int8.network.logits_quant())
                };
                Ok(logits
                    .iter()
                    .map(|&q| (i32::from(q) - quant.zero_point) as f32 * quant.scale)
                    .collect())
            }
        }
    }

    /// Probabilities `[batch, classes]` of `input`: candle's softmax of the logits at f32; at
    /// int8 TFLite's uint8 softmax output q as q / 256, exactly.
    pub fn probabilities_batch(&mut self, input: &Batch, batch: usize) -> Result<Vec<f32>> {
        match input {
            Batch::F32(values) => self.probabilities(values, batch),
            Batch::U8(pixels) => {
                let int8 = self.int8_for(pixels, batch)?;
                let q = int8.run_timed(pixels, batch, Output::Probabilities, &mut |_, _| {})?;
                Ok(q.iter().map(|&q| f32::from(q) / 256.0).collect())
            }
        }
    }

    /// The int8 network, for a uint8 batch of the right size.
    fn int8_for(&self, pixels: &[u8], batch: usize) -> Result<&Int8> {
        let Backend::Int8(int8) = &self.backend else {
            bail!("uint8 pixels given to an f32 runner: use Runner::batch_from_pixels");
        };
        self.check_input(pixels.len(), batch)?;
        Ok(int8)
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
        self.check_f32(input, batch)?;
        if batch == 0 {
            return Ok(Vec::new());
        }
        match &mut self.backend {
            Backend::Fast(engine) => Ok(engine.forward_timed(input, batch, on_layer).to_vec()),
            Backend::Reference | Backend::Int8(_) => {
                let mut mark = Instant::now();
                let input = self.tensor(input, batch)?;
                let logits = self.net.forward_with_hook(&input, |index, _| {
                    let now = Instant::now();
                    on_layer(index, now - mark);
                    mark = now;
                })?;
                logits.flatten_all()?.to_vec1()
            }
        }
    }

    /// The features `[batch, feature_len]`, row-major: the input of the network's final FC
    /// layer, computed without it ([`MobileNet::forward_features`]; on the fast engine
    /// `Engine::forward_features`, batched and threaded like a full pass).
    pub fn features(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.check_f32(input, batch)?;
        if batch == 0 {
            return Ok(Vec::new());
        }
        match &mut self.backend {
            Backend::Fast(engine) => Ok(engine.forward_features(input, batch).to_vec()),
            Backend::Reference | Backend::Int8(_) => {
                let input = self.tensor(input, batch)?;
                self.net.forward_features(&input)?.flatten_all()?.to_vec1()
            }
        }
    }

    /// An f32 input for an f32 runner.
    fn check_f32(&self, input: &[f32], batch: usize) -> Result<()> {
        if self.precision() == Precision::Int8 {
            bail!("an int8 runner reads uint8 pixels: use Runner::batch_from_pixels");
        }
        self.check_input(input.len(), batch)
    }

    fn check_input(&self, len: usize, batch: usize) -> Result<()> {
        let r = self.net.config().resolution;
        if len != batch * self.input_len() {
            bail!("input has {len} values for {batch} images, expected [N, 3, {r}, {r}] with N = {batch}");
        }
        Ok(())
    }

    /// `input` as the `[batch, 3, R, R]` tensor the reference engine runs on.
    fn tensor(&self, input: &[f32], batch: usize) -> Result<Tensor> {
        let r = self.net.config().resolution as usize;
        Tensor::from_slice(input, (batch, 3, r, r), self.net.device())
    }
}

impl Int8 {
    /// Runs `batch` images up to `output` on the chosen kernels, reporting each layer's time
    /// once the pass is done (a residual ADD's added to its projection's).
    fn run_timed(
        &self,
        pixels: &[u8],
        batch: usize,
        output: Output,
        on_layer: &mut dyn FnMut(usize, Duration),
    ) -> Result<Vec<u8>> {
        let mut times = vec![Duration::ZERO; self.network.layers().len()];
        let mut mark = Instant::now();
        let out = self
            .network
            .run_traced(pixels, batch, output, self.kernels, &mut |name, _| {
                let now = Instant::now();
                if let Some(&i) = self.index.get(name) {
                    times[i] += now - mark;
                }
                mark = now;
            })
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let ran = match output {
            Output::Features => times.len() - 1,
            Output::Logits | Output::Probabilities => times.len(),
        };
        for (i, time) in times.into_iter().enumerate().take(ran) {
            on_layer(i, time);
        }
        Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_amx_note_says_why_the_tiles_are_idle_only_when_they_are() {
        let why = || Some("Linux refused the AMX tile state".to_string());
        assert_eq!(
            amx_note(Kernels::Vnni, true, why()).as_deref(),
            Some(
                "note: this CPU has AMX-INT8 but Linux refused the AMX tile state; the int8 layers run on the avx512vnni kernels"
            )
        );
        // AMX running, no AMX in the CPU, or nothing to explain: no note.
        assert_eq!(amx_note(Kernels::Amx, true, None), None);
        assert_eq!(amx_note(Kernels::Vnni, false, why()), None);
        assert_eq!(amx_note(Kernels::Vnni, true, None), None);
    }
}

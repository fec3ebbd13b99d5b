//! The candle MobileNet: the layers of `arch::instantiate` with loaded tensors, run in order.

use std::path::Path;

use candle_core::{DType, Device, Result, Tensor, bail};

use super::layers::{LayerOp, RawLayer, build_op};
use super::model_id::ModelId;
use super::random::random_layers;
use super::weights::{
    ActivationQuantization, ParsedWeights, WeightOverrides, WeightsError, alpha_text, parse,
};
use crate::arch::{Config, ConfigError, Layer, instantiate};
use crate::engine::LayerWeights;

/// Largest weight file [`MobileNet::from_file`] reads.
pub const MAX_WEIGHTS_BYTES: u64 = 1 << 30;

/// A runnable MobileNet (v1, v2, v3-large or v3-small). Input: NCHW f32 [N, 3, R, R] with values pixel / 127.5 - 1, where R
/// is `config().resolution`; output: logits [N, classes].
#[derive(Debug, Clone)]
pub struct MobileNet {
    name: String,
    config: Config,
    layers: Vec<Layer>,
    ops: Vec<LayerOp>,
    trained_resolution: Option<u32>,
    /// The class names a weights file carries (metadata `labels`), in output order.
    labels: Option<Vec<String>>,
    parameter_count: u64,
    batch_norm: bool,
    device: Device,
    /// Indices of the layers whose input a later layer's `residual_from` adds back.
    residual_sources: Vec<usize>,
    /// The file's activation quantization (what `--precision int8` needs), when it has one.
    activations: Option<ActivationQuantization>,
}

impl MobileNet {
    /// One of the shipped ImageNet models, from the weights embedded in the binary.
    pub fn from_embedded(id: ModelId, device: &Device) -> std::result::Result<Self, WeightsError> {
        let file = format!("embedded {}", id.file_name());
        let overrides = WeightOverrides::default();
        let parsed = parse(id.bytes(), &file, &overrides)?;
        Self::from_parsed(id.name().to_string(), &file, parsed, device)
    }

    /// A safetensors file (any format the loader accepts, see `nn::weights`). Alpha,
    /// resolution and classes come from the file's metadata when present, else from `flags`,
    /// else from the tensor shapes where unambiguous (the resolution then defaults to 224).
    pub fn from_file(
        path: impl AsRef<Path>,
        flags: WeightOverrides,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let io = |source| WeightsError::Io {
            file: file.clone(),
            source,
        };
        // Refuse absurd sizes before reading them into memory: even alpha 2.0 with 100,000
        // classes in f32 stays under 1 GiB, so anything bigger is a wrong path, not weights.
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_WEIGHTS_BYTES {
            return Err(WeightsError::TooLarge {
                file,
                size,
                limit: MAX_WEIGHTS_BYTES,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let name = path
            .file_stem()
            .map_or_else(|| file.clone(), |s| s.to_string_lossy().into_owned());
        Self::from_bytes(&bytes, &name, &file, flags, device)
    }

    /// Safetensors bytes already in memory, named `name` (the model) and `file` (in errors); the
    /// same validation as [`MobileNet::from_file`]. The weights fuzz target drives this.
    pub fn from_bytes(
        bytes: &[u8],
        name: &str,
        file: &str,
        flags: WeightOverrides,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let parsed = parse(bytes, file, &flags)?;
        Self::from_parsed(name.to_string(), file, parsed, device)
    }

    /// A network with seeded random weights (folded-bias form) for any configuration: same
    /// seed, same network.
    pub fn random(config: Config, seed: u64, device: &Device) -> Result<Self> {
        let layers = instantiate(&config);
        let raw = random_layers(&layers, seed);
        let name = format!("random-{}_{}", alpha_text(config.alpha), config.resolution);
        Self::assemble(name, config, None, layers, raw, false, device)
    }

    fn from_parsed(
        name: String,
        file: &str,
        parsed: ParsedWeights,
        device: &Device,
    ) -> std::result::Result<Self, WeightsError> {
        let ParsedWeights {
            config,
            trained_resolution,
            labels,
            layers: raw,
            batch_norm,
            activations,
        } = parsed;
        let layers = instantiate(&config);
        let net = Self::assemble(name, config, trained_resolution, layers, raw, batch_norm, device).map_err(
            |source| WeightsError::Candle {
                file: file.to_string(),
                source,
            },
        )?;
        Ok(MobileNet {
            activations,
            labels,
            ..net
        })
    }

    fn assemble(
        name: String,
        config: Config,
        trained_resolution: Option<u32>,
        layers: Vec<Layer>,
        raw: Vec<Option<RawLayer>>,
        batch_norm: bool,
        device: &Device,
    ) -> Result<Self> {
        if raw.len() != layers.len() {
            bail!("{} weight groups for {} layers", raw.len(), layers.len());
        }
        let parameter_count = raw.iter().flatten().map(RawLayer::elements).sum();
        let ops = layers
            .iter()
            .zip(raw)
            .map(|(layer, raw)| build_op(layer, raw, device))
            .collect::<Result<Vec<_>>>()?;
        let residual_sources = residual_sources(&layers);
        Ok(MobileNet {
            name,
            config,
            layers,
            ops,
            trained_resolution,
            labels: None,
            parameter_count,
            batch_norm,
            device: device.clone(),
            residual_sources,
            activations: None,
        })
    }

    /// The same weights run at another input resolution. MobileNet is fully convolutional up
    /// to the global pool, so no tensor depends on the resolution; accuracy is best at the
    /// trained one.
    pub fn with_resolution(&self, resolution: u32) -> std::result::Result<Self, ConfigError> {
        let c = self.config;
        let config = Config::build(
            c.family,
            c.alpha,
            resolution,
            c.depth_multiplier,
            c.classes,
            c.variant,
            c.minimalistic,
        )?;
        let layers = instantiate(&config);
        Ok(MobileNet {
            config,
            residual_sources: residual_sources(&layers),
            layers,
            ..self.clone()
        })
    }

    /// "1.0_224" for the shipped models, the file stem for files, "random-A_R" otherwise.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The layers this network runs, as `arch::instantiate(self.config())` returns them.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The resolution the weights were trained at, when the file says so.
    pub fn trained_resolution(&self) -> Option<u32> {
        self.trained_resolution
    }

    /// The class names the weights file carries (metadata `labels`, one per output), if any;
    /// without them the shipped layout applies (ImageNet's names for 1001 outputs).
    pub fn labels(&self) -> Option<&[String]> {
        self.labels.as_deref()
    }

    /// Elements of every loaded tensor (weights, biases, BatchNorm's four vectors); quantisation
    /// scales and zero points are not parameters and are excluded.
    pub fn parameter_count(&self) -> u64 {
        self.parameter_count
    }

    /// The activation quantization of the weights file (`nn::names`), when it has one: what
    /// `--precision int8` needs besides uint8 weights. It does not depend on the resolution.
    pub fn activation_quantization(&self) -> Option<&ActivationQuantization> {
        self.activations.as_ref()
    }

    /// Whether any layer carries explicit BatchNorm tensors (else biases are folded).
    pub fn has_batch_norm(&self) -> bool {
        self.batch_norm
    }

    /// Every layer's weights with BatchNorm folded in, on the host, index-aligned with
    /// [`MobileNet::layers`]: what the fast engine packs, and what a weights file in the folded
    /// (bias) form stores. See `LayerOp::folded`.
    pub fn folded_weights(&self) -> Result<Vec<LayerWeights>> {
        self.ops.iter().map(LayerOp::folded).collect()
    }

    /// Logits [N, classes] for `input` [N, 3, R, R].
    pub fn forward(&self, input: &Tensor) -> Result<Tensor> {
        self.forward_with_hook(input, |_, _| {})
    }

    /// Softmax probabilities [N, classes].
    pub fn probabilities(&self, input: &Tensor) -> Result<Tensor> {
        candle_nn::ops::softmax_last_dim(&self.forward(input)?)
    }

    /// The features [N, feature_len] for `input` [N, 3, R, R]: the input of the final FC layer
    /// (`logits`), which is not run. v1's and v2's pooled vector (v2's conv_last, 1280 wide),
    /// v3's conv_head output after hard-swish (1280 for Large, 1024 for Small): the backbone's
    /// embedding, as candle's `*_no_final_layer` models return it.
    pub fn forward_features(&self, input: &Tensor) -> Result<Tensor> {
        self.run(input, self.layers.len() - 1, |_, _| {})?.flatten_from(1)
    }

    /// Values per image [`MobileNet::forward_features`] returns: the FC layer's input width.
    pub fn feature_len(&self) -> usize {
        self.layers.last().map_or(0, |fc| fc.input.c as usize)
    }

    /// Runs the network, calling `hook(index, output)` after each layer, where `index` indexes
    /// `layers()` (= `arch::instantiate`). Outputs are NCHW, the pool's [N, C, 1, 1], the
    /// logits [N, classes]. For per-layer timing the hook sees each output once it is computed
    /// (candle's CPU ops are synchronous).
    pub fn forward_with_hook(&self, input: &Tensor, hook: impl FnMut(usize, &Tensor)) -> Result<Tensor> {
        self.run(input, self.layers.len(), hook)
    }

    /// Runs the first `count` layers, calling `hook` after each, and returns the last one's
    /// output.
    fn run(&self, input: &Tensor, count: usize, mut hook: impl FnMut(usize, &Tensor)) -> Result<Tensor> {
        let r = self.config.resolution as usize;
        match input.dims4() {
            Ok((n, 3, h, w)) if n > 0 && h == r && w == r => {}
            _ => bail!(
                "input has shape {:?}, expected [N, 3, {r}, {r}] for {}",
                input.dims(),
                self.config.label()
            ),
        }
        let mut x = input.to_device(&self.device)?.to_dtype(DType::F32)?;
        // Inputs of the layers a residual connection starts at (v2/v3 inverted residual blocks:
        // the block input is added to the projection's output, after its BatchNorm).
        let mut saved: Vec<(usize, Tensor)> = Vec::new();
        for (index, (layer, op)) in self.layers.iter().zip(&self.ops).enumerate().take(count) {
            debug_assert_eq!(op.kind(), layer.kind);
            if self.residual_sources.contains(&index) {
                saved.push((index, x.clone()));
            }
            x = op.forward(layer, &x)?;
            if let Some(from) = layer.residual_from {
                let Some(pos) = saved.iter().position(|(i, _)| *i == from) else {
                    bail!("{}: residual from layer {from}, which has not run", layer.name);
                };
                let (_, shortcut) = saved.swap_remove(pos);
                x = (x + shortcut)?;
            }
            hook(index, &x);
        }
        Ok(x)
    }
}

fn residual_sources(layers: &[Layer]) -> Vec<usize> {
    let mut sources: Vec<usize> = layers.iter().filter_map(|l| l.residual_from).collect();
    sources.sort_unstable();
    sources.dedup();
    sources
}

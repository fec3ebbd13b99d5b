//! The MobileNet family as data and its instantiation into concrete layers.
//!
//! Each family is a block table plus a head ([`Architecture`]); each [`Block`] kind has one
//! builder ([`Block::layers`]) and each [`Head`] entry one, so a new family is data, not a special
//! case:
//! - v1: Howard et al. 2017 (arXiv:1704.04861) Table 1. The paper prints the last depthwise
//!   layer as "s2"; that is an erratum (tensorflow/models #1997): TF-slim `_CONV_DEFS`, Keras and
//!   timm all use stride 1, and so do we.
//! - v2: Sandler et al. 2018 (arXiv:1801.04381) Table 2, with TF-slim's `V2_DEF`
//!   (research/slim/nets/mobilenet/mobilenet_v2.py) settling what the paper leaves open: the
//!   first bottleneck (t = 1) has no 1x1 expansion conv, and the last 1x1 conv keeps 1280
//!   channels when alpha < 1 (Section 6.1: "we do not apply width multiplier to the last
//!   convolutional layer").
//! - v3: Howard et al. 2019 (arXiv:1905.02244) Tables 1 (Large) and 2 (Small), with TF-slim's
//!   `V3_LARGE`, `V3_SMALL` and their minimalistic versions (research/slim/nets/mobilenet/
//!   mobilenet_v3.py): expansion = make_divisible(input * ratio, 8) and only when wider than the
//!   input; squeeze-and-excite reduce = make_divisible(expansion / 4, 8) with ReLU then
//!   hard-sigmoid (Section 5.3); the head of Section 5.1 (Figure 5): 1x1 conv + BN -> pool ->
//!   1x1 conv with bias and no BN -> logits.
//!
//! Inverted residual blocks (Sandler et al. 2018 Section 3.3, Figure 3b) add their input to the
//! projection's output when the stride is 1 and the widths match (TF-slim `expanded_conv`).

use super::config::{Config, Family, Variant, make_divisible};
use super::layer::{Activation, Layer, LayerKind, Role, Shape, same_output};

/// An expansion ratio num / den, applied as TF-slim's `expand_input_by_factor` does:
/// make_divisible(input * (num / den), 8), the product taken in f64 like Python's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: u32,
    pub den: u32,
}

/// A whole-number expansion ratio t (v2's 1 and 6).
const fn x(t: u32) -> Ratio {
    Ratio { num: t, den: 1 }
}

/// A fractional ratio, written as TF-slim writes it (184/80., 72/16., ...).
const fn r(num: u32, den: u32) -> Ratio {
    Ratio { num, den }
}

impl Ratio {
    /// The expanded width for an input of `channels`.
    pub fn expand(self, channels: u32) -> u32 {
        make_divisible(
            f64::from(channels) * (f64::from(self.num) / f64::from(self.den)),
            8,
        )
    }
}

/// One row group of a family's body table, before the width multiplier is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// A full k x k convolution, BatchNorm and `activation` (the stem, v1 eq. 1).
    Conv {
        kernel: u32,
        stride: u32,
        out: u32,
        activation: Activation,
    },
    /// Depthwise k x k convolution then pointwise 1x1 convolution, each with BatchNorm and
    /// ReLU6 (v1 Figure 3, eq. 3-5). The stride belongs to the depthwise layer.
    DepthwiseSeparable { kernel: u32, stride: u32, out: u32 },
    /// Inverted residual with linear bottleneck ("bneck"; v2 Section 3, Table 1; v3 Section 5):
    /// 1x1 expansion + BN + `activation` (omitted when the expansion is not wider than the
    /// input), k x k depthwise + BN + `activation` (the stride), optional squeeze-and-excite,
    /// 1x1 linear projection + BN, and the residual add when the stride is 1 and the widths
    /// match. Minimalistic v3 replaces 5x5 by 3x3, hard-swish by ReLU and drops SE.
    InvertedResidual {
        kernel: u32,
        stride: u32,
        expansion: Ratio,
        out: u32,
        squeeze_excite: bool,
        activation: Activation,
    },
}

/// One layer of a family's head, after the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// A 1x1 convolution: v2's and v3's `conv_last` before the pool (with BatchNorm) and v3's
    /// `conv_head` after it (bias, no BatchNorm). `keep_width`: the width stays `out` when
    /// alpha < 1 (TF-slim's finegrain classification mode, Keras's rule; the published v2 and
    /// v3-large 0.75 parameter counts need it) and follows the width rule otherwise.
    Conv {
        name: &'static str,
        /// `ConvLast` (before the pool) or `ConvHead` (after it).
        role: Role,
        out: u32,
        batch_norm: bool,
        activation: Activation,
        keep_width: bool,
    },
    /// Global average pool to 1x1.
    Pool,
    /// The fully connected classifier (a 1x1 conv with bias in TF-slim): `classes` outputs.
    Logits,
}

/// A family: its body table and its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Architecture {
    pub body: &'static [Block],
    pub head: &'static [Head],
}

impl Architecture {
    pub fn of(family: Family) -> Architecture {
        let (body, head) = match family {
            Family::V1 => (MOBILENET_V1, V1_HEAD),
            Family::V2 => (MOBILENET_V2, V2_HEAD),
            Family::V3Large => (MOBILENET_V3_LARGE, V3_LARGE_HEAD),
            Family::V3Small => (MOBILENET_V3_SMALL, V3_SMALL_HEAD),
        };
        Architecture { body, head }
    }
}

use Activation::{HardSwish as HS, Relu as RE, Relu6};

#[rustfmt::skip]
pub const MOBILENET_V1: &[Block] = &[
    Block::Conv               { kernel: 3, stride: 2, out: 32, activation: Relu6 },
    Block::DepthwiseSeparable { kernel: 3, stride: 1, out: 64 },
    Block::DepthwiseSeparable { kernel: 3, stride: 2, out: 128 },
    Block::DepthwiseSeparable { kernel: 3, stride: 1, out: 128 },
    Block::DepthwiseSeparable { kernel: 3, stride: 2, out: 256 },
    Block::DepthwiseSeparable { kernel: 3, stride: 1, out: 256 },
    Block::DepthwiseSeparable { kernel: 3, stride: 2, out: 512 },
    Block::DepthwiseSeparable { kernel: 3, stride: 1, out: 512 }, // 5x at 14x14x512
    Block::DepthwiseSeparable { kernel: 3, stride: 1, out: 512 },
    Block::DepthwiseSeparable { kernel: 3, stride: 1, out: 512 },
    Block::DepthwiseSeparable { kernel: 3, stride: 1, out: 512 },
    Block::DepthwiseSeparable { kernel: 3, stride: 1, out: 512 },
    Block::DepthwiseSeparable { kernel: 3, stride: 2, out: 1024 },
    Block::DepthwiseSeparable { kernel: 3, stride: 1, out: 1024 }, // Table 1 prints s2: erratum
];

const V1_HEAD: &[Head] = &[Head::Pool, Head::Logits];

/// v2 bottleneck: 3x3 depthwise, ReLU6, no squeeze-and-excite.
const fn v2(stride: u32, t: u32, out: u32) -> Block {
    Block::InvertedResidual {
        kernel: 3,
        stride,
        expansion: x(t),
        out,
        squeeze_excite: false,
        activation: Relu6,
    }
}

/// v2 paper Table 2 (t, c, n, s) = (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1)
/// (6,160,3,2) (6,320,1,1), one entry per bottleneck as TF-slim's `V2_DEF` lists them.
#[rustfmt::skip]
pub const MOBILENET_V2: &[Block] = &[
    Block::Conv { kernel: 3, stride: 2, out: 32, activation: Relu6 },
    v2(1, 1, 16), // t = 1: no expansion conv (TF-slim), the 300 vs 314 M of tensorflow/models#4516
    v2(2, 6, 24), v2(1, 6, 24),
    v2(2, 6, 32), v2(1, 6, 32), v2(1, 6, 32),
    v2(2, 6, 64), v2(1, 6, 64), v2(1, 6, 64), v2(1, 6, 64),
    v2(1, 6, 96), v2(1, 6, 96), v2(1, 6, 96),
    v2(2, 6, 160), v2(1, 6, 160), v2(1, 6, 160),
    v2(1, 6, 320),
];

const V2_HEAD: &[Head] = &[
    Head::Conv {
        name: "conv_last",
        role: Role::ConvLast,
        out: 1280,
        batch_norm: true,
        activation: Relu6,
        keep_width: true,
    },
    Head::Pool,
    Head::Logits,
];

/// v3 bneck as TF-slim's `mbv3_op(ef, n, k, s, act, se)`.
const fn v3(kernel: u32, stride: u32, expansion: Ratio, out: u32, se: bool, activation: Activation) -> Block {
    Block::InvertedResidual {
        kernel,
        stride,
        expansion,
        out,
        squeeze_excite: se,
        activation,
    }
}

const SE: bool = true;
const NO: bool = false;

/// v3 paper Table 1; the comment is the paper's "exp size" column (the ratio times the input).
#[rustfmt::skip]
pub const MOBILENET_V3_LARGE: &[Block] = &[
    Block::Conv { kernel: 3, stride: 2, out: 16, activation: HS },
    v3(3, 1, x(1),        16,  NO, RE), // exp 16: no expansion conv
    v3(3, 2, x(4),        24,  NO, RE), // 64
    v3(3, 1, x(3),        24,  NO, RE), // 72
    v3(5, 2, x(3),        40,  SE, RE), // 72
    v3(5, 1, x(3),        40,  SE, RE), // 120
    v3(5, 1, x(3),        40,  SE, RE), // 120
    v3(3, 2, x(6),        80,  NO, HS), // 240
    v3(3, 1, r(5, 2),     80,  NO, HS), // 200
    v3(3, 1, r(184, 80),  80,  NO, HS), // 184
    v3(3, 1, r(184, 80),  80,  NO, HS), // 184
    v3(3, 1, x(6),        112, SE, HS), // 480
    v3(3, 1, x(6),        112, SE, HS), // 672
    v3(5, 2, x(6),        160, SE, HS), // 672
    v3(5, 1, x(6),        160, SE, HS), // 960
    v3(5, 1, x(6),        160, SE, HS), // 960
];

/// v3 paper Table 2; TF-slim's `V3_SMALL` (the 576 conv has no SE there).
#[rustfmt::skip]
pub const MOBILENET_V3_SMALL: &[Block] = &[
    Block::Conv { kernel: 3, stride: 2, out: 16, activation: HS },
    v3(3, 2, x(1),       16, SE, RE), // exp 16: no expansion conv
    v3(3, 2, r(72, 16),  24, NO, RE), // 72
    v3(3, 1, r(88, 24),  24, NO, RE), // 88
    v3(5, 2, x(4),       40, SE, HS), // 96
    v3(5, 1, x(6),       40, SE, HS), // 240
    v3(5, 1, x(6),       40, SE, HS), // 240
    v3(5, 1, x(3),       48, SE, HS), // 120
    v3(5, 1, x(3),       48, SE, HS), // 144
    v3(5, 2, x(6),       96, SE, HS), // 288
    v3(5, 1, x(6),       96, SE, HS), // 576
    v3(5, 1, x(6),       96, SE, HS), // 576
];

/// v3's efficient last stage (paper Section 5.1, Figure 5): `width` = 960 (Large) or 576
/// (Small) with BatchNorm, the pool, then `head` = 1280 or 1024 with a bias and no BatchNorm.
const fn v3_head(width: u32, head: u32) -> [Head; 4] {
    [
        Head::Conv {
            name: "conv_last",
            role: Role::ConvLast,
            out: width,
            batch_norm: true,
            activation: HS,
            keep_width: false,
        },
        Head::Pool,
        Head::Conv {
            name: "conv_head",
            role: Role::ConvHead,
            out: head,
            batch_norm: false,
            activation: HS,
            keep_width: true,
        },
        Head::Logits,
    ]
}

const V3_LARGE_HEAD: &[Head] = &v3_head(960, 1280);
const V3_SMALL_HEAD: &[Head] = &v3_head(576, 1024);

/// Blocks that Table 5's "Shallow MobileNet" removes: the five separable layers at 14x14x512.
pub const SHALLOW_REMOVED_BLOCKS: [usize; 5] = [7, 8, 9, 10, 11];

/// Where a block sits: its index in the table, the index its first layer will have in the
/// network, and its number among the inverted residual blocks (`block_k` names).
#[derive(Debug, Clone, Copy)]
struct Site {
    index: usize,
    start: usize,
    bottleneck: usize,
}

/// A layer with BatchNorm, no bias, no residual and no SE: what most layers are. Its kind
/// follows from its role.
#[allow(clippy::too_many_arguments)]
fn layer(
    name: String,
    block: Option<usize>,
    role: Role,
    kernel: u32,
    stride: u32,
    input: Shape,
    out_c: u32,
    activation: Activation,
) -> Layer {
    Layer {
        name,
        block,
        kind: role.kind(),
        role,
        kernel,
        stride,
        input,
        output: Shape::new(same_output(input.h, stride), same_output(input.w, stride), out_c),
        batch_norm: true,
        bias: false,
        activation,
        residual_from: None,
        se_channels: None,
    }
}

/// Minimalistic v3 (TF-slim `V3_*_MINIMALISTIC`) uses ReLU wherever the full model uses
/// hard-swish.
fn activation_for(config: &Config, activation: Activation) -> Activation {
    if config.minimalistic && activation == Activation::HardSwish {
        Activation::Relu
    } else {
        activation
    }
}

impl Block {
    /// The concrete layers of the block at `site` for `config`, taking `input` and returning
    /// them in execution order. This is the one builder per block kind.
    fn layers(&self, site: Site, input: Shape, config: &Config) -> Vec<Layer> {
        let index = site.index;
        let at = Some(index);
        let width = |base| config.family.scale(base, config.alpha);
        match *self {
            Block::Conv {
                kernel,
                stride,
                out,
                activation,
            } => vec![layer(
                format!("conv_{index}"),
                at,
                Role::Stem,
                kernel,
                stride,
                input,
                width(out),
                activation_for(config, activation),
            )],
            Block::DepthwiseSeparable { kernel, stride, out } => {
                let out = width(out);
                let conv = |name, role, kernel, stride, input, out_c| {
                    layer(name, at, role, kernel, stride, input, out_c, Activation::Relu6)
                };
                if config.variant == Variant::FullConv {
                    return vec![conv(
                        format!("conv_{index}"),
                        Role::Conv,
                        kernel,
                        stride,
                        input,
                        out,
                    )];
                }
                let dw_out = input.c * config.depth_multiplier;
                let dw = conv(
                    format!("dw_{index}"),
                    Role::Depthwise,
                    kernel,
                    stride,
                    input,
                    dw_out,
                );
                let pw = conv(format!("pw_{index}"), Role::Pointwise, 1, 1, dw.output, out);
                vec![dw, pw]
            }
            Block::InvertedResidual {
                kernel,
                stride,
                expansion,
                out,
                squeeze_excite,
                activation,
            } => {
                let out = width(out);
                let activation = activation_for(config, activation);
                // Minimalistic v3: 3x3 depthwise kernels and no squeeze-and-excite.
                let kernel = if config.minimalistic { 3 } else { kernel };
                let squeeze_excite = squeeze_excite && !config.minimalistic;
                let prefix = format!("block_{}", site.bottleneck);
                let expanded = expansion.expand(input.c);
                let mut layers = Vec::with_capacity(4);
                let mut shape = input;
                // TF-slim `expanded_conv` adds the expansion only when it widens the input
                // (`inner_size > net.shape[3]`): never for t = 1, the first blocks of v2 and v3.
                if expanded > input.c {
                    let expand = layer(
                        format!("{prefix}.expand"),
                        at,
                        Role::Expand,
                        1,
                        1,
                        shape,
                        expanded,
                        activation,
                    );
                    shape = expand.output;
                    layers.push(expand);
                }
                let dw = layer(
                    format!("{prefix}.dw"),
                    at,
                    Role::BottleneckDepthwise,
                    kernel,
                    stride,
                    shape,
                    shape.c,
                    activation,
                );
                shape = dw.output;
                layers.push(dw);
                if squeeze_excite {
                    let mut se = layer(
                        format!("{prefix}.se"),
                        at,
                        Role::SqueezeExcite,
                        1,
                        1,
                        shape,
                        shape.c,
                        Activation::Linear,
                    );
                    // TF-slim `squeeze_excite(squeeze_factor=4)`: Python's true division.
                    se.se_channels = Some(make_divisible(f64::from(shape.c) / 4.0, 8));
                    se.batch_norm = false;
                    layers.push(se);
                }
                let mut project = layer(
                    format!("{prefix}.project"),
                    at,
                    Role::Project,
                    1,
                    1,
                    shape,
                    out,
                    Activation::Linear,
                );
                if stride == 1 && out == input.c {
                    project.residual_from = Some(site.start);
                }
                layers.push(project);
                layers
            }
        }
    }
}

impl Head {
    /// The head layer taking `input`.
    fn layer(&self, input: Shape, config: &Config) -> Layer {
        match *self {
            Head::Conv {
                name,
                role,
                out,
                batch_norm,
                activation,
                keep_width,
            } => {
                let out = if keep_width && config.alpha < 1.0 {
                    out
                } else {
                    config.family.scale(out, config.alpha)
                };
                let mut conv = layer(
                    name.into(),
                    None,
                    role,
                    1,
                    1,
                    input,
                    out,
                    activation_for(config, activation),
                );
                conv.batch_norm = batch_norm;
                conv.bias = !batch_norm;
                conv
            }
            Head::Pool => Layer {
                name: "pool".into(),
                block: None,
                kind: LayerKind::AvgPool,
                role: Role::Pool,
                kernel: input.h,
                stride: 1,
                input,
                output: Shape::new(1, 1, input.c),
                batch_norm: false,
                bias: false,
                activation: Activation::Linear,
                residual_from: None,
                se_channels: None,
            },
            Head::Logits => Layer {
                name: "logits".into(),
                block: None,
                kind: LayerKind::Fc,
                role: Role::Logits,
                kernel: 1,
                stride: 1,
                input,
                output: Shape::new(1, 1, config.classes),
                batch_norm: false,
                bias: true,
                activation: Activation::Linear,
                residual_from: None,
                se_channels: None,
            },
        }
    }
}

/// Instantiates the network for `config`: body blocks, then the head (v1: pool and logits).
/// Every shape, channel count and name the rest of the tool uses comes from here.
pub fn instantiate(config: &Config) -> Vec<Layer> {
    let arch = Architecture::of(config.family);
    let mut shape = Shape::new(config.resolution, config.resolution, 3);
    let mut layers: Vec<Layer> = Vec::new();
    let mut bottleneck = 0;
    for (index, block) in arch.body.iter().enumerate() {
        // The ablations are v1's (Config::build refuses them elsewhere; `with_variant` does not).
        if config.family == Family::V1
            && config.variant == Variant::Shallow
            && SHALLOW_REMOVED_BLOCKS.contains(&index)
        {
            continue;
        }
        let site = Site {
            index,
            start: layers.len(),
            bottleneck,
        };
        if matches!(block, Block::InvertedResidual { .. }) {
            bottleneck += 1;
        }
        for layer in block.layers(site, shape, config) {
            shape = layer.output;
            layers.push(layer);
        }
    }
    for head in arch.head {
        let layer = head.layer(shape, config);
        shape = layer.output;
        layers.push(layer);
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table1_shapes_at_224() {
        let layers = instantiate(&Config::paper(1.0, 224).unwrap());
        // 1 conv + 13 x (dw + pw) + pool + fc: the paper's 28 layers plus pool and FC.
        assert_eq!(layers.len(), 1 + 26 + 2);
        let inputs: Vec<String> = layers.iter().map(|l| l.input.to_string()).collect();
        assert_eq!(inputs[0], "224x224x3");
        assert_eq!(inputs[1], "112x112x32");
        assert_eq!(inputs[3], "112x112x64");
        assert_eq!(inputs[4], "56x56x64");
        assert_eq!(inputs[12], "14x14x256");
        assert_eq!(inputs[13], "14x14x512");
        assert_eq!(inputs[24], "7x7x512");
        assert_eq!(inputs[25], "7x7x1024");
        assert_eq!(layers[25].name, "dw_13");
        assert_eq!(
            layers[25].stride, 1,
            "the last depthwise layer is stride 1 (Table 1 erratum)"
        );
        assert_eq!(layers[28].output, Shape::new(1, 1, 1000));
        assert_eq!(layers[27].kernel, 7);
    }

    #[test]
    fn names_match_the_weight_files() {
        let layers = instantiate(&Config::paper(0.25, 128).unwrap());
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(&names[..3], ["conv_0", "dw_1", "pw_1"]);
        assert_eq!(&names[names.len() - 3..], ["pw_13", "pool", "logits"]);
    }

    #[test]
    fn odd_resolutions_use_ceil() {
        let layers = instantiate(&Config::paper(1.0, 225).unwrap());
        assert_eq!(layers[0].output.h, 113);
        assert_eq!(layers.last().unwrap().input.c, 1024);
        let pool = &layers[layers.len() - 2];
        assert_eq!(pool.input.h, 8);
    }

    #[test]
    fn variants() {
        let base = Config::paper(1.0, 224).unwrap();
        let full = instantiate(&base.with_variant(Variant::FullConv));
        assert_eq!(full.len(), 14 + 2);
        assert!(
            full[..14]
                .iter()
                .all(|l| l.kind == LayerKind::Conv && l.kernel == 3)
        );
        let shallow = instantiate(&base.with_variant(Variant::Shallow));
        assert_eq!(shallow.len(), 1 + 16 + 2);
        assert!(!shallow.iter().any(|l| l.name == "dw_7" || l.name == "pw_11"));
    }

    fn family(family: Family, alpha: f64, res: u32) -> Vec<Layer> {
        instantiate(&Config::family(family, alpha, res).unwrap())
    }

    /// The shipped v2 file's tensor prefixes and structure (shared/mobilenet_v2/README.md).
    #[test]
    fn v2_layers_match_the_shipped_weight_file() {
        let layers = family(Family::V2, 1.0, 224);
        // conv_0, block_0 (dw, project), 16 x (expand, dw, project), conv_last, pool, logits.
        assert_eq!(layers.len(), 1 + 2 + 16 * 3 + 3);
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            &names[..6],
            [
                "conv_0",
                "block_0.dw",
                "block_0.project",
                "block_1.expand",
                "block_1.dw",
                "block_1.project"
            ]
        );
        assert_eq!(
            &names[names.len() - 4..],
            ["block_16.project", "conv_last", "pool", "logits"]
        );
        let dw: Vec<&Layer> = layers.iter().filter(|l| l.kind == LayerKind::Depthwise).collect();
        let strides: Vec<u32> = dw.iter().map(|l| l.stride).collect();
        assert_eq!(strides, [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]);
        let projects: Vec<&Layer> = layers.iter().filter(|l| l.name.ends_with(".project")).collect();
        let outs: Vec<u32> = projects.iter().map(|l| l.output.c).collect();
        assert_eq!(
            outs,
            [
                16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320
            ]
        );
        let residual: Vec<usize> = projects
            .iter()
            .enumerate()
            .filter(|(_, l)| l.residual_from.is_some())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(residual, [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]);
        for (i, l) in layers.iter().enumerate() {
            if let Some(from) = l.residual_from {
                // The block's first layer (its expansion) takes the block input, which has the
                // projection's shape.
                let block = l.name.split('.').next().unwrap();
                assert_eq!(layers[from].name, format!("{block}.expand"));
                assert_eq!(layers[from].input, l.output);
                assert!(from < i);
            }
            let expected = if l.name.ends_with(".project") || l.name == "pool" || l.name == "logits" {
                Activation::Linear
            } else {
                Activation::Relu6
            };
            assert_eq!(l.activation, expected, "{}", l.name);
            assert_eq!(l.bias, l.kind == LayerKind::Fc, "{}", l.name);
        }
        // Table 2's shapes: 112x112x32 into the first bottleneck, 7x7x320 into conv_last.
        assert_eq!(layers[1].input, Shape::new(112, 112, 32));
        assert_eq!(layers[3].output, Shape::new(112, 112, 96));
        let conv_last = &layers[layers.len() - 3];
        assert_eq!(
            (conv_last.input, conv_last.output.c),
            (Shape::new(7, 7, 320), 1280)
        );
        assert_eq!(layers[layers.len() - 2].kernel, 7);
    }

    #[test]
    fn v2_width_rules() {
        // conv_last keeps 1280 below alpha 1 and scales above; expansions are 6x the input.
        let last = |alpha| {
            family(Family::V2, alpha, 224)
                .iter()
                .rev()
                .nth(2)
                .unwrap()
                .output
                .c
        };
        assert_eq!(
            (last(0.35), last(0.75), last(1.0), last(1.4)),
            (1280, 1280, 1280, 1792)
        );
        let layers = family(Family::V2, 0.35, 224);
        assert_eq!(layers[0].output.c, 16);
        let expand = layers.iter().find(|l| l.name == "block_1.expand").unwrap();
        assert_eq!((expand.input.c, expand.output.c), (8, 48));
    }

    #[test]
    fn v3_large_follows_tf_slim() {
        let layers = family(Family::V3Large, 1.0, 224);
        let find = |name: &str| layers.iter().find(|l| l.name == name).unwrap();
        assert_eq!(find("conv_0").activation, Activation::HardSwish);
        // exp 16 == input 16: no expansion conv, and a residual (stride 1, 16 -> 16).
        assert!(!layers.iter().any(|l| l.name == "block_0.expand"));
        assert_eq!(find("block_0.project").residual_from, Some(1));
        let exp: Vec<u32> = (1..15)
            .map(|k| find(&format!("block_{k}.expand")).output.c)
            .collect();
        assert_eq!(
            exp,
            [64, 72, 72, 120, 120, 240, 200, 184, 184, 480, 672, 672, 960, 960]
        );
        let se: Vec<(&str, u32, Option<u32>)> = layers
            .iter()
            .filter(|l| l.kind == LayerKind::SqueezeExcite)
            .map(|l| (l.name.as_str(), l.input.c, l.se_channels))
            .collect();
        assert_eq!(se.len(), 8);
        assert_eq!(se[0], ("block_3.se", 72, Some(24)));
        assert_eq!(se[7], ("block_14.se", 960, Some(240)));
        assert_eq!(find("block_3.dw").kernel, 5);
        assert_eq!(find("block_6.dw").activation, Activation::HardSwish);
        let head: Vec<(&str, u32, bool, bool)> = layers[layers.len() - 4..]
            .iter()
            .map(|l| (l.name.as_str(), l.output.c, l.batch_norm, l.bias))
            .collect();
        assert_eq!(
            head,
            [
                ("conv_last", 960, true, false),
                ("pool", 960, false, false),
                ("conv_head", 1280, false, true),
                ("logits", 1000, false, true)
            ]
        );
        // 0.75: conv_last follows the width rule (720), conv_head keeps 1280.
        let small = family(Family::V3Large, 0.75, 224);
        let widths: Vec<u32> = small[small.len() - 4..].iter().map(|l| l.output.c).collect();
        assert_eq!(widths, [720, 720, 1280, 1000]);
    }

    #[test]
    fn v3_small_and_minimalistic() {
        let layers = family(Family::V3Small, 1.0, 224);
        let se = layers
            .iter()
            .filter(|l| l.kind == LayerKind::SqueezeExcite)
            .count();
        assert_eq!(se, 9);
        // The first block: no expansion, SE on 16 channels (reduce 8), stride 2, no residual.
        assert_eq!(layers[1].name, "block_0.dw");
        assert_eq!(layers[2].se_channels, Some(8));
        assert_eq!(layers[3].residual_from, None);
        assert_eq!(layers.last().unwrap().input.c, 1024);
        let minimal =
            instantiate(&Config::build(Family::V3Small, 1.0, 224, 1, 1000, Variant::Standard, true).unwrap());
        assert!(!minimal.iter().any(|l| l.kind == LayerKind::SqueezeExcite));
        assert!(!minimal.iter().any(|l| l.activation == Activation::HardSwish));
        assert!(
            minimal
                .iter()
                .filter(|l| l.kind == LayerKind::Depthwise)
                .all(|l| l.kernel == 3)
        );
        assert_eq!(minimal.len(), layers.len() - 9);
    }

    /// Every layer's role is the one its name (the weight files' scheme) spells, and its kind
    /// is the role's.
    #[test]
    fn roles_match_names_and_kinds() {
        let mut configs: Vec<Config> = Family::ALL
            .into_iter()
            .map(|f| Config::family(f, 1.0, 224).unwrap())
            .collect();
        let v1 = Config::paper(1.0, 224).unwrap();
        configs.extend([
            v1.with_variant(Variant::FullConv),
            v1.with_variant(Variant::Shallow),
        ]);
        configs.push(Config::build(Family::V3Large, 1.0, 224, 1, 1000, Variant::Standard, true).unwrap());
        for config in configs {
            for l in instantiate(&config) {
                assert_eq!(l.kind, l.role.kind(), "{}", l.name);
                let n = l.name.as_str();
                let named = match l.role {
                    Role::Stem => n == "conv_0",
                    Role::Conv => n.starts_with("conv_") && n != "conv_0",
                    Role::Depthwise => n.starts_with("dw_"),
                    Role::Pointwise => n.starts_with("pw_"),
                    Role::Expand => n.ends_with(".expand"),
                    Role::BottleneckDepthwise => n.starts_with("block_") && n.ends_with(".dw"),
                    Role::SqueezeExcite => n.ends_with(".se"),
                    Role::Project => n.ends_with(".project"),
                    Role::ConvLast => n == "conv_last",
                    Role::ConvHead => n == "conv_head",
                    Role::Pool => n == "pool",
                    Role::Logits => n == "logits",
                };
                assert!(named, "{} has role {:?}", n, l.role);
            }
        }
    }

    #[test]
    fn every_table_starts_with_its_stem() {
        for family in Family::ALL {
            let arch = Architecture::of(family);
            assert!(matches!(arch.body[0], Block::Conv { stride: 2, .. }), "{family}");
            assert_eq!(arch.head.last(), Some(&Head::Logits));
        }
    }

    #[test]
    fn depth_multiplier_widens_depthwise_outputs() {
        let config = Config::new(1.0, 224, 2, 1000, Variant::Standard).unwrap();
        let layers = instantiate(&config);
        assert_eq!(layers[1].output.c, 64);
        assert_eq!(layers[2].input.c, 64);
        assert_eq!(layers[2].output.c, 64);
    }
}

//! MobileNet v1 as data (paper Table 1) and its instantiation into concrete layers.
//!
//! Each [`Block`] kind has one builder ([`Block::layers`]); a family is a block table plus a
//! head. Table 1 prints the last depthwise layer as "s2"; that is an erratum (tensorflow/models
//! #1997): TF-slim `_CONV_DEFS`, Keras and timm all use stride 1, and so do we.

use super::config::{Config, Variant, scaled_channels};
use super::layer::{Activation, Layer, LayerKind, Shape, same_output};

/// One row group of Table 1, before the width multiplier is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// A full k x k convolution, BatchNorm, ReLU6 (the stem, eq. 1).
    Conv { kernel: u32, stride: u32, out: u32 },
    /// Depthwise k x k convolution then pointwise 1x1 convolution, each with BatchNorm and
    /// ReLU6 (Figure 3, eq. 3-5). The stride belongs to the depthwise layer.
    DepthwiseSeparable { kernel: u32, stride: u32, out: u32 },
}

#[rustfmt::skip]
pub const MOBILENET_V1: &[Block] = &[
    Block::Conv               { kernel: 3, stride: 2, out: 32 },
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

/// Blocks that Table 5's "Shallow MobileNet" removes: the five separable layers at 14x14x512.
pub const SHALLOW_REMOVED_BLOCKS: [usize; 5] = [7, 8, 9, 10, 11];

impl Block {
    /// The concrete layers of block `index` for `config`, taking `input` and returning them in
    /// execution order. This is the one builder per block kind.
    fn layers(&self, index: usize, input: Shape, config: &Config) -> Vec<Layer> {
        let conv = |name: String, kind, kernel, stride, input: Shape, out_c| {
            let side = same_output(input.h, stride);
            Layer {
                name,
                block: Some(index),
                kind,
                kernel,
                stride,
                input,
                output: Shape::new(side, same_output(input.w, stride), out_c),
                batch_norm: true,
                activation: Activation::Relu6,
            }
        };
        match *self {
            Block::Conv { kernel, stride, out } => {
                let out = scaled_channels(out, config.alpha);
                vec![conv(
                    format!("conv_{index}"),
                    LayerKind::Conv,
                    kernel,
                    stride,
                    input,
                    out,
                )]
            }
            Block::DepthwiseSeparable { kernel, stride, out } => {
                let out = scaled_channels(out, config.alpha);
                if config.variant == Variant::FullConv {
                    return vec![conv(
                        format!("conv_{index}"),
                        LayerKind::Conv,
                        kernel,
                        stride,
                        input,
                        out,
                    )];
                }
                let dw_out = input.c * config.depth_multiplier;
                let dw = conv(
                    format!("dw_{index}"),
                    LayerKind::Depthwise,
                    kernel,
                    stride,
                    input,
                    dw_out,
                );
                let pw = conv(format!("pw_{index}"), LayerKind::Pointwise, 1, 1, dw.output, out);
                vec![dw, pw]
            }
        }
    }
}

/// Instantiates the network for `config`: body blocks, global average pool, fully connected
/// logits. Every shape, channel count and name the rest of the tool uses comes from here.
pub fn instantiate(config: &Config) -> Vec<Layer> {
    let mut shape = Shape::new(config.resolution, config.resolution, 3);
    let mut layers = Vec::new();
    for (index, block) in MOBILENET_V1.iter().enumerate() {
        if config.variant == Variant::Shallow && SHALLOW_REMOVED_BLOCKS.contains(&index) {
            continue;
        }
        for layer in block.layers(index, shape, config) {
            shape = layer.output;
            layers.push(layer);
        }
    }
    let pooled = Shape::new(1, 1, shape.c);
    layers.push(Layer {
        name: "pool".into(),
        block: None,
        kind: LayerKind::AvgPool,
        kernel: shape.h,
        stride: 1,
        input: shape,
        output: pooled,
        batch_norm: false,
        activation: Activation::Linear,
    });
    layers.push(Layer {
        name: "logits".into(),
        block: None,
        kind: LayerKind::Fc,
        kernel: 1,
        stride: 1,
        input: pooled,
        output: Shape::new(1, 1, config.classes),
        batch_norm: false,
        activation: Activation::Linear,
    });
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

    #[test]
    fn depth_multiplier_widens_depthwise_outputs() {
        let config = Config::new(1.0, 224, 2, 1000, Variant::Standard).unwrap();
        let layers = instantiate(&config);
        assert_eq!(layers[1].output.c, 64);
        assert_eq!(layers[2].input.c, 64);
        assert_eq!(layers[2].output.c, 64);
    }
}

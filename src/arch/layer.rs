//! Concrete layers: what the spec instantiates for one configuration.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An activation tensor's shape at batch 1, height x width x channels (the paper's D_F x D_F x M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Shape {
    pub h: u32,
    pub w: u32,
    pub c: u32,
}

impl Shape {
    pub const fn new(h: u32, w: u32, c: u32) -> Self {
        Shape { h, w, c }
    }

    pub fn elements(&self) -> u64 {
        u64::from(self.h) * u64::from(self.w) * u64::from(self.c)
    }

    /// As the JSON contract writes it: [h, w, c].
    pub fn to_array(self) -> [u32; 3] {
        [self.h, self.w, self.c]
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.h, self.w, self.c)
    }
}

/// What a layer computes. The names are the cost model's, the JSON's and the published tables'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// Full convolution (every output channel sees every input channel), paper eq. 1-2.
    Conv,
    /// Depthwise convolution: one filter per input channel (eq. 3-4).
    Depthwise,
    /// 1x1 convolution combining channels (the second half of eq. 5; v2's expansion and
    /// projection layers, Sandler et al. 2018 Section 3.3).
    Pointwise,
    /// Squeeze-and-excitation on the depthwise output (Howard et al. 2019 Section 5.3, Figure 4;
    /// TF-slim `conv_blocks.squeeze_excite` as configured by mobilenet_v3.py): global average
    /// pool -> 1x1 conv to `se_channels` with bias and ReLU -> 1x1 conv back with bias and
    /// hard-sigmoid relu6(x + 3) / 6 -> channel-wise multiply of the input. Input and output
    /// shapes are equal. Its cost is reported apart from the convolutions'.
    #[serde(rename = "squeeze_excite")]
    SqueezeExcite,
    /// Global average pooling.
    #[serde(rename = "avgpool")]
    AvgPool,
    /// Fully connected classifier.
    Fc,
}

impl LayerKind {
    pub const ALL: [LayerKind; 6] = [
        LayerKind::Conv,
        LayerKind::Depthwise,
        LayerKind::Pointwise,
        LayerKind::SqueezeExcite,
        LayerKind::AvgPool,
        LayerKind::Fc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::Depthwise => "depthwise",
            LayerKind::Pointwise => "pointwise",
            LayerKind::SqueezeExcite => "squeeze_excite",
            LayerKind::AvgPool => "avgpool",
            LayerKind::Fc => "fc",
        }
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a layer does in its block: the row label of the papers' tables (v1 Table 1 "Conv dw",
/// v3 Tables 1-2 "bneck" rows and "NBN" head conv), set where the spec builds the layer so that
/// reports never recover it from the layer's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The first full convolution on the image (`conv_0`).
    Stem,
    /// A full 3x3 convolution in place of a depthwise separable pair (v1 Table 4's "Conv
    /// MobileNet").
    Conv,
    /// The depthwise half of a v1 depthwise separable convolution (`dw_k`, Figure 3).
    Depthwise,
    /// The pointwise half of a v1 depthwise separable convolution (`pw_k`).
    Pointwise,
    /// An inverted residual's 1x1 expansion (v2 Section 3.3; `block_k.expand`).
    Expand,
    /// An inverted residual's depthwise convolution (`block_k.dw`).
    BottleneckDepthwise,
    /// An inverted residual's squeeze-and-excite (v3 Section 5.3; `block_k.se`).
    SqueezeExcite,
    /// An inverted residual's linear 1x1 projection (`block_k.project`).
    Project,
    /// The 1x1 convolution with BatchNorm after the body (v2/v3 `conv_last`).
    ConvLast,
    /// v3's 1x1 convolution after the pool, with a bias and no BatchNorm (`conv_head`, the
    /// "NBN" rows of v3 Tables 1-2).
    ConvHead,
    /// Global average pooling.
    Pool,
    /// The fully connected classifier.
    Logits,
}

impl Role {
    /// The computation a layer in this role performs.
    pub fn kind(self) -> LayerKind {
        match self {
            Role::Stem | Role::Conv => LayerKind::Conv,
            Role::Depthwise | Role::BottleneckDepthwise => LayerKind::Depthwise,
            Role::Pointwise | Role::Expand | Role::Project | Role::ConvLast | Role::ConvHead => {
                LayerKind::Pointwise
            }
            Role::SqueezeExcite => LayerKind::SqueezeExcite,
            Role::Pool => LayerKind::AvgPool,
            Role::Logits => LayerKind::Fc,
        }
    }
}

/// The nonlinearity after a layer (after its BatchNorm, when it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// min(max(x, 0), 6): v1's and v2's ReLU.
    Relu6,
    /// max(x, 0): MobileNetV3's early blocks and every minimalistic layer.
    Relu,
    /// x * relu6(x + 3) / 6 (Howard et al. 2019 Section 5.2, eq. 2): MobileNetV3's later layers.
    #[serde(rename = "hardswish")]
    HardSwish,
    /// No activation: the logits and v2/v3's linear bottleneck projections (Sandler et al. 2018
    /// Section 3.2).
    Linear,
}

impl Activation {
    /// As the papers' tables print it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu6 => "ReLU6",
            Activation::Relu => "ReLU",
            Activation::HardSwish => "h-swish",
            Activation::Linear => "linear",
        }
    }
}

/// One layer of an instantiated network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    /// Name shared with the weight files: v1 `conv_0`, `dw_1`, `pw_1`, ..., `pool`, `logits`;
    /// v2 `conv_0`, `block_k.{expand,dw,project}`, `conv_last`, `pool`, `logits`; v3 adds
    /// `block_k.se` and `conv_head` (the 1x1 conv after the pool).
    pub name: String,
    /// Index into the family's block table of the block this layer belongs to (0 for the stem;
    /// the head has none).
    pub block: Option<usize>,
    pub kind: LayerKind,
    pub role: Role,
    /// Square kernel size D_K (the pooled size for the global average pool, 1 for the FC and
    /// for squeeze-and-excite, whose 1x1 convs act on the pooled vector).
    pub kernel: u32,
    pub stride: u32,
    pub input: Shape,
    pub output: Shape,
    /// Followed by BatchNorm (folded into a bias in deployed weights).
    pub batch_norm: bool,
    /// Has its own bias instead of BatchNorm: the FC logits and v3's `conv_head` (SE layers
    /// count their biases with their own parameters).
    pub bias: bool,
    pub activation: Activation,
    /// Residual connection (Sandler et al. 2018 Section 3.3, Figure 3): the INPUT of the layer
    /// at this index (the first layer of the block) is added to this layer's output, after its
    /// BatchNorm. Set on the projection of stride-1 inverted residual blocks whose input and
    /// output widths match.
    pub residual_from: Option<usize>,
    /// Squeeze-and-excite layers only: the width of the reduce 1x1 conv.
    pub se_channels: Option<u32>,
}

impl Layer {
    /// Convolution groups: one per input channel for depthwise layers.
    pub fn groups(&self) -> u32 {
        match self.kind {
            LayerKind::Depthwise => self.input.c,
            _ => 1,
        }
    }

    /// TensorFlow SAME padding as (top, bottom, left, right): the total
    /// max((out - 1) * stride + k - in, 0) split with the extra pixel at the bottom/right.
    /// A 3x3 stride-2 layer on an even size therefore pads 0 on top/left and 1 on bottom/right.
    pub fn same_padding(&self) -> (u32, u32, u32, u32) {
        let split = |input: u32, output: u32| {
            let total = ((output - 1) * self.stride + self.kernel).saturating_sub(input);
            (total / 2, total - total / 2)
        };
        let (top, bottom) = split(self.input.h, self.output.h);
        let (left, right) = split(self.input.w, self.output.w);
        (top, bottom, left, right)
    }
}

/// Output size of a TensorFlow SAME-padded layer: ceil(input / stride).
pub fn same_output(input: u32, stride: u32) -> u32 {
    input.div_ceil(stride)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(input: u32, stride: u32) -> Layer {
        Layer {
            name: "dw".into(),
            block: Some(1),
            kind: LayerKind::Depthwise,
            role: Role::Depthwise,
            kernel: 3,
            stride,
            input: Shape::new(input, input, 8),
            output: Shape::new(same_output(input, stride), same_output(input, stride), 8),
            batch_norm: true,
            bias: false,
            activation: Activation::Relu6,
            residual_from: None,
            se_channels: None,
        }
    }

    #[test]
    fn same_padding_is_asymmetric_on_even_strided_inputs() {
        assert_eq!(layer(224, 2).same_padding(), (0, 1, 0, 1));
        assert_eq!(layer(225, 2).same_padding(), (1, 1, 1, 1));
        assert_eq!(layer(7, 1).same_padding(), (1, 1, 1, 1));
        assert_eq!(layer(1, 2).same_padding(), (1, 1, 1, 1));
    }

    #[test]
    fn same_output_is_ceil() {
        assert_eq!(same_output(224, 2), 112);
        assert_eq!(same_output(225, 2), 113);
        assert_eq!(same_output(7, 2), 4);
        assert_eq!(same_output(7, 1), 7);
    }
}

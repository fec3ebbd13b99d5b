//! Concrete layers: what the spec instantiates for one configuration.

use std::fmt;

use serde::Serialize;

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

/// What a layer computes. The names are the cost model's and the JSON's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// Full convolution (every output channel sees every input channel), paper eq. 1-2.
    Conv,
    /// Depthwise convolution: one filter per input channel (eq. 3-4).
    Depthwise,
    /// 1x1 convolution combining channels (the second half of eq. 5).
    Pointwise,
    /// Global average pooling.
    #[serde(rename = "avgpool")]
    AvgPool,
    /// Fully connected classifier.
    Fc,
}

impl LayerKind {
    pub const ALL: [LayerKind; 5] = [
        LayerKind::Conv,
        LayerKind::Depthwise,
        LayerKind::Pointwise,
        LayerKind::AvgPool,
        LayerKind::Fc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::Depthwise => "depthwise",
            LayerKind::Pointwise => "pointwise",
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

/// The nonlinearity after a layer (after its BatchNorm, when it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// min(max(x, 0), 6): MobileNet's ReLU.
    Relu6,
    /// No activation (the logits).
    Linear,
}

/// One layer of an instantiated network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layer {
    /// Name shared with the weight files: `conv_0`, `dw_1`, `pw_1`, ..., `pool`, `logits`.
    pub name: String,
    /// Index of the Table 1 block this layer belongs to (0 for the stem; the head has none).
    pub block: Option<usize>,
    pub kind: LayerKind,
    /// Square kernel size D_K (the pooled size for the global average pool, 1 for the FC).
    pub kernel: u32,
    pub stride: u32,
    pub input: Shape,
    pub output: Shape,
    /// Followed by BatchNorm (folded into a bias in deployed weights).
    pub batch_norm: bool,
    pub activation: Activation,
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
            kernel: 3,
            stride,
            input: Shape::new(input, input, 8),
            output: Shape::new(same_output(input, stride), same_output(input, stride), 8),
            batch_norm: true,
            activation: Activation::Relu6,
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

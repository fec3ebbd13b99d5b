//! Per-layer cost: v1 paper eqs. 2, 4 and 5 applied to one concrete layer, squeeze-and-excite's
//! two 1x1 convs (v3 Section 5.3) kept identifiable inside its layer's counts, and element-wise
//! operations counted apart.

use serde::Serialize;

use crate::arch::{Activation, Layer, LayerKind};

/// Counts for one layer. All integers are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LayerCost {
    /// Multiply-adds: a convolution's, depthwise's, pointwise's or FC's, or squeeze-and-excite's
    /// two 1x1 convs on the pooled vector (2 * C * R).
    pub mult_adds: u64,
    /// Parameters under the headline convention: the convolution or FC weights, or
    /// squeeze-and-excite's weights and biases (2 * C * R + R + C). BatchNorm and the biases of
    /// layers without it are `bn_channels` and `bias`.
    pub params: u64,
    /// The part of `mult_adds` that is squeeze-and-excite's (all of it on an SE layer, zero on
    /// any other), so the SE-less convention can be told apart.
    pub se_mult_adds: u64,
    /// The part of `params` that is squeeze-and-excite's.
    pub se_params: u64,
    /// Output channels followed by BatchNorm (2 trainable + 2 running values each, or 1 folded
    /// bias once deployed).
    pub bn_channels: u64,
    /// Bias values of a layer without BatchNorm (the FC logits, v3's `conv_head`).
    pub bias: u64,
    /// Element-wise operations, one per output element for each of: the residual add, the SE
    /// channel multiply and hard-swish's x * gate product. ReLU, ReLU6, hard-sigmoid, BatchNorm
    /// and pooling count zero, as in the paper's convention.
    pub elementwise_ops: u64,
    /// Elements of the layer's input activation at batch 1.
    pub input_elements: u64,
    /// Elements of the layer's output activation at batch 1.
    pub output_elements: u64,
}

/// The cost of `layer`.
pub fn layer_cost(layer: &Layer) -> LayerCost {
    let k2 = u64::from(layer.kernel) * u64::from(layer.kernel);
    let m = u64::from(layer.input.c);
    let n = u64::from(layer.output.c);
    let out_area = u64::from(layer.output.h) * u64::from(layer.output.w);
    let (mult_adds, params) = match layer.kind {
        // eq. 2: D_K^2 M N D_F^2.
        LayerKind::Conv => (k2 * m * n * out_area, k2 * m * n),
        // eq. 4: D_K^2 M D_F^2 with M = N / depth multiplier; each output channel has one filter.
        LayerKind::Depthwise => (k2 * n * out_area, k2 * n),
        LayerKind::Pointwise => (m * n * out_area, m * n),
        // Reduce C -> R and expand R -> C, each a 1x1 conv with bias on the 1x1 pooled vector.
        LayerKind::SqueezeExcite => {
            let r = u64::from(layer.se_channels.unwrap_or(0));
            (2 * n * r, 2 * n * r + r + n)
        }
        LayerKind::AvgPool => (0, 0),
        LayerKind::Fc => (m * n, m * n),
    };
    let (se_mult_adds, se_params) = if layer.kind == LayerKind::SqueezeExcite {
        (mult_adds, params)
    } else {
        (0, 0)
    };
    let output_elements = layer.output.elements();
    let elementwise_ops = [
        layer.residual_from.is_some(),
        layer.kind == LayerKind::SqueezeExcite,
        layer.activation == Activation::HardSwish,
    ]
    .into_iter()
    .filter(|&counted| counted)
    .count() as u64
        * output_elements;
    LayerCost {
        mult_adds,
        params,
        se_mult_adds,
        se_params,
        bn_channels: if layer.batch_norm { n } else { 0 },
        bias: if layer.bias { n } else { 0 },
        elementwise_ops,
        input_elements: layer.input.elements(),
        output_elements,
    }
}

/// A depthwise-separable layer against the standard convolution it replaces (eq. 5 over eq. 2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeparableSaving {
    /// The depthwise layer's name ("dw_3", "block_3.dw").
    pub depthwise: String,
    /// The pointwise layer's name ("pw_3", "block_3.project").
    pub pointwise: String,
    pub block: usize,
    /// Mult-adds of the depthwise plus pointwise layers (eq. 5).
    pub separable_mult_adds: u64,
    /// Mult-adds of a standard D_K x D_K convolution with the same input, output and stride (eq. 2).
    pub standard_mult_adds: u64,
    /// separable / standard.
    pub ratio: f64,
    /// The paper's closed form 1/N + 1/D_K^2 (times the depth multiplier).
    pub formula: f64,
}

/// The saving of the depthwise layer `dw` followed by the pointwise layer `pw`.
pub fn separable_saving(dw: &Layer, pw: &Layer) -> SeparableSaving {
    debug_assert_eq!((dw.kind, pw.kind), (LayerKind::Depthwise, LayerKind::Pointwise));
    let k2 = u64::from(dw.kernel) * u64::from(dw.kernel);
    let m = u64::from(dw.input.c);
    let n = u64::from(pw.output.c);
    let depth_multiplier = u64::from(dw.output.c / dw.input.c);
    let out_area = u64::from(dw.output.h) * u64::from(dw.output.w);
    let separable = layer_cost(dw).mult_adds + layer_cost(pw).mult_adds;
    let standard = k2 * m * n * out_area;
    SeparableSaving {
        depthwise: dw.name.clone(),
        pointwise: pw.name.clone(),
        block: dw.block.unwrap_or_default(),
        separable_mult_adds: separable,
        standard_mult_adds: standard,
        ratio: separable as f64 / standard as f64,
        formula: depth_multiplier as f64 * (1.0 / n as f64 + 1.0 / k2 as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Config, instantiate};

    #[test]
    fn tf_slim_first_layers() {
        let layers = instantiate(&Config::paper(1.0, 224).unwrap());
        let conv = layer_cost(&layers[0]);
        assert_eq!((conv.params, conv.mult_adds), (864, 10_838_016));
        let dw = layer_cost(&layers[1]);
        assert_eq!((dw.params, dw.mult_adds), (288, 3_612_672));
        let pw = layer_cost(&layers[2]);
        assert_eq!((pw.params, pw.mult_adds), (2_048, 25_690_112));
        let fc = layer_cost(layers.last().unwrap());
        assert_eq!(
            (fc.params, fc.mult_adds, fc.bias, fc.bn_channels),
            (1_024_000, 1_024_000, 1000, 0)
        );
    }

    #[test]
    fn saving_equals_the_closed_form_exactly() {
        let layers = instantiate(&Config::paper(1.0, 224).unwrap());
        for pair in layers.windows(2) {
            if pair[0].kind == LayerKind::Depthwise {
                let s = separable_saving(&pair[0], &pair[1]);
                let n = u64::from(pair[1].output.c);
                // separable * 9N == standard * (9 + N), i.e. ratio = 1/N + 1/9 with no rounding.
                assert_eq!(s.separable_mult_adds * 9 * n, s.standard_mult_adds * (9 + n));
                assert!((s.ratio - s.formula).abs() < 1e-15);
            }
        }
    }
}

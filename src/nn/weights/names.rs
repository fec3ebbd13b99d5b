//! The tensor-naming scheme of weight files, the one place it is written: the loader reads
//! through it, and a writer (a file for `--weights`, a retrained classifier head) uses it to
//! produce files the loader reads back.
//!
//! Tensors are named after their layer, as `arch::instantiate` names it (`conv_0`, `dw_1`,
//! `pw_1`, `block_3.expand`, `block_3.dw`, `block_3.se`, `block_3.project`, `conv_last`,
//! `conv_head`, `logits`). One convolution, or the FC layer, stored under a base name BASE:
//! - `BASE.weight`: OIHW, `[out, in, k, k]` (depthwise `[C * dm, 1, k, k]`, the FC layer
//!   `[classes, in]`);
//! - `BASE.bias` `[out]`, or BatchNorm's `BASE.bn.{weight, bias, running_mean, running_var}`;
//! - for U8 weights, `BASE.weight_scale` and `BASE.weight_zero_point`, one value each.
//!
//! A layer's base is its name, except squeeze-and-excite: its two 1x1 convs, each with a bias,
//! are `NAME.reduce` (`[se, C, 1, 1]`) and `NAME.expand` (`[C, se, 1, 1]`), e.g.
//! `block_3.se.reduce.weight`.
//!
//! Activation quantization (what `--precision int8` runs on: TFLite's uint8 graph), optional
//! but all or nothing, one `F32 [1]` each (zero points integral, `F32` or `I32`): for every
//! convolution and the FC layer NAME, `NAME.input_scale`, `NAME.input_zero_point`,
//! `NAME.output_scale`, `NAME.output_zero_point`; for the residual ADD after a block's
//! projection `block_k.project`, `block_k.add.{input1,input2,output}_{scale,zero_point}`
//! (input1 the projection's output, input2 the block's input). Listed by
//! [`activation_tensors`].

use crate::arch::{Layer, LayerKind};
use crate::engine::{Dense, LayerWeights};
use crate::nn::{squeeze_excite_shapes, weight_shape};

/// `BASE.weight`.
pub fn weight(base: &str) -> String {
    format!("{base}.weight")
}

/// `BASE.bias`.
pub fn bias(base: &str) -> String {
    format!("{base}.bias")
}

/// `BASE.weight_scale`: a U8 weight's scale.
pub fn weight_scale(base: &str) -> String {
    format!("{base}.weight_scale")
}

/// `BASE.weight_zero_point`: a U8 weight's zero point.
pub fn weight_zero_point(base: &str) -> String {
    format!("{base}.weight_zero_point")
}

/// BatchNorm's gamma, beta, running mean and running variance: `BASE.bn.weight`, `.bias`,
/// `.running_mean`, `.running_var`.
pub fn batch_norm(base: &str) -> [String; 4] {
    ["weight", "bias", "running_mean", "running_var"].map(|s| format!("{base}.bn.{s}"))
}

/// The bases of squeeze-and-excite layer `layer`'s two convs: (`NAME.reduce`, `NAME.expand`).
pub fn squeeze_excite(layer: &str) -> (String, String) {
    (format!("{layer}.reduce"), format!("{layer}.expand"))
}

/// Whether `tensor` belongs to a squeeze-and-excite layer (`block_k.se.*`).
pub fn is_squeeze_excite(tensor: &str) -> bool {
    tensor.contains(".se.")
}

/// The quantization of one uint8 tensor of `base` (`input`, `output`; an ADD's `input1`,
/// `input2`, `output`): (`BASE.TENSOR_scale`, `BASE.TENSOR_zero_point`).
pub fn quantization(base: &str, tensor: &str) -> (String, String) {
    (
        format!("{base}.{tensor}_scale"),
        format!("{base}.{tensor}_zero_point"),
    )
}

/// The base of the residual ADD after the projection `layer` (`block_k.project`):
/// `block_k.add`.
pub fn residual_add(layer: &str) -> String {
    let block = layer.rsplit_once('.').map_or(layer, |(block, _)| block);
    format!("{block}.add")
}

/// The tensors of an ADD (`input1`, `input2`, `output`).
pub const ADD_TENSORS: [&str; 3] = ["input1", "input2", "output"];

/// Whether `tensor` is an activation-quantization tensor of this scheme
/// (`BASE.{input,output,input1,input2}_{scale,zero_point}`, [`quantization`]).
pub fn is_activation_quantization(tensor: &str) -> bool {
    tensor.rsplit_once('.').is_some_and(|(_, last)| {
        ["input", "output", "input1", "input2"]
            .iter()
            .any(|t| last == format!("{t}_scale") || last == format!("{t}_zero_point"))
    })
}

/// The layers that carry activation quantization: every convolution and the FC layer (not the
/// pool, not squeeze-and-excite).
pub fn has_activation_quantization(layer: &Layer) -> bool {
    !matches!(layer.kind, LayerKind::AvgPool | LayerKind::SqueezeExcite)
}

/// Every activation-quantization tensor of `layers`, in layer order: a layer's input and
/// output, then its residual ADD's three tensors.
pub fn activation_tensors(layers: &[Layer]) -> Vec<String> {
    let mut names = Vec::new();
    for layer in layers.iter().filter(|l| has_activation_quantization(l)) {
        for tensor in ["input", "output"] {
            let (scale, zero_point) = quantization(&layer.name, tensor);
            names.extend([scale, zero_point]);
        }
        if layer.residual_from.is_some() {
            let add = residual_add(&layer.name);
            for tensor in ADD_TENSORS {
                let (scale, zero_point) = quantization(&add, tensor);
                names.extend([scale, zero_point]);
            }
        }
    }
    names
}

/// The tensors that store `weights` (folded: a bias per conv, as
/// `MobileNet::folded_weights` returns them) for `layers` in this scheme, as (name, shape,
/// values), in layer order: what a writer saves for the loader to read back as the same
/// network. Shapes are the spec's (`weight_shape`, `squeeze_excite_shapes`), biases `[out]`.
pub fn folded_tensors(layers: &[Layer], weights: &[LayerWeights]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut tensors = Vec::new();
    let mut conv = |base: &str, shape: Option<Vec<usize>>, dense: &Dense| {
        let shape = shape.unwrap_or_else(|| vec![dense.weight.len()]);
        tensors.push((weight(base), shape, dense.weight.clone()));
        tensors.push((bias(base), vec![dense.bias.len()], dense.bias.clone()));
    };
    for (layer, w) in layers.iter().zip(weights) {
        match w {
            LayerWeights::Dense(dense) => conv(&layer.name, weight_shape(layer), dense),
            LayerWeights::SqueezeExcite { reduce, expand } => {
                let (reduce_base, expand_base) = squeeze_excite(&layer.name);
                let (reduce_shape, expand_shape) = squeeze_excite_shapes(layer).unzip();
                conv(&reduce_base, reduce_shape, reduce);
                conv(&expand_base, expand_shape, expand);
            }
            LayerWeights::None => {}
        }
    }
    tensors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_scheme() {
        assert_eq!(weight("dw_1"), "dw_1.weight");
        assert_eq!(bias("logits"), "logits.bias");
        assert_eq!(weight_zero_point("pw_13"), "pw_13.weight_zero_point");
        assert_eq!(batch_norm("conv_0")[3], "conv_0.bn.running_var");
        let (reduce, _) = squeeze_excite("block_3.se");
        assert_eq!(weight(&reduce), "block_3.se.reduce.weight");
        assert!(is_squeeze_excite(&weight(&reduce)));
        assert!(!is_squeeze_excite("block_3.expand.weight"));
        assert_eq!(
            quantization("pw_13", "output"),
            (
                "pw_13.output_scale".to_string(),
                "pw_13.output_zero_point".to_string()
            )
        );
        assert_eq!(residual_add("block_4.project"), "block_4.add");
        assert_eq!(
            quantization("block_4.add", "input2").1,
            "block_4.add.input2_zero_point"
        );
        assert!(is_activation_quantization("pw_13.output_zero_point"));
        assert!(is_activation_quantization("block_4.add.input1_scale"));
        assert!(!is_activation_quantization("pw_13.weight_scale"));
        assert!(!is_activation_quantization("pw_13.weight"));
    }
}

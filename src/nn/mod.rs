//! Real inference with candle: MobileNet v1 built from the architecture spec and loaded from
//! safetensors weights.
//!
//! The network is `arch::instantiate(&config)` with tensors attached, never a second copy of
//! the layer list. Each convolution layer computes its convolution (a full 3x3 for the stem,
//! eq. 1-2; a depthwise 3x3, eq. 3-4; a pointwise 1x1, together with the depthwise the
//! depthwise-separable factorisation of eq. 5), then BatchNorm in inference form or the bias it
//! folds into, then ReLU6; a global average pool and a fully connected layer give the logits,
//! and softmax the probabilities. Padding is TensorFlow SAME (asymmetric on even-sized stride-2
//! layers), the input NCHW f32 scaled to [-1, 1].
//!
//! - [`ModelId`]: the shipped ImageNet models, one row each of [`SHIPPED`] (embedded in the
//!   binary);
//! - [`MobileNet`]: load ([`MobileNet::from_embedded`], [`MobileNet::from_file`]), or create
//!   ([`MobileNet::random`]), then run ([`MobileNet::forward`], [`MobileNet::probabilities`],
//!   [`MobileNet::forward_with_hook`], or up to the classifier's input,
//!   [`MobileNet::forward_features`]); [`MobileNet::folded_weights`] gives the fast engine its
//!   weights;
//! - [`names`], [`Values`]: the weight files' tensor names (for reading and writing) and the
//!   forms their values are kept in (uint8 stays quantized until a network is built);
//! - [`depthwise_conv`], [`pointwise_conv`]: the two halves of a separable layer, exposed for
//!   benchmarks and tests.

mod depthwise;
mod layers;
mod model_id;
mod network;
mod random;
mod weights;

pub use depthwise::{Padding, depthwise_conv, depthwise_conv_taps};
pub use layers::{BATCH_NORM_EPS, pointwise_conv, squeeze_excite_shapes, weight_shape};
pub use model_id::{IMAGENET_CLASSES, ModelId, SHIPPED, Shipped, UnknownModel};
pub use network::{MAX_WEIGHTS_BYTES, MobileNet};
pub(crate) use random::SplitMix64;
pub use weights::{
    ActivationQuantization, DEFAULT_RESOLUTION, LABELS_KEY, LayerActivations, Values, WeightOverrides,
    WeightsError, dequantize, names,
};

/// Helpers shared by the unit tests of this module.
#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::Tensor;

    /// The largest absolute element-wise difference of two tensors of the same shape.
    pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }
}

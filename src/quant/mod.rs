//! The int8 precision: TFLite's uint8 reference-kernel arithmetic, byte for byte, on the
//! shipped quantization-aware MobileNets (v1 and v2).
//!
//! The shipped weight files are TF-slim's uint8 models (per-tensor scale and zero point, f32
//! biases with BatchNorm folded). TFLite runs them in integers: uint8 activations, int32
//! accumulation of `(x - zx)(w - zw)`, a fixed-point requantization with two roundings, a
//! uint8 average pool, ADD and softmax. These are the primitives and the non-convolution ops
//! that reproduce those bytes exactly.
//!
//! - [`fixed_point`]: gemmlowp's and TFLite's primitives (`SaturatingRoundingDoublingHighMul`,
//!   `RoundingDivideByPOT`, `MultiplyByQuantizedMultiplier`, `QuantizeMultiplier`, the
//!   convolution multiplier, activation ranges);
//! - [`AddParams`] (ADD) and [`SoftmaxParams`] (SOFTMAX): Prepare and Eval.
//!
//! Sources, read for this module (the project's `shared/int8/README.md` has the details and
//! `shared/int8/tflite_u8_ref.py`, a bit-exact NumPy transcription, the same arithmetic):
//! LiteRT (github.com/google-ai-edge/LiteRT at f67457790c9c2ab67347d6fe53270e8d3df20868)
//! `tflite/kernels/internal/common.{h,cc}`, `quantization_util.cc`, `kernels/kernel_util.cc`,
//! `kernels/{conv,depthwise_conv,pooling,add,activations}.cc` and
//! `kernels/internal/reference/{conv.h,depthwiseconv_uint8.h,pooling.h,softmax.h,add.h}`; the
//! default build (no `TFLITE_SINGLE_ROUNDING`) rounds twice. gemmlowp (github.com/google/gemmlowp
//! at 16e8662c34917be0065110bfcd9cc27d30f52fdf) `fixedpoint/fixedpoint.h`.

use std::fmt;

mod add;
pub mod fixed_point;
mod softmax;

pub use add::{ADD_LEFT_SHIFT, AddParams, AddQuant};
pub use softmax::SoftmaxParams;

/// A uint8 tensor's quantization: real = `scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quant {
    pub scale: f32,
    pub zero_point: i32,
}

impl fmt::Display for Quant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(scale {}, zero point {})", self.scale, self.zero_point)
    }
}

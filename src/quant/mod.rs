//! The int8 precision: TFLite's uint8 reference-kernel arithmetic, byte for byte, on the
//! shipped quantization-aware MobileNets (v1 and v2).
//!
//! The shipped weight files are TF-slim's uint8 models (per-tensor scale and zero point, f32
//! biases with BatchNorm folded). TFLite runs them in integers: uint8 activations, int32
//! accumulation of `(x - zx)(w - zw)`, a fixed-point requantization with two roundings, a
//! uint8 average pool, ADD and softmax. This module reproduces those bytes exactly (tested on
//! every layer of v1 0.25_128 and on the final outputs of every shipped v1 model and of v2
//! against TFLite's own, `tests/cli/int8.rs`).
//!
//! - `float_form`: a single-precision form of a layer's requantization, `floor(fma(acc, m, c))`,
//!   proved equal to TFLite's for every int32 accumulator at load, for the vector kernels
//!   ([`OutputStage`]);
//! - [`fixed_point`]: gemmlowp's and TFLite's primitives (`SaturatingRoundingDoublingHighMul`,
//!   `RoundingDivideByPOT`, `MultiplyByQuantizedMultiplier`, `QuantizeMultiplier`, the
//!   convolution multiplier, activation ranges);
//! - [`AddParams`] (ADD) and [`SoftmaxParams`] (SOFTMAX): Prepare and Eval;
//! - [`NetworkParams`]: the network's description, per layer of `arch::instantiate(&config)`
//!   (quantization of each tensor, uint8 weights, int32 biases, residual ADDs), read from
//!   safetensors ([`NetworkParams::from_safetensors`], tensor names in
//!   [`activation_tensor_names`]) or synthetic ([`NetworkParams::random`]);
//! - [`QuantizedNetwork`]: validated and prepared, run with [`QuantizedNetwork::run`] on NHWC
//!   uint8 batches to the features, logits or probabilities. The portable kernels express full
//!   and pointwise convolutions as one u8 x s8 GEMM (`w - 128` as int8, corrected by per-pixel
//!   input sums and per-channel constants: the formulation of `vpdpbusd` / AMX), checked against
//!   the straightforward `(x - zx)(w - zw)` loops ([`Kernels::Reference`]); on x86-64 with
//!   AVX-512 VNNI the same GEMM runs on `vpdpbusd` and the depthwise convolution and the
//!   requantization in 512-bit vectors ([`Kernels::Vnni`], the same bytes), and on AVX2 in
//!   256-bit vectors with exact `vpmaddwd` ([`Kernels::Avx2`]). A forward pass may share each
//!   layer out to several threads ([`QuantizedNetwork::with_threads`], the same bytes).
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
#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod fixed_point;
mod float_form;
mod kernels;
mod network;
mod params;
mod reference;
mod softmax;
#[cfg(target_arch = "x86_64")]
mod vnni;

pub use add::{ADD_LEFT_SHIFT, AddParams, AddQuant};
pub use network::{ConvConstants, Kernels, MAX_BIAS, MAX_REDUCTION, Output, OutputStage, QuantizedNetwork};
pub use params::{
    BIAS_ROUNDING_TOLERANCE, ConvParams, LayerParams, NetworkParams, activation_tensor_names, bias_from_f32,
};
pub use softmax::SoftmaxParams;

/// Whether CPUID reports AMX-TILE and AMX-INT8 (whatever the OS allows: [`Kernels::Amx`] says
/// whether the kernels run).
pub fn cpu_has_amx_int8() -> bool {
    #[cfg(target_arch = "x86_64")]
    return amx::cpu_has_amx_int8();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `iterations` rounds of four independent `tdpbusd`s on the AMX tiles; returns the
/// multiply-accumulates done. Panics where [`Kernels::Amx`] is not available.
#[cfg(target_arch = "x86_64")]
pub fn tdpbusd_loop(iterations: usize) -> u64 {
    amx::tdpbusd_loop(iterations)
}

use crate::arch::Shape;

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

/// Why a quantized network could not be read, built or run.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    #[error("{file}: not a valid safetensors file ({reason})")]
    Format { file: String, reason: String },
    #[error("tensor {tensor} {problem}")]
    Tensor { tensor: String, problem: String },
    #[error("{layer}: {reason}")]
    Unsupported { layer: String, reason: String },
    #[error("{layer}: {problem}")]
    Invalid { layer: String, problem: String },
    #[error("input has {got} bytes, expected {batch} x {shape} uint8 values (NHWC)")]
    Input { got: usize, batch: usize, shape: Shape },
    #[error("the {0:?} kernels do not run on this CPU")]
    Kernels(Kernels),
    #[error("{0}")]
    Threads(String),
}

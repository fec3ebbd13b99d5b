//! The fixed-point primitives of gemmlowp and TFLite, transcribed so that every rounding is the
//! reference kernels' own.
//!
//! Sources (see the module docs of [`crate::quant`] for the commits):
//! - gemmlowp `fixedpoint/fixedpoint.h`: `SaturatingRoundingDoublingHighMul` ([`srdhm`]),
//!   `RoundingDivideByPOT` ([`rounding_divide_by_pot`]), `SaturatingRoundingMultiplyByPOT`
//!   ([`saturating_shift_left`]);
//! - TFLite `kernels/internal/common.h`: `MultiplyByQuantizedMultiplier` in the default "double
//!   rounding" build ([`QuantizedMultiplier::apply`]; `TFLITE_SINGLE_ROUNDING` is only defined for
//!   test libraries);
//! - TFLite `kernels/internal/quantization_util.cc`: `QuantizeMultiplier`
//!   ([`QuantizedMultiplier::from_real`]);
//! - TFLite `kernels/kernel_util.cc`: `GetQuantizedConvolutionMultipler` (the FLOAT32 product
//!   `s_in * s_w`, then a double division: [`QuantizedMultiplier::convolution`]) and
//!   `CalculateActivationRangeQuantizedImpl` ([`activation_range`]).

use super::Quant;
use crate::arch::Activation;

/// gemmlowp `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2 * a * b`, rounded to
/// nearest with ties toward +infinity for `b >= 0` (C's truncating division by 2^31 after a nudge
/// of 2^30, or 1 - 2^30 for a negative product); `a == b == i32::MIN` saturates to `i32::MAX`.
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // |ab + nudge| / 2^31 < 2^31: the quotient fits (only MIN * MIN would not, handled above).
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
/// `exponent` is 0 to 31.
pub fn rounding_divide_by_pot(x: i32, exponent: u32) -> i32 {
    debug_assert!(exponent <= 31, "RoundingDivideByPOT exponent {exponent}");
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// gemmlowp `SaturatingRoundingMultiplyByPOT<exponent>` for a positive exponent: `x * 2^exponent`,
/// saturated to the int32 range.
pub fn saturating_shift_left(x: i32, exponent: u32) -> i32 {
    debug_assert!((1..=31).contains(&exponent));
    let threshold = (1i32 << (31 - exponent)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x << exponent
    }
}

/// A real multiplier as TFLite stores it: `real ~= multiplier * 2^(shift - 31)` with `multiplier`
/// in [2^30, 2^31) (or 0); a negative `shift` is a right shift (TFLite's `output_shift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantizedMultiplier {
    pub multiplier: i32,
    pub shift: i32,
}

impl QuantizedMultiplier {
    /// TFLite `QuantizeMultiplier`: `(m, e) = frexp(real)`, `q = round_half_away(m * 2^31)`;
    /// `q == 2^31` becomes `2^30` with `e + 1`; `e < -31` flushes to zero (`q = 0`, shift 0).
    pub fn from_real(real: f64) -> Self {
        if real == 0.0 {
            return QuantizedMultiplier {
                multiplier: 0,
                shift: 0,
            };
        }
        let (fraction, mut shift) = frexp(real);
        // `f64::round` is round half away from zero, as TfLiteRound (std::round).
        let mut q = (fraction * (1i64 << 31) as f64).round() as i64;
        debug_assert!(q.abs() <= 1i64 << 31);
        if q == 1i64 << 31 {
            q /= 2;
            shift += 1;
        }
        if shift < -31 {
            shift = 0;
            q = 0;
        }
        QuantizedMultiplier {
            multiplier: q as i32,
            shift,
        }
    }

    /// The requantization multiplier of a convolution (TFLite `GetQuantizedConvolutionMultipler`,
    /// uint8 path): the product `s_in * s_w` is rounded to FLOAT32 first, then divided by `s_out`
    /// in double. (The product in double would change the multiplier of 27 of v1 1.0_224's 28
    /// convolutions.)
    pub fn convolution(input_scale: f32, weight_scale: f32, output_scale: f32) -> Self {
        let product = f64::from(input_scale * weight_scale);
        QuantizedMultiplier::from_real(product / f64::from(output_scale))
    }

    /// TFLite `MultiplyByQuantizedMultiplier` (double rounding):
    /// `RDBPOT(SRDHM(x * 2^max(shift, 0), multiplier), max(-shift, 0))`.
    pub fn apply(self, x: i32) -> i32 {
        let left = self.shift.max(0) as u32;
        let right = (-self.shift).max(0) as u32;
        // TFLite multiplies in int32; wrapping is its two's-complement result.
        rounding_divide_by_pot(srdhm(x.wrapping_shl(left), self.multiplier), right)
    }

    /// The real value this multiplier stands for.
    pub fn real(self) -> f64 {
        f64::from(self.multiplier) * 2f64.powi(self.shift - 31)
    }
}

/// C's `frexp` for a finite nonzero `x`: `x = m * 2^e` with `|m|` in [0.5, 1).
fn frexp(x: f64) -> (f64, i32) {
    debug_assert!(x.is_finite() && x != 0.0);
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (m, e) = frexp(x * 2f64.powi(54));
        return (m, e - 54);
    }
    let m = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (m, biased - 1022)
}

/// TFLite `Quantize` of a real value on `quant` (kernel_util.cc): `zero_point +
/// round_half_away(value / scale)`, the division in float.
fn quantize(value: f32, quant: Quant) -> i32 {
    quant.zero_point + (value / quant.scale).round() as i32
}

/// The uint8 clamp `[act_min, act_max]` of a fused activation on an output quantized as `output`
/// (TFLite `CalculateActivationRangeQuantizedImpl`): ReLU6 `[max(0, Q(0)), min(255, Q(6))]`,
/// ReLU `[max(0, Q(0)), 255]`, none `[0, 255]`. `None` for hard-swish, which TFLite does not fuse.
pub fn activation_range(activation: Activation, output: Quant) -> Option<(u8, u8)> {
    let clamp = |v: i32| v.clamp(0, 255) as u8;
    match activation {
        Activation::Linear => Some((0, 255)),
        Activation::Relu => Some((clamp(quantize(0.0, output)), 255)),
        Activation::Relu6 => Some((clamp(quantize(0.0, output)), clamp(quantize(6.0, output)))),
        Activation::HardSwish => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for the property checks below (SplitMix64).
    fn values(seed: u64, n: usize) -> Vec<i32> {
        let mut rng = crate::nn::SplitMix64(seed);
        (0..n).map(|_| rng.next_u64() as i32).collect()
    }

    #[test]
    fn srdhm_is_round_half_up_of_the_doubled_high_half_for_nonnegative_b() {
        let a = values(1, 200_000);
        let b = values(2, 200_000);
        for (&a, &b) in a.iter().zip(&b) {
            let b = b & i32::MAX;
            let expected = (i64::from(a) * i64::from(b) + (1 << 30)) >> 31;
            assert_eq!(i64::from(srdhm(a, b)), expected, "{a} * {b}");
        }
        // Exact ties: a * b = k * 2^31 + 2^30 rounds toward +infinity in both signs.
        for a in [-5i32, -3, -1, 1, 3, 5, 1 << 20, -(1 << 20) - 1] {
            let b = 1 << 30;
            let expected = (i64::from(a) * i64::from(b) + (1 << 30)) >> 31;
            assert_eq!(i64::from(srdhm(a, b)), expected, "tie {a}");
        }
        assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(srdhm(i32::MIN, i32::MAX), -i32::MAX);
        // For b < 0 the nudge is 1 - 2^30 and C truncates: -1.5 -> -1 (ties toward zero here).
        assert_eq!(srdhm(3, -(1 << 29)), -1);
        assert_eq!(srdhm(-3, 1 << 29), -1);
    }

    #[test]
    fn rounding_divide_by_pot_rounds_half_away_from_zero() {
        for e in 1..=11u32 {
            for x in (-5000..5000).chain(values(3, 20_000).into_iter().map(|v| v >> 1)) {
                // The README's closed form: (x + 2^(e-1) - (x < 0)) >> e.
                let expected = ((i64::from(x) + (1i64 << (e - 1)) - i64::from(x < 0)) >> e) as i32;
                assert_eq!(rounding_divide_by_pot(x, e), expected, "{x} / 2^{e}");
            }
        }
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
    }

    #[test]
    fn saturating_shift_left_saturates() {
        assert_eq!(saturating_shift_left(3, 2), 12);
        assert_eq!(saturating_shift_left(-3, 2), -12);
        assert_eq!(saturating_shift_left(1 << 29, 2), i32::MAX);
        assert_eq!(saturating_shift_left(-(1 << 29), 2), i32::MIN);
        assert_eq!(saturating_shift_left((1 << 29) - 1, 2), ((1 << 29) - 1) << 2);
    }

    #[test]
    fn quantize_multiplier_follows_tflite() {
        let q = QuantizedMultiplier::from_real(0.5);
        assert_eq!((q.multiplier, q.shift), (1 << 30, 0));
        let q = QuantizedMultiplier::from_real(0.75);
        assert_eq!((q.multiplier, q.shift), (3 << 29, 0));
        let q = QuantizedMultiplier::from_real(3.0);
        assert_eq!((q.multiplier, q.shift), (3 << 29, 2));
        // m * 2^31 rounds up to 2^31: halved, exponent + 1.
        let q = QuantizedMultiplier::from_real(1.0 - 2f64.powi(-40));
        assert_eq!((q.multiplier, q.shift), (1 << 30, 1));
        // Below 2^-32 everything flushes to zero.
        let q = QuantizedMultiplier::from_real(2f64.powi(-40));
        assert_eq!((q.multiplier, q.shift), (0, 0));
        let q = QuantizedMultiplier::from_real(2f64.powi(-32));
        assert_eq!((q.multiplier, q.shift), (1 << 30, -31));
        assert_eq!(QuantizedMultiplier::from_real(0.0).multiplier, 0);
        // Round half away from zero: 2^30 + 0.5 units rounds up.
        let real = (f64::from(1 << 30) + 0.5) / 2f64.powi(31);
        assert_eq!(QuantizedMultiplier::from_real(real).multiplier, (1 << 30) + 1);
        // Subnormal input.
        let q = QuantizedMultiplier::from_real(f64::MIN_POSITIVE / 4.0);
        assert_eq!(q.multiplier, 0);
        for real in [0.011279192796250403, 0.34369551182713726, 1.771962138486793e-06] {
            let q = QuantizedMultiplier::from_real(real);
            assert!((q.real() - real).abs() <= real * 2f64.powi(-30), "{real}");
        }
    }

    #[test]
    fn the_convolution_multiplier_uses_the_float32_product() {
        // v2 conv_0 (params_mobilenet_v2_1.0_224.json): q 1550200454, shift -6.
        let q = QuantizedMultiplier::convolution(0.0078125, 0.033_968_925, 0.023_528_477);
        assert_eq!((q.multiplier, q.shift), (1550200454, -6));
        // Every shipped layer's multiplier is checked against TFLite's in tests/cli/int8.rs.
    }

    #[test]
    fn multiply_by_quantized_multiplier_rounds_twice() {
        // 0.75 * 10 = 7.5 -> 8; with a right shift of 2: 7.5 / 4 = 1.875 -> 2.
        let q = QuantizedMultiplier::from_real(0.75);
        assert_eq!(q.apply(10), 8);
        assert_eq!(q.apply(-10), -7); // SRDHM: -7.5 -> -7 (nudge toward +inf)
        let q = QuantizedMultiplier::from_real(0.75 / 4.0);
        assert_eq!(q.shift, -2);
        assert_eq!(q.apply(10), 2);
        // Double rounding: x = 11, real = 0.75/4: SRDHM gives 8 (8.25), /4 = 2.
        assert_eq!(q.apply(11), 2);
        // A value where the two roundings differ from one: 0.5 + 2^-31 times 3 = 1.5 + tiny.
        let q = QuantizedMultiplier {
            multiplier: 1 << 30,
            shift: -1,
        };
        // SRDHM(6, 2^30) = 3, then 3 / 2 = 1.5 -> 2 (away from zero); exact 6 * 0.25 = 1.5.
        assert_eq!(q.apply(6), 2);
        assert_eq!(q.apply(-6), -2);
        // A left shift (multiplier > 1).
        let q = QuantizedMultiplier::from_real(3.0);
        assert_eq!(q.apply(7), 21);
    }

    #[test]
    fn activation_ranges() {
        let relu6 = Quant {
            scale: 0.023_528_477,
            zero_point: 0,
        };
        assert_eq!(activation_range(Activation::Relu6, relu6), Some((0, 255)));
        let shifted = Quant {
            scale: 6.0 / 200.0,
            zero_point: 20,
        };
        assert_eq!(activation_range(Activation::Relu6, shifted), Some((20, 220)));
        assert_eq!(activation_range(Activation::Relu, shifted), Some((20, 255)));
        assert_eq!(activation_range(Activation::Linear, shifted), Some((0, 255)));
        assert_eq!(activation_range(Activation::HardSwish, shifted), None);
        let wide = Quant {
            scale: 0.01,
            zero_point: 128,
        };
        assert_eq!(activation_range(Activation::Relu6, wide), Some((128, 255)));
    }
}

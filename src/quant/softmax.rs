//! TFLite's uint8 SOFTMAX (reference kernel, beta on the input scale), in gemmlowp fixed point.
//!
//! Prepare: TFLite `kernels/activations.cc` `SoftmaxPrepare` (kReference) with
//! `quantization_util.cc` `PreprocessSoftmaxScaling` and `CalculateInputRadius`. Eval:
//! `kernels/internal/reference/softmax.h` (uint8), with gemmlowp `fixedpoint.h`'s
//! `exp_on_negative_values`, `exp_on_interval_between_negative_one_quarter_and_0_excl`,
//! `one_over_one_plus_x_for_x_in_0_1` and TFLite `common.h`'s `GetReciprocal`. The output is
//! uint8 with scale 1/256 and zero point 0, the only output quantization TFLite allows here.

use super::fixed_point::{QuantizedMultiplier, rounding_divide_by_pot, saturating_shift_left, srdhm};

/// Integer bits of the scaled input differences (Q5.26), TFLite's `kScaledDiffIntegerBits`.
const SCALED_DIFF_INTEGER_BITS: u32 = 5;
/// Integer bits of the sum of exponentials (Q12.19), TFLite's `kAccumulationIntegerBits`.
const ACCUMULATION_INTEGER_BITS: u32 = 12;

/// The constants SoftmaxPrepare derives from beta and the input scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxParams {
    /// `input_multiplier`: `beta * s_in * 2^26` (capped at 2^31 - 1) as a multiplier >= 1...
    pub input_multiplier: i32,
    /// ... with this left shift (`input_left_shift`, >= 0).
    pub input_left_shift: i32,
    /// Differences from the row maximum below this give probability 0 (`diff_min`).
    pub diff_min: i32,
}

impl SoftmaxParams {
    /// `real = min(beta * s_in * 2^26, 2^31 - 1)` in double, `QuantizeMultiplier(real)`, and
    /// `diff_min = -floor((2^5 - 1) * 2^26 / 2^left_shift)`. `None` where `real < 1` (an input
    /// scale below 2^-26 at beta 1), which TFLite refuses (`QuantizeMultiplierGreaterThanOne`).
    pub fn new(beta: f64, input_scale: f32) -> Option<Self> {
        let real = (beta * f64::from(input_scale) * f64::from(1u32 << (31 - SCALED_DIFF_INTEGER_BITS)))
            .min(f64::from(i32::MAX));
        if real.is_nan() || real < 1.0 {
            return None;
        }
        let q = QuantizedMultiplier::from_real(real);
        let max_input = f64::from((1u32 << SCALED_DIFF_INTEGER_BITS) - 1)
            * f64::from(1u32 << (31 - SCALED_DIFF_INTEGER_BITS))
            / 2f64.powi(q.shift);
        Some(SoftmaxParams {
            input_multiplier: q.multiplier,
            input_left_shift: q.shift,
            diff_min: -(max_input.floor() as i32),
        })
    }

    /// The softmax of each row of `input` (rows of `row_len` uint8 logits) into `output`, uint8
    /// probabilities with scale 1/256.
    pub fn run(&self, input: &[u8], row_len: usize, output: &mut [u8]) {
        assert_eq!(input.len(), output.len());
        assert!(row_len > 0 && input.len().is_multiple_of(row_len));
        for (row, out) in input.chunks_exact(row_len).zip(output.chunks_exact_mut(row_len)) {
            self.row(row, out);
        }
    }

    /// One row (reference/softmax.h, uint8).
    fn row(&self, input: &[u8], output: &mut [u8]) {
        let max = i32::from(input.iter().copied().max().unwrap_or(0));
        // exp(d) in Q0.31 for every difference d >= diff_min; None below (probability 0).
        let exp = |q: u8| {
            let diff = i32::from(q) - max;
            (diff >= self.diff_min).then(|| {
                // MultiplyByQuantizedMultiplierGreaterThanOne; diff >= diff_min keeps this in range.
                let scaled = srdhm(diff * (1 << self.input_left_shift), self.input_multiplier);
                exp_on_negative_values(scaled)
            })
        };
        // Rescale<12> of each Q0.31 exponential into the Q12.19 sum.
        let sum: i32 = input
            .iter()
            .filter_map(|&q| exp(q))
            .map(|e| rounding_divide_by_pot(e, ACCUMULATION_INTEGER_BITS))
            .sum();
        let (reciprocal, bits_over_unit) = reciprocal(sum, ACCUMULATION_INTEGER_BITS);
        let exponent = (bits_over_unit + 31 - 8) as u32;
        for (o, &q) in output.iter_mut().zip(input) {
            *o = match exp(q) {
                Some(e) => rounding_divide_by_pot(srdhm(reciprocal, e), exponent).clamp(0, 255) as u8,
                None => 0,
            };
        }
    }
}

/// gemmlowp `exp_on_negative_values` for a Q5.26 input `a <= 0`, result in Q0.31.
fn exp_on_negative_values(a: i32) -> i32 {
    const FRACTIONAL_BITS: u32 = 31 - SCALED_DIFF_INTEGER_BITS;
    let one_quarter = 1i32 << (FRACTIONAL_BITS - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    // Rescale<0> of the Q5.26 value: SaturatingRoundingMultiplyByPOT<5>.
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_shift_left(
        a_mod_quarter_minus_one_quarter,
        SCALED_DIFF_INTEGER_BITS,
    ));
    let remainder = a_mod_quarter_minus_one_quarter - a;
    // The barrel shifter: exp(-2^k) for each bit k of the remainder (k = -2 .. 4, all below
    // the 5 integer bits).
    const BARREL: [(i32, i32); 7] = [
        (-2, 1672461947),
        (-1, 1302514674),
        (0, 790015084),
        (1, 290630308),
        (2, 39332535),
        (3, 720401),
        (4, 242),
    ];
    for (exponent, multiplier) in BARREL {
        let shift = FRACTIONAL_BITS as i32 + exponent;
        if remainder & (1 << shift) != 0 {
            result = srdhm(result, multiplier);
        }
    }
    if a == 0 { i32::MAX } else { result }
}

/// gemmlowp `exp_on_interval_between_negative_one_quarter_and_0_excl`: a Taylor expansion around
/// -1/8, input and result in Q0.31.
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1895147668; // exp(-1/8)
    const ONE_THIRD: i32 = 715827883;
    let x = a + (1 << 28); // a + 1/8
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = rounding_divide_by_pot(x4, 2);
    let polynomial = rounding_divide_by_pot(srdhm(x4_over_4 + x3, ONE_THIRD) + x2, 1);
    CONSTANT_TERM + srdhm(CONSTANT_TERM, x + polynomial)
}

/// TFLite `GetReciprocal(x, integer_digits)`: `1 / x` for a positive fixed-point `x` with
/// `integer_digits` integer bits, as a Q0.31 value and the number of bits it is over one.
fn reciprocal(x: i32, integer_digits: u32) -> (i32, i32) {
    debug_assert!(x > 0);
    let headroom_plus_one = (x as u32).leading_zeros();
    let bits_over_unit = integer_digits as i32 - headroom_plus_one as i32;
    let shifted_minus_one = ((x as u32) << headroom_plus_one).wrapping_sub(1 << 31) as i32;
    (
        one_over_one_plus_x_for_x_in_0_1(shifted_minus_one),
        bits_over_unit,
    )
}

/// gemmlowp `one_over_one_plus_x_for_x_in_0_1`: `1 / (1 + a)` for `a` in Q0.31, by three
/// Newton-Raphson steps in Q2.29; result in Q0.31.
fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    // RoundingHalfSum(a, One): (a + (2^31 - 1) + sign) / 2, truncating.
    let sum = i64::from(a) + i64::from(i32::MAX);
    let sign = if sum >= 0 { 1 } else { -1 };
    let half_denominator = ((sum + sign) / 2) as i32;
    const C48_OVER_17: i32 = 1515870810;
    const NEG_32_OVER_17: i32 = -1010580540;
    const ONE_Q2_29: i32 = 1 << 29;
    let mut x = C48_OVER_17 + srdhm(half_denominator, NEG_32_OVER_17);
    for _ in 0..3 {
        let half_denominator_times_x = srdhm(half_denominator, x);
        let one_minus = ONE_Q2_29 - half_denominator_times_x;
        // The Q4.27 product rescaled to Q2.29.
        x += saturating_shift_left(srdhm(x, one_minus), 2);
    }
    // ExactMulByPot<-1> to Q1.30, then Rescale<0>.
    saturating_shift_left(x, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_gives_tflites_constants() {
        // params_mobilenet_*.json: v1 1.0_224 logits scale 0.16609922, v2 0.09889254,
        // v1 0.25_128 0.13083284.
        assert_eq!(
            SoftmaxParams::new(1.0, 0.166_099_22),
            Some(SoftmaxParams {
                input_multiplier: 1426781440,
                input_left_shift: 24,
                diff_min: -124
            })
        );
        assert_eq!(
            SoftmaxParams::new(1.0, 0.098_892_54),
            Some(SoftmaxParams {
                input_multiplier: 1698960896,
                input_left_shift: 23,
                diff_min: -248
            })
        );
        assert_eq!(SoftmaxParams::new(1.0, 1e-9), None);
        assert_eq!(
            SoftmaxParams::new(1.0, 0.130_832_84),
            Some(SoftmaxParams {
                input_multiplier: 1123845504,
                input_left_shift: 24,
                diff_min: -124
            })
        );
    }

    #[test]
    fn exp_matches_the_real_function() {
        assert_eq!(exp_on_negative_values(0), i32::MAX);
        for k in 1..2000 {
            // Q5.26 inputs from 0 down to about -30.
            let a = -k * (1 << 20);
            let real = (f64::from(a) / f64::from(1 << 26)).exp();
            let got = f64::from(exp_on_negative_values(a)) / 2f64.powi(31);
            // The Taylor expansion stops at x^4 on |x| <= 1/8: error below (1/8)^5 / 120 = 2.5e-7.
            assert!((got - real).abs() < 2.6e-7, "exp({a}): {got} vs {real}");
        }
    }

    #[test]
    fn reciprocal_matches_the_real_function() {
        for k in 0..1000 {
            let a = k * (i32::MAX / 1000);
            let real = 1.0 / (1.0 + f64::from(a) / 2f64.powi(31));
            let got = f64::from(one_over_one_plus_x_for_x_in_0_1(a)) / 2f64.powi(31);
            assert!((got - real).abs() < 1e-8, "1/(1+{a}): {got} vs {real}");
        }
        // 2^19 in Q12.19 is 1.0: reciprocal 1 with no bits over unit... as 0.5 * 2^1.
        let (r, bits) = reciprocal(1 << 19, 12);
        assert_eq!(bits, 0);
        assert!(r >= i32::MAX - 4, "{r}");
        // 3.0 = 1.5 * 2^1: 1 / 1.5 in Q0.31, one bit over unit (1/3 = (2/3) / 2^1).
        let (r, bits) = reciprocal(3 << 19, 12);
        assert_eq!(bits, 1);
        assert!((f64::from(r) / 2f64.powi(31) - 2.0 / 3.0).abs() < 1e-8, "{r}");
    }

    #[test]
    fn softmax_rows_sum_to_about_one_and_keep_the_order() {
        let params = SoftmaxParams::new(1.0, 0.16609922).unwrap();
        let logits: Vec<u8> = (0..1001).map(|i| ((i * 37) % 251) as u8).collect();
        let mut out = vec![0u8; 2002];
        let two_rows: Vec<u8> = logits.iter().chain(&logits).copied().collect();
        params.run(&two_rows, 1001, &mut out);
        assert_eq!(out[..1001], out[1001..]);
        // Monotonic: a larger logit never gets a smaller probability.
        for i in 0..1001 {
            for j in 0..1001 {
                if logits[i] > logits[j] {
                    assert!(out[i] >= out[j]);
                }
            }
        }
        // One dominant logit: probability 255/256 (saturated).
        let mut peaked = vec![0u8; 10];
        peaked[3] = 255;
        let mut out = vec![0u8; 10];
        params.run(&peaked, 10, &mut out);
        assert_eq!(out, [0, 0, 0, 255, 0, 0, 0, 0, 0, 0]);
        // Four equal logits: a quarter each (64/256).
        let mut out = vec![0u8; 4];
        params.run(&[7, 7, 7, 7], 4, &mut out);
        assert_eq!(out, [64, 64, 64, 64]);
    }
}

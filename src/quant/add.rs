//! TFLite's uint8 ADD: the residual connection of MobileNetV2's inverted residual blocks.
//!
//! Prepare: TFLite `kernels/add.cc` (uint8): both inputs are brought to a common scale
//! `2 * max(s1, s2)` after a left shift of 20 bits, summed, and requantized to the output.
//! Eval: `kernels/internal/reference/add.h` `AddElementwise`, every step
//! `MultiplyByQuantizedMultiplierSmallerThanOneExp` = `RDBPOT(SRDHM(x, q), -shift)`.

use super::Quant;
use super::fixed_point::{QuantizedMultiplier, rounding_divide_by_pot, srdhm};
use super::kernels::Requantize;

/// The left shift TFLite applies to both uint8 inputs before rescaling them.
pub const ADD_LEFT_SHIFT: u32 = 20;

/// The quantization of an ADD's two inputs and its output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AddQuant {
    pub input1: Quant,
    pub input2: Quant,
    pub output: Quant,
}

/// The integer constants ADD's Prepare derives (three multipliers, each below one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddParams {
    pub input1_offset: i32,
    pub input2_offset: i32,
    pub output_offset: i32,
    pub input1: QuantizedMultiplier,
    pub input2: QuantizedMultiplier,
    pub output: QuantizedMultiplier,
    pub act_min: u8,
    pub act_max: u8,
}

impl AddParams {
    /// `twice_max = 2 * max(s1, s2)`; the input multipliers `s_i / twice_max` and the output
    /// multiplier `twice_max / (2^20 * s_out)`, each by `QuantizeMultiplier`; the clamp is
    /// `[act_min, act_max]` (no fused activation in MobileNetV2: [0, 255]). `None` when a
    /// multiplier is not below one (TFLite's `QuantizeMultiplierSmallerThanOneExp` refuses it).
    pub fn new(quant: AddQuant, act_min: u8, act_max: u8) -> Option<Self> {
        // 2 * float and 2^20 * float are exact in float: the same values in double.
        let twice_max = 2.0 * f64::from(quant.input1.scale.max(quant.input2.scale));
        let input1 = QuantizedMultiplier::from_real(f64::from(quant.input1.scale) / twice_max);
        let input2 = QuantizedMultiplier::from_real(f64::from(quant.input2.scale) / twice_max);
        let output = QuantizedMultiplier::from_real(
            twice_max / f64::from((1u32 << ADD_LEFT_SHIFT) as f32 * quant.output.scale),
        );
        if [input1, input2, output].iter().any(|m| m.shift > 0) {
            return None;
        }
        Some(AddParams {
            input1_offset: -quant.input1.zero_point,
            input2_offset: -quant.input2.zero_point,
            output_offset: quant.output.zero_point,
            input1,
            input2,
            output,
            act_min,
            act_max,
        })
    }

    /// The output stage as the vector kernels' epilogues take it: `clamp(RDBPOT(SRDHM(sum,
    /// q_o), -e_o) + z_o)` in fixed point (no float form: the sums, in 2^20-scaled units, lie
    /// beyond the integers an f32 holds exactly, and none of v2's ADDs proves one).
    pub(crate) fn output_stage(&self) -> Requantize {
        Requantize {
            multiplier: self.output,
            zero_point: self.output_offset,
            min: self.act_min,
            max: self.act_max,
            float: None,
        }
    }

    /// `out[i] = clamp(RDBPOT(SRDHM(a' + b', q_o), -e_o) + z_o)` with
    /// `a' = RDBPOT(SRDHM((a - z_1) << 20, q_1), -e_1)` and `b'` alike.
    pub fn run(&self, a: &[u8], b: &[u8], out: &mut [u8]) {
        assert!(a.len() == b.len() && a.len() == out.len());
        let scale = |x: u8, offset: i32, m: QuantizedMultiplier| {
            let shifted = (offset + i32::from(x)) * (1 << ADD_LEFT_SHIFT);
            rounding_divide_by_pot(srdhm(shifted, m.multiplier), (-m.shift) as u32)
        };
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            let sum = scale(x, self.input1_offset, self.input1) + scale(y, self.input2_offset, self.input2);
            let raw = rounding_divide_by_pot(srdhm(sum, self.output.multiplier), (-self.output.shift) as u32)
                + self.output_offset;
            *o = raw.clamp(i32::from(self.act_min), i32::from(self.act_max)) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// v2 block_2's ADD (params_mobilenet_v2_1.0_224.json).
    fn block_2() -> AddQuant {
        AddQuant {
            input1: Quant {
                scale: 0.401_492_95,
                zero_point: 136,
            },
            input2: Quant {
                scale: 0.275_834_35,
                zero_point: 119,
            },
            output: Quant {
                scale: 0.432_168_96,
                zero_point: 133,
            },
        }
    }

    #[test]
    fn prepare_gives_tflites_constants() {
        let p = AddParams::new(block_2(), 0, 255).unwrap();
        assert_eq!((p.input1.multiplier, p.input1.shift), (1073741824, 0));
        assert_eq!((p.input2.multiplier, p.input2.shift), (1475367762, -1));
        assert_eq!((p.output.multiplier, p.output.shift), (1995052007, -19));
        assert_eq!(
            (p.input1_offset, p.input2_offset, p.output_offset),
            (-136, -119, 133)
        );
    }

    #[test]
    fn sums_follow_the_real_values() {
        let quant = block_2();
        let p = AddParams::new(quant, 0, 255).unwrap();
        let a: Vec<u8> = (0..=255).collect();
        let b: Vec<u8> = (0..=255).rev().collect();
        let mut out = vec![0; 256];
        p.run(&a, &b, &mut out);
        let real = |q: u8, quant: Quant| quant.scale * (f32::from(q) - quant.zero_point as f32);
        for i in 0..256 {
            let sum = real(a[i], quant.input1) + real(b[i], quant.input2);
            let expected = (sum / quant.output.scale + quant.output.zero_point as f32).clamp(0.0, 255.0);
            assert!(
                (f32::from(out[i]) - expected).abs() <= 1.0,
                "{i}: {} vs {expected}",
                out[i]
            );
        }
        // Equal zero points give the output zero point.
        let mut out = [0u8];
        p.run(&[136], &[119], &mut out);
        assert_eq!(out[0], 133);
    }

    #[test]
    fn a_multiplier_above_one_is_refused() {
        let mut quant = block_2();
        quant.output.scale = 1e-9;
        assert_eq!(AddParams::new(quant, 0, 255), None);
    }
}

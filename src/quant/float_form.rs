//! A single-precision form of one layer's requantization, proved equal to TFLite's at load.
//!
//! TFLite's output stage, `clamp(MultiplyByQuantizedMultiplier(acc) + zero_point, min, max)`
//! ([`super::fixed_point`], "double rounding"), is a non-decreasing step function of the int32
//! accumulator when the multiplier is positive and shifts right: SRDHM and RDBPOT each round a
//! non-decreasing function. (A left shift is excluded: TFLite shifts in int32 and wraps.) So is
//! `floor(fma(f32(acc), m, c))` for `m > 0`, because IEEE 754 rounding is monotone: the
//! conversion, the fused multiply-add (one rounding) and the floor each keep the order.
//!
//! Two non-decreasing integer functions are equal after the clamp exactly when, for every level
//! `n` in `(min, max]`, they first reach `n` at the same accumulator. TFLite's `first(n)` is a
//! binary search over the int32 range; the float form reaches `n` there and not one sooner when
//! `f(first(n)) >= n > f(first(n) - 1)`. So 2 x 255 evaluations prove the float form equal to
//! TFLite's bytes for all 2^32 accumulators, given one more condition checked at both ends of
//! the range: the float result stays inside the int32 range, where `vcvtps2dq` rounding down
//! (AVX2: `vroundps` down, then `vcvttps2dq`) is the floor; outside it returns `i32::MIN`, which
//! would clamp a large result to the minimum.
//!
//! The proof runs on the non-negative and the negative accumulators apart, each with its own
//! offset: RDBPOT rounds ties away from zero, so below zero its ties go down and the real offset
//! is `2^-r` less. One offset serves both on ReLU and ReLU6 layers (no level is reached below
//! zero); v2's linear projections need the two.
//!
//! `m` is tried among the floats nearest the real multiplier and `c` at the middle of the
//! interval the levels allow; the first pair proved is kept, and a layer without one keeps the
//! fixed-point form. Every convolution of the shipped v1 and v2 models has one but most final
//! 1x1 layers, which have no activation clamp, so all 255 levels must line up (the test
//! `the_float_output_stage_is_proved_for_the_shipped_convolutions`, `tests/cli/int8.rs`).
//!
//! Why: in 512-bit vectors this is three instructions per 16 accumulators (`vcvtdq2ps`,
//! `vfmadd`, `vcvtps2dq` rounding down) against eight for the 64-bit fixed-point form (two
//! `vpmuldq`, two adds, two shifts, a shift and a merge for the odd lanes), and the output stage
//! was a fifth of the instructions of v1 1.0_224.

use super::fixed_point::QuantizedMultiplier;

/// `floor(fma(f32(acc), multiplier, offset))` (with `negative_offset` for a negative `acc`),
/// equal to a layer's TFLite output stage after the activation clamp (the module docs give the
/// proof [`FloatForm::find`] runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FloatForm {
    pub multiplier: f32,
    /// The zero point and the rounding, in one constant.
    pub offset: f32,
    /// The offset for negative accumulators: RDBPOT rounds ties away from zero, so below zero
    /// its ties go down (`2^-r` less); equal to `offset` where that changes no byte.
    pub negative_offset: f32,
}

/// Floats tried on each side of the real multiplier.
const MULTIPLIER_STEPS: u32 = 16;

/// The int32 range as f32 bounds: results in `[-2^31, 2^31)` convert to their floor.
const INT32_END: f32 = 2_147_483_648.0;

/// The accumulators each offset serves.
const NEGATIVE: (i32, i32) = (i32::MIN, -1);
const NON_NEGATIVE: (i32, i32) = (0, i32::MAX);

/// Each level inside the clamp with the first accumulator that reaches it in TFLite, if any.
type Levels = [(i64, Option<i32>)];

impl FloatForm {
    /// A float form proved equal to `clamp(multiplier.apply(acc) + zero_point, min, max)` for
    /// every int32 accumulator, or `None` (a left shift, a non-positive multiplier, or no pair
    /// found).
    pub(crate) fn find(multiplier: QuantizedMultiplier, zero_point: i32, min: u8, max: u8) -> Option<Self> {
        if multiplier.multiplier <= 0 || multiplier.shift > 0 || min > max {
            return None;
        }
        // TFLite adds the zero point in int32; in i64 nothing wraps (the sum stays far inside).
        let level = |acc: i32| i64::from(multiplier.apply(acc)) + i64::from(zero_point);
        let levels: Vec<(i64, Option<i32>)> = (i64::from(min) + 1..=i64::from(max))
            .map(|n| (n, first_reaching(&level, n)))
            .collect();
        let real = multiplier.real() as f32;
        (0..=2 * MULTIPLIER_STEPS).find_map(|step| {
            // 0, +1, -1, +2, -2, ... floats away from the nearest (positive floats order as
            // their bits).
            let distance = step.div_ceil(2);
            let bits = if step % 2 == 1 {
                real.to_bits().checked_add(distance)?
            } else {
                real.to_bits().checked_sub(distance)?
            };
            let m = f32::from_bits(bits);
            if !(m.is_finite() && m > 0.0) {
                return None;
            }
            let offset = offset_on(&levels, m, NON_NEGATIVE)?;
            let negative_offset = if proves(&levels, m, offset, NEGATIVE) {
                offset
            } else {
                offset_on(&levels, m, NEGATIVE)?
            };
            Some(FloatForm {
                multiplier: m,
                offset,
                negative_offset,
            })
        })
    }

    /// The float result before the floor, as the vectors compute it (one rounding each).
    #[cfg(test)]
    pub(crate) fn value(self, acc: i32) -> f32 {
        let offset = if acc < 0 {
            self.negative_offset
        } else {
            self.offset
        };
        value(acc, self.multiplier, offset)
    }
}

/// `fma(f32(acc), m, c)`, each rounded to nearest.
fn value(acc: i32, m: f32, c: f32) -> f32 {
    (acc as f32).mul_add(m, c)
}

/// The floor of [`value`], `None` outside the int32 range.
fn floor(acc: i32, m: f32, c: f32) -> Option<i64> {
    let y = value(acc, m, c);
    (-INT32_END..INT32_END).contains(&y).then(|| y.floor() as i64)
}

/// The proof of the module docs on the accumulators `low..=high`: no overflow at either end, and
/// every level first reached where TFLite first reaches it.
fn proves(levels: &Levels, m: f32, c: f32, (low, high): (i32, i32)) -> bool {
    let (Some(bottom), Some(top)) = (floor(low, m, c), floor(high, m, c)) else {
        return false;
    };
    levels.iter().all(|&(n, first)| match first {
        Some(acc) if acc > high => top < n,
        None => top < n,
        Some(acc) if acc <= low => bottom >= n,
        Some(acc) => floor(acc, m, c).is_some_and(|f| f >= n) && floor(acc - 1, m, c).is_some_and(|f| f < n),
    })
}

/// An offset `c` proved on the accumulators `low..=high` for the multiplier `m`: the middle of
/// the interval in which `acc * m + c` (in reals) crosses every level where TFLite does, rounded
/// to a float; `None` when the interval is empty or its float fails the proof.
fn offset_on(levels: &Levels, m: f32, (low, high): (i32, i32)) -> Option<f32> {
    let at = |acc: i32| f64::from(acc) * f64::from(m);
    let (mut from, mut to) = (f64::NEG_INFINITY, f64::INFINITY);
    for &(n, first) in levels {
        let n = n as f64;
        match first {
            Some(acc) if acc > high => to = to.min(n - at(high)),
            None => to = to.min(n - at(high)),
            Some(acc) if acc <= low => from = from.max(n - at(low)),
            Some(acc) => {
                from = from.max(n - at(acc));
                to = to.min(n - at(acc - 1));
            }
        }
    }
    let c = match (from.is_finite(), to.is_finite()) {
        (true, true) => (from + to) / 2.0,
        (true, false) => from + 0.5,
        (false, true) => to - 0.5,
        (false, false) => 0.0,
    } as f32;
    (from < to && proves(levels, m, c, (low, high))).then_some(c)
}

/// The smallest int32 accumulator whose level is at least `n`, for a non-decreasing `level`.
fn first_reaching(level: &impl Fn(i32) -> i64, n: i64) -> Option<i32> {
    if level(i32::MAX) < n {
        return None;
    }
    let (mut low, mut high) = (i64::from(i32::MIN), i64::from(i32::MAX));
    // Invariant: level(high) >= n; every accumulator below `low` is below n.
    while low < high {
        let mid = low + (high - low) / 2;
        if level(mid as i32) >= n {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    Some(high as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::SplitMix64;
    use crate::quant::kernels::Requantize;

    fn tflite(r: &Requantize, acc: i32) -> u8 {
        r.apply(acc)
    }

    fn float(form: FloatForm, r: &Requantize, acc: i32) -> u8 {
        let f = form.value(acc).floor() as i64;
        f.clamp(i64::from(r.min), i64::from(r.max)) as u8
    }

    #[test]
    fn a_found_form_gives_tflites_bytes_on_every_accumulator_tried() {
        let mut rng = SplitMix64(7);
        let (mut found, mut cases) = (0, 0);
        for _ in 0..300 {
            let real = 2f64.powf(-((rng.next_u64() % 10) as f64) - 1.0)
                * (1.0 + (rng.next_u64() % 1000) as f64 / 1000.0);
            let multiplier = QuantizedMultiplier::from_real(real.min(0.99));
            let zero_point = (rng.next_u64() % 256) as i32;
            let (a, b) = ((rng.next_u64() % 256) as u8, (rng.next_u64() % 256) as u8);
            let (min, max) = if rng.next_u64().is_multiple_of(2) {
                (a.min(b), a.max(b))
            } else {
                (0, 255)
            };
            let r = Requantize {
                multiplier,
                zero_point,
                min,
                max,
                float: None,
            };
            cases += 1;
            let Some(form) = FloatForm::find(multiplier, zero_point, min, max) else {
                continue;
            };
            found += 1;
            // Around every level (where the two could differ), then anywhere.
            for n in i64::from(min)..=i64::from(max) + 1 {
                let centre = ((n - i64::from(zero_point)) as f64 / real.min(0.99)) as i64;
                for acc in centre - 40..centre + 40 {
                    let acc = acc.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                    assert_eq!(float(form, &r, acc), tflite(&r, acc), "{acc} {r:?} {form:?}");
                }
            }
            for _ in 0..2000 {
                let acc = rng.next_u64() as i32;
                assert_eq!(float(form, &r, acc), tflite(&r, acc), "{acc} {r:?} {form:?}");
            }
            for acc in [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX] {
                assert_eq!(float(form, &r, acc), tflite(&r, acc), "{acc} {r:?} {form:?}");
            }
        }
        // Most draws have a form: the test would prove little otherwise.
        assert!(found * 2 > cases, "{found} of {cases}");
    }

    #[test]
    fn a_left_shift_or_a_non_positive_multiplier_has_none() {
        let left = QuantizedMultiplier::from_real(3.0);
        assert!(left.shift > 0);
        assert_eq!(FloatForm::find(left, 0, 0, 255), None);
        let zero = QuantizedMultiplier {
            multiplier: 0,
            shift: 0,
        };
        assert_eq!(FloatForm::find(zero, 0, 0, 255), None);
    }

    #[test]
    fn a_wrong_offset_is_refused_by_the_proof() {
        let multiplier = QuantizedMultiplier::from_real(0.0072474);
        let form = FloatForm::find(multiplier, 0, 0, 255).expect("a ReLU6-like layer has a form");
        let levels: Vec<(i64, Option<i32>)> = (1..=255)
            .map(|n| (n, first_reaching(&|acc| i64::from(multiplier.apply(acc)), n)))
            .collect();
        let (m, c) = (form.multiplier, form.offset);
        assert!(proves(&levels, m, c, NON_NEGATIVE) && proves(&levels, m, c, NEGATIVE));
        assert!(!proves(&levels, m, c + 0.5, NON_NEGATIVE));
        assert!(
            !proves(&levels, 2.0, c, NON_NEGATIVE),
            "overflows the int32 range"
        );
    }
}

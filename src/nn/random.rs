//! Seeded, platform-independent random initialisation, so every (alpha, resolution, variant,
//! depth multiplier) can run and be timed without trained weights.
//!
//! Weights are He-normal (std = sqrt(2 / fan_in)), which keeps ReLU6 activations in range through
//! the whole depth; the FC layer uses sqrt(1 / fan_in). Biases are small normals in the folded
//! (deployed) form, so the parameter count equals the cost model's `params_deployed`. The
//! generator is SplitMix64 with Box-Muller, written out so a seed means the same network on every
//! platform and candle version.

use super::layers::{RawAffine, RawDense, RawLayer, squeeze_excite_shapes, weight_shape};
use super::weights::Values;
use crate::arch::{Layer, LayerKind};

/// SplitMix64 (Steele, Lea and Flood 2014): tiny, fast and good enough for initialisation.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so the logarithm below is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn normals(&mut self, n: usize, std: f64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let (u1, u2) = (self.uniform(), self.uniform());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (z * std) as f32
            })
            .collect()
    }
}

/// Random values for every layer of `layers` (None for the pool), deterministic in `seed`.
pub(crate) fn random_layers(layers: &[Layer], seed: u64) -> Vec<Option<RawLayer>> {
    let mut rng = SplitMix64(seed);
    layers
        .iter()
        .map(|layer| {
            if let Some((reduce, expand)) = squeeze_excite_shapes(layer) {
                // Squeeze-and-excite: two He-normal 1x1 convs with small biases.
                let reduce = conv(&mut rng, &reduce, 2.0);
                let expand = conv(&mut rng, &expand, 2.0);
                return Some(RawLayer::SqueezeExcite { reduce, expand });
            }
            let shape = weight_shape(layer)?;
            let gain = if layer.kind == LayerKind::Fc { 1.0 } else { 2.0 };
            Some(RawLayer::Dense(conv(&mut rng, &shape, gain)))
        })
        .collect()
}

/// He-normal weights of `shape` (std sqrt(gain / fan_in)) and a small normal bias per output.
fn conv(rng: &mut SplitMix64, shape: &[usize], gain: f64) -> RawDense {
    let count: usize = shape.iter().product();
    let fan_in = (count / shape[0]).max(1) as f64;
    let weight = rng.normals(count, (gain / fan_in).sqrt());
    let bias = rng.normals(shape[0], 0.01);
    RawDense {
        weight: Values::F32(weight),
        affine: RawAffine::Bias(bias),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normals_have_the_requested_spread_and_repeat() {
        let a = SplitMix64(7).normals(20_000, 2.0);
        let b = SplitMix64(7).normals(20_000, 2.0);
        assert_eq!(a, b);
        let mean = a.iter().map(|&v| f64::from(v)).sum::<f64>() / a.len() as f64;
        let var = a.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / a.len() as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "{}", var.sqrt());
        assert_ne!(a, SplitMix64(8).normals(20_000, 2.0));
    }
}

//! Where the time goes: each layer's median time beside its share of the mult-adds, the
//! GFLOP/s it achieves and, given a peak, its share of that peak (the figures
//! `bench --per-layer` reports).

use super::result::LayerTiming;
use super::{Peak, Summary, gflops};
use crate::arch::Layer;
use crate::cost::layer_cost;

/// The per-layer figures from `samples[i]`, layer `i`'s timed runs in milliseconds, for
/// batches of `batch` images, with each layer's share of `peak` when given. A layer without
/// samples gets a zero time.
pub fn per_layer(
    layers: &[Layer],
    samples: &[Vec<f64>],
    batch: usize,
    peak: Option<&Peak>,
) -> Vec<LayerTiming> {
    let costs: Vec<u64> = layers.iter().map(|l| layer_cost(l).mult_adds).collect();
    let total_macs: u64 = costs.iter().sum();
    let medians: Vec<f64> = (0..layers.len())
        .map(|i| {
            samples
                .get(i)
                .and_then(|s| Summary::of(s))
                .map_or(0.0, |s| s.median)
        })
        .collect();
    let total_ms: f64 = medians.iter().sum();
    let share = |part: f64, whole: f64| if whole > 0.0 { 100.0 * part / whole } else { 0.0 };
    layers
        .iter()
        .enumerate()
        .map(|(i, layer)| LayerTiming {
            index: i,
            name: layer.name.clone(),
            kind: layer.kind,
            mult_adds: costs[i],
            time_ms: medians[i],
            time_pct: share(medians[i], total_ms),
            mult_adds_pct: share(costs[i] as f64, total_macs as f64),
            gflops: if medians[i] > 0.0 {
                gflops(costs[i], batch, medians[i])
            } else {
                0.0
            },
            // A layer without multiply-accumulates (the pool) has no share of a MAC peak.
            peak_pct: peak
                .filter(|_| medians[i] > 0.0 && costs[i] > 0)
                .map(|p| p.share(costs[i], batch, medians[i])),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Config, instantiate};

    #[test]
    fn shares_add_up() {
        let layers = instantiate(&Config::paper(0.25, 128).unwrap());
        let samples: Vec<Vec<f64>> = (0..layers.len())
            .map(|i| vec![1.0 + i as f64, 2.0, 3.0])
            .collect();
        let rows = per_layer(&layers, &samples, 2, None);
        assert!(rows.iter().all(|r| r.peak_pct.is_none()));
        assert_eq!(rows.len(), layers.len());
        let time: f64 = rows.iter().map(|r| r.time_pct).sum();
        let macs: f64 = rows.iter().map(|r| r.mult_adds_pct).sum();
        assert!((time - 100.0).abs() < 1e-9 && (macs - 100.0).abs() < 1e-9);
        assert_eq!(rows[0].time_ms, 2.0, "the median of 1, 2, 3");
        let pool = rows.iter().find(|r| r.mult_adds == 0).unwrap();
        assert_eq!(pool.mult_adds_pct, 0.0);
        assert!(
            per_layer(&layers, &[], 1, Some(&Peak::mock()))
                .iter()
                .all(|r| r.time_ms == 0.0 && r.gflops == 0.0 && r.peak_pct.is_none())
        );
        // conv_0: 2 x its mult-adds in its median of 2 ms, against a 100 GMAC/s peak.
        let shares = per_layer(&layers, &samples, 2, Some(&Peak::mock()));
        let expected = 2.0 * shares[0].mult_adds as f64 / 2e-3 / 1e9;
        assert!((shares[0].peak_pct.unwrap() - expected).abs() < 1e-9);
        // The pool does no multiply-accumulates: no share, rather than 0%.
        let pool = shares.iter().find(|r| r.mult_adds == 0).unwrap();
        assert_eq!(pool.peak_pct, None);
    }
}

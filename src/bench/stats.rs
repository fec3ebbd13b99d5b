//! Summary statistics of repeated timings.
//!
//! Outliers use the modified z-score of Iglewicz and Hoaglin (1993), as hyperfine does:
//! `M_i = 0.6745 (x_i - median) / MAD`, where MAD is the median absolute deviation; a sample
//! with |M_i| > 3.5 is an outlier. Percentiles interpolate linearly between order statistics.

use serde::Serialize;

/// The modified z-score above which a sample counts as an outlier.
pub const OUTLIER_Z: f64 = 3.5;

/// Statistics of a set of durations in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub median: f64,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for a single sample.
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
    pub p90: f64,
    /// Samples whose modified z-score exceeds 3.5.
    pub outliers: usize,
    pub samples: usize,
}

/// The `q`-quantile (0..=1) of sorted samples, interpolating linearly.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Summary {
    /// Summarises `samples` (milliseconds). None when there are no samples.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let stddev = if sorted.len() > 1 {
            (sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let median = quantile(&sorted, 0.5);
        let mut deviations: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        let mad = quantile(&deviations, 0.5);
        let outliers = if mad > 0.0 {
            sorted
                .iter()
                .filter(|x| (0.6745 * (*x - median) / mad).abs() > OUTLIER_Z)
                .count()
        } else {
            0
        };
        Some(Summary {
            median,
            mean,
            stddev,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            p90: quantile(&sorted, 0.9),
            outliers,
            samples: sorted.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_statistics() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 4.0, 5.0]).unwrap();
        assert_eq!((s.median, s.mean, s.min, s.max), (3.0, 3.0, 1.0, 5.0));
        assert!((s.stddev - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((s.p90 - 4.6).abs() < 1e-12);
        assert_eq!(s.outliers, 0);
        assert_eq!(s.samples, 5);
    }

    #[test]
    fn outliers_by_modified_z_score() {
        let s = Summary::of(&[10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 30.0]).unwrap();
        assert_eq!(s.outliers, 1);
        assert_eq!(s.median, 10.0);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(Summary::of(&[]).is_none());
        let one = Summary::of(&[2.0]).unwrap();
        assert_eq!(
            (one.median, one.stddev, one.p90, one.outliers),
            (2.0, 0.0, 2.0, 0)
        );
        assert_eq!(Summary::of(&[1.0, 1.0, 1.0]).unwrap().outliers, 0);
    }
}

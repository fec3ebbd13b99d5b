//! When a timing should not be trusted, and why: the checks behind the warnings `bench` and
//! `sweep` print beside their figures (as hyperfine warns about statistical outliers).
//!
//! Two signs of a noisy machine: many outliers (modified z-score above 3.5, see `stats`), and
//! a long upper tail, the 90th percentile far above the median. Both thresholds are
//! conventions, documented here and in the README, not statistics.

use serde::Serialize;

use super::Summary;

/// Outliers above this share of the timed runs make a timing unreliable.
pub const MAX_OUTLIER_SHARE: f64 = 0.1;
/// A 90th percentile above this multiple of the median makes a timing unreliable.
pub const MAX_P90_RATIO: f64 = 1.25;
/// Fewer timed runs than this give no reliable median or percentile.
pub const MIN_RELIABLE_RUNS: usize = 5;

/// Why a timing may be unreliable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimingWarning {
    /// Many runs far from the median: other load on the machine, frequency changes.
    Outliers { outliers: usize, runs: usize },
    /// The slow tail is long: p90 / median.
    WideSpread { p90_over_median: f64 },
    /// Too few runs for a median and a p90 to mean much.
    FewRuns { runs: usize },
}

/// The warnings a summary deserves, in a fixed order.
pub fn warnings(summary: &Summary) -> Vec<TimingWarning> {
    let mut out = Vec::new();
    if summary.samples < MIN_RELIABLE_RUNS {
        out.push(TimingWarning::FewRuns {
            runs: summary.samples,
        });
    }
    if summary.outliers as f64 > MAX_OUTLIER_SHARE * summary.samples as f64 {
        out.push(TimingWarning::Outliers {
            outliers: summary.outliers,
            runs: summary.samples,
        });
    }
    if summary.median > 0.0 && summary.p90 / summary.median > MAX_P90_RATIO {
        out.push(TimingWarning::WideSpread {
            p90_over_median: summary.p90 / summary.median,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_timings_have_no_warning_and_noisy_ones_do() {
        let steady: Vec<f64> = (0..20).map(|i| 10.0 + (i % 3) as f64 * 0.1).collect();
        assert!(warnings(&Summary::of(&steady).unwrap()).is_empty());
        let mut noisy = steady.clone();
        noisy.extend([30.0, 31.0, 32.0, 40.0, 50.0, 60.0]);
        let w = warnings(&Summary::of(&noisy).unwrap());
        assert!(
            matches!(
                w[0],
                TimingWarning::Outliers {
                    outliers: 6,
                    runs: 26
                }
            ),
            "{w:?}"
        );
        assert!(matches!(w[1], TimingWarning::WideSpread { .. }), "{w:?}");
        assert_eq!(
            warnings(&Summary::of(&[1.0, 1.0]).unwrap()),
            [TimingWarning::FewRuns { runs: 2 }]
        );
    }
}

//! Measuring inference: warm-up, repeated timed runs (a fixed count or a minimum time), summary
//! statistics, throughput and achieved GFLOP/s, the per-layer breakdown, warnings when a timing
//! is unreliable, and the environment it was measured in.

mod environment;
mod layers;
mod peak;
mod result;
mod stats;
mod timer;
mod warnings;

pub use environment::{Environment, simd_features};
pub use layers::per_layer;
pub use peak::{Peak, PeakSource};
pub use result::{BenchModel, BenchResult, LayerTiming, WeightsOrigin};
pub use stats::{OUTLIER_Z, Summary, quantile};
pub use timer::{MockTimer, Timer, WallClock};
pub use warnings::{MAX_OUTLIER_SHARE, MAX_P90_RATIO, MIN_RELIABLE_RUNS, TimingWarning, warnings};

use std::time::Duration;

use anyhow::Result;

/// How many runs to time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingPlan {
    pub warmup: usize,
    /// Exactly this many timed runs, unless `min_time` is set.
    pub runs: usize,
    /// Keep running until this much time has been measured (at least `MIN_RUNS` runs).
    pub min_time: Option<Duration>,
}

/// Fewest timed runs a `--min-time` plan makes.
pub const MIN_RUNS: usize = 3;
/// Most timed runs a `--min-time` plan makes, so a tiny model cannot run forever.
pub const MAX_RUNS: usize = 100_000;

/// Runs `work` per `plan`, returning each timed run in milliseconds. An error from `work` (an
/// interruption among them) ends the measurement.
pub fn measure(
    plan: &TimingPlan,
    timer: &mut dyn Timer,
    work: &mut dyn FnMut() -> Result<()>,
) -> Result<Vec<f64>> {
    for _ in 0..plan.warmup {
        timer.time(work)?;
    }
    let mut samples = Vec::new();
    let mut total = Duration::ZERO;
    loop {
        let elapsed = timer.time(work)?;
        total += elapsed;
        samples.push(elapsed.as_secs_f64() * 1e3);
        let done = match plan.min_time {
            Some(min) => (total >= min && samples.len() >= MIN_RUNS) || samples.len() >= MAX_RUNS,
            None => samples.len() >= plan.runs.max(1),
        };
        if done {
            return Ok(samples);
        }
    }
}

/// Images per second at a median batch latency.
pub fn throughput(batch: usize, median_ms: f64) -> f64 {
    batch as f64 * 1e3 / median_ms
}

/// Achieved GFLOP/s: 2 x mult-adds per image x batch over the median latency.
pub fn gflops(mult_adds: u64, batch: usize, median_ms: f64) -> f64 {
    2.0 * mult_adds as f64 * batch as f64 / (median_ms * 1e-3) / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_runs_and_warmup() {
        let mut calls = 0;
        let mut timer = WallClock;
        let plan = TimingPlan {
            warmup: 2,
            runs: 5,
            min_time: None,
        };
        let samples = measure(&plan, &mut timer, &mut || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((samples.len(), calls), (5, 7));
    }

    #[test]
    fn min_time_with_the_mock() {
        let mut timer = MockTimer::new(10_000_000, 1); // 1 ms per run
        let plan = TimingPlan {
            warmup: 0,
            runs: 1,
            min_time: Some(Duration::from_millis(10)),
        };
        let samples = measure(&plan, &mut timer, &mut || Ok(())).unwrap();
        assert!(samples.len() >= 9 && samples.len() <= 10, "{}", samples.len());
    }

    #[test]
    fn rates() {
        assert_eq!(throughput(4, 10.0), 400.0);
        assert!((gflops(568_740_352, 1, 10.0) - 113.748_070_4).abs() < 1e-6);
    }
}

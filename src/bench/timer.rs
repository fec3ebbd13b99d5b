//! How a benchmark measures one run: a wall clock, or a deterministic mock for tests.
//!
//! The mock (hidden `--mock-timer` flag) never runs the network: it returns a latency derived
//! from the work's mult-adds and the run index, so `bench` and `sweep` outputs are stable enough
//! for snapshot tests of every format, and no test depends on a real duration.

use std::time::{Duration, Instant};

/// Measures one execution of `work`.
pub trait Timer {
    /// Times `work`, which the implementation may or may not call.
    fn time(&mut self, work: &mut dyn FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration>;
}

/// Real time with `Instant`.
#[derive(Debug, Default)]
pub struct WallClock;

impl Timer for WallClock {
    fn time(&mut self, work: &mut dyn FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
        let start = Instant::now();
        work()?;
        Ok(start.elapsed())
    }
}

/// Deterministic synthetic durations: `mult_adds / rate` with a small repeating jitter.
#[derive(Debug, Clone)]
pub struct MockTimer {
    nanos_base: f64,
    run: u64,
}

impl MockTimer {
    /// A mock for work of `mult_adds` per run (one image) times `batch`, at a nominal
    /// 10 mult-adds per nanosecond.
    pub fn new(mult_adds: u64, batch: usize) -> Self {
        MockTimer {
            nanos_base: mult_adds as f64 * batch as f64 / 10.0,
            run: 0,
        }
    }
}

impl Timer for MockTimer {
    fn time(&mut self, _work: &mut dyn FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
        // Jitter pattern 0%, +1%, +2%, ... +9% repeating: deterministic, with a spread.
        let jitter = 1.0 + (self.run % 10) as f64 / 100.0;
        self.run += 1;
        Ok(Duration::from_nanos((self.nanos_base * jitter).round() as u64))
    }
}

impl MockTimer {
    /// Synthetic per-layer times in milliseconds, one sample per layer: each layer's
    /// mult-adds at the nominal rate plus 2 us, depthwise layers ten times slower per
    /// mult-add, as on real CPUs (their arithmetic intensity is low).
    pub fn per_layer(layers: &[crate::arch::Layer], batch: usize) -> Vec<Vec<f64>> {
        layers
            .iter()
            .map(|layer| {
                let weight = if layer.kind == crate::arch::LayerKind::Depthwise {
                    10.0
                } else {
                    1.0
                };
                let macs = crate::cost::layer_cost(layer).mult_adds as f64;
                vec![(macs * batch as f64 * weight / 10.0 + 2_000.0) / 1e6]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_is_deterministic_and_does_not_run_the_work() {
        let mut a = MockTimer::new(1_000_000, 1);
        let mut ran = false;
        let d = a.time(&mut || {
            ran = true;
            Ok(())
        });
        assert_eq!(d.unwrap(), Duration::from_micros(100));
        assert!(!ran);
        assert_eq!(a.time(&mut || Ok(())).unwrap(), Duration::from_nanos(101_000));
    }

    #[test]
    fn wall_clock_runs_the_work() {
        let mut ran = false;
        WallClock
            .time(&mut || {
                ran = true;
                Ok(())
            })
            .unwrap();
        assert!(ran);
    }
}

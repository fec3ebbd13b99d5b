//! The Pareto front of latency (or mult-adds) against top-1 accuracy, and budgets.

use serde::Serialize;

use super::SweepRow;

/// The cost a row is judged by: median latency when every row was timed, else mult-adds.
fn costs(rows: &[SweepRow]) -> Vec<f64> {
    let timed = rows.iter().all(|r| r.latency_ms.is_some());
    rows.iter()
        .map(|r| match (&r.latency_ms, timed) {
            (Some(l), true) => l.median,
            _ => r.mult_adds as f64,
        })
        .collect()
}

/// Marks the rows no other row dominates: at least as fast and at least as accurate, and
/// strictly better in one. Rows without a top-1 figure are never on the front.
pub fn mark_pareto(rows: &mut [SweepRow]) {
    let cost = costs(rows);
    let acc: Vec<Option<f64>> = rows.iter().map(|r| r.top1.as_ref().map(|a| a.value)).collect();
    for i in 0..rows.len() {
        rows[i].pareto = acc[i].is_some_and(|ai| {
            !(0..rows.len()).any(|j| {
                j != i
                    && acc[j]
                        .is_some_and(|aj| cost[j] <= cost[i] && aj >= ai && (cost[j] < cost[i] || aj > ai))
            })
        });
    }
}

/// Limits a user sets on latency, weight size and accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Budget {
    pub max_latency_ms: Option<f64>,
    /// Megabytes (10^6 bytes) of f32 weights (params_deployed x 4).
    pub max_size_mb: Option<f64>,
    pub min_top1: Option<f64>,
}

impl Budget {
    pub fn is_set(&self) -> bool {
        self.max_latency_ms.is_some() || self.max_size_mb.is_some() || self.min_top1.is_some()
    }

    fn fits(&self, row: &SweepRow) -> bool {
        let latency_ok = self
            .max_latency_ms
            .is_none_or(|max| row.latency_ms.as_ref().is_some_and(|l| l.median <= max));
        let size_ok = self
            .max_size_mb
            .is_none_or(|max| row.weight_bytes_f32 as f64 / 1e6 <= max);
        let top1_ok = self
            .min_top1
            .is_none_or(|min| row.top1.as_ref().is_some_and(|a| a.value >= min));
        latency_ok && size_ok && top1_ok
    }
}

/// Marks the rows within `budget` and the best of them (highest top-1, ties broken by lower
/// cost). Returns the index of the best row.
pub fn apply_budget(rows: &mut [SweepRow], budget: &Budget) -> Option<usize> {
    if !budget.is_set() {
        return None;
    }
    let cost = costs(rows);
    for row in rows.iter_mut() {
        row.fits_budget = Some(budget.fits(row));
    }
    let best = (0..rows.len())
        .filter(|&i| rows[i].fits_budget == Some(true))
        .max_by(|&a, &b| {
            let acc = |i: usize| rows[i].top1.as_ref().map_or(f64::NEG_INFINITY, |t| t.value);
            acc(a).total_cmp(&acc(b)).then(cost[b].total_cmp(&cost[a]))
        });
    if let Some(i) = best {
        rows[i].best = true;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Summary;
    use crate::sweep::Accuracy;

    fn row(label: &str, ms: f64, top1: f64, size: u64) -> SweepRow {
        SweepRow {
            family: crate::arch::Family::V1,
            minimalistic: false,
            alpha: 1.0,
            resolution: 224,
            label: label.into(),
            mult_adds: (ms * 1e6) as u64,
            params: 0,
            params_deployed: 0,
            weight_bytes_f32: size,
            weight_bytes_int8: 0,
            activation_peak_bytes: 0,
            latency_ms: Summary::of(&[ms]),
            throughput: None,
            top1: Some(Accuracy {
                value: top1,
                source: "test".into(),
                estimated: false,
                extrapolated: false,
            }),
            top5: None,
            pareto: false,
            fits_budget: None,
            best: false,
        }
    }

    #[test]
    fn dominated_rows_are_off_the_front() {
        let mut rows = vec![
            row("fast", 1.0, 50.0, 1),
            row("slow-bad", 3.0, 55.0, 1),
            row("mid", 2.0, 60.0, 1),
            row("slow-good", 4.0, 70.0, 1),
            row("tie", 2.0, 60.0, 1),
        ];
        mark_pareto(&mut rows);
        let front: Vec<&str> = rows
            .iter()
            .filter(|r| r.pareto)
            .map(|r| r.label.as_str())
            .collect();
        assert_eq!(front, ["fast", "mid", "slow-good", "tie"]);
    }

    #[test]
    fn budget_picks_the_most_accurate_fitting_row() {
        let mut rows = vec![
            row("a", 1.0, 50.0, 1_000_000),
            row("b", 2.0, 60.0, 5_000_000),
            row("c", 4.0, 70.0, 1),
        ];
        let budget = Budget {
            max_latency_ms: Some(3.0),
            ..Budget::default()
        };
        assert_eq!(apply_budget(&mut rows, &budget), Some(1));
        assert_eq!(
            rows.iter().map(|r| r.fits_budget).collect::<Vec<_>>(),
            [Some(true), Some(true), Some(false)]
        );
        let size = Budget {
            max_size_mb: Some(2.0),
            min_top1: Some(55.0),
            ..Budget::default()
        };
        let mut rows2 = rows.clone();
        assert_eq!(apply_budget(&mut rows2, &size), Some(2));
        let impossible = Budget {
            min_top1: Some(99.0),
            ..Budget::default()
        };
        assert_eq!(apply_budget(&mut rows.clone(), &impossible), None);
        assert_eq!(apply_budget(&mut rows, &Budget::default()), None);
    }
}

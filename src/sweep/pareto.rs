//! The Pareto front of latency (or mult-adds) against top-1 accuracy, and budgets.
//!
//! Both rest only on top-1 figures that are published or estimated within the span of their
//! fit (`Accuracy::is_trusted`): an extrapolated estimate is reported, but it neither joins
//! nor pushes rows off the front, and it is never the best row within budget.

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

/// For each row, whether no other row dominates it: at least as cheap and at least as
/// accurate, and strictly better in one. Rows without a trusted top-1 are never on it.
fn front(cost: &[f64], top1: &[Option<f64>]) -> Vec<bool> {
    (0..cost.len())
        .map(|i| {
            top1[i].is_some_and(|ai| {
                !(0..cost.len()).any(|j| {
                    j != i
                        && top1[j].is_some_and(|aj| {
                            cost[j] <= cost[i] && aj >= ai && (cost[j] < cost[i] || aj > ai)
                        })
                })
            })
        })
        .collect()
}

/// Marks the rows on the front of the sweep's cost (`pareto`) and of mult-adds
/// (`pareto_mult_adds`) against top-1.
pub fn mark_pareto(rows: &mut [SweepRow]) {
    let top1: Vec<Option<f64>> = rows.iter().map(SweepRow::trusted_top1).collect();
    let mult_adds: Vec<f64> = rows.iter().map(|r| r.mult_adds as f64).collect();
    let on_cost = front(&costs(rows), &top1);
    let on_mult_adds = front(&mult_adds, &top1);
    for ((row, pareto), pareto_mult_adds) in rows.iter_mut().zip(on_cost).zip(on_mult_adds) {
        row.pareto = pareto;
        row.pareto_mult_adds = pareto_mult_adds;
    }
}

/// Limits a user sets on latency, weight size and accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Budget {
    pub max_latency_ms: Option<f64>,
    /// Megabytes (10^6 bytes) of weights at the row's precision (`SweepRow::weight_bytes`:
    /// params_deployed x 4 at f32, x 1 at int8).
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
            .is_none_or(|max| row.weight_bytes() as f64 / 1e6 <= max);
        let top1_ok = self
            .min_top1
            .is_none_or(|min| row.top1.as_ref().is_ok_and(|a| a.value >= min));
        latency_ok && size_ok && top1_ok
    }
}

/// Why a budget has no best row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoBest {
    /// No row meets the budget.
    NoRowFits,
    /// Rows meet the budget, but none has a published top-1 or one estimated within its
    /// fit's span: their top-1 is extrapolated or unavailable.
    NoTrustedTop1,
}

/// Marks the rows within `budget` and the best of them: the highest trusted top-1, ties broken
/// by lower cost. Returns the index of the best row, or why there is none; None when no
/// budget is set.
pub fn apply_budget(rows: &mut [SweepRow], budget: &Budget) -> Option<Result<usize, NoBest>> {
    if !budget.is_set() {
        return None;
    }
    let cost = costs(rows);
    for row in rows.iter_mut() {
        row.fits_budget = Some(budget.fits(row));
    }
    let fitting: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].fits_budget == Some(true))
        .collect();
    if fitting.is_empty() {
        return Some(Err(NoBest::NoRowFits));
    }
    let best = fitting
        .into_iter()
        .filter_map(|i| Some((i, rows[i].trusted_top1()?)))
        .max_by(|&(a, top1_a), &(b, top1_b)| top1_a.total_cmp(&top1_b).then(cost[b].total_cmp(&cost[a])))
        .map(|(i, _)| i);
    let Some(best) = best else {
        return Some(Err(NoBest::NoTrustedTop1));
    };
    rows[best].best = true;
    Some(Ok(best))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Summary;
    use crate::sweep::{Accuracy, Extrapolation, Member, Provenance, Unavailable};

    const V1: Member = Member::standard(crate::arch::Family::V1);

    fn row(ms: f64, top1: f64, size: u64) -> SweepRow {
        SweepRow {
            weights: None,
            family: crate::arch::Family::V1,
            minimalistic: false,
            alpha: 1.0,
            resolution: 224,
            precision: crate::infer::Precision::F32,
            classes: 1000,
            mult_adds: (ms * 1e6) as u64,
            params: 0,
            params_deployed: 0,
            weight_bytes_f32: size,
            weight_bytes_int8: 0,
            activation_peak_bytes: 0,
            latency_ms: Summary::of(&[ms]),
            throughput: None,
            top1: Ok(Accuracy {
                value: top1,
                provenance: Provenance::Estimated {
                    fit: V1,
                    extrapolation: None,
                },
            }),
            top5: Err(Unavailable::NoFit),
            pareto: false,
            pareto_mult_adds: false,
            fits_budget: None,
            best: false,
        }
    }

    fn extrapolated(mut row: SweepRow) -> SweepRow {
        let extrapolation = Some(Extrapolation {
            ln_alpha: 0.1,
            ln_resolution: 0.0,
        });
        if let Ok(a) = &mut row.top1 {
            a.provenance = Provenance::Estimated {
                fit: V1,
                extrapolation,
            };
        }
        row
    }

    fn on_front(rows: &[SweepRow]) -> Vec<usize> {
        (0..rows.len()).filter(|&i| rows[i].pareto).collect()
    }

    #[test]
    fn dominated_rows_are_off_the_front() {
        let mut rows = vec![
            row(1.0, 50.0, 1),
            row(3.0, 55.0, 1),
            row(2.0, 60.0, 1),
            row(4.0, 70.0, 1),
            row(2.0, 60.0, 1),
        ];
        mark_pareto(&mut rows);
        assert_eq!(on_front(&rows), [0, 2, 3, 4]);
        // The mock rows cost mult-adds in proportion to latency: the same front.
        assert!(rows.iter().all(|r| r.pareto == r.pareto_mult_adds));
    }

    #[test]
    fn the_mult_adds_front_is_kept_apart_from_the_latency_front() {
        // Row 1 is faster than row 0 but has more mult-adds.
        let mut rows = vec![row(2.0, 60.0, 1), row(1.0, 60.0, 1)];
        rows[1].mult_adds = 3_000_000;
        mark_pareto(&mut rows);
        assert_eq!(on_front(&rows), [1]);
        assert_eq!(
            [rows[0].pareto_mult_adds, rows[1].pareto_mult_adds],
            [true, false]
        );
    }

    #[test]
    fn extrapolated_rows_neither_join_nor_push_rows_off_the_front() {
        let mut rows = vec![
            row(1.0, 50.0, 1),
            extrapolated(row(0.5, 80.0, 1)),
            row(2.0, 60.0, 1),
        ];
        rows.push(row(3.0, 55.0, 1));
        rows[3].top1 = Err(Unavailable::NoFit);
        mark_pareto(&mut rows);
        assert_eq!(on_front(&rows), [0, 2]);
        assert!(!rows[1].pareto_mult_adds);
    }

    #[test]
    fn budget_picks_the_most_accurate_fitting_row() {
        let mut rows = vec![
            row(1.0, 50.0, 1_000_000),
            row(2.0, 60.0, 5_000_000),
            row(4.0, 70.0, 1),
        ];
        let budget = Budget {
            max_latency_ms: Some(3.0),
            ..Budget::default()
        };
        assert_eq!(apply_budget(&mut rows, &budget), Some(Ok(1)));
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
        assert_eq!(apply_budget(&mut rows2, &size), Some(Ok(2)));
        let impossible = Budget {
            min_top1: Some(99.0),
            ..Budget::default()
        };
        assert_eq!(
            apply_budget(&mut rows.clone(), &impossible),
            Some(Err(NoBest::NoRowFits))
        );
        assert_eq!(apply_budget(&mut rows, &Budget::default()), None);
    }

    #[test]
    fn the_best_row_is_never_an_extrapolation() {
        let budget = Budget {
            max_latency_ms: Some(3.0),
            ..Budget::default()
        };
        let mut rows = vec![
            row(1.0, 50.0, 1),
            extrapolated(row(2.0, 60.0, 1)),
            row(4.0, 70.0, 1),
        ];
        assert_eq!(apply_budget(&mut rows, &budget), Some(Ok(0)));
        assert_eq!(rows[1].fits_budget, Some(true));
        let mut only = vec![extrapolated(row(2.0, 60.0, 1)), row(4.0, 70.0, 1)];
        only.push(row(1.0, 0.0, 1));
        only[2].top1 = Err(Unavailable::NoFit);
        assert_eq!(apply_budget(&mut only, &budget), Some(Err(NoBest::NoTrustedTop1)));
        assert!(only.iter().all(|r| !r.best));
    }
}

//! Trade-off sweeps over members of the family and their (alpha, resolution) grids: the
//! analytic columns from the cost model, measured latency, published or estimated accuracy,
//! the Pareto front across every row and budgets that pick across members.

pub mod accuracy;
pub mod member;
mod pareto;
pub mod plot;

pub use accuracy::{Accuracy, AccuracyModel, AccuracySource, Fit, Metric};
pub use member::Member;
pub use pareto::{Budget, apply_budget, mark_pareto};

use serde::Serialize;

use crate::arch::Config;
use crate::bench::{Environment, Summary};
use crate::cost::Totals;

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    pub family: crate::arch::Family,
    pub minimalistic: bool,
    pub alpha: f64,
    pub resolution: u32,
    /// "v1 0.5-160", "v3-small-minimalistic 1.0-224".
    pub label: String,
    pub mult_adds: u64,
    /// Conv + FC weights (paper convention).
    pub params: u64,
    pub params_deployed: u64,
    pub weight_bytes_f32: u64,
    pub weight_bytes_int8: u64,
    pub activation_peak_bytes: u64,
    /// Batch latency statistics in milliseconds; None with `--no-timing`.
    pub latency_ms: Option<Summary>,
    /// Images per second at the median latency.
    pub throughput: Option<f64>,
    pub top1: Option<Accuracy>,
    pub top5: Option<Accuracy>,
    /// No other row is at least as fast (or, without timing, as cheap in mult-adds) and at least
    /// as accurate, and better in one.
    pub pareto: bool,
    /// Whether the row meets every budget given; None when no budget was given.
    pub fits_budget: Option<bool>,
    /// The most accurate row within budget (ties: the fastest).
    pub best: bool,
}

impl SweepRow {
    /// The analytic part of a row; timing, accuracy and flags are filled in later.
    pub fn analytic(config: &Config, totals: &Totals) -> Self {
        SweepRow {
            family: config.family,
            minimalistic: config.minimalistic,
            alpha: config.alpha,
            resolution: config.resolution,
            label: format!(
                "{} {}-{}",
                Member::of(config),
                crate::arch::config::format_alpha(config.alpha),
                config.resolution
            ),
            mult_adds: totals.mult_adds,
            params: totals.params,
            params_deployed: totals.params_deployed,
            weight_bytes_f32: totals.weight_bytes_f32,
            weight_bytes_int8: totals.weight_bytes_int8,
            activation_peak_bytes: totals.activation_peak_bytes,
            latency_ms: None,
            throughput: None,
            top1: None,
            top5: None,
            pareto: false,
            fits_budget: None,
            best: false,
        }
    }

    pub fn member(&self) -> Member {
        Member {
            family: self.family,
            minimalistic: self.minimalistic,
        }
    }

    /// The label without the member: "0.5-160".
    pub fn point(&self) -> &str {
        self.label.split_once(' ').map_or(&self.label, |(_, point)| point)
    }
}

/// The fits used for one member's estimated accuracies, reported with the results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitReport {
    /// The member's name: "v2", "v3-large-minimalistic".
    pub family: String,
    pub top1: Option<Fit>,
    pub top5: Option<Fit>,
}

/// A whole sweep, as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    pub schema_version: u32,
    pub environment: Environment,
    pub batch: usize,
    pub warmup: usize,
    pub accuracy_source: AccuracySource,
    /// The members swept, in order: "v1", "v2", ...
    pub families: Vec<String>,
    /// One per member.
    pub fits: Vec<FitReport>,
    pub budget: Budget,
    /// Label of the best row within budget, if any row fits.
    pub best: Option<String>,
    /// True while the sweep is still running (a partial file written after each row).
    pub complete: bool,
    pub rows: Vec<SweepRow>,
}

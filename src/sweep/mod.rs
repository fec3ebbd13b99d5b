//! Trade-off sweeps over members of the family and their (alpha, resolution) grids: the
//! analytic columns from the cost model, measured latency, published or estimated accuracy,
//! the Pareto front across every row and budgets that pick across members.
//!
//! Building a report: [`SweepReport::new`] with the members' [`AccuracyModel`]s (one per member
//! and precision), then one [`SweepRow::new`] per grid point and precision (timing filled in by
//! the caller), then [`SweepReport::finish`], which marks the Pareto fronts and applies the
//! budget. Rows of both precisions share one table, one front and one budget: an int8 row's
//! accuracy is the source's quantized models' and its size its uint8 weights'. Nothing here
//! formats: `report::sweep_document` and `report::sweep_plot_svg` do.

pub mod accuracy;
pub mod member;
mod pareto;

pub use accuracy::{
    Accuracy, AccuracyModel, AccuracySource, Extrapolation, Figure, Fit, FitOrigin, MAX_EXTRAPOLATION_RATIO,
    Metric, Provenance, Shape, Unavailable,
};
pub use member::Member;
pub use pareto::{Budget, NoBest, apply_budget, mark_pareto};

use serde::Serialize;

use crate::arch::Config;
use crate::bench::{Environment, Summary};
use crate::cost::Totals;
use crate::infer::Precision;

/// The version of the JSON `SweepReport` serialises to (docs/schema/sweep.schema.json). `sweep
/// --data` added to 3 without changing what a sweep without it writes: the `data` key (absent
/// without it), the `measured` provenance and the `not-measured` reason; 4 adds the precision
/// (`precisions`, and `precision` on every row and fit). `sweep --weights` added to 4 the same
/// way: `weights` on a file's row, the `measured-as-given` provenance and the
/// `no-published-figure` reason.
pub const SCHEMA_VERSION: u32 = 4;

/// The labelled folder a `sweep --data` measured its accuracy on: one split for every backbone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasuredOn {
    pub dir: String,
    pub split: crate::transfer::SplitRule,
    /// Class names (the heads' output order) and usable images per split.
    pub classes: Vec<crate::transfer::report::ClassInfo>,
    /// The head's settings, the same for every backbone.
    pub head: crate::transfer::HeadSettings,
    /// Images that could not be read or decoded: left out of every backbone's run.
    pub failed: Vec<crate::classify::FailedImage>,
    /// Seconds spent on features (all backbones) and on training heads.
    pub feature_seconds: f64,
    pub training_seconds: f64,
    /// Feature vectors read from the cache and computed, over all backbones.
    pub cache_hits: usize,
    pub forwarded: usize,
}

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// A `--weights` file's row: the file as the command line named it (absent for grid and
    /// pretrained rows; an addition to version 4 that leaves files without it unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    pub family: crate::arch::Family,
    pub minimalistic: bool,
    pub alpha: f64,
    pub resolution: u32,
    /// The arithmetic the row was timed in; its accuracy and its size budget follow it.
    pub precision: Precision,
    /// Classes of the classifier the costs are for (the ImageNet head: 1000).
    pub classes: u32,
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
    #[serde(serialize_with = "accuracy::serialize_figure")]
    pub top1: Figure,
    #[serde(serialize_with = "accuracy::serialize_figure")]
    pub top5: Figure,
    /// On the front of the sweep's cost (median latency when every row was timed, else
    /// mult-adds) against top-1: no other row is at least as cheap and at least as accurate,
    /// and better in one. Only rows with a published or in-span estimated top-1 take part.
    pub pareto: bool,
    /// The same front with mult-adds as the cost, whether or not the rows were timed.
    pub pareto_mult_adds: bool,
    /// Whether the row meets every budget given; None when no budget was given.
    pub fits_budget: Option<bool>,
    /// The most accurate row within budget (ties: the cheapest), among rows whose top-1 is
    /// published or estimated within its fit's span.
    pub best: bool,
}

impl SweepRow {
    /// A row for `config` (a model of `accuracy`'s member) at `accuracy`'s precision: the
    /// analytic columns from `totals`, the accuracy from `accuracy`; timing and flags are
    /// filled in later.
    pub fn new(config: &Config, totals: &Totals, accuracy: &AccuracyModel) -> Self {
        debug_assert_eq!(Member::of(config), accuracy.member);
        SweepRow {
            precision: accuracy.precision,
            ..SweepRow::with_figures(
                config,
                totals,
                accuracy.lookup(config.alpha, config.resolution, Metric::Top1),
                accuracy.lookup(config.alpha, config.resolution, Metric::Top5),
            )
        }
    }

    /// A row for `config` at f32 with the given accuracy figures (measured ones, for `sweep
    /// --data`, whose heads are trained on f32 features).
    pub fn with_figures(config: &Config, totals: &Totals, top1: Figure, top5: Figure) -> Self {
        SweepRow {
            weights: None,
            family: config.family,
            minimalistic: config.minimalistic,
            alpha: config.alpha,
            resolution: config.resolution,
            precision: Precision::F32,
            classes: config.classes,
            mult_adds: totals.mult_adds,
            params: totals.params,
            params_deployed: totals.params_deployed,
            weight_bytes_f32: totals.weight_bytes_f32,
            weight_bytes_int8: totals.weight_bytes_int8,
            activation_peak_bytes: totals.activation_peak_bytes,
            latency_ms: None,
            throughput: None,
            top1,
            top5,
            pareto: false,
            pareto_mult_adds: false,
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

    /// The weights' size at the row's precision: 4 bytes a value at f32, 1 at int8.
    pub fn weight_bytes(&self) -> u64 {
        match self.precision {
            Precision::F32 => self.weight_bytes_f32,
            Precision::Int8 => self.weight_bytes_int8,
        }
    }

    pub fn figure(&self, metric: Metric) -> &Figure {
        match metric {
            Metric::Top1 => &self.top1,
            Metric::Top5 => &self.top5,
        }
    }

    /// The top-1 figure the front and the budget's best may rest on: published or estimated
    /// within its fit's span.
    pub fn trusted_top1(&self) -> Option<f64> {
        self.top1
            .as_ref()
            .ok()
            .filter(|a| a.is_trusted())
            .map(|a| a.value)
    }
}

/// The fits used for one member's estimated accuracies at one precision, reported with the
/// results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitReport {
    /// Serialised as the member's name: "v2", "v3-large-minimalistic".
    pub family: Member,
    /// Whose rows the fits estimate: int8 rows' are fitted to the quantized models.
    pub precision: Precision,
    pub top1: Option<Fit>,
    pub top5: Option<Fit>,
}

impl FitReport {
    pub fn fit(&self, metric: Metric) -> Option<&Fit> {
        match metric {
            Metric::Top1 => self.top1.as_ref(),
            Metric::Top5 => self.top5.as_ref(),
        }
    }
}

/// A whole sweep, as written to JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    pub schema_version: u32,
    pub environment: Environment,
    pub batch: usize,
    pub warmup: usize,
    pub accuracy_source: AccuracySource,
    /// The members swept, in order.
    pub families: Vec<Member>,
    /// The precisions swept, in order: each grid point has a row for each.
    pub precisions: Vec<Precision>,
    /// One per member and precision.
    pub fits: Vec<FitReport>,
    /// [`MAX_EXTRAPOLATION_RATIO`]: how far beyond a fit's span estimates are given.
    pub max_extrapolation_ratio: f64,
    pub budget: Budget,
    /// Index in `rows` of the best row within budget, if there is one.
    pub best: Option<usize>,
    /// Why `best` is null although a budget was given.
    pub no_best: Option<NoBest>,
    /// True while the sweep is still running (a partial file written after each row).
    pub complete: bool,
    /// With `--data`: the folder every row's accuracy was measured on (absent: published or
    /// estimated ImageNet accuracy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<MeasuredOn>,
    pub rows: Vec<SweepRow>,
}

impl SweepReport {
    /// An empty sweep of `models`' members and precisions, in order; rows are pushed as they
    /// are measured.
    pub fn new(
        environment: Environment,
        batch: usize,
        warmup: usize,
        accuracy_source: AccuracySource,
        models: &[AccuracyModel],
        budget: Budget,
    ) -> Self {
        SweepReport {
            schema_version: SCHEMA_VERSION,
            environment,
            batch,
            warmup,
            accuracy_source,
            families: member::distinct(models.iter().map(|m| m.member)),
            precisions: member::distinct(models.iter().map(|m| m.precision)),
            fits: models
                .iter()
                .map(|m| FitReport {
                    family: m.member,
                    precision: m.precision,
                    top1: m.top1_fit.clone(),
                    top5: m.top5_fit.clone(),
                })
                .collect(),
            max_extrapolation_ratio: MAX_EXTRAPOLATION_RATIO,
            budget,
            best: None,
            no_best: None,
            complete: false,
            data: None,
            rows: Vec::new(),
        }
    }

    /// Marks the Pareto fronts and the budget's fitting and best rows; the sweep is complete.
    pub fn finish(&mut self) {
        mark_pareto(&mut self.rows);
        match apply_budget(&mut self.rows, &self.budget) {
            Some(Ok(best)) => self.best = Some(best),
            Some(Err(reason)) => self.no_best = Some(reason),
            None => {}
        }
        self.complete = true;
    }

    /// The fit `member`'s rows at `precision` use for `metric`'s estimates.
    pub fn fit(&self, member: Member, precision: Precision, metric: Metric) -> Option<&Fit> {
        self.fits
            .iter()
            .find(|f| f.family == member && f.precision == precision)?
            .fit(metric)
    }

    /// Whether every row was timed (the front's cost is then latency).
    pub fn timed(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.latency_ms.is_some())
    }
}

//! ImageNet accuracy for a sweep point: the published figure when a source prints one, else an
//! estimate from a least-squares fit over that source's published grid, labelled as estimated.
//! Every figure carries its provenance as data ([`Provenance`]): the published row it comes
//! from, or the member whose fit estimated it and how far outside that fit's span it lies.
//!
//! The fit: top-1 (or top-5) as a quadratic in u = ln(alpha) and v = ln(resolution),
//! `a0 + a1 u + a2 v + a3 u^2 + a4 v^2 + a5 u v`, when the member has at least 12 published
//! points (TF-slim and TFLite v1 have 16, TF-slim v2 22); with fewer, but at least 5, the
//! linear `a0 + a1 u + a2 v`. A member with fewer still (v3: two points at 224, one for the
//! minimalistic models) borrows the shape of the TF-slim v2 fit, the nearest architecture
//! with a grid (inverted residuals, the same width rule), shifted by a constant so that it
//! passes through the member's own points on average: `a0' = a0 + mean(published - fit)`.
//! Such a borrowed fit needs two points so that its leave-one-out error can be stated. Every
//! fit's leave-one-out error on the published points is computed at run time and reported
//! with its estimates. Estimates are clamped to [0, 100].
//!
//! Extrapolation. A point outside the span of the published points that gave its fit its
//! shape (per axis: alpha below the smallest or above the largest published alpha, likewise
//! resolution) is estimated only up to [`MAX_EXTRAPOLATION_RATIO`] = 1.25 beyond the span on
//! each axis (ln 1.25 = 0.22 in ln(alpha) and ln(resolution)), and the estimate is marked
//! extrapolated; further out there is none ([`Unavailable::BeyondLimit`]). Why 1.25:
//! - It is about one step of the published grids (resolution 128 -> 160 is 1.25; the alpha
//!   steps are 1.08 to 2), which is as far as the data vouch for: refitting the TF-slim v1
//!   and v2 quadratics without their outermost alpha or resolution column and predicting
//!   that column, 0.07-0.69 ln units away, misses by at most 2.1 points, near the in-grid
//!   leave-one-out maxima (0.5-1.7 points).
//! - Within it every top-1 fit still rises with alpha and with resolution (the smallest slope
//!   at the far corner is +1.6 points per ln unit, TF-slim v2 at alpha 1.75, resolution 280),
//!   and a top-5 fit, which saturates, dips at most 0.2 points. The quadratics turn over not
//!   far beyond: TF-slim v1 top-1 peaks at alpha 1.87 (224) and at resolution 376 (alpha
//!   1.0), so alpha 2.0 at 1024 would read 65.1%, below the published 70.9% of 1.0/224.
//!
//! The unit tests pin both reasons (`extrapolation_limit_*`).

use serde::Serialize;

use super::Member;
use crate::arch::Family;
use crate::infer::Precision;
use crate::published::{PublishedModel, Store};

/// Which published accuracy table a sweep reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccuracySource {
    /// TF-slim float checkpoints (mobilenet_v1.md, mobilenet_v2/v3 README), the default.
    Slim,
    /// TF-slim quantization-aware checkpoints (v1 and v3; TF-slim publishes no quantized v2 grid).
    SlimQuant,
    /// The papers: v1 Tables 4-9, v2 Table 4, v3 Table 3.
    Paper,
    /// TFLite hosted float models.
    Tflite,
    /// Not a published table: the test accuracy of a head retrained on the user's own data
    /// (`sweep --data`); every figure's provenance is [`Provenance::Measured`].
    #[value(skip)]
    Measured,
}

impl AccuracySource {
    /// How reports name the source.
    pub fn title(self) -> &'static str {
        match self {
            AccuracySource::Slim => "TF-slim float checkpoints",
            AccuracySource::SlimQuant => "TF-slim quantized checkpoints",
            AccuracySource::Paper => "the papers' tables",
            AccuracySource::Tflite => "TFLite hosted float models",
            AccuracySource::Measured => "heads retrained and tested on your data",
        }
    }

    /// Whether rows of `precision` read the source's quantized models: int8 rows always (the
    /// uint8 models are what int8 runs), f32 rows with `slim-quant`.
    pub fn reads_quantized(self, precision: Precision) -> bool {
        self == AccuracySource::SlimQuant || precision == Precision::Int8
    }

    /// How reports name what rows of `precision` read: [`AccuracySource::title`], or the
    /// quantized models of the source for int8.
    pub fn title_at(self, precision: Precision) -> &'static str {
        match (precision, self) {
            (Precision::F32, _) => self.title(),
            (Precision::Int8, AccuracySource::Slim | AccuracySource::SlimQuant) => {
                "TF-slim quantized checkpoints"
            }
            (Precision::Int8, AccuracySource::Paper) => "the papers' quantized models",
            (Precision::Int8, AccuracySource::Tflite) => "TFLite hosted quantized models",
            // sweep --data is f32 only (refused in the plan); its figures are measured.
            (Precision::Int8, AccuracySource::Measured) => self.title(),
        }
    }

    /// The `source` id of `presets/published` this source reads for `family`.
    pub fn source_id(self, family: Family) -> &'static str {
        match (self, family) {
            (AccuracySource::Tflite, _) => "tflite-hosted",
            (AccuracySource::Measured, _) => "measured",
            (AccuracySource::Slim | AccuracySource::SlimQuant, Family::V1) => "slim-v1",
            (AccuracySource::Slim | AccuracySource::SlimQuant, Family::V2) => "slim-v2",
            (AccuracySource::Slim | AccuracySource::SlimQuant, _) => "slim-v3",
            (AccuracySource::Paper, Family::V1) => "paper-v1",
            (AccuracySource::Paper, Family::V2) => "paper-v2",
            (AccuracySource::Paper, _) => "paper-v3",
        }
    }

    /// Whether `row` is a published point of `member` in this source, of its quantized models
    /// or its float ones. Its variant column is compared with the one the member's model at
    /// that point publishes under (`Config::published_variant`).
    fn matches(self, row: &PublishedModel, member: Member, quantized: bool) -> bool {
        let (Some(alpha), Some(resolution)) = (row.alpha, row.resolution) else {
            return false;
        };
        if self == AccuracySource::Measured {
            return false;
        }
        row.source == self.source_id(member.family)
            && row.quantized == quantized
            && row.family == member.family.name()
            && member
                .config(alpha, resolution)
                .is_ok_and(|config| row.variant == config.published_variant())
    }
}

/// How far beyond the span of a fit's points an estimate is still given, as a ratio: an
/// alpha or a resolution at most this factor outside the fitted span (1.25: for v1's 0.25-1.0
/// and 128-224, alphas 0.2-1.25 and resolutions 102-280). Further out there is no estimate.
/// See the module documentation for why.
pub const MAX_EXTRAPOLATION_RATIO: f64 = 1.25;

/// An accuracy figure with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Accuracy {
    /// Percent.
    pub value: f64,
    pub provenance: Provenance,
}

impl Accuracy {
    pub fn is_estimated(&self) -> bool {
        matches!(self.provenance, Provenance::Estimated { .. })
    }

    /// How far outside its fit's span an estimate lies; None for a published figure or an
    /// estimate within the span.
    pub fn extrapolation(&self) -> Option<&Extrapolation> {
        match &self.provenance {
            Provenance::Estimated { extrapolation, .. } => extrapolation.as_ref(),
            Provenance::Published { .. }
            | Provenance::Measured { .. }
            | Provenance::MeasuredAsGiven { .. } => None,
        }
    }

    /// Measured on the user's data (`sweep --data`: a retrained head, or a `--weights` file as
    /// given), not published or estimated.
    pub fn is_measured(&self) -> bool {
        matches!(
            self.provenance,
            Provenance::Measured { .. } | Provenance::MeasuredAsGiven { .. }
        )
    }

    /// The 95% Wilson interval (percent) of a measured figure.
    pub fn interval(&self) -> Option<[f64; 2]> {
        match self.provenance {
            Provenance::Measured { interval, .. } | Provenance::MeasuredAsGiven { interval, .. } => {
                Some(interval)
            }
            Provenance::Published { .. } | Provenance::Estimated { .. } => None,
        }
    }

    /// A measured figure's backbone ran at another resolution than its weights were trained at.
    pub fn off_trained_resolution(&self) -> bool {
        matches!(
            self.provenance,
            Provenance::Measured {
                resolution,
                trained_resolution,
                ..
            } if resolution != trained_resolution
        )
    }

    pub fn is_extrapolated(&self) -> bool {
        self.extrapolation().is_some()
    }

    /// Published, or estimated within the span of its fit's points: a figure the Pareto front
    /// and the budget's best may rest on. An extrapolated estimate is shown, not relied on.
    pub fn is_trusted(&self) -> bool {
        !self.is_extrapolated()
    }
}

/// JSON: `value`, the two flags readers filter on, and the provenance.
impl Serialize for Accuracy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Accuracy", 4)?;
        s.serialize_field("value", &self.value)?;
        s.serialize_field("estimated", &self.is_estimated())?;
        s.serialize_field("extrapolated", &self.is_extrapolated())?;
        s.serialize_field("provenance", &self.provenance)?;
        s.end()
    }
}

/// Where an accuracy figure comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Provenance {
    /// A row of `presets/published`.
    Published {
        /// The source id: "slim-v1", "paper-v2", "tflite-hosted".
        source: String,
        /// The table within the source: "model table", "Table 6".
        table: String,
        /// The model as the source names it: "MobileNet_v1_0.50_160".
        model: String,
    },
    /// The test accuracy of a head retrained on the user's labelled folder (`sweep --data`) on
    /// this backbone's features: `correct` of `images` test images, with the 95% Wilson
    /// interval (percent).
    Measured {
        /// The labelled folder (`SweepReport::data` has its split and classes).
        data: String,
        /// The shipped pretrained backbone.
        model: String,
        /// The input size the features were computed at, and the one its weights were trained at.
        resolution: u32,
        trained_resolution: u32,
        images: usize,
        correct: usize,
        /// 95% Wilson interval, percent.
        interval: [f64; 2],
    },
    /// The test accuracy of a `--weights` file run as it is (its own classifier, no retraining)
    /// on the test split of `sweep --data`, its labels matched to the class folders as
    /// `evaluate` matches them: `correct` of `images`, with the 95% Wilson interval (percent).
    MeasuredAsGiven {
        /// The labelled folder (`SweepReport::data` has its split and classes).
        data: String,
        /// The weights file, as the command line named it.
        weights: String,
        images: usize,
        correct: usize,
        /// 95% Wilson interval, percent.
        interval: [f64; 2],
    },
    /// Predicted by the fit of `fit`'s published points for the same metric (`SweepReport::fits`).
    Estimated {
        fit: Member,
        /// Set when the point lies outside the span of the points that gave the fit its shape,
        /// but within `MAX_EXTRAPOLATION_RATIO` of it.
        extrapolation: Option<Extrapolation>,
    },
}

/// How far a point lies outside a fit's span, per axis, in natural-log units:
/// ln(value / nearest end of the span); 0 on an axis within the span.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Extrapolation {
    pub ln_alpha: f64,
    pub ln_resolution: f64,
}

impl Extrapolation {
    /// The larger of the two axes' distances, compared with `MAX_EXTRAPOLATION_RATIO.ln()`.
    pub fn distance(&self) -> f64 {
        self.ln_alpha.max(self.ln_resolution)
    }

    pub fn within_limit(&self) -> bool {
        self.distance() <= MAX_EXTRAPOLATION_RATIO.ln()
    }
}

/// Why a point has no accuracy figure for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Unavailable {
    /// Not published, and the member has too few published points for a fit.
    NoFit,
    /// Not published, and further than `MAX_EXTRAPOLATION_RATIO` outside the fit's span.
    BeyondLimit { extrapolation: Extrapolation },
    /// `sweep --data` measures top-1 on the user's classes only (top-5 of a handful of classes
    /// says little).
    NotMeasured,
    /// A `--weights` file's own network: no table publishes its accuracy, and without `--data`
    /// nothing measures it.
    NoPublishedFigure,
}

/// A point's figure for one metric, or why it has none.
pub type Figure = Result<Accuracy, Unavailable>;

/// Serialises a [`Figure`]: the accuracy, or `{"value": null, "unavailable": {"reason": ...}}`.
pub fn serialize_figure<S: serde::Serializer>(figure: &Figure, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    match figure {
        Ok(accuracy) => accuracy.serialize(serializer),
        Err(unavailable) => {
            let mut s = serializer.serialize_struct("Unavailable", 2)?;
            s.serialize_field("value", &None::<f64>)?;
            s.serialize_field("unavailable", unavailable)?;
            s.end()
        }
    }
}

/// Which accuracy metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Top1,
    Top5,
}

impl Metric {
    pub const ALL: [Metric; 2] = [Metric::Top1, Metric::Top5];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Top1 => "top-1",
            Metric::Top5 => "top-5",
        }
    }
}

/// The polynomial a fit uses in (ln alpha, ln resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// `a0 + a1 u + a2 v + a3 u^2 + a4 v^2 + a5 u v`, from 12 points up.
    Quadratic,
    /// `a0 + a1 u + a2 v`, from 5 points up.
    Linear,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Quadratic => "quadratic",
            Shape::Linear => "linear",
        }
    }

    fn for_points(points: usize) -> Self {
        if points >= 12 {
            Shape::Quadratic
        } else {
            Shape::Linear
        }
    }

    fn terms(self) -> usize {
        match self {
            Shape::Quadratic => 6,
            Shape::Linear => 3,
        }
    }
}

/// How a fit was made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FitOrigin {
    /// Least squares over the member's own published points.
    Own,
    /// The own fit of `donor`'s points in `donor_source` (the nearest architecture with a
    /// grid), moved by `shift` points to pass through the member's points on average.
    Shifted {
        donor: Member,
        donor_source: &'static str,
        donor_points: usize,
        shift: f64,
    },
}

/// A fitted accuracy model with its leave-one-out error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    pub shape: Shape,
    pub origin: FitOrigin,
    /// The source id of the member's published points: "slim-v1".
    pub source: &'static str,
    /// How many of the member's published points the fit was made on (or shifted to).
    pub points: usize,
    pub coefficients: Vec<f64>,
    /// Mean absolute leave-one-out error in percentage points.
    pub loo_mean_abs: f64,
    /// Largest absolute leave-one-out error.
    pub loo_max_abs: f64,
    /// The span of the points that gave the fit its shape (for a shifted fit, the donor's):
    /// outside it an estimate is an extrapolation and says so.
    pub alpha_range: [f64; 2],
    pub resolution_range: [u32; 2],
}

impl Fit {
    /// A fit of `coefficients` with the summary of its absolute leave-one-out `errors`.
    fn new(
        shape: Shape,
        origin: FitOrigin,
        source: &'static str,
        points: usize,
        coefficients: Vec<f64>,
        errors: &[f64],
        (alpha_range, resolution_range): ([f64; 2], [u32; 2]),
    ) -> Self {
        Fit {
            shape,
            origin,
            source,
            points,
            coefficients,
            loo_mean_abs: errors.iter().sum::<f64>() / errors.len() as f64,
            loo_max_abs: errors.iter().copied().fold(0.0, f64::max),
            alpha_range,
            resolution_range,
        }
    }

    fn span(data: &[(f64, u32, f64)]) -> ([f64; 2], [u32; 2]) {
        let alphas = data.iter().map(|p| p.0);
        let resolutions = data.iter().map(|p| p.1);
        (
            [
                alphas.clone().fold(f64::MAX, f64::min),
                alphas.fold(f64::MIN, f64::max),
            ],
            [
                resolutions.clone().min().unwrap_or(0),
                resolutions.max().unwrap_or(0),
            ],
        )
    }

    /// The fitted value at (alpha, resolution), clamped to [0, 100], wherever that is.
    pub fn predict(&self, alpha: f64, resolution: u32) -> f64 {
        predict(&self.coefficients, alpha, resolution)
    }

    /// How far (alpha, resolution) lies outside the span, or None inside it.
    pub fn extrapolation(&self, alpha: f64, resolution: u32) -> Option<Extrapolation> {
        let beyond = |x: f64, [lo, hi]: [f64; 2]| (lo.ln() - x.ln()).max(x.ln() - hi.ln()).max(0.0);
        let [r0, r1] = self.resolution_range;
        let e = Extrapolation {
            ln_alpha: beyond(alpha, self.alpha_range),
            ln_resolution: beyond(f64::from(resolution), [f64::from(r0), f64::from(r1)]),
        };
        // Alphas are parsed from printed decimals: treat a last-bit difference as inside.
        (e.distance() > 1e-9).then_some(e)
    }
}

fn features(alpha: f64, resolution: u32, terms: usize) -> Vec<f64> {
    let (u, v) = (alpha.ln(), f64::from(resolution).ln());
    let all = [1.0, u, v, u * u, v * v, u * v];
    all[..terms].to_vec()
}

/// Least squares by the normal equations and Gaussian elimination with partial pivoting.
fn least_squares(x: &[Vec<f64>], y: &[f64]) -> Option<Vec<f64>> {
    let n = x.first()?.len();
    let mut a = vec![vec![0.0; n + 1]; n];
    for (row, &target) in x.iter().zip(y) {
        for i in 0..n {
            for j in 0..n {
                a[i][j] += row[i] * row[j];
            }
            a[i][n] += row[i] * target;
        }
    }
    for col in 0..n {
        let pivot = (col..n).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for row in 0..n {
            if row != col {
                let factor = a[row][col] / a[col][col];
                let pivot_row = a[col].clone();
                for (value, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                    *value -= factor * p;
                }
            }
        }
    }
    Some((0..n).map(|i| a[i][n] / a[i][i]).collect())
}

fn predict(coefficients: &[f64], alpha: f64, resolution: u32) -> f64 {
    features(alpha, resolution, coefficients.len())
        .iter()
        .zip(coefficients)
        .map(|(f, c)| f * c)
        .sum::<f64>()
        .clamp(0.0, 100.0)
}

/// One published (alpha, resolution) point of a source.
#[derive(Debug, Clone, PartialEq)]
struct PublishedPoint {
    alpha: f64,
    resolution: u32,
    top1: Option<f64>,
    top5: Option<f64>,
    source: String,
    table: String,
    model: String,
}

impl PublishedPoint {
    fn metric(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Top1 => self.top1,
            Metric::Top5 => self.top5,
        }
    }

    fn accuracy(&self, metric: Metric) -> Option<Accuracy> {
        Some(Accuracy {
            value: self.metric(metric)?,
            provenance: Provenance::Published {
                source: self.source.clone(),
                table: self.table.clone(),
                model: self.model.clone(),
            },
        })
    }
}

/// The (alpha, resolution) points `source` publishes for `member`, in table order.
pub(crate) fn published_grid(store: &Store, source: AccuracySource, member: Member) -> Vec<(f64, u32)> {
    AccuracyModel::published_points(store, source, member, source.reads_quantized(Precision::F32))
        .iter()
        .map(|p| (p.alpha, p.resolution))
        .collect()
}

/// Published accuracy of one member in one source at one precision (int8 rows read the
/// source's quantized models), with the fits used for unpublished points.
#[derive(Debug, Clone)]
pub struct AccuracyModel {
    pub source: AccuracySource,
    pub member: Member,
    pub precision: Precision,
    points: Vec<PublishedPoint>,
    pub top1_fit: Option<Fit>,
    pub top5_fit: Option<Fit>,
}

impl AccuracyModel {
    pub fn new(store: &Store, source: AccuracySource, member: Member, precision: Precision) -> Self {
        let points = Self::published_points(store, source, member, source.reads_quantized(precision));
        let own = |metric| Self::fit(&points, source.source_id(member.family), metric);
        let (mut top1_fit, mut top5_fit) = (own(Metric::Top1), own(Metric::Top5));
        if top1_fit.is_none() || top5_fit.is_none() {
            let donor_member = Member::standard(Family::V2);
            let donor_source = AccuracySource::Slim.source_id(Family::V2);
            let donor_points = Self::published_points(store, AccuracySource::Slim, donor_member, false);
            let borrow = |metric| {
                let donor = Self::fit(&donor_points, donor_source, metric)?;
                Self::shifted(
                    &donor,
                    donor_member,
                    &points,
                    source.source_id(member.family),
                    metric,
                )
            };
            top1_fit = top1_fit.or_else(|| borrow(Metric::Top1));
            top5_fit = top5_fit.or_else(|| borrow(Metric::Top5));
        }
        AccuracyModel {
            source,
            member,
            precision,
            points,
            top1_fit,
            top5_fit,
        }
    }

    /// The fit used for `metric`'s unpublished points, if the member has one.
    pub fn fit_of(&self, metric: Metric) -> Option<&Fit> {
        match metric {
            Metric::Top1 => self.top1_fit.as_ref(),
            Metric::Top5 => self.top5_fit.as_ref(),
        }
    }

    fn published_points(
        store: &Store,
        source: AccuracySource,
        member: Member,
        quantized: bool,
    ) -> Vec<PublishedPoint> {
        let mut points: Vec<PublishedPoint> = Vec::new();
        for row in store
            .models
            .iter()
            .filter(|r| source.matches(r, member, quantized))
        {
            let (Some(alpha), Some(resolution)) = (row.alpha, row.resolution) else {
                continue;
            };
            // The paper repeats rows across tables: keep the first printing of each point.
            if points
                .iter()
                .any(|p| (p.alpha - alpha).abs() < 1e-9 && p.resolution == resolution)
            {
                continue;
            }
            points.push(PublishedPoint {
                alpha,
                resolution,
                top1: row.top1_value(),
                top5: row.top5_value(),
                source: row.source.clone(),
                table: row.table.clone(),
                model: row.model.clone(),
            });
        }
        points
    }

    fn data(points: &[PublishedPoint], metric: Metric) -> Vec<(f64, u32, f64)> {
        points
            .iter()
            .filter_map(|p| Some((p.alpha, p.resolution, p.metric(metric)?)))
            .collect()
    }

    /// The member's own fit of `metric` over `points` (published in `source`).
    fn fit(points: &[PublishedPoint], source: &'static str, metric: Metric) -> Option<Fit> {
        let data = Self::data(points, metric);
        let shape = Shape::for_points(data.len());
        let terms = shape.terms();
        if data.len() < terms + 2 {
            return None;
        }
        let solve = |subset: &[&(f64, u32, f64)]| {
            let x: Vec<Vec<f64>> = subset.iter().map(|p| features(p.0, p.1, terms)).collect();
            let y: Vec<f64> = subset.iter().map(|p| p.2).collect();
            least_squares(&x, &y)
        };
        let all: Vec<&(f64, u32, f64)> = data.iter().collect();
        let coefficients = solve(&all)?;
        let mut errors = Vec::new();
        for i in 0..data.len() {
            let rest: Vec<&(f64, u32, f64)> = data
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p)
                .collect();
            let c = solve(&rest)?;
            errors.push((predict(&c, data[i].0, data[i].1) - data[i].2).abs());
        }
        Some(Fit::new(
            shape,
            FitOrigin::Own,
            source,
            data.len(),
            coefficients,
            &errors,
            Fit::span(&data),
        ))
    }

    /// `donor` (the own fit of `donor_member`) moved up or down to pass through `points`
    /// (published in `source`) on average; its leave-one-out error is that of the shift (each
    /// point predicted from a shift fitted to the others).
    fn shifted(
        donor: &Fit,
        donor_member: Member,
        points: &[PublishedPoint],
        source: &'static str,
        metric: Metric,
    ) -> Option<Fit> {
        let data = Self::data(points, metric);
        if data.len() < 2 {
            return None;
        }
        let residuals: Vec<f64> = data.iter().map(|p| p.2 - donor.predict(p.0, p.1)).collect();
        let total: f64 = residuals.iter().sum();
        let shift = total / data.len() as f64;
        let errors: Vec<f64> = residuals
            .iter()
            .map(|r| (r - (total - r) / (data.len() - 1) as f64).abs())
            .collect();
        let mut coefficients = donor.coefficients.clone();
        coefficients[0] += shift;
        let origin = FitOrigin::Shifted {
            donor: donor_member,
            donor_source: donor.source,
            donor_points: donor.points,
            shift,
        };
        Some(Fit::new(
            donor.shape,
            origin,
            source,
            data.len(),
            coefficients,
            &errors,
            (donor.alpha_range, donor.resolution_range),
        ))
    }

    /// The published figure for (alpha, resolution), else the fit's estimate within
    /// `MAX_EXTRAPOLATION_RATIO` of its span, else why there is none.
    pub fn lookup(&self, alpha: f64, resolution: u32, metric: Metric) -> Figure {
        let published = self
            .points
            .iter()
            .find(|p| (p.alpha - alpha).abs() < 1e-9 && p.resolution == resolution)
            .and_then(|p| p.accuracy(metric));
        if let Some(published) = published {
            return Ok(published);
        }
        let fit = self.fit_of(metric).ok_or(Unavailable::NoFit)?;
        let extrapolation = fit.extrapolation(alpha, resolution);
        if let Some(extrapolation) = extrapolation
            && !extrapolation.within_limit()
        {
            return Err(Unavailable::BeyondLimit { extrapolation });
        }
        Ok(Accuracy {
            value: fit.predict(alpha, resolution),
            provenance: Provenance::Estimated {
                fit: self.member,
                extrapolation,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sweep::member::ALL as ALL_MEMBERS;

    const V1: Member = Member::standard(Family::V1);
    const V2: Member = Member::standard(Family::V2);
    const SOURCES: [AccuracySource; 4] = [
        AccuracySource::Slim,
        AccuracySource::SlimQuant,
        AccuracySource::Paper,
        AccuracySource::Tflite,
    ];

    #[test]
    fn published_points_come_from_the_table() {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, V1, Precision::F32);
        let a = model.lookup(0.5, 160, Metric::Top1).unwrap();
        assert_eq!(a.value, 59.1);
        assert!(!a.is_estimated() && a.is_trusted());
        assert_eq!(
            a.provenance,
            Provenance::Published {
                source: "slim-v1".into(),
                table: "model table".into(),
                model: "MobileNet_v1_0.50_160".into()
            }
        );
        assert_eq!(model.lookup(1.0, 224, Metric::Top5).unwrap().value, 89.9);
    }

    #[test]
    fn unpublished_points_are_estimated_by_the_members_fit() {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, V1, Precision::F32);
        let e = model.lookup(0.6, 176, Metric::Top1).unwrap();
        assert_eq!(
            e.provenance,
            Provenance::Estimated {
                fit: V1,
                extrapolation: None
            }
        );
        // Between the neighbours 0.5/160 (59.1) and 0.75/192 (67.2).
        assert!(e.value > 59.1 && e.value < 67.2, "{}", e.value);
        let fit = model.top1_fit.unwrap();
        assert_eq!(
            (fit.shape, fit.origin, fit.source, fit.points),
            (Shape::Quadratic, FitOrigin::Own, "slim-v1", 16)
        );
        assert!(fit.loo_mean_abs < 0.5 && fit.loo_max_abs < 1.0, "{fit:?}");
    }

    #[test]
    fn every_source_has_a_fit() {
        for source in SOURCES {
            let model = AccuracyModel::new(&Store::embedded(), source, V1, Precision::F32);
            assert!(model.top1_fit.is_some(), "{source:?}");
            assert!(model.lookup(0.25, 128, Metric::Top1).is_ok());
        }
    }

    #[test]
    fn v2_has_its_own_quadratic_fit() {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, V2, Precision::F32);
        let fit = model.top1_fit.as_ref().unwrap();
        assert_eq!(
            (fit.shape, fit.origin, fit.source, fit.points),
            (Shape::Quadratic, FitOrigin::Own, "slim-v2", 22)
        );
        assert!(fit.loo_mean_abs < 1.0, "{fit:?}");
        let published = model.lookup(1.4, 224, Metric::Top1).unwrap();
        assert_eq!((published.value, published.is_estimated()), (75.0, false));
        let estimate = model.lookup(1.0, 176, Metric::Top1).unwrap();
        // Between 1.0/160 (68.8) and 1.0/192 (70.7).
        assert!(
            estimate.is_estimated() && estimate.value > 68.8 && estimate.value < 70.7,
            "{estimate:?}"
        );
    }

    #[test]
    fn v3_borrows_the_v2_shape_shifted_to_its_points() {
        let store = Store::embedded();
        let v3 = Member::standard(Family::V3Large);
        let v2 = AccuracyModel::new(&store, AccuracySource::Slim, V2, Precision::F32);
        let model = AccuracyModel::new(&store, AccuracySource::Slim, v3, Precision::F32);
        let fit = model.top1_fit.as_ref().unwrap();
        let donor = v2.top1_fit.as_ref().unwrap();
        assert_eq!(
            (fit.source, fit.points, fit.shape),
            ("slim-v3", 2, Shape::Quadratic)
        );
        let FitOrigin::Shifted {
            donor: donor_member,
            donor_source,
            donor_points,
            shift,
        } = fit.origin
        else {
            panic!("{fit:?}")
        };
        assert_eq!((donor_member, donor_source, donor_points), (V2, "slim-v2", 22));
        // Same shape: only the constant differs, by the shift.
        assert_eq!(fit.coefficients[1..], donor.coefficients[1..]);
        assert_eq!(fit.coefficients[0], donor.coefficients[0] + shift);
        assert_eq!(
            (fit.alpha_range, fit.resolution_range),
            (donor.alpha_range, donor.resolution_range)
        );
        // The published points stay published; 0.75-224 (73.3) and 1.0-224 (75.2) bracket 0.9.
        assert_eq!(model.lookup(1.0, 224, Metric::Top1).unwrap().value, 75.2);
        let mid = model.lookup(0.9, 224, Metric::Top1).unwrap();
        assert!(
            mid.is_estimated() && mid.value > 73.3 && mid.value < 75.2,
            "{mid:?}"
        );
        // Lower resolution costs accuracy, as in v2.
        assert!(model.lookup(1.0, 160, Metric::Top1).unwrap().value < 75.2);
        // Outside v2's grid (alpha 0.35-1.4) the estimate is an extrapolation, then none.
        assert!(!mid.is_extrapolated());
        let near = model.lookup(0.3, 224, Metric::Top1).unwrap();
        let e = near.extrapolation().unwrap();
        assert!(
            (e.ln_alpha - (0.35f64 / 0.3).ln()).abs() < 1e-12 && e.ln_resolution == 0.0,
            "{e:?}"
        );
        assert!(matches!(
            model.lookup(0.1, 224, Metric::Top1),
            Err(Unavailable::BeyondLimit { .. })
        ));
        // No top-5 is published for v3, so there is nothing to shift to.
        assert!(model.top5_fit.is_none());
        assert_eq!(model.lookup(1.0, 224, Metric::Top5), Err(Unavailable::NoFit));
    }

    #[test]
    fn a_single_point_gives_no_estimate() {
        let model = AccuracyModel::new(
            &Store::embedded(),
            AccuracySource::Slim,
            ALL_MEMBERS[4],
            Precision::F32,
        );
        assert!(model.top1_fit.is_none());
        assert_eq!(model.lookup(1.0, 224, Metric::Top1).unwrap().value, 72.3);
        assert_eq!(model.lookup(1.0, 192, Metric::Top1), Err(Unavailable::NoFit));
    }

    #[test]
    fn estimates_end_at_the_extrapolation_limit() {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, V1, Precision::F32);
        // v1's span is alpha 0.25-1.0, resolution 128-224: the limit is 1.25 and 280.
        let top1 = |a, r| model.lookup(a, r, Metric::Top1);
        assert!(top1(1.25, 224).unwrap().is_extrapolated());
        assert!(top1(1.0, 280).unwrap().is_extrapolated());
        assert!(top1(0.2, 128).unwrap().is_extrapolated());
        for (a, r) in [(1.26, 224), (1.0, 281), (0.19, 128), (2.0, 1024), (1.8, 300)] {
            let Err(Unavailable::BeyondLimit { extrapolation }) = top1(a, r) else {
                panic!("{a}/{r}: {:?}", top1(a, r))
            };
            assert!(extrapolation.distance() > MAX_EXTRAPOLATION_RATIO.ln());
        }
        let e = model.top1_fit.as_ref().unwrap().extrapolation(2.0, 1024).unwrap();
        assert!(
            (e.ln_alpha - 2f64.ln()).abs() < 1e-12
                && (e.ln_resolution - (1024.0f64 / 224.0).ln()).abs() < 1e-12
        );
    }

    /// Every own and shifted fit of every source, member and precision with a grid.
    fn all_fits() -> Vec<(String, Metric, Fit)> {
        let store = Store::embedded();
        let mut fits = Vec::new();
        for (source, member, precision) in SOURCES
            .into_iter()
            .flat_map(|s| ALL_MEMBERS.map(|m| (s, m)))
            .flat_map(|(s, m)| Precision::ALL.map(|p| (s, m, p)))
        {
            let model = AccuracyModel::new(&store, source, member, precision);
            for metric in Metric::ALL {
                if let Some(fit) = model.fit_of(metric) {
                    fits.push((format!("{source:?} {member} {precision}"), metric, fit.clone()));
                }
            }
        }
        fits
    }

    #[test]
    fn int8_rows_read_the_quantized_models() {
        let store = Store::embedded();
        let int8 = |source, member| AccuracyModel::new(&store, source, member, Precision::Int8);
        let v1 = int8(AccuracySource::Slim, V1);
        let a = v1.lookup(1.0, 224, Metric::Top1).unwrap();
        assert_eq!(a.value, 69.7);
        assert_eq!(
            a.provenance,
            Provenance::Published {
                source: "slim-v1".into(),
                table: "model table".into(),
                model: "MobileNet_v1_1.0_224_quant".into()
            }
        );
        // The same figures --accuracy-source slim-quant gives f32 rows, fitted the same way.
        let quant = AccuracyModel::new(&store, AccuracySource::SlimQuant, V1, Precision::F32);
        assert_eq!(v1.top1_fit, quant.top1_fit);
        assert_eq!(
            v1.lookup(0.6, 176, Metric::Top1),
            quant.lookup(0.6, 176, Metric::Top1)
        );
        // TF-slim publishes no quantized v2; TFLite hosts one, 1.0/224.
        assert_eq!(
            int8(AccuracySource::Slim, V2).lookup(1.0, 224, Metric::Top1),
            Err(Unavailable::NoFit)
        );
        let tflite = int8(AccuracySource::Tflite, V2)
            .lookup(1.0, 224, Metric::Top1)
            .unwrap();
        assert_eq!((tflite.value, tflite.is_estimated()), (70.8, false));
        // f32 rows keep the float figures.
        let float = AccuracyModel::new(&store, AccuracySource::Slim, V1, Precision::F32);
        assert_eq!(float.lookup(1.0, 224, Metric::Top1).unwrap().value, 70.9);
    }

    #[test]
    fn extrapolation_limit_keeps_top1_fits_rising() {
        let limit = MAX_EXTRAPOLATION_RATIO.ln();
        for (name, metric, fit) in all_fits() {
            let (a0, a1) = (fit.alpha_range[0].ln() - limit, fit.alpha_range[1].ln() + limit);
            let r = fit.resolution_range.map(f64::from);
            let (r0, r1) = (r[0].ln() - limit, r[1].ln() + limit);
            let at = |u: f64, v: f64| fit.predict(u.exp(), v.exp().round() as u32);
            let steps = 24;
            let grid =
                |lo: f64, hi: f64| (0..=steps).map(move |i| lo + (hi - lo) * f64::from(i) / f64::from(steps));
            // The largest fall along either axis anywhere within the limit.
            let mut fall: f64 = 0.0;
            for u in grid(a0, a1) {
                let column: Vec<f64> = grid(r0, r1).map(|v| at(u, v)).collect();
                fall = fall.max(column.windows(2).map(|w| w[0] - w[1]).fold(0.0, f64::max));
            }
            for v in grid(r0, r1) {
                let row: Vec<f64> = grid(a0, a1).map(|u| at(u, v)).collect();
                fall = fall.max(row.windows(2).map(|w| w[0] - w[1]).fold(0.0, f64::max));
            }
            let allowed = if metric == Metric::Top1 { 0.0 } else { 0.25 };
            assert!(
                fall <= allowed,
                "{name} {}: falls {fall:.2} within the limit",
                metric.name()
            );
        }
    }

    #[test]
    fn extrapolation_limit_is_within_the_edge_holdout_error() {
        // Refit the TF-slim v1 and v2 grids without their outermost alpha or resolution
        // column and predict it: the error of extrapolating one grid step (further than the
        // limit) stays near the in-grid leave-one-out error.
        let store = Store::embedded();
        for member in [V1, V2] {
            let points = AccuracyModel::published_points(&store, AccuracySource::Slim, member, false);
            for metric in Metric::ALL {
                let data = AccuracyModel::data(&points, metric);
                let (alphas, resolutions) = Fit::span(&data);
                // (alpha axis?, the held-out column's value): the outermost columns.
                let columns = [
                    (true, alphas[1]),
                    (true, alphas[0]),
                    (false, f64::from(resolutions[1])),
                    (false, f64::from(resolutions[0])),
                ];
                for (on_alpha, column) in columns {
                    let out = |p: &&(f64, u32, f64)| if on_alpha { p.0 } else { f64::from(p.1) } == column;
                    let rest: Vec<&(f64, u32, f64)> = data.iter().filter(|p| !out(p)).collect();
                    let x: Vec<Vec<f64>> = rest.iter().map(|p| features(p.0, p.1, 6)).collect();
                    let y: Vec<f64> = rest.iter().map(|p| p.2).collect();
                    let c = least_squares(&x, &y).unwrap();
                    for p in data.iter().filter(out) {
                        let error = (predict(&c, p.0, p.1) - p.2).abs();
                        assert!(
                            error < 2.5,
                            "{member} {} {}/{}: {error:.2}",
                            metric.name(),
                            p.0,
                            p.1
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn least_squares_recovers_a_plane() {
        let x: Vec<Vec<f64>> = (0..6).map(|i| vec![1.0, i as f64, (i * i) as f64]).collect();
        let y: Vec<f64> = (0..6)
            .map(|i| 2.0 + 3.0 * i as f64 - 0.5 * (i * i) as f64)
            .collect();
        let c = least_squares(&x, &y).unwrap();
        assert!((c[0] - 2.0).abs() < 1e-9 && (c[1] - 3.0).abs() < 1e-9 && (c[2] + 0.5).abs() < 1e-9);
    }
}

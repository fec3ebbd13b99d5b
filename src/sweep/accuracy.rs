//! ImageNet accuracy for a sweep point: the published figure when a source prints one, else an
//! estimate from a least-squares fit over that source's published grid, labelled as estimated.
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

use serde::Serialize;

use super::Member;
use crate::arch::Family;
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
}

impl AccuracySource {
    /// How reports name the source.
    pub fn title(self) -> &'static str {
        match self {
            AccuracySource::Slim => "TF-slim float checkpoints",
            AccuracySource::SlimQuant => "TF-slim quantized checkpoints",
            AccuracySource::Paper => "the papers' tables",
            AccuracySource::Tflite => "TFLite hosted float models",
        }
    }

    /// The `source` id of `presets/published` this source reads for `family`.
    pub fn source_id(self, family: Family) -> &'static str {
        match (self, family) {
            (AccuracySource::Tflite, _) => "tflite-hosted",
            (AccuracySource::Slim | AccuracySource::SlimQuant, Family::V1) => "slim-v1",
            (AccuracySource::Slim | AccuracySource::SlimQuant, Family::V2) => "slim-v2",
            (AccuracySource::Slim | AccuracySource::SlimQuant, _) => "slim-v3",
            (AccuracySource::Paper, Family::V1) => "paper-v1",
            (AccuracySource::Paper, Family::V2) => "paper-v2",
            (AccuracySource::Paper, _) => "paper-v3",
        }
    }

    fn matches(self, row: &PublishedModel, member: Member) -> bool {
        row.source == self.source_id(member.family)
            && row.quantized == (self == AccuracySource::SlimQuant)
            && row.family == member.family.name()
            && row.variant == member.published_variant()
            && row.alpha.is_some()
            && row.resolution.is_some()
    }
}

/// An accuracy figure with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    /// Percent.
    pub value: f64,
    /// "slim-v1 model table, MobileNet_v1_0.5_160" or the fit's description.
    pub source: String,
    pub estimated: bool,
    /// An estimate outside the span its fit was made on. Its `source` says so in words (that
    /// is what the JSON carries); reports read this flag rather than the text.
    #[serde(skip)]
    pub extrapolated: bool,
}

/// Which accuracy metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Top1,
    Top5,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Top1 => "top-1",
            Metric::Top5 => "top-5",
        }
    }
}

/// A fitted accuracy model with its leave-one-out error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    pub coefficients: Vec<f64>,
    pub points: usize,
    /// Mean absolute leave-one-out error in percentage points.
    pub loo_mean_abs: f64,
    /// Largest absolute leave-one-out error.
    pub loo_max_abs: f64,
    /// The span of the points that gave the fit its shape (for a borrowed fit, the donor's):
    /// outside it an estimate is an extrapolation and says so.
    pub alpha_range: [f64; 2],
    pub resolution_range: [u32; 2],
    pub description: String,
}

impl Fit {
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

    /// "alpha 0.01 outside the fitted 0.35-1.4", or None inside the span.
    pub fn extrapolation(&self, alpha: f64, resolution: u32) -> Option<String> {
        let [a0, a1] = self.alpha_range;
        let [r0, r1] = self.resolution_range;
        let fmt = crate::arch::config::format_alpha;
        let mut out = Vec::new();
        if alpha < a0 - 1e-9 || alpha > a1 + 1e-9 {
            out.push(format!(
                "alpha {} outside the fitted {}-{}",
                fmt(alpha),
                fmt(a0),
                fmt(a1)
            ));
        }
        if resolution < r0 || resolution > r1 {
            out.push(format!("resolution {resolution} outside the fitted {r0}-{r1}"));
        }
        (!out.is_empty()).then(|| out.join(", "))
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
    /// "slim-v1 model table, MobileNet_v1_0.50_160".
    label: String,
}

impl PublishedPoint {
    fn metric(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Top1 => self.top1,
            Metric::Top5 => self.top5,
        }
    }
}

/// The (alpha, resolution) points `source` publishes for `member`, in table order.
pub(crate) fn published_grid(store: &Store, source: AccuracySource, member: Member) -> Vec<(f64, u32)> {
    AccuracyModel::published_points(store, source, member)
        .iter()
        .map(|p| (p.alpha, p.resolution))
        .collect()
}

/// Mean and largest of the absolute leave-one-out errors.
fn loo_summary(errors: &[f64]) -> (f64, f64) {
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    (mean, errors.iter().copied().fold(0.0, f64::max))
}

/// Published accuracy of one member in one source, with the fits used for unpublished points.
#[derive(Debug, Clone)]
pub struct AccuracyModel {
    pub source: AccuracySource,
    pub member: Member,
    points: Vec<PublishedPoint>,
    pub top1_fit: Option<Fit>,
    pub top5_fit: Option<Fit>,
}

impl AccuracyModel {
    pub fn new(store: &Store, source: AccuracySource, member: Member) -> Self {
        let points = Self::published_points(store, source, member);
        let own = |metric| Self::fit(&points, source, member, metric);
        let (mut top1_fit, mut top5_fit) = (own(Metric::Top1), own(Metric::Top5));
        if top1_fit.is_none() || top5_fit.is_none() {
            let donor_member = Member::standard(Family::V2);
            let donor_points = Self::published_points(store, AccuracySource::Slim, donor_member);
            let borrow = |metric| {
                let donor = Self::fit(&donor_points, AccuracySource::Slim, donor_member, metric)?;
                Self::shifted(&donor, &points, source, member, metric)
            };
            top1_fit = top1_fit.or_else(|| borrow(Metric::Top1));
            top5_fit = top5_fit.or_else(|| borrow(Metric::Top5));
        }
        AccuracyModel {
            source,
            member,
            points,
            top1_fit,
            top5_fit,
        }
    }

    fn published_points(store: &Store, source: AccuracySource, member: Member) -> Vec<PublishedPoint> {
        let mut points: Vec<PublishedPoint> = Vec::new();
        for row in store.models.iter().filter(|r| source.matches(r, member)) {
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
                label: format!("{} {}, {}", row.source, row.table, row.model),
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

    /// Where the member's points come from, as fit descriptions name them: "slim-v2 v2".
    fn points_name(source: AccuracySource, member: Member) -> String {
        format!("{} {}", source.source_id(member.family), member.name())
    }

    fn fit(points: &[PublishedPoint], source: AccuracySource, member: Member, metric: Metric) -> Option<Fit> {
        let data = Self::data(points, metric);
        let terms = if data.len() >= 12 { 6 } else { 3 };
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
        let (loo_mean_abs, loo_max_abs) = loo_summary(&errors);
        let shape = if terms == 6 { "quadratic" } else { "linear" };
        let (alpha_range, resolution_range) = Fit::span(&data);
        Some(Fit {
            alpha_range,
            resolution_range,
            description: format!(
                "estimate: {shape} fit of {} in (ln alpha, ln resolution) over {} published points of {} (leave-one-out error mean {loo_mean_abs:.2}, max {loo_max_abs:.2} points)",
                metric.name(),
                data.len(),
                Self::points_name(source, member)
            ),
            coefficients,
            points: data.len(),
            loo_mean_abs,
            loo_max_abs,
        })
    }

    /// `donor` moved up or down to pass through `points` on average; its leave-one-out error
    /// is that of the shift (each point predicted from a shift fitted to the others).
    fn shifted(
        donor: &Fit,
        points: &[PublishedPoint],
        source: AccuracySource,
        member: Member,
        metric: Metric,
    ) -> Option<Fit> {
        let data = Self::data(points, metric);
        if data.len() < 2 {
            return None;
        }
        let residual = |p: &(f64, u32, f64)| p.2 - predict(&donor.coefficients, p.0, p.1);
        let residuals: Vec<f64> = data.iter().map(residual).collect();
        let total: f64 = residuals.iter().sum();
        let shift = total / data.len() as f64;
        let errors: Vec<f64> = residuals
            .iter()
            .map(|r| (r - (total - r) / (data.len() - 1) as f64).abs())
            .collect();
        let (loo_mean_abs, loo_max_abs) = loo_summary(&errors);
        let mut coefficients = donor.coefficients.clone();
        coefficients[0] += shift;
        Some(Fit {
            alpha_range: donor.alpha_range,
            resolution_range: donor.resolution_range,
            description: format!(
                "estimate: the TF-slim v2 fit of {} (ln alpha, ln resolution; {} points) shifted by {shift:+.2} to the {} published points of {} (leave-one-out error mean {loo_mean_abs:.2}, max {loo_max_abs:.2} points)",
                metric.name(),
                donor.points,
                data.len(),
                Self::points_name(source, member)
            ),
            coefficients,
            points: data.len(),
            loo_mean_abs,
            loo_max_abs,
        })
    }

    /// The published figure for (alpha, resolution), else the fit's estimate, else None.
    pub fn lookup(&self, alpha: f64, resolution: u32, metric: Metric) -> Option<Accuracy> {
        let published = self
            .points
            .iter()
            .find(|p| (p.alpha - alpha).abs() < 1e-9 && p.resolution == resolution)
            .and_then(|p| {
                Some(Accuracy {
                    value: p.metric(metric)?,
                    source: p.label.clone(),
                    estimated: false,
                    extrapolated: false,
                })
            });
        published.or_else(|| {
            let fit = match metric {
                Metric::Top1 => self.top1_fit.as_ref(),
                Metric::Top5 => self.top5_fit.as_ref(),
            }?;
            let outside = fit.extrapolation(alpha, resolution);
            Some(Accuracy {
                value: predict(&fit.coefficients, alpha, resolution),
                source: match &outside {
                    Some(outside) => format!("{}; EXTRAPOLATED: {outside}", fit.description),
                    None => fit.description.clone(),
                },
                estimated: true,
                extrapolated: outside.is_some(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sweep::member::ALL as ALL_MEMBERS;

    const V1: Member = Member::standard(Family::V1);

    #[test]
    fn published_points_come_from_the_table() {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, V1);
        let a = model.lookup(0.5, 160, Metric::Top1).unwrap();
        assert_eq!(a.value, 59.1);
        assert!(!a.estimated);
        assert!(a.source.contains("MobileNet_v1_0.50_160"));
        assert_eq!(model.lookup(1.0, 224, Metric::Top5).unwrap().value, 89.9);
    }

    #[test]
    fn unpublished_points_are_estimated_and_labelled() {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, V1);
        let e = model.lookup(0.6, 176, Metric::Top1).unwrap();
        assert!(e.estimated);
        assert!(e.source.starts_with("estimate: quadratic"));
        // Between the neighbours 0.5/160 (59.1) and 0.75/192 (67.2).
        assert!(e.value > 59.1 && e.value < 67.2, "{}", e.value);
        let fit = model.top1_fit.unwrap();
        assert_eq!(fit.points, 16);
        assert!(fit.loo_mean_abs < 0.5 && fit.loo_max_abs < 1.0, "{fit:?}");
    }

    #[test]
    fn every_source_has_a_fit() {
        for source in [
            AccuracySource::Slim,
            AccuracySource::SlimQuant,
            AccuracySource::Paper,
            AccuracySource::Tflite,
        ] {
            let model = AccuracyModel::new(&Store::embedded(), source, V1);
            assert!(model.top1_fit.is_some(), "{source:?}");
            assert!(model.lookup(0.25, 128, Metric::Top1).is_some());
        }
    }

    #[test]
    fn v2_has_its_own_quadratic_fit() {
        let model = AccuracyModel::new(
            &Store::embedded(),
            AccuracySource::Slim,
            Member::standard(Family::V2),
        );
        let fit = model.top1_fit.as_ref().unwrap();
        assert_eq!(fit.points, 22);
        assert!(fit.description.contains("quadratic") && fit.description.contains("slim-v2 v2"));
        assert!(fit.loo_mean_abs < 1.0, "{fit:?}");
        let published = model.lookup(1.4, 224, Metric::Top1).unwrap();
        assert_eq!((published.value, published.estimated), (75.0, false));
        let estimate = model.lookup(1.0, 176, Metric::Top1).unwrap();
        // Between 1.0/160 (68.8) and 1.0/192 (70.7).
        assert!(
            estimate.estimated && estimate.value > 68.8 && estimate.value < 70.7,
            "{estimate:?}"
        );
    }

    #[test]
    fn v3_borrows_the_v2_shape_shifted_to_its_points() {
        let store = Store::embedded();
        let v2 = AccuracyModel::new(&store, AccuracySource::Slim, Member::standard(Family::V2));
        let v3 = AccuracyModel::new(&store, AccuracySource::Slim, Member::standard(Family::V3Large));
        let fit = v3.top1_fit.as_ref().unwrap();
        assert_eq!(fit.points, 2);
        assert!(fit.description.contains("shifted") && fit.description.contains("slim-v3 v3-large"));
        // Same shape: only the constant differs.
        let donor = v2.top1_fit.as_ref().unwrap();
        assert_eq!(fit.coefficients[1..], donor.coefficients[1..]);
        // The published points stay published; 0.75-224 (73.3) and 1.0-224 (75.2) bracket 0.9.
        assert_eq!(v3.lookup(1.0, 224, Metric::Top1).unwrap().value, 75.2);
        let mid = v3.lookup(0.9, 224, Metric::Top1).unwrap();
        assert!(mid.estimated && mid.value > 73.3 && mid.value < 75.2, "{mid:?}");
        // Lower resolution costs accuracy, as in v2.
        assert!(v3.lookup(1.0, 160, Metric::Top1).unwrap().value < 75.2);
        // Outside v2's grid the estimate says it is an extrapolation.
        assert!(!mid.extrapolated && !mid.source.contains("EXTRAPOLATED"));
        let far = v3.lookup(0.1, 224, Metric::Top1).unwrap();
        assert!(far.extrapolated);
        assert!(
            far.source
                .ends_with("EXTRAPOLATED: alpha 0.1 outside the fitted 0.35-1.4"),
            "{far:?}"
        );
        // No top-5 is published for v3, so there is nothing to shift to.
        assert!(v3.top5_fit.is_none() && v3.lookup(1.0, 224, Metric::Top5).is_none());
    }

    #[test]
    fn a_single_point_gives_no_estimate() {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, ALL_MEMBERS[4]);
        assert!(model.top1_fit.is_none());
        assert_eq!(model.lookup(1.0, 224, Metric::Top1).unwrap().value, 72.3);
        assert!(model.lookup(1.0, 192, Metric::Top1).is_none());
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

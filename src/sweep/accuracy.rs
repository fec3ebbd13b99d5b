//! ImageNet accuracy for a sweep point: the published figure when a source prints one, else an
//! estimate from a least-squares fit over that source's published grid, labelled as estimated.
//!
//! The fit: top-1 (or top-5) as a quadratic in u = ln(alpha) and v = ln(resolution),
//! `a0 + a1 u + a2 v + a3 u^2 + a4 v^2 + a5 u v`, when the source has at least 12 published
//! points (the TF-slim and TFLite grids have 16); with fewer (the paper's 8) the linear
//! `a0 + a1 u + a2 v`. Its leave-one-out error on the published points is computed at run time
//! and reported with every estimate. Estimates are clamped to [0, 100].

use serde::Serialize;

use crate::published::{PublishedModel, Store};

/// Which published accuracy table a sweep reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccuracySource {
    /// TF-slim float checkpoints (mobilenet_v1.md), the default.
    Slim,
    /// TF-slim quantization-aware checkpoints.
    SlimQuant,
    /// The paper's Tables 4-9.
    Paper,
    /// TFLite hosted float models.
    Tflite,
}

impl AccuracySource {
    /// How reports name the source.
    pub fn title(self) -> &'static str {
        match self {
            AccuracySource::Slim => "TF-slim float checkpoints (slim-v1)",
            AccuracySource::SlimQuant => "TF-slim quantized checkpoints (slim-v1)",
            AccuracySource::Paper => "the paper, Tables 4-9 (paper-v1)",
            AccuracySource::Tflite => "TFLite hosted float models (tflite-hosted)",
        }
    }

    fn matches(self, row: &PublishedModel) -> bool {
        let (source, quantized) = match self {
            AccuracySource::Slim => ("slim-v1", false),
            AccuracySource::SlimQuant => ("slim-v1", true),
            AccuracySource::Paper => ("paper-v1", false),
            AccuracySource::Tflite => ("tflite-hosted", false),
        };
        row.source == source
            && row.quantized == quantized
            && row.family == "v1"
            && row.variant == "standard"
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
}

/// Which accuracy metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Top1,
    Top5,
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
    pub description: String,
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

/// Published accuracy tables of one source, with the fit used for unpublished points.
#[derive(Debug, Clone)]
pub struct AccuracyModel {
    pub source: AccuracySource,
    points: Vec<PublishedPoint>,
    pub top1_fit: Option<Fit>,
    pub top5_fit: Option<Fit>,
}

impl AccuracyModel {
    pub fn new(store: &Store, source: AccuracySource) -> Self {
        let mut points: Vec<PublishedPoint> = Vec::new();
        for row in store.models.iter().filter(|r| source.matches(r)) {
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
        let top1_fit = Self::fit(&points, source, Metric::Top1);
        let top5_fit = Self::fit(&points, source, Metric::Top5);
        AccuracyModel {
            source,
            points,
            top1_fit,
            top5_fit,
        }
    }

    fn fit(points: &[PublishedPoint], source: AccuracySource, metric: Metric) -> Option<Fit> {
        let data: Vec<(f64, u32, f64)> = points
            .iter()
            .filter_map(|p| Some((p.alpha, p.resolution, p.metric(metric)?)))
            .collect();
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
        let loo_mean_abs = errors.iter().sum::<f64>() / errors.len() as f64;
        let loo_max_abs = errors.iter().copied().fold(0.0, f64::max);
        let shape = if terms == 6 { "quadratic" } else { "linear" };
        let metric_name = if metric == Metric::Top1 { "top-1" } else { "top-5" };
        Some(Fit {
            description: format!(
                "estimate: {shape} fit of {metric_name} in (ln alpha, ln resolution) over {} published points of {} (leave-one-out error mean {loo_mean_abs:.2}, max {loo_max_abs:.2} points)",
                data.len(),
                source.title()
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
                })
            });
        published.or_else(|| {
            let fit = match metric {
                Metric::Top1 => self.top1_fit.as_ref(),
                Metric::Top5 => self.top5_fit.as_ref(),
            }?;
            Some(Accuracy {
                value: predict(&fit.coefficients, alpha, resolution),
                source: fit.description.clone(),
                estimated: true,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_points_come_from_the_table() {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim);
        let a = model.lookup(0.5, 160, Metric::Top1).unwrap();
        assert_eq!(a.value, 59.1);
        assert!(!a.estimated);
        assert!(a.source.contains("MobileNet_v1_0.50_160"));
        assert_eq!(model.lookup(1.0, 224, Metric::Top5).unwrap().value, 89.9);
    }

    #[test]
    fn unpublished_points_are_estimated_and_labelled() {
        let model = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim);
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
            let model = AccuracyModel::new(&Store::embedded(), source);
            assert!(model.top1_fit.is_some(), "{source:?}");
            assert!(model.lookup(0.25, 128, Metric::Top1).is_some());
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

//! Loading the embedded CSV files into typed rows.

use serde::{Deserialize, Serialize};

use crate::arch::LayerKind;
use crate::cost::Convention;

const SOURCES: &str = include_str!("../../presets/published/sources.csv");
const MODELS: &str = include_str!("../../presets/published/models.csv");
const TABLE2: &str = include_str!("../../presets/published/v1-paper-table2.csv");
const TABLE3: &str = include_str!("../../presets/published/v1-paper-table3.csv");
const SLIM_LAYERS: &str = include_str!("../../presets/published/v1-slim-layers.csv");

/// A source document (`sources.csv`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub id: String,
    pub title: String,
    pub location: String,
}

/// One published model entry (`models.csv`). Figures are kept as printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedModel {
    pub source: String,
    pub table: String,
    pub model: String,
    pub family: String,
    pub alpha: Option<f64>,
    pub resolution: Option<u32>,
    pub variant: String,
    pub quantized: bool,
    pub top1: Option<String>,
    pub top5: Option<String>,
    pub mult_adds_m: Option<String>,
    pub params_m: Option<String>,
    /// How the source counts parameters; a name that is not a [`Convention`] fails the load.
    pub params_convention: Option<Convention>,
    /// The classifier width the printed counts correspond to: 1000 (ImageNet), or 1001 where
    /// the count includes TensorFlow's background class. Empty where no count is printed.
    pub classes: Option<u32>,
    pub size_mb: Option<String>,
    pub latency: Option<String>,
    pub erratum: Option<String>,
    pub note: Option<String>,
}

impl PublishedModel {
    /// The latency column as (label, milliseconds) pairs.
    pub fn latencies(&self) -> Vec<(String, f64)> {
        self.latency
            .as_deref()
            .unwrap_or("")
            .split(';')
            .filter_map(|pair| {
                let (label, ms) = pair.split_once('=')?;
                Some((label.trim().to_string(), ms.trim().parse().ok()?))
            })
            .collect()
    }

    pub fn top1_value(&self) -> Option<f64> {
        self.top1.as_deref().and_then(|s| s.parse().ok())
    }

    pub fn top5_value(&self) -> Option<f64> {
        self.top5.as_deref().and_then(|s| s.parse().ok())
    }
}

/// Paper Table 2: share of mult-adds and parameters per layer kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperTable2Row {
    pub source: String,
    pub table: String,
    pub kind: LayerKind,
    pub mult_adds_pct: String,
    pub params_pct: String,
    pub erratum: Option<String>,
}

/// Paper Table 3: one 14x14x512 layer under cumulative modifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperTable3Row {
    pub source: String,
    pub table: String,
    pub modification: String,
    pub kernel: u32,
    pub in_channels: u32,
    pub out_channels: u32,
    pub feature_size: u32,
    pub separable: bool,
    pub mult_adds_m: String,
    pub params_m: String,
}

/// TF-slim's per-layer docstring table for 1.0/224.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlimLayerRow {
    pub source: String,
    pub table: String,
    pub layer: String,
    pub kind: String,
    pub params: u64,
    pub mult_adds: u64,
}

/// Every published table, parsed.
#[derive(Debug, Clone)]
pub struct Store {
    pub sources: Vec<Source>,
    pub models: Vec<PublishedModel>,
    pub table2: Vec<PaperTable2Row>,
    pub table3: Vec<PaperTable3Row>,
    pub slim_layers: Vec<SlimLayerRow>,
}

fn parse<T: for<'de> Deserialize<'de>>(name: &str, text: &str) -> Vec<T> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .enumerate()
        // The files are compiled in and checked by the tests below, so a bad row is a build bug.
        .map(|(i, row)| row.unwrap_or_else(|e| panic!("presets/published/{name} row {}: {e}", i + 2)))
        .collect()
}

impl Store {
    /// The embedded tables.
    pub fn embedded() -> Store {
        Store {
            sources: parse("sources.csv", SOURCES),
            models: parse("models.csv", MODELS),
            table2: parse("v1-paper-table2.csv", TABLE2),
            table3: parse("v1-paper-table3.csv", TABLE3),
            slim_layers: parse("v1-slim-layers.csv", SLIM_LAYERS),
        }
    }

    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The model rows matching every given filter, in file order (the `presets` listing).
    pub fn select(
        &self,
        family: Option<&str>,
        alpha: Option<f64>,
        resolution: Option<u32>,
        source: Option<&str>,
    ) -> Vec<&PublishedModel> {
        self.models
            .iter()
            .filter(|m| family.is_none_or(|f| m.family == f))
            .filter(|m| alpha.is_none_or(|a| m.alpha.is_some_and(|ma| (ma - a).abs() < 1e-9)))
            .filter(|m| resolution.is_none_or(|r| m.resolution == Some(r)))
            .filter(|m| source.is_none_or(|s| m.source == s))
            .collect()
    }
}

/// A printed figure as (value, one unit of its last printed digit): "4.24" -> (4.24, 0.01).
/// A trailing "G" marks a figure printed in billions, returned in millions with its precision:
/// "0.22G" -> (220, 10) (torchvision prints GFLOPS to two decimals).
pub fn parse_figure(printed: &str) -> Option<(f64, f64)> {
    let text = printed.trim();
    let (digits, scale) = match text.strip_suffix('G') {
        Some(billions) => (billions, 1000.0),
        None => (text, 1.0),
    };
    let value: f64 = digits.parse().ok()?;
    let decimals = digits.split_once('.').map_or(0, |(_, frac)| frac.len());
    Some((value * scale, 10f64.powi(-(decimals as i32)) * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_parses_and_every_row_has_a_known_source() {
        let store = Store::embedded();
        assert!(store.models.len() > 140);
        assert_eq!(store.table2.len(), 4);
        assert_eq!(store.table3.len(), 4);
        assert_eq!(store.slim_layers.len(), 27);
        let ids: Vec<&str> = store.models.iter().map(|m| m.source.as_str()).collect();
        for id in ids {
            assert!(store.source(id).is_some(), "unknown source {id}");
        }
        for m in &store.models {
            assert!(!m.table.is_empty(), "{} has no table", m.model);
        }
    }

    /// Every printed count names its convention and class count; only TF-slim's v1 checkpoint
    /// convention counts the background class.
    #[test]
    fn every_count_has_a_parameter_convention_and_a_class_count() {
        for m in &Store::embedded().models {
            let counted = m.mult_adds_m.is_some() || m.params_m.is_some();
            assert_eq!(m.classes.is_some(), counted, "{} {}", m.source, m.model);
            if m.params_m.is_some() {
                let convention = m.params_convention.unwrap_or_else(|| panic!("{}", m.model));
                assert_eq!(
                    convention.quantity(),
                    crate::cost::Quantity::Parameters,
                    "{}",
                    m.model
                );
                let slim = convention == Convention::ParamsSlimCheckpoint;
                assert_eq!(m.classes == Some(1001), slim, "{} {}", m.source, m.model);
            }
        }
    }

    /// A misspelt convention stops the load at its row instead of falling back to a default.
    #[test]
    #[should_panic(expected = "unknown counting convention 'params_with_se'")]
    fn a_misspelt_convention_fails_the_load() {
        let mut lines = MODELS.lines();
        let header = lines.next().unwrap();
        let row = lines
            .find(|l| l.contains(",params,"))
            .unwrap()
            .replacen(",params,", ",params_with_se,", 1);
        parse::<PublishedModel>("models.csv", &format!("{header}\n{row}\n"));
    }

    #[test]
    fn select_filters_on_every_given_field() {
        let store = Store::embedded();
        let rows = store.select(Some("v1"), Some(0.75), None, Some("slim-v1"));
        assert_eq!(rows.len(), 8);
        assert!(rows.iter().all(|m| m.family == "v1" && m.source == "slim-v1"));
        assert!(rows.iter().all(|m| m.alpha == Some(0.75)));
        let at_160 = store.select(None, None, Some(160), None);
        assert!(at_160.iter().all(|m| m.resolution == Some(160)));
        assert!(at_160.iter().any(|m| m.family == "v2"));
        assert_eq!(store.select(None, None, None, None).len(), store.models.len());
        assert!(store.select(Some("v4"), None, None, None).is_empty());
    }

    #[test]
    fn slim_grid_is_complete() {
        let store = Store::embedded();
        let slim: Vec<_> = store.models.iter().filter(|m| m.source == "slim-v1").collect();
        assert_eq!(slim.len(), 32);
        assert_eq!(slim.iter().filter(|m| m.quantized).count(), 16);
    }

    #[test]
    fn figures_keep_their_precision() {
        assert_eq!(parse_figure("4.24"), Some((4.24, 0.01)));
        assert_eq!(parse_figure("569"), Some((569.0, 1.0)));
        assert_eq!(parse_figure("x"), None);
        assert_eq!(parse_figure("0.22G"), Some((220.0, 10.0)));
        assert_eq!(parse_figure("G"), None);
        let tflite = Store::embedded();
        let row = tflite
            .models
            .iter()
            .find(|m| m.model == "Mobilenet_V1_1.0_224")
            .unwrap();
        assert_eq!(row.latencies()[0].1, 24.0);
    }
}

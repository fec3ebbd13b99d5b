//! The v1 paper's Table 2 (resource per layer type) against the computed shares.

use serde::Serialize;

use super::compare::Status;
use super::table::{Store, parse_figure};
use crate::arch::{Config, LayerKind};
use crate::cost::KindShare;

/// A row of the paper's Table 2 against the computed share of the same layer kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table2Check {
    pub kind: LayerKind,
    pub mult_adds_pct: FigureCheckPct,
    pub params_pct: FigureCheckPct,
    pub erratum: Option<String>,
}

/// A printed percentage against the computed one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureCheckPct {
    pub published: String,
    pub computed: f64,
    pub status: Status,
}

fn check_pct(printed: &str, computed: f64, erratum: bool) -> FigureCheckPct {
    let agrees =
        parse_figure(printed).is_some_and(|(value, unit)| (value - computed).abs() <= unit / 2.0 + 1e-9);
    FigureCheckPct {
        published: printed.to_string(),
        computed,
        status: Status::of(agrees, erratum),
    }
}

/// The paper's Table 2 checked against `by_kind`, for the configuration it describes
/// (1.0 MobileNet-224, 1000 classes); empty for any other.
pub fn compare_table2(store: &Store, config: &Config, by_kind: &[KindShare]) -> Vec<Table2Check> {
    if *config != Config::paper(1.0, 224).expect("the paper's configuration is valid") {
        return Vec::new();
    }
    store
        .table2
        .iter()
        .filter_map(|row| {
            let share = by_kind.iter().find(|s| s.kind == row.kind)?;
            let erratum = row.erratum.is_some();
            Some(Table2Check {
                kind: row.kind,
                mult_adds_pct: check_pct(&row.mult_adds_pct, share.mult_adds_pct, erratum),
                params_pct: check_pct(&row.params_pct, share.params_pct, erratum),
                erratum: row.erratum.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Activation, Layer, Role, Shape};
    use crate::cost::{analyze, layer_cost};

    #[test]
    fn table2_matches_except_the_recorded_digit_swap() {
        let config = Config::paper(1.0, 224).unwrap();
        let report = analyze(&config);
        let checks = compare_table2(&Store::embedded(), &config, &report.by_kind);
        assert_eq!(checks.len(), 4);
        for c in &checks {
            assert_eq!(c.params_pct.status, Status::Agrees, "{c:?}");
            let expected = if c.kind == LayerKind::Conv {
                Status::Erratum
            } else {
                Status::Agrees
            };
            assert_eq!(c.mult_adds_pct.status, expected, "{c:?}");
        }
        assert!(compare_table2(&Store::embedded(), &config.with_classes(1001), &report.by_kind).is_empty());
    }

    /// Table 3: one 3x3 layer with M = N = 512 at 14x14, then separable, alpha 0.75, rho 0.714.
    #[test]
    fn table3_single_layer_rows() {
        for row in Store::embedded().table3 {
            let shape = |c| Shape::new(row.feature_size, row.feature_size, c);
            let layer = |role: Role, kernel, input: Shape, out| Layer {
                name: String::new(),
                block: None,
                kind: role.kind(),
                role,
                kernel,
                stride: 1,
                input,
                output: shape(out),
                batch_norm: true,
                bias: false,
                activation: Activation::Relu6,
                residual_from: None,
                se_channels: None,
            };
            let (macs, params) = if row.separable {
                let dw = layer_cost(&layer(
                    Role::Depthwise,
                    row.kernel,
                    shape(row.in_channels),
                    row.in_channels,
                ));
                let pw = layer_cost(&layer(
                    Role::Pointwise,
                    1,
                    shape(row.in_channels),
                    row.out_channels,
                ));
                (dw.mult_adds + pw.mult_adds, dw.params + pw.params)
            } else {
                let c = layer_cost(&layer(
                    Role::Conv,
                    row.kernel,
                    shape(row.in_channels),
                    row.out_channels,
                ));
                (c.mult_adds, c.params)
            };
            let (pub_macs, unit) = parse_figure(&row.mult_adds_m).unwrap();
            assert!(
                (pub_macs - macs as f64 / 1e6).abs() <= unit / 2.0,
                "{}: {macs}",
                row.modification
            );
            let (pub_params, unit) = parse_figure(&row.params_m).unwrap();
            assert!(
                (pub_params - params as f64 / 1e6).abs() <= unit / 2.0,
                "{}: {params}",
                row.modification
            );
        }
    }
}

//! Whole-network cost: per-layer rows, totals under every parameter convention, the Table 2
//! breakdown by layer kind and the depthwise-separable saving.

use serde::Serialize;

use super::layer::{LayerCost, SeparableSaving, layer_cost, separable_saving};
use crate::arch::{Config, Layer, LayerKind, instantiate};

/// One instantiated layer with its cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    pub layer: Layer,
    pub cost: LayerCost,
}

/// Network totals. Parameter conventions, from the fewest values to the most:
/// - `params`: convolution and FC weights only (the paper's Table 2 convention);
/// - `params_deployed`: BatchNorm folded into per-channel conv biases, plus the FC bias: the
///   element count of a deployed weight file such as the shipped ones;
/// - `params_trainable`: weights + BatchNorm gamma and beta + FC bias (PyTorch/timm);
/// - `params_keras`: trainable + BatchNorm moving mean and variance (Keras "Total params").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Multiply-adds, paper convention.
    pub mult_adds: u64,
    /// 2 x mult-adds: one multiply and one add each.
    pub flops: u64,
    pub params: u64,
    pub params_trainable: u64,
    pub params_keras: u64,
    pub params_deployed: u64,
    /// Weights stored at 4 bytes each (params_deployed x 4).
    pub weight_bytes_f32: u64,
    /// params_deployed x 2.
    pub weight_bytes_f16: u64,
    /// params_deployed x 1 (per-tensor scales and zero points not counted).
    pub weight_bytes_int8: u64,
    /// Peak activation memory of batch-1 f32 inference: the largest input + output of one layer,
    /// in bytes (buffers of earlier layers are dead by then).
    pub activation_peak_bytes: u64,
    /// Sum over layers of output activation elements (batch 1).
    pub activation_elements: u64,
    /// BatchNorm channels (each contributes 1, 2 or 4 values depending on the convention).
    pub bn_channels: u64,
}

impl Totals {
    /// TF-slim's published checkpoint count (an inference, not documented by TF-slim): weights +
    /// FC bias + 3 values per BatchNorm channel (beta, moving mean, moving variance).
    pub fn params_slim_checkpoint(&self) -> u64 {
        self.params_deployed + 2 * self.bn_channels
    }

    /// The parameter count under a named convention, if the name is one of ours.
    pub fn params_by_convention(&self, convention: &str) -> Option<u64> {
        Some(match convention {
            "params" => self.params,
            "params_trainable" => self.params_trainable,
            "params_keras" => self.params_keras,
            "params_deployed" => self.params_deployed,
            "slim_checkpoint" => self.params_slim_checkpoint(),
            _ => return None,
        })
    }
}

/// The share of one layer kind (the paper's Table 2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KindShare {
    pub kind: LayerKind,
    pub layers: usize,
    pub mult_adds: u64,
    /// Weights only, as in Table 2.
    pub params: u64,
    pub mult_adds_pct: f64,
    pub params_pct: f64,
}

/// The depthwise-separable layers together against standard convolutions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SavingTotal {
    pub separable_mult_adds: u64,
    pub standard_mult_adds: u64,
    pub ratio: f64,
    /// standard / separable: how many times less computation.
    pub reduction: f64,
    /// Mult-adds of the whole network if every separable layer were a standard convolution.
    pub network_with_standard_convs: u64,
}

/// The full cost analysis of one configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub config: Config,
    pub layers: Vec<LayerRow>,
    pub totals: Totals,
    pub by_kind: Vec<KindShare>,
    pub separable: Vec<SeparableSaving>,
    /// None when the variant has no separable layers (full-conv).
    pub separable_total: Option<SavingTotal>,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Instantiates `config` and counts everything.
pub fn analyze(config: &Config) -> CostReport {
    let layers: Vec<LayerRow> = instantiate(config)
        .into_iter()
        .map(|layer| LayerRow {
            cost: layer_cost(&layer),
            layer,
        })
        .collect();

    let sum = |f: fn(&LayerCost) -> u64| layers.iter().map(|r| f(&r.cost)).sum::<u64>();
    let mult_adds = sum(|c| c.mult_adds);
    let params = sum(|c| c.weights);
    let bn_channels = sum(|c| c.bn_channels);
    let fc_bias = sum(|c| c.fc_bias);
    let params_deployed = params + bn_channels + fc_bias;
    let activation_peak_elements = layers
        .iter()
        .map(|r| r.cost.input_elements + r.cost.output_elements)
        .max()
        .unwrap_or(0);
    let totals = Totals {
        mult_adds,
        flops: 2 * mult_adds,
        params,
        params_trainable: params + 2 * bn_channels + fc_bias,
        params_keras: params + 4 * bn_channels + fc_bias,
        params_deployed,
        weight_bytes_f32: 4 * params_deployed,
        weight_bytes_f16: 2 * params_deployed,
        weight_bytes_int8: params_deployed,
        activation_peak_bytes: 4 * activation_peak_elements,
        activation_elements: sum(|c| c.output_elements),
        bn_channels,
    };

    let by_kind = LayerKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let rows: Vec<&LayerRow> = layers.iter().filter(|r| r.layer.kind == kind).collect();
            if rows.is_empty() {
                return None;
            }
            let kind_mult_adds = rows.iter().map(|r| r.cost.mult_adds).sum();
            let kind_params = rows.iter().map(|r| r.cost.weights).sum();
            Some(KindShare {
                kind,
                layers: rows.len(),
                mult_adds: kind_mult_adds,
                params: kind_params,
                mult_adds_pct: percent(kind_mult_adds, mult_adds),
                params_pct: percent(kind_params, params),
            })
        })
        .collect();

    let separable: Vec<SeparableSaving> = layers
        .windows(2)
        .filter(|w| w[0].layer.kind == LayerKind::Depthwise && w[1].layer.kind == LayerKind::Pointwise)
        .map(|w| separable_saving(&w[0].layer, &w[1].layer))
        .collect();
    let separable_total = (!separable.is_empty()).then(|| {
        let sep: u64 = separable.iter().map(|s| s.separable_mult_adds).sum();
        let std: u64 = separable.iter().map(|s| s.standard_mult_adds).sum();
        SavingTotal {
            separable_mult_adds: sep,
            standard_mult_adds: std,
            ratio: sep as f64 / std as f64,
            reduction: std as f64 / sep as f64,
            network_with_standard_convs: mult_adds - sep + std,
        }
    });

    CostReport {
        config: *config,
        layers,
        totals,
        by_kind,
        separable,
        separable_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Variant;

    fn paper(alpha: f64, res: u32) -> CostReport {
        analyze(&Config::paper(alpha, res).unwrap())
    }

    /// Rounds to the nearest `unit` (half away from zero), in integers.
    fn round_to(value: u64, unit: u64) -> u64 {
        (value + unit / 2) / unit
    }

    #[test]
    fn issue_figures_for_1_0_224() {
        let t = paper(1.0, 224).totals;
        assert_eq!(t.mult_adds, 568_740_352);
        assert_eq!(t.flops, 1_137_480_704);
        assert_eq!(t.params, 4_209_088);
        assert_eq!(t.params_trainable, 4_231_976);
        assert_eq!(t.params_keras, 4_253_864);
        assert_eq!(t.params_deployed, 4_221_032);
        let t1001 = analyze(&Config::paper(1.0, 224).unwrap().with_classes(1001)).totals;
        assert_eq!(t1001.params_deployed, 4_222_057);
        assert_eq!(t1001.params_slim_checkpoint(), 4_243_945);
    }

    #[test]
    fn tf_slim_body_totals() {
        for (alpha, res, params, macs) in [
            (1.0, 224, 3_185_088, 567_716_352),
            (0.75, 128, 1_800_144, 106_002_432),
        ] {
            let r = paper(alpha, res);
            let body = r.layers.iter().filter(|l| l.layer.block.is_some());
            let (p, m) = body.fold((0, 0), |(p, m), l| (p + l.cost.weights, m + l.cost.mult_adds));
            assert_eq!((p, m), (params, macs), "{alpha}/{res}");
        }
    }

    #[test]
    fn parameter_conventions_across_widths() {
        for (alpha, params, trainable, keras) in [
            (1.0, 4_209_088, 4_231_976, 4_253_864),
            (0.75, 2_568_144, 2_585_560, 2_601_976),
            (0.5, 1_319_648, 1_331_592, 1_342_536),
            (0.25, 463_600, 470_072, 475_544),
        ] {
            let t = paper(alpha, 224).totals;
            assert_eq!(
                (t.params, t.params_trainable, t.params_keras),
                (params, trainable, keras)
            );
        }
        // The shipped files' element counts (1001 classes).
        for (alpha, res, deployed) in [
            (0.25, 128, 467_593),
            (0.5, 160, 1_326_633),
            (0.75, 192, 2_578_121),
        ] {
            let t = analyze(&Config::paper(alpha, res).unwrap().with_classes(1001)).totals;
            assert_eq!(t.params_deployed, deployed);
        }
    }

    #[test]
    fn table2_to_printed_precision() {
        let r = paper(1.0, 224);
        let share = |kind| *r.by_kind.iter().find(|s| s.kind == kind).unwrap();
        let hundredths = |pct: f64| (pct * 100.0).round() as u64;
        let pw = share(LayerKind::Pointwise);
        assert_eq!(
            (hundredths(pw.mult_adds_pct), hundredths(pw.params_pct)),
            (9486, 7459)
        );
        let dw = share(LayerKind::Depthwise);
        assert_eq!(
            (hundredths(dw.mult_adds_pct), hundredths(dw.params_pct)),
            (306, 106)
        );
        let conv = share(LayerKind::Conv);
        // The paper prints 1.19%: a digit swap of 1.91% (the rows must sum to 100%).
        assert_eq!(
            (hundredths(conv.mult_adds_pct), hundredths(conv.params_pct)),
            (191, 2)
        );
        let fc = share(LayerKind::Fc);
        assert_eq!(
            (hundredths(fc.mult_adds_pct), hundredths(fc.params_pct)),
            (18, 2433)
        );
    }

    #[test]
    fn tables_4_to_7_in_printed_precision() {
        let base = Config::paper(1.0, 224).unwrap();
        // Table 4: Conv MobileNet 4866 M mult-adds, 29.3 M params. The whole network computes to
        // 4867.3 M; the printed 4866 is the network without its FC layer (4866.3 M), unlike every
        // other row of the paper, so the published comparison flags it.
        let full = analyze(&base.with_variant(Variant::FullConv)).totals;
        assert_eq!(
            (
                round_to(full.mult_adds, 1_000_000),
                round_to(full.params, 100_000)
            ),
            (4867, 293)
        );
        assert_eq!(round_to(full.mult_adds - 1_024_000, 1_000_000), 4866);
        // Table 5: Shallow 307, 2.9; 0.75 MobileNet 325, 2.6.
        let shallow = analyze(&base.with_variant(Variant::Shallow)).totals;
        assert_eq!(
            (
                round_to(shallow.mult_adds, 1_000_000),
                round_to(shallow.params, 100_000)
            ),
            (307, 29)
        );
        // Table 6 (width) and Table 7 (resolution).
        for (alpha, res, macs, params_tenths) in [
            (1.0, 224, 569, 42),
            (0.75, 224, 325, 26),
            (0.5, 224, 149, 13),
            (0.25, 224, 41, 5),
            (1.0, 192, 418, 42),
        ] {
            let t = paper(alpha, res).totals;
            assert_eq!(
                (round_to(t.mult_adds, 1_000_000), round_to(t.params, 100_000)),
                (macs, params_tenths)
            );
        }
        // Table 7's 290 for 1.0-160 is 290.7 truncated; 186 for 1.0-128.
        assert_eq!(paper(1.0, 160).totals.mult_adds / 1_000_000, 290);
        assert_eq!(round_to(paper(1.0, 128).totals.mult_adds, 1_000_000), 186);
        // Table 9: 0.50 MobileNet-160, 76 M mult-adds, 1.32 M params.
        let t = paper(0.5, 160).totals;
        assert_eq!((t.mult_adds / 1_000_000, round_to(t.params, 10_000)), (76, 132));
    }

    #[test]
    fn layer_sums_equal_totals_and_peak_memory() {
        let r = paper(1.0, 224);
        assert_eq!(
            r.by_kind.iter().map(|k| k.mult_adds).sum::<u64>(),
            r.totals.mult_adds
        );
        assert_eq!(r.by_kind.iter().map(|k| k.params).sum::<u64>(), r.totals.params);
        // Largest: dw_1 input 112x112x32 + output 112x112x32, or conv_0 in+out, or pw_1 32->64.
        assert_eq!(
            r.totals.activation_peak_bytes,
            4 * (112 * 112 * 32 + 112 * 112 * 64)
        );
        assert_eq!(r.totals.weight_bytes_f32, 4 * 4_221_032);
    }

    #[test]
    fn separable_total_at_224() {
        let r = paper(1.0, 224);
        assert_eq!(r.separable.len(), 13);
        let s = r.separable_total.unwrap();
        assert!(s.reduction > 8.0 && s.reduction < 9.0, "{}", s.reduction);
        assert!(
            analyze(&Config::paper(1.0, 224).unwrap().with_variant(Variant::FullConv))
                .separable_total
                .is_none()
        );
    }
}

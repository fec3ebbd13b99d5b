//! Whole-network cost: per-layer rows, totals under every parameter convention, the Table 2
//! breakdown by layer kind, the depthwise-separable saving, and (v2/v3) the expansion convs the
//! first bottlenecks omit.

use serde::Serialize;

use super::layer::{LayerCost, SeparableSaving, layer_cost, separable_saving};
use crate::arch::{Config, Layer, LayerKind, Role, instantiate};

/// One instantiated layer with its cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    pub layer: Layer,
    pub cost: LayerCost,
}

/// Network totals, one field per [`Convention`](super::Convention) (whose `describe()` says
/// what each counts) plus the counts they are built from. The headline `mult_adds` and `params`
/// count every layer the network runs, squeeze-and-excite included; `*_excluding_se` leave it
/// out. Parameter conventions, from the fewest values to the most: `params_excluding_se` <=
/// `params` < `params_deployed` < `params_trainable` < `params_keras`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Totals {
    /// Multiply-adds of every layer, squeeze-and-excite included.
    pub mult_adds: u64,
    /// `mult_adds` - `se_mult_adds`: convolution, depthwise, pointwise and FC layers only.
    pub mult_adds_excluding_se: u64,
    /// Squeeze-and-excite's share of `mult_adds` (v3).
    pub se_mult_adds: u64,
    /// 2 x mult-adds: one multiply and one add each.
    pub flops: u64,
    /// Element-wise operations (residual adds, SE channel multiplies, hard-swish products), never
    /// inside `mult_adds`.
    pub elementwise_ops: u64,
    /// Convolution and FC weights plus squeeze-and-excite's weights and biases.
    pub params: u64,
    /// `params` - `se_params`: convolution and FC weights only (v1 Table 2).
    pub params_excluding_se: u64,
    /// Squeeze-and-excite's share of `params` (v3).
    pub se_params: u64,
    /// params + BatchNorm gamma and beta + the biases of layers without BatchNorm.
    pub params_trainable: u64,
    /// params_trainable + BatchNorm moving mean and variance.
    pub params_keras: u64,
    /// params + one folded bias per BatchNorm channel + the biases of layers without BatchNorm.
    pub params_deployed: u64,
    /// params_deployed + 2 per BatchNorm channel (TF-slim's v1 README counts, an inference).
    pub params_slim_checkpoint: u64,
    /// Weights stored at 4 bytes each (params_deployed x 4).
    pub weight_bytes_f32: u64,
    /// params_deployed x 2.
    pub weight_bytes_f16: u64,
    /// params_deployed x 1 (per-tensor scales and zero points not counted).
    pub weight_bytes_int8: u64,
    /// Peak activation memory of batch-1 f32 inference: the largest input + output of one layer,
    /// in bytes (buffers of earlier layers are dead by then). Residual inputs kept alive across
    /// a block are not added.
    pub activation_peak_bytes: u64,
    /// Sum over layers of output activation elements (batch 1).
    pub activation_elements: u64,
    /// BatchNorm channels (each contributes 1, 2 or 4 values depending on the convention).
    pub bn_channels: u64,
}

/// The share of one layer kind (the v1 paper's Table 2). Squeeze-and-excite is a kind of its
/// own and counts in the shares like any other layer, since its mult-adds and parameters are
/// inside the headline totals the shares divide; v1 has none, so its Table 2 split is the
/// paper's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindShare {
    pub kind: LayerKind,
    pub layers: usize,
    /// The distinct kernel sizes of the kind's layers, ascending (v3 mixes 3x3 and 5x5
    /// depthwise layers; the pool's is its window).
    pub kernels: Vec<u32>,
    pub mult_adds: u64,
    /// Under the headline convention (weights, and SE's weights and biases).
    pub params: u64,
    pub mult_adds_pct: f64,
    pub params_pct: f64,
    /// Element-wise operations of the layers of this kind.
    pub elementwise_ops: u64,
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

/// An inverted residual block built without its 1x1 expansion conv because the expansion would
/// not widen the input (TF-slim `expanded_conv`; v2's first bottleneck, t = 1). The v2 paper's
/// Table 2 can be read as having one; counting it is where the 314 M of tensorflow/models#4516
/// comes from, against the published 300 M.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OmittedExpansion {
    /// The block's depthwise layer, which takes the block input directly.
    pub layer: String,
    pub block: usize,
    /// Mult-adds of a C -> C 1x1 conv at the block's input size.
    pub mult_adds: u64,
    /// Its weights, C * C.
    pub params: u64,
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
    /// v2/v3 blocks without an expansion conv (empty for v1).
    pub omitted_expansions: Vec<OmittedExpansion>,
}

impl CostReport {
    /// Mult-adds with every omitted expansion conv counted.
    pub fn mult_adds_with_omitted_expansions(&self) -> u64 {
        self.totals.mult_adds + self.omitted_expansions.iter().map(|e| e.mult_adds).sum::<u64>()
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Each depthwise layer with the pointwise layer that follows it in the same block (v3 puts its
/// squeeze-and-excite in between): the pairs that form a depthwise separable convolution.
fn separable_pairs(layers: &[LayerRow]) -> Vec<(usize, usize)> {
    layers
        .iter()
        .enumerate()
        .filter(|(_, r)| r.layer.kind == LayerKind::Depthwise)
        .filter_map(|(i, dw)| {
            layers[i + 1..]
                .iter()
                .take_while(|r| r.layer.block == dw.layer.block && r.layer.kind != LayerKind::Depthwise)
                .position(|r| r.layer.kind == LayerKind::Pointwise)
                .map(|offset| (i, i + 1 + offset))
        })
        .collect()
}

/// Inverted residual blocks whose depthwise conv is not preceded by an expansion.
fn omitted_expansions(layers: &[LayerRow]) -> Vec<OmittedExpansion> {
    layers
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            r.layer.role == Role::BottleneckDepthwise && (*i == 0 || layers[i - 1].layer.role != Role::Expand)
        })
        .map(|(_, r)| {
            let input = r.layer.input;
            let c = u64::from(input.c);
            OmittedExpansion {
                layer: r.layer.name.clone(),
                block: r.layer.block.unwrap_or_default(),
                mult_adds: u64::from(input.h) * u64::from(input.w) * c * c,
                params: c * c,
            }
        })
        .collect()
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
    let params = sum(|c| c.params);
    let se_mult_adds = sum(|c| c.se_mult_adds);
    let se_params = sum(|c| c.se_params);
    let bn_channels = sum(|c| c.bn_channels);
    let bias = sum(|c| c.bias);
    let params_deployed = params + bn_channels + bias;
    let activation_peak_elements = layers
        .iter()
        .map(|r| r.cost.input_elements + r.cost.output_elements)
        .max()
        .unwrap_or(0);
    let totals = Totals {
        mult_adds,
        mult_adds_excluding_se: mult_adds - se_mult_adds,
        se_mult_adds,
        flops: 2 * mult_adds,
        elementwise_ops: sum(|c| c.elementwise_ops),
        params,
        params_excluding_se: params - se_params,
        se_params,
        params_trainable: params + 2 * bn_channels + bias,
        params_keras: params + 4 * bn_channels + bias,
        params_deployed,
        // beta, moving mean and moving variance: the folded bias plus two more per channel.
        params_slim_checkpoint: params_deployed + 2 * bn_channels,
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
            let total = |f: fn(&LayerCost) -> u64| rows.iter().map(|r| f(&r.cost)).sum::<u64>();
            let kind_mult_adds = total(|c| c.mult_adds);
            let kind_params = total(|c| c.params);
            let mut kernels: Vec<u32> = rows.iter().map(|r| r.layer.kernel).collect();
            kernels.sort_unstable();
            kernels.dedup();
            Some(KindShare {
                kind,
                layers: rows.len(),
                kernels,
                mult_adds: kind_mult_adds,
                params: kind_params,
                mult_adds_pct: percent(kind_mult_adds, mult_adds),
                params_pct: percent(kind_params, params),
                elementwise_ops: total(|c| c.elementwise_ops),
            })
        })
        .collect();

    let separable: Vec<SeparableSaving> = separable_pairs(&layers)
        .into_iter()
        .map(|(dw, pw)| separable_saving(&layers[dw].layer, &layers[pw].layer))
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
        omitted_expansions: omitted_expansions(&layers),
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
    use crate::arch::{Activation, Family, Variant};

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
        assert_eq!(t1001.params_slim_checkpoint, 4_243_945);
    }

    #[test]
    fn tf_slim_body_totals() {
        for (alpha, res, params, macs) in [
            (1.0, 224, 3_185_088, 567_716_352),
            (0.75, 128, 1_800_144, 106_002_432),
        ] {
            let r = paper(alpha, res);
            let body = r.layers.iter().filter(|l| l.layer.block.is_some());
            let (p, m) = body.fold((0, 0), |(p, m), l| (p + l.cost.params, m + l.cost.mult_adds));
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
        let share = |kind| r.by_kind.iter().find(|s| s.kind == kind).unwrap();
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

    fn family(family: Family, alpha: f64, res: u32) -> CostReport {
        analyze(&Config::family(family, alpha, res).unwrap())
    }

    fn minimalistic(family: Family, alpha: f64) -> CostReport {
        analyze(&Config::build(family, alpha, 224, 1, 1000, Variant::Standard, true).unwrap())
    }

    /// TF-slim's v2 README table (22 checkpoints): MACs truncated to whole millions and
    /// parameters (conv + FC weights, 1000 classes) to the printed 0.01 M.
    #[test]
    fn tf_slim_v2_table() {
        #[rustfmt::skip]
        let table: [(f64, u32, u64, u64); 22] = [
            (1.4, 224, 582, 606), (1.3, 224, 509, 534),
            (1.0, 224, 300, 347), (1.0, 192, 221, 347), (1.0, 160, 154, 347), (1.0, 128, 99, 347), (1.0, 96, 56, 347),
            (0.75, 224, 209, 261), (0.75, 192, 153, 261), (0.75, 160, 107, 261), (0.75, 128, 69, 261), (0.75, 96, 39, 261),
            (0.5, 224, 97, 195), (0.5, 192, 71, 195), (0.5, 160, 50, 195), (0.5, 128, 32, 195), (0.5, 96, 18, 195),
            (0.35, 224, 59, 166), (0.35, 192, 43, 166), (0.35, 160, 30, 166), (0.35, 128, 20, 166), (0.35, 96, 11, 166),
        ];
        for (alpha, res, macs, params_hundredths) in table {
            let t = family(Family::V2, alpha, res).totals;
            assert_eq!(t.mult_adds / 1_000_000, macs, "{alpha}/{res} MACs");
            assert_eq!(
                round_to(t.params, 10_000),
                params_hundredths,
                "{alpha}/{res} params"
            );
            assert_eq!((t.se_mult_adds, t.se_params), (0, 0));
        }
    }

    #[test]
    fn v2_1_0_224_exact() {
        let r = family(Family::V2, 1.0, 224);
        let t = r.totals;
        assert_eq!(t.mult_adds, 300_774_272);
        assert_eq!(t.params, 3_469_760);
        // torchvision's mobilenet_v2 prints 3,504,872 parameters (trainable convention).
        assert_eq!(t.params_trainable, 3_504_872);
        // The shipped mobilenet_v2_1.0_224 file holds 3,489,097 values (1001 classes, BN folded).
        let t1001 = analyze(&Config::family(Family::V2, 1.0, 224).unwrap().with_classes(1001)).totals;
        assert_eq!(t1001.params_deployed, 3_489_097);
        // v2 paper Table 4: 300 M MAdds and 3.4 M params, both truncated (300.8 M, 3.47 M).
        assert_eq!((t.mult_adds / 1_000_000, t.params / 100_000), (300, 34));
        // Residual adds are the only element-wise ops of v2.
        let adds: u64 = r
            .layers
            .iter()
            .filter(|l| l.layer.residual_from.is_some())
            .map(|l| l.layer.output.elements())
            .sum();
        assert_eq!(t.elementwise_ops, adds);
    }

    #[test]
    fn v2_first_block_without_expansion_is_300_not_314() {
        let r = family(Family::V2, 1.0, 224);
        assert_eq!(r.omitted_expansions.len(), 1);
        let e = &r.omitted_expansions[0];
        assert_eq!(e.layer, "block_0.dw");
        // 112 x 112 x 32 x 32: the "about 13M" of austingg/MobileNet-v2-caffe#2.
        assert_eq!((e.mult_adds, e.params), (12_845_056, 1024));
        assert_eq!(r.mult_adds_with_omitted_expansions(), 313_619_328);
        assert!(paper(1.0, 224).omitted_expansions.is_empty());
    }

    /// The published MobileNetV3 figures are the headline mult_adds and params (squeeze-and-
    /// excite included), within one unit of the printed digit (TF-slim README and v3 paper
    /// Table 3).
    #[test]
    fn v3_published_figures() {
        // (model, printed MAdds in millions, printed params in tenths of millions); None where
        // the printed figure is not reproduced (Small: recorded in presets/published).
        for (report, macs, params_tenths) in [
            (family(Family::V3Large, 1.0, 224), Some(217), Some(54)),
            (family(Family::V3Large, 0.75, 224), Some(155), Some(40)),
            (minimalistic(Family::V3Large, 1.0), Some(209), Some(39)),
            (family(Family::V3Small, 0.75, 224), Some(44), None),
            (minimalistic(Family::V3Small, 1.0), None, Some(20)),
        ] {
            let t = report.totals;
            let c = report.config.label();
            if let Some(macs) = macs {
                assert!(t.mult_adds.abs_diff(macs * 1_000_000) <= 1_000_000, "{c}: {t:?}");
            }
            if let Some(params) = params_tenths {
                assert!(t.params.abs_diff(params * 100_000) <= 100_000, "{c}: {t:?}");
            }
        }
        let large = family(Family::V3Large, 1.0, 224).totals;
        assert_eq!(
            (large.mult_adds, large.se_mult_adds, large.elementwise_ops),
            (216_589_760, 1_507_200, 2_532_032)
        );
        assert_eq!(large.mult_adds_excluding_se, 215_082_560);
        // README 217: the headline, rounded. Paper 219: only with element-wise ops as well
        // (flagged as an erratum in presets/published).
        assert_eq!(round_to(large.mult_adds, 1_000_000), 217);
        assert_eq!(round_to(large.mult_adds + large.elementwise_ops, 1_000_000), 219);
        // The paper's and README's 5.4 M: 5.456 M, printed to one decimal by truncation.
        assert_eq!((large.params, large.params / 100_000), (5_456_352, 54));
        assert_eq!(
            (large.params_excluding_se, large.se_params),
            (3_944_072, 1_512_280)
        );
        // torchvision's mobilenet_v3_large: 5,483,032 parameters (trainable convention).
        assert_eq!(large.params_trainable, 5_483_032);
        // timm's tf_mobilenetv3_small_100: 2.54 M.
        let small = family(Family::V3Small, 1.0, 224).totals;
        assert_eq!(small.params_trainable, 2_542_856);
        // Small 1.0: 56.5 M and 2.53 M, against the printed 66 M and 2.9 M (recorded as unexplained).
        assert_eq!((small.mult_adds, small.params), (56_510_400, 2_528_720));
        assert_eq!(
            (small.mult_adds_excluding_se, small.params_excluding_se),
            (56_051_648, 2_067_080)
        );
    }

    /// v3-large 1.0/224's headline parameters are what its f32 weight file holds, less the
    /// values the headline convention leaves out: one folded bias per BatchNorm channel and the
    /// biases of conv_head and the logits. Counted here from the layers' tensor shapes, apart
    /// from the cost model's formulas.
    #[test]
    fn v3_large_headline_params_are_the_weight_file_less_the_excluded_biases() {
        let r = family(Family::V3Large, 1.0, 224);
        let t = r.totals;
        let mut file = 0u64;
        let mut excluded = 0u64;
        for l in r.layers.iter().map(|row| &row.layer) {
            let (k, cin, cout) = (u64::from(l.kernel), u64::from(l.input.c), u64::from(l.output.c));
            let tensors = match l.kind {
                LayerKind::Conv => k * k * cin * cout,
                LayerKind::Depthwise => k * k * cout,
                LayerKind::Pointwise | LayerKind::Fc => cin * cout,
                // reduce [R, C] + bias [R], expand [C, R] + bias [C]: all in the headline.
                LayerKind::SqueezeExcite => {
                    let se = u64::from(l.se_channels.unwrap());
                    2 * se * cin + se + cin
                }
                LayerKind::AvgPool => 0,
            };
            let bias = if l.batch_norm || l.bias { cout } else { 0 };
            file += tensors + bias;
            excluded += bias;
        }
        assert_eq!(t.weight_bytes_f32, 4 * file);
        assert_eq!(t.weight_bytes_f32, 21_883_328);
        assert_eq!(t.params, file - excluded);
        assert_eq!(file - excluded, 5_456_352);
        // The paper's 5.4 M (Table 3) and the README's: within one unit of the printed digit.
        assert!(t.params.abs_diff(5_400_000) <= 100_000);
    }

    #[test]
    fn se_is_inside_the_headline_and_elementwise_stays_out() {
        for report in [
            family(Family::V3Large, 1.0, 224),
            family(Family::V3Small, 0.75, 160),
            minimalistic(Family::V3Large, 1.0),
        ] {
            let t = report.totals;
            let mut se = (0, 0);
            let mut elementwise = 0;
            for row in &report.layers {
                let (l, c) = (&row.layer, &row.cost);
                if l.kind == LayerKind::SqueezeExcite {
                    let (ch, r) = (u64::from(l.input.c), u64::from(l.se_channels.unwrap()));
                    assert_eq!((c.mult_adds, c.params), (2 * ch * r, 2 * ch * r + r + ch));
                    assert_eq!((c.se_mult_adds, c.se_params), (c.mult_adds, c.params));
                    assert_eq!((c.bn_channels, c.bias), (0, 0));
                    se = (se.0 + c.mult_adds, se.1 + c.params);
                } else {
                    assert_eq!((c.se_mult_adds, c.se_params), (0, 0));
                }
                let counted = u64::from(l.residual_from.is_some())
                    + u64::from(l.kind == LayerKind::SqueezeExcite)
                    + u64::from(l.activation == Activation::HardSwish);
                elementwise += counted * l.output.elements();
            }
            assert_eq!((t.se_mult_adds, t.se_params), se);
            assert_eq!(t.elementwise_ops, elementwise);
            assert_eq!(t.mult_adds, t.mult_adds_excluding_se + t.se_mult_adds);
            assert_eq!(t.params, t.params_excluding_se + t.se_params);
            assert_eq!(
                t.params_deployed,
                t.params + t.bn_channels + report.layers.iter().map(|r| r.cost.bias).sum::<u64>()
            );
            assert_eq!(t.flops, 2 * t.mult_adds);
        }
        let minimal = minimalistic(Family::V3Small, 1.0).totals;
        assert_eq!((minimal.se_mult_adds, minimal.se_params), (0, 0));
        assert_eq!(minimal.mult_adds, minimal.mult_adds_excluding_se);
    }

    /// Without squeeze-and-excite (v1, v2) the SE-less figures are the headline ones.
    #[test]
    fn v1_and_v2_have_nothing_to_exclude() {
        for r in [paper(1.0, 224), family(Family::V2, 1.0, 224)] {
            let t = r.totals;
            assert_eq!((t.se_mult_adds, t.se_params), (0, 0));
            assert_eq!(
                (t.mult_adds_excluding_se, t.params_excluding_se),
                (t.mult_adds, t.params)
            );
        }
    }

    #[test]
    fn layer_sums_equal_totals_in_every_family() {
        for family_ in Family::ALL {
            for (alpha, res) in [(1.0, 224), (0.35, 96), (1.3, 193)] {
                let r = family(family_, alpha, res);
                let t = r.totals;
                let sum = |f: fn(&LayerCost) -> u64| r.layers.iter().map(|l| f(&l.cost)).sum::<u64>();
                assert_eq!(sum(|c| c.mult_adds), t.mult_adds);
                assert_eq!(sum(|c| c.params), t.params);
                assert_eq!(sum(|c| c.se_mult_adds), t.se_mult_adds);
                assert_eq!(sum(|c| c.elementwise_ops), t.elementwise_ops);
                let kinds = |f: fn(&KindShare) -> u64| r.by_kind.iter().map(f).sum::<u64>();
                assert_eq!(kinds(|k| k.mult_adds), t.mult_adds);
                assert_eq!(kinds(|k| k.params), t.params);
                assert_eq!(sum(|c| c.se_params), t.se_params);
                assert_eq!(kinds(|k| k.elementwise_ops), t.elementwise_ops);
                assert!(t.params_deployed < t.params_trainable && t.params_trainable < t.params_keras);
            }
        }
    }

    #[test]
    fn separable_pairs_skip_the_se_layer() {
        let r = family(Family::V3Large, 1.0, 224);
        assert_eq!(r.separable.len(), 15);
        let s = &r.separable[3];
        assert_eq!(
            (s.depthwise.as_str(), s.pointwise.as_str()),
            ("block_3.dw", "block_3.project")
        );
        for s in &r.separable {
            assert!((s.ratio - s.formula).abs() < 1e-12, "{s:?}");
        }
    }
}

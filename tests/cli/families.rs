//! MobileNetV2 and V3 in the spec and cost model; the fast engine and the candle network run
//! both.

use candle_core::Device;
use mobilenet_cli::arch::{Config, Family, Layer, LayerKind, Variant, instantiate};
use mobilenet_cli::cost::analyze;
use mobilenet_cli::engine::{Dense, Engine, LayerWeights};
use mobilenet_cli::nn::MobileNet;

/// Zero weights of the sizes the fast engine expects, so that only the layer types can fail.
fn weights(layers: &[Layer]) -> Vec<LayerWeights> {
    let zeros = |weight: usize, bias: usize| Dense {
        weight: vec![0.0; weight],
        bias: vec![0.0; bias],
    };
    layers
        .iter()
        .map(|l| {
            let (cin, cout, k) = (l.input.c as usize, l.output.c as usize, l.kernel as usize);
            let weight = match l.kind {
                LayerKind::Conv => cout * cin * k * k,
                LayerKind::Depthwise => cout * k * k,
                LayerKind::Pointwise | LayerKind::Fc => cout * cin,
                LayerKind::SqueezeExcite => {
                    let se = l.se_channels.unwrap() as usize;
                    return LayerWeights::SqueezeExcite {
                        reduce: zeros(se * cin, se),
                        expand: zeros(cin * se, cin),
                    };
                }
                LayerKind::AvgPool => return LayerWeights::None,
            };
            LayerWeights::Dense(zeros(weight, cout))
        })
        .collect()
}

#[test]
fn the_fast_engine_runs_v2_and_v3() {
    for family in [Family::V2, Family::V3Large, Family::V3Small] {
        for minimalistic in [false, true].into_iter().filter(|&m| !m || family.is_v3()) {
            let config = Config::build(family, 0.5, 64, 1, 1000, Variant::Standard, minimalistic).unwrap();
            let layers = instantiate(&config);
            let mut engine = Engine::new(&layers, &weights(&layers), 1)
                .unwrap_or_else(|e| panic!("{}: {e}", config.label()));
            // Zero weights and biases: every activation is 0, and so is every logit.
            let logits = engine.forward(&vec![0.5; engine.input_len()], 1);
            assert!(logits.iter().all(|&v| v == 0.0), "{}", config.label());
        }
    }
}

#[test]
fn the_network_runs_v2_and_v3() {
    for family in [Family::V2, Family::V3Large, Family::V3Small] {
        let config = Config::family(family, 0.5, 64).unwrap();
        let net = MobileNet::random(config, 1, &Device::Cpu).unwrap();
        let input =
            candle_core::Tensor::zeros((1, 3, 64, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        let logits = net.forward(&input).unwrap();
        assert_eq!(logits.dims(), &[1, 1000], "{family}");
    }
}

/// Defect 5: v3's headline parameters are the values the network holds (its f32 weight file:
/// 21.9 MB for Large) less the biases the papers' convention leaves out (BatchNorm folded into
/// one per channel, conv_head's and the logits'): squeeze-and-excite is inside. Large 1.0/224
/// gives 5,456,352, the paper's and TF-slim's 5.4 M to the printed digit.
#[test]
fn v3_headline_params_are_the_network_weights_less_biases() {
    for (family, params, printed_tenths) in
        [(Family::V3Large, 5_456_352, 54), (Family::V3Small, 2_528_720, 25)]
    {
        let config = Config::family(family, 1.0, 224).unwrap();
        let net = MobileNet::random(config, 1, &Device::Cpu).unwrap();
        let t = analyze(&config).totals;
        let biases: u64 = instantiate(&config)
            .iter()
            .filter(|l| l.batch_norm || l.bias)
            .map(|l| u64::from(l.output.c))
            .sum();
        assert_eq!(4 * net.parameter_count(), t.weight_bytes_f32, "{family}");
        assert_eq!(net.parameter_count() - biases, t.params, "{family}");
        assert_eq!(
            (t.params, t.params / 100_000),
            (params, printed_tenths),
            "{family}"
        );
        assert!(t.se_params > 0 && t.params_excluding_se == t.params - t.se_params);
    }
}

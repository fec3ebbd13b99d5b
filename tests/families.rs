//! MobileNetV2 and V3 in the spec and cost model; the fast engine runs v2 and refuses v3, and the
//! candle network refuses both, with a clear error instead of running v1 arithmetic on them.

use candle_core::Device;
use mobilenet_cli::arch::{Config, Family, Layer, LayerKind, instantiate};
use mobilenet_cli::engine::{Engine, FoldedLayerWeights};
use mobilenet_cli::nn::MobileNet;

/// Zero weights of the sizes the fast engine expects, so that only the layer types can fail.
fn weights(layers: &[Layer]) -> Vec<FoldedLayerWeights> {
    layers
        .iter()
        .map(|l| {
            let (cin, cout, k) = (l.input.c as usize, l.output.c as usize, l.kernel as usize);
            let weight = match l.kind {
                LayerKind::Conv => cout * cin * k * k,
                LayerKind::Depthwise => cout * k * k,
                LayerKind::Pointwise | LayerKind::Fc => cout * cin,
                LayerKind::SqueezeExcite | LayerKind::AvgPool => return FoldedLayerWeights::default(),
            };
            FoldedLayerWeights {
                weight: vec![0.0; weight],
                bias: vec![0.0; cout],
            }
        })
        .collect()
}

#[test]
fn the_fast_engine_runs_v2_and_refuses_v3() {
    let layers = instantiate(&Config::family(Family::V2, 0.5, 64).unwrap());
    assert!(Engine::new(&layers, &weights(&layers), 1).is_ok());
    for family in [Family::V3Large, Family::V3Small] {
        let layers = instantiate(&Config::family(family, 0.5, 64).unwrap());
        let err = Engine::new(&layers, &weights(&layers), 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not supported"), "{family}: {err}");
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

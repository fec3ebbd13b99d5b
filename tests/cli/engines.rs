//! The fast engine against the candle-ops reference engine: same network, same input, logits
//! and features within 1e-4 (relative to their scale), for the shipped models and random
//! networks (v1, v2 and v3, minimalistic too) at even and odd resolutions, batch 1 and 3 or 4,
//! one and two threads; and the features are what the logits are computed from.

use crate::common::*;

use candle_core::Device;
use mobilenet_cli::arch::{Config, Family, Variant};
use mobilenet_cli::engine::LayerWeights;
use mobilenet_cli::infer::{EngineKind, Runner, synthetic_input};
use mobilenet_cli::nn::{MobileNet, ModelId};

fn assert_engines_agree(net: MobileNet, batch: usize, threads: usize) {
    let label = format!("{} batch {batch} threads {threads}", net.config().label());
    let input = synthetic_input(batch, net.config().resolution);
    let mut reference = Runner::new(net.clone(), EngineKind::Reference, threads).unwrap();
    let mut fast = Runner::new(net, EngineKind::Fast, threads).unwrap();
    let want = reference.forward(&input, batch).unwrap();
    let got = fast.forward(&input, batch).unwrap();
    assert_eq!(
        got.len(),
        batch * reference.net().config().classes as usize,
        "{label}"
    );
    let (diff, scale) = max_diff(&got, &want);
    assert!(
        diff <= 1e-4 * scale,
        "{label}: max |fast - reference| = {diff} (scale {scale})"
    );
    // Probabilities too: what classify reports.
    let (pdiff, _) = max_diff(
        &fast.probabilities(&input, batch).unwrap(),
        &reference.probabilities(&input, batch).unwrap(),
    );
    assert!(pdiff <= 1e-4, "{label}: probabilities differ by {pdiff}");
    // And the features, the final FC layer's input.
    let want = reference.features(&input, batch).unwrap();
    let got = fast.features(&input, batch).unwrap();
    assert_eq!(got.len(), batch * fast.feature_len(), "{label}");
    let (diff, scale) = max_diff(&got, &want);
    assert!(
        diff <= 1e-4 * scale,
        "{label}: features differ by {diff} (scale {scale})"
    );
}

#[test]
fn shipped_models_agree_at_batch_1_and_4() {
    // v1, v2 and v3-small (no v3-large weights ship: see random_v3_networks_agree).
    for id in ModelId::ALL {
        let net = MobileNet::from_embedded(id, &Device::Cpu).unwrap();
        assert_engines_agree(net.clone(), 1, 1);
        assert_engines_agree(net, 4, 2);
    }
}

#[test]
fn shipped_model_off_its_resolution_agrees() {
    let net = MobileNet::from_embedded(ModelId::V1_025_128, &Device::Cpu).unwrap();
    for res in [97, 160, 225] {
        assert_engines_agree(net.with_resolution(res).unwrap(), 1, 2);
    }
}

#[test]
fn random_networks_agree_at_even_and_odd_resolutions() {
    for (alpha, res, dm, variant) in [
        (0.25, 64, 1, Variant::Standard),
        (0.5, 97, 1, Variant::Standard),
        (0.35, 33, 1, Variant::Standard),
        (0.25, 96, 2, Variant::Standard),
        (0.25, 65, 1, Variant::Shallow),
        (0.25, 48, 1, Variant::FullConv),
    ] {
        let config = Config::new(alpha, res, dm, 10, variant).unwrap();
        let net = MobileNet::random(config, 7, &Device::Cpu).unwrap();
        assert_engines_agree(net.clone(), 1, 1);
        assert_engines_agree(net, 4, 2);
    }
}

#[test]
fn the_fast_engine_refuses_a_wrong_input_shape() {
    let net = MobileNet::from_embedded(ModelId::V1_025_128, &Device::Cpu).unwrap();
    for engine in [EngineKind::Fast, EngineKind::Reference] {
        let mut runner = Runner::new(net.clone(), engine, 1).unwrap();
        let wrong = synthetic_input(1, 96);
        for err in [
            runner.forward(&wrong, 1).unwrap_err(),
            runner.features(&wrong, 1).unwrap_err(),
            runner.forward(&synthetic_input(2, 128), 1).unwrap_err(),
        ] {
            assert!(
                err.to_string().contains("expected [N, 3, 128, 128] with N = 1"),
                "{err}"
            );
        }
        assert!(runner.forward(&[], 0).unwrap().is_empty());
    }
}

#[test]
fn fast_engine_reproduces_the_reference_probabilities() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // Every shipped model: v1, v2 and v3-small.
    for id in ModelId::ALL {
        let reference =
            candle_core::safetensors::load(dir.join(format!("reference_{}", id.file_name())), &Device::Cpu)
                .unwrap();
        let net = MobileNet::from_embedded(id, &Device::Cpu).unwrap();
        let mut fast = Runner::new(net, EngineKind::Fast, 2).unwrap();
        for image in ["grace_hopper", "chelsea", "bike"] {
            let input = values(&reference[&format!("{image}.input")]);
            let probs = fast.probabilities(&input, 1).unwrap();
            let (diff, _) = max_diff(&probs, &values(&reference[&format!("{image}.probs")]));
            assert!(diff < 1e-4, "{} {image}: {diff}", id.name());
            eprintln!("{} {image}: max |diff| {diff:.2e}", id.name());
        }
    }
}

#[test]
fn random_v3_networks_agree() {
    for (family, alpha, res, minimalistic) in [
        (Family::V3Large, 1.0, 64, false),
        (Family::V3Large, 0.75, 97, true),
        (Family::V3Small, 1.0, 131, false),
        (Family::V3Small, 0.5, 48, true),
    ] {
        let config = Config::build(family, alpha, res, 1, 1000, Variant::Standard, minimalistic).unwrap();
        let net = MobileNet::random(config, 3, &Device::Cpu).unwrap();
        assert_engines_agree(net.clone(), 1, 1);
        assert_engines_agree(net, 3, 2);
    }
}

#[test]
fn random_v2_networks_agree() {
    for (alpha, res) in [(0.35, 33), (0.5, 96), (1.0, 64)] {
        let net =
            MobileNet::random(Config::family(Family::V2, alpha, res).unwrap(), 5, &Device::Cpu).unwrap();
        assert_engines_agree(net.clone(), 1, 1);
        assert_engines_agree(net, 3, 2);
    }
}

/// Issue 12's features, per family: v1's pooled 1024 * alpha, v2's pooled conv_last (1280),
/// v3-small's conv_head after hard-swish (1024). On both engines the logits are exactly the
/// FC layer applied to them: logits = features x logits.weight^T + logits.bias.
#[test]
fn the_logits_are_the_classifier_applied_to_the_features() {
    let batch = 2;
    for id in ModelId::ALL {
        let net = MobileNet::from_embedded(id, &Device::Cpu).unwrap();
        let config = *net.config();
        let expected_len = match config.family {
            Family::V1 => (1024.0 * config.alpha) as usize,
            Family::V2 | Family::V3Large => 1280,
            Family::V3Small => 1024,
        };
        let LayerWeights::Dense(fc) = net.folded_weights().unwrap().pop().unwrap() else {
            panic!("{}: the last layer is not the FC layer", id.name());
        };
        let input = synthetic_input(batch, config.resolution);
        for engine in [EngineKind::Fast, EngineKind::Reference] {
            let mut runner = Runner::new(net.clone(), engine, 2).unwrap();
            let width = runner.feature_len();
            assert_eq!(width, expected_len, "{} {engine}", id.name());
            let features = runner.features(&input, batch).unwrap();
            let logits = runner.forward(&input, batch).unwrap();
            let classes = fc.bias.len();
            assert_eq!((features.len(), logits.len()), (batch * width, batch * classes));
            let mut applied = Vec::with_capacity(logits.len());
            for image in features.chunks_exact(width) {
                for (row, bias) in fc.weight.chunks_exact(width).zip(&fc.bias) {
                    let dot: f64 = row
                        .iter()
                        .zip(image)
                        .map(|(w, x)| f64::from(*w) * f64::from(*x))
                        .sum();
                    applied.push((dot + f64::from(*bias)) as f32);
                }
            }
            let (diff, scale) = max_diff(&logits, &applied);
            assert!(
                diff <= 1e-5 * scale,
                "{} {engine}: logits differ from the FC of the features by {diff} (scale {scale})",
                id.name()
            );
        }
    }
}

//! The fast engine against the candle-ops reference engine: same network, same input, logits
//! within 1e-4 (relative to the logits' scale), for the shipped models and random networks
//! (v1, v2 and v3, minimalistic too) at even and odd resolutions, batch 1 and 3 or 4, one and two
//! threads.

use crate::common::*;

use candle_core::Device;
use mobilenet_cli::arch::{Config, Family, Variant};
use mobilenet_cli::infer::{EngineKind, Runner, synthetic_input};
use mobilenet_cli::nn::{MobileNet, ModelId};

fn assert_engines_agree(net: MobileNet, batch: usize, threads: usize) {
    let label = format!("{} batch {batch} threads {threads}", net.config().label());
    let input = synthetic_input(batch, net.config().resolution, &Device::Cpu).unwrap();
    let mut reference = Runner::new(net.clone(), EngineKind::Reference, threads).unwrap();
    let mut fast = Runner::new(net, EngineKind::Fast, threads).unwrap();
    let want = reference.forward(&input).unwrap();
    let got = fast.forward(&input).unwrap();
    assert_eq!(got.dims(), want.dims(), "{label}");
    let (diff, scale) = max_abs_diff_scaled(&got, &want);
    assert!(
        diff <= 1e-4 * scale,
        "{label}: max |fast - reference| = {diff} (scale {scale})"
    );
    // Probabilities too: what classify reports.
    let (pdiff, _) = max_abs_diff_scaled(
        &fast.probabilities(&input).unwrap(),
        &reference.probabilities(&input).unwrap(),
    );
    assert!(pdiff <= 1e-4, "{label}: probabilities differ by {pdiff}");
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
    let mut fast = Runner::new(net, EngineKind::Fast, 1).unwrap();
    let wrong = synthetic_input(1, 96, &Device::Cpu).unwrap();
    let err = fast.forward(&wrong).unwrap_err().to_string();
    assert!(err.contains("expected [N, 3, 128, 128]"), "{err}");
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
            let probs = fast.probabilities(&reference[&format!("{image}.input")]).unwrap();
            let (diff, _) = max_abs_diff_scaled(&probs, &reference[&format!("{image}.probs")]);
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

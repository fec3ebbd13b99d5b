//! The engine against a naive reference: straightforward NCHW loops with TF SAME padding and
//! f64 accumulation. Every layer's output is compared, for every available instruction set,
//! 1 and 2 threads, batch 1 and a larger batch. Whole MobileNetV3s are also compared with the
//! candle network of `crate::nn`, the reference engine behind `--engine reference`.

use super::*;
use crate::arch::{Activation, Config, LayerKind, Role, Shape, Variant, instantiate};

/// A small deterministic generator (xorshift64*), uniform in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.next() * scale).collect()
    }
}

/// Random weights that keep activations O(1), so ReLU6 neither zeroes nor saturates most of
/// them and the comparison sees real arithmetic.
fn random_weights(layers: &[Layer], seed: u64) -> Vec<LayerWeights> {
    let mut rng = Rng(seed);
    layers
        .iter()
        .map(|l| {
            let (cin, cout, k) = (l.input.c as usize, l.output.c as usize, l.kernel as usize);
            let fan_in = match l.kind {
                LayerKind::Conv => cin * k * k,
                LayerKind::Depthwise => k * k,
                LayerKind::Pointwise | LayerKind::Fc => cin,
                LayerKind::AvgPool => return LayerWeights::None,
                LayerKind::SqueezeExcite => {
                    let se = l.se_channels.unwrap() as usize;
                    let (reduce, expand) = ((3.0 / cin as f32).sqrt(), (3.0 / se as f32).sqrt());
                    return LayerWeights::SqueezeExcite {
                        reduce: Dense {
                            weight: rng.vec(se * cin, reduce * 1.5),
                            bias: rng.vec(se, 0.5),
                        },
                        expand: Dense {
                            weight: rng.vec(cin * se, expand * 1.5),
                            bias: rng.vec(cin, 0.5),
                        },
                    };
                }
            };
            let len = match l.kind {
                LayerKind::Depthwise => cout * k * k,
                _ => cout * fan_in,
            };
            let scale = (3.0 / fan_in as f32).sqrt() * 1.5;
            LayerWeights::Dense(Dense {
                weight: rng.vec(len, scale),
                bias: rng.vec(cout, 0.5),
            })
        })
        .collect()
}

/// The reference forward pass of one image: each layer's output, NCHW.
fn reference(layers: &[Layer], weights: &[LayerWeights], image: &[f32]) -> Vec<Vec<f64>> {
    let mut x: Vec<f64> = image.iter().map(|&v| f64::from(v)).collect();
    let mut outputs = Vec::new();
    for (layer, weights) in layers.iter().zip(weights) {
        let (i, o) = (layer.input, layer.output);
        let (ih, iw, cin) = (i.h as usize, i.w as usize, i.c as usize);
        let (oh, ow, cout) = (o.h as usize, o.w as usize, o.c as usize);
        let (k, s) = (layer.kernel as usize, layer.stride as usize);
        let (top, _, left, _) = layer.same_padding();
        let (top, left) = (top as isize, left as isize);
        let dense = || match weights {
            LayerWeights::Dense(dense) => dense,
            _ => panic!("{}: not a dense layer", layer.name),
        };
        let weight = |idx: usize| f64::from(dense().weight[idx]);
        let bias = |idx: usize| f64::from(dense().bias[idx]);
        let mut y = vec![0.0f64; oh * ow * cout];
        match layer.kind {
            LayerKind::Conv | LayerKind::Depthwise => {
                let depthwise = layer.kind == LayerKind::Depthwise;
                for oc in 0..cout {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut acc = bias(oc);
                            let channels = if depthwise {
                                oc * cin / cout..oc * cin / cout + 1
                            } else {
                                0..cin
                            };
                            for (wc, ic) in channels.enumerate() {
                                for ky in 0..k {
                                    for kx in 0..k {
                                        let iy = (oy * s + ky) as isize - top;
                                        let ix = (ox * s + kx) as isize - left;
                                        if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                            continue;
                                        }
                                        let wc = if depthwise { 0 } else { wc };
                                        let wi =
                                            ((oc * (if depthwise { 1 } else { cin }) + wc) * k + ky) * k + kx;
                                        acc += weight(wi) * x[(ic * ih + iy as usize) * iw + ix as usize];
                                    }
                                }
                            }
                            y[(oc * oh + oy) * ow + ox] = acc;
                        }
                    }
                }
            }
            LayerKind::Pointwise | LayerKind::Fc => {
                let pixels = oh * ow;
                for oc in 0..cout {
                    for p in 0..pixels {
                        let dot: f64 = (0..cin)
                            .map(|ic| weight(oc * cin + ic) * x[ic * pixels + p])
                            .sum();
                        y[oc * pixels + p] = bias(oc) + dot;
                    }
                }
            }
            LayerKind::SqueezeExcite => {
                let LayerWeights::SqueezeExcite { reduce, expand } = weights else {
                    panic!("{}: not squeeze-and-excite weights", layer.name);
                };
                let value = |values: &[f32], idx: usize| f64::from(values[idx]);
                let (pixels, se) = (ih * iw, layer.se_channels.unwrap() as usize);
                let pooled: Vec<f64> = x
                    .chunks_exact(pixels)
                    .map(|plane| plane.iter().sum::<f64>() / pixels as f64)
                    .collect();
                let squeezed: Vec<f64> = (0..se)
                    .map(|j| {
                        let dot: f64 = (0..cin)
                            .map(|c| value(&reduce.weight, j * cin + c) * pooled[c])
                            .sum();
                        (value(&reduce.bias, j) + dot).max(0.0)
                    })
                    .collect();
                for c in 0..cin {
                    let dot: f64 = (0..se)
                        .map(|j| value(&expand.weight, c * se + j) * squeezed[j])
                        .sum();
                    let gate = (value(&expand.bias, c) + dot + 3.0).clamp(0.0, 6.0) / 6.0;
                    for p in 0..pixels {
                        y[c * pixels + p] = x[c * pixels + p] * gate;
                    }
                }
            }
            LayerKind::AvgPool => {
                for c in 0..cin {
                    y[c] = x[c * ih * iw..(c + 1) * ih * iw].iter().sum::<f64>() / (ih * iw) as f64;
                }
            }
        }
        if let Some(from) = layer.residual_from {
            // The input of layer `from` is the output of layer `from - 1`.
            y.iter_mut()
                .zip(&outputs[from - 1])
                .for_each(|(v, r): (&mut f64, &f64)| *v += r);
        }
        match layer.activation {
            Activation::Relu6 => y.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
            Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::HardSwish => y.iter_mut().for_each(|v| *v *= (*v + 3.0).clamp(0.0, 6.0) / 6.0),
            Activation::Linear => {}
        }
        outputs.push(y.clone());
        x = y;
    }
    outputs
}

/// Runs `layers` through the engine in every configuration and compares every layer's output
/// with the reference.
fn check_network(layers: &[Layer], batch: usize, seed: u64) {
    let weights = random_weights(layers, seed);
    let first = layers[0].input;
    let image_len = (first.c * first.h * first.w) as usize;
    let input = Rng(seed ^ 0x9e37_79b9_7f4a_7c15).vec(batch * image_len, 1.0);
    let expected: Vec<_> = input
        .chunks_exact(image_len)
        .map(|image| reference(layers, &weights, image))
        .collect();
    for isa in Isa::available() {
        for threads in [1, 2] {
            let mut engine = Engine::with_isa(layers, &weights, threads, isa).unwrap();
            for n in [1, batch] {
                let what = format!("{isa}, {threads} threads, batch {n}");
                let mut seen = 0;
                let mut check = |index: usize, output: &[f32]| {
                    compare(&layers[index], output, &expected[..n], index, &what);
                    seen += 1;
                };
                engine.execute(
                    &input[..n * image_len],
                    n,
                    0..layers.len(),
                    |_| {},
                    Some(&mut check),
                );
                assert_eq!(seen, layers.len());
                // The results as the engine returns them: one unpadded vector per image.
                let output = engine.forward(&input[..n * image_len], n).to_vec();
                let last = layers.len() - 1;
                compare_vectors(&layers[last], &output, &expected[..n], last, &what);
                let features = engine.forward_features(&input[..n * image_len], n).to_vec();
                let index = if layers[last].kind == LayerKind::Fc {
                    last - 1
                } else {
                    last
                };
                assert_eq!(features.len(), n * engine.feature_len(), "{what}");
                compare_vectors(&layers[index], &features, &expected[..n], index, &what);
            }
        }
    }
}

/// Compares one vector per image (a network's output or features, unpadded) with the
/// reference.
fn compare_vectors(layer: &Layer, output: &[f32], expected: &[Vec<Vec<f64>>], index: usize, what: &str) {
    assert_eq!(
        (layer.output.h, layer.output.w),
        (1, 1),
        "{what}: layer {index} is not a vector"
    );
    compare_stored(layer, output, expected, index, what, layer.output.c as usize);
}

/// Compares the engine's NHWC output of `layer` as it stores it (channels padded, except the
/// FC layer's) with the NCHW reference.
fn compare(layer: &Layer, output: &[f32], expected: &[Vec<Vec<f64>>], index: usize, what: &str) {
    let c = layer.output.c as usize;
    let c_pad = if layer.kind == LayerKind::Fc {
        c
    } else {
        pack::padded(c)
    };
    compare_stored(layer, output, expected, index, what, c_pad);
}

/// Compares an NHWC output with `c_pad` values per pixel (the first `c` of them channels, the
/// rest zeros) with the NCHW reference.
fn compare_stored(
    layer: &Layer,
    output: &[f32],
    expected: &[Vec<Vec<f64>>],
    index: usize,
    what: &str,
    c_pad: usize,
) {
    let Shape { h, w, c } = layer.output;
    let (h, w, c) = (h as usize, w as usize, c as usize);
    assert_eq!(
        output.len(),
        expected.len() * h * w * c_pad,
        "{what}: layer {index} size"
    );
    for (n, reference) in expected.iter().enumerate() {
        let reference = &reference[index];
        // Relative to the value, or to the layer's largest value where that is larger: deep
        // residual networks (v2's 50-odd layers) accumulate f32 rounding in absolute terms
        // (~1e-4 of the layer's scale by the last blocks), so a value near zero inside a
        // layer of large values cannot be held to 1e-4 of itself.
        let scale = reference.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c_pad {
                    let got = output[((n * h + y) * w + x) * c_pad + ch];
                    let want = if ch < c {
                        reference[(ch * h + y) * w + x]
                    } else {
                        0.0
                    };
                    let tolerance = 1e-4 * want.abs().max(scale);
                    assert!(
                        (f64::from(got) - want).abs() <= tolerance,
                        "{what}: layer {index} ({}) image {n} at y={y} x={x} c={ch}: got {got}, want {want}",
                        layer.name
                    );
                }
            }
        }
    }
}

/// One layer with ReLU6 (linear for the pool, the FC and squeeze-and-excite); for
/// squeeze-and-excite `out_c` is the squeezed width.
fn layer(kind: LayerKind, kernel: u32, stride: u32, input: Shape, out_c: u32) -> Layer {
    let (h, w) = match kind {
        LayerKind::AvgPool | LayerKind::Fc => (1, 1),
        _ => (input.h.div_ceil(stride), input.w.div_ceil(stride)),
    };
    let excite = kind == LayerKind::SqueezeExcite;
    let activation = if matches!(kind, LayerKind::Fc | LayerKind::AvgPool) || excite {
        Activation::Linear
    } else {
        Activation::Relu6
    };
    Layer {
        name: format!("{kind}"),
        block: None,
        kind,
        // The role of a lone layer of this kind in v1 (squeeze-and-excite's is v3's).
        role: match kind {
            LayerKind::Conv => Role::Stem,
            LayerKind::Depthwise => Role::Depthwise,
            LayerKind::Pointwise => Role::Pointwise,
            LayerKind::SqueezeExcite => Role::SqueezeExcite,
            LayerKind::AvgPool => Role::Pool,
            LayerKind::Fc => Role::Logits,
        },
        kernel,
        stride,
        input,
        output: if excite { input } else { Shape::new(h, w, out_c) },
        batch_norm: kind != LayerKind::Fc && !excite,
        bias: kind == LayerKind::Fc,
        activation,
        residual_from: None,
        se_channels: excite.then_some(out_c),
    }
}

/// `layers` with `activation` wherever they had ReLU6 (every layer but the pool, the FC and
/// squeeze-and-excite).
fn activated(mut layers: Vec<Layer>, activation: Activation) -> Vec<Layer> {
    for l in &mut layers {
        if l.activation == Activation::Relu6 {
            l.activation = activation;
        }
    }
    layers
}

/// stem -> `body` (each `(kind, kernel, stride, out_c)`) -> pool -> fc.
fn network(
    res: (u32, u32),
    stem: (u32, u32),
    body: &[(LayerKind, u32, u32, u32)],
    classes: u32,
) -> Vec<Layer> {
    let mut layers = vec![layer(
        LayerKind::Conv,
        3,
        stem.0,
        Shape::new(res.0, res.1, 3),
        stem.1,
    )];
    for &(kind, kernel, stride, out_c) in body {
        let input = layers.last().unwrap().output;
        let out_c = if kind == LayerKind::Depthwise {
            input.c * out_c
        } else {
            out_c
        };
        layers.push(layer(kind, kernel, stride, input, out_c));
    }
    let input = layers.last().unwrap().output;
    layers.push(layer(LayerKind::AvgPool, input.h, 1, input, input.c));
    layers.push(layer(LayerKind::Fc, 1, 1, Shape::new(1, 1, input.c), classes));
    layers
}

use LayerKind::{Conv, Depthwise as Dw, Pointwise as Pw, SqueezeExcite as Se};

#[test]
fn stem_even_and_odd_sizes_and_channel_counts() {
    for (res, stride, c) in [
        ((16, 16), 2, 8),
        ((17, 15), 2, 24),
        ((9, 12), 1, 40),
        ((11, 11), 2, 32),
    ] {
        check_network(&network(res, (stride, c), &[], 5), 3, 1);
    }
}

#[test]
fn depthwise_strides_sizes_and_channel_counts() {
    for (res, c) in [((16, 16), 8), ((15, 13), 24), ((14, 19), 40), ((10, 10), 16)] {
        for stride in [1, 2] {
            // Depth multiplier 1 (after the stem) at both sizes the stem can leave.
            check_network(&network(res, (1, c), &[(Dw, 3, stride, 1)], 7), 2, 2);
            check_network(&network(res, (2, c), &[(Dw, 3, stride, 1)], 7), 2, 3);
        }
    }
}

#[test]
fn depthwise_slow_path_multiplier_and_kernel() {
    let body = [(Dw, 3, 2, 2), (Pw, 1, 1, 24), (Dw, 5, 1, 1), (Dw, 1, 2, 1)];
    check_network(&network((13, 12), (1, 8), &body, 6), 2, 4);
}

#[test]
fn pointwise_channel_counts() {
    for (cin, cout) in [(8, 24), (24, 40), (40, 8), (16, 100), (72, 64)] {
        check_network(&network((9, 10), (2, cin), &[(Pw, 1, 1, cout)], 10), 3, 5);
    }
}

#[test]
fn head_classes_not_multiple_of_the_panel() {
    for classes in [1, 10, 33, 1000] {
        check_network(&network((8, 8), (2, 40), &[], classes), 2, 6);
    }
}

#[test]
fn full_convolution_inside_the_network() {
    let body = [(Conv, 3, 1, 24), (Conv, 3, 2, 16), (Dw, 3, 1, 1), (Conv, 1, 1, 8)];
    check_network(&network((12, 11), (2, 8), &body, 4), 2, 7);
}

#[test]
fn whole_mobilenets() {
    for (alpha, res) in [(0.25, 128), (0.5, 97), (1.0, 64)] {
        let config = Config::paper(alpha, res).unwrap().with_classes(37);
        check_network(&instantiate(&config), 4, 8);
    }
}

#[test]
fn ablation_variants() {
    let base = Config::paper(0.25, 32).unwrap().with_classes(11);
    check_network(&instantiate(&base.with_variant(Variant::FullConv)), 2, 9);
    check_network(&instantiate(&base.with_variant(Variant::Shallow)), 2, 10);
    let dm2 = Config::new(0.25, 32, 2, 5, Variant::Standard).unwrap();
    check_network(&instantiate(&dm2), 2, 11);
}

#[test]
fn batch_growth_reallocates_and_results_do_not_depend_on_batch() {
    let layers = instantiate(&Config::paper(0.25, 64).unwrap().with_classes(20));
    let weights = random_weights(&layers, 12);
    let mut engine = Engine::new(&layers, &weights, 2).unwrap();
    let image_len = engine.input_len();
    let input = Rng(13).vec(3 * image_len, 1.0);
    let batched = engine.forward(&input, 3).to_vec();
    for n in 0..3 {
        let single = engine
            .forward(&input[n * image_len..(n + 1) * image_len], 1)
            .to_vec();
        assert_eq!(single, batched[n * 20..(n + 1) * 20], "image {n}");
    }
    assert!(engine.forward(&[], 0).is_empty());
    let mut timed = Vec::new();
    engine.forward_timed(&input[..image_len], 1, |index, _| timed.push(index));
    assert_eq!(timed, (0..layers.len()).collect::<Vec<_>>());
}

#[test]
fn validation() {
    let layers = instantiate(&Config::paper(0.25, 32).unwrap());
    let mut weights = random_weights(&layers, 14);
    assert!(matches!(
        Engine::new(&layers, &weights[1..], 1),
        Err(EngineError::WeightCount { .. })
    ));
    assert_eq!(
        Engine::new(&layers, &weights, 0).unwrap_err(),
        EngineError::Threads
    );
    if let LayerWeights::Dense(dense) = &mut weights[3] {
        dense.bias.pop();
    }
    let err = Engine::new(&layers, &weights, 1).unwrap_err();
    assert!(err.to_string().contains("bias has"), "{err}");
    let mut weights = random_weights(&layers, 14);
    weights[3] = LayerWeights::None;
    let err = Engine::new(&layers, &weights, 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("takes a weight and a bias, not no weights"),
        "{err}"
    );
    let weights = random_weights(&layers, 14);
    assert!(
        Engine::new(&layers[1..], &weights[1..], 1).is_err(),
        "must start with the stem"
    );
    let err = Engine::new(&layers[..3], &weights[..3], 1).unwrap_err();
    assert!(
        err.to_string().contains("must end in one vector per image"),
        "{err}"
    );
    let mut fc_first = layers.clone();
    let pool = fc_first.len() - 2;
    fc_first.swap(pool, pool + 1);
    assert!(
        Engine::new(&fc_first, &weights, 1).is_err(),
        "the FC layer must be the last"
    );
    assert!(Engine::new(&[], &[], 1).is_err());
}

/// A backbone engine (the network less its FC layer) returns what the whole network's
/// `forward_features` does, bit for bit: the same ops on the same values. 24 and 40 channels
/// are padded to 32 and 48, so the read-out drops padding between images.
#[test]
fn features_without_the_classifier() {
    let body = [(Pw, 1, 1, 24)];
    for (layers, head) in [
        (network((9, 10), (2, 40), &body, 10), None),
        // v3's head: the pooled vector through a 1x1 conv with hard-swish, then the FC layer.
        (network((7, 7), (2, 16), &body, 5), Some(40)),
    ] {
        let mut layers = layers;
        if let Some(width) = head {
            let fc = layers.pop().unwrap();
            let pooled = fc.input;
            let mut conv_head = layer(Pw, 1, 1, pooled, width);
            conv_head.activation = Activation::HardSwish;
            layers.push(conv_head);
            layers.push(layer(LayerKind::Fc, 1, 1, Shape::new(1, 1, width), fc.output.c));
        }
        let weights = random_weights(&layers, 19);
        let backbone = &layers[..layers.len() - 1];
        check_network(backbone, 3, 19);
        let image_len = (3 * layers[0].input.h * layers[0].input.w) as usize;
        let input = Rng(20).vec(3 * image_len, 1.0);
        for threads in [1, 2] {
            let mut full = Engine::new(&layers, &weights, threads).unwrap();
            let mut features = Engine::new(backbone, &weights[..backbone.len()], threads).unwrap();
            let width = backbone.last().unwrap().output.c as usize;
            assert_eq!((full.feature_len(), features.output_len()), (width, width));
            assert_eq!(features.feature_len(), width);
            for n in [1, 3] {
                let want = features.forward(&input[..n * image_len], n).to_vec();
                assert_eq!(want.len(), n * width);
                assert_eq!(full.forward_features(&input[..n * image_len], n), want);
                // A full pass after the features-only one is unaffected.
                assert_eq!(
                    full.forward(&input[..n * image_len], n).len(),
                    n * full.output_len()
                );
            }
        }
    }
}

#[test]
fn weight_bytes_count_the_packed_panels() {
    // The stem packs [3 x 3 x 3 = 27 rows, 16 columns] into one 32-column panel (+ its bias),
    // the FC [16 rows, 10 classes] likewise; the pool has no weights.
    let layers = network((8, 8), (2, 16), &[], 10);
    let engine = Engine::new(&layers, &random_weights(&layers, 18), 1).unwrap();
    assert_eq!(engine.weight_bytes(), 4 * ((27 * 32 + 32) + (16 * 32 + 32)));
}

#[test]
fn whole_mobilenet_v2s() {
    use crate::arch::Family;
    for (alpha, res, batch) in [(0.35, 33, 3), (0.5, 47, 1), (1.0, 32, 3), (0.35, 64, 1)] {
        let config = Config::family(Family::V2, alpha, res).unwrap().with_classes(13);
        let layers = instantiate(&config);
        assert!(layers.iter().any(|l| l.residual_from.is_some()));
        check_network(&layers, batch, 15);
    }
}

#[test]
fn v2_at_224_builds_with_three_buffers() {
    use crate::arch::Family;
    let layers = instantiate(&Config::family(Family::V2, 1.0, 224).unwrap());
    let weights = random_weights(&layers, 16);
    let engine = Engine::new(&layers, &weights, 1).unwrap();
    assert_eq!(engine.plan.buffers, 3);
    let v1 = instantiate(&Config::paper(0.25, 32).unwrap());
    let engine = Engine::new(&v1, &random_weights(&v1, 16), 1).unwrap();
    assert_eq!(engine.plan.buffers, 2);
}

#[test]
fn residuals_the_engine_cannot_fuse_are_refused() {
    use crate::arch::Family;
    let layers = instantiate(&Config::family(Family::V2, 0.35, 32).unwrap());
    let weights = random_weights(&layers, 17);
    let project = layers.iter().position(|l| l.residual_from.is_some()).unwrap();
    for (from, what) in [(0, "network"), (project + 1, "earlier"), (1, "shapes differ")] {
        let mut bad = layers.clone();
        bad[project].residual_from = Some(from);
        let err = Engine::new(&bad, &weights, 1).unwrap_err();
        assert!(
            matches!(err, EngineError::Layer { index, .. } if index == project)
                && err.to_string().contains(what),
            "{from}: {err}"
        );
    }
    let mut bad = layers.clone();
    let dw = project - 1;
    bad[dw].residual_from = bad[project].residual_from;
    let err = Engine::new(&bad, &weights, 1).unwrap_err();
    assert!(err.to_string().contains("pointwise layers only"), "{err}");
}

#[test]
fn an_engine_can_move_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Engine>();
}

#[test]
fn every_isa_is_reported() {
    assert!(Isa::available().contains(&Isa::Portable));
    assert!(Isa::detect().is_available());
    // The integer tiers agree with the features `bench` records for the machine.
    let simd = crate::bench::simd_features();
    let has = |feature: &str| simd.iter().any(|f| f == feature);
    assert_eq!(
        IntIsa::available().contains(&IntIsa::Avx512Vnni),
        has("avx512vnni") && has("avx512bw")
    );
    assert_eq!(IntIsa::detect(), IntIsa::available().first().copied());
    assert!(IntIsa::available().iter().all(|isa| isa.is_available()));
}

#[test]
fn relu_hard_swish_and_linear_in_every_kernel() {
    // The stem's implicit GEMM (and its im2col border), 3x3 and 5x5 depthwise, pointwise.
    let body = [
        (Dw, 3, 1, 1),
        (Pw, 1, 1, 40),
        (Dw, 5, 2, 1),
        (Pw, 1, 1, 24),
        (Conv, 3, 1, 16),
    ];
    for activation in [Activation::Relu, Activation::HardSwish, Activation::Linear] {
        check_network(
            &activated(network((15, 14), (2, 24), &body, 9), activation),
            2,
            20,
        );
    }
}

#[test]
fn depthwise_5x5_strides_sizes_and_channel_counts() {
    // Down to images narrower than the kernel, where every column is a border column.
    for (res, c) in [
        ((16, 16), 8),
        ((15, 13), 24),
        ((14, 19), 40),
        ((10, 10), 16),
        ((7, 6), 72),
        ((3, 3), 32),
        ((1, 2), 16),
    ] {
        for stride in [1, 2] {
            check_network(&network(res, (1, c), &[(Dw, 5, stride, 1)], 7), 2, 21);
            let hard_swish = activated(
                network(res, (2, c), &[(Dw, 5, stride, 1)], 7),
                Activation::HardSwish,
            );
            check_network(&hard_swish, 2, 22);
        }
    }
}

#[test]
fn squeeze_excite_widths_and_sizes() {
    for (res, c, se) in [
        ((9, 10), 16, 8),
        ((7, 7), 72, 24),
        ((4, 5), 40, 16),
        ((1, 1), 200, 56),
        ((11, 8), 120, 32),
    ] {
        let body = [(Dw, 5, 1, 1), (Se, 1, 1, se), (Pw, 1, 1, 24)];
        let layers = activated(network(res, (1, c), &body, 5), Activation::HardSwish);
        // Batches above the per-thread chunk of images too.
        for batch in [3, 19] {
            check_network(&layers, batch, 23);
        }
    }
}

#[test]
fn squeeze_excite_in_place_unless_its_input_is_read_again() {
    let body = [(Dw, 3, 1, 1), (Se, 1, 1, 16), (Pw, 1, 1, 40)];
    let layers = network((9, 9), (1, 40), &body, 5);
    let se = layers.iter().position(|l| l.kind == Se).unwrap();
    let engine = Engine::new(&layers, &random_weights(&layers, 24), 1).unwrap();
    let slots = engine.plan.slots[se];
    assert_eq!(slots.dst, slots.src);
    // A residual from the SE layer's input keeps the depthwise output alive: scaling it in
    // place would corrupt the shortcut.
    let mut shortcut = layers.clone();
    shortcut[se + 1].residual_from = Some(se);
    let engine = Engine::new(&shortcut, &random_weights(&shortcut, 24), 1).unwrap();
    let slots = engine.plan.slots[se];
    assert_ne!(slots.dst, slots.src);
    check_network(&shortcut, 2, 25);
}

#[test]
fn whole_mobilenet_v3s_layer_by_layer() {
    use crate::arch::Family;
    for (family, alpha, res, minimalistic, batch) in [
        (Family::V3Large, 1.0, 33, false, 2),
        (Family::V3Small, 0.75, 47, false, 3),
        (Family::V3Large, 0.5, 32, true, 1),
        (Family::V3Small, 1.0, 40, true, 2),
    ] {
        let config = Config::build(family, alpha, res, 1, 13, Variant::Standard, minimalistic).unwrap();
        let layers = instantiate(&config);
        assert!(layers.iter().any(|l| l.residual_from.is_some()));
        check_network(&layers, batch, 26);
    }
}

#[test]
fn v3_builds_with_three_buffers_and_squeeze_excite_in_place() {
    use crate::arch::Family;
    for family in [Family::V3Large, Family::V3Small] {
        let layers = instantiate(&Config::family(family, 1.0, 224).unwrap());
        let engine = Engine::new(&layers, &random_weights(&layers, 27), 1).unwrap();
        assert_eq!(engine.plan.buffers, 3, "{family:?}");
        for (layer, slots) in layers.iter().zip(&engine.plan.slots) {
            if layer.kind == Se {
                assert_eq!(slots.dst, slots.src, "{}", layer.name);
            }
        }
    }
}

#[test]
fn squeeze_excite_the_engine_cannot_run_is_refused() {
    use crate::arch::Family;
    let layers = instantiate(&Config::family(Family::V3Small, 0.75, 32).unwrap());
    let weights = random_weights(&layers, 28);
    let se = layers.iter().position(|l| l.kind == Se).unwrap();
    let refusal = |bad: &[Layer], weights: &[LayerWeights]| {
        let err = Engine::new(bad, weights, 1).unwrap_err();
        assert!(
            matches!(err, EngineError::Layer { index, .. } if index == se),
            "{err}"
        );
        err.to_string()
    };
    let mut bad = layers.clone();
    bad[se].se_channels = None;
    assert!(refusal(&bad, &weights).contains("unsupported squeeze_excite shape"));
    let mut bad = layers.clone();
    bad[se].activation = Activation::Relu;
    assert!(refusal(&bad, &weights).contains("after the channel scaling"));
    let mut bad = layers.clone();
    bad[se].residual_from = Some(se);
    assert!(refusal(&bad, &weights).contains("pointwise layers only"));
    let mut short = weights.clone();
    if let LayerWeights::SqueezeExcite { expand, .. } = &mut short[se] {
        expand.bias.pop();
    }
    assert!(refusal(&layers, &short).contains("expand bias has"));
    let mut dense = weights.clone();
    dense[se] = LayerWeights::Dense(Dense::default());
    assert!(refusal(&layers, &dense).contains("takes squeeze-and-excite weights"));
}

/// The fast engine against the candle network (the `--engine reference` engine) on whole
/// MobileNetV3s with seeded random weights (`MobileNet::random`), at 224 and an odd resolution,
/// batch 1 and 3, 1 and 2 threads, on every instruction set this CPU has.
#[test]
fn mobilenet_v3s_agree_with_the_candle_network() {
    use crate::arch::Family;
    use crate::nn::MobileNet;
    use candle_core::{Device, Tensor};
    let batch = 3;
    for (family, minimalistic) in [
        (Family::V3Large, false),
        (Family::V3Large, true),
        (Family::V3Small, false),
        (Family::V3Small, true),
    ] {
        for res in [224, 97] {
            let config = Config::build(family, 1.0, res, 1, 1000, Variant::Standard, minimalistic).unwrap();
            let net = MobileNet::random(config, 31, &Device::Cpu).unwrap();
            let weights = net.folded_weights().unwrap();
            let r = res as usize;
            let image_len = 3 * r * r;
            let input = Rng(32).vec(batch * image_len, 1.0);
            let tensor = Tensor::from_slice(&input, (batch, 3, r, r), &Device::Cpu).unwrap();
            let want: Vec<f32> = net
                .forward(&tensor)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            // Both engines round every sum in f32 but in different orders, so their difference
            // grows with the magnitude of the terms summed, not with each logit: a logit near
            // zero can be the sum of large terms. And He-initialised weights through ReLU,
            // hard-swish and squeeze-and-excite leave logits of no fixed size: ~0.1 for
            // v3-small, ~1000 for v3-large-minimalistic (ReLU lets activations grow). So the
            // bound is 1e-4 of the largest logit; the engines measured ~1e-6 of it.
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let spread = want[..1000]
                .iter()
                .fold(0.0f32, |m, v| m.max((v - want[0]).abs()));
            assert!(
                spread > 1e-3 * scale,
                "{}: the logits barely depend on the class, the comparison would be vacuous",
                config.label()
            );
            for isa in Isa::available() {
                for threads in [1, 2] {
                    let mut engine = Engine::with_isa(net.layers(), &weights, threads, isa).unwrap();
                    for n in [1, batch] {
                        let got = engine.forward(&input[..n * image_len], n);
                        assert_eq!(got.len(), n * 1000);
                        let diff = got
                            .iter()
                            .zip(&want)
                            .fold(0.0f32, |m, (g, w)| m.max((g - w).abs()));
                        assert!(
                            diff <= 1e-4 * scale,
                            "{} {isa} threads {threads} batch {n}: max |fast - candle| = {diff}, scale {scale}",
                            config.label()
                        );
                    }
                }
            }
        }
    }
}

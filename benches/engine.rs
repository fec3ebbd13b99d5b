//! Engine benchmarks: the whole 1.0-MobileNet-224 (and its features pass), 0.25-MobileNet-128,
//! 1.0-MobileNetV2-224 and the 1.0 MobileNetV3-Large and -Small at 224, at 1 and 2 threads, and
//! the largest pointwise and depthwise layers of the 1.0-MobileNet-224 in place.
//!
//! Run with `cargo bench --bench engine`. Before divan's table a summary prints median
//! latencies with GFLOP/s (2 x the paper's mult-adds / time) as a share of two FMA peaks per
//! thread: the nominal `NOMINAL_PEAK_GFLOPS` and one measured on this core with a register-only
//! FMA loop, plus a per-layer breakdown.

use std::time::{Duration, Instant};

use divan::Bencher;
use mobilenet_cli::arch::{Config, Family, Layer, LayerKind, instantiate};
use mobilenet_cli::cost::{analyze, layer_cost};
use mobilenet_cli::engine::{Dense, Engine, Isa, LayerWeights};

/// The project's nominal fp32 FMA peak of one core (one 512-bit FMA per cycle at ~3.7 GHz =
/// 16 lanes x 2 flops x 3.7e9). Cores with two 512-bit FMA pipes (Zen 5) reach twice that,
/// hence the measured peak next to it.
const NOMINAL_PEAK_GFLOPS: f64 = 117.0;

fn main() {
    summary();
    divan::main();
}

/// Weights with the right sizes, scaled like a trained network's (uniform with variance
/// 1 / fan-in) so that activations stay O(1): weights that shrink the signal layer after
/// layer produce subnormal floats, which are many times slower and would time the wrong thing.
fn weights(layers: &[Layer]) -> Vec<LayerWeights> {
    let mut state = 0x1234_5678_u32;
    let mut next = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f32 / (1 << 24) as f32 - 0.5
    };
    let mut dense = |fan_in: usize, cout: usize| {
        let scale = 2.0 * (3.0 / fan_in as f32).sqrt();
        let weight: Vec<f32> = (0..fan_in * cout).map(|_| next() * scale).collect();
        let bias: Vec<f32> = (0..cout).map(|_| next() * 0.1).collect();
        Dense { weight, bias }
    };
    layers
        .iter()
        .map(|l| {
            let (cin, cout, k) = (l.input.c as usize, l.output.c as usize, l.kernel as usize);
            LayerWeights::Dense(match l.kind {
                LayerKind::Conv => dense(cin * k * k, cout),
                LayerKind::Depthwise => dense(k * k, cout),
                LayerKind::Pointwise | LayerKind::Fc => dense(cin, cout),
                LayerKind::SqueezeExcite => {
                    let se = l.se_channels.expect("an SE layer has its squeezed width") as usize;
                    let reduce = dense(cin, se);
                    let expand = dense(se, cin);
                    return LayerWeights::SqueezeExcite { reduce, expand };
                }
                LayerKind::AvgPool => return LayerWeights::None,
            })
        })
        .collect()
}

struct Setup {
    config: Config,
    layers: Vec<Layer>,
    engine: Engine,
    input: Vec<f32>,
}

fn setup(alpha: f64, res: u32, threads: usize, isa: Isa) -> Setup {
    setup_config(Config::paper(alpha, res).unwrap(), threads, isa)
}

fn setup_config(config: Config, threads: usize, isa: Isa) -> Setup {
    let layers = instantiate(&config);
    let engine = Engine::with_isa(&layers, &weights(&layers), threads, isa).unwrap();
    let input = (0..engine.input_len())
        .map(|i| ((i % 255) as f32 / 127.5) - 1.0)
        .collect();
    Setup {
        config,
        layers,
        engine,
        input,
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median wall time of `run` over about `budget`, after a warm-up.
fn measure(budget: Duration, mut run: impl FnMut()) -> Duration {
    for _ in 0..3 {
        run();
    }
    let (start, mut samples) = (Instant::now(), Vec::new());
    while samples.len() < 5 || (start.elapsed() < budget && samples.len() < 2000) {
        let t = Instant::now();
        run();
        samples.push(t.elapsed());
    }
    median(samples)
}

fn summary() {
    // `cargo bench -- <filter>` runs divan only; the summary is for plain runs.
    if std::env::args().skip(1).any(|a| !a.starts_with('-')) {
        return;
    }
    let peak = peak::measure();
    let peak_text = peak.map_or("not measured".into(), |(isa, gflops)| {
        format!("{gflops:.0} GFLOP/s ({isa})")
    });
    println!(
        "engine summary: median of 3 rounds of medians; GFLOP/s = 2 x mult-adds / time; per-thread peak: \
         nominal {NOMINAL_PEAK_GFLOPS}, measured {peak_text}"
    );
    let mut runs = Vec::new();
    for isa in Isa::available() {
        let configs = [
            Config::paper(1.0, 224).unwrap(),
            Config::paper(0.25, 128).unwrap(),
            v2_1_0_224(),
            Config::family(Family::V3Large, 1.0, 224).unwrap(),
            Config::family(Family::V3Small, 1.0, 224).unwrap(),
        ];
        for config in configs {
            for threads in [1, 2] {
                runs.push((setup_config(config, threads, isa), threads, Vec::new()));
            }
        }
    }
    // Rounds interleave the configurations, so a burst of load from other processes on a
    // shared machine skews one round of each rather than all of one.
    for _ in 0..3 {
        for (s, _, medians) in &mut runs {
            medians.push(measure(Duration::from_millis(700), || {
                divan::black_box(s.engine.forward(&s.input, 1));
            }));
        }
    }
    for (s, threads, medians) in runs {
        let time = median(medians).as_secs_f64();
        let gflops = 2.0 * analyze(&s.config).totals.mult_adds as f64 / time / 1e9;
        let per_thread = gflops / threads as f64;
        let measured = peak.map_or(String::new(), |(_, p)| {
            format!(", {:5.1}% measured", 100.0 * per_thread / p)
        });
        println!(
            "  {:9} {:20} {threads} thread(s): {:8.3} ms  {gflops:6.1} GFLOP/s  {:5.1}% nominal{measured}",
            s.engine.isa().to_string(),
            s.config.label(),
            time * 1e3,
            100.0 * per_thread / NOMINAL_PEAK_GFLOPS,
        );
    }
    for threads in [1, 2] {
        layer_table(threads);
    }
}

/// The FMA peak of one core: independent FMA chains on registers only.
mod peak {
    use std::time::Instant;

    /// (instruction set, GFLOP/s) for the widest FMA this CPU has.
    pub fn measure() -> Option<(&'static str, f64)> {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: avx512f was detected.
                return Some(("avx512f", best(|| unsafe { zmm(1 << 22) })));
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // SAFETY: avx2 and fma were detected.
                return Some(("avx2+fma", best(|| unsafe { ymm(1 << 22) })));
            }
        }
        None
    }

    /// The best of a few timings of `run`, which returns the flops it did.
    fn best(run: impl Fn() -> f64) -> f64 {
        (0..5)
            .map(|_| {
                let start = Instant::now();
                let flops = run();
                flops / start.elapsed().as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max)
    }

    /// 24 independent chains: more than latency x throughput on any core, fewer than the 32
    /// registers.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn zmm(iterations: usize) -> f64 {
        use std::arch::x86_64::*;
        let (x, y) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); 24];
        for _ in 0..iterations {
            for a in &mut acc {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        std::hint::black_box(acc);
        (iterations * 24 * 32) as f64
    }

    /// 12 chains of 8 lanes (16 registers).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn ymm(iterations: usize) -> f64 {
        use std::arch::x86_64::*;
        let (x, y) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..iterations {
            for a in &mut acc {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        std::hint::black_box(acc);
        (iterations * 12 * 16) as f64
    }
}

/// Per-layer medians of the 1.0-MobileNet-224 from `forward_timed`.
fn layer_table(threads: usize) {
    let mut s = setup(1.0, 224, threads, Isa::detect());
    let mut samples = vec![Vec::new(); s.layers.len()];
    for _ in 0..40 {
        s.engine
            .forward_timed(&s.input, 1, |index, time| samples[index].push(time));
    }
    println!(
        "per-layer, {} on {}, {threads} thread(s):",
        s.config.label(),
        s.engine.isa()
    );
    let mut total = 0.0;
    for (layer, times) in s.layers.iter().zip(samples) {
        let time = median(times[5..].to_vec()).as_secs_f64();
        total += time;
        let gflops = 2.0 * layer_cost(layer).mult_adds as f64 / time / 1e9;
        println!(
            "  {:8} {:>14} -> {:>14}  {:7.3} ms  {gflops:6.1} GFLOP/s",
            layer.name,
            layer.input.to_string(),
            layer.output.to_string(),
            time * 1e3
        );
    }
    println!("  sum of medians {:.3} ms", total * 1e3);
}

fn forward(bencher: Bencher, alpha: f64, res: u32, threads: usize) {
    let mut s = setup(alpha, res, threads, Isa::detect());
    bencher.bench_local(|| s.engine.forward(&s.input, 1)[0]);
}

#[divan::bench(args = [1, 2], max_time = 3)]
fn mobilenet_1_0_224(bencher: Bencher, threads: usize) {
    forward(bencher, 1.0, 224, threads);
}

/// 1.0-MobileNetV2-224 (Sandler et al. 2018): inverted residual blocks, residual adds fused
/// into the projections.
fn v2_1_0_224() -> Config {
    Config::family(Family::V2, 1.0, 224).unwrap()
}

#[divan::bench(args = [1, 2], max_time = 3)]
fn mobilenet_v2_1_0_224(bencher: Bencher, threads: usize) {
    let mut s = setup_config(v2_1_0_224(), threads, Isa::detect());
    bencher.bench_local(|| s.engine.forward(&s.input, 1)[0]);
}

/// MobileNetV3 (Howard et al. 2019) at 1.0/224: hard-swish, 5x5 depthwise, squeeze-and-excite.
#[divan::bench(args = [(Family::V3Large, 1), (Family::V3Large, 2), (Family::V3Small, 1), (Family::V3Small, 2)], max_time = 3)]
fn mobilenet_v3_1_0_224(bencher: Bencher, (family, threads): (Family, usize)) {
    let config = Config::family(family, 1.0, 224).unwrap();
    let mut s = setup_config(config, threads, Isa::detect());
    bencher.bench_local(|| s.engine.forward(&s.input, 1)[0]);
}

/// The 1.0-MobileNet-224 up to its features (`Engine::forward_features`, issue 12): the same
/// pass less the FC layer.
#[divan::bench(args = [1, 2], max_time = 3)]
fn mobilenet_1_0_224_features(bencher: Bencher, threads: usize) {
    let mut s = setup(1.0, 224, threads, Isa::detect());
    bencher.bench_local(|| s.engine.forward_features(&s.input, 1)[0]);
}

#[divan::bench(args = [1, 2], max_time = 3)]
fn mobilenet_0_25_128(bencher: Bencher, threads: usize) {
    forward(bencher, 0.25, 128, threads);
}

/// One layer of the 1.0-MobileNet-224 run alone with `Engine::profile_layer`.
fn layer(bencher: Bencher, name: &str, threads: usize) {
    let mut s = setup(1.0, 224, threads, Isa::detect());
    let index = s.layers.iter().position(|l| l.name == name).unwrap();
    s.engine.forward(&s.input, 1);
    bencher.bench_local(|| s.engine.profile_layer(&s.input, 1, index));
}

/// 56x56x128 -> 128: the pointwise layer with the most pixels among the largest (51 M mult-adds).
#[divan::bench(args = [1, 2], max_time = 2)]
fn pw_3_56x56x128(bencher: Bencher, threads: usize) {
    layer(bencher, "pw_3", threads);
}

/// 7x7x1024 -> 1024: the pointwise layer with the largest weights (4 MiB).
#[divan::bench(args = [1, 2], max_time = 2)]
fn pw_13_7x7x1024(bencher: Bencher, threads: usize) {
    layer(bencher, "pw_13", threads);
}

/// 112x112x32, stride 1: the depthwise layer with the most mult-adds and memory traffic.
#[divan::bench(args = [1, 2], max_time = 2)]
fn dw_1_112x112x32(bencher: Bencher, threads: usize) {
    layer(bencher, "dw_1", threads);
}

/// 112x112x64, stride 2.
#[divan::bench(args = [1, 2], max_time = 2)]
fn dw_2_112x112x64_s2(bencher: Bencher, threads: usize) {
    layer(bencher, "dw_2", threads);
}

/// The 224x224x3 -> 112x112x32 stem, including the NCHW -> padded NHWC staging.
#[divan::bench(args = [1, 2], max_time = 2)]
fn conv_0_stem(bencher: Bencher, threads: usize) {
    layer(bencher, "conv_0", threads);
}

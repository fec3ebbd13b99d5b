//! int8 benchmarks: the forward pass (`mobilenet_cli::quant`, TFLite's uint8 arithmetic) of
//! 1.0-MobileNet-224, 0.25-MobileNet-128 and 1.0-MobileNetV2-224 to the logits, batch 1, on the
//! calling thread (the kernels do not spawn threads), with the portable kernels and, where the
//! CPU has them, the AVX2 and AVX-512 VNNI ones.
//!
//! The weights are random uint8 with synthetic quantization (`NetworkParams::random`): the
//! integer kernels take the same time on any values. Run with `cargo bench --bench int8`; before
//! divan's table a summary prints each model's median latency, its rate in GMAC/s (the paper's
//! mult-adds / time) and where the time goes by layer kind (from the gaps between the trace
//! callbacks of one run). First it measures the register-only `vpdpbusd` throughput of this core
//! ([`vnni_peak_gmacs`]), the ceiling every VNNI figure is a share of.

use std::time::Instant;

use divan::Bencher;
use mobilenet_cli::arch::{Config, Family};
use mobilenet_cli::cost::analyze;
use mobilenet_cli::quant::{Kernels, NetworkParams, Output, QuantizedNetwork};

const MODELS: [&str; 3] = ["v1_1.0_224", "v1_0.25_128", "v2_1.0_224"];

fn main() {
    #[cfg(target_arch = "x86_64")]
    if Kernels::Vnni.available() {
        let peak = vnni_peak_gmacs();
        let macs = analyze(&config("v1_1.0_224")).totals.mult_adds as f64;
        println!(
            "vpdpbusd peak: {peak:.1} GMAC/s per core (register-only, 24 independent accumulators); \
             v1_1.0_224 floor {:.2} ms for {:.1} M MACs",
            macs / peak / 1e6,
            macs / 1e6
        );
    }
    summary();
    #[cfg(target_arch = "x86_64")]
    if Kernels::Vnni.available() {
        per_layer("v1_1.0_224", vnni_peak_gmacs());
    }
    divan::main();
}

/// Each layer's median time over 21 traced runs with the best kernels, its GMAC/s and its
/// share of the `vpdpbusd` peak (depthwise, ADD and pool do not run on `vpdpbusd`: their share
/// says how far they are from the rate the GEMM could reach).
#[cfg(target_arch = "x86_64")]
fn per_layer(model: &str, peak: f64) {
    use mobilenet_cli::cost::layer_cost;

    let net = network(model);
    let input = net.random_input(1, 2);
    let mut times: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..21 {
        let mut last = Instant::now();
        let mut index = 0;
        net.run_traced(&input, 1, Output::Logits, Kernels::best(), &mut |name, _| {
            let now = Instant::now();
            if times.len() <= index {
                times.push((name.to_string(), Vec::new()));
            }
            times[index].1.push((now - last).as_secs_f64());
            index += 1;
            last = now;
        })
        .expect("a valid input");
    }
    println!(
        "int8 {:?} {model} per layer (median of 21 traced runs):",
        Kernels::best()
    );
    for (name, mut t) in times {
        t.sort_by(f64::total_cmp);
        let median = t[t.len() / 2];
        let macs = net
            .layers()
            .iter()
            .find(|l| l.name == name)
            .map_or(0, |l| layer_cost(l).mult_adds) as f64;
        let rate = macs / median / 1e9;
        println!(
            "  {name:>16} {:8.1} us {rate:7.1} GMAC/s {:5.1}% of peak",
            median * 1e6,
            100.0 * rate / peak
        );
    }
}

fn config(model: &str) -> Config {
    match model {
        "v1_1.0_224" => Config::paper(1.0, 224),
        "v1_0.25_128" => Config::paper(0.25, 128),
        "v2_1.0_224" => Config::family(Family::V2, 1.0, 224),
        _ => unreachable!("unknown benchmark model {model}"),
    }
    .expect("a valid configuration")
    .with_classes(1001)
}

fn network(model: &str) -> QuantizedNetwork {
    let params = NetworkParams::random(&config(model), 1).expect("v1 and v2 run in int8");
    QuantizedNetwork::new(params).expect("random parameters are valid")
}

/// The kernel sets this CPU runs, fastest last.
fn kernel_sets() -> Vec<Kernels> {
    Kernels::fast()
}

fn forward(net: &QuantizedNetwork, input: &[u8], kernels: Kernels) -> Vec<u8> {
    net.run_traced(input, 1, Output::Logits, kernels, &mut |_, _| {})
        .expect("a valid input")
}

/// Median of 15 timed forward passes after one warm-up, with GMAC/s and a per-kind breakdown.
fn summary() {
    for model in MODELS {
        let net = network(model);
        let input = net.random_input(1, 2);
        let macs = analyze(&config(model)).totals.mult_adds as f64;
        for kernels in kernel_sets() {
            let runs = 15;
            let mut times: Vec<f64> = (0..=runs)
                .map(|_| {
                    let start = Instant::now();
                    divan::black_box(forward(&net, &input, kernels));
                    start.elapsed().as_secs_f64()
                })
                .skip(1)
                .collect();
            times.sort_by(f64::total_cmp);
            let median = times[runs / 2];
            println!(
                "int8 {kernels:?} {model}: median {:.2} ms over {runs} runs, {:.1} GMAC/s; {}",
                median * 1e3,
                macs / median / 1e9,
                breakdown(&net, &input, kernels)
            );
        }
    }
}

/// Milliseconds by layer kind in one traced run: the time before each trace callback is the
/// layer it reports (an ADD's after its projection's).
fn breakdown(net: &QuantizedNetwork, input: &[u8], kernels: Kernels) -> String {
    let kinds: Vec<(String, String)> = net
        .layers()
        .iter()
        .map(|l| (l.name.clone(), l.kind.name().to_string()))
        .collect();
    let mut totals: Vec<(String, f64)> = Vec::new();
    let mut last = Instant::now();
    net.run_traced(input, 1, Output::Logits, kernels, &mut |name, _| {
        let now = Instant::now();
        let kind = kinds
            .iter()
            .find(|(n, _)| n == name)
            .map_or("add", |(_, kind)| kind.as_str());
        match totals.iter_mut().find(|(k, _)| k == kind) {
            Some((_, t)) => *t += (now - last).as_secs_f64(),
            None => totals.push((kind.to_string(), (now - last).as_secs_f64())),
        }
        last = now;
    })
    .expect("a valid input");
    totals
        .iter()
        .map(|(kind, t)| format!("{kind} {:.2}", t * 1e3))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The best of 5 timings of a register-only loop of `vpdpbusd` (64 u8 x s8 MACs each) on 24
/// independent accumulators (enough to cover its latency on every core measured), in GMAC/s.
#[cfg(target_arch = "x86_64")]
fn vnni_peak_gmacs() -> f64 {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 VNNI.
    #[target_feature(enable = "avx512vnni,avx512f")]
    unsafe fn dot_products(iterations: usize, a: i32, b: i32) -> i32 {
        let (a, b) = (_mm512_set1_epi32(a), _mm512_set1_epi32(b));
        let mut acc = [_mm512_setzero_si512(); 24];
        for _ in 0..iterations {
            for acc in &mut acc {
                *acc = _mm512_dpbusd_epi32(*acc, a, b);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm512_setzero_si512(), |s, &v| _mm512_add_epi32(s, v));
        _mm512_reduce_add_epi32(sum)
    }

    let iterations = 200_000;
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            // SAFETY: main checked that the CPU has the VNNI kernels' features (AVX-512F, BW,
            // VL, VNNI).
            divan::black_box(unsafe { dot_products(iterations, divan::black_box(1), divan::black_box(2)) });
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    (iterations * 24 * 64) as f64 / best / 1e9
}

#[divan::bench(args = MODELS, sample_count = 10)]
fn portable(bencher: Bencher, model: &str) {
    let net = network(model);
    let input = net.random_input(1, 2);
    bencher.bench_local(|| forward(&net, &input, Kernels::Portable));
}

/// Ignored on a CPU without AVX2.
#[divan::bench(args = MODELS, sample_count = 10, ignore = !Kernels::Avx2.available())]
fn avx2(bencher: Bencher, model: &str) {
    let net = network(model);
    let input = net.random_input(1, 2);
    bencher.bench_local(|| forward(&net, &input, Kernels::Avx2));
}

/// Ignored on a CPU without AVX-512 VNNI.
#[divan::bench(args = MODELS, sample_count = 10, ignore = !Kernels::Vnni.available())]
fn vnni(bencher: Bencher, model: &str) {
    let net = network(model);
    let input = net.random_input(1, 2);
    bencher.bench_local(|| forward(&net, &input, Kernels::Vnni));
}

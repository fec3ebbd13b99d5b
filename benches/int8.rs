//! int8 benchmarks: the forward pass (`mobilenet_cli::quant`, TFLite's uint8 arithmetic) of
//! 1.0-MobileNet-224, 0.25-MobileNet-128 and 1.0-MobileNetV2-224 to the logits, batch 1, on the
//! calling thread (the kernels do not spawn threads), with the portable kernels and, where the
//! CPU has it, the AVX-512 VNNI GEMM.
//!
//! The weights are random uint8 with synthetic quantization (`NetworkParams::random`): the
//! integer kernels take the same time on any values. Run with `cargo bench --bench int8`; before
//! divan's table a summary prints each model's median latency, its rate in GMAC/s (the paper's
//! mult-adds / time) and where the time goes by layer kind (from the gaps between the trace
//! callbacks of one run).

use std::time::Instant;

use divan::Bencher;
use mobilenet_cli::arch::{Config, Family};
use mobilenet_cli::cost::analyze;
use mobilenet_cli::quant::{Kernels, NetworkParams, Output, QuantizedNetwork};

const MODELS: [&str; 3] = ["v1_1.0_224", "v1_0.25_128", "v2_1.0_224"];

fn main() {
    summary();
    divan::main();
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
    [Kernels::Portable, Kernels::Vnni]
        .into_iter()
        .filter(|k| k.available())
        .collect()
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

#[divan::bench(args = MODELS, sample_count = 10)]
fn portable(bencher: Bencher, model: &str) {
    let net = network(model);
    let input = net.random_input(1, 2);
    bencher.bench_local(|| forward(&net, &input, Kernels::Portable));
}

/// Ignored on a CPU without AVX-512 VNNI.
#[divan::bench(args = MODELS, sample_count = 10, ignore = !Kernels::Vnni.available())]
fn vnni(bencher: Bencher, model: &str) {
    let net = network(model);
    let input = net.random_input(1, 2);
    bencher.bench_local(|| forward(&net, &input, Kernels::Vnni));
}

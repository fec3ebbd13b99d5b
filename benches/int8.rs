//! int8 benchmarks: the portable forward pass (`mobilenet_cli::quant`, TFLite's uint8 arithmetic)
//! of 1.0-MobileNet-224, 0.25-MobileNet-128 and 1.0-MobileNetV2-224 to the logits, batch 1, on
//! the calling thread (the kernels do not spawn threads).
//!
//! The weights are random uint8 with synthetic quantization (`NetworkParams::random`): the
//! integer kernels take the same time on any values. Run with `cargo bench --bench int8`; before
//! divan's table a summary prints each model's median latency and its rate in GMAC/s
//! (the paper's mult-adds / time).

use std::time::Instant;

use divan::Bencher;
use mobilenet_cli::arch::{Config, Family};
use mobilenet_cli::cost::analyze;
use mobilenet_cli::quant::{NetworkParams, Output, QuantizedNetwork};

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

/// Median of `runs` timed forward passes after one warm-up, printed with GMAC/s.
fn summary() {
    for model in MODELS {
        let net = network(model);
        let input = net.random_input(1, 2);
        let runs = 15;
        let mut times: Vec<f64> = (0..=runs)
            .map(|_| {
                let start = Instant::now();
                divan::black_box(net.run(&input, 1, Output::Logits).expect("a valid input"));
                start.elapsed().as_secs_f64()
            })
            .skip(1)
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times[runs / 2];
        let macs = analyze(&config(model)).totals.mult_adds as f64;
        println!(
            "int8 portable {model}: median {:.2} ms over {runs} runs, {:.1} GMAC/s",
            median * 1e3,
            macs / median / 1e9
        );
    }
}

#[divan::bench(args = MODELS, sample_count = 10)]
fn forward(bencher: Bencher, model: &str) {
    let net = network(model);
    let input = net.random_input(1, 2);
    bencher.bench_local(|| net.run(&input, 1, Output::Logits).expect("a valid input"));
}

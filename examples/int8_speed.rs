//! Times the int8 engine (`mobilenet_cli::quant`, TFLite's uint8 reference arithmetic byte for
//! byte) or the fast fp32 engine on a shipped model, batch 1, for `scripts/bench_peers.py`
//! (issue 13's peer benchmark) until the CLI's `--precision` flag lands.
//!
//! Usage (from the repository root, which holds the int8 fixtures):
//! `cargo run --release --example int8_speed -- MODEL ENGINE THREADS RUNS [INPUT]`
//! - MODEL: a shipped v1 or v2 model (`1.0_224`, `v2_1.0_224`, ...);
//! - ENGINE: `int8` (the fastest kernels this CPU runs; `int8-portable`, `int8-avx2`,
//!   `int8-vnni`, `int8-amx` force a kernel set) or `f32` (the fast engine);
//! - THREADS, RUNS: threads of the pass, timed passes (after RUNS / 5 + 1 warm-up passes);
//! - INPUT: the image as uint8 HWC bytes at the model's resolution (the network input of
//!   TFLite's .tflite); without it, a fixed pseudo-random image.
//!
//! Prints one JSON object: the per-run latencies in milliseconds, their median, the top-1 class
//! and, for int8, the uint8 softmax output (probability = q / 256).
//!
//! The int8 network takes its activation quantization from
//! `tests/fixtures/int8/params_mobilenet_*.safetensors` (TFLite's constants; the weights are the
//! embedded ones). The fp32 input is TF-slim's `q / 127.5 - 1` of the same bytes, NCHW.

use std::time::Instant;

use mobilenet_cli::arch::Family;
use mobilenet_cli::engine::Engine;
use mobilenet_cli::nn::{MobileNet, ModelId};
use mobilenet_cli::quant::{Kernels, NetworkParams, Output, QuantizedNetwork};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, engine, threads, runs, rest @ ..] = args.as_slice() else {
        anyhow::bail!(
            "usage: int8_speed MODEL int8|int8-portable|int8-avx2|int8-vnni|int8-amx|f32 THREADS RUNS [INPUT]"
        );
    };
    let id: ModelId = model.parse().map_err(|e| anyhow::anyhow!("{model}: {e}"))?;
    let threads: usize = threads.parse()?;
    let runs: usize = runs.parse()?;
    let resolution = id.resolution() as usize;
    let image: Vec<u8> = match rest.first() {
        Some(path) => std::fs::read(path)?,
        None => (0..resolution * resolution * 3)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    };
    anyhow::ensure!(
        image.len() == resolution * resolution * 3,
        "the input has {} bytes, expected {resolution} x {resolution} x 3",
        image.len()
    );
    let warmup = runs / 5 + 1;
    let (times, top1, output, kernels) = match engine.as_str() {
        "f32" => {
            let net = MobileNet::from_embedded(id, &candle_core::Device::Cpu)?;
            let mut engine = Engine::new(net.layers(), &net.folded_weights()?, threads)?;
            // HWC uint8 to NCHW f32 in [-1, 1].
            let pixels = resolution * resolution;
            let mut input = vec![0f32; 3 * pixels];
            for (p, rgb) in image.chunks_exact(3).enumerate() {
                for (c, &q) in rgb.iter().enumerate() {
                    input[c * pixels + p] = f32::from(q) / 127.5 - 1.0;
                }
            }
            let times = time(warmup, runs, || {
                std::hint::black_box(engine.forward(&input, 1));
            });
            let logits = engine.forward(&input, 1);
            let top1 = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b]));
            (times, top1, None, engine.isa().to_string())
        }
        int8 => {
            let kernels = match int8 {
                "int8" => Kernels::best(),
                "int8-portable" => Kernels::Portable,
                "int8-vnni" => Kernels::Vnni,
                "int8-avx2" => Kernels::Avx2,
                "int8-amx" => Kernels::Amx,
                other => anyhow::bail!("unknown engine {other}"),
            };
            anyhow::ensure!(
                matches!(id.family(), Family::V1 | Family::V2),
                "{id}: int8 runs v1 and v2"
            );
            let name = match id.family() {
                Family::V1 => format!("v1_{id}"),
                _ => id.to_string(),
            };
            let activations =
                std::fs::read(format!("tests/fixtures/int8/params_mobilenet_{name}.safetensors"))?;
            let params = NetworkParams::from_safetensors(&id.config(), id.bytes(), &activations)?;
            let net = QuantizedNetwork::new(params)?.with_threads(threads)?;
            let run = || net.run_with(&image, 1, Output::Probabilities, kernels);
            let times = time(warmup, runs, || {
                std::hint::black_box(run().expect("a valid input"));
            });
            let probabilities = run()?;
            // The first of equal maxima, as argmax in NumPy.
            let top1 = (0..probabilities.len()).rev().max_by_key(|&i| probabilities[i]);
            (times, top1, Some(probabilities), format!("{kernels:?}"))
        }
    };
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let json = serde_json::json!({
        "model": id.name(),
        "engine": engine,
        "kernels": kernels,
        "threads": threads,
        "times_ms": times,
        "median_ms": sorted[sorted.len() / 2],
        "top1": top1,
        "output_u8": output,
    });
    println!("{json}");
    Ok(())
}

/// `runs` timed calls of `f` after `warmup` untimed ones, in milliseconds.
fn time(warmup: usize, runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..warmup {
        f();
    }
    (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

//! Command-line definitions (clap derive). Parsing only: validation into typed configurations
//! happens in `app`, so every error message names its flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::Format;

const ABOUT: &str = "Model explorer and cost calculator for the MobileNet family (v1: Howard et al. 2017, arXiv:1704.04861; v2: arXiv:1801.04381; v3: arXiv:1905.02244): exact mult-adds and parameters from one architecture spec, the published figures with their sources, real ImageNet classification, and measured latency.";

#[derive(Debug, Parser)]
#[command(name = "mobilenet-cli", version, about = ABOUT, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per-layer cost (paper Table 1 with mult-adds and params), totals under every counting
    /// convention, the Table 2 split, the separable saving, memory, and the published figures.
    #[command(after_help = ANALYZE_HELP)]
    Analyze(AnalyzeArgs),
    /// List the published figures (papers, TF-slim, TFLite, Keras, timm, torchvision), each with its source.
    #[command(after_help = PRESETS_HELP)]
    Presets(PresetsArgs),
    /// Classify images with real ImageNet weights that ship inside the tool: top-k labels with probabilities.
    #[command(after_help = CLASSIFY_HELP)]
    Classify(ClassifyArgs),
    /// Top-1/top-5 accuracy on a labelled folder (one subfolder per class), per-class accuracy and confusions.
    #[command(after_help = EVALUATE_HELP)]
    Evaluate(EvaluateArgs),
    /// Measure inference latency of one variant on this machine (median, p90, throughput, GFLOP/s).
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
    /// Latency / accuracy / size trade-off over an alpha x resolution grid, with Pareto front, budgets and plot.
    #[command(after_help = SWEEP_HELP)]
    Sweep(SweepArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  mobilenet-cli completions bash > ~/.local/share/bash-completion/completions/mobilenet-cli"
    )]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these command-line definitions.
    #[command(after_help = "Example:\n  mobilenet-cli man > mobilenet-cli.1 && man ./mobilenet-cli.1")]
    Man,
}

const CLASSIFY_HELP: &str = "\
Examples:
  mobilenet-cli classify photo.jpg
  mobilenet-cli classify photos/ --model 0.25_128 --top 3 --format json
  mobilenet-cli classify a.png b.webp --weights my_mobilenet.safetensors

Exit codes: 0 all images classified; 1 nothing could be classified; 2 usage error;
3 some images failed (each failure is reported on stderr, the others have results).";

const EVALUATE_HELP: &str = "\
The folder holds one subfolder per class, named by its ImageNet label (e.g. 'Egyptian cat',
case-insensitive) or WordNet id where known.

Examples:
  mobilenet-cli evaluate my_val_set/
  mobilenet-cli evaluate my_val_set/ --model 0.5_160 --format json --output eval.json";

const BENCH_HELP: &str = "\
Examples:
  mobilenet-cli bench --model 1.0_224
  mobilenet-cli bench --alpha 0.5 --res 160 --threads 1 --runs 50
  mobilenet-cli bench --model 1.0_224 --per-layer
  mobilenet-cli bench --alpha 1.0 --res 224 --engine reference --min-time 5";

const SWEEP_HELP: &str = "\
Examples:
  mobilenet-cli sweep                                   # the paper's 16 points, timed
  mobilenet-cli sweep --families all --max-latency-ms 1 # every family, best within 1 ms
  mobilenet-cli sweep --no-timing --format markdown
  mobilenet-cli sweep --max-latency-ms 5 --min-top1 60 --plot tradeoff.svg
  mobilenet-cli sweep --alphas 0.35,0.6,1.0 --resolutions 96,176 --format json --output sweep.json";

const ANALYZE_HELP: &str = "\
Counting conventions (all reported):
  mult_adds         multiply-adds of conv and FC layers only (paper eq. 2, 4, 5)
  flops             2 x mult_adds (many tools print MACs and call them FLOPs)
  params            conv + FC weights only (the paper's Table 2 convention)
  params_trainable  + BatchNorm gamma/beta + FC bias (PyTorch/timm)
  params_keras      + BatchNorm moving mean/variance (Keras \"Total params\")
  params_deployed   BatchNorm folded into conv biases: weights + biases (the shipped weight files)
  se_mult_adds, se_params  squeeze-and-excite (v3), reported apart from mult_adds and params
  elementwise_ops   residual adds, SE channel multiplies and hard-swish products, one per element
  mult_adds_with_se, params_with_se  the convention of the published MobileNetV3 figures

Examples:
  mobilenet-cli analyze --alpha 0.5 --res 160
  mobilenet-cli analyze --family v2 --alpha 0.75 --res 192
  mobilenet-cli analyze --family v3-large --minimalistic --format json
  mobilenet-cli analyze --rho 0.714 --format json --output mobilenet.json
  mobilenet-cli analyze --variant full-conv --format markdown";

const PRESETS_HELP: &str = "\
Examples:
  mobilenet-cli presets --alpha 0.75
  mobilenet-cli presets --source tflite-hosted --format csv
  mobilenet-cli presets --family v2 --res 224";

/// Which model to build: the architecture spec's parameters.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Width multiplier alpha (paper eq. 6), any finite value in (0, 2]; channels =
    /// max(int(c * alpha), 8) for v1, make_divisible(c * alpha, 8) for v2 and v3 (the TF-slim
    /// rules).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub alpha: f64,
    /// Input resolution in pixels (any integer >= 32); the paper uses 224, 192, 160, 128.
    #[arg(long = "res", value_name = "PIXELS", conflicts_with = "rho")]
    pub resolution: Option<i64>,
    /// The paper's resolution multiplier rho (eq. 7): resolution = round(224 * rho).
    #[arg(long, allow_negative_numbers = true)]
    pub rho: Option<f64>,
    /// Depthwise channel multiplier (Keras's `depth_multiplier`): output channels per input
    /// channel of each depthwise layer. It is NOT the paper's resolution multiplier (that is --rho).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub depth_multiplier: u32,
    /// Classes of the final FC layer (the paper's 1000; the shipped weights have 1001 with background).
    #[arg(long, default_value_t = 1000)]
    pub classes: u32,
    /// The paper's ablations: standard, full-conv (Table 4: full 3x3 convolutions instead of
    /// depthwise separable), shallow (Table 5: without the five 14x14x512 separable layers).
    #[arg(long, default_value = "standard", value_name = "VARIANT")]
    pub variant: String,
    /// Model family: v1 (Howard et al. 2017), v2 (MobileNetV2, Sandler et al. 2018), v3-large or
    /// v3-small (MobileNetV3, Howard et al. 2019). bench runs every family (random weights),
    /// classify and evaluate every family given --weights; sweep takes --families instead.
    #[arg(long, default_value = "v1", value_name = "FAMILY")]
    pub family: String,
    /// MobileNetV3's minimalistic models: no squeeze-and-excite, ReLU instead of hard-swish,
    /// 3x3 instead of 5x5 depthwise kernels (v3-large and v3-small only).
    #[arg(long)]
    pub minimalistic: bool,
}

/// Where and how to write results.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to FILE (atomically: a temporary file, then a rename) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Only this family: v1, v2, v3-large, v3-small or other.
    #[arg(long)]
    pub family: Option<String>,
    /// Only this width multiplier.
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// Only this resolution.
    #[arg(long = "res", value_name = "PIXELS")]
    pub resolution: Option<u32>,
    /// Only this source id (paper-v1, slim-v1, tflite-hosted, paper-v2, slim-v2, paper-v3, slim-v3, keras-doc, timm, torchvision).
    #[arg(long)]
    pub source: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub use crate::infer::EngineKind;

/// How to run inference.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Inference threads (default: all cores). Set before candle starts its thread pool.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Inference engine.
    #[arg(long, value_enum, default_value_t = EngineKind::Fast)]
    pub engine: EngineKind,
}

/// Which pretrained weights to use.
#[derive(Debug, Clone, Args)]
pub struct WeightsArgs {
    /// A shipped ImageNet model: 0.25_128, 0.5_160, 0.75_192, 1.0_224 (v1) or v2_1.0_224
    /// (MobileNetV2). No MobileNetV3 weights ship.
    #[arg(long, default_value = "1.0_224", conflicts_with = "weights")]
    pub model: String,
    /// Your own weights (safetensors; see the README for the tensor names): f32, f16, bf16 or
    /// the uint8 format, with or without BatchNorm tensors.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Family of --weights when its metadata does not say (v1, v2, v3-large, v3-small).
    #[arg(long)]
    pub family: Option<String>,
    /// Width multiplier of --weights when its metadata does not say.
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// Resolution to run at (default: the model's trained resolution). The network is fully
    /// convolutional, so any resolution >= 32 works; accuracy is best at the trained one.
    #[arg(long = "res", value_name = "PIXELS")]
    pub resolution: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Image files (JPEG, PNG, BMP, WebP) and directories (their images, not recursive).
    #[arg(required = true, value_name = "IMAGE_OR_DIR")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub weights: WeightsArgs,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// A folder with one subfolder of images per class.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub weights: WeightsArgs,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Most frequent confusions to list.
    #[arg(long, default_value_t = 10)]
    pub confusions: usize,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Timing options shared by bench and sweep.
#[derive(Debug, Clone, Args)]
pub struct TimingArgs {
    /// Untimed runs before measuring.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed runs (ignored with --min-time).
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Keep timing until this many seconds have been measured (at least 3 runs).
    #[arg(long, allow_negative_numbers = true, value_name = "SECONDS")]
    pub min_time: Option<f64>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Deterministic synthetic timings for tests: nothing is run.
    #[arg(long, hide = true)]
    pub mock_timer: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Time a shipped model (its weights, alpha and resolution) instead of --alpha/--res.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    #[command(flatten)]
    pub spec: ModelArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
    /// Time every layer: layer, kind, mult-adds, time, share of time next to share of mult-adds.
    #[arg(long)]
    pub per_layer: bool,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Members of the family to sweep, comma-separated: v1, v2, v3-large, v3-small,
    /// v3-large-minimalistic, v3-small-minimalistic, or all. Each gets its own grid: its
    /// published TF-slim checkpoints (v1 16 points, v2 22, v3 1.0 and 0.75 at 224).
    #[arg(long, visible_alias = "family", default_value = "v1", value_name = "LIST")]
    pub families: String,
    /// Width multipliers, comma-separated (default: each family's published ones). Crossed
    /// with the resolutions.
    #[arg(long, value_name = "LIST")]
    pub alphas: Option<String>,
    /// Resolutions, comma-separated (default: each family's published ones). Crossed with the
    /// width multipliers.
    #[arg(long, value_name = "LIST")]
    pub resolutions: Option<String>,
    /// Analytic columns only: no inference is run.
    #[arg(long)]
    pub no_timing: bool,
    /// Published accuracy table: slim (TF-slim float), slim-quant, paper, tflite.
    #[arg(long, value_enum, default_value_t = crate::sweep::AccuracySource::Slim)]
    pub accuracy_source: crate::sweep::AccuracySource,
    /// Budget: median latency at most this many milliseconds.
    #[arg(long, allow_negative_numbers = true, value_name = "MS")]
    pub max_latency_ms: Option<f64>,
    /// Budget: f32 weights at most this many megabytes (10^6 bytes).
    #[arg(long, allow_negative_numbers = true, value_name = "MB")]
    pub max_size_mb: Option<f64>,
    /// Budget: top-1 accuracy at least this many percent.
    #[arg(long, allow_negative_numbers = true, value_name = "PERCENT")]
    pub min_top1: Option<f64>,
    /// Also draw the trade-off plot to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Command {
    /// The --threads flag of commands that run inference.
    pub fn threads(&self) -> Option<usize> {
        match self {
            Command::Classify(a) => a.run.threads,
            Command::Evaluate(a) => a.run.threads,
            Command::Bench(a) => a.run.threads,
            Command::Sweep(a) => a.run.threads,
            Command::Analyze(_) | Command::Presets(_) | Command::Completions { .. } | Command::Man => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}

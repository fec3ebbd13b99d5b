//! Command-line definitions (clap derive). Parsing only: validation into typed configurations
//! happens in `app`, so every error message names its flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::Format;

const ABOUT: &str = "Model explorer and cost calculator for the MobileNet family (Howard et al. 2017, arXiv:1704.04861): exact mult-adds and parameters from one architecture spec, the published figures with their sources, real ImageNet classification, and measured latency.";

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
}

const ANALYZE_HELP: &str = "\
Counting conventions (all reported):
  mult_adds         multiply-adds of conv and FC layers only (paper eq. 2, 4, 5)
  flops             2 x mult_adds (many tools print MACs and call them FLOPs)
  params            conv + FC weights only (the paper's Table 2 convention)
  params_trainable  + BatchNorm gamma/beta + FC bias (PyTorch/timm)
  params_keras      + BatchNorm moving mean/variance (Keras \"Total params\")
  params_deployed   BatchNorm folded into conv biases: weights + biases (the shipped weight files)

Examples:
  mobilenet-cli analyze --alpha 0.5 --res 160
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
    /// max(int(c * alpha), 8) (the TF-slim rule).
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
    /// Model family (v1; v2 and v3 are planned).
    #[arg(long, default_value = "v1")]
    pub family: String,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}

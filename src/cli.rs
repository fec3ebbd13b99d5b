//! Command-line definitions (clap derive): the low layer, as close to the flags as possible
//! (ripgrep's `LowArgs`). Each value is parsed into its type here, by the type's one parser
//! (`Alpha`, `Resolution`, `Family`, `Variant`, `ModelId`, `Member`), so a bad value is
//! reported by clap with the flag's name. Whatever needs more than one flag, the machine or
//! the file system (conflicts, thread counts, output paths, memory) is checked when
//! `app::plan` turns these into one validated plan per command.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::arch::{Alpha, Family, Resolution, Variant};
use crate::infer::{EngineKind, INT8_KERNELS, Precision, kernels_name, kernels_named};
use crate::nn::ModelId;
use crate::quant::Kernels;
use crate::report::Format;
use crate::sweep::{AccuracySource, Member};
use crate::vision::CROP_FRACTION;

const ABOUT: &str = "Model explorer and cost calculator for the MobileNet family (v1: Howard et al. 2017, arXiv:1704.04861; v2: arXiv:1801.04381; v3: arXiv:1905.02244): exact mult-adds and parameters from one architecture spec, the published figures with their sources, real ImageNet classification, and measured latency.";

/// The exit codes every command documents (`--help`, the man pages and the README).
pub const EXIT_CODES: &str = "\
Exit codes: 0 success; 1 runtime failure (unreadable file, bad weights, failed write);
2 usage error (bad flag value or combination, output path not writable, memory limit);
3 some inputs failed (each reported, the others have results); 130/143 interrupted by
SIGINT/SIGTERM (classify, evaluate and sweep write what they finished; bench writes nothing;
retrain writes no network but keeps the features it cached).";

#[derive(Debug, Parser)]
#[command(name = "mobilenet-cli", version, about = ABOUT, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    /// No progress bars and no notes on stderr (errors are still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per-layer cost (paper Table 1 with mult-adds and params), totals under every counting
    /// convention, the Table 2 split, the separable saving, memory, and the published figures.
    #[command(after_help = analyze_help())]
    Analyze(AnalyzeArgs),
    /// List the published figures (papers, TF-slim, TFLite, Keras, timm, torchvision), each with its source.
    #[command(after_help = with_exit_codes(PRESETS_HELP))]
    Presets(PresetsArgs),
    /// Classify images with real ImageNet weights that ship inside the tool: top-k labels with probabilities.
    #[command(after_help = with_exit_codes(CLASSIFY_HELP))]
    Classify(ClassifyArgs),
    /// Top-1/top-5 accuracy on a labelled folder (one subfolder per class), per-class accuracy and confusions.
    #[command(after_help = with_exit_codes(EVALUATE_HELP))]
    Evaluate(EvaluateArgs),
    /// Measure inference latency of one variant on this machine (median, p90, throughput, GFLOP/s).
    #[command(after_help = with_exit_codes(BENCH_HELP))]
    Bench(BenchArgs),
    /// Latency / accuracy / size trade-off over an alpha x resolution grid, with Pareto front, budgets and plot.
    #[command(after_help = with_exit_codes(SWEEP_HELP))]
    Sweep(SweepArgs),
    /// Retrain the classifier head on your own labelled folder and write the whole network (backbone as shipped, new logits, your labels).
    #[command(after_help = with_exit_codes(RETRAIN_HELP))]
    Retrain(RetrainArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = with_exit_codes(
        "Example:\n  mobilenet-cli completions bash > ~/.local/share/bash-completion/completions/mobilenet-cli"
    ))]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page of the tool or of one command (roff), or write every page to a folder.
    #[command(after_help = with_exit_codes(
        "Examples:\n  mobilenet-cli man > mobilenet-cli.1 && man ./mobilenet-cli.1\n  mobilenet-cli man classify | man -l -\n  mobilenet-cli man --dir man1/     # mobilenet-cli.1 and one page per command"
    ))]
    Man(ManArgs),
}

fn with_exit_codes(help: &str) -> String {
    format!("{help}\n\n{EXIT_CODES}")
}

fn analyze_help() -> String {
    with_exit_codes(&format!(
        "{}\n\n{ANALYZE_EXAMPLES}",
        crate::cost::help_text().trim_end()
    ))
}

const CLASSIFY_HELP: &str = "\
Examples:
  mobilenet-cli classify photo.jpg
  mobilenet-cli classify photos/ --model 0.25_128 --top 3 --format json
  mobilenet-cli classify photos/ --format jsonl | head -1   # results stream as batches finish
  cat photo.jpg | mobilenet-cli classify -                  # - reads one image from stdin
  mobilenet-cli classify a.png b.webp --weights my_mobilenet.safetensors
  mobilenet-cli classify photo.jpg --precision int8          # TFLite's uint8 arithmetic, exactly
  mobilenet-cli classify crop224.png --precision int8 --crop 1 --format json   # q/256 probabilities";

const EVALUATE_HELP: &str = "\
The folder holds one subfolder per class, named by one of the model's labels: those a weights
file carries (a retrain output), else the ImageNet label (e.g. 'Egyptian cat',
case-insensitive) or WordNet id.

Examples:
  mobilenet-cli evaluate my_val_set/
  mobilenet-cli evaluate my_val_set/ --model 0.5_160 --format json --output eval.json
  mobilenet-cli evaluate my_val_set/ --model v2_1.0_224 --precision int8";

const RETRAIN_HELP: &str = "\
DIR holds one subfolder of images per class (any names, at least 2 classes). Unless --validation
or --test gives a folder, each image goes to training, validation or test by a hash of its path
relative to DIR (10% and 10% by default): the same on every run and when files are added.
Features are the backbone's vector before its logits (v1, v2: the global average pool; v3: the
conv_head output), cached under $XDG_CACHE_HOME/mobilenet-cli/features (or ~/.cache/...), so a
second run over the same images runs no forward pass.

Examples:
  mobilenet-cli retrain photos/ --output mine.safetensors
  mobilenet-cli retrain train/ --test val/ --model v2_1.0_224 --output mine.safetensors --format json
  mobilenet-cli retrain photos/ --output mine.safetensors --augment --seed 3
  mobilenet-cli retrain photos/ --output mine.safetensors --features-out features.safetensors
  mobilenet-cli classify new.jpg --weights mine.safetensors
  mobilenet-cli evaluate val/ --weights mine.safetensors";

const BENCH_HELP: &str = "\
Examples:
  mobilenet-cli bench --model 1.0_224
  mobilenet-cli bench --alpha 0.5 --res 160 --threads 1 --runs 50
  mobilenet-cli bench --model 1.0_224 --per-layer
  mobilenet-cli bench --model 1.0_224 --precision int8 --per-layer   # share of the VNNI peak
  mobilenet-cli bench --family v3-small --engine reference --min-time 5";

const SWEEP_HELP: &str = "\
Examples:
  mobilenet-cli sweep                                   # the paper's 16 points, timed
  mobilenet-cli sweep --families all --max-latency-ms 1 # every family, best within 1 ms
  mobilenet-cli sweep --no-timing --format markdown
  mobilenet-cli sweep --max-latency-ms 5 --min-top1 60 --plot tradeoff.svg
  mobilenet-cli sweep --precision f32,int8 --plot tradeoff.svg  # both in one table
  mobilenet-cli sweep --alphas 0.35,0.6,1.0 --resolutions 96,176 --format json --output sweep.json
  mobilenet-cli sweep --data photos/ --plot mine.svg       # accuracy measured on your own images
  mobilenet-cli sweep --data train/ --test val/ --resolutions 160 --no-timing
  mobilenet-cli sweep --data photos/ --weights mine.safetensors  # your retrained file beside them";

const ANALYZE_EXAMPLES: &str = "\
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

/// A type whose values have names: parsed by its own `FromStr` (which may accept more
/// spellings than the names), offered by completions and listed in `--help`.
pub trait Named: FromStr + Clone + Send + Sync + 'static {
    fn names() -> Vec<String>;
}

impl Named for Family {
    fn names() -> Vec<String> {
        Family::ALL.iter().map(|f| f.name().to_string()).collect()
    }
}

impl Named for Variant {
    fn names() -> Vec<String> {
        Variant::ALL.iter().map(|v| v.name().to_string()).collect()
    }
}

impl Named for ModelId {
    fn names() -> Vec<String> {
        ModelId::ALL.iter().map(|m| m.name().to_string()).collect()
    }
}

/// A `--families` item: one member, or every member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChoice {
    All,
    One(Member),
}

impl FromStr for MemberChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Err("empty value".into()),
            "all" => Ok(MemberChoice::All),
            name => name.parse().map(MemberChoice::One),
        }
    }
}

impl Named for MemberChoice {
    fn names() -> Vec<String> {
        let mut names = vec!["all".to_string()];
        names.extend(crate::sweep::member::ALL.iter().map(|m| m.name()));
        names
    }
}

/// clap value parser for a [`Named`] type: its `FromStr` decides, its names are the possible
/// values shown in help and completions.
#[derive(Clone)]
pub struct NamedParser<T>(PhantomData<T>);

/// The value parser of a [`Named`] type.
pub fn named<T: Named>() -> NamedParser<T> {
    NamedParser(PhantomData)
}

impl<T: Named> TypedValueParser for NamedParser<T>
where
    T::Err: std::fmt::Display,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        clap::builder::StringValueParser::new()
            .try_map(|s| s.parse::<T>().map_err(|e| e.to_string()))
            .parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(T::names().into_iter().map(PossibleValue::new)))
    }
}

/// clap value parser through a type's `FromStr` (the one parser of `Alpha` and `Resolution`).
fn parsed<T>(s: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

/// `--rho`: the paper's resolution multiplier, turned into the resolution it gives.
fn rho(s: &str) -> Result<Resolution, String> {
    let value: f64 = s.trim().parse().map_err(|_| "not a number".to_string())?;
    Resolution::from_rho(value).map_err(|e| e.to_string())
}

/// Which model to build: the architecture spec's parameters. Every field is optional so that
/// the plan can tell a flag given from a default (and refuse one that conflicts with
/// `--model` or `--weights`); the defaults are stated in the help.
#[derive(Debug, Clone, Default, Args)]
pub struct ModelArgs {
    /// Width multiplier alpha (paper eq. 6), any finite value in (0, 2] [default: 1.0];
    /// channels = max(int(c * alpha), 8) for v1, make_divisible(c * alpha, 8) for v2 and v3
    /// (the TF-slim rules).
    #[arg(long, value_parser = parsed::<Alpha>, allow_negative_numbers = true)]
    pub alpha: Option<Alpha>,
    /// Input resolution in pixels, 32 to 8192 [default: 224]; the paper uses 224, 192, 160, 128.
    #[arg(long = "res", value_name = "PIXELS", value_parser = parsed::<Resolution>, allow_negative_numbers = true, conflicts_with = "rho")]
    pub resolution: Option<Resolution>,
    /// The paper's resolution multiplier rho (eq. 7): resolution = round(224 * rho), 32 to 8192.
    #[arg(long, value_parser = rho, allow_negative_numbers = true)]
    pub rho: Option<Resolution>,
    /// Depthwise channel multiplier (Keras's `depth_multiplier`), 1 to 16 [default: 1]: output
    /// channels per input channel of each depthwise layer. NOT the paper's resolution
    /// multiplier (that is --rho). v1 only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub depth_multiplier: Option<u32>,
    /// Classes of the final FC layer, 1 to 100000 [default: 1000, the paper's; the shipped
    /// weights have 1001 with background].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub classes: Option<u32>,
    /// The paper's ablations [default: standard]: full-conv (Table 4: full 3x3 convolutions
    /// instead of depthwise separable), shallow (Table 5: without the five 14x14x512 separable
    /// layers). v1 only.
    #[arg(long, value_name = "VARIANT", value_parser = named::<Variant>())]
    pub variant: Option<Variant>,
    /// Model family [default: v1]: v1 (Howard et al. 2017), v2 (MobileNetV2, Sandler et al.
    /// 2018), v3-large or v3-small (MobileNetV3, Howard et al. 2019).
    #[arg(long, value_name = "FAMILY", value_parser = named::<Family>())]
    pub family: Option<Family>,
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
    /// Write to FILE instead of standard output: checked before any work starts, written
    /// atomically (a temporary file, then a rename; an existing file keeps its permissions, a
    /// symbolic link is written through to its target).
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
    #[arg(long, value_parser = ["v1", "v2", "v3-large", "v3-small", "other"])]
    pub family: Option<String>,
    /// Only this width multiplier, in (0, 2].
    #[arg(long, value_parser = parsed::<Alpha>, allow_negative_numbers = true)]
    pub alpha: Option<Alpha>,
    /// Only this resolution, 32 to 8192.
    #[arg(long = "res", value_name = "PIXELS", value_parser = parsed::<Resolution>, allow_negative_numbers = true)]
    pub resolution: Option<Resolution>,
    /// Only this source id (paper-v1, slim-v1, tflite-hosted, paper-v2, slim-v2, paper-v3, slim-v3, keras-doc, timm, torchvision).
    #[arg(long)]
    pub source: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// How to run inference.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Inference threads, 1 to this machine's logical CPUs; 0 (the default) means all of them.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Inference engine [default: fast].
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// Arithmetic [default: f32]: f32, or int8 (TFLite's uint8 reference kernels byte for
    /// byte: MobileNet v1 and v2 from uint8 weights with activation quantization).
    /// sweep takes a comma-separated list and compares them in one table.
    #[arg(long, value_name = "PRECISION", value_enum, value_delimiter = ',')]
    pub precision: Vec<Precision>,
    /// Force the int8 kernels (tests): amx, avx512vnni, avx2, portable or reference [default: the fastest
    /// this CPU runs].
    #[arg(long, value_name = "KERNELS", value_parser = int8_kernels, hide = true)]
    pub int8_kernels: Option<Kernels>,
    /// Refuse a run whose memory, estimated from the cost model before anything is allocated,
    /// exceeds SIZE (bytes, or with a K, M, G or T suffix: powers of 1024) [default: the smaller
    /// of 8G and half the physical memory; an address-space limit (ulimit -v) lowers it].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
}

/// `--int8-kernels`: a set of int8 kernels by name.
fn int8_kernels(s: &str) -> Result<Kernels, String> {
    kernels_named(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = INT8_KERNELS.into_iter().map(kernels_name).collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// Parses a byte size: digits with an optional K, M, G or T suffix (powers of 1024, an optional
/// trailing `B` or `iB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown unit '{c}' (expected K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let value: f64 = digits
        .trim()
        .parse()
        .map_err(|_| "expected a size such as 512M or 16G".to_string())?;
    let bytes = value * 2f64.powi(shift);
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < 2f64.powi(63)) {
        return Err("must be at least 1 byte and below 8 EiB".into());
    }
    Ok(bytes as u64)
}

/// Which pretrained weights to use.
#[derive(Debug, Clone, Args)]
pub struct WeightsArgs {
    /// A shipped ImageNet model [default: 1.0_224], named ALPHA_RES for v1 and FAMILY_ALPHA_RES
    /// for the others. No MobileNetV3-Large weights ship.
    #[arg(long, value_name = "MODEL", value_parser = named::<ModelId>(), conflicts_with = "weights")]
    pub model: Option<ModelId>,
    /// Your own weights (safetensors; see the README for the tensor names): f32, f16, bf16 or
    /// the uint8 format, with or without BatchNorm tensors.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Family of --weights when its metadata does not say (v1, v2, v3-large, v3-small).
    #[arg(long, value_name = "FAMILY", value_parser = named::<Family>())]
    pub family: Option<Family>,
    /// Width multiplier of --weights when its metadata does not say, in (0, 2].
    #[arg(long, value_parser = parsed::<Alpha>, allow_negative_numbers = true)]
    pub alpha: Option<Alpha>,
    /// Resolution to run at, 32 to 8192 (default: the model's trained resolution). The network
    /// is fully convolutional, so any resolution works; accuracy is best at the trained one.
    #[arg(long = "res", value_name = "PIXELS", value_parser = parsed::<Resolution>, allow_negative_numbers = true)]
    pub resolution: Option<Resolution>,
}

/// classify's output formats: the shared ones plus JSON Lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClassifyFormat {
    /// Human-readable tables (comfy-table).
    Table,
    /// One JSON array of every image's record.
    Json,
    /// JSON Lines: one object per image, written as each batch finishes.
    Jsonl,
    /// One row per (image, rank), written as each batch finishes; failed images get a row with their error.
    Csv,
    /// GitHub-flavoured Markdown tables.
    Markdown,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Image files (JPEG, PNG, BMP, WebP), directories (their images, not recursive, hidden
    /// files skipped) and `-` for one image read from standard input.
    #[arg(required = true, value_name = "IMAGE_OR_DIR")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub weights: WeightsArgs,
    /// How many classes to show per image, at least 1 (more than the model's classes lists them
    /// all).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub top: u32,
    /// Central crop: the fraction of each side kept before resizing, in (0, 1] (0.875 is
    /// TF-slim's evaluation crop); 1 keeps the whole image, and an image already at the model's
    /// resolution then reaches the network unchanged.
    #[arg(long, value_name = "FRACTION", default_value_t = CROP_FRACTION, allow_negative_numbers = true)]
    pub crop: f64,
    /// Images per forward pass, at least 1; a batch whose estimated memory is above the limit is
    /// refused (see --max-memory).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    #[command(flatten)]
    pub run: RunArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ClassifyFormat::Table)]
    pub format: ClassifyFormat,
    /// Write to FILE instead of standard output (checked before any work; atomic; an
    /// interrupted run keeps what was classified).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// A folder with one subfolder of images per class.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub weights: WeightsArgs,
    /// Images per forward pass, at least 1; a batch whose estimated memory is above the limit is
    /// refused (see --max-memory).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Most frequent confusions to list.
    #[arg(long, default_value_t = 10)]
    pub confusions: usize,
    /// Central crop: the fraction of each side kept before resizing, in (0, 1] (0.875 is
    /// TF-slim's evaluation crop); 1 keeps the whole image, and an image already at the model's
    /// resolution then reaches the network unchanged.
    #[arg(long, value_name = "FRACTION", default_value_t = CROP_FRACTION, allow_negative_numbers = true)]
    pub crop: f64,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// Timing options shared by bench and sweep. Optional so that the plan can refuse them where
/// they would be ignored (`sweep --no-timing`); the defaults are in the help.
#[derive(Debug, Clone, Default, Args)]
pub struct TimingArgs {
    /// Untimed runs before measuring, 0 to 10000 [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub warmup: Option<u32>,
    /// Timed runs, 1 to 100000 [default: 20].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000), conflicts_with = "min_time")]
    pub runs: Option<u32>,
    /// Keep timing until this many seconds have been measured (more than 0, at most 3600), with
    /// at least 3 and at most 100000 runs; instead of --runs.
    #[arg(long, allow_negative_numbers = true, value_name = "SECONDS")]
    pub min_time: Option<f64>,
    /// Images per forward pass, at least 1 [default: 1]; a batch whose estimated memory is above
    /// the limit is refused (see --max-memory).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: Option<u32>,
    /// Deterministic synthetic timings for tests: nothing is run.
    #[arg(long, hide = true)]
    pub mock_timer: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Time a shipped model (its weights, alpha and resolution) instead of --alpha/--family.
    #[arg(long, value_name = "MODEL", value_parser = named::<ModelId>(), conflicts_with = "weights")]
    pub model: Option<ModelId>,
    /// Time your own weights file (as classify --weights); --family and --alpha then say what
    /// its metadata does not.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
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
    #[arg(long, visible_alias = "family", default_value = "v1", value_name = "LIST", value_delimiter = ',', value_parser = named::<MemberChoice>(), conflicts_with = "data")]
    pub families: Vec<MemberChoice>,
    /// Width multipliers in (0, 2], comma-separated (default: each family's published ones).
    /// Crossed with the resolutions.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parsed::<Alpha>, allow_negative_numbers = true, conflicts_with = "data")]
    pub alphas: Option<Vec<Alpha>>,
    /// Resolutions 32 to 8192, comma-separated (default: each family's published ones).
    /// Crossed with the width multipliers. With --data: the pretrained backbones also run at
    /// these input sizes (off their trained resolution, marked ~).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parsed::<Resolution>, allow_negative_numbers = true)]
    pub resolutions: Option<Vec<Resolution>>,
    /// Analytic columns only: no inference is run.
    #[arg(long)]
    pub no_timing: bool,
    /// Published accuracy table: slim (TF-slim float), slim-quant, paper, tflite.
    #[arg(long, value_enum, default_value_t = AccuracySource::Slim, conflicts_with = "data")]
    pub accuracy_source: AccuracySource,
    /// Measure top-1 on your own labelled folder (one subfolder of images per class, as
    /// retrain reads it): every shipped pretrained backbone (v1 0.25_128, 0.5_160, 0.75_192,
    /// 0.75_224, 1.0_224, v2 1.0_224, v3-small 1.0_224) gets a head retrained on one split, and
    /// its test accuracy with the 95% interval is the row's top-1. Features are cached as
    /// retrain caches them.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Your own weights file (safetensors: retrain's output, or any file in the documented
    /// format), repeatable: each is one more row, at the family, alpha, resolution and classes
    /// its metadata gives (--alphas and --resolutions do not apply to it). Its top-1 is "-"
    /// (nothing publishes it), or with --data measured as given on the test split when its
    /// labels match the class folders.
    #[arg(long, value_name = "FILE")]
    pub weights: Vec<PathBuf>,
    /// With --data: validation images from this folder instead of a share of DIR.
    #[arg(
        long,
        value_name = "DIR",
        requires = "data",
        conflicts_with = "validation_percent"
    )]
    pub validation: Option<PathBuf>,
    /// With --data: test images from this folder instead of a share of DIR.
    #[arg(long, value_name = "DIR", requires = "data", conflicts_with = "test_percent")]
    pub test: Option<PathBuf>,
    /// With --data: share of DIR held out for validation, by the hash of each path, 0 to under
    /// 100 [default: 10].
    #[arg(
        long,
        value_name = "PERCENT",
        allow_negative_numbers = true,
        requires = "data"
    )]
    pub validation_percent: Option<f64>,
    /// With --data: share of DIR held out for the test score, by the hash of each path, above 0
    /// and under 100 [default: 10].
    #[arg(
        long,
        value_name = "PERCENT",
        allow_negative_numbers = true,
        requires = "data"
    )]
    pub test_percent: Option<f64>,
    /// With --data: the feature cache's folder [default: retrain's].
    #[arg(long, value_name = "DIR", requires = "data", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,
    /// With --data: read and write no cached features.
    #[arg(long, requires = "data")]
    pub no_cache: bool,
    /// With --data: the heads' seed [default: 0].
    #[arg(long, requires = "data")]
    pub seed: Option<u64>,
    /// Budget: median latency at most this many milliseconds (>= 0).
    #[arg(long, allow_negative_numbers = true, value_name = "MS")]
    pub max_latency_ms: Option<f64>,
    /// Budget: weights at the row's precision (4 bytes per parameter at f32, 1 at int8) at
    /// most this many megabytes (10^6 bytes, >= 0).
    #[arg(long, allow_negative_numbers = true, value_name = "MB")]
    pub max_size_mb: Option<f64>,
    /// Budget: top-1 accuracy at least this many percent (0 to 100).
    #[arg(long, allow_negative_numbers = true, value_name = "PERCENT")]
    pub min_top1: Option<f64>,
    /// Also draw the trade-off plot to this SVG file (checked before the sweep starts).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub timing: TimingArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct RetrainArgs {
    /// A folder with one subfolder of images per class (the class names); at least 2 classes.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub weights: WeightsArgs,
    /// Where to write the retrained network (safetensors: the backbone as in the base model,
    /// the new logits and the class names); checked before any work, written atomically.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
    /// Validation images from this folder (class folders named as in DIR) instead of a share
    /// of DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "validation_percent")]
    pub validation: Option<PathBuf>,
    /// Test images from this folder (class folders named as in DIR) instead of a share of DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "test_percent")]
    pub test: Option<PathBuf>,
    /// Share of DIR held out for validation (early stopping), by the hash of each path, 0 to
    /// under 100 [default: 10].
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true)]
    pub validation_percent: Option<f64>,
    /// Share of DIR held out for the test score, by the hash of each path, 0 to under 100
    /// [default: 10; 0 with --test].
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true)]
    pub test_percent: Option<f64>,
    /// The feature cache's folder [default: $XDG_CACHE_HOME/mobilenet-cli/features, else
    /// ~/.cache/mobilenet-cli/features]; created if missing.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,
    /// Read and write no cached features: every image runs through the backbone.
    #[arg(long)]
    pub no_cache: bool,
    /// Images per forward pass, at least 1; a batch whose estimated memory is above the limit is
    /// refused (see --max-memory).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Also train on random views of each training image (a crop of 65-100% of each side,
    /// mirrored half of the time): computed every run, never cached.
    #[arg(long)]
    pub augment: bool,
    /// Augmented views per training image with --augment, 1 to 100.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100), requires = "augment")]
    pub augment_copies: u32,
    /// The most training epochs, 1 to 100000 (early stopping usually ends sooner).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub epochs: u32,
    /// Stop after this many epochs without a lower validation loss, 1 to 100000.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub patience: u32,
    /// AdamW's learning rate, more than 0 and at most 10.
    #[arg(
        long,
        default_value_t = 1e-3,
        value_name = "RATE",
        allow_negative_numbers = true
    )]
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay on the head's weights, 0 to 10.
    #[arg(
        long,
        default_value_t = 1e-2,
        value_name = "DECAY",
        allow_negative_numbers = true
    )]
    pub weight_decay: f64,
    /// Label smoothing: the share of each target spread over all classes, 0 to under 1.
    #[arg(long, default_value_t = 0.1, value_name = "S", allow_negative_numbers = true)]
    pub label_smoothing: f64,
    /// Feature vectors per training step, at least 1.
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub train_batch: u32,
    /// Seed of the minibatch order and the augmentation: the same seed gives the same file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub run: RunArgs,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to FILE instead of standard output (checked before any work; atomic).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also write every image's feature vector, class and split to FILE (safetensors: `features`
    /// float32 [N, C], `labels` int64, `split` uint8 0 train / 1 validation / 2 test; the paths
    /// and class names in its metadata), to probe the same data with other tools. Checked
    /// before any work; atomic.
    #[arg(long, value_name = "FILE")]
    pub features_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (default: the tool's own page).
    #[arg(value_name = "COMMAND", conflicts_with = "dir")]
    pub command: Option<String>,
    /// Write every page (mobilenet-cli.1 and mobilenet-cli-COMMAND.1 for each command) into
    /// this existing folder instead of printing one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("16g").unwrap(), 16 << 30);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        for bad in ["", "x", "-1", "0", "5Q", "1e30T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn named_values_parse_through_their_types() {
        let cli = Cli::try_parse_from(["m", "sweep", "--families", "v2,all"]).unwrap();
        let Command::Sweep(args) = cli.command else {
            panic!()
        };
        assert_eq!(
            args.families,
            [MemberChoice::One("v2".parse().unwrap()), MemberChoice::All]
        );
        // ModelId accepts more spellings than its names.
        assert!(Cli::try_parse_from(["m", "classify", "x.jpg", "--model", "mobilenet_v1_0.50_160"]).is_ok());
        let err = Cli::try_parse_from(["m", "analyze", "--alpha", "3"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--alpha") && err.contains("(0, 2]"), "{err}");
        let err = Cli::try_parse_from(["m", "sweep", "--alphas", "1.0,,0.5"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--alphas") && err.contains("empty value"), "{err}");
    }
}

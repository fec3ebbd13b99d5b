//! The memory a run will need, estimated from the architecture spec before anything is
//! allocated, and the limit it is checked against.
//!
//! Without this check a large `--batch` or `--res` reaches the allocator: a million-image batch
//! asks for 196 GB in one allocation and Rust aborts (SIGABRT), and `classify --res 8192` grows
//! to 10.8 GB. The estimate is an upper bound built from the same layer list the engines run
//! (`arch::instantiate`), term by term:
//! - weights: the network's f32 tensors (BatchNorm kept apart, `params_keras` values), the
//!   fast engine's folded copy and its packed copy: three copies for the fast engine, one for
//!   the reference engine; at int8 the f32 network (it describes the model) and
//!   [`INT8_BYTES_PER_PARAM`] bytes a value for the uint8 weights, their packed copy and the
//!   int32 per-channel constants;
//! - activations: the fast engine allocates two ping-pong buffers (a third for v2/v3, whose
//!   block input lives until the residual add) sized for the largest layer input or output, with
//!   channels padded to 16; the reference engine (candle) holds a layer's input, its output and
//!   up to three same-sized temporaries (BatchNorm, activation) at once, plus the stem's im2col;
//!   the int8 network holds a layer's uint8 input and output, a residual block's input, the
//!   im2col bytes of a full convolution and an int32 sum per output pixel;
//! - input: up to four copies of the batch (the decoded images, the stacked batch, the tensor,
//!   the engine's flat copy), f32 values, or bytes at int8;
//! - decoding (`classify`, `evaluate`): the decoder's own cap, one image at a time;
//! - the runtime: the binary with its embedded weights, thread pools and the allocator's
//!   slack, a fixed [`RUNTIME`] (a 0.25-MobileNet-128 bench peaks at 13 MB RSS).
//!
//! Measured against peak RSS (README, Robustness) the estimate is above the real figure and
//! within about 2x of it for large runs, where it matters.

use serde::Serialize;

use crate::arch::{Config, Family, LayerKind, instantiate};
use crate::cost::analyze;
use crate::infer::{EngineKind, Precision};

/// Bytes per f32 value.
const F32: u64 = 4;
/// The engine's channel padding (`engine` module docs: channels padded to 16).
const CHANNEL_PAD: u64 = 16;
/// Bytes per weight the int8 network holds besides the f32 network: the uint8 weights, their
/// packed int8 copy, and a margin for the int32 biases and column constants per channel.
pub const INT8_BYTES_PER_PARAM: u64 = 3;
/// What the process holds whatever it runs.
pub const RUNTIME: u64 = 64 << 20;
/// The default limit when the physical memory is large: 8 GiB.
pub const DEFAULT_LIMIT: u64 = 8 << 30;
/// Address space kept free for what the estimate does not count (the binary and its embedded
/// weights, the allocator's arenas, stacks) when an address-space limit (`ulimit -v`) is set.
const ADDRESS_SPACE_RESERVE: u64 = 256 << 20;
/// Address space each inference thread reserves: its stack (2 MiB) and a glibc malloc arena
/// (64 MiB of reserved address space on 64-bit Linux).
const PER_THREAD_RESERVE: u64 = 66 << 20;

/// What one run will hold in memory at its peak, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryEstimate {
    pub weights: u64,
    pub activations: u64,
    pub input: u64,
    pub decoding: u64,
    pub runtime: u64,
}

impl MemoryEstimate {
    pub fn total(&self) -> u64 {
        self.weights
            .saturating_add(self.activations)
            .saturating_add(self.input)
            .saturating_add(self.decoding)
            .saturating_add(self.runtime)
    }
}

/// The estimate for running `config` on `engine` at `precision` with batches of `batch` images;
/// `decoding` is the largest allocation one image decode may make (0 when no image is decoded).
pub fn estimate(
    config: &Config,
    batch: usize,
    engine: EngineKind,
    precision: Precision,
    decoding: u64,
) -> MemoryEstimate {
    let batch = batch as u64;
    let layers = instantiate(config);
    let totals = analyze(config).totals;
    let padded = |s: &crate::arch::Shape| {
        u64::from(s.h) * u64::from(s.w) * u64::from(s.c).next_multiple_of(CHANNEL_PAD)
    };
    let plain = |s: &crate::arch::Shape| u64::from(s.h) * u64::from(s.w) * u64::from(s.c);
    let r = u64::from(config.resolution);
    let input = batch.saturating_mul(4 * 3 * r * r * F32);
    let logits = batch.saturating_mul(3 * u64::from(config.classes) * F32);
    // A full convolution's im2col: each output pixel's k x k x C_in inputs.
    let im2col = |bytes: u64| {
        layers
            .iter()
            .filter(|l| l.kind == LayerKind::Conv)
            .map(|l| {
                plain(&l.output) / u64::from(l.output.c.max(1))
                    * u64::from(l.kernel * l.kernel * l.input.c)
                    * bytes
            })
            .max()
            .unwrap_or(0)
    };
    if precision == Precision::Int8 {
        let largest = layers
            .iter()
            .map(|l| plain(&l.input).max(plain(&l.output)))
            .max()
            .unwrap_or(0);
        let pixels = layers
            .iter()
            .map(|l| u64::from(l.output.h) * u64::from(l.output.w))
            .max()
            .unwrap_or(0);
        return MemoryEstimate {
            weights: totals.params_keras * (F32 + INT8_BYTES_PER_PARAM),
            activations: (3 * largest + im2col(1) + 4 * pixels)
                .saturating_mul(batch)
                .saturating_add(logits),
            input: batch.saturating_mul(4 * 3 * r * r),
            decoding,
            runtime: RUNTIME,
        };
    }
    let (weights, activations) = match engine {
        EngineKind::Fast => {
            let buffers = if config.family == Family::V1 { 2 } else { 3 };
            let largest = layers
                .iter()
                .map(|l| padded(&l.input).max(padded(&l.output)))
                .max()
                .unwrap_or(0);
            (
                3 * totals.params_keras * F32,
                (buffers * largest * F32).saturating_mul(batch),
            )
        }
        EngineKind::Reference => {
            let largest = layers
                .iter()
                .map(|l| plain(&l.input) + 4 * plain(&l.output))
                .max()
                .unwrap_or(0);
            // candle lowers the stem (a full convolution) to an im2col matrix.
            (
                totals.params_keras * F32,
                ((largest + im2col(1)) * F32).saturating_mul(batch),
            )
        }
    };
    MemoryEstimate {
        weights,
        activations: activations.saturating_add(logits),
        input,
        decoding,
        runtime: RUNTIME,
    }
}

/// Where the memory limit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// `--max-memory`.
    Flag,
    /// The default: the smaller of [`DEFAULT_LIMIT`] and half the physical memory.
    Default { physical: Option<u64> },
    /// What the process's address-space limit (`ulimit -v`) leaves after what is mapped now
    /// and the reserves for threads and the runtime.
    AddressSpace { rlimit: u64 },
}

/// The most memory a run may be estimated to need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    pub bytes: u64,
    pub source: LimitSource,
}

impl MemoryLimit {
    /// `--max-memory` if given, else the default; lowered to what an address-space limit
    /// leaves for a run on `threads` threads, since past it an allocation aborts the process
    /// whatever the flag says.
    pub fn resolve(flag: Option<u64>, threads: usize) -> MemoryLimit {
        let mut limit = match flag {
            Some(bytes) => MemoryLimit {
                bytes,
                source: LimitSource::Flag,
            },
            None => {
                let physical = physical_memory();
                MemoryLimit {
                    bytes: physical.map_or(DEFAULT_LIMIT, |p| (p / 2).min(DEFAULT_LIMIT)),
                    source: LimitSource::Default { physical },
                }
            }
        };
        if let Some(rlimit) = address_space_limit() {
            let left = rlimit
                .saturating_sub(mapped_now().unwrap_or(0))
                .saturating_sub(ADDRESS_SPACE_RESERVE)
                .saturating_sub(PER_THREAD_RESERVE.saturating_mul(threads as u64));
            if left < limit.bytes {
                limit = MemoryLimit {
                    bytes: left,
                    source: LimitSource::AddressSpace { rlimit },
                };
            }
        }
        limit
    }
}

/// MemTotal from /proc/meminfo, in bytes.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&text, "MemTotal:")
}

/// The process's current virtual size (VmSize), in bytes.
fn mapped_now() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&text, "VmSize:")
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// RLIMIT_AS, when finite.
#[cfg(unix)]
fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through the valid, exclusive pointer it is given
    // and reads nothing else.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
    (status == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(not(unix))]
fn address_space_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_grows_with_batch_and_resolution() {
        let small = Config::paper(0.25, 128).unwrap();
        let one = estimate(&small, 1, EngineKind::Fast, Precision::F32, 0);
        let million = estimate(&small, 1_000_000, EngineKind::Fast, Precision::F32, 0);
        assert!(one.total() - RUNTIME < 50 << 20, "{one:?}");
        // The input alone is 3 x 128 x 128 x 4 bytes per image, counted four times.
        assert_eq!(million.input, 4 * 1_000_000 * 3 * 128 * 128 * 4);
        assert!(million.total() > 190_000_000_000);
        let huge = Config::paper(1.0, 8192).unwrap();
        for engine in [EngineKind::Fast, EngineKind::Reference] {
            let e = estimate(&huge, 1, engine, Precision::F32, 0);
            // The first pointwise layer's output alone is 4096 x 4096 x 64 f32 values.
            assert!(e.activations > 4096 * 4096 * 64 * 4, "{engine:?} {e:?}");
        }
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let huge = Config::paper(2.0, 8192).unwrap();
        let e = estimate(&huge, usize::MAX, EngineKind::Reference, Precision::F32, u64::MAX);
        assert_eq!(e.total(), u64::MAX);
        let e = estimate(&huge, usize::MAX, EngineKind::Fast, Precision::Int8, u64::MAX);
        assert_eq!(e.total(), u64::MAX);
    }

    #[test]
    fn int8_holds_bytes_where_f32_holds_floats() {
        let v1 = Config::paper(1.0, 224).unwrap().with_classes(1001);
        let f32 = estimate(&v1, 8, EngineKind::Fast, Precision::F32, 0);
        let int8 = estimate(&v1, 8, EngineKind::Fast, Precision::Int8, 0);
        // The batch of pixels: four copies of 8 x 224 x 224 x 3 bytes, a quarter of f32's.
        assert_eq!(int8.input, 4 * 8 * 3 * 224 * 224);
        assert_eq!(f32.input, 4 * int8.input);
        // The largest layer tensor (pw_1's 112 x 112 x 64 output, 802,816 bytes) three times,
        // the stem's im2col (112 x 112 x 27 bytes) and an int32 per output pixel, per image,
        // and the f32 logits.
        let per_image = 3 * 802_816 + 112 * 112 * 27 + 4 * 112 * 112;
        assert_eq!(int8.activations, 8 * per_image + 8 * 3 * 1001 * 4);
        // Bytes where f32 holds floats, with an im2col and int32 sums besides: under half.
        assert!(int8.activations < f32.activations / 2, "{int8:?} {f32:?}");
        // The f32 network beside the uint8 one: 7 bytes a value, below the fast engine's 12.
        // params_keras: 4,253,864 at 1000 classes, one more row of 1024 and a bias at 1001.
        assert_eq!(int8.weights, 7 * (4_253_864 + 1024 + 1));
        assert!(int8.weights < f32.weights);
    }

    #[test]
    fn the_limit_is_the_flag_or_the_default() {
        let flag = MemoryLimit::resolve(Some(1 << 20), 1);
        assert!(flag.bytes <= 1 << 20);
        let default = MemoryLimit::resolve(None, 1);
        assert!(default.bytes <= DEFAULT_LIMIT);
        assert_eq!(kib_field("MemTotal:   1024 kB\n", "MemTotal:"), Some(1 << 20));
    }
}

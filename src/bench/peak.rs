//! The peak an int8 layer's speed is put against in `bench --per-layer --precision int8`: the
//! multiply-accumulates per second of one thread issuing nothing but `vpdpbusd` (AVX-512 VNNI,
//! Intel SDM vol. 2 VPDPBUSD: 64 u8 x s8 products per 512-bit instruction) on registers, or
//! with the AMX kernels nothing but `tdpbusd` on tiles (16 x 16 x 64 products per instruction),
//! measured once per run the way `benches/engine.rs` measures the FMA peak (independent chains,
//! no memory traffic, the best of five timings). No layer can beat it; the share says how far
//! each layer is from it. It is measured rather than derived from a clock and a datasheet
//! throughput because neither is reliable on a shared VM (turbo, double-pumped 512-bit units):
//! for comparison, the project's shared int8 notes state ~480 GMAC/s for one core of the Intel
//! Xeon they were measured on, and this measurement gave 550 GMAC/s on the 2-core AMD EPYC the
//! README's figures come from.

use serde::Serialize;

use crate::quant::Kernels;

/// How a peak figure was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeakSource {
    /// Timed on this machine by this run.
    Measured,
    /// A fixed figure for deterministic test output (`--mock-timer`).
    Mock,
}

/// The register-only peak of one instruction on one thread, and the threads the layers ran on:
/// their shares are of `gmacs x threads`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peak {
    /// "vpdpbusd".
    pub instruction: String,
    /// Multiply-accumulates per second, in billions, per thread.
    pub gmacs: f64,
    pub source: PeakSource,
    /// Threads the timed layers ran on (each on its own core, at best).
    pub threads: usize,
}

impl Peak {
    /// The peak of the instruction `kernels` compute with, measured now; None for kernels
    /// without a u8 x s8 dot-product instruction (AVX2, portable, reference).
    pub fn measure(kernels: Kernels) -> Option<Peak> {
        match kernels {
            Kernels::Vnni => vpdpbusd_gmacs().map(|gmacs| Peak {
                instruction: "vpdpbusd".into(),
                gmacs,
                source: PeakSource::Measured,
                threads: 1,
            }),
            // The AMX kernels run the pointwise layers on tiles and the rest on AVX-512 VNNI:
            // the share is of the tile peak, what the GEMM could reach.
            Kernels::Amx => tdpbusd_gmacs().map(|gmacs| Peak {
                instruction: "tdpbusd".into(),
                gmacs,
                source: PeakSource::Measured,
                threads: 1,
            }),
            // AVX2 has no u8 x s8 dot product: its kernels widen to i16 and use vpmaddwd, whose
            // peak is not what the int8 instructions promise, so no share is claimed for them.
            Kernels::Avx2 | Kernels::Portable | Kernels::Reference => None,
        }
    }

    /// A fixed peak for the mock timer's output.
    pub fn mock() -> Peak {
        Peak {
            instruction: "mock".into(),
            gmacs: 100.0,
            source: PeakSource::Mock,
            threads: 1,
        }
    }

    /// This peak for layers run on `threads` threads.
    pub fn with_threads(self, threads: usize) -> Peak {
        Peak { threads, ..self }
    }

    /// `mult_adds` per image for `batch` images in `ms` milliseconds as a percentage of the
    /// peak of all the threads.
    pub fn share(&self, mult_adds: u64, batch: usize, ms: f64) -> f64 {
        let gmacs = mult_adds as f64 * batch as f64 / (ms * 1e-3) / 1e9;
        100.0 * gmacs / (self.gmacs * self.threads.max(1) as f64)
    }
}

/// Chains of `vpdpbusd`: more than its latency times its throughput on any core, fewer than
/// the 32 registers.
const CHAINS: usize = 24;
/// Loop trips per timing: 24 x 64 x 2^18 = 403 M multiply-accumulates, about a millisecond.
const ITERATIONS: usize = 1 << 18;

/// The best of five timings of [`vpdpbusd_loop`], in GMAC/s; None on a CPU without AVX-512
/// VNNI.
fn vpdpbusd_gmacs() -> Option<f64> {
    if !Kernels::Vnni.available() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    return Some(best_of_five(|| {
        // SAFETY: `Kernels::Vnni.available()` checked AVX-512F and AVX-512 VNNI, the features
        // `vpdpbusd_loop` is compiled for.
        unsafe { vpdpbusd_loop(ITERATIONS) }
    }));
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// Trips of the `tdpbusd` loop per timing: 4 x 16,384 x 2^13 = 537 M multiply-accumulates, about
/// half a millisecond at the 1,024 per cycle the instruction promises.
const TILE_ITERATIONS: usize = 1 << 13;

/// The best of five timings of four independent `tdpbusd` chains on the tiles (their latency
/// is about four times their throughput), in GMAC/s; None where the AMX kernels do not run.
fn tdpbusd_gmacs() -> Option<f64> {
    if !Kernels::Amx.available() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    return Some(best_of_five(|| crate::quant::tdpbusd_loop(TILE_ITERATIONS)));
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// The highest rate of five calls of `run`, which returns the multiply-accumulates it did, in
/// GMAC/s.
#[cfg(target_arch = "x86_64")]
fn best_of_five(mut run: impl FnMut() -> u64) -> f64 {
    (0..5)
        .map(|_| {
            let start = std::time::Instant::now();
            let macs = run();
            macs as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// `iterations` rounds of [`CHAINS`] independent `vpdpbusd`s; returns the multiply-accumulates
/// done (64 per instruction).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512vnni,avx512f")]
fn vpdpbusd_loop(iterations: usize) -> u64 {
    use std::arch::x86_64::*;
    let a = std::hint::black_box(_mm512_set1_epi8(1));
    let b = std::hint::black_box(_mm512_set1_epi8(-1));
    let mut acc = [_mm512_setzero_si512(); CHAINS];
    for _ in 0..iterations {
        for x in &mut acc {
            *x = _mm512_dpbusd_epi32(*x, a, b);
        }
    }
    std::hint::black_box(acc);
    (iterations * CHAINS * 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_of_the_peak() {
        let peak = Peak::mock();
        // 1 G MACs in 10 ms is 100 GMAC/s: all of a 100 GMAC/s peak.
        assert!((peak.share(500_000_000, 2, 10.0) - 100.0).abs() < 1e-9);
        assert!((peak.share(500_000_000, 1, 10.0) - 50.0).abs() < 1e-9);
        // On two threads the peak is twice as high.
        let two = peak.with_threads(2);
        assert!((two.share(500_000_000, 2, 10.0) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn the_vnni_peak_is_measured_where_the_cpu_has_it() {
        match Peak::measure(Kernels::Vnni) {
            Some(peak) => {
                assert_eq!(
                    (peak.instruction.as_str(), peak.source),
                    ("vpdpbusd", PeakSource::Measured)
                );
                // Anything from one instruction per 8 cycles at 1 GHz to four per cycle at 6 GHz.
                assert!(peak.gmacs > 8.0 && peak.gmacs < 1600.0, "{peak:?}");
            }
            None => {
                assert!(!Kernels::Vnni.available());
                eprintln!("note: this CPU lacks AVX-512 VNNI; the vpdpbusd peak is not measured");
            }
        }
        assert_eq!(Peak::measure(Kernels::Portable), None);
    }

    #[test]
    fn the_amx_peak_is_measured_where_the_kernels_run() {
        match Peak::measure(Kernels::Amx) {
            Some(peak) => {
                assert_eq!(
                    (peak.instruction.as_str(), peak.source),
                    ("tdpbusd", PeakSource::Measured)
                );
                // From one instruction per 64 cycles at 1 GHz to one per 8 cycles at 6 GHz.
                assert!(peak.gmacs > 250.0 && peak.gmacs < 13_000.0, "{peak:?}");
            }
            None => {
                let why = Kernels::Amx.unavailable_reason().expect("not available");
                println!("skipped: {why}; the tdpbusd peak is not measured");
            }
        }
    }
}

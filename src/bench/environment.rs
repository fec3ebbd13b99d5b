//! The machine a timing was taken on, recorded in every result.

use serde::Serialize;

use crate::infer::EngineKind;

/// Where and how a measurement ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Environment {
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// SIMD features detected at run time (x86-64: sse4.2, avx, avx2, fma, avx512f, ...).
    pub simd: Vec<String>,
    /// Threads used for inference.
    pub threads: usize,
    pub candle_version: String,
    /// Cargo profile the binary was built with (release or debug).
    pub build_profile: String,
    pub os: String,
    pub arch: String,
    /// Which inference engine ran.
    pub engine: EngineKind,
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model") || l.starts_with("Hardware"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// SIMD features the running CPU has.
pub fn simd_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut found: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_x86_feature_detected!($f) { found.push($f); } )* };
        }
        probe!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "f16c"
        );
        // CPUID directly: `is_x86_feature_detected!("amx-int8")` is not stable.
        if crate::quant::cpu_has_amx_int8() {
            found.push("amx-int8");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($f:tt),*) => { $( if std::arch::is_aarch64_feature_detected!($f) { found.push($f); } )* };
        }
        probe!("neon", "fp16", "sve");
    }
    found.into_iter().map(String::from).collect()
}

impl Environment {
    /// Probes this machine; `threads` and `engine` are what the run uses.
    pub fn probe(threads: usize, engine: EngineKind) -> Self {
        Environment {
            cpu_model: cpu_model(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            simd: simd_features(),
            threads,
            candle_version: env!("MOBILENET_CLI_CANDLE_VERSION").to_string(),
            build_profile: env!("MOBILENET_CLI_PROFILE").to_string(),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            engine,
        }
    }

    /// A fixed environment for deterministic test output (with `--mock-timer`).
    pub fn mock(threads: usize, engine: EngineKind) -> Self {
        Environment {
            cpu_model: "mock CPU".into(),
            cores: 2,
            simd: vec!["mock".into()],
            threads,
            candle_version: env!("MOBILENET_CLI_CANDLE_VERSION").to_string(),
            build_profile: "mock".into(),
            os: "mock".into(),
            arch: "mock".into(),
            engine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_fills_every_field() {
        let env = Environment::probe(1, EngineKind::Fast);
        assert!(!env.cpu_model.is_empty());
        assert!(env.cores >= 1);
        assert!(env.candle_version.starts_with("0."), "{}", env.candle_version);
        assert!(env.build_profile == "debug" || env.build_profile == "release");
    }
}

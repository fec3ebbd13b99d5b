//! The weights loader on arbitrary bytes (seeded with real safetensors files): every outcome is
//! a loaded network or a typed error naming the file, never a panic.
#![no_main]

use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use mobilenet_cli::nn::{MobileNet, WeightOverrides};

fuzz_target!(|data: &[u8]| {
    let overrides = WeightOverrides {
        resolution: Some(32),
        ..WeightOverrides::default()
    };
    match MobileNet::from_bytes(data, "fuzz", "fuzz.safetensors", overrides, &Device::Cpu) {
        Ok(net) => assert!(net.parameter_count() > 0),
        Err(e) => assert!(e.to_string().starts_with("fuzz.safetensors")),
    }
});

//! Image decoding and TF-slim preprocessing on arbitrary bytes: never a panic, a hang or an
//! unbounded allocation (the decoder limits refuse absurd headers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mobilenet_cli::vision::{decode_bytes, eval_preprocess};

fuzz_target!(|data: &[u8]| {
    let Some((&res, bytes)) = data.split_first() else {
        return;
    };
    if let Ok(image) = decode_bytes(bytes, "fuzz") {
        let input = eval_preprocess(&image, 32 + u32::from(res % 33));
        assert!(input.iter().all(|v| (-1.0..=1.0).contains(v)));
    }
});

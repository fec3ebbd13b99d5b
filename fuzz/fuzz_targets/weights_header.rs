//! Structurally valid safetensors headers with hostile contents: the spec's tensor names (and
//! others) with arbitrary dtypes, shapes, offsets and metadata, over a data section of
//! arbitrary length. Reaches the loader's shape, dtype and offset checks that random bytes
//! rarely get past the JSON parser to exercise.
#![no_main]

use arbitrary::Arbitrary;
use candle_core::Device;
use libfuzzer_sys::fuzz_target;
use mobilenet_cli::nn::{MobileNet, WeightOverrides};

const NAMES: [&str; 12] = [
    "conv_0.weight",
    "conv_0.bias",
    "dw_1.weight",
    "dw_1.bias",
    "pw_1.weight",
    "pw_1.weight_scale",
    "pw_1.weight_zero_point",
    "logits.weight",
    "logits.bias",
    "dw_13.bn.running_var",
    "pw_13.bn.weight",
    "unknown.tensor",
];
const DTYPES: [&str; 8] = ["F32", "F16", "BF16", "U8", "I64", "F64", "BOOL", "X"];

#[derive(Debug, Arbitrary)]
struct Entry {
    name: u8,
    dtype: u8,
    shape: Vec<u16>,
    start: u32,
    len: u32,
}

#[derive(Debug, Arbitrary)]
struct File {
    entries: Vec<Entry>,
    alpha: Option<u8>,
    resolution: Option<u16>,
    classes: Option<u32>,
    data: Vec<u8>,
}

fuzz_target!(|file: File| {
    let mut header = serde_json::Map::new();
    let mut meta = serde_json::Map::new();
    if let Some(a) = file.alpha {
        meta.insert("alpha".into(), format!("{}", f64::from(a) / 64.0).into());
    }
    if let Some(r) = file.resolution {
        meta.insert("resolution".into(), r.to_string().into());
    }
    if let Some(c) = file.classes {
        meta.insert("num_classes".into(), c.to_string().into());
    }
    header.insert("__metadata__".into(), meta.into());
    for e in file.entries.iter().take(64) {
        let start = u64::from(e.start);
        header.insert(
            NAMES[usize::from(e.name) % NAMES.len()].into(),
            serde_json::json!({
                "dtype": DTYPES[usize::from(e.dtype) % DTYPES.len()],
                "shape": e.shape.iter().take(6).collect::<Vec<_>>(),
                "data_offsets": [start, start + u64::from(e.len)],
            }),
        );
    }
    let json = serde_json::Value::Object(header).to_string();
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes.extend_from_slice(&file.data);
    let overrides = WeightOverrides {
        resolution: Some(32),
        ..WeightOverrides::default()
    };
    if let Err(e) = MobileNet::from_bytes(&bytes, "fuzz", "fuzz.safetensors", overrides, &Device::Cpu) {
        assert!(e.to_string().starts_with("fuzz.safetensors"));
    }
});

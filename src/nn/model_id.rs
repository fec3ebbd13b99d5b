//! The shipped ImageNet models, embedded in the binary so it works from any directory.
//!
//! The files are the TF-slim MobileNet v1 checkpoints and the MobileNetV2 1.0_224 checkpoint as
//! published in uint8 form (see `presets/weights/SOURCE.md`): 1001 classes, BatchNorm folded
//! into biases. No MobileNetV3 weights ship with the tool.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::arch::{Config, Family, Variant};

/// One of the shipped models, named "alpha_resolution" as TF-slim names its checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ModelId {
    #[serde(rename = "0.25_128")]
    V1_025_128,
    #[serde(rename = "0.5_160")]
    V1_05_160,
    #[serde(rename = "0.75_192")]
    V1_075_192,
    #[serde(rename = "1.0_224")]
    V1_10_224,
    /// MobileNetV2 1.0_224 (Sandler et al. 2018).
    #[serde(rename = "v2_1.0_224")]
    V2_10_224,
}

/// Output classes of the shipped models: ImageNet's 1000 plus "background" at index 0.
pub const IMAGENET_CLASSES: u32 = 1001;

impl ModelId {
    pub const ALL: [ModelId; 5] = [
        ModelId::V1_025_128,
        ModelId::V1_05_160,
        ModelId::V1_075_192,
        ModelId::V1_10_224,
        ModelId::V2_10_224,
    ];

    /// "0.25_128", "0.5_160", "0.75_192", "1.0_224" (v1) or "v2_1.0_224".
    pub fn name(self) -> &'static str {
        match self {
            ModelId::V1_025_128 => "0.25_128",
            ModelId::V1_05_160 => "0.5_160",
            ModelId::V1_075_192 => "0.75_192",
            ModelId::V1_10_224 => "1.0_224",
            ModelId::V2_10_224 => "v2_1.0_224",
        }
    }

    /// The model's family.
    pub fn family(self) -> Family {
        match self {
            ModelId::V2_10_224 => Family::V2,
            _ => Family::V1,
        }
    }

    /// The width multiplier the model was trained with.
    pub fn alpha(self) -> f64 {
        match self {
            ModelId::V1_025_128 => 0.25,
            ModelId::V1_05_160 => 0.5,
            ModelId::V1_075_192 => 0.75,
            ModelId::V1_10_224 | ModelId::V2_10_224 => 1.0,
        }
    }

    /// The input resolution the model was trained (and is evaluated) at.
    pub fn resolution(self) -> u32 {
        match self {
            ModelId::V1_025_128 => 128,
            ModelId::V1_05_160 => 160,
            ModelId::V1_075_192 => 192,
            ModelId::V1_10_224 | ModelId::V2_10_224 => 224,
        }
    }

    /// The configuration the weights fit: standard variant, depth multiplier 1, 1001 classes.
    pub fn config(self) -> Config {
        // Every argument is a valid constant, so construction cannot fail; the fallback keeps
        // this function total without an unwrap.
        Config::build(
            self.family(),
            self.alpha(),
            self.resolution(),
            1,
            IMAGENET_CLASSES,
            Variant::Standard,
            false,
        )
        .unwrap_or_else(|_| unreachable!("shipped model configurations are valid"))
    }

    /// The file name the weights are shipped under.
    pub fn file_name(self) -> &'static str {
        match self {
            ModelId::V1_025_128 => "mobilenet_v1_0.25_128.safetensors",
            ModelId::V1_05_160 => "mobilenet_v1_0.5_160.safetensors",
            ModelId::V1_075_192 => "mobilenet_v1_0.75_192.safetensors",
            ModelId::V1_10_224 => "mobilenet_v1_1.0_224.safetensors",
            ModelId::V2_10_224 => "mobilenet_v2_1.0_224.safetensors",
        }
    }

    /// The embedded safetensors file.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            ModelId::V1_025_128 => {
                include_bytes!("../../presets/weights/mobilenet_v1_0.25_128.safetensors")
            }
            ModelId::V1_05_160 => {
                include_bytes!("../../presets/weights/mobilenet_v1_0.5_160.safetensors")
            }
            ModelId::V1_075_192 => {
                include_bytes!("../../presets/weights/mobilenet_v1_0.75_192.safetensors")
            }
            ModelId::V1_10_224 => {
                include_bytes!("../../presets/weights/mobilenet_v1_1.0_224.safetensors")
            }
            ModelId::V2_10_224 => {
                include_bytes!("../../presets/weights/mobilenet_v2_1.0_224.safetensors")
            }
        }
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown model name, with the accepted ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model '{0}' (expected one of 0.25_128, 0.5_160, 0.75_192, 1.0_224, v2_1.0_224)")]
pub struct UnknownModel(pub String);

impl FromStr for ModelId {
    type Err = UnknownModel;

    /// Accepts the names as printed ("1.0_224", "v2_1.0_224") and common spellings ("1_224",
    /// "1.00_224", "mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224"). A bare "A_R" is v1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let (family, bare) = if let Some(rest) = trimmed
            .strip_prefix("mobilenet_v2_")
            .or_else(|| trimmed.strip_prefix("v2_"))
        {
            (Family::V2, rest)
        } else {
            let rest = trimmed
                .strip_prefix("mobilenet_v1_")
                .or_else(|| trimmed.strip_prefix("v1_"))
                .unwrap_or(trimmed);
            (Family::V1, rest)
        };
        let parsed = bare.split_once('_').and_then(|(alpha, res)| {
            let alpha: f64 = alpha.parse().ok()?;
            let res: u32 = res.parse().ok()?;
            ModelId::ALL
                .into_iter()
                .find(|m| m.family() == family && m.alpha() == alpha && m.resolution() == res)
        });
        parsed.ok_or_else(|| UnknownModel(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for id in ModelId::ALL {
            assert_eq!(id.name().parse::<ModelId>().unwrap(), id);
            assert_eq!(id.config().resolution, id.resolution());
            assert_eq!(id.config().classes, 1001);
            assert!(id.file_name().contains(id.name()));
            assert!(!id.bytes().is_empty());
        }
        assert_eq!("1_224".parse::<ModelId>().unwrap(), ModelId::V1_10_224);
        assert_eq!(
            "mobilenet_v1_0.50_160".parse::<ModelId>().unwrap(),
            ModelId::V1_05_160
        );
        let err = "1.0_192".parse::<ModelId>().unwrap_err();
        assert!(err.to_string().contains("0.25_128"), "{err}");
        assert!("".parse::<ModelId>().is_err());
        assert_eq!("v2_1.0_224".parse::<ModelId>().unwrap(), ModelId::V2_10_224);
        assert_eq!(
            "mobilenet_v2_1.0_224".parse::<ModelId>().unwrap(),
            ModelId::V2_10_224
        );
        assert_eq!(ModelId::V2_10_224.config().family, Family::V2);
        assert!("v2_0.5_160".parse::<ModelId>().is_err());
    }
}

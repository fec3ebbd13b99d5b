//! The shipped ImageNet models, embedded in the binary so it works from any directory.
//!
//! Every fact about a shipped model is one row of [`SHIPPED`]: its name, family, width, trained
//! resolution, file, embedded bytes, parameter count and the published figure of the release it
//! was converted from. [`ModelId`] is an index into that table; its named constants are looked up
//! by name at compile time, so a new model is one new row (and its file in `presets/weights/`).
//!
//! The files are Google's TF-slim releases in uint8 form (see `presets/weights/SOURCE.md`):
//! MobileNet v1 at five width/resolution points, MobileNetV2 1.0/224 and MobileNetV3-Small
//! 1.0/224; 1001 classes, BatchNorm folded into biases. No MobileNetV3-Large weights ship.
//!
//! MobileNetV3-Small's squeeze-and-excite gate: TF-slim's graph (and the `.tflite` this file was
//! converted from) computes relu6(x + 3) * 0.16667, a five-digit rounding of 1/6. Both engines
//! compute relu6(x + 3) / 6 for these weights as for any other (the paper's hard-sigmoid, the
//! same 1/6 as hard-swish in the same network and as PyTorch's `Hardsigmoid`). The gate is then
//! 2.0e-5 smaller, relatively; on the reference images (computed with / 6, reproduced to 6e-7)
//! the 0.16667 gate would move the probabilities by 2.2e-5 to 3.8e-5 and change no top-1
//! (`tests/cli/network.rs`, `v3_small_gate_is_relu6_over_6`), far below the uint8 model's own
//! error against its float version (up to 0.09 on those images).

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::arch::{Config, Family, Variant};
use crate::published::{PublishedModel, Store};

/// Output classes of the shipped models: ImageNet's 1000 plus "background" at index 0.
pub const IMAGENET_CLASSES: u32 = 1001;

/// One shipped model: a row of [`SHIPPED`].
#[derive(Debug)]
pub struct Shipped {
    /// The name `--model` takes and reports print: "A_R" for v1 (TF-slim's checkpoint names),
    /// "FAMILY_A_R" for the other families ("v2_1.0_224", "v3-small_1.0_224").
    pub name: &'static str,
    pub family: Family,
    /// The width multiplier the model was trained with.
    pub alpha: f64,
    /// The input resolution the model was trained (and is evaluated) at.
    pub resolution: u32,
    /// The file's name in `presets/weights/`; its test fixture is `tests/fixtures/reference_FILE`.
    pub file: &'static str,
    /// The embedded safetensors file.
    pub bytes: &'static [u8],
    /// Elements of every tensor except quantisation scales and zero points (as the file's
    /// source documents it; equal to the cost model's `params_deployed` at 1001 classes).
    pub parameters: u64,
    /// The `presets/published/models.csv` row of the quantized release the file was converted
    /// from: (source id, model), e.g. its published top-1.
    pub published: (&'static str, &'static str),
}

/// A row of [`SHIPPED`], with the file named once: its bytes come from `presets/weights/FILE`.
macro_rules! shipped {
    ($name:literal, $family:expr, $alpha:literal, $resolution:literal, $file:literal,
     $parameters:literal, $published:expr) => {
        Shipped {
            name: $name,
            family: $family,
            alpha: $alpha,
            resolution: $resolution,
            file: $file,
            bytes: include_bytes!(concat!("../../presets/weights/", $file)),
            parameters: $parameters,
            published: $published,
        }
    };
}

/// Every shipped model, one row each, in the order `--help` lists them.
pub const SHIPPED: &[Shipped] = &[
    shipped!(
        "0.25_128",
        Family::V1,
        0.25,
        128,
        "mobilenet_v1_0.25_128.safetensors",
        467_593,
        ("tflite-hosted", "Mobilenet_V1_0.25_128_quant")
    ),
    shipped!(
        "0.5_160",
        Family::V1,
        0.5,
        160,
        "mobilenet_v1_0.5_160.safetensors",
        1_326_633,
        ("tflite-hosted", "Mobilenet_V1_0.50_160_quant")
    ),
    shipped!(
        "0.75_192",
        Family::V1,
        0.75,
        192,
        "mobilenet_v1_0.75_192.safetensors",
        2_578_121,
        ("tflite-hosted", "Mobilenet_V1_0.75_192_quant")
    ),
    shipped!(
        "0.75_224",
        Family::V1,
        0.75,
        224,
        "mobilenet_v1_0.75_224.safetensors",
        2_578_121,
        ("tflite-hosted", "Mobilenet_V1_0.75_224_quant")
    ),
    shipped!(
        "1.0_224",
        Family::V1,
        1.0,
        224,
        "mobilenet_v1_1.0_224.safetensors",
        4_222_057,
        ("tflite-hosted", "Mobilenet_V1_1.0_224_quant")
    ),
    shipped!(
        "v2_1.0_224",
        Family::V2,
        1.0,
        224,
        "mobilenet_v2_1.0_224.safetensors",
        3_489_097,
        ("tflite-hosted", "Mobilenet_V2_1.0_224_quant")
    ),
    shipped!(
        "v3-small_1.0_224",
        Family::V3Small,
        1.0,
        224,
        "mobilenet_v3_small_1.0_224.safetensors",
        2_537_825,
        ("slim-v3", "Small dm=1 (8-bit)")
    ),
];

/// One of the shipped models: an index into [`SHIPPED`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelId(u8);

impl ModelId {
    pub const V1_025_128: ModelId = ModelId::named("0.25_128");
    pub const V1_05_160: ModelId = ModelId::named("0.5_160");
    pub const V1_075_192: ModelId = ModelId::named("0.75_192");
    pub const V1_075_224: ModelId = ModelId::named("0.75_224");
    /// The default model.
    pub const V1_10_224: ModelId = ModelId::named("1.0_224");
    /// MobileNetV2 1.0_224 (Sandler et al. 2018).
    pub const V2_10_224: ModelId = ModelId::named("v2_1.0_224");
    /// MobileNetV3-Small 1.0_224 (Howard et al. 2019).
    pub const V3_SMALL_10_224: ModelId = ModelId::named("v3-small_1.0_224");

    /// Every shipped model, in [`SHIPPED`]'s order.
    pub const ALL: [ModelId; SHIPPED.len()] = {
        let mut all = [ModelId(0); SHIPPED.len()];
        let mut i = 0;
        while i < all.len() {
            all[i] = ModelId(i as u8);
            i += 1;
        }
        all
    };

    /// The row named `name`; a name not in the table fails the build.
    const fn named(name: &str) -> ModelId {
        let mut i = 0;
        while i < SHIPPED.len() {
            if same_text(SHIPPED[i].name, name) {
                return ModelId(i as u8);
            }
            i += 1;
        }
        panic!("no shipped model of that name")
    }

    /// This model's row of [`SHIPPED`].
    pub fn shipped(self) -> &'static Shipped {
        &SHIPPED[usize::from(self.0)]
    }

    /// "0.25_128", "0.5_160", "0.75_192", "0.75_224", "1.0_224" (v1), "v2_1.0_224" or
    /// "v3-small_1.0_224".
    pub fn name(self) -> &'static str {
        self.shipped().name
    }

    /// The model's family.
    pub fn family(self) -> Family {
        self.shipped().family
    }

    /// The width multiplier the model was trained with.
    pub fn alpha(self) -> f64 {
        self.shipped().alpha
    }

    /// The input resolution the model was trained (and is evaluated) at.
    pub fn resolution(self) -> u32 {
        self.shipped().resolution
    }

    /// The configuration the weights fit: standard variant (not minimalistic), depth
    /// multiplier 1, 1001 classes.
    pub fn config(self) -> Config {
        // Every row holds valid constants (checked by the tests below), so construction cannot
        // fail; the fallback keeps this function total without an unwrap.
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
        self.shipped().file
    }

    /// The embedded safetensors file.
    pub fn bytes(self) -> &'static [u8] {
        self.shipped().bytes
    }

    /// The published figures of the release these weights were converted from.
    pub fn published(self, store: &Store) -> Option<&PublishedModel> {
        let (source, model) = self.shipped().published;
        store
            .models
            .iter()
            .find(|row| row.source == source && row.model == model)
    }

    /// The shipped models of `family`.
    pub fn of_family(family: Family) -> impl Iterator<Item = ModelId> {
        ModelId::ALL.into_iter().filter(move |m| m.family() == family)
    }
}

/// `a == b` for a `const fn` (`PartialEq` is not const).
const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({})", self.name())
    }
}

/// Serialised as its name, e.g. "1.0_224".
impl Serialize for ModelId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// An unknown model name, with the accepted ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model '{0}' (expected one of {names})", names = shipped_names())]
pub struct UnknownModel(pub String);

fn shipped_names() -> String {
    let names: Vec<&str> = ModelId::ALL.iter().map(|m| m.name()).collect();
    names.join(", ")
}

impl FromStr for ModelId {
    type Err = UnknownModel;

    /// Accepts the names as printed ("1.0_224", "v2_1.0_224", "v3-small_1.0_224") and common
    /// spellings: the family written with an underscore ("v3_small_1.0_224"), a "mobilenet_"
    /// prefix ("mobilenet_v1_1.0_224", "mobilenet_v3_small_1.0_224") and other ways of writing
    /// the numbers ("1_224", "1.00_224", "0.50_160"). A bare "A_R" is v1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let unprefixed = trimmed.strip_prefix("mobilenet_").unwrap_or(trimmed);
        let (family, bare) = Family::ALL
            .into_iter()
            .find_map(|family| {
                let rest = unprefixed
                    .strip_prefix(family.name())
                    .or_else(|| unprefixed.strip_prefix(family.name().replace('-', "_").as_str()))?;
                Some((family, rest.strip_prefix('_')?))
            })
            .unwrap_or((Family::V1, unprefixed));
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
            assert_eq!(id.to_string(), id.name());
            assert_eq!(id.config().family, id.family());
            assert_eq!(id.config().alpha, id.alpha());
            assert_eq!(id.config().resolution, id.resolution());
            assert_eq!(id.config().classes, 1001);
            assert!(!id.bytes().is_empty());
            assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{}\"", id.name()));
        }
        assert_eq!("1_224".parse::<ModelId>().unwrap(), ModelId::V1_10_224);
        assert_eq!(
            "mobilenet_v1_0.50_160".parse::<ModelId>().unwrap(),
            ModelId::V1_05_160
        );
        assert_eq!("v1_0.75_224".parse::<ModelId>().unwrap(), ModelId::V1_075_224);
        let err = "1.0_192".parse::<ModelId>().unwrap_err();
        assert!(
            err.to_string()
                .ends_with("(expected one of 0.25_128, 0.5_160, 0.75_192, 0.75_224, 1.0_224, v2_1.0_224, v3-small_1.0_224)"),
            "{err}"
        );
        assert!("".parse::<ModelId>().is_err());
        assert_eq!("v2_1.0_224".parse::<ModelId>().unwrap(), ModelId::V2_10_224);
        assert_eq!(
            "mobilenet_v2_1.0_224".parse::<ModelId>().unwrap(),
            ModelId::V2_10_224
        );
        assert_eq!(ModelId::V2_10_224.config().family, Family::V2);
        assert!("v2_0.5_160".parse::<ModelId>().is_err());
        for spelling in [
            "v3-small_1.0_224",
            "v3_small_1.0_224",
            "mobilenet_v3_small_1.0_224",
            "mobilenet_v3-small_1_224",
        ] {
            assert_eq!(
                spelling.parse::<ModelId>().unwrap(),
                ModelId::V3_SMALL_10_224,
                "{spelling}"
            );
        }
        assert_eq!(ModelId::V3_SMALL_10_224.config().family, Family::V3Small);
        assert!(!ModelId::V3_SMALL_10_224.config().minimalistic);
        // No v3-large weights ship; a v3-small name never falls back to v1.
        assert!("v3-large_1.0_224".parse::<ModelId>().is_err());
        assert!("v3-small_0.75_224".parse::<ModelId>().is_err());
        assert!("v3-small".parse::<ModelId>().is_err());
    }

    #[test]
    fn the_table_has_one_row_per_model_and_file() {
        for (i, a) in SHIPPED.iter().enumerate() {
            for b in &SHIPPED[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.file, b.file);
                assert!(
                    !(a.family == b.family && a.alpha == b.alpha && a.resolution == b.resolution),
                    "{} and {} are the same model",
                    a.name,
                    b.name
                );
            }
        }
        assert_eq!(ModelId::ALL.len(), SHIPPED.len());
        assert_eq!(ModelId::V1_10_224.name(), "1.0_224");
        assert_eq!(
            ModelId::of_family(Family::V3Small).collect::<Vec<_>>(),
            [ModelId::V3_SMALL_10_224]
        );
        assert_eq!(ModelId::of_family(Family::V3Large).count(), 0);
        assert_eq!(ModelId::of_family(Family::V1).count(), 5);
    }

    #[test]
    fn every_model_names_the_published_figures_of_its_release() {
        let store = Store::embedded();
        for id in ModelId::ALL {
            let row = id
                .published(&store)
                .unwrap_or_else(|| panic!("{}: no published row {:?}", id, id.shipped().published));
            assert!(row.quantized, "{id}: {} is not the uint8 release", row.model);
            assert_eq!(row.family, id.family().name(), "{id}");
            assert_eq!(row.alpha, Some(id.alpha()), "{id}");
            assert_eq!(row.resolution, Some(id.resolution()), "{id}");
            assert!(row.top1_value().is_some(), "{id}: no top-1");
        }
        let top1 = |id: ModelId| id.published(&store).and_then(PublishedModel::top1_value);
        assert_eq!(top1(ModelId::V3_SMALL_10_224), Some(64.9));
        assert_eq!(top1(ModelId::V1_075_224), Some(66.9));
        assert_eq!(top1(ModelId::V2_10_224), Some(70.8));
    }
}

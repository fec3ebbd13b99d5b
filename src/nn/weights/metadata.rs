//! The configuration a weights file fits: its metadata where present (`family` or
//! `architecture`, `alpha`, `resolution`, `num_classes`, `depth_multiplier`, `variant`,
//! `minimalistic`), else the caller's flags, else what the tensors' names and shapes say
//! where that is unambiguous; and the names of its classes (`labels`), when it has its own.

use std::collections::HashMap;
use std::str::FromStr;

use super::{FileCtx, WeightsError, names};
use crate::arch::{Alpha, Config, Family, Resolution, Variant};

/// Resolution assumed when neither the file nor the caller gives one: the paper's 224.
pub const DEFAULT_RESOLUTION: u32 = 224;

/// Configuration the caller supplies for files whose metadata lacks it. The file's metadata
/// wins where present; fields left `None` are inferred from tensor shapes where that is
/// unambiguous (alpha from logits.weight's input width, classes from its rows, depth
/// multiplier from dw_1.weight, variant from the layer names); the resolution cannot be
/// inferred and defaults to [`DEFAULT_RESOLUTION`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WeightOverrides {
    pub alpha: Option<f64>,
    pub resolution: Option<u32>,
    pub classes: Option<u32>,
    pub depth_multiplier: Option<u32>,
    pub variant: Option<Variant>,
    /// The family (`--family`) when the metadata has neither `family` nor `architecture`.
    pub family: Option<Family>,
    /// MobileNetV3 minimalistic (`--minimalistic`) when the metadata lacks `minimalistic`.
    pub minimalistic: Option<bool>,
}

/// Metadata key of a file's class names: a JSON array of `num_classes` distinct, non-empty
/// strings, in output order (what `retrain` writes). Without it a 1001-class file is taken as
/// ImageNet's and any other as unnamed classes.
pub const LABELS_KEY: &str = "labels";

/// The class names of metadata [`LABELS_KEY`], checked against the classes the file has.
pub(super) fn resolve_labels(
    file: &str,
    metadata: &HashMap<String, String>,
    classes: u32,
) -> Result<Option<Vec<String>>, WeightsError> {
    let Some(value) = metadata.get(LABELS_KEY) else {
        return Ok(None);
    };
    let bad = |expected: String| WeightsError::Metadata {
        file: file.to_string(),
        key: LABELS_KEY.to_string(),
        value: crate::text::one_line(value),
        expected,
    };
    let labels: Vec<String> =
        serde_json::from_str(value).map_err(|_| bad("a JSON array of class names".into()))?;
    if labels.len() != classes as usize {
        return Err(bad(format!(
            "a list of {classes} names, one per class ({} given)",
            labels.len()
        )));
    }
    if labels.iter().any(|l| l.trim().is_empty()) {
        return Err(bad("a list of non-empty names".into()));
    }
    let mut sorted: Vec<&String> = labels.iter().collect();
    sorted.sort();
    if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(format!("a list of distinct names ('{}' twice)", pair[0])));
    }
    Ok(Some(labels))
}

/// "1.0", "0.75": alpha as model names print it.
pub(crate) fn alpha_text(alpha: f64) -> String {
    let s = format!("{alpha}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

fn meta<T: FromStr>(
    file: &str,
    metadata: &HashMap<String, String>,
    keys: &[&str],
    expected: &str,
) -> Result<Option<T>, WeightsError> {
    for key in keys {
        if let Some(value) = metadata.get(*key) {
            return value
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| WeightsError::Metadata {
                    file: file.to_string(),
                    key: key.to_string(),
                    value: value.clone(),
                    expected: expected.to_string(),
                });
        }
    }
    Ok(None)
}

/// The configuration from metadata, else the caller's overrides, else the tensors' shapes.
/// Returns it with the trained resolution (metadata only) and whether alpha was inferred.
pub(super) fn resolve_config(
    f: &FileCtx,
    metadata: &HashMap<String, String>,
    overrides: &WeightOverrides,
) -> Result<(Config, Option<u32>, bool), WeightsError> {
    let file = f.file;
    let family = resolve_family(f, metadata, overrides)?;
    // Alpha and resolution go through their one parser, so a bad value is reported as this
    // file's metadata, with the range it must be in.
    let trained_resolution: Option<u32> = meta::<Resolution>(
        file,
        metadata,
        &["resolution"],
        "an integer resolution from 32 to 8192",
    )?
    .map(Resolution::get);
    let variant = match meta::<Variant>(file, metadata, &["variant"], "standard, full-conv or shallow")? {
        Some(v) => v,
        None if family == Family::V1 => overrides.variant.unwrap_or_else(|| infer_variant(f)),
        None => overrides.variant.unwrap_or(Variant::Standard),
    };
    let minimalistic = match meta::<bool>(file, metadata, &["minimalistic"], "true or false")? {
        Some(m) => m,
        // A v3 file without any squeeze-and-excite tensor is a minimalistic one.
        None => overrides.minimalistic.unwrap_or_else(|| {
            family.is_v3() && !f.tensors.names().iter().any(|n| names::is_squeeze_excite(n))
        }),
    };
    let logits = f.shape(&names::weight("logits")).filter(|s| s.len() == 2);
    let mut inferred_alpha = false;
    let alpha = match meta::<Alpha>(file, metadata, &["alpha"], "a width multiplier in (0, 2]")?
        .map(Alpha::get)
        .or(overrides.alpha)
    {
        Some(a) => a,
        None if family == Family::V1 => {
            let Some(logits) = &logits else {
                return Err(missing_logits(f));
            };
            inferred_alpha = true;
            logits[1] as f64 / 1024.0
        }
        // v2/v3 keep the head width when alpha < 1, so logits do not give alpha: assume 1.0
        // (the shape check then names the first tensor that disagrees).
        None => 1.0,
    };
    let classes = match meta(file, metadata, &["num_classes", "classes"], "an integer")?.or(overrides.classes)
    {
        Some(c) => c,
        None => match &logits {
            Some(l) => u32::try_from(l[0]).unwrap_or(u32::MAX),
            None => return Err(missing_logits(f)),
        },
    };
    let depth_multiplier = meta(file, metadata, &["depth_multiplier"], "an integer")?
        .or(overrides.depth_multiplier)
        .unwrap_or_else(|| {
            if family == Family::V1 {
                infer_depth_multiplier(f)
            } else {
                1
            }
        });
    let resolution = trained_resolution
        .or(overrides.resolution)
        .unwrap_or(DEFAULT_RESOLUTION);
    let config = Config::build(
        family,
        alpha,
        resolution,
        depth_multiplier,
        classes,
        variant,
        minimalistic,
    )
    .map_err(|source| WeightsError::Config {
        file: file.to_string(),
        source,
    })?;
    Ok((config, trained_resolution, inferred_alpha))
}

/// The family: metadata `family` (v1, v2, v3-large, v3-small) or `architecture`
/// (mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small), else `--family`, else
/// the tensor names (`block_0.dw.weight` means v2 or v3; `conv_head.weight` means v3, large
/// with 1280 outputs, small with 1024), else v1.
fn resolve_family(
    f: &FileCtx,
    metadata: &HashMap<String, String>,
    overrides: &WeightOverrides,
) -> Result<Family, WeightsError> {
    let bad = |key: &str, value: &str, expected: &str| WeightsError::Metadata {
        file: f.file.to_string(),
        key: key.into(),
        value: value.into(),
        expected: expected.into(),
    };
    if let Some(value) = metadata.get("family") {
        return value
            .trim()
            .parse()
            .map_err(|_| bad("family", value, "v1, v2, v3-large or v3-small"));
    }
    if let Some(value) = metadata.get("architecture") {
        return match value.trim() {
            "mobilenet_v1" => Ok(Family::V1),
            "mobilenet_v2" => Ok(Family::V2),
            "mobilenet_v3_large" => Ok(Family::V3Large),
            "mobilenet_v3_small" => Ok(Family::V3Small),
            _ => Err(bad(
                "architecture",
                value,
                "mobilenet_v1, mobilenet_v2, mobilenet_v3_large or mobilenet_v3_small",
            )),
        };
    }
    if let Some(family) = overrides.family {
        return Ok(family);
    }
    if !f.has(&names::weight("block_0.dw")) {
        return Ok(Family::V1);
    }
    Ok(
        match f
            .shape(&names::weight("conv_head"))
            .and_then(|s| s.first().copied())
        {
            None => Family::V2,
            Some(1024) => Family::V3Small,
            Some(_) => Family::V3Large,
        },
    )
}

fn missing_logits(f: &FileCtx) -> WeightsError {
    WeightsError::MissingTensor {
        file: f.file.to_string(),
        tensor: names::weight("logits"),
        expected: "a [classes, channels] matrix, needed to infer alpha and classes".into(),
    }
}

fn infer_variant(f: &FileCtx) -> Variant {
    if f.has(&names::weight("conv_1")) {
        return Variant::FullConv;
    }
    let removed_any = (7..=11)
        .any(|i| f.has(&names::weight(&format!("dw_{i}"))) || f.has(&names::weight(&format!("pw_{i}"))));
    if f.has(&names::weight("dw_1")) && !removed_any {
        Variant::Shallow
    } else {
        Variant::Standard
    }
}

/// dw_1's output channels over the stem's; 1 when that is not a whole number (the shape
/// check then reports the mismatch).
fn infer_depth_multiplier(f: &FileCtx) -> u32 {
    let stem = f.shape(&names::weight("conv_0")).and_then(|s| s.first().copied());
    let dw = f.shape(&names::weight("dw_1")).and_then(|s| s.first().copied());
    match (stem, dw) {
        (Some(stem), Some(dw)) if stem > 0 && dw % stem == 0 => u32::try_from(dw / stem).unwrap_or(1).max(1),
        _ => 1,
    }
}

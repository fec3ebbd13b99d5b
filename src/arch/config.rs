//! A validated choice of model: family, width multiplier, resolution, depth multiplier, classes
//! and ablation variant.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How the width multiplier alpha rounds channel counts, named in every report.
pub const WIDTH_RULE: &str = "channels = max(int(c * alpha), 8) (TF-slim mobilenet_v1.py)";

/// Smallest input the network accepts: five stride-2 layers leave at least one pixel (Keras's
/// documented minimum).
pub const MIN_RESOLUTION: u32 = 32;
/// Largest input accepted: beyond it a single activation no longer fits in memory.
pub const MAX_RESOLUTION: u32 = 8192;
/// Largest width multiplier accepted.
pub const MAX_ALPHA: f64 = 2.0;

/// The member of the MobileNet family. Only v1 exists so far; the spec keeps a block table per
/// family so v2 and v3 are data plus one builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    V1,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::V1 => "v1",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v1" => Ok(Family::V1),
            other => Err(ConfigError::UnknownFamily(other.to_string())),
        }
    }
}

/// The paper's architecture ablations (Section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Table 1 as published (with the last depthwise layer at stride 1).
    Standard,
    /// Table 4's "Conv MobileNet": every depthwise-separable layer replaced by a full 3x3 conv.
    FullConv,
    /// Table 5's "Shallow MobileNet": the five 14x14x512 separable layers removed.
    Shallow,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Standard, Variant::FullConv, Variant::Shallow];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Standard => "standard",
            Variant::FullConv => "full-conv",
            Variant::Shallow => "shallow",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| ConfigError::UnknownVariant(s.to_string()))
    }
}

/// Why a configuration was refused. Messages name the flag so the CLI can print them as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("--alpha must be a finite number in (0, {MAX_ALPHA}], got {0}")]
    Alpha(f64),
    #[error("--res must be an integer from {MIN_RESOLUTION} to {MAX_RESOLUTION}, got {0}")]
    Resolution(i64),
    #[error(
        "--rho must be a finite number > 0 giving a resolution from {MIN_RESOLUTION} to {MAX_RESOLUTION}, got {0}"
    )]
    Rho(f64),
    #[error("--depth-multiplier must be an integer from 1 to 16, got {0}")]
    DepthMultiplier(u32),
    #[error("--classes must be an integer from 1 to 100000, got {0}")]
    Classes(u32),
    #[error("unknown --variant '{0}' (expected standard, full-conv or shallow)")]
    UnknownVariant(String),
    #[error("unknown --family '{0}' (expected v1)")]
    UnknownFamily(String),
}

/// A validated model configuration. Construct with [`Config::new`]; fields are read-only.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Config {
    pub family: Family,
    /// Width multiplier alpha (paper eq. 6).
    pub alpha: f64,
    /// Input height and width in pixels (the paper's resolution multiplier rho = resolution / 224).
    pub resolution: u32,
    /// Depthwise channel multiplier (Keras `depth_multiplier`): each depthwise filter produces
    /// this many output channels per input channel. Not the resolution multiplier.
    pub depth_multiplier: u32,
    /// Output classes of the final fully connected layer.
    pub classes: u32,
    pub variant: Variant,
}

impl Config {
    pub fn new(
        alpha: f64,
        resolution: u32,
        depth_multiplier: u32,
        classes: u32,
        variant: Variant,
    ) -> Result<Self, ConfigError> {
        if !(alpha.is_finite() && alpha > 0.0 && alpha <= MAX_ALPHA) {
            return Err(ConfigError::Alpha(alpha));
        }
        if !(MIN_RESOLUTION..=MAX_RESOLUTION).contains(&resolution) {
            return Err(ConfigError::Resolution(resolution.into()));
        }
        if !(1..=16).contains(&depth_multiplier) {
            return Err(ConfigError::DepthMultiplier(depth_multiplier));
        }
        if !(1..=100_000).contains(&classes) {
            return Err(ConfigError::Classes(classes));
        }
        Ok(Config {
            family: Family::V1,
            alpha,
            resolution,
            depth_multiplier,
            classes,
            variant,
        })
    }

    /// The paper's default: alpha 1.0, 224x224, depth multiplier 1, 1000 classes.
    pub fn paper(alpha: f64, resolution: u32) -> Result<Self, ConfigError> {
        Config::new(alpha, resolution, 1, 1000, Variant::Standard)
    }

    /// The same model with another class count (published figures use 1000 or 1001).
    pub fn with_classes(self, classes: u32) -> Self {
        Config { classes, ..self }
    }

    /// The same model at another variant.
    pub fn with_variant(self, variant: Variant) -> Self {
        Config { variant, ..self }
    }

    /// Resolution from the paper's resolution multiplier: round(224 * rho).
    pub fn resolution_from_rho(rho: f64) -> Result<u32, ConfigError> {
        let res = (224.0 * rho).round();
        if !rho.is_finite() || !(f64::from(MIN_RESOLUTION)..=f64::from(MAX_RESOLUTION)).contains(&res) {
            return Err(ConfigError::Rho(rho));
        }
        Ok(res as u32)
    }

    /// The paper's resolution multiplier rho = resolution / 224.
    pub fn rho(&self) -> f64 {
        f64::from(self.resolution) / 224.0
    }

    /// "1.0-MobileNet-224" style name, as the paper prints it (alpha with at least one decimal).
    pub fn label(&self) -> String {
        format!("{}-MobileNet-{}", format_alpha(self.alpha), self.resolution)
    }
}

/// Alpha as printed in model names: "1.0", "0.75", "0.5".
pub fn format_alpha(alpha: f64) -> String {
    let s = format!("{alpha}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Channels after the width multiplier: max(int(c * alpha), 8), TF-slim's rule. The product is
/// taken in f64 like Python's so that values such as 0.35 round exactly as TF-slim's do.
pub fn scaled_channels(base: u32, alpha: f64) -> u32 {
    ((f64::from(base) * alpha) as u32).max(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_rule_matches_tf_slim() {
        assert_eq!(scaled_channels(32, 0.25), 8);
        assert_eq!(scaled_channels(64, 0.25), 16);
        assert_eq!(scaled_channels(1024, 0.75), 768);
        assert_eq!(scaled_channels(32, 0.1), 8);
        assert_eq!(scaled_channels(1024, 0.35), 358);
        assert_eq!(scaled_channels(512, 2.0), 1024);
    }

    #[test]
    fn validation_names_the_flag() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 2.5] {
            let err = Config::paper(bad, 224).unwrap_err();
            assert!(err.to_string().starts_with("--alpha"), "{err}");
        }
        assert!(
            Config::paper(1.0, 31)
                .unwrap_err()
                .to_string()
                .starts_with("--res")
        );
        assert!(Config::paper(1.0, 32).is_ok());
        assert!(Config::paper(2.0, 224).is_ok());
        assert!(Config::new(1.0, 224, 0, 1000, Variant::Standard).is_err());
        assert!(Config::new(1.0, 224, 1, 0, Variant::Standard).is_err());
    }

    #[test]
    fn rho_rounds_to_the_nearest_pixel() {
        assert_eq!(Config::resolution_from_rho(1.0).unwrap(), 224);
        assert_eq!(Config::resolution_from_rho(0.714).unwrap(), 160);
        assert_eq!(Config::resolution_from_rho(0.857).unwrap(), 192);
        assert!(Config::resolution_from_rho(0.1).is_err());
        assert!(Config::resolution_from_rho(f64::NAN).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(Config::paper(1.0, 224).unwrap().label(), "1.0-MobileNet-224");
        assert_eq!(Config::paper(0.75, 192).unwrap().label(), "0.75-MobileNet-192");
        assert_eq!("full-conv".parse::<Variant>().unwrap(), Variant::FullConv);
        assert!("deep".parse::<Variant>().is_err());
    }
}

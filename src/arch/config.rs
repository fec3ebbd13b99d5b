//! A validated choice of model: family, width multiplier, resolution, depth multiplier, classes,
//! ablation variant and (MobileNetV3) the minimalistic flavour.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How the width multiplier alpha rounds v1's channel counts (kept for callers that predate
/// [`Family::width_rule`]).
pub const WIDTH_RULE: &str = "channels = max(int(c * alpha), 8) (TF-slim mobilenet_v1.py)";

/// Smallest input the network accepts: five stride-2 layers leave at least one pixel (Keras's
/// documented minimum).
pub const MIN_RESOLUTION: u32 = 32;
/// Largest input accepted: beyond it a single activation no longer fits in memory.
pub const MAX_RESOLUTION: u32 = 8192;
/// Largest width multiplier accepted.
pub const MAX_ALPHA: f64 = 2.0;

/// The member of the MobileNet family. Each has a block table and a head in `spec`, so a
/// family is data plus one builder per block kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Howard et al. 2017 (arXiv:1704.04861).
    V1,
    /// Sandler et al. 2018, MobileNetV2 (arXiv:1801.04381).
    V2,
    /// Howard et al. 2019, MobileNetV3-Large (arXiv:1905.02244, Table 1).
    V3Large,
    /// Howard et al. 2019, MobileNetV3-Small (arXiv:1905.02244, Table 2).
    V3Small,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::V1, Family::V2, Family::V3Large, Family::V3Small];

    /// The name the CLI, the JSON and `presets/published` use.
    pub fn name(self) -> &'static str {
        match self {
            Family::V1 => "v1",
            Family::V2 => "v2",
            Family::V3Large => "v3-large",
            Family::V3Small => "v3-small",
        }
    }

    /// How this family rounds channel counts under the width multiplier, as printed in reports.
    pub fn width_rule(self) -> &'static str {
        match self {
            Family::V1 => WIDTH_RULE,
            Family::V2 => {
                "channels = make_divisible(c * alpha, 8) = max(8, int(c * alpha + 4) // 8 * 8), + 8 if below 0.9 * c * alpha; expansion = make_divisible(input * t, 8); conv_last stays 1280 when alpha < 1 (TF-slim mobilenet_v2.py)"
            }
            Family::V3Large | Family::V3Small => {
                "channels = make_divisible(c * alpha, 8) = max(8, int(c * alpha + 4) // 8 * 8), + 8 if below 0.9 * c * alpha; expansion = make_divisible(input * ratio, 8); SE reduce = make_divisible(expansion / 4, 8); conv_head stays 1280 (large) / 1024 (small) when alpha < 1 (TF-slim mobilenet_v3.py)"
            }
        }
    }

    /// Channels after the width multiplier under this family's rule.
    pub fn scale(self, base: u32, alpha: f64) -> u32 {
        match self {
            Family::V1 => scaled_channels(base, alpha),
            Family::V2 | Family::V3Large | Family::V3Small => make_divisible(f64::from(base) * alpha, 8),
        }
    }

    /// "MobileNet", "MobileNetV2", "MobileNetV3-Large", "MobileNetV3-Small".
    pub fn title(self) -> &'static str {
        match self {
            Family::V1 => "MobileNet",
            Family::V2 => "MobileNetV2",
            Family::V3Large => "MobileNetV3-Large",
            Family::V3Small => "MobileNetV3-Small",
        }
    }

    pub fn is_v3(self) -> bool {
        matches!(self, Family::V3Large | Family::V3Small)
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
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| ConfigError::UnknownFamily(s.to_string()))
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

/// Why a configuration was refused. The messages name the quantity, not a flag: the same
/// configuration comes from flags, from a weight file's metadata or from a sweep grid, and the
/// caller says which (the plan layer maps these onto `--alpha`, `--res`, ...).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("width multiplier alpha must be a finite number in (0, {MAX_ALPHA}], got {0}")]
    Alpha(f64),
    #[error("resolution must be an integer from {MIN_RESOLUTION} to {MAX_RESOLUTION} pixels, got {0}")]
    Resolution(i64),
    #[error(
        "resolution multiplier rho must be a finite number > 0 giving a resolution from {MIN_RESOLUTION} to {MAX_RESOLUTION} (round(224 * rho)), got {0}"
    )]
    Rho(f64),
    #[error("depth multiplier must be an integer from 1 to {MAX_DEPTH_MULTIPLIER}, got {0}")]
    DepthMultiplier(u32),
    #[error("class count must be an integer from 1 to {MAX_CLASSES}, got {0}")]
    Classes(u32),
    #[error("unknown variant '{0}' (expected standard, full-conv or shallow)")]
    UnknownVariant(String),
    #[error("unknown family '{0}' (expected v1, v2, v3-large or v3-small)")]
    UnknownFamily(String),
    #[error("the minimalistic models are MobileNetV3's (v3-large, v3-small), not {0}")]
    Minimalistic(Family),
    #[error("variant {0} is one of the v1 paper's ablations; {1} has only standard")]
    VariantFamily(Variant, Family),
    #[error("the depth multiplier is a v1 option; {0} is defined with depth multiplier 1")]
    DepthMultiplierFamily(Family),
}

/// Largest depthwise channel multiplier accepted.
pub const MAX_DEPTH_MULTIPLIER: u32 = 16;
/// Largest class count accepted (ImageNet-21k has 21,841).
pub const MAX_CLASSES: u32 = 100_000;

/// A validated width multiplier alpha (v1 paper eq. 6): finite, in (0, [`MAX_ALPHA`]]. The one
/// parser of every `--alpha`, `--alphas` and metadata alpha.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Alpha(f64);

impl Alpha {
    pub fn new(alpha: f64) -> Result<Self, ConfigError> {
        if alpha.is_finite() && alpha > 0.0 && alpha <= MAX_ALPHA {
            Ok(Alpha(alpha))
        } else {
            Err(ConfigError::Alpha(alpha))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Alpha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_alpha(self.0))
    }
}

/// Why a flag value is not a number of the right kind, before range checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty value")]
    Empty,
    #[error("not a number")]
    NotANumber,
    #[error("not a whole number")]
    NotAnInteger,
}

/// A value that failed to parse as an [`Alpha`] or a [`Resolution`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Range(#[from] ConfigError),
}

impl FromStr for Alpha {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::Empty.into());
        }
        let value: f64 = s.parse().map_err(|_| ParseError::NotANumber)?;
        Ok(Alpha::new(value)?)
    }
}

/// A validated input resolution in pixels, [`MIN_RESOLUTION`] to [`MAX_RESOLUTION`]: the one
/// parser of every `--res` and `--resolutions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Resolution(u32);

impl Resolution {
    pub fn new(pixels: i64) -> Result<Self, ConfigError> {
        u32::try_from(pixels)
            .ok()
            .filter(|r| (MIN_RESOLUTION..=MAX_RESOLUTION).contains(r))
            .map(Resolution)
            .ok_or(ConfigError::Resolution(pixels))
    }

    /// The paper's resolution multiplier rho (eq. 7): round(224 * rho).
    pub fn from_rho(rho: f64) -> Result<Self, ConfigError> {
        Config::resolution_from_rho(rho).map(Resolution)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Resolution {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::Empty.into());
        }
        let value: i64 = s.parse().map_err(|_| match s.parse::<f64>() {
            Ok(_) => ParseError::NotAnInteger,
            Err(_) => ParseError::NotANumber,
        })?;
        Ok(Resolution::new(value)?)
    }
}

/// A validated model configuration. Construct with [`Config::new`] (v1), [`Config::family`] or
/// [`Config::build`]; fields are read-only.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Config {
    pub family: Family,
    /// Width multiplier alpha (v1 paper eq. 6; TF-slim's `depth_multiplier` for v2 and v3).
    pub alpha: f64,
    /// Input height and width in pixels (the paper's resolution multiplier rho = resolution / 224).
    pub resolution: u32,
    /// Depthwise channel multiplier (Keras `depth_multiplier`): each depthwise filter produces
    /// this many output channels per input channel. Not the resolution multiplier. v1 only.
    pub depth_multiplier: u32,
    /// Output classes of the final fully connected layer.
    pub classes: u32,
    pub variant: Variant,
    /// MobileNetV3's minimalistic models (TF-slim README): no squeeze-and-excite, ReLU instead
    /// of hard-swish, 3x3 depthwise kernels instead of 5x5. v3 only.
    pub minimalistic: bool,
}

impl Config {
    /// A MobileNet v1 configuration.
    pub fn new(
        alpha: f64,
        resolution: u32,
        depth_multiplier: u32,
        classes: u32,
        variant: Variant,
    ) -> Result<Self, ConfigError> {
        Config::build(
            Family::V1,
            alpha,
            resolution,
            depth_multiplier,
            classes,
            variant,
            false,
        )
    }

    /// Any family with the defaults: depth multiplier 1, 1000 classes, standard, not minimalistic.
    pub fn family(family: Family, alpha: f64, resolution: u32) -> Result<Self, ConfigError> {
        Config::build(family, alpha, resolution, 1, 1000, Variant::Standard, false)
    }

    /// Every field, validated: the ablation variants and the depth multiplier exist for v1 only,
    /// the minimalistic flavour for v3 only.
    pub fn build(
        family: Family,
        alpha: f64,
        resolution: u32,
        depth_multiplier: u32,
        classes: u32,
        variant: Variant,
        minimalistic: bool,
    ) -> Result<Self, ConfigError> {
        Alpha::new(alpha)?;
        Resolution::new(resolution.into())?;
        if !(1..=MAX_DEPTH_MULTIPLIER).contains(&depth_multiplier) {
            return Err(ConfigError::DepthMultiplier(depth_multiplier));
        }
        if !(1..=MAX_CLASSES).contains(&classes) {
            return Err(ConfigError::Classes(classes));
        }
        if family != Family::V1 {
            if variant != Variant::Standard {
                return Err(ConfigError::VariantFamily(variant, family));
            }
            if depth_multiplier != 1 {
                return Err(ConfigError::DepthMultiplierFamily(family));
            }
        }
        if minimalistic && !family.is_v3() {
            return Err(ConfigError::Minimalistic(family));
        }
        Ok(Config {
            family,
            alpha,
            resolution,
            depth_multiplier,
            classes,
            variant,
            minimalistic,
        })
    }

    /// The v1 paper's default: alpha 1.0, 224x224, depth multiplier 1, 1000 classes.
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

    /// "1.0-MobileNet-224" style name, as the v1 paper prints it (alpha with at least one
    /// decimal); "1.0-MobileNetV3-Large-minimalistic-224" for the others.
    pub fn label(&self) -> String {
        let minimalistic = if self.minimalistic { "-minimalistic" } else { "" };
        format!(
            "{}-{}{minimalistic}-{}",
            format_alpha(self.alpha),
            self.family.title(),
            self.resolution
        )
    }

    /// "standard" or, for v3, "minimalistic": the `variant` column of `presets/published`.
    pub fn published_variant(&self) -> &'static str {
        if self.minimalistic {
            "minimalistic"
        } else {
            self.variant.name()
        }
    }
}

/// Alpha as printed in model names: "1.0", "0.75", "0.5".
pub fn format_alpha(alpha: f64) -> String {
    let s = format!("{alpha}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// v1 channels after the width multiplier: max(int(c * alpha), 8), TF-slim's rule. The product is
/// taken in f64 like Python's so that values such as 0.35 round exactly as TF-slim's do.
pub fn scaled_channels(base: u32, alpha: f64) -> u32 {
    ((f64::from(base) * alpha) as u32).max(8)
}

/// TF-slim's `_make_divisible(v, divisor)` (research/slim/nets/mobilenet/conv_blocks.py), the
/// channel rule of v2 and v3: the multiple of `divisor` nearest `v` (halves round up), at least
/// `divisor`, plus one more `divisor` if rounding down lost more than 10% of `v`. Computed in f64
/// like Python, so fractional ratios such as 184/80 round exactly as TF-slim's do.
pub fn make_divisible(v: f64, divisor: u32) -> u32 {
    // Python's int() truncates toward zero (v is positive here); then integer floor division.
    let truncated = (v + f64::from(divisor) / 2.0) as u32;
    let mut channels = (truncated / divisor * divisor).max(divisor);
    if f64::from(channels) < 0.9 * v {
        channels += divisor;
    }
    channels
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
    fn validation_names_the_quantity_not_a_flag() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 2.5] {
            let err = Config::paper(bad, 224).unwrap_err();
            assert!(err.to_string().starts_with("width multiplier alpha"), "{err}");
            assert!(!err.to_string().contains("--"), "{err}");
        }
        assert!(
            Config::paper(1.0, 31)
                .unwrap_err()
                .to_string()
                .starts_with("resolution must be")
        );
        assert!(Config::paper(1.0, 32).is_ok());
        assert!(Config::paper(2.0, 224).is_ok());
        assert!(Config::new(1.0, 224, 0, 1000, Variant::Standard).is_err());
        assert!(Config::new(1.0, 224, 1, 0, Variant::Standard).is_err());
    }

    #[test]
    fn alpha_and_resolution_have_one_parser_each() {
        assert_eq!("0.5".parse::<Alpha>().unwrap().get(), 0.5);
        assert_eq!(" 2 ".parse::<Alpha>().unwrap().to_string(), "2.0");
        assert_eq!("".parse::<Alpha>().unwrap_err().to_string(), "empty value");
        assert_eq!("x".parse::<Alpha>().unwrap_err().to_string(), "not a number");
        for bad in ["0", "-1", "2.5", "NaN", "inf"] {
            let err = bad.parse::<Alpha>().unwrap_err().to_string();
            assert!(err.starts_with("width multiplier alpha must be"), "{bad}: {err}");
        }
        assert_eq!("224".parse::<Resolution>().unwrap().get(), 224);
        assert_eq!(
            "22.5".parse::<Resolution>().unwrap_err().to_string(),
            "not a whole number"
        );
        for bad in ["31", "8193", "-5", "99999999999999"] {
            let err = bad.parse::<Resolution>().unwrap_err().to_string();
            assert!(err.starts_with("resolution must be"), "{bad}: {err}");
        }
        assert_eq!(Resolution::from_rho(0.714).unwrap().get(), 160);
    }

    #[test]
    fn rho_rounds_to_the_nearest_pixel() {
        assert_eq!(Config::resolution_from_rho(1.0).unwrap(), 224);
        assert_eq!(Config::resolution_from_rho(0.714).unwrap(), 160);
        assert_eq!(Config::resolution_from_rho(0.857).unwrap(), 192);
        assert!(Config::resolution_from_rho(0.1).is_err());
        assert!(Config::resolution_from_rho(f64::NAN).is_err());
    }

    /// Values checked against TF-slim's `_make_divisible` run in Python.
    #[test]
    fn make_divisible_matches_tf_slim() {
        for (v, expected) in [
            (32.0 * 0.35, 16), // 11.2: rounds to 8, which loses more than 10%, so 16
            (1280.0 * 1.4, 1792),
            (24.0 * 0.75, 24), // 18 -> 16 would lose 11%
            (12.0, 16),        // halves round up
            (8.0, 8),
            (4.0, 8), // at least the divisor
            (64.0 * (184.0 / 80.0), 144),
            (16.0 * 1.3 * 6.0, 128),
            (96.0 * 0.35, 32),
            (72.0 / 4.0, 24),
        ] {
            assert_eq!(make_divisible(v, 8), expected, "{v}");
        }
        assert_eq!(Family::V2.scale(32, 0.35), 16);
        assert_eq!(Family::V1.scale(32, 0.35), 11);
    }

    #[test]
    fn families_parse_and_name_their_rules() {
        for family in Family::ALL {
            assert_eq!(family.name().parse::<Family>().unwrap(), family);
            assert!(family.width_rule().contains("TF-slim"));
        }
        let err = "v4".parse::<Family>().unwrap_err().to_string();
        assert!(err.starts_with("unknown family 'v4'"), "{err}");
        for name in ["v1", "v2", "v3-large", "v3-small"] {
            assert!(err.contains(name), "{err}");
        }
        assert!(Family::V2.width_rule().contains("make_divisible"));
        assert!(WIDTH_RULE.contains("max(int(c * alpha), 8)"));
    }

    #[test]
    fn family_options_are_validated() {
        let build = |family, dm, variant, minimalistic| {
            Config::build(family, 1.0, 224, dm, 1000, variant, minimalistic)
        };
        for family in [Family::V1, Family::V2] {
            let err = build(family, 1, Variant::Standard, true).unwrap_err().to_string();
            assert!(err.starts_with("the minimalistic models"), "{err}");
        }
        assert!(build(Family::V3Small, 1, Variant::Standard, true).is_ok());
        let err = build(Family::V2, 1, Variant::Shallow, false)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("variant shallow"), "{err}");
        let err = build(Family::V3Large, 2, Variant::Standard, false)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("the depth multiplier"), "{err}");
        // v1 through the old constructors is unchanged.
        let v1 = Config::paper(1.0, 224).unwrap();
        assert_eq!((v1.family, v1.minimalistic), (Family::V1, false));
        assert_eq!(Config::family(Family::V1, 1.0, 224).unwrap(), v1);
    }

    #[test]
    fn names() {
        assert_eq!(Config::paper(1.0, 224).unwrap().label(), "1.0-MobileNet-224");
        assert_eq!(Config::paper(0.75, 192).unwrap().label(), "0.75-MobileNet-192");
        assert_eq!(
            Config::family(Family::V2, 1.4, 224).unwrap().label(),
            "1.4-MobileNetV2-224"
        );
        let minimal = Config::build(Family::V3Large, 1.0, 224, 1, 1000, Variant::Standard, true).unwrap();
        assert_eq!(minimal.label(), "1.0-MobileNetV3-Large-minimalistic-224");
        assert_eq!(minimal.published_variant(), "minimalistic");
        assert_eq!("full-conv".parse::<Variant>().unwrap(), Variant::FullConv);
        assert!("deep".parse::<Variant>().is_err());
    }
}

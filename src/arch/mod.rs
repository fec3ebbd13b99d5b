//! The architecture spec: the single source of truth for every MobileNet this tool knows.
//!
//! Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
//! Applications" (arXiv:1704.04861), Table 1; Sandler et al. 2018, "MobileNetV2: Inverted
//! Residuals and Linear Bottlenecks" (arXiv:1801.04381), Table 2; and Howard et al. 2019,
//! "Searching for MobileNetV3" (arXiv:1905.02244), Tables 1 and 2, are written down once as data
//! ([`spec`]); a [`Config`] (family, width multiplier alpha, resolution, depth multiplier,
//! classes, ablation variant, v3 minimalistic) instantiates them into concrete [`Layer`]s with
//! input and output shapes. The cost model (`crate::cost`), the candle network and every report
//! consume those layers, so they cannot drift apart.
//!
//! Shapes follow TensorFlow "SAME" padding: output = ceil(input / stride) (eq. 7's rho*D_F is
//! realised by choosing the input resolution).

pub mod config;
mod layer;
mod spec;

pub use config::{
    Alpha, Config, ConfigError, Family, ParseError, Resolution, ValueError, Variant, WIDTH_RULE,
    make_divisible, scaled_channels,
};
pub use layer::{Activation, Layer, LayerKind, Role, Shape};
pub use spec::{
    Architecture, Block, Head, MOBILENET_V1, MOBILENET_V2, MOBILENET_V3_LARGE, MOBILENET_V3_SMALL, Ratio,
    SHALLOW_REMOVED_BLOCKS, instantiate,
};

//! The architecture spec: the single source of truth for every MobileNet this tool knows.
//!
//! Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
//! Applications" (arXiv:1704.04861), Table 1, is written down once as data ([`spec`]); a
//! [`Config`] (width multiplier alpha, resolution, depth multiplier, classes, ablation variant)
//! instantiates it into concrete [`Layer`]s with input and output shapes. The cost model
//! (`crate::cost`), the candle network and every report consume those layers, so they cannot
//! drift apart.
//!
//! Shapes follow TensorFlow "SAME" padding: output = ceil(input / stride) (eq. 7's rho*D_F is
//! realised by choosing the input resolution).

pub mod config;
mod layer;
mod spec;

pub use config::{Config, ConfigError, Family, Variant, WIDTH_RULE, scaled_channels};
pub use layer::{Activation, Layer, LayerKind, Shape};
pub use spec::{Block, MOBILENET_V1, SHALLOW_REMOVED_BLOCKS, instantiate};

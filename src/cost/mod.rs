//! The exact analytic cost model: mult-adds, parameters and memory from the architecture spec,
//! in pure u64 integer arithmetic (no candle, no floating point in any count).
//!
//! Counting convention (Howard et al. 2017, Section 3): mult-adds are the multiply-adds of
//! convolution and fully connected layers only; BatchNorm, ReLU6, pooling and softmax count zero.
//! With D_K the kernel, M input and N output channels and D_F the output feature size:
//! - standard convolution, eq. 2: D_K * D_K * M * N * D_F * D_F;
//! - depthwise convolution, eq. 4: D_K * D_K * M * D_F * D_F (times the depth multiplier);
//! - pointwise convolution: M * N * D_F * D_F, so a separable layer costs eq. 5
//!   D_K^2 M D_F^2 + M N D_F^2, a fraction 1/N + 1/D_K^2 of the standard convolution;
//! - fully connected: M * N.
//!
//! eq. 6 and 7 (width multiplier alpha, resolution multiplier rho) are realised by instantiating
//! the spec at alpha and at the resolution, not by scaling totals, so channel rounding is exact.
//!
//! Parameters are reported under several named conventions, see [`Totals`].

mod layer;
mod model;

pub use layer::{LayerCost, SeparableSaving, layer_cost, separable_saving};
pub use model::{CostReport, KindShare, LayerRow, SavingTotal, Totals, analyze};

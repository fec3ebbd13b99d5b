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
//! v2 and v3 (Sandler et al. 2018, arXiv:1801.04381; Howard et al. 2019, arXiv:1905.02244) keep
//! that convention for every layer the network runs, so `mult_adds` and `params` include
//! squeeze-and-excite's two 1x1 convs on the pooled vector (v3 Section 5.3): 2 * C * R
//! multiply-adds and 2 * C * R + R + C weights and biases per block. Those parts are also
//! reported alone (`se_mult_adds`, `se_params`) and subtracted (`mult_adds_excluding_se`,
//! `params_excluding_se`). Element-wise operations (one per output element for each residual
//! add, SE channel multiply and hard-swish product; ReLU, ReLU6 and hard-sigmoid count zero, like
//! BatchNorm and pooling) are `elementwise_ops`, never inside `mult_adds`.
//!
//! The published MobileNetV3 figures (TF-slim README: Large 217 M and 5.4 M, 0.75 155 M,
//! minimalistic 209 M) are `mult_adds` and `params` rounded (216.6 M, 5.46 M printed as 5.4 by
//! truncation, 154.6 M, 209.1 M); the v3 paper's 219 M for Large is matched only by adding
//! `elementwise_ops` (219.1 M), a convention its 0.75 row (155 M, 156.7 M with element-wise ops)
//! does not follow, so it is flagged. v2's published figures (TF-slim README, paper Table 4) are
//! `mult_adds` truncated to whole millions (300.8 M printed as 300).
//!
//! Every figure is named by a [`Convention`], which also explains it ([`Convention::describe`])
//! and renders the help block ([`help_text`]).

mod convention;
mod layer;
mod model;

pub use convention::{Convention, Quantity, UnknownConvention, help_text};
pub use layer::{LayerCost, SeparableSaving, layer_cost, separable_saving};
pub use model::{CostReport, KindShare, LayerRow, OmittedExpansion, SavingTotal, Totals, analyze};

//! What one instantiated layer computes, given its loaded tensors: the convolution (full, eq. 1;
//! depthwise, eq. 3; pointwise, the 1x1 half of eq. 5), then the per-channel affine (BatchNorm in
//! inference form, or the bias it folds into), then ReLU6; global average pooling; the FC layer.
//!
//! Padding is TensorFlow SAME from `Layer::same_padding()`, applied asymmetrically: candle's
//! symmetric `conv2d` padding gives the right shapes but wrong numbers on even-sized stride-2
//! layers (TF pads 0 on top/left and 1 on bottom/right there).

use candle_core::{CpuStorage, DType, InplaceOp1, Layout, Result, Tensor, bail};

use super::depthwise::depthwise_conv;
use super::weights::Values;
use crate::arch::{Activation, Layer, LayerKind};
use crate::engine::{Dense, LayerWeights};

/// BatchNorm epsilon of the TF-slim and Keras MobileNet v1 (`batch_norm_epsilon=0.001`).
pub const BATCH_NORM_EPS: f32 = 1e-3;

/// The per-channel affine after a convolution: y = x * scale + shift. A folded (deployed) bias
/// has no scale; BatchNorm gamma, beta, mean and variance become scale = gamma / sqrt(var + eps)
/// and shift = beta - mean * scale, the same function with one multiply-add per value.
#[derive(Debug, Clone)]
pub(crate) struct ChannelAffine {
    /// [1, C, 1, 1], absent for a plain bias.
    scale: Option<Tensor>,
    /// [1, C, 1, 1].
    shift: Tensor,
    /// The same values on the host, for the fused CPU pass.
    host_scale: Option<Vec<f32>>,
    host_shift: Vec<f32>,
}

impl ChannelAffine {
    pub(crate) fn bias(bias: &[f32], device: &candle_core::Device) -> Result<Self> {
        Ok(ChannelAffine {
            scale: None,
            shift: Tensor::from_slice(bias, (1, bias.len(), 1, 1), device)?,
            host_scale: None,
            host_shift: bias.to_vec(),
        })
    }

    /// BatchNorm in inference form from its four per-channel tensors.
    pub(crate) fn batch_norm(
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        var: &[f32],
        device: &candle_core::Device,
    ) -> Result<Self> {
        let scale: Vec<f32> = gamma
            .iter()
            .zip(var)
            .map(|(g, v)| g / (v + BATCH_NORM_EPS).sqrt())
            .collect();
        let shift: Vec<f32> = beta
            .iter()
            .zip(mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        let channels = scale.len();
        Ok(ChannelAffine {
            scale: Some(Tensor::from_slice(&scale, (1, channels, 1, 1), device)?),
            shift: Tensor::from_slice(&shift, (1, channels, 1, 1), device)?,
            host_scale: Some(scale),
            host_shift: shift,
        })
    }

    /// The affine, then `activation`, on a freshly computed convolution output.
    fn apply(&self, x: Tensor, activation: Activation) -> Result<Tensor> {
        // One in-place pass instead of candle's add, maximum and minimum (three passes and
        // three allocations). Safe because `x` was just produced by the convolution and nothing
        // else holds its storage.
        if x.device().is_cpu() && x.dtype() == DType::F32 && x.is_contiguous() && x.rank() == 4 {
            let op = FusedEpilogue {
                scale: self.host_scale.as_deref(),
                shift: &self.host_shift,
                activation,
            };
            x.inplace_op1(&op)?;
            return Ok(x);
        }
        let y = match &self.scale {
            Some(scale) => x.broadcast_mul(scale)?.broadcast_add(&self.shift)?,
            None => x.broadcast_add(&self.shift)?,
        };
        activate(y, activation)
    }
}

/// `activation` with candle tensor ops (the generic path).
pub(crate) fn activate(y: Tensor, activation: Activation) -> Result<Tensor> {
    match activation {
        Activation::Relu6 => y.clamp(0f32, 6f32),
        Activation::Relu => y.relu(),
        Activation::HardSwish => {
            let gate = ((&y + 3.0)?.clamp(0f32, 6f32)? / 6.0)?;
            y * gate
        }
        Activation::Linear => Ok(y),
    }
}

/// `activation` of one value: the fused CPU path's scalar form of [`activate`].
#[inline]
fn activate_scalar(y: f32, activation: Activation) -> f32 {
    match activation {
        Activation::Relu6 => y.clamp(0.0, 6.0),
        Activation::Relu => y.max(0.0),
        Activation::HardSwish => y * ((y + 3.0).clamp(0.0, 6.0) / 6.0),
        Activation::Linear => y,
    }
}

/// y = x * scale[c] + shift[c], then the activation, in place on a contiguous NCHW tensor.
struct FusedEpilogue<'a> {
    scale: Option<&'a [f32]>,
    shift: &'a [f32],
    activation: Activation,
}

impl InplaceOp1 for FusedEpilogue<'_> {
    fn name(&self) -> &'static str {
        "affine-relu6"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let (CpuStorage::F32(data), Some((start, end))) = (storage, layout.contiguous_offsets()) else {
            bail!("affine-relu6: expects a contiguous f32 tensor");
        };
        let dims = layout.dims();
        let channels = self.shift.len();
        if dims.len() != 4 || dims[1] != channels {
            bail!("affine-relu6: {dims:?} does not have {channels} channels");
        }
        let plane = (dims[2] * dims[3]).max(1);
        for (index, values) in data[start..end].chunks_mut(plane).enumerate() {
            let c = index % channels;
            let (scale, shift) = (self.scale.map_or(1.0, |s| s[c]), self.shift[c]);
            for v in values.iter_mut() {
                let y = if self.scale.is_some() {
                    *v * scale + shift
                } else {
                    *v + shift
                };
                *v = activate_scalar(y, self.activation);
            }
        }
        Ok(())
    }
}

/// The loaded computation of one layer, index-aligned with `arch::instantiate`.
#[derive(Debug, Clone)]
pub(crate) enum LayerOp {
    /// Full convolution, weight [out, in, k, k].
    Conv { weight: Tensor, affine: ChannelAffine },
    /// Depthwise convolution, weight [C * dm, 1, k, k].
    Depthwise { weight: Tensor, affine: ChannelAffine },
    /// Pointwise convolution, weight stored as the matrix [out, in].
    Pointwise { weight: Tensor, affine: ChannelAffine },
    /// Squeeze-and-excite: global average pool, reduce 1x1 conv (weight [se, C]) + bias + ReLU,
    /// expand 1x1 conv (weight [C, se]) + bias + hard-sigmoid relu6(x + 3) / 6, channel multiply.
    /// The gate divides by 6 for every weights file, the shipped TF-slim V3-Small included
    /// (whose graph multiplies by 0.16667; see `src/nn/model_id.rs` for the measured difference).
    SqueezeExcite {
        reduce: Tensor,
        reduce_bias: Tensor,
        expand: Tensor,
        expand_bias: Tensor,
    },
    /// Global average pooling to [N, C, 1, 1].
    Pool,
    /// Fully connected, weight stored transposed as [in, classes] so the product is a plain
    /// row-major gemm; bias [classes].
    Fc { weight_t: Tensor, bias: Tensor },
}

impl LayerOp {
    /// Runs the layer on `x` (its input, NCHW).
    pub(crate) fn forward(&self, layer: &Layer, x: &Tensor) -> Result<Tensor> {
        let stride = layer.stride as usize;
        let act = layer.activation;
        match self {
            LayerOp::Conv { weight, affine } => {
                let (top, bottom, left, right) = layer.same_padding();
                let padded = x
                    .pad_with_zeros(2, top as usize, bottom as usize)?
                    .pad_with_zeros(3, left as usize, right as usize)?;
                affine.apply(padded.conv2d(weight, 0, stride, 1, 1)?, act)
            }
            LayerOp::Depthwise { weight, affine } => {
                affine.apply(depthwise_conv(x, weight, stride, layer.same_padding())?, act)
            }
            LayerOp::Pointwise { weight, affine } => affine.apply(pointwise_conv(x, weight)?, act),
            LayerOp::SqueezeExcite {
                reduce,
                reduce_bias,
                expand,
                expand_bias,
            } => {
                let pooled = x.mean_keepdim(3)?.mean_keepdim(2)?;
                let squeezed = pointwise_conv(&pooled, reduce)?
                    .broadcast_add(reduce_bias)?
                    .relu()?;
                let gate = pointwise_conv(&squeezed, expand)?.broadcast_add(expand_bias)?;
                let gate = ((gate + 3.0)?.clamp(0f32, 6f32)? / 6.0)?;
                x.broadcast_mul(&gate)
            }
            LayerOp::Pool => x.mean_keepdim(3)?.mean_keepdim(2),
            LayerOp::Fc { weight_t, bias } => x.flatten_from(1)?.matmul(weight_t)?.broadcast_add(bias),
        }
    }

    /// The layer's weights with BatchNorm folded in, on the host, typed by form (what the
    /// fast engine packs). Weights keep the files' layout (OIHW for convolutions, [classes, in]
    /// for the FC layer); each output channel's filter is multiplied by the BatchNorm scale,
    /// and the bias is the shift. Squeeze-and-excite's two convs have plain biases.
    pub(crate) fn folded(&self) -> Result<LayerWeights> {
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        Ok(match self {
            LayerOp::Conv { weight, affine }
            | LayerOp::Depthwise { weight, affine }
            | LayerOp::Pointwise { weight, affine } => {
                let mut w = flat(weight)?;
                let channels = affine.host_shift.len();
                if let Some(scale) = &affine.host_scale {
                    let per_channel = w.len() / channels.max(1);
                    for (filter, s) in w.chunks_mut(per_channel).zip(scale) {
                        filter.iter_mut().for_each(|v| *v *= s);
                    }
                }
                LayerWeights::Dense(Dense {
                    weight: w,
                    bias: affine.host_shift.clone(),
                })
            }
            LayerOp::SqueezeExcite {
                reduce,
                reduce_bias,
                expand,
                expand_bias,
            } => LayerWeights::SqueezeExcite {
                reduce: Dense {
                    weight: flat(reduce)?,
                    bias: flat(reduce_bias)?,
                },
                expand: Dense {
                    weight: flat(expand)?,
                    bias: flat(expand_bias)?,
                },
            },
            LayerOp::Pool => LayerWeights::None,
            LayerOp::Fc { weight_t, bias } => LayerWeights::Dense(Dense {
                weight: flat(&weight_t.t()?.contiguous()?)?,
                bias: bias.to_vec1::<f32>()?,
            }),
        })
    }

    /// The kind of layer this op implements, to check it against the spec.
    pub(crate) fn kind(&self) -> LayerKind {
        match self {
            LayerOp::Conv { .. } => LayerKind::Conv,
            LayerOp::Depthwise { .. } => LayerKind::Depthwise,
            LayerOp::Pointwise { .. } => LayerKind::Pointwise,
            LayerOp::SqueezeExcite { .. } => LayerKind::SqueezeExcite,
            LayerOp::Pool => LayerKind::AvgPool,
            LayerOp::Fc { .. } => LayerKind::Fc,
        }
    }
}

/// The two weight shapes of a squeeze-and-excite layer, (reduce `[se, C, 1, 1]`, expand
/// `[C, se, 1, 1]`), stored as `NAME.reduce.weight` and `NAME.expand.weight` with biases
/// `NAME.reduce.bias` `[se]` and `NAME.expand.bias` `[C]` (see [`crate::nn::names`]). None for
/// other layers.
pub fn squeeze_excite_shapes(layer: &Layer) -> Option<(Vec<usize>, Vec<usize>)> {
    let se = layer.se_channels? as usize;
    (layer.kind == LayerKind::SqueezeExcite).then(|| {
        let c = layer.input.c as usize;
        (vec![se, c, 1, 1], vec![c, se, 1, 1])
    })
}

/// The weight tensor shape the spec implies for `layer`, in the files' layout (OIHW for
/// convolutions, [out, in] for the FC layer); None for the weightless pool.
pub fn weight_shape(layer: &Layer) -> Option<Vec<usize>> {
    let (k, cin, cout) = (
        layer.kernel as usize,
        layer.input.c as usize,
        layer.output.c as usize,
    );
    match layer.kind {
        LayerKind::Conv => Some(vec![cout, cin, k, k]),
        LayerKind::Depthwise => Some(vec![cout, 1, k, k]),
        LayerKind::Pointwise => Some(vec![cout, cin, 1, 1]),
        LayerKind::Fc => Some(vec![cout, cin]),
        // Two weight tensors, not one: see `squeeze_excite_shapes`.
        LayerKind::SqueezeExcite | LayerKind::AvgPool => None,
    }
}

/// One layer's stored values, already validated against [`weight_shape`] or
/// [`squeeze_excite_shapes`]; the pool has none.
#[derive(Debug, Clone)]
pub(crate) enum RawLayer {
    /// A convolution or the FC layer.
    Dense(RawDense),
    /// Squeeze-and-excite's reduce and expand convs, each with a bias.
    SqueezeExcite { reduce: RawDense, expand: RawDense },
}

/// One weight tensor, as stored, and the values after it.
#[derive(Debug, Clone)]
pub(crate) struct RawDense {
    pub weight: Values,
    pub affine: RawAffine,
}

/// The values after a layer's weights.
#[derive(Debug, Clone)]
pub(crate) enum RawAffine {
    /// A folded conv bias or the FC bias.
    Bias(Vec<f32>),
    /// BatchNorm gamma, beta, running mean and running variance.
    BatchNorm {
        gamma: Vec<f32>,
        beta: Vec<f32>,
        mean: Vec<f32>,
        var: Vec<f32>,
    },
}

impl RawLayer {
    /// Values stored for this layer (the parameter count's unit).
    pub(crate) fn elements(&self) -> u64 {
        match self {
            RawLayer::Dense(dense) => dense.elements(),
            RawLayer::SqueezeExcite { reduce, expand } => reduce.elements() + expand.elements(),
        }
    }
}

impl RawDense {
    fn elements(&self) -> u64 {
        let affine = match &self.affine {
            RawAffine::Bias(b) => b.len(),
            RawAffine::BatchNorm {
                gamma,
                beta,
                mean,
                var,
            } => gamma.len() + beta.len() + mean.len() + var.len(),
        };
        (self.weight.len() + affine) as u64
    }
}

/// Builds the op for `layer` from its raw values (None for the pool), dequantizing U8
/// weights. Shapes must have been validated; a mismatch here is reported as a candle error,
/// not a panic.
pub(crate) fn build_op(
    layer: &Layer,
    raw: Option<RawLayer>,
    device: &candle_core::Device,
) -> Result<LayerOp> {
    if let Some((reduce_shape, _)) = squeeze_excite_shapes(layer) {
        let Some(RawLayer::SqueezeExcite {
            reduce:
                RawDense {
                    weight: reduce,
                    affine: RawAffine::Bias(reduce_bias),
                },
            expand:
                RawDense {
                    weight: expand,
                    affine: RawAffine::Bias(expand_bias),
                },
        }) = raw
        else {
            candle_core::bail!(
                "{}: squeeze-and-excite takes reduce and expand weights with biases",
                layer.name
            );
        };
        let (se, c) = (reduce_shape[0], reduce_shape[1]);
        return Ok(LayerOp::SqueezeExcite {
            reduce: Tensor::from_vec(reduce.into_f32(), (se, c), device)?,
            reduce_bias: Tensor::from_vec(reduce_bias, (1, se, 1, 1), device)?,
            expand: Tensor::from_vec(expand.into_f32(), (c, se), device)?,
            expand_bias: Tensor::from_vec(expand_bias, (1, c, 1, 1), device)?,
        });
    }
    let (Some(shape), Some(raw)) = (weight_shape(layer), raw) else {
        return Ok(LayerOp::Pool);
    };
    let RawLayer::Dense(raw) = raw else {
        candle_core::bail!(
            "{}: squeeze-and-excite weights for a {} layer",
            layer.name,
            layer.kind
        );
    };
    let affine = match &raw.affine {
        RawAffine::Bias(bias) => ChannelAffine::bias(bias, device)?,
        RawAffine::BatchNorm {
            gamma,
            beta,
            mean,
            var,
        } => ChannelAffine::batch_norm(gamma, beta, mean, var, device)?,
    };
    let weight = Tensor::from_vec(raw.weight.into_f32(), shape.as_slice(), device)?;
    Ok(match layer.kind {
        LayerKind::Conv => LayerOp::Conv { weight, affine },
        LayerKind::Depthwise => LayerOp::Depthwise { weight, affine },
        LayerKind::Pointwise => LayerOp::Pointwise {
            weight: weight.reshape((shape[0], shape[1]))?,
            affine,
        },
        LayerKind::Fc => {
            let RawAffine::Bias(bias) = raw.affine else {
                candle_core::bail!("{}: the FC layer takes a bias, not BatchNorm", layer.name);
            };
            LayerOp::Fc {
                weight_t: weight.t()?.contiguous()?,
                bias: Tensor::from_vec(bias, shape[0], device)?,
            }
        }
        LayerKind::AvgPool => LayerOp::Pool,
        LayerKind::SqueezeExcite => {
            candle_core::bail!("{}: squeeze-and-excite without se_channels", layer.name)
        }
    })
}

/// A 1x1 convolution as a matrix product: [out, in] x [in, H*W] per image. On the CPU this is
/// the same gemm candle's 1x1 conv2d path runs, without its layout checks and copies.
pub fn pointwise_conv(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let out = weight.dim(0)?;
    let x = x.reshape((n, c, h * w))?;
    let y = if n == 1 {
        weight.matmul(&x.squeeze(0)?)?.unsqueeze(0)?
    } else {
        weight.broadcast_left(n)?.matmul(&x)?
    };
    y.reshape((n, out, h, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::test_util::max_abs_diff;
    use candle_core::Device;

    fn ramp(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * scale)
            .collect()
    }

    #[test]
    fn pointwise_matches_conv2d_1x1() {
        let dev = Device::Cpu;
        for batch in [1, 3] {
            let x = Tensor::from_vec(ramp(batch * 6 * 5 * 7, 1.0), (batch, 6, 5, 7), &dev).unwrap();
            let w = Tensor::from_vec(ramp(4 * 6, 0.5), (4, 6), &dev).unwrap();
            let ours = pointwise_conv(&x, &w).unwrap();
            let theirs = x.conv2d(&w.reshape((4, 6, 1, 1)).unwrap(), 0, 1, 1, 1).unwrap();
            let diff = max_abs_diff(&ours, &theirs);
            assert!(diff < 1e-5, "batch {batch}: {diff}");
        }
    }

    #[test]
    fn fused_epilogue_equals_the_tensor_ops() {
        let dev = Device::Cpu;
        let base = Tensor::from_vec(ramp(2 * 3 * 4 * 5, 9.0), (2, 3, 5, 4), &dev).unwrap();
        // Transposed: not contiguous, so it takes the generic candle-ops path.
        let strided = base.transpose(2, 3).unwrap();
        let contiguous = strided.contiguous().unwrap();
        assert!(!strided.is_contiguous() && contiguous.is_contiguous());
        let affines = [
            ChannelAffine::bias(&[0.5, -7.0, 2.0], &dev).unwrap(),
            ChannelAffine::batch_norm(
                &[1.5, 0.2, -1.0],
                &[0.0, 1.0, -0.5],
                &[0.3, 0.0, 2.0],
                &[1.0, 0.5, 3.0],
                &dev,
            )
            .unwrap(),
        ];
        for affine in &affines {
            for act in [
                Activation::Linear,
                Activation::Relu6,
                Activation::Relu,
                Activation::HardSwish,
            ] {
                let generic = affine.apply(strided.clone(), act).unwrap();
                let fused = affine.apply(contiguous.copy().unwrap(), act).unwrap();
                let diff = max_abs_diff(&generic, &fused);
                assert!(diff < 1e-5, "{act:?}: {diff}");
            }
        }
    }

    #[test]
    fn batch_norm_is_the_inference_formula() {
        let dev = Device::Cpu;
        let affine =
            ChannelAffine::batch_norm(&[2.0, 0.5], &[0.1, -1.0], &[3.0, -2.0], &[4.0, 0.25], &dev).unwrap();
        let x = Tensor::from_vec(vec![1.0f32, 5.0], (1, 2, 1, 1), &dev).unwrap();
        let y = affine
            .apply(x, Activation::Linear)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let expect0 = (1.0 - 3.0) / (4.0f32 + BATCH_NORM_EPS).sqrt() * 2.0 + 0.1;
        let expect1 = (5.0 + 2.0) / (0.25f32 + BATCH_NORM_EPS).sqrt() * 0.5 - 1.0;
        assert!(
            (y[0] - expect0).abs() < 1e-6 && (y[1] - expect1).abs() < 1e-6,
            "{y:?}"
        );
    }
}

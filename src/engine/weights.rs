//! The weights the engine is built from, one [`LayerWeights`] per layer, typed by their form:
//! a weight tensor with its bias (every convolution and the FC layer), the two 1x1 convs of a
//! squeeze-and-excite layer, or nothing (the pool). BatchNorm is already folded in (its
//! inference form, Ioffe and Szegedy 2015 Algorithm 2 step 11: each output channel's filter
//! times gamma / sqrt(var + eps), the bias beta - mean times that scale), so every form is
//! plain f32 in PyTorch/candle (OIHW) order.

/// One weight tensor and its bias: conv `[out, in, k, k]`, depthwise `[c * dm, 1, k, k]`,
/// pointwise `[out, in, 1, 1]`, FC `[classes, in]`, bias `[out]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dense {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// One layer's weights, BatchNorm folded in.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum LayerWeights {
    /// A full, depthwise or pointwise convolution, or the FC layer.
    Dense(Dense),
    /// A squeeze-and-excite layer's two 1x1 convs: `reduce` `[se, C, 1, 1]` with bias `[se]`,
    /// `expand` `[C, se, 1, 1]` with bias `[C]`.
    SqueezeExcite { reduce: Dense, expand: Dense },
    /// The average pool.
    #[default]
    None,
}

impl LayerWeights {
    /// The weight and bias of a convolution or FC layer.
    pub(crate) fn dense(&self) -> Result<&Dense, String> {
        match self {
            LayerWeights::Dense(dense) => Ok(dense),
            other => Err(format!("takes a weight and a bias, not {}", other.form())),
        }
    }

    /// A squeeze-and-excite layer's (reduce, expand) convs.
    pub(crate) fn squeeze_excite(&self) -> Result<(&Dense, &Dense), String> {
        match self {
            LayerWeights::SqueezeExcite { reduce, expand } => Ok((reduce, expand)),
            other => Err(format!(
                "takes squeeze-and-excite weights (reduce and expand), not {}",
                other.form()
            )),
        }
    }

    /// Checks that a weightless layer was given no weights.
    pub(crate) fn none(&self) -> Result<(), String> {
        match self {
            LayerWeights::None => Ok(()),
            other => Err(format!("takes no weights, not {}", other.form())),
        }
    }

    fn form(&self) -> &'static str {
        match self {
            LayerWeights::Dense(_) => "a weight and a bias",
            LayerWeights::SqueezeExcite { .. } => "squeeze-and-excite weights",
            LayerWeights::None => "no weights",
        }
    }
}

impl Dense {
    /// Checks that `weight` has `weight_len` values and `bias` `bias_len`; `what` names the
    /// conv in the message ("" for a layer's only one, "reduce " or "expand ").
    pub(crate) fn expect(&self, what: &str, weight_len: usize, bias_len: usize) -> Result<(), String> {
        for (name, values, expected) in [
            ("weight", &self.weight, weight_len),
            ("bias", &self.bias, bias_len),
        ] {
            if values.len() != expected {
                return Err(format!(
                    "{what}{name} has {} values, expected {expected}",
                    values.len()
                ));
            }
        }
        Ok(())
    }
}

//! The activations every kernel fuses into its epilogue, applied while the values are still
//! in registers: ReLU6 (MobileNet v1 and v2), ReLU and hard-swish (MobileNetV3, Howard et al.
//! 2019 Section 5.2, eq. 2), the squeeze-and-excite gate hard-sigmoid (Section 5.3), or none
//! (v2's linear bottlenecks, the FC layer).

use super::simd::F32Vec;
use crate::arch::Activation;

/// The activation applied in a kernel's epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Relu6,
    Relu,
    /// x * relu6(x + 3) / 6: MobileNetV3's cheap swish (Howard et al. 2019 eq. 2).
    HardSwish,
    /// relu6(x + 3) / 6: the squeeze-and-excite gate (Section 5.3), never a layer's own
    /// activation.
    HardSigmoid,
    Linear,
}

impl From<Activation> for Act {
    fn from(activation: Activation) -> Act {
        match activation {
            Activation::Relu6 => Act::Relu6,
            Activation::Relu => Act::Relu,
            Activation::HardSwish => Act::HardSwish,
            Activation::Linear => Act::Linear,
        }
    }
}

impl Act {
    /// # Safety
    /// `V`'s ISA must be enabled.
    #[inline(always)]
    pub(crate) unsafe fn apply<V: F32Vec>(self, x: V) -> V {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                Act::Relu6 => x.relu6(),
                Act::Relu => x.max(V::splat(0.0)),
                Act::HardSwish => x.hard_swish(),
                Act::HardSigmoid => x.hard_sigmoid(),
                Act::Linear => x,
            }
        }
    }

    /// The same function on one value, for the scalar fallbacks.
    pub(crate) fn scalar(self, x: f32) -> f32 {
        let gate = |x: f32| (x * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0);
        match self {
            Act::Relu6 => x.clamp(0.0, 6.0),
            Act::Relu => x.max(0.0),
            Act::HardSwish => x * gate(x),
            Act::HardSigmoid => gate(x),
            Act::Linear => x,
        }
    }
}

/// Evaluates `$body` with `$act` bound to `$value` as a constant in each arm, so that a kernel
/// inlined into the body specialises its epilogue instead of branching on the activation for
/// every vector it stores. A macro, not a closure taking the activation, because closures do
/// not inherit the `#[target_feature]`s of the function they are written in.
macro_rules! with_act {
    ($value:expr, $act:ident => $body:expr) => {
        match $value {
            $crate::engine::act::Act::Relu6 => {
                let $act = $crate::engine::act::Act::Relu6;
                $body
            }
            $crate::engine::act::Act::Relu => {
                let $act = $crate::engine::act::Act::Relu;
                $body
            }
            $crate::engine::act::Act::HardSwish => {
                let $act = $crate::engine::act::Act::HardSwish;
                $body
            }
            $crate::engine::act::Act::HardSigmoid => {
                let $act = $crate::engine::act::Act::HardSigmoid;
                $body
            }
            $crate::engine::act::Act::Linear => {
                let $act = $crate::engine::act::Act::Linear;
                $body
            }
        }
    };
}
pub(crate) use with_act;

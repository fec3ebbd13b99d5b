//! Weight packing, done once in `Engine::new`.
//!
//! PyTorch/candle store weights OIHW: the output channel is the slowest index. The kernels
//! want the output channel fastest, because NHWC activations keep channels contiguous and
//! every kernel vectorises over them:
//! - GEMM operands (pointwise, full convolution, FC) become column panels of [`PANEL`] output
//!   channels: panel `p` is a `[k][32]` row-major block, so the microkernel streams one panel
//!   linearly with two 16-lane loads per reduction step;
//! - depthwise taps become `[k*k][C]`, one vector of channels per tap.
//!
//! Channel counts are padded to multiples of [`CHANNEL_ALIGN`] with zero weights and zero
//! biases. Padded channels therefore compute exactly act(0) = 0 (ReLU6, ReLU, hard-swish and
//! linear all map 0 to 0), the kernels never need a channel tail, and the next layer can read
//! the padded lanes as ordinary zeros. Only the squeeze-and-excite gate is 1/2 there, and it
//! scales those zeros.

use super::buffer::AlignedBuf;

/// Output columns per packed GEMM panel: two AVX-512 vectors.
pub(crate) const PANEL: usize = 32;

/// Activation channels are padded to a multiple of this: one AVX-512 vector.
pub(crate) const CHANNEL_ALIGN: usize = 16;

/// `c` rounded up to a whole number of vectors.
pub(crate) fn padded(c: usize) -> usize {
    c.next_multiple_of(CHANNEL_ALIGN)
}

/// The right-hand GEMM operand `[k, n]` in [`PANEL`]-column panels, with its bias.
#[derive(Debug)]
pub(crate) struct PackedB {
    /// `panels * k * PANEL` floats; columns past `n` are zero.
    data: AlignedBuf,
    /// `panels * PANEL` floats; entries past `n` are zero.
    bias: AlignedBuf,
    /// Reduction length (rows).
    pub(crate) k: usize,
    /// Logical columns.
    pub(crate) n: usize,
}

impl PackedB {
    /// Packs `b(row, col)` for `row < k`, `col < n`.
    pub(crate) fn new(k: usize, n: usize, bias: &[f32], b: impl Fn(usize, usize) -> f32) -> Self {
        debug_assert!(bias.len() <= n);
        let panels = n.div_ceil(PANEL);
        let mut data = AlignedBuf::zeroed(panels * k * PANEL);
        let out = data.as_mut_slice();
        for col in 0..n {
            let (panel, lane) = (col / PANEL, col % PANEL);
            for row in 0..k {
                out[(panel * k + row) * PANEL + lane] = b(row, col);
            }
        }
        PackedB {
            data,
            bias: AlignedBuf::from_slice_padded(bias, panels * PANEL),
            k,
            n,
        }
    }

    /// Packs a 1x1 convolution's or the FC layer's `[out, in]` weight as `B = W^T`, `[k, n]`,
    /// with `cin <= k` input and `cout <= n` output channels: zero in the padded rows and
    /// columns.
    pub(crate) fn transposed(
        weight: &[f32],
        bias: &[f32],
        (cin, k): (usize, usize),
        (cout, n): (usize, usize),
    ) -> Self {
        PackedB::new(k, n, bias, |c, o| {
            if c < cin && o < cout {
                weight[o * cin + c]
            } else {
                0.0
            }
        })
    }

    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(PANEL)
    }

    /// The first float of panel `p`; `k * PANEL` floats follow.
    pub(crate) fn panel(&self, p: usize) -> *const f32 {
        debug_assert!(p < self.panels());
        self.data.as_slice()[p * self.k * PANEL..].as_ptr()
    }

    /// The bias of panel `p`; `PANEL` floats follow.
    pub(crate) fn bias(&self, p: usize) -> *const f32 {
        self.bias.as_slice()[p * PANEL..].as_ptr()
    }

    pub(crate) fn bytes(&self) -> usize {
        4 * (self.data.len() + self.bias.len())
    }
}

/// Depthwise taps `[k*k][c_pad]` and bias `[c_pad]`.
#[derive(Debug)]
pub(crate) struct DepthwiseTaps {
    pub(crate) taps: AlignedBuf,
    pub(crate) bias: AlignedBuf,
}

impl DepthwiseTaps {
    /// From PyTorch's `[c_out, 1, k, k]` weight.
    pub(crate) fn new(weight: &[f32], bias: &[f32], kernel: usize, c_out: usize) -> Self {
        let c_pad = padded(c_out);
        let taps_per_channel = kernel * kernel;
        let mut taps = AlignedBuf::zeroed(taps_per_channel * c_pad);
        let out = taps.as_mut_slice();
        for channel in 0..c_out {
            for tap in 0..taps_per_channel {
                out[tap * c_pad + channel] = weight[channel * taps_per_channel + tap];
            }
        }
        DepthwiseTaps {
            taps,
            bias: AlignedBuf::from_slice_padded(bias, c_pad),
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        4 * (self.taps.len() + self.bias.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_are_column_blocks_with_zero_padding() {
        let (k, n) = (3, 40);
        let bias: Vec<f32> = (0..n).map(|j| j as f32).collect();
        let packed = PackedB::new(k, n, &bias, |row, col| (row * 100 + col) as f32);
        assert_eq!(packed.panels(), 2);
        let data = packed.data.as_slice();
        assert_eq!(data[2 * PANEL + 5], 205.0);
        assert_eq!(data[(k + 1) * PANEL + 7], 139.0);
        assert_eq!(data[(k + 1) * PANEL + 8], 0.0);
        assert_eq!(packed.bias.as_slice()[39], 39.0);
        assert_eq!(packed.bias.as_slice()[40], 0.0);
    }

    #[test]
    fn depthwise_taps_are_channel_fastest() {
        let weight: Vec<f32> = (0..2 * 9).map(|v| v as f32).collect();
        let dw = DepthwiseTaps::new(&weight, &[1.0, 2.0], 3, 2);
        let taps = dw.taps.as_slice();
        assert_eq!(taps.len(), 9 * 16);
        assert_eq!((taps[0], taps[1], taps[16], taps[16 + 1]), (0.0, 9.0, 1.0, 10.0));
        assert_eq!(taps[2], 0.0);
    }
}

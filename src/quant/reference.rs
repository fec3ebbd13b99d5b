//! The straightforward convolution: `sum over in-image taps of (x - zx)(w - zw) + bias`, read
//! from the uint8 weights in the files' OIHW order, one output at a time, exactly as TFLite's
//! reference/conv.h and reference/depthwiseconv_uint8.h write it. Slow; the yardstick the
//! u8 x s8 formulation of [`super::kernels`] (and later the SIMD kernels) is tested against.

use super::ConvParams;
use super::kernels::{Geometry, Requantize};

/// One image's convolution. `depthwise`: output channel `o` reads input channel `o` only (a
/// `[C, 1, k, k]` weight); otherwise every input channel (`[O, I, k, k]`).
pub(crate) fn conv(
    image: &[u8],
    g: &Geometry,
    depthwise: bool,
    params: &ConvParams,
    requantize: &Requantize,
    out: &mut [u8],
) {
    assert_eq!(image.len(), g.input_len());
    assert_eq!(out.len(), g.output_len());
    let (zx, zw) = (params.input.zero_point, params.weight_quant.zero_point);
    let taps = g.kernel * g.kernel;
    let inputs_per_output = if depthwise { 1 } else { g.in_c };
    for oy in 0..g.out_h {
        for ox in 0..g.out_w {
            for o in 0..g.out_c {
                let mut acc = params.bias[o];
                for ky in 0..g.kernel {
                    for kx in 0..g.kernel {
                        let iy = (oy * g.stride + ky).checked_sub(g.pad_top);
                        let ix = (ox * g.stride + kx).checked_sub(g.pad_left);
                        let (Some(iy), Some(ix)) = (iy, ix) else {
                            continue;
                        };
                        if iy >= g.in_h || ix >= g.in_w {
                            continue;
                        }
                        for i in 0..inputs_per_output {
                            let c = if depthwise { o } else { i };
                            let x = i32::from(image[(iy * g.in_w + ix) * g.in_c + c]);
                            let w = i32::from(
                                params.weight[(o * inputs_per_output + i) * taps + ky * g.kernel + kx],
                            );
                            acc += (x - zx) * (w - zw);
                        }
                    }
                }
                out[(oy * g.out_w + ox) * g.out_c + o] = requantize.apply(acc);
            }
        }
    }
}

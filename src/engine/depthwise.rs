//! Depthwise convolution (paper eq. 3): one `k x k` filter per channel, TF SAME padding, bias
//! and ReLU6 fused.
//!
//! In NHWC a pixel's channels are contiguous, so the kernel vectorises over channels: for one
//! output row and one vector of channels the 9 tap vectors and the bias stay in registers
//! while the row is swept, each output vector costing 9 loads and 9 FMAs. Out-of-image input
//! rows point at a shared zero row, so the only branches are per output row (choose three row
//! pointers) and per border column (the first and last output columns, which check each tap's
//! column); the interior columns run an unconditional 3x3 body.
//!
//! The fast path covers the network's case, 3x3 with depth multiplier 1; any other kernel
//! size or a depth multiplier > 1 takes a correct scalar path.

use super::gemm::Act;
use super::pack::DepthwiseTaps;
use super::parallel::Work;
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{F32Vec, Isa, Portable};

/// A planned depthwise layer. Channel counts are padded ([`super::pack::padded`]).
#[derive(Debug)]
pub(crate) struct DepthwiseOp {
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
    pub(crate) multiplier: usize,
    pub(crate) in_hw: (usize, usize),
    pub(crate) out_hw: (usize, usize),
    /// Logical and padded input channels.
    pub(crate) in_c: (usize, usize),
    /// Logical and padded output channels.
    pub(crate) out_c: (usize, usize),
    /// TF SAME (top, left) padding; bottom/right follow from the shapes.
    pub(crate) pad: (usize, usize),
    pub(crate) taps: DepthwiseTaps,
    pub(crate) act: Act,
}

/// One output row of the 3x3, multiplier-1 fast path.
struct Row3 {
    /// Input rows for the three kernel rows (the zero row where outside the image).
    rows: [*const f32; 3],
    out: *mut f32,
    taps: *const f32,
    bias: *const f32,
    channels: usize,
    in_w: usize,
    out_w: usize,
    stride: usize,
    pad_left: usize,
    /// Clamp bounds: (0, 6) for ReLU6, infinite for linear, so the epilogue has no branch.
    lo: f32,
    hi: f32,
}

impl DepthwiseOp {
    /// Floats of zeros the op needs for rows outside the image.
    pub(crate) fn zero_row_len(&self) -> usize {
        self.in_hw.1 * self.in_c.1
    }

    /// Runs the output rows this thread claims.
    ///
    /// # Safety
    /// `isa` must be available; `src` must hold `batch` NHWC images of the input shape and
    /// `dst` room for `batch` output images; `zero_row` must hold [`Self::zero_row_len`] zeros.
    /// All threads must call this together (each claimed row is written by one thread).
    pub(crate) unsafe fn run(
        &self,
        work: &Work<'_>,
        isa: Isa,
        src: *const f32,
        dst: *mut f32,
        zero_row: *const f32,
        batch: usize,
    ) {
        let ((in_h, in_w), (out_h, out_w)) = (self.in_hw, self.out_hw);
        let (cin, cout) = (self.in_c.1, self.out_c.1);
        let fast = self.kernel == 3 && self.multiplier == 1;
        let (lo, hi) = match self.act {
            Act::Relu6 => (0.0, 6.0),
            Act::Linear => (f32::NEG_INFINITY, f32::INFINITY),
        };
        work.for_each(batch * out_h, 1, |rows| {
            for row in rows {
                let (n, oy) = (row / out_h, row % out_h);
                // SAFETY: `n < batch` and `oy < out_h`, so the image and output row are in the
                // buffers the caller vouched for; this row belongs to this thread only.
                let (image, out) = unsafe { (src.add(n * in_h * in_w * cin), dst.add(row * out_w * cout)) };
                let input_row = |ky: usize| {
                    let iy = (oy * self.stride + ky)
                        .checked_sub(self.pad.0)
                        .filter(|&iy| iy < in_h);
                    // SAFETY: `iy < in_h` keeps the row inside the image.
                    iy.map_or(zero_row, |iy| unsafe { image.add(iy * in_w * cin) })
                };
                if !fast {
                    // SAFETY: the row pointers cover `in_w * cin` floats each, `out` covers the row.
                    unsafe { self.generic_row(&input_row, out, lo, hi) };
                    continue;
                }
                let r = Row3 {
                    rows: [input_row(0), input_row(1), input_row(2)],
                    out,
                    taps: self.taps.taps.as_ptr(),
                    bias: self.taps.bias.as_ptr(),
                    channels: cout,
                    in_w,
                    out_w,
                    stride: self.stride,
                    pad_left: self.pad.1,
                    lo,
                    hi,
                };
                // SAFETY: `isa` is available (caller); the row's pointers are valid as set up above.
                unsafe {
                    match isa {
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx512 => row3_avx512(&r),
                        #[cfg(target_arch = "x86_64")]
                        Isa::Avx2 => row3_avx2(&r),
                        #[cfg(not(target_arch = "x86_64"))]
                        Isa::Avx512 | Isa::Avx2 => unreachable!("x86 ISA on another architecture"),
                        Isa::Portable => row3::<Portable>(&r),
                    }
                }
            }
        });
    }

    /// Any kernel size and depth multiplier, one output value at a time.
    ///
    /// # Safety
    /// `input_row(ky)` must return `in_w * in_c.1` readable floats; `out` must be writable for
    /// `out_w * out_c.1` floats.
    unsafe fn generic_row(&self, input_row: &dyn Fn(usize) -> *const f32, out: *mut f32, lo: f32, hi: f32) {
        let (in_w, out_w) = (self.in_hw.1, self.out_hw.1);
        let (cin, (cout, cout_pad)) = (self.in_c.1, self.out_c);
        let (k, taps, bias) = (self.kernel, self.taps.taps.as_slice(), self.taps.bias.as_slice());
        for ox in 0..out_w {
            for o in 0..cout_pad {
                let mut acc = bias[o];
                if o < cout {
                    let c = o / self.multiplier;
                    for ky in 0..k {
                        let row = input_row(ky);
                        for kx in 0..k {
                            let Some(ix) = (ox * self.stride + kx).checked_sub(self.pad.1) else {
                                continue;
                            };
                            if ix < in_w {
                                // SAFETY: `ix < in_w` and `c < cin`: inside the row.
                                let x = unsafe { *row.add(ix * cin + c) };
                                acc += taps[(ky * k + kx) * cout_pad + o] * x;
                            }
                        }
                    }
                }
                // SAFETY: `ox < out_w`, `o < cout_pad`: inside the output row.
                unsafe { *out.add(ox * cout_pad + o) = acc.max(lo).min(hi) };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row3_avx512(r: &Row3) {
    // SAFETY: forwarded; avx512f is enabled here.
    unsafe { row3::<Avx512>(r) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row3_avx2(r: &Row3) {
    // SAFETY: forwarded; avx2 and fma are enabled here.
    unsafe { row3::<Avx2>(r) }
}

/// # Safety
/// `V`'s ISA must be enabled; `r.rows` must each hold `in_w * channels` floats, `r.out`
/// `out_w * channels`, `r.taps` `9 * channels`, `r.bias` `channels`; `channels` must be a
/// multiple of `V::LANES`.
#[inline(always)]
unsafe fn row3<V: F32Vec>(r: &Row3) {
    let (c, s) = (r.channels, r.stride);
    // Output columns whose three taps all fall inside the image.
    let first = r.pad_left.div_ceil(s).min(r.out_w);
    let end = if r.in_w + r.pad_left >= 3 {
        (r.in_w + r.pad_left - 3) / s + 1
    } else {
        0
    };
    let end = end.clamp(first, r.out_w);
    // SAFETY: all offsets stay inside the extents listed in the contract: interior columns
    // read input columns `ox * s - pad_left + {0,1,2}` in `0..in_w` by the choice of
    // `first..end`; border columns check each tap.
    unsafe {
        let clamp = (V::splat(r.lo), V::splat(r.hi));
        for c0 in (0..c).step_by(V::LANES) {
            let w: [V; 9] = std::array::from_fn(|t| V::load(r.taps.add(t * c + c0)));
            let bias = V::load(r.bias.add(c0));
            let rows = r.rows.map(|row| row.add(c0));
            let out = r.out.add(c0);
            for ox in (0..first).chain(end..r.out_w) {
                border_pixel(r, &rows, &w, bias, clamp, ox, out.add(ox * c));
            }
            for ox in first..end {
                let ix = (ox * s - r.pad_left) * c;
                // One partial sum per kernel row: three 3-FMA chains instead of one 9-FMA
                // chain, so a pixel's latency does not bound the loop.
                let mut acc = [bias, V::splat(0.0), V::splat(0.0)];
                for (ky, row) in rows.iter().enumerate() {
                    let p = row.add(ix);
                    acc[ky] = V::load(p).mul_add(w[ky * 3], acc[ky]);
                    acc[ky] = V::load(p.add(c)).mul_add(w[ky * 3 + 1], acc[ky]);
                    acc[ky] = V::load(p.add(2 * c)).mul_add(w[ky * 3 + 2], acc[ky]);
                }
                let sum = acc[0].add(acc[1]).add(acc[2]);
                sum.max(clamp.0).min(clamp.1).store(out.add(ox * c));
            }
        }
    }
}

/// An output column next to the left or right edge: taps outside the image are skipped. Not a
/// closure: closures do not inherit `#[target_feature]`, so it would compile for the baseline.
///
/// # Safety
/// As for [`row3`]; `rows` already offset to the channel vector, `out` to the output pixel.
#[inline(always)]
unsafe fn border_pixel<V: F32Vec>(
    r: &Row3,
    rows: &[*const f32; 3],
    w: &[V; 9],
    bias: V,
    clamp: (V, V),
    ox: usize,
    out: *mut f32,
) {
    let mut acc = bias;
    for kx in 0..3 {
        let Some(ix) = (ox * r.stride + kx)
            .checked_sub(r.pad_left)
            .filter(|&ix| ix < r.in_w)
        else {
            continue;
        };
        for (ky, row) in rows.iter().enumerate() {
            // SAFETY: `ix < in_w`, inside the row (caller's contract).
            acc = unsafe { V::load(row.add(ix * r.channels)).mul_add(w[ky * 3 + kx], acc) };
        }
    }
    // SAFETY: `out` is the pixel's channel vector (caller's contract).
    unsafe { acc.max(clamp.0).min(clamp.1).store(out) };
}

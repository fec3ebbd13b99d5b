//! The AVX-512 kernels: the u8 x s8 GEMM of [`super::kernels::gemm`] on VNNI and the depthwise
//! convolution of [`super::kernels::depthwise`], the same bytes, with `vpdpbusd`
//! (`_mm512_dpbusd_epi32`: four u8 x s8 products summed into each int32 lane) for the GEMM's dot
//! products and TFLite's requantization in 512-bit integer vectors for both.
//!
//! The packed weights (`[ceil(k/4)][o_pad][4]` int8) are exactly one `vpdpbusd` operand per 16
//! output channels and group of four inputs; the four input bytes of a row are broadcast to
//! every lane. A tile is up to 4 rows x 64 output channels (16 accumulators, 4 weight vectors, 1
//! broadcast: 21 of the 32 registers). The epilogue adds the column constants, subtracts
//! `(zw - 128) * row sum`, and requantizes: `SaturatingRoundingDoublingHighMul` as
//! `(v * q + 2^30) >> 31` on the even and odd lanes in 64 bits (`vpmuldq`; equal to gemmlowp's
//! nudge-and-truncate for every product but `i32::MIN * i32::MIN`, and multipliers are
//! non-negative), then `RoundingDivideByPOT` by mask and compare, the zero point and the clamp.
//!
//! The depthwise kernel computes 16 channels of one output pixel at a time: `(x - zx)` widened to
//! int32 times the int32 `w - zw` of each in-image tap (`vpmulld`), then the same epilogue.

use std::arch::x86_64::*;

use super::kernels::{DepthwiseWeights, GROUP, GemmWeights, Geometry, LANES, Requantize, row_sums};

/// Output channels per tile: four vectors of 16 int32.
const VECTORS: usize = 4;
/// Rows per tile.
const ROWS: usize = 4;

/// Whether this CPU runs [`gemm`] and [`depthwise`].
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// [`super::kernels::gemm`]'s contract and bytes. Panics on a CPU without AVX-512 VNNI.
pub(crate) fn gemm(a: &[u8], rows: usize, w: &GemmWeights, requantize: &Requantize, out: &mut [u8]) {
    assert!(available(), "this CPU lacks AVX-512 VNNI");
    assert_eq!(a.len(), rows * w.k);
    assert_eq!(out.len(), rows * w.o);
    assert_eq!(w.packed.len(), w.k.div_ceil(GROUP) * w.o_pad * GROUP);
    assert!(w.o <= w.o_pad && w.o_pad.is_multiple_of(LANES) && w.column_bias.len() == w.o);
    // SAFETY: the CPU has AVX-512F, AVX-512BW and AVX-512 VNNI (asserted above), the features
    // `gemm_avx512` is compiled for.
    unsafe { gemm_avx512(a, rows, w, requantize, out) }
}

/// The GEMM; every memory access stays within the slices (shapes asserted by [`gemm`]).
#[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
fn gemm_avx512(a: &[u8], rows: usize, w: &GemmWeights, requantize: &Requantize, out: &mut [u8]) {
    let sums = row_sums(a, w.k);
    let epilogue = Epilogue::new(requantize);
    for start in (0..w.o).step_by(VECTORS * LANES) {
        let width = (VECTORS * LANES).min(w.o - start);
        let tile = Tile {
            a,
            w,
            sums: &sums,
            start,
            width,
            epilogue: &epilogue,
        };
        let mut row = 0;
        while row + ROWS <= rows {
            tile.run::<ROWS>(row, out);
            row += ROWS;
        }
        while row < rows {
            tile.run::<1>(row, out);
            row += 1;
        }
    }
}

/// [`super::kernels::depthwise`]'s contract and bytes. Panics on a CPU without AVX-512 VNNI.
pub(crate) fn depthwise(
    image: &[u8],
    g: &Geometry,
    w: &DepthwiseWeights,
    input_zero_point: i32,
    requantize: &Requantize,
    out: &mut [u8],
) {
    assert!(available(), "this CPU lacks AVX-512 VNNI");
    assert_eq!(image.len(), g.input_len());
    assert_eq!(out.len(), g.output_len());
    assert!(g.in_c == g.out_c && w.bias.len() == g.in_c && w.taps.len() == g.kernel * g.kernel * g.in_c);
    // SAFETY: the CPU has AVX-512F, BW, VL and VNNI (asserted above), the features
    // `depthwise_avx512` is compiled for.
    unsafe { depthwise_avx512(image, g, w, input_zero_point, requantize, out) }
}

/// The depthwise convolution; every memory access stays within the slices (shapes asserted by
/// [`depthwise`]).
#[target_feature(enable = "avx512vnni,avx512bw,avx512vl,avx512f")]
fn depthwise_avx512(
    image: &[u8],
    g: &Geometry,
    w: &DepthwiseWeights,
    input_zero_point: i32,
    requantize: &Requantize,
    out: &mut [u8],
) {
    let c = g.in_c;
    let epilogue = Epilogue::new(requantize);
    let zero_point = _mm512_set1_epi32(input_zero_point);
    for oy in 0..g.out_h {
        for ox in 0..g.out_w {
            let dst = &mut out[(oy * g.out_w + ox) * c..][..c];
            for start in (0..c).step_by(LANES) {
                let lanes = LANES.min(c - start);
                let mask: __mmask16 = ((1u32 << lanes) - 1) as u16;
                let bias = &w.bias[start..][..lanes];
                // SAFETY: the masked load touches only the `lanes` elements of `bias`.
                let mut acc = unsafe { _mm512_maskz_loadu_epi32(mask, bias.as_ptr()) };
                for ky in 0..g.kernel {
                    for kx in 0..g.kernel {
                        let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else {
                            continue;
                        };
                        let x = &image[(iy * g.in_w + ix) * c + start..][..lanes];
                        let taps = &w.taps[(ky * g.kernel + kx) * c + start..][..lanes];
                        // SAFETY: the masked loads touch only the `lanes` elements of `x` and
                        // `taps`.
                        let (x, taps) = unsafe {
                            (
                                _mm_maskz_loadu_epi8(mask, x.as_ptr().cast()),
                                _mm512_maskz_loadu_epi32(mask, taps.as_ptr()),
                            )
                        };
                        let centred = _mm512_sub_epi32(_mm512_cvtepu8_epi32(x), zero_point);
                        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(centred, taps));
                    }
                }
                let q = epilogue.apply(acc);
                let dst = &mut dst[start..][..lanes];
                // SAFETY: the masked store writes only the `lanes` bytes of `dst`.
                unsafe { _mm512_mask_cvtepi32_storeu_epi8(dst.as_mut_ptr().cast(), mask, q) };
            }
        }
    }
}

/// One block of output channels `[start, start + width)` over any rows.
struct Tile<'a> {
    a: &'a [u8],
    w: &'a GemmWeights,
    sums: &'a [i32],
    start: usize,
    width: usize,
    epilogue: &'a Epilogue,
}

impl Tile<'_> {
    /// Rows `[row, row + R)` of this block, with as many vectors as the width needs.
    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    fn run<const R: usize>(&self, row: usize, out: &mut [u8]) {
        match self.width.div_ceil(LANES) {
            1 => self.run_vectors::<R, 1>(row, out),
            2 => self.run_vectors::<R, 2>(row, out),
            3 => self.run_vectors::<R, 3>(row, out),
            _ => self.run_vectors::<R, 4>(row, out),
        }
    }

    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    fn run_vectors<const R: usize, const V: usize>(&self, row: usize, out: &mut [u8]) {
        let (k, o) = (self.w.k, self.w.o);
        let rows: [&[u8]; R] = std::array::from_fn(|i| &self.a[(row + i) * k..(row + i + 1) * k]);
        let mut acc = [[_mm512_setzero_si512(); V]; R];
        let full = k / GROUP;
        for group in 0..full {
            let x: [i32; R] = std::array::from_fn(|i| {
                // SAFETY: group < k / 4, so bytes [4 group, 4 group + 4) lie inside the row.
                unsafe { rows[i].as_ptr().add(group * GROUP).cast::<i32>().read_unaligned() }
            });
            self.step(group, x, &mut acc);
        }
        if full * GROUP < k {
            // The last inputs, zero past k (the packed weights are zero there too).
            let x: [i32; R] = rows.map(|r| {
                let mut bytes = [0u8; GROUP];
                bytes[..k - full * GROUP].copy_from_slice(&r[full * GROUP..]);
                i32::from_le_bytes(bytes)
            });
            self.step(full, x, &mut acc);
        }
        for (i, acc) in acc.iter().enumerate() {
            let correction = _mm512_set1_epi32(self.w.row_factor * self.sums[row + i]);
            let dst = &mut out[(row + i) * o + self.start..][..self.width];
            for (j, &a) in acc.iter().enumerate() {
                let lanes = (self.width - j * LANES).min(LANES);
                let mask: __mmask16 = ((1u32 << lanes) - 1) as u16;
                let bias = &self.w.column_bias[self.start + j * LANES..][..lanes];
                // SAFETY: the masked load touches only the `lanes` elements of `bias`.
                let bias = unsafe { _mm512_maskz_loadu_epi32(mask, bias.as_ptr()) };
                let v = _mm512_sub_epi32(_mm512_add_epi32(a, bias), correction);
                let q = self.epilogue.apply(v);
                let dst = &mut dst[j * LANES..][..lanes];
                // SAFETY: the masked store writes only the `lanes` bytes of `dst`.
                unsafe { _mm512_mask_cvtepi32_storeu_epi8(dst.as_mut_ptr().cast(), mask, q) };
            }
        }
    }
}

impl Tile<'_> {
    /// One group of four inputs: `acc[i][j] += x[i] (4 x u8) . w[group][start + 16 j ..] (4 x s8)`.
    /// (A method, not a closure: a closure does not run with the target features.)
    #[inline]
    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    fn step<const R: usize, const V: usize>(&self, group: usize, x: [i32; R], acc: &mut [[__m512i; V]; R]) {
        let base = (group * self.w.o_pad + self.start) * GROUP;
        // start + 16 V <= o_pad: the V vectors lie inside this group's o_pad x 4 bytes.
        let weights = &self.w.packed[base..base + V * LANES * GROUP];
        let mut wv = [_mm512_setzero_si512(); V];
        for (j, v) in wv.iter_mut().enumerate() {
            // SAFETY: `weights` holds V * 64 bytes; vector j reads bytes [64 j, 64 j + 64).
            *v = unsafe { _mm512_loadu_si512(weights.as_ptr().add(j * LANES * GROUP).cast()) };
        }
        for (acc, &x) in acc.iter_mut().zip(&x) {
            let xb = _mm512_set1_epi32(x);
            for (a, &w) in acc.iter_mut().zip(&wv) {
                *a = _mm512_dpbusd_epi32(*a, xb, w);
            }
        }
    }
}

/// [`Requantize`] in vectors.
struct Epilogue {
    left: __m128i,
    right: __m128i,
    multiplier: __m512i,
    nudge: __m512i,
    remainder_mask: __m512i,
    half_mask: __m512i,
    one: __m512i,
    zero_point: __m512i,
    min: __m512i,
    max: __m512i,
}

impl Epilogue {
    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    fn new(r: &Requantize) -> Self {
        let left = r.multiplier.shift.max(0);
        let right = (-r.multiplier.shift).max(0);
        let mask = ((1i64 << right) - 1) as i32;
        Epilogue {
            left: _mm_cvtsi32_si128(left),
            right: _mm_cvtsi32_si128(right),
            multiplier: _mm512_set1_epi32(r.multiplier.multiplier),
            nudge: _mm512_set1_epi64(1 << 30),
            remainder_mask: _mm512_set1_epi32(mask),
            half_mask: _mm512_set1_epi32(mask >> 1),
            one: _mm512_set1_epi32(1),
            zero_point: _mm512_set1_epi32(r.zero_point),
            min: _mm512_set1_epi32(i32::from(r.min)),
            max: _mm512_set1_epi32(i32::from(r.max)),
        }
    }

    /// `clamp(RDBPOT(SRDHM(v << left, q), right) + zero_point, min, max)` per lane.
    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    fn apply(&self, v: __m512i) -> __m512i {
        let v = _mm512_sll_epi32(v, self.left);
        // SRDHM: the even lanes' and the odd lanes' 64-bit products, rounded high halves.
        let even = _mm512_mul_epi32(v, self.multiplier);
        let odd = _mm512_mul_epi32(_mm512_srli_epi64(v, 32), self.multiplier);
        let even = _mm512_srai_epi64(_mm512_add_epi64(even, self.nudge), 31);
        let odd = _mm512_srai_epi64(_mm512_add_epi64(odd, self.nudge), 31);
        let high = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
        // RDBPOT: shift, plus one where the remainder exceeds half (+1 for negative values).
        let remainder = _mm512_and_si512(high, self.remainder_mask);
        let threshold = _mm512_sub_epi32(self.half_mask, _mm512_srai_epi32(high, 31));
        let shifted = _mm512_sra_epi32(high, self.right);
        let round_up = _mm512_cmpgt_epi32_mask(remainder, threshold);
        let rounded = _mm512_mask_add_epi32(shifted, round_up, shifted, self.one);
        let biased = _mm512_add_epi32(rounded, self.zero_point);
        _mm512_min_epi32(_mm512_max_epi32(biased, self.min), self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::SplitMix64;
    use crate::quant::fixed_point::QuantizedMultiplier;
    use crate::quant::kernels;

    /// A seeded generator of values below `n`; `None`, with a note, on a CPU without the kernels.
    fn values(seed: u64) -> Option<impl FnMut(u64) -> u64> {
        if !available() {
            println!("skipped: this CPU lacks AVX-512 VNNI");
            return None;
        }
        let mut rng = SplitMix64(seed);
        Some(move |n| rng.next_u64() % n)
    }

    #[test]
    fn gemm_gives_the_portable_bytes() {
        let Some(mut next) = values(11) else {
            return;
        };
        // Partial groups of four (k = 3, 27, 37), partial vectors and blocks (o = 1, 8, 17, 70,
        // 1001), row counts around the tile of 4, and multipliers above one (left shifts).
        for (k, o, rows) in [
            (3, 8, 5),
            (27, 32, 9),
            (37, 17, 4),
            (64, 70, 7),
            (256, 1001, 3),
            (1024, 64, 2),
            (8, 1, 1),
        ] {
            for case in 0..4 {
                let a: Vec<u8> = (0..rows * k).map(|_| next(256) as u8).collect();
                let w: Vec<u8> = (0..o * k).map(|_| next(256) as u8).collect();
                let bias: Vec<i32> = (0..o).map(|_| next(200_001) as i32 - 100_000).collect();
                let (zw, zx) = (next(256) as i32, next(256) as i32);
                let weights = GemmWeights::new(&w, o, k, zw, zx, &bias);
                let scale = [1e-5, 3e-4, 0.02, 40.0][case];
                let requantize = Requantize {
                    multiplier: QuantizedMultiplier::from_real(scale / (k as f64).sqrt()),
                    zero_point: next(256) as i32,
                    min: next(40) as u8,
                    max: 215 + next(41) as u8,
                };
                let mut portable = vec![0; rows * o];
                kernels::gemm(&a, rows, &weights, &requantize, &mut portable);
                let mut vnni = vec![0; rows * o];
                gemm(&a, rows, &weights, &requantize, &mut vnni);
                assert_eq!(vnni, portable, "k {k} o {o} rows {rows} case {case}");
            }
        }
    }

    #[test]
    fn depthwise_gives_the_portable_bytes() {
        let Some(mut next) = values(12) else {
            return;
        };
        // Channel counts with partial vectors; strides 1 and 2 on even and odd sizes (SAME
        // padding on both sides, or only bottom/right).
        for (c, size, stride, kernel) in [
            (8usize, 9usize, 1usize, 3usize),
            (17, 8, 2, 3),
            (32, 7, 2, 3),
            (40, 6, 1, 5),
        ] {
            let out_size = size.div_ceil(stride);
            let total = ((out_size - 1) * stride + kernel).saturating_sub(size);
            let g = Geometry {
                kernel,
                stride,
                in_h: size,
                in_w: size,
                in_c: c,
                out_h: out_size,
                out_w: out_size,
                out_c: c,
                pad_top: total / 2,
                pad_left: total / 2,
            };
            let image: Vec<u8> = (0..g.input_len()).map(|_| next(256) as u8).collect();
            let weight: Vec<u8> = (0..c * kernel * kernel).map(|_| next(256) as u8).collect();
            let bias: Vec<i32> = (0..c).map(|_| next(20_001) as i32 - 10_000).collect();
            let weights = DepthwiseWeights::new(&weight, c, kernel, next(256) as i32, &bias);
            let requantize = Requantize {
                multiplier: QuantizedMultiplier::from_real(0.002),
                zero_point: next(256) as i32,
                min: next(30) as u8,
                max: 225 + next(31) as u8,
            };
            let zx = next(256) as i32;
            let mut portable = vec![0; g.output_len()];
            kernels::depthwise(&image, &g, &weights, zx, &requantize, &mut portable);
            let mut avx512 = vec![0; g.output_len()];
            depthwise(&image, &g, &weights, zx, &requantize, &mut avx512);
            assert_eq!(
                avx512, portable,
                "c {c} size {size} stride {stride} kernel {kernel}"
            );
        }
    }
}

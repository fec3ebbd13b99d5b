//! The AVX-512 kernels: the u8 x s8 GEMM of [`super::kernels::gemm`] on VNNI, the depthwise
//! convolution of [`super::kernels::depthwise`] and v2's residual ADD, the same bytes, with
//! TFLite's requantization in 512-bit integer vectors (the arithmetic: module [`super`]; the
//! instructions: Intel's Intrinsics Guide).
//!
//! **GEMM.** The packed weights (`[block of 64][groups][64][4]` int8) are exactly one `vpdpbusd`
//! (`_mm512_dpbusd_epi32`: four u8 x s8 products summed into each int32 lane) operand per 16
//! output channels and group of four inputs; the four input bytes of a row are broadcast to
//! every lane. A tile is up to 4 rows x 64 output channels: 16 accumulators, 4 weight vectors and
//! a broadcast, 21 of the 32 registers, so each weight load feeds 4 dot products and each
//! broadcast 4; full tiles run a written-out k loop ([`Tile::run_full`], which says why). (6
//! rows, 29 registers, measured ~1.5x slower on the pointwise layers of v1 1.0_224 on AMD
//! EPYC/Zen: LLVM spills part of the tile.) The per-row input sums (`vpsadbw`) are computed once
//! per call; the epilogue adds the column constants, subtracts `(zw - 128) * row sum`,
//! requantizes ([`Epilogue`]) and packs four vectors to 64 bytes with saturating packs and one
//! `vpermd`.
//!
//! **Output stage.** Where the layer's [`FloatForm`](super::float_form::FloatForm) was proved at
//! load (every convolution of the shipped models but the final 1x1), the accumulators are
//! requantized as `floor(fma(f32(acc), m, c))`: three instructions per 16 (two more on linear
//! layers, whose negative accumulators take their own offset) instead of the eight of the
//! 64-bit fixed-point form ([`Epilogue`]), which the rest keep. In interleaved rounds on AMD EPYC
//! this took v1 1.0_224 from 1.68 to 1.54 ms and v2 1.0_224 from 1.54 to 1.33 ms (1 thread).
//!
//! **Depthwise, 3x3.** On vertical triples ([`super::kernels::TripleDepthwise`]): each padded
//! input column's three taps become `(x0, x1, x2, 0)` lanes once per output row, and each
//! output vector is three `vpdpbusd` against `w - zw` clamped to an int8, plus one for each of
//! the rare vectors with a clamped weight; a layer
//! whose channels divide 64 puts `64 / C` output pixels in one vector (stride 1). This took the
//! depthwise layers of v1 1.0_224 from 0.48 ms (the pairs kernel) to 0.30 ms on AMD EPYC.
//!
//! **Depthwise, other kernel sizes.** 64 channels of two adjacent output pixels at a time (each weight load feeds
//! both), two taps per instruction: the 64 input bytes of taps `t` and `t + 1` are interleaved
//! and widened to i16 pairs (`unpacklo/hi_epi8`, six shuffles for four vectors) and multiplied
//! by the pair of weights `w - zw` (i16) with `vpdpwssd`, exact (|x (w - zw)| <= 255 * 255). The
//! lane order that the in-lane shuffles leave is undone by the packs of the epilogue
//! ([`super::kernels::PackedDepthwise`]). Out-of-image taps read a pixel of input zero points,
//! whose contribution the packed bias removes.
//!
//! **ADD.** `SRDHM((x - z) << 20, q)` is `x' * (q >> 11) + ((x' * (q & 2047) + 2^10) >> 11)` for
//! `x' = x - z` in [-255, 255], exactly, in 32-bit lanes; the output stage is the [`Epilogue`].

use std::arch::x86_64::*;
use std::ops::Range;

use super::add::AddParams;
use super::fixed_point::QuantizedMultiplier;
use super::kernels::{
    DepthwiseWeights, GROUP, GemmWeights, Geometry, LANES, PackedDepthwise, Requantize, STEM_GROUPS,
    StemWeights, TapPointers, TripleDepthwise,
};

/// Output channels per tile: four vectors of 16 int32.
const VECTORS: usize = 4;
/// Rows per tile.
const ROWS: usize = 4;

/// Whether this CPU runs the kernels of this module.
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
    assert_eq!(w.packed.len(), w.groups * w.o_pad * GROUP);
    assert!(w.o <= w.o_pad && w.o_pad.is_multiple_of(LANES) && w.column_bias.len() == w.o);
    // SAFETY: the CPU has AVX-512F, AVX-512BW and AVX-512 VNNI (asserted above), the features
    // `gemm_avx512` is compiled for; the shapes it relies on are asserted above.
    unsafe { gemm_avx512(a, rows, w, requantize, out) }
}

/// The GEMM.
///
/// # Safety
/// The CPU must have AVX-512F, BW and VNNI, and the shapes must be those [`gemm`] asserts.
#[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
unsafe fn gemm_avx512(a: &[u8], rows: usize, w: &GemmWeights, requantize: &Requantize, out: &mut [u8]) {
    let k = w.k;
    let corrections = corrections(a, k, w.row_factor);
    let epilogue = Epilogue::new(requantize);
    for start in (0..w.o).step_by(VECTORS * LANES) {
        let width = (VECTORS * LANES).min(w.o - start);
        let tile = Tile {
            a: a.as_ptr(),
            k,
            weights: w.packed[w.column(start).0..].as_ptr(),
            weight_stride: w.column(start).1,
            bias: w.column_bias[start..].as_ptr(),
            epilogue: &epilogue,
            width,
            o: w.o,
        };
        let mut row = 0;
        while row < rows {
            let count = ROWS.min(rows - row);
            // SAFETY: rows [row, row + count) lie inside `a`, `corrections` and `out` (shapes
            // asserted by `gemm`), and output channels [start, start + width) inside `o`; the
            // weights of those channels are inside every group of `packed` (start + 64 <= o_pad
            // or the tile reads only ceil(width / 16) vectors).
            unsafe {
                let out = out.as_mut_ptr().add(row * w.o + start);
                let corrections = &corrections[row..row + count];
                match count {
                    4 => tile.run::<4>(row, corrections, out),
                    3 => tile.run::<3>(row, corrections, out),
                    2 => tile.run::<2>(row, corrections, out),
                    _ => tile.run::<1>(row, corrections, out),
                }
            }
            row += count;
        }
    }
}

/// `factor * (sum of the row's bytes)` for each `k`-byte row of `a`: eight rows at a time,
/// their eight partial sums each reduced together (three levels of pairwise adds) rather than
/// one horizontal reduction per row, which cost as much as a tenth of pw_1 of v1 1.0_224.
#[target_feature(enable = "avx512bw,avx512f")]
pub(super) fn corrections(a: &[u8], k: usize, factor: i32) -> Vec<i32> {
    let rows = a.len() / k;
    let mut out = vec![0i32; rows];
    let eight = rows / 8 * 8;
    let factor_v = _mm256_set1_epi32(factor);
    for (block, dst) in a[..eight * k].chunks_exact(8 * k).zip(out.chunks_exact_mut(8)) {
        let s: [__m512i; 8] = std::array::from_fn(|r| partial_sums(&block[r * k..][..k]));
        let (t0, t1) = (pair_sums(s[0], s[1]), pair_sums(s[2], s[3]));
        let (t2, t3) = (pair_sums(s[4], s[5]), pair_sums(s[6], s[7]));
        // qword r: the sum of row r (at most 12,288 x 255, MAX_REDUCTION: fits in int32).
        let v = lane_sums(lane_sums(t0, t1), lane_sums(t2, t3));
        let c = _mm256_mullo_epi32(_mm512_cvtepi64_epi32(v), factor_v);
        // SAFETY: `dst` holds 8 int32.
        unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), c) };
    }
    for (row, d) in a[eight * k..].chunks_exact(k).zip(&mut out[eight..]) {
        *d = factor * _mm512_reduce_add_epi64(partial_sums(row)) as i32;
    }
    out
}

/// A row's bytes summed into eight qwords (`vpsadbw` against zero, 64 bytes at a time).
#[inline]
#[target_feature(enable = "avx512bw,avx512f")]
fn partial_sums(row: &[u8]) -> __m512i {
    let mut sums = _mm512_setzero_si512();
    let zero = _mm512_setzero_si512();
    for chunk in row.chunks(64) {
        let mask = u64::MAX >> (64 - chunk.len());
        // SAFETY: the masked load touches only the `chunk.len()` bytes of `chunk`.
        let x = unsafe { _mm512_maskz_loadu_epi8(mask, chunk.as_ptr().cast()) };
        sums = _mm512_add_epi64(sums, _mm512_sad_epu8(x, zero));
    }
    sums
}

/// Per 128-bit lane L: `[x.q(2L) + x.q(2L+1), y.q(2L) + y.q(2L+1)]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn pair_sums(x: __m512i, y: __m512i) -> __m512i {
    _mm512_add_epi64(_mm512_unpacklo_epi64(x, y), _mm512_unpackhi_epi64(x, y))
}

/// 128-bit lanes `[x.L0 + x.L1, x.L2 + x.L3, y.L0 + y.L1, y.L2 + y.L3]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn lane_sums(x: __m512i, y: __m512i) -> __m512i {
    _mm512_add_epi64(
        _mm512_shuffle_i64x2::<0b10_00_10_00>(x, y),
        _mm512_shuffle_i64x2::<0b11_01_11_01>(x, y),
    )
}

/// One block of up to 64 output channels, any rows.
struct Tile<'a> {
    a: *const u8,
    k: usize,
    /// The block's first channel in group 0 of the packed weights.
    weights: *const i8,
    /// Bytes from one group to the next ([`GemmWeights::column`]).
    weight_stride: usize,
    /// The block's first column constant.
    bias: *const i32,
    epilogue: &'a Epilogue,
    width: usize,
    o: usize,
}

impl Tile<'_> {
    /// Rows `[row, row + R)` of this block into `out` (the first row's first channel of the
    /// block; rows `o` apart), with as many vectors as the width needs.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, BW and VNNI; rows `[row, row + R)` of `a` (k bytes each),
    /// `width` output channels of those rows at `out`, `ceil(width / 16)` vectors of every
    /// group at `weights` and `width` constants at `bias` must be valid.
    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    unsafe fn run<const R: usize>(&self, row: usize, corrections: &[i32], out: *mut u8) {
        // SAFETY: forwarded from the caller.
        unsafe {
            if R == 4 && self.width == VECTORS * LANES {
                return self.run_full(row, corrections, out);
            }
            match self.width.div_ceil(LANES) {
                1 => self.run_vectors::<R, 1>(row, corrections, out),
                2 => self.run_vectors::<R, 2>(row, corrections, out),
                3 => self.run_vectors::<R, 3>(row, corrections, out),
                _ => self.run_vectors::<R, 4>(row, corrections, out),
            }
        }
    }

    /// A full tile, 4 rows x 64 channels: the k loop on 16 named accumulators.
    ///
    /// Written out because LLVM handles neither form of the generic loop well here: inlined
    /// into the GEMM, it keeps the epilogue's constants in registers across the k loop, runs out
    /// of the 32 and spills an accumulator every iteration (a store-to-load round trip on its
    /// dependency chain); not inlined, it stores all 16 accumulator arrays' elements to the
    /// stack every iteration. Either way the pointwise layers of v1 1.0_224 ran at 25-47% of
    /// the `vpdpbusd` peak. Not inlined, so the epilogue's constants are loaded after the loop.
    ///
    /// # Safety
    /// As [`Tile::run`] with `R = 4` and `width = 64`.
    #[inline(never)]
    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    unsafe fn run_full(&self, row: usize, corrections: &[i32], out: *mut u8) {
        let k = self.k;
        // SAFETY: rows [row, row + 4) of `a` are valid (the caller's contract).
        let (r0, r1, r2, r3) = unsafe {
            let first = self.a.add(row * k);
            (first, first.add(k), first.add(2 * k), first.add(3 * k))
        };
        // The accumulators start at `column constant - row correction`, so the epilogue has
        // neither to add (exact integers: the order of the sum does not change it).
        // SAFETY: the block's 64 column constants are at `bias` (width 64, the contract).
        let [b0, b1, b2, b3] =
            [0, 1, 2, 3].map(|j| unsafe { _mm512_loadu_si512(self.bias.add(j * LANES).cast()) });
        let start = |i: usize| {
            let c = _mm512_set1_epi32(corrections[i]);
            [b0, b1, b2, b3].map(|b| _mm512_sub_epi32(b, c))
        };
        let [mut c00, mut c01, mut c02, mut c03] = start(0);
        let [mut c10, mut c11, mut c12, mut c13] = start(1);
        let [mut c20, mut c21, mut c22, mut c23] = start(2);
        let [mut c30, mut c31, mut c32, mut c33] = start(3);
        let full = k / GROUP;
        let mut weights = self.weights;
        for group in 0..full {
            // SAFETY: the four vectors of this group's block lie inside the packed weights
            // (width 64); bytes [4 group, 4 group + 4) lie inside each row (group < k / 4).
            unsafe {
                let w0 = _mm512_loadu_si512(weights.cast());
                let w1 = _mm512_loadu_si512(weights.add(LANES * GROUP).cast());
                let w2 = _mm512_loadu_si512(weights.add(2 * LANES * GROUP).cast());
                let w3 = _mm512_loadu_si512(weights.add(3 * LANES * GROUP).cast());
                let at = group * GROUP;
                let x = _mm512_set1_epi32(r0.add(at).cast::<i32>().read_unaligned());
                c00 = _mm512_dpbusd_epi32(c00, x, w0);
                c01 = _mm512_dpbusd_epi32(c01, x, w1);
                c02 = _mm512_dpbusd_epi32(c02, x, w2);
                c03 = _mm512_dpbusd_epi32(c03, x, w3);
                let x = _mm512_set1_epi32(r1.add(at).cast::<i32>().read_unaligned());
                c10 = _mm512_dpbusd_epi32(c10, x, w0);
                c11 = _mm512_dpbusd_epi32(c11, x, w1);
                c12 = _mm512_dpbusd_epi32(c12, x, w2);
                c13 = _mm512_dpbusd_epi32(c13, x, w3);
                let x = _mm512_set1_epi32(r2.add(at).cast::<i32>().read_unaligned());
                c20 = _mm512_dpbusd_epi32(c20, x, w0);
                c21 = _mm512_dpbusd_epi32(c21, x, w1);
                c22 = _mm512_dpbusd_epi32(c22, x, w2);
                c23 = _mm512_dpbusd_epi32(c23, x, w3);
                let x = _mm512_set1_epi32(r3.add(at).cast::<i32>().read_unaligned());
                c30 = _mm512_dpbusd_epi32(c30, x, w0);
                c31 = _mm512_dpbusd_epi32(c31, x, w1);
                c32 = _mm512_dpbusd_epi32(c32, x, w2);
                c33 = _mm512_dpbusd_epi32(c33, x, w3);
                weights = weights.add(self.weight_stride);
            }
        }
        let acc = [
            [c00, c01, c02, c03],
            [c10, c11, c12, c13],
            [c20, c21, c22, c23],
            [c30, c31, c32, c33],
        ];
        // SAFETY: forwarded from the caller; `weights` is the group after the last full one.
        unsafe { self.finish::<4, 4, true>(acc, full, weights, row, corrections, out) };
    }

    /// # Safety
    /// As [`Tile::run`], with `V = ceil(width / 16)`.
    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    unsafe fn run_vectors<const R: usize, const V: usize>(
        &self,
        row: usize,
        corrections: &[i32],
        out: *mut u8,
    ) {
        let k = self.k;
        // SAFETY: rows [row, row + R) of `a` are valid (the caller's contract).
        let rows: [*const u8; R] = std::array::from_fn(|i| unsafe { self.a.add((row + i) * k) });
        let mut acc = [[_mm512_setzero_si512(); V]; R];
        let full = k / GROUP;
        let mut weights = self.weights;
        for group in 0..full {
            let mut wv = [_mm512_setzero_si512(); V];
            for (j, v) in wv.iter_mut().enumerate() {
                // SAFETY: vector j of this group's block lies inside the packed weights.
                *v = unsafe { _mm512_loadu_si512(weights.add(j * LANES * GROUP).cast()) };
            }
            for (acc, &r) in acc.iter_mut().zip(&rows) {
                // SAFETY: group < k / 4, so bytes [4 group, 4 group + 4) lie inside the row.
                let x = _mm512_set1_epi32(unsafe { r.add(group * GROUP).cast::<i32>().read_unaligned() });
                for (a, &w) in acc.iter_mut().zip(&wv) {
                    *a = _mm512_dpbusd_epi32(*a, x, w);
                }
            }
            // SAFETY: at most one past the last group, which is not read.
            weights = unsafe { weights.add(self.weight_stride) };
        }
        // SAFETY: forwarded from the caller; `weights` is the group after the last full one.
        unsafe { self.finish::<R, V, false>(acc, full, weights, row, corrections, out) };
    }

    /// The last partial group of four inputs (k % 4 != 0), then the epilogue and the store.
    /// `FOLDED`: the accumulators started at the column constants less the row corrections
    /// ([`Tile::run_full`]), so neither is added here.
    ///
    /// # Safety
    /// As [`Tile::run_vectors`]; `weights` must point at group `full = k / 4` of the block.
    #[inline]
    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    unsafe fn finish<const R: usize, const V: usize, const FOLDED: bool>(
        &self,
        mut acc: [[__m512i; V]; R],
        full: usize,
        weights: *const i8,
        row: usize,
        corrections: &[i32],
        out: *mut u8,
    ) {
        let k = self.k;
        // SAFETY: rows [row, row + R) of `a` are valid (the caller's contract).
        let rows: [*const u8; R] = std::array::from_fn(|i| unsafe { self.a.add((row + i) * k) });
        if full * GROUP < k {
            // The last inputs, zero past k (the packed weights are zero there too).
            let mut wv = [_mm512_setzero_si512(); V];
            for (j, v) in wv.iter_mut().enumerate() {
                // SAFETY: as above, for the last (partial) group.
                *v = unsafe { _mm512_loadu_si512(weights.add(j * LANES * GROUP).cast()) };
            }
            for (acc, &r) in acc.iter_mut().zip(&rows) {
                let mut bytes = [0u8; GROUP];
                for (i, b) in bytes[..k - full * GROUP].iter_mut().enumerate() {
                    // SAFETY: full * 4 + i < k: inside the row.
                    *b = unsafe { *r.add(full * GROUP + i) };
                }
                let x = _mm512_set1_epi32(i32::from_le_bytes(bytes));
                for (a, &w) in acc.iter_mut().zip(&wv) {
                    *a = _mm512_dpbusd_epi32(*a, x, w);
                }
            }
        }
        // SAFETY: the block's `width` column constants are at `bias` (the contract).
        let bias = unsafe { column_constants(self.bias, self.width) };
        let mask = u64::MAX >> (64 - self.width);
        for (i, acc) in acc.iter().enumerate() {
            let correction = _mm512_set1_epi32(corrections[i]);
            let mut q = [_mm512_setzero_si512(); VECTORS];
            for j in 0..V {
                q[j] = if FOLDED {
                    self.epilogue.apply(acc[j])
                } else {
                    self.epilogue
                        .apply(_mm512_sub_epi32(_mm512_add_epi32(acc[j], bias[j]), correction))
                };
            }
            let bytes = self.epilogue.clamp(pack_in_order(q));
            // SAFETY: the masked store writes only the `width` channels of row `row + i`.
            unsafe { _mm512_mask_storeu_epi8(out.add(i * self.o).cast(), mask, bytes) };
        }
    }
}

/// `width` (at most 64) column constants at `bias` as four vectors of 16, zero past `width`.
///
/// # Safety
/// The CPU must have AVX-512F; `bias` must hold `width` int32.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn column_constants(bias: *const i32, width: usize) -> [__m512i; VECTORS] {
    let mut vectors = [_mm512_setzero_si512(); VECTORS];
    for (j, v) in vectors.iter_mut().enumerate().take(width.div_ceil(LANES)) {
        let lanes = (width - j * LANES).min(LANES);
        // SAFETY: the masked load touches only constants [16 j, 16 j + lanes) < width.
        *v = unsafe { _mm512_maskz_loadu_epi32(((1u32 << lanes) - 1) as u16, bias.add(j * LANES)) };
    }
    vectors
}

/// Four vectors of int32 (channels 0-15, 16-31, 32-47, 48-63) to 64 bytes in channel order,
/// saturated to [0, 255].
#[inline]
#[target_feature(enable = "avx512bw,avx512f")]
pub(super) fn pack_in_order(q: [__m512i; 4]) -> __m512i {
    // packs/packus interleave per 128-bit lane: dword 4 L + j of the result holds channels
    // 16 j + 4 L .. +4; move it to dword 4 j + L.
    let packed = pack_lanes(q);
    let order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm512_permutexvar_epi32(order, packed)
}

/// `packus_epi16(packs_epi32(q0, q1), packs_epi32(q2, q3))`: int32 to uint8 with saturation,
/// in the per-128-bit-lane order of the packs.
#[inline]
#[target_feature(enable = "avx512bw,avx512f")]
fn pack_lanes(q: [__m512i; 4]) -> __m512i {
    _mm512_packus_epi16(_mm512_packs_epi32(q[0], q[1]), _mm512_packs_epi32(q[2], q[3]))
}

/// Output rows `rows` of one image's 3x3 convolution on 3 input channels (the stem) into `out`
/// (those rows only, `o` channels per pixel): the bytes of [`super::kernels::im2col`] then
/// [`super::kernels::gemm`], without the im2col buffer. Each output pixel reads its three
/// 9-byte kernel rows straight from the image (from a copy holding the input zero point at
/// out-of-image taps on the border, as the im2col pads), as three broadcast groups per kernel
/// row, against `w - zw` clamped to an int8 plus the rare fix-up vectors ([`StemWeights`]), so
/// no input sum is needed. Panics on a CPU without AVX-512 VNNI.
pub(crate) fn stem(
    image: &[u8],
    g: &Geometry,
    w: &StemWeights,
    input_zero_point: i32,
    requantize: &Requantize,
    rows: Range<usize>,
    out: &mut [u8],
) {
    assert!(available(), "this CPU lacks AVX-512 VNNI");
    assert!(g.kernel == 3 && g.in_c == 3 && g.out_c == w.o && w.o <= 4 * LANES && w.o > 0);
    assert!(w.o_pad == w.o.div_ceil(LANES) * LANES);
    assert!(w.packed.len() == 3 * STEM_GROUPS * w.o_pad * GROUP && w.column_bias.len() == w.o_pad);
    assert_eq!(image.len(), g.input_len());
    assert!(rows.end <= g.out_h && out.len() == rows.len() * g.out_w * w.o);
    let zx = u8::try_from(input_zero_point).expect("a uint8 input zero point");
    // SAFETY: the CPU has AVX-512F, BW and VNNI (asserted above), the features `stem_avx512`
    // is compiled for; the shapes it relies on are asserted above.
    unsafe {
        match w.o_pad / LANES {
            1 => stem_avx512::<1>(image, g, w, zx, requantize, rows, out),
            2 => stem_avx512::<2>(image, g, w, zx, requantize, rows, out),
            3 => stem_avx512::<3>(image, g, w, zx, requantize, rows, out),
            _ => stem_avx512::<4>(image, g, w, zx, requantize, rows, out),
        }
    }
}

/// The stem with `V` vectors of 16 output channels.
///
/// # Safety
/// The CPU must have AVX-512F, BW and VNNI, and the shapes must be those [`stem`] asserts,
/// with `V = o_pad / 16`.
#[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
unsafe fn stem_avx512<const V: usize>(
    image: &[u8],
    g: &Geometry,
    w: &StemWeights,
    zx: u8,
    requantize: &Requantize,
    rows: Range<usize>,
    out: &mut [u8],
) {
    let o = w.o;
    let epilogue = Epilogue::new(requantize);
    let weights: [[__m512i; V]; 9] = std::array::from_fn(|group| {
        std::array::from_fn(|j| {
            let at = (group * w.o_pad + j * LANES) * GROUP;
            // SAFETY: `packed` holds 9 groups of `o_pad` channels of 4 bytes (asserted by
            // `stem`) and V vectors of 16 channels are `o_pad`: 64 bytes from `at` are inside.
            unsafe { _mm512_loadu_si512(w.packed[at..].as_ptr().cast()) }
        })
    });
    let bias: [__m512i; V] = std::array::from_fn(|j| {
        // SAFETY: `column_bias` holds `o_pad` = 16 V values (asserted by `stem`).
        unsafe { _mm512_loadu_si512(w.column_bias[j * LANES..].as_ptr().cast()) }
    });
    let store = u64::MAX >> (64 - o);
    // Up to two rest vectors per group and vector ([`super::kernels::StemFix`]: the second only
    // for a weight 255 on a zero point of 0).
    let mut fixed = [[false; 3 * STEM_GROUPS]; 2];
    let mut rest = [[[_mm512_setzero_si512(); V]; 3 * STEM_GROUPS]; 2];
    let mut taken = [[false; VECTORS]; 3 * STEM_GROUPS];
    for fix in &w.fixes {
        let pass = usize::from(std::mem::replace(&mut taken[fix.group][fix.vector], true));
        fixed[pass][fix.group] = true;
        // SAFETY: `rest` holds 64 bytes.
        rest[pass][fix.group][fix.vector] = unsafe { _mm512_loadu_si512(fix.rest.as_ptr().cast()) };
    }
    let line = g.in_w * 3;
    // Kernel rows above or below the image read a row of input zero points.
    let pad_line = vec![zx; line];
    let first = rows.start;
    for oy in rows {
        let lines: [&[u8]; 3] = std::array::from_fn(|ky| {
            match (oy * g.stride + ky)
                .checked_sub(g.pad_top)
                .filter(|&iy| iy < g.in_h)
            {
                Some(iy) => &image[iy * line..][..line],
                None => &pad_line[..],
            }
        });
        let dst = &mut out[(oy - first) * g.out_w * o..][..g.out_w * o];
        let interior = |ox: usize| {
            let left = ox * g.stride;
            left >= g.pad_left && left - g.pad_left + 3 <= g.in_w
        };
        let mut ox = 0;
        while ox < g.out_w {
            // Two interior pixels at a time: their accumulator chains interleave, so the
            // `vpdpbusd` latency of one hides behind the other's.
            if ox + 1 < g.out_w && interior(ox) && interior(ox + 1) {
                let pair: [[*const u8; 3]; 2] = std::array::from_fn(|i| {
                    let x0 = ((ox + i) * g.stride - g.pad_left) * 3;
                    std::array::from_fn(|ky| lines[ky][x0..][..9].as_ptr())
                });
                // SAFETY: each pointer holds 9 bytes of a kernel row inside the image.
                let acc = unsafe { stem_pixels::<V, 2>(pair, &weights, bias, &fixed, &rest) };
                for (i, acc) in acc.iter().enumerate() {
                    let mut q = [_mm512_setzero_si512(); VECTORS];
                    for (q, &a) in q.iter_mut().zip(acc) {
                        *q = epilogue.apply(a);
                    }
                    let bytes = epilogue.clamp(pack_in_order(q));
                    // SAFETY: the masked store writes only the `o` channels of pixel `ox + i`.
                    unsafe { _mm512_mask_storeu_epi8(dst[(ox + i) * o..].as_mut_ptr().cast(), store, bytes) };
                }
                ox += 2;
                continue;
            }
            let left = ox * g.stride;
            let mut border = [[zx; 12]; 3];
            let pointers: [*const u8; 3] = if interior(ox) {
                let x0 = (left - g.pad_left) * 3;
                std::array::from_fn(|ky| lines[ky][x0..][..9].as_ptr())
            } else {
                for (b, l) in border.iter_mut().zip(&lines) {
                    for kx in 0..3 {
                        if let Some(ix) = (left + kx).checked_sub(g.pad_left).filter(|&ix| ix < g.in_w) {
                            b[kx * 3..kx * 3 + 3].copy_from_slice(&l[ix * 3..ix * 3 + 3]);
                        }
                    }
                }
                std::array::from_fn(|ky| border[ky].as_ptr())
            };
            // SAFETY: each pointer holds 9 bytes (a kernel row inside the image or `border`).
            let [acc] = unsafe { stem_pixels::<V, 1>([pointers], &weights, bias, &fixed, &rest) };
            let mut q = [_mm512_setzero_si512(); VECTORS];
            for (q, &a) in q.iter_mut().zip(&acc) {
                *q = epilogue.apply(a);
            }
            let bytes = epilogue.clamp(pack_in_order(q));
            // SAFETY: the masked store writes only the `o` channels of pixel `ox` of `dst`.
            unsafe { _mm512_mask_storeu_epi8(dst[ox * o..].as_mut_ptr().cast(), store, bytes) };
            ox += 1;
        }
    }
}

/// The stem's accumulators of `N` output pixels, whose three kernel rows of 9 bytes are at
/// `pointers[i]`: the column constants plus three broadcast groups per kernel row against the
/// clamped weights, and the fix-up vectors.
///
/// # Safety
/// The CPU must have AVX-512F, BW and VNNI; each pointer must hold 9 bytes.
#[inline]
#[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
unsafe fn stem_pixels<const V: usize, const N: usize>(
    pointers: [[*const u8; 3]; N],
    weights: &[[__m512i; V]; 3 * STEM_GROUPS],
    bias: [__m512i; V],
    fixed: &[[bool; 3 * STEM_GROUPS]; 2],
    rest: &[[[__m512i; V]; 3 * STEM_GROUPS]; 2],
) -> [[__m512i; V]; N] {
    let mut acc = [bias; N];
    // `ky` picks a kernel row of every pixel and its three groups of weights.
    #[allow(clippy::needless_range_loop)]
    for ky in 0..3 {
        // SAFETY: each pointer holds 9 bytes (the caller's contract).
        let xs: [[__m512i; STEM_GROUPS]; N] = std::array::from_fn(|i| unsafe {
            let p = pointers[i][ky];
            [
                _mm512_set1_epi32(p.cast::<i32>().read_unaligned()),
                _mm512_set1_epi32(p.add(4).cast::<i32>().read_unaligned()),
                _mm512_set1_epi32(i32::from(*p.add(8))),
            ]
        });
        for g in 0..STEM_GROUPS {
            let group = ky * STEM_GROUPS + g;
            for j in 0..V {
                for (acc, xs) in acc.iter_mut().zip(&xs) {
                    acc[j] = _mm512_dpbusd_epi32(acc[j], xs[g], weights[group][j]);
                }
            }
            for pass in 0..2 {
                if fixed[pass][group] {
                    // Every vector of the group (zero rest where none was clamped): fixed
                    // indices keep the accumulators in registers.
                    for j in 0..V {
                        for (acc, xs) in acc.iter_mut().zip(&xs) {
                            acc[j] = _mm512_dpbusd_epi32(acc[j], xs[g], rest[pass][group][j]);
                        }
                    }
                }
            }
        }
    }
    acc
}

/// [`super::kernels::depthwise`]'s contract and bytes. Panics on a CPU without AVX-512 VNNI.
pub(crate) fn depthwise(
    image: &[u8],
    g: &Geometry,
    w: &DepthwiseWeights,
    input_zero_point: i32,
    requantize: &Requantize,
    rows: Range<usize>,
    out: &mut [u8],
) {
    assert!(available(), "this CPU lacks AVX-512 VNNI");
    if let Some(t) = w.triples.as_ref().filter(|_| g.kernel == 3) {
        assert_eq!(image.len(), g.input_len());
        assert!(rows.end <= g.out_h && out.len() == rows.len() * g.out_w * g.in_c);
        assert!(g.in_c == g.out_c && g.stride >= 1 && g.pad_left <= 2 && g.pad_top <= 2);
        assert!(t.weights.len() == g.in_c.div_ceil(64) * 768 && t.bias.len() == g.in_c.div_ceil(64) * 64);
        let row = TripleRow::new(g);
        // SAFETY: the CPU has AVX-512F, BW and VNNI (asserted above), the features
        // `depthwise_triples` is compiled for; the shapes it relies on are asserted above.
        return unsafe {
            depthwise_triples(image, g, t, &row, input_zero_point as u8, requantize, rows, out)
        };
    }
    let p = w
        .wide
        .as_ref()
        .expect("packed for every depthwise kernel but 3x3");
    let blocks = g.in_c.div_ceil(p.block());
    let pairs = (g.kernel * g.kernel).div_ceil(2);
    assert_eq!(image.len(), g.input_len());
    assert!(rows.end <= g.out_h && out.len() == rows.len() * g.out_w * g.in_c);
    assert!(g.in_c == g.out_c && p.lanes == LANES);
    assert!(
        p.pairs.len() == blocks * pairs * 64 && p.bias.len() == blocks * 64 && p.pad.len() == blocks * 64
    );
    // SAFETY: the CPU has AVX-512F, BW and VNNI (asserted above), the features
    // `depthwise_avx512` is compiled for; the shapes it relies on are asserted above.
    unsafe { depthwise_avx512(image, g, p, requantize, rows, out) }
}

/// The depthwise convolution.
///
/// # Safety
/// The CPU must have AVX-512F, BW and VNNI, and the shapes must be those [`depthwise`] asserts.
#[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
unsafe fn depthwise_avx512(
    image: &[u8],
    g: &Geometry,
    p: &PackedDepthwise,
    requantize: &Requantize,
    rows: Range<usize>,
    out: &mut [u8],
) {
    let c = g.in_c;
    let taps = g.kernel * g.kernel;
    let pairs = taps.div_ceil(2);
    let epilogue = Epilogue::new(requantize);
    let mut left = TapPointers::new(image, g, p.pad.as_ptr());
    let mut right = TapPointers::new(image, g, p.pad.as_ptr());
    let interior_y = left.interior_y();
    let first = rows.start;
    for oy in rows {
        let inside_y = interior_y.contains(&oy);
        let row = &mut out[(oy - first) * g.out_w * c..][..g.out_w * c];
        // Two output pixels at a time: each weight vector loaded feeds both, and their eight
        // accumulator chains overlap.
        let mut ox = 0;
        while ox < g.out_w {
            let n = if ox + 1 < g.out_w { 2 } else { 1 };
            left.set(oy, ox, inside_y);
            if n == 2 {
                right.set(oy, ox + 1, inside_y);
            }
            let dst = &mut row[ox * c..][..n * c];
            for (b, start) in (0..c).step_by(64).enumerate() {
                let block = DepthwiseBlock {
                    mask: u64::MAX >> (64 - (c - start).min(64)),
                    start,
                    weights: &p.pairs[b * pairs * 64..][..pairs * 64],
                    bias: &p.bias[b * 64..][..64],
                    pairs,
                    epilogue: &epilogue,
                };
                // SAFETY: the CPU has AVX-512F, BW and VNNI (this function's contract); the
                // pointers are pixels of `image` or `pad` (TapPointers), holding the channels
                // from `start` the mask selects (`pad` has whole blocks), and `dst` holds
                // `n` pixels of `c` channels.
                unsafe {
                    if n == 2 {
                        block.run::<2>([&left.pointers, &right.pointers], dst.as_mut_ptr(), c);
                    } else {
                        block.run::<1>([&left.pointers], dst.as_mut_ptr(), c);
                    }
                }
            }
            ox += n;
        }
    }
}

/// The shape of [`depthwise_triples`]' work on one output row.
struct TripleRow {
    /// Output pixels per 64-byte vector: `64 / C` on a stride-1 layer whose `C` divides 64.
    pixels: usize,
    /// Vectors of output pixels per row (`ceil(out_w / pixels)`).
    groups: usize,
    /// Padded columns from one vector of output pixels to the next.
    step: usize,
    /// Chunks built per block: padded columns `0..chunks`.
    chunks: usize,
    /// Bytes of a padded input row: columns `0..pad_left` and from `pad_left + in_w` hold the
    /// input zero point, and the last chunk's 64 bytes of the last block lie inside.
    padded_len: usize,
}

impl TripleRow {
    fn new(g: &Geometry) -> Self {
        let c = g.in_c;
        let pixels = if g.stride == 1 && c < 64 && 64 % c == 0 {
            64 / c
        } else {
            1
        };
        let groups = g.out_w.div_ceil(pixels);
        let step = pixels * g.stride;
        let chunks = (groups - 1) * step + 3;
        let columns = chunks.max(g.pad_left + g.in_w);
        TripleRow {
            pixels,
            groups,
            step,
            chunks,
            padded_len: columns * c + c.div_ceil(64) * 64,
        }
    }
}

/// The 3x3 depthwise convolution on vertical triples ([`TripleDepthwise`]). Per output row:
/// the three input rows it reads, padded with the input zero point (kept across rows: a
/// stride-1 layer reuses two of the three); then per block of 64 byte positions, each padded
/// column's chunk as `(x0, x1, x2, 0)` lanes (three loads and eight in-lane shuffles, once per
/// chunk however many outputs read it), and per vector of output pixels three `vpdpbusd`
/// (and one per fix-up vector of the block), the epilogue and one masked store.
///
/// # Safety
/// The CPU must have AVX-512F, BW and VNNI, and the shapes must be those [`depthwise`] asserts
/// for this path; `row` must be [`TripleRow::new`] of `g`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
unsafe fn depthwise_triples(
    image: &[u8],
    g: &Geometry,
    t: &TripleDepthwise,
    shape: &TripleRow,
    zx: u8,
    requantize: &Requantize,
    rows: Range<usize>,
    out: &mut [u8],
) {
    let c = g.in_c;
    let blocks = c.div_ceil(64);
    let epilogue = Epilogue::new(requantize);
    let none = _mm512_setzero_si512();
    // This thread's buffers, kept across calls (`TRIPLE_BUFFERS` says why); given back below.
    let (mut scratch, mut chunk_buffer) = TRIPLE_BUFFERS.with_borrow_mut(std::mem::take);
    let len = shape.padded_len;
    if scratch.len() < 4 * len {
        scratch.resize(4 * len, 0);
    }
    if chunk_buffer.len() < shape.chunks * 4 {
        chunk_buffer.resize(shape.chunks * 4, none);
    }
    // Every chunk is built before it is read, so the buffer's old contents do not matter.
    let chunks = &mut chunk_buffer[..shape.chunks * 4];
    let (outside, rest) = scratch[..4 * len].split_at_mut(len);
    // A row of input zero points (kernel rows outside the image), and the padded copies of
    // input rows: zero points left and right of the row, whose bytes each copy fills in.
    outside.fill(zx);
    let (first_slot, rest) = rest.split_at_mut(len);
    let (second_slot, third_slot) = rest.split_at_mut(len);
    let mut buffers: [&mut [u8]; 3] = [first_slot, second_slot, third_slot];
    let middle = g.pad_left * c..(g.pad_left + g.in_w) * c;
    for buffer in &mut buffers {
        buffer[..middle.start].fill(zx);
        buffer[middle.end..].fill(zx);
    }
    // The input row each slot holds; `None` marks a free slot.
    let mut tags: [Option<usize>; 3] = [None; 3];
    let first = rows.start;
    for oy in rows {
        // The input rows of this output row (`None` outside the image).
        let wanted: [Option<usize>; 3] = std::array::from_fn(|ky| {
            (oy * g.stride + ky)
                .checked_sub(g.pad_top)
                .filter(|&iy| iy < g.in_h)
        });
        let mut picked = [usize::MAX; 3];
        for (ky, want) in wanted.iter().enumerate() {
            if let Some(slot) = want.and_then(|iy| tags.iter().position(|tag| *tag == Some(iy))) {
                picked[ky] = slot;
            }
        }
        for (ky, want) in wanted.iter().enumerate() {
            let Some(iy) = *want else { continue };
            if picked[ky] != usize::MAX {
                continue;
            }
            let free = (0..3)
                .find(|slot| !picked.contains(slot))
                .expect("three slots for at most three rows");
            buffers[free][middle.clone()].copy_from_slice(&image[iy * g.in_w * c..][..g.in_w * c]);
            tags[free] = Some(iy);
            picked[ky] = free;
        }
        let lines: [*const u8; 3] = std::array::from_fn(|ky| match wanted[ky] {
            Some(_) => buffers[picked[ky]].as_ptr(),
            None => outside.as_ptr(),
        });
        let row = &mut out[(oy - first) * g.out_w * c..][..g.out_w * c];
        for b in 0..blocks {
            for (vc, chunk) in chunks.chunks_exact_mut(4).enumerate() {
                // SAFETY: vc < chunks, so vc * c + 64 b + 64 <= padded_len (TripleRow::new):
                // the three loads lie inside the padded rows.
                let [x0, x1, x2] =
                    lines.map(|line| unsafe { _mm512_loadu_si512(line.add(vc * c + 64 * b).cast()) });
                let low = _mm512_unpacklo_epi8(x0, x1);
                let high = _mm512_unpackhi_epi8(x0, x1);
                let low2 = _mm512_unpacklo_epi8(x2, none);
                let high2 = _mm512_unpackhi_epi8(x2, none);
                chunk[0] = _mm512_unpacklo_epi16(low, low2);
                chunk[1] = _mm512_unpackhi_epi16(low, low2);
                chunk[2] = _mm512_unpacklo_epi16(high, high2);
                chunk[3] = _mm512_unpackhi_epi16(high, high2);
            }
            let weights = &t.weights[b * 768..][..768];
            let w: [[__m512i; 4]; 3] = std::array::from_fn(|kx| {
                // SAFETY: `weights` holds 12 vectors of 64 bytes.
                std::array::from_fn(|j| unsafe {
                    _mm512_loadu_si512(weights[(4 * kx + j) * 64..].as_ptr().cast())
                })
            });
            // SAFETY: `bias` holds 4 vectors of 16 int32 per block.
            let bias: [__m512i; 4] = std::array::from_fn(|j| unsafe {
                _mm512_loadu_si512(t.bias[b * 64 + 16 * j..].as_ptr().cast())
            });
            let fixes = &t.fixes[t.fixes.partition_point(|f| f.block < b)..];
            let fixes = &fixes[..fixes.partition_point(|f| f.block == b)];
            for group in 0..shape.groups {
                let mut acc = bias;
                for (kx, w) in w.iter().enumerate() {
                    let chunk = &chunks[(group * shape.step + kx) * 4..][..4];
                    for j in 0..4 {
                        acc[j] = _mm512_dpbusd_epi32(acc[j], chunk[j], w[j]);
                    }
                }
                for fix in fixes {
                    let x = chunks[(group * shape.step + fix.kx) * 4 + fix.vector];
                    // SAFETY: `rest` holds 64 bytes.
                    let rest = unsafe { _mm512_loadu_si512(fix.rest.as_ptr().cast()) };
                    // A match, not `acc[fix.vector]`, so the accumulators stay in registers.
                    match fix.vector {
                        0 => acc[0] = _mm512_dpbusd_epi32(acc[0], x, rest),
                        1 => acc[1] = _mm512_dpbusd_epi32(acc[1], x, rest),
                        2 => acc[2] = _mm512_dpbusd_epi32(acc[2], x, rest),
                        _ => acc[3] = _mm512_dpbusd_epi32(acc[3], x, rest),
                    }
                }
                // Written out rather than `from_fn` / `map`: through a closure LLVM may leave
                // the epilogue out of line (it did once another module called it too, and the
                // depthwise layers of v1 1.0_224 ran 2x slower).
                let q = [
                    epilogue.apply(acc[0]),
                    epilogue.apply(acc[1]),
                    epilogue.apply(acc[2]),
                    epilogue.apply(acc[3]),
                ];
                let bytes = epilogue.clamp(pack_lanes(q));
                let (at, len) = if shape.pixels > 1 {
                    let first = group * shape.pixels;
                    (first * c, (g.out_w - first).min(shape.pixels) * c)
                } else {
                    (group * c + 64 * b, (c - 64 * b).min(64))
                };
                // SAFETY: the masked store writes `len` bytes from `at`, inside `row`: the
                // vector's output pixels (`pixels` > 1), or this block's channels of pixel
                // `group`.
                unsafe {
                    _mm512_mask_storeu_epi8(row[at..].as_mut_ptr().cast(), u64::MAX >> (64 - len), bytes)
                };
            }
        }
    }
    TRIPLE_BUFFERS.with_borrow_mut(|buffers| *buffers = (scratch, chunk_buffer));
}

thread_local! {
    /// [`depthwise_triples`]' padded rows (a row of zero points and three slots) and lane
    /// chunks, kept per thread across calls: two threads split a layer into up to 16 units,
    /// which allocated and zero-filled them each (44 KB on v1 1.0_224's 112x112 layer); only
    /// the padding is filled now. About 1% of a 2-thread pass of v1 and v2 on AMD EPYC.
    static TRIPLE_BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<__m512i>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// One block of 64 channels of the depthwise convolution.
struct DepthwiseBlock<'a> {
    mask: u64,
    start: usize,
    /// The block's `[pair][vector][lane]` weights.
    weights: &'a [i32],
    bias: &'a [i32],
    pairs: usize,
    epilogue: &'a Epilogue,
}

impl DepthwiseBlock<'_> {
    /// The block's channels of `N` output pixels, whose taps are at `pointers[i]` (one more
    /// pointer than taps when their count is odd: the pad pixel, times zero weights), into
    /// `out + i * stride + start`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, BW and VNNI; each pointer must hold the channels from
    /// `start` that the mask selects; `out + i * stride + start` the same, writable.
    #[inline]
    #[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
    unsafe fn run<const N: usize>(&self, pointers: [&[*const u8]; N], out: *mut u8, stride: usize) {
        let zero = _mm512_setzero_si512();
        // SAFETY: `bias` holds 64 int32.
        let bias: [__m512i; 4] =
            std::array::from_fn(|j| unsafe { _mm512_loadu_si512(self.bias[16 * j..].as_ptr().cast()) });
        let mut acc = [bias; N];
        for pair in 0..self.pairs {
            let weights = &self.weights[pair * 64..][..64];
            // SAFETY: `weights` holds 64 int32.
            let w: [__m512i; 4] =
                std::array::from_fn(|j| unsafe { _mm512_loadu_si512(weights[16 * j..].as_ptr().cast()) });
            for (acc, pointers) in acc.iter_mut().zip(pointers) {
                // SAFETY: the caller's contract; taps 2 pair and 2 pair + 1 exist (padded).
                let (x0, x1) = unsafe {
                    (
                        _mm512_maskz_loadu_epi8(self.mask, pointers[2 * pair].add(self.start).cast()),
                        _mm512_maskz_loadu_epi8(self.mask, pointers[2 * pair + 1].add(self.start).cast()),
                    )
                };
                let low = _mm512_unpacklo_epi8(x0, x1);
                let high = _mm512_unpackhi_epi8(x0, x1);
                acc[0] = _mm512_dpwssd_epi32(acc[0], _mm512_unpacklo_epi8(low, zero), w[0]);
                acc[1] = _mm512_dpwssd_epi32(acc[1], _mm512_unpackhi_epi8(low, zero), w[1]);
                acc[2] = _mm512_dpwssd_epi32(acc[2], _mm512_unpacklo_epi8(high, zero), w[2]);
                acc[3] = _mm512_dpwssd_epi32(acc[3], _mm512_unpackhi_epi8(high, zero), w[3]);
            }
        }
        for (i, acc) in acc.into_iter().enumerate() {
            // Written out, as in `depthwise_triples`.
            let q = [
                self.epilogue.apply(acc[0]),
                self.epilogue.apply(acc[1]),
                self.epilogue.apply(acc[2]),
                self.epilogue.apply(acc[3]),
            ];
            let bytes = self.epilogue.clamp(pack_lanes(q));
            // SAFETY: the masked store writes only the selected channels of pixel i (the
            // caller's contract).
            unsafe { _mm512_mask_storeu_epi8(out.add(i * stride + self.start).cast(), self.mask, bytes) };
        }
    }
}

/// [`AddParams::run`]'s bytes. Panics on a CPU without AVX-512 VNNI.
pub(crate) fn add(params: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    assert!(available(), "this CPU lacks AVX-512 VNNI");
    assert!(a.len() == b.len() && a.len() == out.len());
    assert!(params.input1.shift <= 0 && params.input2.shift <= 0 && params.output.shift <= 0);
    // SAFETY: the CPU has AVX-512F and BW (asserted above); the slices have one length.
    unsafe { add_avx512(params, a, b, out) }
}

/// One input of ADD: `RDBPOT(SRDHM((x - z) << 20, q), r)` per lane.
struct AddInput {
    offset: __m512i,
    high: __m512i,
    low: __m512i,
    shift: u32,
    half: __m512i,
}

impl AddInput {
    #[target_feature(enable = "avx512bw,avx512f")]
    fn new(offset: i32, m: QuantizedMultiplier) -> Self {
        let shift = (-m.shift) as u32;
        AddInput {
            offset: _mm512_set1_epi32(offset),
            high: _mm512_set1_epi32(m.multiplier >> 11),
            low: _mm512_set1_epi32(m.multiplier & 2047),
            shift,
            half: _mm512_set1_epi32(if shift > 0 { 1 << (shift - 1) } else { 0 }),
        }
    }

    /// 16 bytes, widened.
    #[inline]
    #[target_feature(enable = "avx512bw,avx512f")]
    fn scale(&self, x: __m128i) -> __m512i {
        let x = _mm512_add_epi32(_mm512_cvtepu8_epi32(x), self.offset);
        // (x q 2^20 + 2^30) >> 31 = x (q >> 11) + ((x (q & 2047) + 2^10) >> 11): |x| <= 255.
        let low = _mm512_srai_epi32(
            _mm512_add_epi32(_mm512_mullo_epi32(x, self.low), _mm512_set1_epi32(1 << 10)),
            11,
        );
        let v = _mm512_add_epi32(_mm512_mullo_epi32(x, self.high), low);
        if self.shift == 0 {
            return v;
        }
        // (v + 2^(r-1) - (v < 0)) >> r: |v| < 2^29, no overflow.
        let rounded = _mm512_add_epi32(_mm512_add_epi32(v, self.half), _mm512_srai_epi32(v, 31));
        _mm512_sra_epi32(rounded, _mm_cvtsi32_si128(self.shift as i32))
    }
}

/// The ADD.
///
/// # Safety
/// The CPU must have AVX-512F and BW; `a`, `b` and `out` must have one length.
#[target_feature(enable = "avx512bw,avx512f")]
unsafe fn add_avx512(params: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    let first = AddInput::new(params.input1_offset, params.input1);
    let second = AddInput::new(params.input2_offset, params.input2);
    let epilogue = Epilogue::new(&params.output_stage());
    for start in (0..a.len()).step_by(64) {
        let n = (a.len() - start).min(64);
        let mask = u64::MAX >> (64 - n);
        // SAFETY: the masked loads touch only the `n` bytes from `start` of `a` and `b`.
        let (x, y) = unsafe {
            (
                _mm512_maskz_loadu_epi8(mask, a[start..].as_ptr().cast()),
                _mm512_maskz_loadu_epi8(mask, b[start..].as_ptr().cast()),
            )
        };
        let quarters = [
            (
                _mm512_extracti32x4_epi32::<0>(x),
                _mm512_extracti32x4_epi32::<0>(y),
            ),
            (
                _mm512_extracti32x4_epi32::<1>(x),
                _mm512_extracti32x4_epi32::<1>(y),
            ),
            (
                _mm512_extracti32x4_epi32::<2>(x),
                _mm512_extracti32x4_epi32::<2>(y),
            ),
            (
                _mm512_extracti32x4_epi32::<3>(x),
                _mm512_extracti32x4_epi32::<3>(y),
            ),
        ];
        let mut sums = [_mm512_setzero_si512(); 4];
        for (s, (xj, yj)) in sums.iter_mut().zip(quarters) {
            *s = epilogue.apply(_mm512_add_epi32(first.scale(xj), second.scale(yj)));
        }
        let bytes = epilogue.clamp(pack_in_order(sums));
        // SAFETY: the masked store writes only the `n` bytes from `start` of `out`.
        unsafe { _mm512_mask_storeu_epi8(out[start..].as_mut_ptr().cast(), mask, bytes) };
    }
}

/// [`Requantize`] in vectors: `clamp(RDBPOT(SRDHM(v << left, q), r) + zero_point, min, max)`.
///
/// With `p = (v << left) q` in 64 bits, `t = SRDHM = floor((p + 2^30) / 2^31)` and RDBPOT's
/// closed form `(t + 2^(r-1) - (t < 0)) >> r`, both floors merge into one:
/// `floor((p + 2^30 + 2^(30+r) - 2^31 (p < -2^30) + z 2^(31+r)) / 2^(31+r))` (`t < 0` exactly
/// when `p + 2^30 < 0`; the zero point `z` rides along while `r <= 22`, where the sum stays
/// below 2^63). Per 64-bit lane: one `vpmuldq`, a compare, two adds and one shift; the even
/// and odd lanes are merged by one masked `vpshufd`. The clamp happens on the packed bytes.
///
/// The compare and its correction are skipped when the activation's minimum is at least the
/// zero point (every ReLU and ReLU6 layer): the correction only changes results with `t < 0`,
/// which are `<= 0` either way and clamp to the minimum (`floor((t + 2^(r-1)) / 2^r) <= 0`
/// for `t <= -1`). That is a third of the epilogue's instructions.
pub(crate) struct Epilogue {
    left: __m128i,
    shift_left: bool,
    multiplier: __m512i,
    constant: __m512i,
    negative: __m512i,
    negative_correction: __m512i,
    /// Whether results with `t < 0` can survive the clamp, so need RDBPOT's correction.
    correct_negative: bool,
    shift: __m128i,
    late_zero_point: Option<__m512i>,
    min: __m512i,
    max: __m512i,
    clamp: bool,
    /// The layer's proved [`FloatForm`](super::float_form::FloatForm): multiplier, offset,
    /// and the offset of negative accumulators where it differs.
    float: Option<(__m512, __m512, Option<__m512>)>,
}

impl Epilogue {
    #[target_feature(enable = "avx512bw,avx512f")]
    pub(crate) fn new(r: &Requantize) -> Self {
        let left = r.multiplier.shift.max(0);
        let right = (-r.multiplier.shift).max(0);
        let fold = right <= 22;
        let mut constant = 1i64 << 30;
        if right > 0 {
            constant += 1i64 << (30 + right);
        }
        if fold {
            constant += i64::from(r.zero_point) << (31 + right);
        }
        Epilogue {
            left: _mm_cvtsi32_si128(left),
            shift_left: left > 0,
            multiplier: _mm512_set1_epi32(r.multiplier.multiplier),
            constant: _mm512_set1_epi64(constant),
            negative: _mm512_set1_epi64(-(1i64 << 30)),
            negative_correction: _mm512_set1_epi64(if right > 0 { 1i64 << 31 } else { 0 }),
            correct_negative: right > 0 && i32::from(r.min) < r.zero_point,
            shift: _mm_cvtsi32_si128(31 + right),
            late_zero_point: (!fold).then(|| _mm512_set1_epi32(r.zero_point)),
            min: _mm512_set1_epi8(r.min as i8),
            max: _mm512_set1_epi8(r.max as i8),
            clamp: (r.min, r.max) != (0, 255),
            float: r.float.map(|f| {
                (
                    _mm512_set1_ps(f.multiplier),
                    _mm512_set1_ps(f.offset),
                    (f.negative_offset != f.offset).then(|| _mm512_set1_ps(f.negative_offset)),
                )
            }),
        }
    }

    /// The requantized value plus the zero point: exact before the clamp on the fixed-point form,
    /// equal after it on the float form (the callers clamp).
    #[inline]
    #[target_feature(enable = "avx512bw,avx512f")]
    pub(crate) fn apply(&self, v: __m512i) -> __m512i {
        if let Some((m, c, negative)) = self.float {
            // Rounding fixed in the instructions (not MXCSR's): to nearest for the conversion
            // and the FMA, down for the floor, as FloatForm proved.
            const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
            let c = match negative {
                Some(n) => _mm512_mask_blend_ps(_mm512_cmplt_epi32_mask(v, _mm512_setzero_si512()), c, n),
                None => c,
            };
            let x = _mm512_cvt_roundepi32_ps::<NEAREST>(v);
            let y = _mm512_fmadd_round_ps::<NEAREST>(x, m, c);
            return _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(y);
        }
        let v = if self.shift_left {
            _mm512_sll_epi32(v, self.left)
        } else {
            v
        };
        let even = _mm512_mul_epi32(v, self.multiplier);
        let odd = _mm512_mul_epi32(_mm512_srli_epi64::<32>(v), self.multiplier);
        let (even, odd) = (self.round(even), self.round(odd));
        // Odd lanes: the low half of each 64-bit result moves up.
        let merged = _mm512_mask_shuffle_epi32::<_MM_PERM_CDAB>(even, 0xAAAA, odd);
        match self.late_zero_point {
            Some(z) => _mm512_add_epi32(merged, z),
            None => merged,
        }
    }

    /// One 64-bit lane's `floor((p + constant - correction) / 2^(31+r))`.
    #[inline]
    #[target_feature(enable = "avx512bw,avx512f")]
    fn round(&self, p: __m512i) -> __m512i {
        let sum = _mm512_add_epi64(p, self.constant);
        if !self.correct_negative {
            return _mm512_sra_epi64(sum, self.shift);
        }
        let negative = _mm512_cmplt_epi64_mask(p, self.negative);
        let sum = _mm512_mask_sub_epi64(sum, negative, sum, self.negative_correction);
        _mm512_sra_epi64(sum, self.shift)
    }

    /// The activation range on packed bytes (saturating packs already clamp to [0, 255]).
    #[inline]
    #[target_feature(enable = "avx512bw,avx512f")]
    pub(crate) fn clamp(&self, bytes: __m512i) -> __m512i {
        if self.clamp {
            _mm512_min_epu8(_mm512_max_epu8(bytes, self.min), self.max)
        } else {
            bytes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::SplitMix64;
    use crate::quant::add::AddQuant;
    use crate::quant::fixed_point::QuantizedMultiplier;
    use crate::quant::kernels::StemWeights;
    use crate::quant::{Quant, kernels};

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
    fn the_epilogue_gives_the_scalar_requantization() {
        let Some(mut next) = values(10) else {
            return;
        };
        let mut floats = 0;
        let edges = [i32::MIN, i32::MIN + 1, -(1 << 30), -1, 0, 1, 1 << 30, i32::MAX];
        for case in 0..400 {
            let real = 2f64.powf(next(44) as f64 - 36.0) * (1.0 + next(1000) as f64 / 1000.0);
            // Half the cases are ReLU-like (zero point <= minimum), where the epilogue skips
            // RDBPOT's negative correction.
            let min = next(40) as u8;
            let requantize = Requantize {
                multiplier: QuantizedMultiplier::from_real(real),
                zero_point: if case % 2 == 0 {
                    next(256) as i32
                } else {
                    next(u64::from(min) + 1) as i32
                },
                min,
                max: 215 + next(41) as u8,
                float: None,
            }
            .with_float_form_if(next(2) == 0);
            floats += usize::from(requantize.float.is_some());
            // SAFETY: the CPU has AVX-512F and BW (`values` checked).
            let epilogue = unsafe { Epilogue::new(&requantize) };
            let v: [i32; 16] = std::array::from_fn(|i| match case % 4 {
                0 => edges[i % edges.len()].wrapping_add(next(3) as i32 - 1),
                1 => (next(1 << 32) as u32) as i32,
                // Next to a level boundary, where a float form could be off by one.
                3 => {
                    // (Saturating: the level of a tiny multiplier lies beyond the int32 range.)
                    (((f64::from(next(256) as u32) - f64::from(requantize.zero_point)) / real) as i32)
                        .saturating_add(next(5) as i32 - 2)
                }
                _ => next(1 << 20) as i32 - (1 << 19),
            });
            let mut lanes = [0i32; 16];
            // SAFETY: the CPU has AVX-512F and BW; the load and store touch 16 int32 each.
            unsafe {
                let q = epilogue.apply(_mm512_loadu_si512(v.as_ptr().cast()));
                let q = _mm512_max_epi32(
                    _mm512_min_epi32(q, _mm512_set1_epi32(i32::from(requantize.max))),
                    _mm512_set1_epi32(i32::from(requantize.min)),
                );
                _mm512_storeu_si512(lanes.as_mut_ptr().cast(), q);
            }
            for (l, &x) in lanes.iter().zip(&v) {
                assert_eq!(*l, i32::from(requantize.apply(x)), "{x} {requantize:?}");
            }
        }
        // The float output stage was drawn often enough to be tested.
        assert!(floats > 40, "{floats}");
    }

    #[test]
    fn gemm_gives_the_portable_bytes() {
        let Some(mut next) = values(11) else {
            return;
        };
        // Partial groups of four (k = 3, 27, 37; also under full 4 x 64 tiles), partial vectors and blocks (o = 1, 8, 17, 70,
        // 1001), row counts around the tile of 4, and multipliers above one (left shifts).
        for (k, o, rows) in [
            (3, 8, 5),
            (27, 32, 9),
            (37, 17, 4),
            (64, 70, 7),
            (256, 1001, 3),
            (1024, 64, 13),
            (8, 1, 1),
            (96, 24, 12),
            (37, 128, 8),
        ] {
            for case in 0..4 {
                let a: Vec<u8> = (0..rows * k).map(|_| next(256) as u8).collect();
                let w: Vec<u8> = (0..o * k).map(|_| next(256) as u8).collect();
                let bias: Vec<i32> = (0..o).map(|_| next(200_001) as i32 - 100_000).collect();
                let (zw, zx) = (next(256) as i32, next(256) as i32);
                let weights = GemmWeights::new(&w, o, k, zw, zx, &bias);
                let scale = [1e-5, 3e-4, 0.02, 40.0][case];
                // Half the cases are ReLU-like (zero point <= minimum), where the epilogue skips
                // RDBPOT's negative correction.
                let min = next(40) as u8;
                let requantize = Requantize {
                    multiplier: QuantizedMultiplier::from_real(scale / (k as f64).sqrt()),
                    zero_point: if case % 2 == 0 {
                        next(256) as i32
                    } else {
                        next(u64::from(min) + 1) as i32
                    },
                    min,
                    max: 215 + next(41) as u8,
                    float: None,
                }
                .with_float_form_if(next(2) == 0);
                let mut portable = vec![0; rows * o];
                kernels::gemm(&a, rows, &weights, &requantize, &mut portable);
                let mut vnni = vec![0; rows * o];
                gemm(&a, rows, &weights, &requantize, &mut vnni);
                assert_eq!(vnni, portable, "k {k} o {o} rows {rows} case {case}");
            }
        }
    }

    #[test]
    fn stem_gives_the_im2col_gemm_bytes() {
        let Some(mut next) = values(14) else {
            return;
        };
        // Output channel counts 8-64 (partial and full vectors); strides 1 and 2 on even and
        // odd sizes (SAME padding on both sides, or only bottom/right); row ranges.
        for (o, size, stride) in [
            (32usize, 9usize, 2usize),
            (32, 8, 2),
            (8, 7, 1),
            (16, 6, 2),
            (24, 5, 1),
            (48, 10, 2),
            (64, 3, 1),
            (17, 4, 2),
        ] {
            for case in 0..3 {
                let out_size = size.div_ceil(stride);
                let total = ((out_size - 1) * stride + 3).saturating_sub(size);
                let g = Geometry {
                    kernel: 3,
                    stride,
                    in_h: size,
                    in_w: size,
                    in_c: 3,
                    out_h: out_size,
                    out_w: out_size,
                    out_c: o,
                    pad_top: total / 2,
                    pad_left: total / 2,
                };
                let image: Vec<u8> = (0..g.input_len()).map(|_| next(256) as u8).collect();
                let weight: Vec<u8> = (0..o * 27).map(|_| next(256) as u8).collect();
                let bias: Vec<i32> = (0..o).map(|_| next(200_001) as i32 - 100_000).collect();
                // Zero points 0 and 255 reach `w - zw = 255` and -255, the ends of the rest.
                let (zw, zx) = ([0, 255, next(256) as i32][case], next(256) as i32);
                let gemm = GemmWeights::new(&weight, o, 27, zw, zx, &bias);
                let stem_weights = StemWeights::new(&gemm, &weight).unwrap();
                // Half the cases are ReLU-like (zero point <= minimum), where the epilogue skips
                // RDBPOT's negative correction.
                let min = next(40) as u8;
                let requantize = Requantize {
                    multiplier: QuantizedMultiplier::from_real([1e-4, 3e-3, 0.5][case]),
                    zero_point: if case % 2 == 0 {
                        next(256) as i32
                    } else {
                        next(u64::from(min) + 1) as i32
                    },
                    min,
                    max: 215 + next(41) as u8,
                    float: None,
                }
                .with_float_form_if(next(2) == 0);
                let mut cols = Vec::new();
                kernels::im2col(&image, &g, zx as u8, 0..g.out_h, &mut cols);
                let mut portable = vec![0; g.output_len()];
                kernels::gemm(&cols, g.out_h * g.out_w, &gemm, &requantize, &mut portable);
                let mut ours = vec![0; g.output_len()];
                stem(&image, &g, &stem_weights, zx, &requantize, 0..g.out_h, &mut ours);
                assert_eq!(ours, portable, "o {o} size {size} stride {stride} case {case}");
                let from = g.out_h / 2;
                let row = g.out_w * o;
                let mut part = vec![0; (g.out_h - from) * row];
                stem(
                    &image,
                    &g,
                    &stem_weights,
                    zx,
                    &requantize,
                    from..g.out_h,
                    &mut part,
                );
                assert_eq!(part, portable[from * row..], "o {o} rows {from}..");
            }
        }
    }

    #[test]
    fn corrections_are_the_row_sums_times_the_factor() {
        let Some(mut next) = values(15) else {
            return;
        };
        for k in [1usize, 3, 27, 32, 64, 65, 200, 1024] {
            for rows in [1usize, 7, 8, 9, 16, 21] {
                let a: Vec<u8> = (0..rows * k).map(|_| next(256) as u8).collect();
                let factor = next(256) as i32 - 128;
                let expected: Vec<i32> = kernels::row_sums(&a, k).iter().map(|s| factor * s).collect();
                // SAFETY: the CPU has AVX-512F and BW (`values` checked).
                let ours = unsafe { corrections(&a, k, factor) };
                assert_eq!(ours, expected, "k {k} rows {rows}");
            }
        }
    }

    #[test]
    fn depthwise_gives_the_portable_bytes() {
        let Some(mut next) = values(12) else {
            return;
        };
        // Channel counts with partial vectors and blocks; strides 1 and 2 on even and odd
        // sizes (SAME padding on both sides, or only bottom/right); row ranges.
        let mut fixed = 0;
        for (c, size, stride, kernel) in [
            (8usize, 9usize, 1usize, 3usize),
            (17, 8, 2, 3),
            (32, 7, 2, 3),
            (32, 7, 1, 3),
            (32, 8, 1, 3),
            (40, 6, 1, 5),
            (64, 5, 1, 3),
            (144, 6, 2, 3),
            (200, 4, 1, 3),
            // Vertical triples: 4 and 8 pixels per vector, channels that do not divide 64,
            // partial last blocks, both strides, odd widths.
            (16, 9, 1, 3),
            (16, 8, 2, 3),
            (24, 7, 1, 3),
            (96, 7, 1, 3),
            (64, 9, 2, 3),
            (128, 3, 1, 3),
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
            let zx = next(256) as i32;
            // Random weights against a random zero point leave many vectors with weights
            // outside an int8 (fix-ups); zero point 128 leaves none; 0 and 255 reach
            // `w - zw = 255` and -255, the ends of the rest.
            let zw = match (c, stride, size) {
                (32, 1, 8) => 128,
                (144, ..) => 0,
                (200, ..) => 255,
                _ => next(256) as i32,
            };
            let weights = DepthwiseWeights::new(&weight, c, kernel, zw, zx, &bias);
            let fixes = weights.triples.as_ref().map_or(0, |t| t.fixes.len());
            if zw == 128 || kernel != 3 {
                assert_eq!(fixes, 0, "c {c} zw {zw}");
            }
            fixed += fixes;
            let requantize = Requantize {
                multiplier: QuantizedMultiplier::from_real(0.002),
                zero_point: next(256) as i32,
                min: next(30) as u8,
                max: 225 + next(31) as u8,
                float: None,
            }
            .with_float_form_if(next(2) == 0);
            let row = g.out_w * c;
            let mut portable = vec![0; g.output_len()];
            kernels::depthwise(&image, &g, &weights, zx, &requantize, 0..g.out_h, &mut portable);
            let mut avx512 = vec![0; g.output_len()];
            depthwise(&image, &g, &weights, zx, &requantize, 0..g.out_h, &mut avx512);
            assert_eq!(
                avx512, portable,
                "c {c} size {size} stride {stride} kernel {kernel}"
            );
            // The last rows alone.
            let from = g.out_h / 2;
            let mut part = vec![0; (g.out_h - from) * row];
            depthwise(&image, &g, &weights, zx, &requantize, from..g.out_h, &mut part);
            assert_eq!(part, portable[from * row..], "c {c} rows {from}..");
        }
        assert!(fixed > 0, "no case exercised the fix-up vectors");
    }

    #[test]
    fn add_gives_the_portable_bytes() {
        let Some(mut next) = values(13) else {
            return;
        };
        for case in 0..50 {
            let mut quant = || Quant {
                scale: 0.01 + next(1000) as f32 / 1000.0,
                zero_point: next(256) as i32,
            };
            let add = AddQuant {
                input1: quant(),
                input2: quant(),
                output: quant(),
            };
            let Some(params) = AddParams::new(add, next(30) as u8, 225 + next(31) as u8) else {
                continue;
            };
            let n = 1 + next(300) as usize;
            let a: Vec<u8> = (0..n).map(|_| next(256) as u8).collect();
            let b: Vec<u8> = (0..n).map(|_| next(256) as u8).collect();
            let mut expected = vec![0; n];
            params.run(&a, &b, &mut expected);
            let mut ours = vec![0; n];
            super::add(&params, &a, &b, &mut ours);
            assert_eq!(ours, expected, "case {case} {params:?}");
        }
    }
}

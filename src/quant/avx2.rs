//! The AVX2 kernels, for x86-64 CPUs without AVX-512 VNNI: the u8 x s8 GEMM of
//! [`super::kernels::gemm`], the depthwise convolution of [`super::kernels::depthwise`] and v2's
//! residual ADD, the same bytes, with TFLite's requantization in 256-bit integer vectors.
//!
//! **GEMM.** AVX2 has no u8 x s8 dot product that cannot saturate: `vpmaddubsw` sums two u8 x s8
//! products into an i16 and saturates (255 x 127 x 2 > 32767). So the kernel reads the same
//! packed weights as the VNNI one (`[block of 64][groups][64][4]` int8, one 32-bit lane per output
//! channel) and splits each group of four into its even and odd bytes, sign-extended to i16
//! (`w << 8 >> 8` and `w >> 8`, arithmetic), the broadcast input into its even and odd bytes,
//! zero-extended; two `vpmaddwd` (i16 x i16, pairs summed into i32, exact: |x w| <= 255 x 128)
//! then give exactly what one `vpdpbusd` gives. A tile is 4 rows x 16 output channels:
//! 8 accumulators, 4 weight halves and 2 input halves, 14 of the 16 registers.
//!
//! **Depthwise** and **ADD**: as in [`super::vnni`], on 256-bit vectors (`vpmaddwd` instead of
//! `vpdpwssd`; the depthwise weights packed in blocks of 32 channels,
//! [`super::kernels::PackedDepthwise`]).
//!
//! **Requantization** ([`Epilogue`]): AVX2 has `vpmuldq` but no 64-bit arithmetic shift. With
//! `p` the 64-bit product plus the rounding constants (as in [`super::vnni`]) and `s = 31 + r`
//! the total right shift, `floor(p / 2^s)` is the high dword of `p` shifted right
//! arithmetically by `s - 32` when `s >= 32`, and the low dword of `p >> 31` (logical) when
//! `s = 31`: the result fits in 32 bits, whose bits are then all bits of `p`.
//!
//! Sources: Intel's Intrinsics Guide for the instructions; the arithmetic is TFLite's (module
//! [`super`]).

use std::arch::x86_64::*;
use std::ops::Range;

use super::add::AddParams;
use super::fixed_point::QuantizedMultiplier;
use super::kernels::{DepthwiseWeights, GROUP, GemmWeights, Geometry, LANES, Requantize, TapPointers};

/// int32 lanes per vector.
const WIDTH: usize = 8;
/// Output channels per tile: two vectors.
const TILE_COLUMNS: usize = 2 * WIDTH;
/// Rows per tile.
const ROWS: usize = 4;

/// Whether this CPU runs the kernels of this module.
pub(crate) fn available() -> bool {
    // FMA for the float output stage; every AVX2 CPU of Intel and AMD has it.
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// [`super::kernels::gemm`]'s contract and bytes. Panics on a CPU without AVX2.
pub(crate) fn gemm(a: &[u8], rows: usize, w: &GemmWeights, requantize: &Requantize, out: &mut [u8]) {
    assert!(available(), "this CPU lacks AVX2");
    assert_eq!(a.len(), rows * w.k);
    assert_eq!(out.len(), rows * w.o);
    assert_eq!(w.packed.len(), w.groups * w.o_pad * GROUP);
    // Tiles of 16 channels read whole vectors up to o_pad.
    assert!(w.o <= w.o_pad && w.o_pad.is_multiple_of(TILE_COLUMNS) && w.column_bias.len() == w.o);
    const { assert!(LANES.is_multiple_of(TILE_COLUMNS)) };
    // SAFETY: the CPU has AVX2 (asserted above), the feature `gemm_avx2` is compiled for; the
    // shapes it relies on are asserted above.
    unsafe { gemm_avx2(a, rows, w, requantize, out) }
}

/// The GEMM.
///
/// # Safety
/// The CPU must have AVX2, and the shapes must be those [`gemm`] asserts.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2(a: &[u8], rows: usize, w: &GemmWeights, requantize: &Requantize, out: &mut [u8]) {
    let k = w.k;
    let corrections: Vec<i32> = super::kernels::row_sums(a, k)
        .into_iter()
        .map(|s| w.row_factor * s)
        .collect();
    let epilogue = Epilogue::new(requantize);
    for start in (0..w.o).step_by(TILE_COLUMNS) {
        let width = TILE_COLUMNS.min(w.o - start);
        let mut bias = [0i32; TILE_COLUMNS];
        bias[..width].copy_from_slice(&w.column_bias[start..start + width]);
        let tile = Tile {
            a: a.as_ptr(),
            k,
            weights: w.packed[w.column(start).0..].as_ptr(),
            weight_stride: w.column(start).1,
            bias,
            epilogue: &epilogue,
            width,
            o: w.o,
        };
        let mut row = 0;
        while row < rows {
            let count = ROWS.min(rows - row);
            // SAFETY: rows [row, row + count) lie inside `a`, `corrections` and `out` (shapes
            // asserted by `gemm`), output channels [start, start + width) inside `o`, and the
            // 16 channels from `start` inside every group of `packed` (o_pad is a multiple of 16).
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

/// One block of 16 output channels (the last may hold fewer), any rows.
struct Tile<'a> {
    a: *const u8,
    k: usize,
    /// The block's first channel in group 0 of the packed weights.
    weights: *const i8,
    /// Bytes from one group to the next ([`GemmWeights::column`]).
    weight_stride: usize,
    /// The block's column constants, zero past `width`.
    bias: [i32; TILE_COLUMNS],
    epilogue: &'a Epilogue,
    width: usize,
    o: usize,
}

impl Tile<'_> {
    /// Rows `[row, row + R)` of this block into `out` (the first row's first channel of the
    /// block; rows `o` apart).
    ///
    /// # Safety
    /// The CPU must have AVX2; rows `[row, row + R)` of `a` (k bytes each), `width` output
    /// channels of those rows at `out` and 16 channels of every group at `weights` must be valid.
    #[inline(never)] // keeps the epilogue's constants out of the k loop's registers (see vnni)
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run<const R: usize>(&self, row: usize, corrections: &[i32], out: *mut u8) {
        let k = self.k;
        // SAFETY: rows [row, row + R) of `a` are valid (the caller's contract).
        let rows: [*const u8; R] = std::array::from_fn(|i| unsafe { self.a.add((row + i) * k) });
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        let full = k / GROUP;
        let mut weights = self.weights;
        for group in 0..full {
            // SAFETY: group < k / 4, so bytes [4 group, 4 group + 4) lie inside each row.
            let x = rows.map(|r| unsafe { r.add(group * GROUP).cast::<i32>().read_unaligned() });
            // SAFETY: `weights` is this group's block (16 channels inside o_pad).
            unsafe { step(weights, x, &mut acc) };
            // SAFETY: at most one past the last group, which is only read if k % 4 != 0.
            weights = unsafe { weights.add(self.weight_stride) };
        }
        if full * GROUP < k {
            // The last inputs, zero past k (the packed weights are zero there too).
            let x = rows.map(|r| {
                let mut bytes = [0u8; GROUP];
                for (i, b) in bytes[..k - full * GROUP].iter_mut().enumerate() {
                    // SAFETY: full * 4 + i < k: inside the row.
                    *b = unsafe { *r.add(full * GROUP + i) };
                }
                i32::from_le_bytes(bytes)
            });
            // SAFETY: as above, for the last (partial) group.
            unsafe { step(weights, x, &mut acc) };
        }
        // SAFETY: `bias` holds 16 int32.
        let bias = unsafe {
            [
                _mm256_loadu_si256(self.bias.as_ptr().cast()),
                _mm256_loadu_si256(self.bias[WIDTH..].as_ptr().cast()),
            ]
        };
        for (i, acc) in acc.iter().enumerate() {
            let correction = _mm256_set1_epi32(corrections[i]);
            let q0 = self
                .epilogue
                .apply(_mm256_sub_epi32(_mm256_add_epi32(acc[0], bias[0]), correction));
            let q1 = self
                .epilogue
                .apply(_mm256_sub_epi32(_mm256_add_epi32(acc[1], bias[1]), correction));
            let bytes = self.epilogue.clamp(pack_16(q0, q1));
            // SAFETY: row `row + i` has `width` channels at `out + i o`.
            unsafe { store(out.add(i * self.o), self.width, bytes) };
        }
    }
}

/// One group of four inputs of `R` rows (`x`, their four bytes as one int32 each) times the 16
/// channels of packed weights at `weights`, added to `acc`: what `vpdpbusd` computes, as two
/// exact `vpmaddwd` on the even and odd bytes.
///
/// # Safety
/// The CPU must have AVX2; 64 bytes at `weights` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn step<const R: usize>(weights: *const i8, x: [i32; R], acc: &mut [[__m256i; 2]; R]) {
    let low_bytes = _mm256_set1_epi16(0x00ff);
    let mut even = [_mm256_setzero_si256(); 2];
    let mut odd = [_mm256_setzero_si256(); 2];
    for j in 0..2 {
        // SAFETY: vector j lies inside the 64 readable bytes (the caller's contract).
        let w = unsafe { _mm256_loadu_si256(weights.add(j * WIDTH * GROUP).cast()) };
        even[j] = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(w));
        odd[j] = _mm256_srai_epi16::<8>(w);
    }
    for (acc, x) in acc.iter_mut().zip(x) {
        let x = _mm256_set1_epi32(x);
        let (x_even, x_odd) = (_mm256_and_si256(x, low_bytes), _mm256_srli_epi16::<8>(x));
        for j in 0..2 {
            let sum = _mm256_add_epi32(
                _mm256_madd_epi16(x_even, even[j]),
                _mm256_madd_epi16(x_odd, odd[j]),
            );
            acc[j] = _mm256_add_epi32(acc[j], sum);
        }
    }
}

/// Two vectors of int32 (channels 0-7 and 8-15) to 16 bytes in channel order, saturated to
/// [0, 255].
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pack_16(a: __m256i, b: __m256i) -> __m128i {
    // packs interleaves per 128-bit lane: [a 0-3, b 0-3 | a 4-7, b 4-7]; reorder the quadwords.
    let words = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(a, b));
    _mm_packus_epi16(
        _mm256_castsi256_si128(words),
        _mm256_extracti128_si256::<1>(words),
    )
}

/// Stores the first `n` (at most 16) bytes of `bytes` at `dst`.
///
/// # Safety
/// `n` bytes at `dst` must be writable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store(dst: *mut u8, n: usize, bytes: __m128i) {
    if n == 16 {
        // SAFETY: 16 bytes at `dst` are writable (the caller's contract).
        unsafe { _mm_storeu_si128(dst.cast(), bytes) };
    } else {
        let mut buffer = [0u8; 16];
        // SAFETY: `buffer` holds 16 bytes.
        unsafe { _mm_storeu_si128(buffer.as_mut_ptr().cast(), bytes) };
        // SAFETY: n <= 16 bytes from `buffer` to `dst`, writable (the caller's contract).
        unsafe { std::ptr::copy_nonoverlapping(buffer.as_ptr(), dst, n) };
    }
}

/// Up to 32 bytes from `src`, zero past `n`.
///
/// # Safety
/// `n` (at most 32) bytes at `src` must be readable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load_32(src: *const u8, n: usize) -> __m256i {
    if n == 32 {
        // SAFETY: 32 readable bytes (the caller's contract).
        unsafe { _mm256_loadu_si256(src.cast()) }
    } else {
        let mut buffer = [0u8; 32];
        // SAFETY: n <= 32 readable bytes (the caller's contract) into `buffer`.
        unsafe { std::ptr::copy_nonoverlapping(src, buffer.as_mut_ptr(), n) };
        // SAFETY: `buffer` holds 32 bytes.
        unsafe { _mm256_loadu_si256(buffer.as_ptr().cast()) }
    }
}

/// Stores the first `n` (at most 32) bytes of `bytes` at `dst`.
///
/// # Safety
/// `n` bytes at `dst` must be writable.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_32(dst: *mut u8, n: usize, bytes: __m256i) {
    if n == 32 {
        // SAFETY: 32 writable bytes (the caller's contract).
        unsafe { _mm256_storeu_si256(dst.cast(), bytes) };
    } else {
        let mut buffer = [0u8; 32];
        // SAFETY: `buffer` holds 32 bytes.
        unsafe { _mm256_storeu_si256(buffer.as_mut_ptr().cast(), bytes) };
        // SAFETY: n <= 32 bytes from `buffer` to `dst`, writable (the caller's contract).
        unsafe { std::ptr::copy_nonoverlapping(buffer.as_ptr(), dst, n) };
    }
}

/// `packus_epi16(packs_epi32(q0, q1), packs_epi32(q2, q3))`: int32 to uint8 with saturation,
/// in the per-128-bit-lane order of the packs.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pack_lanes(q: [__m256i; 4]) -> __m256i {
    _mm256_packus_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]))
}

/// [`super::kernels::depthwise`]'s contract and bytes. Panics on a CPU without AVX2.
pub(crate) fn depthwise(
    image: &[u8],
    g: &Geometry,
    w: &DepthwiseWeights,
    _input_zero_point: i32,
    requantize: &Requantize,
    rows: Range<usize>,
    out: &mut [u8],
) {
    assert!(available(), "this CPU lacks AVX2");
    let p = &w.narrow;
    let blocks = g.in_c.div_ceil(p.block());
    let pairs = (g.kernel * g.kernel).div_ceil(2);
    assert_eq!(image.len(), g.input_len());
    assert!(rows.end <= g.out_h && out.len() == rows.len() * g.out_w * g.in_c);
    assert!(g.in_c == g.out_c && p.lanes == WIDTH);
    assert!(
        p.pairs.len() == blocks * pairs * 32 && p.bias.len() == blocks * 32 && p.pad.len() == blocks * 32
    );
    // SAFETY: the CPU has AVX2 (asserted above), the feature `depthwise_avx2` is compiled for;
    // the shapes it relies on are asserted above.
    unsafe { depthwise_avx2(image, g, w, requantize, rows, out) }
}

/// The depthwise convolution.
///
/// # Safety
/// The CPU must have AVX2, and the shapes must be those [`depthwise`] asserts.
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_avx2(
    image: &[u8],
    g: &Geometry,
    w: &DepthwiseWeights,
    requantize: &Requantize,
    rows: Range<usize>,
    out: &mut [u8],
) {
    let p = &w.narrow;
    let c = g.in_c;
    let taps = g.kernel * g.kernel;
    let pairs = taps.div_ceil(2);
    let epilogue = Epilogue::new(requantize);
    let zero = _mm256_setzero_si256();
    let mut tap_pointers = TapPointers::new(image, g, p.pad.as_ptr());
    let interior_y = tap_pointers.interior_y();
    let first = rows.start;
    for oy in rows {
        let inside_y = interior_y.contains(&oy);
        for ox in 0..g.out_w {
            tap_pointers.set(oy, ox, inside_y);
            let pointers = &tap_pointers.pointers;
            let dst = &mut out[((oy - first) * g.out_w + ox) * c..][..c];
            for (b, start) in (0..c).step_by(32).enumerate() {
                let n = (c - start).min(32);
                let weights = &p.pairs[b * pairs * 32..][..pairs * 32];
                let bias = &p.bias[b * 32..][..32];
                let mut acc = [zero; 4];
                for (j, a) in acc.iter_mut().enumerate() {
                    // SAFETY: `bias` holds 32 int32: vector j is inside.
                    *a = unsafe { _mm256_loadu_si256(bias[WIDTH * j..].as_ptr().cast()) };
                }
                for pair in 0..pairs {
                    // SAFETY: every pointer is a pixel of `image` or `pad`, both holding the
                    // `n` channels from `start` (`pad` has whole blocks); the second tap of an
                    // odd last pair is the padding pixel, times zero weights.
                    let (x0, x1) = unsafe {
                        (
                            load_32(pointers[2 * pair].add(start), n),
                            if 2 * pair + 1 < taps {
                                load_32(pointers[2 * pair + 1].add(start), n)
                            } else {
                                zero
                            },
                        )
                    };
                    let low = _mm256_unpacklo_epi8(x0, x1);
                    let high = _mm256_unpackhi_epi8(x0, x1);
                    let x = [
                        _mm256_unpacklo_epi8(low, zero),
                        _mm256_unpackhi_epi8(low, zero),
                        _mm256_unpacklo_epi8(high, zero),
                        _mm256_unpackhi_epi8(high, zero),
                    ];
                    let weights = &weights[pair * 32..][..32];
                    for (j, (a, x)) in acc.iter_mut().zip(x).enumerate() {
                        // SAFETY: `weights` holds 32 int32: vector j is inside.
                        let w = unsafe { _mm256_loadu_si256(weights[WIDTH * j..].as_ptr().cast()) };
                        *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x, w));
                    }
                }
                for a in &mut acc {
                    *a = epilogue.apply(*a);
                }
                let bytes = epilogue.clamp_32(pack_lanes(acc));
                // SAFETY: the `n` channels from `start` of `dst` exist.
                unsafe { store_32(dst[start..].as_mut_ptr(), n, bytes) };
            }
        }
    }
}

/// [`AddParams::run`]'s bytes. Panics on a CPU without AVX2.
pub(crate) fn add(params: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    assert!(available(), "this CPU lacks AVX2");
    assert!(a.len() == b.len() && a.len() == out.len());
    assert!(params.input1.shift <= 0 && params.input2.shift <= 0 && params.output.shift <= 0);
    // SAFETY: the CPU has AVX2 (asserted above); the slices have one length.
    unsafe { add_avx2(params, a, b, out) }
}

/// One input of ADD: `RDBPOT(SRDHM((x - z) << 20, q), r)` per lane (see [`super::vnni`]).
struct AddInput {
    offset: __m256i,
    high: __m256i,
    low: __m256i,
    shift: __m128i,
    shifts: bool,
    half: __m256i,
}

impl AddInput {
    #[target_feature(enable = "avx2,fma")]
    fn new(offset: i32, m: QuantizedMultiplier) -> Self {
        let shift = -m.shift;
        AddInput {
            offset: _mm256_set1_epi32(offset),
            high: _mm256_set1_epi32(m.multiplier >> 11),
            low: _mm256_set1_epi32(m.multiplier & 2047),
            shift: _mm_cvtsi32_si128(shift),
            shifts: shift > 0,
            half: _mm256_set1_epi32(if shift > 0 { 1 << (shift - 1) } else { 0 }),
        }
    }

    /// 8 bytes, widened.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn scale(&self, x: __m128i) -> __m256i {
        let x = _mm256_add_epi32(_mm256_cvtepu8_epi32(x), self.offset);
        // (x q 2^20 + 2^30) >> 31 = x (q >> 11) + ((x (q & 2047) + 2^10) >> 11): |x| <= 255.
        let low = _mm256_srai_epi32::<11>(_mm256_add_epi32(
            _mm256_mullo_epi32(x, self.low),
            _mm256_set1_epi32(1 << 10),
        ));
        let v = _mm256_add_epi32(_mm256_mullo_epi32(x, self.high), low);
        if !self.shifts {
            return v;
        }
        // (v + 2^(r-1) - (v < 0)) >> r: |v| < 2^29, no overflow.
        let rounded = _mm256_add_epi32(_mm256_add_epi32(v, self.half), _mm256_srai_epi32::<31>(v));
        _mm256_sra_epi32(rounded, self.shift)
    }
}

/// The ADD.
///
/// # Safety
/// The CPU must have AVX2; `a`, `b` and `out` must have one length.
#[target_feature(enable = "avx2,fma")]
unsafe fn add_avx2(params: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    let first = AddInput::new(params.input1_offset, params.input1);
    let second = AddInput::new(params.input2_offset, params.input2);
    let epilogue = Epilogue::new(&params.output_stage());
    // packs/packus leave dword 4 L + j holding the bytes of quarter j's lane half L.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for start in (0..a.len()).step_by(32) {
        let n = (a.len() - start).min(32);
        // SAFETY: `n` bytes from `start` of `a` and `b` are readable.
        let (x, y) = unsafe { (load_32(a[start..].as_ptr(), n), load_32(b[start..].as_ptr(), n)) };
        let halves = [
            (_mm256_castsi256_si128(x), _mm256_castsi256_si128(y)),
            (_mm256_extracti128_si256::<1>(x), _mm256_extracti128_si256::<1>(y)),
        ];
        let mut sums = [_mm256_setzero_si256(); 4];
        for (h, (xh, yh)) in halves.into_iter().enumerate() {
            for (q, (xq, yq)) in [(xh, yh), (_mm_srli_si128::<8>(xh), _mm_srli_si128::<8>(yh))]
                .into_iter()
                .enumerate()
            {
                sums[2 * h + q] = epilogue.apply(_mm256_add_epi32(first.scale(xq), second.scale(yq)));
            }
        }
        let bytes = epilogue.clamp_32(_mm256_permutevar8x32_epi32(pack_lanes(sums), order));
        // SAFETY: `n` bytes from `start` of `out` are writable.
        unsafe { store_32(out[start..].as_mut_ptr(), n, bytes) };
    }
}

/// [`Requantize`] in 256-bit vectors: `clamp(RDBPOT(SRDHM(v << left, q), r) + zero_point, min,
/// max)`, the rounding constants merged as in [`super::vnni`]'s epilogue, the 64-bit shift as in
/// the module documentation; RDBPOT's negative correction skipped where the clamp makes it
/// moot, as there.
pub(crate) struct Epilogue {
    left: __m128i,
    shift_left: bool,
    multiplier: __m256i,
    constant: __m256i,
    negative: __m256i,
    negative_correction: __m256i,
    /// Whether results with `t < 0` can survive the clamp, so need RDBPOT's correction.
    correct_negative: bool,
    /// `s - 32` when `s >= 32` (`high`), else unused (`s = 31`).
    high_shift: __m128i,
    high: bool,
    late_zero_point: Option<__m256i>,
    min: __m256i,
    max: __m256i,
    clamp: bool,
    /// The layer's proved [`FloatForm`](super::float_form::FloatForm): multiplier, offset,
    /// and the offset of negative accumulators where it differs.
    float: Option<(__m256, __m256, Option<__m256>)>,
}

impl Epilogue {
    #[target_feature(enable = "avx2,fma")]
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
            multiplier: _mm256_set1_epi32(r.multiplier.multiplier),
            constant: _mm256_set1_epi64x(constant),
            negative: _mm256_set1_epi64x(-(1i64 << 30)),
            negative_correction: _mm256_set1_epi64x(if right > 0 { 1i64 << 31 } else { 0 }),
            correct_negative: right > 0 && i32::from(r.min) < r.zero_point,
            high_shift: _mm_cvtsi32_si128((right - 1).max(0)),
            high: right > 0,
            late_zero_point: (!fold).then(|| _mm256_set1_epi32(r.zero_point)),
            min: _mm256_set1_epi8(r.min as i8),
            max: _mm256_set1_epi8(r.max as i8),
            clamp: (r.min, r.max) != (0, 255),
            float: r.float.map(|f| {
                (
                    _mm256_set1_ps(f.multiplier),
                    _mm256_set1_ps(f.offset),
                    (f.negative_offset != f.offset).then(|| _mm256_set1_ps(f.negative_offset)),
                )
            }),
        }
    }

    /// The requantized value plus the zero point: exact before the clamp on the fixed-point form,
    /// equal after it on the float form (the callers clamp).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn apply(&self, v: __m256i) -> __m256i {
        if let Some((m, c, negative)) = self.float {
            // The conversion and the FMA round to nearest (MXCSR's default, which nothing in
            // this program changes), as FloatForm proved; then the floor, exactly.
            let c = match negative {
                Some(n) => _mm256_blendv_ps(c, n, _mm256_castsi256_ps(v)),
                None => c,
            };
            let y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), m, c);
            return _mm256_cvttps_epi32(_mm256_round_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(
                y,
            ));
        }
        let v = if self.shift_left {
            _mm256_sll_epi32(v, self.left)
        } else {
            v
        };
        let even = self.sum(_mm256_mul_epi32(v, self.multiplier));
        let odd = self.sum(_mm256_mul_epi32(_mm256_srli_epi64::<32>(v), self.multiplier));
        let merged = if self.high {
            // floor(p / 2^s) = (high dword of p) >> (s - 32): the results sit in the odd dwords.
            let even = _mm256_sra_epi32(even, self.high_shift);
            let odd = _mm256_sra_epi32(odd, self.high_shift);
            _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd)
        } else {
            // s = 31: bits 31..62 of p, in the even dwords of p >> 31 and the odd ones of p << 1.
            _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<31>(even), _mm256_slli_epi64::<1>(odd))
        };
        match self.late_zero_point {
            Some(z) => _mm256_add_epi32(merged, z),
            None => merged,
        }
    }

    /// One 64-bit lane's `p + constant - correction`, the numerator of the final floor.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn sum(&self, p: __m256i) -> __m256i {
        let sum = _mm256_add_epi64(p, self.constant);
        if !self.correct_negative {
            return sum;
        }
        let negative = _mm256_cmpgt_epi64(self.negative, p);
        _mm256_sub_epi64(sum, _mm256_and_si256(negative, self.negative_correction))
    }

    /// The activation range on 16 packed bytes (saturating packs already clamp to [0, 255]).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn clamp(&self, bytes: __m128i) -> __m128i {
        if self.clamp {
            _mm_min_epu8(
                _mm_max_epu8(bytes, _mm256_castsi256_si128(self.min)),
                _mm256_castsi256_si128(self.max),
            )
        } else {
            bytes
        }
    }

    /// The activation range on 32 packed bytes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn clamp_32(&self, bytes: __m256i) -> __m256i {
        if self.clamp {
            _mm256_min_epu8(_mm256_max_epu8(bytes, self.min), self.max)
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
    use crate::quant::{Quant, kernels};

    /// A seeded generator of values below `n`; `None`, with a note, on a CPU without AVX2.
    fn values(seed: u64) -> Option<impl FnMut(u64) -> u64> {
        if !available() {
            println!("skipped: this CPU lacks AVX2");
            return None;
        }
        let mut rng = SplitMix64(seed);
        Some(move |n| rng.next_u64() % n)
    }

    #[test]
    fn the_epilogue_gives_the_scalar_requantization() {
        let Some(mut next) = values(20) else {
            return;
        };
        let mut floats = 0;
        let edges = [i32::MIN, i32::MIN + 1, -(1 << 30), -1, 0, 1, 1 << 30, i32::MAX];
        for case in 0..600 {
            // Multipliers from 2^-36 to 2^8: right shifts up to 35 (past the folded range) and
            // left shifts.
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
            // SAFETY: the CPU has AVX2 (`values` checked).
            let epilogue = unsafe { Epilogue::new(&requantize) };
            let v: [i32; 8] = std::array::from_fn(|i| match case % 4 {
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
            let mut lanes = [0i32; 8];
            // SAFETY: the CPU has AVX2; the load and store touch 8 int32 each.
            unsafe {
                let q = epilogue.apply(_mm256_loadu_si256(v.as_ptr().cast()));
                let q = _mm256_max_epi32(
                    _mm256_min_epi32(q, _mm256_set1_epi32(i32::from(requantize.max))),
                    _mm256_set1_epi32(i32::from(requantize.min)),
                );
                _mm256_storeu_si256(lanes.as_mut_ptr().cast(), q);
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
        let Some(mut next) = values(21) else {
            return;
        };
        // Partial groups of four (k = 3, 27, 37), partial vectors and tiles (o = 1, 8, 17, 70,
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
                let mut avx2 = vec![0; rows * o];
                gemm(&a, rows, &weights, &requantize, &mut avx2);
                assert_eq!(avx2, portable, "k {k} o {o} rows {rows} case {case}");
            }
        }
    }

    #[test]
    fn depthwise_gives_the_portable_bytes() {
        let Some(mut next) = values(22) else {
            return;
        };
        // Channel counts with partial vectors and blocks; strides 1 and 2 on even and odd
        // sizes (SAME padding on both sides, or only bottom/right); row ranges.
        for (c, size, stride, kernel) in [
            (8usize, 9usize, 1usize, 3usize),
            (17, 8, 2, 3),
            (32, 7, 2, 3),
            (40, 6, 1, 5),
            (64, 5, 1, 3),
            (144, 6, 2, 3),
            (200, 4, 1, 3),
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
            let weights = DepthwiseWeights::new(&weight, c, kernel, next(256) as i32, zx, &bias);
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
            let mut avx2 = vec![0; g.output_len()];
            depthwise(&image, &g, &weights, zx, &requantize, 0..g.out_h, &mut avx2);
            assert_eq!(
                avx2, portable,
                "c {c} size {size} stride {stride} kernel {kernel}"
            );
            // The last rows alone.
            let from = g.out_h / 2;
            let mut part = vec![0; (g.out_h - from) * row];
            depthwise(&image, &g, &weights, zx, &requantize, from..g.out_h, &mut part);
            assert_eq!(part, portable[from * row..], "c {c} rows {from}..");
        }
    }

    #[test]
    fn add_gives_the_portable_bytes() {
        let Some(mut next) = values(23) else {
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

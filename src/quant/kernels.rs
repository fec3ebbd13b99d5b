//! The portable int8 kernels: plain Rust over NHWC uint8 tensors, int32 accumulation, TFLite's
//! requantization. The loops are written so the compiler can vectorise them; the arithmetic is
//! the one the SIMD kernels will use.
//!
//! Full and pointwise convolutions are one u8 x s8 GEMM (README section 7): the weights are
//! stored as `w' = w - 128` (an exact int8, the uint8 weights being 1..=255 or at least 0..=255)
//! and
//!
//! `sum_k (x_k - zx)(w_k - zw) = sum_k x_k w'_k - (zw - 128) sum_k x_k - zx sum_k (w_k - zw)`:
//!
//! the first term is what `vpdpbusd` / `tdpbusd` compute (u8 x s8 -> i32), the second needs one
//! input sum per pixel (the row of the GEMM), and the third is a per-output-channel constant
//! folded into the bias. A full convolution (conv_0) is an im2col whose out-of-image taps hold
//! the input zero point, which equals TFLite's skipping of those taps. The depthwise kernel
//! accumulates `(x - zx)(w - zw)` over in-image taps directly.

use std::ops::Range;

use super::fixed_point::QuantizedMultiplier;
use super::float_form::FloatForm;

/// Output channels per block of the GEMM: a block's accumulators stay in registers (four
/// 16-lane vectors) and its weights in cache while every row passes.
const BLOCK: usize = 64;
/// Input channels per group of the packed weights: the four bytes one `vpdpbusd` lane sums.
pub(crate) const GROUP: usize = 4;
/// Output channels are padded to a multiple of this (one 512-bit vector of int32).
pub(crate) const LANES: usize = 16;
/// The packed weights' groups are padded to a multiple of this: 64 inputs, one row of an AMX
/// tile, so the AMX GEMM reads whole tiles of weights (zero past `k`).
pub(crate) const TILE_GROUPS: usize = 16;

/// The output stage of a convolution: TFLite's requantization, output zero point and clamp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Requantize {
    pub multiplier: QuantizedMultiplier,
    pub zero_point: i32,
    pub min: u8,
    pub max: u8,
    /// The same bytes in single precision, proved at load ([`FloatForm`]); `None` keeps the
    /// vector kernels on the fixed-point form.
    pub float: Option<FloatForm>,
}

impl Requantize {
    /// With its float form, where one is proved ([`FloatForm::find`]).
    pub(crate) fn with_float_form(self) -> Self {
        Requantize {
            float: FloatForm::find(self.multiplier, self.zero_point, self.min, self.max),
            ..self
        }
    }

    /// [`Requantize::with_float_form`] when `yes`: the kernel tests draw both forms.
    #[cfg(test)]
    pub(crate) fn with_float_form_if(self, yes: bool) -> Self {
        if yes { self.with_float_form() } else { self }
    }

    /// `clamp(MultiplyByQuantizedMultiplier(acc) + zero_point, min, max)`.
    #[inline]
    pub fn apply(&self, acc: i32) -> u8 {
        (self.multiplier.apply(acc) + self.zero_point).clamp(i32::from(self.min), i32::from(self.max)) as u8
    }
}

/// The spatial geometry of a convolution on one image (TensorFlow SAME padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub kernel: usize,
    pub stride: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl Geometry {
    /// The input pixel under tap (`ky`, `kx`) of output pixel (`oy`, `ox`), if inside the image.
    #[inline]
    pub(crate) fn tap(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let iy = (oy * self.stride + ky).checked_sub(self.pad_top)?;
        let ix = (ox * self.stride + kx).checked_sub(self.pad_left)?;
        (iy < self.in_h && ix < self.in_w).then_some((iy, ix))
    }

    pub fn input_len(&self) -> usize {
        self.in_h * self.in_w * self.in_c
    }

    pub fn output_len(&self) -> usize {
        self.out_h * self.out_w * self.out_c
    }
}

/// Where each tap of an output pixel reads, for the vector depthwise kernels: a pointer to the
/// input pixel, or to a pixel of input zero points (`pad`) outside the image.
///
/// Interior pixels (every tap inside the image) take the first tap's pixel plus a fixed offset
/// per tap, computed once: the general bounds check per tap cost about as much as the dot
/// products on the 112 x 112 layers.
pub(crate) struct TapPointers<'a> {
    image: &'a [u8],
    g: Geometry,
    pad: *const u8,
    /// Byte offset of each tap from tap (0, 0).
    offsets: Vec<usize>,
    /// Output columns whose taps all lie inside the image horizontally.
    interior_x: Range<usize>,
    /// One pointer per tap, and one more (the pad) for an odd last pair.
    pub(crate) pointers: Vec<*const u8>,
}

impl<'a> TapPointers<'a> {
    pub(crate) fn new(image: &'a [u8], g: &Geometry, pad: *const u8) -> Self {
        let taps = g.kernel * g.kernel;
        let offsets = (0..taps)
            .map(|t| ((t / g.kernel) * g.in_w + t % g.kernel) * g.in_c)
            .collect();
        TapPointers {
            image,
            g: *g,
            pad,
            offsets,
            interior_x: interior(g.pad_left, g.stride, g.kernel, g.in_w, g.out_w),
            pointers: vec![pad; taps + taps % 2],
        }
    }

    /// Output rows whose taps all lie inside the image vertically.
    pub(crate) fn interior_y(&self) -> Range<usize> {
        let g = &self.g;
        interior(g.pad_top, g.stride, g.kernel, g.in_h, g.out_h)
    }

    /// Points [`Self::pointers`] at the taps of output pixel (`oy`, `ox`); `inside_y`: whether
    /// `oy` is in [`Self::interior_y`].
    #[inline]
    pub(crate) fn set(&mut self, oy: usize, ox: usize, inside_y: bool) {
        let g = &self.g;
        if inside_y && self.interior_x.contains(&ox) {
            let first = ((oy * g.stride - g.pad_top) * g.in_w + ox * g.stride - g.pad_left) * g.in_c;
            // wrapping_add: pointer arithmetic without a dereference; every tap of an interior
            // pixel is inside the image, so these are in bounds.
            let base = self.image.as_ptr().wrapping_add(first);
            for (p, &offset) in self.pointers.iter_mut().zip(&self.offsets) {
                *p = base.wrapping_add(offset);
            }
            return;
        }
        for ky in 0..g.kernel {
            for kx in 0..g.kernel {
                self.pointers[ky * g.kernel + kx] = match g.tap(oy, ox, ky, kx) {
                    Some((iy, ix)) => self.image[(iy * g.in_w + ix) * g.in_c..].as_ptr(),
                    None => self.pad,
                };
            }
        }
    }
}

/// The outputs `o` of one axis with `o * stride - pad >= 0` and `o * stride - pad + kernel <= size`.
fn interior(pad: usize, stride: usize, kernel: usize, size: usize, out: usize) -> Range<usize> {
    let start = pad.div_ceil(stride);
    let end = if size + pad >= kernel {
        ((size + pad - kernel) / stride + 1).min(out)
    } else {
        0
    };
    start..end.max(start)
}

/// A convolution's weights as the u8 x s8 GEMM takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GemmWeights {
    /// Reduction length: taps x input channels.
    pub(crate) k: usize,
    /// Output channels.
    pub(crate) o: usize,
    /// `o` rounded up to [`LANES`].
    pub(crate) o_pad: usize,
    /// Groups of four inputs per block: `ceil(k/4)` rounded up to [`TILE_GROUPS`].
    pub(crate) groups: usize,
    /// `w - 128` as int8 in blocks of [`BLOCK`] output channels, each `[groups][width][4]`
    /// (`width` = 64, or what is left of `o_pad` in the last block), zero-filled past `k` and
    /// `o`: the layout `vpdpbusd` reads, one 32-bit lane per output channel (and `tdpbusd`, 16
    /// groups x 16 channels at a time), and one block's weights contiguous. (Groups `o_pad * 4`
    /// bytes apart, the layout before, put a block's groups 2-4 KiB apart at 512-1024
    /// channels, all in the same few L1 sets: the block no longer stayed in L1 and pw_12/pw_13
    /// of v1 1.0_224 ran at 46% of the `vpdpbusd` peak.)
    pub(crate) packed: Vec<i8>,
    /// `bias - zx * sum_k (w - zw)` per output channel.
    pub(crate) column_bias: Vec<i32>,
    /// `zw - 128`: each row's input sum is multiplied by this and subtracted.
    pub(crate) row_factor: i32,
}

impl GemmWeights {
    /// From uint8 weights in `[o][k]` order (k in the order of the GEMM's rows), their zero point,
    /// the input zero point and the int32 bias.
    pub fn new(
        weight: &[u8],
        o: usize,
        k: usize,
        weight_zero_point: i32,
        input_zero_point: i32,
        bias: &[i32],
    ) -> Self {
        assert_eq!(weight.len(), o * k);
        assert_eq!(bias.len(), o);
        let o_pad = o.div_ceil(LANES) * LANES;
        let groups = k.div_ceil(GROUP).next_multiple_of(TILE_GROUPS);
        let mut packed = vec![0i8; groups * o_pad * GROUP];
        for (oc, row) in weight.chunks_exact(k).enumerate() {
            let (offset, stride) = block_layout(groups, o_pad, oc);
            for (kk, &w) in row.iter().enumerate() {
                packed[offset + (kk / GROUP) * stride + kk % GROUP] = (i32::from(w) - 128) as i8;
            }
        }
        let column_bias = weight
            .chunks_exact(k)
            .zip(bias)
            .map(|(row, &b)| {
                let centred: i32 = row.iter().map(|&w| i32::from(w) - weight_zero_point).sum();
                b - input_zero_point * centred
            })
            .collect();
        GemmWeights {
            k,
            o,
            o_pad,
            groups,
            packed,
            column_bias,
            row_factor: weight_zero_point - 128,
        }
    }

    /// Where output channel `channel` starts in group 0 of [`GemmWeights::packed`], and the
    /// bytes from one group to the next in its block: the channels from `channel` to the end
    /// of its block of [`BLOCK`] are contiguous in every group.
    pub(crate) fn column(&self, channel: usize) -> (usize, usize) {
        block_layout(self.groups, self.o_pad, channel)
    }
}

/// What clamping `w - zw` to an int8 left of each weight of one vector (in [-127, 128]), as int8
/// vectors that sum to it, for the fix-up `vpdpbusd`s: none, one, or two where some rest is 128
/// (`w - zw = 255`, a weight of 255 on a zero point of 0, which one int8 cannot hold).
fn rest_vectors(rest: &[i32; 64]) -> Vec<[i8; 64]> {
    let first = rest.map(|r| r.clamp(-128, 127) as i8);
    let second: [i8; 64] = std::array::from_fn(|i| (rest[i] - i32::from(first[i])) as i8);
    [first, second]
        .into_iter()
        .filter(|v| v.iter().any(|&b| b != 0))
        .collect()
}

/// [`GemmWeights::column`] for `groups` groups of four inputs and `o_pad` channels.
fn block_layout(groups: usize, o_pad: usize, channel: usize) -> (usize, usize) {
    let first = channel / BLOCK * BLOCK;
    let width = BLOCK.min(o_pad - first);
    (groups * first * GROUP + (channel - first) * GROUP, width * GROUP)
}

/// The weights of a 3x3 convolution on 3 input channels (the stem) for the direct vector
/// kernel, which reads each output pixel's 27 input bytes straight from the image: per kernel
/// row, its 9 bytes (3 taps x 3 channels, contiguous in NHWC) as groups of four bytes 0-3 and
/// 4-7 and a group holding byte 8 alone, so no group straddles two image rows.
///
/// The weights are `w - zw` clamped to an int8, as the depthwise triples' ([`TripleDepthwise`]
/// says why that is exact with its fix-ups): no per-pixel input sum is needed, and one weight
/// of the 864 in v1 1.0_224's and v2's stems is clamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StemWeights {
    /// Output channels (at most 64).
    pub(crate) o: usize,
    /// `o` rounded up to [`LANES`].
    pub(crate) o_pad: usize,
    /// `w - zw` clamped to an int8, `[ky][group of 3][o_pad][4]`, zero past byte 8 of a row and
    /// past `o`.
    pub(crate) packed: Vec<i8>,
    /// `bias - zx * sum (w - zw)` per output channel, zero past `o` (`o_pad` values).
    pub(crate) column_bias: Vec<i32>,
    /// The vectors of 16 channels with a clamped weight: the group, the vector and the rest of
    /// `w - zw` (laid out as one vector of `packed`; two entries where a rest is 128, see
    /// [`rest_vectors`]), in group order.
    pub(crate) fixes: Vec<StemFix>,
}

/// One vector of [`StemWeights`] whose weights did not all fit an int8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StemFix {
    pub(crate) group: usize,
    pub(crate) vector: usize,
    pub(crate) rest: [i8; 64],
}

/// Groups of four bytes per kernel row of the stem: bytes 0-3, 4-7 and 8.
pub(crate) const STEM_GROUPS: usize = 3;

impl StemWeights {
    /// From the GEMM's weights of a 3x3 convolution on 3 channels (k = 27 in (ky, kx, c)
    /// order), if it has at most 64 output channels.
    pub fn new(gemm: &GemmWeights, weight: &[u8]) -> Option<Self> {
        if gemm.k != 27 || gemm.o > 4 * LANES {
            return None;
        }
        let (o, o_pad) = (gemm.o, gemm.o_pad);
        let zw = gemm.row_factor + 128;
        let mut packed = vec![0i8; 3 * STEM_GROUPS * o_pad * GROUP];
        let mut rest = vec![0i32; packed.len()];
        for (oc, row) in weight.chunks_exact(27).enumerate() {
            for (i, &w) in row.iter().enumerate() {
                let (ky, byte) = (i / 9, i % 9);
                let group = ky * STEM_GROUPS + byte / GROUP;
                let at = (group * o_pad + oc) * GROUP + byte % GROUP;
                let centred = i32::from(w) - zw;
                let clamped = centred.clamp(-128, 127);
                packed[at] = clamped as i8;
                rest[at] = centred - clamped;
            }
        }
        let fixes = rest
            .chunks_exact(LANES * GROUP)
            .enumerate()
            .flat_map(|(v, r)| {
                rest_vectors(r.try_into().expect("64 values"))
                    .into_iter()
                    .map(move |rest| StemFix {
                        group: v / (o_pad / LANES),
                        vector: v % (o_pad / LANES),
                        rest,
                    })
            })
            .collect();
        let mut column_bias = gemm.column_bias.clone();
        column_bias.resize(o_pad, 0);
        Some(StemWeights {
            o,
            o_pad,
            packed,
            column_bias,
            fixes,
        })
    }
}

/// `out[r][o] = requantize(sum_k a[r][k] * w'[k][o] + column_bias[o] - row_factor * sum_k a[r][k])`
/// for `rows` rows of `a` (`rows x k` uint8) into `out` (`rows x o`).
pub(crate) fn gemm(a: &[u8], rows: usize, w: &GemmWeights, requantize: &Requantize, out: &mut [u8]) {
    let (k, o) = (w.k, w.o);
    assert_eq!(a.len(), rows * k);
    assert_eq!(out.len(), rows * o);
    let full = k / GROUP;
    let row_sums = row_sums(a, k);
    for start in (0..o).step_by(BLOCK) {
        let width = BLOCK.min(o - start);
        for (r, row) in a.chunks_exact(k).enumerate() {
            let mut acc = [0i32; BLOCK];
            let acc = &mut acc[..width];
            let (first, stride) = w.column(start);
            let mut group = |g: usize, x: [i32; GROUP]| {
                let offset = first + g * stride;
                let weights = &w.packed[offset..offset + width * GROUP];
                for (a, w) in acc.iter_mut().zip(weights.chunks_exact(GROUP)) {
                    *a += x[0] * i32::from(w[0])
                        + x[1] * i32::from(w[1])
                        + x[2] * i32::from(w[2])
                        + x[3] * i32::from(w[3]);
                }
            };
            for (g, x) in row.chunks_exact(GROUP).enumerate() {
                group(g, [0, 1, 2, 3].map(|j| i32::from(x[j])));
            }
            if full * GROUP < k {
                let tail = &row[full * GROUP..];
                group(
                    full,
                    [0, 1, 2, 3].map(|j| tail.get(j).map_or(0, |&x| i32::from(x))),
                );
            }
            let correction = w.row_factor * row_sums[r];
            let dst = &mut out[r * o + start..r * o + start + width];
            for ((d, &a), &b) in dst
                .iter_mut()
                .zip(acc.iter())
                .zip(&w.column_bias[start..start + width])
            {
                *d = requantize.apply(a + b - correction);
            }
        }
    }
}

/// The sum of each `k`-long row of `a`: the per-pixel term of the u8 x s8 formulation.
pub(crate) fn row_sums(a: &[u8], k: usize) -> Vec<i32> {
    a.chunks_exact(k)
        .map(|row| row.iter().map(|&x| i32::from(x)).sum())
        .collect()
}

/// The im2col rows of output rows `rows` of one image: for each output pixel, the
/// `kernel x kernel x in_c` input values under its taps in (ky, kx, c) order, `pad` where a tap
/// falls outside the image.
pub(crate) fn im2col(image: &[u8], g: &Geometry, pad: u8, rows: Range<usize>, cols: &mut Vec<u8>) {
    assert_eq!(image.len(), g.input_len());
    let c = g.in_c;
    let span = g.kernel * c;
    cols.clear();
    cols.resize(rows.len() * g.out_w * g.kernel * span, pad);
    let mut dst = cols.chunks_exact_mut(span);
    for oy in rows {
        for ox in 0..g.out_w {
            for ky in 0..g.kernel {
                let row = dst.next().expect("sized above");
                let Some(iy) = (oy * g.stride + ky)
                    .checked_sub(g.pad_top)
                    .filter(|&iy| iy < g.in_h)
                else {
                    continue;
                };
                let line = &image[iy * g.in_w * c..][..g.in_w * c];
                let first = (ox * g.stride).wrapping_sub(g.pad_left);
                if ox * g.stride >= g.pad_left && first + g.kernel <= g.in_w {
                    // Every tap of this kernel row is inside: one copy. The stem's (3 taps x 3
                    // channels) gets a fixed size: a 9-byte copy_from_slice is a memcpy call,
                    // which cost more than the stem's GEMM.
                    let src = &line[first * c..][..span];
                    match (<&mut [u8; 9]>::try_from(&mut *row), <&[u8; 9]>::try_from(src)) {
                        (Ok(row), Ok(src)) => *row = *src,
                        _ => row.copy_from_slice(src),
                    }
                    continue;
                }
                for (kx, tap) in row.chunks_exact_mut(c).enumerate() {
                    if let Some((_, ix)) = g.tap(oy, ox, ky, kx) {
                        tap.copy_from_slice(&line[ix * c..][..c]);
                    }
                }
            }
        }
    }
}

/// A depthwise convolution's weights: `w - zw` per tap and channel, `[ky][kx][c]`, and the bias
/// (for the portable kernel), and the same weights packed for the vector kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DepthwiseWeights {
    pub(crate) taps: Vec<i32>,
    pub(crate) bias: Vec<i32>,
    /// For 512-bit vectors on kernels other than 3x3 (those run on `triples`): blocks of 64
    /// channels.
    pub(crate) wide: Option<PackedDepthwise>,
    /// For 256-bit vectors: blocks of 32 channels.
    pub(crate) narrow: PackedDepthwise,
    /// For `vpdpbusd` on a column's three vertical taps at once: 3x3 kernels.
    pub(crate) triples: Option<TripleDepthwise>,
}

impl DepthwiseWeights {
    /// From uint8 weights in the files' `[C, 1, k, k]` order, their zero point, the input zero
    /// point and the int32 bias.
    pub fn new(
        weight: &[u8],
        channels: usize,
        kernel: usize,
        weight_zero_point: i32,
        input_zero_point: i32,
        bias: &[i32],
    ) -> Self {
        assert_eq!(weight.len(), channels * kernel * kernel);
        let mut taps = vec![0; weight.len()];
        for (c, filter) in weight.chunks_exact(kernel * kernel).enumerate() {
            for (t, &w) in filter.iter().enumerate() {
                taps[t * channels + c] = i32::from(w) - weight_zero_point;
            }
        }
        let pack = |lanes| PackedDepthwise::new(&taps, bias, channels, kernel, input_zero_point, lanes);
        let triples = (kernel == 3).then(|| TripleDepthwise::new(&taps, bias, channels, input_zero_point));
        DepthwiseWeights {
            wide: triples.is_none().then(|| pack(16)),
            narrow: pack(8),
            triples,
            taps,
            bias: bias.to_vec(),
        }
    }
}

/// Depthwise weights for the vector kernels, which multiply pairs of taps with one
/// `vpmaddwd`/`vpdpwssd` (i16 x i16 pairs summed into i32 lanes).
///
/// A block of `4 * lanes` channels is four vectors of `lanes` int32 lanes. The input of a pair
/// of taps is interleaved by `unpacklo/hi_epi8(a, b)` and widened by `unpacklo/hi_epi8(_, 0)`;
/// both work within 128-bit lanes, so lane `4 L + i` of vector `j` holds channel
/// `16 L + 4 j + i` of the block. `packs_epi32(v0, v1)`, `packs_epi32(v2, v3)` and
/// `packus_epi16` undo exactly that order, so the output needs no further shuffle.
///
/// Out-of-image taps read a pixel of input zero points (`pad`), and the bias absorbs
/// `-zx * sum over all taps of (w - zw)`: `sum over in-image taps of (x - zx)(w - zw)` equals
/// `sum over all taps of x' (w - zw) - zx * sum (w - zw)` with `x' = zx` outside the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackedDepthwise {
    /// int32 lanes per vector.
    pub(crate) lanes: usize,
    /// `[block][pair][vector][lane]`: `(w - zw)` of taps `2 p` (low half) and `2 p + 1` (high
    /// half) as i16, zero past the last tap and the last channel.
    pub(crate) pairs: Vec<i32>,
    /// `[block][vector][lane]`: the bias less `zx * sum (w - zw)`.
    pub(crate) bias: Vec<i32>,
    /// `blocks * 4 * lanes` input zero points: the pixel out-of-image taps read.
    pub(crate) pad: Vec<u8>,
}

impl PackedDepthwise {
    /// Channels per block.
    pub(crate) fn block(&self) -> usize {
        4 * self.lanes
    }

    fn new(taps: &[i32], bias: &[i32], channels: usize, kernel: usize, zx: i32, lanes: usize) -> Self {
        let block = 4 * lanes;
        let blocks = channels.div_ceil(block);
        let count = kernel * kernel;
        let pairs_per_block = count.div_ceil(2);
        let channel = |b: usize, j: usize, lane: usize| b * block + 16 * (lane / 4) + 4 * j + lane % 4;
        let tap = |t: usize, c: usize| {
            if t < count && c < channels {
                taps[t * channels + c]
            } else {
                0
            }
        };
        let mut pairs = Vec::with_capacity(blocks * pairs_per_block * block);
        let mut packed_bias = Vec::with_capacity(blocks * block);
        for b in 0..blocks {
            for p in 0..pairs_per_block {
                for j in 0..4 {
                    for lane in 0..lanes {
                        let c = channel(b, j, lane);
                        let (low, high) = (tap(2 * p, c), tap(2 * p + 1, c));
                        pairs.push((low & 0xffff) | (high << 16));
                    }
                }
            }
            for j in 0..4 {
                for lane in 0..lanes {
                    let c = channel(b, j, lane);
                    packed_bias.push(if c < channels {
                        let sum: i32 = (0..count).map(|t| tap(t, c)).sum();
                        bias[c] - zx * sum
                    } else {
                        0
                    });
                }
            }
        }
        PackedDepthwise {
            lanes,
            pairs,
            bias: packed_bias,
            pad: vec![zx as u8; blocks * block],
        }
    }
}

/// 3x3 depthwise weights for `vpdpbusd` on vertical triples: the input bytes of a column's
/// three taps (rows `ky = 0, 1, 2`) sit in one 32-bit lane, `(x0, x1, x2, 0)`, so one
/// instruction multiplies all three by their weights and sums them. `w - zw` spans [-255, 255],
/// not an int8, but almost every weight of a trained layer is within [-128, 127] of its zero
/// point (25 of the 44,640 depthwise weights of v1 1.0_224, 25 of 64,224 in v2): the vector
/// holds `w - zw` clamped to an int8, and the few vectors with a clamped weight get one more
/// `vpdpbusd` with the rest (`fixes`: 19 of v1 1.0_224's 930, 22 of v2's 1,338).
///
/// A block is 64 byte positions of a chunk of input (`[block][kx][vector][lane][ky]`); the
/// lanes are in the order [`PackedDepthwise`] describes (`unpacklo/hi_epi8` then
/// `unpacklo/hi_epi16` within 128-bit lanes put position `16 L + 4 j + i` in lane `4 L + i` of
/// vector `j`). Position `p` of block `b` is channel `p mod C` when `C` divides 64 (a chunk then
/// holds `64 / C` adjacent pixels, which stride-1 layers use), else channel `64 b + p`, zero
/// past the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TripleDepthwise {
    /// `[block][kx][vector][lane][ky]`: `w - zw` clamped to an int8, zero in byte 3 and past the
    /// channels.
    pub(crate) weights: Vec<i8>,
    /// `[block][vector][lane]`: the bias less `zx * sum (w - zw)` (out-of-image taps read the
    /// input zero point), zero past the channels.
    pub(crate) bias: Vec<i32>,
    /// The vectors whose weights were clamped, in block order: the block, `kx`, the vector and
    /// the 64 bytes of `w - zw` less the clamped value (laid out as `weights`; two entries where
    /// a rest is 128, see [`rest_vectors`]).
    pub(crate) fixes: Vec<TripleFix>,
}

/// One vector of [`TripleDepthwise`] whose weights did not all fit an int8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TripleFix {
    pub(crate) block: usize,
    pub(crate) kx: usize,
    pub(crate) vector: usize,
    pub(crate) rest: [i8; 64],
}

impl TripleDepthwise {
    /// From `w - zw` in `[tap][c]` order (3x3 taps), the bias and the input zero point.
    fn new(taps: &[i32], bias: &[i32], channels: usize, zx: i32) -> Self {
        let blocks = channels.div_ceil(64);
        let channel = |b: usize, position: usize| {
            if channels < 64 && 64 % channels == 0 {
                Some(position % channels)
            } else {
                Some(64 * b + position).filter(|&c| c < channels)
            }
        };
        let position = |j: usize, lane: usize| 16 * (lane / 4) + 4 * j + lane % 4;
        let mut weights = Vec::with_capacity(blocks * 3 * 4 * 64);
        let mut fixes = Vec::new();
        let mut packed_bias = Vec::with_capacity(blocks * 64);
        for b in 0..blocks {
            for kx in 0..3 {
                for j in 0..4 {
                    let mut rest = [0i32; 64];
                    for lane in 0..16 {
                        let c = channel(b, position(j, lane));
                        for ky in 0..4 {
                            let w = match c {
                                Some(c) if ky < 3 => taps[(3 * ky + kx) * channels + c],
                                _ => 0,
                            };
                            let clamped = w.clamp(-128, 127);
                            weights.push(clamped as i8);
                            rest[4 * lane + ky] = w - clamped;
                        }
                    }
                    fixes.extend(rest_vectors(&rest).into_iter().map(|rest| TripleFix {
                        block: b,
                        kx,
                        vector: j,
                        rest,
                    }));
                }
            }
            for j in 0..4 {
                for lane in 0..16 {
                    packed_bias.push(channel(b, position(j, lane)).map_or(0, |c| {
                        let sum: i32 = (0..9).map(|t| taps[t * channels + c]).sum();
                        bias[c] - zx * sum
                    }));
                }
            }
        }
        TripleDepthwise {
            weights,
            bias: packed_bias,
            fixes,
        }
    }
}

/// Output rows `rows` of one image's depthwise convolution into `out` (those rows only):
/// `sum over in-image taps of (x - zx)(w - zw) + bias`, requantized (TFLite
/// reference/depthwiseconv_uint8.h).
pub(crate) fn depthwise(
    image: &[u8],
    g: &Geometry,
    w: &DepthwiseWeights,
    input_zero_point: i32,
    requantize: &Requantize,
    rows: Range<usize>,
    out: &mut [u8],
) {
    let c = g.in_c;
    assert_eq!(image.len(), g.input_len());
    assert!(rows.end <= g.out_h);
    assert_eq!(out.len(), rows.len() * g.out_w * c);
    let mut acc = vec![0i32; c];
    for (oy, out_row) in rows.zip(out.chunks_exact_mut(g.out_w * c)) {
        for ox in 0..g.out_w {
            acc.copy_from_slice(&w.bias);
            for ky in 0..g.kernel {
                for kx in 0..g.kernel {
                    let Some((iy, ix)) = g.tap(oy, ox, ky, kx) else {
                        continue;
                    };
                    let x = &image[(iy * g.in_w + ix) * c..][..c];
                    let taps = &w.taps[(ky * g.kernel + kx) * c..][..c];
                    for ((a, &x), &t) in acc.iter_mut().zip(x).zip(taps) {
                        *a += (i32::from(x) - input_zero_point) * t;
                    }
                }
            }
            let dst = &mut out_row[ox * c..][..c];
            for (d, &a) in dst.iter_mut().zip(&acc) {
                *d = requantize.apply(a);
            }
        }
    }
}

/// Global average pooling of images of `pixels x channels` (TFLite reference/pooling.h, uint8):
/// `(sum + count / 2) / count` in integers, same quantization in and out; `out` holds
/// `channels` values per image.
///
/// Up to [`NARROW_POOL_PIXELS`] pixels (v1's and v2's 7x7) the sums fit 16 bits and the division
/// is a float one, which the compiler vectorizes (8 and 4 lanes in baseline x86-64, against one
/// integer division per channel): exact, because for `a = sum + count / 2 < 2^17` and
/// `count <= 257` a quotient that is not a whole number is at least `1 / 257` from the next one,
/// far more than the float division's rounding (at most `2^-16` below 256), and a whole one is
/// exact. This took the pool of v1 1.0_224 from 5.6 to 2.7 us (per-layer runs on AMD EPYC).
pub(crate) fn global_average_pool(input: &[u8], pixels: usize, channels: usize, out: &mut [u8]) {
    assert_eq!(input.len(), out.len() * pixels);
    if pixels <= NARROW_POOL_PIXELS {
        let (half, count) = ((pixels / 2) as f32, pixels as f32);
        return average_pool::<u16>(input, pixels, channels, out, |s| {
            ((f32::from(s) + half) / count) as u8
        });
    }
    let count = pixels as u32;
    // The mean of uint8 values is at most 255: no clamp needed.
    average_pool::<u32>(input, pixels, channels, out, |s| ((s + count / 2) / count) as u8);
}

/// The most pixels whose uint8 sum fits 16 bits (257 x 255 = 65,535).
const NARROW_POOL_PIXELS: usize = 257;

/// Per image, each channel's sum over the pixels in `S`, then `mean(sum)`.
fn average_pool<S: Copy + Default + std::ops::AddAssign + From<u8>>(
    input: &[u8],
    pixels: usize,
    channels: usize,
    out: &mut [u8],
    mean: impl Fn(S) -> u8,
) {
    let mut sums = vec![S::default(); channels];
    for (image, out) in input
        .chunks_exact(pixels * channels)
        .zip(out.chunks_exact_mut(channels))
    {
        sums.fill(S::default());
        for pixel in image.chunks_exact(channels) {
            for (s, &x) in sums.iter_mut().zip(pixel) {
                *s += S::from(x);
            }
        }
        for (o, &s) in out.iter_mut().zip(&sums) {
            *o = mean(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Requantize {
        Requantize {
            multiplier: QuantizedMultiplier::from_real(1.0),
            zero_point: 128,
            min: 0,
            float: None,
            max: 255,
        }
    }

    /// Runs the GEMM on `rows x k` inputs and `o x k` weights and compares every output with
    /// the requantized centred dot product.
    fn check_gemm(a: &[u8], w: &[u8], rows: usize, k: usize, zx: i32, zw: i32, requantize: Requantize) {
        let o = w.len() / k;
        let bias: Vec<i32> = (0..o as i32).map(|i| i % 20 * 3 - 30).collect();
        let weights = GemmWeights::new(w, o, k, zw, zx, &bias);
        let mut out = vec![0; rows * o];
        gemm(a, rows, &weights, &requantize, &mut out);
        for r in 0..rows {
            for oc in 0..o {
                let acc: i32 = (0..k)
                    .map(|j| (i32::from(a[r * k + j]) - zx) * (i32::from(w[oc * k + j]) - zw))
                    .sum::<i32>()
                    + bias[oc];
                assert_eq!(out[r * o + oc], requantize.apply(acc), "row {r} channel {oc}");
            }
        }
    }

    #[test]
    fn gemm_equals_the_centred_dot_product() {
        // k = 7 (a partial group of four), o = 70 (a full block of 64 and a padded one).
        let (rows, k, o) = (3, 7, 70);
        // Values near the zero points: every accumulator is within +-127 and maps one to one
        // through a multiplier of 1, so the accumulators themselves are compared.
        let (zx, zw) = (9, 131);
        let a: Vec<u8> = (0..rows * k)
            .map(|i| (zx + (i as i32 * 5 % 7) - 3) as u8)
            .collect();
        let w: Vec<u8> = (0..o * k).map(|i| (zw + (i as i32 * 3 % 7) - 3) as u8).collect();
        check_gemm(&a, &w, rows, k, zx, zw, identity());
        // Full-range values through a coarse multiplier.
        let a: Vec<u8> = (0..rows * k).map(|i| (i * 37 % 256) as u8).collect();
        let w: Vec<u8> = (0..o * k).map(|i| (1 + i * 53 % 255) as u8).collect();
        let coarse = Requantize {
            multiplier: QuantizedMultiplier::from_real(1.0 / 512.0),
            ..identity()
        };
        check_gemm(&a, &w, rows, k, zx, zw, coarse);
    }

    #[test]
    fn im2col_pads_with_the_given_byte() {
        // 2x2x1 image, 3x3 stride 2 SAME on an even size: pads 0 top/left, 1 bottom/right.
        let g = Geometry {
            kernel: 3,
            stride: 2,
            in_h: 2,
            in_w: 2,
            in_c: 1,
            out_h: 1,
            out_w: 1,
            out_c: 1,
            pad_top: 0,
            pad_left: 0,
        };
        let mut cols = Vec::new();
        im2col(&[1, 2, 3, 4], &g, 128, 0..1, &mut cols);
        assert_eq!(cols, [1, 2, 128, 3, 4, 128, 128, 128, 128]);
    }

    #[test]
    fn depthwise_skips_out_of_image_taps() {
        // One channel, 3x3 stride 1 on 2x2, pad 1: each output sums its in-image neighbours.
        let g = Geometry {
            kernel: 3,
            stride: 1,
            in_h: 2,
            in_w: 2,
            in_c: 1,
            out_h: 2,
            out_w: 2,
            out_c: 1,
            pad_top: 1,
            pad_left: 1,
        };
        let weights = DepthwiseWeights::new(&[11; 9], 1, 3, 10, 3, &[5]);
        let mut out = [0u8; 4];
        // Input zero point 3: (x - 3) summed over the four pixels (all are neighbours of all).
        depthwise(&[4, 5, 6, 7], &g, &weights, 3, &identity(), 0..2, &mut out);
        assert_eq!(out, [128 + 5 + 1 + 2 + 3 + 4; 4]);
    }

    #[test]
    fn tap_pointers_match_the_bounds_checked_taps() {
        for (size, stride, kernel, pad) in [
            (7usize, 1usize, 3usize, 1usize),
            (8, 2, 3, 0),
            (7, 2, 3, 1),
            (6, 1, 5, 2),
            (2, 1, 3, 1),
        ] {
            let out = size.div_ceil(stride);
            let g = Geometry {
                kernel,
                stride,
                in_h: size,
                in_w: size,
                in_c: 3,
                out_h: out,
                out_w: out,
                out_c: 3,
                pad_top: pad,
                pad_left: pad,
            };
            let image = vec![0u8; g.input_len()];
            let pad_pixel = [0u8; 3];
            let mut taps = TapPointers::new(&image, &g, pad_pixel.as_ptr());
            let rows = taps.interior_y();
            for oy in 0..out {
                for ox in 0..out {
                    taps.set(oy, ox, rows.contains(&oy));
                    for ky in 0..kernel {
                        for kx in 0..kernel {
                            let expected = match g.tap(oy, ox, ky, kx) {
                                Some((iy, ix)) => image[(iy * size + ix) * 3..].as_ptr(),
                                None => pad_pixel.as_ptr(),
                            };
                            assert_eq!(
                                taps.pointers[ky * kernel + kx],
                                expected,
                                "{g:?} {oy} {ox} {ky} {kx}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn average_pool_rounds_half_up() {
        // Two images, 4 pixels, 2 channels: sums 2 and 6 of count 4 (0.5 -> 1, 1.5 -> 2).
        let input = [0, 0, 1, 2, 1, 2, 0, 2, 255, 255, 255, 255, 255, 255, 255, 254];
        let mut out = [0; 4];
        global_average_pool(&input, 4, 2, &mut out);
        assert_eq!(out, [1, 2, 255, 255]);
    }

    #[test]
    fn the_float_pool_gives_the_integer_bytes_for_every_sum() {
        // Every pixel count of the 16-bit path and every sum it can meet: the float division
        // against TFLite's integer one.
        for pixels in 1..=NARROW_POOL_PIXELS as u32 {
            for sum in 0..=pixels * 255 {
                let integer = (sum + pixels / 2) / pixels;
                let float = ((sum as f32 + (pixels / 2) as f32) / pixels as f32) as u32;
                assert_eq!(float, integer, "sum {sum} of {pixels}");
            }
        }
        // Both paths on real images: 49 pixels (narrow) and 258 (wide).
        let mut rng = crate::nn::SplitMix64(3);
        for pixels in [1, 49, 257, 258] {
            let input: Vec<u8> = (0..pixels * 5).map(|_| (rng.next_u64() % 256) as u8).collect();
            let mut out = [0; 5];
            global_average_pool(&input, pixels, 5, &mut out);
            for (c, &o) in out.iter().enumerate() {
                let sum: u32 = (0..pixels).map(|p| u32::from(input[p * 5 + c])).sum();
                assert_eq!(u32::from(o), (sum + pixels as u32 / 2) / pixels as u32);
            }
        }
    }
}

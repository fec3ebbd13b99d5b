//! The GEMM behind pointwise, full and FC layers: `C = act(A * B + bias)`.
//!
//! `A` is an activation read in place, row `i` at `a + i * lda`, its reduction dimension made
//! of [`Segment`]s: one contiguous segment for a pointwise layer (a pixel's channels), `k`
//! segments for a `k x k` convolution over a zero-padded NHWC image (each kernel row's
//! `k * C` inputs are contiguous), which makes the convolution an implicit GEMM with no
//! im2col copy. `B` is packed ([`PackedB`]) in 32-column panels.
//!
//! The microkernel keeps an `MR x (NV * lanes)` tile of `C` in registers: per reduction step
//! it loads `NV` vectors of the panel and broadcasts `MR` values of `A`, then issues
//! `MR * NV` FMAs. With AVX-512 the tile is 14 x 32 (28 accumulators + 2 panel vectors + 1
//! broadcast = 31 of 32 registers): 28 independent FMA chains hide the 4-cycle FMA latency,
//! and the 2 loads per 28 FMAs stay far below the load ports' throughput. Bias initialises
//! the accumulators and ReLU6 is applied before the single store, so `C` is written once.
//! 14 also divides every MobileNet v1 224 spatial size (112^2, 56^2, 28^2, 14^2, 7^2).

use std::ops::Range;

use super::pack::{PANEL, PackedB};
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{F32Vec, Isa, Portable};

/// A contiguous run of the reduction dimension, `offset` floats from a row's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) offset: usize,
    pub(crate) len: usize,
}

/// The activation applied in the epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    Relu6,
    Linear,
}

/// Rows of `A` kept in an L2-sized chunk while all panels stream past it.
const CHUNK_FLOATS: usize = 64 * 1024;

/// Tile shape per ISA: (rows, columns per tile, lanes per vector).
fn tile_shape(isa: Isa) -> (usize, usize, usize) {
    match isa {
        Isa::Avx512 => (14, 32, 16),
        Isa::Avx2 => (6, 16, 8),
        Isa::Portable => (4, 16, 8),
    }
}

/// The largest tile height for `isa`: row shares are split on multiples of it.
pub(crate) fn tile_rows(isa: Isa) -> usize {
    tile_shape(isa).0
}

/// One GEMM: `c[i, j] = act(bias[j] + sum_k a(i, k) * b[k, j])` for the rows and panels a
/// thread is given.
pub(crate) struct Gemm<'a> {
    pub(crate) a: *const f32,
    pub(crate) lda: usize,
    /// Together `b.k` long.
    pub(crate) segs: &'a [Segment],
    pub(crate) b: &'a PackedB,
    pub(crate) c: *mut f32,
    pub(crate) ldc: usize,
    pub(crate) act: Act,
}

/// One microkernel call's operands.
struct Tile<'a> {
    a: *const f32,
    lda: usize,
    segs: &'a [Segment],
    /// Panel start plus the tile's column offset; rows are `PANEL` floats apart.
    b: *const f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    /// Columns to store (the rest of the tile is computed and dropped).
    cols: usize,
    act: Act,
}

impl Gemm<'_> {
    /// Computes rows `rows` of `C` for panels `panels`.
    ///
    /// # Safety
    /// `isa` must be available. For every row `i` in `rows`, `a + i * lda + s.offset` must be
    /// readable for `s.len` floats for each segment `s`, and `c + i * ldc` writable for
    /// `b.n` floats; no other thread may write those parts of `C` concurrently.
    pub(crate) unsafe fn run(&self, isa: Isa, rows: Range<usize>, panels: Range<usize>) {
        debug_assert_eq!(self.segs.iter().map(|s| s.len).sum::<usize>(), self.b.k);
        let (mr, group, lanes) = tile_shape(isa);
        let chunk = (CHUNK_FLOATS / self.b.k.max(1)).max(mr) / mr * mr;
        let mut r0 = rows.start;
        while r0 < rows.end {
            let r1 = (r0 + chunk).min(rows.end);
            for p in panels.clone() {
                let panel_cols = (self.b.n - p * PANEL).min(PANEL);
                for g0 in (0..panel_cols).step_by(group) {
                    let cols = (panel_cols - g0).min(group);
                    // Balanced tile heights: 49 rows become 13+12+12+12, not 14+14+14+7.
                    let len = r1 - r0;
                    let tiles = len.div_ceil(mr);
                    let mut row = r0;
                    for t in 0..tiles {
                        let height = len / tiles + usize::from(t < len % tiles);
                        // SAFETY: `row + height <= rows.end`, so every A row read and C row
                        // written is one the caller vouched for; `g0 + cols <= panel_cols`
                        // keeps the panel, bias and C columns in bounds (panels and bias are
                        // padded to whole `PANEL`s).
                        unsafe {
                            let tile = Tile {
                                a: self.a.add(row * self.lda),
                                lda: self.lda,
                                segs: self.segs,
                                b: self.b.panel(p).add(g0),
                                bias: self.b.bias(p).add(g0),
                                c: self.c.add(row * self.ldc + p * PANEL + g0),
                                ldc: self.ldc,
                                cols,
                                act: self.act,
                            };
                            dispatch(isa, height, cols.div_ceil(lanes), &tile);
                        }
                        row += height;
                    }
                }
            }
            r0 = r1;
        }
    }
}

/// # Safety
/// `isa` must be available and `tile` valid for an `mr x nv` tile.
unsafe fn dispatch(isa: Isa, mr: usize, nv: usize, tile: &Tile<'_>) {
    // SAFETY: forwarded from the caller; each arm runs only when its ISA was detected.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => tile_avx512(mr, nv, tile),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => tile_avx2(mr, nv, tile),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => unreachable!("x86 ISA on another architecture"),
            Isa::Portable => tile_portable(mr, nv, tile),
        }
    }
}

/// Instantiates the microkernel for every tile height up to the ISA's maximum, inside one
/// function compiled with the ISA's features.
macro_rules! tile_entry {
    ($(#[$attr:meta])* $name:ident, $vec:ty, $($mr:literal)+) => {
        $(#[$attr])*
        unsafe fn $name(mr: usize, nv: usize, tile: &Tile<'_>) {
            // SAFETY: the caller checked the ISA and the tile's bounds.
            unsafe {
                match (mr, nv) {
                    $(
                        ($mr, 1) => microkernel::<$vec, $mr, 1>(tile),
                        ($mr, 2) => microkernel::<$vec, $mr, 2>(tile),
                    )+
                    _ => unreachable!("no {mr}x{nv} tile"),
                }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
tile_entry!(#[target_feature(enable = "avx512f")] tile_avx512, Avx512, 1 2 3 4 5 6 7 8 9 10 11 12 13 14);
#[cfg(target_arch = "x86_64")]
tile_entry!(#[target_feature(enable = "avx2,fma")] tile_avx2, Avx2, 1 2 3 4 5 6);
tile_entry!(tile_portable, Portable, 1 2 3 4);

/// `acc += A[0..MR, 0..len] * B[0..len, tile columns]` for one segment. The accumulators go in
/// and out by value: kept in one array across the segment loop, LLVM spills them to the stack
/// on every reduction step.
///
/// # Safety
/// `V`'s ISA must be enabled; rows `0..MR` of `a` (stride `lda`) readable for `len` floats, `b`
/// for `len` rows of `NV * V::LANES` floats at stride `PANEL`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops over const-size arrays unroll into registers
unsafe fn reduce<V: F32Vec, const MR: usize, const NV: usize>(
    mut acc: [[V; NV]; MR],
    a: *const f32,
    lda: usize,
    len: usize,
    mut b: *const f32,
) -> [[V; NV]; MR] {
    // SAFETY: within the bounds the caller guarantees.
    unsafe {
        for k in 0..len {
            let mut bv = [V::splat(0.0); NV];
            for v in 0..NV {
                bv[v] = V::load(b.add(v * V::LANES));
            }
            for r in 0..MR {
                let x = V::splat(*a.add(r * lda + k));
                for v in 0..NV {
                    acc[r][v] = x.mul_add(bv[v], acc[r][v]);
                }
            }
            b = b.add(PANEL);
        }
    }
    acc
}

/// # Safety
/// `V`'s ISA must be enabled; `t.a` rows `0..MR` readable along every segment, `t.b` readable
/// for `k` rows of `NV * V::LANES` floats at stride `PANEL`, `t.bias` for `NV * V::LANES`
/// floats, and `t.c` rows `0..MR` writable for `t.cols <= NV * V::LANES` floats.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops over const-size arrays unroll into registers
unsafe fn microkernel<V: F32Vec, const MR: usize, const NV: usize>(t: &Tile<'_>) {
    // SAFETY: every access below is within the bounds the caller guarantees.
    unsafe {
        let mut acc = [[V::splat(0.0); NV]; MR];
        for v in 0..NV {
            let bias = V::load(t.bias.add(v * V::LANES));
            for r in 0..MR {
                acc[r][v] = bias;
            }
        }
        let mut b = t.b;
        for seg in t.segs {
            acc = reduce::<V, MR, NV>(acc, t.a.add(seg.offset), t.lda, seg.len, b);
            b = b.add(seg.len * PANEL);
        }
        for r in 0..MR {
            let c = t.c.add(r * t.ldc);
            for v in 0..NV {
                let x = if t.act == Act::Relu6 {
                    acc[r][v].relu6()
                } else {
                    acc[r][v]
                };
                let col = v * V::LANES;
                if col + V::LANES <= t.cols {
                    x.store(c.add(col));
                } else if col < t.cols {
                    x.store_prefix(c.add(col), t.cols - col);
                }
            }
        }
    }
}

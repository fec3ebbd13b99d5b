//! The GEMM behind pointwise, full and FC layers: `C = act(A * B + bias)`.
//!
//! `A` is an activation read in place, row `i` at `a + i * lda`. Its reduction index `k` is
//! either contiguous (a pointwise layer: a pixel's channels) or mapped through a table of
//! offsets, `a(i, k) = a[i * lda + offsets[k]]`: for a `k x k` convolution the table lists
//! where each (kernel row, kernel column, channel) input lies relative to the window's corner,
//! which makes the convolution an implicit GEMM read straight from the input, with no im2col
//! copy and no layout conversion. `B` is packed ([`PackedB`]) in 32-column panels.
//!
//! The microkernel keeps an `MR x (NV * lanes)` tile of `C` in registers: per reduction step
//! it loads `NV` vectors of the panel and broadcasts `MR` values of `A`, then issues
//! `MR * NV` FMAs. With AVX-512 the tile is 14 x 32 (28 accumulators + 2 panel vectors + 1
//! broadcast = 31 of 32 registers): 28 independent FMA chains cover the 4-cycle latency of
//! two FMA pipes (8 in flight), and 16 loads (2 panel, 14 broadcast) per 28 FMAs leave the
//! load ports idle half the time. Bias initialises the accumulators and the activation
//! (ReLU6, ReLU, hard-swish, or the squeeze-and-excite gate's hard-sigmoid) is applied before
//! the single store, so `C` is written once. 14 also divides every MobileNet v1 224 spatial
//! size (112^2, 56^2, 28^2, 14^2, 7^2). The pointwise layers run at 90-98% of the measured
//! AVX-512 FMA peak of one core.

use std::ops::Range;

use super::act::{Act, with_act};
use super::pack::{PANEL, PackedB};
use super::parallel::Work;
use super::simd::{self, F32Vec, Isa, Kernel, prefetch};

/// Rows of `A` kept in an L2-sized chunk while all panels stream past it.
const CHUNK_FLOATS: usize = 64 * 1024;

/// A `B` this small (64 KiB) is kept hot across all panels of a tile.
const SMALL_B_FLOATS: usize = 16 * 1024;

/// Tile shape per ISA: (rows, columns per tile, lanes per vector).
const fn tile_shape(isa: Isa) -> (usize, usize, usize) {
    match isa {
        Isa::Avx512 => (14, 32, 16),
        Isa::Avx2 => (6, 16, 8),
        // SSE2 has 16 registers: 2 x 16 keeps the 8 accumulators, 4 panel and 1 broadcast
        // vectors in them (4 x 16 spilled and ran at half speed); NEON has 32.
        Isa::Portable if cfg!(target_arch = "x86_64") => (2, 16, 8),
        Isa::Portable => (4, 16, 8),
    }
}

/// The largest tile height for `isa`: row shares are split on multiples of it.
fn tile_rows(isa: Isa) -> usize {
    tile_shape(isa).0
}

/// One GEMM: `c[i, j] = act(bias[j] + sum_k a(i, k) * b[k, j])` for the rows and panels a
/// thread is given.
pub(crate) struct Gemm<'a> {
    pub(crate) a: *const f32,
    pub(crate) lda: usize,
    /// `b.k` offsets of `a(i, k)` from row `i`'s start; `None` for `0..b.k`.
    pub(crate) offsets: Option<&'a [u32]>,
    pub(crate) b: &'a PackedB,
    pub(crate) c: *mut f32,
    pub(crate) ldc: usize,
    pub(crate) act: Act,
    /// Null, or a tensor laid out like `C` (row stride `ldc`) added after the bias, before the
    /// activation: v2/v3's residual connection, `c = act(a * b + bias + residual)`. The
    /// columns stored must be whole vectors of the ISA (padded channels, never the logits).
    pub(crate) residual: *const f32,
}

/// Cache lines a tile prefetches while it computes: two lines at `start + i * step` floats
/// for reduction step `i`. Never dereferenced, so it may point past the panel.
#[derive(Clone, Copy)]
struct Prefetch {
    start: *const f32,
    step: usize,
}

/// One microkernel call's operands. Passed to the kernel by reference: as a function
/// argument the reference tells LLVM that nothing the kernel writes changes these fields, so
/// they stay in registers (inside a struct passed by value, the stem's tiles reloaded them and
/// ran 9% slower).
struct Tile {
    /// Rows, at most the ISA's tile rows.
    rows: usize,
    a: *const f32,
    lda: usize,
    k: usize,
    /// `k` offsets (see [`Gemm::offsets`]), or null for contiguous rows.
    offsets: *const u32,
    /// Panel start plus the tile's column offset; rows are `PANEL` floats apart.
    b: *const f32,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
    /// Columns to store (the rest of the tile is computed and dropped).
    cols: usize,
    act: Act,
    /// As [`Gemm::residual`], offset like `c`.
    residual: *const f32,
    prefetch: Option<Prefetch>,
}

impl Gemm<'_> {
    /// Computes rows `rows` of `C` for panels `panels`.
    ///
    /// # Safety
    /// `isa` must be available. For every row `i` in `rows` and `k < b.k`, `a + i * lda + k`
    /// (or `+ offsets[k]`) must be readable, and `c + i * ldc` writable for
    /// `b.n` floats; no other thread may write those parts of `C` concurrently.
    pub(crate) unsafe fn run(&self, isa: Isa, rows: Range<usize>, panels: Range<usize>) {
        debug_assert!(self.offsets.is_none_or(|o| o.len() == self.b.k));
        let mr = tile_shape(isa).0;
        if self.b.k * self.b.n <= SMALL_B_FLOATS {
            // B stays in L1/L2: finish each tile's full output rows (every panel) while its A
            // rows are hot, so C's cache lines are written whole, at once.
            for (row, height) in tiles(rows, mr) {
                for p in panels.clone() {
                    // SAFETY: forwarded from the caller.
                    unsafe { self.panel(isa, row, height, p, None) };
                }
            }
            return;
        }
        // Large B: stream each panel once per L2-sized chunk of A rows.
        let chunk = (CHUNK_FLOATS / self.b.k.max(1)).max(mr) / mr * mr;
        let mut r0 = rows.start;
        while r0 < rows.end {
            let r1 = (r0 + chunk).min(rows.end);
            // At least 2 floats of panel per reduction step and prefetching tile.
            let prefetchers = tiles(r0..r1, mr).count().min(PANEL / 2);
            for p in panels.clone() {
                // The next panel comes from memory (the late layers' weights do not stay in
                // cache between passes); each tile of this panel prefetches its share of it,
                // so the fetch overlaps all of this panel's tiles instead of stalling the
                // first tile of the next.
                // Past this range too: with panels claimed one unit at a time, the next unit
                // is usually this thread's.
                let next = (p + 1 < self.b.panels()).then(|| self.b.panel(p + 1));
                for (t, (row, height)) in tiles(r0..r1, mr).enumerate() {
                    let prefetch = next.filter(|_| t < prefetchers).map(|next| Prefetch {
                        start: next.wrapping_add(t * self.b.k * PANEL / prefetchers),
                        step: PANEL / prefetchers,
                    });
                    // SAFETY: forwarded from the caller.
                    unsafe { self.panel(isa, row, height, p, prefetch) };
                }
            }
            r0 = r1;
        }
    }

    /// Rows `row..row + height` of panel `p`, one tile per column group.
    ///
    /// # Safety
    /// As for [`Gemm::run`], for these rows; `height <= tile_rows(isa)`.
    #[inline(always)]
    unsafe fn panel(&self, isa: Isa, row: usize, height: usize, p: usize, prefetch: Option<Prefetch>) {
        let (_, group, _) = tile_shape(isa);
        let panel_cols = (self.b.n - p * PANEL).min(PANEL);
        for g0 in (0..panel_cols).step_by(group) {
            let cols = (panel_cols - g0).min(group);
            // SAFETY: the rows are the caller's; `g0 + cols <= panel_cols` keeps the panel,
            // bias and C columns in bounds (panels and bias are padded to whole `PANEL`s).
            unsafe {
                let tile = Tile {
                    rows: height,
                    a: self.a.add(row * self.lda),
                    lda: self.lda,
                    k: self.b.k,
                    offsets: self.offsets.map_or(std::ptr::null(), <[u32]>::as_ptr),
                    b: self.b.panel(p).add(g0),
                    bias: self.b.bias(p).add(g0),
                    c: self.c.add(row * self.ldc + p * PANEL + g0),
                    ldc: self.ldc,
                    cols,
                    act: self.act,
                    residual: if self.residual.is_null() {
                        std::ptr::null()
                    } else {
                        self.residual.add(row * self.ldc + p * PANEL + g0)
                    },
                    prefetch: prefetch.filter(|_| g0 == 0),
                };
                simd::dispatch(isa, &tile);
            }
        }
    }
}

/// `rows` cut into tiles of at most `mr` rows with balanced heights: 49 rows become
/// 13 + 12 + 12 + 12, not 14 + 14 + 14 + 7.
fn tiles(rows: Range<usize>, mr: usize) -> impl Iterator<Item = (usize, usize)> {
    let len = rows.len();
    let count = len.div_ceil(mr);
    (0..count).map(move |t| {
        let start = rows.start + t * (len / count) + t.min(len % count);
        (start, len / count + usize::from(t < len % count))
    })
}

/// Runs an `m`-row GEMM on all threads: each claims rows or weight panels, whichever operand
/// is larger (`A` is `m x k`, `B` is `k x n`), so that each thread streams part of it, unless
/// there are too few rows for every thread to get two tiles. Pointwise layers (early ones
/// split rows, late ones panels) and the FC layer schedule their GEMMs here.
///
/// # Safety
/// As for [`Gemm::run`] over all `m` rows and panels; all threads must call this together.
pub(crate) unsafe fn run_shared(gemm: &Gemm<'_>, work: &Work<'_>, isa: Isa, m: usize) {
    let panels = gemm.b.panels();
    let mr = tile_rows(isa);
    let by_panels = panels >= work.threads && (gemm.b.n > m || m < 2 * mr * work.threads);
    if by_panels {
        // SAFETY: forwarded; claimed panels are disjoint column ranges of C.
        work.for_each(panels, 1, |panels| unsafe { gemm.run(isa, 0..m, panels) });
    } else {
        // SAFETY: forwarded; claimed rows are disjoint row ranges of C.
        work.for_each(m, mr, |rows| unsafe { gemm.run(isa, rows, 0..panels) });
    }
}

/// How a tile finds `a(i, k)`: `a[i * lda + k]`, or `a[i * lda + offsets[k]]` with `lda` at
/// run time or a constant. The constants are the NCHW stem's (stride 1 or 2): with `lda`
/// known, the 14 rows are immediate displacements from one pointer, whereas a run-time `lda`
/// with a table made LLVM keep 14 row pointers, spill them and reload them on every step.
const CONTIGUOUS: u8 = 0;
const TABLE: u8 = 1;
const TABLE_LDA1: u8 = 2;
const TABLE_LDA2: u8 = 3;

impl Kernel for &Tile {
    type Output = ();

    /// Instantiates the microkernel for every tile height up to the ISA's maximum, inside the
    /// one function [`simd::dispatch`] compiles with the ISA's features.
    ///
    /// # Safety
    /// `V`'s ISA must be enabled; the tile must be valid for its rows and its columns rounded
    /// up to whole vectors of `V`.
    #[inline(always)]
    unsafe fn run<V: F32Vec>(self) {
        let (tile, mr, nv) = (self, self.rows, self.cols.div_ceil(V::LANES));
        // Heights above `V`'s tile rows are never asked for, and the guard is a constant for
        // each `V`, so those arms are not compiled at all (AVX2 gets 6 heights, not 14).
        macro_rules! heights {
            ($($h:literal)+) => {
                match mr {
                    // SAFETY: forwarded from the caller.
                    $($h if $h <= const { tile_shape(V::ISA).0 } => unsafe { by_width::<V, $h>(nv, tile) },)+
                    _ => unreachable!("no {mr}-row tile"),
                }
            };
        }
        heights!(1 2 3 4 5 6 7 8 9 10 11 12 13 14)
    }
}

/// The microkernel for `MR` rows, `nv` vectors and the tile's way of addressing `A`.
///
/// # Safety
/// As for [`microkernel`], with `NV = nv`.
#[inline(always)]
unsafe fn by_width<V: F32Vec, const MR: usize>(nv: usize, tile: &Tile) {
    let mode = match (tile.offsets.is_null(), tile.lda) {
        (true, _) => CONTIGUOUS,
        (false, 1) => TABLE_LDA1,
        (false, 2) => TABLE_LDA2,
        (false, _) => TABLE,
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        match (nv, mode) {
            (1, CONTIGUOUS) => microkernel::<V, MR, 1, CONTIGUOUS>(tile),
            (2, CONTIGUOUS) => microkernel::<V, MR, 2, CONTIGUOUS>(tile),
            (1, TABLE) => microkernel::<V, MR, 1, TABLE>(tile),
            (2, TABLE) => microkernel::<V, MR, 2, TABLE>(tile),
            (1, TABLE_LDA1) => microkernel::<V, MR, 1, TABLE_LDA1>(tile),
            (2, TABLE_LDA1) => microkernel::<V, MR, 2, TABLE_LDA1>(tile),
            (1, TABLE_LDA2) => microkernel::<V, MR, 1, TABLE_LDA2>(tile),
            (2, TABLE_LDA2) => microkernel::<V, MR, 2, TABLE_LDA2>(tile),
            _ => unreachable!("no {MR}x{nv} tile"),
        }
    }
}

/// `C[0..MR, tile columns] = act(bias + A[0..MR, 0..k] * B[0..k, tile columns] [+ residual])`,
/// `A` addressed as `MODE` says.
///
/// # Safety
/// `V`'s ISA must be enabled; `t.a + r * lda + offset(k)` readable for rows `r < MR` and
/// `k < t.k`; `t.b` readable for `t.k` rows of `NV * V::LANES` floats at stride `PANEL`,
/// `t.bias` for `NV * V::LANES` floats, and `t.c` rows `0..MR` writable for
/// `t.cols <= NV * V::LANES` floats; a non-null `t.residual` readable like `t.c`, with `t.cols`
/// a multiple of `V::LANES`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops over const-size arrays unroll into registers
unsafe fn microkernel<V: F32Vec, const MR: usize, const NV: usize, const MODE: u8>(t: &Tile) {
    // SAFETY: every access below is within the bounds the caller guarantees.
    unsafe {
        let mut acc = [[V::splat(0.0); NV]; MR];
        for v in 0..NV {
            let bias = V::load(t.bias.add(v * V::LANES));
            for r in 0..MR {
                acc[r][v] = bias;
            }
        }
        let acc = reduce::<V, MR, NV, MODE>(acc, t);
        with_act!(t.act, act => store::<V, MR, NV>(acc, t, act));
    }
}

/// The epilogue: residual, activation and the one store of the tile.
///
/// # Safety
/// As for [`microkernel`].
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops over const-size arrays unroll into registers
unsafe fn store<V: F32Vec, const MR: usize, const NV: usize>(acc: [[V; NV]; MR], t: &Tile, act: Act) {
    // SAFETY: every access below is within the bounds the caller guarantees.
    unsafe {
        for r in 0..MR {
            let c = t.c.add(r * t.ldc);
            for v in 0..NV {
                let col = v * V::LANES;
                let mut x = acc[r][v];
                if !t.residual.is_null() && col < t.cols {
                    debug_assert!(col + V::LANES <= t.cols, "residual columns are whole vectors");
                    x = x.add(V::load(t.residual.add(r * t.ldc + col)));
                }
                let x = act.apply(x);
                if col + V::LANES <= t.cols {
                    x.store(c.add(col));
                } else if col < t.cols {
                    x.store_prefix(c.add(col), t.cols - col);
                }
            }
        }
    }
}

/// `acc + A[0..MR, 0..k] * B[0..k, tile columns]`. The accumulators go in and out by value:
/// with the reduction loop written inline next to the epilogue, LLVM kept a stack copy of the
/// array and stored all 28 accumulators on every step, halving the FMA rate.
///
/// # Safety
/// As for [`microkernel`].
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops over const-size arrays unroll into registers
unsafe fn reduce<V: F32Vec, const MR: usize, const NV: usize, const MODE: u8>(
    mut acc: [[V; NV]; MR],
    t: &Tile,
) -> [[V; NV]; MR] {
    // SAFETY: within the bounds the caller guarantees.
    unsafe {
        let lda = match MODE {
            TABLE_LDA1 => 1,
            TABLE_LDA2 => 2,
            _ => t.lda,
        };
        let mut b = t.b;
        let (mut pf, pf_step) = t.prefetch.map_or((std::ptr::null(), 0), |p| (p.start, p.step));
        for k in 0..t.k {
            if !pf.is_null() {
                prefetch(pf);
                prefetch(pf.wrapping_add(16));
                pf = pf.wrapping_add(pf_step);
            }
            let a = if MODE == CONTIGUOUS {
                t.a.add(k)
            } else {
                t.a.add(*t.offsets.add(k) as usize)
            };
            let mut bv = [V::splat(0.0); NV];
            for v in 0..NV {
                bv[v] = V::load(b.add(v * V::LANES));
            }
            for r in 0..MR {
                let x = V::splat(*a.add(r * lda));
                for v in 0..NV {
                    acc[r][v] = x.mul_add(bv[v], acc[r][v]);
                }
            }
            b = b.add(PANEL);
        }
    }
    acc
}

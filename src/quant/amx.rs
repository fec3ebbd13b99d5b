//! The AMX-INT8 GEMM: [`super::kernels::gemm`]'s bytes on Intel's tile registers (Sapphire
//! Rapids and later), with the AVX-512 epilogue of [`super::vnni`]; the other layers run the
//! VNNI kernels (every AMX CPU has AVX-512 VNNI).
//!
//! **Instructions** (Intel SDM vol. 2, "Intel AMX instructions"; Intel ISA Extensions reference
//! ch. 3): palette 1 has eight tiles `tmm0`-`tmm7` of up to 16 rows x 64 bytes, shaped by
//! `LDTILECFG` from a 64-byte block ([`TileConfig`]); `TILELOADD` / `TILESTORED` move a tile
//! from / to rows `stride` bytes apart; `TDPBUSD tmm_c, tmm_a, tmm_b` adds to each int32
//! `C[m][n]` the dot products `sum_g sum_i u8(A[m][4g + i]) * s8(B[g][4n + i])`, wrapping: a
//! 16 x 16 block of C from 16 rows x 64 inputs of A and the 16 x 64 weights of B, 16,384
//! multiply-accumulates per instruction. B's layout, 16 groups of 4 inputs x 16 channels, is
//! [`GemmWeights::packed`]'s (16 channels of a block, groups one block row apart); its groups
//! are padded to [`super::kernels::TILE_GROUPS`] so every tile is whole.
//!
//! **Schedule.** All eight tiles are 16 x 64 bytes. A block of up to 32 rows x 32 channels is
//! four C tiles (`tmm0`-`tmm3`), fed per 64 inputs by two A tiles (`tmm4`, `tmm5`) and two B
//! tiles (`tmm6`, `tmm7`): each tile load feeds two `TDPBUSD`s. A's rows are read in place
//! (past `k`, a row's last tile reads the next row's first bytes, which meet zero weights)
//! wherever 32 rows remain and the last row's tile ends inside the input; otherwise (the last
//! rows) they are copied to a zero-padded 32-row buffer first, so no tile reads past the input.
//! (Copying every block whose `k` is not a multiple of 64 cost 0.07 ms of v2 1.0_224's forward
//! pass with the tile instructions left out, on AMD EPYC.) C is stored to a 32 x 64 int32
//! buffer per block of 64 channels, and the epilogue of the VNNI GEMM (column constants, row
//! corrections, [`Epilogue`], packs) writes the bytes.
//!
//! **Operating system and detection.** Stable Rust has neither AMX intrinsics nor
//! `is_x86_feature_detected!("amx-int8")`, so the instructions are `asm!` and the detection is
//! CPUID leaf 7 (EDX bit 24 AMX-TILE, bit 25 AMX-INT8) and XCR0 bits 17-18 (the OS saves tile
//! state). Linux then requires `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)` before the
//! first tile instruction (Documentation/arch/x86/xstate.rst), else the instruction faults.
//! Last, a probe runs the schedule's 2 x 2 block product (every tile and every `TDPBUSD` of the
//! GEMM) on known data and compares it with [`Emulated`]; only then are the kernels offered
//! ([`support`]), so a CPU or hypervisor that computes otherwise falls back to AVX-512 VNNI.
//!
//! **Testing.** The schedule is generic over [`TileUnit`]: the CPU's tiles ([`Tiles`]) or a
//! software model of the four instructions as the SDM defines them ([`Emulated`]). The model
//! runs on every machine with AVX-512 VNNI, so the blocking, the padding, the B offsets and the
//! epilogue are tested byte for byte against the portable GEMM here and in whole networks; on
//! a CPU with AMX the same tests run on the tiles.

use std::arch::x86_64::*;
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use super::kernels::{GROUP, GemmWeights, LANES, Requantize, TILE_GROUPS};
use super::vnni::{self, Epilogue};

/// Rows of every tile.
const TILE_ROWS: usize = 16;
/// Bytes per tile row: 64 inputs of A, 16 int32 of C, 16 channels x 4 inputs of B.
const TILE_BYTES: usize = 64;
/// Rows per block of the schedule: two A tiles.
const BLOCK_ROWS: usize = 2 * TILE_ROWS;
/// Output channels per epilogue pass: one block of the packed weights.
const BLOCK_CHANNELS: usize = 4 * LANES;

/// Why the AMX kernels do or do not run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    Ready,
    /// The epilogue and the other layers are the AVX-512 VNNI kernels.
    NoAvx512Vnni,
    /// CPUID reports no AMX-TILE or no AMX-INT8.
    NoAmxInt8,
    /// The CPU has AMX but the OS does not save tile state (XCR0 bits 17-18 clear).
    TileStateOff,
    /// `arch_prctl(ARCH_REQ_XCOMP_PERM)` failed with this errno.
    Refused(i32),
    /// No way to ask this OS for the tile state is implemented (Linux only).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    UnsupportedOs,
    /// The probe's block product gave other values than the instructions' definition.
    ProbeMismatch,
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Support::Ready => write!(f, "AMX-INT8 is ready"),
            Support::NoAvx512Vnni => write!(f, "this CPU lacks AVX-512 VNNI, which the AMX kernels also use"),
            Support::NoAmxInt8 => write!(f, "this CPU lacks AMX-INT8"),
            Support::TileStateOff => write!(f, "the operating system does not enable AMX tile state (XCR0)"),
            Support::Refused(errno) => write!(
                f,
                "Linux refused the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM: {})",
                std::io::Error::from_raw_os_error(*errno)
            ),
            Support::UnsupportedOs => write!(f, "AMX tile state is only requested on Linux"),
            Support::ProbeMismatch => write!(f, "the AMX probe's tile products came out wrong"),
        }
    }
}

/// Whether the AMX kernels run here, found once per process (the first call asks Linux for
/// the tile state; the permission is the process's).
pub(crate) fn support() -> Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    *SUPPORT.get_or_init(detect)
}

/// Whether this CPU and OS run the kernels of this module.
pub(crate) fn available() -> bool {
    support() == Support::Ready
}

fn detect() -> Support {
    if !vnni::available() {
        return Support::NoAvx512Vnni;
    }
    if !cpu_has_amx_int8() {
        return Support::NoAmxInt8;
    }
    if !os_saves_tiles() {
        return Support::TileStateOff;
    }
    if let Err(support) = request_tile_state() {
        return support;
    }
    // SAFETY: the CPU has AMX-TILE and AMX-INT8, the OS saves the tile state and has given
    // this process permission to use it (checked above).
    let tiles = unsafe { Tiles::configure() };
    if probe(tiles) == probe(Emulated::new()) {
        Support::Ready
    } else {
        Support::ProbeMismatch
    }
}

/// CPUID.(EAX=7, ECX=0):EDX bits 24 (AMX-TILE) and 25 (AMX-INT8).
pub(crate) fn cpu_has_amx_int8() -> bool {
    if __cpuid(0).eax < 7 {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    edx >> 24 & 1 == 1 && edx >> 25 & 1 == 1
}

/// XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA), read where CPUID.1:ECX.OSXSAVE says `XGETBV`
/// may be executed.
fn os_saves_tiles() -> bool {
    if __cpuid(1).ecx >> 27 & 1 == 0 {
        return false;
    }
    #[target_feature(enable = "xsave")]
    fn xcr0() -> u64 {
        // SAFETY: OSXSAVE is set (checked by the caller), so XGETBV runs; XCR0 is register 0.
        unsafe { _xgetbv(0) }
    }
    // SAFETY: OSXSAVE implies the CPU has XSAVE, the feature `xcr0` is compiled for.
    unsafe { xcr0() >> 17 & 3 == 3 }
}

/// Asks Linux for the tile data state (Documentation/arch/x86/xstate.rst).
#[cfg(target_os = "linux")]
fn request_tile_state() -> Result<(), Support> {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these arguments only changes the process's permitted xstate
    // features; it reads and writes no memory of ours.
    let result = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) };
    if result == 0 {
        Ok(())
    } else {
        Err(Support::Refused(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    }
}

#[cfg(not(target_os = "linux"))]
fn request_tile_state() -> Result<(), Support> {
    Err(Support::UnsupportedOs)
}

/// What the schedule's block product ([`Product`], 2 x 2 tiles: every tile, every
/// `TDPBUSD` of the GEMM, strided loads and stores) leaves in C for known A and B with both
/// signs and the extremes, over three steps of 64 inputs.
fn probe<T: TileUnit>(mut tiles: T) -> Vec<u8> {
    const STEPS: usize = 3;
    let a_stride = STEPS * TILE_BYTES + 8;
    let b_stride = BLOCK_CHANNELS * GROUP;
    let a: Vec<u8> = (0..BLOCK_ROWS * a_stride).map(|i| (i * 37 + 11) as u8).collect();
    let b: Vec<u8> = (0..STEPS * TILE_GROUPS * b_stride)
        .map(|i| (i * 53 + 200) as u8)
        .collect();
    let mut c = vec![0u8; BLOCK_ROWS * BLOCK_CHANNELS * 4];
    let product = Product {
        a: a.as_ptr(),
        a_stride,
        b: b.as_ptr(),
        b_stride,
        steps: STEPS,
        c: c.as_mut_ptr(),
    };
    // SAFETY: A holds 32 rows of 3 x 64 bytes, `a_stride` apart; B 48 rows of 128 bytes,
    // `b_stride` apart; C 32 rows of 256 bytes.
    unsafe { product.run::<T, true, true>(&mut tiles) };
    c
}

/// The four tile instructions the GEMM is written in, on tiles of 16 rows x 64 bytes.
pub(crate) trait TileUnit {
    /// `TILEZERO tmmT`.
    fn zero<const T: u8>(&mut self);
    /// `TILELOADD tmmT, [base + stride]`: 16 rows of 64 bytes, `stride` bytes apart.
    ///
    /// # Safety
    /// The 16 rows of 64 bytes at `base + r * stride` must be readable.
    unsafe fn load<const T: u8>(&mut self, base: *const u8, stride: usize);
    /// `TILESTORED [base + stride], tmmT`.
    ///
    /// # Safety
    /// The 16 rows of 64 bytes at `base + r * stride` must be writable.
    unsafe fn store<const T: u8>(&mut self, base: *mut u8, stride: usize);
    /// `TDPBUSD tmmC, tmmA, tmmB`: C (int32) += A (uint8) x B (int8, groups of four).
    fn dpbusd<const C: u8, const A: u8, const B: u8>(&mut self);
}

/// The tile configuration `LDTILECFG` reads (palette 1): palette, start row, 14 reserved
/// bytes, the bytes per row of tiles 0-15 (u16 each), the rows of tiles 0-15.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<TileConfig>() == 64);

/// This thread's tile registers, configured as eight tiles of 16 x 64 bytes; released when
/// dropped. Not `Send`: the configuration belongs to the thread that loaded it.
pub(crate) struct Tiles {
    _thread: PhantomData<*const ()>,
}

impl Tiles {
    /// Loads the configuration.
    ///
    /// # Safety
    /// The CPU must have AMX-TILE and AMX-INT8 and the OS must have granted this process the
    /// tile state ([`available`], or the checks before the probe).
    pub(crate) unsafe fn configure() -> Tiles {
        let config = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: std::array::from_fn(|t| if t < 8 { TILE_BYTES as u16 } else { 0 }),
            rows: std::array::from_fn(|t| if t < 8 { TILE_ROWS as u8 } else { 0 }),
        };
        // SAFETY: the CPU runs AMX and the OS saves its state (the caller's contract); the
        // 64-byte block is a valid palette-1 configuration (8 tiles within the palette's 16
        // rows x 64 bytes, the rest zero).
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly, preserves_flags));
        }
        Tiles { _thread: PhantomData }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured by `configure` (AMX present); TILERELEASE returns
        // them to the init state, so the thread's later context switches save no tile data.
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem, preserves_flags)) };
    }
}

impl TileUnit for Tiles {
    #[inline(always)]
    fn zero<const T: u8>(&mut self) {
        const { assert!(T < 8, "palette 1 has tiles 0-7") };
        // SAFETY: a `Tiles` exists only after LDTILECFG on an AMX CPU; T names a configured tile.
        unsafe { std::arch::asm!("tilezero tmm{t}", t = const T, options(nostack, nomem, preserves_flags)) };
    }

    #[inline(always)]
    unsafe fn load<const T: u8>(&mut self, base: *const u8, stride: usize) {
        const { assert!(T < 8, "palette 1 has tiles 0-7") };
        // SAFETY: configured tiles (as in `zero`); the 16 rows are readable (the caller's
        // contract).
        unsafe {
            std::arch::asm!(
                "tileloadd tmm{t}, [{base} + {stride} * 1]",
                t = const T,
                base = in(reg) base,
                stride = in(reg) stride,
                options(nostack, readonly, preserves_flags),
            );
        }
    }

    #[inline(always)]
    unsafe fn store<const T: u8>(&mut self, base: *mut u8, stride: usize) {
        const { assert!(T < 8, "palette 1 has tiles 0-7") };
        // SAFETY: configured tiles (as in `zero`); the 16 rows are writable (the caller's
        // contract).
        unsafe {
            std::arch::asm!(
                "tilestored [{base} + {stride} * 1], tmm{t}",
                t = const T,
                base = in(reg) base,
                stride = in(reg) stride,
                options(nostack, preserves_flags),
            );
        }
    }

    #[inline(always)]
    fn dpbusd<const C: u8, const A: u8, const B: u8>(&mut self) {
        // TDPBUSD faults (#UD) unless the three tiles differ.
        const {
            assert!(
                C < 8 && A < 8 && B < 8 && C != A && C != B && A != B,
                "three distinct tiles"
            )
        };
        // SAFETY: configured tiles (as in `zero`), all 16 x 64 bytes, so A's 64 bytes per row
        // match B's 16 rows and C's and B's row widths agree, as TDPBUSD requires.
        unsafe {
            std::arch::asm!(
                "tdpbusd tmm{c}, tmm{a}, tmm{b}",
                c = const C,
                a = const A,
                b = const B,
                options(nostack, nomem, preserves_flags),
            );
        }
    }
}

/// The tile instructions in software, as the SDM's pseudocode defines them: what the
/// schedule is tested with where the CPU has no AMX, and what the probe checks the CPU by.
pub(crate) struct Emulated {
    tiles: Box<[[u8; TILE_ROWS * TILE_BYTES]; 8]>,
}

impl Emulated {
    pub(crate) fn new() -> Self {
        Emulated {
            tiles: Box::new([[0; TILE_ROWS * TILE_BYTES]; 8]),
        }
    }
}

impl TileUnit for Emulated {
    fn zero<const T: u8>(&mut self) {
        self.tiles[usize::from(T)] = [0; TILE_ROWS * TILE_BYTES];
    }

    unsafe fn load<const T: u8>(&mut self, base: *const u8, stride: usize) {
        for (r, row) in self.tiles[usize::from(T)]
            .chunks_exact_mut(TILE_BYTES)
            .enumerate()
        {
            // SAFETY: row r's 64 bytes are readable (the caller's contract).
            let src = unsafe { std::slice::from_raw_parts(base.add(r * stride), TILE_BYTES) };
            row.copy_from_slice(src);
        }
    }

    unsafe fn store<const T: u8>(&mut self, base: *mut u8, stride: usize) {
        for (r, row) in self.tiles[usize::from(T)].chunks_exact(TILE_BYTES).enumerate() {
            // SAFETY: row r's 64 bytes are writable (the caller's contract).
            let dst = unsafe { std::slice::from_raw_parts_mut(base.add(r * stride), TILE_BYTES) };
            dst.copy_from_slice(row);
        }
    }

    fn dpbusd<const C: u8, const A: u8, const B: u8>(&mut self) {
        // As the instruction requires (it faults otherwise).
        const {
            assert!(
                C < 8 && A < 8 && B < 8 && C != A && C != B && A != B,
                "three distinct tiles"
            )
        };
        let (a, b) = (self.tiles[usize::from(A)], self.tiles[usize::from(B)]);
        let c = &mut self.tiles[usize::from(C)];
        for m in 0..TILE_ROWS {
            for n in 0..TILE_BYTES / 4 {
                let at = m * TILE_BYTES + 4 * n;
                let mut sum = i32::from_le_bytes(c[at..at + 4].try_into().expect("4 bytes"));
                for g in 0..TILE_BYTES / 4 {
                    for i in 0..4 {
                        let x = i32::from(a[m * TILE_BYTES + 4 * g + i]);
                        let w = i32::from(b[g * TILE_BYTES + 4 * n + i] as i8);
                        sum = sum.wrapping_add(x * w);
                    }
                }
                c[at..at + 4].copy_from_slice(&sum.to_le_bytes());
            }
        }
    }
}

/// [`super::kernels::gemm`]'s contract and bytes. Panics where [`available`] is false.
pub(crate) fn gemm(a: &[u8], rows: usize, w: &GemmWeights, requantize: &Requantize, out: &mut [u8]) {
    assert!(available(), "{}", support());
    check_shapes(a, rows, w, out);
    // SAFETY: `available` checked AMX-INT8, the OS's permission and AVX-512 VNNI.
    let mut tiles = unsafe { Tiles::configure() };
    // SAFETY: AVX-512F, BW and VNNI are present (`available`); the shapes are checked.
    unsafe { gemm_tiles(&mut tiles, a, rows, w, requantize, out) }
}

/// [`gemm`] on [`Emulated`] tiles (for tests, on any CPU with AVX-512 VNNI).
#[cfg(test)]
pub(crate) fn gemm_emulated(a: &[u8], rows: usize, w: &GemmWeights, requantize: &Requantize, out: &mut [u8]) {
    assert!(vnni::available(), "this CPU lacks AVX-512 VNNI");
    check_shapes(a, rows, w, out);
    // SAFETY: AVX-512F, BW and VNNI are present (asserted); the shapes are checked.
    unsafe { gemm_tiles(&mut Emulated::new(), a, rows, w, requantize, out) }
}

fn check_shapes(a: &[u8], rows: usize, w: &GemmWeights, out: &[u8]) {
    assert_eq!(a.len(), rows * w.k);
    assert_eq!(out.len(), rows * w.o);
    assert!(w.groups.is_multiple_of(TILE_GROUPS) && w.groups * GROUP >= w.k);
    assert_eq!(w.packed.len(), w.groups * w.o_pad * GROUP);
    assert!(w.o <= w.o_pad && w.o_pad.is_multiple_of(LANES) && w.column_bias.len() == w.o);
}

/// The GEMM on `tiles`.
///
/// # Safety
/// The CPU must have AVX-512F, BW and VNNI, and the shapes must be those [`check_shapes`]
/// checks.
#[target_feature(enable = "avx512vnni,avx512bw,avx512f")]
unsafe fn gemm_tiles<T: TileUnit>(
    tiles: &mut T,
    a: &[u8],
    rows: usize,
    w: &GemmWeights,
    requantize: &Requantize,
    out: &mut [u8],
) {
    let (k, o) = (w.k, w.o);
    let k_pad = w.groups * GROUP;
    let steps = k_pad / TILE_BYTES;
    let corrections = vnni::corrections(a, k, w.row_factor);
    let epilogue = Epilogue::new(requantize);
    let mut padded = Vec::new();
    // C of one block of rows and channels, int32, rows 64 channels (256 bytes) apart.
    let mut c = vec![0i32; BLOCK_ROWS * BLOCK_CHANNELS];
    for first_row in (0..rows).step_by(BLOCK_ROWS) {
        let count = BLOCK_ROWS.min(rows - first_row);
        let block = &a[first_row * k..(first_row + count) * k];
        // In place where the tiles' last bytes, `k_pad` from the last row's start, are still
        // inside `a`: past `k` a row's tile reads the next row's first bytes, which meet the
        // zero weights past `k` (so add nothing).
        let (src, stride) = if count == BLOCK_ROWS && (first_row + count - 1) * k + k_pad <= a.len() {
            // SAFETY: row `first_row` is inside `a` (first_row < rows); the pointer keeps
            // `a`'s provenance, all of which the tiles may read.
            (unsafe { a.as_ptr().add(first_row * k) }, k)
        } else {
            pad_rows(block, k, k_pad, &mut padded);
            (padded.as_ptr(), k_pad)
        };
        let two_rows = count > TILE_ROWS;
        for start in (0..o).step_by(BLOCK_CHANNELS) {
            let (first, b_stride) = w.column(start);
            let column_tiles = BLOCK_CHANNELS.min(w.o_pad - start) / LANES;
            for pair in (0..column_tiles).step_by(2) {
                let product = Product {
                    a: src,
                    a_stride: stride,
                    // SAFETY: channel start + 16 pair is inside the padded channels.
                    b: unsafe { w.packed.as_ptr().add(first + pair * LANES * GROUP) }.cast(),
                    b_stride,
                    steps,
                    // SAFETY: column 16 pair < 64 of the buffer.
                    c: unsafe { c.as_mut_ptr().add(pair * LANES) }.cast(),
                };
                // SAFETY: `src` holds 16 rows (32 with `two_rows`) of `steps` x 64 bytes,
                // `stride` apart (in place: the last row's `k_pad` bytes end inside `a`; else
                // the padded copy); the block's B rows hold 16 channels (32 with a second
                // column tile) of `groups` groups, `b_stride` apart; C has 32 rows of 64 int32.
                unsafe {
                    match (two_rows, pair + 1 < column_tiles) {
                        (true, true) => product.run::<T, true, true>(tiles),
                        (true, false) => product.run::<T, true, false>(tiles),
                        (false, true) => product.run::<T, false, true>(tiles),
                        (false, false) => product.run::<T, false, false>(tiles),
                    }
                }
            }
            let width = BLOCK_CHANNELS.min(o - start);
            let rows_out = &mut out[first_row * o..(first_row + count) * o];
            // SAFETY: the CPU features of this function; `c` holds `count` rows of `width`
            // int32 for this block, the constants and the output rows are inside their slices.
            unsafe {
                epilogue_rows(
                    &c,
                    &w.column_bias[start..start + width],
                    &corrections[first_row..first_row + count],
                    &epilogue,
                    &mut rows_out[start..],
                    o,
                )
            };
        }
    }
}

/// `rows` (`k` bytes each) into `padded` as 32 rows of `k_pad` bytes, zero past `k` and past
/// the rows: whole tiles to read, whose extra bytes meet zero weights or give unused rows.
fn pad_rows(rows: &[u8], k: usize, k_pad: usize, padded: &mut Vec<u8>) {
    padded.clear();
    padded.resize(BLOCK_ROWS * k_pad, 0);
    for (dst, src) in padded.chunks_exact_mut(k_pad).zip(rows.chunks_exact(k)) {
        dst[..k].copy_from_slice(src);
    }
}

/// One block of C: up to 2 x 2 tiles over all of `k`.
struct Product {
    a: *const u8,
    a_stride: usize,
    b: *const u8,
    b_stride: usize,
    steps: usize,
    c: *mut u8,
}

impl Product {
    /// C tiles `tmm0` (rows 0-15, channels 0-15), `tmm1` (channels 16-31), `tmm2`, `tmm3` (rows
    /// 16-31) from A tiles `tmm4`, `tmm5` and B tiles `tmm6`, `tmm7`, 64 inputs per step; then
    /// stored to `c`, rows 256 bytes apart.
    ///
    /// # Safety
    /// `a`: 16 rows (32 if `TWO_ROWS`) of `steps` x 64 bytes, `a_stride` apart; `b`: `16
    /// steps` rows of 64 bytes (128 if `TWO_COLUMNS`), `b_stride` apart; `c`: 32 rows of 256
    /// bytes, the first 64 (128) bytes of 16 (32) rows written.
    #[inline(always)]
    unsafe fn run<T: TileUnit, const TWO_ROWS: bool, const TWO_COLUMNS: bool>(&self, tiles: &mut T) {
        tiles.zero::<0>();
        if TWO_COLUMNS {
            tiles.zero::<1>();
        }
        if TWO_ROWS {
            tiles.zero::<2>();
            if TWO_COLUMNS {
                tiles.zero::<3>();
            }
        }
        for step in 0..self.steps {
            // SAFETY: the rows of this step lie inside A and B (the contract).
            unsafe {
                let a = self.a.add(step * TILE_BYTES);
                let b = self.b.add(step * TILE_GROUPS * self.b_stride);
                tiles.load::<4>(a, self.a_stride);
                tiles.load::<6>(b, self.b_stride);
                tiles.dpbusd::<0, 4, 6>();
                if TWO_COLUMNS {
                    tiles.load::<7>(b.add(TILE_BYTES), self.b_stride);
                    tiles.dpbusd::<1, 4, 7>();
                }
                if TWO_ROWS {
                    tiles.load::<5>(a.add(TILE_ROWS * self.a_stride), self.a_stride);
                    tiles.dpbusd::<2, 5, 6>();
                    if TWO_COLUMNS {
                        tiles.dpbusd::<3, 5, 7>();
                    }
                }
            }
        }
        const C_STRIDE: usize = BLOCK_CHANNELS * 4;
        // SAFETY: the tiles' rows lie inside C (the contract).
        unsafe {
            tiles.store::<0>(self.c, C_STRIDE);
            if TWO_COLUMNS {
                tiles.store::<1>(self.c.add(TILE_BYTES), C_STRIDE);
            }
            if TWO_ROWS {
                let lower = self.c.add(TILE_ROWS * C_STRIDE);
                tiles.store::<2>(lower, C_STRIDE);
                if TWO_COLUMNS {
                    tiles.store::<3>(lower.add(TILE_BYTES), C_STRIDE);
                }
            }
        }
    }
}

/// Rows of C (64 int32 apart, `bias.len()` channels) plus the column constants less the row
/// corrections, requantized, packed and stored at `out` (rows `o` bytes apart).
///
/// # Safety
/// The CPU must have AVX-512F and BW; `c` must hold `corrections.len()` rows; `out` must hold
/// `(rows - 1) * o + bias.len()` bytes.
#[target_feature(enable = "avx512bw,avx512f")]
unsafe fn epilogue_rows(
    c: &[i32],
    bias: &[i32],
    corrections: &[i32],
    epilogue: &Epilogue,
    out: &mut [u8],
    o: usize,
) {
    let width = bias.len();
    debug_assert!(width <= BLOCK_CHANNELS && c.len() >= corrections.len() * BLOCK_CHANNELS);
    debug_assert!(out.len() >= (corrections.len() - 1) * o + width);
    let vectors = width.div_ceil(LANES);
    // SAFETY: `bias` holds `width` constants.
    let bias = unsafe { vnni::column_constants(bias.as_ptr(), width) };
    let mask = u64::MAX >> (BLOCK_CHANNELS - width);
    for (i, &correction) in corrections.iter().enumerate() {
        let correction = _mm512_set1_epi32(correction);
        let row = &c[i * BLOCK_CHANNELS..(i + 1) * BLOCK_CHANNELS];
        let mut q = [_mm512_setzero_si512(); 4];
        for (j, q) in q.iter_mut().enumerate().take(vectors) {
            // SAFETY: 16 int32 of the row's 64.
            let acc = unsafe { _mm512_loadu_si512(row.as_ptr().add(j * LANES).cast()) };
            *q = epilogue.apply(_mm512_sub_epi32(_mm512_add_epi32(acc, bias[j]), correction));
        }
        let bytes = epilogue.clamp(vnni::pack_in_order(q));
        // SAFETY: the masked store writes only the `width` channels of row i (the contract).
        unsafe { _mm512_mask_storeu_epi8(out.as_mut_ptr().add(i * o).cast(), mask, bytes) };
    }
}

/// `iterations` rounds of four independent `TDPBUSD`s on the tiles (no memory traffic in the
/// loop): the peak `bench --per-layer` puts the AMX layers against. Returns the
/// multiply-accumulates done (16 x 16 x 64 per instruction). Panics where [`available`] is
/// false.
pub(crate) fn tdpbusd_loop(iterations: usize) -> u64 {
    assert!(available(), "{}", support());
    // SAFETY: `available` checked AMX-INT8 and the OS's permission.
    let mut tiles = unsafe { Tiles::configure() };
    let zeros = [0u8; TILE_ROWS * TILE_BYTES];
    tiles.zero::<0>();
    tiles.zero::<1>();
    tiles.zero::<2>();
    tiles.zero::<3>();
    // SAFETY: `zeros` holds 16 rows of 64 bytes.
    unsafe {
        tiles.load::<4>(zeros.as_ptr(), TILE_BYTES);
        tiles.load::<5>(zeros.as_ptr(), TILE_BYTES);
        tiles.load::<6>(zeros.as_ptr(), TILE_BYTES);
        tiles.load::<7>(zeros.as_ptr(), TILE_BYTES);
    }
    for _ in 0..iterations {
        tiles.dpbusd::<0, 4, 6>();
        tiles.dpbusd::<1, 4, 7>();
        tiles.dpbusd::<2, 5, 6>();
        tiles.dpbusd::<3, 5, 7>();
    }
    (iterations * 4 * TILE_ROWS * TILE_ROWS * TILE_BYTES) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::SplitMix64;
    use crate::quant::fixed_point::QuantizedMultiplier;
    use crate::quant::kernels;

    #[test]
    fn the_emulated_dot_product_is_unsigned_by_signed() {
        let mut tiles = Emulated::new();
        let mut a = [0u8; 1024];
        let mut b = [0u8; 1024];
        // Row 0 of A: 255, 1, 2, 3 in group 0; B group 0, channel 0: -1, 127, -128, 1; channel
        // 15: 1, 1, 1, 1 (bytes 60-63).
        a[..4].copy_from_slice(&[255, 1, 2, 3]);
        b[..4].copy_from_slice(&[0xFF, 127, 0x80, 1]);
        b[60..64].copy_from_slice(&[1, 1, 1, 1]);
        // Group 15 (A bytes 60-63, B row 15) adds to channel 0 too.
        a[60..64].copy_from_slice(&[200, 0, 0, 0]);
        b[15 * 64..15 * 64 + 4].copy_from_slice(&[0x80, 0, 0, 0]);
        tiles.zero::<0>();
        let mut c = [0u8; 1024];
        // SAFETY: 16 rows of 64 bytes each.
        unsafe {
            tiles.load::<4>(a.as_ptr(), 64);
            tiles.load::<6>(b.as_ptr(), 64);
            tiles.dpbusd::<0, 4, 6>();
            tiles.dpbusd::<0, 4, 6>();
            tiles.store::<0>(c.as_mut_ptr(), 64);
        }
        let int = |at: usize| i32::from_le_bytes(c[at..at + 4].try_into().unwrap());
        let once = -255 + 127 - 256 + 3 + 200 * -128;
        assert_eq!(int(0), 2 * once);
        assert_eq!(int(60), 2 * (255 + 1 + 2 + 3));
        assert_eq!(int(64), 0, "row 1 of A is zero");
    }

    #[test]
    fn the_emulated_probe_is_the_products_definition() {
        // The probe's data again (see `probe`): 32 rows x 32 channels over 192 inputs.
        let (a_stride, b_stride) = (3 * 64 + 8, 256);
        let a = |m: usize, k: usize| i32::from(((m * a_stride + k) * 37 + 11) as u8);
        let b = |k: usize, n: usize| i32::from(((k / 4 * b_stride + 4 * n + k % 4) * 53 + 200) as u8 as i8);
        let c = probe(Emulated::new());
        for m in 0..32 {
            for n in 0..32 {
                let expected: i32 = (0..192).map(|k| a(m, k) * b(k, n)).sum();
                let at = m * 256 + 4 * n;
                assert_eq!(
                    i32::from_le_bytes(c[at..at + 4].try_into().unwrap()),
                    expected,
                    "C[{m}][{n}]"
                );
            }
        }
    }

    #[test]
    fn the_probe_passes_where_the_cpu_reports_amx() {
        match support() {
            Support::Ready => {}
            Support::ProbeMismatch => panic!("AMX-INT8 is present but the probe's products differ"),
            other => println!("skipped: {other}"),
        }
    }

    /// A GEMM on random data, both output stages, against the portable bytes, on the emulated
    /// tiles and, where the CPU runs them, the real ones.
    fn check(rows: usize, k: usize, o: usize, seed: u64) {
        let mut rng = SplitMix64(seed);
        let mut byte = || (rng.next_u64() >> 56) as u8;
        let a: Vec<u8> = (0..rows * k).map(|_| byte()).collect();
        let weight: Vec<u8> = (0..o * k).map(|_| byte()).collect();
        let (zx, zw) = (i32::from(byte()), [0, 255, 128, 3][(seed % 4) as usize]);
        let bias: Vec<i32> = (0..o).map(|c| (c as i32 * 7919) % 20_000 - 10_000).collect();
        let w = GemmWeights::new(&weight, o, k, zw, zx, &bias);
        let fixed = Requantize {
            multiplier: QuantizedMultiplier::from_real(0.0009 / (k as f64).sqrt()),
            zero_point: i32::from(byte()),
            min: 0,
            max: 255,
            float: None,
        };
        for requantize in [fixed, fixed.with_float_form()] {
            let mut expected = vec![0; rows * o];
            kernels::gemm(&a, rows, &w, &requantize, &mut expected);
            let mut emulated = vec![0; rows * o];
            gemm_emulated(&a, rows, &w, &requantize, &mut emulated);
            assert_eq!(emulated, expected, "emulated tiles, rows {rows} k {k} o {o}");
            if available() {
                let mut tiles = vec![0; rows * o];
                gemm(&a, rows, &w, &requantize, &mut tiles);
                assert_eq!(tiles, expected, "AMX tiles, rows {rows} k {k} o {o}");
            }
        }
    }

    #[test]
    fn gemm_gives_the_portable_bytes() {
        if !vnni::available() {
            println!("skipped: this CPU lacks AVX-512 VNNI (the AMX kernels' epilogue)");
            return;
        }
        if !available() {
            println!(
                "note: {}; the schedule is tested on emulated tiles only",
                support()
            );
        }
        // Rows: one, under a tile, a tile, between one and two, two, more; k: under a step,
        // not a multiple of four, a step, a multiple, neither; o: a partial vector, one, a
        // partial block, three tiles, blocks and more.
        for (seed, (rows, k, o)) in [
            (1, 8, 16),
            (5, 27, 32),
            (16, 64, 16),
            (17, 96, 48),
            (32, 128, 64),
            (32, 64, 24),
            (32, 96, 40),
            (33, 32, 100),
            (49, 256, 128),
            (70, 130, 200),
            (40, 512, 1001),
        ]
        .into_iter()
        .enumerate()
        {
            check(rows, k, o, seed as u64 + 1);
        }
    }
}

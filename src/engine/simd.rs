//! Instruction-set selection, the vector abstraction the kernels are written against, and the
//! one place that runs a kernel on the chosen instruction set.
//!
//! The binary is built for the baseline target (no `-C target-cpu=native`), so the hot loops
//! are compiled three times: once inside `#[target_feature(enable = "avx512f")]` functions,
//! once inside `avx2,fma` ones and once for the baseline. Each kernel body is written once, as
//! a [`Kernel`] generic over [`F32Vec`] whose `run` is `#[inline(always)]`; [`dispatch`] calls
//! it through one wrapper per ISA, and only those wrappers carry `#[target_feature]`, so the
//! generic body (and the intrinsics inside it) are inlined into a function where the feature
//! is enabled and compile to straight-line SIMD. The choice is made once, in `Engine::new`,
//! with `is_x86_feature_detected!`.
//!
//! The f32 kernels run on the f32 tiers ([`Isa`]). The integer dot-product tiers an int8
//! engine needs (u8 x i8 -> i32, as in tract's `(I8, I8, I32)` kernels) are detected beside
//! them ([`IntIsa`]) and reported, but no f32 kernel uses them.

use std::fmt;

/// The instruction set the engine's f32 kernels run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// 16 f32 lanes, 32 vector registers: 14x32 GEMM tiles.
    Avx512,
    /// 8 f32 lanes with FMA, 16 vector registers: 6x16 GEMM tiles.
    Avx2,
    /// Plain Rust over fixed-size arrays that the compiler vectorises for the baseline target
    /// (SSE2 on x86-64, NEON on aarch64).
    Portable,
}

impl Isa {
    /// Every instruction set, fastest first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

    /// The fastest instruction set this CPU supports.
    pub fn detect() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.is_available())
            .unwrap_or(Isa::Portable)
    }

    /// Whether this CPU can run the kernels compiled for `self`.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
        }
    }

    /// The instruction sets this CPU supports, fastest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_available()).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512f",
            Isa::Avx2 => "avx2+fma",
            Isa::Portable => "portable",
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An integer dot-product tier: unsigned 8-bit activations times signed 8-bit weights summed
/// into 32-bit lanes, the inner step of an int8 GEMM over quantized tensors (Jacob et al.
/// 2018, arXiv:1712.05877). Detected for the int8 engine (issue 13); the f32 kernels never use
/// these.
///
/// AMX-INT8 is not a tier here: it is a matrix unit, not a vector dot product, and the int8
/// engine detects and uses it itself (`quant::Kernels::Amx`: CPUID and XCR0, since stable Rust
/// has neither `is_x86_feature_detected!("amx-int8")` nor the intrinsics, rust-lang/rust#126622,
/// and Linux's permission for the tile state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntIsa {
    /// AVX-512 VNNI: `VPDPBUSD` on 16 i32 lanes, with AVX-512BW's byte and word operations
    /// (Intel Cascade Lake and later, AMD Zen 4 and later).
    Avx512Vnni,
    /// AVX-VNNI: the same dot product VEX-encoded on 8 i32 lanes, for CPUs with VNNI but no
    /// AVX-512 (Intel Alder Lake and later, AMD Zen 5).
    AvxVnni,
}

impl IntIsa {
    /// Every integer tier, fastest first.
    pub const ALL: [IntIsa; 2] = [IntIsa::Avx512Vnni, IntIsa::AvxVnni];

    /// The fastest integer tier this CPU supports, if any.
    pub fn detect() -> Option<IntIsa> {
        IntIsa::ALL.into_iter().find(|isa| isa.is_available())
    }

    /// Whether this CPU supports `self`.
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            IntIsa::Avx512Vnni => {
                is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512bw")
            }
            #[cfg(target_arch = "x86_64")]
            IntIsa::AvxVnni => is_x86_feature_detected!("avxvnni") && is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            IntIsa::Avx512Vnni | IntIsa::AvxVnni => false,
        }
    }

    /// The integer tiers this CPU supports, fastest first.
    pub fn available() -> Vec<IntIsa> {
        IntIsa::ALL.into_iter().filter(|isa| isa.is_available()).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            IntIsa::Avx512Vnni => "avx512vnni",
            IntIsa::AvxVnni => "avxvnni",
        }
    }
}

impl fmt::Display for IntIsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A kernel body written once over the vector type, run on the chosen ISA by [`dispatch`].
/// `run` must be `#[inline(always)]`, so that it compiles inside the ISA's wrapper, with the
/// wrapper's features, rather than as a baseline function the wrapper calls. Implement it for
/// a reference to the operands (`impl Kernel for &Tile`) where they hold references: only a
/// reference that is the wrapper's own argument tells LLVM that the kernel's stores leave the
/// operands unchanged (one held in a struct passed by value cost the GEMM's stem 9%).
pub(crate) trait Kernel {
    type Output;

    /// # Safety
    /// `V`'s ISA must be enabled in the calling function; the implementor states the rest.
    unsafe fn run<V: F32Vec>(self) -> Self::Output;
}

/// Runs `kernel` with `isa`'s vector type, inside a function compiled with `isa`'s features.
///
/// # Safety
/// `isa` must be available ([`Isa::is_available`]) and `kernel`'s own contract must hold.
#[inline]
pub(crate) unsafe fn dispatch<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    // SAFETY: each arm runs only for its ISA, which the caller checked is available.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::on_avx512(kernel),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::on_avx2(kernel),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => unreachable!("x86 ISA on another architecture"),
            Isa::Portable => on_portable(kernel),
        }
    }
}

/// The portable arm of [`dispatch`]: an ordinary function, like the other arms' wrappers, so
/// that a kernel is compiled once per ISA rather than inlined into every caller.
///
/// # Safety
/// `kernel`'s contract must hold.
unsafe fn on_portable<K: Kernel>(kernel: K) -> K::Output {
    // SAFETY: the portable vector needs no ISA; the rest is the caller's.
    unsafe { kernel.run::<Portable>() }
}

/// A vector of f32 lanes. Every method is `unsafe` because it executes instructions of the
/// implementing type's ISA: callers must only use a type whose [`Isa`] is available, from a
/// function compiled with that feature enabled. Pointer arguments must be valid for
/// `LANES` reads or writes (no alignment requirement).
pub(crate) trait F32Vec: Copy {
    /// The instruction set whose registers this type is.
    const ISA: Isa;
    const LANES: usize;
    unsafe fn splat(x: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// Stores only the first `n` lanes (`n < LANES`); `p` must be valid for `n` writes.
    unsafe fn store_prefix(self, p: *mut f32, n: usize);
    /// `self * b + c`, fused where the ISA has FMA.
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    unsafe fn max(self, b: Self) -> Self;
    unsafe fn min(self, b: Self) -> Self;

    /// min(max(x, 0), 6): MobileNet's activation, applied while the tile is in registers.
    #[inline(always)]
    unsafe fn relu6(self) -> Self {
        // SAFETY: same contract as the caller's.
        unsafe { self.max(Self::splat(0.0)).min(Self::splat(6.0)) }
    }

    /// relu6(x + 3) / 6, MobileNetV3's gate (Howard et al. 2019 Section 5.2), as
    /// clamp(x / 6 + 1/2, 0, 1): one multiply-add instead of an add, a divide or multiply,
    /// and the clamp. It rounds differently from the literal form by an ulp or so.
    #[inline(always)]
    unsafe fn hard_sigmoid(self) -> Self {
        // SAFETY: same contract as the caller's.
        unsafe {
            self.mul_add(Self::splat(1.0 / 6.0), Self::splat(0.5))
                .max(Self::splat(0.0))
                .min(Self::splat(1.0))
        }
    }

    /// x * relu6(x + 3) / 6 (Howard et al. 2019 eq. 2).
    #[inline(always)]
    unsafe fn hard_swish(self) -> Self {
        // SAFETY: same contract as the caller's.
        unsafe { self.hard_sigmoid().mul(self) }
    }
}

/// Hints that the cache line holding `p` will be read soon (into L2). Any address is fine:
/// prefetches never fault. A no-op where the baseline target has no prefetch instruction.
#[inline(always)]
pub(crate) fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86-64 baseline, and a prefetch never faults, whatever `p`.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{F32Vec, Isa, Kernel};

    /// The AVX-512 arm of [`super::dispatch`].
    ///
    /// # Safety
    /// avx512f must be available; `kernel`'s contract must hold.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn on_avx512<K: Kernel>(kernel: K) -> K::Output {
        // SAFETY: avx512f is enabled here; the rest is the caller's.
        unsafe { kernel.run::<Avx512>() }
    }

    /// The AVX2 arm of [`super::dispatch`].
    ///
    /// # Safety
    /// avx2 and fma must be available; `kernel`'s contract must hold.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn on_avx2<K: Kernel>(kernel: K) -> K::Output {
        // SAFETY: avx2 and fma are enabled here; the rest is the caller's.
        unsafe { kernel.run::<Avx2>() }
    }

    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    // SAFETY (whole impl): every intrinsic needs avx512f, which the trait's contract makes the
    // caller guarantee; loads and stores are unaligned and touch exactly the lanes the trait
    // documents.
    impl F32Vec for Avx512 {
        const ISA: Isa = Isa::Avx512;
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: avx512f is enabled, per the trait contract.
            unsafe { Avx512(_mm512_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: avx512f is enabled and `p` valid, per the trait contract.
            unsafe { Avx512(_mm512_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: avx512f is enabled and `p` valid, per the trait contract.
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn store_prefix(self, p: *mut f32, n: usize) {
            // Masked lanes are not written, so only `n` floats at `p` need to be valid.
            // SAFETY: avx512f is enabled and `p` valid, per the trait contract.
            unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, self.0) }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: avx512f is enabled, per the trait contract.
            unsafe { Avx512(_mm512_fmadd_ps(self.0, b.0, c.0)) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: avx512f is enabled, per the trait contract.
            unsafe { Avx512(_mm512_add_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: avx512f is enabled, per the trait contract.
            unsafe { Avx512(_mm512_mul_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, b: Self) -> Self {
            // SAFETY: avx512f is enabled, per the trait contract.
            unsafe { Avx512(_mm512_max_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn min(self, b: Self) -> Self {
            // SAFETY: avx512f is enabled, per the trait contract.
            unsafe { Avx512(_mm512_min_ps(self.0, b.0)) }
        }
    }

    #[derive(Clone, Copy)]
    pub(crate) struct Avx2(__m256);

    // SAFETY (whole impl): every intrinsic needs avx (and fma for `mul_add`), which the trait's
    // contract makes the caller guarantee; loads and stores are unaligned and touch exactly the
    // lanes the trait documents.
    impl F32Vec for Avx2 {
        const ISA: Isa = Isa::Avx2;
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: avx/fma is enabled, per the trait contract.
            unsafe { Avx2(_mm256_set1_ps(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: avx/fma is enabled and `p` valid, per the trait contract.
            unsafe { Avx2(_mm256_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: avx/fma is enabled and `p` valid, per the trait contract.
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn store_prefix(self, p: *mut f32, n: usize) {
            // SAFETY: avx/fma is enabled and `p` valid, per the trait contract.
            unsafe {
                let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes);
                _mm256_maskstore_ps(p, mask, self.0)
            }
        }
        #[inline(always)]
        unsafe fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: avx/fma is enabled, per the trait contract.
            unsafe { Avx2(_mm256_fmadd_ps(self.0, b.0, c.0)) }
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            // SAFETY: avx/fma is enabled, per the trait contract.
            unsafe { Avx2(_mm256_add_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn mul(self, b: Self) -> Self {
            // SAFETY: avx/fma is enabled, per the trait contract.
            unsafe { Avx2(_mm256_mul_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn max(self, b: Self) -> Self {
            // SAFETY: avx/fma is enabled, per the trait contract.
            unsafe { Avx2(_mm256_max_ps(self.0, b.0)) }
        }
        #[inline(always)]
        unsafe fn min(self, b: Self) -> Self {
            // SAFETY: avx/fma is enabled, per the trait contract.
            unsafe { Avx2(_mm256_min_ps(self.0, b.0)) }
        }
    }
}

/// Eight lanes as a plain array: the baseline compiler turns the lane loops into SSE2 or NEON.
#[derive(Clone, Copy)]
pub(crate) struct Portable([f32; 8]);

impl Portable {
    #[inline(always)]
    fn zip(self, b: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Portable(std::array::from_fn(|i| f(self.0[i], b.0[i])))
    }
}

// SAFETY (whole impl): no ISA requirement; the pointer contracts are the trait's.
impl F32Vec for Portable {
    const ISA: Isa = Isa::Portable;
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Portable([x; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable floats at `p`.
        unsafe { Portable(p.cast::<[f32; 8]>().read_unaligned()) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 8 writable floats at `p`.
        unsafe { p.cast::<[f32; 8]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    unsafe fn store_prefix(self, p: *mut f32, n: usize) {
        // SAFETY: the caller guarantees `n` writable floats at `p`.
        unsafe { std::ptr::copy_nonoverlapping(self.0.as_ptr(), p, n) }
    }
    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // Unfused on purpose: `f32::mul_add` is a libm call on x86-64 without FMA.
        let product = self.zip(b, |x, y| x * y);
        product.zip(c, |x, y| x + y)
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        self.zip(b, |x, y| x + y)
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        self.zip(b, |x, y| x * y)
    }
    #[inline(always)]
    unsafe fn max(self, b: Self) -> Self {
        self.zip(b, f32::max)
    }
    #[inline(always)]
    unsafe fn min(self, b: Self) -> Self {
        self.zip(b, f32::min)
    }
}

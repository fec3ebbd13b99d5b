//! Instruction-set selection and the vector abstraction the kernels are written against.
//!
//! The binary is built for the baseline target (no `-C target-cpu=native`), so the hot loops
//! are compiled three times: once inside `#[target_feature(enable = "avx512f")]` functions,
//! once inside `avx2,fma` ones and once for the baseline. Each kernel body is a generic
//! `#[inline(always)]` function over [`F32Vec`]; the per-ISA entry points are thin
//! `#[target_feature]` wrappers, so the generic body (and the intrinsics inside it) are
//! inlined into a function where the feature is enabled and compile to straight-line SIMD.
//! The choice is made once, in `Engine::new`, with `is_x86_feature_detected!`.

use std::fmt;

/// The instruction set the engine's kernels run on.
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

/// A vector of f32 lanes. Every method is `unsafe` because it executes instructions of the
/// implementing type's ISA: callers must only use a type whose [`Isa`] is available, from a
/// function compiled with that feature enabled. Pointer arguments must be valid for
/// `LANES` reads or writes (no alignment requirement).
pub(crate) trait F32Vec: Copy {
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
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::F32Vec;

    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    // SAFETY (whole impl): every intrinsic needs avx512f, which the trait's contract makes the
    // caller guarantee; loads and stores are unaligned and touch exactly the lanes the trait
    // documents.
    impl F32Vec for Avx512 {
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

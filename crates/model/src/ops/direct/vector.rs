//! The vector types the direct kernels are written over: one generic kernel body, compiled once
//! per instruction set ([`Isa`]) and chosen at run time.
//!
//! Every kernel accumulates each output element in one fixed order with fused multiply-adds, and
//! vectors only ever run across *independent* outputs (output channels, or input channels of the
//! input gradient). So the AVX-512, AVX2 and portable builds compute the same roundings: their
//! results are bit-identical, on every CPU that can run them.

use crate::ops::Real;

/// The instruction set a direct kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512F: 16 f32 lanes, 32 registers.
    Avx512,
    /// AVX2 + FMA: 8 f32 lanes, 16 registers.
    Avx2,
    /// Plain Rust on arrays of 8 lanes with `mul_add`: any CPU (slow where the CPU has no FMA
    /// instruction, since `mul_add` is then computed in software). The reference for the others.
    Portable,
}

impl Isa {
    /// Every instruction set, fastest first.
    pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

    /// Whether this CPU can run it (detected at run time).
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
            Isa::Portable => true,
        }
    }

    /// The fastest one this CPU runs.
    pub fn best() -> Isa {
        Isa::ALL.into_iter().find(|i| i.available()).unwrap_or(Isa::Portable)
    }

    /// Its name in flags and records: `avx512`, `avx2`, `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// The CPU features it needs, as `/proc/cpuinfo` and [`crate::cpu::features`] name them.
    pub fn needs(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512f",
            Isa::Avx2 => "avx2 fma",
            Isa::Portable => "nothing",
        }
    }
}

/// A vector of `L` lanes of `E` (unaligned loads and stores).
///
/// # Safety
/// The methods read and write through raw pointers (`L` elements, or one for [`Vector::splat`]),
/// and the SIMD implementations need their instruction set: call them only from code compiled
/// for it (the `#[target_feature]` entry points of `kernels.rs`) on a CPU that has it.
pub(crate) trait Vector: Copy {
    type E: Real;
    const L: usize;
    unsafe fn zero() -> Self;
    unsafe fn load(p: *const Self::E) -> Self;
    unsafe fn splat(p: *const Self::E) -> Self;
    /// `a * b + c`, rounded once.
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
    unsafe fn store(self, p: *mut Self::E);
}

/// Eight lanes of plain Rust (the portable build, and the only one for f64).
#[derive(Clone, Copy)]
pub(crate) struct Lanes<T>([T; 8]);

impl<T: Real> Vector for Lanes<T> {
    type E = T;
    const L: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Lanes([T::ZERO; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: the caller guarantees 8 readable elements at `p`.
        Lanes(unsafe { std::ptr::read_unaligned(p.cast::<[T; 8]>()) })
    }
    #[inline(always)]
    unsafe fn splat(p: *const T) -> Self {
        // SAFETY: the caller guarantees one readable element at `p`.
        Lanes([unsafe { *p }; 8])
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        Lanes(std::array::from_fn(|i| a.0[i].mul_add(b.0[i], c.0[i])))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        // SAFETY: the caller guarantees 8 writable elements at `p`.
        unsafe { std::ptr::write_unaligned(p.cast::<[T; 8]>(), self.0) }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Vector;

    /// 16 f32 lanes (AVX-512F).
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    impl Vector for Avx512 {
        type E = f32;
        const L: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            Avx512(unsafe { _mm512_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx512(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> Self {
            Avx512(unsafe { _mm512_set1_ps(*p) })
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            Avx512(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
    }

    /// 8 f32 lanes (AVX2 + FMA).
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2(__m256);

    impl Vector for Avx2 {
        type E = f32;
        const L: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            Avx2(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Avx2(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> Self {
            Avx2(unsafe { _mm256_set1_ps(*p) })
        }
        #[inline(always)]
        unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
            Avx2(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
    }
}

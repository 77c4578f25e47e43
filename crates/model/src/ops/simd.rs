//! Run-time dispatch for our elementwise and reduction loops.
//!
//! The crate is compiled for the baseline x86-64 target (SSE2), so auto-vectorised loops would be
//! 4 floats wide. [`simd_kernel!`] compiles a kernel twice, once for the baseline and once with
//! AVX2 + FMA enabled, and picks at run time, so the same binary runs everywhere and uses 8-wide
//! vectors where the CPU has them. (The GEMM crate does its own dispatch, up to AVX-512.)

/// `true` when the CPU has AVX2 and FMA (cached by the standard library).
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines `fn $name<T: Real>(args) -> ret` whose body is compiled for the baseline and for
/// AVX2 + FMA, dispatched at run time.
macro_rules! simd_kernel {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$T:ident>($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$m])*
        #[inline]
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$T: $crate::ops::Real>($($arg: $ty),*) -> $ret {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp<$T: $crate::ops::Real>($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2<$T: $crate::ops::Real>($($arg: $ty),*) -> $ret {
                    imp::<$T>($($arg),*)
                }
                if $crate::ops::simd::has_avx2() {
                    // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
                    return unsafe { avx2::<$T>($($arg),*) };
                }
            }
            imp::<$T>($($arg),*)
        }
    };
}

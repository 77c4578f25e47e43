//! A bounds-checked front-end to the `gemm` crate (the same GEMM candle uses on CPU), single
//! threaded: our kernels parallelise over images themselves, with a fixed work split so results
//! do not depend on the thread count.

use super::real::Real;
pub(crate) use super::view::View;

/// `dst = lhs * rhs` (or `dst += lhs * rhs` when `accumulate`).
pub(crate) fn matmul<T: Real>(dst: &mut [T], d: View, lhs: &[T], l: View, rhs: &[T], r: View, accumulate: bool) {
    assert_eq!((d.rows, d.cols), (l.rows, r.cols), "gemm: output shape");
    assert_eq!(l.cols, r.rows, "gemm: inner dimension");
    assert!(dst.len() >= d.extent() && lhs.len() >= l.extent() && rhs.len() >= r.extent(), "gemm: view out of bounds");
    if d.rows == 0 || d.cols == 0 {
        return;
    }
    if l.cols == 0 {
        if !accumulate {
            for row in 0..d.rows {
                for col in 0..d.cols {
                    dst[row * d.rs + col * d.cs] = T::ZERO;
                }
            }
        }
        return;
    }
    // SAFETY: every view's extent was checked against its slice above, strides are non-negative,
    // and `dst` is exclusively borrowed, so all accesses are in bounds and race-free.
    unsafe {
        gemm::gemm(
            d.rows,
            d.cols,
            l.cols,
            dst.as_mut_ptr(),
            d.cs as isize,
            d.rs as isize,
            accumulate,
            lhs.as_ptr(),
            l.cs as isize,
            l.rs as isize,
            rhs.as_ptr(),
            r.cs as isize,
            r.rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// The arithmetic of the convolution GEMMs (chosen per network by [`crate::Kernels`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// f32 products and sums (the default; f64 tensors always take this path).
    #[default]
    F32,
    /// bf16 operands, f32 accumulation and outputs, on AVX512_BF16 (our bf16 GEMM, `gemm_bf16.rs`) for
    /// the products where that is faster (see [`runs_in_bf16`]); the others stay f32.
    Bf16,
}

/// Whether a product runs in bf16 under [`Precision::Bf16`]: rounding the operands to bf16 costs
/// a pass over both, so it pays only where each operand value feeds enough products. Measured
/// on the convolution shapes (`cargo test --release -p dynaprune-model --lib gemm_bf16::speed --
/// --ignored --nocapture`, one core, bf16 / f32): outputs of 16 rows with a column-contiguous
/// right operand (forward, input gradient) 1.3x; 16-row weight gradients (both operands
/// depth-contiguous) 0.7x; 32 rows 1.2x; 64 and more 1.1-1.5x; depth 9 (a 1-channel stem) 0.6x.
pub fn runs_in_bf16(rows: usize, cols: usize, depth: usize, rhs_cols_contiguous: bool) -> bool {
    let side = rows.min(cols);
    depth >= BF16_MIN_DEPTH && (side >= BF16_MIN_DIM || side >= 16 && rhs_cols_contiguous)
}

/// The smallest output side a product with depth-contiguous operands runs in bf16 at.
pub const BF16_MIN_DIM: usize = 32;
/// The smallest depth a product runs in bf16 at.
pub const BF16_MIN_DEPTH: usize = 64;

/// [`matmul`] in the given precision (see [`Precision::Bf16`] for which products use bf16).
#[allow(clippy::too_many_arguments)]
pub(crate) fn product<T: Real>(
    precision: Precision,
    dst: &mut [T],
    d: View,
    lhs: &[T],
    l: View,
    rhs: &[T],
    r: View,
    accumulate: bool,
) {
    if precision == Precision::Bf16 && runs_in_bf16(d.rows, d.cols, l.cols, r.cs == 1) {
        if let (Some(lhs), Some(rhs)) = (T::as_f32(lhs), T::as_f32(rhs)) {
            let dst = T::as_f32_mut(dst).expect("dst has the operands' type");
            return super::gemm_bf16::matmul(dst, d, lhs, l, rhs, r, accumulate);
        }
    }
    matmul(dst, d, lhs, l, rhs, r, accumulate)
}

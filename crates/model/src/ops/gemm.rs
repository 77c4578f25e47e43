//! A bounds-checked front-end to the `gemm` crate (the same GEMM candle uses on CPU), single
//! threaded: our kernels parallelise over images themselves, with a fixed work split so results
//! do not depend on the thread count.

use super::real::Real;

/// A strided matrix view: element `(r, c)` is at `offset + r * rs + c * cs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl View {
    /// A row-major `rows x cols` matrix.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Self { rows, cols, rs: cols, cs: 1 }
    }
    /// The transpose of this view (no data movement).
    pub fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    /// One past the largest offset the view touches.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

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

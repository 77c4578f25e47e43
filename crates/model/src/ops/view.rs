//! A strided matrix view over a flat slice: how the f32 GEMM front-end ([`super::gemm`]) and
//! our bf16 GEMM ([`super::gemm_bf16`]) both see their operands. Its own file so that neither
//! GEMM imports the other's types (the f32 front-end dispatches to the bf16 one, never back).

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
    pub(crate) fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.rs + (self.cols - 1) * self.cs + 1
        }
    }
}

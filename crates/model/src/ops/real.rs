//! The element types our CPU kernels support (f32 for training, f64 for gradient checks).

use candle_core::{CpuStorage, DType};

/// A float type the custom CPU kernels are generic over.
pub trait Real:
    Copy
    + Send
    + Sync
    + 'static
    + PartialOrd
    + std::fmt::Debug
    + std::ops::AddAssign
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
{
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// The candle dtype.
    const DTYPE: DType;
    /// From f64 (rounding).
    fn from_f64(v: f64) -> Self;
    /// To f64.
    fn to_f64(self) -> f64;
    /// Borrows a slice of this type out of CPU storage.
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    /// Wraps a vector as CPU storage.
    fn storage(v: Vec<Self>) -> CpuStorage;
    /// Runs `f` with a reusable per-thread buffer of `n` elements (unspecified contents).
    fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
    /// The slice as f32, when this type is f32 (for the bf16 GEMM, which is f32-only).
    fn as_f32(s: &[Self]) -> Option<&[f32]>;
    /// The slice as f32, when this type is f32.
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]>;
    /// `self * a + b` with one rounding (fused multiply-add).
    fn mul_add(self, a: Self, b: Self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const DTYPE: DType = DType::F32;
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(v)
    }
    fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
        scratch::f32s(n, f)
    }
    fn as_f32(s: &[Self]) -> Option<&[f32]> {
        Some(s)
    }
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]> {
        Some(s)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const DTYPE: DType = DType::F64;
    fn from_f64(v: f64) -> Self {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F64(v)
    }
    fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
        scratch::f64s(n, f)
    }
    fn as_f32(_: &[Self]) -> Option<&[f32]> {
        None
    }
    fn as_f32_mut(_: &mut [Self]) -> Option<&mut [f32]> {
        None
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
}

/// Per-thread pools of reusable buffers, so the kernels do not allocate (and the allocator does
/// not zero or fault in fresh pages) on every call.
pub(crate) mod scratch {
    use std::cell::RefCell;

    thread_local! {
        static F32: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
        static F64: RefCell<Vec<Vec<f64>>> = const { RefCell::new(Vec::new()) };
    }

    fn with_pool<T: Copy + Default, R>(
        pool: &'static std::thread::LocalKey<RefCell<Vec<Vec<T>>>>,
        n: usize,
        f: impl FnOnce(&mut [T]) -> R,
    ) -> R {
        let mut buf = pool.with(|p| p.borrow_mut().pop()).unwrap_or_default();
        if buf.len() < n {
            buf.resize(n, T::default());
        }
        let r = f(&mut buf[..n]);
        pool.with(|p| p.borrow_mut().push(buf));
        r
    }

    /// Runs `f` with a buffer of exactly `n` f32s whose contents are unspecified (left over from
    /// earlier use, or zero): callers must write before they read.
    pub(crate) fn f32s<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        with_pool(&F32, n, f)
    }

    /// The f64 counterpart of [`f32s`].
    pub(crate) fn f64s<R>(n: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
        with_pool(&F64, n, f)
    }
}

//! Custom CPU ops for fast training, each a Candle custom op with its own backward pass:
//! [`conv2d`] (im2col/col2im on a tuned GEMM), [`batch_norm_train`] (fused BatchNorm + optional
//! ReLU), [`add_relu`] (the residual join), and the eval-mode [`channel_affine`]. They run on CPU
//! tensors of f32 or f64 (f32 convolutions can take bf16 products: [`Precision`],
//! [`conv2d_with`]); on other devices the model uses candle's own ops
//! ([`crate::Kernels::Candle`]).

#[macro_use]
mod simd;
mod bn;
mod conv;
mod conv_bn;
pub mod direct;
mod gemm;
mod gemm_bf16;
pub mod profile;
mod real;
mod view;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result, Tensor};

pub use gemm::{runs_in_bf16, Precision, BF16_MIN_DEPTH, BF16_MIN_DIM};
pub use gemm_bf16::available as bf16_available;

/// `true` when our elementwise loops run their AVX2 + FMA version on this CPU.
pub fn simd_has_avx2() -> bool {
    simd::has_avx2()
}
pub use real::Real;

pub(crate) use bn::BatchStats;

/// A slice of `T` out of contiguous CPU storage, or a clear error.
pub(crate) fn contiguous_slice<'a, T: Real>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [T]> {
    let Some(data) = T::slice(s) else { bail!("{what}: expected {:?}, got {:?}", T::DTYPE, s.dtype()) };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("{what} must be contiguous"),
    }
}

/// Same as [`contiguous_slice`] with the element type inferred by the caller.
pub(crate) fn cpu_slice<'a, T: Real>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    contiguous_slice(s, l, "tensor")
}

/// `conv2d(x, w)`: `(N, Cin, H, W) x (Cout, Cin, kh, kw) -> (N, Cout, Ho, Wo)`, no bias, square
/// stride and symmetric zero padding. Differentiable in both arguments.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    conv2d_with(x, w, stride, padding, Precision::F32)
}

/// [`conv2d`] with its matrix products (forward and backward) in `precision`.
/// [`Precision::Bf16`] needs AVX512_BF16 ([`bf16_available`]); without it this is an error.
pub fn conv2d_with(x: &Tensor, w: &Tensor, stride: usize, padding: usize, precision: Precision) -> Result<Tensor> {
    check_precision(precision)?;
    x.contiguous()?.apply_op2(&w.contiguous()?, conv::Conv2dOp { stride, padding, precision })
}

/// Refuses [`Precision::Bf16`] on a CPU without AVX512_BF16 (never a silent fallback).
pub fn check_precision(precision: Precision) -> Result<()> {
    if precision == Precision::Bf16 && !bf16_available() {
        bail!("bf16 precision needs a CPU with AVX512_BF16 (vdpbf16ps); this one has none: use f32")
    }
    Ok(())
}

/// `relu?(batch_norm(conv2d(x, w)))` in training mode, fused: `affine` packs the BatchNorm
/// parameters as `(2, Cout)` = `[gamma; beta]`. Returns the output and a handle to the batch
/// statistics. Differentiable in `x`, `w` and `affine`. The convolution's products run in
/// `precision` (see [`conv2d_with`]).
#[allow(clippy::too_many_arguments)]
pub fn conv_bn_train(
    x: &Tensor,
    w: &Tensor,
    affine: &Tensor,
    stride: usize,
    padding: usize,
    eps: f64,
    relu: bool,
    precision: Precision,
) -> Result<(Tensor, BatchStatsHandle)> {
    check_precision(precision)?;
    let stats = BatchStats::default();
    let op = conv_bn::ConvBnOp::new(stride, padding, eps, relu, stats.clone(), precision);
    let y = x.contiguous()?.apply_op3(&w.contiguous()?, &affine.contiguous()?, op)?;
    Ok((y, BatchStatsHandle(stats)))
}

/// Training-mode BatchNorm over `(N, C, ...)` with batch statistics, `relu` optionally fused.
/// Returns the output and a handle to the batch `(mean, biased variance)` per channel, filled
/// by the forward pass (for running statistics). Differentiable in `x`, `gamma` and `beta`.
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, BatchStatsHandle)> {
    let stats = BatchStats::default();
    let op = bn::BatchNormTrainOp { eps, relu, stats: stats.clone() };
    let y = x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    Ok((y, BatchStatsHandle(stats)))
}

/// The batch statistics recorded by [`batch_norm_train`].
#[derive(Debug, Clone)]
pub struct BatchStatsHandle(BatchStats);

impl BatchStatsHandle {
    /// `(mean, biased variance)` per channel, once the forward pass has run.
    pub fn get(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        self.0.lock().expect("batch-norm statistics lock").clone()
    }
}

/// `relu?(x * scale[c] + shift[c])` over `(N, C, ...)`: eval-mode BatchNorm. Not differentiable.
pub fn channel_affine(x: &Tensor, scale: &Tensor, shift: &Tensor, relu: bool) -> Result<Tensor> {
    x.contiguous()?.apply_op3_no_bwd(&scale.contiguous()?, &shift.contiguous()?, &bn::ChannelAffineOp { relu })
}

/// `relu(a + b)` for same-shaped tensors, with a fused backward.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.contiguous()?.apply_op2(&b.contiguous()?, bn::AddReluOp)
}

//! Fused BatchNorm (+ optional ReLU) for training, forward and backward in one parallel pass
//! each; an eval-mode per-channel affine (+ ReLU); and a fused residual `relu(a + b)`.
//!
//! Statistics are accumulated per image in f64 and combined in image order, so results do not
//! depend on the thread count.

use std::sync::{Arc, Mutex};

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::real::Real;
use super::{contiguous_slice, cpu_slice};

/// `(N, C, spatial)` of an NCHW (or NC) tensor.
pub(crate) fn ncs(dims: &[usize]) -> Result<(usize, usize, usize)> {
    match dims {
        [n, c] => Ok((*n, *c, 1)),
        [n, c, rest @ ..] => Ok((*n, *c, rest.iter().product())),
        _ => bail!("batch norm expects (N, C, ...) input, got {dims:?}"),
    }
}

/// Batch statistics of the last training forward: `(mean, biased variance)` per channel.
pub(crate) type BatchStats = Arc<Mutex<Option<(Vec<f64>, Vec<f64>)>>>;

/// Training-mode BatchNorm with batch statistics, optionally followed by ReLU.
#[derive(Debug)]
pub(crate) struct BatchNormTrainOp {
    pub eps: f64,
    pub relu: bool,
    /// Written by the forward pass; read by the layer (running statistics) and by backward.
    pub stats: BatchStats,
}

/// Independent accumulators: lets the compiler vectorise reductions (a single running sum would
/// be a serial dependency chain).
const LANES: usize = 16;

simd_kernel! {
    /// Exact two-pass `(mean, sum of squared deviations)` of one segment (in cache).
    fn seg_moments<T>(seg: &[T]) -> (f64, f64) {
        let mut acc = [T::ZERO; LANES];
        let chunks = seg.chunks_exact(LANES);
        let mut s = T::ZERO;
        for &v in chunks.remainder() {
            s += v;
        }
        for c in chunks {
            for i in 0..LANES {
                acc[i] += c[i];
            }
        }
        let mean = acc.iter().fold(s, |a, &b| a + b).to_f64() / seg.len().max(1) as f64;
        let m = T::from_f64(mean);
        let mut acc = [T::ZERO; LANES];
        let chunks = seg.chunks_exact(LANES);
        let mut s = T::ZERO;
        for &v in chunks.remainder() {
            s += (v - m) * (v - m);
        }
        for c in chunks {
            for i in 0..LANES {
                let d = c[i] - m;
                acc[i] += d * d;
            }
        }
        (mean, acc.iter().fold(s, |a, &b| a + b).to_f64())
    }
}

simd_kernel! {
    /// `dst = relu?(src * a + b)`.
    fn seg_affine<T>(dst: &mut [T], src: &[T], a: T, b: T, relu: bool) -> () {
        if relu {
            for (o, &v) in dst.iter_mut().zip(src) {
                let z = v * a + b;
                *o = if z > T::ZERO { z } else { T::ZERO };
            }
        } else {
            for (o, &v) in dst.iter_mut().zip(src) {
                *o = v * a + b;
            }
        }
    }
}

simd_kernel! {
    /// `(sum(dz), sum(dz * (x - m)))` of one segment, with `dz = dy` masked, if `relu`, where
    /// the BatchNorm output `x * scale + shift` was not positive. Recomputing the mask from `x`
    /// instead of reading the output saves a full pass over memory.
    fn seg_grad_sums<T>(x: &[T], dy: &[T], m: T, scale: T, shift: T, relu: bool) -> (f64, f64) {
        let mut a = [T::ZERO; LANES];
        let mut b = [T::ZERO; LANES];
        let (xc, dc) = (x.chunks_exact(LANES), dy.chunks_exact(LANES));
        let (mut ta, mut tb) = (T::ZERO, T::ZERO);
        for (&xv, &dv) in xc.remainder().iter().zip(dc.remainder()) {
            // `!(v > 0)`, not `v <= 0`: a NaN output counts as not positive, as in the lanes.
            #[allow(clippy::neg_cmp_op_on_partial_ord)]
            let d = if relu && !(xv * scale + shift > T::ZERO) { T::ZERO } else { dv };
            ta += d;
            tb += d * (xv - m);
        }
        if relu {
            for (xr, dr) in xc.zip(dc) {
                for i in 0..LANES {
                    let d = if xr[i] * scale + shift > T::ZERO { dr[i] } else { T::ZERO };
                    a[i] += d;
                    b[i] += d * (xr[i] - m);
                }
            }
        } else {
            for (xr, dr) in xc.zip(dc) {
                for i in 0..LANES {
                    a[i] += dr[i];
                    b[i] += dr[i] * (xr[i] - m);
                }
            }
        }
        (a.iter().fold(ta, |p, &q| p + q).to_f64(), b.iter().fold(tb, |p, &q| p + q).to_f64())
    }
}

simd_kernel! {
    /// `dx = A * dz + B * x + C`, `dz` as in [`seg_grad_sums`].
    fn seg_grad_input<T>(dx: &mut [T], x: &[T], dy: &[T], coef: (T, T, T), scale: T, shift: T, relu: bool) -> () {
        let (a, b, c) = coef;
        if relu {
            for ((o, &xv), &dv) in dx.iter_mut().zip(x).zip(dy) {
                let d = if xv * scale + shift > T::ZERO { dv } else { T::ZERO };
                *o = a * d + b * xv + c;
            }
        } else {
            for ((o, &xv), &dv) in dx.iter_mut().zip(x).zip(dy) {
                *o = a * dv + b * xv + c;
            }
        }
    }
}

/// Per-channel mean and biased variance over `(N, C, S)`. Each (image, channel) segment gets an
/// exact two-pass mean and centred sum of squares (vectorised, in cache), and segments are
/// combined in image order with Chan et al.'s pairwise formula in f64.
fn channel_moments<T: Real>(x: &[T], c: usize, s: usize) -> (Vec<f64>, Vec<f64>) {
    let per_image: Vec<Vec<(f64, f64)>> =
        x.par_chunks(c * s).map(|img| (0..c).map(|ch| seg_moments(&img[ch * s..(ch + 1) * s])).collect()).collect();
    combine_moments(&per_image, s, c)
}

/// Per-channel `(mean, biased variance)` from each image's per-channel `(mean, centred sum of
/// squares)` over `px` pixels, combined in image order with Chan et al.'s pairwise formula in
/// f64 (shared by the NCHW ops and the direct NHWC kernels).
pub(crate) fn combine_moments(per_image: &[Vec<(f64, f64)>], px: usize, c: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0f64; c];
    let mut m2 = vec![0f64; c];
    for (k, img) in per_image.iter().enumerate() {
        let (na, nb) = ((k * px) as f64, px as f64);
        for ch in 0..c {
            let (mb, m2b) = img[ch];
            let delta = mb - mean[ch];
            let n = na + nb;
            mean[ch] += delta * nb / n;
            m2[ch] += m2b + delta * delta * na * nb / n;
        }
    }
    let total = (per_image.len() * px).max(1) as f64;
    (mean, m2.into_iter().map(|v| (v / total).max(0.0)).collect())
}

/// `y = relu?(x * scale[c] + shift[c])`, in parallel over images.
fn affine<T: Real>(x: &[T], c: usize, s: usize, scale: &[T], shift: &[T], relu: bool) -> Vec<T> {
    let mut y = vec![T::ZERO; x.len()];
    y.par_chunks_mut(c * s).zip(x.par_chunks(c * s)).for_each(|(yi, xi)| {
        for ch in 0..c {
            seg_affine(&mut yi[ch * s..(ch + 1) * s], &xi[ch * s..(ch + 1) * s], scale[ch], shift[ch], relu);
        }
    });
    y
}

/// The per-channel `(scale, shift)` that BatchNorm applies: `y = x * scale + shift`.
pub(crate) fn forward_affine<T: Real>(gamma: &[T], beta: &[T], mean: &[f64], var: &[f64], eps: f64) -> (Vec<T>, Vec<T>) {
    let scale: Vec<T> = (0..gamma.len()).map(|ch| T::from_f64(gamma[ch].to_f64() / (var[ch] + eps).sqrt())).collect();
    let shift = (0..gamma.len()).map(|ch| T::from_f64(beta[ch].to_f64() - mean[ch] * scale[ch].to_f64())).collect();
    (scale, shift)
}

/// Training-mode BatchNorm (+ ReLU) of `x` `(N, C, S)`: returns `y` and the batch
/// `(mean, biased variance)`.
pub(crate) fn train_forward<T: Real>(
    x: &[T],
    c: usize,
    s: usize,
    gamma: &[T],
    beta: &[T],
    eps: f64,
    relu: bool,
) -> (Vec<T>, Vec<f64>, Vec<f64>) {
    let (mean, var) = channel_moments(x, c, s);
    let (scale, shift) = forward_affine(gamma, beta, &mean, &var, eps);
    let y = affine(x, c, s, &scale, &shift, relu);
    (y, mean, var)
}

/// The backward pass of [`train_forward`]: `(dx, dgamma, dbeta)` from the forward input `x`,
/// its batch statistics and the output gradient `dy`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_backward<T: Real>(
    x: &[T],
    c: usize,
    s: usize,
    gamma: &[T],
    beta: &[T],
    mean: &[f64],
    var: &[f64],
    dy: &[T],
    eps: f64,
    relu: bool,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let n = x.len() / (c * s).max(1);
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    // The forward pass's affine map, to recompute the ReLU mask exactly as it was applied.
    let (scale, shift) = forward_affine(gamma, beta, mean, var, eps);
    // Pass 1: per (image, channel) sum(dz) and sum(dz * (x - mean)), with dz = dy masked by the
    // ReLU; combined in image order in f64.
    let per_image: Vec<Vec<(f64, f64)>> = (0..n)
        .into_par_iter()
        .map(|img| {
            (0..c)
                .map(|ch| {
                    let r = (img * c + ch) * s..(img * c + ch + 1) * s;
                    seg_grad_sums(&x[r.clone()], &dy[r], T::from_f64(mean[ch]), scale[ch], shift[ch], relu)
                })
                .collect()
        })
        .collect();
    let mut dbeta = vec![0f64; c];
    let mut dgamma = vec![0f64; c];
    for img in per_image {
        for (ch, (a, b)) in img.into_iter().enumerate() {
            dbeta[ch] += a;
            dgamma[ch] += b * invstd[ch];
        }
    }
    // Pass 2: dx = gamma * invstd * (dz - mean(dz) - xhat * mean(dz * xhat)), rewritten per
    // channel as dx = A * dz + B * x + C.
    let m = (n * s) as f64;
    let coef: Vec<(T, T, T)> = (0..c)
        .map(|ch| {
            let k = gamma[ch].to_f64() * invstd[ch];
            let (mdz, mdzx) = (dbeta[ch] / m, dgamma[ch] / m);
            let b = -k * invstd[ch] * mdzx;
            (T::from_f64(k), T::from_f64(b), T::from_f64(-k * mdz - b * mean[ch]))
        })
        .collect();
    let mut dx = vec![T::ZERO; x.len()];
    dx.par_chunks_mut(c * s).enumerate().for_each(|(img, dxi)| {
        for ch in 0..c {
            let r = (img * c + ch) * s..(img * c + ch + 1) * s;
            seg_grad_input(&mut dxi[ch * s..(ch + 1) * s], &x[r.clone()], &dy[r], coef[ch], scale[ch], shift[ch], relu);
        }
    });
    (dx, dgamma.into_iter().map(T::from_f64).collect(), dbeta.into_iter().map(T::from_f64).collect())
}

impl BatchNormTrainOp {
    fn fwd<T: Real>(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _t = super::profile::Timer::start(super::profile::Phase::NormForward);
        let (_, c, s) = ncs(xl.dims())?;
        let x = contiguous_slice::<T>(x, xl, "batch norm input")?;
        let gamma = contiguous_slice::<T>(g, gl, "batch norm weight")?;
        let beta = contiguous_slice::<T>(b, bl, "batch norm bias")?;
        if gamma.len() != c || beta.len() != c {
            bail!("batch norm: {c} channels but weight/bias of length {}/{}", gamma.len(), beta.len())
        }
        let (y, mean, var) = train_forward(x, c, s, gamma, beta, self.eps, self.relu);
        *self.stats.lock().expect("batch-norm statistics lock") = Some((mean, var));
        Ok((T::storage(y), Shape::from(xl.dims())))
    }

    fn bwd_impl<T: Real>(
        &self,
        x: &[T],
        gamma: &[T],
        beta: &[T],
        dy: &[T],
        dims: &[usize],
    ) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
        let (_, c, s) = ncs(dims)?;
        let guard = self.stats.lock().expect("batch-norm statistics lock");
        let Some((mean, var)) = guard.as_ref() else { bail!("batch norm backward called before forward") };
        Ok(train_backward(x, c, s, gamma, beta, mean, var, dy, self.eps, self.relu))
    }
}

impl CustomOp3 for BatchNormTrainOp {
    fn name(&self) -> &'static str {
        "dynaprune-batch-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        g: &CpuStorage,
        gl: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        match x {
            CpuStorage::F32(_) => self.fwd::<f32>(x, xl, g, gl, b, bl),
            CpuStorage::F64(_) => self.fwd::<f64>(x, xl, g, gl, b, bl),
            other => bail!("dynaprune batch norm supports f32 and f64, got {:?}", other.dtype()),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let _t = super::profile::Timer::start(super::profile::Phase::NormBackward);
        let dy = dy.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (gs, gl) = gamma.storage_and_layout();
        let (bs, bl) = beta.storage_and_layout();
        let (ds, dl) = dy.storage_and_layout();
        let (Storage::Cpu(xc), Storage::Cpu(gc), Storage::Cpu(bc), Storage::Cpu(dc)) = (&*xs, &*gs, &*bs, &*ds) else {
            bail!("dynaprune batch norm runs on the CPU only")
        };
        macro_rules! run {
            ($t:ty) => {{
                let (dx, dg, db) = self.bwd_impl::<$t>(
                    cpu_slice(xc, xl)?,
                    cpu_slice(gc, gl)?,
                    cpu_slice(bc, bl)?,
                    cpu_slice(dc, dl)?,
                    x.dims(),
                )?;
                (
                    Tensor::from_vec(dx, x.shape(), x.device())?,
                    Tensor::from_vec(dg, gamma.shape(), gamma.device())?,
                    Tensor::from_vec(db, beta.shape(), beta.device())?,
                )
            }};
        }
        let (dx, dg, db) = match xc {
            CpuStorage::F32(_) => run!(f32),
            CpuStorage::F64(_) => run!(f64),
            other => bail!("dynaprune batch norm supports f32 and f64, got {:?}", other.dtype()),
        };
        Ok((Some(dx), Some(dg), Some(db)))
    }
}

/// Eval-mode BatchNorm as a per-channel affine `relu?(x * scale + shift)` (no backward).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChannelAffineOp {
    pub relu: bool,
}

impl ChannelAffineOp {
    fn fwd<T: Real>(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        a: &CpuStorage,
        al: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, s) = ncs(xl.dims())?;
        let y = affine(
            contiguous_slice::<T>(x, xl, "input")?,
            c,
            s,
            contiguous_slice::<T>(a, al, "scale")?,
            contiguous_slice::<T>(b, bl, "shift")?,
            self.relu,
        );
        Ok((T::storage(y), Shape::from(xl.dims())))
    }
}

impl CustomOp3 for ChannelAffineOp {
    fn name(&self) -> &'static str {
        "dynaprune-channel-affine"
    }
    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        a: &CpuStorage,
        al: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        match x {
            CpuStorage::F32(_) => self.fwd::<f32>(x, xl, a, al, b, bl),
            CpuStorage::F64(_) => self.fwd::<f64>(x, xl, a, al, b, bl),
            other => bail!("channel affine supports f32 and f64, got {:?}", other.dtype()),
        }
    }
}

/// `relu(a + b)` with a fused backward (the residual join of a ResNet block).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddReluOp;

/// Elements per parallel task for elementwise kernels.
const ELEMENTWISE_CHUNK: usize = 1 << 15;

simd_kernel! {
    /// `y = relu(a + b)`.
    fn add_relu_kernel<T>(y: &mut [T], a: &[T], b: &[T]) -> () {
        for ((o, &p), &q) in y.iter_mut().zip(a).zip(b) {
            let z = p + q;
            *o = if z > T::ZERO { z } else { T::ZERO };
        }
    }
}

simd_kernel! {
    /// `g = d * (y > 0)`.
    pub(crate) fn relu_mask_kernel<T>(g: &mut [T], y: &[T], d: &[T]) -> () {
        for ((o, &yv), &dv) in g.iter_mut().zip(y).zip(d) {
            *o = if yv > T::ZERO { dv } else { T::ZERO };
        }
    }
}

impl AddReluOp {
    fn fwd<T: Real>(a: &CpuStorage, al: &Layout, b: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _t = super::profile::Timer::start(super::profile::Phase::Elementwise);
        if al.dims() != bl.dims() {
            bail!("add_relu: shapes {:?} and {:?} differ", al.dims(), bl.dims())
        }
        let a = contiguous_slice::<T>(a, al, "add_relu lhs")?;
        let b = contiguous_slice::<T>(b, bl, "add_relu rhs")?;
        let mut y = vec![T::ZERO; a.len()];
        y.par_chunks_mut(ELEMENTWISE_CHUNK)
            .zip(a.par_chunks(ELEMENTWISE_CHUNK).zip(b.par_chunks(ELEMENTWISE_CHUNK)))
            .for_each(|(yc, (ac, bc))| add_relu_kernel(yc, ac, bc));
        Ok((T::storage(y), Shape::from(al.dims())))
    }
}

impl CustomOp2 for AddReluOp {
    fn name(&self) -> &'static str {
        "dynaprune-add-relu"
    }
    fn cpu_fwd(&self, a: &CpuStorage, al: &Layout, b: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        match a {
            CpuStorage::F32(_) => Self::fwd::<f32>(a, al, b, bl),
            CpuStorage::F64(_) => Self::fwd::<f64>(a, al, b, bl),
            other => bail!("add_relu supports f32 and f64, got {:?}", other.dtype()),
        }
    }
    fn bwd(&self, _a: &Tensor, _b: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let _t = super::profile::Timer::start(super::profile::Phase::Elementwise);
        let g = y.apply_op2_no_bwd(&dy.contiguous()?, &ReluMaskOp)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// `dy * (y > 0)`: the gradient through a ReLU given its output.
#[derive(Debug, Clone, Copy)]
struct ReluMaskOp;

impl ReluMaskOp {
    fn fwd<T: Real>(y: &CpuStorage, yl: &Layout, d: &CpuStorage, dl: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = contiguous_slice::<T>(y, yl, "relu output")?;
        let d = contiguous_slice::<T>(d, dl, "gradient")?;
        let mut g = vec![T::ZERO; y.len()];
        g.par_chunks_mut(ELEMENTWISE_CHUNK)
            .zip(y.par_chunks(ELEMENTWISE_CHUNK).zip(d.par_chunks(ELEMENTWISE_CHUNK)))
            .for_each(|(gc, (yc, dc))| relu_mask_kernel(gc, yc, dc));
        Ok((T::storage(g), Shape::from(yl.dims())))
    }
}

impl CustomOp2 for ReluMaskOp {
    fn name(&self) -> &'static str {
        "dynaprune-relu-mask"
    }
    fn cpu_fwd(&self, y: &CpuStorage, yl: &Layout, d: &CpuStorage, dl: &Layout) -> Result<(CpuStorage, Shape)> {
        match y {
            CpuStorage::F32(_) => Self::fwd::<f32>(y, yl, d, dl),
            CpuStorage::F64(_) => Self::fwd::<f64>(y, yl, d, dl),
            other => bail!("relu mask supports f32 and f64, got {:?}", other.dtype()),
        }
    }
}

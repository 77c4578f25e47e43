//! Convolution + training-mode BatchNorm (+ ReLU) fused into one custom op.
//!
//! Fusing keeps the convolution's output inside the op (saved for the backward pass) instead of
//! making it a node of Candle's graph, where every gradient edge costs a zero-filled tensor and
//! an extra addition (`GradStore::or_insert` + `add`). The backward pass runs the BatchNorm
//! backward and feeds its input gradient straight into the convolution backward.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor};

use super::bn::{ncs, train_backward, train_forward, BatchStats};
use super::conv::{self, Geometry};
use super::gemm::Precision;
use super::real::Real;
use super::{contiguous_slice, cpu_slice};

/// What the forward pass keeps for the backward pass: the convolution output, as f32 or f64.
#[derive(Debug)]
enum Saved {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// `relu?(batch_norm(conv2d(x, w)))` with packed BatchNorm parameters `affine = [gamma; beta]`
/// of shape `(2, Cout)`.
#[derive(Debug)]
pub(crate) struct ConvBnOp {
    pub stride: usize,
    pub padding: usize,
    pub eps: f64,
    pub relu: bool,
    pub stats: BatchStats,
    pub precision: Precision,
    saved: Mutex<Option<Saved>>,
}

impl ConvBnOp {
    pub(crate) fn new(
        stride: usize,
        padding: usize,
        eps: f64,
        relu: bool,
        stats: BatchStats,
        precision: Precision,
    ) -> Self {
        Self { stride, padding, eps, relu, stats, precision, saved: Mutex::new(None) }
    }

    // The arguments of `CustomOp3::cpu_fwd`, plus the wrapper that keeps `z` for the backward.
    #[allow(clippy::too_many_arguments)]
    fn fwd<T: Real>(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
        a: &CpuStorage,
        al: &Layout,
        wrap: fn(Vec<T>) -> Saved,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(xl.dims(), wl.dims(), self.stride, self.padding)?;
        let affine = contiguous_slice::<T>(a, al, "conv-bn affine")?;
        if affine.len() != 2 * g.cout {
            bail!("conv-bn: affine parameters must be (2, {}), got {:?}", g.cout, al.dims())
        }
        let z = {
            let _t = super::profile::Timer::start(super::profile::Phase::ConvForward);
            let (x, w) = (contiguous_slice::<T>(x, xl, "conv input")?, contiguous_slice::<T>(w, wl, "conv kernel")?);
            conv::forward(&g, x, w, self.precision)
        };
        let _t = super::profile::Timer::start(super::profile::Phase::NormForward);
        let (c, s) = (g.cout, g.p());
        let (y, mean, var) = train_forward(&z, c, s, &affine[..c], &affine[c..], self.eps, self.relu);
        *self.stats.lock().expect("batch-norm statistics lock") = Some((mean, var));
        *self.saved.lock().expect("saved activations lock") = Some(wrap(z));
        Ok((T::storage(y), Shape::from(g.out_dims())))
    }

    #[allow(clippy::too_many_arguments)]
    fn bwd_impl<T: Real>(
        &self,
        z: &[T],
        x: &[T],
        w: &[T],
        affine: &[T],
        dy: &[T],
        g: &Geometry,
        need_dx: bool,
    ) -> Result<ConvBnGrads<T>> {
        let (c, s) = (g.cout, g.p());
        let dz = {
            let _t = super::profile::Timer::start(super::profile::Phase::NormBackward);
            let guard = self.stats.lock().expect("batch-norm statistics lock");
            let Some((mean, var)) = guard.as_ref() else { bail!("conv-bn backward called before forward") };
            let (dz, dgamma, dbeta) =
                train_backward(z, c, s, &affine[..c], &affine[c..], mean, var, dy, self.eps, self.relu);
            (dz, [dgamma, dbeta].concat())
        };
        let _t = super::profile::Timer::start(super::profile::Phase::ConvBackward);
        let (dx, dw) = conv::backward(g, x, w, &dz.0, need_dx, self.precision);
        Ok((dx, dw, dz.1))
    }
}

/// The gradients of one conv-bn backward: input (when needed), kernel, and the BatchNorm affine
/// parameters (`gamma` then `beta`).
type ConvBnGrads<T> = (Option<Vec<T>>, Vec<T>, Vec<T>);

impl CustomOp3 for ConvBnOp {
    fn name(&self) -> &'static str {
        "dynaprune-conv-bn"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
        a: &CpuStorage,
        al: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        match x {
            CpuStorage::F32(_) => self.fwd::<f32>(x, xl, w, wl, a, al, Saved::F32),
            CpuStorage::F64(_) => self.fwd::<f64>(x, xl, w, wl, a, al, Saved::F64),
            other => bail!("dynaprune conv-bn supports f32 and f64, got {:?}", other.dtype()),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        affine: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let g = Geometry::new(x.dims(), w.dims(), self.stride, self.padding)?;
        let (_, c, _) = ncs(dy.dims())?;
        if c != g.cout {
            bail!("conv-bn backward: gradient has {c} channels, expected {}", g.cout)
        }
        // The saved convolution output is needed exactly once; taking it frees it afterwards.
        let Some(saved) = self.saved.lock().expect("saved activations lock").take() else {
            bail!("conv-bn backward called twice or before forward")
        };
        let need_dx = x.track_op();
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (as_, al) = affine.storage_and_layout();
        let (ds, dl) = dy.storage_and_layout();
        let (Storage::Cpu(xc), Storage::Cpu(wc), Storage::Cpu(ac), Storage::Cpu(dc)) = (&*xs, &*ws, &*as_, &*ds) else {
            bail!("dynaprune conv-bn runs on the CPU only")
        };
        macro_rules! run {
            ($z:expr) => {{
                let (dx, dw, da) = self.bwd_impl(
                    $z,
                    cpu_slice(xc, xl)?,
                    cpu_slice(wc, wl)?,
                    cpu_slice(ac, al)?,
                    cpu_slice(dc, dl)?,
                    &g,
                    need_dx,
                )?;
                (
                    dx.map(|d| Tensor::from_vec(d, x.shape(), x.device())).transpose()?,
                    Tensor::from_vec(dw, w.shape(), w.device())?,
                    Tensor::from_vec(da, affine.shape(), affine.device())?,
                )
            }};
        }
        let (dx, dw, da) = match &saved {
            Saved::F32(z) => run!(z.as_slice()),
            Saved::F64(z) => run!(z.as_slice()),
        };
        Ok((dx, Some(dw), Some(da)))
    }
}

//! BatchNorm (+ ReLU, + residual join) applied by the pass that reads a convolution's output
//! next, so that a normalised activation only one convolution reads is never written out.
//!
//! Training: a ResNet basic block `relu(bn_b(conv_b(relu(bn_a(conv_a(x))))) + r)` runs
//! ([`block_forward`], [`block_backward`], called by the trunk op of `trunk.rs`) in three passes
//! over its activations forward:
//! - `z_a = conv_a(x)`, the batch statistics of `z_a` taken in the convolution's epilogue;
//! - `z_b = conv_b(relu(bn_a(z_a)))`, `bn_a` applied where each image's padded copy is made;
//! - `relu(bn_b(z_b) + r)` in one pass.
//!
//! and backward: the join's ReLU mask with `bn_b`'s gradient sums in one pass; conv_b's backward
//! with `bn_b`'s input gradient written in its prologue and `bn_a`'s gradient sums taken in the
//! epilogue of its input gradient; conv_a's backward with `bn_a`'s input gradient in its prologue
//! and the identity residual's gradient added in its input gradient's epilogue. Against
//! `ConvBnOp` + `ops::add_relu` (the stem and the projection shortcuts still run the conv-bn), a
//! block saves two passes forward and three backward, with the same arithmetic in the same
//! order: the same bits.
//!
//! Evaluation: [`ConvAffineOp`] applies the running-statistics affine, the ReLU and the residual
//! in the convolution's epilogue, while each image's output is in cache.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::{
    backward, bn, check_isa, forward, geometry, par_build, storage_slice, Geometry, InputAffine, Isa, Moments,
};
use crate::ops::bn::{combine_moments, forward_affine, relu_mask_kernel};
use crate::ops::contiguous_slice;
use crate::ops::profile::{Phase, Timer};
use crate::ops::real::Real;

/// One convolution + BatchNorm of a [`super::resnet_trunk_train_nhwc`]: its kernel
/// `(Cout, Cin, k, k)`, BatchNorm affine `[gamma; beta]` `(2, Cout)`, stride, padding and epsilon.
#[derive(Debug, Clone, Copy)]
pub struct BlockUnit<'a> {
    /// The convolution kernel.
    pub weight: &'a Tensor,
    /// The BatchNorm affine.
    pub affine: &'a Tensor,
    /// The convolution's stride.
    pub stride: usize,
    /// The convolution's zero padding.
    pub padding: usize,
    /// BatchNorm's epsilon.
    pub eps: f64,
}

/// A unit's shape, as the ops keep it.
#[derive(Debug, Clone, Copy)]
pub(super) struct UnitShape {
    pub kernel: [usize; 4],
    pub stride: usize,
    pub padding: usize,
    pub eps: f64,
}

impl UnitShape {
    pub(super) fn of(u: &BlockUnit) -> Result<Self> {
        let (o, i, kh, kw) = u.weight.dims4()?;
        Ok(Self { kernel: [o, i, kh, kw], stride: u.stride, padding: u.padding, eps: u.eps })
    }
}

/// A block's gradients: input (if needed), its parameters (`w_a`, `[gamma_a; beta_a]`, `w_b`,
/// `[gamma_b; beta_b]`, concatenated), residual (unless it is the identity).
pub(super) type BlockGrads<T> = (Option<Vec<T>>, Vec<T>, Option<Vec<T>>);

/// A block's forward results: output, both convolution outputs, both units' batch statistics.
pub(super) type BlockForward<T> = (Vec<T>, Vec<T>, Vec<T>, [Moments; 2]);

/// A block's parameters.
pub(super) struct Parts<'a, T> {
    pub wa: &'a [T],
    pub aa: &'a [T],
    pub wb: &'a [T],
    pub ab: &'a [T],
}

/// The forward of a basic block on slices: `(y, z_a, z_b, [stats_a, stats_b])`, `r` the residual.
pub(super) fn block_forward<T: Real>(
    isa: Isa,
    units: [UnitShape; 2],
    (ga, gb): (&Geometry, &Geometry),
    x: &[T],
    pt: &Parts<T>,
    r: &[T],
) -> BlockForward<T> {
    let [ua, ub] = units;
    let (ca, cb) = (ga.cout, gb.cout);
    let (za, ma) = {
        let _t = Timer::start(Phase::ConvForward);
        forward(isa, ga, x, pt.wa, None, |_, zi| bn::image_moments(zi, ca))
    };
    let (mean_a, var_a) = combine_moments(&ma, ga.p(), ca);
    let (sa, ha) = forward_affine(&pt.aa[..ca], &pt.aa[ca..], &mean_a, &var_a, ua.eps);
    let (zb, mb) = {
        let _t = Timer::start(Phase::ConvForward);
        let tf = InputAffine { scale: &sa, shift: &ha, relu: true };
        forward(isa, gb, &za, pt.wb, Some(tf), |_, zi| bn::image_moments(zi, cb))
    };
    let (mean_b, var_b) = combine_moments(&mb, gb.p(), cb);
    let (sb, hb) = forward_affine(&pt.ab[..cb], &pt.ab[cb..], &mean_b, &var_b, ub.eps);
    let img = (gb.p() * cb).max(1);
    let (y, _) = {
        let _t = Timer::start(Phase::Elementwise);
        par_build(zb.len(), img, |i, yi| {
            let at = i * img..i * img + yi.len();
            bn::apply_add_relu(yi, &zb[at.clone()], &r[at], &sb, &hb)
        })
    };
    (y, za, zb, [(mean_a, var_a), (mean_b, var_b)])
}

/// The backward of a basic block on slices: `(d x, d params, d r)`, `d x` if `need_dx` (with the
/// identity residual's gradient added when `identity`), `d r` unless `identity`.
#[allow(clippy::too_many_arguments)]
pub(super) fn block_backward<T: Real>(
    isa: Isa,
    units: [UnitShape; 2],
    (ga, gb): (&Geometry, &Geometry),
    x: &[T],
    pt: &Parts<T>,
    stats: &[Moments; 2],
    (identity, need_dx): (bool, bool),
    (y, dy): (&[T], &[T]),
    (za, zb): (&[T], &[T]),
) -> BlockGrads<T> {
    let [ua, ub] = units;
    let [(mean_a, var_a), (mean_b, var_b)] = stats;
    let (ca, cb) = (ga.cout, gb.cout);
    let (sa, ha) = forward_affine(&pt.aa[..ca], &pt.aa[ca..], mean_a, var_a, ua.eps);
    let (sb, hb) = forward_affine(&pt.ab[..cb], &pt.ab[cb..], mean_b, var_b, ub.eps);
    let to_t = |m: &[f64]| m.iter().map(|&v| T::from_f64(v)).collect::<Vec<T>>();
    let (ma, mb) = (to_t(mean_a), to_t(mean_b));
    let (img_x, img_a, img_b) = (ga.h * ga.w * ga.cin, ga.p() * ca, gb.p() * cb);
    // The join: the gradient past the ReLU (the residual's too) and bn_b's gradient sums.
    let (g, sums_b) = {
        let _t = Timer::start(Phase::NormBackward);
        par_build(y.len(), img_b.max(1), |i, gi| {
            let at = i * img_b..i * img_b + gi.len();
            relu_mask_kernel(gi, &y[at.clone()], &dy[at.clone()]);
            bn::grad_sums(&zb[at], gi, &mb, &sb, &hb, false)
        })
    };
    let (dgb, dbb, coef_b) = bn::grad_coefficients(&sums_b, &pt.ab[..cb], mean_b, var_b, ub.eps, gb.n * gb.p());
    // conv_b: bn_b's input gradient in its prologue, bn_a's gradient sums in the epilogue of
    // its input gradient.
    let (dya, dwb, sums_a) = {
        let _t = Timer::start(Phase::ConvBackward);
        let tf = InputAffine { scale: &sa, shift: &ha, relu: true };
        let dz_of = |i: usize, dst: &mut [T]| {
            let at = i * img_b..(i + 1) * img_b;
            coef_b.input_grad(dst, &zb[at.clone()], &g[at], &sb, &hb, false)
        };
        let sums_of =
            |i: usize, dyi: &mut [T]| bn::grad_sums(&za[i * img_a..(i + 1) * img_a], dyi, &ma, &sa, &ha, true);
        backward(isa, gb, za, pt.wb, Some(tf), dz_of, true, sums_of)
    };
    let dya = dya.unwrap_or_default();
    let (dga, dba, coef_a) = bn::grad_coefficients(&sums_a, &pt.aa[..ca], mean_a, var_a, ua.eps, ga.n * ga.p());
    // conv_a: bn_a's input gradient in its prologue; the identity residual's gradient added
    // in the epilogue of its input gradient.
    let (dx, dwa, _) = {
        let _t = Timer::start(Phase::ConvBackward);
        let dz_of = |i: usize, dst: &mut [T]| {
            let at = i * img_a..(i + 1) * img_a;
            coef_a.input_grad(dst, &za[at.clone()], &dya[at], &sa, &ha, true)
        };
        let add_residual = |i: usize, dxi: &mut [T]| {
            if identity {
                for (d, &e) in dxi.iter_mut().zip(&g[i * img_x..(i + 1) * img_x]) {
                    *d += e;
                }
            }
        };
        backward(isa, ga, x, pt.wa, None, dz_of, need_dx, add_residual)
    };
    let dp = [dwa, dga, dba, dwb, dgb, dbb].concat();
    (dx, dp, (!identity).then_some(g))
}

/// `relu?(conv2d(x, w) * scale + shift (+ residual))` on NHWC, `scale_shift = [scale; shift]`
/// `(2, Cout)`: evaluation-mode conv + BatchNorm (+ ReLU, + residual join) with the affine applied
/// in the convolution's epilogue. Not differentiable.
#[derive(Debug)]
struct ConvAffineOp {
    isa: Isa,
    stride: usize,
    padding: usize,
    relu: bool,
    residual: Option<Tensor>,
}

impl ConvAffineOp {
    #[allow(clippy::too_many_arguments)]
    fn fwd<T: Real>(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
        s: &CpuStorage,
        sl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let _t = Timer::start(Phase::ConvForward);
        let g = geometry(xl.dims(), wl.dims(), self.stride, self.padding)?;
        let (x, w) = (contiguous_slice::<T>(x, xl, "conv input")?, contiguous_slice::<T>(w, wl, "conv kernel")?);
        let ss = contiguous_slice::<T>(s, sl, "scale and shift")?;
        if ss.len() != 2 * g.cout {
            bail!("conv + affine: scale and shift must be (2, {}), got {:?}", g.cout, sl.dims())
        }
        let (scale, shift) = ss.split_at(g.cout);
        let guard = self.residual.as_ref().map(|r| r.storage_and_layout());
        let residual = match &guard {
            None => None,
            Some((rs, rl)) => {
                if rl.dims() != [g.n, g.ho, g.wo, g.cout] {
                    bail!("conv + residual: residual {:?}, expected {:?}", rl.dims(), (g.n, g.ho, g.wo, g.cout))
                }
                Some(storage_slice::<T>(rs, rl, "residual")?)
            }
        };
        let img = g.p() * g.cout;
        let (z, _) = forward(self.isa, &g, x, w, None, |i, zi| {
            let r = residual.map(|r| &r[i * img..i * img + zi.len()]);
            bn::apply_in_place(zi, r, scale, shift, self.relu)
        });
        Ok((T::storage(z), Shape::from((g.n, g.ho, g.wo, g.cout))))
    }
}

impl CustomOp3 for ConvAffineOp {
    fn name(&self) -> &'static str {
        "dynaprune-direct-conv-affine"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
        s: &CpuStorage,
        sl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        match x {
            CpuStorage::F32(_) => self.fwd::<f32>(x, xl, w, wl, s, sl),
            CpuStorage::F64(_) => self.fwd::<f64>(x, xl, w, wl, s, sl),
            other => bail!("dynaprune direct conv supports f32 and f64, got {:?}", other.dtype()),
        }
    }
}

/// Evaluation-mode `relu?(conv2d(x, w) * scale + shift (+ residual))` on NHWC, the affine (and
/// the residual join, which implies the ReLU) applied in the convolution's epilogue. Not
/// differentiable.
#[allow(clippy::too_many_arguments)]
pub fn conv_affine_nhwc(
    x: &Tensor,
    w: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
    stride: usize,
    padding: usize,
    relu: bool,
    residual: Option<&Tensor>,
    isa: Isa,
) -> Result<Tensor> {
    check_isa(isa)?;
    let ss = Tensor::stack(&[scale.flatten_all()?, shift.flatten_all()?], 0)?;
    let residual = residual.map(Tensor::contiguous).transpose()?;
    let op = ConvAffineOp { isa, stride, padding, relu: relu || residual.is_some(), residual };
    x.contiguous()?.apply_op3_no_bwd(&w.contiguous()?, &ss, &op)
}

//! A ResNet's trunk (the stem conv-bn-relu, then its basic blocks, projection shortcuts
//! included) in training mode as one op ([`TrunkOp`]), so that no activation-sized gradient passes
//! through Candle's gradient store.
//!
//! Candle accumulates every gradient it is handed into a zero tensor (`zeros_like`, then a
//! single-threaded `add`): about 2.8 ms per 8 MiB activation on our machine (its end-to-end
//! share of a ResNet-20 step, against one op per block, was within the measurement noise).
//! Inside the trunk op the blocks hand their
//! input gradients to one another directly, and the sum of a projection block's two input
//! gradients (block and shortcut) is taken in parallel, in the order Candle took it. The units'
//! arithmetic is that of the unfused ops (`ConvBnOp`, `ops::add_relu`): the same bits.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::fused::{block_backward, block_forward, BlockUnit, Parts, UnitShape};
use super::{check_isa, conv_bn_backward, conv_bn_forward, geometry, Geometry, Isa, Moments};
use crate::ops::bn::BatchStats;
use crate::ops::real::Real;
use crate::ops::{contiguous_slice, cpu_slice, BatchStatsHandle};

/// A basic block of [`resnet_trunk_train_nhwc`]: its two units and its projection shortcut, if
/// its shape changes.
#[derive(Debug, Clone, Copy)]
pub struct TrunkBlock<'a> {
    /// The first conv-bn (followed by ReLU).
    pub a: BlockUnit<'a>,
    /// The second conv-bn (joined to the residual, then ReLU).
    pub b: BlockUnit<'a>,
    /// The projection shortcut's conv-bn (no ReLU); the identity when `None`.
    pub shortcut: Option<BlockUnit<'a>>,
}

/// Unit indices of a block (into the trunk's units, the stem being unit 0).
#[derive(Debug, Clone, Copy)]
struct BlockIdx {
    a: usize,
    b: usize,
    shortcut: Option<usize>,
}

/// What one block keeps for the backward.
#[derive(Debug)]
struct BlockState<T> {
    /// The block's input (the stem's or the previous block's output).
    x: Vec<T>,
    za: Vec<T>,
    zb: Vec<T>,
    /// The shortcut's convolution output.
    zs: Option<Vec<T>>,
    geometry: (Geometry, Geometry, Option<Geometry>),
}

#[derive(Debug)]
struct TrunkState<T> {
    z0: Vec<T>,
    g0: Geometry,
    blocks: Vec<BlockState<T>>,
}

#[derive(Debug)]
enum Saved {
    F32(TrunkState<f32>),
    F64(TrunkState<f64>),
}

/// The trunk `blocks(relu(bn(conv(x))))` on NHWC; arguments `(x, params)`, `params` the flat
/// concatenation of every unit's kernel and `[gamma; beta]`, units in order: the stem, then per
/// block `a`, `b` and the shortcut.
#[derive(Debug)]
struct TrunkOp {
    isa: Isa,
    units: Vec<UnitShape>,
    blocks: Vec<BlockIdx>,
    stats: Vec<BatchStats>,
    saved: Mutex<Option<Saved>>,
}

impl TrunkOp {
    /// Each unit's `(kernel range, affine range)` in `params`; checks the total.
    fn ranges(&self, len: usize) -> Result<Vec<(Range<usize>, Range<usize>)>> {
        let mut at = 0;
        let mut out = Vec::with_capacity(self.units.len());
        for u in &self.units {
            let (kl, al) = (u.kernel.iter().product::<usize>(), 2 * u.kernel[0]);
            out.push((at..at + kl, at + kl..at + kl + al));
            at += kl + al;
        }
        if at != len {
            bail!("resnet trunk: {len} parameter values, expected {at} (every unit's kernel and affine)")
        }
        Ok(out)
    }

    fn stats_of(&self, k: usize) -> Result<Moments> {
        let s = self.stats[k].lock().expect("batch-norm statistics lock").clone();
        s.ok_or_else(|| candle_core::Error::Msg("resnet trunk backward called before forward".into()))
    }

    fn record(&self, k: usize, stats: Moments) {
        *self.stats[k].lock().expect("batch-norm statistics lock") = Some(stats);
    }

    fn fwd<T: Real>(&self, x: &[T], dims: &[usize], p: &[T]) -> Result<(Vec<T>, Vec<usize>, TrunkState<T>)> {
        let rg = self.ranges(p.len())?;
        let (w, a) = (|k: usize| &p[rg[k].0.clone()], |k: usize| &p[rg[k].1.clone()]);
        let s0 = self.units[0];
        let g0 = geometry(dims, &s0.kernel, s0.stride, s0.padding)?;
        let (mut h, z0, st) = conv_bn_forward(self.isa, &g0, x, w(0), a(0), s0.eps, true);
        self.record(0, st);
        let mut hd = [g0.n, g0.ho, g0.wo, g0.cout];
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let (ua, ub) = (self.units[b.a], self.units[b.b]);
            let ga = geometry(&hd, &ua.kernel, ua.stride, ua.padding)?;
            let gb = geometry(&[ga.n, ga.ho, ga.wo, ga.cout], &ub.kernel, ub.stride, ub.padding)?;
            let out = [gb.n, gb.ho, gb.wo, gb.cout];
            let (ys, zs, gs) = match b.shortcut {
                Some(k) => {
                    let us = self.units[k];
                    let gs = geometry(&hd, &us.kernel, us.stride, us.padding)?;
                    if [gs.n, gs.ho, gs.wo, gs.cout] != out {
                        bail!(
                            "resnet trunk: a shortcut of output {:?} for a block of output {out:?}",
                            (gs.ho, gs.wo, gs.cout)
                        )
                    }
                    let (ys, zs, st) = conv_bn_forward(self.isa, &gs, &h, w(k), a(k), us.eps, false);
                    self.record(k, st);
                    (Some(ys), Some(zs), Some(gs))
                }
                None if hd == out => (None, None, None),
                None => bail!("resnet trunk: an identity shortcut from {hd:?} to {out:?}"),
            };
            let pt = Parts { wa: w(b.a), aa: a(b.a), wb: w(b.b), ab: a(b.b) };
            let r = ys.as_deref().unwrap_or(&h);
            let (y, za, zb, [sa, sb]) = block_forward(self.isa, [ua, ub], (&ga, &gb), &h, &pt, r);
            self.record(b.a, sa);
            self.record(b.b, sb);
            blocks.push(BlockState { x: std::mem::replace(&mut h, y), za, zb, zs, geometry: (ga, gb, gs) });
            hd = out;
        }
        Ok((h, hd.to_vec(), TrunkState { z0, g0, blocks }))
    }

    /// `(d x if need_dx, d params)` from the trunk's output `y` and its gradient `dy`.
    fn bwd_impl<T: Real>(
        &self,
        st: &TrunkState<T>,
        x: &[T],
        p: &[T],
        (y, dy): (&[T], &[T]),
        need_dx: bool,
    ) -> Result<(Option<Vec<T>>, Vec<T>)> {
        let rg = self.ranges(p.len())?;
        let (w, a) = (|k: usize| &p[rg[k].0.clone()], |k: usize| &p[rg[k].1.clone()]);
        let mut dp = vec![T::ZERO; p.len()];
        let mut put = |k: usize, dw: &[T], da: &[T]| {
            dp[rg[k].0.clone()].copy_from_slice(dw);
            dp[rg[k].1.clone()].copy_from_slice(da);
        };
        let mut cur: Cow<[T]> = Cow::Borrowed(dy);
        for (i, (b, bs)) in self.blocks.iter().zip(&st.blocks).enumerate().rev() {
            let (ga, gb, gs) = bs.geometry;
            let (ua, ub) = (self.units[b.a], self.units[b.b]);
            let y_out = st.blocks.get(i + 1).map_or(y, |next| next.x.as_slice());
            let pt = Parts { wa: w(b.a), aa: a(b.a), wb: w(b.b), ab: a(b.b) };
            let stats = [self.stats_of(b.a)?, self.stats_of(b.b)?];
            let flags = (b.shortcut.is_none(), true);
            let (dx, dpb, dr) = block_backward(
                self.isa,
                [ua, ub],
                (&ga, &gb),
                &bs.x,
                &pt,
                &stats,
                flags,
                (y_out, &cur),
                (&bs.za, &bs.zb),
            );
            let mut dx = dx.unwrap_or_default();
            let (la, lb) = (rg[b.a].0.len(), rg[b.b].0.len());
            let (ca, cb) = (rg[b.a].1.len(), rg[b.b].1.len());
            put(b.a, &dpb[..la], &dpb[la..la + ca]);
            put(b.b, &dpb[la + ca..la + ca + lb], &dpb[la + ca + lb..la + ca + lb + cb]);
            if let (Some(k), Some(gs), Some(zs), Some(dr)) = (b.shortcut, gs, &bs.zs, dr) {
                let us = self.units[k];
                let (dxs, dws, das) = conv_bn_backward(
                    self.isa,
                    &gs,
                    (&bs.x, zs),
                    w(k),
                    a(k),
                    &self.stats_of(k)?,
                    (us.eps, false),
                    &dr,
                    true,
                );
                // The block's input gradient, then the shortcut's: the order Candle sums them in.
                let dxs = dxs.unwrap_or_default();
                dx.par_chunks_mut(1 << 14).zip(dxs.par_chunks(1 << 14)).for_each(|(d, e)| {
                    for (d, &e) in d.iter_mut().zip(e) {
                        *d += e;
                    }
                });
                put(k, &dws, &das);
            }
            cur = Cow::Owned(dx);
        }
        let s0 = self.units[0];
        let (dx, dw0, da0) = conv_bn_backward(
            self.isa,
            &st.g0,
            (x, &st.z0),
            w(0),
            a(0),
            &self.stats_of(0)?,
            (s0.eps, true),
            &cur,
            need_dx,
        );
        put(0, &dw0, &da0);
        Ok((dx, dp))
    }
}

impl CustomOp2 for TrunkOp {
    fn name(&self) -> &'static str {
        "dynaprune-direct-resnet-trunk"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, p: &CpuStorage, pl: &Layout) -> Result<(CpuStorage, Shape)> {
        macro_rules! run {
            ($t:ty, $wrap:path) => {{
                let xs = contiguous_slice::<$t>(x, xl, "trunk input")?;
                let (y, dims, state) = self.fwd(xs, xl.dims(), contiguous_slice::<$t>(p, pl, "trunk parameters")?)?;
                *self.saved.lock().expect("saved activations lock") = Some($wrap(state));
                Ok((<$t as Real>::storage(y), Shape::from(dims)))
            }};
        }
        match x {
            CpuStorage::F32(_) => run!(f32, Saved::F32),
            CpuStorage::F64(_) => run!(f64, Saved::F64),
            other => bail!("dynaprune direct resnet trunk supports f32 and f64, got {:?}", other.dtype()),
        }
    }

    fn bwd(&self, x: &Tensor, p: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        if dy.dims() != y.dims() {
            bail!("resnet trunk backward: gradient of shape {:?}, output {:?}", dy.dims(), y.dims())
        }
        let Some(saved) = self.saved.lock().expect("saved activations lock").take() else {
            bail!("resnet trunk backward called twice or before forward")
        };
        let need_dx = x.track_op();
        let (xs, xl) = x.storage_and_layout();
        let (ps, pl) = p.storage_and_layout();
        let (ys, yl) = y.storage_and_layout();
        let (ds, dl) = dy.storage_and_layout();
        let (Storage::Cpu(xc), Storage::Cpu(pc), Storage::Cpu(yc), Storage::Cpu(dc)) = (&*xs, &*ps, &*ys, &*ds) else {
            bail!("dynaprune direct kernels run on the CPU only")
        };
        macro_rules! run {
            ($st:expr) => {{
                let yd = (cpu_slice(yc, yl)?, cpu_slice(dc, dl)?);
                let (dx, dp) = self.bwd_impl($st, cpu_slice(xc, xl)?, cpu_slice(pc, pl)?, yd, need_dx)?;
                (
                    dx.map(|d| Tensor::from_vec(d, x.shape(), x.device())).transpose()?,
                    Tensor::from_vec(dp, p.shape(), p.device())?,
                )
            }};
        }
        let (dx, dp) = match &saved {
            Saved::F32(st) => run!(st),
            Saved::F64(st) => run!(st),
        };
        Ok((dx, Some(dp)))
    }
}

/// A ResNet's trunk in training mode on NHWC, `blocks(relu(bn(conv(x))))`, as one op: the stem
/// conv-bn-relu, then each basic block (`fused.rs`) with its projection shortcut. Returns the output and every unit's batch `(mean, biased variance)`, in order: the
/// stem, then per block `a`, `b` and the shortcut (if any). Differentiable in `x` and every unit's
/// kernel and affine.
pub fn resnet_trunk_train_nhwc(
    x: &Tensor,
    stem: BlockUnit,
    blocks: &[TrunkBlock],
    isa: Isa,
) -> Result<(Tensor, Vec<BatchStatsHandle>)> {
    check_isa(isa)?;
    let mut units = vec![stem];
    let mut idx = Vec::with_capacity(blocks.len());
    for b in blocks {
        let (a, bb) = (units.len(), units.len() + 1);
        units.push(b.a);
        units.push(b.b);
        let shortcut = b.shortcut.map(|s| {
            units.push(s);
            units.len() - 1
        });
        idx.push(BlockIdx { a, b: bb, shortcut });
    }
    let shapes = units.iter().map(UnitShape::of).collect::<Result<Vec<_>>>()?;
    let mut flat = Vec::with_capacity(2 * units.len());
    for u in &units {
        flat.push(u.weight.flatten_all()?);
        flat.push(u.affine.flatten_all()?);
    }
    let params = Tensor::cat(&flat, 0)?;
    let stats: Vec<BatchStats> = units.iter().map(|_| BatchStats::default()).collect();
    let op = TrunkOp { isa, units: shapes, blocks: idx, stats: stats.clone(), saved: Mutex::new(None) };
    let y = x.contiguous()?.apply_op2(&params, op)?;
    Ok((y, stats.into_iter().map(BatchStatsHandle).collect()))
}

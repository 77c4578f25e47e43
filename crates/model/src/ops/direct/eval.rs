//! A ResNet's trunk in evaluation mode, image by image ([`resnet_trunk_eval_nhwc`]).
//!
//! In evaluation every BatchNorm is a fixed per-channel affine, so nothing couples the images of
//! a batch: each thread takes one image through the stem and every block before it takes the
//! next. The image's activations (a few hundred KiB for the CIFAR ResNets) then stay in the
//! core's cache from one layer to the next, where the layer-by-layer path writes each layer's
//! whole batch to memory and reads it back: its padded input copies, output zero fills and
//! in-place affine passes were 12% of a ResNet-20 evaluation in `perf`.
//!
//! Depth-first pays when the network's kernels fit in cache next to one image's activations: each
//! image reads every kernel once. [`DEPTH_FIRST_WEIGHT_BYTES`] is the bound the models use.
//! Measured (2 threads, `bench-train --modes infer`, results/bench/bench-infer-eval-trunk.txt):
//! ResNet-20 (1.1 MB of kernels) went from 2,000-2,236 to 2,551-2,575 img/s, ResNet-8 from
//! 8,057-9,093 to 9,723-10,546; ResNet-18 (44 MB) fell from 169 to 133-135 img/s image by image,
//! every image streaming every kernel from memory, so it stays layer by layer, where the two
//! threads share a layer's kernel.
//!
//! The arithmetic is that of [`super::conv_affine_nhwc`] unit by unit (the same kernels, the same
//! epilogue, per image): the same bits.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::{
    bn, check_isa, covers, geometry, kernels, pack_forward, pad_input, par_build, storage_slice, Geometry, Isa,
};
use crate::ops::contiguous_slice;
use crate::ops::profile::{Phase, Timer};
use crate::ops::real::Real;

/// Kernel bytes (all units together) up to which the models evaluate a trunk depth-first.
pub const DEPTH_FIRST_WEIGHT_BYTES: usize = 8 << 20;

/// A convolution and its evaluation-mode BatchNorm, as the per-channel `(scale, shift)` that
/// [`super::conv_affine_nhwc`] takes.
#[derive(Debug, Clone)]
pub struct EvalUnit<'a> {
    /// The convolution kernel, `(Cout, Cin, kh, kw)`.
    pub weight: &'a Tensor,
    /// The BatchNorm's per-channel scale, `Cout` values.
    pub scale: Tensor,
    /// The BatchNorm's per-channel shift, `Cout` values.
    pub shift: Tensor,
    /// The convolution's stride.
    pub stride: usize,
    /// The convolution's zero padding.
    pub padding: usize,
}

/// A basic block of [`resnet_trunk_eval_nhwc`].
#[derive(Debug, Clone)]
pub struct EvalBlock<'a> {
    /// The first conv-bn (followed by ReLU).
    pub a: EvalUnit<'a>,
    /// The second conv-bn (joined to the residual, then ReLU).
    pub b: EvalUnit<'a>,
    /// The projection shortcut's conv-bn (no ReLU); the identity when `None`.
    pub shortcut: Option<EvalUnit<'a>>,
}

/// One unit, packed for the kernels.
struct Packed<T> {
    g: Geometry,
    wpk: Vec<T>,
    cop: usize,
    scale: Vec<T>,
    shift: Vec<T>,
}

impl<T: Real> Packed<T> {
    fn padded_len(&self) -> usize {
        let g = &self.g;
        (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * g.cin
    }

    /// `z[..len] = relu?(conv(x) * scale + shift (+ r))` of one image, through the padded copy
    /// `xp`; returns `len`, the output's length. (A residual join always takes `relu`.)
    fn run(&self, isa: Isa, x: &[T], xp: &mut [T], z: &mut [T], r: Option<&[T]>, relu: bool) -> usize {
        let g = &self.g;
        let (pl, zl) = (self.padded_len(), g.p() * g.cout);
        let xp = &mut xp[..pl];
        pad_input(g, &x[..g.h * g.w * g.cin], xp, None);
        let z = &mut z[..zl];
        kernels::forward(isa, g, xp, &self.wpk, self.cop, z);
        bn::apply_in_place(z, r.map(|r| &r[..zl]), &self.scale, &self.shift, relu);
        zl
    }
}

/// The trunk's units in order (stem, then per block `a`, `b`, the shortcut), packed.
struct Plan<T> {
    units: Vec<Packed<T>>,
    /// Per block: its `a` unit's index, and whether a shortcut unit follows `b`.
    blocks: Vec<(usize, bool)>,
    /// The longest activation and padded copy of any unit.
    act: usize,
    padded: usize,
}

impl<T: Real> Plan<T> {
    /// One image through the trunk: `out` from `x`.
    fn image(&self, isa: Isa, x: &[T], out: &mut [T]) {
        T::with_scratch(self.padded + 4 * self.act, |buf| {
            let (xp, rest) = buf.split_at_mut(self.padded);
            let (mut h, rest) = rest.split_at_mut(self.act);
            let (t, rest) = rest.split_at_mut(self.act);
            let (mut u, s) = rest.split_at_mut(self.act);
            let mut hl = self.units[0].run(isa, x, xp, h, None, true);
            for &(k, projection) in &self.blocks {
                let la = self.units[k].run(isa, &h[..hl], xp, t, None, true);
                let r: &[T] = if projection {
                    let ls = self.units[k + 2].run(isa, &h[..hl], xp, s, None, false);
                    &s[..ls]
                } else {
                    &h[..hl]
                };
                hl = self.units[k + 1].run(isa, &t[..la], xp, u, Some(r), true);
                std::mem::swap(&mut h, &mut u);
            }
            out.copy_from_slice(&h[..hl]);
        })
    }
}

/// One unit as the op keeps it: kernel, scale and shift (contiguous, in the input's dtype).
#[derive(Debug)]
struct OpUnit {
    weight: Tensor,
    scale: Tensor,
    shift: Tensor,
    stride: usize,
    padding: usize,
}

/// [`resnet_trunk_eval_nhwc`] as a Candle op over its input.
#[derive(Debug)]
struct EvalTrunkOp {
    isa: Isa,
    units: Vec<OpUnit>,
    /// Per block: its `a` unit's index, and whether a shortcut unit follows `b`.
    blocks: Vec<(usize, bool)>,
}

impl EvalTrunkOp {
    /// Unit `k` packed for an input of `dims` (NHWC).
    fn pack<T: Real>(&self, k: usize, dims: &[usize]) -> Result<Packed<T>> {
        let u = &self.units[k];
        let (ws, wl) = u.weight.storage_and_layout();
        let g = geometry(dims, wl.dims(), u.stride, u.padding)?;
        if !covers(&g) {
            bail!(
                "resnet trunk (evaluation): unit {k}'s kernel {:?} with stride {} and padding {} is not one the direct kernels cover",
                wl.dims(),
                u.stride,
                u.padding
            )
        }
        let (ss, sl) = u.scale.storage_and_layout();
        let (hs, hl) = u.shift.storage_and_layout();
        let (scale, shift) =
            (storage_slice::<T>(&ss, sl, "BatchNorm scale")?, storage_slice::<T>(&hs, hl, "BatchNorm shift")?);
        if scale.len() != g.cout || shift.len() != g.cout {
            bail!(
                "resnet trunk (evaluation): unit {k} has {} channels but {} scales and {} shifts",
                g.cout,
                scale.len(),
                shift.len()
            )
        }
        let cop = g.cout.next_multiple_of(kernels::lanes(self.isa));
        let wpk = pack_forward(&g, storage_slice::<T>(&ws, wl, "conv kernel")?, cop);
        Ok(Packed { g, wpk, cop, scale: scale.to_vec(), shift: shift.to_vec() })
    }

    fn fwd<T: Real>(&self, x: &[T], dims: &[usize]) -> Result<(Vec<T>, [usize; 4])> {
        let out_dims = |p: &Packed<T>| [p.g.n, p.g.ho, p.g.wo, p.g.cout];
        let stem = self.pack::<T>(0, dims)?;
        let mut hd = out_dims(&stem);
        let mut units = vec![stem];
        for &(k, projection) in &self.blocks {
            let a = self.pack::<T>(k, &hd)?;
            let b = self.pack::<T>(k + 1, &out_dims(&a))?;
            let out = out_dims(&b);
            units.extend([a, b]);
            if projection {
                let s = self.pack::<T>(k + 2, &hd)?;
                if out_dims(&s) != out {
                    bail!(
                        "resnet trunk (evaluation): a shortcut of output {:?} for a block of output {out:?}",
                        out_dims(&s)
                    )
                }
                units.push(s);
            } else if hd != out {
                bail!("resnet trunk (evaluation): an identity shortcut from {hd:?} to {out:?}")
            }
            hd = out;
        }
        let act = units.iter().map(|u| u.g.p() * u.g.cout).max().unwrap_or(0);
        let padded = units.iter().map(Packed::padded_len).max().unwrap_or(0);
        let plan = Plan { units, blocks: self.blocks.clone(), act, padded };
        let in_len: usize = dims[1..].iter().product();
        let out_len: usize = hd[1..].iter().product();
        let (y, _) =
            par_build(hd[0] * out_len, out_len, |i, oi| plan.image(self.isa, &x[i * in_len..(i + 1) * in_len], oi));
        Ok((y, hd))
    }
}

impl CustomOp1 for EvalTrunkOp {
    fn name(&self) -> &'static str {
        "dynaprune-direct-resnet-trunk-eval"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _t = Timer::start(Phase::ConvForward);
        let dims = xl.dims();
        if dims.len() != 4 {
            bail!("resnet trunk (evaluation) expects an NHWC (N, H, W, C) input, got {dims:?}")
        }
        match x {
            CpuStorage::F32(_) => {
                let (y, d) = self.fwd::<f32>(contiguous_slice(x, xl, "trunk input")?, dims)?;
                Ok((f32::storage(y), Shape::from(d.to_vec())))
            }
            CpuStorage::F64(_) => {
                let (y, d) = self.fwd::<f64>(contiguous_slice(x, xl, "trunk input")?, dims)?;
                Ok((f64::storage(y), Shape::from(d.to_vec())))
            }
            other => bail!("dynaprune direct conv supports f32 and f64, got {:?}", other.dtype()),
        }
    }
}

/// The trunk `blocks(relu(bn(conv(x))))` of a ResNet in evaluation mode, on NHWC `x`, each image
/// taken through every unit before the next (see the module's documentation); each BatchNorm is
/// given as its running-statistics affine. Not differentiable. The same bits as the units one by
/// one through [`super::conv_affine_nhwc`].
pub fn resnet_trunk_eval_nhwc(x: &Tensor, stem: &EvalUnit, blocks: &[EvalBlock], isa: Isa) -> Result<Tensor> {
    check_isa(isa)?;
    let op_unit = |u: &EvalUnit| -> Result<OpUnit> {
        let values = |t: &Tensor| t.flatten_all()?.to_dtype(x.dtype())?.contiguous();
        Ok(OpUnit {
            weight: u.weight.contiguous()?,
            scale: values(&u.scale)?,
            shift: values(&u.shift)?,
            stride: u.stride,
            padding: u.padding,
        })
    };
    let mut units = vec![op_unit(stem)?];
    let mut shape = Vec::with_capacity(blocks.len());
    for b in blocks {
        shape.push((units.len(), b.shortcut.is_some()));
        units.push(op_unit(&b.a)?);
        units.push(op_unit(&b.b)?);
        if let Some(s) = &b.shortcut {
            units.push(op_unit(s)?);
        }
    }
    x.contiguous()?.apply_op1_no_bwd(&EvalTrunkOp { isa, units, blocks: shape })
}

//! Direct convolutions on NHWC activations, with training-mode BatchNorm (+ ReLU) fused: the
//! [`crate::Kernels::Direct`] path.
//!
//! - `vector.rs`: the instruction sets ([`Isa`]: AVX-512, AVX2 + FMA, portable) and the vector
//!   type each kernel body is written over;
//! - `kernels.rs`: forward, input-gradient and weight-gradient kernels of one image, from padded
//!   copies, in register tiles; bit-identical across instruction sets;
//! - `bn.rs`: BatchNorm statistics and gradients of one NHWC image;
//! - `fused.rs`: a ResNet block with each BatchNorm (+ ReLU, + residual join) left to the pass
//!   that reads its output next (three passes over its activations), and evaluation's conv with
//!   the affine in its epilogue;
//! - `eval.rs`: a ResNet's trunk in evaluation mode, image by image through every layer (the
//!   image's activations stay in cache);
//! - `pool.rs`: global average pooling over NHWC pixels;
//! - `trunk.rs`: a ResNet's whole trunk in training mode as one op (no activation-sized gradient
//!   through Candle's gradient store);
//! - this file: packing and padding, the batch drivers (parallel over images; weight-gradient
//!   partials over fixed groups of images summed in group order, so results do not depend on the
//!   thread count), the im2col fallback for shapes the kernels do not cover, and the Candle ops.
//!
//! Activations are NHWC from the network's first convolution to its pooling (the network converts
//! once, at its input); kernels keep Candle's `(Cout, Cin, kh, kw)` layout (checkpoints are the
//! same for every path) and are repacked per call (a few hundred KiB: small next to the
//! activations).

mod bn;
mod eval;
mod fused;
mod kernels;
mod pool;
mod trunk;
mod vector;

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

pub use eval::{resnet_trunk_eval_nhwc, EvalBlock, EvalUnit, DEPTH_FIRST_WEIGHT_BYTES};
pub use fused::{conv_affine_nhwc, BlockUnit};
pub use pool::mean_pixels_nhwc;
pub use trunk::{resnet_trunk_train_nhwc, TrunkBlock};
pub use vector::Isa;

use super::bn::BatchStats;
use super::conv::{self, Geometry};
use super::gemm::Precision;
use super::profile::{Phase, Timer};
use super::real::Real;
use super::{contiguous_slice, cpu_slice, BatchStatsHandle};

/// Weight-gradient groups, at most: each group of images accumulates its own partial kernel
/// gradient, and the partials are summed in group order.
const GROUPS: usize = 16;
/// The partials of all groups together stay under this many bytes (ResNet-18's 512-channel
/// kernels are 9.4 MB each: 3 groups rather than 16).
const PARTIALS_BYTES: usize = 32 << 20;

/// Images per weight-gradient group for `n` images and partials of `part_len` elements of `T`:
/// a function of the batch size and the layer's shape only, never of the thread count, so the
/// sums (and the results) are the same at any thread count.
fn group_size<T>(n: usize, part_len: usize) -> usize {
    let fit = PARTIALS_BYTES / (part_len * std::mem::size_of::<T>()).max(1);
    n.div_ceil(GROUPS.min(fit).max(2)).max(1)
}

/// The shape of an NHWC convolution: `x` is `(N, H, W, Cin)`, `w` is `(Cout, Cin, kh, kw)`.
pub(crate) fn geometry(x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Geometry> {
    let &[n, h, wd, c] = x else { bail!("direct conv2d expects an NHWC (N, H, W, C) input, got {x:?}") };
    Geometry::new(&[n, c, h, wd], w, stride, pad)
}

/// A tensor's contiguous CPU values as `T` (`what` names it in errors).
pub(super) fn storage_slice<'a, T: Real>(s: &'a Storage, l: &Layout, what: &str) -> Result<&'a [T]> {
    let Storage::Cpu(c) = s else { bail!("dynaprune direct conv runs on the CPU only") };
    contiguous_slice::<T>(c, l, what)
}

/// Whether the direct kernels cover this shape: square 1x1 or 3x3 kernels, stride 1 or 2,
/// padding at most half the kernel. Others run the im2col path (converted to NCHW and back),
/// counted by [`fallbacks`].
pub(crate) fn covers(g: &Geometry) -> bool {
    g.kh == g.kw && matches!(g.kh, 1 | 3) && matches!(g.stride, 1 | 2) && g.pad <= g.kh / 2
}

static FALLBACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many convolution calls (forward or backward) of the direct path fell back to im2col since
/// the last call; resets the count.
pub fn fallbacks() -> u64 {
    FALLBACKS.swap(0, std::sync::atomic::Ordering::Relaxed)
}

fn count_fallback() {
    FALLBACKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// A vector of `len` elements built chunk by chunk in parallel: chunk `i` (`chunk` elements, the
/// last one shorter) is zeroed and handed to `f(i, chunk)` in the thread that then writes it, so
/// the big activation buffers are never zero-filled by one thread up front (a single-threaded
/// `memset` of every activation was several percent of a training step). Returns what `f`
/// returns per chunk, in chunk order.
fn par_build<T: Real, R: Send>(len: usize, chunk: usize, f: impl Fn(usize, &mut [T]) -> R + Sync) -> (Vec<T>, Vec<R>) {
    let mut v: Vec<T> = Vec::with_capacity(len);
    let r = if len == 0 {
        Vec::new()
    } else {
        v.spare_capacity_mut()[..len]
            .par_chunks_mut(chunk.max(1))
            .enumerate()
            .map(|(i, c)| {
                for e in c.iter_mut() {
                    e.write(T::ZERO);
                }
                // SAFETY: every element of `c` was initialised just above; `MaybeUninit<T>` has
                // the layout of `T`.
                let c = unsafe { &mut *(c as *mut [std::mem::MaybeUninit<T>] as *mut [T]) };
                f(i, c)
            })
            .collect()
    };
    // SAFETY: the chunks cover `..len` and each was initialised.
    unsafe { v.set_len(len) };
    (v, r)
}

/// Transposes each image of `x`, a `rows x cols` matrix: NHWC (`pixels x C`) to NCHW
/// (`C x pixels`), or back.
fn transpose_images<T: Real>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; x.len()];
    let len = rows * cols;
    if len == 0 {
        return out;
    }
    out.par_chunks_mut(len).zip(x.par_chunks(len)).for_each(|(o, i)| {
        for r in 0..rows {
            for c in 0..cols {
                o[c * rows + r] = i[r * cols + c];
            }
        }
    });
    out
}

/// `wpk[ky][kx][ci][co]` (`co` padded to `cop`) from `w[co][ci][ky][kx]`.
fn pack_forward<T: Real>(g: &Geometry, w: &[T], cop: usize) -> Vec<T> {
    let (kk, cin, cout) = (g.kh * g.kw, g.cin, g.cout);
    let mut p = vec![T::ZERO; kk * cin * cop];
    for co in 0..cout {
        for ci in 0..cin {
            for t in 0..kk {
                p[(t * cin + ci) * cop + co] = w[(co * cin + ci) * kk + t];
            }
        }
    }
    p
}

/// `wtk[ky][kx][co][ci]` (`ci` padded to `cip`) from `w[co][ci][ky][kx]`.
fn pack_input_grad<T: Real>(g: &Geometry, w: &[T], cip: usize) -> Vec<T> {
    let (kk, cin, cout) = (g.kh * g.kw, g.cin, g.cout);
    let mut p = vec![T::ZERO; kk * cout * cip];
    for co in 0..cout {
        for ci in 0..cin {
            for t in 0..kk {
                p[(t * cout + co) * cip + ci] = w[(co * cin + ci) * kk + t];
            }
        }
    }
    p
}

/// A per-channel `relu?(x * scale + shift)` applied to a convolution's input as it is copied into
/// the padded buffer: the BatchNorm (+ ReLU) of the layer before, left to its consumer so that the
/// activation is never written out (see `fused.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InputAffine<'a, T> {
    pub scale: &'a [T],
    pub shift: &'a [T],
    pub relu: bool,
}

/// Writes image `x` (`H x W x Cin`), through `tf` if given, into `xp` with a zero border of `pad`
/// pixels (every element written, so `xp` need not be cleared).
fn pad_input<T: Real>(g: &Geometry, x: &[T], xp: &mut [T], tf: Option<InputAffine<T>>) {
    let (c, pad, wpd) = (g.cin, g.pad, g.w + 2 * g.pad);
    let row = wpd * c;
    xp[..pad * row].fill(T::ZERO);
    xp[(g.h + pad) * row..(g.h + 2 * pad) * row].fill(T::ZERO);
    for y in 0..g.h {
        let r = &mut xp[(y + pad) * row..(y + pad + 1) * row];
        r[..pad * c].fill(T::ZERO);
        r[(pad + g.w) * c..].fill(T::ZERO);
        let (dst, src) = (&mut r[pad * c..(pad + g.w) * c], &x[y * g.w * c..(y + 1) * g.w * c]);
        match tf {
            None => dst.copy_from_slice(src),
            Some(a) => bn::apply(dst, src, a.scale, a.shift, a.relu),
        }
    }
}

/// The border the input gradient reads around the output gradient (covers every tap of every
/// input pixel: see `kernels::input_grad_image`).
fn output_border(g: &Geometry) -> usize {
    g.kh.max(g.kw)
}

/// Writes image gradient `dz` (`Ho x Wo x Cout`) into `dyp` (`(Ho + 2pd) x (Wo + 2pd) x cop`):
/// zero border, zero channel padding.
fn pad_output<T: Real>(g: &Geometry, dz: &[T], pd: usize, cop: usize, dyp: &mut [T]) {
    let (c, wdp) = (g.cout, g.wo + 2 * pd);
    let row = wdp * cop;
    dyp[..pd * row].fill(T::ZERO);
    dyp[(g.ho + pd) * row..(g.ho + 2 * pd) * row].fill(T::ZERO);
    for y in 0..g.ho {
        let r = &mut dyp[(y + pd) * row..(y + pd + 1) * row];
        r[..pd * cop].fill(T::ZERO);
        r[(pd + g.wo) * cop..].fill(T::ZERO);
        let src = &dz[y * g.wo * c..(y + 1) * g.wo * c];
        if cop == c {
            r[pd * cop..(pd + g.wo) * cop].copy_from_slice(src);
            continue;
        }
        for x in 0..g.wo {
            let d = &mut r[(pd + x) * cop..(pd + x + 1) * cop];
            d[..c].copy_from_slice(&src[x * c..(x + 1) * c]);
            d[c..].fill(T::ZERO);
        }
    }
}

/// `relu?(x * scale + shift)` per channel (the last dimension) over a whole batch, in parallel.
fn apply_batch<T: Real>(x: &[T], scale: &[T], shift: &[T], relu: bool) -> Vec<T> {
    let c = scale.len().max(1);
    let chunk = (c * 1024).min(x.len()).max(c);
    par_build(x.len(), chunk, |i, yi| bn::apply(yi, &x[i * chunk..i * chunk + yi.len()], scale, shift, relu)).0
}

/// `x` through `tf`, whole (for the im2col fallback, which reads its input as it is).
fn transformed<'a, T: Real>(x: &'a [T], tf: Option<InputAffine<T>>) -> std::borrow::Cow<'a, [T]> {
    match tf {
        None => std::borrow::Cow::Borrowed(x),
        Some(a) => std::borrow::Cow::Owned(apply_batch(x, a.scale, a.shift, a.relu)),
    }
}

/// Forward convolution of a batch: `z` (`N x Ho x Wo x Cout`) of the input `x` through `tf` (if
/// given) and, per image `i`, what `epilogue(i, z_i)` returns (run while the image's output is in
/// cache; it may rewrite it).
pub(crate) fn forward<T: Real, E: Send>(
    isa: Isa,
    g: &Geometry,
    x: &[T],
    w: &[T],
    tf: Option<InputAffine<T>>,
    epilogue: impl Fn(usize, &mut [T]) -> E + Sync,
) -> (Vec<T>, Vec<E>) {
    let out_len = g.p() * g.cout;
    if !covers(g) {
        count_fallback();
        let _t = Timer::start(Phase::DirectFallback);
        let xn = transpose_images(&transformed(x, tf), g.h * g.w, g.cin);
        let zn = conv::forward(g, &xn, w, Precision::F32);
        let mut z = transpose_images(&zn, g.cout, g.p());
        let e = if out_len == 0 {
            Vec::new()
        } else {
            z.chunks_mut(out_len).enumerate().map(|(i, zi)| epilogue(i, zi)).collect()
        };
        return (z, e);
    }
    let cop = g.cout.next_multiple_of(kernels::lanes(isa));
    let wpk = pack_forward(g, w, cop);
    let padded = (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * g.cin;
    let in_len = g.h * g.w * g.cin;
    par_build(g.n * out_len, out_len, |i, zi| {
        T::with_scratch(padded, |xp| {
            pad_input(g, &x[i * in_len..(i + 1) * in_len], xp, tf);
            kernels::forward(isa, g, xp, &wpk, cop, zi);
        });
        epilogue(i, zi)
    })
}

/// Backward convolution of a batch: `(dx, dw, per image dx_epilogue)`, `dx` (NHWC, the gradient
/// of the convolution's input *after* `tf`) only if `need_dx`. `x` is the input before `tf`.
/// `dz_of(i, dst)` writes image `i`'s output gradient (`Ho x Wo x Cout`) into `dst`: the caller's
/// chance to fuse the layer after the convolution (BatchNorm) into the pass that reads it;
/// `dx_epilogue(i, dx_i)` runs on each image's input gradient while it is in cache (the
/// BatchNorm-gradient sums of the layer before).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Real, E: Send>(
    isa: Isa,
    g: &Geometry,
    x: &[T],
    w: &[T],
    tf: Option<InputAffine<T>>,
    dz_of: impl Fn(usize, &mut [T]) + Sync,
    need_dx: bool,
    dx_epilogue: impl Fn(usize, &mut [T]) -> E + Sync,
) -> (Option<Vec<T>>, Vec<T>, Vec<E>) {
    let (in_len, out_len) = (g.h * g.w * g.cin, g.p() * g.cout);
    if !covers(g) {
        count_fallback();
        let _t = Timer::start(Phase::DirectFallback);
        let mut dz = vec![T::ZERO; g.n * out_len];
        if out_len > 0 {
            dz.par_chunks_mut(out_len).enumerate().for_each(|(i, d)| dz_of(i, d));
        }
        let xn = transpose_images(&transformed(x, tf), g.h * g.w, g.cin);
        let dzn = transpose_images(&dz, g.p(), g.cout);
        let (dxn, dw) = conv::backward(g, &xn, w, &dzn, need_dx, Precision::F32);
        let mut dx = dxn.map(|d| transpose_images(&d, g.cin, g.h * g.w));
        let e = match &mut dx {
            Some(d) if in_len > 0 => d.chunks_mut(in_len).enumerate().map(|(i, di)| dx_epilogue(i, di)).collect(),
            _ => Vec::new(),
        };
        return (dx, dw, e);
    }
    let l = kernels::lanes(isa);
    let (cop, cip) = (g.cout.next_multiple_of(l), g.cin.next_multiple_of(l));
    let kk = g.kh * g.kw;
    let wtk = if need_dx { pack_input_grad(g, w, cip) } else { Vec::new() };
    let pd = output_border(g);
    let padded_x = (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * g.cin;
    let padded_dy = (g.ho + 2 * pd) * (g.wo + 2 * pd) * cop;
    let gs = group_size::<T>(g.n, kk * g.cin * cop);
    let groups = g.n.div_ceil(gs);
    // Per group: each image's output gradient (padded) and input gradient, then the group's
    // weight gradient in one pass over its padded images.
    let run = |gi: usize, mut dxc: Option<&mut [T]>| -> (Vec<T>, Vec<E>) {
        let mut part = vec![T::ZERO; kk * g.cin * cop];
        let mut done = Vec::new();
        let first = gi * gs;
        let images = gs.min(g.n - first);
        T::with_scratch(images * padded_dy, |dyp| {
            T::with_scratch(images * padded_x, |xp| {
                T::with_scratch(out_len, |dz| {
                    for j in 0..images {
                        let i = first + j;
                        dz_of(i, dz);
                        let dypj = &mut dyp[j * padded_dy..(j + 1) * padded_dy];
                        pad_output(g, dz, pd, cop, dypj);
                        if let Some(dxc) = dxc.as_deref_mut() {
                            let dxj = &mut dxc[j * in_len..(j + 1) * in_len];
                            kernels::input_grad(isa, g, dypj, pd, cop, &wtk, cip, dxj);
                            done.push(dx_epilogue(i, dxj));
                        }
                        let xpj = &mut xp[j * padded_x..(j + 1) * padded_x];
                        pad_input(g, &x[i * in_len..(i + 1) * in_len], xpj, tf);
                    }
                });
                kernels::weight_grad(isa, g, images, xp, dyp, pd, cop, &mut part);
            })
        });
        (part, done)
    };
    // Per group: its weight-gradient partial and its images' epilogue results.
    type Group<T, E> = (Vec<T>, Vec<E>);
    let (dx, results): (Vec<T>, Vec<Group<T, E>>) = if need_dx && in_len > 0 {
        par_build(g.n * in_len, gs * in_len, |gi, dxc| run(gi, Some(dxc)))
    } else {
        (Vec::new(), (0..groups).into_par_iter().map(|gi| run(gi, None)).collect())
    };
    let (partials, done): (Vec<Vec<T>>, Vec<Vec<E>>) = results.into_iter().unzip();
    // Each element summed over the groups in group order (in parallel over elements).
    let mut sum = vec![T::ZERO; kk * g.cin * cop];
    sum.par_chunks_mut(1 << 14).enumerate().for_each(|(k, chunk)| {
        let at = k << 14;
        for part in &partials {
            let len = chunk.len();
            for (a, b) in chunk.iter_mut().zip(&part[at..at + len]) {
                *a += *b;
            }
        }
    });
    let (cin, kkc) = (g.cin, g.cin * kk);
    let (dw, _) = par_build(g.cout * kkc, kkc, |co, row| {
        for ci in 0..cin {
            for t in 0..kk {
                row[ci * kk + t] = sum[(t * cin + ci) * cop + co];
            }
        }
    });
    (need_dx.then_some(dx), dw, done.into_iter().flatten().collect())
}

/// The gradients of a conv-bn: input (if needed), kernel, affine.
type Grads<T> = (Option<Vec<T>>, Vec<T>, Vec<T>);

/// A batch's `(mean, biased variance)` per channel.
pub(crate) type Moments = (Vec<f64>, Vec<f64>);

/// `relu?(batch_norm(conv2d(x, w)))` of a batch, training mode, `affine = [gamma; beta]`:
/// `(y, z, (mean, var))`, `z` the convolution output (kept for the backward) whose batch
/// statistics are taken per image in the convolution's epilogue.
pub(crate) fn conv_bn_forward<T: Real>(
    isa: Isa,
    g: &Geometry,
    x: &[T],
    w: &[T],
    affine: &[T],
    eps: f64,
    relu: bool,
) -> (Vec<T>, Vec<T>, Moments) {
    let (z, moments) = {
        let _t = Timer::start(Phase::ConvForward);
        forward(isa, g, x, w, None, |_, zi| bn::image_moments(zi, g.cout))
    };
    let _t = Timer::start(Phase::NormForward);
    let c = g.cout;
    let (mean, var) = super::bn::combine_moments(&moments, g.p(), c);
    let (scale, shift) = super::bn::forward_affine(&affine[..c], &affine[c..], &mean, &var, eps);
    (apply_batch(&z, &scale, &shift, relu), z, (mean, var))
}

/// The backward of [`conv_bn_forward`]: `(dx if need_dx, dw, d affine)` from the output
/// gradient `dy`, the input `x`, the saved convolution output `z` and its batch statistics. The
/// BatchNorm gradient sums take one pass over `(z, dy)`; the BatchNorm input gradient is written
/// per image in the convolution backward's prologue.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_bn_backward<T: Real>(
    isa: Isa,
    g: &Geometry,
    (x, z): (&[T], &[T]),
    w: &[T],
    affine: &[T],
    (mean, var): &Moments,
    (eps, relu): (f64, bool),
    dy: &[T],
    need_dx: bool,
) -> Grads<T> {
    let c = g.cout;
    let img = (g.p() * c).max(1);
    let (dgamma, dbeta, coef, scale, shift) = {
        let _t = Timer::start(Phase::NormBackward);
        let (scale, shift) = super::bn::forward_affine(&affine[..c], &affine[c..], mean, var, eps);
        let m: Vec<T> = mean.iter().map(|&v| T::from_f64(v)).collect();
        let sums: Vec<Vec<(f64, f64)>> = z
            .par_chunks(img)
            .zip(dy.par_chunks(img))
            .map(|(zi, di)| bn::grad_sums(zi, di, &m, &scale, &shift, relu))
            .collect();
        let (dgamma, dbeta, coef) = bn::grad_coefficients(&sums, &affine[..c], mean, var, eps, g.n * g.p());
        (dgamma, dbeta, coef, scale, shift)
    };
    let _t = Timer::start(Phase::ConvBackward);
    let dz_of = |i: usize, dst: &mut [T]| {
        let r = i * img..(i + 1) * img;
        coef.input_grad(dst, &z[r.clone()], &dy[r], &scale, &shift, relu);
    };
    let (dx, dw, _) = backward(isa, g, x, w, None, dz_of, need_dx, |_, _| ());
    (dx, dw, [dgamma, dbeta].concat())
}

/// What the conv-bn forward keeps for its backward: the convolution output.
#[derive(Debug)]
enum Saved {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// `relu?(batch_norm(conv2d(x, w)))` on NHWC, `affine = [gamma; beta]` `(2, Cout)`.
#[derive(Debug)]
struct ConvBnOp {
    isa: Isa,
    stride: usize,
    padding: usize,
    eps: f64,
    relu: bool,
    stats: BatchStats,
    saved: Mutex<Option<Saved>>,
}

impl ConvBnOp {
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
        let g = geometry(xl.dims(), wl.dims(), self.stride, self.padding)?;
        let affine = contiguous_slice::<T>(a, al, "conv-bn affine")?;
        if affine.len() != 2 * g.cout {
            bail!("conv-bn: affine parameters must be (2, {}), got {:?}", g.cout, al.dims())
        }
        let (x, w) = (contiguous_slice::<T>(x, xl, "conv input")?, contiguous_slice::<T>(w, wl, "conv kernel")?);
        let (y, z, stats) = conv_bn_forward(self.isa, &g, x, w, affine, self.eps, self.relu);
        *self.stats.lock().expect("batch-norm statistics lock") = Some(stats);
        *self.saved.lock().expect("saved activations lock") = Some(wrap(z));
        Ok((T::storage(y), Shape::from((g.n, g.ho, g.wo, g.cout))))
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
    ) -> Result<Grads<T>> {
        let guard = self.stats.lock().expect("batch-norm statistics lock");
        let Some(stats) = guard.as_ref() else { bail!("conv-bn backward called before forward") };
        Ok(conv_bn_backward(self.isa, g, (x, z), w, affine, stats, (self.eps, self.relu), dy, need_dx))
    }
}

impl CustomOp3 for ConvBnOp {
    fn name(&self) -> &'static str {
        "dynaprune-direct-conv-bn"
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
            other => bail!("dynaprune direct conv-bn supports f32 and f64, got {:?}", other.dtype()),
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
        let g = geometry(x.dims(), w.dims(), self.stride, self.padding)?;
        if dy.dims() != [g.n, g.ho, g.wo, g.cout] {
            bail!(
                "direct conv-bn backward: gradient of shape {:?}, expected {:?}",
                dy.dims(),
                (g.n, g.ho, g.wo, g.cout)
            )
        }
        let Some(saved) = self.saved.lock().expect("saved activations lock").take() else {
            bail!("direct conv-bn backward called twice or before forward")
        };
        let need_dx = x.track_op();
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (as_, al) = affine.storage_and_layout();
        let (ds, dl) = dy.storage_and_layout();
        let (Storage::Cpu(xc), Storage::Cpu(wc), Storage::Cpu(ac), Storage::Cpu(dc)) = (&*xs, &*ws, &*as_, &*ds) else {
            bail!("dynaprune direct conv-bn runs on the CPU only")
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

/// A plain NHWC convolution (no BatchNorm): evaluation, and gradients in evaluation mode.
#[derive(Debug, Clone, Copy)]
struct ConvOp {
    isa: Isa,
    stride: usize,
    padding: usize,
}

impl ConvOp {
    fn fwd<T: Real>(&self, x: &CpuStorage, xl: &Layout, w: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _t = Timer::start(Phase::ConvForward);
        let g = geometry(xl.dims(), wl.dims(), self.stride, self.padding)?;
        let (x, w) = (contiguous_slice::<T>(x, xl, "conv2d input")?, contiguous_slice::<T>(w, wl, "conv2d kernel")?);
        let (z, _) = forward(self.isa, &g, x, w, None, |_, _| ());
        Ok((T::storage(z), Shape::from((g.n, g.ho, g.wo, g.cout))))
    }

    fn bwd_impl<T: Real>(&self, g: &Geometry, x: &[T], w: &[T], dy: &[T], need_dx: bool) -> (Option<Vec<T>>, Vec<T>) {
        let img = g.p() * g.cout;
        let dz_of = |i: usize, dst: &mut [T]| dst.copy_from_slice(&dy[i * img..(i + 1) * img]);
        let (dx, dw, _) = backward(self.isa, g, x, w, None, dz_of, need_dx, |_, _| ());
        (dx, dw)
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        "dynaprune-direct-conv2d"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, w: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        match x {
            CpuStorage::F32(_) => self.fwd::<f32>(x, xl, w, wl),
            CpuStorage::F64(_) => self.fwd::<f64>(x, xl, w, wl),
            other => bail!("dynaprune direct conv2d supports f32 and f64, got {:?}", other.dtype()),
        }
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let _t = Timer::start(Phase::ConvBackward);
        let dy = dy.contiguous()?;
        let g = geometry(x.dims(), w.dims(), self.stride, self.padding)?;
        let need_dx = x.track_op();
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (ds, dl) = dy.storage_and_layout();
        let (Storage::Cpu(xc), Storage::Cpu(wc), Storage::Cpu(dc)) = (&*xs, &*ws, &*ds) else {
            bail!("dynaprune direct conv2d runs on the CPU only")
        };
        macro_rules! run {
            ($t:ty) => {{
                let (dx, dw) =
                    self.bwd_impl::<$t>(&g, cpu_slice(xc, xl)?, cpu_slice(wc, wl)?, cpu_slice(dc, dl)?, need_dx);
                (
                    dx.map(|d| Tensor::from_vec(d, x.shape(), x.device())).transpose()?,
                    Tensor::from_vec(dw, w.shape(), w.device())?,
                )
            }};
        }
        let (dx, dw) = match xc {
            CpuStorage::F32(_) => run!(f32),
            CpuStorage::F64(_) => run!(f64),
            other => bail!("dynaprune direct conv2d supports f32 and f64, got {:?}", other.dtype()),
        };
        Ok((dx, Some(dw)))
    }
}

/// Refuses an instruction set this CPU cannot run, naming what it has.
pub fn check_isa(isa: Isa) -> Result<()> {
    refuse_unless(isa, isa.available(), &crate::cpu::features())
}

fn refuse_unless(isa: Isa, available: bool, features: &str) -> Result<()> {
    if !available {
        let has = if features.is_empty() { "none of avx2, fma, avx512f" } else { features };
        bail!("the direct kernels' {} path needs {}; this CPU has: {has}", isa.name(), isa.needs())
    }
    Ok(())
}

/// `conv2d(x, w)` on NHWC: `(N, H, W, Cin) x (Cout, Cin, kh, kw) -> (N, Ho, Wo, Cout)`, no bias.
/// Differentiable in both arguments.
pub fn conv2d_nhwc(x: &Tensor, w: &Tensor, stride: usize, padding: usize, isa: Isa) -> Result<Tensor> {
    check_isa(isa)?;
    x.contiguous()?.apply_op2(&w.contiguous()?, ConvOp { isa, stride, padding })
}

/// [`super::conv_bn_train`] on NHWC with the direct kernels: `relu?(batch_norm(conv2d(x, w)))`,
/// `affine = [gamma; beta]` `(2, Cout)`; the BatchNorm statistics are taken per image in the
/// convolution's epilogue and its input gradient is written in the convolution backward's
/// prologue.
#[allow(clippy::too_many_arguments)]
pub fn conv_bn_train_nhwc(
    x: &Tensor,
    w: &Tensor,
    affine: &Tensor,
    stride: usize,
    padding: usize,
    eps: f64,
    relu: bool,
    isa: Isa,
) -> Result<(Tensor, BatchStatsHandle)> {
    check_isa(isa)?;
    let stats = BatchStats::default();
    let op = ConvBnOp { isa, stride, padding, eps, relu, stats: stats.clone(), saved: Mutex::new(None) };
    let y = x.contiguous()?.apply_op3(&w.contiguous()?, &affine.contiguous()?, op)?;
    Ok((y, BatchStatsHandle(stats)))
}

/// The backward convolution alone, `(dx, dw)` for an output gradient `dy`, on the direct kernels
/// (NHWC `x` and `dy`) or, with `isa = None`, the im2col path (NCHW): for the per-layer benchmark
/// (`examples/conv_layers.rs`), which times the kernels without the autograd around them.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn conv_backward_f32(
    x: &[f32],
    x_dims: &[usize],
    w: &[f32],
    w_dims: &[usize],
    dy: &[f32],
    stride: usize,
    padding: usize,
    isa: Option<Isa>,
    need_dx: bool,
) -> Result<(Vec<f32>, Vec<f32>)> {
    match isa {
        Some(isa) => {
            check_isa(isa)?;
            let g = geometry(x_dims, w_dims, stride, padding)?;
            let img = g.p() * g.cout;
            let dz_of = |i: usize, d: &mut [f32]| d.copy_from_slice(&dy[i * img..(i + 1) * img]);
            let (dx, dw, _) = backward(isa, &g, x, w, None, dz_of, need_dx, |_, _| ());
            Ok((dx.unwrap_or_default(), dw))
        }
        None => {
            let g = Geometry::new(x_dims, w_dims, stride, padding)?;
            let (dx, dw) = conv::backward(&g, x, w, dy, need_dx, Precision::F32);
            Ok((dx.unwrap_or_default(), dw))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusal names the path, what it needs and what the CPU has, whatever this CPU is.
    #[test]
    fn refusal_names_the_cpu_features() {
        let e = refuse_unless(Isa::Avx512, false, "avx2 fma").unwrap_err().to_string();
        // (Candle appends a backtrace when RUST_BACKTRACE is set.)
        assert!(e.starts_with("the direct kernels' avx512 path needs avx512f; this CPU has: avx2 fma"), "{e}");
        let e = refuse_unless(Isa::Avx2, false, "").unwrap_err().to_string();
        assert!(e.contains("needs avx2 fma; this CPU has: none of avx2, fma, avx512f"), "{e}");
        assert!(refuse_unless(Isa::Portable, true, "").is_ok());
        assert!(check_isa(Isa::Portable).is_ok());
    }
}

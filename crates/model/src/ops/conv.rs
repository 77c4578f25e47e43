//! 2-D convolution for training as large matrix products (im2col / col2im on the `gemm` crate),
//! a Candle custom op with its own backward pass.
//!
//! Per group of `G` images (`G` chosen so that each GEMM has at least ~512 columns):
//! - forward:        `Y[Cout, G*P] = W[Cout, K] * col[K, G*P]`
//! - weight grad:    `dW[Cout, K] += dY[Cout, G*P] * col[K, G*P]^T`
//! - input grad:     `dcol[K, G*P] = W^T * dY`, then col2im (scatter-add) into `dx`
//!
//! with `K = Cin * kh * kw` and `P = Hout * Wout`. Groups run in parallel on rayon's pool; each
//! group's weight-gradient partial is summed in group order, and the grouping depends only on the
//! layer's shape, so results are bit-identical whatever the thread count.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

use super::gemm::{product, runs_in_bf16, Precision, View};
use super::gemm_bf16::{self, Src};
use super::real::Real;
use super::{contiguous_slice, cpu_slice};

/// Columns each group's GEMM aims for.
const TARGET_COLUMNS: usize = 512;

/// The shape of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Geometry {
    pub fn new(x: &[usize], w: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let (&[n, cin, h, wd], &[cout, cin2, kh, kw]) = (x, w) else {
            bail!("conv2d expects a (N, C, H, W) input and a (Cout, Cin, kh, kw) kernel, got {x:?} and {w:?}")
        };
        if cin != cin2 {
            bail!("conv2d: input has {cin} channels but the kernel expects {cin2}")
        }
        if stride == 0 || h + 2 * pad < kh || wd + 2 * pad < kw {
            bail!("conv2d: invalid geometry: input {h}x{wd}, kernel {kh}x{kw}, stride {stride}, padding {pad}")
        }
        let ho = (h + 2 * pad - kh) / stride + 1;
        let wo = (wd + 2 * pad - kw) / stride + 1;
        Ok(Self { n, cin, h, w: wd, cout, kh, kw, stride, pad, ho, wo })
    }
    pub fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }
    pub fn p(&self) -> usize {
        self.ho * self.wo
    }
    pub fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }
    pub fn out_len(&self) -> usize {
        self.cout * self.p()
    }
    /// A 1x1, stride-1, unpadded conv: the input already is the column matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }
    /// A stride-1 "same" conv with a k x k kernel (k > 1): handled in padded-width layout.
    fn same_stride1(&self) -> bool {
        self.stride == 1 && self.kh == self.kw && self.kh > 1 && self.kh % 2 == 1 && self.pad == self.kh / 2
    }
    /// Padded width.
    fn wp(&self) -> usize {
        self.w + 2 * self.pad
    }
    /// Padded plane size, and the padded-image buffer length (planes plus read slack).
    fn padded_len(&self) -> (usize, usize) {
        let plane = (self.h + 2 * self.pad) * self.wp();
        (plane, self.cin * plane + self.kw)
    }
    /// Columns per image in the GEMMs: `Ho * Wp` in padded-width layout (2*pad junk columns per
    /// output row, dropped afterwards), else `Ho * Wo`.
    fn cols_per_image(&self) -> usize {
        if self.same_stride1() {
            self.ho * self.wp()
        } else {
            self.p()
        }
    }
    /// Images per group.
    pub fn group(&self) -> usize {
        TARGET_COLUMNS.div_ceil(self.cols_per_image()).clamp(1, self.n.max(1))
    }
    pub fn out_dims(&self) -> (usize, usize, usize, usize) {
        (self.n, self.cout, self.ho, self.wo)
    }
}

/// Valid output columns `lo..hi` for kernel column `kx`: those with `0 <= ox*s + kx - pad < w`.
#[inline]
fn valid_cols(g: &Geometry, kx: usize) -> (usize, usize) {
    let (w, s, pad, wo) = (g.w as isize, g.stride, g.pad as isize, g.wo);
    let lo = ((pad - kx as isize).max(0) as usize).div_ceil(s).min(wo);
    let hi = (((w + pad - kx as isize - 1).max(-1) + 1) as usize).div_ceil(s).min(wo).max(lo);
    (lo, hi)
}

/// Writes image `x`'s columns into `col` (row stride `rs`), starting at column `off`. Every
/// element of the `K x P` block is written (zeros for padding), so `col` need not be cleared.
fn im2col<T: Real>(g: &Geometry, x: &[T], col: &mut [T], rs: usize, off: usize) {
    let (h, w, wo, s, pad) = (g.h, g.w, g.wo, g.stride, g.pad as isize);
    for ci in 0..g.cin {
        let plane = &x[ci * h * w..(ci + 1) * h * w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = (ci * g.kh + ky) * g.kw + kx;
                let dst_row = &mut col[row * rs + off..row * rs + off + g.p()];
                let (lo, hi) = valid_cols(g, kx);
                let ix0 = (lo * s) as isize + kx as isize - pad;
                for (oy, dst) in dst_row.chunks_exact_mut(wo).enumerate() {
                    let iy = (oy * s) as isize + ky as isize - pad;
                    if iy < 0 || iy >= h as isize {
                        for d in dst.iter_mut() {
                            *d = T::ZERO;
                        }
                        continue;
                    }
                    let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                    for d in &mut dst[..lo] {
                        *d = T::ZERO;
                    }
                    for d in &mut dst[hi..] {
                        *d = T::ZERO;
                    }
                    let ix0 = ix0 as usize;
                    if s == 1 {
                        // Short rows: an element loop beats a memcpy call per row.
                        for (d, &v) in dst[lo..hi].iter_mut().zip(&src[ix0..ix0 + (hi - lo)]) {
                            *d = v;
                        }
                    } else {
                        for (j, d) in dst[lo..hi].iter_mut().enumerate() {
                            *d = src[ix0 + j * s];
                        }
                    }
                }
            }
        }
    }
}

/// Adds `col`'s columns (row stride `rs`, starting at column `off`) back into image `dx`.
fn col2im<T: Real>(g: &Geometry, col: &[T], rs: usize, off: usize, dx: &mut [T]) {
    let (h, w, wo, s, pad) = (g.h, g.w, g.wo, g.stride, g.pad as isize);
    for ci in 0..g.cin {
        let plane = &mut dx[ci * h * w..(ci + 1) * h * w];
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = (ci * g.kh + ky) * g.kw + kx;
                let src_row = &col[row * rs + off..row * rs + off + g.p()];
                let (lo, hi) = valid_cols(g, kx);
                let ix0 = ((lo * s) as isize + kx as isize - pad).max(0) as usize;
                for (oy, src) in src_row.chunks_exact(wo).enumerate() {
                    let iy = (oy * s) as isize + ky as isize - pad;
                    if iy < 0 || iy >= h as isize || lo == hi {
                        continue;
                    }
                    let dst = &mut plane[iy as usize * w..(iy as usize + 1) * w];
                    if s == 1 {
                        add_assign(&mut dst[ix0..ix0 + (hi - lo)], &src[lo..hi]);
                    } else {
                        for (j, &v) in src[lo..hi].iter().enumerate() {
                            dst[ix0 + j * s] += v;
                        }
                    }
                }
            }
        }
    }
}

simd_kernel! {
    /// `dst += src`.
    fn add_assign<T>(dst: &mut [T], src: &[T]) -> () {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d += v;
        }
    }
}

/// Copies image `x` into `xpad` (zero border of `pad` pixels, plus zeroed read slack). Every
/// element is written once: borders with zeros, the interior with the image.
fn pad_image<T: Real>(g: &Geometry, x: &[T], xpad: &mut [T]) {
    let (plane, _) = g.padded_len();
    let (h, w, wp, pad) = (g.h, g.w, g.wp(), g.pad);
    for ci in 0..g.cin {
        let p = &mut xpad[ci * plane..(ci + 1) * plane];
        p[..pad * wp].fill(T::ZERO);
        p[(h + pad) * wp..].fill(T::ZERO);
        for y in 0..h {
            let row = &mut p[(y + pad) * wp..(y + pad + 1) * wp];
            row[..pad].fill(T::ZERO);
            row[pad + w..].fill(T::ZERO);
            row[pad..pad + w].copy_from_slice(&x[ci * h * w + y * w..ci * h * w + (y + 1) * w]);
        }
    }
    xpad[g.cin * plane..].fill(T::ZERO);
}

/// Padded-width im2col of one padded image: row `(ci, ky, kx)` is the contiguous run of
/// `Ho * Wp` values starting at `ci * plane + ky * Wp + kx`.
fn im2col_padded<T: Real>(g: &Geometry, xpad: &[T], col: &mut [T], rs: usize, off: usize) {
    let (plane, _) = g.padded_len();
    let (wp, pw) = (g.wp(), g.cols_per_image());
    for ci in 0..g.cin {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = (ci * g.kh + ky) * g.kw + kx;
                let src = ci * plane + ky * wp + kx;
                col[row * rs + off..row * rs + off + pw].copy_from_slice(&xpad[src..src + pw]);
            }
        }
    }
}

/// The inverse of [`im2col_padded`]: adds the columns back into a padded image gradient.
fn col2im_padded<T: Real>(g: &Geometry, col: &[T], rs: usize, off: usize, dxpad: &mut [T]) {
    let (plane, _) = g.padded_len();
    let (wp, pw) = (g.wp(), g.cols_per_image());
    for ci in 0..g.cin {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let row = (ci * g.kh + ky) * g.kw + kx;
                let dst = ci * plane + ky * wp + kx;
                add_assign(&mut dxpad[dst..dst + pw], &col[row * rs + off..row * rs + off + pw]);
            }
        }
    }
}

/// Fills `col` (`[K, gn*P]`) with the columns of `gn` consecutive images starting at `xs`.
fn group_columns<T: Real>(g: &Geometry, xs: &[T], gn: usize, col: &mut [T]) {
    let p = g.cols_per_image();
    let cols = gn * p;
    if g.same_stride1() {
        T::with_scratch(g.padded_len().1, |xpad| {
            for j in 0..gn {
                pad_image(g, &xs[j * g.in_len()..(j + 1) * g.in_len()], xpad);
                im2col_padded(g, xpad, col, cols, j * p);
            }
        });
        return;
    }
    for j in 0..gn {
        let x = &xs[j * g.in_len()..(j + 1) * g.in_len()];
        if g.pointwise() {
            for ci in 0..g.cin {
                col[ci * cols + j * p..ci * cols + (j + 1) * p].copy_from_slice(&x[ci * p..(ci + 1) * p]);
            }
        } else {
            im2col(g, x, col, cols, j * p);
        }
    }
}

/// Copies output image `j` of a `[Cout, gn*Pc]` GEMM result into NCHW `yc`, dropping the junk
/// columns of the padded-width layout.
fn scatter_output<T: Real>(g: &Geometry, tmp: &[T], cols: usize, j: usize, yc: &mut [T]) {
    let (p, pc, cout, wo) = (g.p(), g.cols_per_image(), g.cout, g.wo);
    let row_stride = pc / g.ho;
    for co in 0..cout {
        let src = &tmp[co * cols + j * pc..co * cols + (j + 1) * pc];
        let dst = &mut yc[j * cout * p + co * p..j * cout * p + (co + 1) * p];
        if row_stride == wo {
            dst.copy_from_slice(src);
        } else {
            for (d, s) in dst.chunks_exact_mut(wo).zip(src.chunks_exact(row_stride)) {
                d.copy_from_slice(&s[..wo]);
            }
        }
    }
}

/// The inverse of [`scatter_output`]: output gradient image `j` into `[Cout, gn*Pc]`, with zeros
/// in the junk columns (so they contribute nothing to either gradient).
fn gather_output<T: Real>(g: &Geometry, dys: &[T], cols: usize, j: usize, t: &mut [T]) {
    let (p, pc, cout, wo) = (g.p(), g.cols_per_image(), g.cout, g.wo);
    let row_stride = pc / g.ho;
    for co in 0..cout {
        let src = &dys[j * cout * p + co * p..j * cout * p + (co + 1) * p];
        let dst = &mut t[co * cols + j * pc..co * cols + (j + 1) * pc];
        if row_stride == wo {
            dst.copy_from_slice(src);
        } else {
            for (d, s) in dst.chunks_exact_mut(row_stride).zip(src.chunks_exact(wo)) {
                d[..wo].copy_from_slice(s);
                d[wo..].fill(T::ZERO);
            }
        }
    }
}

/// Forward pass: `(N, Cin, H, W) x (Cout, Cin, kh, kw) -> (N, Cout, Ho, Wo)`.
pub(crate) fn forward<T: Real>(g: &Geometry, x: &[T], w: &[T], prec: Precision) -> Vec<T> {
    let (k, p, pc, cout) = (g.k(), g.p(), g.cols_per_image(), g.cout);
    let gs = g.group();
    let mut y = vec![T::ZERO; g.n * g.out_len()];
    let wv = View::row_major(cout, k);
    y.par_chunks_mut(gs * g.out_len()).enumerate().for_each(|(gi, yc)| {
        let gn = yc.len() / g.out_len();
        let xs = &x[gi * gs * g.in_len()..(gi * gs + gn) * g.in_len()];
        let cols = gn * pc;
        if gn == 1 && g.pointwise() {
            product(prec, yc, View::row_major(cout, p), w, wv, xs, View::row_major(k, p), false);
            return;
        }
        if prec == Precision::Bf16 && g.same_stride1() && runs_in_bf16(cout, cols, k, true) {
            if let Some(w) = T::as_f32(w) {
                return forward_implicit_bf16(g, xs, gn, w, yc);
            }
        }
        T::with_scratch(k * cols, |col| {
            group_columns(g, xs, gn, col);
            if gn == 1 && pc == p {
                product(prec, yc, View::row_major(cout, p), w, wv, col, View::row_major(k, cols), false);
                return;
            }
            T::with_scratch(cout * cols, |tmp| {
                product(prec, tmp, View::row_major(cout, cols), w, wv, col, View::row_major(k, cols), false);
                for j in 0..gn {
                    scatter_output(g, tmp, cols, j, yc);
                }
            });
        });
    });
    y
}

/// Pads the group's `gn` images and hands `f` their padded-width column matrix as an implicit
/// operand ([`Src::Implicit`]: row `(ci, ky, kx)` of image `j` is read at offset
/// `ci * plane + ky * Wp + kx` of its padded copy, exactly what [`im2col_padded`] would copy; no
/// column matrix is written). Stride-1 "same" convolutions of f32 only.
fn with_padded_columns<T: Real>(g: &Geometry, xs: &[T], gn: usize, f: impl FnOnce(Src<'_>)) {
    let (_, len) = g.padded_len();
    let offsets = padded_offsets(g);
    T::with_scratch(gn * len, |xpads| {
        for j in 0..gn {
            pad_image(g, &xs[j * g.in_len()..(j + 1) * g.in_len()], &mut xpads[j * len..(j + 1) * len]);
        }
        let buf = T::as_f32(&xpads[..gn * len]).expect("f32 images");
        f(Src::Implicit { buf, stride: len, offsets: &offsets, cols: g.cols_per_image(), images: gn })
    });
}

/// The forward GEMM of one group of a stride-1 "same" convolution in bf16, straight from the
/// padded images ([`with_padded_columns`]).
fn forward_implicit_bf16<T: Real>(g: &Geometry, xs: &[T], gn: usize, w: &[f32], yc: &mut [T]) {
    let (k, cols, cout) = (g.k(), gn * g.cols_per_image(), g.cout);
    with_padded_columns(g, xs, gn, |col| {
        T::with_scratch(cout * cols, |tmp| {
            let t32 = T::as_f32_mut(tmp).expect("f32 output");
            gemm_bf16::matmul_src(t32, View::row_major(cout, cols), Src::Matrix(w, View::row_major(cout, k)), col);
            for j in 0..gn {
                scatter_output(g, tmp, cols, j, yc);
            }
        });
    });
}

/// The weight-gradient GEMM of one group of a stride-1 "same" convolution in bf16, straight from
/// the padded images: `dw[K][Cout] = col[K, gn*Pc] * dY[Cout, gn*Pc]^T`, the orientation
/// [`gemm_bf16::matmul`] picks for the column-major partial, with the column matrix implicit.
fn weight_grad_implicit_bf16<T: Real>(g: &Geometry, xs: &[T], gn: usize, dy: &[f32], dw: &mut [f32]) {
    let (k, cols, cout) = (g.k(), gn * g.cols_per_image(), g.cout);
    with_padded_columns(g, xs, gn, |col| {
        let dyt = Src::Matrix(dy, View::row_major(cout, cols).t());
        gemm_bf16::matmul_src(dw, View::row_major(k, cout), col, dyt);
    });
}

/// `offsets[(ci, ky, kx)]`: where row `(ci, ky, kx)` of the padded-width column matrix starts in
/// a padded image (what [`im2col_padded`] copies from).
fn padded_offsets(g: &Geometry) -> Vec<usize> {
    let (plane, _) = g.padded_len();
    (0..g.k()).map(|r| (r / (g.kh * g.kw)) * plane + (r / g.kw % g.kh) * g.wp() + r % g.kw).collect()
}

/// Backward pass for one group of images: returns the group's weight-gradient partial
/// (column-major, `[K][Cout]`) and, if `dxc` is given, writes the group's input gradient into it.
#[allow(clippy::too_many_arguments)]
fn backward_group<T: Real>(
    g: &Geometry,
    w: &[T],
    xs: &[T],
    dys: &[T],
    gn: usize,
    dxc: Option<&mut [T]>,
    prec: Precision,
) -> Vec<T> {
    let (k, p, pc, cout) = (g.k(), g.p(), g.cols_per_image(), g.cout);
    let cols = gn * pc;
    let dyv = View::row_major(cout, cols);
    let mut dw = vec![T::ZERO; cout * k];
    let with_dy = |f: &mut dyn FnMut(&[T])| {
        if gn == 1 && pc == p {
            f(dys)
        } else {
            // dY as [Cout, gn*Pc].
            T::with_scratch(cout * cols, |t| {
                for j in 0..gn {
                    gather_output(g, dys, cols, j, t);
                }
                f(t)
            })
        }
    };
    let mut dxc = dxc;
    with_dy(&mut |dyg: &[T]| {
        if prec == Precision::Bf16 && dxc.is_none() && g.same_stride1() && runs_in_bf16(cout, k, cols, false) {
            if let (Some(dy), Some(dw)) = (T::as_f32(dyg), T::as_f32_mut(&mut dw)) {
                return weight_grad_implicit_bf16(g, xs, gn, dy, dw);
            }
        }
        T::with_scratch(k * cols, |col| {
            group_columns(g, xs, gn, col);
            // The partial is written column-major (`dw[kk * cout + co]`): with the column matrix
            // read transposed, that layout is about twice as fast in the GEMM for small `Cout`.
            product(prec, &mut dw, View::row_major(k, cout).t(), dyg, dyv, col, View::row_major(k, cols).t(), false);
            let Some(dxc) = dxc.as_deref_mut() else { return };
            // dcol = W^T dY, reusing the column buffer.
            product(prec, col, View::row_major(k, cols), w, View::row_major(cout, k).t(), dyg, dyv, false);
            if g.same_stride1() {
                let (plane, len) = g.padded_len();
                let (h, wd, wp, pad) = (g.h, g.w, g.wp(), g.pad);
                T::with_scratch(len, |dxpad| {
                    for j in 0..gn {
                        dxpad.fill(T::ZERO);
                        col2im_padded(g, col, cols, j * pc, dxpad);
                        let dxi = &mut dxc[j * g.in_len()..(j + 1) * g.in_len()];
                        for ci in 0..g.cin {
                            for yy in 0..h {
                                let src = ci * plane + (yy + pad) * wp + pad;
                                dxi[ci * h * wd + yy * wd..ci * h * wd + (yy + 1) * wd]
                                    .copy_from_slice(&dxpad[src..src + wd]);
                            }
                        }
                    }
                });
                return;
            }
            for j in 0..gn {
                let dxi = &mut dxc[j * g.in_len()..(j + 1) * g.in_len()];
                if g.pointwise() {
                    for ci in 0..g.cin {
                        dxi[ci * p..(ci + 1) * p].copy_from_slice(&col[ci * cols + j * p..ci * cols + (j + 1) * p]);
                    }
                } else {
                    col2im(g, col, cols, j * p, dxi);
                }
            }
        })
    });
    dw
}

/// `W'[ci][co][ky][kx] = W[co][ci][k-1-ky][k-1-kx]`: the kernel of the transposed convolution.
fn flip_transpose<T: Real>(g: &Geometry, w: &[T]) -> Vec<T> {
    let (kh, kw) = (g.kh, g.kw);
    let mut out = vec![T::ZERO; w.len()];
    for co in 0..g.cout {
        for ci in 0..g.cin {
            for ky in 0..kh {
                for kx in 0..kw {
                    out[((ci * g.cout + co) * kh + ky) * kw + kx] =
                        w[((co * g.cin + ci) * kh + (kh - 1 - ky)) * kw + (kw - 1 - kx)];
                }
            }
        }
    }
    out
}

/// Backward pass: `(dx, dw)`; `dx` is `None` when the input needs no gradient.
///
/// For stride-1 "same" convolutions the input gradient is itself a forward convolution of `dy`
/// with the flipped, transposed kernel: its GEMM has depth `Cout * k * k` instead of `Cout`
/// (much more efficient for small channel counts) and needs no scatter-adding col2im.
pub(crate) fn backward<T: Real>(
    g: &Geometry,
    x: &[T],
    w: &[T],
    dy: &[T],
    need_dx: bool,
    prec: Precision,
) -> (Option<Vec<T>>, Vec<T>) {
    if need_dx && g.same_stride1() {
        let gt = Geometry { cin: g.cout, cout: g.cin, h: g.ho, w: g.wo, ho: g.h, wo: g.w, ..*g };
        let dx = forward(&gt, dy, &flip_transpose(g, w), prec);
        let (_, dw) = backward(g, x, w, dy, false, prec);
        return (Some(dx), dw);
    }
    let gs = g.group();
    let groups = g.n.div_ceil(gs);
    let run = |gi: usize, dxc: Option<&mut [T]>| {
        let gn = gs.min(g.n - gi * gs);
        let xs = &x[gi * gs * g.in_len()..(gi * gs + gn) * g.in_len()];
        let dys = &dy[gi * gs * g.out_len()..(gi * gs + gn) * g.out_len()];
        backward_group(g, w, xs, dys, gn, dxc, prec)
    };
    let mut dx = if need_dx { vec![T::ZERO; g.n * g.in_len()] } else { Vec::new() };
    let partials: Vec<Vec<T>> = if need_dx {
        dx.par_chunks_mut(gs * g.in_len()).enumerate().map(|(gi, dxc)| run(gi, Some(dxc))).collect()
    } else {
        (0..groups).into_par_iter().map(|gi| run(gi, None)).collect()
    };
    let mut sum = vec![T::ZERO; g.cout * g.k()];
    for part in partials {
        for (a, b) in sum.iter_mut().zip(part) {
            *a += b;
        }
    }
    // Column-major partial sums back to the kernel's row-major `(Cout, K)` layout.
    let (cout, k) = (g.cout, g.k());
    let mut dw = vec![T::ZERO; cout * k];
    for co in 0..cout {
        for kk in 0..k {
            dw[co * k + kk] = sum[kk * cout + co];
        }
    }
    (need_dx.then_some(dx), dw)
}

/// The custom op: `conv2d(x, w)` with stride and symmetric padding, no bias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conv2dOp {
    pub stride: usize,
    pub padding: usize,
    pub precision: Precision,
}

impl Conv2dOp {
    fn fwd<T: Real>(&self, x: &CpuStorage, xl: &Layout, w: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let _t = super::profile::Timer::start(super::profile::Phase::ConvForward);
        let g = Geometry::new(xl.dims(), wl.dims(), self.stride, self.padding)?;
        let (x, w) = (contiguous_slice::<T>(x, xl, "conv2d input")?, contiguous_slice::<T>(w, wl, "conv2d kernel")?);
        let y = forward(&g, x, w, self.precision);
        Ok((T::storage(y), Shape::from(g.out_dims())))
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "dynaprune-conv2d"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, w: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        match x {
            CpuStorage::F32(_) => self.fwd::<f32>(x, xl, w, wl),
            CpuStorage::F64(_) => self.fwd::<f64>(x, xl, w, wl),
            other => bail!("dynaprune conv2d supports f32 and f64, got {:?}", other.dtype()),
        }
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let _t = super::profile::Timer::start(super::profile::Phase::ConvBackward);
        let dy = dy.contiguous()?;
        let g = Geometry::new(x.dims(), w.dims(), self.stride, self.padding)?;
        let need_dx = x.track_op();
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (ds, dl) = dy.storage_and_layout();
        let (dx, dw) = match (&*xs, &*ws, &*ds) {
            (Storage::Cpu(xc), Storage::Cpu(wc), Storage::Cpu(dc)) => match xc {
                CpuStorage::F32(_) => {
                    let (dx, dw) =
                        backward::<f32>(&g, cpu_slice(xc, xl)?, cpu_slice(wc, wl)?, cpu_slice(dc, dl)?, need_dx, self.precision);
                    (
                        dx.map(|d| Tensor::from_vec(d, x.shape(), x.device())).transpose()?,
                        Tensor::from_vec(dw, w.shape(), w.device())?,
                    )
                }
                CpuStorage::F64(_) => {
                    let (dx, dw) =
                        backward::<f64>(&g, cpu_slice(xc, xl)?, cpu_slice(wc, wl)?, cpu_slice(dc, dl)?, need_dx, self.precision);
                    (
                        dx.map(|d| Tensor::from_vec(d, x.shape(), x.device())).transpose()?,
                        Tensor::from_vec(dw, w.shape(), w.device())?,
                    )
                }
                other => bail!("dynaprune conv2d supports f32 and f64, got {:?}", other.dtype()),
            },
            _ => bail!("dynaprune conv2d runs on the CPU only; use candle's conv2d on other devices"),
        };
        Ok((dx, Some(dw)))
    }
}

//! Direct NHWC convolution kernels: forward, input gradient and weight gradient, one generic body
//! each over [`Vector`], compiled for AVX-512, AVX2 + FMA and portable Rust.
//!
//! Layouts (all row-major):
//! - activations NHWC, one image at a time; the kernels read a *padded copy* (a zero border, so
//!   the inner loops need no bounds checks);
//! - the forward kernel packed as `[kh][kw][Cin][Cop]` (`Cop`: `Cout` rounded up to the vector
//!   width, zero-filled), the input-gradient kernel as `[kh][kw][Cout][Cip]`, the weight-gradient
//!   partial as `[kh][kw][Cin][Cop]`.
//!
//! A micro-tile holds `R` output pixels x `NV` vectors of output channels (forward and input
//! gradient) or `C` input channels x `NV` vectors of output channels (weight gradient) in
//! registers; each output element is one chain of fused multiply-adds in a fixed order: forward
//! over `(ky, kx, ci)`, input gradient over the valid `(ky, kx)` then `co`, weight gradient over
//! the images of a group then `(oy, ox)`. Tiling never splits or reorders a chain, so every
//! instruction set computes the same bits.

use super::vector::{Isa, Lanes, Vector};
use crate::ops::conv::Geometry;
use crate::ops::Real;

/// Vectors of output channels per tile, at most (the size of a store buffer).
const MAX_NV: usize = 4;

/// Vectors of channels per tile for `l` lanes: AVX-512's 32 registers take 4 (24 accumulators,
/// 4 operand vectors, a broadcast); AVX2's 16 take 2 (12 + 2 + 1: wider tiles spill).
fn max_nv(l: usize) -> usize {
    if l == 16 {
        4
    } else {
        2
    }
}
/// Pixels (or input channels) per tile that fit the register file for `nv` vectors of `l` lanes:
/// AVX-512's 32 registers hold 24 accumulators, AVX2's 16 hold 12.
fn rows_per_tile(nv: usize, l: usize) -> usize {
    if l == 16 {
        [12, 12, 8, 6][nv - 1]
    } else {
        [12, 6, 4, 3][nv - 1]
    }
}

/// The tile heights compiled; a remainder is covered by the largest that fits.
const ROWS: [usize; 7] = [12, 8, 6, 4, 3, 2, 1];

fn pick(left: usize, max: usize) -> usize {
    ROWS.into_iter().find(|&r| r <= left && r <= max).unwrap_or(1)
}

/// Calls `$go!(NV, R)` with literal `NV` and `R` for run-time values `$nv` and `$r`.
macro_rules! by_tile {
    ($nv:expr, $r:expr, $go:ident) => {
        match ($nv, $r) {
            (1, 12) => $go!(1, 12),
            (1, 8) => $go!(1, 8),
            (1, 6) => $go!(1, 6),
            (1, 4) => $go!(1, 4),
            (1, 3) => $go!(1, 3),
            (1, 2) => $go!(1, 2),
            (1, _) => $go!(1, 1),
            (2, 12) => $go!(2, 12),
            (2, 8) => $go!(2, 8),
            (2, 6) => $go!(2, 6),
            (2, 4) => $go!(2, 4),
            (2, 3) => $go!(2, 3),
            (2, 2) => $go!(2, 2),
            (2, _) => $go!(2, 1),
            (3, 8) => $go!(3, 8),
            (3, 6) => $go!(3, 6),
            (3, 4) => $go!(3, 4),
            (3, 3) => $go!(3, 3),
            (3, 2) => $go!(3, 2),
            (3, _) => $go!(3, 1),
            (_, 6) => $go!(4, 6),
            (_, 4) => $go!(4, 4),
            (_, 3) => $go!(4, 3),
            (_, 2) => $go!(4, 2),
            (_, _) => $go!(4, 1),
        }
    };
}

/// Lanes of the vectors `isa` runs with (the channel padding of the packed kernels).
pub(crate) fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 | Isa::Portable => 8,
    }
}

/// Stores a tile: whole vectors when all `NV * L` lanes are valid, else through a buffer.
#[inline(always)]
unsafe fn store_tile<V: Vector, const R: usize, const NV: usize>(
    acc: &[[V; NV]; R],
    out: *mut V::E,
    out_step: usize,
    valid: usize,
) {
    unsafe {
        if valid == NV * V::L {
            for (r, row) in acc.iter().enumerate() {
                for (v, a) in row.iter().enumerate() {
                    a.store(out.add(r * out_step + v * V::L));
                }
            }
        } else {
            let mut tmp = [<V::E as Real>::ZERO; MAX_NV * 16];
            for (r, row) in acc.iter().enumerate() {
                for (v, a) in row.iter().enumerate() {
                    a.store(tmp.as_mut_ptr().add(v * V::L));
                }
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), out.add(r * out_step), valid);
            }
        }
    }
}

/// `R` output pixels x `NV` channel vectors: `out[r][v] = sum over taps (so, wo) and channels c
/// of src[so + r*step + c] * w[wo + c*wld + v*L]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<V: Vector, const R: usize, const NV: usize>(
    src: *const V::E,
    taps: &[(usize, usize)],
    step: usize,
    k: usize,
    w: *const V::E,
    wld: usize,
    out: *mut V::E,
    out_step: usize,
    valid: usize,
) {
    unsafe {
        let mut acc = [[V::zero(); NV]; R];
        for &(so, wo) in taps {
            let s = src.add(so);
            let wp = w.add(wo);
            for c in 0..k {
                let mut wv = [V::zero(); NV];
                for (v, x) in wv.iter_mut().enumerate() {
                    *x = V::load(wp.add(c * wld + v * V::L));
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let b = V::splat(s.add(r * step + c));
                    for (a, x) in row.iter_mut().zip(&wv) {
                        *a = V::fma(b, *x, *a);
                    }
                }
            }
        }
        store_tile(&acc, out, out_step, valid);
    }
}

/// `C` input channels x `NV` output-channel vectors of a weight gradient, over `images` images
/// (`ximg` and `dyimg` elements apart): `part[c][v] += sum over images, then (oy, ox), of
/// x[oy*xrow + ox*xstep + c] * dy[oy*dyrow + ox*dystep + v*L]`. The partial stays in registers
/// across the images, so a big kernel's partial is read and written once per group, not per image.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn weight_tile<V: Vector, const C: usize, const NV: usize>(
    x: *const V::E,
    (xrow, xstep, ximg): (usize, usize, usize),
    dy: *const V::E,
    (dyrow, dystep, dyimg): (usize, usize, usize),
    (images, ho, wo): (usize, usize, usize),
    part: *mut V::E,
    pld: usize,
) {
    unsafe {
        let mut acc = [[V::zero(); NV]; C];
        for (c, row) in acc.iter_mut().enumerate() {
            for (v, a) in row.iter_mut().enumerate() {
                *a = V::load(part.add(c * pld + v * V::L));
            }
        }
        for i in 0..images {
            let (x, dy) = (x.add(i * ximg), dy.add(i * dyimg));
            for oy in 0..ho {
                let (xr, dr) = (x.add(oy * xrow), dy.add(oy * dyrow));
                for ox in 0..wo {
                    let mut d = [V::zero(); NV];
                    for (v, dv) in d.iter_mut().enumerate() {
                        *dv = V::load(dr.add(ox * dystep + v * V::L));
                    }
                    let xp = xr.add(ox * xstep);
                    for (c, row) in acc.iter_mut().enumerate() {
                        let b = V::splat(xp.add(c));
                        for (a, dv) in row.iter_mut().zip(&d) {
                            *a = V::fma(b, *dv, *a);
                        }
                    }
                }
            }
        }
        for (c, row) in acc.iter().enumerate() {
            for (v, a) in row.iter().enumerate() {
                a.store(part.add(c * pld + v * V::L));
            }
        }
    }
}

/// One image's convolution output `z` (`Ho x Wo x Cout`) from its padded copy `xp`
/// (`(H + 2p) x (W + 2p) x Cin`) and the packed kernel `wpk` (`[kh][kw][Cin][cop]`).
#[inline(always)]
unsafe fn forward_image<V: Vector>(g: &Geometry, xp: &[V::E], wpk: &[V::E], cop: usize, z: &mut [V::E]) {
    let (cin, cout, s) = (g.cin, g.cout, g.stride);
    let wpd = g.w + 2 * g.pad;
    let mut taps = Vec::with_capacity(g.kh * g.kw);
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            taps.push(((ky * wpd + kx) * cin, (ky * g.kw + kx) * cin * cop));
        }
    }
    debug_assert!(xp.len() >= (g.h + 2 * g.pad) * wpd * cin && z.len() >= g.p() * cout && cop.is_multiple_of(V::L));
    let vecs = cop / V::L;
    let mut cb = 0;
    while cb < vecs {
        let nv = max_nv(V::L).min(vecs - cb);
        let co0 = cb * V::L;
        let valid = (nv * V::L).min(cout - co0);
        let rmax = rows_per_tile(nv, V::L);
        for oy in 0..g.ho {
            let mut ox = 0;
            while ox < g.wo {
                let r = pick(g.wo - ox, rmax);
                // SAFETY: the padded image holds every pixel a tap reads (rows oy*s + ky, columns
                // (ox + r)*s + kx, all inside the border); the packed kernel has cop columns.
                unsafe {
                    let src = xp.as_ptr().add((oy * s * wpd + ox * s) * cin);
                    let out = z.as_mut_ptr().add((oy * g.wo + ox) * cout + co0);
                    let w = wpk.as_ptr().add(co0);
                    macro_rules! go {
                        ($nv:literal, $r:literal) => {
                            tile::<V, $r, $nv>(src, &taps, s * cin, cin, w, cop, out, cout, valid)
                        };
                    }
                    by_tile!(nv, r, go);
                }
                ox += r;
            }
        }
        cb += nv;
    }
}

/// One image's input gradient `dx` (`H x W x Cin`) from its output gradient `dyp`, padded by
/// `pd` on every side (`(Ho + 2pd) x (Wo + 2pd) x cop`), and the packed transposed kernel `wtk`
/// (`[kh][kw][Cout][cip]`). Input pixels are taken in classes of equal column remainder modulo
/// the stride: within a class, consecutive pixels read consecutive output pixels through the same
/// taps, so stride 2 costs no wasted products.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn input_grad_image<V: Vector>(
    g: &Geometry,
    dyp: &[V::E],
    pd: usize,
    cop: usize,
    wtk: &[V::E],
    cip: usize,
    dx: &mut [V::E],
) {
    let (cin, cout, s, pad) = (g.cin, g.cout, g.stride as isize, g.pad as isize);
    let wdp = g.wo + 2 * pd;
    debug_assert!(dyp.len() >= (g.ho + 2 * pd) * wdp * cop && dx.len() >= g.h * g.w * cin && cip.is_multiple_of(V::L));
    let vecs = cip / V::L;
    let mut taps = Vec::with_capacity(g.kh * g.kw);
    let mut cb = 0;
    while cb < vecs {
        let nv = max_nv(V::L).min(vecs - cb);
        let ci0 = cb * V::L;
        let valid = (nv * V::L).min(cin - ci0);
        let rmax = rows_per_tile(nv, V::L);
        for iy in 0..g.h {
            for cls in 0..g.stride.min(g.w) {
                taps.clear();
                for ky in 0..g.kh {
                    let t = iy as isize + pad - ky as isize;
                    if t.rem_euclid(s) != 0 {
                        continue;
                    }
                    let oy = t / s + pd as isize;
                    for kx in 0..g.kw {
                        let u = cls as isize + pad - kx as isize;
                        if u.rem_euclid(s) != 0 {
                            continue;
                        }
                        let ox = u / s + pd as isize;
                        debug_assert!(oy >= 0 && ox >= 0);
                        taps.push(((oy as usize * wdp + ox as usize) * cop, (ky * g.kw + kx) * cout * cip));
                    }
                }
                let count = (g.w - cls).div_ceil(g.stride);
                let mut j = 0;
                while j < count {
                    let r = pick(count - j, rmax);
                    // SAFETY: `pd` covers every output row and column a tap reaches (see
                    // `padding_of_output`); `dx` holds the image; the packed kernel has cip columns.
                    unsafe {
                        let src = dyp.as_ptr().add(j * cop);
                        let out = dx.as_mut_ptr().add((iy * g.w + cls + g.stride * j) * cin + ci0);
                        let w = wtk.as_ptr().add(ci0);
                        macro_rules! go {
                            ($nv:literal, $r:literal) => {
                                tile::<V, $r, $nv>(src, &taps, cop, cout, w, cip, out, g.stride * cin, valid)
                            };
                        }
                        by_tile!(nv, r, go);
                    }
                    j += r;
                }
            }
        }
        cb += nv;
    }
}

/// Partials up to this many bytes are accumulated a block of rows at a time (every tile over one
/// block of one image, then the next block), so the rows read stay in cache across the tiles;
/// larger partials (ResNet-18's wide layers) keep the whole group inside each tile instead, so
/// that the partial is read and written once per group.
const BLOCKED_PARTIAL_BYTES: usize = 256 << 10;
/// Bytes of padded input and output-gradient rows per block, about.
const BLOCK_BYTES: usize = 96 << 10;

/// `((wpd, wdp), (ximg, dyimg))`: the padded input's and output gradient's row widths (pixels)
/// and image lengths (elements) the weight gradient walks.
fn padded_extents(g: &Geometry, pd: usize, cop: usize) -> ((usize, usize), (usize, usize)) {
    let (wpd, wdp) = (g.w + 2 * g.pad, g.wo + 2 * pd);
    ((wpd, wdp), ((g.h + 2 * g.pad) * wpd * g.cin, (g.ho + 2 * pd) * wdp * cop))
}

/// Adds the weight gradient of `images` images to `part` (`[kh][kw][Cin][cop]`), from their
/// padded inputs `xp` (as for the forward, one after the other) and padded output gradients `dyp`
/// (as for the input gradient, one after the other).
#[inline(always)]
unsafe fn weight_grad_images<V: Vector>(
    g: &Geometry,
    images: usize,
    xp: &[V::E],
    dyp: &[V::E],
    pd: usize,
    cop: usize,
    part: &mut [V::E],
) {
    let ((wpd, wdp), (ximg, dyimg)) = padded_extents(g, pd, cop);
    debug_assert!(part.len() >= g.kh * g.kw * g.cin * cop && cop.is_multiple_of(V::L));
    debug_assert!(xp.len() >= images * ximg && dyp.len() >= images * dyimg);
    let elem = std::mem::size_of::<V::E>();
    let rows = (g.kh * g.kw * g.cin * cop * elem <= BLOCKED_PARTIAL_BYTES)
        .then(|| (BLOCK_BYTES / ((g.stride * wpd * g.cin + wdp * cop) * elem).max(1)).max(1));
    // SAFETY: the callers' contract (above).
    unsafe { weight_grad_rows::<V>(g, images, rows, (xp, dyp, pd, cop), part) }
}

/// [`weight_grad_images`] `rows` output rows of one image at a time, or, with `None`, every
/// image and row inside each tile. Each partial element is one chain of fused multiply-adds over
/// the images, then the output rows, then the columns, either way (a block's tile loads the
/// partial, continues the chain, and stores it).
#[inline(always)]
unsafe fn weight_grad_rows<V: Vector>(
    g: &Geometry,
    images: usize,
    rows: Option<usize>,
    padded: (&[V::E], &[V::E], usize, usize),
    part: &mut [V::E],
) {
    let (_, _, pd, cop) = padded;
    let ((wpd, wdp), (ximg, dyimg)) = padded_extents(g, pd, cop);
    let Some(rows) = rows else {
        // SAFETY: all images, all rows.
        return unsafe { weight_grad_block::<V>(g, padded, (0, 0), (images, g.ho), part) };
    };
    for i in 0..images {
        let mut oy = 0;
        while oy < g.ho {
            let r = rows.max(1).min(g.ho - oy);
            let at = (i * ximg + oy * g.stride * wpd * g.cin, i * dyimg + oy * wdp * cop);
            // SAFETY: rows oy..oy + r of image i, inside the padded copies.
            unsafe { weight_grad_block::<V>(g, padded, at, (1, r), part) };
            oy += r;
        }
    }
}

/// The tiles of [`weight_grad_images`] over `images` images and `rows` output rows from
/// element offsets `(xo, dyo)` into the padded copies `(xp, dyp, pd, cop)`.
#[inline(always)]
unsafe fn weight_grad_block<V: Vector>(
    g: &Geometry,
    (xp, dyp, pd, cop): (&[V::E], &[V::E], usize, usize),
    (xo, dyo): (usize, usize),
    (images, rows): (usize, usize),
    part: &mut [V::E],
) {
    let (cin, s) = (g.cin, g.stride);
    let ((wpd, wdp), (ximg, dyimg)) = padded_extents(g, pd, cop);
    let vecs = cop / V::L;
    let mut cb = 0;
    while cb < vecs {
        let nv = max_nv(V::L).min(vecs - cb);
        let co0 = cb * V::L;
        let cmax = rows_per_tile(nv, V::L);
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let mut ci = 0;
                while ci < cin {
                    let c = pick(cin - ci, cmax);
                    // SAFETY: the padded copies hold every pixel read (as in the forward and the
                    // input gradient; the callers' offsets and counts stay inside them); the
                    // partial has cop columns.
                    unsafe {
                        let x = xp.as_ptr().add(xo + (ky * wpd + kx) * cin + ci);
                        let dy = dyp.as_ptr().add(dyo + (pd * wdp + pd) * cop + co0);
                        let p = part.as_mut_ptr().add(((ky * g.kw + kx) * cin + ci) * cop + co0);
                        macro_rules! go {
                            ($nv:literal, $c:literal) => {
                                weight_tile::<V, $c, $nv>(
                                    x,
                                    (s * wpd * cin, s * cin, ximg),
                                    dy,
                                    (wdp * cop, cop, dyimg),
                                    (images, rows, g.wo),
                                    p,
                                    cop,
                                )
                            };
                        }
                        by_tile!(nv, c, go);
                    }
                    ci += c;
                }
            }
        }
        cb += nv;
    }
}

/// Defines the public entry point `$name` of the generic body `$body`: one `#[target_feature]`
/// instance per instruction set (each inlines the body, so it compiles with that instruction
/// set's registers and FMA), chosen by `isa`. f32 only; f64 always runs the portable build.
macro_rules! entry {
    ($(#[$m:meta])* $name:ident => $body:ident ($($arg:ident : $ty:ty),*) f32: ($($f:ident),*), mut: $o:ident) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        pub(crate) fn $name<T: Real>(isa: Isa, g: &Geometry, $($arg: $ty,)* $o: &mut [T]) {
            #[cfg(target_arch = "x86_64")]
            if isa != Isa::Portable && T::as_f32($o).is_some() {
                assert!(isa.available(), "direct kernels: this CPU cannot run {}", isa.name());
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512<T: Real>(g: &Geometry, $($arg: $ty,)* $o: &mut [f32]) {
                    $(let $f = T::as_f32($f).expect("f32");)*
                    unsafe { $body::<super::vector::Avx512>(g, $($arg,)* $o) }
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<T: Real>(g: &Geometry, $($arg: $ty,)* $o: &mut [f32]) {
                    $(let $f = T::as_f32($f).expect("f32");)*
                    unsafe { $body::<super::vector::Avx2>(g, $($arg,)* $o) }
                }
                let $o = T::as_f32_mut($o).expect("f32");
                // SAFETY: the CPU has the instruction set (asserted above); the slices' sizes are
                // the callers' contract (checked in debug builds).
                return unsafe {
                    match isa {
                        Isa::Avx512 => avx512::<T>(g, $($arg,)* $o),
                        _ => avx2::<T>(g, $($arg,)* $o),
                    }
                };
            }
            // SAFETY: plain Rust; the slices' sizes are the callers' contract (checked in debug).
            unsafe { $body::<Lanes<T>>(g, $($arg,)* $o) }
        }
    };
}

entry! {
    /// [`forward_image`] with `isa`.
    forward => forward_image(xp: &[T], wpk: &[T], cop: usize) f32: (xp, wpk), mut: z
}
entry! {
    /// [`input_grad_image`] with `isa`.
    input_grad => input_grad_image(dyp: &[T], pd: usize, cop: usize, wtk: &[T], cip: usize) f32: (dyp, wtk), mut: dx
}
entry! {
    /// [`weight_grad_images`] with `isa`.
    weight_grad => weight_grad_images(images: usize, xp: &[T], dyp: &[T], pd: usize, cop: usize) f32: (xp, dyp), mut: part
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weight gradient a block of rows at a time equals the whole group inside each tile, bit
    /// for bit: each partial element's chain of multiply-adds is the same, only cut into pieces.
    #[test]
    fn blocked_weight_gradient_equals_the_unblocked_chain() {
        // (images, cin, h, cout, stride): several row blocks per image (big rows), and stride 2.
        for (images, cin, h, cout, stride) in
            [(3usize, 13usize, 23usize, 19usize, 1usize), (2, 37, 17, 8, 2), (4, 5, 9, 3, 1)]
        {
            let g = Geometry::new(&[images, cin, h, h], &[cout, cin, 3, 3], stride, 1).unwrap();
            let (pd, cop) = (3, cout.next_multiple_of(8));
            let (_, (ximg, dyimg)) = padded_extents(&g, pd, cop);
            let val = |k: usize, s: usize| ((k * 2654435761 + s) % 1000) as f32 / 500.0 - 1.0;
            let xp: Vec<f32> = (0..images * ximg).map(|k| val(k, 1)).collect();
            let dyp: Vec<f32> = (0..images * dyimg).map(|k| val(k, 2)).collect();
            let len = 9 * cin * cop;
            let start: Vec<f32> = (0..len).map(|k| val(k, 3)).collect();
            let mut whole = start.clone();
            unsafe { weight_grad_rows::<Lanes<f32>>(&g, images, None, (&xp, &dyp, pd, cop), &mut whole) };
            for rows in [1, 2, 5, g.ho] {
                let mut blocked = start.clone();
                unsafe { weight_grad_rows::<Lanes<f32>>(&g, images, Some(rows), (&xp, &dyp, pd, cop), &mut blocked) };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&blocked),
                    bits(&whole),
                    "{images} images, {cin}->{cout}, {h}x{h}, stride {stride}, {rows} rows"
                );
            }
        }
    }
}

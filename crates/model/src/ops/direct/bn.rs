//! Training-mode BatchNorm (+ ReLU) over NHWC activations, one image at a time, so that the
//! direct convolution can run it in its epilogue (statistics of an image while its output is in
//! cache) and its backward prologue (the BatchNorm input gradient written straight into the
//! convolution's padded output-gradient buffer).
//!
//! Per image and channel: an exact two-pass mean and centred sum of squares, combined in image
//! order by the NCHW BatchNorm's `combine_moments` (Chan et al.'s pairwise formula in f64), so
//! results do not depend on the thread count.

use crate::ops::Real;

/// Runs `block::<N>(first channel)` over the `c` channels in blocks of 32, 16, 8, then 1: the
/// per-channel reductions below keep a block's accumulators in registers across all the pixels
/// of an image (a running sum in memory is a store-to-load chain per pixel). Each channel is
/// still summed over the pixels in pixel order: the same bits as a plain loop.
macro_rules! channel_blocks {
    ($c:expr, $block:ident) => {{
        let c = $c;
        let mut ch = 0;
        while ch < c {
            ch += match c - ch {
                32.. => $block!(32, ch),
                16.. => $block!(16, ch),
                8.. => $block!(8, ch),
                _ => $block!(1, ch),
            };
        }
    }};
}

/// `N` consecutive elements from `at`, as a mutable array reference (bounds checked once).
#[inline(always)]
fn lanes_mut<T, const N: usize>(s: &mut [T], at: usize) -> &mut [T; N] {
    (&mut s[at..at + N]).try_into().expect("N elements")
}

/// `N` consecutive elements from `at`, as an array reference (bounds checked once).
#[inline(always)]
fn lanes<T, const N: usize>(s: &[T], at: usize) -> &[T; N] {
    s[at..at + N].try_into().expect("N elements")
}

simd_kernel! {
    /// `acc[c] += sum over pixels of z[p][c]` for one image (`z`: pixels x `acc.len()`).
    pub(crate) fn sums<T>(z: &[T], acc: &mut [T]) -> () {
        let c = acc.len();
        let px = z.len() / c.max(1);
        macro_rules! block {
            ($n:literal, $ch:expr) => {{
                let mut s: [T; $n] = *lanes(acc, $ch);
                for p in 0..px {
                    let r: &[T; $n] = lanes(z, p * c + $ch);
                    for l in 0..$n {
                        s[l] += r[l];
                    }
                }
                acc[$ch..$ch + $n].copy_from_slice(&s);
                $n
            }};
        }
        channel_blocks!(c, block)
    }
}

simd_kernel! {
    /// `acc[c] += sum over pixels of (z[p][c] - m[c])^2`.
    fn centred_squares<T>(z: &[T], m: &[T], acc: &mut [T]) -> () {
        let c = acc.len();
        let px = z.len() / c.max(1);
        macro_rules! block {
            ($n:literal, $ch:expr) => {{
                let mut s: [T; $n] = *lanes(acc, $ch);
                let mc: [T; $n] = *lanes(m, $ch);
                for p in 0..px {
                    let r: &[T; $n] = lanes(z, p * c + $ch);
                    for l in 0..$n {
                        let d = r[l] - mc[l];
                        s[l] += d * d;
                    }
                }
                acc[$ch..$ch + $n].copy_from_slice(&s);
                $n
            }};
        }
        channel_blocks!(c, block)
    }
}

/// `(mean, centred sum of squares)` per channel of one image `z` (pixels x `c`).
pub(crate) fn image_moments<T: Real>(z: &[T], c: usize) -> Vec<(f64, f64)> {
    let px = z.len() / c.max(1);
    let mut acc = vec![T::ZERO; c];
    sums(z, &mut acc);
    let mean: Vec<f64> = acc.iter().map(|a| a.to_f64() / px.max(1) as f64).collect();
    let m: Vec<T> = mean.iter().map(|&v| T::from_f64(v)).collect();
    let mut sq = vec![T::ZERO; c];
    centred_squares(z, &m, &mut sq);
    mean.into_iter().zip(sq).map(|(a, b)| (a, b.to_f64())).collect()
}

simd_kernel! {
    /// `y[p][c] = relu?(z[p][c] * scale[c] + shift[c])`.
    fn affine<T>(y: &mut [T], z: &[T], scale: &[T], shift: &[T], relu: bool) -> () {
        let c = scale.len();
        let px = z.len().min(y.len()) / c.max(1);
        macro_rules! block {
            ($n:literal, $ch:expr) => {{
                let (a, b): ([T; $n], [T; $n]) = (*lanes(scale, $ch), *lanes(shift, $ch));
                for p in 0..px {
                    let zr: &[T; $n] = lanes(z, p * c + $ch);
                    let yr: &mut [T; $n] = lanes_mut(y, p * c + $ch);
                    for l in 0..$n {
                        let t = zr[l] * a[l] + b[l];
                        yr[l] = if relu && t.partial_cmp(&T::ZERO) != Some(std::cmp::Ordering::Greater) { T::ZERO } else { t };
                    }
                }
                $n
            }};
        }
        channel_blocks!(c, block)
    }
}

/// `relu?(z * scale + shift)` per channel (the last dimension) of one image or a whole batch.
pub(crate) fn apply<T: Real>(y: &mut [T], z: &[T], scale: &[T], shift: &[T], relu: bool) {
    affine(y, z, scale, shift, relu);
}

simd_kernel! {
    /// `a[c] += sum(dz)`, `b[c] += sum(dz * (z - m))` over one image, with `dz = dy` masked, if
    /// `relu`, where the BatchNorm output `z * scale + shift` was not positive.
    fn grad_sums_kernel<T>(z: &[T], dy: &[T], m: &[T], scale: &[T], shift: &[T], relu: bool, a: &mut [T], b: &mut [T]) -> () {
        let c = m.len();
        let px = z.len() / c.max(1);
        macro_rules! block {
            ($n:literal, $ch:expr) => {{
                let (mut sa, mut sb): ([T; $n], [T; $n]) = (*lanes(a, $ch), *lanes(b, $ch));
                let (mc, sc, hc): ([T; $n], [T; $n], [T; $n]) = (*lanes(m, $ch), *lanes(scale, $ch), *lanes(shift, $ch));
                for p in 0..px {
                    let (zr, dr): (&[T; $n], &[T; $n]) = (lanes(z, p * c + $ch), lanes(dy, p * c + $ch));
                    for l in 0..$n {
                        let (v, d) = (zr[l], dr[l]);
                        #[allow(clippy::neg_cmp_op_on_partial_ord)]
                        let d = if relu && !(v * sc[l] + hc[l] > T::ZERO) { T::ZERO } else { d };
                        sa[l] += d;
                        sb[l] += d * (v - mc[l]);
                    }
                }
                a[$ch..$ch + $n].copy_from_slice(&sa);
                b[$ch..$ch + $n].copy_from_slice(&sb);
                $n
            }};
        }
        channel_blocks!(c, block)
    }
}

/// `(sum(dz), sum(dz * (z - mean)))` per channel of one image.
pub(crate) fn grad_sums<T: Real>(z: &[T], dy: &[T], m: &[T], scale: &[T], shift: &[T], relu: bool) -> Vec<(f64, f64)> {
    let c = m.len();
    let (mut a, mut b) = (vec![T::ZERO; c], vec![T::ZERO; c]);
    grad_sums_kernel(z, dy, m, scale, shift, relu, &mut a, &mut b);
    a.into_iter().zip(b).map(|(x, y)| (x.to_f64(), y.to_f64())).collect()
}

simd_kernel! {
    /// `dz = A * mask(dy) + B * z + C` per channel, `coef = (A, B, C)`: the BatchNorm input
    /// gradient of one image.
    fn grad_input_kernel<T>(dz: &mut [T], z: &[T], dy: &[T], coef: (&[T], &[T], &[T]), scale: &[T], shift: &[T], relu: bool) -> () {
        let (ca, cb, cc) = coef;
        let c = ca.len();
        let px = z.len().min(dz.len()) / c.max(1);
        macro_rules! block {
            ($n:literal, $ch:expr) => {{
                let (ka, kb, kc): ([T; $n], [T; $n], [T; $n]) = (*lanes(ca, $ch), *lanes(cb, $ch), *lanes(cc, $ch));
                let (sc, hc): ([T; $n], [T; $n]) = (*lanes(scale, $ch), *lanes(shift, $ch));
                for p in 0..px {
                    let (zr, dr): (&[T; $n], &[T; $n]) = (lanes(z, p * c + $ch), lanes(dy, p * c + $ch));
                    let o: &mut [T; $n] = lanes_mut(dz, p * c + $ch);
                    for l in 0..$n {
                        let (v, d) = (zr[l], dr[l]);
                        #[allow(clippy::neg_cmp_op_on_partial_ord)]
                        let d = if relu && !(v * sc[l] + hc[l] > T::ZERO) { T::ZERO } else { d };
                        o[l] = ka[l] * d + kb[l] * v + kc[l];
                    }
                }
                $n
            }};
        }
        channel_blocks!(c, block)
    }
}

/// The per-channel coefficients of the BatchNorm backward pass.
#[derive(Debug, Clone)]
pub(crate) struct GradCoef<T> {
    pub a: Vec<T>,
    pub b: Vec<T>,
    pub c: Vec<T>,
}

impl<T: Real> GradCoef<T> {
    /// The BatchNorm input gradient of one image into `dz`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn input_grad(&self, dz: &mut [T], z: &[T], dy: &[T], scale: &[T], shift: &[T], relu: bool) {
        grad_input_kernel(dz, z, dy, (&self.a, &self.b, &self.c), scale, shift, relu);
    }
}

/// From the images' [`grad_sums`] (combined in image order) to `(dgamma, dbeta, coefficients)`;
/// `m` is the number of pixels in the batch.
pub(crate) fn grad_coefficients<T: Real>(
    per_image: &[Vec<(f64, f64)>],
    gamma: &[T],
    mean: &[f64],
    var: &[f64],
    eps: f64,
    m: usize,
) -> (Vec<T>, Vec<T>, GradCoef<T>) {
    let c = gamma.len();
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let mut dbeta = vec![0f64; c];
    let mut dgamma = vec![0f64; c];
    for img in per_image {
        for (ch, &(a, b)) in img.iter().enumerate() {
            dbeta[ch] += a;
            dgamma[ch] += b * invstd[ch];
        }
    }
    let m = m.max(1) as f64;
    let mut coef = GradCoef { a: Vec::with_capacity(c), b: Vec::with_capacity(c), c: Vec::with_capacity(c) };
    for ch in 0..c {
        let k = gamma[ch].to_f64() * invstd[ch];
        let (mdz, mdzx) = (dbeta[ch] / m, dgamma[ch] / m);
        let b = -k * invstd[ch] * mdzx;
        coef.a.push(T::from_f64(k));
        coef.b.push(T::from_f64(b));
        coef.c.push(T::from_f64(-k * mdz - b * mean[ch]));
    }
    (dgamma.into_iter().map(T::from_f64).collect(), dbeta.into_iter().map(T::from_f64).collect(), coef)
}

simd_kernel! {
    /// `y = relu((z * scale + shift) + r)` per channel: a convolution output's BatchNorm joined to
    /// a residual `r` (the same arithmetic, in the same order, as the BatchNorm followed by
    /// `ops::add_relu`).
    fn affine_add_relu_kernel<T>(y: &mut [T], z: &[T], r: &[T], scale: &[T], shift: &[T]) -> () {
        let c = scale.len();
        let px = z.len().min(y.len()) / c.max(1);
        macro_rules! block {
            ($n:literal, $ch:expr) => {{
                let (a, b): ([T; $n], [T; $n]) = (*lanes(scale, $ch), *lanes(shift, $ch));
                for p in 0..px {
                    let (zr, rr): (&[T; $n], &[T; $n]) = (lanes(z, p * c + $ch), lanes(r, p * c + $ch));
                    let yr: &mut [T; $n] = lanes_mut(y, p * c + $ch);
                    for l in 0..$n {
                        let t = zr[l] * a[l] + b[l];
                        let u = t + rr[l];
                        yr[l] = if u > T::ZERO { u } else { T::ZERO };
                    }
                }
                $n
            }};
        }
        channel_blocks!(c, block)
    }
}

/// `relu(z * scale + shift + r)` per channel (the last dimension).
pub(crate) fn apply_add_relu<T: Real>(y: &mut [T], z: &[T], r: &[T], scale: &[T], shift: &[T]) {
    affine_add_relu_kernel(y, z, r, scale, shift);
}

simd_kernel! {
    /// In place: `z = relu?(z * scale + shift)`, or with a residual `r`,
    /// `z = relu((z * scale + shift) + r)`: [`apply`] and [`apply_add_relu`] without a second
    /// buffer (evaluation's convolution epilogue).
    fn affine_in_place_kernel<T>(z: &mut [T], r: Option<&[T]>, scale: &[T], shift: &[T], relu: bool) -> () {
        let c = scale.len();
        let px = z.len() / c.max(1);
        macro_rules! block {
            ($n:literal, $ch:expr) => {{
                let (a, b): ([T; $n], [T; $n]) = (*lanes(scale, $ch), *lanes(shift, $ch));
                for p in 0..px {
                    let at = p * c + $ch;
                    let rr: Option<&[T; $n]> = r.map(|r| lanes(r, at));
                    let zr: &mut [T; $n] = lanes_mut(z, at);
                    for l in 0..$n {
                        let t = zr[l] * a[l] + b[l];
                        zr[l] = match rr {
                            Some(rr) => {
                                let u = t + rr[l];
                                if u > T::ZERO { u } else { T::ZERO }
                            }
                            None if relu && t.partial_cmp(&T::ZERO) != Some(std::cmp::Ordering::Greater) => T::ZERO,
                            None => t,
                        };
                    }
                }
                $n
            }};
        }
        channel_blocks!(c, block)
    }
}

/// In place: `relu?(z * scale + shift)` per channel, or `relu((z * scale + shift) + r)`.
pub(crate) fn apply_in_place<T: Real>(z: &mut [T], r: Option<&[T]>, scale: &[T], shift: &[T], relu: bool) {
    affine_in_place_kernel(z, r, scale, shift, relu);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The channel-blocked reductions equal plain per-pixel loops bit for bit, for channel counts
    /// that hit every block width and remainder.
    #[test]
    fn blocked_reductions_equal_plain_loops() {
        for c in [1usize, 5, 8, 13, 16, 17, 24, 37, 64, 71] {
            let px = 11;
            let val =
                |k: usize, s: u32| ((k as u32).wrapping_mul(2654435761).wrapping_add(s) >> 9) as f32 / 8388608.0 - 0.8;
            let z: Vec<f32> = (0..px * c).map(|k| val(k, 1)).collect();
            let dy: Vec<f32> = (0..px * c).map(|k| val(k, 2)).collect();
            let m: Vec<f32> = (0..c).map(|k| val(k, 3)).collect();
            let scale: Vec<f32> = (0..c).map(|k| val(k, 4) + 0.9).collect();
            let shift: Vec<f32> = (0..c).map(|k| val(k, 5)).collect();
            let (mut s, mut q) = (vec![0f32; c], vec![0f32; c]);
            sums(&z, &mut s);
            centred_squares(&z, &m, &mut q);
            let (mut s0, mut q0) = (vec![0f32; c], vec![0f32; c]);
            for p in 0..px {
                for ch in 0..c {
                    let v = z[p * c + ch];
                    s0[ch] += v;
                    q0[ch] += (v - m[ch]) * (v - m[ch]);
                }
            }
            assert_eq!(s, s0, "sums, {c} channels");
            assert_eq!(q, q0, "centred squares, {c} channels");
            for relu in [false, true] {
                let got = grad_sums(&z, &dy, &m, &scale, &shift, relu);
                let (mut a, mut b) = (vec![0f32; c], vec![0f32; c]);
                for p in 0..px {
                    for ch in 0..c {
                        let (v, d) = (z[p * c + ch], dy[p * c + ch]);
                        let d = if relu && v * scale[ch] + shift[ch] <= 0.0 { 0.0 } else { d };
                        a[ch] += d;
                        b[ch] += d * (v - m[ch]);
                    }
                }
                let want: Vec<(f64, f64)> = a.into_iter().zip(b).map(|(x, y)| (x as f64, y as f64)).collect();
                assert_eq!(got, want, "gradient sums, {c} channels, relu {relu}");
                // The elementwise kernels, blocked the same way.
                let mut y = vec![0f32; px * c];
                apply(&mut y, &z, &scale, &shift, relu);
                let coef = GradCoef { a: m.clone(), b: scale.clone(), c: shift.clone() };
                let mut g = vec![0f32; px * c];
                coef.input_grad(&mut g, &z, &dy, &scale, &shift, relu);
                let mut j = vec![0f32; px * c];
                apply_add_relu(&mut j, &z, &dy, &scale, &shift);
                for k in 0..px * c {
                    let (v, d, ch) = (z[k], dy[k], k % c);
                    let t = v * scale[ch] + shift[ch];
                    let masked = if relu && t <= 0.0 { 0.0 } else { d };
                    assert_eq!(
                        y[k].to_bits(),
                        (if relu && t <= 0.0 { 0.0 } else { t }).to_bits(),
                        "apply, {c} channels"
                    );
                    assert_eq!(g[k].to_bits(), (m[ch] * masked + scale[ch] * v + shift[ch]).to_bits(), "input grad");
                    assert_eq!(j[k].to_bits(), (if t + d > 0.0 { t + d } else { 0.0 }).to_bits(), "join");
                }
            }
        }
    }
}

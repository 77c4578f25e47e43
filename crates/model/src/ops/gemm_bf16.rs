//! A bf16 GEMM for x86-64 CPUs with AVX512_BF16: `dst (+)= lhs * rhs` where both operands are
//! f32 matrices **rounded to bf16** (round to nearest even) while they are packed, multiplied
//! with `vdpbf16ps` (two bf16 products per f32 lane per instruction, twice the rate of an f32
//! FMA) and accumulated in f32. The output stays f32. This is the arithmetic of PyTorch's CPU
//! autocast to bf16 for convolutions and matrix products, except that our outputs are not rounded.
//!
//! Why hand-written: the `gemm` crate (our f32 GEMM, also candle's) has no bf16 dot-product
//! kernel (its f16 path converts to f32), and candle's CPU backend has no bf16 matmul at all.
//!
//! Layout (GotoBLAS-style): the depth is cut into blocks of [`KC`]; per block, all of `rhs` is
//! packed into panels of `16 * NV` columns as bf16 pairs `[k/2][n][2]` (what `vdpbf16ps` reads:
//! a 32-bit lane holds the two depths of one column), all of `lhs` into panels of `RM` rows,
//! each row's pairs contiguous (`[m][k/2][2]`: one 32-bit broadcast per row and depth pair);
//! then for each column panel (kept in L1) the micro-kernel sweeps the row panels (kept in L2).
//! An odd depth is padded with a zero pair half; ragged edges are zero-padded in the packs and
//! masked on store. When both operands are depth-contiguous (a weight gradient), [`matmul`]
//! computes the transposed product if that writes rows. An operand can be an implicit im2col
//! matrix over padded images ([`Src::Implicit`], [`matmul_src`]): the packs read the images
//! directly and give the same words, so the products are bit-identical.

use super::view::View;

/// Rows x columns of the widest micro-kernel tile (three 16-lane vectors per row: 24
/// accumulator registers). Narrow products get tiles of the same area: 12 x 32 and 24 x 16
/// ([`matmul_oriented`] picks by the column count, so a 16-column product wastes no lanes).
const MR: usize = 8;
const NR: usize = 48;
/// Depth per packed block (even).
const KC: usize = 256;

/// f32 -> bf16 bits, rounding to nearest even (NaN stays NaN). Branch-free, so the packing
/// loops vectorise.
#[cfg(test)]
#[inline]
pub(crate) fn to_bf16(x: f32) -> u16 {
    (rounded(x) >> 16) as u16
}

/// `x`'s bits rounded to bf16 in the high half (the low half is garbage).
#[inline(always)]
fn rounded(x: f32) -> u32 {
    let b = x.to_bits();
    let r = b.wrapping_add(0x7fff + ((b >> 16) & 1));
    let nan = (b & 0x7fff_ffff) > 0x7f80_0000;
    if nan {
        b | 0x0040_0000
    } else {
        r
    }
}

/// bf16 bits -> f32 (exact).
#[cfg(test)]
#[inline]
pub(crate) fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// Whether this CPU can run the bf16 GEMM (AVX512F and AVX512_BF16, detected at run time).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

thread_local! {
    static PACKS: std::cell::RefCell<(Vec<u32>, Vec<u32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Where an operand's values come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Src<'a> {
    /// A strided matrix.
    Matrix(&'a [f32], View),
    /// An implicit im2col matrix over padded images (no column matrix is written), with
    /// `offsets.len()` rows: element `(k, n)` is `buf[(n / cols) * stride + offsets[k] + n %
    /// cols]`, i.e. row `k` of image `j` is the contiguous run of `cols` values at
    /// `j * stride + offsets[k]`.
    Implicit { buf: &'a [f32], stride: usize, offsets: &'a [usize], cols: usize, images: usize },
}

impl Src<'_> {
    fn cols(&self) -> usize {
        match self {
            Src::Matrix(_, v) => v.cols,
            Src::Implicit { cols, images, .. } => cols * images,
        }
    }
    fn in_bounds(&self) -> bool {
        match self {
            Src::Matrix(m, v) => m.len() >= v.extent(),
            Src::Implicit { buf, stride, offsets, cols, images } => {
                let last = offsets.iter().max().map_or(0, |&o| ((*images).max(1) - 1) * stride + o + cols);
                buf.len() >= last
            }
        }
    }
    fn rows(&self) -> usize {
        match self {
            Src::Matrix(_, v) => v.rows,
            Src::Implicit { offsets, .. } => offsets.len(),
        }
    }
}

/// `dst = lhs * rhs` for operands given as [`Src`], in this orientation (no transposition is
/// chosen): the same products as [`matmul`] on the matrices the sources stand for, bit for bit.
/// For an implicit im2col operand ([`Src::Implicit`]) no column matrix is written.
pub(crate) fn matmul_src(dst: &mut [f32], d: View, lhs: Src<'_>, rhs: Src<'_>) {
    check(dst, d, lhs, rhs);
    matmul_oriented(dst, d, lhs, rhs, false)
}

/// The checks every entry makes: shapes agree, every read and write is in bounds, and the CPU
/// has the instructions (callers check [`available`] once, up front, and refuse the precision
/// with an error; this is the backstop).
fn check(dst: &[f32], d: View, lhs: Src<'_>, rhs: Src<'_>) {
    assert_eq!((d.rows, d.cols, lhs.cols()), (lhs.rows(), rhs.cols(), rhs.rows()), "bf16 gemm: shapes");
    assert!(dst.len() >= d.extent() && lhs.in_bounds() && rhs.in_bounds(), "bf16 gemm: out of bounds");
    assert!(available(), "bf16 gemm needs AVX512_BF16 (check ops::bf16_available() first)");
}

/// A view reads its lines (rows of `lhs`, columns of `rhs`) with unit stride along the depth.
fn depth_contiguous(line_stride: usize, depth_stride: usize) -> bool {
    depth_stride == 1 && line_stride != 1
}

/// `dst = lhs * rhs` (or `dst += lhs * rhs` when `accumulate`) with bf16 operands and f32
/// accumulation. Panics if the CPU lacks AVX512_BF16 (callers check [`available`] once, up
/// front, and refuse the precision with an error).
pub(crate) fn matmul(dst: &mut [f32], d: View, lhs: &[f32], l: View, rhs: &[f32], r: View, accumulate: bool) {
    check(dst, d, Src::Matrix(lhs, l), Src::Matrix(rhs, r));
    // Packing `rhs` is cheap when its columns are contiguous (a SIMD pass) and dear when its
    // depths are (a gather); storing is cheap into rows. When both operands read
    // depth-contiguously (the weight gradient's `dY * col^T`), compute the transposed product
    // `dst^T = rhs^T lhs^T` if that makes the output row-major (else if it gathers less).
    let out_rows = |v: View| v.cs == 1;
    let both = depth_contiguous(r.cs, r.rs) && depth_contiguous(l.rs, l.cs);
    if both && (out_rows(d.t()) && !out_rows(d) || out_rows(d.t()) == out_rows(d) && l.rows < r.cols) {
        return matmul_oriented(dst, d.t(), Src::Matrix(rhs, r.t()), Src::Matrix(lhs, l.t()), accumulate);
    }
    matmul_oriented(dst, d, Src::Matrix(lhs, l), Src::Matrix(rhs, r), accumulate)
}

fn matmul_oriented(dst: &mut [f32], d: View, lhs: Src<'_>, rhs: Src<'_>, accumulate: bool) {
    match d.cols {
        0..=16 => tiled::<24, 1>(dst, d, lhs, rhs, accumulate),
        17..=32 => tiled::<12, 2>(dst, d, lhs, rhs, accumulate),
        _ => tiled::<MR, { NR / 16 }>(dst, d, lhs, rhs, accumulate),
    }
}

/// The blocked product with `RM x 16*NV` tiles.
fn tiled<const RM: usize, const NV: usize>(
    dst: &mut [f32],
    d: View,
    lhs: Src<'_>,
    rhs: Src<'_>,
    accumulate: bool,
) {
    let rn = 16 * NV;
    debug_assert_eq!(rhs.rows(), lhs.cols());
    let (m, n, k) = (d.rows, d.cols, lhs.cols());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                for col in 0..n {
                    dst[row * d.rs + col * d.cs] = 0.0;
                }
            }
        }
        return;
    }
    let (mp, np) = (m.div_ceil(RM), n.div_ceil(rn));
    // The kernel writes every lane of its RM x rn corner before it is read: no clearing per tile.
    let mut tile = [[0f32; 48]; 24];
    PACKS.with(|p| {
        let (apack, bpack) = &mut *p.borrow_mut();
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            let pairs = kc.div_ceil(2);
            apack.resize(mp * pairs * RM, 0);
            bpack.resize(np * pairs * rn, 0);
            pack_rows(apack, RM, lhs, m, k0, kc);
            pack_cols(bpack, rn, rhs, n, k0, kc);
            let acc = accumulate || k0 > 0;
            for jp in 0..np {
                let b = &bpack[jp * pairs * rn..(jp + 1) * pairs * rn];
                let nc = rn.min(n - jp * rn);
                for ip in 0..mp {
                    let a = &apack[ip * pairs * RM..(ip + 1) * pairs * RM];
                    let mc = RM.min(m - ip * RM);
                    // SAFETY: `available()` was asserted above; `a` and `b` hold `pairs` depth
                    // pairs of full RM-row / rn-column panels, as the kernel reads.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        kernel::<RM, NV>(pairs, a, b, &mut tile)
                    };
                    let base = ip * RM * d.rs + jp * rn * d.cs;
                    for (i, row) in tile.iter().take(mc).enumerate() {
                        let row = &row[..nc];
                        let o = base + i * d.rs;
                        if d.cs == 1 {
                            let out = &mut dst[o..o + nc];
                            if acc {
                                out.iter_mut().zip(row).for_each(|(y, v)| *y += v);
                            } else {
                                out.copy_from_slice(row);
                            }
                        } else {
                            for (j, v) in row.iter().enumerate() {
                                let y = &mut dst[o + j * d.cs];
                                *y = if acc { *y + v } else { *v };
                            }
                        }
                    }
                }
            }
            k0 += kc;
        }
    });
}

/// Two f32 values as one word of two bf16 (low half: `lo`), each rounded to nearest even.
#[inline(always)]
fn word(lo: f32, hi: f32) -> u32 {
    (rounded(lo) >> 16) | (rounded(hi) & 0xffff_0000)
}

/// Packs depths `k0..k0+kc` of `lhs`'s rows into panels of `mr` rows, each `[row][pair]`
/// (the kernel broadcasts one word per row and pair; rows past `len` are zero).
fn pack_rows(out: &mut [u32], mr: usize, lhs: Src<'_>, len: usize, k0: usize, kc: usize) {
    let pairs = kc.div_ceil(2);
    for (p, panel) in out.chunks_exact_mut(pairs * mr).enumerate() {
        for (i, line) in panel.chunks_exact_mut(pairs).enumerate() {
            let li = p * mr + i;
            if li >= len {
                line.fill(0);
                continue;
            }
            match lhs {
                Src::Matrix(src, v) => {
                    let base = li * v.rs + k0 * v.cs;
                    if v.cs == 1 {
                        pair_runs(&mut line[..kc / 2], &src[base..base + kc / 2 * 2]);
                    } else {
                        for (q, o) in line.iter_mut().enumerate().take(kc / 2) {
                            *o = word(src[base + 2 * q * v.cs], src[base + (2 * q + 1) * v.cs]);
                        }
                    }
                    if kc % 2 == 1 {
                        line[pairs - 1] = word(src[base + (kc - 1) * v.cs], 0.0);
                    }
                }
                Src::Implicit { buf, stride, offsets, cols, .. } => {
                    let at = |n: usize| (n / cols) * stride + offsets[li] + n % cols;
                    let mut q = 0;
                    while q < kc / 2 {
                        let n = k0 + 2 * q;
                        let t = n % cols;
                        if t + 1 < cols {
                            // Whole pairs inside this image's run.
                            let cnt = ((cols - t) / 2).min(kc / 2 - q);
                            pair_runs(&mut line[q..q + cnt], &buf[at(n)..at(n) + 2 * cnt]);
                            q += cnt;
                        } else {
                            // A pair across two images.
                            line[q] = word(buf[at(n)], buf[at(n + 1)]);
                            q += 1;
                        }
                    }
                    if kc % 2 == 1 {
                        line[pairs - 1] = word(buf[at(k0 + kc - 1)], 0.0);
                    }
                }
            }
        }
    }
}

/// Packs depths `k0..k0+kc` of `rhs`'s columns into panels of `nr` columns, each
/// `[pair][column]` (one 16-lane load per pair and 16 columns; columns past `len` are zero).
fn pack_cols(out: &mut [u32], nr: usize, rhs: Src<'_>, len: usize, k0: usize, kc: usize) {
    let pairs = kc.div_ceil(2);
    for (p, panel) in out.chunks_exact_mut(pairs * nr).enumerate() {
        let first = p * nr;
        let lines = nr.min(len.saturating_sub(first));
        if lines < nr {
            panel.fill(0);
        }
        for q in 0..pairs {
            let dst = &mut panel[q * nr..q * nr + lines];
            let (d0, d1) = (k0 + 2 * q, (2 * q + 1 < kc).then_some(k0 + 2 * q + 1));
            match rhs {
                Src::Matrix(src, v) => {
                    let base = first * v.cs;
                    let r0 = base + d0 * v.rs;
                    if v.cs == 1 {
                        let r0 = &src[r0..r0 + lines];
                        match d1 {
                            Some(d1) => pair_rows(dst, r0, &src[base + d1 * v.rs..][..lines]),
                            None => dst.iter_mut().zip(r0).for_each(|(o, &a)| *o = word(a, 0.0)),
                        }
                    } else {
                        for (j, o) in dst.iter_mut().enumerate() {
                            let hi = d1.map_or(0.0, |d1| src[base + d1 * v.rs + j * v.cs]);
                            *o = word(src[r0 + j * v.cs], hi);
                        }
                    }
                }
                Src::Implicit { buf, stride, offsets, cols, .. } => {
                    // The panel's columns, one image's contiguous run at a time.
                    let mut c = 0;
                    while c < lines {
                        let (img, t) = ((first + c) / cols, (first + c) % cols);
                        let seg = (cols - t).min(lines - c);
                        let at = |k: usize| img * stride + offsets[k] + t;
                        let a = &buf[at(d0)..at(d0) + seg];
                        let out = &mut dst[c..c + seg];
                        match d1 {
                            Some(d1) => pair_rows(out, a, &buf[at(d1)..at(d1) + seg]),
                            None => out.iter_mut().zip(a).for_each(|(o, &x)| *o = word(x, 0.0)),
                        }
                        c += seg;
                    }
                }
            }
        }
    }
}

/// `dst[j] = word(a[j], b[j])`, 16 lanes at a time where the CPU has AVX-512.
fn pair_rows(dst: &mut [u32], a: &[f32], b: &[f32]) {
    let n = dst.len().min(a.len()).min(b.len());
    // SAFETY: `matmul` asserted AVX512F support; every access is below `n`.
    #[cfg(target_arch = "x86_64")]
    let j = unsafe { pair_rows_avx512(&mut dst[..n], &a[..n], &b[..n]) };
    #[cfg(not(target_arch = "x86_64"))]
    let j = 0;
    for j in j..n {
        dst[j] = word(a[j], b[j]);
    }
}

/// `dst[q] = word(src[2q], src[2q + 1])`, 8 pairs at a time where the CPU has AVX-512.
fn pair_runs(dst: &mut [u32], src: &[f32]) {
    let n = dst.len().min(src.len() / 2);
    // SAFETY: `matmul` asserted AVX512F support; every access is below `n` pairs.
    #[cfg(target_arch = "x86_64")]
    let q = unsafe { pair_runs_avx512(&mut dst[..n], &src[..2 * n]) };
    #[cfg(not(target_arch = "x86_64"))]
    let q = 0;
    for q in q..n {
        dst[q] = word(src[2 * q], src[2 * q + 1]);
    }
}

/// The 8-pair body of [`pair_runs`]: round 16 floats, keep their high halves, narrow the
/// 32-bit lanes to 16 bits (which leaves each pair's two halves side by side, low first);
/// returns how many pairs it filled (a multiple of 8).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pair_runs_avx512(dst: &mut [u32], src: &[f32]) -> usize {
    use std::arch::x86_64::*;
    let full = dst.len() / 8 * 8;
    let mut q = 0;
    while q < full {
        // SAFETY: q + 8 <= full <= dst.len() and 2q + 16 <= src.len().
        unsafe {
            let x = round_bf16(_mm512_loadu_si512(src.as_ptr().add(2 * q).cast()));
            let halves = _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(x));
            _mm256_storeu_si256(dst.as_mut_ptr().add(q).cast(), halves);
        }
        q += 8;
    }
    full
}

/// As [`rounded`], 16 lanes: `+ 0x7fff +` the lowest kept bit; NaNs quieted instead.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn round_bf16(x: std::arch::x86_64::__m512i) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(x), _mm512_set1_epi32(1));
    let r = _mm512_add_epi32(x, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    let abs = _mm512_and_si512(x, _mm512_set1_epi32(0x7fff_ffff));
    let nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f80_0000));
    _mm512_mask_blend_epi32(nan, r, _mm512_or_si512(x, _mm512_set1_epi32(0x0040_0000)))
}

/// The 16-lane body of [`pair_rows`]; returns how many lanes it filled (a multiple of 16).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pair_rows_avx512(dst: &mut [u32], a: &[f32], b: &[f32]) -> usize {
    use std::arch::x86_64::*;
    let full = dst.len() / 16 * 16;
    let mut j = 0;
    while j < full {
        // SAFETY: j + 16 <= full <= every slice's length.
        unsafe {
            let x = round_bf16(_mm512_loadu_si512(a.as_ptr().add(j).cast()));
            let y = round_bf16(_mm512_loadu_si512(b.as_ptr().add(j).cast()));
            let w = _mm512_or_si512(
                _mm512_srli_epi32::<16>(x),
                _mm512_and_si512(y, _mm512_set1_epi32(0xffff_0000_u32 as i32)),
            );
            _mm512_storeu_si512(dst.as_mut_ptr().add(j).cast(), w);
        }
        j += 16;
    }
    full
}

/// The micro-kernel: `tile[..RM][..16 NV] = sum over pairs of a-pairs x b-pairs`, with `a`
/// packed `[row][pair]` and `b` packed `[pair][column]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel<const RM: usize, const NV: usize>(pairs: usize, a: &[u32], b: &[u32], tile: &mut [[f32; 48]; 24]) {
    use std::arch::x86_64::*;
    assert!(a.len() >= pairs * RM && b.len() >= pairs * 16 * NV && RM <= 24 && NV <= 3);
    let mut acc = [[_mm512_setzero_ps(); NV]; RM];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for q in 0..pairs {
        // SAFETY: q < pairs, so the 16 NV words at q*16*NV and the words at i*pairs + q
        // (i < RM) are in bounds (asserted above).
        unsafe {
            let mut bv = [std::mem::transmute::<__m512i, __m512bh>(_mm512_setzero_si512()); NV];
            for (v, slot) in bv.iter_mut().enumerate() {
                *slot = std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(bp.add((q * NV + v) * 16).cast()));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(i * pairs + q) as i32));
                for (v, x) in row.iter_mut().enumerate() {
                    *x = _mm512_dpbf16_ps(*x, av, bv[v]);
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            // SAFETY: i < RM <= 24, j < NV <= 3, so the 16 floats at tile[i][16j] are inside.
            unsafe { _mm512_storeu_ps(tile[i].as_mut_ptr().add(16 * j), *v) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: f64 products of the bf16-rounded operands.
    fn reference(d: View, lhs: &[f32], l: View, rhs: &[f32], r: View) -> Vec<f64> {
        let mut out = vec![0.0; d.rows * d.cols];
        for i in 0..d.rows {
            for j in 0..d.cols {
                let mut s = 0.0f64;
                for k in 0..l.cols {
                    let a = from_bf16(to_bf16(lhs[i * l.rs + k * l.cs]));
                    let b = from_bf16(to_bf16(rhs[k * r.rs + j * r.cs]));
                    s += f64::from(a) * f64::from(b);
                }
                out[i * d.cols + j] = s;
            }
        }
        out
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / 8388608.0) - 1.0).collect()
    }

    /// The implicit im2col operand packs exactly what the explicit column matrix packs: bit for
    /// bit equal products, as the right operand (forward) and as the left one (the weight
    /// gradient's orientation), with an odd run length (pairs straddling two images), several
    /// images and depth blocks.
    #[test]
    fn implicit_columns_equal_the_column_matrix_bit_for_bit() {
        if !available() {
            return;
        }
        for &(images, cols, rows, m) in &[(3, 7, 40, 33), (2, 63, 300, 64), (1, 48, 9, 16), (4, 80, 576, 20)] {
            let stride = cols + 2 * rows + 5;
            let buf = values(images * stride, 3);
            let offsets: Vec<usize> = (0..rows).map(|r| (r * 7) % (stride - cols)).collect();
            let n = images * cols;
            let mut col = vec![0f32; rows * n];
            for r in 0..rows {
                for c in 0..n {
                    col[r * n + c] = buf[(c / cols) * stride + offsets[r] + c % cols];
                }
            }
            let implicit = Src::Implicit { buf: &buf, stride, offsets: &offsets, cols, images };
            // Forward: dst[m, n] = w[m, rows] * col.
            let w = values(m * rows, 4);
            let (mut a, mut b) = (vec![0f32; m * n], vec![1f32; m * n]);
            matmul(&mut a, View::row_major(m, n), &w, View::row_major(m, rows), &col, View::row_major(rows, n), false);
            matmul_src(&mut b, View::row_major(m, n), Src::Matrix(&w, View::row_major(m, rows)), implicit);
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "forward, {images} x {cols}");
            // Weight gradient: dw (column-major [rows][m]) = dy[m, n] * col^T.
            let dy = values(m * n, 5);
            let (mut a, mut b) = (vec![0f32; m * rows], vec![1f32; m * rows]);
            let dv = View::row_major(m, n);
            matmul(&mut a, View::row_major(rows, m).t(), &dy, dv, &col, View::row_major(rows, n).t(), false);
            matmul_src(&mut b, View::row_major(rows, m), implicit, Src::Matrix(&dy, dv.t()));
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "weight gradient, {images} x {cols}");
        }
    }

    #[test]
    fn rounding_is_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is exactly half-way between 1 and 1 + 2^-7: ties to the even (1.0).
        assert_eq!(to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
        // 1 + 3 * 2^-8 is half-way between 1 + 2^-7 (odd) and 1 + 2^-6: ties to the even.
        assert_eq!(to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        assert_eq!(to_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-12)), 0x3f81);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
    }

    #[test]
    fn matches_the_bf16_reference_on_ragged_strided_shapes() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX512_BF16");
            return;
        }
        // Ragged in every dimension, odd depth, depth over one block, transposed operands and
        // a column-major output.
        for &(m, n, k) in &[(1, 1, 1), (8, 48, 2), (9, 50, 9), (17, 97, 257), (16, 600, 144), (64, 30, 515)] {
            for &(lt, rt, dt) in &[(false, false, false), (true, false, false), (false, true, true)] {
                let lhs = values(m * k, 1);
                let rhs = values(k * n, 2);
                let l = if lt { View::row_major(k, m).t() } else { View::row_major(m, k) };
                let r = if rt { View::row_major(n, k).t() } else { View::row_major(k, n) };
                let d = if dt { View::row_major(n, m).t() } else { View::row_major(m, n) };
                let want = reference(View::row_major(m, n), &lhs, l, &rhs, r);
                for accumulate in [false, true] {
                    let mut dst = vec![0.5f32; m * n];
                    matmul(&mut dst, d, &lhs, l, &rhs, r, accumulate);
                    for i in 0..m {
                        for j in 0..n {
                            let got = f64::from(dst[i * d.rs + j * d.cs]);
                            let w = want[i * n + j] + if accumulate { 0.5 } else { 0.0 };
                            // f32 accumulation of k exact products: error well under k ulps.
                            let tol = 1e-6 * (k as f64) * (1.0 + w.abs());
                            assert!((got - w).abs() <= tol, "m={m} n={n} k={k} ({i},{j}): {got} vs {w}");
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// A rough speed comparison with the f32 GEMM, run by hand: `cargo test --release -p
    /// dynaprune-model --lib gemm_bf16::speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn compare_with_f32() {
        if !available() {
            return;
        }
        for &(m, n, k, tr) in &[(16, 144, 840, true), (32, 288, 512, true), (16, 9, 840, true), (16, 840, 9, false), (16, 840, 144, false), (32, 512, 288, false), (64, 512, 576, false), (256, 512, 2304, false), (512, 512, 4608, false), (64, 576, 512, true), (512, 4608, 512, true)] {
            let lhs: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let rhs: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
            let l = View::row_major(m, k);
            let r = if tr { View::row_major(n, k).t() } else { View::row_major(k, n) };
            // The weight gradient (`rhs_t`) writes a column-major partial, as in conv.rs.
            let d = if tr { View::row_major(n, m).t() } else { View::row_major(m, n) };
            let mut dst = vec![0f32; m * n];
            let reps = (2e9 / (2.0 * (m * n * k) as f64)).max(3.0) as usize;
            let (mut t32, mut t16) = (f64::MAX, f64::MAX);
            for _ in 0..3 {
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    super::super::gemm::matmul(&mut dst, d, &lhs, l, &rhs, r, false);
                }
                t32 = t32.min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    matmul(&mut dst, d, &lhs, l, &rhs, r, false);
                }
                t16 = t16.min(t.elapsed().as_secs_f64());
            }
            let gf = |t: f64| 2.0 * (m * n * k * reps) as f64 / t / 1e9;
            println!("m={m} n={n} k={k} rhs_t={tr}: f32 {:.1} GFLOP/s, bf16 {:.1} GFLOP/s, ratio {:.2}x", gf(t32), gf(t16), t32 / t16);
        }
    }
}

//! The direct NHWC kernels (`Kernels::Direct`) against the im2col path on ragged shapes (odd
//! sizes, channel counts that are not multiples of 8 or 16, stride 2, padding, 1x1), on every
//! instruction set this CPU can run (each forced in turn): forward values, input and kernel
//! gradients, the fused BatchNorm; bit-identical across instruction sets and thread counts;
//! gradients against finite differences in f64; the im2col fallback for shapes the kernels do not
//! cover; and the refusal of an instruction set the CPU lacks.

use candle_core::{DType, Device, Tensor, Var};
use dynaprune_model::ops::{self, direct, direct::Isa};
use dynaprune_model::{Kernels, Precision};
use rand::{Rng, SeedableRng};

fn rand_tensor(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

fn nhwc(x: &Tensor) -> Tensor {
    x.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap()
}

fn nchw(x: &Tensor) -> Tensor {
    x.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
}

/// Max-abs difference over max-abs value of the reference; never NaN.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (values(a), values(b));
    assert!(a.iter().chain(&b).all(|v| v.is_finite()), "NaN or inf");
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    diff / b.iter().map(|v| v.abs()).fold(1e-12, f64::max)
}

const TOL: f64 = 2e-5;

/// `(n, cin, h, w, cout, k, stride, pad)`: ragged channel counts (1, 3, 5, 7, 13, 17, 19, 37),
/// odd and non-square sizes, stride 2 on odd sizes, 1x1 with and without stride, 3x3 without
/// padding, a wide layer (more output channels than one register tile).
type Case = (usize, usize, usize, usize, usize, usize, usize, usize);

const CASES: [Case; 10] = [
    (3, 3, 7, 6, 5, 3, 1, 1),
    (2, 5, 9, 9, 7, 3, 2, 1),
    (2, 17, 8, 5, 13, 1, 1, 0),
    (3, 13, 7, 7, 19, 1, 2, 0),
    (2, 7, 9, 11, 3, 3, 2, 0),
    (2, 1, 6, 6, 1, 3, 1, 0),
    (5, 19, 4, 4, 37, 3, 1, 1),
    (2, 16, 5, 5, 72, 3, 2, 1),
    (17, 3, 3, 3, 8, 3, 1, 1), // more images than weight-gradient groups
    (2, 24, 12, 10, 16, 3, 1, 1),
];

fn available() -> Vec<Isa> {
    let isas: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.available()).collect();
    assert!(isas.contains(&Isa::Portable), "the portable kernels run everywhere");
    isas
}

struct ConvResult {
    y: Tensor,
    dx: Tensor,
    dw: Tensor,
}

/// Forward and both gradients of `sum(conv(x, w) * r)`, direct on NHWC (returned as NCHW).
fn direct_conv(x: &Tensor, w: &Tensor, r: &Tensor, s: usize, p: usize, isa: Isa) -> ConvResult {
    let (xv, wv) = (Var::from_tensor(&nhwc(x)).unwrap(), Var::from_tensor(w).unwrap());
    let y = direct::conv2d_nhwc(&xv, &wv, s, p, isa).unwrap();
    let g = (&y * &nhwc(r)).unwrap().sum_all().unwrap().backward().unwrap();
    ConvResult { y: nchw(&y), dx: nchw(g.get(&xv).unwrap()), dw: g.get(&wv).unwrap().clone() }
}

fn im2col_conv(x: &Tensor, w: &Tensor, r: &Tensor, s: usize, p: usize) -> ConvResult {
    let (xv, wv) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
    let y = ops::conv2d(&xv, &wv, s, p).unwrap();
    let g = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    ConvResult { y, dx: g.get(&xv).unwrap().clone(), dw: g.get(&wv).unwrap().clone() }
}

fn case_tensors(i: usize, dtype: DType) -> (Tensor, Tensor, Tensor, usize, usize) {
    let (n, cin, h, w, cout, k, s, p) = CASES[i];
    let x = rand_tensor(&[n, cin, h, w], 100 + i as u64, dtype);
    let wt = rand_tensor(&[cout, cin, k, k], 200 + i as u64, dtype);
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let r = rand_tensor(&[n, cout, ho, wo], 300 + i as u64, dtype);
    (x, wt, r, s, p)
}

#[test]
fn convolution_matches_im2col_on_ragged_shapes_on_every_instruction_set() {
    for i in 0..CASES.len() {
        let (x, w, r, s, p) = case_tensors(i, DType::F32);
        let reference = im2col_conv(&x, &w, &r, s, p);
        let mut first: Option<(Isa, ConvResult)> = None;
        for isa in available() {
            let ours = direct_conv(&x, &w, &r, s, p, isa);
            for (what, a, b) in
                [("forward", &ours.y, &reference.y), ("dx", &ours.dx, &reference.dx), ("dw", &ours.dw, &reference.dw)]
            {
                let e = rel_err(a, b);
                assert!(e < TOL, "case {i} {CASES:?}[{i}] {isa:?} {what}: rel err {e}");
            }
            match &first {
                None => first = Some((isa, ours)),
                Some((isa0, base)) => {
                    for (what, a, b) in
                        [("forward", &ours.y, &base.y), ("dx", &ours.dx, &base.dx), ("dw", &ours.dw, &base.dw)]
                    {
                        assert!(bits(a) == bits(b), "case {i}: {what} differs between {isa0:?} and {isa:?}");
                    }
                }
            }
        }
    }
}

/// Training-mode BatchNorm (+ ReLU) fused into the direct convolution, against the im2col
/// path's fused op: output, batch statistics, and the gradients of input, kernel and affine.
#[test]
fn fused_batch_norm_matches_im2col_on_every_instruction_set() {
    for i in 0..CASES.len() {
        let (x, w, r, s, p) = case_tensors(i, DType::F32);
        let cout = w.dim(0).unwrap();
        let affine = (rand_tensor(&[2, cout], 400 + i as u64, DType::F32) + 0.5).unwrap();
        for relu in [false, true] {
            let (xv, wv, av) =
                (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap(), Var::from_tensor(&affine).unwrap());
            let (y, stats) = ops::conv_bn_train(&xv, &wv, &av, s, p, 1e-5, relu, Precision::F32).unwrap();
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let (mean, var) = stats.get().unwrap();
            let mut first: Option<(Isa, Vec<Vec<u32>>)> = None;
            for isa in available() {
                let (xd, wd, ad) = (
                    Var::from_tensor(&nhwc(&x)).unwrap(),
                    Var::from_tensor(&w).unwrap(),
                    Var::from_tensor(&affine).unwrap(),
                );
                let (yd, sd) = direct::conv_bn_train_nhwc(&xd, &wd, &ad, s, p, 1e-5, relu, isa).unwrap();
                let gd = (&yd * &nhwc(&r)).unwrap().sum_all().unwrap().backward().unwrap();
                let (md, vd) = sd.get().unwrap();
                for c in 0..cout {
                    assert!((md[c] - mean[c]).abs() < 1e-5 * (1.0 + mean[c].abs()), "case {i} mean[{c}]");
                    assert!((vd[c] - var[c]).abs() < 1e-5 * (1.0 + var[c].abs()), "case {i} var[{c}]");
                }
                let (dxd, dwd, dad) =
                    (nchw(gd.get(&xd).unwrap()), gd.get(&wd).unwrap().clone(), gd.get(&ad).unwrap().clone());
                let yd = nchw(&yd);
                for (what, a, b) in [
                    ("forward", &yd, &y),
                    ("dx", &dxd, g.get(&xv).unwrap()),
                    ("dw", &dwd, g.get(&wv).unwrap()),
                    ("daffine", &dad, g.get(&av).unwrap()),
                ] {
                    let e = rel_err(a, b);
                    assert!(e < 1e-4, "case {i} relu {relu} {isa:?} {what}: rel err {e}");
                }
                let all = vec![bits(&yd), bits(&dxd), bits(&dwd), bits(&dad)];
                match &first {
                    None => first = Some((isa, all)),
                    Some((isa0, base)) => assert!(&all == base, "case {i} relu {relu}: {isa0:?} and {isa:?} differ"),
                }
            }
        }
    }
}

/// Central differences in f64 through the fused conv + BatchNorm + ReLU (batch statistics), for
/// the input, the kernel and the affine parameters, on a stride-2 and a 1x1 shape.
#[test]
fn fused_gradients_match_finite_differences() {
    for (case, relu) in [(1, true), (3, false), (4, true)] {
        let (x0, w0, r, s, p) = case_tensors(case, DType::F64);
        let (x0, r) = (nhwc(&x0), nhwc(&r));
        let cout = w0.dim(0).unwrap();
        let a0 = (rand_tensor(&[2, cout], 500, DType::F64) + 0.5).unwrap();
        let loss = |x: &Tensor, w: &Tensor, a: &Tensor| -> Tensor {
            let (y, _) = direct::conv_bn_train_nhwc(x, w, a, s, p, 1e-5, relu, Isa::Portable).unwrap();
            (y * &r).unwrap().sum_all().unwrap()
        };
        let (xv, wv, av) =
            (Var::from_tensor(&x0).unwrap(), Var::from_tensor(&w0).unwrap(), Var::from_tensor(&a0).unwrap());
        let g = loss(&xv, &wv, &av).backward().unwrap();
        for (which, var) in [(0, &xv), (1, &wv), (2, &av)] {
            let analytic = values(g.get(var).unwrap());
            let base = values(var.as_tensor());
            let step = 1 + base.len() / 23;
            for j in (0..base.len()).step_by(step) {
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[j] += d;
                    let t = Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap();
                    let l = match which {
                        0 => loss(&t, &w0, &a0),
                        1 => loss(&x0, &t, &a0),
                        _ => loss(&x0, &w0, &t),
                    };
                    l.to_scalar::<f64>().unwrap()
                };
                let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
                assert!(
                    (numeric - analytic[j]).abs() < 1e-5 * (1.0 + numeric.abs()),
                    "case {case} argument {which} element {j}: numeric {numeric} vs analytic {}",
                    analytic[j]
                );
            }
        }
    }
}

/// Same results at 1 and 2 threads (fixed work split, partial sums in a fixed order), for the
/// plain convolution and the fused one.
#[test]
fn one_and_two_threads_are_bit_identical() {
    let run = |isa: Isa| {
        let mut out = Vec::new();
        for i in [0, 6, 7, 8] {
            let (x, w, r, s, p) = case_tensors(i, DType::F32);
            let c = direct_conv(&x, &w, &r, s, p, isa);
            out.extend([bits(&c.y), bits(&c.dx), bits(&c.dw)]);
            let cout = w.dim(0).unwrap();
            let affine = Var::from_tensor(&(rand_tensor(&[2, cout], 7, DType::F32) + 0.5).unwrap()).unwrap();
            let (xv, wv) = (Var::from_tensor(&nhwc(&x)).unwrap(), Var::from_tensor(&w).unwrap());
            let (y, _) = direct::conv_bn_train_nhwc(&xv, &wv, &affine, s, p, 1e-5, true, isa).unwrap();
            let g = (&y * &nhwc(&r)).unwrap().sum_all().unwrap().backward().unwrap();
            out.extend([bits(&y), bits(g.get(&xv).unwrap()), bits(g.get(&wv).unwrap()), bits(g.get(&affine).unwrap())]);
        }
        out
    };
    for isa in available() {
        let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        let one = pool(1).install(|| run(isa));
        let two = pool(2).install(|| run(isa));
        assert!(one == two, "{isa:?}: 1 and 2 threads differ");
    }
}

/// Shapes the kernels do not cover (5x5, stride 3, non-square kernels) run the im2col path,
/// give its results, and are counted.
#[test]
fn uncovered_shapes_fall_back_to_im2col_and_are_counted() {
    direct::fallbacks();
    let cases = [(2, 3, 9, 9, 4, 5, 5, 1, 2), (2, 3, 10, 10, 5, 3, 3, 3, 1), (2, 2, 7, 7, 3, 3, 1, 1, 0)];
    let mut calls = 0;
    for (i, &(n, cin, h, w, cout, kh, kw, s, p)) in cases.iter().enumerate() {
        let x = rand_tensor(&[n, cin, h, w], 600 + i as u64, DType::F32);
        let wt = rand_tensor(&[cout, cin, kh, kw], 700 + i as u64, DType::F32);
        let (ho, wo) = ((h + 2 * p - kh) / s + 1, (w + 2 * p - kw) / s + 1);
        let r = rand_tensor(&[n, cout, ho, wo], 800 + i as u64, DType::F32);
        let reference = im2col_conv(&x, &wt, &r, s, p);
        let ours = direct_conv(&x, &wt, &r, s, p, Isa::best());
        calls += 2; // a forward and a backward
        for (what, a, b) in
            [("forward", &ours.y, &reference.y), ("dx", &ours.dx, &reference.dx), ("dw", &ours.dw, &reference.dw)]
        {
            assert!(bits(a) == bits(b), "fallback case {i} {what} is the im2col result");
        }
    }
    assert_eq!(direct::fallbacks(), calls, "every uncovered call is counted");
    assert_eq!(direct::fallbacks(), 0, "reading the count resets it");
}

#[test]
fn kernel_names_resolve_and_unavailable_instruction_sets_are_refused() {
    assert_eq!(Kernels::from_name("im2col").unwrap(), Kernels::Fast);
    assert_eq!(Kernels::from_name("fast").unwrap(), Kernels::Fast);
    assert_eq!(Kernels::from_name("direct").unwrap(), Kernels::Direct(Isa::best()));
    for isa in Isa::ALL {
        let name = format!("direct-{}", isa.name());
        match Kernels::from_name(&name) {
            Ok(k) => {
                assert!(isa.available());
                assert_eq!(k.name(), name);
                assert_eq!(Kernels::from_name(&k.name()).unwrap(), k, "names round-trip");
            }
            Err(e) => {
                assert!(!isa.available());
                let msg = e.to_string();
                assert!(msg.contains(isa.needs()) && msg.contains("this CPU has"), "{msg}");
            }
        }
    }
    let e = Kernels::from_name("direct-sse").unwrap_err().to_string();
    assert!(e.contains("unknown kernels `direct-sse`") && e.contains("direct-avx2"), "{e}");
    let e = Kernels::direct().with_precision(Precision::Bf16).unwrap_err().to_string();
    assert!(e.contains("f32 only"), "{e}");
    assert!(
        direct::conv2d_nhwc(
            &rand_tensor(&[1, 3, 4, 4], 1, DType::F32),
            &rand_tensor(&[2, 3, 3, 3], 2, DType::F32),
            1,
            1,
            Isa::Portable
        )
        .is_err(),
        "channel mismatch (NHWC input with 4 channels expected) is an error"
    );
}

/// A trunk of `stem` output channels and `blocks` `(cout, stride)` on `(n, h, w, cin)` random
/// inputs, run as the one trunk op and as the unfused ops (conv-bn-relu stem; per block conv-bn-relu,
/// conv-bn, the shortcut's conv-bn or the identity, add-relu), on every instruction set: output,
/// every unit's batch statistics and every gradient (input, all kernels and affines) bit for bit,
/// and bit-identical across instruction sets.
fn check_trunk_against_unfused_ops(
    case: &str,
    (n, h, w, cin): (usize, usize, usize, usize),
    stem: usize,
    blocks: &[(usize, usize)],
    seed: u64,
) {
    // (cout, cin, stride, k) per unit: the stem, then per block a, b and the shortcut if any.
    let mut shapes = vec![(stem, cin, 1, 3)];
    let mut layout = Vec::new();
    let (mut c, mut ho, mut wo) = (stem, h, w);
    for &(cout, s) in blocks {
        let a = shapes.len();
        shapes.push((cout, c, s, 3));
        shapes.push((cout, cout, 1, 3));
        let shortcut = (s != 1 || c != cout).then(|| {
            shapes.push((cout, c, s, 1));
            shapes.len() - 1
        });
        layout.push((a, a + 1, shortcut));
        (c, ho, wo) = (cout, (ho - 1) / s + 1, (wo - 1) / s + 1);
    }
    let x = rand_tensor(&[n, h, w, cin], seed, DType::F32);
    let probe = rand_tensor(&[n, ho, wo, c], seed + 1, DType::F32);
    let mut first: Option<(Isa, Vec<Vec<u32>>)> = None;
    for isa in available() {
        let xv = Var::from_tensor(&x).unwrap();
        let params: Vec<(Var, Var)> = shapes
            .iter()
            .enumerate()
            .map(|(k, &(o, i, _, kk))| {
                let wt = rand_tensor(&[o, i, kk, kk], seed + 10 + k as u64, DType::F32);
                let a = (rand_tensor(&[2, o], seed + 100 + k as u64, DType::F32) + 0.5).unwrap();
                (Var::from_tensor(&wt).unwrap(), Var::from_tensor(&a).unwrap())
            })
            .collect();
        let conv_bn = |k: usize, x: &Tensor, relu: bool| {
            let (_, _, s, kk) = shapes[k];
            direct::conv_bn_train_nhwc(x, &params[k].0, &params[k].1, s, kk / 2, 1e-5, relu, isa).unwrap()
        };
        // Unfused.
        let (mut y, s0) = conv_bn(0, &xv, true);
        let mut stats = vec![s0];
        for &(a, b, shortcut) in &layout {
            let (ha, sa) = conv_bn(a, &y, true);
            let (hb, sb) = conv_bn(b, &ha, false);
            stats.extend([sa, sb]);
            let r = match shortcut {
                Some(k) => {
                    let (r, sk) = conv_bn(k, &y, false);
                    stats.push(sk);
                    r
                }
                None => y.clone(),
            };
            y = ops::add_relu(&hb, &r).unwrap();
        }
        let g = (&y * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        // As one op.
        let unit = |k: usize| direct::BlockUnit {
            weight: params[k].0.as_tensor(),
            affine: params[k].1.as_tensor(),
            stride: shapes[k].2,
            padding: shapes[k].3 / 2,
            eps: 1e-5,
        };
        let trunk_blocks: Vec<direct::TrunkBlock> = layout
            .iter()
            .map(|&(a, b, shortcut)| direct::TrunkBlock { a: unit(a), b: unit(b), shortcut: shortcut.map(unit) })
            .collect();
        let (yt, st) = direct::resnet_trunk_train_nhwc(&xv, unit(0), &trunk_blocks, isa).unwrap();
        let gt = (&yt * &probe).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(bits(&yt), bits(&y), "{case} {isa:?}: output");
        let trunk: Vec<_> = st.iter().map(|s| s.get()).collect();
        let unfused: Vec<_> = stats.iter().map(|s| s.get()).collect();
        assert_eq!(trunk, unfused, "{case} {isa:?}: batch statistics, in unit order");
        let mut all = vec![bits(&yt), bits(gt.get(&xv).unwrap())];
        assert_eq!(bits(gt.get(&xv).unwrap()), bits(g.get(&xv).unwrap()), "{case} {isa:?}: input gradient");
        for (k, (wv, av)) in params.iter().enumerate() {
            assert_eq!(
                bits(gt.get(wv).unwrap()),
                bits(g.get(wv).unwrap()),
                "{case} {isa:?}: kernel gradient of unit {k}"
            );
            assert_eq!(
                bits(gt.get(av).unwrap()),
                bits(g.get(av).unwrap()),
                "{case} {isa:?}: affine gradient of unit {k}"
            );
            all.extend([bits(gt.get(wv).unwrap()), bits(gt.get(av).unwrap())]);
        }
        match &first {
            None => first = Some((isa, all)),
            Some((isa0, base)) => assert!(&all == base, "{case}: {isa0:?} and {isa:?} differ"),
        }
    }
}

/// One residual block in the trunk op (BatchNorms applied by the pass that reads each output
/// next, their gradients in the convolution backward's prologues and epilogues) computes exactly
/// what the unfused ops compute, with the identity residual and with a projection (stride 2,
/// channels changing), and with more images than weight-gradient groups.
#[test]
fn residual_block_op_equals_the_unfused_ops_bit_for_bit() {
    check_trunk_against_unfused_ops("identity", (3, 7, 6, 2), 5, &[(5, 1)], 500);
    check_trunk_against_unfused_ops("projection", (2, 9, 7, 3), 5, &[(7, 2)], 510);
    check_trunk_against_unfused_ops("17 images", (17, 4, 5, 1), 3, &[(3, 1)], 520);
}

/// Evaluation's conv with the affine, ReLU and residual join in its epilogue equals the conv
/// followed by the same arithmetic as separate ops, bit for bit, for channel counts that fill
/// whole vectors (16, 32) and that do not (7).
#[test]
fn evaluation_epilogue_equals_separate_affine_and_join() {
    for (k, c) in [7usize, 16, 32].into_iter().enumerate() {
        let (n, h, w) = (3, 5, 6);
        let seed = 700 + 10 * k as u64;
        let x = rand_tensor(&[n, h, w, c], seed, DType::F32);
        let wt = rand_tensor(&[c, c, 3, 3], seed + 1, DType::F32);
        let scale = (rand_tensor(&[c], seed + 2, DType::F32) + 1.0).unwrap();
        let shift = rand_tensor(&[c], seed + 3, DType::F32);
        let res = rand_tensor(&[n, h, w, c], seed + 4, DType::F32);
        for isa in available() {
            let z = direct::conv2d_nhwc(&x, &wt, 1, 1, isa).unwrap();
            let affine = z.broadcast_mul(&scale).unwrap().broadcast_add(&shift).unwrap();
            for (relu, residual) in [(false, None), (true, None), (true, Some(&res))] {
                let want = match residual {
                    Some(r) => ops::add_relu(&affine, r).unwrap(),
                    None if relu => affine.relu().unwrap(),
                    None => affine.clone(),
                };
                let got = direct::conv_affine_nhwc(&x, &wt, &scale, &shift, 1, 1, relu, residual, isa).unwrap();
                assert_eq!(bits(&got), bits(&want), "{c} channels {isa:?} relu {relu} residual {}", residual.is_some());
            }
        }
    }
}

/// Evaluation's trunk taken image by image (stem, an identity block, a stride-2 projection
/// block; ragged channel counts, odd sizes, 17 images) equals the units one by one through the
/// conv with the affine in its epilogue, bit for bit, on every instruction set, in f32 and f64.
#[test]
fn evaluation_trunk_image_by_image_equals_its_units_bit_for_bit() {
    for dtype in [DType::F32, DType::F64] {
        let (n, h, w, c0) = (17, 9, 7, 3);
        let x = rand_tensor(&[n, h, w, c0], 950, dtype);
        let mut seed = 960;
        let mut unit = |cin: usize, cout: usize, k: usize, stride: usize| {
            seed += 4;
            let weight = rand_tensor(&[cout, cin, k, k], seed, dtype);
            let scale = (rand_tensor(&[cout], seed + 1, dtype) + 1.0).unwrap();
            let shift = rand_tensor(&[cout], seed + 2, dtype);
            (weight, scale, shift, stride, k / 2)
        };
        let stem = unit(c0, 5, 3, 1);
        let identity = [unit(5, 5, 3, 1), unit(5, 5, 3, 1)];
        let projection = [unit(5, 13, 3, 2), unit(13, 13, 3, 1), unit(5, 13, 1, 2)];
        fn eval_unit(u: &(Tensor, Tensor, Tensor, usize, usize)) -> direct::EvalUnit<'_> {
            direct::EvalUnit { weight: &u.0, scale: u.1.clone(), shift: u.2.clone(), stride: u.3, padding: u.4 }
        }
        let blocks = [
            direct::EvalBlock { a: eval_unit(&identity[0]), b: eval_unit(&identity[1]), shortcut: None },
            direct::EvalBlock {
                a: eval_unit(&projection[0]),
                b: eval_unit(&projection[1]),
                shortcut: Some(eval_unit(&projection[2])),
            },
        ];
        let isas = if dtype == DType::F64 { vec![Isa::Portable] } else { available() };
        for isa in isas {
            let conv = |x: &Tensor, u: &(Tensor, Tensor, Tensor, usize, usize), relu: bool, r: Option<&Tensor>| {
                direct::conv_affine_nhwc(x, &u.0, &u.1, &u.2, u.3, u.4, relu, r, isa).unwrap()
            };
            let h0 = conv(&x, &stem, true, None);
            let h1 = conv(&conv(&h0, &identity[0], true, None), &identity[1], true, Some(&h0));
            let s = conv(&h1, &projection[2], false, None);
            let want = conv(&conv(&h1, &projection[0], true, None), &projection[1], true, Some(&s));
            let got = direct::resnet_trunk_eval_nhwc(&x, &eval_unit(&stem), &blocks, isa).unwrap();
            assert_eq!(got.dims(), want.dims());
            let (g, w) = (values(&got), values(&want));
            assert!(
                g.iter().zip(&w).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{dtype:?} {isa:?}: the image-by-image trunk differs from its units"
            );
        }
    }
}

/// The whole trunk as one Candle op (stem, an identity block, a projection block) computes
/// exactly what the unfused ops compute one by one.
#[test]
fn resnet_trunk_op_equals_its_units_bit_for_bit() {
    check_trunk_against_unfused_ops("two blocks", (3, 9, 7, 3), 5, &[(5, 1), (7, 2)], 800);
}

/// Global average pooling over NHWC pixels equals Candle's `mean((1, 2))` bit for bit, forward
/// and backward.
#[test]
fn pixel_mean_equals_candle_mean_bit_for_bit() {
    let x = rand_tensor(&[3, 5, 7, 37], 900, DType::F32);
    let probe = rand_tensor(&[3, 37], 901, DType::F32);
    let (xa, xb) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&x).unwrap());
    let ya = xa.mean((1, 2)).unwrap();
    let yb = direct::mean_pixels_nhwc(&xb).unwrap();
    assert_eq!(bits(&yb), bits(&ya), "forward");
    let ga = (&ya * &probe).unwrap().sum_all().unwrap().backward().unwrap();
    let gb = (&yb * &probe).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(bits(gb.get(&xb).unwrap()), bits(ga.get(&xa).unwrap()), "backward");
}

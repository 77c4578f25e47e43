//! Each custom op against Candle's reference ops on random inputs of several shapes: forward
//! values and gradients, relative error below 1e-4 in f32 (max-abs error over max-abs value),
//! and never NaN.

use candle_core::{DType, Device, Tensor, Var, D};
use dynaprune_model::ops;
use rand::{Rng, SeedableRng};

fn rand_tensor(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let a: Vec<f64> = a.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f64> = b.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(a.iter().chain(&b).all(|v| v.is_finite()), "NaN or inf in op output");
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let scale = b.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-12);
    diff / scale
}

const TOL: f64 = 1e-4;

#[test]
fn conv2d_matches_candle_forward_and_backward() {
    // (n, cin, h, w, cout, k, stride, pad)
    let cases = [
        (3, 2, 7, 6, 4, 3, 1, 1),
        (3, 2, 7, 7, 4, 3, 2, 1),
        (2, 5, 8, 8, 3, 1, 1, 0),
        (2, 5, 8, 8, 6, 1, 2, 0),
        (4, 3, 9, 9, 5, 3, 2, 0),
        (37, 4, 4, 4, 6, 3, 1, 1), // small images: several images per GEMM group
        (9, 1, 28, 28, 16, 3, 1, 1),
    ];
    for (i, &(n, cin, h, w, cout, k, s, p)) in cases.iter().enumerate() {
        let x = Var::from_tensor(&rand_tensor(&[n, cin, h, w], 10 + i as u64, DType::F32)).unwrap();
        let wt = Var::from_tensor(&rand_tensor(&[cout, cin, k, k], 20 + i as u64, DType::F32)).unwrap();
        let ours = ops::conv2d(&x, &wt, s, p).unwrap();
        let reference = x.conv2d(&wt, p, s, 1, 1).unwrap();
        let e = rel_err(&ours, &reference);
        assert!(e < TOL, "case {i} forward rel err {e}");
        let r = rand_tensor(ours.dims(), 30 + i as u64, DType::F32);
        let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (&reference * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [("input", &x), ("kernel", &wt)] {
            let e = rel_err(g1.get(v).unwrap(), g2.get(v).unwrap());
            assert!(e < TOL, "case {i} {name} gradient rel err {e}");
        }
    }
}

/// Candle's own conv2d backward mis-sizes the input gradient for non-square inputs with stride 2
/// (its conv_transpose2d output padding is computed from the height only), so this case is
/// checked against central finite differences in f64 instead.
#[test]
fn conv2d_non_square_stride_two_matches_finite_differences() {
    let x0 = rand_tensor(&[2, 2, 7, 6], 41, DType::F64);
    let w = rand_tensor(&[3, 2, 3, 3], 42, DType::F64);
    let r = rand_tensor(&[2, 3, 4, 3], 43, DType::F64);
    let loss =
        |x: &Tensor| ops::conv2d(x, &w, 2, 1).unwrap().mul(&r).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
    let xv = Var::from_tensor(&x0).unwrap();
    let g = ops::conv2d(&xv, &w, 2, 1).unwrap().mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    let analytic: Vec<f64> = g.get(&xv).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let base: Vec<f64> = x0.flatten_all().unwrap().to_vec1().unwrap();
    for i in (0..base.len()).step_by(7) {
        let at = |d: f64| {
            let mut v = base.clone();
            v[i] += d;
            loss(&Tensor::from_vec(v, x0.dims(), &Device::Cpu).unwrap())
        };
        let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
        assert!((numeric - analytic[i]).abs() < 1e-6, "element {i}: {numeric} vs {}", analytic[i]);
    }
}

#[test]
fn conv2d_skips_input_gradient_for_constants_and_handles_f64() {
    let x = rand_tensor(&[2, 1, 6, 6], 1, DType::F64);
    let w = Var::from_tensor(&rand_tensor(&[3, 1, 3, 3], 2, DType::F64)).unwrap();
    let y = ops::conv2d(&x, &w, 1, 1).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    assert!(g.get(&x).is_none());
    let reference = x.conv2d(&w, 1, 1, 1, 1).unwrap();
    let g2 = reference.sum_all().unwrap().backward().unwrap();
    assert!(rel_err(g.get(&w).unwrap(), g2.get(&w).unwrap()) < 1e-12);
    assert!(ops::conv2d(&x, &rand_tensor(&[3, 2, 3, 3], 3, DType::F64), 1, 1).is_err(), "channel mismatch is an error");
}

/// Reference BatchNorm from candle ops.
fn reference_bn(x: &Tensor, g: &Tensor, b: &Tensor, eps: f64, relu: bool) -> Tensor {
    let c = x.dim(1).unwrap();
    let xt = x.transpose(0, 1).unwrap().flatten_from(1).unwrap(); // (C, N*H*W)
    let mean = xt.mean_keepdim(D::Minus1).unwrap();
    let centred = xt.broadcast_sub(&mean).unwrap();
    let var = centred.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    let norm = centred.broadcast_div(&(var + eps).unwrap().sqrt().unwrap()).unwrap();
    let y =
        norm.broadcast_mul(&g.reshape((c, 1)).unwrap()).unwrap().broadcast_add(&b.reshape((c, 1)).unwrap()).unwrap();
    let mut dims = x.dims().to_vec();
    dims.swap(0, 1);
    let y = y.reshape(dims).unwrap().transpose(0, 1).unwrap().contiguous().unwrap();
    if relu {
        y.relu().unwrap()
    } else {
        y
    }
}

#[test]
fn batch_norm_matches_candle_forward_and_backward() {
    for (i, shape) in [[8usize, 3, 5, 5], [3, 16, 7, 7], [64, 4, 2, 2]].iter().enumerate() {
        for relu in [false, true] {
            let seed = 100 + 10 * i as u64 + relu as u64;
            let x = Var::from_tensor(&(rand_tensor(shape, seed, DType::F32) * 3.0).unwrap().affine(1.0, 0.5).unwrap())
                .unwrap();
            let g = Var::from_tensor(&rand_tensor(&[shape[1]], seed + 1, DType::F32)).unwrap();
            let b = Var::from_tensor(&rand_tensor(&[shape[1]], seed + 2, DType::F32)).unwrap();
            let (ours, stats) = ops::batch_norm_train(&x, &g, &b, 1e-5, relu).unwrap();
            let reference = reference_bn(&x, &g, &b, 1e-5, relu);
            let e = rel_err(&ours, &reference);
            assert!(e < TOL, "shape {shape:?} relu {relu}: forward rel err {e}");
            let (mean, var) = stats.get().unwrap();
            let xt = x.transpose(0, 1).unwrap().flatten_from(1).unwrap();
            let m: Vec<f32> = xt.mean(1).unwrap().to_vec1().unwrap();
            assert!(mean.iter().zip(&m).all(|(a, b)| (a - *b as f64).abs() < 1e-5));
            // Biased variance per channel, computed independently: mean of squares minus square of mean.
            let sq: Vec<f32> = xt.sqr().unwrap().mean(1).unwrap().to_vec1().unwrap();
            assert_eq!(var.len(), shape[1]);
            for (c, (&v, (&s2, &mu))) in var.iter().zip(sq.iter().zip(&m)).enumerate() {
                let want = f64::from(s2) - f64::from(mu) * f64::from(mu);
                assert!((v - want).abs() < 1e-4 * (1.0 + want.abs()), "channel {c}: variance {v} vs {want}");
            }
            let r = rand_tensor(shape, seed + 3, DType::F32);
            let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (&reference * &r).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, v) in [("input", &x), ("weight", &g), ("bias", &b)] {
                let e = rel_err(g1.get(v).unwrap(), g2.get(v).unwrap());
                assert!(e < TOL, "shape {shape:?} relu {relu}: {name} gradient rel err {e}");
            }
        }
    }
}

#[test]
fn add_relu_and_channel_affine_match_candle() {
    let a = Var::from_tensor(&rand_tensor(&[4, 3, 5, 5], 7, DType::F32)).unwrap();
    let b = Var::from_tensor(&rand_tensor(&[4, 3, 5, 5], 8, DType::F32)).unwrap();
    let ours = ops::add_relu(&a, &b).unwrap();
    let reference = (a.as_tensor() + b.as_tensor()).unwrap().relu().unwrap();
    assert!(rel_err(&ours, &reference) < TOL);
    let r = rand_tensor(&[4, 3, 5, 5], 9, DType::F32);
    let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let g2 = (&reference * &r).unwrap().sum_all().unwrap().backward().unwrap();
    for v in [&a, &b] {
        assert!(rel_err(g1.get(v).unwrap(), g2.get(v).unwrap()) < TOL);
    }
    let scale = rand_tensor(&[3], 10, DType::F32);
    let shift = rand_tensor(&[3], 11, DType::F32);
    for relu in [false, true] {
        let y = ops::channel_affine(&a, &scale, &shift, relu).unwrap();
        let mut want = a
            .broadcast_mul(&scale.reshape((1, 3, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&shift.reshape((1, 3, 1, 1)).unwrap())
            .unwrap();
        if relu {
            want = want.relu().unwrap();
        }
        assert!(rel_err(&y, &want) < TOL);
    }
}

#[test]
fn nan_inputs_propagate_and_are_caught() {
    let mut v = vec![0.5f32; 2 * 4 * 4]; // (2, 1, 4, 4)
    v[5] = f32::NAN;
    let x = Tensor::from_vec(v, (2, 1, 4, 4), &Device::Cpu).unwrap();
    let w = rand_tensor(&[2, 1, 3, 3], 1, DType::F32);
    let y: Vec<f32> = ops::conv2d(&x, &w, 1, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(y.iter().any(|v| v.is_nan()), "a NaN input must not silently vanish");
}

/// `--precision bf16`: the convolution with bf16 products (f32 accumulation) against the same
/// convolution computed in f32 on the bf16-rounded input and kernel (what it is meant to equal,
/// up to f32 summation order), forward and both gradients, on shapes large enough that every
/// product runs in bf16 (stride 1 "same", stride 2, pointwise) and on one that stays f32. The
/// gradients are compared with a looser bound: there `dy` is rounded too.
#[test]
fn bf16_convolution_equals_f32_on_rounded_operands() {
    if !ops::bf16_available() {
        eprintln!("skipped: this CPU has no AVX512_BF16");
        assert!(ops::conv2d_with(
            &rand_tensor(&[1, 1, 4, 4], 1, DType::F32),
            &rand_tensor(&[1, 1, 3, 3], 2, DType::F32),
            1,
            1,
            ops::Precision::Bf16
        )
        .is_err());
        return;
    }
    let round = |t: &Tensor| t.to_dtype(DType::BF16).unwrap().to_dtype(DType::F32).unwrap();
    // (n, cin, h, w, cout, k, stride, pad)
    let cases = [(4, 32, 8, 8, 64, 3, 1, 1), (4, 32, 8, 8, 64, 3, 2, 1), (4, 64, 8, 8, 32, 1, 1, 0), (3, 2, 7, 6, 4, 3, 1, 1)];
    for (i, &(n, cin, h, w, cout, k, s, p)) in cases.iter().enumerate() {
        let x = Var::from_tensor(&rand_tensor(&[n, cin, h, w], 40 + i as u64, DType::F32)).unwrap();
        let wt = Var::from_tensor(&rand_tensor(&[cout, cin, k, k], 50 + i as u64, DType::F32)).unwrap();
        let ours = ops::conv2d_with(&x, &wt, s, p, ops::Precision::Bf16).unwrap();
        let (xr, wr) = (Var::from_tensor(&round(&x)).unwrap(), Var::from_tensor(&round(&wt)).unwrap());
        let reference = ops::conv2d(&xr, &wr, s, p).unwrap();
        let f32_plain = ops::conv2d(&x, &wt, s, p).unwrap();
        let small = !ops::runs_in_bf16(cout, n * h * w / (s * s), cin * k * k, true);
        if small {
            assert_eq!(rel_err(&ours, &f32_plain), 0.0, "case {i}: small products stay f32");
            continue;
        }
        let e = rel_err(&ours, &reference);
        assert!(e < 1e-5, "case {i} forward rel err {e} against f32 on rounded operands");
        let e = rel_err(&ours, &f32_plain);
        assert!(e > 1e-6 && e < 2e-2, "case {i}: bf16 differs from f32 by rounding only ({e})");
        let r = rand_tensor(ours.dims(), 60 + i as u64, DType::F32);
        let g1 = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (&reference * &round(&r)).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v, vr) in [("input", &x, &xr), ("kernel", &wt, &wr)] {
            let e = rel_err(g1.get(v).unwrap(), g2.get(vr).unwrap());
            assert!(e < 1e-2, "case {i} {name} gradient rel err {e}");
        }
    }
}

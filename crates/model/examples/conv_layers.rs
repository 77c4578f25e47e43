//! GFLOP/s of one convolution layer shape at a time, forward and backward (input + kernel
//! gradients), for the direct NHWC kernels and the im2col path, interleaved: the per-layer view
//! behind `cargo xtask bench-epoch`. `xtask/torch/torch_conv_layers.py` measures PyTorch's
//! channels_last convolutions on the same shapes.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p dynaprune-model --example conv_layers [batch] [iters] [isa]`
//!
//! `isa` forces the direct kernels' instruction set (`avx512`, `avx2`, `portable`; default: the
//! fastest this CPU runs).

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use dynaprune_model::ops::{self, direct};

/// `(name, cin, h, cout, k, stride)`: the distinct convolution shapes of ResNet-8 on 1x28x28,
/// ResNet-20 and ResNet-18 on 3x32x32 (padding k / 2).
const SHAPES: [(&str, usize, usize, usize, usize, usize); 14] = [
    ("r20 stem", 3, 32, 16, 3, 1),
    ("r20/r8 16ch", 16, 32, 16, 3, 1),
    ("r20 16->32 s2", 16, 32, 32, 3, 2),
    ("r20 32ch", 32, 16, 32, 3, 1),
    ("r20 32->64 s2", 32, 16, 64, 3, 2),
    ("r20 64ch", 64, 8, 64, 3, 1),
    ("r18 64ch", 64, 32, 64, 3, 1),
    ("r18 64->128 s2", 64, 32, 128, 3, 2),
    ("r18 128ch", 128, 16, 128, 3, 1),
    ("r18 128->256 s2", 128, 16, 256, 3, 2),
    ("r18 256ch", 256, 8, 256, 3, 1),
    ("r18 256->512 s2", 256, 8, 512, 3, 2),
    ("r18 512ch", 512, 4, 512, 3, 1),
    ("r18 1x1 256->512 s2", 256, 8, 512, 1, 2),
];

fn rand(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: usize, what: &str| {
        args.get(i)
            .map_or(default, |a| a.parse().unwrap_or_else(|_| panic!("{what}: expected a whole number, got {a:?}")))
    };
    let (n, iters) = (number(0, 64, "batch"), number(1, 5, "iters"));
    let isa = match args.get(2) {
        None => direct::Isa::best(),
        Some(a) => direct::Isa::ALL
            .into_iter()
            .find(|i| i.name() == a)
            .unwrap_or_else(|| panic!("isa: expected one of avx512, avx2, portable, got {a:?}")),
    };
    direct::check_isa(isa).unwrap_or_else(|e| panic!("isa: {e}"));
    println!(
        "# batch {n}, median of {iters} interleaved rounds, threads {}, direct kernels {}",
        rayon::current_num_threads(),
        isa.name()
    );
    println!("layer\tpath\tfwd_gflops\tbwd_gflops\tdx_gflops (bwd - dw)\tdw_gflops");
    for (name, cin, h, cout, k, s) in SHAPES {
        let p = k / 2;
        let ho = (h + 2 * p - k) / s + 1;
        let flops = 2.0 * (n * cout * cin * k * k * ho * ho) as f64;
        let x = rand(&[n, cin, h, h], 1);
        let w = Var::from_tensor(&rand(&[cout, cin, k, k], 2)).unwrap();
        let r = rand(&[n, cout, ho, ho], 3);
        let (xn, rn) = (
            x.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap(),
            r.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap(),
        );
        let (xv, xnv) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&xn).unwrap());
        let mut times: [[Vec<f64>; 3]; 2] = Default::default();
        for _ in 0..iters + 1 {
            for (pi, path) in ["direct", "im2col"].iter().enumerate() {
                let t = Instant::now();
                let y = if *path == "direct" {
                    direct::conv2d_nhwc(&xnv, &w, s, p, isa).unwrap()
                } else {
                    ops::conv2d(&xv, &w, s, p).unwrap()
                };
                let fwd = t.elapsed().as_secs_f64();
                let (xs, dys): (Vec<f32>, Vec<f32>) = if *path == "direct" {
                    (xn.flatten_all().unwrap().to_vec1().unwrap(), rn.flatten_all().unwrap().to_vec1().unwrap())
                } else {
                    (x.flatten_all().unwrap().to_vec1().unwrap(), r.flatten_all().unwrap().to_vec1().unwrap())
                };
                let ws: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
                let (xd, isa) = if *path == "direct" { (xn.dims(), Some(isa)) } else { (x.dims(), None) };
                let t = Instant::now();
                let (dx, dw) = direct::conv_backward_f32(&xs, xd, &ws, w.dims(), &dys, s, p, isa, true).unwrap();
                let bwd = t.elapsed().as_secs_f64();
                assert!(dx.len() == xs.len() && dw.len() == ws.len() && y.dims()[0] == n);
                let t = Instant::now();
                let (_, dw) = direct::conv_backward_f32(&xs, xd, &ws, w.dims(), &dys, s, p, isa, false).unwrap();
                let wgrad = t.elapsed().as_secs_f64();
                assert_eq!(dw.len(), ws.len());
                times[pi][2].push(wgrad);
                times[pi][0].push(fwd);
                times[pi][1].push(bwd);
            }
        }
        for (pi, path) in ["direct", "im2col"].iter().enumerate() {
            let med = |v: &mut Vec<f64>| {
                v.remove(0);
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let (f, b, wg) = (med(&mut times[pi][0]), med(&mut times[pi][1]), med(&mut times[pi][2]));
            let dx = (b - wg).max(1e-9);
            println!(
                "{name}\t{path}\t{:.1}\t{:.1}\t{:.1}\t{:.1}",
                flops / f / 1e9,
                2.0 * flops / b / 1e9,
                flops / dx / 1e9,
                flops / wg / 1e9
            );
        }
    }
}

//! Whole-network behaviour: gradients against finite differences, our kernels against Candle's,
//! learning (overfitting a batch), bit-exact reproducibility, checkpoints, schedules.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use dynaprune_model::{checkpoint, loss, Kernels, LrSchedule, Mode, Network, ResNet, ResNetConfig, Sgd, SgdConfig};
use rand::{Rng, SeedableRng};

fn tiny(in_ch: usize, classes: usize) -> ResNetConfig {
    ResNetConfig {
        name: "tiny".into(),
        widths: vec![2, 3],
        blocks: vec![1, 1],
        strides: vec![1, 2],
        in_channels: in_ch,
        classes,
    }
}

fn data(n: usize, c: usize, hw: usize, classes: u32, seed: u64, dtype: DType) -> (Tensor, Tensor) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f32> = (0..n * c * hw * hw).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes)).collect();
    (
        Tensor::from_vec(x, (n, c, hw, hw), &Device::Cpu).unwrap().to_dtype(dtype).unwrap(),
        Tensor::from_vec(y, n, &Device::Cpu).unwrap(),
    )
}

fn loss_of(model: &ResNet, x: &Tensor, y: &Tensor) -> Tensor {
    let logits = model.forward_mode(x, Mode::Train).unwrap();
    loss::cross_entropy_per_sample(&logits, y, 0.0).unwrap().sum_all().unwrap()
}

/// Central differences in f64 for a sample of parameter entries and input pixels, through
/// convolutions, BatchNorm (batch statistics), ReLU, the residual join, pooling and the head.
#[test]
fn gradients_match_finite_differences() {
    for kernels in [Kernels::Fast, Kernels::Candle, Kernels::Direct(dynaprune_model::ops::direct::Isa::Portable)] {
        let model = ResNet::with_dtype(tiny(1, 3), 7, DType::F64, &Device::Cpu, kernels).unwrap();
        let (x0, y) = data(3, 1, 6, 3, 1, DType::F64);
        let xv = Var::from_tensor(&x0).unwrap();
        let grads = loss_of(&model, &xv, &y).backward().unwrap();
        let eps = 1e-6;
        let mut checked = 0;
        for p in model.params() {
            let g: Vec<f64> = grads.get(&p.var).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let base: Vec<f64> = p.var.flatten_all().unwrap().to_vec1().unwrap();
            for i in (0..base.len()).step_by(1 + base.len() / 4) {
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[i] += d;
                    p.var.set(&Tensor::from_vec(v, p.var.dims(), &Device::Cpu).unwrap()).unwrap();
                    loss_of(&model, &x0, &y).to_scalar::<f64>().unwrap()
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                p.var.set(&Tensor::from_vec(base.clone(), p.var.dims(), &Device::Cpu).unwrap()).unwrap();
                assert!(
                    (numeric - g[i]).abs() < 1e-5 * (1.0 + numeric.abs()),
                    "{kernels:?} {}[{i}]: numeric {numeric} vs analytic {}",
                    p.name,
                    g[i]
                );
                checked += 1;
            }
        }
        let gx: Vec<f64> = grads.get(&xv).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let xb: Vec<f64> = x0.flatten_all().unwrap().to_vec1().unwrap();
        for i in (0..xb.len()).step_by(11) {
            let at = |d: f64| {
                let mut v = xb.clone();
                v[i] += d;
                loss_of(&model, &Tensor::from_vec(v, x0.dims(), &Device::Cpu).unwrap(), &y).to_scalar::<f64>().unwrap()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            assert!(
                (numeric - gx[i]).abs() < 1e-5 * (1.0 + numeric.abs()),
                "{kernels:?} input[{i}]: {numeric} vs {}",
                gx[i]
            );
        }
        assert!(checked > 20);
    }
}

fn rel(a: &Tensor, b: &Tensor) -> f64 {
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(a.iter().all(|v| v.is_finite()));
    (d / b.iter().map(|v| v.abs()).fold(1e-12, f32::max)) as f64
}

#[test]
fn fast_kernels_match_candle_kernels_on_resnet8() {
    let cfg = ResNetConfig::resnet8(3, 10);
    let fast = ResNet::new(cfg.clone(), 3, &Device::Cpu, Kernels::Fast).unwrap();
    let stock = ResNet::new(cfg, 3, &Device::Cpu, Kernels::Candle).unwrap();
    let (x, y) = data(8, 3, 16, 10, 2, DType::F32);
    for mode in [Mode::Train, Mode::Eval] {
        let (lf, ls) = (fast.forward_mode(&x, mode).unwrap(), stock.forward_mode(&x, mode).unwrap());
        assert!(rel(&lf, &ls) < 1e-4, "{mode:?} logits");
    }
    let gf = loss_of(&fast, &x, &y).backward().unwrap();
    let gs = loss_of(&stock, &x, &y).backward().unwrap();
    for (pf, ps) in fast.params().iter().zip(stock.params()) {
        let e = rel(gf.get(&pf.var).unwrap(), gs.get(&ps.var).unwrap());
        assert!(e < 1e-4, "{} gradient rel err {e}", pf.name);
    }
}

/// The direct NHWC kernels in a whole ResNet-8 (NCHW input, converted once): logits and every
/// parameter gradient within f32 rounding of the im2col network, bit-identical across the
/// instruction sets this CPU runs, and five training steps bit-identical at 1 and 2 threads.
#[test]
fn direct_kernels_match_im2col_on_resnet8() {
    use dynaprune_model::ops::direct::Isa;
    let cfg = ResNetConfig::resnet8(3, 10);
    let (x, y) = data(8, 3, 16, 10, 2, DType::F32);
    let mut first: Option<Vec<u32>> = None;
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        // Fresh pairs: each training-mode forward moves the running statistics eval mode uses.
        let fast = ResNet::new(cfg.clone(), 3, &Device::Cpu, Kernels::Fast).unwrap();
        let direct = ResNet::new(cfg.clone(), 3, &Device::Cpu, Kernels::Direct(isa)).unwrap();
        let mut all = Vec::new();
        for mode in [Mode::Eval, Mode::Train] {
            let (ld, lf) = (direct.forward_mode(&x, mode).unwrap(), fast.forward_mode(&x, mode).unwrap());
            assert!(rel(&ld, &lf) < 1e-4, "{isa:?} {mode:?} logits");
            all.extend(ld.flatten_all().unwrap().to_vec1::<f32>().unwrap().into_iter().map(f32::to_bits));
        }
        let gf = loss_of(&fast, &x, &y).backward().unwrap();
        let gd = loss_of(&direct, &x, &y).backward().unwrap();
        for (pd, pf) in direct.params().iter().zip(fast.params()) {
            let e = rel(gd.get(&pd.var).unwrap(), gf.get(&pf.var).unwrap());
            assert!(e < 1e-4, "{isa:?} {} gradient rel err {e}", pd.name);
            all.extend(
                gd.get(&pd.var).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap().into_iter().map(f32::to_bits),
            );
        }
        match &first {
            None => first = Some(all),
            Some(base) => assert!(&all == base, "{isa:?} differs from the first instruction set"),
        }
    }
    let run = || {
        let m = ResNet::new(cfg.clone(), 1, &Device::Cpu, Kernels::direct()).unwrap();
        train_steps(&m, 5, &x, &y, 0.05);
        weights(&m)
    };
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(run);
    let double = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap().install(run);
    assert_eq!(single, double, "1 and 2 threads train bit-identically");
}

/// Mixed precision: our bf16 kernels stay within bf16 rounding of the f32 network, and train,
/// with f32 weights. "Within rounding" is measured, not guessed: at initialisation, with batch
/// statistics on 8 samples, these gradients are ill-conditioned (rounding only the *input* to
/// bf16 moves them by 8-30% of their largest entry), so each bf16 gradient must stay within 3x
/// that sensitivity and point the same way (cosine > 0.98), and the logits within 1%.
/// (`Kernels::CandleBf16`, the GPU's path, cannot run here: Candle's CPU backend has no bf16
/// matmul; scripts/gpu-check/run.sh benchmarks it.)
#[test]
fn bf16_kernels_stay_within_rounding_of_f32() {
    let Ok(kernels) = Kernels::Fast.with_precision(dynaprune_model::Precision::Bf16) else {
        assert!(!dynaprune_model::ops::bf16_available(), "refused only without AVX512_BF16");
        return;
    };
    assert_eq!(kernels, Kernels::FastBf16);
    assert_eq!(kernels.precision(), dynaprune_model::Precision::Bf16);
    let cfg = ResNetConfig::resnet8(3, 10);
    let f32_net = ResNet::new(cfg.clone(), 3, &Device::Cpu, Kernels::Fast).unwrap();
    let (x, y) = data(8, 3, 16, 10, 2, DType::F32);
    let reference = f32_net.forward_mode(&x, Mode::Train).unwrap();
    let g_ref = loss_of(&f32_net, &x, &y).backward().unwrap();
    let x_rounded = x.to_dtype(DType::BF16).unwrap().to_dtype(DType::F32).unwrap();
    let g_probe = loss_of(&f32_net, &x_rounded, &y).backward().unwrap();
    let net = ResNet::new(cfg, 3, &Device::Cpu, kernels).unwrap();
    let logits = net.forward_mode(&x, Mode::Train).unwrap();
    assert_eq!(logits.dtype(), DType::F32);
    let e = rel(&logits, &reference);
    assert!(e > 1e-7 && e < 1e-2, "logits rel err {e}");
    let g = loss_of(&net, &x, &y).backward().unwrap();
    let dot = |a: &Tensor, b: &Tensor| (a * b).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    for (p, pr) in net.params().iter().zip(f32_net.params()) {
        assert_eq!(p.var.dtype(), DType::F32, "master weights stay f32");
        let (a, b) = (g.get(&p.var).unwrap(), g_ref.get(&pr.var).unwrap());
        let sensitivity = rel(g_probe.get(&pr.var).unwrap(), b);
        let e = rel(a, b);
        assert!(
            e < (3.0 * sensitivity).max(1e-2),
            "{} gradient rel err {e} (input rounding alone: {sensitivity})",
            p.name
        );
        let cos = dot(a, b) / (dot(a, a) * dot(b, b)).sqrt();
        assert!(cos > 0.98, "{} gradient cosine {cos}", p.name);
    }
    let losses = train_steps(&net, 15, &x, &y, 0.05);
    assert!(losses[14] < 0.5 * losses[0], "trains: {losses:?}");
}

fn train_steps(model: &ResNet, steps: usize, x: &Tensor, y: &Tensor, lr: f64) -> Vec<f32> {
    let mut opt = Sgd::from_params(model.params(), SgdConfig { lr, ..SgdConfig::default() }).unwrap();
    let mut losses = Vec::new();
    for _ in 0..steps {
        let logits = model.forward(x, true).unwrap();
        let per = loss::cross_entropy_per_sample(&logits, y, 0.0).unwrap();
        let l = loss::weighted_mean(&per, None).unwrap();
        losses.push(l.to_scalar::<f32>().unwrap());
        opt.backward_step(&l).unwrap();
    }
    losses
}

#[test]
fn a_tiny_resnet_overfits_a_batch_of_64() {
    let cfg = ResNetConfig::resnet8(1, 10).width_multiplier(0.5).unwrap();
    let model = ResNet::new(cfg, 11, &Device::Cpu, Kernels::Fast).unwrap();
    let (x, y) = data(64, 1, 12, 10, 5, DType::F32);
    let losses = train_steps(&model, 60, &x, &y, 0.05);
    let acc =
        loss::correct(&model.forward(&x, true).unwrap(), &y).unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(acc, 1.0, "train accuracy after 60 steps (losses {:?} -> {:?})", losses[0], losses.last());
    // Eval mode (running statistics) agrees on most of it too.
    let eval_acc =
        loss::correct(&model.forward(&x, false).unwrap(), &y).unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(eval_acc > 0.8, "eval accuracy {eval_acc}");
}

fn weights(model: &ResNet) -> Vec<u32> {
    model
        .params()
        .iter()
        .flat_map(|p| p.var.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .map(f32::to_bits)
        .collect()
}

#[test]
fn same_seed_gives_bit_identical_weights_after_training() {
    let (x, y) = data(32, 1, 14, 10, 9, DType::F32);
    let run = |seed| {
        let m = ResNet::new(ResNetConfig::resnet8(1, 10), seed, &Device::Cpu, Kernels::Fast).unwrap();
        train_steps(&m, 5, &x, &y, 0.05);
        weights(&m)
    };
    let init = |seed| weights(&ResNet::new(ResNetConfig::resnet8(1, 10), seed, &Device::Cpu, Kernels::Fast).unwrap());
    assert_eq!(init(1), init(1));
    assert_ne!(init(1), init(2));
    assert_eq!(run(1), run(1), "same seed, same data: bit-identical after 5 steps");
    // The thread count does not change the result either (fixed work split, ordered reductions).
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| run(1));
    assert_eq!(single, run(1));
}

#[test]
fn checkpoints_roundtrip_and_reject_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let (x, y) = data(16, 1, 10, 10, 3, DType::F32);
    let a = ResNet::new(ResNetConfig::resnet8(1, 10), 1, &Device::Cpu, Kernels::Fast).unwrap();
    let mut opt = Sgd::from_params(a.params(), SgdConfig::default()).unwrap();
    for _ in 0..2 {
        let l =
            loss::weighted_mean(&loss::cross_entropy_per_sample(&a.forward(&x, true).unwrap(), &y, 0.0).unwrap(), None)
                .unwrap();
        opt.backward_step(&l).unwrap();
    }
    checkpoint::save(&path, &a, Some(&opt)).unwrap();
    let b = ResNet::new(ResNetConfig::resnet8(1, 10), 99, &Device::Cpu, Kernels::Fast).unwrap();
    let mut opt_b = Sgd::from_params(b.params(), SgdConfig::default()).unwrap();
    checkpoint::load(&path, &b, Some(&mut opt_b)).unwrap();
    assert_eq!(weights(&a), weights(&b));
    assert_eq!(
        a.forward(&x, false).unwrap().to_vec2::<f32>().unwrap(),
        b.forward(&x, false).unwrap().to_vec2::<f32>().unwrap()
    );
    // One more identical step from both keeps them identical (momentum restored too).
    for (m, o) in [(&a, &mut opt), (&b, &mut opt_b)] {
        let l =
            loss::weighted_mean(&loss::cross_entropy_per_sample(&m.forward(&x, true).unwrap(), &y, 0.0).unwrap(), None)
                .unwrap();
        o.backward_step(&l).unwrap();
    }
    assert_eq!(weights(&a), weights(&b));
    // Another architecture, a corrupt file, a missing file: clear errors naming the file.
    let other = ResNet::new(ResNetConfig::resnet20(1, 10), 1, &Device::Cpu, Kernels::Fast).unwrap();
    let before = weights(&other);
    let e = checkpoint::load(&path, &other, None).unwrap_err().to_string();
    assert!(e.contains("ck.safetensors") && e.contains("`resnet8`") && e.contains("`resnet20`"), "both names: {e}");
    assert_eq!(weights(&other), before, "nothing was loaded half-way");
    std::fs::write(&path, b"not a checkpoint").unwrap();
    assert!(checkpoint::load(&path, &b, None).unwrap_err().to_string().contains("ck.safetensors"));
    let e = checkpoint::load(&dir.path().join("none.safetensors"), &b, None).unwrap_err().to_string();
    assert!(e.contains("none.safetensors"), "a missing checkpoint is named: {e}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left behind: {leftovers:?}");
}

#[test]
fn schedules_follow_progress() {
    assert_eq!(LrSchedule::Constant.lr(0.1, 0.7), 0.1);
    assert!((LrSchedule::Cosine.lr(0.1, 0.5) - 0.05).abs() < 1e-12);
    assert!(LrSchedule::Cosine.lr(0.1, 1.0).abs() < 1e-12);
    let step = LrSchedule::parse("step").unwrap();
    assert_eq!((step.lr(1.0, 0.49), step.lr(1.0, 0.5), step.lr(1.0, 0.8)), (1.0, 0.1, 0.1f64.powi(2)));
    let custom = LrSchedule::parse("step:0.3,0.6").unwrap();
    assert!((custom.lr(1.0, 0.7) - 0.04).abs() < 1e-12);
    let oc = LrSchedule::parse("onecycle").unwrap();
    assert!((oc.lr(1.0, 0.0) - 0.04).abs() < 1e-12 && (oc.lr(1.0, 0.25) - 1.0).abs() < 1e-12 && oc.lr(1.0, 1.0) < 1e-5);
    assert!(
        LrSchedule::parse("warp").is_err()
            && LrSchedule::parse("step:0.5,x").is_err()
            && LrSchedule::parse("step:1.5").is_err()
    );
    // Progress counts epochs, whatever the number of batches in them.
    assert_eq!(dynaprune_model::schedule::progress(1, 4, 9, 10), 0.5);
    assert_eq!(dynaprune_model::schedule::progress(1, 4, 4, 5), 0.5);
}

#[test]
fn configs_and_devices_are_validated() {
    assert!(ResNetConfig::by_name("resnet7", 1, 10).is_err());
    assert!(ResNetConfig::resnet8(1, 10).width_multiplier(0.0).is_err());
    let bad = ResNetConfig { classes: 0, ..ResNetConfig::resnet8(1, 10) };
    assert!(ResNet::new(bad, 0, &Device::Cpu, Kernels::Fast).is_err());
    assert!(dynaprune_model::device::parse("tpu").is_err());
    if !dynaprune_model::device::cuda_compiled() {
        let e = dynaprune_model::device::parse("cuda").unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }
    // The count, by architecture (3x3 stem without max-pool, BasicBlocks [2, 2, 2, 2], 1x1
    // projection shortcuts where the shape changes, BatchNorm weight + bias, no conv bias):
    //   def bn(c): return 2 * c
    //   p = 3*3*3*64 + bn(64); inp = 64
    //   for planes, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
    //       for b in range(2):
    //           s = stride if b == 0 else 1
    //           p += 3*3*inp*planes + bn(planes) + 3*3*planes*planes + bn(planes)
    //           if s != 1 or inp != planes: p += inp*planes + bn(planes)
    //           inp = planes
    //   p += 512*10 + 10; print(p)   # 11173962
    // It agrees with the widely quoted 11.17M of the kuangliu/pytorch-cifar ResNet18.
    let m = ResNet::new(ResNetConfig::resnet18(3, 10), 0, &Device::Cpu, Kernels::Fast).unwrap();
    assert_eq!(m.num_params(), 11_173_962, "CIFAR ResNet-18 parameter count");
}

/// Every truncation of a real checkpoint, and arbitrary bytes, are errors naming the file, never
/// a panic or a half-loaded model.
#[test]
fn truncated_or_garbage_checkpoints_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let m = ResNet::new(ResNetConfig::resnet8(1, 10).width_multiplier(0.25).unwrap(), 0, &Device::Cpu, Kernels::Fast)
        .unwrap();
    checkpoint::save(&path, &m, None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let step = (bytes.len() / 300).max(1);
    for len in (0..bytes.len()).step_by(step).chain([1, 7, 8, 9, bytes.len() - 1]) {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let e = checkpoint::load(&path, &m, None).expect_err("a truncated checkpoint must not load");
        assert!(e.to_string().contains("model.safetensors"), "{len}: {e}");
    }
    let mut z: u32 = 12345;
    for trial in 0..200 {
        let junk: Vec<u8> = (0..(trial * 13 % 500))
            .map(|_| {
                z = z.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (z >> 24) as u8
            })
            .collect();
        std::fs::write(&path, &junk).unwrap();
        assert!(checkpoint::load(&path, &m, None).is_err(), "trial {trial}");
    }
}

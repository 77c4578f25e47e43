//! How much of a VGG-11 training step is Candle's max-pool (it has no fast CPU version of ours).
//!
//! Times, at batch 128 on 3x32x32 inputs with our fast kernels, a whole training step (forward,
//! per-sample loss, backward, SGD) and, separately, the forward and backward of `max_pool2d` alone
//! on the five activation shapes VGG-11 pools (64x32x32 ... 512x2x2); prints both medians and the
//! share. Run it on an otherwise idle machine:
//!
//! ```sh
//! cargo run --release -p dynaprune-harness --example maxpool_share -- [threads] [iters]
//! ```

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer;
use dynaprune_harness::models::{self, BuildSpec};
use dynaprune_model::{loss, Sgd, SgdConfig};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..iters)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args.get(1).map_or(Ok(2), |s| s.parse())?;
    let iters: usize = args.get(2).map_or(Ok(5), |s| s.parse())?;
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global()?;
    let (batch, device) = (128, Device::Cpu);
    let model = models::build("vgg11", &BuildSpec::new(3, 32, 32, 10, 0, &device))?;
    let x = Tensor::randn(0f32, 1.0, (batch, 3, 32, 32), &device)?;
    let y = Tensor::from_vec((0..batch as u32).map(|i| i % 10).collect::<Vec<_>>(), batch, &device)?;
    let mut opt = Sgd::from_params(model.params(), SgdConfig { lr: 0.01, ..SgdConfig::default() })?;
    let step = time(iters, || {
        let logits = model.forward(&x, true).unwrap();
        let l = loss::weighted_mean(&loss::cross_entropy_per_sample(&logits, &y, 0.0).unwrap(), None).unwrap();
        opt.backward_step(&l).unwrap();
    });
    let mut pool = 0.0;
    for (c, hw) in [(64, 32), (128, 16), (256, 8), (512, 4), (512, 2)] {
        let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, (batch, c, hw, hw), &device)?)?;
        let g = Tensor::randn(0f32, 1.0, (batch, c, hw / 2, hw / 2), &device)?;
        pool += time(iters, || {
            let p = a.as_tensor().max_pool2d(2).unwrap();
            let grads = (p * &g).unwrap().sum_all().unwrap().backward().unwrap();
            grads.get(&a).unwrap().to_dtype(DType::F32).unwrap();
        });
    }
    println!(
        "vgg11 cifar batch={batch} threads={threads}: train step {:.1} ms, max-pool forward+backward {:.1} ms ({:.1}% of the step)",
        1e3 * step,
        1e3 * pool,
        100.0 * pool / step
    );
    Ok(())
}

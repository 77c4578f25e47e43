//! Weight initialisation from our own seeded generator (Candle's CPU generator cannot be seeded).
//!
//! Each parameter draws from its own stream, `ChaCha8(seed)` with the stream id set to a hash of
//! the parameter's name, so the same seed gives bit-identical weights on every run and adding a
//! layer does not change the others' initial values.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;

fn name_stream(name: &str) -> u64 {
    dynaprune::rng::fnv1a(name.as_bytes())
}

/// The generator for parameter `name` under `seed`.
pub fn param_rng(seed: u64, name: &str) -> rand_chacha::ChaCha8Rng {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(name_stream(name));
    rng
}

/// Kaiming (He) normal with `std = sqrt(2 / fan_out)`, as torchvision's ResNets initialise convs
/// (`kaiming_normal_(mode="fan_out", nonlinearity="relu")`). `shape` is `(Cout, Cin, kh, kw)`.
pub fn kaiming_normal_fan_out(shape: &[usize], seed: u64, name: &str, dtype: DType, device: &Device) -> Result<Tensor> {
    let fan_out = shape[0] * shape[2..].iter().product::<usize>();
    let std = (2.0 / fan_out as f64).sqrt();
    let mut rng = param_rng(seed, name);
    let n: usize = shape.iter().product();
    let v: Vec<f64> =
        (0..n).map(|_| std * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
}

/// PyTorch's default for `nn.Linear` weights and biases: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
pub fn uniform_fan_in(
    shape: &[usize],
    fan_in: usize,
    seed: u64,
    name: &str,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let mut rng = param_rng(seed, name);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
}

//! Device selection. CPU is the default; CUDA needs the crate's `cuda` feature (see the README's
//! "CUDA" section for building it without a GPU: `cargo xtask cuda-env`).

use candle_core::Device;

use crate::error::{ModelError, Result};

/// `cpu`, `cuda` or `cuda:N`.
pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| ModelError::Config(format!("bad CUDA device `{s}`: expected cuda or cuda:N")))?,
                None => 0,
            };
            if !cuda_compiled() {
                return Err(ModelError::Config(
                    "this binary was built without CUDA support: rebuild with `--features cuda` (see README, section CUDA)".into(),
                ));
            }
            Device::new_cuda(ordinal).map_err(|e| ModelError::Config(format!("cannot open CUDA device {ordinal}: {e}")))
        }
        other => Err(ModelError::Config(format!("unknown device `{other}`: expected cpu, cuda or cuda:N"))),
    }
}

/// `true` if candle was built with CUDA.
pub fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

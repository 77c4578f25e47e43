//! Saving and loading a model (parameters and BatchNorm statistics) and its optimizer (momentum
//! buffers) as one safetensors file, written atomically (temporary file, then rename).

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

use crate::error::{ModelError, Result};
use crate::optim::Sgd;
use crate::resnet::ResNet;

fn ck(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Checkpoint { path: path.to_path_buf(), message: message.into() }
}

/// Writes `model` (and `optimizer` if given) to `path`, atomically.
pub fn save(path: &Path, model: &ResNet, optimizer: Option<&Sgd>) -> Result<()> {
    let mut map: HashMap<String, Tensor> = HashMap::new();
    for p in model.params() {
        map.insert(format!("param.{}", p.name), p.var.as_tensor().clone());
    }
    for (n, t) in model.buffers() {
        map.insert(format!("buffer.{n}"), t);
    }
    if let Some(o) = optimizer {
        for (n, t) in o.state() {
            map.insert(format!("optim.{n}"), t);
        }
    }
    // The same bytes `candle_core::safetensors::save` writes, written atomically.
    let bytes = safetensors::serialize(&map, None).map_err(|e| ck(path, format!("cannot serialise: {e}")))?;
    dynaprune::io::write_atomic(path, &bytes).map_err(|e| ck(path, e.to_string()))
}

/// Loads a file written by [`save`] into `model` (and `optimizer`). Every parameter and
/// statistic must be present with the right shape; unknown entries are an error too, so a
/// checkpoint of another architecture is never half-loaded.
pub fn load(path: &Path, model: &ResNet, mut optimizer: Option<&mut Sgd>) -> Result<()> {
    let tensors = candle_core::safetensors::load(path, model.device())
        .map_err(|e| ck(path, format!("not a readable safetensors file: {e}")))?;
    let mut seen = 0usize;
    for p in model.params() {
        let key = format!("param.{}", p.name);
        let t =
            tensors.get(&key).ok_or_else(|| ck(path, format!("missing `{key}` (a checkpoint of another model?)")))?;
        if t.dims() != p.var.dims() {
            return Err(ck(path, format!("`{key}` has shape {:?}, the model expects {:?}", t.dims(), p.var.dims())));
        }
        p.var.set(&t.to_dtype(p.var.dtype())?)?;
        seen += 1;
    }
    for (n, cur) in model.buffers() {
        let key = format!("buffer.{n}");
        let t = tensors.get(&key).ok_or_else(|| ck(path, format!("missing `{key}`")))?;
        if t.dims() != cur.dims() {
            return Err(ck(path, format!("`{key}` has shape {:?}, expected {:?}", t.dims(), cur.dims())));
        }
        model.set_buffer(&n, t.to_dtype(cur.dtype())?);
        seen += 1;
    }
    for (key, t) in &tensors {
        if let Some(name) = key.strip_prefix("optim.") {
            seen += 1;
            if let Some(o) = optimizer.as_deref_mut() {
                if !o.set_state(name, t.clone())? {
                    return Err(ck(path, format!("`{key}` matches no parameter")));
                }
            }
        }
    }
    if seen != tensors.len() {
        return Err(ck(path, format!("{} unexpected entries (a checkpoint of another model?)", tensors.len() - seen)));
    }
    Ok(())
}

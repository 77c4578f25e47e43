//! Saving and loading a model (parameters and BatchNorm statistics) and its optimizer (momentum
//! buffers) as one safetensors file, written atomically (temporary file, then rename). Works on
//! any [`Network`]; the file's metadata records the architecture, and loading a checkpoint of
//! another architecture fails with both names before anything is changed.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

use crate::error::{ModelError, Result};
use crate::network::Network;
use crate::optim::Sgd;

/// The safetensors metadata key holding [`Network::architecture`].
pub const ARCHITECTURE_KEY: &str = "dynaprune.architecture";

fn ck(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Checkpoint { path: path.to_path_buf(), message: message.into() }
}

/// Writes `model` (and `optimizer` if given) to `path`, atomically.
pub fn save(path: &Path, model: &dyn Network, optimizer: Option<&Sgd>) -> Result<()> {
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
    // What `candle_core::safetensors::save` writes, plus the metadata, written atomically.
    let metadata = HashMap::from([(ARCHITECTURE_KEY.to_string(), model.architecture().to_string())]);
    let bytes = safetensors::serialize(&map, Some(metadata)).map_err(|e| ck(path, format!("cannot serialise: {e}")))?;
    dynaprune_io::write_atomic(path, &bytes).map_err(|e| ck(path, e.to_string()))
}

/// Loads a file written by [`save`] into `model` (and `optimizer`). Every parameter and
/// statistic must be present with the right shape; unknown entries are an error too, so a
/// checkpoint of another architecture is never half-loaded. A file without the architecture
/// entry (written before it existed) is checked by names and shapes alone.
pub fn load(path: &Path, model: &dyn Network, mut optimizer: Option<&mut Sgd>) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| ck(path, format!("cannot read: {e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| ck(path, format!("not a readable safetensors file: {e}")))?;
    if let Some(saved) = header.metadata().as_ref().and_then(|m| m.get(ARCHITECTURE_KEY)) {
        if saved != model.architecture() {
            return Err(ck(
                path,
                format!("a checkpoint of `{saved}` cannot be loaded into `{}`", model.architecture()),
            ));
        }
    }
    let tensors = candle_core::safetensors::load_buffer(&bytes, model.device())
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

//! Per-sample losses and scores from logits: what training back-propagates and what the pruning
//! policies observe.

use candle_core::{DType, Tensor, D};

use crate::error::{ModelError, Result};

/// Per-sample cross-entropy `(N,)` of logits `(N, K)` against labels `(N,)` u32, differentiable.
/// With `label_smoothing = e`, the target is `(1 - e) * one_hot + e / K` (PyTorch's definition).
pub fn cross_entropy_per_sample(logits: &Tensor, labels: &Tensor, label_smoothing: f64) -> Result<Tensor> {
    if !(0.0..1.0).contains(&label_smoothing) {
        return Err(ModelError::Config(format!("label smoothing must be in [0, 1), got {label_smoothing}")));
    }
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let nll = logp.gather(&labels.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?.squeeze(1)?.neg()?;
    if label_smoothing == 0.0 {
        return Ok(nll);
    }
    let uniform = logp.mean(D::Minus1)?.neg()?;
    Ok(((nll * (1.0 - label_smoothing))? + (uniform * label_smoothing)?)?)
}

/// The loss to back-propagate: `sum(w_i * loss_i) / N` (InfoBatch's convention), or the plain
/// mean without weights.
pub fn weighted_mean(losses: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
    Ok(match weights {
        None => losses.mean_all()?,
        Some(w) => (losses * w.to_dtype(losses.dtype())?)?.mean_all()?,
    })
}

/// EL2N per sample (Paul et al., 2021): the L2 norm of `softmax(logits) - one_hot(label)`.
/// Not differentiable (detached).
pub fn el2n(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let logits = logits.detach();
    let k = logits.dim(1)?;
    let p = candle_nn::ops::softmax(&logits, D::Minus1)?;
    let one_hot = one_hot(labels, k, p.dtype())?;
    Ok((p - one_hot)?.sqr()?.sum(1)?.sqrt()?)
}

/// `1` where the arg-max of the logits is the label, else `0` (f32, `(N,)`).
pub fn correct(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let pred = logits.detach().argmax(D::Minus1)?;
    Ok(pred.eq(&labels.to_dtype(pred.dtype())?)?.to_dtype(DType::F32)?)
}

/// Each sample's confidence: its largest softmax probability (f32, `(N,)`, detached). What
/// KAKURENBO compares with its threshold.
pub fn confidence(logits: &Tensor) -> Result<Tensor> {
    let p = candle_nn::ops::softmax(&logits.detach(), D::Minus1)?;
    Ok(p.max(D::Minus1)?.to_dtype(DType::F32)?)
}

/// One-hot rows `(N, k)`.
pub fn one_hot(labels: &Tensor, k: usize, dtype: DType) -> Result<Tensor> {
    let n = labels.dim(0)?;
    let idx = labels.to_dtype(DType::U32)?.unsqueeze(1)?;
    let zeros = Tensor::zeros((n, k), dtype, labels.device())?;
    let ones = Tensor::ones((n, 1), dtype, labels.device())?;
    Ok(zeros.scatter_add(&idx, &ones, 1)?)
}

//! Static scorers, each a real computation whose wall and CPU time are measured and charged to
//! every run that uses its scores:
//! - **EL2N** (Paul et al., 2021): mean over `k` models, each trained on full data for `e`
//!   epochs (with the learning-rate schedule of the full run, stopped early as in the Data Diet
//!   recipe), of `||softmax(f(x)) - onehot(y)||_2` in eval mode, without augmentation.
//! - **GraNd** (same paper), two variants, labelled:
//!   `grand` = the norm of the per-sample gradient of the loss with respect to *all* parameters,
//!   at initialisation, mean over `k` initialisations (one backward pass per sample: expensive);
//!   `grand-last-layer` = the common approximation with respect to the linear head only,
//!   `||softmax - onehot|| * sqrt(||features||^2 + 1)` (one forward pass).
//!   Both evaluate BatchNorm in inference mode (running statistics of a fresh network).
//! - **Forgetting** (Toneva et al., 2019): a full-data run; a forgetting event is a sample
//!   going from correctly to incorrectly classified between two consecutive presentations
//!   (training forward passes); never-learned samples score +infinity.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Tensor;
use dynaprune_model::{loss, Mode, Network};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{ScorerArg, Settings};
use crate::run::engine::{self, Env};
use crate::{models, output, resources, seeds};
use dynaprune_data::BatchSpec;

/// Scores and their provenance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoreInfo {
    /// The scorer (`el2n`, `grand`, `grand-last-layer`, `forgetting`).
    pub scorer: String,
    /// A description of exactly what was computed.
    pub label: String,
    /// Dataset name.
    pub dataset: String,
    /// Model name.
    pub model: String,
    /// Root seed.
    pub seed: u64,
    /// Training samples scored.
    pub samples: usize,
    /// Models / initialisations averaged.
    pub models: usize,
    /// Training epochs per model (EL2N, forgetting), 0 for GraNd.
    pub epochs: usize,
    /// Wall-clock seconds the scoring took.
    pub seconds: f64,
    /// Process CPU seconds (all threads) the scoring took: steadier than `seconds` on a shared
    /// machine. Absent from sidecars written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
}

/// What one scorer computed: scores, a description, models averaged, epochs per model.
type Scored = (Vec<f32>, String, usize, usize);

/// Computes `scorer`'s scores for the training split of `env`.
pub fn compute(scorer: ScorerArg, s: &Settings, env: &Env) -> Result<(Vec<f32>, ScoreInfo)> {
    let (start, cpu_start) = (Instant::now(), resources::process_cpu_s());
    let (scores, label, models_used, epochs) = match scorer {
        ScorerArg::El2n => el2n(s, env)?,
        ScorerArg::GrandLastLayer => grand_last_layer(s, env)?,
        ScorerArg::Grand => grand(s, env)?,
        ScorerArg::Forgetting => forgetting(s, env)?,
    };
    let info = ScoreInfo {
        scorer: scorer.as_str().to_string(),
        label,
        dataset: s.data.dataset.as_str().to_string(),
        model: s.model.name.clone(),
        seed: s.run.seed,
        samples: env.train.len(),
        models: models_used,
        epochs,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: Some(resources::process_cpu_s() - cpu_start).filter(|c| c.is_finite()),
    };
    Ok((scores, info))
}

/// Scorer model `i`: its own initialisation, derived from the run's seed.
fn scorer_model(s: &Settings, env: &Env, i: usize) -> Result<Box<dyn Network>> {
    models::build(&s.model.name, &env.model_spec(&s.model, seeds::derive_k(s.run.seed, seeds::SCORER, i as u64))?)
}

/// The mean over `k` scorer models of the per-sample values `f` gives for each.
fn mean_over_models(
    s: &Settings,
    env: &Env,
    k: usize,
    mut f: impl FnMut(&dyn Network) -> Result<Vec<(usize, f32)>>,
) -> Result<Vec<f32>> {
    let mut sum = vec![0f64; env.train.len()];
    for i in 0..k {
        let model = scorer_model(s, env, i)?;
        for (idx, v) in f(model.as_ref())? {
            sum[idx] += f64::from(v);
        }
    }
    Ok(sum.into_iter().map(|x| (x / k as f64) as f32).collect())
}

fn el2n(s: &Settings, env: &Env) -> Result<Scored> {
    let (k, e, batch) = (s.scoring.models, s.scoring.el2n_epochs, s.optim.batch_size);
    let scores = mean_over_models(s, env, k, |model| {
        train_full(env, model, s, e, |_, _, _| Ok(()))?;
        per_sample_eval(env, model, batch, |logits, labels| Ok(loss::el2n(logits, labels)?))
    })?;
    let label = format!("EL2N: mean over {k} models of the L2 norm of softmax minus one-hot, after {e} of {} epochs of full-data training, eval mode", s.optim.epochs);
    Ok((scores, label, k, e))
}

fn grand_last_layer(s: &Settings, env: &Env) -> Result<Scored> {
    let k = s.scoring.models;
    let scores = mean_over_models(s, env, k, |model| per_sample_last_layer_grad(env, model, s.optim.batch_size))?;
    let label = format!("GraNd, last-layer approximation: mean over {k} initialisations of ||softmax - onehot|| * sqrt(||features||^2 + 1), eval-mode BatchNorm");
    Ok((scores, label, k, 0))
}

fn grand(s: &Settings, env: &Env) -> Result<Scored> {
    let k = s.scoring.models;
    let scores =
        mean_over_models(s, env, k, |model| Ok(per_sample_full_grad(env, model)?.into_iter().enumerate().collect()))?;
    let label = format!("GraNd, full parameter gradient: mean over {k} initialisations of the per-sample gradient norm over all parameters, eval-mode BatchNorm");
    Ok((scores, label, k, 0))
}

fn forgetting(s: &Settings, env: &Env) -> Result<Scored> {
    let e = s.scoring.forgetting_epochs;
    let model = scorer_model(s, env, 0)?;
    let mut counter = ForgettingCounter::new(env.train.len());
    train_full(env, model.as_ref(), s, e, |indices, out, _| {
        let correct: Vec<bool> = out.correct.iter().map(|&c| c > 0.5).collect();
        counter.observe(indices, &correct);
        Ok(())
    })?;
    let label = format!("forgetting events over a {e}-epoch full-data run (correct -> incorrect between consecutive presentations); never learned = inf");
    Ok((counter.scores(), label, 1, e))
}

/// Full-data training of `model` for `epochs` epochs with the run's optimizer settings and
/// learning-rate schedule (over the run's `--epochs`, so a short run is an early stop of it).
fn train_full(
    env: &Env,
    model: &dyn Network,
    s: &Settings,
    epochs: usize,
    mut observe: impl FnMut(&[usize], &engine::StepOutput, usize) -> Result<()>,
) -> Result<()> {
    let mut opt = engine::optimizer(model, &s.optim)?;
    let n = env.train.len();
    for epoch in 0..epochs {
        let mut order: Vec<usize> = (0..n).collect();
        use rand::seq::SliceRandom;
        order.shuffle(&mut dynaprune::rng::stream(s.run.seed, "scorer-order", epoch as u64));
        let batches = BatchSpec::chunks(&order, s.optim.batch_size);
        engine::train_epoch(
            env,
            model,
            &mut opt,
            &s.optim,
            epoch,
            batches,
            1.0,
            engine::Wants::default(),
            |idx, out| observe(idx, out, epoch),
            |_, _, _| {},
        )?;
    }
    Ok(())
}

/// `(sample index, value)` of a per-sample function of the logits over the whole training set
/// (eval mode, no augmentation).
fn per_sample_eval(
    env: &Env,
    model: &dyn Network,
    batch: usize,
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Vec<(usize, f32)>> {
    let plan = engine::sequential_batches(env.train.len(), batch);
    let mut out = Vec::with_capacity(env.train.len());
    for b in env.train_plain.prefetch(0, plan, 2) {
        let b = b?;
        let logits = model.forward_mode(&b.images, Mode::Eval)?;
        let v = f(&logits, &b.labels)?.to_vec1::<f32>()?;
        out.extend(b.indices.iter().copied().zip(v));
    }
    Ok(out)
}

/// Last-layer gradient norms: for cross-entropy, the gradient with respect to the head's weight
/// is `(p - y) h^T` and to its bias `p - y`, so the norm is `||p - y|| * sqrt(||h||^2 + 1)`.
fn per_sample_last_layer_grad(env: &Env, model: &dyn Network, batch: usize) -> Result<Vec<(usize, f32)>> {
    let plan = engine::sequential_batches(env.train.len(), batch);
    let mut out = Vec::with_capacity(env.train.len());
    for b in env.train_plain.prefetch(0, plan, 2) {
        let b = b?;
        let (h, logits) = model.forward_with_features(&b.images, Mode::Eval)?;
        let v = last_layer_grad_norm(&h, &logits, &b.labels)?.to_vec1::<f32>()?;
        out.extend(b.indices.iter().copied().zip(v));
    }
    Ok(out)
}

/// Per-sample norm of the cross-entropy gradient with respect to the last linear layer's
/// weights and bias, from the penultimate features `h` `(N, D)` and the logits `(N, K)`: for one
/// sample the weight gradient is `h (p - y)^T` and the bias gradient `p - y`, so the norm is
/// exactly `||p - y|| * sqrt(||h||^2 + 1)` (GraNd's last-layer approximation; `||p - y||` is
/// EL2N).
pub fn last_layer_grad_norm(h: &Tensor, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let err = loss::el2n(logits, labels)?;
    let hn = (h.sqr()?.sum(1)? + 1.0)?.sqrt()?;
    Ok((err * hn)?)
}

/// Counts forgetting events (Toneva et al., 2019): a sample is *forgotten* when it was predicted
/// correctly at one presentation and incorrectly at the next. Samples never predicted correctly
/// score infinity (never learned: the hardest).
#[derive(Debug, Clone)]
pub struct ForgettingCounter {
    prev: Vec<Option<bool>>,
    learned: Vec<bool>,
    events: Vec<u32>,
}

impl ForgettingCounter {
    /// A counter for `n` samples.
    pub fn new(n: usize) -> Self {
        Self { prev: vec![None; n], learned: vec![false; n], events: vec![0; n] }
    }

    /// One presentation of `indices`, each predicted correctly or not.
    pub fn observe(&mut self, indices: &[usize], correct: &[bool]) {
        for (&i, &now) in indices.iter().zip(correct) {
            if self.prev[i] == Some(true) && !now {
                self.events[i] += 1;
            }
            self.learned[i] |= now;
            self.prev[i] = Some(now);
        }
    }

    /// Forgetting events per sample; infinity for samples never predicted correctly.
    pub fn scores(&self) -> Vec<f32> {
        self.events.iter().zip(&self.learned).map(|(&c, &l)| if l { c as f32 } else { f32::INFINITY }).collect()
    }
}

/// Full per-sample gradient norms: one forward/backward pass per sample, in parallel over
/// samples.
fn per_sample_full_grad(env: &Env, model: &dyn Network) -> Result<Vec<f32>> {
    let n = env.train.len();
    (0..n)
        .into_par_iter()
        .map(|i| -> Result<f32> {
            let b = env.train_plain.assemble(0, &[i], None)?;
            let logits = model.forward_mode(&b.images, Mode::EvalWithGrad)?;
            let l = loss::cross_entropy_per_sample(&logits, &b.labels, 0.0)?.sum_all()?;
            let grads = l.backward()?;
            let mut sq = 0f64;
            for p in model.params() {
                if let Some(g) = grads.get(&p.var) {
                    sq += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
                }
            }
            Ok(sq.sqrt() as f32)
        })
        .collect()
}

/// Writes scores as `index,score` CSV plus a `.json` sidecar with their provenance, atomically.
pub fn save(path: &Path, scores: &[f32], info: &ScoreInfo) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["index", "score"])?;
    for (i, s) in scores.iter().enumerate() {
        w.write_record([i.to_string(), s.to_string()])?;
    }
    output::write_atomic(path, &w.into_inner().context("serialising scores")?)?;
    output::write_json(&path.with_extension("json"), info)
}

/// Reads scores written by [`save`] (and their sidecar).
pub fn load(path: &Path) -> Result<(Vec<f32>, ScoreInfo)> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read score file {}", path.display()))?;
    let mut scores = Vec::new();
    for (row, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: row {}", path.display(), row + 2))?;
        let (Some(i), Some(s)) = (rec.get(0), rec.get(1)) else {
            anyhow::bail!("{}: row {} must have `index,score`", path.display(), row + 2)
        };
        let i: usize = i.parse().with_context(|| format!("{}: row {}: bad index `{i}`", path.display(), row + 2))?;
        if i != scores.len() {
            anyhow::bail!(
                "{}: row {}: expected index {}, found {i} (rows must be in index order)",
                path.display(),
                row + 2,
                scores.len()
            );
        }
        let v: f32 = s.parse().with_context(|| format!("{}: row {}: bad score `{s}`", path.display(), row + 2))?;
        if v.is_nan() {
            anyhow::bail!("{}: row {}: score is NaN", path.display(), row + 2);
        }
        scores.push(v);
    }
    let side = path.with_extension("json");
    let info: ScoreInfo = serde_json::from_slice(
        &std::fs::read(&side)
            .with_context(|| format!("cannot read {} (the score file's provenance and cost)", side.display()))?,
    )
    .with_context(|| format!("{} is not a score sidecar", side.display()))?;
    if info.samples != scores.len() {
        anyhow::bail!("{} says {} samples but {} has {}", side.display(), info.samples, path.display(), scores.len());
    }
    Ok((scores, info))
}

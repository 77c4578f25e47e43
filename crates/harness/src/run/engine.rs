//! The pieces every training job shares (the main run, EL2N's short runs, the forgetting run):
//! the data on its device, one epoch of SGD over a list of batches, and evaluation.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::Optimizer;
use dynaprune_data::{Augment, BatchAssembler, BatchSpec, ChannelStats, ImageDataset, Splits};
use dynaprune_model::{loss, schedule, Mode, Network, Sgd, SgdConfig};

use crate::config::{ModelSettings, OptimSettings};
use crate::models::BuildSpec;
use crate::seeds;

/// The datasets, their normalisation and the batch assemblers.
#[derive(Debug)]
pub struct Env {
    /// Training split.
    pub train: Arc<ImageDataset>,
    /// Test split.
    pub test: Arc<ImageDataset>,
    /// Training-split channel statistics (used to normalise both splits).
    pub stats: ChannelStats,
    /// Assembles augmented training batches.
    pub train_batches: BatchAssembler,
    /// Assembles un-augmented batches of the training split (scoring passes).
    pub train_plain: BatchAssembler,
    /// Assembles test batches.
    pub test_batches: BatchAssembler,
    /// The device.
    pub device: Device,
}

impl Env {
    /// Wraps loaded splits for `device`, with `augment` on training batches drawn from the run's
    /// root `seed`.
    pub fn new(splits: Splits, augment: Augment, seed: u64, device: &Device) -> Result<Self> {
        let stats = splits.train.channel_stats();
        let train = Arc::new(splits.train);
        let test = Arc::new(splits.test);
        let aug_seed = seeds::derive(seed, seeds::AUGMENT);
        Ok(Self {
            train_batches: BatchAssembler::new(train.clone(), &stats, augment, aug_seed, device.clone())?,
            train_plain: BatchAssembler::new(train.clone(), &stats, Augment::NONE, 0, device.clone())?,
            test_batches: BatchAssembler::new(test.clone(), &stats, Augment::NONE, 0, device.clone())?,
            train,
            test,
            stats,
            device: device.clone(),
        })
    }
}

impl Env {
    /// What a model constructor needs to fit this data: its shape and classes, `--width`, the
    /// device, and the seed of the weights.
    pub fn model_spec(&self, model: &ModelSettings, seed: u64) -> Result<BuildSpec> {
        let shape = self.train.shape();
        Ok(BuildSpec {
            width_multiplier: model.width,
            kernels: model.kernels,
            ..BuildSpec::new(shape.channels, shape.height, shape.width, self.train.classes(), seed, &self.device)
        })
    }
}

/// The optimizer of a run.
pub fn optimizer(model: &dyn Network, o: &OptimSettings) -> Result<Sgd> {
    Ok(Sgd::from_params(
        model.params(),
        SgdConfig {
            lr: o.lr,
            momentum: o.momentum,
            nesterov: o.nesterov,
            weight_decay: o.weight_decay,
            decay_bias_and_norm: false,
        },
    )?)
}

/// What one training step reports per sample.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// Per-sample cross-entropy (before the step).
    pub losses: Vec<f32>,
    /// 1 where the prediction was right.
    pub correct: Vec<f32>,
    /// Per-sample EL2N, when asked for.
    pub el2n: Option<Vec<f32>>,
    /// Per-sample confidence (largest softmax probability), when asked for.
    pub confidence: Option<Vec<f32>>,
}

/// What the per-sample outputs of a step should include beyond losses and correctness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// EL2N (`--score el2n`).
    pub el2n: bool,
    /// Confidence (rules that read predictions, e.g. KAKURENBO).
    pub confidence: bool,
}

impl StepOutput {
    /// The per-sample outputs of `logits` against `labels`; `losses` are already computed.
    fn new(losses: &Tensor, logits: &Tensor, labels: &Tensor, wants: Wants) -> Result<Self> {
        Ok(Self {
            losses: losses.to_vec1::<f32>()?,
            correct: loss::correct(logits, labels)?.to_vec1::<f32>()?,
            el2n: if wants.el2n { Some(loss::el2n(logits, labels)?.to_vec1::<f32>()?) } else { None },
            confidence: if wants.confidence { Some(loss::confidence(logits)?.to_vec1::<f32>()?) } else { None },
        })
    }
}

/// Time and counts of one epoch of training.
#[derive(Debug, Clone, Default)]
pub struct EpochTotals {
    /// Waiting for batches (assembly runs ahead in the background).
    pub data_s: f64,
    /// Forward, backward and optimizer step.
    pub compute_s: f64,
    /// Handing per-sample values to the caller (score updates).
    pub observe_s: f64,
    /// Samples trained on.
    pub samples: usize,
    /// Sum of per-sample losses.
    pub loss_sum: f64,
    /// Correct predictions.
    pub correct: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
}

/// Trains `model` for one epoch over `batches` (sample indices and optional loss weights),
/// setting the learning rate from training progress, times `lr_factor` (a rule's request, e.g.
/// KAKURENBO's; 1 otherwise). `observe` sees each batch's indices and per-sample outputs; its
/// time is counted separately. `on_batch` is called after each batch (progress display).
#[allow(clippy::too_many_arguments)]
pub fn train_epoch(
    env: &Env,
    model: &dyn Network,
    opt: &mut Sgd,
    o: &OptimSettings,
    epoch: usize,
    batches: Vec<BatchSpec>,
    lr_factor: f64,
    wants: Wants,
    mut observe: impl FnMut(&[usize], &StepOutput) -> Result<()>,
    mut on_batch: impl FnMut(usize, usize, f64),
) -> Result<EpochTotals> {
    let n_batches = batches.len();
    let mut t = EpochTotals::default();
    let mut loader = env.train_batches.prefetch(epoch, batches, 2);
    for b in 0..n_batches {
        let t0 = Instant::now();
        let batch = loader.next().context("the batch loader stopped early")??;
        let t1 = Instant::now();
        let pos = Position { epoch, batch: b, batches: n_batches };
        let (out, lr) = train_step(
            env,
            model,
            opt,
            o,
            pos,
            lr_factor,
            &batch.images,
            &batch.labels,
            batch.weights.as_deref(),
            wants,
        )?;
        let t2 = Instant::now();
        observe(&batch.indices, &out)?;
        let t3 = Instant::now();
        t.data_s += (t1 - t0).as_secs_f64();
        t.compute_s += (t2 - t1).as_secs_f64();
        t.observe_s += (t3 - t2).as_secs_f64();
        t.add(&out, lr);
        on_batch(b + 1, n_batches, t.loss_sum / t.samples.max(1) as f64);
    }
    Ok(t)
}

/// Where a step sits in training: its epoch, and its batch among the epoch's batches (the
/// learning rate follows this progress).
#[derive(Debug, Clone, Copy)]
struct Position {
    epoch: usize,
    batch: usize,
    batches: usize,
}

/// One SGD step on `images` / `labels` (optional loss weights) at `pos`: the learning rate from
/// training progress times `lr_factor`, forward, weighted loss, backward, step. Returns the
/// per-sample outputs and the learning rate.
#[allow(clippy::too_many_arguments)]
fn train_step(
    env: &Env,
    model: &dyn Network,
    opt: &mut Sgd,
    o: &OptimSettings,
    pos: Position,
    lr_factor: f64,
    images: &Tensor,
    labels: &Tensor,
    weights: Option<&[f32]>,
    wants: Wants,
) -> Result<(StepOutput, f64)> {
    let Position { epoch, batch: b, batches: n_batches } = pos;
    let lr = o.schedule.lr(o.lr, schedule::progress(epoch, o.epochs, b, n_batches)) * lr_factor;
    opt.set_learning_rate(lr);
    let logits = model.forward(images, true)?;
    let per = loss::cross_entropy_per_sample(&logits, labels, o.label_smoothing)?;
    let weights = match weights {
        Some(w) => Some(Tensor::from_slice(w, w.len(), &env.device)?),
        None => None,
    };
    let l = loss::weighted_mean(&per, weights.as_ref())?;
    let lv = l.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
    if !lv.is_finite() {
        bail!(
            "non-finite training loss ({lv}) at epoch {epoch}, batch {b} (learning rate {lr:.4}): training diverged. \
             Lower --lr, or check the data; the last good checkpoint is kept"
        );
    }
    opt.backward_step(&l)?;
    Ok((StepOutput::new(&per, &logits, labels, wants)?, lr))
}

impl EpochTotals {
    /// Adds one trained batch.
    fn add(&mut self, out: &StepOutput, lr: f64) {
        self.samples += out.losses.len();
        self.loss_sum += out.losses.iter().map(|&v| f64::from(v)).sum::<f64>();
        self.correct += out.correct.iter().map(|&v| f64::from(v)).sum::<f64>();
        self.lr = lr;
    }
}

/// The candidate passes of a batch-level rule's epoch ([`train_epoch_selective`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CandidateTotals {
    /// Samples that got a candidate (forward-only) pass.
    pub samples: usize,
    /// Seconds of those passes and of the selection.
    pub seconds: f64,
    /// Training batches stepped.
    pub steps: usize,
}

/// One epoch of Selective-Backprop: each batch of `batches` (the candidates) gets a forward-only,
/// eval-mode pass; `selector` keeps some of its samples; kept samples queue up (the same
/// augmented images) and are trained on `batch_size` at a time, the learning rate following the
/// candidate batches' progress; what is left in the queue at the end of the epoch is trained on
/// as one smaller batch, so no chosen sample waits into the next epoch. A candidate batch that
/// keeps nothing costs only its forward pass. `observe` sees each trained batch.
#[allow(clippy::too_many_arguments)]
pub fn train_epoch_selective(
    env: &Env,
    model: &dyn Network,
    opt: &mut Sgd,
    o: &OptimSettings,
    epoch: usize,
    batches: Vec<BatchSpec>,
    selector: &mut dynaprune::BackpropSelector,
    wants: Wants,
    mut observe: impl FnMut(&[usize], &StepOutput) -> Result<()>,
    mut on_batch: impl FnMut(usize, usize, f64),
) -> Result<(EpochTotals, CandidateTotals)> {
    let n_batches = batches.len();
    let (mut t, mut c) = (EpochTotals::default(), CandidateTotals::default());
    let mut queue = Queue::default();
    let mut loader = env.train_batches.prefetch(epoch, batches, 2);
    for b in 0..n_batches {
        let t0 = Instant::now();
        let batch = loader.next().context("the batch loader stopped early")??;
        let t1 = Instant::now();
        let logits = model.forward_mode(&batch.images, Mode::Eval)?;
        let losses = loss::cross_entropy_per_sample(&logits, &batch.labels, 0.0)?.to_vec1::<f32>()?;
        let kept =
            selector.select(&losses).with_context(|| format!("Selective-Backprop at epoch {epoch}, batch {b}"))?;
        queue.push(&batch, &kept, &env.device)?;
        let t2 = Instant::now();
        t.data_s += (t1 - t0).as_secs_f64();
        c.seconds += (t2 - t1).as_secs_f64();
        c.samples += batch.len();
        let last = b + 1 == n_batches;
        while queue.len() >= o.batch_size || (last && queue.len() > 0) {
            let t3 = Instant::now();
            let (images, labels, indices) = queue.take(o.batch_size)?;
            let pos = Position { epoch, batch: b, batches: n_batches };
            let (out, lr) = train_step(env, model, opt, o, pos, 1.0, &images, &labels, None, wants)?;
            let t4 = Instant::now();
            observe(&indices, &out)?;
            t.compute_s += (t4 - t3).as_secs_f64();
            t.observe_s += t4.elapsed().as_secs_f64();
            t.add(&out, lr);
            c.steps += 1;
        }
        on_batch(b + 1, n_batches, t.loss_sum / t.samples.max(1) as f64);
    }
    Ok((t, c))
}

/// Kept samples waiting for a training batch: pieces of candidate batches, in order.
#[derive(Default)]
struct Queue {
    images: Vec<Tensor>,
    labels: Vec<Tensor>,
    indices: Vec<usize>,
}

impl Queue {
    fn len(&self) -> usize {
        self.indices.len()
    }

    /// Queues the rows `kept` of `batch`.
    fn push(&mut self, batch: &dynaprune_data::Batch, kept: &[usize], device: &Device) -> Result<()> {
        if kept.is_empty() {
            return Ok(());
        }
        let rows: Vec<u32> = kept.iter().map(|&p| p as u32).collect();
        let rows = Tensor::from_vec(rows, kept.len(), device)?;
        self.images.push(batch.images.index_select(&rows, 0)?);
        self.labels.push(batch.labels.index_select(&rows, 0)?);
        self.indices.extend(kept.iter().map(|&p| batch.indices[p]));
        Ok(())
    }

    /// The first `n` (or all, if fewer) queued samples as one batch.
    fn take(&mut self, n: usize) -> Result<(Tensor, Tensor, Vec<usize>)> {
        let n = n.min(self.len());
        let images = Tensor::cat(&self.images, 0)?;
        let labels = Tensor::cat(&self.labels, 0)?;
        let rest = self.len() - n;
        (self.images, self.labels) = if rest > 0 {
            (vec![images.narrow(0, n, rest)?], vec![labels.narrow(0, n, rest)?])
        } else {
            (Vec::new(), Vec::new())
        };
        let indices: Vec<usize> = self.indices.drain(..n).collect();
        Ok((images.narrow(0, 0, n)?.contiguous()?, labels.narrow(0, 0, n)?.contiguous()?, indices))
    }
}

/// A forward-only, eval-mode pass over the training samples `indices` (no augmentation): each
/// batch's indices and per-sample outputs, for re-scoring samples a rule did not train on.
/// Eval-mode losses use the BatchNorm running statistics, so they differ slightly from the
/// training-mode losses observed during training.
pub fn forward_outputs(
    model: &dyn Network,
    assembler: &BatchAssembler,
    indices: &[usize],
    batch: usize,
    wants: Wants,
) -> Result<Vec<(Vec<usize>, StepOutput)>> {
    let plan = BatchSpec::chunks(indices, batch);
    let mut out = Vec::with_capacity(plan.len());
    for b in assembler.prefetch(0, plan, 2) {
        let b = b?;
        let logits = model.forward_mode(&b.images, Mode::Eval)?;
        let per = loss::cross_entropy_per_sample(&logits, &b.labels, 0.0)?;
        out.push((b.indices.clone(), StepOutput::new(&per, &logits, &b.labels, wants)?));
    }
    Ok(out)
}

/// Unweighted batches of `0..n` in order.
pub fn sequential_batches(n: usize, batch: usize) -> Vec<BatchSpec> {
    BatchSpec::chunks(&(0..n).collect::<Vec<_>>(), batch)
}

/// Mean loss and accuracy of `model` (eval mode) on all of `assembler`'s dataset.
pub fn evaluate(model: &dyn Network, assembler: &BatchAssembler, batch: usize) -> Result<(f64, f64)> {
    let n = assembler.dataset().len();
    let (mut loss_sum, mut correct) = (0f64, 0f64);
    let plan = sequential_batches(n, batch);
    for b in assembler.prefetch(0, plan, 2) {
        let b = b?;
        let logits = model.forward_mode(&b.images, Mode::Eval)?;
        loss_sum += loss::cross_entropy_per_sample(&logits, &b.labels, 0.0)?.sum_all()?.to_scalar::<f32>()? as f64;
        correct += loss::correct(&logits, &b.labels)?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    Ok((loss_sum / n.max(1) as f64, correct / n.max(1) as f64))
}

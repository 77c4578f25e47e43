//! Batches built from a list of sample indices (a pruning plan), and background prefetching.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::augment::{source_coord, Augment};
use crate::dataset::{ChannelStats, ImageDataset};
use crate::error::{DataError, Result};

/// A batch ready for the model. It carries its sample indices so per-sample losses can be
/// attributed back to the pruning policy.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Images, `(N, C, H, W)` f32, normalised per channel.
    pub images: Tensor,
    /// Labels, `(N,)` u32.
    pub labels: Tensor,
    /// The dataset index of each row.
    pub indices: Vec<usize>,
    /// Optional per-sample loss weights (from the plan).
    pub weights: Option<Vec<f32>>,
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    /// `true` if empty.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Turns sample indices into normalised (and optionally augmented) tensors.
#[derive(Debug, Clone)]
pub struct BatchAssembler {
    dataset: Arc<ImageDataset>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    augment: Augment,
    seed: u64,
    device: Device,
    parallel: bool,
}

impl BatchAssembler {
    /// An assembler over `dataset`, normalising with `stats` (usually the *training* split's),
    /// augmenting with `augment` (use [`Augment::NONE`] for evaluation) seeded by `seed`.
    pub fn new(
        dataset: Arc<ImageDataset>,
        stats: &ChannelStats,
        augment: Augment,
        seed: u64,
        device: Device,
    ) -> Result<Self> {
        let c = dataset.shape().channels;
        if stats.mean.len() != c || stats.std.len() != c {
            return Err(DataError::Invalid {
                name: "normalisation",
                message: format!("{} channels but {} means and {} stds", c, stats.mean.len(), stats.std.len()),
            });
        }
        if let Some(s) = stats.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(DataError::Invalid {
                name: "normalisation",
                message: format!("standard deviation {s} must be positive"),
            });
        }
        augment.validate(dataset.shape().height, dataset.shape().width)?;
        Ok(Self {
            mean: stats.mean.iter().map(|m| m * 255.0).collect(),
            inv_std: stats.std.iter().map(|s| 1.0 / (s * 255.0)).collect(),
            dataset,
            augment,
            seed,
            device,
            parallel: true,
        })
    }

    /// Use rayon to fill samples in parallel (default) or fill on the calling thread.
    pub fn with_parallel(mut self, parallel: bool) -> Self {
        self.parallel = parallel;
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<ImageDataset> {
        &self.dataset
    }

    /// The device batches are placed on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Writes the normalised, augmented images of `indices` into `out` (`len * C*H*W` floats).
    pub fn fill(&self, epoch: usize, indices: &[usize], out: &mut [f32]) -> Result<()> {
        let per = self.dataset.shape().len();
        if out.len() != indices.len() * per {
            return Err(DataError::Invalid {
                name: "batch buffer",
                message: format!("{} floats for {} samples of {per}", out.len(), indices.len()),
            });
        }
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.dataset.len()) {
            return Err(DataError::IndexOutOfRange { index: bad, len: self.dataset.len() });
        }
        let work = |(dst, &i): (&mut [f32], &usize)| self.fill_one(epoch, i, dst);
        if self.parallel && indices.len() > 1 {
            out.par_chunks_mut(per).zip(indices.par_iter()).with_min_len(8).for_each(work);
        } else {
            out.chunks_mut(per).zip(indices.iter()).for_each(work);
        }
        Ok(())
    }

    fn fill_one(&self, epoch: usize, index: usize, dst: &mut [f32]) {
        let shape = self.dataset.shape();
        let (c, h, w) = (shape.channels, shape.height, shape.width);
        let src = &self.dataset.pixels()[index * shape.len()..(index + 1) * shape.len()];
        if self.augment.is_none() {
            for ch in 0..c {
                let (m, s) = (self.mean[ch], self.inv_std[ch]);
                for (d, &p) in dst[ch * h * w..(ch + 1) * h * w].iter_mut().zip(&src[ch * h * w..(ch + 1) * h * w]) {
                    *d = (f32::from(p) - m) * s;
                }
            }
            return;
        }
        let (dy, dx, flip) = self.augment.draw(self.seed, epoch, index);
        let p = self.augment.crop_padding as isize;
        let pad = self.augment.padding;
        for ch in 0..c {
            let (m, s) = (self.mean[ch], self.inv_std[ch]);
            let plane = &src[ch * h * w..(ch + 1) * h * w];
            let zero = (0.0 - m) * s;
            for y in 0..h {
                let row = &mut dst[ch * h * w + y * w..ch * h * w + (y + 1) * w];
                match source_coord(y as isize + dy as isize - p, h, pad) {
                    None => row.fill(zero),
                    Some(sy) => {
                        let srow = &plane[sy * w..(sy + 1) * w];
                        for (x, d) in row.iter_mut().enumerate() {
                            let cx = if flip { w - 1 - x } else { x };
                            *d = match source_coord(cx as isize + dx as isize - p, w, pad) {
                                None => zero,
                                Some(sx) => (f32::from(srow[sx]) - m) * s,
                            };
                        }
                    }
                }
            }
        }
    }

    /// Builds the batch of `indices` for `epoch`, with optional loss weights.
    pub fn assemble(&self, epoch: usize, indices: &[usize], weights: Option<&[f32]>) -> Result<Batch> {
        if let Some(w) = weights {
            if w.len() != indices.len() {
                return Err(DataError::Invalid {
                    name: "batch weights",
                    message: format!("{} weights for {} samples", w.len(), indices.len()),
                });
            }
        }
        let shape = self.dataset.shape();
        let mut buf = vec![0f32; indices.len() * shape.len()];
        self.fill(epoch, indices, &mut buf)?;
        let labels: Vec<u32> = indices.iter().map(|&i| self.dataset.labels()[i]).collect();
        let n = indices.len();
        let images = Tensor::from_vec(buf, (n, shape.channels, shape.height, shape.width), &Device::Cpu)?;
        let labels = Tensor::from_vec(labels, n, &Device::Cpu)?;
        let (images, labels) = if self.device.is_cpu() {
            (images, labels)
        } else {
            (images.to_device(&self.device)?, labels.to_device(&self.device)?)
        };
        Ok(Batch { images, labels, indices: indices.to_vec(), weights: weights.map(<[f32]>::to_vec) })
    }

    /// Assembles `batches` on a background thread, at most `depth` ahead of the consumer, so the
    /// next batch is ready while the model computes.
    pub fn prefetch(&self, epoch: usize, batches: Vec<BatchSpec>, depth: usize) -> Prefetch {
        let (tx, rx) = sync_channel(depth.max(1));
        let me = self.clone();
        let handle = std::thread::Builder::new()
            .name("dynaprune-prefetch".into())
            .spawn(move || {
                for spec in batches {
                    let b = me.assemble(epoch, &spec.indices, spec.weights.as_deref());
                    let stop = b.is_err();
                    if tx.send(b).is_err() || stop {
                        break;
                    }
                }
            })
            .expect("spawning the prefetch thread");
        Prefetch { rx: Some(rx), handle: Some(handle) }
    }
}

/// What to put in one batch: sample indices and optional per-sample loss weights (a pruning
/// plan's batch, owned so it can cross to the prefetch thread).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchSpec {
    /// Sample indices, in batch order.
    pub indices: Vec<usize>,
    /// Loss weights aligned with `indices` (`None`: all 1).
    pub weights: Option<Vec<f32>>,
}

impl BatchSpec {
    /// A batch of `indices`, unweighted.
    pub fn unweighted(indices: Vec<usize>) -> Self {
        Self { indices, weights: None }
    }

    /// Consecutive unweighted batches of at most `size` over `indices`, in order.
    pub fn chunks(indices: &[usize], size: usize) -> Vec<Self> {
        indices.chunks(size).map(|c| Self::unweighted(c.to_vec())).collect()
    }
}

/// Batches produced in the background by [`BatchAssembler::prefetch`], in order.
#[derive(Debug)]
pub struct Prefetch {
    rx: Option<Receiver<Result<Batch>>>,
    handle: Option<JoinHandle<()>>,
}

impl Iterator for Prefetch {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Dropping the receiver makes the producer's next send fail, so it stops.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

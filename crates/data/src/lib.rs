//! # dynaprune-data — datasets, augmentation and index-carrying batches
//!
//! Loads CIFAR-10, CIFAR-100 (binary versions) and IDX datasets such as Fashion-MNIST (gzipped
//! or raw), validating every byte count, magic number and label; augments with a draw that is a
//! pure function of `(seed, epoch, sample index)`; and assembles batches from a pruning plan's
//! sample indices, in parallel and ahead of time.
//!
//! ```
//! use std::sync::Arc;
//! use candle_core::Device;
//! use dynaprune_data::{synthetic, Augment, BatchAssembler, ImageShape};
//!
//! # fn main() -> dynaprune_data::Result<()> {
//! // Real data: `DatasetKind::FashionMnist.load(Path::new("data"))?`. Here: generated.
//! let splits = synthetic(ImageShape { channels: 1, height: 28, width: 28 }, 10, 256, 64, 7)?;
//! let stats = splits.train.channel_stats();
//! let train = Arc::new(splits.train);
//! let assembler = BatchAssembler::new(train, &stats, Augment::LIGHT, 42, Device::Cpu)?;
//! let plan = vec![5usize, 17, 3, 250];                  // indices chosen by a pruning policy
//! let batch = assembler.assemble(0, &plan, None)?;
//! assert_eq!(batch.images.dims(), &[4, 1, 28, 28]);
//! assert_eq!(batch.indices, plan);                      // losses can be attributed back
//! # Ok(()) }
//! ```
//!
//! ## Map
//! - [`idx`]: IDX reader; [`cifar`]: CIFAR binary records.
//! - [`dataset`]: [`ImageDataset`] (u8 images + labels, shape, classes, channel statistics),
//!   [`Splits`], [`DatasetKind`] and its loaders, and [`synthetic`] generated data.
//! - [`augment`]: [`Augment`] (random crop with zero or reflect padding, horizontal flip).
//! - [`batch`]: [`BatchAssembler`], [`BatchSpec`] (what goes in a batch: indices and loss
//!   weights), [`Batch`] and the background [`Prefetch`].
//! - [`write`](mod@write): writers for every format, for test fixtures (this crate's tests, the fuzz tests,
//!   xtask's download tests) so no binary blobs live in git.
//! - `fuzz` (tests only): arbitrary bytes and truncations through every reader.
//!
//! ## What we took from candle-datasets, and why not more
//! `candle_datasets::vision::cifar::load_dir` reads the CIFAR-10 binary files in the right
//! orientation (`C x H x W`), but reads a fixed 10,000 records per file without checking the file
//! size or the labels, and returns f32 tensors (4x the memory of `u8`); its Hub/parquet loader
//! returns images transposed (it permutes `(N, H, W, C)` with `(0, 3, 2, 1)`, giving
//! `(N, C, W, H)`) and needs the network. Its MNIST reader needs uncompressed files. We therefore
//! read all formats ourselves and use candle-datasets, behind the optional `candle-datasets`
//! feature, as an independent cross-check of our CIFAR-10 and IDX readers (see
//! `tests/candle_datasets.rs`, run with `--features candle-datasets`).

pub mod augment;
pub mod batch;
pub mod cifar;
pub mod dataset;
mod error;
pub mod idx;
pub mod write;

#[cfg(test)]
mod fuzz;

pub use augment::{Augment, Padding};
pub use batch::{Batch, BatchAssembler, BatchSpec, Prefetch};
pub use cifar::Cifar100Labels;
pub use dataset::{
    load_cifar10, load_cifar100, load_fashion_mnist, synthetic, ChannelStats, DatasetKind, ImageDataset, ImageShape,
    Splits,
};
pub use error::{DataError, Result};

//! Loading the dataset named on the command line, with the "where is it" logic and clear errors.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use dynaprune_data::{synthetic, DatasetKind, ImageShape, Splits};

use crate::config::{DataSettings, DatasetArg};

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// The directory to load from: `--data-dir`, else `data/`, else (Fashion-MNIST) Debian's copy.
pub fn resolve_dir(args: &DataSettings) -> PathBuf {
    if let Some(d) = &args.dir {
        return d.clone();
    }
    let local = PathBuf::from("data");
    if args.dataset == DatasetArg::FashionMnist {
        let has_local = local.join("fashion-mnist").is_dir() || local.join("train-images-idx3-ubyte.gz").exists();
        if !has_local && Path::new(DEBIAN_FASHION_MNIST).join("train-images-idx3-ubyte.gz").exists() {
            return PathBuf::from(DEBIAN_FASHION_MNIST);
        }
    }
    local
}

/// Loads (or generates, from `seed`) the dataset and applies `--max-train-samples` /
/// `--max-test-samples`.
pub fn load(args: &DataSettings, seed: u64) -> Result<Splits> {
    let mut splits = match args.dataset {
        DatasetArg::Synthetic => synthetic(ImageShape { channels: 1, height: 16, width: 16 }, 4, 2048, 512, seed)?,
        DatasetArg::SyntheticCifar => {
            synthetic(ImageShape { channels: 3, height: 32, width: 32 }, 10, 4096, 1024, seed)?
        }
        other => {
            let kind = match other {
                DatasetArg::FashionMnist => DatasetKind::FashionMnist,
                DatasetArg::Cifar10 => DatasetKind::Cifar10,
                _ => DatasetKind::Cifar100,
            };
            let dir = resolve_dir(args);
            kind.load(&dir).with_context(|| format!("loading --dataset {} from {}", other.as_str(), dir.display()))?
        }
    };
    if args.max_train_samples > 0 && args.max_train_samples < splits.train.len() {
        splits.train = splits.train.subset(&(0..args.max_train_samples).collect::<Vec<_>>())?;
    }
    if args.max_test_samples > 0 && args.max_test_samples < splits.test.len() {
        splits.test = splits.test.subset(&(0..args.max_test_samples).collect::<Vec<_>>())?;
    }
    Ok(splits)
}

//! In-memory image datasets and the loaders for each supported dataset.

use std::path::{Path, PathBuf};

use crate::cifar::{read_records, Cifar100Labels, PIXELS};
use crate::error::{format_err, DataError, Result};
use crate::idx::read_idx;

/// Channels, height and width of every image in a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageShape {
    /// Channels (1 or 3).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl ImageShape {
    /// Bytes (= values) per image.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }
    /// `true` for a zero-sized shape.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Images as `u8` (channel-major, row-major: `C x H x W`) with labels, addressed by sample index.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDataset {
    name: String,
    shape: ImageShape,
    classes: usize,
    images: Vec<u8>,
    labels: Vec<u32>,
}

/// Per-channel mean and standard deviation of pixel values scaled to `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Standard deviation per channel.
    pub std: Vec<f32>,
}

impl ImageDataset {
    /// Builds a dataset, checking that sizes and labels are consistent.
    pub fn new(
        name: impl Into<String>,
        shape: ImageShape,
        classes: usize,
        images: Vec<u8>,
        labels: Vec<u32>,
    ) -> Result<Self> {
        let name = name.into();
        let invalid = |message: String| DataError::Invalid { name: "dataset", message };
        if shape.is_empty() || classes == 0 {
            return Err(invalid(format!("{name}: empty image shape {shape:?} or zero classes")));
        }
        if images.len() != labels.len() * shape.len() {
            return Err(invalid(format!(
                "{name}: {} image bytes for {} labels of shape {shape:?} (expected {})",
                images.len(),
                labels.len(),
                labels.len() * shape.len()
            )));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
            return Err(invalid(format!("{name}: sample {i} has label {l}, expected 0..{}", classes - 1)));
        }
        Ok(Self { name, shape, classes, images, labels })
    }

    /// A short name, e.g. `fashion-mnist/train`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// `true` if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Image shape.
    pub fn shape(&self) -> ImageShape {
        self.shape
    }
    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }
    /// All labels.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.images
    }
    /// The pixels of sample `i` (`C x H x W`).
    pub fn image(&self, i: usize) -> Result<&[u8]> {
        if i >= self.len() {
            return Err(DataError::IndexOutOfRange { index: i, len: self.len() });
        }
        let s = self.shape.len();
        Ok(&self.images[i * s..(i + 1) * s])
    }
    /// The label of sample `i`.
    pub fn label(&self, i: usize) -> Result<u32> {
        self.labels.get(i).copied().ok_or(DataError::IndexOutOfRange { index: i, len: self.len() })
    }
    /// Number of samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }

    /// Per-channel mean and standard deviation over all pixels, scaled to `[0, 1]`.
    pub fn channel_stats(&self) -> ChannelStats {
        let (c, hw) = (self.shape.channels, self.shape.height * self.shape.width);
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for img in self.images.chunks_exact(self.shape.len()) {
            for ch in 0..c {
                let (mut s, mut q) = (0u64, 0u64);
                for &p in &img[ch * hw..(ch + 1) * hw] {
                    s += u64::from(p);
                    q += u64::from(p) * u64::from(p);
                }
                sum[ch] += s as f64;
                sq[ch] += q as f64;
            }
        }
        let n = (self.len() * hw).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n / 255.0).collect();
        let std =
            sq.iter().zip(&mean).map(|(q, m)| ((q / n / (255.0 * 255.0) - m * m).max(0.0)).sqrt() as f32).collect();
        ChannelStats { mean: mean.into_iter().map(|m| m as f32).collect(), std }
    }

    /// A new dataset with the samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let s = self.shape.len();
        let mut images = Vec::with_capacity(indices.len() * s);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i)?);
            labels.push(self.labels[i]);
        }
        Self::new(format!("{}[subset]", self.name), self.shape, self.classes, images, labels)
    }
}

/// A train and a test split.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Training samples (what pruning selects from).
    pub train: ImageDataset,
    /// Held-out test samples.
    pub test: ImageDataset,
}

/// The datasets dynaprune knows how to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// Fashion-MNIST: 60,000 + 10,000 grey 28x28 images, 10 classes (IDX files).
    FashionMnist,
    /// CIFAR-10: 50,000 + 10,000 colour 32x32 images, 10 classes (binary version).
    Cifar10,
    /// CIFAR-100: 50,000 + 10,000 colour 32x32 images, 100 fine classes (binary version).
    Cifar100,
}

impl DatasetKind {
    /// The name used on the command line and in `data/`: `fashion-mnist`, `cifar10`, `cifar100`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
        }
    }

    /// The sub-directory of the data directory holding the files.
    pub fn subdir(self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar-10-batches-bin",
            DatasetKind::Cifar100 => "cifar-100-binary",
        }
    }

    /// Loads both splits from `data_dir` (which holds [`DatasetKind::subdir`], or is that
    /// directory itself).
    pub fn load(self, data_dir: &Path) -> Result<Splits> {
        match self {
            DatasetKind::FashionMnist => load_fashion_mnist(data_dir),
            DatasetKind::Cifar10 => load_cifar10(data_dir),
            DatasetKind::Cifar100 => load_cifar100(data_dir, Cifar100Labels::Fine),
        }
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "fashion-mnist" | "fashion_mnist" | "fmnist" => Ok(DatasetKind::FashionMnist),
            "cifar10" | "cifar-10" => Ok(DatasetKind::Cifar10),
            "cifar100" | "cifar-100" => Ok(DatasetKind::Cifar100),
            other => Err(format!("unknown dataset `{other}`: expected fashion-mnist, cifar10 or cifar100")),
        }
    }
}

/// Resolves the directory holding a dataset's files: `dir/<subdir>` if it exists, else `dir`.
fn dataset_dir(dir: &Path, subdir: &str) -> PathBuf {
    let nested = dir.join(subdir);
    if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// Finds `name` or `name.gz` in `dir`.
fn find_idx(dir: &Path, name: &str, what: &str) -> Result<PathBuf> {
    for cand in [dir.join(format!("{name}.gz")), dir.join(name)] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(DataError::Missing {
        what: what.to_string(),
        path: dir.join(format!("{name}[.gz]")),
        hint: "run `cargo xtask fetch fashion-mnist` (or `apt-get install dataset-fashion-mnist` and pass \
               --data-dir /usr/share/datasets/fashion-mnist)"
            .into(),
    })
}

/// Loads an IDX image/label pair as one split.
pub fn load_idx_split(images: &Path, labels: &Path, name: &str, classes: usize) -> Result<ImageDataset> {
    let img = read_idx(images, 3)?;
    let lab = read_idx(labels, 1)?;
    let (n, h, w) = (img.dims[0], img.dims[1], img.dims[2]);
    if lab.dims[0] != n {
        return Err(format_err(labels, format!("has {} labels but {} has {n} images", lab.dims[0], images.display())));
    }
    if let Some((i, &l)) = lab.data.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(format_err(labels, format!("label {l} at index {i} is out of range: expected 0..{}", classes - 1)));
    }
    let labels_u32 = lab.data.iter().map(|&l| u32::from(l)).collect();
    ImageDataset::new(name, ImageShape { channels: 1, height: h, width: w }, classes, img.data, labels_u32)
}

/// Fashion-MNIST from `dir` (or `dir/fashion-mnist`): the four standard IDX files, gzipped or raw.
/// Works directly on Debian's `/usr/share/datasets/fashion-mnist`.
pub fn load_fashion_mnist(dir: &Path) -> Result<Splits> {
    let d = dataset_dir(dir, "fashion-mnist");
    let what = "Fashion-MNIST";
    let train = load_idx_split(
        &find_idx(&d, "train-images-idx3-ubyte", what)?,
        &find_idx(&d, "train-labels-idx1-ubyte", what)?,
        "fashion-mnist/train",
        10,
    )?;
    let test = load_idx_split(
        &find_idx(&d, "t10k-images-idx3-ubyte", what)?,
        &find_idx(&d, "t10k-labels-idx1-ubyte", what)?,
        "fashion-mnist/test",
        10,
    )?;
    Ok(Splits { train, test })
}

fn cifar_missing(what: &str, path: PathBuf, which: &str) -> DataError {
    DataError::Missing {
        what: what.into(),
        path,
        hint: format!("run `cargo xtask fetch {which}`, or extract the binary archive from https://www.cs.toronto.edu/~kriz/cifar.html into the data directory"),
    }
}

fn cifar_shape() -> ImageShape {
    ImageShape { channels: 3, height: 32, width: 32 }
}

/// CIFAR-10 from `dir` (or `dir/cifar-10-batches-bin`).
pub fn load_cifar10(dir: &Path) -> Result<Splits> {
    let d = dataset_dir(dir, "cifar-10-batches-bin");
    let mut images = Vec::with_capacity(50_000 * PIXELS);
    let mut labels = Vec::with_capacity(50_000);
    for b in 1..=5 {
        let p = d.join(format!("data_batch_{b}.bin"));
        if !p.is_file() {
            return Err(cifar_missing("CIFAR-10", p, "cifar10"));
        }
        let (i, l) = read_records(&p, 1, 0, 10, 10_000)?;
        images.extend(i);
        labels.extend(l);
    }
    let tp = d.join("test_batch.bin");
    if !tp.is_file() {
        return Err(cifar_missing("CIFAR-10", tp, "cifar10"));
    }
    let (ti, tl) = read_records(&tp, 1, 0, 10, 10_000)?;
    Ok(Splits {
        train: ImageDataset::new("cifar10/train", cifar_shape(), 10, images, labels)?,
        test: ImageDataset::new("cifar10/test", cifar_shape(), 10, ti, tl)?,
    })
}

/// CIFAR-100 from `dir` (or `dir/cifar-100-binary`), with fine or coarse labels.
pub fn load_cifar100(dir: &Path, which: Cifar100Labels) -> Result<Splits> {
    let d = dataset_dir(dir, "cifar-100-binary");
    let (at, classes) = match which {
        Cifar100Labels::Coarse => (0, 20),
        Cifar100Labels::Fine => (1, 100),
    };
    let load = |file: &str, n: usize, name: &str| -> Result<ImageDataset> {
        let p = d.join(file);
        if !p.is_file() {
            return Err(cifar_missing("CIFAR-100", p, "cifar100"));
        }
        let (i, l) = read_records(&p, 2, at, classes, n)?;
        ImageDataset::new(name, cifar_shape(), classes, i, l)
    };
    Ok(Splits { train: load("train.bin", 50_000, "cifar100/train")?, test: load("test.bin", 10_000, "cifar100/test")? })
}

/// A small, learnable, generated dataset (no files involved): each class is a fixed random
/// pattern of blobs; samples are shifted, noisy copies, with a few hard (low-contrast) and a few
/// mislabelled ones. For tests and the smoke preset, never for reported results.
pub fn synthetic(shape: ImageShape, classes: usize, train: usize, test: usize, seed: u64) -> Result<Splits> {
    let mut counter = 0u64;
    let mut next = move || {
        counter += 1;
        dynaprune::rng::mix3(seed, 0x5851_F42D_4C95_7F2D, counter)
    };
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let protos: Vec<Vec<f32>> = (0..classes)
        .map(|_| {
            let mut p = vec![0f32; shape.len()];
            for _ in 0..4 {
                let (cy, cx) = ((next() % h as u64) as f32, (next() % w as u64) as f32);
                let ch = (next() % c as u64) as usize;
                let r = 1.5 + (next() % 3) as f32;
                for y in 0..h {
                    for x in 0..w {
                        let d2 = (y as f32 - cy).powi(2) + (x as f32 - cx).powi(2);
                        p[ch * h * w + y * w + x] += (-d2 / (2.0 * r * r)).exp();
                    }
                }
            }
            p
        })
        .collect();
    let mut make = |n: usize, name: &str| -> Result<ImageDataset> {
        let mut images = Vec::with_capacity(n * shape.len());
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let k = (next() % classes as u64) as usize;
            let contrast = if next() % 10 == 0 { 0.35 } else { 1.0 };
            let (dy, dx) = ((next() % 3) as isize - 1, (next() % 3) as isize - 1);
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        let (sy, sx) = (y as isize - dy, x as isize - dx);
                        let base = if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                            protos[k][ch * h * w + sy as usize * w + sx as usize]
                        } else {
                            0.0
                        };
                        let noise = ((next() % 1000) as f32 / 1000.0 - 0.5) * 0.5;
                        images.push(((0.15 + contrast * base * 0.7 + noise * 0.3) * 255.0).clamp(0.0, 255.0) as u8);
                    }
                }
            }
            let label = if next() % 50 == 0 { (next() % classes as u64) as usize } else { k };
            labels.push(label as u32);
        }
        ImageDataset::new(name, shape, classes, images, labels)
    };
    Ok(Splits { train: make(train, "synthetic/train")?, test: make(test, "synthetic/test")? })
}

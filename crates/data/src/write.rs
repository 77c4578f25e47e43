//! Writers for the on-disk formats: tests generate fixtures with them in the real formats (no
//! binary blobs in git). The smoke preset does not use them: it trains on `synthetic` data
//! generated in memory.

use std::io::Write;
use std::path::Path;

use crate::cifar::PIXELS;
use crate::dataset::{ImageDataset, Splits};
use crate::error::{io_err, DataError, Result};

/// Encodes an IDX file of unsigned bytes.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&(0x0800u32 | dims.len() as u32).to_be_bytes());
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Gzips bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// Writes `bytes` to `path` atomically ([`dynaprune_io::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    dynaprune_io::write_atomic(path, bytes).map_err(io_err(path))
}

/// Encodes CIFAR-10 records (1 label byte + 3,072 pixels each).
pub fn encode_cifar10(images: &[u8], labels: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(labels.len() * (1 + PIXELS));
    for (img, &l) in images.chunks_exact(PIXELS).zip(labels) {
        out.push(l as u8);
        out.extend_from_slice(img);
    }
    out
}

/// Encodes CIFAR-100 records (coarse label, fine label, 3,072 pixels).
pub fn encode_cifar100(images: &[u8], coarse: &[u32], fine: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fine.len() * (2 + PIXELS));
    for ((img, &c), &f) in images.chunks_exact(PIXELS).zip(coarse).zip(fine) {
        out.push(c as u8);
        out.push(f as u8);
        out.extend_from_slice(img);
    }
    out
}

fn check_cifar(ds: &ImageDataset, n: usize) -> Result<()> {
    let s = ds.shape();
    if (s.channels, s.height, s.width) != (3, 32, 32) || ds.len() != n {
        return Err(DataError::Invalid {
            name: "CIFAR export",
            message: format!("{}: need {n} images of 3x32x32, got {} of {s:?}", ds.name(), ds.len()),
        });
    }
    Ok(())
}

/// Writes a 50,000 + 10,000 image, 10-class dataset as `dir/cifar-10-batches-bin/`.
pub fn write_cifar10_dir(dir: &Path, splits: &Splits) -> Result<()> {
    check_cifar(&splits.train, 50_000)?;
    check_cifar(&splits.test, 10_000)?;
    let d = dir.join("cifar-10-batches-bin");
    let (tr, lab) = (splits.train.pixels(), splits.train.labels());
    for b in 0..5 {
        let r = b * 10_000..(b + 1) * 10_000;
        let bytes = encode_cifar10(&tr[r.start * PIXELS..r.end * PIXELS], &lab[r]);
        write_atomic(&d.join(format!("data_batch_{}.bin", b + 1)), &bytes)?;
    }
    write_atomic(&d.join("test_batch.bin"), &encode_cifar10(splits.test.pixels(), splits.test.labels()))?;
    write_atomic(&d.join("batches.meta.txt"), b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n")
}

/// Writes a 50,000 + 10,000 image, 100-class dataset as `dir/cifar-100-binary/` (coarse label =
/// fine label / 5).
pub fn write_cifar100_dir(dir: &Path, splits: &Splits) -> Result<()> {
    check_cifar(&splits.train, 50_000)?;
    check_cifar(&splits.test, 10_000)?;
    let d = dir.join("cifar-100-binary");
    for (ds, file) in [(&splits.train, "train.bin"), (&splits.test, "test.bin")] {
        let coarse: Vec<u32> = ds.labels().iter().map(|l| l / 5).collect();
        write_atomic(&d.join(file), &encode_cifar100(ds.pixels(), &coarse, ds.labels()))?;
    }
    Ok(())
}

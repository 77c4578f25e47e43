//! CIFAR-10 and CIFAR-100 in their binary versions.
//!
//! CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` ... `data_batch_5.bin` and
//! `test_batch.bin`, 10,000 records each of 1 label byte (0-9) and 3,072 pixel bytes (1,024 red,
//! then green, then blue, each row-major 32x32). CIFAR-100 (`cifar-100-binary/`): `train.bin`
//! (50,000 records) and `test.bin` (10,000) of 1 coarse label (0-19), 1 fine label (0-99) and
//! 3,072 pixel bytes.

use std::path::Path;

use crate::error::{format_err, io_err, Result};

/// Bytes of one image.
pub const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR-100 label to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cifar100Labels {
    /// The 100 fine classes (the usual benchmark).
    #[default]
    Fine,
    /// The 20 superclasses.
    Coarse,
}

/// Parses one CIFAR binary file. `label_bytes` is 1 (CIFAR-10) or 2 (CIFAR-100); `label_at` picks
/// which of them is the label; `classes` bounds it; `records` is the exact record count expected.
pub(crate) fn read_records(
    path: &Path,
    label_bytes: usize,
    label_at: usize,
    classes: usize,
    records: usize,
) -> Result<(Vec<u8>, Vec<u32>)> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let rec = label_bytes + PIXELS;
    if bytes.len() != rec * records {
        let whole = bytes.len() / rec;
        let extra = bytes.len() % rec;
        return Err(format_err(
            path,
            format!(
                "expected {records} records of {rec} bytes ({} bytes) but the file has {} bytes ({whole} whole records{}): truncated, corrupt, or not a CIFAR{} binary file",
                rec * records,
                bytes.len(),
                if extra > 0 { format!(" plus {extra} stray bytes") } else { String::new() },
                if label_bytes == 1 { "-10" } else { "-100" }
            ),
        ));
    }
    let mut images = Vec::with_capacity(records * PIXELS);
    let mut labels = Vec::with_capacity(records);
    for (r, chunk) in bytes.chunks_exact(rec).enumerate() {
        if label_bytes == 2 {
            // Validate both label bytes: coarse < 20, fine < 100.
            let (coarse, fine) = (chunk[0] as usize, chunk[1] as usize);
            if coarse >= 20 || fine >= 100 {
                return Err(format_err(
                    path,
                    format!("record {r} has coarse label {coarse} / fine label {fine}, expected < 20 / < 100"),
                ));
            }
        }
        let label = chunk[label_at] as usize;
        if label >= classes {
            return Err(format_err(path, format!("record {r} has label {label}, expected 0..{}", classes - 1)));
        }
        labels.push(label as u32);
        images.extend_from_slice(&chunk[label_bytes..]);
    }
    Ok((images, labels))
}

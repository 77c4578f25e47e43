//! IDX files (MNIST, Fashion-MNIST), gzipped or raw.
//!
//! Format: big-endian magic `0x0000_08DD` where `08` is the element type (unsigned byte) and `DD`
//! the number of dimensions, then one `u32` size per dimension, then the data. Labels are 1-D
//! (`0x0000_0801`), images 3-D (`0x0000_0803`). A file is gzipped if it starts with `1f 8b`.

use std::io::Read;
use std::path::Path;

use crate::error::{format_err, io_err, Result};

/// The content of an IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Size of each dimension.
    pub dims: Vec<usize>,
    /// The data, row-major.
    pub data: Vec<u8>,
}

/// Reads a whole file, transparently gunzipping it.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(io_err(path))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format_err(path, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX file with `expected_dims` dimensions of unsigned bytes.
pub fn read_idx(path: &Path, expected_dims: usize) -> Result<IdxArray> {
    let bytes = read_maybe_gz(path)?;
    parse_idx(path, &bytes, expected_dims)
}

pub(crate) fn parse_idx(path: &Path, bytes: &[u8], expected_dims: usize) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(format_err(path, format!("file has {} bytes, too short for an IDX header", bytes.len())));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let expected_magic = 0x0800 | expected_dims as u32;
    if magic != expected_magic {
        return Err(format_err(
            path,
            format!("bad IDX magic number {magic:#010x}: expected {expected_magic:#010x} (unsigned bytes, {expected_dims} dimensions)"),
        ));
    }
    let header = 4 + 4 * expected_dims;
    if bytes.len() < header {
        return Err(format_err(
            path,
            format!("truncated IDX header: {} bytes, expected at least {header}", bytes.len()),
        ));
    }
    let dims: Vec<usize> = (0..expected_dims)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected_len = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let data = &bytes[header..];
    match expected_len {
        Some(n) if n == data.len() => Ok(IdxArray { dims, data: data.to_vec() }),
        Some(n) => Err(format_err(
            path,
            format!(
                "IDX header declares dimensions {dims:?} = {n} bytes of data but the file has {} (truncated or corrupt)",
                data.len()
            ),
        )),
        None => Err(format_err(path, format!("IDX dimensions {dims:?} overflow"))),
    }
}

//! Fuzz-style property tests of the readers: arbitrary bytes and every truncation of a valid file
//! give a typed error naming the file, never a panic or a silently short dataset.

use std::path::Path;

use proptest::prelude::*;

use crate::cifar::read_records;
use crate::idx::{parse_idx, read_idx};
use crate::write::{encode_cifar10, encode_idx, gzip};

fn valid_idx() -> (Vec<usize>, Vec<u8>) {
    let dims = vec![7, 3, 4];
    let data: Vec<u8> = (0..7 * 3 * 4).map(|i| (i * 37 % 251) as u8).collect();
    (dims.clone(), encode_idx(&dims, &data))
}

#[test]
fn every_truncation_of_an_idx_file_is_an_error() {
    let (_, bytes) = valid_idx();
    let p = Path::new("t.idx");
    assert!(parse_idx(p, &bytes, 3).is_ok());
    for len in 0..bytes.len() {
        let e = parse_idx(p, &bytes[..len], 3).expect_err("a truncated IDX file must not parse");
        assert!(e.to_string().contains("t.idx"), "{e}");
    }
    // One byte too many is an error too (declared size against actual size).
    let mut long = bytes.clone();
    long.push(0);
    assert!(parse_idx(p, &long, 3).is_err());
}

#[test]
fn every_truncation_of_a_gzipped_idx_file_is_an_error() {
    let (_, bytes) = valid_idx();
    let gz = gzip(&bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-idx3-ubyte.gz");
    for len in 0..gz.len() {
        std::fs::write(&path, &gz[..len]).unwrap();
        let e = read_idx(&path, 3).expect_err("a truncated gzip stream must not parse");
        assert!(e.to_string().contains("t-idx3-ubyte.gz"), "{e}");
    }
    std::fs::write(&path, &gz).unwrap();
    assert_eq!(read_idx(&path, 3).unwrap().data.len(), 84);
}

#[test]
fn every_truncation_of_a_cifar_file_is_an_error() {
    let images: Vec<u8> = (0..3 * 3072).map(|i| (i % 256) as u8).collect();
    let bytes = encode_cifar10(&images, &[1, 9, 4]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(read_records(&path, 1, 0, 10, 3).unwrap().1, vec![1, 9, 4]);
    // Record boundaries and a spread of other lengths (every length would be 9k file writes).
    for len in (0..bytes.len()).step_by(97).chain([3072, 3073, 3074, 6146, bytes.len() - 1]) {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let e = read_records(&path, 1, 0, 10, 3).expect_err("a truncated CIFAR file must not parse");
        assert!(e.to_string().contains("data_batch_1.bin"), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes: no panic; if they parse, the data matches the declared dimensions.
    #[test]
    fn arbitrary_bytes_never_panic_the_idx_parser(bytes in proptest::collection::vec(any::<u8>(), 0..200), dims in 1usize..4) {
        if let Ok(a) = parse_idx(Path::new("x.idx"), &bytes, dims) {
            prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }

    /// A valid header followed by arbitrary bytes, so the size checks are reached too.
    #[test]
    fn arbitrary_payloads_never_panic_the_idx_parser(d0 in 0usize..50, d1 in 0usize..50, body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = encode_idx(&[d0, d1], &[]);
        bytes.truncate(12);
        bytes.extend_from_slice(&body);
        match parse_idx(Path::new("x.idx"), &bytes, 2) {
            Ok(a) => prop_assert_eq!(a.data.len(), d0 * d1),
            Err(e) => prop_assert!(e.to_string().contains("x.idx")),
        }
    }

    /// Arbitrary CIFAR bytes: an error naming the file, or exactly the records asked for.
    #[test]
    fn arbitrary_bytes_never_panic_the_cifar_reader(bytes in proptest::collection::vec(any::<u8>(), 0..7000)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.bin");
        std::fs::write(&path, &bytes).unwrap();
        match read_records(&path, 2, 1, 100, 2) {
            Ok((images, labels)) => prop_assert!(images.len() == 2 * 3072 && labels.len() == 2),
            Err(e) => prop_assert!(e.to_string().contains("test.bin")),
        }
    }
}

//! Cross-check against candle-datasets' readers (`--features candle-datasets`): same pixels, same
//! orientation, same labels, on fixtures with an asymmetric pattern.
#![cfg(feature = "candle-datasets")]

use dynaprune_data::write::{encode_idx, write_cifar10_dir};
use dynaprune_data::*;

#[test]
fn cifar10_binary_matches_candle_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let shape = ImageShape { channels: 3, height: 32, width: 32 };
    let make = |n: usize| {
        let img: Vec<u8> = (0..n * 3072).map(|k| ((k % 3072) / 7 + k / 3072) as u8).collect();
        ImageDataset::new("t", shape, 10, img, (0..n as u32).map(|i| i % 10).collect()).unwrap()
    };
    write_cifar10_dir(dir.path(), &Splits { train: make(50_000), test: make(10_000) }).unwrap();
    let ours = load_cifar10(dir.path()).unwrap();
    let theirs = candle_datasets::vision::cifar::load_dir(dir.path().join("cifar-10-batches-bin")).unwrap();
    assert_eq!(theirs.test_images.dims(), &[10_000, 3, 32, 32]);
    let t: Vec<f32> = theirs.test_images.get(1234).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let o = ours.test.image(1234).unwrap();
    assert!(t.iter().zip(o).all(|(a, &b)| (a * 255.0 - b as f32).abs() < 1e-3), "pixels and orientation agree");
    let tl: Vec<u8> = theirs.train_labels.to_vec1().unwrap();
    assert!(tl.iter().zip(ours.train.labels()).all(|(&a, &b)| a as u32 == b));
}

#[test]
fn idx_matches_candle_datasets_mnist_reader() {
    let dir = tempfile::tempdir().unwrap();
    let img: Vec<u8> = (0..5 * 28 * 28).map(|k| (k * 31 % 251) as u8).collect();
    for (p, n) in [("train", 5usize), ("t10k", 5)] {
        std::fs::write(dir.path().join(format!("{p}-images-idx3-ubyte")), encode_idx(&[n, 28, 28], &img)).unwrap();
        std::fs::write(dir.path().join(format!("{p}-labels-idx1-ubyte")), encode_idx(&[n], &[3, 1, 4, 1, 5])).unwrap();
    }
    let ours = load_fashion_mnist(dir.path()).unwrap();
    let theirs = candle_datasets::vision::mnist::load_dir(dir.path()).unwrap();
    let t: Vec<f32> = theirs.train_images.flatten_all().unwrap().to_vec1().unwrap();
    assert!(t.iter().zip(ours.train.pixels()).all(|(a, &b)| (a * 255.0 - b as f32).abs() < 1e-3));
}

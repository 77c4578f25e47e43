//! Readers against fixtures generated at test time in each real format, including corrupt
//! variants: every failure must be an error naming the file and what was expected.

use std::path::Path;

use dynaprune_data::idx::read_idx;
use dynaprune_data::write::{encode_cifar10, encode_cifar100, encode_idx, gzip, write_cifar100_dir, write_cifar10_dir};
use dynaprune_data::*;

fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn idx_roundtrip_raw_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
    let bytes = encode_idx(&[2, 3, 4], &data);
    for (name, content) in [("a-idx3-ubyte", bytes.clone()), ("a-idx3-ubyte.gz", gzip(&bytes))] {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        let arr = read_idx(&p, 3).unwrap();
        assert_eq!(arr.dims, vec![2, 3, 4]);
        assert_eq!(arr.data, data);
    }
}

#[test]
fn idx_corruptions_are_reported_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x-idx3-ubyte");
    let good = encode_idx(&[2, 3, 4], &[7u8; 24]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() - 1].to_vec(), "truncated or corrupt"),
        ([good.clone(), vec![0]].concat(), "truncated or corrupt"),
        (encode_idx(&[2, 3], &[0; 6]), "bad IDX magic"),
        (good[..10].to_vec(), "truncated IDX header"),
        (vec![0, 0], "too short"),
        (gzip(&good)[..20].to_vec(), "corrupt gzip"),
    ];
    for (bytes, want) in cases {
        std::fs::write(&p, &bytes).unwrap();
        let e = err_text(read_idx(&p, 3));
        assert!(e.contains("x-idx3-ubyte") && e.contains(want), "{e}");
    }
    assert!(err_text(read_idx(&dir.path().join("missing"), 3)).contains("missing"));
}

fn write_fmnist_like(dir: &Path, train_labels: &[u8], test_n: usize) {
    let n = train_labels.len();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gzip(&encode_idx(&[n, 28, 28], &vec![3; n * 784]))).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&encode_idx(&[n], train_labels))).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), encode_idx(&[test_n, 28, 28], &vec![5; test_n * 784])).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), encode_idx(&[test_n], &vec![1; test_n])).unwrap();
}

#[test]
fn fashion_mnist_layout_loads_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("fashion-mnist");
    std::fs::create_dir(&sub).unwrap();
    write_fmnist_like(&sub, &[0, 1, 2, 9], 3);
    // Both the parent data directory and the dataset directory itself work.
    for d in [dir.path(), sub.as_path()] {
        let s = DatasetKind::FashionMnist.load(d).unwrap();
        assert_eq!((s.train.len(), s.test.len(), s.train.classes()), (4, 3, 10));
        assert_eq!(s.train.labels(), &[0, 1, 2, 9]);
        assert_eq!(s.test.image(2).unwrap()[0], 5);
    }
    // Label out of range.
    write_fmnist_like(&sub, &[0, 10], 3);
    let e = err_text(load_fashion_mnist(dir.path()));
    assert!(e.contains("train-labels-idx1-ubyte.gz") && e.contains("label 10"), "{e}");
    // Label count differs from image count.
    write_fmnist_like(&sub, &[0, 1], 3);
    std::fs::write(sub.join("train-labels-idx1-ubyte.gz"), gzip(&encode_idx(&[3], &[0, 1, 2]))).unwrap();
    let e = err_text(load_fashion_mnist(dir.path()));
    assert!(e.contains("has 3 labels but") && e.contains("2 images"), "{e}");
    // Missing file: names it and says how to fix.
    write_fmnist_like(&sub, &[0, 1], 3);
    std::fs::remove_file(sub.join("t10k-labels-idx1-ubyte")).unwrap();
    let e = err_text(load_fashion_mnist(dir.path()));
    assert!(e.contains("t10k-labels-idx1-ubyte") && e.contains("cargo xtask fetch"), "{e}");
}

/// A 60,000-image CIFAR-shaped dataset where image `i`'s pixel at (c, y, x) encodes its position
/// asymmetrically, so a transposed or channel-swapped reader is caught.
fn asymmetric_cifar(classes: u32) -> Splits {
    let shape = ImageShape { channels: 3, height: 32, width: 32 };
    let make = |n: usize, name: &str| {
        let mut img = vec![0u8; n * 3072];
        for i in 0..n {
            for c in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        img[i * 3072 + c * 1024 + y * 32 + x] = (c * 80 + y * 2 + (x / 8)) as u8 ^ (i % 7) as u8;
                    }
                }
            }
        }
        let labels = (0..n as u32).map(|i| (i * 7 + 3) % classes).collect();
        ImageDataset::new(name, shape, classes as usize, img, labels).unwrap()
    };
    Splits { train: make(50_000, "t"), test: make(10_000, "v") }
}

fn expected_pixel(i: usize, c: usize, y: usize, x: usize) -> u8 {
    (c * 80 + y * 2 + (x / 8)) as u8 ^ (i % 7) as u8
}

#[test]
fn cifar10_loads_in_channel_row_column_order() {
    let dir = tempfile::tempdir().unwrap();
    let splits = asymmetric_cifar(10);
    write_cifar10_dir(dir.path(), &splits).unwrap();
    let s = load_cifar10(dir.path()).unwrap();
    assert_eq!((s.train.len(), s.test.len(), s.train.classes()), (50_000, 10_000, 10));
    for &i in &[0usize, 12_345, 49_999] {
        let img = s.train.image(i).unwrap();
        for (c, y, x) in [(0, 0, 31), (1, 5, 2), (2, 31, 9)] {
            assert_eq!(img[c * 1024 + y * 32 + x], expected_pixel(i, c, y, x), "image {i} ({c},{y},{x})");
        }
        assert_eq!(s.train.label(i).unwrap(), (i as u32 * 7 + 3) % 10);
    }
    assert_eq!(s.test.image(9_999).unwrap()[2 * 1024 + 31 * 32 + 31], expected_pixel(9_999, 2, 31, 31));
}

#[test]
fn cifar10_corruptions_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10_dir(dir.path(), &asymmetric_cifar(10)).unwrap();
    let d = dir.path().join("cifar-10-batches-bin");
    let f = d.join("data_batch_3.bin");
    let good = std::fs::read(&f).unwrap();
    std::fs::write(&f, &good[..good.len() - 100]).unwrap();
    let e = err_text(load_cifar10(dir.path()));
    assert!(e.contains("data_batch_3.bin") && e.contains("expected 10000 records") && e.contains("truncated"), "{e}");
    let mut bad = good.clone();
    bad[3073 * 17] = 10;
    std::fs::write(&f, &bad).unwrap();
    let e = err_text(load_cifar10(dir.path()));
    assert!(e.contains("data_batch_3.bin") && e.contains("record 17 has label 10"), "{e}");
    std::fs::write(&f, &good).unwrap();
    std::fs::remove_file(d.join("test_batch.bin")).unwrap();
    let e = err_text(load_cifar10(dir.path()));
    assert!(e.contains("test_batch.bin") && e.contains("cargo xtask fetch cifar10"), "{e}");
    // A CIFAR-100 file is not a CIFAR-10 file.
    let c100 = encode_cifar100(&vec![0u8; 3072 * 10], &[0; 10], &[0; 10]);
    std::fs::write(d.join("test_batch.bin"), c100).unwrap();
    assert!(err_text(load_cifar10(dir.path())).contains("not a CIFAR-10 binary file"));
}

#[test]
fn cifar100_fine_and_coarse_labels() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar100_dir(dir.path(), &asymmetric_cifar(100)).unwrap();
    let fine = load_cifar100(dir.path(), Cifar100Labels::Fine).unwrap();
    let coarse = load_cifar100(dir.path(), Cifar100Labels::Coarse).unwrap();
    assert_eq!((fine.train.classes(), coarse.train.classes()), (100, 20));
    for i in [0usize, 1, 777] {
        let l = (i as u32 * 7 + 3) % 100;
        assert_eq!(fine.train.label(i).unwrap(), l);
        assert_eq!(coarse.train.label(i).unwrap(), l / 5);
        assert_eq!(fine.train.image(i).unwrap()[1024 + 33], expected_pixel(i, 1, 1, 1));
    }
    let f = dir.path().join("cifar-100-binary/test.bin");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[1] = 100;
    std::fs::write(&f, &bytes).unwrap();
    let e = err_text(load_cifar100(dir.path(), Cifar100Labels::Fine));
    assert!(e.contains("test.bin") && e.contains("fine label 100"), "{e}");
    // A CIFAR-10 record stream has the wrong record size for CIFAR-100.
    std::fs::write(&f, encode_cifar10(&vec![0u8; 3072 * 3], &[1, 2, 3])).unwrap();
    assert!(err_text(load_cifar100(dir.path(), Cifar100Labels::Fine)).contains("expected 10000 records of 3074 bytes"));
}

/// The real Fashion-MNIST from Debian's `dataset-fashion-mnist` package (`.ci/run` installs it).
#[test]
fn debian_fashion_mnist_when_present() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.join("train-images-idx3-ubyte.gz").exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but {} is missing: .ci/run must install dataset-fashion-mnist",
            dir.display()
        );
        eprintln!("SKIPPED: {} not found (apt-get install dataset-fashion-mnist)", dir.display());
        return;
    }
    let s = load_fashion_mnist(dir).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (60_000, 10_000));
    assert_eq!(s.train.shape(), ImageShape { channels: 1, height: 28, width: 28 });
    assert_eq!(s.train.class_counts(), vec![6_000; 10]);
    assert_eq!(s.test.class_counts(), vec![1_000; 10]);
    // Known labels: the first training image is an ankle boot (9), then two T-shirts (0).
    assert_eq!(&s.train.labels()[..10], &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert_eq!(&s.test.labels()[..10], &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert_eq!(s.train.image(0).unwrap().iter().map(|&p| p as u32).sum::<u32>(), 76_247);
    assert_eq!(s.train.image(0).unwrap()[10 * 28 + 14], 228);
    let st = s.train.channel_stats();
    assert!((st.mean[0] - 0.2860).abs() < 1e-3 && (st.std[0] - 0.3530).abs() < 1e-3, "{st:?}");
}

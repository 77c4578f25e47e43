//! The download code against a local HTTP server started by the test (loopback only): a good
//! transfer, a wrong checksum, a truncated transfer, a missing file; the CIFAR archive path with
//! a generated archive in the real layout; Debian's Fashion-MNIST copy when installed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use md5::Digest as _;
use xtask::fetch::{self, Remote};

/// How the server answers a path.
#[derive(Clone)]
enum Reply {
    Ok(Vec<u8>),
    /// Declares the full length but closes after `n` bytes.
    Truncated(Vec<u8>, usize),
}

/// Serves `routes` on 127.0.0.1 until the test process exits; returns the base URL.
fn serve(routes: Vec<(&'static str, Reply)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut s) = stream else { continue };
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req).lines().next().unwrap_or_default().to_string();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                match routes.iter().find(|(p, _)| path.ends_with(p)).map(|(_, r)| r.clone()) {
                    Some(Reply::Ok(body)) => {
                        let _ =
                            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                        let _ = s.write_all(&body);
                    }
                    Some(Reply::Truncated(body, n)) => {
                        let _ =
                            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                        let _ = s.write_all(&body[..n]);
                    }
                    None => {
                        let _ = write!(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn md5_hex(b: &[u8]) -> String {
    md5::Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn download_verifies_checksum_and_length_and_never_leaves_partial_files() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let base =
        serve(vec![("/good.bin", Reply::Ok(body.clone())), ("/cut.bin", Reply::Truncated(body.clone(), 50_000))]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("good.bin");
    fetch::download(&format!("{base}/good.bin"), &dest, &md5_hex(&body)).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);

    let bad = dir.path().join("bad.bin");
    let e = format!(
        "{:#}",
        fetch::download(&format!("{base}/good.bin"), &bad, "00000000000000000000000000000000").unwrap_err()
    );
    assert!(e.contains("checksum mismatch"), "{e}");
    assert!(!bad.exists() && !dir.path().join("bad.bin.part").exists());

    let cut = dir.path().join("cut.bin");
    let e = format!("{:#}", fetch::download(&format!("{base}/cut.bin"), &cut, &md5_hex(&body)).unwrap_err());
    assert!(e.contains("truncated") || e.contains("broke off"), "{e}");
    assert!(!cut.exists() && !dir.path().join("cut.bin.part").exists());

    let e = format!("{:#}", fetch::download(&format!("{base}/missing.bin"), &dir.path().join("m"), "x").unwrap_err());
    assert!(e.contains("missing.bin"), "{e}");
    // Nothing listens here: a clear error, quickly.
    let e = format!("{:#}", fetch::download("http://127.0.0.1:9/x.bin", &dir.path().join("x"), "x").unwrap_err());
    assert!(e.contains("127.0.0.1:9"), "{e}");
}

/// Offline, with no Debian copy and a mirror that has nothing: one error that says how to place
/// the files by hand, and no partial file left behind.
#[test]
fn fashion_mnist_offline_gives_instructions() {
    let dir = tempfile::tempdir().unwrap();
    let empty_debian = dir.path().join("no-debian");
    let base = serve(vec![]);
    let e = format!(
        "{:#}",
        fetch::fetch_fashion_mnist(&dir.path().join("data"), &empty_debian, &[base.as_str()], false).unwrap_err()
    );
    assert!(
        e.contains("fashion-mnist is not available")
            && e.contains("train-images-idx3-ubyte.gz")
            && e.contains("by hand"),
        "{e}"
    );
    assert!(!dir.path().join("data/fashion-mnist/train-images-idx3-ubyte.gz.part").exists());
}

/// Debian's Fashion-MNIST, or `None` (and a SKIPPED line) when it is not installed; under CI
/// (`CI=true`) its absence is a failure, never a silent skip.
fn debian_fashion_mnist() -> Option<&'static Path> {
    let debian = Path::new(fetch::DEBIAN_FASHION_MNIST);
    if debian.join("train-images-idx3-ubyte.gz").exists() {
        return Some(debian);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but {} is missing: .ci/run must install dataset-fashion-mnist",
        debian.display()
    );
    eprintln!("SKIPPED: {} not installed (apt-get install dataset-fashion-mnist)", debian.display());
    None
}

/// Debian's files under their own MD5 (Debian recompressed them, so their gzip bytes are not the
/// official downloads'; the content SHA-256 is the official one), and their bytes.
type Mirror = (Vec<(Remote, &'static str)>, Vec<(&'static str, Vec<u8>)>);

fn debian_as_mirror(debian: &Path) -> Mirror {
    let mut files = Vec::new();
    let mut bytes = Vec::new();
    for (r, sha) in fetch::FASHION_MNIST {
        let md5: &'static str = Box::leak(fetch::md5_file(&debian.join(r.name)).unwrap().into_boxed_str());
        files.push((Remote { name: r.name, md5 }, sha));
        bytes.push((r.name, std::fs::read(debian.join(r.name)).unwrap()));
    }
    (files, bytes)
}

/// The download path with the real files: the first mirror serves a corrupted copy of one file
/// (refused by its MD5), the second serves the real ones; the result is verified, and a second
/// fetch needs no server at all.
#[test]
fn fashion_mnist_mirrors_are_tried_in_order_and_verified() {
    let Some(debian) = debian_fashion_mnist() else { return };
    let (files, real) = debian_as_mirror(debian);
    let mut corrupt = real[1].1.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let bad = serve(vec![(real[1].0, Reply::Ok(corrupt))]);
    let good = serve(real.iter().map(|(n, b)| (*n, Reply::Ok(b.clone()))).collect());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fetch::fetch_fashion_mnist_files(
        &data,
        &dir.path().join("no-debian"),
        &[bad.as_str(), good.as_str()],
        false,
        &files,
    )
    .unwrap();
    for (r, _) in &files {
        let got = data.join("fashion-mnist").join(r.name);
        assert_eq!(fetch::md5_file(&got).unwrap(), r.md5, "{} verified", r.name);
        assert!(!got.with_extension("gz.part").exists());
    }
    // Idempotent: everything is in place, so dead mirrors do not matter.
    fetch::fetch_fashion_mnist_files(&data, &dir.path().join("no-debian"), &["http://127.0.0.1:9"], false, &files)
        .unwrap();
    // Only a corrupted copy anywhere: refused, with every mirror's error in the message.
    let dir2 = tempfile::tempdir().unwrap();
    let e = format!(
        "{:#}",
        fetch::fetch_fashion_mnist_files(
            &dir2.path().join("data"),
            &dir2.path().join("no-debian"),
            &[bad.as_str()],
            false,
            &files
        )
        .unwrap_err()
    );
    assert!(e.contains("by hand"), "{e}");
}

#[test]
fn debian_copy_is_verified_and_fetch_is_idempotent() {
    let Some(debian) = debian_fashion_mnist() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fetch::fetch_fashion_mnist(&data, debian, &["http://127.0.0.1:9"], false).unwrap();
    for (r, _) in fetch::FASHION_MNIST {
        assert!(data.join("fashion-mnist").join(r.name).exists());
    }
    // A second run finds everything in place (no network needed: the base URL is dead).
    fetch::fetch_fashion_mnist(&data, &dir.path().join("gone"), &["http://127.0.0.1:9"], false).unwrap();
    // A corrupted copy is detected and not accepted as data.
    let f = data.join("fashion-mnist/t10k-labels-idx1-ubyte.gz");
    std::fs::write(&f, b"garbage").unwrap();
    assert!(fetch::fetch_fashion_mnist(&data, &dir.path().join("gone"), &["http://127.0.0.1:9"], false).is_err());
}

#[test]
fn cifar_archive_is_downloaded_verified_and_extracted() {
    // A generated archive in the real layout (zeros compress to almost nothing).
    let mut tar_bytes = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut tar_bytes, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let mut add = |name: &str, size: usize| {
            let mut h = tar::Header::new_gnu();
            h.set_size(size as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, std::io::repeat(0).take(size as u64)).unwrap();
        };
        for i in 1..=5 {
            add(&format!("cifar-10-batches-bin/data_batch_{i}.bin"), 10_000 * 3073);
        }
        add("cifar-10-batches-bin/test_batch.bin", 10_000 * 3073);
        add("cifar-10-batches-bin/batches.meta.txt", 10);
        b.into_inner().unwrap().finish().unwrap();
    }
    let md5 = md5_hex(&tar_bytes);
    let base = serve(vec![("/fake-cifar.tar.gz", Reply::Ok(tar_bytes))]);
    let dir = tempfile::tempdir().unwrap();
    let remote = Remote { name: "fake-cifar.tar.gz", md5: Box::leak(md5.into_boxed_str()) };
    fetch::fetch_cifar_archive(dir.path(), "cifar10", &base, remote).unwrap();
    let d = dir.path().join("cifar-10-batches-bin");
    assert_eq!(std::fs::metadata(d.join("data_batch_3.bin")).unwrap().len(), 30_730_000);
    assert!(!dir.path().join(".extract-cifar10").exists());
    // Idempotent: present data is not downloaded again (the server is not needed).
    fetch::fetch_cifar_archive(dir.path(), "cifar10", "http://127.0.0.1:9", remote).unwrap();
    // A wrong checksum is refused and leaves nothing behind.
    let dir2 = tempfile::tempdir().unwrap();
    let bad = Remote { name: "fake-cifar.tar.gz", md5: "0123456789abcdef0123456789abcdef" };
    let e = format!("{:#}", fetch::fetch_cifar_archive(dir2.path(), "cifar10", &base, bad).unwrap_err());
    assert!(e.contains("checksum mismatch") && e.contains("by hand"), "{e}");
    assert!(!dir2.path().join("cifar-10-batches-bin").exists() && !dir2.path().join("fake-cifar.tar.gz").exists());
}

/// `cargo xtask reproduce` on a machine without the data: the quick preset's Fashion-MNIST is
/// fetched first (here from a loopback mirror serving the real files), and offline with no source
/// the grid stops before its first cell with the instructions.
#[test]
fn reproduce_fetches_its_data_first() {
    let Some(debian) = debian_fashion_mnist() else { return };
    let (files, real) = debian_as_mirror(debian);
    let mirror = serve(real.into_iter().map(|(n, b)| (n, Reply::Ok(b))).collect());
    let dir = tempfile::tempdir().unwrap();
    let p = xtask::reproduce::preset("quick").unwrap();
    let src = |bases: Vec<String>| xtask::reproduce::DataSources {
        data_dir: dir.path().join("data"),
        debian_dir: dir.path().join("no-debian"),
        fashion_mnist_bases: bases,
        fashion_mnist_files: files.clone(),
        cifar_base: "http://127.0.0.1:9".into(),
        allow_apt: false,
    };
    // Offline: one clear message, nothing half-fetched.
    let e = format!("{:#}", xtask::reproduce::ensure_data(&p, &src(vec!["http://127.0.0.1:9".into()])).unwrap_err());
    assert!(e.contains("fashion-mnist is not available") && e.contains("by hand"), "{e}");
    // With a source: fetched and verified into data/.
    xtask::reproduce::ensure_data(&p, &src(vec![mirror.clone()])).unwrap();
    for (r, _) in &files {
        assert_eq!(fetch::md5_file(&dir.path().join("data/fashion-mnist").join(r.name)).unwrap(), r.md5);
    }
    // Present: nothing to do, no network needed.
    xtask::reproduce::ensure_data(&p, &src(vec!["http://127.0.0.1:9".into()])).unwrap();
    // The synthetic smoke preset needs nothing.
    let smoke = xtask::reproduce::preset("smoke").unwrap();
    xtask::reproduce::ensure_data(&smoke, &src(vec![])).unwrap();
}

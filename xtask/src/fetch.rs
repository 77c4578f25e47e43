//! `cargo xtask fetch`: downloads and verifies datasets into `data/`.
//!
//! Every download goes to a `.part` file, is checked against the publisher's MD5 (and its
//! length against `Content-Length`), and only then renamed; archives are extracted into a
//! temporary directory, checked file by file, and renamed into place. A truncated or corrupt
//! download is deleted, never mistaken for data, and re-running is idempotent.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use md5::Digest as _;

/// A file of a dataset, as published.
#[derive(Debug, Clone, Copy)]
pub struct Remote {
    /// File name.
    pub name: &'static str,
    /// MD5 of the published file.
    pub md5: &'static str,
}

/// CIFAR-10 binary archive.
pub const CIFAR10: Remote = Remote { name: "cifar-10-binary.tar.gz", md5: "c32a1d4ab5d03f1284b67883e8d87530" };
/// CIFAR-100 binary archive.
pub const CIFAR100: Remote = Remote { name: "cifar-100-binary.tar.gz", md5: "03b5dce01913d631647c71ecec9e9cb8" };
/// The CIFAR publisher.
pub const CIFAR_BASE: &str = "https://www.cs.toronto.edu/~kriz";

/// The four Fashion-MNIST files, with the official MD5s of the gzipped files (as published by
/// Zalando and used by torchvision) and the SHA-256 of their *decompressed* content (computed
/// from Debian's `dataset-fashion-mnist` 0.0~git20200523.55506a9-1, which recompresses the
/// files: its gzip bytes differ from the official ones, its content does not).
pub const FASHION_MNIST: [(Remote, &str); 4] = [
    (
        Remote { name: "train-images-idx3-ubyte.gz", md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d" },
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    (
        Remote { name: "train-labels-idx1-ubyte.gz", md5: "25c81989df183df01b3e8a0aad5dffbe" },
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    (
        Remote { name: "t10k-images-idx3-ubyte.gz", md5: "bef4ecab320f06d8554ea6380940ec79" },
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    (
        Remote { name: "t10k-labels-idx1-ubyte.gz", md5: "bb300cfdad3c16e7a12a480ee83cd310" },
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];
/// Official Fashion-MNIST mirrors, tried in order.
pub const FASHION_MNIST_BASES: [&str; 2] = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
];
/// Where Debian's package installs Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 of a file.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// SHA-256 of a gzipped file's decompressed content.
pub fn gunzip_sha256(path: &Path) -> Result<String> {
    use sha2::Digest as _;
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut d = flate2::read::GzDecoder::new(f);
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = d.read(&mut buf).with_context(|| format!("{} is not a valid gzip file", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn part_path(dest: &Path) -> PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

/// Downloads `url` to `dest` via `dest.part`, verifying the length against `Content-Length`
/// and the MD5 against `md5`. On any failure the partial file is removed.
pub fn download(url: &str, dest: &Path, md5: &str) -> Result<()> {
    let part = part_path(dest);
    let result = (|| -> Result<()> {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(std::time::Duration::from_secs(20)))
            .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
            .build();
        let agent = ureq::Agent::new_with_config(config);
        let mut resp = agent.get(url).call().with_context(|| format!("GET {url}"))?;
        let expected_len: Option<u64> =
            resp.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let mut reader = resp.body_mut().as_reader();
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::File::create(&part).with_context(|| format!("cannot create {}", part.display()))?;
        let mut h = md5::Md5::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => bail!("transfer of {url} broke off after {got} bytes: {e}"),
            };
            h.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            got += n as u64;
        }
        out.sync_all()?;
        if let Some(len) = expected_len {
            if got != len {
                bail!("truncated transfer of {url}: received {got} of {len} bytes");
            }
        }
        let sum = hex(&h.finalize());
        if sum != md5 {
            bail!("checksum mismatch for {url}: MD5 {sum}, expected {md5} (corrupt or changed download)");
        }
        Ok(())
    })();
    match result {
        Ok(()) => std::fs::rename(&part, dest).with_context(|| format!("cannot move {} into place", dest.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

/// Ensures `data_dir/<remote.name>` exists with the right MD5, downloading from the first base
/// URL that works.
fn ensure_file(data_dir: &Path, remote: Remote, bases: &[&str]) -> Result<PathBuf> {
    let dest = data_dir.join(remote.name);
    if dest.exists() {
        if md5_file(&dest)? == remote.md5 {
            return Ok(dest);
        }
        eprintln!("{} exists but its MD5 is wrong: downloading it again", dest.display());
        std::fs::remove_file(&dest)?;
    }
    let mut errors = Vec::new();
    for base in bases {
        let url = format!("{}/{}", base.trim_end_matches('/'), remote.name);
        eprintln!("downloading {url}");
        match download(&url, &dest, remote.md5) {
            Ok(()) => return Ok(dest),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    bail!("could not download {}:\n  {}", remote.name, errors.join("\n  "))
}

/// The files a CIFAR directory must hold, with their exact sizes.
fn cifar_layout(which: &str) -> (&'static str, Vec<(String, u64)>) {
    if which == "cifar10" {
        let mut f: Vec<(String, u64)> = (1..=5).map(|i| (format!("data_batch_{i}.bin"), 10_000 * 3073)).collect();
        f.push(("test_batch.bin".into(), 10_000 * 3073));
        ("cifar-10-batches-bin", f)
    } else {
        ("cifar-100-binary", vec![("train.bin".into(), 50_000 * 3074), ("test.bin".into(), 10_000 * 3074)])
    }
}

fn cifar_complete(dir: &Path, files: &[(String, u64)]) -> bool {
    files.iter().all(|(f, size)| std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() == *size))
}

/// Fetches CIFAR-10 or CIFAR-100 (`which` = `cifar10` / `cifar100`) into `data_dir`.
pub fn fetch_cifar(data_dir: &Path, which: &str, base: &str) -> Result<()> {
    fetch_cifar_archive(data_dir, which, base, if which == "cifar10" { CIFAR10 } else { CIFAR100 })
}

/// [`fetch_cifar`] with an explicit archive name and checksum (tests use generated archives).
pub fn fetch_cifar_archive(data_dir: &Path, which: &str, base: &str, remote: Remote) -> Result<()> {
    let (sub, files) = cifar_layout(which);
    let target = data_dir.join(sub);
    if cifar_complete(&target, &files) {
        eprintln!("{which}: already present in {}", target.display());
        return Ok(());
    }
    let archive = ensure_file(data_dir, remote, &[base]).map_err(|e| {
        e.context(format!(
            "{which} is not available offline. Download {base}/{} (MD5 {}) by hand into {} and run the command again",
            remote.name,
            remote.md5,
            data_dir.display()
        ))
    })?;
    let tmp = data_dir.join(format!(".extract-{which}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&archive)?);
    let mut ar = tar::Archive::new(gz);
    for entry in ar.entries().with_context(|| format!("{} is not a tar.gz archive", archive.display()))? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        // Only plain files inside the expected directory: no absolute paths, no `..`.
        if path.components().any(|c| !matches!(c, std::path::Component::Normal(_))) || !path.starts_with(sub) {
            continue;
        }
        if entry.header().entry_type().is_file() {
            let out = tmp.join(&path);
            std::fs::create_dir_all(out.parent().expect("has a parent"))?;
            entry.unpack(&out)?;
        }
    }
    let extracted = tmp.join(sub);
    if !cifar_complete(&extracted, &files) {
        bail!("{} does not contain the expected {sub}/ files with the expected sizes", archive.display());
    }
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::rename(&extracted, &target)?;
    std::fs::remove_dir_all(&tmp)?;
    eprintln!("{which}: ready in {}", target.display());
    Ok(())
}

fn fashion_complete(dir: &Path, files: &[(Remote, &str)]) -> Result<bool> {
    for &(r, sha) in files {
        let p = dir.join(r.name);
        if !p.exists() {
            return Ok(false);
        }
        // Either the official gzip bytes, or (e.g. Debian's recompressed copy) the same content.
        if md5_file(&p)? != r.md5 && gunzip_sha256(&p)? != sha {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Copies Debian's Fashion-MNIST into `target` after verifying the content of each file.
fn copy_verified(src: &Path, target: &Path, files: &[(Remote, &str)]) -> Result<()> {
    std::fs::create_dir_all(target)?;
    for &(r, sha) in files {
        let from = src.join(r.name);
        let got = gunzip_sha256(&from)?;
        if got != sha {
            bail!("{}: content SHA-256 {got}, expected {sha}", from.display());
        }
        let dest = target.join(r.name);
        let part = part_path(&dest);
        std::fs::copy(&from, &part)?;
        std::fs::rename(&part, &dest)?;
    }
    Ok(())
}

/// Fetches Fashion-MNIST into `data_dir/fashion-mnist`. Sources, in order: what is already
/// there; Debian's packaged copy (`debian_dir`); the official download (`bases`); and, on a
/// Debian-family system when running as root, installing `dataset-fashion-mnist` with apt.
pub fn fetch_fashion_mnist(data_dir: &Path, debian_dir: &Path, bases: &[&str], allow_apt: bool) -> Result<()> {
    fetch_fashion_mnist_files(data_dir, debian_dir, bases, allow_apt, &FASHION_MNIST)
}

/// [`fetch_fashion_mnist`] with an explicit list of files, their MD5 and content SHA-256 (tests
/// serve real files whose gzip bytes are not the official ones).
pub fn fetch_fashion_mnist_files(
    data_dir: &Path,
    debian_dir: &Path,
    bases: &[&str],
    allow_apt: bool,
    files: &[(Remote, &str)],
) -> Result<()> {
    let target = data_dir.join("fashion-mnist");
    if fashion_complete(&target, files)? {
        eprintln!("fashion-mnist: already present in {}", target.display());
        return Ok(());
    }
    if fashion_complete(debian_dir, files)? {
        copy_verified(debian_dir, &target, files)?;
        eprintln!("fashion-mnist: copied and verified from {}", debian_dir.display());
        return Ok(());
    }
    let mut failure = None;
    for &(r, _) in files {
        if let Err(e) = ensure_file(&target, r, bases) {
            failure = Some(e);
            break;
        }
    }
    let Some(err) = failure else {
        eprintln!("fashion-mnist: downloaded and verified into {}", target.display());
        return Ok(());
    };
    if allow_apt && is_root() && Path::new("/usr/bin/apt-get").exists() {
        eprintln!("fashion-mnist: the download failed ({err:#}); installing Debian's dataset-fashion-mnist with apt-get instead");
        let ok = std::process::Command::new("apt-get")
            .args(["install", "-y", "dataset-fashion-mnist"])
            .status()
            .is_ok_and(|s| s.success());
        if ok && fashion_complete(debian_dir, files)? {
            copy_verified(debian_dir, &target, files)?;
            eprintln!("fashion-mnist: installed with apt and copied from {}", debian_dir.display());
            return Ok(());
        }
    }
    Err(err.context(format!(
        "fashion-mnist is not available: no verified copy in {}, none in {} (Debian: apt-get install dataset-fashion-mnist), and the \
         download failed. Place the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz \
         and t10k-labels-idx1-ubyte.gz in {} by hand",
        target.display(),
        debian_dir.display(),
        target.display()
    )))
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

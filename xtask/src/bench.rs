//! `cargo xtask bench-train`: our kernels vs stock Candle vs PyTorch, training and inference
//! images/s at batch 128, per thread count, measured in one invocation on one machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// One line of `dynaprune bench-train --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Ours {
    /// Network.
    pub model: String,
    /// Input.
    pub input: String,
    /// Mode.
    pub mode: String,
    /// Kernels.
    pub kernels: String,
    /// Threads.
    pub threads: usize,
    /// Median images/s.
    pub img_per_s: f64,
    /// Best images/s.
    pub best_img_per_s: f64,
    /// Achieved GFLOP/s.
    pub gflops: f64,
}

/// Options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `dynaprune` binary.
    pub binary: PathBuf,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// `model:input` pairs.
    pub models: Vec<String>,
    /// Timed steps.
    pub iters: usize,
    /// Python with torch (if any) and the reference script.
    pub torch: Option<(String, PathBuf)>,
    /// Rounds: every measurement is repeated this many times, interleaved (ours, Candle,
    /// PyTorch, ours, ...), and the median over rounds is reported, so that a noisy neighbour
    /// on a shared machine does not decide a ratio.
    pub rounds: usize,
    /// Write the table here too, under a provenance header (command, binary version and commit,
    /// machine, date).
    pub out: Option<PathBuf>,
    /// The command line, for that header.
    pub command: String,
}

/// `# key: value` lines saying what produced a benchmark table: the command, the binary's
/// version line (which names the commit it was built from), the machine and the time.
pub fn provenance_header(command: &str, binary: &Path) -> String {
    let version = Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!(
        "# machine: {cpu}, {cores} cores; {}\n# command: {command}\n# binary: {version}\n# started (unix seconds): {unix}\n",
        cpu_features()
    )
}

/// The CPU features our kernels dispatch on, as a bench header states them: `AVX2+FMA yes,
/// AVX-512 yes, AVX512_BF16 no`.
pub fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    let (avx2, avx512, bf16) = {
        use std::arch::is_x86_feature_detected as has;
        (has!("avx2") && has!("fma"), has!("avx512f"), has!("avx512bf16"))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (avx2, avx512, bf16) = (false, false, false);
    let yn = |b: bool| if b { "yes" } else { "no" };
    format!("AVX2+FMA {}, AVX-512 {}, AVX512_BF16 {}", yn(avx2), yn(avx512), yn(bf16))
}

/// The median (upper middle) of `v`; NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// The reference script: `$DYNAPRUNE_TORCH_BENCH`, else the copy in `xtask/torch/`.
pub fn find_torch_script(repo: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DYNAPRUNE_TORCH_BENCH") {
        return Some(PathBuf::from(p));
    }
    let p = repo.join("xtask/torch/torch_resnet_bench.py");
    p.exists().then_some(p)
}

/// A Python that can `import torch`: `$DYNAPRUNE_TORCH_PYTHON`, else `python3`.
pub fn find_torch_python() -> Option<String> {
    let py = std::env::var("DYNAPRUNE_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py).args(["-c", "import torch"]).output().is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

fn torch_run(
    py: &str,
    script: &Path,
    model: &str,
    input: &str,
    threads: usize,
    iters: usize,
) -> Result<BTreeMap<String, f64>> {
    let out = Command::new(py)
        .arg(script)
        .args(["--model", model, "--input", input, "--threads", &threads.to_string(), "--iters", &iters.to_string()])
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    let mut r = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("torch ")) {
        let field =
            |k: &str| line.split_whitespace().find_map(|t| t.strip_prefix(&format!("{k}=")).map(str::to_string));
        if let (Some(mode), Some(v)) = (field("mode"), field("img_per_s").and_then(|v| v.parse().ok())) {
            r.insert(mode, v);
        }
    }
    Ok(r)
}

/// Runs everything and prints one line per network, mode and thread count.
pub fn run(o: &Options) -> Result<()> {
    let header = provenance_header(&o.command, &o.binary);
    print!("{header}");
    let json = std::env::temp_dir().join(format!("dynaprune-bench-{}.jsonl", std::process::id()));
    let mut lines = Vec::new();
    for &t in &o.threads {
        for spec in &o.models {
            let (model, input) = spec.split_once(':').context("model:input")?;
            let mut ours: Vec<Ours> = Vec::new();
            let mut torch: Vec<BTreeMap<String, f64>> = Vec::new();
            for _ in 0..o.rounds.max(1) {
                let _ = std::fs::remove_file(&json);
                ours_round(o, spec, t, &json)?;
                ours.extend(
                    std::fs::read_to_string(&json)?.lines().filter_map(|l| serde_json::from_str::<Ours>(l).ok()),
                );
                if let Some((py, script)) = &o.torch {
                    torch.push(torch_run(py, script, model, input, t, o.iters)?);
                }
            }
            for mode in ["train", "infer"] {
                let pick = |k: &str, f: fn(&Ours) -> f64| {
                    median(
                        ours.iter()
                            .filter(|r| {
                                r.model == model
                                    && r.input == input
                                    && r.mode == mode
                                    && r.kernels == k
                                    && r.threads == t
                            })
                            .map(f)
                            .collect(),
                    )
                };
                let (fast, best, gflops) =
                    (pick("fast", |r| r.img_per_s), pick("fast", |r| r.best_img_per_s), pick("fast", |r| r.gflops));
                if !fast.is_finite() {
                    continue;
                }
                let candle = pick("candle", |r| r.img_per_s);
                let mut line =
                    format!("{model} {input} {mode} threads={t} ours={fast:.1} (best {best:.1}, {gflops:.1} GFLOP/s)");
                if candle.is_finite() {
                    line.push_str(&format!(" candle={candle:.1} speedup_vs_candle={:.2}x", fast / candle));
                }
                let tv = median(torch.iter().filter_map(|m| m.get(mode).copied()).collect());
                if tv.is_finite() {
                    line.push_str(&format!(" torch={tv:.1} ratio={:.2}x", fast / tv));
                } else {
                    line.push_str(" torch=n/a");
                }
                println!("{line}");
                lines.push(line);
            }
        }
    }
    let _ = std::fs::remove_file(&json);
    if let Some(out) = &o.out {
        dynaprune_io::write_atomic(out, (header + &lines.join("\n") + "\n").as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// One round of our side: each kernel set in its own `dynaprune bench-train` process, appending
/// its JSON lines to `json`.
fn ours_round(o: &Options, spec: &str, t: usize, json: &std::path::Path) -> Result<()> {
    // Each kernel set in its own process, each in the thread configuration it runs
    // best in: stock Candle with its own elementwise pool of `t` threads, ours as
    // `dynaprune train` runs.
    for kernels in ["fast", "candle"] {
        let mut c = Command::new(&o.binary);
        c.args(["bench-train", "--kernels", kernels, "--models", spec, "--iters", &o.iters.to_string(), "--json"])
            .arg(json);
        c.env("RAYON_NUM_THREADS", t.to_string());
        if kernels == "candle" {
            c.env("CANDLE_NUM_THREADS", t.to_string());
        }
        if !c.status()?.success() {
            bail!("dynaprune bench-train --kernels {kernels} failed for {spec} with {t} threads");
        }
    }
    Ok(())
}

//! `cargo xtask reproduce`: the comparison grid. Each cell runs the `dynaprune` binary as a
//! subprocess in its own output folder; finished cells are skipped and interrupted ones resumed;
//! static scores are computed once per (dataset, model, seed) and their cost is charged to every
//! cell that uses them; `--shard i/n` runs a deterministic slice; the report is regenerated from
//! whatever runs exist.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use dynaprune::catalog::{
    LabelStaleness, Method, RuleInfo, BUDGET_MATCHED, BUDGET_NOMINAL, EL2N, EPSILON_GREEDY, FULL, INFOBATCH, RANDOM,
    STATIC_RANDOM, UCB,
};

/// A grid preset.
#[derive(Debug, Clone)]
pub struct Preset {
    /// Name (`smoke`, `quick`, `cpu`, `paper`).
    pub name: &'static str,
    /// What it is for.
    pub about: &'static str,
    /// Datasets.
    pub datasets: Vec<&'static str>,
    /// Model.
    pub model: &'static str,
    /// Epochs per run.
    pub epochs: usize,
    /// Methods (policies).
    pub methods: Vec<String>,
    /// Prune fractions (ignored for `full`).
    pub prune_fractions: Vec<f64>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Flags passed to every `dynaprune train` / `score`.
    pub flags: Vec<&'static str>,
    /// Sample-pass budget of the pruning cells: `matched` or `nominal` (`dynaprune train
    /// --budget`).
    pub budget: String,
}

/// All methods of the paper plus InfoBatch, RS2 and KAKURENBO (UCB and epsilon-greedy with the
/// default staleness model): every rule of [`dynaprune::catalog::RULES`].
pub fn all_methods() -> Vec<&'static str> {
    dynaprune::catalog::RULES.iter().map(|r| r.name).collect()
}

/// The original UCB and epsilon-greedy (`--staleness off`), kept in the `cpu` grid so the report
/// compares the rules before and after the staleness fix.
pub fn plain_methods() -> [String; 2] {
    [&EPSILON_GREEDY, &UCB].map(plain_label)
}

/// The method label of a rule as originally described (`--staleness off`): `ucb-plain`.
pub fn plain_label(rule: &'static RuleInfo) -> String {
    Method { staleness: LabelStaleness::Off, ..Method::of(rule) }.to_string()
}

/// The `dynaprune train` flags of a method label ([`dynaprune::catalog::Method`], whose grammar
/// is stated there once): a rule, optionally `-plain` (`--staleness off`) or `-bonus`
/// (`--staleness count-bonus`), `+rescoreR` (`--rescore-every R`), `+warmupW`
/// (`--warmup-epochs W`) and `+lrhidden` (`--kakurenbo-lr hidden-fraction`).
/// The inverse of the harness's `TrainArgs::method_label`.
pub fn method_flags(method: &str) -> Result<Vec<String>> {
    use dynaprune::catalog::{LabelStaleness, Method};
    let m = Method::parse(method)?;
    let mut f = vec!["--policy".to_string(), m.rule.name.to_string()];
    match m.staleness {
        LabelStaleness::Default => {}
        LabelStaleness::Off => f.extend(["--staleness".into(), "off".into()]),
        LabelStaleness::CountBonus => f.extend(["--staleness".into(), "count-bonus".into()]),
    }
    if let Some(r) = m.rescore_every {
        f.extend(["--rescore-every".into(), r.to_string()]);
    }
    if let Some(w) = m.warmup_epochs {
        f.extend(["--warmup-epochs".into(), w.to_string()]);
    }
    if m.lr_hidden {
        f.extend(["--kakurenbo-lr".into(), "hidden-fraction".into()]);
    }
    Ok(f)
}

/// The presets.
pub fn preset(name: &str) -> Result<Preset> {
    Ok(match name {
        "smoke" => Preset {
            name: "smoke",
            about: "seconds; generated data; CI runs it",
            datasets: vec!["synthetic"],
            model: "resnet8",
            epochs: 3,
            methods: [FULL.name, UCB.name].map(String::from).to_vec(),
            prune_fractions: vec![0.5],
            seeds: vec![0],
            flags: vec!["--width", "0.5", "--max-train-samples", "256", "--max-test-samples", "128", "--batch-size", "64", "--lr", "0.05"],
            budget: BUDGET_MATCHED.into(),
        },
        "quick" => Preset {
            name: "quick",
            about: "a newcomer's first real result: Fashion-MNIST, ResNet-8, the main static and dynamic methods at 50%, 1 seed (about 15-20 minutes on 2 cores)",
            datasets: vec!["fashion-mnist"],
            model: "resnet8",
            epochs: 4,
            methods: [FULL.name, STATIC_RANDOM.name, EL2N.name, RANDOM.name, UCB.name, INFOBATCH.name].map(String::from).to_vec(),
            prune_fractions: vec![0.5],
            seeds: vec![0],
            flags: vec!["--scorer-models", "2"],
            // 4 epochs at 50%: a matched budget (2 dataset passes) would be spent entirely by
            // InfoBatch's warm-up and annealing epochs. The quick preset compares with its
            // committed reference runs, which are nominal.
            budget: BUDGET_NOMINAL.into(),
        },
        "cpu" => Preset {
            name: "cpu",
            about: "Fashion-MNIST, ResNet-8, every method, prune fractions 0.3/0.5/0.7, 3 seeds (hours on 2 cores)",
            datasets: vec!["fashion-mnist"],
            model: "resnet8",
            epochs: 10,
            methods: all_methods()
                .into_iter()
                .map(String::from)
                .chain(plain_methods())
                .chain([Method { warmup_epochs: Some(1), ..Method::of(&RANDOM) }.to_string()])
                .collect(),
            prune_fractions: vec![0.3, 0.5, 0.7],
            seeds: vec![0, 1, 2],
            flags: vec!["--scorer-models", "3"],
            budget: BUDGET_MATCHED.into(),
        },
        "paper" => Preset {
            name: "paper",
            about: "CIFAR-10 and CIFAR-100, ResNet-18, 200 epochs, CUDA (the paper's setting; needs a GPU and `cargo xtask fetch cifar10 cifar100`)",
            datasets: vec!["cifar10", "cifar100"],
            model: "resnet18",
            epochs: 200,
            methods: all_methods().into_iter().map(String::from).collect(),
            prune_fractions: vec![0.3, 0.5, 0.7],
            seeds: vec![0, 1, 2],
            flags: vec!["--device", "cuda", "--lr", "0.1", "--schedule", "cosine", "--scorer-models", "10"],
            budget: BUDGET_MATCHED.into(),
        },
        other => bail!("unknown preset `{other}`: expected smoke, quick, cpu or paper"),
    })
}

/// One training run of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Dataset.
    pub dataset: String,
    /// Method.
    pub method: String,
    /// Prune fraction (0 for full data).
    pub prune_fraction: f64,
    /// Seed.
    pub seed: u64,
    /// Budget (`matched` or `nominal`; the full-data baseline has none).
    pub budget: String,
}

impl Cell {
    /// The cell's folder under `runs/`: `<dataset>/<budget>/<method>-pf<f>-s<seed>`, and
    /// `<dataset>/full-pf0.00-s<seed>` for the full-data baseline, which every budget shares.
    pub fn dir(&self, runs: &Path) -> PathBuf {
        let name = format!("{}-pf{:.2}-s{}", self.method, self.prune_fraction, self.seed);
        if self.method == FULL.name {
            runs.join(&self.dataset).join(name)
        } else {
            runs.join(&self.dataset).join(&self.budget).join(name)
        }
    }
    /// The static scorer the cell needs.
    pub fn scorer(&self) -> Option<&'static str> {
        dynaprune::catalog::rule(&self.method).and_then(|r| r.scorer)
    }
}

/// Every cell of a preset, in a canonical order (dataset, seed, method, prune fraction).
pub fn cells(p: &Preset) -> Vec<Cell> {
    let mut out = Vec::new();
    for d in &p.datasets {
        for &seed in &p.seeds {
            for m in &p.methods {
                let fractions = if m == FULL.name { vec![0.0] } else { p.prune_fractions.clone() };
                for pf in fractions {
                    out.push(Cell {
                        dataset: d.to_string(),
                        method: m.to_string(),
                        prune_fraction: pf,
                        seed,
                        budget: p.budget.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Parses `i/n` (1-based `i`).
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let (i, n) = s.split_once('/').with_context(|| format!("--shard {s}: expected i/n, e.g. 2/4"))?;
    let (i, n): (usize, usize) = (i.trim().parse().context("--shard: i")?, n.trim().parse().context("--shard: n")?);
    if n == 0 || i == 0 || i > n {
        bail!("--shard {s}: need 1 <= i <= n");
    }
    Ok((i, n))
}

/// The cells of shard `i` of `n`: every `n`-th cell starting at `i - 1` (a partition).
pub fn shard(cells: Vec<Cell>, i: usize, n: usize) -> Vec<Cell> {
    cells.into_iter().enumerate().filter(|(k, _)| k % n == i - 1).map(|(_, c)| c).collect()
}

/// Options of a grid run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `dynaprune` binary.
    pub binary: PathBuf,
    /// `results/<preset>`.
    pub out: PathBuf,
    /// Shard.
    pub shard: (usize, usize),
    /// Threads per run.
    pub threads: Option<usize>,
    /// Print the commands without running them.
    pub dry_run: bool,
    /// The command line that started the grid (for the report).
    pub command: String,
    /// Finished runs to compare with in the report (by default the committed
    /// `results/reference/<preset>/runs`, when it exists).
    pub reference: Option<PathBuf>,
}

/// The committed reference runs of a preset, if there are any.
pub fn reference_runs(preset: &str) -> Option<PathBuf> {
    let dir = crate::repo_root().join("results/reference").join(preset).join("runs");
    dir.is_dir().then_some(dir)
}

/// Copies the finished runs (and static scores) of `reference` (a preset's results folder) into
/// `out` where `out` has none, so that a grid over `out` skips those cells: `--reuse-reference`.
pub fn reuse_reference(reference: &Path, out: &Path) -> Result<usize> {
    fn copy_missing(from: &Path, to: &Path, copied: &mut usize) -> Result<()> {
        std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
        for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
            let e = e?;
            let (src, dst) = (e.path(), to.join(e.file_name()));
            if src.is_dir() {
                copy_missing(&src, &dst, copied)?;
            } else if !dst.exists() {
                std::fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
                *copied += usize::from(e.file_name() == "summary.json");
            }
        }
        Ok(())
    }
    let mut copied = 0;
    for sub in ["runs", "scores"] {
        if reference.join(sub).is_dir() {
            copy_missing(&reference.join(sub), &out.join(sub), &mut copied)?;
        }
    }
    Ok(copied)
}

/// `p` relative to the checkout root when it lies inside it (the children run from there), so
/// that recorded commands name no machine's layout.
fn rel(p: &Path) -> PathBuf {
    let root = crate::repo_root();
    p.strip_prefix(&root).map(Path::to_path_buf).unwrap_or_else(|_| p.to_path_buf())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    // From the checkout root, so that the runs find `data/` wherever the command was typed.
    cmd.current_dir(crate::repo_root());
    let status = cmd.status().with_context(|| format!("cannot start {what}: {cmd:?}"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {cmd:?}");
    }
    Ok(())
}

fn common_flags(p: &Preset, dataset: &str, seed: u64, threads: Option<usize>) -> Vec<String> {
    let mut f: Vec<String> = vec![
        "--dataset".into(),
        dataset.into(),
        "--model".into(),
        p.model.into(),
        "--epochs".into(),
        p.epochs.to_string(),
    ];
    f.extend(["--seed".into(), seed.to_string(), "--progress".into(), "plain".into()]);
    if let Some(t) = threads {
        f.extend(["--threads".into(), t.to_string()]);
    }
    f.extend(p.flags.iter().map(|s| s.to_string()));
    f
}

/// Where a grid's datasets come from (the same sources, in the same order, as `cargo xtask
/// fetch`).
#[derive(Debug, Clone)]
pub struct DataSources {
    /// The checkout's `data/` folder: where the runs look first, and where fetched files go.
    pub data_dir: PathBuf,
    /// Debian's Fashion-MNIST folder: the runs read it directly when it is complete.
    pub debian_dir: PathBuf,
    /// Fashion-MNIST mirrors, tried in order.
    pub fashion_mnist_bases: Vec<String>,
    /// The Fashion-MNIST files with their MD5 and content SHA-256 (the official ones).
    pub fashion_mnist_files: Vec<(crate::fetch::Remote, &'static str)>,
    /// The CIFAR download base.
    pub cifar_base: String,
    /// Install Debian's package with apt-get when downloads fail (as root).
    pub allow_apt: bool,
}

impl DataSources {
    /// The real sources, fetching into the checkout's `data/`.
    pub fn official() -> Self {
        Self {
            data_dir: crate::repo_root().join("data"),
            debian_dir: PathBuf::from(crate::fetch::DEBIAN_FASHION_MNIST),
            fashion_mnist_bases: crate::fetch::FASHION_MNIST_BASES.iter().map(|s| s.to_string()).collect(),
            fashion_mnist_files: crate::fetch::FASHION_MNIST.to_vec(),
            cifar_base: crate::fetch::CIFAR_BASE.to_string(),
            allow_apt: true,
        }
    }
}

/// Makes sure every real dataset of `p` is where the runs will look (`data/`, or Debian's folder
/// for Fashion-MNIST), fetching what is missing. Offline with no source, the error says how to
/// place the files by hand.
pub fn ensure_data(p: &Preset, src: &DataSources) -> Result<()> {
    for d in &p.datasets {
        match *d {
            "synthetic" => {}
            "fashion-mnist" => {
                let have = |dir: &Path| src.fashion_mnist_files.iter().all(|(r, _)| dir.join(r.name).is_file());
                if have(&src.data_dir.join("fashion-mnist")) || have(&src.debian_dir) {
                    continue;
                }
                eprintln!("fashion-mnist is not here yet: fetching it (as `cargo xtask fetch fashion-mnist` would)");
                let bases: Vec<&str> = src.fashion_mnist_bases.iter().map(String::as_str).collect();
                crate::fetch::fetch_fashion_mnist_files(
                    &src.data_dir,
                    &src.debian_dir,
                    &bases,
                    src.allow_apt,
                    &src.fashion_mnist_files,
                )?;
            }
            which @ ("cifar10" | "cifar100") => crate::fetch::fetch_cifar(&src.data_dir, which, &src.cifar_base)?,
            other => bail!("preset {}: no way to fetch dataset `{other}`", p.name),
        }
    }
    Ok(())
}

/// Runs the grid (or this shard of it) and writes the report.
pub fn reproduce(p: &Preset, o: &Options) -> Result<()> {
    if !o.dry_run {
        ensure_data(p, &DataSources::official())?;
    }
    let all = cells(p);
    let total_cells = all.len();
    let mine = shard(all, o.shard.0, o.shard.1);
    let runs = o.out.join("runs");
    let scores = o.out.join("scores");
    eprintln!(
        "preset {} ({}): {} of {total_cells} cells in shard {}/{}",
        p.name,
        p.about,
        mine.len(),
        o.shard.0,
        o.shard.1
    );
    let start = Instant::now();
    let mut timed = 0usize;
    for (k, cell) in mine.iter().enumerate() {
        let dir = cell.dir(&runs);
        let label = format!(
            "[{}/{}] {} {} pf={:.2} seed={}",
            k + 1,
            mine.len(),
            cell.dataset,
            cell.method,
            cell.prune_fraction,
            cell.seed
        );
        if dir.join("summary.json").exists() {
            eprintln!("{label}: done already, skipped");
            continue;
        }
        let t0 = Instant::now();
        let mut flags = common_flags(p, &cell.dataset, cell.seed, o.threads);
        if let Some(file) = ensure_scores(p, o, cell, &scores, &flags, &label)? {
            flags.extend(["--scores".into(), rel(&file).display().to_string()]);
        }
        let mut c = Command::new(&o.binary);
        c.arg("train").args(method_flags(&cell.method)?).arg("--out").arg(rel(&dir)).args(&flags);
        if cell.method != FULL.name {
            c.arg("--prune-fraction").arg(cell.prune_fraction.to_string()).arg("--budget").arg(&cell.budget);
        }
        if dir.join("checkpoint").exists() || dir.join("checkpoint.old").exists() {
            c.arg("--resume");
            eprintln!("{label}: resuming");
        } else {
            eprintln!("{label}: starting");
        }
        if o.dry_run {
            println!("{c:?}");
            continue;
        }
        run(&mut c, "training run")?;
        timed += 1;
        let per = start.elapsed().as_secs_f64() / timed as f64;
        let left = mine[k + 1..].iter().filter(|c| !c.dir(&runs).join("summary.json").exists()).count();
        eprintln!(
            "{label}: finished in {:.0}s; about {:.0} min left for this shard",
            t0.elapsed().as_secs_f64(),
            per * left as f64 / 60.0
        );
    }
    if o.dry_run {
        return Ok(());
    }
    report(p.name, &o.binary, &o.out, &o.command, o.reference.as_deref())
}

/// The static-score file a cell needs, computed first if no shard has computed it yet (under
/// an atomic lock: exactly one computes it); `None` for cells without static scores.
fn ensure_scores(
    p: &Preset,
    o: &Options,
    cell: &Cell,
    scores: &Path,
    flags: &[String],
    label: &str,
) -> Result<Option<PathBuf>> {
    let Some(scorer) = cell.scorer() else { return Ok(None) };
    let file = scores.join(format!("{}-{}-seed{}-{scorer}.csv", cell.dataset, p.model, cell.seed));
    if !file.exists() {
        eprintln!(
            "{label}: {scorer} scores for ({}, {}, seed {}) -> {} (computed once, whichever shard comes first)",
            cell.dataset,
            p.model,
            cell.seed,
            file.display()
        );
        let mut c = Command::new(&o.binary);
        c.arg("score").arg("--scorer").arg(scorer).arg("--scores-out").arg(rel(&file)).args(flags);
        if o.dry_run {
            println!("{c:?}");
        } else {
            compute_once(&file, || run(&mut c, "scoring"))?;
        }
    }
    Ok(Some(file))
}

/// Makes `file` exist by running `compute` at most once across processes, even when several
/// shards (Slurm array tasks, on one machine or on nodes sharing the filesystem) need it at the
/// same moment: the process that creates `<file>.lock` first (atomically, `create_new`) computes
/// and removes the lock; the others wait until the file appears. `compute` must write `file`
/// atomically (the scorer does: temporary file, then rename), so no reader sees it half written.
/// A lock left by a process that died on this host is taken over; if the computing process
/// fails, its lock is removed and a waiting one tries.
pub fn compute_once(file: &Path, compute: impl FnOnce() -> Result<()>) -> Result<()> {
    use std::io::Write as _;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let lock = PathBuf::from(format!("{}.lock", file.display()));
    let me = format!("{} {}", hostname(), std::process::id());
    let mut compute = Some(compute);
    let mut waited = false;
    loop {
        if file.exists() {
            if waited {
                eprintln!("{}: computed by another shard", file.display());
            }
            return Ok(());
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(mut f) => {
                writeln!(f, "{me}").with_context(|| format!("writing {}", lock.display()))?;
                drop(f);
                let result = if file.exists() { Ok(()) } else { (compute.take().expect("computed at most once"))() };
                let _ = std::fs::remove_file(&lock);
                return result;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if lock_is_stale(&lock) {
                    eprintln!("{}: removing a stale lock ({})", lock.display(), std::fs::read_to_string(&lock)?.trim());
                    let _ = std::fs::remove_file(&lock);
                    continue;
                }
                if !waited {
                    eprintln!("{}: another shard is computing it; waiting", file.display());
                    waited = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => return Err(e).with_context(|| format!("creating the lock {}", lock.display())),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A lock written by a process of this host that no longer runs. Locks of other hosts are never
/// judged stale from here (their PIDs mean nothing on this machine).
fn lock_is_stale(lock: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(lock) else { return false };
    let mut it = text.split_whitespace();
    match (it.next(), it.next().and_then(|p| p.parse::<u32>().ok())) {
        (Some(host), Some(pid)) if host == hostname() => !Path::new(&format!("/proc/{pid}")).exists(),
        _ => false,
    }
}

/// Regenerates `results/<preset>/REPORT.md` from whatever finished runs exist.
pub fn report(name: &str, binary: &Path, out: &Path, command: &str, reference: Option<&Path>) -> Result<()> {
    let runs = out.join("runs");
    if !runs.exists() {
        bail!("no runs in {} yet: run `cargo xtask reproduce --preset {name}` first", runs.display());
    }
    // Count against the preset's whole grid, whatever subset (--methods, --seeds, --shard)
    // the last command ran.
    let grid = cells(&preset(name)?);
    let in_grid = grid.iter().filter(|c| c.dir(&runs).join("summary.json").is_file()).count();
    let other = count_summaries(&runs).saturating_sub(in_grid);
    let others = if other > 0 { format!(" (and {other} runs outside it)") } else { String::new() };
    let budget = preset(name)?.budget;
    let mut note = format!(
        "Preset `{name}` (budget {budget}): {in_grid} of its {} grid cells finished{others}. Written by \
         `{command}` (each run's own command is in its `config.json`). Regenerate with `cargo xtask report --preset \
         {name}`.",
        grid.len()
    );
    if let Some(notes) = read_notes(out)? {
        note.push_str("\n\n");
        note.push_str(&notes);
    }
    let mut c = Command::new(binary);
    c.arg("report")
        .arg("--runs")
        .arg(rel(&runs))
        .arg("--out")
        .arg(rel(out))
        .arg("--title")
        .arg(format!("dynaprune: preset {name}"))
        .arg("--note")
        .arg(note);
    // Never compare a folder with itself (when the reference is being regenerated).
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if let Some(r) = reference.filter(|r| !canon(r).starts_with(canon(out))) {
        c.arg("--reference").arg(rel(r));
    }
    run(&mut c, "report")
}

/// What the people who ran a grid wrote about its runs (`<out>/NOTES.md`: which binaries share
/// training code, what was re-run and why), placed in the report under its first note. `None` when
/// there is no such file.
fn read_notes(out: &Path) -> Result<Option<String>> {
    let path = out.join(NOTES_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("{}: cannot read the grid's notes", path.display())),
    }
}

/// The file of free-text notes kept next to a grid's runs and copied into its report.
pub const NOTES_FILE: &str = "NOTES.md";

fn count_summaries(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += count_summaries(&p);
            } else if p.file_name().is_some_and(|f| f == "summary.json") {
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::{compute_once, method_flags, read_notes, NOTES_FILE};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_grids_notes_go_into_its_report_note() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_notes(dir.path()).unwrap(), None, "no file: no notes");
        std::fs::write(dir.path().join(NOTES_FILE), "  \n").unwrap();
        assert_eq!(read_notes(dir.path()).unwrap(), None, "a blank file adds nothing");
        std::fs::write(dir.path().join(NOTES_FILE), "\nSame training code in commits a and b.\n\n").unwrap();
        assert_eq!(read_notes(dir.path()).unwrap().as_deref(), Some("Same training code in commits a and b."));
        // A notes path that cannot be read as text is an error naming it, not silently skipped.
        std::fs::remove_file(dir.path().join(NOTES_FILE)).unwrap();
        std::fs::create_dir(dir.path().join(NOTES_FILE)).unwrap();
        let err = format!("{:#}", read_notes(dir.path()).unwrap_err());
        assert!(err.contains(NOTES_FILE) && err.contains("cannot read the grid's notes"), "{err}");
    }

    #[test]
    fn racing_shards_compute_a_score_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scores/fmnist-resnet8-seed0-el2n.csv");
        let calls = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (file, calls) = (file.clone(), calls.clone());
                std::thread::spawn(move || {
                    compute_once(&file, || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        // Atomically, as the scorer writes it.
                        let tmp = file.with_extension("tmp");
                        std::fs::write(&tmp, "index,score\n0,1.5\n").unwrap();
                        std::fs::rename(&tmp, &file).unwrap();
                        Ok(())
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "computed once");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "index,score\n0,1.5\n");
        assert!(!dir.path().join("scores/fmnist-resnet8-seed0-el2n.csv.lock").exists(), "the lock is released");
        // A lock left by a dead process of this host is taken over.
        let file2 = dir.path().join("scores/other.csv");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        std::fs::write(format!("{}.lock", file2.display()), format!("{} 4194303\n", host.trim())).unwrap();
        compute_once(&file2, || {
            std::fs::write(&file2, "x").unwrap();
            Ok(())
        })
        .unwrap();
        assert!(file2.exists());
        // A failed computation releases its lock, and the error comes back.
        let file3 = dir.path().join("scores/fails.csv");
        let e = compute_once(&file3, || anyhow::bail!("scoring failed")).unwrap_err().to_string();
        assert!(e.contains("scoring failed"));
        assert!(!dir.path().join("scores/fails.csv.lock").exists());
    }

    #[test]
    fn method_names_become_flags() {
        let f = |m: &str| method_flags(m).unwrap().join(" ");
        assert_eq!(f("ucb"), "--policy ucb");
        assert_eq!(f("ucb-plain"), "--policy ucb --staleness off");
        assert_eq!(f("epsilon-greedy-bonus"), "--policy epsilon-greedy --staleness count-bonus");
        assert_eq!(f("ucb+rescore2"), "--policy ucb --rescore-every 2");
        assert_eq!(f("epsilon-greedy-plain+rescore1"), "--policy epsilon-greedy --staleness off --rescore-every 1");
        assert_eq!(f("kakurenbo"), "--policy kakurenbo");
        assert_eq!(f("random+warmup1"), "--policy random --warmup-epochs 1");
        assert_eq!(f("kakurenbo+lrhidden"), "--policy kakurenbo --kakurenbo-lr hidden-fraction");
        for bad in
            ["ucb+rescore0", "ucb+rescore", "ucb+twice", "rs2-plain", "random-bonus", "random+warmup0", "ucb+lrhidden"]
        {
            let e = method_flags(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}

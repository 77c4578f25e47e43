//! `dynaprune train`: one run, with any policy, resumable, with exact time accounting.
//!
//! Output directory:
//! - `config.json`: every resolved flag plus provenance (command, commit, machine);
//! - `epochs.csv`: one row per epoch ([`EpochRow`]);
//! - `summary.json`: written last, when the run is complete ([`Summary`]);
//! - `selection_counts.csv`: per sample, epochs selected (all and pruned-only);
//! - `scores.csv` + `scores.json`: static scores if this run computed them;
//! - `checkpoint/`: model, optimizer, pruner state and accounting after the last completed epoch,
//!   replaced atomically (written to `checkpoint.tmp/`, then renamed).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use dynaprune::PrunerState;
use dynaprune_model::{checkpoint, device, LrSchedule};
use serde::{Deserialize, Serialize};

use crate::accounting::{EpochRow, Summary};
use crate::config::{ScoreArg, TrainArgs};
use crate::engine::{self, Env};
use crate::progress::Progress;
use crate::provenance::{self, Provenance};
use crate::{datasets, models, output, policies, resources, scorers, seeds};

/// `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// All flags, defaults resolved.
    pub args: TrainArgs,
    /// Where the run came from.
    pub provenance: Provenance,
    /// The run's id.
    pub run_id: String,
    /// Training samples.
    pub train_samples: usize,
    /// Test samples.
    pub test_samples: usize,
    /// The data directory used.
    pub data_dir: String,
}

/// `checkpoint/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    completed_epochs: usize,
    rows: Vec<EpochRow>,
    static_scoring_s: f64,
    static_scoring: Option<String>,
    fingerprint: String,
}

/// The flags that must match for `--resume` (everything that changes results).
fn fingerprint(args: &TrainArgs) -> String {
    let mut a = args.clone();
    a.out = PathBuf::new();
    a.resume = false;
    a.stop_after = None;
    a.progress = String::new();
    a.threads = None;
    a.data_dir = None;
    serde_json::to_string(&a).expect("flags serialise")
}

fn run_id(args: &TrainArgs) -> String {
    args.out.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into())
}

/// What `train` returns: the summary, or that the run stopped early (`--stop-after`).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // returned once per run; boxing buys nothing
pub enum Outcome {
    /// The run is complete.
    Done(Summary),
    /// Stopped after this many epochs; resumable.
    Stopped(usize),
}

/// Runs (or resumes) a training run.
pub fn train(mut args: TrainArgs) -> Result<Outcome> {
    args.resolve()?;
    let out = args.out.clone();
    let summary_path = out.join("summary.json");
    let ck_dir = out.join("checkpoint");
    if summary_path.exists() {
        if args.resume {
            let s: Summary = serde_json::from_slice(&std::fs::read(&summary_path)?).context("reading summary.json")?;
            return Ok(Outcome::Done(s));
        }
        bail!(
            "{} already holds a finished run (summary.json): choose another --out, or pass --resume to report it",
            out.display()
        );
    }
    recover_checkpoint_dir(&out)?;
    if !args.resume && (ck_dir.exists() || out.join("epochs.csv").exists()) {
        bail!("{} holds an interrupted run: pass --resume to continue it, or choose another --out", out.display());
    }
    // Epochs were recorded but no checkpoint holds them: resuming would silently start over.
    if args.resume && !ck_dir.exists() && out.join("epochs.csv").exists() {
        bail!(
            "--resume: {} records finished epochs but {} is missing (and no checkpoint.old to recover): the run \
             cannot continue where it stopped; start it again in another --out",
            out.join("epochs.csv").display(),
            ck_dir.display()
        );
    }
    let device = device::parse(&args.device).with_context(|| format!("--device {}", args.device))?;
    let splits = datasets::load(&args)?;
    let env = Env::new(splits, &args, &device)?;
    let shape = env.train.shape();
    models::check_inputs(&args.model, shape.channels, shape.height, shape.width)
        .with_context(|| format!("--dataset {}", args.dataset.as_str()))?;
    let (n_train, n_test) = (env.train.len(), env.test.len());
    let id = run_id(&args);
    // The recorded flags name paths relative to the checkout where they lie inside it.
    let mut recorded = args.clone();
    let rel =
        |p: &std::path::Path| std::path::PathBuf::from(provenance::relative_to_checkout(&p.display().to_string()));
    recorded.out = rel(&recorded.out);
    recorded.scores = recorded.scores.as_deref().map(rel);
    recorded.data_dir = recorded.data_dir.as_deref().map(rel);
    let config = RunConfig {
        args: recorded,
        provenance: provenance::current(),
        run_id: id.clone(),
        train_samples: n_train,
        test_samples: n_test,
        data_dir: provenance::relative_to_checkout(&datasets::resolve_dir(&args).display().to_string()),
    };
    let progress = Progress::new(&args.progress, args.epochs);

    // Resume state, if any.
    // A checkpoint folder without its state is damaged: refuse, never silently start over.
    let resumed: Option<State> = if args.resume && ck_dir.exists() {
        let state_path = ck_dir.join("state.json");
        let bytes = std::fs::read(&state_path).with_context(|| {
            format!("--resume: cannot read {} (the checkpoint is incomplete)", state_path.display())
        })?;
        let st: State = serde_json::from_slice(&bytes)
            .with_context(|| format!("--resume: {} is not a checkpoint state", state_path.display()))?;
        if st.fingerprint != fingerprint(&args) {
            bail!(
                "--resume: the flags differ from the interrupted run's (see {}); rerun with the same flags",
                out.join("config.json").display()
            );
        }
        Some(st)
    } else {
        None
    };
    if resumed.is_none() {
        output::write_json(&out.join("config.json"), &config)?;
    }

    // Static scores: from --scores, from this run's earlier invocation, or computed now.
    let (scores, static_s, static_label) = match args.policy.scorer() {
        None => (None, 0.0, None),
        Some(scorer) => {
            let own = out.join("scores.csv");
            let file = args.scores.clone().or_else(|| own.exists().then(|| own.clone()));
            match file {
                Some(f) => {
                    let (s, info) = scorers::load(&f)?;
                    if info.scorer != scorer.as_str() {
                        bail!(
                            "--scores {} holds `{}` scores but --policy {} needs `{}`",
                            f.display(),
                            info.scorer,
                            args.policy.as_str(),
                            scorer.as_str()
                        );
                    }
                    (Some(s), info.seconds, Some(info.label))
                }
                None => {
                    progress.line(&format!("computing {} scores (their time is charged to this run)", scorer.as_str()));
                    let (s, info) = scorers::compute(scorer, &args, &env)?;
                    scorers::save(&own, &s, &info)?;
                    progress.line(&format!("{} scores took {:.1}s", scorer.as_str(), info.seconds));
                    (Some(s), info.seconds, Some(info.label))
                }
            }
        }
    };

    let model = models::build(&args.model, &env.model_spec(&args, seeds::derive(args.seed, seeds::MODEL)))?;
    let model = model.as_ref();
    let mut opt = engine::optimizer(model, &args)?;
    let mut pruner = policies::build(&args, n_train, scores)?;
    let sched = LrSchedule::parse(&args.schedule).context("--schedule")?;
    let mut rows: Vec<EpochRow> = Vec::new();
    let mut start_epoch = 0;
    if let Some(st) = &resumed {
        checkpoint::load(&ck_dir.join("model.safetensors"), model, Some(&mut opt))?;
        let pruner_path = ck_dir.join("pruner.bin");
        let bytes =
            std::fs::read(&pruner_path).with_context(|| format!("--resume: reading {}", pruner_path.display()))?;
        let state = PrunerState::from_bytes(&bytes).with_context(|| format!("--resume: {}", pruner_path.display()))?;
        pruner.restore(state).with_context(|| format!("--resume: {}", pruner_path.display()))?;
        rows = st.rows.clone();
        start_epoch = st.completed_epochs;
        if let Ok(b) = std::fs::read(ck_dir.join("timing.json")) {
            if let (Ok((e, ck_s, wall)), Some(last)) =
                (serde_json::from_slice::<(usize, f64, f64)>(&b), rows.last_mut())
            {
                if e == last.epoch {
                    last.checkpoint_s = ck_s;
                    last.wall_s = wall;
                }
            }
        }
        progress.line(&format!("resuming {} after epoch {start_epoch}", out.display()));
    }
    let mut cumulative_samples = rows.last().map_or(0, |r| r.cumulative_samples);
    let mut cumulative_train = rows.last().map_or(0.0, |r| r.cumulative_train_s);
    let wants = engine::Wants { el2n: args.score == ScoreArg::El2n, confidence: args.policy.info().reads_predictions };
    let mut epochs_this_call = 0;

    for epoch in start_epoch..args.epochs {
        if args.stop_after.is_some_and(|s| epochs_this_call >= s) {
            progress.finish();
            return Ok(Outcome::Stopped(epoch));
        }
        let t_epoch = Instant::now();
        let cpu_epoch = resources::process_cpu_s();
        // Forward-only re-scoring of samples the rule has not observed recently (its cost is part
        // of this epoch's training time).
        let stale = pruner.rescore_request(epoch);
        let mut rescore_s = 0.0;
        if !stale.is_empty() {
            let t_rescore = Instant::now();
            for (idx, o) in engine::forward_outputs(model, &env.train_plain, &stale, 500, wants)? {
                observe_outputs(&mut pruner, &idx, &o, wants)?;
            }
            rescore_s = t_rescore.elapsed().as_secs_f64();
        }
        let t_plan = Instant::now();
        let plan = pruner.plan(epoch)?;
        let stats = plan.stats().clone();
        let select_s = t_plan.elapsed().as_secs_f64();
        let batches: Vec<(Vec<usize>, Option<Vec<f32>>)> =
            plan.batches(args.batch_size).map(|b| (b.indices.to_vec(), b.weights.map(<[f32]>::to_vec))).collect();
        progress.start_epoch(epoch, batches.len(), stats.phase.as_str());
        let totals = engine::train_epoch(
            &env,
            model,
            &mut opt,
            &args,
            &sched,
            epoch,
            batches,
            stats.lr_factor,
            wants,
            |idx, o| observe_outputs(&mut pruner, idx, o, wants),
            |done, _, loss| progress.batch(done, loss),
        )?;
        let cpu_train = resources::process_cpu_s() - cpu_epoch;
        let t_eval = Instant::now();
        let evaluate = (epoch + 1) % args.eval_every == 0 || epoch + 1 == args.epochs;
        let (test_loss, test_acc) = if evaluate {
            let (l, a) = engine::evaluate(model, &env.test_batches, 500)?;
            (Some(l), Some(a))
        } else {
            (None, None)
        };
        let eval_s = t_eval.elapsed().as_secs_f64();
        cumulative_samples += totals.samples;
        let mut row = EpochRow {
            run_id: id.clone(),
            dataset: args.dataset.as_str().into(),
            model: args.model.clone(),
            policy: args.policy.as_str().into(),
            prune_fraction: if args.policy == crate::config::PolicyArg::Full { 0.0 } else { args.prune_fraction },
            seed: args.seed,
            epoch,
            phase: stats.phase.as_str().into(),
            lr: totals.lr,
            train_loss: totals.loss_sum / totals.samples.max(1) as f64,
            train_acc: totals.correct / totals.samples.max(1) as f64,
            test_loss,
            test_acc,
            samples: totals.samples,
            cumulative_samples,
            overlap: stats.overlap_with_previous,
            coverage: stats.coverage,
            never_selected: stats.never_selected,
            mean_staleness: stats.mean_staleness,
            max_staleness: stats.max_staleness,
            lr_factor: stats.lr_factor,
            weight_sum: stats.weight_sum,
            rescore_samples: stale.len(),
            rescore_s,
            select_s,
            data_s: totals.data_s,
            compute_s: totals.compute_s,
            observe_s: totals.observe_s,
            eval_s,
            cpu_s: cpu_train,
            ..EpochRow::default()
        };
        // Checkpoint (its time is measured and recorded in the row it contains: the row is
        // completed with the checkpoint time after the write).
        let t_ck = Instant::now();
        let train_s_before_ck = t_epoch.elapsed().as_secs_f64() - eval_s;
        row.train_s = train_s_before_ck;
        row.cumulative_train_s = cumulative_train + train_s_before_ck;
        rows.push(row);
        let st = State {
            completed_epochs: epoch + 1,
            rows: rows.clone(),
            static_scoring_s: static_s,
            static_scoring: static_label.clone(),
            fingerprint: fingerprint(&args),
        };
        write_checkpoint(&out, model, &opt, &pruner.state(), &st)?;
        let checkpoint_s = t_ck.elapsed().as_secs_f64();
        let k = rows.len() - 1;
        rows[k].checkpoint_s = checkpoint_s;
        rows[k].wall_s = t_epoch.elapsed().as_secs_f64();
        // The checkpoint's own write time is only known after it is written: record it beside
        // the checkpoint so a resumed run's accounting is complete.
        output::write_json(&ck_dir.join("timing.json"), &(epoch, rows[k].checkpoint_s, rows[k].wall_s))?;
        cumulative_train = rows[k].cumulative_train_s;
        output::write_csv(&out.join("epochs.csv"), &rows)?;
        let last = &rows[k];
        progress.line(&format!(
            "epoch {:>3}/{} {:<7} samples {:>6} loss {:.4} train acc {:.4}{} | train {:.1}s (rescore {:.1}s, select {:.3}s, data {:.2}s, compute {:.1}s, observe {:.3}s) eval {:.1}s{}",
            epoch + 1,
            args.epochs,
            last.phase,
            last.samples,
            last.train_loss,
            last.train_acc,
            test_acc.map(|a| format!(" test acc {a:.4}")).unwrap_or_default(),
            last.train_s,
            last.rescore_s,
            last.select_s,
            last.data_s,
            last.compute_s,
            last.observe_s,
            last.eval_s,
            last.overlap.map(|o| format!(" | overlap {o:.3}")).unwrap_or_default()
        ));
        epochs_this_call += 1;
    }
    progress.finish();

    // Per-sample selection traces (the paper's "sometimes samples").
    let counts = pruner.selection_counts();
    let pruned = pruner.pruned_selection_counts();
    #[derive(Serialize)]
    struct CountRow {
        index: usize,
        selected_epochs: u32,
        selected_pruned_epochs: u32,
        last_score: Option<f32>,
    }
    let count_rows: Vec<CountRow> = (0..n_train)
        .map(|i| CountRow {
            index: i,
            selected_epochs: counts[i],
            selected_pruned_epochs: pruned[i],
            last_score: pruner.buffer().get(i).map(|s| s.last),
        })
        .collect();
    output::write_csv(&out.join("selection_counts.csv"), &count_rows)?;

    let summary =
        summarize(&args, &id, &rows, n_train, static_s, static_label, &device, pruner.pruned_epochs_planned(), pruned)?;
    output::write_json(&summary_path, &summary)?;
    Ok(Outcome::Done(summary))
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    args: &TrainArgs,
    id: &str,
    rows: &[EpochRow],
    n_train: usize,
    static_s: f64,
    static_label: Option<String>,
    device: &candle_core::Device,
    pruned_epochs: usize,
    pruned_counts: &[u32],
) -> Result<Summary> {
    let last = rows.last().context("no epoch ran")?;
    let sum = |f: fn(&EpochRow) -> f64| rows.iter().map(f).sum::<f64>();
    let train_s = sum(|r| r.train_s);
    Ok(Summary {
        run_id: id.into(),
        dataset: args.dataset.as_str().into(),
        model: args.model.clone(),
        policy: args.policy.as_str().into(),
        method: args.method_label(),
        prune_fraction: last.prune_fraction,
        budget: if args.policy == crate::config::PolicyArg::Full { "none".into() } else { args.budget.as_str().into() },
        pruned_epoch_fraction: args.pruned_epoch_fraction,
        seed: args.seed,
        epochs: args.epochs,
        final_test_acc: last.test_acc.unwrap_or(f64::NAN),
        final_test_loss: last.test_loss.unwrap_or(f64::NAN),
        best_test_acc: rows.iter().filter_map(|r| r.test_acc).fold(f64::NAN, f64::max),
        samples: last.cumulative_samples,
        full_data_samples: n_train * args.epochs,
        train_s,
        static_scoring_s: static_s,
        static_scoring: static_label,
        total_s: train_s + static_s,
        rescore_s: sum(|r| r.rescore_s),
        rescore_samples: rows.iter().map(|r| r.rescore_samples).sum(),
        cpu_s: sum(|r| r.cpu_s),
        mean_overlap: crate::accounting::mean_pruned_overlap(rows.iter().map(|r| (r.phase.as_str(), r.overlap))),
        peak_rss_mib: resources::peak_rss_mib(),
        wall_s: sum(|r| r.wall_s),
        select_s: sum(|r| r.select_s),
        data_s: sum(|r| r.data_s),
        compute_s: sum(|r| r.compute_s),
        observe_s: sum(|r| r.observe_s),
        eval_s: sum(|r| r.eval_s),
        checkpoint_s: sum(|r| r.checkpoint_s),
        pruned_epochs,
        selection_histogram: {
            let mut h = vec![0usize; pruned_epochs + 1];
            for &c in pruned_counts {
                h[(c as usize).min(pruned_epochs)] += 1;
            }
            h
        },
        device: format!("{device:?}"),
        threads: rayon::current_num_threads(),
    })
}

/// Hands one batch's per-sample outputs to the pruner: the score the run observes (`--score`),
/// plus predictions when the rule reads them.
fn observe_outputs(
    pruner: &mut dynaprune::Pruner,
    idx: &[usize],
    o: &engine::StepOutput,
    wants: engine::Wants,
) -> Result<()> {
    let values = if wants.el2n { o.el2n.as_deref().unwrap_or(&o.losses) } else { &o.losses };
    match &o.confidence {
        Some(conf) => {
            let correct: Vec<bool> = o.correct.iter().map(|&c| c > 0.5).collect();
            pruner.observe_predictions(idx, values, &correct, conf)?;
        }
        None => pruner.observe(idx, values)?,
    }
    Ok(())
}

/// If a previous process died between the two renames of [`write_checkpoint`], put the last
/// complete checkpoint back in place.
fn recover_checkpoint_dir(out: &Path) -> Result<()> {
    let (ck, old) = (out.join("checkpoint"), out.join("checkpoint.old"));
    if !ck.exists() && old.exists() {
        std::fs::rename(&old, &ck).with_context(|| format!("restoring {}", old.display()))?;
    }
    Ok(())
}

/// Writes the whole checkpoint into `checkpoint.tmp/`, then swaps it in with renames, so a
/// crash at any point leaves either the previous or the new checkpoint, complete.
fn write_checkpoint(
    out: &Path,
    model: &dyn dynaprune_model::Network,
    opt: &dynaprune_model::Sgd,
    pruner: &PrunerState,
    st: &State,
) -> Result<()> {
    let (ck, tmp, old) = (out.join("checkpoint"), out.join("checkpoint.tmp"), out.join("checkpoint.old"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    checkpoint::save(&tmp.join("model.safetensors"), model, Some(opt))?;
    output::write_atomic(&tmp.join("pruner.bin"), &pruner.to_bytes())?;
    output::write_json(&tmp.join("state.json"), st)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if ck.exists() {
        std::fs::rename(&ck, &old)?;
    }
    std::fs::rename(&tmp, &ck).with_context(|| format!("moving {} into place", ck.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

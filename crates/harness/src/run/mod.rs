//! `dynaprune train`: one run, with any policy, resumable, with exact time accounting, in three
//! stages: set up (fresh or from the checkpoint), one epoch at a time, finish.
//!
//! Output directory:
//! - `config.json`: every resolved flag plus provenance (command, commit, machine) ([`RunRecord`]);
//! - `epochs.csv`: one row per epoch ([`EpochRow`]);
//! - `summary.json`: written last, when the run is complete ([`Summary`]);
//! - `selection_counts.csv`: per sample, epochs selected (all and pruned-only);
//! - `scores.csv` + `scores.json`: static scores if this run computed them;
//! - `checkpoint/`: model, optimizer, pruner state and accounting after the last completed epoch,
//!   replaced atomically ([`checkpoint`]).

pub mod accounting;
pub mod checkpoint;
pub mod engine;
pub mod policies;

use std::time::Instant;

use anyhow::{bail, Context, Result};
use dynaprune::Pruner;
use dynaprune_data::BatchSpec;
use dynaprune_model::{Network, Sgd};
use serde::{Deserialize, Serialize};

use self::accounting::{EpochRow, StaticCost, Summary};
use self::checkpoint::{Existing, State};
use self::engine::{Env, EpochTotals, StepOutput, Wants};
use crate::config::{PolicyArg, ScoreArg, Settings, TrainArgs};
use crate::progress::Progress;
use crate::provenance::{self, Provenance};
use crate::{datasets, models, output, resources, scoring, seeds};

/// `config.json`: the run's flags and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
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
pub fn train(args: TrainArgs) -> Result<Outcome> {
    let s = args.resolve()?;
    let resuming = match checkpoint::inspect(&s.run.out, s.run.resume)? {
        Existing::Finished(summary) => return Ok(Outcome::Done(*summary)),
        Existing::Interrupted => true,
        Existing::Nothing => false,
    };
    let mut run = Run::set_up(s, resuming)?;
    for (epochs_this_call, epoch) in (run.start_epoch..run.s.optim.epochs).enumerate() {
        if run.s.run.stop_after.is_some_and(|k| epochs_this_call >= k) {
            run.progress.finish();
            return Ok(Outcome::Stopped(epoch));
        }
        run.epoch(epoch)?;
    }
    run.finish().map(Outcome::Done)
}

/// A run between epochs.
struct Run {
    /// The settings; `s.record` is the flags as recorded (config.json, the resume fingerprint).
    s: Settings,
    id: String,
    env: Env,
    model: Box<dyn Network>,
    opt: Sgd,
    pruner: Pruner,
    /// The per-batch selector of a batch-level rule (Selective-Backprop).
    selector: Option<dynaprune::BackpropSelector>,
    wants: Wants,
    progress: Progress,
    rows: Vec<EpochRow>,
    start_epoch: usize,
    static_cost: StaticCost,
}

impl Run {
    /// Loads the data, records the run (fresh) or reads its checkpoint state (resuming), gets the
    /// static scores, and builds the model, optimizer and pruner, restored when resuming.
    fn set_up(s: Settings, resuming: bool) -> Result<Self> {
        let splits = datasets::load(&s.data, s.run.seed)?;
        let env = Env::new(splits, s.data.augment, s.run.seed, &s.run.device)?;
        let shape = env.train.shape();
        models::check_inputs(&s.model.name, shape.channels, shape.height, shape.width)
            .with_context(|| format!("--dataset {}", s.data.dataset.as_str()))?;
        let id = s.run.out.file_name().map(|x| x.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
        let progress = Progress::new(s.run.progress, s.optim.epochs);
        let resumed = if resuming { Some(checkpoint::read_state(&s.run.out, &s.record)?) } else { None };
        if resumed.is_none() {
            output::write_json(&s.run.out.join("config.json"), &record(&s.record, &s, &env, &id))?;
        }
        let (scores, static_cost) = static_scores(&s, &env, &progress)?;
        let model = models::build(&s.model.name, &env.model_spec(&s.model, seeds::derive(s.run.seed, seeds::MODEL))?)?;
        let mut opt = engine::optimizer(model.as_ref(), &s.optim)?;
        let mut pruner = policies::build(&s.pruning, s.run.seed, env.train.len(), scores)?;
        let mut selector = policies::selector(&s.pruning, s.run.seed)?;
        let (mut rows, mut start_epoch) = (Vec::new(), 0);
        if let Some(st) = resumed {
            rows = st.rows;
            start_epoch = st.completed_epochs;
            checkpoint::restore(&s.run.out, model.as_ref(), &mut opt, &mut pruner, selector.as_mut(), &mut rows)?;
            progress.line(&format!("resuming {} after epoch {start_epoch}", s.run.out.display()));
        }
        let wants =
            Wants { el2n: s.pruning.score == ScoreArg::El2n, confidence: s.pruning.policy.info().reads_predictions };
        Ok(Self { s, id, env, model, opt, pruner, selector, wants, progress, rows, start_epoch, static_cost })
    }

    /// One epoch: re-scoring, selection, training, evaluation, the row, the checkpoint.
    fn epoch(&mut self, epoch: usize) -> Result<()> {
        let t_epoch = Instant::now();
        let cpu_epoch = resources::process_cpu_s();
        // Forward-only re-scoring of samples the rule has not observed recently (its cost is part
        // of this epoch's training time).
        let (rescore_samples, rescore_s) = self.rescore(epoch)?;
        let t_plan = Instant::now();
        let plan = self.pruner.plan(epoch)?;
        let stats = plan.stats().clone();
        let select_s = t_plan.elapsed().as_secs_f64();
        let batches: Vec<BatchSpec> = plan
            .batches(self.s.optim.batch_size)
            .map(|b| BatchSpec { indices: b.indices.to_vec(), weights: b.weights.map(<[f32]>::to_vec) })
            .collect();
        self.progress.start_epoch(epoch, batches.len(), stats.phase.as_str());
        let (pruner, wants, progress) = (&mut self.pruner, self.wants, &self.progress);
        let observe = |idx: &[usize], o: &StepOutput| observe_outputs(pruner, idx, o, wants);
        let on_batch = |done: usize, _: usize, loss: f64| progress.batch(done, loss);
        // A batch-level rule (Selective-Backprop) chooses within each batch of its pruned epochs:
        // its candidate passes are forward-only passes, charged like re-scoring.
        let (totals, candidates) = match self.selector.as_mut() {
            Some(selector) if !stats.phase.is_full() => engine::train_epoch_selective(
                &self.env,
                self.model.as_ref(),
                &mut self.opt,
                &self.s.optim,
                epoch,
                batches,
                selector,
                wants,
                observe,
                on_batch,
            )?,
            _ => (
                engine::train_epoch(
                    &self.env,
                    self.model.as_ref(),
                    &mut self.opt,
                    &self.s.optim,
                    epoch,
                    batches,
                    stats.lr_factor,
                    wants,
                    observe,
                    on_batch,
                )?,
                engine::CandidateTotals::default(),
            ),
        };
        let (rescore_samples, rescore_s) = (rescore_samples + candidates.samples, rescore_s + candidates.seconds);
        let cpu_s = resources::process_cpu_s() - cpu_epoch;
        let t_eval = Instant::now();
        let evaluated = self.evaluate(epoch)?;
        let eval_s = t_eval.elapsed().as_secs_f64();
        let mut row = self.row(epoch, &stats, &totals, evaluated);
        if candidates.samples > 0 {
            // A batch-level rule's plan lists its candidates, not what it trained on: the plan's
            // overlap and coverage describe nothing, and the trained samples weigh 1 each.
            (row.overlap, row.coverage, row.never_selected) = (None, None, None);
            row.weight_sum = totals.samples as f64;
        }
        (row.rescore_samples, row.rescore_s, row.select_s, row.eval_s, row.cpu_s) =
            (rescore_samples, rescore_s, select_s, eval_s, cpu_s);
        self.save(row, t_epoch, eval_s)?;
        self.log(epoch);
        Ok(())
    }

    /// Re-scores the samples the rule asks for; returns how many and the seconds it took.
    fn rescore(&mut self, epoch: usize) -> Result<(usize, f64)> {
        let stale = self.pruner.rescore_request(epoch);
        if stale.is_empty() {
            return Ok((0, 0.0));
        }
        let t = Instant::now();
        for (idx, o) in engine::forward_outputs(self.model.as_ref(), &self.env.train_plain, &stale, 500, self.wants)? {
            observe_outputs(&mut self.pruner, &idx, &o, self.wants)?;
        }
        Ok((stale.len(), t.elapsed().as_secs_f64()))
    }

    /// Test loss and accuracy, on the epochs that evaluate (`--eval-every`, and the last).
    fn evaluate(&self, epoch: usize) -> Result<Option<(f64, f64)>> {
        let due = (epoch + 1).is_multiple_of(self.s.run.eval_every) || epoch + 1 == self.s.optim.epochs;
        Ok(if due { Some(engine::evaluate(self.model.as_ref(), &self.env.test_batches, 500)?) } else { None })
    }

    /// The epoch's row, without the times measured around it.
    fn row(
        &self,
        epoch: usize,
        stats: &dynaprune::PlanStats,
        totals: &EpochTotals,
        evaluated: Option<(f64, f64)>,
    ) -> EpochRow {
        let p = &self.s.pruning;
        EpochRow {
            run_id: self.id.clone(),
            dataset: self.s.data.dataset.as_str().into(),
            model: self.s.model.name.clone(),
            policy: p.policy.as_str().into(),
            prune_fraction: if p.policy == PolicyArg::Full { 0.0 } else { p.prune_fraction },
            seed: self.s.run.seed,
            epoch,
            phase: stats.phase.as_str().into(),
            lr: totals.lr,
            train_loss: totals.loss_sum / totals.samples.max(1) as f64,
            train_acc: totals.correct / totals.samples.max(1) as f64,
            test_loss: evaluated.map(|e| e.0),
            test_acc: evaluated.map(|e| e.1),
            samples: totals.samples,
            cumulative_samples: self.rows.last().map_or(0, |r| r.cumulative_samples) + totals.samples,
            overlap: stats.overlap_with_previous,
            coverage: stats.coverage,
            never_selected: stats.never_selected,
            mean_staleness: stats.mean_staleness,
            max_staleness: stats.max_staleness,
            lr_factor: stats.lr_factor,
            weight_sum: stats.weight_sum,
            data_s: totals.data_s,
            compute_s: totals.compute_s,
            observe_s: totals.observe_s,
            ..EpochRow::default()
        }
    }

    /// Writes the checkpoint holding `row` (whose training time is the epoch's time so far minus
    /// evaluation), then completes the row with the checkpoint's own write time and the epoch's
    /// wall time, and rewrites `epochs.csv`.
    fn save(&mut self, mut row: EpochRow, t_epoch: Instant, eval_s: f64) -> Result<()> {
        let t_ck = Instant::now();
        row.train_s = t_epoch.elapsed().as_secs_f64() - eval_s;
        row.cumulative_train_s = self.rows.last().map_or(0.0, |r| r.cumulative_train_s) + row.train_s;
        let epoch = row.epoch;
        self.rows.push(row);
        let st = State {
            completed_epochs: epoch + 1,
            rows: self.rows.clone(),
            fingerprint: checkpoint::fingerprint(&self.s.record),
        };
        let out = &self.s.run.out;
        let selector = self.selector.as_ref().map(dynaprune::BackpropSelector::to_bytes);
        checkpoint::write(out, self.model.as_ref(), &self.opt, &self.pruner.state(), selector.as_deref(), &st)?;
        let last = self.rows.last_mut().expect("pushed");
        last.checkpoint_s = t_ck.elapsed().as_secs_f64();
        last.wall_s = t_epoch.elapsed().as_secs_f64();
        checkpoint::write_timing(out, epoch, last.checkpoint_s, last.wall_s)?;
        output::write_csv(&out.join("epochs.csv"), &self.rows)
    }

    /// The epoch's log line.
    fn log(&self, epoch: usize) {
        let last = self.rows.last().expect("an epoch ran");
        self.progress.line(&format!(
            "epoch {:>3}/{} {:<7} samples {:>6} loss {:.4} train acc {:.4}{} | train {:.1}s (rescore {:.1}s, select {:.3}s, data {:.2}s, compute {:.1}s, observe {:.3}s) eval {:.1}s{}",
            epoch + 1,
            self.s.optim.epochs,
            last.phase,
            last.samples,
            last.train_loss,
            last.train_acc,
            last.test_acc.map(|a| format!(" test acc {a:.4}")).unwrap_or_default(),
            last.train_s,
            last.rescore_s,
            last.select_s,
            last.data_s,
            last.compute_s,
            last.observe_s,
            last.eval_s,
            last.overlap.map(|o| format!(" | overlap {o:.3}")).unwrap_or_default()
        ));
    }

    /// Writes the per-sample selection traces (the paper's "sometimes samples") and the summary.
    fn finish(self) -> Result<Summary> {
        self.progress.finish();
        let n = self.env.train.len();
        let (counts, pruned) = (self.pruner.selection_counts(), self.pruner.pruned_selection_counts());
        #[derive(Serialize)]
        struct CountRow {
            index: usize,
            selected_epochs: u32,
            selected_pruned_epochs: u32,
            last_score: Option<f32>,
        }
        let count_rows: Vec<CountRow> = (0..n)
            .map(|i| CountRow {
                index: i,
                selected_epochs: counts[i],
                selected_pruned_epochs: pruned[i],
                last_score: self.pruner.buffer().get(i).map(|s| s.last),
            })
            .collect();
        let out = &self.s.run.out;
        output::write_csv(&out.join("selection_counts.csv"), &count_rows)?;
        let summary = accounting::summarize(
            &self.s,
            &self.id,
            &self.rows,
            n,
            &self.static_cost,
            self.pruner.pruned_epochs_planned(),
            pruned,
        )?;
        output::write_json(&out.join("summary.json"), &summary)?;
        Ok(summary)
    }
}

/// `config.json` of a fresh run: the flags, with paths inside the checkout made relative to it.
fn record(args: &TrainArgs, s: &Settings, env: &Env, id: &str) -> RunRecord {
    let mut recorded = args.clone();
    fn rel(p: &std::path::Path) -> std::path::PathBuf {
        std::path::PathBuf::from(provenance::relative_to_checkout(&p.display().to_string()))
    }
    recorded.out = rel(&recorded.out);
    recorded.scores = recorded.scores.as_deref().map(rel);
    recorded.data_dir = recorded.data_dir.as_deref().map(rel);
    let kernels = Some(dynaprune_model::cpu::kernel_path(s.model.kernels, &s.run.device));
    RunRecord {
        args: recorded,
        provenance: Provenance { kernels, ..provenance::current() },
        run_id: id.to_string(),
        train_samples: env.train.len(),
        test_samples: env.test.len(),
        data_dir: provenance::relative_to_checkout(&datasets::resolve_dir(&s.data).display().to_string()),
    }
}

/// Static scores: from `--scores`, from this run's earlier invocation, or computed now (their
/// time is charged to the run either way).
fn static_scores(s: &Settings, env: &Env, progress: &Progress) -> Result<(Option<Vec<f32>>, StaticCost)> {
    let Some(scorer) = s.pruning.policy.scorer() else { return Ok((None, StaticCost::none())) };
    let own = s.run.out.join("scores.csv");
    let file = s.scoring.file.clone().or_else(|| own.exists().then(|| own.clone()));
    if let Some(f) = file {
        let (scores, info) = scoring::load(&f)?;
        if info.scorer != scorer.as_str() {
            bail!(
                "--scores {} holds `{}` scores but --policy {} needs `{}`",
                f.display(),
                info.scorer,
                s.pruning.policy.as_str(),
                scorer.as_str()
            );
        }
        return Ok((Some(scores), StaticCost::of(info)));
    }
    progress.line(&format!("computing {} scores (their time is charged to this run)", scorer.as_str()));
    let (scores, info) = scoring::compute(scorer, s, env)?;
    scoring::save(&own, &scores, &info)?;
    progress.line(&format!("{} scores took {:.1}s", scorer.as_str(), info.seconds));
    Ok((Some(scores), StaticCost::of(info)))
}

/// Hands one batch's per-sample outputs to the pruner: the score the run observes (`--score`),
/// plus predictions when the rule reads them.
fn observe_outputs(pruner: &mut Pruner, idx: &[usize], o: &StepOutput, wants: Wants) -> Result<()> {
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

//! The [`Pruner`]: a policy, a score buffer and a schedule, driven epoch by epoch.

use std::time::Instant;

use crate::buffer::{EmaBuffer, SampleStats, ScoreBuffer};
use crate::error::{PruneError, Result};
use crate::plan::{EpochPlan, PlanStats};
use crate::policy::{FullData, Policy, SelectContext, Selection};
use crate::rng::stream;
use crate::schedule::{Phase, Schedule};
use crate::select::{shuffle_together, BitSet};
use crate::state::PrunerState;

/// Drives a [`Policy`] over a run: builds each epoch's plan, feeds observations into the score
/// buffer, and keeps the accounting.
///
/// Built with [`Pruner::builder`]. All randomness comes from `seed` through per-purpose,
/// per-epoch streams ([`crate::rng`]), so the plan of epoch `e` depends only on the seed, the
/// buffer's contents and the previous selection: a run resumed from [`Pruner::state`] plans
/// exactly what the uninterrupted run would.
#[derive(Debug)]
pub struct Pruner {
    n: usize,
    seed: u64,
    schedule: Schedule,
    policy: Box<dyn Policy>,
    buffer: Box<dyn ScoreBuffer>,
    /// The last selection the policy made, reused by `Reuse` epochs and static policies.
    selection: Option<Selection>,
    /// Members of the previous plan, for the overlap statistic.
    previous: Option<BitSet>,
    /// Per-sample count of pruned (non-full) epochs whose plan held the sample.
    pruned_counts: Vec<u32>,
    /// Number of full-data epochs planned.
    full_epochs: u32,
    /// Number of pruned epochs planned.
    pruned_epochs: u32,
    /// The last epoch planned.
    last_epoch: Option<usize>,
    /// Re-scoring interval asked for by the caller (0 = off); see [`Pruner::rescore_request`].
    rescore_every: usize,
}

/// Builder for [`Pruner`]; see [`Pruner::builder`].
#[derive(Debug)]
pub struct PrunerBuilder {
    n: usize,
    seed: u64,
    schedule: Option<Schedule>,
    policy: Box<dyn Policy>,
    buffer: Option<Box<dyn ScoreBuffer>>,
    rescore_every: usize,
}

impl PrunerBuilder {
    /// Ask for a forward-only re-scoring pass every `r` selections (0 = off, the default): see
    /// [`Pruner::rescore_request`]. Rules that need one (KAKURENBO) get it regardless.
    pub fn rescore_every(mut self, r: usize) -> Self {
        self.rescore_every = r;
        self
    }

    /// The selection rule (default: [`FullData`]).
    pub fn policy(mut self, policy: impl Policy + 'static) -> Self {
        self.policy = Box::new(policy);
        self
    }

    /// The selection rule, boxed (for rules chosen at run time).
    pub fn boxed_policy(mut self, policy: Box<dyn Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// The schedule (required).
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// The root seed (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The score buffer (default: [`EmaBuffer`] with the policy's
    /// [`Policy::preferred_ema_decay`], 0.9 for most rules).
    pub fn buffer(mut self, buffer: impl ScoreBuffer + 'static) -> Self {
        self.buffer = Some(Box::new(buffer));
        self
    }

    /// Checks everything and builds the pruner.
    pub fn build(self) -> Result<Pruner> {
        if self.n == 0 {
            return Err(PruneError::EmptyDataset);
        }
        if u32::try_from(self.n).is_err() {
            return Err(PruneError::InvalidKnob {
                name: "n",
                value: self.n as f64,
                expected: "at most 2^32 - 1 samples",
            });
        }
        let schedule = self.schedule.ok_or_else(|| {
            PruneError::InvalidSchedule("no schedule given: call .schedule(Schedule::new(epochs))".into())
        })?;
        schedule.validate()?;
        if let Some(got) = self.policy.sample_count().filter(|&k| k != self.n) {
            return Err(PruneError::ScoreCountMismatch { expected: self.n, got });
        }
        let buffer = match self.buffer {
            Some(b) => b,
            None => Box::new(EmaBuffer::new(self.n, self.policy.preferred_ema_decay())?),
        };
        if buffer.len() != self.n {
            return Err(PruneError::ScoreCountMismatch { expected: self.n, got: buffer.len() });
        }
        Ok(Pruner {
            n: self.n,
            seed: self.seed,
            schedule,
            policy: self.policy,
            buffer,
            selection: None,
            previous: None,
            pruned_counts: vec![0; self.n],
            full_epochs: 0,
            pruned_epochs: 0,
            last_epoch: None,
            rescore_every: self.rescore_every,
        })
    }
}

impl Pruner {
    /// Starts building a pruner for `n` samples (indices `0..n`).
    pub fn builder(n: usize) -> PrunerBuilder {
        PrunerBuilder { n, seed: 0, schedule: None, policy: Box::new(FullData), buffer: None, rescore_every: 0 }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always `false`: a pruner has at least one sample.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The policy.
    pub fn policy(&self) -> &dyn Policy {
        self.policy.as_ref()
    }

    /// The score buffer.
    pub fn buffer(&self) -> &dyn ScoreBuffer {
        self.buffer.as_ref()
    }

    /// The root seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The phase `epoch` will have.
    pub fn phase(&self, epoch: usize) -> Phase {
        if self.policy.is_full_data() {
            Phase::Full
        } else {
            self.schedule.phase(epoch)
        }
    }

    /// Builds the plan of `epoch`. Epochs must be planned in increasing order (gaps are allowed,
    /// repeats are not), each once.
    pub fn plan(&mut self, epoch: usize) -> Result<EpochPlan> {
        let start = Instant::now();
        if epoch >= self.schedule.epochs() {
            return Err(PruneError::EpochOutOfRange { epoch, epochs: self.schedule.epochs() });
        }
        if let Some(last) = self.last_epoch {
            if epoch <= last {
                return Err(PruneError::EpochOrder { epoch, last });
            }
        }
        let phase = self.phase(epoch);
        // Staleness of the scores the selection sees (seen samples only), before anything changes.
        let (mean_staleness, max_staleness) = staleness(self.buffer.records(), epoch);
        let (mut indices, mut weights, notes, lr_factor) = self.choose(epoch, phase)?;
        let (overlap, never_selected) = self.account(&indices, phase);
        self.last_epoch = Some(epoch);
        shuffle_together(&mut indices, weights.as_mut(), &mut stream(self.seed, "shuffle", epoch as u64))?;
        let kept = indices.len();
        let weight_sum = weights.as_ref().map_or(kept as f64, |w| w.iter().map(|&x| f64::from(x)).sum());
        let stats = PlanStats {
            epoch,
            phase,
            n: self.n,
            kept,
            saving: 1.0 - kept as f64 / self.n as f64,
            overlap_with_previous: overlap,
            weight_sum,
            plan_seconds: start.elapsed().as_secs_f64(),
            notes,
            lr_factor: lr_factor.unwrap_or(1.0),
            never_selected,
            coverage: never_selected.map(|z| 1.0 - z as f64 / self.n as f64),
            mean_staleness,
            max_staleness,
        };
        Ok(EpochPlan { indices, weights, stats })
    }

    /// The samples of `epoch` in `phase`, with their weights, notes and learning-rate factor:
    /// everything for a full-data phase, the stored selection when it is reused, or a fresh,
    /// checked selection from the policy (stored when a later epoch will reuse it).
    fn choose(&mut self, epoch: usize, phase: Phase) -> Result<Chosen> {
        Ok(if phase.is_full() {
            ((0..self.n).collect::<Vec<_>>(), None, Vec::new(), None)
        } else {
            let reuse = phase == Phase::Reuse || !self.policy.is_dynamic();
            let fresh = if reuse && self.selection.is_some() {
                None
            } else {
                let ctx = SelectContext {
                    epoch,
                    epochs: self.schedule.epochs(),
                    seed: self.seed,
                    selection: self.selections_before(epoch),
                };
                let mut rng = stream(self.seed, "select", epoch as u64);
                let sel = self.policy.select(&ctx, self.buffer.as_ref(), &mut rng)?;
                check_selection(&sel, self.n)?;
                Some(sel)
            };
            // Keep the selection only if a later epoch will reuse it (it is part of the state).
            let keep = !self.policy.is_dynamic() || self.phase(epoch + 1) == Phase::Reuse;
            match fresh {
                Some(sel) if keep => {
                    let parts = (sel.indices.clone(), sel.weights.clone(), sel.notes.clone(), sel.lr_factor);
                    self.selection = Some(sel);
                    parts
                }
                Some(sel) => {
                    self.selection = None;
                    (sel.indices, sel.weights, sel.notes, sel.lr_factor)
                }
                None => {
                    let sel = self.selection.as_ref().expect("reuse implies a stored selection");
                    (sel.indices.clone(), sel.weights.clone(), sel.notes.clone(), sel.lr_factor)
                }
            }
        })
    }

    /// Accounts for a plan of `phase` over `indices`, in one pass (membership, overlap with the
    /// previous plan, selection counts; before the shuffle, while the indices are still mostly in
    /// order, which is cache-friendly). Returns the overlap with the previous plan and how many
    /// samples no pruned epoch has selected yet.
    fn account(&mut self, indices: &[usize], phase: Phase) -> (Option<f64>, Option<usize>) {
        let mut members = BitSet::new(self.n);
        let mut common = 0usize;
        let pruned = !phase.is_full();
        for &i in indices {
            members.insert(i);
            if let Some(prev) = &self.previous {
                common += usize::from(prev.contains(i));
            }
            if pruned {
                self.pruned_counts[i] += 1;
            }
        }
        let overlap = self.previous.as_ref().map(|_| common as f64 / indices.len().max(1) as f64);
        if pruned {
            self.pruned_epochs += 1;
        } else {
            self.full_epochs += 1;
        }
        let never_selected = (self.pruned_epochs > 0).then(|| self.pruned_counts.iter().filter(|&&c| c == 0).count());
        self.previous = Some(members);
        (overlap, never_selected)
    }

    /// Records one value (usually the per-sample loss) per sample index, attributed to the last
    /// planned epoch (0 before any plan). On error nothing is recorded.
    pub fn observe(&mut self, indices: &[usize], values: &[f32]) -> Result<()> {
        self.buffer.observe(self.last_epoch.unwrap_or(0), indices, values)
    }

    /// Like [`Pruner::observe`], and also records each sample's prediction: whether it was right
    /// and its confidence (largest softmax probability, in `(0, 1]`). KAKURENBO needs both; other
    /// rules ignore them. On error nothing is recorded.
    pub fn observe_predictions(
        &mut self,
        indices: &[usize],
        values: &[f32],
        correct: &[bool],
        confidence: &[f32],
    ) -> Result<()> {
        self.buffer.observe_predictions(self.last_epoch.unwrap_or(0), indices, values, correct, confidence)
    }

    /// Samples whose score is older than `max_age` epochs when planning `epoch` (never-seen
    /// samples included), in increasing order: the candidates for a forward-only re-scoring pass.
    /// `max_age = 0` returns every sample not observed in the epoch just before.
    pub fn stale(&self, epoch: usize, max_age: usize) -> Vec<usize> {
        self.buffer
            .records()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.age(epoch).is_none_or(|a| a as usize >= max_age.max(1)))
            .map(|(i, _)| i)
            .collect()
    }

    /// The re-scoring interval in force: the rule's own need ([`Policy::rescore_every`]) or the
    /// builder's [`PrunerBuilder::rescore_every`], the shorter if both are set; 0 = none. Rules
    /// that ignore scores never re-score.
    pub fn rescore_interval(&self) -> usize {
        if !self.policy.uses_scores() || self.policy.is_full_data() {
            return 0;
        }
        match (self.policy.rescore_every(), self.rescore_every) {
            (0, r) | (r, 0) => r,
            (p, r) => p.min(r),
        }
    }

    /// The samples that want a fresh score before `epoch` is planned: with a re-scoring interval
    /// `R` ([`Pruner::rescore_interval`]), at every `R`-th fresh selection, each sample not
    /// observed within the last `R` epochs. Empty when nothing is due. Run a forward-only pass
    /// over them and feed the results with [`Pruner::observe`] (or
    /// [`Pruner::observe_predictions`]) *before* calling [`Pruner::plan`] for `epoch`: the scores
    /// then count as observed in the epoch just before.
    pub fn rescore_request(&self, epoch: usize) -> Vec<usize> {
        let r = self.rescore_interval();
        if r == 0 || epoch == 0 || epoch >= self.schedule.epochs() || self.phase(epoch) != Phase::Select {
            return Vec::new();
        }
        if self.last_epoch.is_some_and(|last| last >= epoch) || self.selections_before(epoch) % r != 0 {
            return Vec::new();
        }
        self.stale(epoch, r)
    }

    /// Fresh selections the schedule makes before `epoch`.
    fn selections_before(&self, epoch: usize) -> usize {
        (0..epoch).filter(|&e| self.phase(e) == Phase::Select).count()
    }

    /// Per-sample number of planned epochs whose plan held the sample (full-data epochs count
    /// for everyone). Divide by [`Pruner::epochs_planned`] for a selection frequency.
    pub fn selection_counts(&self) -> Vec<u32> {
        self.pruned_counts.iter().map(|c| c + self.full_epochs).collect()
    }

    /// Per-sample number of *pruned* epochs whose plan held the sample: the paper's "sometimes
    /// samples" analysis looks at how this is distributed.
    pub fn pruned_selection_counts(&self) -> &[u32] {
        &self.pruned_counts
    }

    /// Epochs planned so far (full and pruned).
    pub fn epochs_planned(&self) -> usize {
        (self.full_epochs + self.pruned_epochs) as usize
    }

    /// Pruned epochs planned so far.
    pub fn pruned_epochs_planned(&self) -> usize {
        self.pruned_epochs as usize
    }

    /// The last planned epoch.
    pub fn last_epoch(&self) -> Option<usize> {
        self.last_epoch
    }

    /// Everything needed to resume: buffer, last selection, counts. Serialise it with
    /// [`PrunerState::to_bytes`].
    pub fn state(&self) -> PrunerState {
        PrunerState {
            n: self.n as u64,
            seed: self.seed,
            policy: self.policy.name().to_string(),
            last_epoch: self.last_epoch.map(|e| e as u64),
            full_epochs: self.full_epochs,
            pruned_epochs: self.pruned_epochs,
            selection: self
                .selection
                .as_ref()
                .map(|s| (s.indices.iter().map(|&i| i as u32).collect(), s.weights.clone())),
            selection_notes: self.selection.as_ref().map(|s| s.notes.clone()).unwrap_or_default(),
            selection_lr_factor: self.selection.as_ref().and_then(|s| s.lr_factor),
            previous: self.previous.as_ref().map(|p| {
                let mut v: Vec<u32> = Vec::new();
                for i in 0..self.n {
                    if p.contains(i) {
                        v.push(i as u32);
                    }
                }
                v
            }),
            pruned_counts: self.pruned_counts.clone(),
            buffer: self.buffer.records().to_vec(),
        }
    }

    /// Restores a state saved by [`Pruner::state`] from a pruner built with the same sample
    /// count, seed and policy.
    pub fn restore(&mut self, state: PrunerState) -> Result<()> {
        if state.n != self.n as u64 || state.seed != self.seed || state.policy != self.policy.name() {
            return Err(PruneError::BadState(format!(
                "state is for n={}, seed={}, policy={} but this pruner has n={}, seed={}, policy={}",
                state.n,
                state.seed,
                state.policy,
                self.n,
                self.seed,
                self.policy.name()
            )));
        }
        if state.pruned_counts.len() != self.n {
            return Err(PruneError::BadState("selection counts have the wrong length".into()));
        }
        let in_range = |v: &[u32]| v.iter().all(|&i| (i as usize) < self.n);
        let selection = match state.selection {
            None => None,
            Some((idx, w)) => {
                if !in_range(&idx) || w.as_ref().is_some_and(|w| w.len() != idx.len()) {
                    return Err(PruneError::BadState("saved selection is inconsistent".into()));
                }
                let notes = state.selection_notes;
                Some(Selection {
                    indices: idx.into_iter().map(|i| i as usize).collect(),
                    weights: w,
                    notes,
                    lr_factor: state.selection_lr_factor,
                })
            }
        };
        let previous = match state.previous {
            None => None,
            Some(p) => {
                if !in_range(&p) {
                    return Err(PruneError::BadState("saved previous plan has out-of-range indices".into()));
                }
                Some(BitSet::from_indices(self.n, &p.iter().map(|&i| i as usize).collect::<Vec<_>>()))
            }
        };
        self.buffer.restore(state.buffer)?;
        self.selection = selection;
        self.previous = previous;
        self.pruned_counts = state.pruned_counts;
        self.full_epochs = state.full_epochs;
        self.pruned_epochs = state.pruned_epochs;
        self.last_epoch = state.last_epoch.map(|e| e as usize);
        Ok(())
    }
}

/// What a plan trains on before the shuffle: indices, weights, the policy's notes and its
/// learning-rate factor.
type Chosen = (Vec<usize>, Option<Vec<f32>>, Vec<(String, f64)>, Option<f64>);

/// Mean and largest age (whole epochs since the last observation) over seen samples when planning
/// `epoch`; `(0, 0)` when nothing was seen.
fn staleness(records: &[SampleStats], epoch: usize) -> (f64, u32) {
    let (mut sum, mut max, mut seen) = (0u64, 0u32, 0u64);
    for a in records.iter().filter_map(|r| r.age(epoch)) {
        sum += u64::from(a);
        max = max.max(a);
        seen += 1;
    }
    (if seen > 0 { sum as f64 / seen as f64 } else { 0.0 }, max)
}

fn check_selection(sel: &Selection, n: usize) -> Result<()> {
    if let Some(f) = sel.lr_factor {
        if !(f.is_finite() && f > 0.0) {
            return Err(PruneError::BadSelection(format!(
                "a learning-rate factor of {f}: expected a finite value > 0"
            )));
        }
    }
    if sel.indices.is_empty() {
        return Err(PruneError::BadSelection("no samples selected".into()));
    }
    if let Some(w) = &sel.weights {
        if w.len() != sel.indices.len() {
            return Err(PruneError::LengthMismatch { indices: sel.indices.len(), values: w.len() });
        }
    }
    let mut seen = BitSet::new(n);
    for &i in &sel.indices {
        if i >= n {
            return Err(PruneError::IndexOutOfRange { index: i, len: n });
        }
        if seen.contains(i) {
            return Err(PruneError::BadSelection(format!("sample {i} selected twice")));
        }
        seen.insert(i);
    }
    Ok(())
}

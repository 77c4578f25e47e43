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
}

/// Builder for [`Pruner`]; see [`Pruner::builder`].
#[derive(Debug)]
pub struct PrunerBuilder {
    n: usize,
    seed: u64,
    schedule: Option<Schedule>,
    policy: Box<dyn Policy>,
    buffer: Option<Box<dyn ScoreBuffer>>,
}

impl PrunerBuilder {
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

    /// The score buffer (default: [`EmaBuffer`] with decay 0.9).
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
        let buffer = match self.buffer {
            Some(b) => b,
            None => Box::new(EmaBuffer::new(self.n, EmaBuffer::DEFAULT_DECAY)?),
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
        })
    }
}

impl Pruner {
    /// Starts building a pruner for `n` samples (indices `0..n`).
    pub fn builder(n: usize) -> PrunerBuilder {
        PrunerBuilder { n, seed: 0, schedule: None, policy: Box::new(FullData), buffer: None }
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
                return Err(PruneError::BadState(format!(
                    "epoch {epoch} planned after epoch {last}: plan each epoch once, in increasing order"
                )));
            }
        }
        let phase = self.phase(epoch);
        let (mut indices, mut weights, notes) = if phase.is_full() {
            ((0..self.n).collect::<Vec<_>>(), None, Vec::new())
        } else {
            let reuse = phase == Phase::Reuse || !self.policy.is_dynamic();
            let fresh = if reuse && self.selection.is_some() {
                None
            } else {
                let ctx = SelectContext { epoch, epochs: self.schedule.epochs() };
                let mut rng = stream(self.seed, "select", epoch as u64);
                let sel = self.policy.select(&ctx, self.buffer.as_ref(), &mut rng)?;
                check_selection(&sel, self.n)?;
                Some(sel)
            };
            // Keep the selection only if a later epoch will reuse it (it is part of the state).
            let keep = !self.policy.is_dynamic() || self.phase(epoch + 1) == Phase::Reuse;
            match fresh {
                Some(sel) if keep => {
                    let parts = (sel.indices.clone(), sel.weights.clone(), sel.notes.clone());
                    self.selection = Some(sel);
                    parts
                }
                Some(sel) => {
                    self.selection = None;
                    (sel.indices, sel.weights, sel.notes)
                }
                None => {
                    let sel = self.selection.as_ref().expect("reuse implies a stored selection");
                    (sel.indices.clone(), sel.weights.clone(), sel.notes.clone())
                }
            }
        };
        // Accounting, in one pass: membership, overlap with the previous plan, selection counts.
        // Done before the shuffle, while the indices are still mostly in order (cache-friendly).
        let mut members = BitSet::new(self.n);
        let mut common = 0usize;
        let pruned = !phase.is_full();
        for &i in &indices {
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
        self.previous = Some(members);
        self.last_epoch = Some(epoch);
        shuffle_together(&mut indices, weights.as_mut(), &mut stream(self.seed, "shuffle", epoch as u64));
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
        };
        Ok(EpochPlan { indices, weights, stats })
    }

    /// Records one value (usually the per-sample loss) per sample index, attributed to the last
    /// planned epoch (0 before any plan). On error nothing is recorded.
    pub fn observe(&mut self, indices: &[usize], values: &[f32]) -> Result<()> {
        self.buffer.observe(self.last_epoch.unwrap_or(0), indices, values)
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
                Some(Selection { indices: idx.into_iter().map(|i| i as usize).collect(), weights: w, notes })
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

    /// Replaces the buffer's records directly (e.g. to seed scores computed elsewhere).
    pub fn restore_buffer(&mut self, records: Vec<SampleStats>) -> Result<()> {
        self.buffer.restore(records)
    }
}

fn check_selection(sel: &Selection, n: usize) -> Result<()> {
    if sel.indices.is_empty() {
        return Err(PruneError::BadState("the policy selected no samples".into()));
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
            return Err(PruneError::BadState(format!("the policy selected sample {i} twice")));
        }
        seen.insert(i);
    }
    Ok(())
}

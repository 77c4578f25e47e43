//! `Schedule`, `Pruner` and `Plan`.

use dynaprune::{EmaBuffer, LastValueBuffer, PlanStats, PrunerState, Schedule};
use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySlice, PyTuple};

use crate::arrays::{self, index_array};
use crate::errors::{value_error, IntoPy};
use crate::policies::PyPolicy;

/// When a run prunes: `warmup` full-data epochs first, a new selection every `interval` epochs,
/// and `anneal` full-data epochs at the end (or `anneal_fraction` of the run, InfoBatch's
/// `1 - delta`). Epochs are numbered from 0.
#[pyclass(frozen, name = "Schedule", module = "dynaprune")]
#[derive(Clone)]
pub struct PySchedule(pub Schedule);

#[pymethods]
impl PySchedule {
    #[new]
    #[pyo3(signature = (epochs, *, warmup = 0, interval = 1, anneal = 0, anneal_fraction = None))]
    fn new(
        epochs: usize,
        warmup: usize,
        interval: usize,
        anneal: usize,
        anneal_fraction: Option<f64>,
    ) -> PyResult<Self> {
        let mut s = Schedule::new(epochs).warmup(warmup).interval(interval);
        s = match anneal_fraction {
            None => s.anneal(anneal),
            Some(_) if anneal != 0 => {
                return Err(value_error("anneal_fraction", "give either anneal or anneal_fraction, not both"))
            }
            Some(f) => s.anneal_fraction(f).py()?,
        };
        s.validate().py()?;
        Ok(Self(s))
    }
    #[getter]
    fn epochs(&self) -> usize {
        self.0.epochs()
    }
    #[getter]
    fn warmup(&self) -> usize {
        self.0.warmup_epochs()
    }
    #[getter]
    fn interval(&self) -> usize {
        self.0.selection_interval()
    }
    #[getter]
    fn anneal(&self) -> usize {
        self.0.anneal_epochs()
    }
    /// Epochs that are neither warm-up nor annealing.
    #[getter]
    fn pruned_epochs(&self) -> usize {
        self.0.pruned_epochs()
    }
    /// What the schedule does at `epoch`: "warmup", "select", "reuse" or "anneal".
    fn phase(&self, epoch: usize) -> PyResult<&'static str> {
        if epoch >= self.0.epochs() {
            return Err(value_error("epoch", format!("{epoch} is outside the schedule of {} epochs", self.0.epochs())));
        }
        Ok(self.0.phase(epoch).as_str())
    }
    /// The fraction each pruned epoch must remove so the whole run spends `(1 - prune_fraction)`
    /// of the full-data sample passes, warm-up and annealing included (equal-budget comparisons).
    fn budget_matched_fraction(&self, prune_fraction: f64) -> PyResult<f64> {
        self.0.budget_matched_fraction(prune_fraction).py()
    }
    fn __repr__(&self) -> String {
        let s = &self.0;
        format!(
            "Schedule({}, warmup={}, interval={}, anneal={})",
            s.epochs(),
            s.warmup_epochs(),
            s.selection_interval(),
            s.anneal_epochs()
        )
    }
}

/// One epoch's plan: `indices` (int64, in training order) and `weights` (float32 loss weights, or
/// None when every weight is 1), with `stats` (a dict: kept, saving, overlap, coverage, ...).
#[pyclass(frozen, name = "Plan", module = "dynaprune")]
pub struct PyPlan {
    #[pyo3(get)]
    indices: Py<PyArray1<i64>>,
    #[pyo3(get)]
    weights: Option<Py<PyArray1<f32>>>,
    #[pyo3(get)]
    stats: Py<PyDict>,
    /// "warmup", "select", "reuse" or "anneal".
    #[pyo3(get)]
    phase: &'static str,
    /// The epoch planned.
    #[pyo3(get)]
    epoch: usize,
    /// Factor for the learning rate this epoch (1.0 except for KAKURENBO).
    #[pyo3(get)]
    lr_factor: f64,
    len: usize,
    /// The crate's plan, kept for `shard`.
    plan: dynaprune::EpochPlan,
}

/// One rank's part of a `Plan` in data-parallel training (`Plan.shard`): `indices` (int64) to
/// train on, this rank's own first and then `padding` copies of samples other ranks own (at most
/// one when the plan has at least `world_size` samples), and their `weights` (None when
/// unweighted). Cut like PyTorch's `DistributedSampler` (padded, not dropped): every shard has
/// the same length. Padded entries count neither in the budget nor as observations.
#[pyclass(frozen, name = "Shard", module = "dynaprune")]
pub struct PyShard {
    #[pyo3(get)]
    indices: Py<PyArray1<i64>>,
    #[pyo3(get)]
    weights: Option<Py<PyArray1<f32>>>,
    /// Entries this rank owns (the first `own` of `indices`).
    #[pyo3(get)]
    own: usize,
    /// Padded entries at the end.
    #[pyo3(get)]
    padding: usize,
    #[pyo3(get)]
    rank: usize,
    #[pyo3(get)]
    world_size: usize,
}

#[pymethods]
impl PyShard {
    fn __len__(&self) -> usize {
        self.own + self.padding
    }
    /// The indices this rank owns: `indices[:own]`.
    #[getter]
    fn own_indices<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.indices.bind(py).get_item(PySlice::new(py, 0, self.own as isize, 1))
    }
    /// The padded indices: `indices[own:]`.
    #[getter]
    fn padding_indices<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let end = (self.own + self.padding) as isize;
        self.indices.bind(py).get_item(PySlice::new(py, self.own as isize, end, 1))
    }
    fn __repr__(&self) -> String {
        format!("Shard(rank={}, world_size={}, own={}, padding={})", self.rank, self.world_size, self.own, self.padding)
    }
}

#[pymethods]
impl PyPlan {
    /// Rank `rank`'s `Shard` of this plan in a run of `world_size` processes.
    fn shard(&self, py: Python<'_>, rank: i64, world_size: i64) -> PyResult<PyShard> {
        let (r, world) = rank_and_world(rank, world_size)?;
        let s = self.plan.shard(r, world).py()?;
        Ok(PyShard {
            indices: index_array(py, s.indices()).unbind(),
            weights: s.weights().map(|w| PyArray1::from_slice(py, w).unbind()),
            own: s.own_len(),
            padding: s.padding_len(),
            rank: r,
            world_size: world,
        })
    }
    fn __len__(&self) -> usize {
        self.len
    }
    /// The plan cut into consecutive batches: a list of `(indices, weights)` views (weights None
    /// when unweighted). The last batch may be shorter.
    fn batches<'py>(&self, py: Python<'py>, batch_size: usize) -> PyResult<Bound<'py, PyList>> {
        if batch_size == 0 {
            return Err(value_error("batch_size", "must be at least 1"));
        }
        let idx = self.indices.bind(py);
        let w = self.weights.as_ref().map(|w| w.bind(py));
        let out = PyList::empty(py);
        let mut start = 0;
        while start < self.len {
            let end = (start + batch_size).min(self.len);
            let sl = PySlice::new(py, start as isize, end as isize, 1);
            let bi = idx.get_item(&sl)?;
            let bw = match w {
                Some(w) => w.get_item(&sl)?,
                None => py.None().into_bound(py),
            };
            out.append(PyTuple::new(py, [bi, bw])?)?;
            start = end;
        }
        Ok(out)
    }
    fn __repr__(&self) -> String {
        format!(
            "Plan(epoch={}, phase={:?}, samples={}, weighted={})",
            self.epoch,
            self.phase,
            self.len,
            self.weights.is_some()
        )
    }
}

fn stats_dict<'py>(py: Python<'py>, s: &PlanStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epoch", s.epoch)?;
    d.set_item("phase", s.phase.as_str())?;
    d.set_item("n", s.n)?;
    d.set_item("kept", s.kept)?;
    d.set_item("saving", s.saving)?;
    d.set_item("overlap_with_previous", s.overlap_with_previous)?;
    d.set_item("weight_sum", s.weight_sum)?;
    d.set_item("plan_seconds", s.plan_seconds)?;
    let notes = PyDict::new(py);
    for (k, v) in &s.notes {
        notes.set_item(k, v)?;
    }
    d.set_item("notes", notes)?;
    d.set_item("lr_factor", s.lr_factor)?;
    d.set_item("never_selected", s.never_selected)?;
    d.set_item("coverage", s.coverage)?;
    d.set_item("mean_staleness", s.mean_staleness)?;
    d.set_item("max_staleness", s.max_staleness)?;
    Ok(d)
}

/// Drives a policy over a run: `plan(epoch)` gives the epoch's samples, `observe(indices, losses)`
/// feeds the per-sample losses back. One `seed` fixes every random choice; nothing global is
/// reseeded. `schedule` is a `Schedule` or a number of epochs (no warm-up, no annealing).
#[pyclass(name = "Pruner", module = "dynaprune")]
pub struct PyPruner {
    inner: dynaprune::Pruner,
}

#[pymethods]
impl PyPruner {
    #[new]
    #[pyo3(signature = (n, policy = None, schedule = None, *, seed = 0, ema_decay = None, buffer = "ema", rescore_every = 0))]
    fn new(
        n: usize,
        policy: Option<&Bound<'_, PyPolicy>>,
        schedule: Option<&Bound<'_, PyAny>>,
        seed: i128,
        ema_decay: Option<f64>,
        buffer: &str,
        rescore_every: usize,
    ) -> PyResult<Self> {
        let schedule = match schedule {
            None => return Err(value_error("schedule", "required: a Schedule, or the number of epochs")),
            Some(s) => match s.cast::<PySchedule>() {
                Ok(s) => s.get().0,
                Err(_) => match s.extract::<usize>() {
                    Ok(epochs) => Schedule::new(epochs),
                    Err(_) => {
                        return Err(value_error("schedule", "expected a Schedule or a number of epochs (int >= 1)"))
                    }
                },
            },
        };
        let seed = u64::try_from(seed).map_err(|_| value_error("seed", format!("{seed} is not in [0, 2^64)")))?;
        let mut b = dynaprune::Pruner::builder(n).schedule(schedule).seed(seed).rescore_every(rescore_every);
        if let Some(p) = policy {
            b = b.boxed_policy(Box::new(p.get().kind.clone()));
        }
        match (buffer, ema_decay) {
            ("ema", None) => {} // the builder's default: an EMA with the rule's preferred decay
            ("ema", Some(d)) => b = b.buffer(EmaBuffer::new(n, d).py()?),
            ("last", None) => b = b.buffer(LastValueBuffer::new(n).py()?),
            ("last", Some(_)) => return Err(value_error("ema_decay", "only meaningful with buffer=\"ema\"")),
            (other, _) => {
                return Err(value_error("buffer", format!("unknown `{other}`: expected \"ema\" or \"last\"")))
            }
        }
        Ok(Self { inner: b.build().py()? })
    }

    /// The plan of `epoch` (0-based). Plan epochs in order; a resumed pruner continues where its
    /// state left off.
    fn plan(&mut self, py: Python<'_>, epoch: usize) -> PyResult<PyPlan> {
        let inner = &mut self.inner;
        let plan = py.detach(|| inner.plan(epoch)).py()?;
        Ok(PyPlan {
            indices: index_array(py, plan.indices()).unbind(),
            weights: plan.weights().map(|w| PyArray1::from_slice(py, w).unbind()),
            stats: stats_dict(py, plan.stats())?.unbind(),
            phase: plan.phase().as_str(),
            epoch,
            lr_factor: plan.lr_factor(),
            len: plan.len(),
            plan,
        })
    }

    /// Records one value per sample (usually its loss), attributed to the last planned epoch.
    /// `indices`: integers; `losses`: float32 (read in place) or float64, same length, finite. On
    /// any error nothing is recorded.
    fn observe(&mut self, indices: &Bound<'_, PyAny>, losses: &Bound<'_, PyAny>) -> PyResult<()> {
        let idx = arrays::indices(indices, "indices")?;
        let values = arrays::floats(losses, "losses")?;
        self.inner.observe(&idx, values.as_slice("losses")?).py()
    }

    /// Like `observe`, and also records whether each prediction was right (bool) and its
    /// confidence (largest softmax probability, in (0, 1]). KAKURENBO needs them.
    fn observe_predictions(
        &mut self,
        indices: &Bound<'_, PyAny>,
        losses: &Bound<'_, PyAny>,
        correct: &Bound<'_, PyAny>,
        confidence: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let idx = arrays::indices(indices, "indices")?;
        let values = arrays::floats(losses, "losses")?;
        let ok = arrays::bools(correct, "correct")?;
        let conf = arrays::floats(confidence, "confidence")?;
        let (v, c) = (values.as_slice("losses")?, conf.as_slice("confidence")?);
        if ok.len() != idx.len() || c.len() != idx.len() {
            return Err(PyValueError::new_err(format!(
                "observe_predictions got {} indices, {} `correct` and {} `confidence` values: one of each per index expected",
                idx.len(),
                ok.len(),
                c.len()
            )));
        }
        self.inner.observe_predictions(&idx, v, &ok, c).py()
    }

    /// Samples whose score is older than `max_age` epochs when planning `epoch` (never-seen ones
    /// included): candidates for a forward-only re-scoring pass.
    fn stale<'py>(&self, py: Python<'py>, epoch: usize, max_age: usize) -> Bound<'py, PyArray1<i64>> {
        index_array(py, &self.inner.stale(epoch, max_age))
    }

    /// The samples the rule (or `rescore_every`) wants re-scored before planning `epoch`; run a
    /// forward pass on them, `observe` the losses, and count its cost.
    fn rescore_request<'py>(&self, py: Python<'py>, epoch: usize) -> Bound<'py, PyArray1<i64>> {
        index_array(py, &self.inner.rescore_request(epoch))
    }

    /// Per-sample number of planned epochs whose plan held the sample (uint32).
    fn selection_counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        PyArray1::from_vec(py, self.inner.selection_counts())
    }

    /// Per-sample number of pruned epochs whose plan held the sample (uint32): the "sometimes
    /// samples" analysis.
    fn pruned_selection_counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        PyArray1::from_slice(py, self.inner.pruned_selection_counts())
    }

    /// A versioned, checksummed snapshot (bytes) of everything needed to resume.
    fn state<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.state().to_bytes())
    }

    /// Restores a snapshot from `state()` into a pruner built with the same n, seed and policy.
    /// A damaged or mismatched snapshot raises ValueError and leaves this pruner unchanged.
    fn restore(&mut self, data: &[u8]) -> PyResult<()> {
        let st = PrunerState::from_bytes(data).py()?;
        self.inner.restore(st).py()
    }

    /// What the schedule does at `epoch`.
    fn phase(&self, epoch: usize) -> PyResult<&'static str> {
        PySchedule(*self.inner.schedule()).phase(epoch)
    }

    #[getter]
    fn n(&self) -> usize {
        self.inner.len()
    }
    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed()
    }
    #[getter]
    fn schedule(&self) -> PySchedule {
        PySchedule(*self.inner.schedule())
    }
    #[getter]
    fn policy_name(&self) -> &'static str {
        self.inner.policy().name()
    }
    #[getter]
    fn epochs_planned(&self) -> usize {
        self.inner.epochs_planned()
    }
    #[getter]
    fn last_epoch(&self) -> Option<usize> {
        self.inner.last_epoch()
    }
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    fn __repr__(&self) -> String {
        format!("Pruner(n={}, policy={:?}, seed={})", self.inner.len(), self.inner.policy().name(), self.inner.seed())
    }
}

/// `rank` and `world_size` checked: `1 <= world_size`, `0 <= rank < world_size`.
fn rank_and_world(rank: i64, world_size: i64) -> PyResult<(usize, usize)> {
    let world = usize::try_from(world_size)
        .ok()
        .filter(|&w| w >= 1)
        .ok_or_else(|| value_error("world_size", format!("{world_size}: expected an integer >= 1")))?;
    let r = usize::try_from(rank)
        .ok()
        .filter(|&r| r < world)
        .ok_or_else(|| value_error("rank", format!("{rank}: expected 0 <= rank < world_size = {world}")))?;
    Ok((r, world))
}

/// Where rank `rank`'s shard of `length` items reads from, cut like `Plan.shard`: the positions
/// (int64, in shard order) and how many are the rank's own (the rest are padding). For sharding
/// other index lists the same way (`PlanSampler.rescore_shard`).
#[pyfunction]
fn _shard_positions<'py>(
    py: Python<'py>,
    length: usize,
    rank: i64,
    world_size: i64,
) -> PyResult<(Bound<'py, PyArray1<i64>>, usize)> {
    let (r, world) = rank_and_world(rank, world_size)?;
    let (positions, own) = dynaprune::shard::shard_positions(length, r, world).py()?;
    Ok((index_array(py, &positions), own))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_shard_positions, m)?)?;
    m.add_class::<PySchedule>()?;
    m.add_class::<PyPlan>()?;
    m.add_class::<PyShard>()?;
    m.add_class::<PyPruner>()?;
    Ok(())
}

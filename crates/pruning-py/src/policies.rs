//! The selection rules as Python classes. Each is a subclass of `Policy`; a `Pruner` takes any of
//! them. Knobs are checked by the crate's own constructors, so the errors are the crate's.

use dynaprune::{
    EpsilonDecay, EpsilonGreedy, FullData, InfoBatch, InfoBatchRate, Kakurenbo, KakurenboLr, Keep, Policy, Rs2,
    SelectiveBackprop, Seta, SetaBudget, Staleness, StaticRandom, StaticScores, Statistic, Ucb, UniformRandom,
};
use std::sync::Arc;

use pyo3::prelude::*;

use crate::arrays;
use crate::errors::{value_error, IntoPy};

/// The Rust rule behind a Python policy object, shared with every `Pruner` built from it (rules
/// hold no mutable state).
pub type Shared = Arc<dyn Policy>;

/// A selection rule. Use one of the subclasses: `FullData`, `UniformRandom`, `EpsilonGreedy`,
/// `Ucb`, `InfoBatch`, `Rs2`, `Kakurenbo`, `Seta`, `SelectiveBackprop`, `StaticScores`,
/// `StaticRandom`.
#[pyclass(subclass, frozen, name = "Policy", module = "dynaprune")]
pub struct PyPolicy {
    pub kind: Shared,
    repr: String,
}

impl PyPolicy {
    fn new(kind: Shared, repr: String) -> Self {
        Self { kind, repr }
    }

    /// The initializer of subclass `T` with this base.
    fn with<T: pyo3::PyClass<BaseType = PyPolicy>>(self, sub: T) -> PyClassInitializer<T> {
        PyClassInitializer::from(self).add_subclass(sub)
    }
}

#[pymethods]
impl PyPolicy {
    /// The rule's stable name (`"ucb"`, `"infobatch"`, ...), as in logs and saved state.
    #[getter]
    fn name(&self) -> &'static str {
        self.kind.name()
    }
    /// The fraction of samples the rule removes per pruned epoch (nominal for soft rules).
    #[getter]
    fn prune_fraction(&self) -> f64 {
        self.kind.prune_fraction()
    }
    /// Whether the rule re-chooses during training.
    #[getter]
    fn is_dynamic(&self) -> bool {
        self.kind.is_dynamic()
    }
    /// Whether the rule reads the observed scores (losses).
    #[getter]
    fn uses_scores(&self) -> bool {
        self.kind.uses_scores()
    }
    /// The EMA decay the pruner's buffer uses by default for this rule.
    #[getter]
    fn preferred_ema_decay(&self) -> f64 {
        self.kind.preferred_ema_decay()
    }
    fn __repr__(&self) -> String {
        self.repr.clone()
    }
}

/// How a score-based rule ages the statistics of samples it has not observed recently.
/// `Staleness.prior()` (the default of `Ucb` and `EpsilonGreedy`), `Staleness.count_bonus(w)`, or
/// `Staleness.off()` (the original rule of Raju et al.).
#[pyclass(frozen, name = "Staleness", module = "dynaprune")]
#[derive(Clone)]
pub struct PyStaleness(pub Staleness);

#[pymethods]
impl PyStaleness {
    #[classattr]
    const DEFAULT_RETENTION: f64 = Staleness::DEFAULT_RETENTION;
    #[classattr]
    const DEFAULT_DRIFT: f64 = Staleness::DEFAULT_DRIFT;

    /// Relax stale beliefs towards the population (retention in [0, 1], drift >= 0).
    #[staticmethod]
    #[pyo3(signature = (retention = Staleness::DEFAULT_RETENTION, drift = Staleness::DEFAULT_DRIFT))]
    fn prior(retention: f64, drift: f64) -> PyResult<Self> {
        Ok(Self(Staleness::prior(retention, drift).py()?))
    }
    /// UCB1's count bonus with this weight (>= 0).
    #[staticmethod]
    fn count_bonus(weight: f64) -> PyResult<Self> {
        Ok(Self(Staleness::count_bonus(weight).py()?))
    }
    /// The raw statistics: skipped samples keep their frozen values.
    #[staticmethod]
    fn off() -> Self {
        Self(Staleness::Off)
    }
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.as_str()
    }
    fn __repr__(&self) -> String {
        match self.0 {
            Staleness::Off => "Staleness.off()".into(),
            Staleness::Prior { retention, drift } => format!("Staleness.prior(retention={retention}, drift={drift})"),
            Staleness::CountBonus { weight } => format!("Staleness.count_bonus({weight})"),
        }
    }
}

/// `None` (the default), a `Staleness`, or one of the strings `"prior"`, `"off"`.
fn staleness_arg(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Staleness> {
    let Some(obj) = obj else { return Ok(Staleness::default()) };
    if obj.is_none() {
        return Ok(Staleness::default());
    }
    if let Ok(s) = obj.cast::<PyStaleness>() {
        return Ok(s.get().0);
    }
    match obj.extract::<String>()?.as_str() {
        "prior" => Ok(Staleness::default()),
        "off" => Ok(Staleness::Off),
        other => Err(value_error(
            "staleness",
            format!("unknown `{other}`: expected \"prior\", \"off\", or a Staleness object (Staleness.count_bonus(w))"),
        )),
    }
}

fn statistic_arg(s: &str) -> PyResult<Statistic> {
    match s {
        "mean" => Ok(Statistic::Mean),
        "last" => Ok(Statistic::Last),
        other => Err(value_error("statistic", format!("unknown `{other}`: expected \"mean\" or \"last\""))),
    }
}

/// Every sample, every epoch: the baseline.
#[pyclass(extends = PyPolicy, frozen, name = "FullData", module = "dynaprune")]
pub struct PyFullData;

#[pymethods]
impl PyFullData {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        PyPolicy::new(Arc::new(FullData), "FullData()".into()).with(Self)
    }
}

/// A fresh uniformly random subset at each selection, removing `prune_fraction` in [0, 1).
#[pyclass(extends = PyPolicy, frozen, name = "UniformRandom", module = "dynaprune")]
pub struct PyUniformRandom;

#[pymethods]
impl PyUniformRandom {
    #[new]
    fn new(prune_fraction: f64) -> PyResult<PyClassInitializer<Self>> {
        let p = UniformRandom::new(prune_fraction).py()?;
        Ok(PyPolicy::new(Arc::new(p), format!("UniformRandom({prune_fraction})")).with(Self))
    }
}

/// Epsilon-greedy over the per-sample loss statistics (Raju et al., 2021): `1 - epsilon` of the
/// kept budget goes to the highest scores, `epsilon` is drawn uniformly from the rest.
/// `epsilon_decay_rate` (with `epsilon_min`) makes epsilon decay exponentially per epoch;
/// `epsilon_to` makes it go linearly to that value by the last epoch.
#[pyclass(extends = PyPolicy, frozen, name = "EpsilonGreedy", module = "dynaprune")]
pub struct PyEpsilonGreedy;

#[pymethods]
impl PyEpsilonGreedy {
    #[classattr]
    const DEFAULT_EPSILON: f64 = EpsilonGreedy::DEFAULT_EPSILON;
    #[classattr]
    const DEFAULT_EMA_DECAY: f64 = EpsilonGreedy::DEFAULT_EMA_DECAY;

    #[new]
    #[pyo3(signature = (prune_fraction, epsilon = EpsilonGreedy::DEFAULT_EPSILON, *, staleness = None, statistic = "mean", epsilon_decay_rate = None, epsilon_min = 0.0, epsilon_to = None))]
    fn new(
        prune_fraction: f64,
        epsilon: f64,
        staleness: Option<&Bound<'_, PyAny>>,
        statistic: &str,
        epsilon_decay_rate: Option<f64>,
        epsilon_min: f64,
        epsilon_to: Option<f64>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let decay = match (epsilon_decay_rate, epsilon_to) {
            (None, None) => EpsilonDecay::Constant,
            (Some(rate), None) => EpsilonDecay::Exponential { rate, min: epsilon_min },
            (None, Some(to)) => EpsilonDecay::Linear { to },
            (Some(_), Some(_)) => {
                return Err(value_error(
                    "epsilon_to",
                    "give either epsilon_decay_rate (exponential) or epsilon_to (linear), not both",
                ))
            }
        };
        let st = staleness_arg(staleness)?;
        let p = EpsilonGreedy::builder()
            .prune_fraction(prune_fraction)
            .epsilon(epsilon)
            .build()
            .py()?
            .with_staleness(st)
            .py()?
            .with_decay(decay)
            .py()?
            .with_statistic(statistic_arg(statistic)?);
        let repr = format!("EpsilonGreedy({prune_fraction}, epsilon={epsilon}, staleness={:?})", st.as_str());
        Ok(PyPolicy::new(Arc::new(p), repr).with(Self))
    }
}

/// UCB over the per-sample loss statistics (Raju et al., 2021): keeps the samples with the largest
/// `mean + c * std`, with skipped samples aged by `staleness`.
#[pyclass(extends = PyPolicy, frozen, name = "Ucb", module = "dynaprune")]
pub struct PyUcb;

#[pymethods]
impl PyUcb {
    #[classattr]
    const DEFAULT_C: f64 = Ucb::DEFAULT_C;

    #[new]
    #[pyo3(signature = (prune_fraction, c = Ucb::DEFAULT_C, *, staleness = None))]
    fn new(prune_fraction: f64, c: f64, staleness: Option<&Bound<'_, PyAny>>) -> PyResult<PyClassInitializer<Self>> {
        let st = staleness_arg(staleness)?;
        let p = Ucb::builder().prune_fraction(prune_fraction).c(c).staleness(st).build().py()?;
        let repr = format!("Ucb({prune_fraction}, c={c}, staleness={:?})", st.as_str());
        Ok(PyPolicy::new(Arc::new(p), repr).with(Self))
    }
}

/// InfoBatch (Qin et al., 2024). Two different knobs, never one ambiguous "ratio":
/// `drop_probability` is the chance each below-mean sample is dropped (the paper's `ratio`);
/// `prune_fraction`, when given instead, is the fraction of the whole dataset to remove, and the
/// drop probability is chosen per selection to hit it (capped at `max_drop_probability`).
/// Pair it with `Schedule(epochs, anneal_fraction=1 - InfoBatch.DEFAULT_DELTA)` as the paper does.
#[pyclass(extends = PyPolicy, frozen, name = "InfoBatch", module = "dynaprune")]
pub struct PyInfoBatch;

#[pymethods]
impl PyInfoBatch {
    #[classattr]
    const DEFAULT_DROP_PROBABILITY: f64 = InfoBatch::DEFAULT_DROP_PROBABILITY;
    #[classattr]
    const DEFAULT_DELTA: f64 = InfoBatch::DEFAULT_DELTA;

    #[new]
    #[pyo3(signature = (drop_probability = None, *, prune_fraction = None, max_drop_probability = dynaprune::InfoBatch::DEFAULT_MAX_DROP_PROBABILITY, statistic = "last"))]
    fn new(
        drop_probability: Option<f64>,
        prune_fraction: Option<f64>,
        max_drop_probability: f64,
        statistic: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        let (rate, repr) = match (drop_probability, prune_fraction) {
            (Some(_), Some(_)) => {
                return Err(value_error(
                    "prune_fraction",
                    "give either drop_probability (the paper's ratio) or prune_fraction (a target), not both",
                ))
            }
            (None, Some(pf)) => (
                InfoBatchRate::TargetPruneFraction { prune_fraction: pf, max_drop_probability },
                format!("InfoBatch(prune_fraction={pf}, max_drop_probability={max_drop_probability})"),
            ),
            (r, None) => {
                let r = r.unwrap_or(InfoBatch::DEFAULT_DROP_PROBABILITY);
                (InfoBatchRate::DropProbability(r), format!("InfoBatch(drop_probability={r})"))
            }
        };
        let p = InfoBatch::from_rate(rate).py()?.with_statistic(statistic_arg(statistic)?);
        Ok(PyPolicy::new(Arc::new(p), repr).with(Self))
    }
}

/// RS2 without replacement (Okanovic et al., 2023): consecutive slices of seeded permutations.
#[pyclass(extends = PyPolicy, frozen, name = "Rs2", module = "dynaprune")]
pub struct PyRs2;

#[pymethods]
impl PyRs2 {
    #[new]
    fn new(prune_fraction: f64) -> PyResult<PyClassInitializer<Self>> {
        let p = Rs2::new(prune_fraction).py()?;
        Ok(PyPolicy::new(Arc::new(p), format!("Rs2({prune_fraction})")).with(Self))
    }
}

/// KAKURENBO (Nguyen et al., 2023): hides up to `max_fraction` of the lowest-loss samples that are
/// predicted correctly with confidence >= `tau`, and scales the learning rate by `1 / (1 - F_e)`
/// (`plan.lr_factor`). Feed it with `Pruner.observe_predictions`. `lr` chooses the factor's
/// fraction: `"max-fraction"` (`F_e`, the reference code's; default), `"hidden-fraction"` (the
/// fraction actually hidden that epoch) or `"off"` (same as `adjust_lr=False`).
#[pyclass(extends = PyPolicy, frozen, name = "Kakurenbo", module = "dynaprune")]
pub struct PyKakurenbo;

#[pymethods]
impl PyKakurenbo {
    #[classattr]
    const DEFAULT_TAU: f64 = Kakurenbo::DEFAULT_TAU;

    #[new]
    #[pyo3(signature = (max_fraction, *, tau = Kakurenbo::DEFAULT_TAU, adjust_lr = true, lr = None))]
    fn new(max_fraction: f64, tau: f64, adjust_lr: bool, lr: Option<&str>) -> PyResult<PyClassInitializer<Self>> {
        let rule = match (lr, adjust_lr) {
            (None, true) => KakurenboLr::MaxFraction,
            (None, false) => KakurenboLr::Off,
            (Some(_), false) => return Err(value_error("lr", "give either `lr` or `adjust_lr=False`, not both")),
            (Some("max-fraction"), true) => KakurenboLr::MaxFraction,
            (Some("hidden-fraction"), true) => KakurenboLr::HiddenFraction,
            (Some("off"), true) => KakurenboLr::Off,
            (Some(other), true) => {
                return Err(value_error(
                    "lr",
                    format!("unknown `{other}`: expected \"max-fraction\", \"hidden-fraction\" or \"off\""),
                ))
            }
        };
        let p = Kakurenbo::new(max_fraction).py()?.with_tau(tau).py()?.with_lr_rule(rule);
        let repr = match rule {
            KakurenboLr::MaxFraction => format!("Kakurenbo({max_fraction}, tau={tau}, adjust_lr=True)"),
            KakurenboLr::HiddenFraction => format!("Kakurenbo({max_fraction}, tau={tau}, lr=\"hidden-fraction\")"),
            KakurenboLr::Off => format!("Kakurenbo({max_fraction}, tau={tau}, adjust_lr=False)"),
        };
        Ok(PyPolicy::new(Arc::new(p), repr).with(Self))
    }
}

/// SeTa (Zhou et al., CVPR 2025): clusters the last losses into `groups` groups (1-D k-means),
/// easy to hard, and keeps a window of `round(groups * window_scale)` consecutive groups that
/// slides towards the hard end at each selection; from `delta` of the epochs on, random subsets.
/// `budget="exact"` (default) keeps exactly `round((1 - prune_fraction) * n)` samples per pruned
/// epoch, drawn from the window; `budget="reference"` follows the reference code's arithmetic
/// (the window's part of a random `1 - prune_fraction` of the samples).
#[pyclass(extends = PyPolicy, frozen, name = "Seta", module = "dynaprune")]
pub struct PySeta;

#[pymethods]
impl PySeta {
    #[classattr]
    const DEFAULT_GROUPS: usize = Seta::DEFAULT_GROUPS;
    #[classattr]
    const DEFAULT_WINDOW_SCALE: f64 = Seta::DEFAULT_WINDOW_SCALE;
    #[classattr]
    const DEFAULT_DELTA: f64 = Seta::DEFAULT_DELTA;

    #[new]
    #[pyo3(signature = (prune_fraction, *, groups = Seta::DEFAULT_GROUPS, window_scale = Seta::DEFAULT_WINDOW_SCALE,
                        delta = Seta::DEFAULT_DELTA, budget = "exact"))]
    fn new(
        prune_fraction: f64,
        groups: usize,
        window_scale: f64,
        delta: f64,
        budget: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        let rule = match budget {
            "exact" => SetaBudget::Exact,
            "reference" => SetaBudget::Reference,
            other => {
                return Err(value_error("budget", format!("unknown `{other}`: expected \"exact\" or \"reference\"")))
            }
        };
        let p = Seta::new(prune_fraction)
            .py()?
            .with_groups(groups)
            .py()?
            .with_window_scale(window_scale)
            .py()?
            .with_delta(delta)
            .py()?
            .with_budget(rule);
        let repr = format!(
            "Seta({prune_fraction}, groups={groups}, window_scale={window_scale}, delta={delta}, budget={budget:?})"
        );
        Ok(PyPolicy::new(Arc::new(p), repr).with(Self))
    }
}

/// Selective-Backprop (Jiang et al., 2019): per batch, after a forward pass, keep each sample
/// with probability `max(floor, percentile ** beta)`, its loss's percentile rank among the last
/// `history` losses. Give `prune_fraction` (then `beta = f / (1 - f)`, which keeps `1 - f` of the
/// passes in expectation) or `beta`. As a `Policy` it plans every sample (the candidates); the
/// per-batch choice is `selector(seed)`, a `BackpropSelector`.
#[pyclass(extends = PyPolicy, frozen, name = "SelectiveBackprop", module = "dynaprune")]
pub struct PySelectiveBackprop(SelectiveBackprop);

#[pymethods]
impl PySelectiveBackprop {
    #[classattr]
    const DEFAULT_HISTORY: usize = SelectiveBackprop::DEFAULT_HISTORY;

    #[new]
    #[pyo3(signature = (prune_fraction = None, *, beta = None, history = SelectiveBackprop::DEFAULT_HISTORY, floor = 0.0))]
    fn new(
        prune_fraction: Option<f64>,
        beta: Option<f64>,
        history: usize,
        floor: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let rule = match (prune_fraction, beta) {
            (Some(f), None) => SelectiveBackprop::for_prune_fraction(f).py()?,
            (None, Some(b)) => SelectiveBackprop::new(b).py()?,
            _ => return Err(value_error("beta", "give exactly one of prune_fraction and beta")),
        };
        let p = rule.with_history(history).py()?.with_floor(floor).py()?;
        let repr = format!("SelectiveBackprop(beta={}, history={history}, floor={floor})", p.beta());
        Ok(PyPolicy::new(Arc::new(p.clone()), repr).with(Self(p)))
    }

    /// The exponent.
    #[getter]
    fn beta(&self) -> f64 {
        self.0.beta()
    }

    /// A fresh per-batch selector drawing from `seed`.
    fn selector(&self, seed: u64) -> PyBackpropSelector {
        PyBackpropSelector(self.0.selector(seed))
    }
}

/// Selective-Backprop's per-batch choice: `select(losses)` takes one candidate batch's
/// per-sample losses (in batch order), adds them to the history and returns the positions to
/// train on (int64, ascending; possibly empty). `state()` / `restore(bytes)` resume it exactly.
#[pyclass(name = "BackpropSelector", module = "dynaprune")]
pub struct PyBackpropSelector(dynaprune::BackpropSelector);

#[pymethods]
impl PyBackpropSelector {
    fn select<'py>(
        &mut self,
        py: Python<'py>,
        losses: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
        let floats = arrays::floats(losses, "losses")?;
        let kept = self.0.select(floats.as_slice("losses")?).py()?;
        Ok(arrays::index_array(py, &kept))
    }
    /// The percentile rank of `loss` in the current history, in [0, 1].
    fn percentile(&self, loss: f32) -> f64 {
        self.0.percentile(loss)
    }
    /// `max(floor, p ** beta)`.
    fn keep_probability(&self, p: f64) -> f64 {
        self.0.keep_probability(p)
    }
    /// Candidate batches seen.
    #[getter]
    fn batches(&self) -> u64 {
        self.0.batches()
    }
    /// The state as bytes (for checkpoints).
    fn state<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyBytes> {
        pyo3::types::PyBytes::new(py, &self.0.to_bytes())
    }
    /// Restores a state written by `state()` (same rule and seed).
    fn restore(&mut self, state: &[u8]) -> PyResult<()> {
        self.0.restore(state).py()
    }
}

/// Static pruning from scores computed before training (EL2N, GraNd, forgetting counts, ...):
/// one score per sample; `keep` is `"highest"` (default), `"lowest"`, or `"window"` with
/// `skip_fraction` (skip the top, keep the next).
#[pyclass(extends = PyPolicy, frozen, name = "StaticScores", module = "dynaprune")]
pub struct PyStaticScores;

#[pymethods]
impl PyStaticScores {
    #[new]
    #[pyo3(signature = (scores, prune_fraction, *, keep = "highest", skip_fraction = None, name = "static-scores"))]
    fn new(
        scores: &Bound<'_, PyAny>,
        prune_fraction: f64,
        keep: &str,
        skip_fraction: Option<f64>,
        name: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        let keep = match (keep, skip_fraction) {
            ("highest", None) => Keep::Highest,
            ("lowest", None) => Keep::Lowest,
            ("window", Some(skip_fraction)) => Keep::Window { skip_fraction },
            ("window", None) => return Err(value_error("skip_fraction", "keep=\"window\" needs skip_fraction")),
            ("highest" | "lowest", Some(_)) => {
                return Err(value_error("skip_fraction", "only meaningful with keep=\"window\""))
            }
            (other, _) => {
                return Err(value_error(
                    "keep",
                    format!("unknown `{other}`: expected \"highest\", \"lowest\" or \"window\""),
                ))
            }
        };
        let name: &'static str = match name {
            "static-scores" => "static-scores",
            "el2n" => "el2n",
            "grand" => "grand",
            "grand-last-layer" => "grand-last-layer",
            "forgetting" => "forgetting",
            other => {
                return Err(value_error(
                    "name",
                    format!("unknown `{other}`: expected static-scores, el2n, grand, grand-last-layer or forgetting"),
                ))
            }
        };
        let floats = arrays::floats(scores, "scores")?;
        let v = floats.as_slice("scores")?.to_vec();
        let n = v.len();
        let p = StaticScores::new(v, keep, prune_fraction).py()?.with_name(name);
        let repr = format!("StaticScores(<{n} scores>, {prune_fraction}, keep={keep:?}, name={name:?})");
        Ok(PyPolicy::new(Arc::new(p), repr).with(Self))
    }
}

/// Static random pruning: one random subset, chosen at the first pruned epoch and kept.
#[pyclass(extends = PyPolicy, frozen, name = "StaticRandom", module = "dynaprune")]
pub struct PyStaticRandom;

#[pymethods]
impl PyStaticRandom {
    #[new]
    fn new(prune_fraction: f64) -> PyResult<PyClassInitializer<Self>> {
        let p = StaticRandom::new(prune_fraction).py()?;
        Ok(PyPolicy::new(Arc::new(p), format!("StaticRandom({prune_fraction})")).with(Self))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPolicy>()?;
    m.add_class::<PyStaleness>()?;
    m.add_class::<PyFullData>()?;
    m.add_class::<PyUniformRandom>()?;
    m.add_class::<PyEpsilonGreedy>()?;
    m.add_class::<PyUcb>()?;
    m.add_class::<PyInfoBatch>()?;
    m.add_class::<PyRs2>()?;
    m.add_class::<PyKakurenbo>()?;
    m.add_class::<PySeta>()?;
    m.add_class::<PySelectiveBackprop>()?;
    m.add_class::<PyBackpropSelector>()?;
    m.add_class::<PyStaticScores>()?;
    m.add_class::<PyStaticRandom>()?;
    Ok(())
}

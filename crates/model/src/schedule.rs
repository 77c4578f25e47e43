//! Learning-rate schedules keyed on training *progress* (a fraction in `[0, 1]`), not on step
//! counts: when pruning changes the number of steps per epoch, a pruned run still sees the same
//! schedule shape over its epochs as the full-data run.

use crate::error::{ModelError, Result};

/// A learning-rate schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` at each milestone (fractions of training, e.g. `[0.5, 0.75]`).
    Step {
        /// Progress points in `(0, 1)`.
        milestones: Vec<f64>,
        /// Factor per milestone.
        gamma: f64,
    },
    /// Cosine decay from the base rate to 0.
    Cosine,
    /// One-cycle (Smith): linear warm-up from `base / div_factor` to `base` over `pct_start`, then
    /// cosine down to `base / (div_factor * final_div_factor)`.
    OneCycle {
        /// Fraction of training spent warming up.
        pct_start: f64,
        /// Initial rate is `base / div_factor`.
        div_factor: f64,
        /// Final rate is `initial / final_div_factor`.
        final_div_factor: f64,
    },
}

impl LrSchedule {
    /// The names accepted by [`LrSchedule::parse`].
    pub const NAMES: [&'static str; 4] = ["constant", "step", "cosine", "onecycle"];

    /// Parses `constant`, `cosine`, `onecycle`, `step` (milestones 0.5 and 0.75, gamma 0.1) or
    /// `step:0.3,0.6,0.8` (custom milestones, gamma 0.2 as in the CIFAR recipes of the Data Diet
    /// code).
    pub fn parse(s: &str) -> Result<Self> {
        let sched = match s {
            "constant" => LrSchedule::Constant,
            "cosine" => LrSchedule::Cosine,
            "onecycle" => LrSchedule::OneCycle { pct_start: 0.25, div_factor: 25.0, final_div_factor: 1e4 },
            "step" => LrSchedule::Step { milestones: vec![0.5, 0.75], gamma: 0.1 },
            other => match other.strip_prefix("step:") {
                Some(list) => {
                    let milestones = list
                        .split(',')
                        .map(|m| {
                            m.trim()
                                .parse::<f64>()
                                .map_err(|_| ModelError::Config(format!("bad milestone `{m}` in `{s}`")))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    LrSchedule::Step { milestones, gamma: 0.2 }
                }
                None => {
                    return Err(ModelError::Config(format!(
                        "unknown schedule `{s}`: expected constant, cosine, onecycle, step or step:<fractions>"
                    )))
                }
            },
        };
        sched.validate()?;
        Ok(sched)
    }

    /// Checks the knobs.
    pub fn validate(&self) -> Result<()> {
        match self {
            LrSchedule::Step { milestones, gamma }
                if milestones.iter().any(|m| !(0.0..=1.0).contains(m)) || !(gamma.is_finite() && *gamma > 0.0) =>
            {
                Err(ModelError::Config(format!(
                    "step schedule needs milestones in [0, 1] and gamma > 0, got {milestones:?}, {gamma}"
                )))
            }
            LrSchedule::OneCycle { pct_start, div_factor, final_div_factor }
                if !(0.0..1.0).contains(pct_start) || *div_factor < 1.0 || *final_div_factor < 1.0 =>
            {
                Err(ModelError::Config("one-cycle needs pct_start in [0, 1), factors >= 1".into()))
            }
            _ => Ok(()),
        }
    }

    /// The rate at `progress` in `[0, 1]` (clamped) for base rate `base`.
    pub fn lr(&self, base: f64, progress: f64) -> f64 {
        let t = progress.clamp(0.0, 1.0);
        let cos = |a: f64, b: f64, u: f64| b + (a - b) * 0.5 * (1.0 + (std::f64::consts::PI * u).cos());
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Step { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| t >= m).count() as i32)
            }
            LrSchedule::Cosine => cos(base, 0.0, t),
            LrSchedule::OneCycle { pct_start, div_factor, final_div_factor } => {
                let start = base / div_factor;
                let end = start / final_div_factor;
                if t < *pct_start {
                    start + (base - start) * t / pct_start
                } else {
                    cos(base, end, (t - pct_start) / (1.0 - pct_start))
                }
            }
        }
    }
}

/// Training progress after `batch + 1` of `batches` batches of epoch `epoch` (of `epochs`): the
/// fraction of *epochs* completed, so a pruned epoch advances the schedule as much as a full one.
pub fn progress(epoch: usize, epochs: usize, batch: usize, batches: usize) -> f64 {
    if epochs == 0 {
        return 1.0;
    }
    let within = if batches == 0 { 1.0 } else { (batch + 1) as f64 / batches as f64 };
    ((epoch as f64 + within) / epochs as f64).min(1.0)
}

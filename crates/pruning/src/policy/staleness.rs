//! What a score-based rule believes about a sample it has not observed for a while.
//!
//! A rule that trains only on the samples it ranks highest also only *observes* those samples,
//! so the statistics of everything it skipped freeze at their last values. Measured on
//! Fashion-MNIST (ResNet-8, 50% pruned), plain `mean + c * std` UCB then chose the same half
//! every epoch after the warm-up (overlap 1.0; 49.8% of the samples never selected): the
//! skipped samples' variance stays 0 while the trained samples' EMA variance grows.
//!
//! [`Staleness`] fixes this from what the buffer already records (`count`, `last_epoch`), with
//! no forward pass: a sample's belief relaxes towards the population prior as it ages, and its
//! uncertainty grows, so stale samples come back. *Reconstructed:* the paper does not describe
//! this; the form and default were chosen by measurement (docs/RULES.md, "Dynamic rules that stay dynamic").
//!
//! With `a` = whole epochs since the sample was last observed, `w = retention^a`, and the
//! population prior (over seen samples) with mean `mu` and variance
//! `s2 = Var_i(mean_i) + Mean_i(variance_i)` (between-sample plus within-sample spread):
//! - [`Staleness::Prior`]: `mean' = mu + w (mean - mu)`,
//!   `variance' = w variance + (1 - w) s2 + drift * a * s2`.
//!   `retention = 1, drift = 0` keeps the raw statistics; `drift > 0` makes the uncertainty of
//!   a stale sample grow without bound (a random-walk model of its loss), so a sample skipped
//!   long enough always outranks samples whose statistics stay bounded.
//! - [`Staleness::CountBonus`]: UCB1's exploration bonus (Auer et al., 2002),
//!   `weight * sqrt(s2) * sqrt(ln(epoch + 1) / count)`, added to the score.

use crate::buffer::{SampleStats, ScoreBuffer};
use crate::error::{check_closed, check_non_negative, Result};

/// How a score-based rule ages the statistics of samples it has not observed recently.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Staleness {
    /// The raw statistics (the original rule): skipped samples keep their frozen values.
    Off,
    /// Relax stale beliefs towards the population prior (see the module docs).
    Prior {
        /// Per-epoch weight kept on a sample's own statistics, in `[0, 1]`.
        retention: f64,
        /// Per-epoch growth of a stale sample's variance, in units of the prior variance, `>= 0`.
        drift: f64,
    },
    /// UCB1's count bonus `weight * sqrt(s2) * sqrt(ln(epoch + 1) / count)`.
    CountBonus {
        /// The bonus weight, `>= 0`.
        weight: f64,
    },
}

impl Default for Staleness {
    fn default() -> Self {
        Staleness::Prior { retention: Self::DEFAULT_RETENTION, drift: Self::DEFAULT_DRIFT }
    }
}

impl Staleness {
    /// Default retention of [`Staleness::Prior`] (reconstructed; chosen by measurement).
    pub const DEFAULT_RETENTION: f64 = 0.5;
    /// Default drift of [`Staleness::Prior`] (reconstructed; chosen by measurement).
    pub const DEFAULT_DRIFT: f64 = 0.1;
    /// The default weight of [`Staleness::count_bonus`] (UCB1's).
    pub const DEFAULT_BONUS: f64 = 1.0;

    /// [`Staleness::Prior`] with checked knobs.
    pub fn prior(retention: f64, drift: f64) -> Result<Self> {
        check_closed("staleness_retention", retention)?;
        check_non_negative("staleness_drift", drift)?;
        Ok(Staleness::Prior { retention, drift })
    }

    /// [`Staleness::CountBonus`] with a checked weight.
    pub fn count_bonus(weight: f64) -> Result<Self> {
        check_non_negative("staleness_bonus", weight)?;
        Ok(Staleness::CountBonus { weight })
    }

    /// Checks the knobs of a value built directly.
    pub fn validate(self) -> Result<Self> {
        match self {
            Staleness::Off => Ok(self),
            Staleness::Prior { retention, drift } => Self::prior(retention, drift),
            Staleness::CountBonus { weight } => Self::count_bonus(weight),
        }
    }

    /// A short name for logs and reports: `off`, `prior`, `count-bonus`.
    pub fn as_str(self) -> &'static str {
        match self {
            Staleness::Off => "off",
            Staleness::Prior { .. } => "prior",
            Staleness::CountBonus { .. } => "count-bonus",
        }
    }

    /// Prepares the per-epoch quantities for ranking `buffer` by `stat` when planning `epoch`.
    pub(crate) fn view(self, buffer: &dyn ScoreBuffer, epoch: usize, stat: impl Fn(&SampleStats) -> f32) -> View {
        if self == Staleness::Off {
            return View { kind: self, mu: 0.0, s2: 0.0, weights: Vec::new(), log_t: 0.0 };
        }
        let (mut n, mut sum, mut sum_sq, mut within) = (0f64, 0f64, 0f64, 0f64);
        for r in buffer.records().iter().filter(|r| r.is_seen()) {
            let x = f64::from(stat(r));
            n += 1.0;
            sum += x;
            sum_sq += x * x;
            within += f64::from(r.variance.max(0.0));
        }
        let (mu, s2) = if n > 0.0 {
            let mu = sum / n;
            (mu, (sum_sq / n - mu * mu).max(0.0) + within / n)
        } else {
            (0.0, 0.0)
        };
        let weights = match self {
            Staleness::Prior { retention, .. } => {
                let mut w = Vec::with_capacity(epoch + 1);
                let mut x = 1.0f64;
                for _ in 0..=epoch {
                    w.push(x as f32);
                    x *= retention;
                }
                w
            }
            _ => Vec::new(),
        };
        View { kind: self, mu: mu as f32, s2: s2 as f32, weights, log_t: ((epoch + 1) as f32).ln() }
    }
}

/// The per-epoch quantities of a [`Staleness`] model (see [`Staleness::view`]).
#[derive(Debug, Clone)]
pub(crate) struct View {
    kind: Staleness,
    mu: f32,
    s2: f32,
    /// `retention^a` for `a` in `0..=epoch`.
    weights: Vec<f32>,
    log_t: f32,
}

impl View {
    /// The aged `(mean, variance)` of a seen sample whose raw values are `(m, v)`.
    #[inline]
    pub(crate) fn aged(&self, r: &SampleStats, epoch: usize, m: f32, v: f32) -> (f32, f32) {
        match self.kind {
            Staleness::Off | Staleness::CountBonus { .. } => (m, v),
            Staleness::Prior { drift, .. } => {
                let a = r.age(epoch).unwrap_or(0) as usize;
                if a == 0 {
                    return (m, v);
                }
                let w = self.weights.get(a).copied().unwrap_or(0.0);
                let m = self.mu + w * (m - self.mu);
                let v = w * v + (1.0 - w) * self.s2 + drift as f32 * a as f32 * self.s2;
                (m, v)
            }
        }
    }

    /// The additive exploration bonus of a seen sample (UCB1's count term; 0 for other kinds).
    #[inline]
    pub(crate) fn bonus(&self, r: &SampleStats) -> f32 {
        match self.kind {
            Staleness::CountBonus { weight } => {
                weight as f32 * self.s2.sqrt() * (self.log_t / r.count.max(1) as f32).sqrt()
            }
            _ => 0.0,
        }
    }
}

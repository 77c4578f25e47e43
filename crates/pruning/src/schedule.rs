//! When to prune: full-data warm-up, a re-selection interval, full-data annealing.

use crate::error::{check_half_open, PruneError, Result};

/// What an epoch does under a [`Schedule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Full data before pruning starts (the score buffer fills up).
    Warmup,
    /// The policy makes a new selection.
    Select,
    /// The previous selection is reused (reshuffled) because the interval has not elapsed.
    Reuse,
    /// Full data at the end, loss weights back to 1 (InfoBatch's annealing).
    Anneal,
    /// Full data because the policy is the full-data baseline.
    Full,
}

impl Phase {
    /// `true` when this epoch trains on every sample.
    pub fn is_full(self) -> bool {
        matches!(self, Phase::Warmup | Phase::Anneal | Phase::Full)
    }

    /// A lower-case name for logs: `warmup`, `select`, `reuse`, `anneal`, `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Warmup => "warmup",
            Phase::Select => "select",
            Phase::Reuse => "reuse",
            Phase::Anneal => "anneal",
            Phase::Full => "full",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pruning schedule shared by all policies.
///
/// ```
/// use dynaprune::{Phase, Schedule};
/// let s = Schedule::new(10).warmup(1).interval(2).anneal(2);
/// s.validate().unwrap();
/// let phases: Vec<_> = (0..10).map(|e| s.phase(e).as_str()).collect();
/// assert_eq!(phases, ["warmup", "select", "reuse", "select", "reuse", "select", "reuse", "select", "anneal", "anneal"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    epochs: usize,
    warmup: usize,
    interval: usize,
    anneal: usize,
}

impl Schedule {
    /// A run of `epochs` epochs that prunes every epoch (no warm-up, interval 1, no annealing).
    pub fn new(epochs: usize) -> Self {
        Self { epochs, warmup: 0, interval: 1, anneal: 0 }
    }

    /// Full-data epochs at the start.
    pub fn warmup(mut self, epochs: usize) -> Self {
        self.warmup = epochs;
        self
    }

    /// Re-select every `interval` epochs (>= 1); epochs in between reuse the last selection.
    pub fn interval(mut self, interval: usize) -> Self {
        self.interval = interval;
        self
    }

    /// Full-data epochs at the end.
    pub fn anneal(mut self, epochs: usize) -> Self {
        self.anneal = epochs;
        self
    }

    /// Full-data epochs at the end as a fraction of the run: `round(fraction * epochs)`.
    /// InfoBatch's `delta` corresponds to `anneal_fraction(1 - delta)`.
    pub fn anneal_fraction(self, fraction: f64) -> Result<Self> {
        check_half_open("anneal_fraction", fraction)?;
        Ok(self.anneal((fraction * self.epochs as f64).round() as usize))
    }

    /// Checks the schedule is consistent.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(PruneError::InvalidSchedule("the run has 0 epochs".into()));
        }
        if self.interval == 0 {
            return Err(PruneError::InvalidSchedule("the selection interval must be at least 1 epoch".into()));
        }
        if self.warmup + self.anneal > self.epochs {
            return Err(PruneError::InvalidSchedule(format!(
                "warm-up ({}) plus annealing ({}) epochs exceed the run's {} epochs",
                self.warmup, self.anneal, self.epochs
            )));
        }
        Ok(())
    }

    /// The run's length in epochs.
    pub fn epochs(&self) -> usize {
        self.epochs
    }
    /// Warm-up epochs.
    pub fn warmup_epochs(&self) -> usize {
        self.warmup
    }
    /// Selection interval.
    pub fn selection_interval(&self) -> usize {
        self.interval
    }
    /// Annealing epochs.
    pub fn anneal_epochs(&self) -> usize {
        self.anneal
    }

    /// The phase of `epoch` (for epochs past the end, [`Phase::Anneal`]).
    pub fn phase(&self, epoch: usize) -> Phase {
        if epoch < self.warmup {
            Phase::Warmup
        } else if epoch + self.anneal >= self.epochs {
            Phase::Anneal
        } else if (epoch - self.warmup) % self.interval.max(1) == 0 {
            Phase::Select
        } else {
            Phase::Reuse
        }
    }

    /// Number of epochs that train on a pruned subset.
    pub fn pruned_epochs(&self) -> usize {
        self.epochs.saturating_sub(self.warmup + self.anneal)
    }

    /// The fraction each *pruned* epoch must remove so that the whole run spends the same number
    /// of sample passes as removing `prune_fraction` from every epoch: `(1 - f) * n * epochs`.
    /// Warm-up and annealing epochs train on everything, so they count against that budget and
    /// the pruned epochs keep fewer samples to pay for them:
    /// `1 - ((1 - f) * epochs - warmup - anneal) / pruned_epochs`.
    ///
    /// ```
    /// use dynaprune::Schedule;
    /// // 10 epochs at 50%: 5 dataset passes. One warm-up epoch spends 1, so the 9 pruned epochs
    /// // keep 4/9 of the data each (remove 5/9).
    /// let f = Schedule::new(10).warmup(1).budget_matched_fraction(0.5).unwrap();
    /// assert!((f - 5.0 / 9.0).abs() < 1e-12);
    /// assert_eq!(Schedule::new(10).budget_matched_fraction(0.3).unwrap(), 0.3);
    /// ```
    ///
    /// Errors when the full-data epochs alone spend the budget (or more), naming the numbers.
    pub fn budget_matched_fraction(&self, prune_fraction: f64) -> Result<f64> {
        check_half_open("prune_fraction", prune_fraction)?;
        self.validate()?;
        let full = (self.warmup + self.anneal) as f64;
        let budget = (1.0 - prune_fraction) * self.epochs as f64;
        let pruned = self.pruned_epochs();
        if pruned == 0 || budget - full <= 0.0 {
            return Err(PruneError::InvalidSchedule(format!(
                "a budget of (1 - {prune_fraction}) x {} = {budget:.3} dataset passes cannot be met: the {} warm-up and \
                 {} annealing epochs already train on the full data ({full} passes){}; lower them, or the prune fraction, \
                 or use the nominal budget",
                self.epochs,
                self.warmup,
                self.anneal,
                if pruned == 0 { " and no epoch is left to prune" } else { "" }
            )));
        }
        if self.warmup + self.anneal == 0 {
            return Ok(prune_fraction);
        }
        Ok(1.0 - (budget - full) / pruned as f64)
    }
}

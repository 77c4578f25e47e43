//! From flags to settings, once: [`TrainArgs::resolve`] fills the defaults that depend on other
//! flags, checks every range (the errors name the flag) and returns the typed [`Settings`] that
//! the rest of the harness reads. The flags themselves ([`super::flags`]) only declare.

use anyhow::{bail, Context, Result};

use super::flags::{serde_defaults, TrainArgs};
use super::settings::{self, Settings};
use super::values::{BudgetArg, PolicyArg};

impl TrainArgs {
    /// What the flags mean, as typed settings: checks every range and fills the defaults that
    /// depend on other flags. The flags themselves are not changed; the settings carry the run's
    /// record ([`Settings::record`]: these flags with every derived default written in, as
    /// `config.json` and the resume fingerprint hold them).
    pub fn resolve(&self) -> Result<Settings> {
        let mut record = self.clone();
        record.fill_derived()?;
        Settings::from_resolved(record)
    }

    /// Checks the flags and writes the defaults that depend on other flags into this copy.
    fn fill_derived(&mut self) -> Result<()> {
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.batch_size == 0 {
            bail!("--batch-size must be at least 1");
        }
        if !(0.0..1.0).contains(&self.prune_fraction) {
            bail!("--prune-fraction must be in [0, 1) (the fraction of samples REMOVED), got {}", self.prune_fraction);
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be positive, got {}", self.lr);
        }
        if self.scorer_models == 0 {
            bail!("--scorer-models must be at least 1");
        }
        if self.eval_every == 0 {
            bail!("--eval-every must be at least 1");
        }
        if self.warmup_epochs.is_none() {
            self.warmup_epochs = Some(self.policy.info().warmup_epochs(self.epochs));
        }
        if self.ema_decay.is_none() {
            self.ema_decay = Some(settings::preferred_ema_decay(self)?);
        }
        for (flag, v) in [
            ("--staleness-retention", self.staleness_retention),
            ("--staleness-drift", self.staleness_drift),
            ("--staleness-bonus", self.staleness_bonus),
            ("--kakurenbo-tau", self.kakurenbo_tau),
        ] {
            if !v.is_finite() || v < 0.0 {
                bail!("{flag} must be a finite number >= 0, got {v}");
            }
        }
        if !self.kakurenbo_lr.is_reference() && self.policy != PolicyArg::Kakurenbo {
            bail!("--kakurenbo-lr applies to --policy kakurenbo only, not to --policy {}", self.policy.as_str());
        }
        self.check_seta()?;
        self.check_selective_backprop()?;
        if self.staleness_retention > 1.0 || self.kakurenbo_tau > 1.0 {
            bail!(
                "--staleness-retention and --kakurenbo-tau must be in [0, 1], got {} and {}",
                self.staleness_retention,
                self.kakurenbo_tau
            );
        }
        if self.anneal_epochs.is_none() {
            self.anneal_epochs = Some(self.policy.info().anneal_epochs(self.epochs));
        }
        if self.el2n_epochs.is_none() {
            self.el2n_epochs = Some(((self.epochs as f64 * 0.1).round() as usize).max(1));
        }
        if self.forgetting_epochs.is_none() {
            self.forgetting_epochs = Some(self.epochs);
        }
        let w = self.warmup_epochs.unwrap_or(0);
        let a = self.anneal_epochs.unwrap_or(0);
        if w + a > self.epochs {
            bail!("--warmup-epochs ({w}) + --anneal-epochs ({a}) exceed --epochs ({})", self.epochs);
        }
        self.pruned_epoch_fraction = match (self.budget, self.policy) {
            (_, PolicyArg::Full) => None,
            (BudgetArg::Nominal, _) => Some(self.prune_fraction),
            (BudgetArg::Matched, _) => Some(dynaprune::Schedule::new(self.epochs)
                .warmup(w)
                .anneal(a)
                .budget_matched_fraction(self.prune_fraction)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "--budget matched with --prune-fraction {}, --epochs {}, --warmup-epochs {w}, --anneal-epochs {a}: {e}",
                        self.prune_fraction,
                        self.epochs
                    )
                })?),
        };
        Ok(())
    }
}

impl TrainArgs {
    /// SeTa's knobs: each checked by the crate, the error naming the flag; set away from their
    /// defaults with another policy, they are refused (they would do nothing).
    fn check_seta(&self) -> Result<()> {
        let changed = [
            ("--seta-groups", !serde_defaults::is_seta_groups(&self.seta_groups)),
            ("--seta-window-scale", !serde_defaults::is_seta_window(&self.seta_window_scale)),
            ("--seta-delta", !serde_defaults::is_seta_delta(&self.seta_delta)),
            ("--seta-budget", !self.seta_budget.is_exact()),
        ];
        if self.policy != PolicyArg::Seta {
            if let Some((flag, _)) = changed.iter().find(|(_, c)| *c) {
                bail!("{flag} applies to --policy seta only, not to --policy {}", self.policy.as_str());
            }
            return Ok(());
        }
        let s = dynaprune::Seta::new(0.0).expect("0 is a valid prune fraction");
        let s = s.with_groups(self.seta_groups).with_context(|| format!("--seta-groups {}", self.seta_groups))?;
        s.with_window_scale(self.seta_window_scale)
            .with_context(|| {
                format!("--seta-window-scale {} with --seta-groups {}", self.seta_window_scale, self.seta_groups)
            })?
            .with_delta(self.seta_delta)
            .with_context(|| format!("--seta-delta {}", self.seta_delta))?;
        Ok(())
    }

    /// Selective-Backprop's knobs, checked by the crate, the error naming the flag; refused with
    /// another policy.
    fn check_selective_backprop(&self) -> Result<()> {
        let changed = [
            ("--sb-beta", self.sb_beta.is_some()),
            ("--sb-history", !serde_defaults::is_sb_history(&self.sb_history)),
            ("--sb-floor", self.sb_floor != 0.0),
        ];
        if self.policy != PolicyArg::SelectiveBackprop {
            if let Some((flag, _)) = changed.iter().find(|(_, c)| *c) {
                bail!("{flag} applies to --policy selective-backprop only, not to --policy {}", self.policy.as_str());
            }
            return Ok(());
        }
        let s = match self.sb_beta {
            Some(b) => dynaprune::SelectiveBackprop::new(b).with_context(|| format!("--sb-beta {b}"))?,
            None => dynaprune::SelectiveBackprop::new(1.0).expect("1 is a valid exponent"),
        };
        s.with_history(self.sb_history)
            .with_context(|| format!("--sb-history {}", self.sb_history))?
            .with_floor(self.sb_floor)
            .with_context(|| format!("--sb-floor {}", self.sb_floor))?;
        Ok(())
    }
}

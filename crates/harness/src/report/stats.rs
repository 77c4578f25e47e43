//! The report's statistics: means over seeds, paired differences with their 95% t intervals and
//! p-values, and the Holm-Bonferroni correction over a family of comparisons.
//!
//! **Holm-adjusted verdicts and intervals.** A family (every comparison against uniform random,
//! say) of `m` paired t-tests with p-values sorted `p_(1) <= ... <= p_(m)`: Holm rejects
//! `H_(1), ..., H_(k-1)` where `k` is the first rank with `p_(k) > alpha / (m - k + 1)`, and its
//! adjusted p-value is `max_{j <= i} min(1, (m - j + 1) p_(j))`; a difference is *measured* after
//! correction when that is below `alpha`. Each comparison's *adjusted interval* is its t interval
//! at level `1 - alpha / (m - min(i, k) + 1)` (`i` its rank): the intervals of the rejected
//! hypotheses exclude 0 and those of the others contain it, so interval and verdict never
//! disagree. Comparisons with fewer than 2 paired seeds have no p-value and are left out of
//! their family.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The level of every test and interval: 95%.
pub const ALPHA: f64 = 0.05;

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 { (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    (m, sd)
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (two-sided 95% intervals),
/// to three decimals as in the usual tables; 1.96 (the normal quantile) above 30. The unadjusted
/// intervals use it, so that they stay as published.
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    if df == 0 {
        f64::NAN
    } else {
        T.get(df - 1).copied().unwrap_or(1.96)
    }
}

fn students_t(df: usize) -> Option<StudentsT> {
    StudentsT::new(0.0, 1.0, df as f64).ok()
}

/// A paired comparison of test accuracy over seeds: `this - other` per seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// Seeds present in both.
    pub n: usize,
    /// Mean difference.
    pub mean: f64,
    /// 95% interval (t distribution over seeds); NaN with fewer than 2 seeds.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Standard error of the mean difference (NaN with fewer than 2 seeds).
    pub se: f64,
    /// Two-sided p-value of the paired t-test of "no difference" (NaN with fewer than 2 seeds).
    pub p: f64,
}

impl Paired {
    /// From per-seed differences.
    pub fn from_diffs(d: &[f64]) -> Self {
        let (mean, sd) = mean_std(d);
        let n = d.len();
        if n < 2 {
            return Self { n, mean, lo: f64::NAN, hi: f64::NAN, se: f64::NAN, p: f64::NAN };
        }
        let se = sd / (n as f64).sqrt();
        let half = t975(n - 1) * se;
        let p = if se == 0.0 {
            if mean == 0.0 {
                1.0
            } else {
                0.0
            }
        } else {
            students_t(n - 1).map_or(f64::NAN, |t| 2.0 * t.sf((mean / se).abs()))
        };
        Self { n, mean, lo: mean - half, hi: mean + half, se, p }
    }

    /// "higher", "lower", or "no measurable difference" (the interval contains 0, or n < 2).
    pub fn verdict(&self) -> &'static str {
        verdict(self.lo, self.hi)
    }

    /// The t interval at level `1 - alpha` (the exact quantile, not [`t975`]'s table).
    pub fn interval(&self, alpha: f64) -> (f64, f64) {
        match students_t(self.n.saturating_sub(1)) {
            Some(t) if self.n >= 2 => {
                let half = t.inverse_cdf(1.0 - alpha / 2.0) * self.se;
                (self.mean - half, self.mean + half)
            }
            _ => (f64::NAN, f64::NAN),
        }
    }
}

/// The verdict of an interval: "higher", "lower", "no measurable difference", or no interval.
pub fn verdict(lo: f64, hi: f64) -> &'static str {
    if !(lo.is_finite() && hi.is_finite()) {
        "n < 2: no interval"
    } else if lo > 0.0 {
        "higher"
    } else if hi < 0.0 {
        "lower"
    } else {
        "no measurable difference"
    }
}

/// A comparison after the Holm-Bonferroni correction over its family (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Adjusted {
    /// The comparison itself (unadjusted).
    pub paired: Paired,
    /// Holm-adjusted p-value (NaN when the comparison has no p-value).
    pub p_holm: f64,
    /// Lower end of the Holm-compatible interval.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Comparisons in the family (those with a p-value).
    pub family: usize,
}

impl Adjusted {
    /// "higher", "lower" or "no measurable difference" after correction.
    pub fn verdict(&self) -> &'static str {
        if !self.p_holm.is_finite() {
            "n < 2: no interval"
        } else if self.p_holm < ALPHA {
            if self.paired.mean > 0.0 {
                "higher"
            } else {
                "lower"
            }
        } else {
            "no measurable difference"
        }
    }
}

/// The Holm-Bonferroni correction of one family of comparisons, returned in the given order.
pub fn holm(family: &[Paired]) -> Vec<Adjusted> {
    let mut order: Vec<usize> = (0..family.len()).filter(|&i| family[i].p.is_finite()).collect();
    order.sort_by(|&a, &b| family[a].p.total_cmp(&family[b].p).then(a.cmp(&b)));
    let m = order.len();
    // The first rank (0-based) Holm does not reject; m when it rejects all.
    let k = order.iter().enumerate().position(|(i, &c)| family[c].p > ALPHA / (m - i) as f64).unwrap_or(m);
    let mut out: Vec<Adjusted> = family
        .iter()
        .map(|p| Adjusted { paired: p.clone(), p_holm: f64::NAN, lo: f64::NAN, hi: f64::NAN, family: m })
        .collect();
    let mut running = 0.0f64;
    for (i, &c) in order.iter().enumerate() {
        running = running.max(((m - i) as f64 * family[c].p).min(1.0));
        let (lo, hi) = family[c].interval(ALPHA / (m - i.min(k)) as f64);
        out[c] = Adjusted { paired: family[c].clone(), p_holm: running, lo, hi, family: m };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn p_values_and_quantiles_match_scipy() {
        // scipy.stats.ttest_1samp([1, 2, 4], 0): t = 2.6458, p = 0.11808;
        // scipy.stats.t.ppf(0.975, 2) = 4.302653, t.ppf(1 - 0.05 / 6, 2) = 7.648804 (scipy 1.x).
        let p = Paired::from_diffs(&[1.0, 2.0, 4.0]);
        assert!(close(p.p, 0.118_08, 1e-5), "{}", p.p);
        let (lo, hi) = p.interval(0.05);
        assert!(close(hi - p.mean, 4.302_653 * p.se, 1e-5));
        assert!(close(lo, p.mean - 4.302_653 * p.se, 1e-5));
        let (_, hi3) = p.interval(0.05 / 3.0);
        assert!(close(hi3 - p.mean, 7.648_804 * p.se, 1e-5), "{}", (hi3 - p.mean) / p.se);
        // Equal differences: no spread, p = 0 (or 1 when they are all 0).
        assert_eq!(Paired::from_diffs(&[0.5, 0.5]).p, 0.0);
        assert_eq!(Paired::from_diffs(&[0.0, 0.0, 0.0]).p, 1.0);
        assert!(Paired::from_diffs(&[0.5]).p.is_nan());
    }

    #[test]
    fn holm_by_hand() {
        // p = 0.01, 0.04, 0.03, 0.20 (m = 4): sorted 0.01, 0.03, 0.04, 0.20; thresholds 0.0125,
        // 0.0167, 0.025, 0.05: only the first is rejected. Adjusted (sorted): 0.04, 0.09,
        // max(0.09, 0.08) = 0.09, 0.20.
        let fam: Vec<Paired> = [0.01, 0.04, 0.03, 0.20]
            .iter()
            .map(|&p| Paired { n: 3, mean: 1.0, lo: 0.0, hi: 2.0, se: 0.3, p })
            .collect();
        let adj = holm(&fam);
        let ps: Vec<f64> = adj.iter().map(|a| a.p_holm).collect();
        for (got, want) in ps.iter().zip([0.04, 0.09, 0.09, 0.20]) {
            assert!(close(*got, want, 1e-12), "{ps:?}");
        }
        assert_eq!(adj[0].verdict(), "higher");
        assert_eq!(adj[2].verdict(), "no measurable difference");
        // The rejected one's interval is at level 1 - 0.05/4; the others at 1 - 0.05/3 (k = 1).
        assert_eq!((adj[0].lo, adj[0].hi), fam[0].interval(0.05 / 4.0));
        assert_eq!((adj[3].lo, adj[3].hi), fam[3].interval(0.05 / 3.0));
        assert!(adj.iter().all(|a| a.family == 4));
    }

    #[test]
    fn intervals_agree_with_verdicts() {
        // Real-looking differences over 3 seeds: whatever Holm decides, the adjusted interval
        // excludes 0 exactly when the adjusted verdict is a difference.
        let fam: Vec<Paired> = [
            [0.0031, 0.0012, 0.0050],
            [0.0079, 0.0101, 0.0057],
            [-0.002, 0.001, 0.0005],
            [0.0300, 0.0310, 0.0295],
            [-0.0150, -0.0120, -0.0170],
        ]
        .iter()
        .map(|d| Paired::from_diffs(d))
        .collect();
        for a in holm(&fam) {
            let excludes = a.lo > 0.0 || a.hi < 0.0;
            assert_eq!(excludes, a.verdict() != "no measurable difference", "{a:?}");
            assert!(a.p_holm >= a.paired.p);
        }
    }
}

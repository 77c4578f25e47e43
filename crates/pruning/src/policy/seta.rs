//! SeTa (Zhou et al., CVPR 2025, "Scale Efficient Training for Large Datasets"): group the
//! samples by loss, train on a window of groups that slides from easy to hard.

use super::{Policy, SelectContext, Selection, Statistic};
use crate::buffer::ScoreBuffer;
use crate::error::{check_half_open, PruneError, Result};
use crate::rng::Rng;
use crate::select::{keep_count, sample};

/// How many samples a SeTa selection keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetaBudget {
    /// Exactly `k = round((1 - prune_fraction) * n)` every selection, so a run spends a known
    /// budget (ours, for equal-budget comparisons): the window's groups are pooled, widened by
    /// whole groups while they hold fewer than `k` samples, and `k` of the pool are drawn
    /// uniformly. Drawing `k` of the window is what the reference's random pre-selection does
    /// to the window, in expectation, with its keep ratio set to `k / |window|`.
    #[default]
    Exact,
    /// The reference code's arithmetic: a uniformly random `floor(keep * n)` of the samples, with
    /// `keep = clamp(1 - prune_fraction, 0.1, 1)`, is clustered and the window's groups of it are
    /// kept, so the count varies with the clusters (about `keep * window_scale` of the data).
    /// Each plan reports the fraction actually removed (`fraction_removed`).
    Reference,
}

/// SeTa: per-sample losses are clustered into `groups` groups by 1-D k-means and the groups are
/// ordered from easy (low loss) to hard; a window of `round_half_even(groups * window_scale)`
/// consecutive groups is kept, and it slides one group towards the hard end at every selection,
/// wrapping back to the easiest: selection `j` starts at group `j mod (groups - window + 1)`.
/// The first selection keeps every group (a random subset, the reference's first epoch); from
/// the last `1 - delta` of the epochs on, every selection is a uniformly random subset of the
/// same size (the reference's "partial annealing": it keeps pruning, at random).
///
/// Follows `seta.py` in `mrazhou/SeTa` (the class `SeTa`, its `kmeans_group` and
/// `slide_easy2hard`). What is *reconstructed* or changed, on purpose:
/// - **k-means.** The reference calls scikit-learn's `KMeans(n_clusters, random_state=0)`
///   (k-means++ initialisation, one run, Lloyd). Ours is Lloyd's algorithm on the sorted losses,
///   started from the quantiles `(g + 1/2) / groups`, run to convergence (at most 300 rounds, as
///   scikit-learn): deterministic, with no random stream, and a local optimum of the same
///   objective. In one dimension every cluster is an interval of the sorted losses. A point
///   exactly between two centres joins the lower one (scikit-learn's first minimum). A group that
///   empties stays empty.
/// - **Equal losses.** When every seen loss is equal the reference splits its random subset into
///   equal chunks; a window of equal chunks of a random order is a random subset, which is what
///   we keep.
/// - **Never-seen samples** (SeTa starts every loss at 3.0, which puts them in the hardest group)
///   join the hardest group without moving its centre.
/// - **The budget** ([`SetaBudget`]): exact by default. The reference's window size uses Python's
///   `round` (half to even): 5 groups at 0.9 make a window of 4; so do ours.
/// - **Warm-up.** The catalog gives SeTa one full-data epoch, like every score-based rule here;
///   the reference starts from its constant 3.0 instead. The first *selection* still keeps every
///   group, as the reference's first epoch does.
/// - No global reseeding (the reference seeds NumPy and PyTorch from the iteration count).
///
/// Defaults: 5 groups and a window scale of 0.9 (the reference's CIFAR script,
/// `scripts/cifar.sh`), `delta = 0.875`. Scores: the last observed loss, as the reference keeps.
#[derive(Debug, Clone)]
pub struct Seta {
    prune_fraction: f64,
    groups: usize,
    window_scale: f64,
    delta: f64,
    budget: SetaBudget,
    statistic: Statistic,
}

impl Seta {
    /// The reference CIFAR script's number of groups.
    pub const DEFAULT_GROUPS: usize = 5;
    /// The reference CIFAR script's window scale.
    pub const DEFAULT_WINDOW_SCALE: f64 = 0.9;
    /// The reference's annealing point (`delta`).
    pub const DEFAULT_DELTA: f64 = 0.875;
    /// scikit-learn's `max_iter`.
    const MAX_ROUNDS: usize = 300;

    /// SeTa removing `prune_fraction` (in `[0, 1)`) per selection, with the default groups,
    /// window and annealing point.
    pub fn new(prune_fraction: f64) -> Result<Self> {
        check_half_open("prune_fraction", prune_fraction)?;
        Ok(Self {
            prune_fraction,
            groups: Self::DEFAULT_GROUPS,
            window_scale: Self::DEFAULT_WINDOW_SCALE,
            delta: Self::DEFAULT_DELTA,
            budget: SetaBudget::Exact,
            statistic: Statistic::Last,
        })
    }

    /// Clusters into `groups` groups (`>= 1`); the window must still hold at least one group.
    pub fn with_groups(mut self, groups: usize) -> Result<Self> {
        if groups == 0 {
            return Err(PruneError::InvalidKnob { name: "seta_groups", value: 0.0, expected: "an integer >= 1" });
        }
        self.groups = groups;
        self.check_window()?;
        Ok(self)
    }

    /// Keeps a window of `round_half_even(groups * window_scale)` groups; `window_scale` in
    /// `(0, 1]`, large enough that the window holds at least one group.
    pub fn with_window_scale(mut self, window_scale: f64) -> Result<Self> {
        if !(window_scale.is_finite() && window_scale > 0.0 && window_scale <= 1.0) {
            return Err(PruneError::InvalidKnob { name: "seta_window_scale", value: window_scale, expected: "(0, 1]" });
        }
        self.window_scale = window_scale;
        self.check_window()?;
        Ok(self)
    }

    /// Random subsets (no windows) from `delta * epochs` on; `delta` in `(0, 1]` (1 = never).
    pub fn with_delta(mut self, delta: f64) -> Result<Self> {
        if !(delta.is_finite() && delta > 0.0 && delta <= 1.0) {
            return Err(PruneError::InvalidKnob { name: "seta_delta", value: delta, expected: "(0, 1]" });
        }
        self.delta = delta;
        Ok(self)
    }

    /// Exact counts (default) or the reference's arithmetic.
    pub fn with_budget(mut self, budget: SetaBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Clusters by this statistic (default: the last value, as the reference does).
    pub fn with_statistic(mut self, statistic: Statistic) -> Self {
        self.statistic = statistic;
        self
    }

    /// Number of groups.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Groups in the window: `round_half_even(groups * window_scale)`.
    pub fn window(&self) -> usize {
        (self.groups as f64 * self.window_scale).round_ties_even() as usize
    }

    /// The window scale.
    pub fn window_scale(&self) -> f64 {
        self.window_scale
    }

    /// The annealing point.
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// The budget rule.
    pub fn budget(&self) -> SetaBudget {
        self.budget
    }

    /// The first group of selection `j`'s window (`j >= 1`; selection 0 keeps every group).
    pub fn window_start(&self, j: usize) -> usize {
        j % (self.groups - self.window() + 1)
    }

    /// `true` when `ctx.epoch` is in the annealing phase: the reference's `epoch + 1 > delta *
    /// epochs` (1-based epochs there).
    pub fn annealing(&self, ctx: &SelectContext) -> bool {
        (ctx.epoch + 1) as f64 > self.delta * ctx.epochs as f64
    }

    fn check_window(&self) -> Result<()> {
        if self.window() == 0 {
            return Err(PruneError::InvalidKnob {
                name: "seta_window_scale",
                value: self.window_scale,
                expected: "a value with round_half_even(seta_groups * seta_window_scale) >= 1 (the window holds \
                           at least one group)",
            });
        }
        Ok(())
    }
}

/// 1-D k-means of `sorted` (ascending, finite) into `groups` intervals: returns the `groups + 1`
/// interval bounds (`bounds[g]..bounds[g + 1]` is group `g`, easy to hard). Lloyd's algorithm
/// from the quantile centres, until the intervals stop changing or `max_rounds` rounds.
pub fn kmeans_1d(sorted: &[f64], groups: usize, max_rounds: usize) -> Vec<usize> {
    let m = sorted.len();
    let groups = groups.max(1);
    let mut prefix = Vec::with_capacity(m + 1);
    let mut acc = 0.0f64;
    prefix.push(0.0);
    for &x in sorted {
        acc += x;
        prefix.push(acc);
    }
    let mut centres: Vec<f64> =
        (0..groups).map(|g| if m == 0 { 0.0 } else { sorted[(((2 * g + 1) * m) / (2 * groups)).min(m - 1)] }).collect();
    let mut bounds = vec![0usize; groups + 1];
    bounds[groups] = m;
    for _ in 0..max_rounds.max(1) {
        let mut next = bounds.clone();
        for g in 1..groups {
            // Points at or below the midpoint join the lower centre.
            let mid = 0.5 * (centres[g - 1] + centres[g]);
            next[g] = sorted.partition_point(|&x| x <= mid).max(next[g - 1]);
        }
        let changed = next != bounds;
        bounds = next;
        for g in 0..groups {
            let (lo, hi) = (bounds[g], bounds[g + 1]);
            if hi > lo {
                centres[g] = (prefix[hi] - prefix[lo]) / (hi - lo) as f64;
            }
        }
        if !changed {
            break;
        }
    }
    bounds
}

impl Policy for Seta {
    fn name(&self) -> &'static str {
        crate::catalog::SETA.name
    }
    fn prune_fraction(&self) -> f64 {
        self.prune_fraction
    }
    fn select(&self, ctx: &SelectContext, buffer: &dyn ScoreBuffer, rng: &mut Rng) -> Result<Selection> {
        let n = buffer.len();
        if n == 0 {
            return Err(PruneError::EmptyDataset);
        }
        let k = keep_count(n, self.prune_fraction)?;
        let annealing = self.annealing(ctx);
        // The candidates: everything (exact), or the reference's random pre-selection.
        let candidates: Vec<usize> = match self.budget {
            SetaBudget::Exact => (0..n).collect(),
            SetaBudget::Reference => {
                let keep = (1.0 - self.prune_fraction).clamp(0.1, 1.0);
                sample((0..n).collect(), ((keep * n as f64) as usize).max(1), rng)
            }
        };
        let want = match self.budget {
            SetaBudget::Exact => k,
            SetaBudget::Reference => candidates.len(),
        };
        let recs = buffer.records();
        let stat = self.statistic;
        // Seen candidates sorted by score (ties by index); never-seen ones join the hardest group.
        let mut seen: Vec<(f32, usize)> = Vec::with_capacity(candidates.len());
        let mut unseen = Vec::new();
        for &i in &candidates {
            let r = &recs[i];
            if r.is_seen() {
                seen.push((stat.of(r), i));
            } else {
                unseen.push(i);
            }
        }
        // No ranking to group by: every seen loss equal (and nothing unseen), or nothing seen.
        let all_equal = seen.is_empty() || (unseen.is_empty() && seen.windows(2).all(|w| w[0].0 == w[1].0));
        let mut notes = vec![("annealing".to_string(), f64::from(u8::from(annealing)))];
        let first = ctx.selection == 0;
        let indices = if annealing || first || all_equal || self.groups == 1 {
            // Every group (or no grouping at all): a uniformly random `want` of the candidates.
            sample(candidates, want, rng)
        } else {
            seen.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let sorted: Vec<f64> = seen.iter().map(|&(s, _)| f64::from(s)).collect();
            let bounds = kmeans_1d(&sorted, self.groups, Self::MAX_ROUNDS);
            let size = |g: usize| bounds[g + 1] - bounds[g] + if g + 1 == self.groups { unseen.len() } else { 0 };
            let mut lo = self.window_start(ctx.selection);
            let mut hi = lo + self.window();
            let mut pooled: usize = (lo..hi).map(size).sum();
            // Exact budget: widen by whole groups, the harder side first, until the pool holds k.
            let mut widened = 0usize;
            while self.budget == SetaBudget::Exact && pooled < want && (lo > 0 || hi < self.groups) {
                if hi < self.groups {
                    pooled += size(hi);
                    hi += 1;
                } else {
                    lo -= 1;
                    pooled += size(lo);
                }
                widened += 1;
            }
            let mut pool: Vec<usize> = seen[bounds[lo]..bounds[hi]].iter().map(|&(_, i)| i).collect();
            if hi == self.groups {
                pool.extend_from_slice(&unseen);
            }
            notes.push(("window_start".into(), lo as f64));
            notes.push(("window_groups".into(), (hi - lo) as f64));
            notes.push(("widened_groups".into(), widened as f64));
            notes.push(("window_fraction".into(), pool.len() as f64 / n as f64));
            match self.budget {
                SetaBudget::Exact => sample(pool, want, rng),
                SetaBudget::Reference => pool,
            }
        };
        let mut indices = indices;
        if indices.is_empty() {
            // The reference's guard against an empty window: one random sample.
            indices.push(crate::select::below(rng, n as u32) as usize);
        }
        notes.push(("fraction_removed".into(), (n - indices.len()) as f64 / n as f64));
        Ok(Selection { indices, notes, ..Selection::default() })
    }
}

//! Metrics: one global threshold per target FMR, then per-group FMR/FNMR at that same threshold, the
//! cross-group FMR matrix and the max/min and Max/GeoMean differentials (NIST FRVT Part 3, NIST IR
//! 8429). Definitions (see `../shared/docs/METRICS.md`):
//!
//! - FMR(τ) = non-mated comparisons with score ≥ τ / non-mated comparisons;
//!   FNMR(τ) = mated comparisons with score < τ / mated comparisons.
//! - A failure to enrol (no face, unreadable image) counts as a non-match: its mated comparisons are
//!   false non-matches and its non-mated ones correct rejections, at every τ (NIST convention).
//! - The global τ for a target FMR is the lowest bin edge at which FMR over *all* non-mated comparisons
//!   is ≤ the target. A group's FMR uses non-mated pairs with both sides in the group; its FNMR the
//!   mated pairs of its subjects.
//! - A group with zero errors has no ratio: its rate is replaced by the rule-of-three 95 % upper bound
//!   3/n, and a ratio using it is reported as a bound and flagged, never as 0 or infinity.

pub mod analysis;
pub mod bootstrap;
pub mod comparison;
pub mod equity;
pub mod evidence;
pub mod groups;
pub mod identification;
pub mod policy;
pub mod separation;
pub mod store;

use serde::Serialize;

use crate::compare::{edge, CellHistograms, ScoreHistogram, BINS};
use groups::Grouping;
pub use policy::{policies, threshold_bin, PolicyRate};

/// Expected false matches needed before a target FMR is added to the defaults (1e-5, 1e-6 …).
pub const MIN_EXPECTED_ERRORS: f64 = 30.0;

/// All comparison counts of a run, per combo (finest group) and per combo pair.
#[derive(Debug, Clone)]
pub struct Comparisons {
    /// Histograms of enrolled non-mated pairs per combo pair.
    pub nonmated: CellHistograms,
    /// All non-mated pairs per combo pair (failures to enrol included), same indexing as `nonmated.cells`.
    pub nonmated_total: Vec<u64>,
    /// Histograms of enrolled mated pairs per combo.
    pub mated: Vec<ScoreHistogram>,
    /// All mated pairs per combo (failures to enrol included).
    pub mated_total: Vec<u64>,
    /// Images per combo.
    pub images: Vec<u64>,
    /// Failures to enrol per combo.
    pub fte: Vec<u64>,
}

impl Comparisons {
    /// Builds the totals from the full sample list. `combo_of` and `subject_of` cover every sample;
    /// `enrolled[i]` says whether sample `i` has an embedding. Histograms come from the compare stage.
    pub fn new(
        combos: usize,
        combo_of: &[u16],
        subject_of: &[u32],
        enrolled: &[bool],
        nonmated: CellHistograms,
        mated: Vec<ScoreHistogram>,
    ) -> Comparisons {
        let mut images = vec![0u64; combos];
        let mut fte = vec![0u64; combos];
        let mut per_subject: std::collections::HashMap<u32, (u16, u64)> = Default::default();
        for i in 0..combo_of.len() {
            images[combo_of[i] as usize] += 1;
            if !enrolled[i] {
                fte[combo_of[i] as usize] += 1;
            }
            per_subject
                .entry(subject_of[i])
                .or_insert((combo_of[i], 0))
                .1 += 1;
        }
        let mut mated_total = vec![0u64; combos];
        for &(c, n) in per_subject.values() {
            mated_total[c as usize] += n * n.saturating_sub(1) / 2;
        }
        let mut nonmated_total = vec![0u64; nonmated.cells.len()];
        for a in 0..combos {
            for b in a..combos {
                let idx = nonmated.index(a, b);
                nonmated_total[idx] = if a == b {
                    images[a] * images[a].saturating_sub(1) / 2 - mated_total[a]
                } else {
                    images[a] * images[b]
                };
            }
        }
        Comparisons {
            nonmated,
            nonmated_total,
            mated,
            mated_total,
            images,
            fte,
        }
    }

    /// Leaves one pair out of every count: a mated pair of combo `a` (`a == b`, `mated`) or a
    /// non-mated pair of combos `a`, `b`, with its score bin when both images were enrolled.
    pub fn exclude(&mut self, a: usize, b: usize, mated: bool, bin: Option<usize>) {
        if mated {
            self.mated_total[a] -= 1;
            if let Some(k) = bin {
                self.mated[a].counts[k] -= 1;
            }
        } else {
            let idx = self.nonmated.index(a, b);
            self.nonmated_total[idx] -= 1;
            if let Some(k) = bin {
                self.nonmated.cells[idx].counts[k] -= 1;
            }
        }
    }

    /// Number of combos.
    pub fn combos(&self) -> usize {
        self.images.len()
    }
}

/// A global threshold for one target FMR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Threshold {
    /// The target FMR.
    pub target_fmr: f64,
    /// Histogram bin whose lower edge is τ.
    pub bin: usize,
    /// τ: a pair matches when its score ≥ τ.
    pub tau: f64,
    /// False matches over all non-mated comparisons at τ.
    pub false_matches: u64,
    /// All non-mated comparisons.
    pub comparisons: u64,
    /// Achieved FMR (≤ target).
    pub fmr: f64,
    /// Whether the data hold enough comparisons for this target (≥ 30 expected false matches).
    pub supported: bool,
}

/// Computes the global threshold for each target over all non-mated comparisons.
pub fn global_thresholds(c: &Comparisons, targets: &[f64]) -> Vec<Threshold> {
    let mut all = ScoreHistogram::default();
    c.nonmated.cells.iter().for_each(|h| all.merge(h));
    let tail = all.tail_counts();
    let total: u64 = c.nonmated_total.iter().sum();
    targets
        .iter()
        .map(|&t| {
            let allowed = t * total as f64;
            // tail is non-increasing: first bin where the count is within the allowance.
            let bin = (0..=BINS)
                .find(|&k| tail[k] as f64 <= allowed)
                .unwrap_or(BINS);
            let fm = tail[bin];
            Threshold {
                target_fmr: t,
                bin,
                tau: edge(bin),
                false_matches: fm,
                comparisons: total,
                fmr: ratio(fm, total),
                supported: allowed >= MIN_EXPECTED_ERRORS,
            }
        })
        .collect()
}

/// The default targets: 1e-2, 1e-3, 1e-4, then 1e-5 and 1e-6 where `nonmated` comparisons support them.
pub fn default_targets(nonmated: u64) -> Vec<f64> {
    let mut t = vec![1e-2, 1e-3, 1e-4];
    for lower in [1e-5, 1e-6] {
        if lower * nonmated as f64 >= MIN_EXPECTED_ERRORS {
            t.push(lower);
        }
    }
    t
}

pub(crate) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        f64::NAN
    } else {
        num as f64 / den as f64
    }
}

/// Cumulative counts of one group (or group pair), ready to read rates at any bin.
#[derive(Debug, Clone)]
pub struct GroupCurves {
    /// Enrolled non-mated pairs at or above each bin.
    pub nonmated_tail: Vec<u64>,
    /// All non-mated comparisons.
    pub nonmated_total: u64,
    /// Enrolled mated pairs at or above each bin (empty for a cross-group pair).
    pub mated_tail: Vec<u64>,
    /// All mated comparisons.
    pub mated_total: u64,
    /// Images in the group.
    pub images: u64,
    /// Failures to enrol in the group.
    pub fte: u64,
}

impl GroupCurves {
    /// False matches at bin `k`.
    pub fn false_matches(&self, k: usize) -> u64 {
        self.nonmated_tail[k]
    }
    /// False non-matches at bin `k` (failures to enrol included).
    pub fn false_non_matches(&self, k: usize) -> u64 {
        self.mated_total - self.mated_tail.get(k).copied().unwrap_or(0)
    }
}

/// Curves for each group of a grouping (non-mated pairs with both sides in the group).
pub fn group_curves(c: &Comparisons, g: &Grouping) -> Vec<GroupCurves> {
    (0..g.groups.len())
        .map(|gi| pair_curves(c, g, gi, gi))
        .collect()
}

/// Curves for the non-mated pairs between groups `ga` and `gb` (and, when equal, the group's mated pairs).
pub fn pair_curves(c: &Comparisons, g: &Grouping, ga: usize, gb: usize) -> GroupCurves {
    let n = c.combos();
    let mut nm = ScoreHistogram::default();
    let mut nm_total = 0;
    for a in 0..n {
        for b in a..n {
            let (x, y) = (g.group_of_combo[a], g.group_of_combo[b]);
            let hit = (x == Some(ga) && y == Some(gb)) || (x == Some(gb) && y == Some(ga));
            if hit {
                let idx = c.nonmated.index(a, b);
                nm.merge(&c.nonmated.cells[idx]);
                nm_total += c.nonmated_total[idx];
            }
        }
    }
    let mut m = ScoreHistogram::default();
    let (mut m_total, mut images, mut fte) = (0, 0, 0);
    if ga == gb {
        for a in 0..n {
            if g.group_of_combo[a] == Some(ga) {
                m.merge(&c.mated[a]);
                m_total += c.mated_total[a];
                images += c.images[a];
                fte += c.fte[a];
            }
        }
    }
    GroupCurves {
        nonmated_tail: nm.tail_counts(),
        nonmated_total: nm_total,
        mated_tail: if ga == gb {
            m.tail_counts()
        } else {
            Vec::new()
        },
        mated_total: m_total,
        images,
        fte,
    }
}

/// Per-group rates at one global threshold (one row of `groups.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRate {
    /// Grouping name (`race`, `race×sex`).
    pub attribute: String,
    /// Group label.
    pub group: String,
    /// Target FMR of the threshold.
    pub target_fmr: f64,
    /// τ.
    pub threshold: f64,
    /// Images in the group.
    pub images: u64,
    /// Failures to enrol in the group.
    pub failures_to_enrol: u64,
    /// Mated comparisons.
    pub mated_comparisons: u64,
    /// Mated comparisons scoring below τ (failures to enrol included).
    pub false_non_matches: u64,
    /// FNMR (NaN when the group has no mated comparison).
    pub fnmr: f64,
    /// Non-mated comparisons with both sides in the group.
    pub nonmated_comparisons: u64,
    /// Those scoring ≥ τ.
    pub false_matches: u64,
    /// FMR (NaN when no comparison).
    pub fmr: f64,
    /// Rule-of-three 95 % upper bound on FMR when there is no false match (3/n, at most 1), else NaN.
    pub fmr_upper95: f64,
    /// 95 % subject-bootstrap interval of FMR (NaN without a bootstrap).
    pub fmr_ci_low: f64,
    /// Upper end of that interval.
    pub fmr_ci_high: f64,
    /// 95 % subject-bootstrap interval of FNMR (NaN without a bootstrap).
    pub fnmr_ci_low: f64,
    /// Upper end of that interval.
    pub fnmr_ci_high: f64,
    /// Whether the FMR enters summary metrics at this target ([`evidence`]): `ok`, `few_comparisons`
    /// (fewer than 10 expected false matches) or `insufficient` (fewer than 3/target comparisons).
    pub fmr_evidence: evidence::Evidence,
    /// Whether the FNMR enters summary metrics: `ok` or `insufficient` (fewer than
    /// [`evidence::MIN_MATED_PAIRS`] mated comparisons).
    pub fnmr_evidence: evidence::Evidence,
    /// Equal error rate of the group (threshold-free; the same in every row of the group).
    pub eer: f64,
    /// Ranking AUC of the group's mated against its non-mated scores.
    pub auc: f64,
    /// d′ between the group's mated and non-mated scores.
    pub d_prime: f64,
}

/// Rates of every group of a grouping at a threshold.
/// `seps` holds each group's threshold-free [`separation::Separation`] (computed once for all
/// thresholds).
pub fn group_rates(
    g: &Grouping,
    curves: &[GroupCurves],
    seps: &[separation::Separation],
    t: &Threshold,
) -> Vec<GroupRate> {
    g.groups
        .iter()
        .zip(curves)
        .zip(seps)
        .map(|((label, cv), sep)| {
            let fm = cv.false_matches(t.bin);
            let fnm = cv.false_non_matches(t.bin);
            GroupRate {
                attribute: g.name.clone(),
                group: label.clone(),
                target_fmr: t.target_fmr,
                threshold: t.tau,
                images: cv.images,
                failures_to_enrol: cv.fte,
                mated_comparisons: cv.mated_total,
                false_non_matches: fnm,
                fnmr: ratio(fnm, cv.mated_total),
                nonmated_comparisons: cv.nonmated_total,
                false_matches: fm,
                fmr: ratio(fm, cv.nonmated_total),
                fmr_upper95: if fm == 0 && cv.nonmated_total > 0 {
                    (3.0 / cv.nonmated_total as f64).min(1.0)
                } else {
                    f64::NAN
                },
                fmr_ci_low: f64::NAN,
                fmr_ci_high: f64::NAN,
                fnmr_ci_low: f64::NAN,
                fnmr_ci_high: f64::NAN,
                fmr_evidence: evidence::fmr(cv.nonmated_total, t.target_fmr),
                fnmr_evidence: evidence::fnmr(cv.mated_total),
                eer: sep.eer,
                auc: sep.auc,
                d_prime: sep.d_prime,
            }
        })
        .collect()
}

/// One cell of the cross-group FMR matrix (one row of `cross_fmr.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossRate {
    /// Grouping name.
    pub attribute: String,
    /// First group.
    pub group_a: String,
    /// Second group.
    pub group_b: String,
    /// Target FMR.
    pub target_fmr: f64,
    /// τ.
    pub threshold: f64,
    /// Non-mated comparisons between the two groups.
    pub comparisons: u64,
    /// Those scoring ≥ τ.
    pub false_matches: u64,
    /// FMR.
    pub fmr: f64,
}

/// The full cross-group FMR matrix (both orders of each pair, so it reads as a square).
pub fn cross_rates(c: &Comparisons, g: &Grouping, thresholds: &[Threshold]) -> Vec<CrossRate> {
    let k = g.groups.len();
    let mut out = Vec::new();
    // Upper triangle only: curves[a][b - a] for a ≤ b.
    let curves: Vec<Vec<GroupCurves>> = (0..k)
        .map(|a| (a..k).map(|b| pair_curves(c, g, a, b)).collect())
        .collect();
    for t in thresholds {
        for a in 0..k {
            for b in 0..k {
                let cv = &curves[a.min(b)][a.max(b) - a.min(b)];
                let fm = cv.false_matches(t.bin);
                out.push(CrossRate {
                    attribute: g.name.clone(),
                    group_a: g.groups[a].clone(),
                    group_b: g.groups[b].clone(),
                    target_fmr: t.target_fmr,
                    threshold: t.tau,
                    comparisons: cv.nonmated_total,
                    false_matches: fm,
                    fmr: ratio(fm, cv.nonmated_total),
                });
            }
        }
    }
    out
}

/// How a differential value should be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Computed from observed rates only.
    Exact,
    /// A zero-error group's rate was replaced by its upper bound 3/n: the true ratio is at least this.
    LowerBound,
    /// No value: fewer than two groups with comparisons, or no error in any group.
    Undefined,
}

/// One summary metric of one grouping at one threshold (one row of `equity.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EquityRow {
    /// Grouping name.
    pub attribute: String,
    /// Target FMR.
    pub target_fmr: f64,
    /// τ.
    pub threshold: f64,
    /// `max_min`, `max_geomean`, `fdr`, `inequity_rate` or `garbe`.
    pub metric: String,
    /// `fmr`, `fnmr`, or `both` for the combined metrics.
    pub rate: String,
    /// The value (NaN when undefined).
    pub value: f64,
    /// 95 % subject-bootstrap interval (NaN without a bootstrap).
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// How to read the value.
    pub bound: Bound,
    /// The group with the highest rate (max/min, Max/GeoMean), else empty.
    pub group_high: String,
    /// The group with the lowest rate (max/min), else empty.
    pub group_low: String,
    /// Whether `group_low` had no error, so its rate entered as the upper bound 3/n.
    pub group_low_bounded: bool,
    /// max/min only: 95 % subject-bootstrap interval of the ratio of these two named groups' rates
    /// (`group_high` / `group_low`, the same replicates; NaN otherwise). Unlike `ci_low`–`ci_high`,
    /// which re-ranks the groups in every replicate and so never goes below 1, this interval can
    /// cross 1: then the direction of the difference is not established.
    pub pair_ci_low: f64,
    /// Upper end of that interval.
    pub pair_ci_high: f64,
    /// Which groups set it, α, any zero-count substitution and the groups left out as insufficient.
    pub note: String,
}

/// The FMR and FNMR items of a grouping's rates.
pub fn items(rates: &[GroupRate]) -> (Vec<equity::Item>, Vec<equity::Item>) {
    let fmr = rates
        .iter()
        .map(|r| equity::Item {
            group: r.group.clone(),
            errors: r.false_matches as f64,
            n: r.nonmated_comparisons as f64,
            eligible: r.fmr_evidence.sufficient(),
        })
        .collect();
    let fnmr = rates
        .iter()
        .map(|r| equity::Item {
            group: r.group.clone(),
            errors: r.false_non_matches as f64,
            n: r.mated_comparisons as f64,
            eligible: r.fnmr_evidence.sufficient(),
        })
        .collect();
    (fmr, fnmr)
}

/// Every summary metric of one grouping at one threshold (point estimates; intervals filled later).
pub fn equity_rows(g: &Grouping, rates: &[GroupRate], t: &Threshold, alpha: f64) -> Vec<EquityRow> {
    let (fmr, fnmr) = items(rates);
    equity::all(&fmr, &fnmr, alpha)
        .into_iter()
        .map(|(metric, rate, v)| EquityRow {
            attribute: g.name.clone(),
            target_fmr: t.target_fmr,
            threshold: t.tau,
            metric: metric.into(),
            rate: rate.into(),
            value: v.value,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            bound: v.bound,
            group_high: v.high,
            group_low: v.low,
            group_low_bounded: v.low_bounded,
            pair_ci_low: f64::NAN,
            pair_ci_high: f64::NAN,
            note: v.note,
        })
        .collect()
}

/// A DET curve of one group: points (threshold, FMR, FNMR) at every 64th bin edge where FMR > 0.
pub fn det_points(cv: &GroupCurves) -> Vec<(f64, f64, f64)> {
    (0..BINS)
        .step_by(64)
        .filter_map(|k| {
            let fmr = ratio(cv.false_matches(k), cv.nonmated_total);
            let fnmr = ratio(cv.false_non_matches(k), cv.mated_total);
            (fmr > 0.0 && fmr.is_finite() && fnmr.is_finite()).then_some((edge(k), fmr, fnmr))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::bin_of;

    /// Two combos (groups "a", "b"); scores placed by hand.
    fn toy() -> (Comparisons, Grouping) {
        let mut nonmated = CellHistograms::new(2);
        let i_aa = nonmated.index(0, 0);
        let i_ab = nonmated.index(0, 1);
        let i_bb = nonmated.index(1, 1);
        for s in [0.1f32, 0.2, 0.3, 0.9] {
            nonmated.cells[i_aa].counts[bin_of(s)] += 1;
        }
        for s in [0.1f32, 0.6] {
            nonmated.cells[i_ab].counts[bin_of(s)] += 1;
        }
        for s in [0.2f32, 0.25] {
            nonmated.cells[i_bb].counts[bin_of(s)] += 1;
        }
        let mut mated = vec![ScoreHistogram::default(), ScoreHistogram::default()];
        mated[0].counts[bin_of(0.7)] += 1;
        mated[1].counts[bin_of(0.4)] += 1;
        // Group a: subject 0 ×2, subjects 1, 2, 3 (subject 3's image failed to enrol):
        //   mated 1, non-mated C(5,2) − 1 = 9. Group b: subjects 4 ×2 and 5 ×2 (one of 5's failed):
        //   mated 2 (one enrolled pair, score 0.4), non-mated C(4,2) − 2 = 4. Cross: 5·4 = 20.
        // (Only some enrolled cross pairs are put in the histograms; the counts below follow them.)
        let combo_of = [0u16, 0, 0, 0, 0, 1, 1, 1, 1];
        let subject_of = [0u32, 0, 1, 2, 3, 4, 4, 5, 5];
        let enrolled = [true, true, true, true, false, true, true, true, false];
        let c = Comparisons::new(2, &combo_of, &subject_of, &enrolled, nonmated, mated);
        let g = Grouping {
            name: "x".into(),
            groups: vec!["a".into(), "b".into()],
            group_of_combo: vec![Some(0), Some(1)],
        };
        (c, g)
    }

    #[test]
    fn totals_count_failures_to_enrol() {
        let (c, _) = toy();
        assert_eq!(c.mated_total, vec![1, 2]);
        assert_eq!(c.nonmated_total, vec![9, 20, 4]);
        assert_eq!(c.fte, vec![1, 1]);
    }

    #[test]
    fn global_threshold_and_group_rates_by_hand() {
        let (c, g) = toy();
        // 33 non-mated comparisons, 8 histogrammed: 0.1,0.2,0.3,0.9 | 0.1,0.6 | 0.2,0.25.
        // Target 0.1 allows 3.3 false matches: scores ≥ 0.3 are 3 (0.3, 0.6, 0.9), scores ≥ 0.25 are 4,
        // so τ is the edge right above bin_of(0.25).
        let t = global_thresholds(&c, &[0.1])[0];
        assert_eq!(t.bin, bin_of(0.25) + 1);
        assert_eq!((t.false_matches, t.comparisons), (3, 33));
        let curves = group_curves(&c, &g);
        let seps: Vec<_> = curves.iter().map(separation::separation).collect();
        let r = group_rates(&g, &curves, &seps, &t);
        // a: FMR = 2/9 (0.3, 0.9); FNMR = 0/1 (0.7 ≥ τ)
        assert_eq!(
            (
                r[0].false_matches,
                r[0].nonmated_comparisons,
                r[0].false_non_matches,
                r[0].mated_comparisons
            ),
            (2, 9, 0, 1)
        );
        // b: FMR = 0/4 → upper bound 3/4; FNMR: 2 mated, one enrolled scoring 0.4 ≥ τ → 1 false non-match (the failure)
        assert_eq!(
            (
                r[1].false_matches,
                r[1].false_non_matches,
                r[1].mated_comparisons
            ),
            (0, 1, 2)
        );
        assert_eq!(r[1].fmr_upper95, 0.75);
        assert_eq!((r[1].images, r[1].failures_to_enrol), (4, 1));
        let cross = cross_rates(&c, &g, &[t]);
        let ab = cross
            .iter()
            .find(|x| x.group_a == "a" && x.group_b == "b")
            .unwrap();
        assert_eq!((ab.false_matches, ab.comparisons), (1, 20));
    }

    #[test]
    fn default_targets_follow_the_data_size() {
        assert_eq!(default_targets(1_000_000), vec![1e-2, 1e-3, 1e-4]);
        assert_eq!(default_targets(3_000_000), vec![1e-2, 1e-3, 1e-4, 1e-5]);
        assert_eq!(
            default_targets(40_000_000),
            vec![1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
        );
    }
}

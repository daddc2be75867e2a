//! The views of a 1:N search beyond single rates, per group of the searcher:
//! - **CMC**: the rank-k identification rate (share of mated searches with the mate at rank ≤ k, no
//!   threshold), k = 1..L;
//! - **1:N DET**: FNIR at rank 1 against FPIR as the threshold moves, per group (each group's own
//!   searches on both axes);
//! - **gallery size**: FPIR at a fixed T at every nested size N, next to the prediction from the 1:1
//!   false-match rate of the same searches, FPIR ≈ s · (1 − (1 − FMR_g(T))^N), where s is the share of
//!   the group's non-mated searches that produced a template (a failed one never matches) and
//!   FMR_g(T) the share of the group's probe × gallery comparisons at the largest gallery scoring
//!   ≥ T. Those comparisons are counted from the kept candidate lists (L + 1 per search); when a
//!   list is full and still ≥ T the count is a lower bound and the row says so (`fmr_saturated`).

use serde::Serialize;

use super::{top1, FpirThreshold, Search};
use crate::metrics::groups::Grouping;

/// One point of a CMC curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CmcRow {
    /// Grouping.
    pub attribute: String,
    /// Group of the searcher.
    pub group: String,
    /// Gallery size N.
    pub gallery_size: usize,
    /// Rank k.
    pub rank: usize,
    /// Mated searches.
    pub searches: usize,
    /// Of those, with the mate at rank ≤ k.
    pub hits: usize,
    /// hits / searches (empty without searches).
    pub rate: Option<f64>,
}

/// CMC rows for ranks 1..=`l` at gallery size index `s` (size `n`), for every group of `gs`.
pub fn cmc(searches: &[Search], gs: &[&Grouping], s: usize, n: usize, l: usize) -> Vec<CmcRow> {
    let mut out = Vec::new();
    for g in gs {
        // [group][rank-1] → searches with the mate at exactly that rank; and mated searches per group.
        let mut at = vec![vec![0usize; l]; g.groups.len()];
        let mut total = vec![0usize; g.groups.len()];
        for x in searches.iter().filter(|x| x.mated) {
            let Some(Some(gi)) = g.group_of_combo.get(x.combo as usize) else {
                continue;
            };
            total[*gi] += 1;
            if let Some((r, _)) = x.mate_rank(s).filter(|(r, _)| *r <= l) {
                at[*gi][r - 1] += 1;
            }
        }
        for (gi, name) in g.groups.iter().enumerate() {
            let mut hits = 0;
            for (k, a) in at[gi].iter().enumerate() {
                hits += a;
                out.push(CmcRow {
                    attribute: g.name.clone(),
                    group: name.clone(),
                    gallery_size: n,
                    rank: k + 1,
                    searches: total[gi],
                    hits,
                    rate: (total[gi] > 0).then(|| hits as f64 / total[gi] as f64),
                });
            }
        }
    }
    out
}

/// One group's 1:N DET curve: (FPIR, FNIR at rank 1) as T moves down the group's non-mated top
/// scores.
#[derive(Debug, Clone, PartialEq)]
pub struct DetCurve {
    /// Group of the searcher.
    pub group: String,
    /// Points, FPIR rising.
    pub points: Vec<(f64, f64)>,
}

/// The DET curve of every group of `g` at gallery size index `s`.
pub fn det(searches: &[Search], g: &Grouping, s: usize) -> Vec<DetCurve> {
    g.groups
        .iter()
        .enumerate()
        .map(|(gi, name)| {
            let mine = |x: &&Search| g.group_of_combo.get(x.combo as usize) == Some(&Some(gi));
            let nonmated: Vec<&Search> =
                searches.iter().filter(|x| !x.mated).filter(mine).collect();
            let mated: Vec<&Search> = searches.iter().filter(|x| x.mated).filter(mine).collect();
            let mut tops: Vec<f32> = nonmated.iter().filter_map(|x| top1(x, s)).collect();
            tops.sort_by(|a, b| b.total_cmp(a));
            tops.dedup();
            let mut hits: Vec<f32> = mated
                .iter()
                .filter_map(|x| x.mate_rank(s).filter(|(r, _)| *r == 1).map(|(_, v)| v))
                .collect();
            hits.sort_by(|a, b| b.total_cmp(a));
            let points = if nonmated.is_empty() || mated.is_empty() {
                Vec::new()
            } else {
                tops.iter()
                    .map(|&t| {
                        let fp = nonmated
                            .iter()
                            .filter(|x| top1(x, s).is_some_and(|v| v >= t))
                            .count();
                        let found = hits.partition_point(|&v| v >= t);
                        (
                            fp as f64 / nonmated.len() as f64,
                            (mated.len() - found) as f64 / mated.len() as f64,
                        )
                    })
                    .collect()
            };
            DetCurve {
                group: name.clone(),
                points,
            }
        })
        .collect()
}

/// One row of `gallery_size.csv`: a group's FPIR at one T and one gallery size, and its prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrowthRow {
    /// Grouping.
    pub attribute: String,
    /// Group of the searcher.
    pub group: String,
    /// Target FPIR of T.
    pub target_fpir: f64,
    /// T.
    pub threshold: f32,
    /// Gallery size N.
    pub gallery_size: usize,
    /// Non-mated searches.
    pub searches: usize,
    /// Of those, with a candidate ≥ T.
    pub false_positives: usize,
    /// Measured FPIR(N, T) (empty without searches).
    pub fpir: Option<f64>,
    /// The group's 1:1 FMR(T) at the largest gallery (empty without comparisons).
    pub fmr: Option<f64>,
    /// Probe × gallery comparisons behind `fmr`.
    pub comparisons: u64,
    /// Of those, scoring ≥ T.
    pub false_matches: u64,
    /// Whether a full candidate list was still ≥ T (then `fmr` is a lower bound).
    pub fmr_saturated: bool,
    /// s · (1 − (1 − FMR)^N).
    pub predicted_fpir: Option<f64>,
}

/// FPIR against gallery size with its prediction, for every group of `gs` and threshold; `sizes`
/// are the N values (the last is the largest), `keep` the candidates kept per list (L + 1).
pub fn growth(
    searches: &[Search],
    gs: &[&Grouping],
    sizes: &[usize],
    keep: usize,
    thresholds: &[FpirThreshold],
) -> Vec<GrowthRow> {
    let last = sizes.len() - 1;
    let n_max = sizes[last] as u64;
    let mut out = Vec::new();
    for t in thresholds {
        for g in gs {
            for (gi, name) in g.groups.iter().enumerate() {
                let mine: Vec<&Search> = searches
                    .iter()
                    .filter(|x| {
                        !x.mated && g.group_of_combo.get(x.combo as usize) == Some(&Some(gi))
                    })
                    .collect();
                let with_face = mine.iter().filter(|x| !x.failed).count();
                let mut false_matches = 0u64;
                let mut saturated = false;
                for x in mine.iter().filter(|x| !x.failed) {
                    let list = &x.candidates[last];
                    false_matches += list.iter().filter(|c| c.score >= t.t).count() as u64;
                    saturated |= list.len() == keep && list.last().is_some_and(|c| c.score >= t.t);
                }
                let comparisons = with_face as u64 * n_max;
                let fmr = (comparisons > 0).then(|| false_matches as f64 / comparisons as f64);
                let share = if mine.is_empty() {
                    0.0
                } else {
                    with_face as f64 / mine.len() as f64
                };
                for (s, &n) in sizes.iter().enumerate() {
                    let fp = mine
                        .iter()
                        .filter(|x| top1(x, s).is_some_and(|v| v >= t.t))
                        .count();
                    out.push(GrowthRow {
                        attribute: g.name.clone(),
                        group: name.clone(),
                        target_fpir: t.target,
                        threshold: t.t,
                        gallery_size: n,
                        searches: mine.len(),
                        false_positives: fp,
                        fpir: (!mine.is_empty()).then(|| fp as f64 / mine.len() as f64),
                        fmr,
                        comparisons,
                        false_matches,
                        fmr_saturated: saturated,
                        predicted_fpir: fmr.map(|f| share * -(n as f64 * (-f).ln_1p()).exp_m1()),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::search::Candidate;

    fn c(entry: u32, score: f32) -> Candidate {
        Candidate { entry, score }
    }

    fn one_group() -> Grouping {
        Grouping {
            name: "g".into(),
            groups: vec!["x".into()],
            group_of_combo: vec![Some(0)],
        }
    }

    #[test]
    fn cmc_det_and_growth_by_hand() {
        let mated = |list: Vec<Candidate>| Search {
            mated: true,
            combo: 0,
            subject: 0,
            mate: Some(7),
            failed: false,
            candidates: vec![list.clone(), list],
        };
        let nonmated = |small: Vec<Candidate>, big: Vec<Candidate>, failed| Search {
            mated: false,
            combo: 0,
            subject: 1,
            mate: None,
            failed,
            candidates: vec![small, big],
        };
        let s = vec![
            mated(vec![c(7, 0.9), c(1, 0.2)]), // rank 1
            mated(vec![c(1, 0.8), c(7, 0.6)]), // rank 2
            mated(vec![c(1, 0.8), c(2, 0.7)]), // mate not kept: miss
            nonmated(vec![c(3, 0.3)], vec![c(9, 0.7), c(3, 0.3)], false),
            nonmated(vec![c(4, 0.1)], vec![c(4, 0.1), c(5, 0.05)], false),
            nonmated(vec![], vec![], true),
        ];
        let g = one_group();
        let rows = cmc(&s, &[&g], 1, 100, 2);
        let rates: Vec<Option<f64>> = rows.iter().map(|r| r.rate).collect();
        assert_eq!(rates, vec![Some(1.0 / 3.0), Some(2.0 / 3.0)]);
        // DET at size index 1: distinct tops 0.7, 0.1. At T = 0.7: FPIR 1/3; rank-1 mates ≥ 0.7: the
        // 0.9 one → FNIR 2/3. At T = 0.1: FPIR 2/3, FNIR still 2/3.
        let d = det(&s, &g, 1);
        assert_eq!(
            d[0].points,
            vec![(1.0 / 3.0, 2.0 / 3.0), (2.0 / 3.0, 2.0 / 3.0)]
        );
        // Growth at T = 0.5 over sizes (10, 100): FPIR 0/3 then 1/3. FMR: 1 score ≥ 0.5 out of the 2
        // searches with a face × 100 entries = 1/200; the lists (keep 2) are not saturated at 0.5.
        let t = FpirThreshold {
            target: 0.1,
            t: 0.5,
            false_positives: 1,
            searches: 3,
        };
        let r = growth(&s, &[&g], &[10, 100], 2, &[t]);
        assert_eq!(r[0].fpir, Some(0.0));
        assert_eq!(r[1].fpir, Some(1.0 / 3.0));
        assert_eq!((r[1].false_matches, r[1].comparisons), (1, 200));
        assert!(!r[1].fmr_saturated);
        // Prediction at N = 100: 2/3 · (1 − (1 − 1/200)^100) = 0.2631…
        let want = 2.0 / 3.0 * (1.0 - (1.0f64 - 0.005).powi(100));
        assert!((r[1].predicted_fpir.unwrap() - want).abs() < 1e-12);
        // At T = 0.05 the second list (keep 2, last 0.05) is full and ≥ T: saturated.
        let r = growth(&s, &[&g], &[10, 100], 2, &[FpirThreshold { t: 0.05, ..t }]);
        assert!(r[0].fmr_saturated);
    }
}

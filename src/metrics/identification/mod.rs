//! 1:N identification rates (NIST IR 8271 definitions; `../shared/docs/METRICS.md`).
//!
//! - **FNIR(N, R, T)**: the share of mated searches whose mate is not among the top R candidates of
//!   the size-N gallery with score ≥ T. A search whose probe had no face, or whose mate was not
//!   enrolled, is a miss.
//! - **FPIR(N, T)**: the share of non-mated searches whose top candidate scores ≥ T. A search whose
//!   probe had no face is a correct rejection (it returns nothing), never a false positive.
//! - A score equal to T matches. Investigative mode has no threshold (T = −∞: cosine scores can be
//!   negative, so it is not "T = 0").
//! - The threshold for a target FPIR is calibrated on the non-mated searches of the largest gallery:
//!   with n searches and k = ⌊target × n⌋, T is the smallest f32 above the (k+1)-th highest top-1
//!   score, so at most k searches (FPIR ≤ target) have a top candidate ≥ T.
//!
//! - Ranks count ties against the mate: the mate's rank is 1 + the number of other entries scoring at
//!   least as high. The search keeps L + 1 candidates, which makes that rank exact for every R ≤ L
//!   (an entry tying with the mate outside the list would need the (L+1)-th kept score to tie too).
//!
//! Rates come with their counts; a group without searches has no rate (`None`), never 0.
//! [`table`] turns these into `identification.csv` with subject-level bootstrap intervals and the
//! per-grouping summaries; [`curves`] the CMC, DET and gallery-size views; [`implicated`] who the
//! false candidates are.

pub mod analysis;
pub mod curves;
pub mod implicated;
pub mod overlap;
pub mod table;

use crate::compare::search::Candidate;

/// One search: who searched, what it returned at each gallery size.
#[derive(Debug, Clone)]
pub struct Search {
    /// Whether the searcher's subject is enrolled (a mate exists).
    pub mated: bool,
    /// Finest group (combo) of the searcher.
    pub combo: u16,
    /// The searcher's subject (an index; searches of one subject are resampled together).
    pub subject: u32,
    /// The mate's gallery entry, when the mate was enrolled with a face.
    pub mate: Option<u32>,
    /// The probe had no face: no candidates.
    pub failed: bool,
    /// Candidates per gallery size, best first, L + 1 of them kept (empty lists when failed).
    pub candidates: Vec<Vec<Candidate>>,
}

impl Search {
    /// The mate's rank (ties against the mate) and score at gallery size index `s`, when the mate is
    /// among the kept candidates; exact for ranks up to L (see the module doc).
    pub fn mate_rank(&self, s: usize) -> Option<(usize, f32)> {
        let m = self.mate?;
        let list = self.candidates.get(s)?;
        let score = list.iter().find(|c| c.entry == m)?.score;
        let above = list
            .iter()
            .filter(|c| c.entry != m && c.score >= score)
            .count();
        Some((above + 1, score))
    }

    /// Whether this search's mate is among the top `r` with score ≥ `t` at gallery size index `s`.
    pub fn hit(&self, s: usize, r: usize, t: f32) -> bool {
        self.mate_rank(s)
            .is_some_and(|(rank, score)| rank <= r && score >= t)
    }
}

/// A threshold set for a target FPIR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FpirThreshold {
    /// The target.
    pub target: f64,
    /// T (a score ≥ T is a candidate returned).
    pub t: f32,
    /// Non-mated searches at or above T at the largest gallery.
    pub false_positives: usize,
    /// Non-mated searches.
    pub searches: usize,
}

/// The top-1 score of a search at gallery size index `s` (`None` when it returned nothing).
pub fn top1(x: &Search, s: usize) -> Option<f32> {
    x.candidates.get(s).and_then(|c| c.first()).map(|c| c.score)
}

/// The threshold giving FPIR ≤ `target` over the non-mated searches at gallery size index `s`
/// for which `calibrate` holds (all of them, or a reference group's); `None` without such searches
/// or when the target is below 1/searches (no threshold can tell).
pub fn threshold_for(
    searches: &[Search],
    s: usize,
    target: f64,
    calibrate: impl Fn(&Search) -> bool,
) -> Option<FpirThreshold> {
    let pool: Vec<&Search> = searches
        .iter()
        .filter(|x| !x.mated && calibrate(x))
        .collect();
    let mut tops: Vec<f32> = pool.iter().filter_map(|x| top1(x, s)).collect();
    let n = pool.len();
    if n == 0 || target * (n as f64) < 1.0 {
        return None;
    }
    tops.sort_by(|a, b| b.total_cmp(a));
    let k = (target * n as f64).floor() as usize;
    let t = match tops.get(k) {
        Some(&s) => s.next_up(),
        None => f32::NEG_INFINITY,
    };
    let false_positives = tops.iter().filter(|&&v| v >= t).count();
    Some(FpirThreshold {
        target,
        t,
        false_positives,
        searches: n,
    })
}

/// Errors and searches of one rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    /// Searches counted.
    pub searches: usize,
    /// Of those, misses (FNIR) or false positives (FPIR).
    pub errors: usize,
}

impl Count {
    /// errors / searches, `None` without searches.
    pub fn rate(&self) -> Option<f64> {
        (self.searches > 0).then(|| self.errors as f64 / self.searches as f64)
    }
}

/// FNIR(N, R, T) per finest group: `[combo] → Count`, at gallery size index `s`, rank `r`, threshold
/// `t` (`f32::NEG_INFINITY` = investigative).
pub fn fnir(searches: &[Search], combos: usize, s: usize, r: usize, t: f32) -> Vec<Count> {
    let mut out = vec![Count::default(); combos];
    for x in searches.iter().filter(|x| x.mated) {
        let c = &mut out[x.combo as usize];
        c.searches += 1;
        c.errors += usize::from(!x.hit(s, r, t));
    }
    out
}

/// FPIR(N, T) per finest group: `[combo] → Count`, at gallery size index `s`.
pub fn fpir(searches: &[Search], combos: usize, s: usize, t: f32) -> Vec<Count> {
    let mut out = vec![Count::default(); combos];
    for x in searches.iter().filter(|x| !x.mated) {
        let c = &mut out[x.combo as usize];
        c.searches += 1;
        c.errors += usize::from(top1(x, s).is_some_and(|v| v >= t));
    }
    out
}

/// Sums finest-group counts into a grouping's groups (`group_of_combo[c]`, `None` = unlabelled).
pub fn by_group(counts: &[Count], group_of_combo: &[Option<usize>], groups: usize) -> Vec<Count> {
    let mut out = vec![Count::default(); groups];
    for (c, g) in counts.iter().zip(group_of_combo) {
        if let Some(g) = g {
            out[*g].searches += c.searches;
            out[*g].errors += c.errors;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(entry: u32, score: f32) -> Candidate {
        Candidate { entry, score }
    }

    /// Two groups; one gallery size. Mated: group 0 finds its mate 5 at rank 1 (0.9) and at rank 2
    /// (0.5, behind 0.6); group 1 failed. Non-mated: tops 0.7, 0.4 (group 0), 0.3 and failed (group 1).
    fn searches() -> Vec<Search> {
        let m = |combo, mate, failed, c: Vec<Candidate>| Search {
            mated: true,
            combo,
            subject: 0,
            mate,
            failed,
            candidates: vec![c],
        };
        let n = |combo, failed, c: Vec<Candidate>| Search {
            mated: false,
            combo,
            subject: 1,
            mate: None,
            failed,
            candidates: vec![c],
        };
        vec![
            m(0, Some(5), false, vec![cand(5, 0.9), cand(1, 0.2)]),
            m(0, Some(5), false, vec![cand(2, 0.6), cand(5, 0.5)]),
            m(1, Some(7), true, vec![]),
            n(0, false, vec![cand(3, 0.7)]),
            n(0, false, vec![cand(4, 0.4)]),
            n(1, false, vec![cand(4, 0.3)]),
            n(1, true, vec![]),
        ]
    }

    #[test]
    fn rates_by_hand() {
        let s = searches();
        let inv = f32::NEG_INFINITY;
        // Rank 1: group 0 misses the second search (1 of 2); group 1's failed search is a miss.
        assert_eq!(
            fnir(&s, 2, 0, 1, inv),
            vec![
                Count {
                    searches: 2,
                    errors: 1
                },
                Count {
                    searches: 1,
                    errors: 1
                }
            ]
        );
        // Rank 2 finds it; with T = 0.55 the rank-2 mate (0.5) is below T again.
        assert_eq!(fnir(&s, 2, 0, 2, inv)[0].errors, 0);
        assert_eq!(fnir(&s, 2, 0, 2, 0.55)[0].errors, 1);
        // FPIR at T = 0.4: group 0 both (0.7, 0.4 — equal to T matches), group 1 none (the failed
        // search is a correct rejection).
        assert_eq!(
            fpir(&s, 2, 0, 0.4),
            vec![
                Count {
                    searches: 2,
                    errors: 2
                },
                Count {
                    searches: 2,
                    errors: 0
                }
            ]
        );
        let g = by_group(&fpir(&s, 2, 0, 0.4), &[Some(0), Some(0)], 1);
        assert_eq!(
            g[0],
            Count {
                searches: 4,
                errors: 2
            }
        );
        assert_eq!(Count::default().rate(), None, "no searches, no rate");
    }

    #[test]
    fn a_tie_with_the_mate_counts_against_it() {
        // Mate 5 ties with entry 3 at 0.5: whichever the list puts first, the mate's rank is 2.
        for list in [
            vec![cand(3, 0.5), cand(5, 0.5)],
            vec![cand(5, 0.5), cand(3, 0.5)],
        ] {
            let x = Search {
                mated: true,
                combo: 0,
                subject: 0,
                mate: Some(5),
                failed: false,
                candidates: vec![list],
            };
            assert_eq!(x.mate_rank(0), Some((2, 0.5)));
            assert!(!x.hit(0, 1, f32::NEG_INFINITY) && x.hit(0, 2, 0.5));
        }
    }

    #[test]
    fn thresholds_by_hand() {
        let s = searches();
        // 4 non-mated searches; target 0.25 → k = 1: T just above the 2nd highest top (0.4): only
        // 0.7 ≥ T, FPIR 1/4.
        let t = threshold_for(&s, 0, 0.25, |_| true).unwrap();
        assert_eq!(
            (t.t, t.false_positives, t.searches),
            (0.4f32.next_up(), 1, 4)
        );
        // Target 0.75 → k = 3, but only 3 searches returned anything: every top counts, FPIR 3/4.
        let t = threshold_for(&s, 0, 0.75, |_| true).unwrap();
        assert_eq!((t.t, t.false_positives), (f32::NEG_INFINITY, 3));
        // 0.1 × 4 < 1: no threshold can tell that target apart.
        assert!(threshold_for(&s, 0, 0.1, |_| true).is_none());
    }
}

//! Threshold-free accuracy of one group, from its score histograms: equal error rate, ranking AUC and
//! d′ (columns `eer`, `auc`, `d_prime` of `groups.csv`).
//!
//! - **EER**: FMR(τ) and FNMR(τ) at every bin edge (FNMR with failures to enrol counted as
//!   non-matches, as everywhere); the edge where |FMR − FNMR| is smallest, reported as their mean.
//! - **AUC**: P(mated score > non-mated score) over scored pairs, two scores in the same bin (width
//!   2/65536) counting one half.
//! - **d′**: |μ_mated − μ_non-mated| / √((σ²_mated + σ²_non-mated)/2), each score taken at its bin
//!   centre.
//!
//! All three are NaN when the group lacks mated or non-mated scored pairs.

use super::GroupCurves;
use crate::compare::{edge, BINS};

/// EER, AUC and d′ of one group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Separation {
    /// Equal error rate.
    pub eer: f64,
    /// Ranking AUC.
    pub auc: f64,
    /// d′.
    pub d_prime: f64,
}

/// Per-bin counts from tail counts (`tail[k]` = count at or above bin k).
fn per_bin(tail: &[u64]) -> impl Iterator<Item = (usize, u64)> + '_ {
    (0..BINS).map(move |k| (k, tail[k] - tail[k + 1]))
}

/// Mean and variance of the bin centres, weighted by counts.
fn moments(tail: &[u64]) -> (f64, f64) {
    let n = tail[0] as f64;
    let half_bin = (edge(1) - edge(0)) / 2.0;
    let (mut s, mut s2) = (0.0, 0.0);
    for (k, c) in per_bin(tail).filter(|(_, c)| *c > 0) {
        let x = edge(k) + half_bin;
        s += c as f64 * x;
        s2 += c as f64 * x * x;
    }
    let mean = s / n;
    (mean, (s2 / n - mean * mean).max(0.0))
}

/// EER, AUC and d′ of a group's curves.
pub fn separation(cv: &GroupCurves) -> Separation {
    let (m_tail, n_tail) = (&cv.mated_tail, &cv.nonmated_tail);
    let nan = Separation {
        eer: f64::NAN,
        auc: f64::NAN,
        d_prime: f64::NAN,
    };
    if m_tail.is_empty() || m_tail[0] == 0 || n_tail[0] == 0 || cv.nonmated_total == 0 {
        return nan;
    }
    let (m, n) = (m_tail[0] as f64, n_tail[0] as f64);
    // AUC: each mated score beats the non-mated scores in lower bins and ties those in its own bin.
    let mut wins = 0.0;
    for (k, c) in per_bin(m_tail).filter(|(_, c)| *c > 0) {
        let below = n_tail[0] - n_tail[k];
        let same = n_tail[k] - n_tail[k + 1];
        wins += c as f64 * (below as f64 + 0.5 * same as f64);
    }
    let ((mm, vm), (mn, vn)) = (moments(m_tail), moments(n_tail));
    let (mut best, mut eer) = (f64::INFINITY, f64::NAN);
    for k in 0..=BINS {
        let fmr = cv.false_matches(k) as f64 / cv.nonmated_total as f64;
        let fnmr = cv.false_non_matches(k) as f64 / cv.mated_total as f64;
        if (fmr - fnmr).abs() < best {
            best = (fmr - fnmr).abs();
            eer = (fmr + fnmr) / 2.0;
        }
    }
    Separation {
        eer,
        auc: wins / (m * n),
        d_prime: (mm - mn).abs() / ((vm + vn) / 2.0).sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{bin_of, ScoreHistogram};

    fn curves(mated: &[f32], nonmated: &[f32]) -> GroupCurves {
        let (mut m, mut n) = (ScoreHistogram::default(), ScoreHistogram::default());
        mated.iter().for_each(|&s| m.counts[bin_of(s)] += 1);
        nonmated.iter().for_each(|&s| n.counts[bin_of(s)] += 1);
        GroupCurves {
            nonmated_tail: n.tail_counts(),
            nonmated_total: nonmated.len() as u64,
            mated_tail: m.tail_counts(),
            mated_total: mated.len() as u64,
            images: 0,
            fte: 0,
        }
    }

    #[test]
    fn by_hand() {
        // Mated 0.5, 0.7, 0.9; non-mated 0.1, 0.3, 0.6, 0.6. 0.5 beats two non-mated scores, 0.7 and
        // 0.9 all four: 10 of 12 pairs → AUC 0.8333. τ in (0.3, 0.5]: FMR 2/4, FNMR 0 (gap 1/2); τ in (0.5, 0.6]: FMR 1/2, FNMR
        // 1/3 (gap 1/6, the smallest); τ in (0.6, 0.7]: FMR 0, FNMR 1/3 (gap 1/3). EER = (1/2 + 1/3)/2.
        let cv = curves(&[0.5, 0.7, 0.9], &[0.1, 0.3, 0.6, 0.6]);
        let s = separation(&cv);
        assert!((s.auc - 10.0 / 12.0).abs() < 1e-12, "{s:?}");
        assert!((s.eer - 5.0 / 12.0).abs() < 1e-12, "{s:?}");
        // d′: means 0.7 and 0.4, population variances 0.02667 and 0.045 → 0.3 / √0.035833 = 1.5848
        // (bin centres move each score by < 3.1e-5).
        assert!((s.d_prime - 1.5848).abs() < 2e-3, "{s:?}");
        // A tie in one bin counts half: mated 0.6 vs non-mated 0.6 → AUC 0.5.
        assert!((separation(&curves(&[0.6], &[0.6])).auc - 0.5).abs() < 1e-12);
        assert!(separation(&curves(&[], &[0.1])).auc.is_nan());
    }
}

//! Minimum evidence: which groups may enter a summary metric (max/min, Max/GeoMean, Gini, FDR, …) at a
//! target FMR, so that no ratio is ever built on a group that cannot resolve the rate being compared.
//!
//! - **FMR**: a group needs at least 3 / target non-mated comparisons. Then a group without a false
//!   match has a rule-of-three 95 % upper bound 3/n ≤ target — a bound on the scale the threshold was
//!   set for; with fewer, even zero false matches says nothing at that scale (one comparison bounds the
//!   rate only by 3, which is no rate at all).
//! - **FNMR**: a group needs at least [`MIN_MATED_PAIRS`] mated comparisons (a zero-error group's bound
//!   is then ≤ 3 %).
//!
//! Groups below a minimum keep their exact counts in `groups.csv` (with `fmr_evidence` /
//! `fnmr_evidence` = `insufficient`), are listed as "insufficient data" with those counts, and are
//! never ranked. Between 3/target and 10/target non-mated comparisons a group enters the summaries but
//! is marked `few_comparisons` (fewer than 10 expected false matches at the target).

use serde::Serialize;

/// Mated comparisons a group needs before its FNMR enters a summary metric.
pub const MIN_MATED_PAIRS: u64 = 100;

/// Expected false matches (comparisons × target) below which a group's FMR is marked `few_comparisons`.
pub const FEW_EXPECTED_ERRORS: f64 = 10.0;

/// How far a group's rate can be trusted at one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Enough comparisons.
    Ok,
    /// Enters the summaries, but fewer than 10 false matches are expected at the target.
    FewComparisons,
    /// Too few comparisons: left out of every summary metric and ranking.
    Insufficient,
}

impl Evidence {
    /// Whether the group enters summary metrics.
    pub fn sufficient(self) -> bool {
        self != Evidence::Insufficient
    }
}

/// Non-mated comparisons a group needs at `target` (⌈3 / target⌉).
pub fn min_nonmated(target: f64) -> u64 {
    // The small allowance keeps 3 / 1e-3 at 3000 despite rounding.
    (3.0 / target - 1e-9).ceil().max(1.0) as u64
}

/// The FMR evidence of a group with `n` non-mated comparisons at `target`.
pub fn fmr(n: u64, target: f64) -> Evidence {
    if n < min_nonmated(target) {
        Evidence::Insufficient
    } else if (n as f64) * target < FEW_EXPECTED_ERRORS {
        Evidence::FewComparisons
    } else {
        Evidence::Ok
    }
}

/// The FNMR evidence of a group with `n` mated comparisons.
pub fn fnmr(n: u64) -> Evidence {
    if n < MIN_MATED_PAIRS {
        Evidence::Insufficient
    } else {
        Evidence::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimums_by_hand() {
        // 3 / 1e-3 = 3000; 3 / 1e-6 = 3,000,000; 3 / 0.03 = 100.
        assert_eq!(min_nonmated(1e-3), 3000);
        assert_eq!(min_nonmated(1e-6), 3_000_000);
        assert_eq!(min_nonmated(0.03), 100);
        assert_eq!(fmr(2999, 1e-3), Evidence::Insufficient);
        assert_eq!(fmr(3000, 1e-3), Evidence::FewComparisons);
        assert_eq!(fmr(9999, 1e-3), Evidence::FewComparisons);
        assert_eq!(fmr(10_000, 1e-3), Evidence::Ok);
        // LFW's `other` race: 1 non-mated comparison can never enter a summary.
        assert_eq!(fmr(1, 1e-2), Evidence::Insufficient);
        assert_eq!(fnmr(99), Evidence::Insufficient);
        assert_eq!(fnmr(100), Evidence::Ok);
    }
}

//! Threshold policies side by side (`policies.csv`): the global threshold (the differentials), a
//! threshold calibrated on one reference group, and each group's own threshold (a what-if view).

use serde::Serialize;

use super::groups::Grouping;
use super::{ratio, GroupCurves, Threshold};
use crate::compare::BINS;

/// The lowest bin edge at which the FMR of `cv`'s non-mated comparisons is ≤ `target`
/// (`BINS` when even the top edge exceeds it).
pub fn threshold_bin(cv: &GroupCurves, target: f64) -> usize {
    let allowed = target * cv.nonmated_total as f64;
    (0..=BINS)
        .find(|&k| cv.nonmated_tail[k] as f64 <= allowed)
        .unwrap_or(BINS)
}

/// One group's rates under one threshold policy (one row of `policies.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRate {
    /// Grouping name.
    pub attribute: String,
    /// `global` (one τ from all non-mated comparisons), `reference` (τ calibrated on the reference
    /// group) or `per_group` (each group's own τ: BFW's what-if view, not a deployable policy).
    pub policy: String,
    /// The reference group of the `reference` policy (empty otherwise).
    pub reference_group: String,
    /// Group.
    pub group: String,
    /// Target FMR.
    pub target_fmr: f64,
    /// The τ this policy applies to this group.
    pub threshold: f64,
    /// Non-mated comparisons scoring ≥ τ.
    pub false_matches: u64,
    /// Non-mated comparisons.
    pub nonmated_comparisons: u64,
    /// FMR.
    pub fmr: f64,
    /// Mated comparisons scoring < τ (failures to enrol included).
    pub false_non_matches: u64,
    /// Mated comparisons.
    pub mated_comparisons: u64,
    /// FNMR.
    pub fnmr: f64,
}

/// The three threshold policies side by side for one grouping at one target. `reference` is the group
/// whose FMR calibrates the `reference` policy.
pub fn policies(
    g: &Grouping,
    curves: &[GroupCurves],
    global: &Threshold,
    reference: usize,
) -> Vec<PolicyRate> {
    let ref_bin = threshold_bin(&curves[reference], global.target_fmr);
    let mut out = Vec::new();
    for (policy, bin_of_group) in [
        ("global", None),
        ("reference", Some(ref_bin)),
        ("per_group", None),
    ] {
        for (i, cv) in curves.iter().enumerate() {
            let bin = match policy {
                "global" => global.bin,
                "reference" => bin_of_group.unwrap_or(global.bin),
                _ => threshold_bin(cv, global.target_fmr),
            };
            let (fm, fnm) = (cv.nonmated_tail[bin], cv.false_non_matches(bin));
            out.push(PolicyRate {
                attribute: g.name.clone(),
                policy: policy.into(),
                reference_group: if policy == "reference" {
                    g.groups[reference].clone()
                } else {
                    String::new()
                },
                group: g.groups[i].clone(),
                target_fmr: global.target_fmr,
                threshold: crate::compare::edge(bin),
                false_matches: fm,
                nonmated_comparisons: cv.nonmated_total,
                fmr: ratio(fm, cv.nonmated_total),
                false_non_matches: fnm,
                mated_comparisons: cv.mated_total,
                fnmr: ratio(fnm, cv.mated_total),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::bin_of;
    use crate::compare::{CellHistograms, ScoreHistogram};
    use crate::metrics::{global_thresholds, group_curves, Comparisons};

    #[test]
    fn per_group_and_reference_thresholds_by_hand() {
        // Group a: non-mated scores 0.1, 0.2, 0.3, 0.4 (4); group b: 0.5, 0.6 (2); no mated pairs.
        let mut nonmated = CellHistograms::new(2);
        for s in [0.1f32, 0.2, 0.3, 0.4] {
            nonmated.cells[0].counts[bin_of(s)] += 1;
        }
        for s in [0.5f32, 0.6] {
            nonmated.cells[2].counts[bin_of(s)] += 1;
        }
        let c = Comparisons {
            nonmated,
            nonmated_total: vec![4, 0, 2],
            mated: vec![ScoreHistogram::default(), ScoreHistogram::default()],
            mated_total: vec![0, 0],
            images: vec![4, 2],
            fte: vec![0, 0],
        };
        let g = Grouping {
            name: "x".into(),
            groups: vec!["a".into(), "b".into()],
            group_of_combo: vec![Some(0), Some(1)],
        };
        let curves = group_curves(&c, &g);
        // Target 0.5 overall (6 comparisons → 3 allowed): scores ≥ 0.4 are 3 → τ just above 0.3.
        let t = global_thresholds(&c, &[0.5])[0];
        assert_eq!(t.bin, bin_of(0.3) + 1);
        let p = policies(&g, &curves, &t, 0);
        let get = |policy: &str, group: &str| {
            p.iter()
                .find(|r| r.policy == policy && r.group == group)
                .unwrap()
                .clone()
        };
        // global: a has 1/4 (0.4), b has 2/2.
        assert_eq!(
            (
                get("global", "a").false_matches,
                get("global", "b").false_matches
            ),
            (1, 2)
        );
        // per group at 0.5: a allows 2 → τ above 0.2 (0.3, 0.4); b allows 1 → τ above 0.5 (0.6).
        assert_eq!(
            get("per_group", "a").threshold,
            crate::compare::edge(bin_of(0.2) + 1)
        );
        assert_eq!(
            (
                get("per_group", "a").false_matches,
                get("per_group", "b").false_matches
            ),
            (2, 1)
        );
        // reference a: τ above 0.2 applied to b too → 2/2.
        assert_eq!(
            (
                get("reference", "b").false_matches,
                get("reference", "b").reference_group.as_str()
            ),
            (2, "a")
        );
    }
}

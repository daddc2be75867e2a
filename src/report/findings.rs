//! The findings: plain-words sentences a reader can quote (each ratio with the bootstrap interval of
//! the two groups it names, the groups left out for want of data, the dataset's own protocol), and the
//! table of differentials at every target.

use std::fmt::Write as _;

use super::page::{cell, sci, Context};
use crate::metrics::analysis::{chart_threshold, Analysis};
use crate::metrics::evidence::Evidence;
use crate::metrics::{Bound, EquityRow, GroupRate};

/// `k×` with two decimals, `∞` when infinite.
fn times(x: f64) -> String {
    if x.is_infinite() {
        "∞".into()
    } else {
        format!("{x:.2}")
    }
}

/// Plain-words findings at the chart threshold: one sentence per grouping and rate, each with the
/// bootstrap interval of the ratio of the two groups it names; the groups left out for want of data;
/// the dataset's own protocol accuracy.
pub fn findings(a: &Analysis, ctx: &Context) -> Vec<String> {
    let Some(t) = chart_threshold(&a.thresholds) else {
        return vec!["No threshold could be computed.".into()];
    };
    let mut out = vec![format!(
        "One global threshold τ = {:.4} gives FMR {} over all {} non-mated comparisons ({} false matches; target {:.0e}). Every rate below is at that same τ.",
        t.tau,
        sci(t.fmr),
        t.comparisons,
        t.false_matches,
        t.target_fmr
    )];
    for e in a
        .equity
        .iter()
        .filter(|e| e.target_fmr == t.target_fmr && e.metric == "max_min" && e.rate != "both")
    {
        out.push(max_min_sentence(e));
    }
    if let Some(x) = ctx.record.get("exclusions").filter(|x| x.is_object()) {
        out.push(format!(
            "{} pairs listed in {} (sha256 {}) were judged label errors by the user and left out of every count, rate, threshold and interval ({} mated, {} non-mated).",
            x["pairs"],
            x["file"].as_str().unwrap_or("?"),
            x["sha256"].as_str().unwrap_or("?"),
            x["mated"],
            x["nonmated"]
        ));
    }
    out.extend(evidence_sentences(a, t.target_fmr));
    if let Some(p) = ctx.record.get("protocol").filter(|p| p.is_object()) {
        if let (Some(acc), Some(sd)) = (p["accuracy"].as_f64(), p["accuracy_std"].as_f64()) {
            out.push(format!(
                "On the dataset's own pair protocol `{}` ({} pairs, each fold's threshold chosen on the other folds), verification accuracy is {:.4} ± {:.4}; per-group accuracies are in protocol.csv.",
                p["name"].as_str().unwrap_or("?"),
                p["pairs"],
                acc,
                sd
            ));
        }
    }
    out
}

/// The finding of one max/min row: the two named groups, the ratio, and the interval of that named
/// pair's ratio (with what it means when it includes 1).
fn max_min_sentence(e: &EquityRow) -> String {
    let rate = e.rate.to_uppercase();
    if e.bound == Bound::Undefined {
        return format!(
            "By {}, the {rate} max/min ratio is undefined: {}.",
            e.attribute, e.note
        );
    }
    let (hi, lo) = (&e.group_high, &e.group_low);
    let at_least = if e.group_low_bounded { "at least " } else { "" };
    let mut s = format!(
        "By {}: {hi}'s {rate} is {at_least}{}× {lo}'s",
        e.attribute,
        times(e.value)
    );
    if e.pair_ci_low.is_finite() || e.pair_ci_high.is_finite() {
        s += &format!(
            " (95 % subject-bootstrap interval of {hi}/{lo}: {}–{}×)",
            times(e.pair_ci_low),
            times(e.pair_ci_high)
        );
        if e.pair_ci_low <= 1.0 {
            s += &format!(
                "; that interval includes 1, so which of the two has the higher {rate} is not established at 95 %"
            );
        }
    }
    if e.group_low_bounded {
        s += &format!("; {lo} has no error, so its rate enters as its 95 % upper bound 3/n and the ratio is a lower bound");
    } else if e.bound == Bound::LowerBound {
        s += "; a group without errors (see the summary table's note) could have a lower rate still, so max/min is at least this";
    }
    if e.ci_low.is_finite() {
        s += &format!(
            ". Across all groups, max/min re-ranked in each replicate lies in {}–{}× (≥ 1 by construction)",
            times(e.ci_low),
            times(e.ci_high)
        );
    }
    s + "."
}

/// Groups left out of the summaries at `target` (with their counts), and groups with few comparisons.
fn evidence_sentences(a: &Analysis, target: f64) -> Vec<String> {
    let at: Vec<&GroupRate> = a.rates.iter().filter(|r| r.target_fmr == target).collect();
    let mut out = Vec::new();
    let fmr_out: Vec<String> = at
        .iter()
        .filter(|r| r.nonmated_comparisons > 0 && !r.fmr_evidence.sufficient())
        .map(|r| {
            format!(
                "{} {} ({} non-mated comparisons)",
                r.attribute, r.group, r.nonmated_comparisons
            )
        })
        .collect();
    if !fmr_out.is_empty() {
        out.push(format!(
            "Insufficient data for FMR at {:.0e} (fewer than {} non-mated comparisons: even zero false matches would not bound the rate below the target); left out of every FMR ratio and ranking: {}.",
            target,
            crate::metrics::evidence::min_nonmated(target),
            fmr_out.join(", ")
        ));
    }
    let fnmr_out: Vec<String> = at
        .iter()
        .filter(|r| r.mated_comparisons > 0 && !r.fnmr_evidence.sufficient())
        .map(|r| {
            format!(
                "{} {} ({} mated comparisons)",
                r.attribute, r.group, r.mated_comparisons
            )
        })
        .collect();
    if !fnmr_out.is_empty() {
        out.push(format!(
            "Insufficient data for FNMR (fewer than {} mated comparisons); left out of every FNMR ratio and ranking: {}.",
            crate::metrics::evidence::MIN_MATED_PAIRS,
            fnmr_out.join(", ")
        ));
    }
    let few: Vec<String> = at
        .iter()
        .filter(|r| r.fmr_evidence == Evidence::FewComparisons)
        .map(|r| format!("{} {}", r.attribute, r.group))
        .collect();
    if !few.is_empty() {
        out.push(format!("Few non-mated comparisons to resolve FMR {target:.0e} (fewer than 10 expected false matches; included, but imprecise): {}.", few.join(", ")));
    }
    out
}

/// The max/min differentials at every target: one row per grouping and rate; in each target's
/// column the ratio, the named pair's 95 % interval and the pair.
pub fn differentials_table_md(a: &Analysis) -> String {
    let mut s = String::from("| grouping | rate |");
    for t in &a.thresholds {
        let _ = write!(s, " FMR {:.0e} |", t.target_fmr);
    }
    s += "\n|---|---|";
    s += &"---|".repeat(a.thresholds.len());
    s += "\n";
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for e in a.equity.iter().filter(|e| e.metric == "max_min") {
        if !keys.contains(&(e.attribute.as_str(), e.rate.as_str())) {
            keys.push((e.attribute.as_str(), e.rate.as_str()));
        }
    }
    for (attr, rate) in keys {
        let _ = write!(s, "| {attr} | {} |", rate.to_uppercase());
        for t in &a.thresholds {
            let cell = a
                .equity
                .iter()
                .find(|e| {
                    e.metric == "max_min"
                        && e.attribute == attr
                        && e.rate == rate
                        && e.target_fmr == t.target_fmr
                })
                .map(differential_cell);
            let _ = write!(s, " {} |", cell.unwrap_or_default());
        }
        s += "\n";
    }
    s
}

/// `6.73× [4.94, 8.93] indian / white`, `≥ …` for a bound, `undefined`.
fn differential_cell(e: &EquityRow) -> String {
    if e.bound == Bound::Undefined {
        return "undefined".into();
    }
    let ge = if e.bound == Bound::LowerBound {
        "≥ "
    } else {
        ""
    };
    let iv = if e.pair_ci_low.is_finite() || e.pair_ci_high.is_finite() {
        format!(" [{}, {}]", times(e.pair_ci_low), times(e.pair_ci_high))
    } else {
        String::new()
    };
    format!(
        "{ge}{}×{iv} {} / {}",
        times(e.value),
        cell(&e.group_high),
        cell(&e.group_low)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_min_row(value: f64, pair: (f64, f64), bound: Bound) -> EquityRow {
        EquityRow {
            attribute: "sex".into(),
            target_fmr: 1e-3,
            threshold: 0.35,
            metric: "max_min".into(),
            rate: "fnmr".into(),
            value,
            ci_low: 1.0,
            ci_high: 1.24,
            bound,
            group_high: "female".into(),
            group_low: "male".into(),
            group_low_bounded: bound == Bound::LowerBound,
            pair_ci_low: pair.0,
            pair_ci_high: pair.1,
            note: String::new(),
        }
    }

    #[test]
    fn findings_name_the_pair_and_say_when_its_interval_includes_one() {
        // The case: female/male FNMR 1.09×, the named pair's interval 0.94–1.25 crosses 1.
        let s = max_min_sentence(&max_min_row(1.09, (0.94, 1.25), Bound::Exact));
        assert!(
            s.starts_with("By sex: female's FNMR is 1.09× male's (95 % subject-bootstrap interval of female/male: 0.94–1.25×); that interval includes 1, so which of the two has the higher FNMR is not established at 95 %"),
            "{s}"
        );
        assert!(
            s.contains("re-ranked in each replicate lies in 1.00–1.24×"),
            "{s}"
        );
        let s = max_min_row(6.73, (4.94, 8.93), Bound::Exact);
        let s = max_min_sentence(&s);
        assert!(!s.contains("not established"), "{s}");
        let s = max_min_sentence(&max_min_row(5.0, (3.0, 9.0), Bound::LowerBound));
        assert!(
            s.contains("at least 5.00×") && s.contains("lower bound"),
            "{s}"
        );
    }
}

//! Models side by side (NIST FRVT Part 3's view: the same data, many algorithms). For each model, at
//! each of its own global thresholds: the overall operating point (FNMR at that FMR, EER, AUC over
//! all comparisons), and per grouping the FMR and FNMR differentials (Max/GeoMean with the
//! subject-bootstrap interval, Gini, the highest-FMR group) taken from that model's own analysis.
//! Models are ranked per (grouping, target) by FMR Max/GeoMean, lowest first; an undefined value
//! ranks last, and two models whose intervals overlap are not told apart (`rank_note`).

use serde::Serialize;

use super::analysis::Analysis;
use super::groups::Grouping;
use super::{group_curves, separation, Bound, Comparisons, EquityRow};

/// One model as the comparison sees it.
pub struct ModelRun<'a> {
    /// Name (catalogue name or file name).
    pub name: String,
    /// sha256 of the model file.
    pub sha256: String,
    /// Its analysis (thresholds, rates, equity rows).
    pub analysis: &'a Analysis,
    /// Its comparisons (for the overall operating point).
    pub comparisons: &'a Comparisons,
}

/// One row of `models.csv`: a model at one target FMR for one grouping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRow {
    /// Model name.
    pub model: String,
    /// sha256 of its file.
    pub sha256: String,
    /// Grouping.
    pub attribute: String,
    /// Target FMR of the model's own global threshold.
    pub target_fmr: f64,
    /// That threshold.
    pub threshold: f64,
    /// FNMR over all mated comparisons at the threshold (failures to enrol count as misses).
    pub fnmr_overall: f64,
    /// EER over all comparisons.
    pub eer: f64,
    /// AUC over all comparisons.
    pub auc: f64,
    /// FMR Max/GeoMean over the grouping's groups (NaN when undefined).
    pub fmr_max_geomean: f64,
    /// Its 95 % interval.
    pub fmr_max_geomean_ci_low: f64,
    /// Its 95 % interval.
    pub fmr_max_geomean_ci_high: f64,
    /// `exact`, `lower_bound` or `undefined`.
    pub fmr_max_geomean_bound: Bound,
    /// Gini coefficient of the groups' FMRs (n/(n−1)).
    pub fmr_gini: f64,
    /// The group with the highest FMR.
    pub highest_fmr_group: String,
    /// Its FMR.
    pub highest_fmr: f64,
    /// FNMR Max/GeoMean.
    pub fnmr_max_geomean: f64,
    /// Its 95 % interval.
    pub fnmr_max_geomean_ci_low: f64,
    /// Its 95 % interval.
    pub fnmr_max_geomean_ci_high: f64,
    /// FNMR Gini.
    pub fnmr_gini: f64,
    /// Rank among the models by FMR Max/GeoMean (1 = smallest differential).
    pub rank: usize,
    /// Which neighbours it cannot be told apart from (overlapping intervals).
    pub rank_note: String,
}

/// The grouping of everyone.
fn everyone(c: &Comparisons) -> Grouping {
    Grouping {
        name: "all".into(),
        groups: vec!["all".into()],
        group_of_combo: vec![Some(0); c.combos()],
    }
}

/// The equity row of `metric` on `rate` for a grouping at a target.
fn equity<'a>(
    a: &'a Analysis,
    attribute: &str,
    target: f64,
    metric: &str,
    rate: &str,
) -> Option<&'a EquityRow> {
    a.equity.iter().find(|e| {
        e.attribute == attribute && e.target_fmr == target && e.metric == metric && e.rate == rate
    })
}

/// Gini of the eligible groups' observed rates of one kind.
fn gini_of(a: &Analysis, attribute: &str, target: f64, fmr: bool) -> f64 {
    let rates: Vec<f64> = a
        .rates
        .iter()
        .filter(|r| r.attribute == attribute && r.target_fmr == target)
        .filter(|r| {
            if fmr {
                r.fmr_evidence.sufficient()
            } else {
                r.fnmr_evidence.sufficient()
            }
        })
        .map(|r| if fmr { r.fmr } else { r.fnmr })
        .collect();
    super::equity::gini(&rates).unwrap_or(f64::NAN)
}

/// Every model's rows, ranked.
pub fn rows(models: &[ModelRun]) -> Vec<ModelRow> {
    let mut out = Vec::new();
    for m in models {
        let all = group_curves(m.comparisons, &everyone(m.comparisons));
        let overall = &all[0];
        let sep = separation::separation(overall);
        for t in m.analysis.thresholds.iter().filter(|t| t.supported) {
            let fnmr_overall =
                overall.false_non_matches(t.bin) as f64 / overall.mated_total.max(1) as f64;
            let mut attributes: Vec<&str> = Vec::new();
            for r in &m.analysis.rates {
                if !attributes.contains(&r.attribute.as_str()) {
                    attributes.push(&r.attribute);
                }
            }
            for attr in attributes {
                let f = equity(m.analysis, attr, t.target_fmr, "max_geomean", "fmr");
                let n = equity(m.analysis, attr, t.target_fmr, "max_geomean", "fnmr");
                let high = m
                    .analysis
                    .rates
                    .iter()
                    .filter(|r| r.attribute == attr && r.target_fmr == t.target_fmr)
                    .filter(|r| r.fmr_evidence.sufficient())
                    .max_by(|a, b| a.fmr.total_cmp(&b.fmr));
                out.push(ModelRow {
                    model: m.name.clone(),
                    sha256: m.sha256.clone(),
                    attribute: attr.to_string(),
                    target_fmr: t.target_fmr,
                    threshold: t.tau,
                    fnmr_overall,
                    eer: sep.eer,
                    auc: sep.auc,
                    fmr_max_geomean: f.map_or(f64::NAN, |e| e.value),
                    fmr_max_geomean_ci_low: f.map_or(f64::NAN, |e| e.ci_low),
                    fmr_max_geomean_ci_high: f.map_or(f64::NAN, |e| e.ci_high),
                    fmr_max_geomean_bound: f.map_or(Bound::Undefined, |e| e.bound),
                    fmr_gini: gini_of(m.analysis, attr, t.target_fmr, true),
                    highest_fmr_group: high.map(|r| r.group.clone()).unwrap_or_default(),
                    highest_fmr: high.map_or(f64::NAN, |r| r.fmr),
                    fnmr_max_geomean: n.map_or(f64::NAN, |e| e.value),
                    fnmr_max_geomean_ci_low: n.map_or(f64::NAN, |e| e.ci_low),
                    fnmr_max_geomean_ci_high: n.map_or(f64::NAN, |e| e.ci_high),
                    fnmr_gini: gini_of(m.analysis, attr, t.target_fmr, false),
                    rank: 0,
                    rank_note: String::new(),
                });
            }
        }
    }
    rank(&mut out);
    out
}

/// Ranks the rows of each (grouping, target) by FMR Max/GeoMean, undefined last, ties by name.
fn rank(rows: &mut [ModelRow]) {
    let mut keys: Vec<(String, f64)> = Vec::new();
    for r in rows.iter() {
        if !keys
            .iter()
            .any(|k| k.0 == r.attribute && k.1 == r.target_fmr)
        {
            keys.push((r.attribute.clone(), r.target_fmr));
        }
    }
    for (attr, target) in keys {
        let mut idx: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].attribute == attr && rows[i].target_fmr == target)
            .collect();
        idx.sort_by(|&a, &b| {
            let (x, y) = (&rows[a], &rows[b]);
            let key = |r: &ModelRow| {
                if r.fmr_max_geomean.is_finite() {
                    r.fmr_max_geomean
                } else {
                    f64::INFINITY
                }
            };
            key(x).total_cmp(&key(y)).then(x.model.cmp(&y.model))
        });
        for (k, &i) in idx.iter().enumerate() {
            rows[i].rank = k + 1;
        }
        for &i in &idx {
            let r = &rows[i];
            let overlaps: Vec<String> = idx
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| &rows[j])
                .filter(|o| {
                    r.fmr_max_geomean_ci_low <= o.fmr_max_geomean_ci_high
                        && o.fmr_max_geomean_ci_low <= r.fmr_max_geomean_ci_high
                })
                .map(|o| o.model.clone())
                .collect();
            let note = if !r.fmr_max_geomean.is_finite() {
                "undefined: ranked last".to_string()
            } else if !r.fmr_max_geomean_ci_low.is_finite() {
                "no interval (no bootstrap)".to_string()
            } else if overlaps.is_empty() {
                String::new()
            } else {
                format!("interval overlaps {}", overlaps.join(", "))
            };
            rows[i].rank_note = note;
        }
    }
}

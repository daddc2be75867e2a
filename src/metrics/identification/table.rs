//! `identification.csv` and `identification_summary.csv`: every FNIR/FPIR rate per group of the
//! searcher, with its exact counts and a subject-level bootstrap interval, and per grouping the
//! summaries NIST prints and ISO/IEC 19795-10 asks for (Max/GeoMean and the Gini coefficient).
//!
//! - Rates: at every gallery size, FNIR at rank 1 and L in investigative mode (no threshold), and at
//!   each global threshold FNIR at rank 1 and L and FPIR.
//! - Intervals: searches of one subject are not independent, so a replicate resamples the
//!   **searching subjects** with replacement within each finest group (as the 1:1 bootstrap does),
//!   keeps the thresholds and the gallery fixed, and recounts from the stored outcomes; the interval
//!   is the 2.5–97.5 percentile of the replicates.
//! - Evidence: a group enters a summary only with enough searches — FPIR at target t needs ⌈3/t⌉
//!   non-mated searches (FMR's rule), FNIR 100 mated searches (FNMR's rule); others are flagged
//!   `insufficient` and named in the summary's note. Zero-error groups enter Max/GeoMean with the
//!   rule-of-three bound 3/n (a lower-bound value), as in 1:1 ([`crate::metrics::equity`]).

use serde::Serialize;

use super::{top1, FpirThreshold, Search};
use crate::metrics::bootstrap::{draw_weights, percentile, SplitMix64};
use crate::metrics::equity::{self, Item};
use crate::metrics::evidence;
use crate::metrics::groups::Grouping;
use crate::metrics::Bound;

/// FNIR or FPIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// False negative identification rate (mated searches).
    Fnir,
    /// False positive identification rate (non-mated searches).
    Fpir,
}

impl Metric {
    /// `fnir` or `fpir`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Fnir => "fnir",
            Metric::Fpir => "fpir",
        }
    }
}

/// One rate: which metric, at which gallery size (index), rank and threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateSpec {
    /// FNIR or FPIR.
    pub metric: Metric,
    /// Index into the gallery sizes.
    pub size: usize,
    /// Rank R (1 for FPIR).
    pub rank: usize,
    /// The global threshold; `None` is investigative mode.
    pub threshold: Option<FpirThreshold>,
}

impl RateSpec {
    /// `None` when search `x` does not count for this rate, else whether it is an error.
    pub fn error(&self, x: &Search) -> Option<bool> {
        let t = self.threshold.map_or(f32::NEG_INFINITY, |t| t.t);
        match self.metric {
            Metric::Fnir => x.mated.then(|| !x.hit(self.size, self.rank, t)),
            Metric::Fpir => (!x.mated).then(|| top1(x, self.size).is_some_and(|v| v >= t)),
        }
    }

    /// Whether a group with `n` searches enters the summaries.
    fn evidence(&self, n: usize) -> evidence::Evidence {
        match (self.metric, self.threshold) {
            (Metric::Fpir, Some(t)) => evidence::fmr(n as u64, t.target),
            _ => evidence::fnmr(n as u64),
        }
    }
}

/// The rates of `identification.csv`, per gallery size: investigative FNIR at rank 1 and `l`, then
/// per threshold FNIR at rank 1 and `l` and FPIR.
pub fn specs(sizes: usize, l: usize, thresholds: &[FpirThreshold]) -> Vec<RateSpec> {
    let ranks: Vec<usize> = if l > 1 { vec![1, l] } else { vec![1] };
    let mut out = Vec::new();
    for size in 0..sizes {
        for &rank in &ranks {
            out.push(RateSpec {
                metric: Metric::Fnir,
                size,
                rank,
                threshold: None,
            });
        }
        for &t in thresholds {
            for &rank in &ranks {
                out.push(RateSpec {
                    metric: Metric::Fnir,
                    size,
                    rank,
                    threshold: Some(t),
                });
            }
            out.push(RateSpec {
                metric: Metric::Fpir,
                size,
                rank: 1,
                threshold: Some(t),
            });
        }
    }
    out
}

/// One row of `identification.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Grouping (`all`, an attribute, or an intersection such as `sex×race`).
    pub attribute: String,
    /// Group of the searcher (`all` for everyone).
    pub group: String,
    /// Gallery size N.
    pub gallery_size: usize,
    /// `fnir` or `fpir`.
    pub metric: Metric,
    /// Rank R (1 for FPIR).
    pub rank: usize,
    /// T, empty in investigative mode.
    pub threshold: Option<f32>,
    /// The target FPIR T was set for, empty in investigative mode.
    pub target_fpir: Option<f64>,
    /// Searches counted.
    pub searches: usize,
    /// Misses (FNIR) or false positives (FPIR).
    pub errors: usize,
    /// errors / searches, empty without searches.
    pub rate: Option<f64>,
    /// 2.5th percentile of the subject bootstrap (empty without replicates).
    pub ci_low: Option<f64>,
    /// 97.5th percentile.
    pub ci_high: Option<f64>,
    /// `no_searches`, `insufficient` (too few searches for the summaries), `few_searches` (FPIR:
    /// fewer than 10 expected errors at the target), or empty.
    pub flag: &'static str,
}

/// One row of `identification_summary.csv`: a grouping's differential at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// Grouping.
    pub attribute: String,
    /// Gallery size N.
    pub gallery_size: usize,
    /// `fnir` or `fpir`.
    pub metric: Metric,
    /// Rank R.
    pub rank: usize,
    /// T, empty in investigative mode.
    pub threshold: Option<f32>,
    /// The target FPIR of T.
    pub target_fpir: Option<f64>,
    /// Groups entering the summary.
    pub groups: usize,
    /// max rate / geometric mean of the rates (NIST's "MXOG"); empty when undefined.
    pub max_geomean: Option<f64>,
    /// Its bootstrap interval.
    pub max_geomean_ci_low: Option<f64>,
    /// Its bootstrap interval.
    pub max_geomean_ci_high: Option<f64>,
    /// `exact`, `lower_bound` (a zero-error group entered as 3/n) or `undefined`.
    pub bound: Bound,
    /// Gini coefficient with the n/(n−1) correction, of the observed rates.
    pub gini: Option<f64>,
    /// Its bootstrap interval.
    pub gini_ci_low: Option<f64>,
    /// Its bootstrap interval.
    pub gini_ci_high: Option<f64>,
    /// The group with the highest rate.
    pub highest_group: String,
    /// Which groups set it, substitutions, groups left out.
    pub note: String,
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// Replicates (0: no intervals).
    pub replicates: usize,
    /// Seed.
    pub seed: u64,
}

/// Per subject, per rate: `[searches, errors]`.
struct Outcomes {
    subject_combo: Vec<u16>,
    counts: Vec<Vec<[u32; 2]>>,
}

/// Tallies every search's outcome per (rate, subject).
fn outcomes(searches: &[Search], specs: &[RateSpec]) -> Outcomes {
    let subjects = searches.iter().map(|x| x.subject as usize + 1).max();
    let mut subject_combo = vec![0u16; subjects.unwrap_or(0)];
    let mut seen = vec![false; subject_combo.len()];
    for x in searches {
        subject_combo[x.subject as usize] = x.combo;
        seen[x.subject as usize] = true;
    }
    // Subjects that never search (gallery-only) must not be drawn: give them an unused combo.
    let spare = subject_combo.iter().copied().max().unwrap_or(0) as usize + 1;
    for (c, s) in subject_combo.iter_mut().zip(&seen) {
        if !s {
            *c = spare as u16;
        }
    }
    let counts = specs
        .iter()
        .map(|spec| {
            let mut c = vec![[0u32; 2]; subject_combo.len()];
            for x in searches {
                if let Some(e) = spec.error(x) {
                    c[x.subject as usize][0] += 1;
                    c[x.subject as usize][1] += u32::from(e);
                }
            }
            c
        })
        .collect();
    Outcomes {
        subject_combo,
        counts,
    }
}

/// Weighted `[searches, errors]` per combo for rate `r` (subject weights `w`).
fn combo_counts(o: &Outcomes, r: usize, w: &[f64], combos: usize) -> Vec<[f64; 2]> {
    let mut out = vec![[0.0; 2]; combos];
    for (s, c) in o.counts[r].iter().enumerate() {
        if c[0] > 0 {
            let k = o.subject_combo[s] as usize;
            out[k][0] += w[s] * c[0] as f64;
            out[k][1] += w[s] * c[1] as f64;
        }
    }
    out
}

/// Per-combo counts summed into the groups of `g`.
fn group_counts(per_combo: &[[f64; 2]], g: &Grouping) -> Vec<[f64; 2]> {
    let mut out = vec![[0.0; 2]; g.groups.len()];
    for (c, gi) in per_combo.iter().zip(&g.group_of_combo) {
        if let Some(gi) = gi {
            out[*gi][0] += c[0];
            out[*gi][1] += c[1];
        }
    }
    out
}

/// The grouping of everyone (`all`).
pub fn everyone(combos: usize) -> Grouping {
    Grouping {
        name: "all".into(),
        groups: vec!["all".into()],
        group_of_combo: vec![Some(0); combos],
    }
}

/// `identification.csv` and `identification_summary.csv` rows for `specs` at gallery sizes `sizes`
/// (the numbers N), for everyone and every grouping.
pub fn tables(
    searches: &[Search],
    groupings: &[Grouping],
    combos: usize,
    specs: &[RateSpec],
    sizes: &[usize],
    boot: Bootstrap,
) -> (Vec<Row>, Vec<SummaryRow>) {
    let o = outcomes(searches, specs);
    let all = everyone(combos);
    let gs: Vec<&Grouping> = std::iter::once(&all).chain(groupings).collect();
    let ones = vec![1.0; o.subject_combo.len()];
    let spare = combos.max(
        o.subject_combo
            .iter()
            .map(|&c| c as usize + 1)
            .max()
            .unwrap_or(0),
    );
    // [grouping][rate] → observed counts; replicates [grouping][rate][group] → rates, and summaries.
    let per_combo: Vec<Vec<[f64; 2]>> = (0..specs.len())
        .map(|r| combo_counts(&o, r, &ones, spare))
        .collect();
    let observed: Vec<Vec<Vec<[f64; 2]>>> = gs
        .iter()
        .map(|g| per_combo.iter().map(|c| group_counts(c, g)).collect())
        .collect();
    let mut rep_rates: Vec<Vec<Vec<Vec<f64>>>> = observed
        .iter()
        .map(|per| per.iter().map(|c| vec![Vec::new(); c.len()]).collect())
        .collect();
    let mut rep_summary: Vec<Vec<[Vec<f64>; 2]>> = gs
        .iter()
        .map(|_| vec![[vec![], vec![]]; specs.len()])
        .collect();
    let mut rng = SplitMix64::new(boot.seed);
    for _ in 0..boot.replicates {
        let w = draw_weights(&o.subject_combo, spare, &mut rng);
        let per_combo: Vec<Vec<[f64; 2]>> = (0..specs.len())
            .map(|r| combo_counts(&o, r, &w, spare))
            .collect();
        for (gi, g) in gs.iter().enumerate() {
            for (r, spec) in specs.iter().enumerate() {
                let c = group_counts(&per_combo[r], g);
                for (k, x) in c.iter().enumerate() {
                    rep_rates[gi][r][k].push(if x[0] > 0.0 { x[1] / x[0] } else { f64::NAN });
                }
                if gi > 0 {
                    let (m, gini) = summary_values(&items(g, spec, &observed[gi][r], &c));
                    rep_summary[gi][r][0].push(m.map_or(f64::NAN, |v| v.value));
                    rep_summary[gi][r][1].push(gini.unwrap_or(f64::NAN));
                }
            }
        }
    }
    let ci = |v: &[f64]| -> (Option<f64>, Option<f64>) {
        let (lo, hi) = (percentile(v, 2.5), percentile(v, 97.5));
        (lo.is_finite().then_some(lo), hi.is_finite().then_some(hi))
    };
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for (gi, g) in gs.iter().enumerate() {
        for (r, spec) in specs.iter().enumerate() {
            for (k, c) in observed[gi][r].iter().enumerate() {
                let (n, e) = (c[0] as usize, c[1] as usize);
                let (ci_low, ci_high) = ci(&rep_rates[gi][r][k]);
                rows.push(Row {
                    attribute: g.name.clone(),
                    group: g.groups[k].clone(),
                    gallery_size: sizes[spec.size],
                    metric: spec.metric,
                    rank: spec.rank,
                    threshold: spec.threshold.map(|t| t.t),
                    target_fpir: spec.threshold.map(|t| t.target),
                    searches: n,
                    errors: e,
                    rate: (n > 0).then(|| e as f64 / n as f64),
                    ci_low: ci_low.filter(|_| n > 0),
                    ci_high: ci_high.filter(|_| n > 0),
                    flag: flag(spec, n),
                });
            }
            if gi > 0 {
                summaries.push(summary_row(
                    g,
                    spec,
                    sizes[spec.size],
                    &observed[gi][r],
                    &rep_summary[gi][r],
                ));
            }
        }
    }
    (rows, summaries)
}

/// The evidence flag of a group with `n` searches.
fn flag(spec: &RateSpec, n: usize) -> &'static str {
    match spec.evidence(n) {
        _ if n == 0 => "no_searches",
        evidence::Evidence::Insufficient => "insufficient",
        evidence::Evidence::FewComparisons => "few_searches",
        evidence::Evidence::Ok => "",
    }
}

/// The summary metrics' items: weighted counts `c`, eligibility from the observed counts.
fn items(g: &Grouping, spec: &RateSpec, observed: &[[f64; 2]], c: &[[f64; 2]]) -> Vec<Item> {
    g.groups
        .iter()
        .zip(observed.iter().zip(c))
        .filter(|(_, (o, _))| o[0] > 0.0)
        .map(|(name, (o, x))| Item {
            group: name.clone(),
            errors: x[1],
            n: x[0],
            eligible: spec.evidence(o[0] as usize).sufficient(),
        })
        .collect()
}

/// Max/GeoMean (when defined) and Gini of the eligible groups' observed rates.
fn summary_values(items: &[Item]) -> (Option<equity::Value>, Option<f64>) {
    let m = equity::max_geomean(items);
    let rates: Vec<f64> = items
        .iter()
        .filter(|i| i.eligible && i.n > 0.0)
        .map(|i| i.errors / i.n)
        .collect();
    let defined = m.bound != Bound::Undefined;
    (defined.then_some(m), equity::gini(&rates))
}

fn summary_row(
    g: &Grouping,
    spec: &RateSpec,
    n: usize,
    observed: &[[f64; 2]],
    reps: &[Vec<f64>; 2],
) -> SummaryRow {
    let its = items(g, spec, observed, observed);
    let m = equity::max_geomean(&its);
    let (_, gini) = summary_values(&its);
    let ci = |v: &[f64]| {
        let (lo, hi) = (percentile(v, 2.5), percentile(v, 97.5));
        (lo.is_finite().then_some(lo), hi.is_finite().then_some(hi))
    };
    let defined = m.bound != Bound::Undefined;
    let (ml, mh) = if defined { ci(&reps[0]) } else { (None, None) };
    let (gl, gh) = if gini.is_some() {
        ci(&reps[1])
    } else {
        (None, None)
    };
    SummaryRow {
        attribute: g.name.clone(),
        gallery_size: n,
        metric: spec.metric,
        rank: spec.rank,
        threshold: spec.threshold.map(|t| t.t),
        target_fpir: spec.threshold.map(|t| t.target),
        groups: its.iter().filter(|i| i.eligible).count(),
        max_geomean: defined.then_some(m.value),
        max_geomean_ci_low: ml,
        max_geomean_ci_high: mh,
        bound: m.bound,
        gini,
        gini_ci_low: gl,
        gini_ci_high: gh,
        highest_group: m.high.clone(),
        note: m.note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::search::Candidate;

    fn search(mated: bool, combo: u16, subject: u32, top: f32) -> Search {
        Search {
            mated,
            combo,
            subject,
            mate: mated.then_some(0),
            failed: false,
            candidates: vec![vec![Candidate {
                entry: if mated { 0 } else { 9 },
                score: top,
            }]],
        }
    }

    #[test]
    fn counts_intervals_and_summaries_by_hand() {
        // Group a (combo 0): 300 non-mated searches by 30 subjects, 30 of them (subject 0..2's) at 0.9;
        // group b (combo 1): 300 by 30 subjects, 3 at 0.9. T = 0.5, target 0.01: both groups have
        // ⌈3/0.01⌉ = 300 searches, enough to enter the summary.
        let mut s = Vec::new();
        for i in 0..300u32 {
            s.push(search(false, 0, i / 10, if i < 30 { 0.9 } else { 0.1 }));
            s.push(search(false, 1, 30 + i / 10, if i < 3 { 0.9 } else { 0.1 }));
        }
        let t = FpirThreshold {
            target: 0.01,
            t: 0.5,
            false_positives: 33,
            searches: 600,
        };
        let g = Grouping {
            name: "race".into(),
            groups: vec!["a".into(), "b".into()],
            group_of_combo: vec![Some(0), Some(1)],
        };
        let spec = RateSpec {
            metric: Metric::Fpir,
            size: 0,
            rank: 1,
            threshold: Some(t),
        };
        let boot = Bootstrap {
            replicates: 200,
            seed: 1,
        };
        let (rows, sums) = tables(&s, &[g], 2, &[spec], &[1000], boot);
        let a = rows.iter().find(|r| r.group == "a").unwrap();
        assert_eq!((a.searches, a.errors, a.rate), (300, 30, Some(0.1)));
        // Group a's 30 false positives come from 3 of 30 subjects: the interval is wide.
        let (lo, hi) = (a.ci_low.unwrap(), a.ci_high.unwrap());
        assert!(lo < 0.07 && hi > 0.13 && lo >= 0.0, "{lo} {hi}");
        assert_eq!(rows.iter().find(|r| r.group == "all").unwrap().errors, 33);
        // Max/GeoMean: 0.1 / √(0.1 · 0.01) = √10 = 3.1623; Gini of (0.1, 0.01):
        // 2/1 · (2 · 0.09) / (2 · 4 · 0.055) = 0.8182.
        let m = &sums[0];
        assert!((m.max_geomean.unwrap() - 10f64.sqrt()).abs() < 1e-12);
        assert!((m.gini.unwrap() - 0.18 / 0.22).abs() < 1e-12);
        assert_eq!((m.highest_group.as_str(), m.bound), ("a", Bound::Exact));
        assert!(m.max_geomean_ci_low.unwrap() < m.max_geomean.unwrap());
        // At target 0.001 (needs 3000 searches) neither group is eligible: undefined, flagged.
        let spec3 = RateSpec {
            threshold: Some(FpirThreshold { target: 0.001, ..t }),
            ..spec
        };
        let (rows, sums) = tables(&s, &[g_clone()], 2, &[spec3], &[1000], boot);
        assert!(rows
            .iter()
            .filter(|r| r.group != "all")
            .all(|r| r.flag == "insufficient"));
        assert_eq!(
            (sums[0].max_geomean, sums[0].bound),
            (None, Bound::Undefined)
        );
    }

    fn g_clone() -> Grouping {
        Grouping {
            name: "race".into(),
            groups: vec!["a".into(), "b".into()],
            group_of_combo: vec![Some(0), Some(1)],
        }
    }

    #[test]
    fn specs_cover_both_modes_at_every_size() {
        let t = FpirThreshold {
            target: 0.1,
            t: 0.3,
            false_positives: 1,
            searches: 10,
        };
        let s = specs(2, 50, &[t]);
        // Per size: 2 investigative FNIR + (2 FNIR + 1 FPIR) per threshold.
        assert_eq!(s.len(), 2 * 5);
        assert_eq!(specs(1, 1, &[]).len(), 1, "L = 1: one rank");
    }
}

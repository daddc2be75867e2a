//! The metrics stage as a whole, from saved comparisons: global thresholds, every grouping's rates,
//! cross-group FMR, summary metrics, threshold policies, and subject-bootstrap intervals.

use super::groups::{self, groupings, Partition};
use super::{bootstrap, equity, store, Comparisons, Threshold};

/// Settings of the metrics stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Weight of FMR against FNMR in FDR, inequity rate and GARBE.
    pub alpha: f64,
    /// Bootstrap replicates (0: none).
    pub bootstrap: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Group label to calibrate the `reference` policy and relative-FMR chart on, where a grouping has it.
    pub reference_group: Option<String>,
}

/// Metrics computed from saved comparisons.
pub struct Analysis {
    /// Global thresholds.
    pub thresholds: Vec<Threshold>,
    /// Per-group rates.
    pub rates: Vec<super::GroupRate>,
    /// Cross-group FMR.
    pub cross: Vec<super::CrossRate>,
    /// Summary metrics.
    pub equity: Vec<super::EquityRow>,
    /// Why there are no intervals, when there are none.
    pub bootstrap_note: String,
    /// Rates under the three threshold policies.
    pub policies: Vec<super::PolicyRate>,
    /// Per grouping, the index of its reference group (`--reference-group`, else the lowest FMR at the
    /// chart threshold).
    pub reference: Vec<usize>,
    /// Every group's FMR and FNMR relative to its grouping's reference group, per threshold, with
    /// named-pair bootstrap intervals (`relative.csv`, the relative charts).
    pub relative: Vec<RelativeRate>,
    /// Per grouping: curves and per-threshold rates (for the charts).
    pub dets: Vec<(
        groups::Grouping,
        Vec<super::GroupCurves>,
        Vec<Vec<super::GroupRate>>,
    )>,
}

/// The metrics stage: thresholds for `targets` (or the defaults), every grouping's rates and summary
/// metrics, and their subject-bootstrap intervals when `boot` data is given.
pub fn analyse(
    header: &store::Header,
    c: &Comparisons,
    targets: Option<&[f64]>,
    boot: Option<&bootstrap::BootstrapData>,
    opts: &Options,
) -> Analysis {
    let partition = Partition {
        attributes: header.attributes.clone(),
        combos: header.combos.clone(),
        combo_of: Vec::new(),
    };
    let total_nonmated: u64 = c.nonmated_total.iter().sum();
    let targets = targets
        .map(<[f64]>::to_vec)
        .unwrap_or_else(|| super::default_targets(total_nonmated));
    let thresholds = super::global_thresholds(c, &targets);
    let gs = groupings(&partition);
    let mut a = Analysis {
        thresholds,
        rates: Vec::new(),
        cross: Vec::new(),
        equity: Vec::new(),
        bootstrap_note: String::new(),
        policies: Vec::new(),
        reference: Vec::new(),
        relative: Vec::new(),
        dets: Vec::new(),
    };
    for g in &gs {
        let curves = super::group_curves(c, g);
        let seps: Vec<_> = curves.iter().map(super::separation::separation).collect();
        let mut per_threshold = Vec::new();
        for t in &a.thresholds {
            let r = super::group_rates(g, &curves, &seps, t);
            a.equity.extend(super::equity_rows(g, &r, t, opts.alpha));
            per_threshold.push(r);
        }
        a.cross.extend(super::cross_rates(c, g, &a.thresholds));
        a.dets.push((g.clone(), curves, per_threshold));
    }
    // Each grouping's reference group: `--reference-group`, else the lowest FMR (with false matches and
    // enough comparisons) at the chart threshold; the threshold policies side by side.
    if let Some(ct) = chart_threshold(&a.thresholds).copied() {
        let cti = a.thresholds.iter().position(|t| *t == ct).unwrap_or(0);
        for (g, curves, per_t) in &a.dets {
            let by_flag = opts
                .reference_group
                .as_ref()
                .and_then(|r| g.groups.iter().position(|x| x == r));
            let lowest = per_t[cti]
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.fmr.is_finite() && r.false_matches > 0 && r.fmr_evidence.sufficient()
                })
                .min_by(|x, y| x.1.fmr.total_cmp(&y.1.fmr))
                .map(|(i, _)| i)
                .unwrap_or(0);
            let reference = by_flag.unwrap_or(lowest);
            a.reference.push(reference);
            for t in &a.thresholds {
                a.policies.extend(super::policies(g, curves, t, reference));
            }
        }
    }
    a.relative = relative_rates(&a);
    // Subject bootstrap: per replicate, every group's rates and every summary metric.
    match boot {
        _ if opts.bootstrap == 0 => a.bootstrap_note = "no intervals (--bootstrap 0)".into(),
        None => a.bootstrap_note = "no intervals: this run folder has no bootstrap.bin".into(),
        Some(data) => {
            let bins: Vec<usize> = a.thresholds.iter().map(|t| t.bin).collect();
            match bootstrap::Prepared::new(data, header.combos.len(), &bins) {
                Err(e) => {
                    a.bootstrap_note =
                        format!("no intervals: {e} (rerun with these --target-fmr values)")
                }
                Ok(prep) => {
                    bootstrap_intervals(&mut a, &gs, &prep, data, header.combos.len(), opts)
                }
            }
        }
    }
    for (_, _, per_t) in &a.dets {
        per_t.iter().for_each(|r| a.rates.extend(r.iter().cloned()));
    }
    a
}

/// The threshold the heatmaps, dot plots and findings use: target 1e-3, else the lowest target supported
/// by the data, else the first.
pub fn chart_threshold(thresholds: &[Threshold]) -> Option<&Threshold> {
    thresholds
        .iter()
        .find(|t| (t.target_fmr - 1e-3).abs() < 1e-12)
        .or_else(|| {
            thresholds
                .iter()
                .filter(|t| t.supported)
                .min_by(|a, b| a.target_fmr.total_cmp(&b.target_fmr))
        })
        .or(thresholds.first())
}

/// One group's FMR and FNMR divided by those of its grouping's reference group at one threshold (one
/// row of `relative.csv`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RelativeRate {
    /// Grouping name.
    pub attribute: String,
    /// The reference group (the denominator).
    pub reference_group: String,
    /// Group.
    pub group: String,
    /// Target FMR.
    pub target_fmr: f64,
    /// τ.
    pub threshold: f64,
    /// FMR / the reference's FMR (the reference's rate replaced by 3/n when it has no false match;
    /// exactly 1 for the reference itself).
    pub fmr_ratio: f64,
    /// 95 % subject-bootstrap interval of that ratio for this named pair (NaN without a bootstrap).
    pub fmr_ratio_ci_low: f64,
    /// Upper end of that interval.
    pub fmr_ratio_ci_high: f64,
    /// FNMR / the reference's FNMR (likewise).
    pub fnmr_ratio: f64,
    /// 95 % subject-bootstrap interval of that ratio.
    pub fnmr_ratio_ci_low: f64,
    /// Upper end of that interval.
    pub fnmr_ratio_ci_high: f64,
    /// Whether both groups have enough comparisons for the FMR ratio to be read (see `evidence`).
    pub fmr_sufficient: bool,
    /// Whether both groups have enough mated comparisons for the FNMR ratio to be read.
    pub fnmr_sufficient: bool,
}

/// errors / n, with a zero count replaced by its rule-of-three bound 3/n (NaN when n = 0): the form a
/// rate takes in the denominator of a ratio.
fn bounded_rate(errors: f64, n: f64) -> f64 {
    if n <= 0.0 {
        f64::NAN
    } else if errors == 0.0 {
        3.0 / n
    } else {
        errors / n
    }
}

/// Ratio of a numerator rate (observed) to a denominator rate (bounded when zero).
fn pair_ratio(num: (f64, f64), den: (f64, f64)) -> f64 {
    let top = if num.1 > 0.0 { num.0 / num.1 } else { f64::NAN };
    top / bounded_rate(den.0, den.1)
}

/// A group's (errors, comparisons) relative to the reference's; exactly 1 for the reference itself.
fn ratio_to(own: bool, num: (u64, u64), den: (u64, u64)) -> f64 {
    if own {
        1.0
    } else {
        pair_ratio((num.0 as f64, num.1 as f64), (den.0 as f64, den.1 as f64))
    }
}

/// The point values of every relative rate (intervals filled by the bootstrap).
fn relative_rates(a: &Analysis) -> Vec<RelativeRate> {
    let mut out = Vec::new();
    for ((g, _, per_t), &reference) in a.dets.iter().zip(&a.reference) {
        for rates in per_t {
            let r0 = &rates[reference];
            for (k, r) in rates.iter().enumerate() {
                let own = k == reference;
                out.push(RelativeRate {
                    attribute: g.name.clone(),
                    reference_group: r0.group.clone(),
                    group: r.group.clone(),
                    target_fmr: r.target_fmr,
                    threshold: r.threshold,
                    fmr_ratio: ratio_to(
                        own,
                        (r.false_matches, r.nonmated_comparisons),
                        (r0.false_matches, r0.nonmated_comparisons),
                    ),
                    fmr_ratio_ci_low: f64::NAN,
                    fmr_ratio_ci_high: f64::NAN,
                    fnmr_ratio: ratio_to(
                        own,
                        (r.false_non_matches, r.mated_comparisons),
                        (r0.false_non_matches, r0.mated_comparisons),
                    ),
                    fnmr_ratio_ci_low: f64::NAN,
                    fnmr_ratio_ci_high: f64::NAN,
                    fmr_sufficient: r.fmr_evidence.sufficient() && r0.fmr_evidence.sufficient(),
                    fnmr_sufficient: r.fnmr_evidence.sufficient() && r0.fnmr_evidence.sufficient(),
                });
            }
        }
    }
    out
}

/// Per replicate, one group's weighted (false matches, non-mated, false non-matches, mated).
type Counts = [f64; 4];

/// 2.5 and 97.5 percentiles of the replicate values `f(r)`.
fn interval(replicates: usize, f: impl Fn(usize) -> f64) -> (f64, f64) {
    let v: Vec<f64> = (0..replicates).map(f).collect();
    (
        bootstrap::percentile(&v, 2.5),
        bootstrap::percentile(&v, 97.5),
    )
}

/// Fills the interval fields of `a` from `opts.bootstrap` replicates: every group's rates, every
/// summary metric, the named pair of each max/min, and every ratio to the reference group.
fn bootstrap_intervals(
    a: &mut Analysis,
    gs: &[groups::Grouping],
    prep: &bootstrap::Prepared,
    data: &bootstrap::BootstrapData,
    combos: usize,
    opts: &Options,
) {
    use bootstrap::{draw_weights, SplitMix64};
    let nt = a.thresholds.len();
    // counts[g][t][group][replicate]; metric_samples[g][t][metric][replicate]
    let mut counts: Vec<Vec<Vec<Vec<Counts>>>> = gs
        .iter()
        .map(|g| vec![vec![Vec::with_capacity(opts.bootstrap); g.groups.len()]; nt])
        .collect();
    let mut metric_samples: Vec<Vec<Vec<Vec<f64>>>> =
        gs.iter().map(|_| vec![vec![Vec::new(); 7]; nt]).collect();
    let mut rng = SplitMix64::new(opts.seed);
    for _ in 0..opts.bootstrap {
        let w = draw_weights(&data.subject_combo, combos, &mut rng);
        let wc = prep.weighted(&w);
        for (gi, g) in gs.iter().enumerate() {
            for ti in 0..nt {
                let observed = &a.dets[gi].2[ti];
                let cnt = prep.group_counts(&wc, g, ti);
                let item = |k: usize, e: f64, n: f64, eligible: bool| equity::Item {
                    group: g.groups[k].clone(),
                    errors: e,
                    n,
                    eligible,
                };
                let fmr_items: Vec<_> = (0..cnt.len())
                    .map(|k| {
                        item(
                            k,
                            cnt[k][0],
                            cnt[k][1],
                            observed[k].fmr_evidence.sufficient(),
                        )
                    })
                    .collect();
                let fnmr_items: Vec<_> = (0..cnt.len())
                    .map(|k| {
                        item(
                            k,
                            cnt[k][2],
                            cnt[k][3],
                            observed[k].fnmr_evidence.sufficient(),
                        )
                    })
                    .collect();
                for (m, (_, _, v)) in equity::all(&fmr_items, &fnmr_items, opts.alpha)
                    .into_iter()
                    .enumerate()
                {
                    metric_samples[gi][ti][m].push(v.value);
                }
                for (k, c) in cnt.into_iter().enumerate() {
                    counts[gi][ti][k].push(c);
                }
            }
        }
    }
    let reps = opts.bootstrap;
    let rate = |c: &[Counts], e: usize, r: usize| c[r][e] / c[r][e + 1];
    for (gi, (_, _, per_t)) in a.dets.iter_mut().enumerate() {
        for (ti, rates) in per_t.iter_mut().enumerate() {
            for (k, r) in rates.iter_mut().enumerate() {
                let c = &counts[gi][ti][k];
                (r.fmr_ci_low, r.fmr_ci_high) = interval(reps, |i| rate(c, 0, i));
                (r.fnmr_ci_low, r.fnmr_ci_high) = interval(reps, |i| rate(c, 2, i));
            }
        }
    }
    // The ratio of two named groups' rates (`e` = 0 for FMR, 2 for FNMR) in every replicate.
    let pair = |gi: usize, ti: usize, hi: usize, lo: usize, e: usize| {
        let (h, l) = (&counts[gi][ti][hi], &counts[gi][ti][lo]);
        interval(reps, |r| {
            pair_ratio((h[r][e], h[r][e + 1]), (l[r][e], l[r][e + 1]))
        })
    };
    // equity rows are in (grouping, threshold, metric) order.
    for (idx, row) in a.equity.iter_mut().enumerate() {
        let (gi, rest) = (idx / (nt * 7), idx % (nt * 7));
        let (ti, m) = (rest / 7, rest % 7);
        let v = &metric_samples[gi][ti][m];
        row.ci_low = bootstrap::percentile(v, 2.5);
        row.ci_high = bootstrap::percentile(v, 97.5);
        let groups = &gs[gi].groups;
        let at = |name: &str| groups.iter().position(|x| x == name);
        if let (true, Some(hi), Some(lo)) = (
            row.metric == "max_min",
            at(&row.group_high),
            at(&row.group_low),
        ) {
            let e = if row.rate == "fmr" { 0 } else { 2 };
            (row.pair_ci_low, row.pair_ci_high) = pair(gi, ti, hi, lo, e);
        }
    }
    // relative rows are in (grouping, threshold, group) order.
    let mut rows = a.relative.iter_mut();
    for (gi, g) in gs.iter().enumerate() {
        let reference = a.reference.get(gi).copied().unwrap_or(0);
        for ti in 0..nt {
            for k in 0..g.groups.len() {
                let Some(row) = rows.next() else { return };
                if k == reference {
                    // The reference against itself: exactly 1 in every replicate.
                    (row.fmr_ratio_ci_low, row.fmr_ratio_ci_high) = (1.0, 1.0);
                    (row.fnmr_ratio_ci_low, row.fnmr_ratio_ci_high) = (1.0, 1.0);
                    continue;
                }
                (row.fmr_ratio_ci_low, row.fmr_ratio_ci_high) = pair(gi, ti, k, reference, 0);
                (row.fnmr_ratio_ci_low, row.fnmr_ratio_ci_high) = pair(gi, ti, k, reference, 2);
            }
        }
    }
}

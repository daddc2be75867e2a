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
        dets: Vec::new(),
    };
    for g in &gs {
        let curves = super::group_curves(c, g);
        let mut per_threshold = Vec::new();
        for t in &a.thresholds {
            let r = super::group_rates(g, &curves, t);
            a.equity.extend(super::equity_rows(g, &r, t, opts.alpha));
            per_threshold.push(r);
        }
        a.cross.extend(super::cross_rates(c, g, &a.thresholds));
        a.dets.push((g.clone(), curves, per_threshold));
    }
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
    // Threshold policies side by side, with each grouping's reference group.
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
                .filter(|(_, r)| r.fmr.is_finite() && r.false_matches > 0)
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

/// Replicate values of one group's (FMR, FNMR).
type RateSamples = (Vec<f64>, Vec<f64>);

/// Fills the interval fields of `a` from `opts.bootstrap` replicates.
fn bootstrap_intervals(
    a: &mut Analysis,
    gs: &[groups::Grouping],
    prep: &bootstrap::Prepared,
    data: &bootstrap::BootstrapData,
    combos: usize,
    opts: &Options,
) {
    use bootstrap::{draw_weights, percentile, SplitMix64};
    let nt = a.thresholds.len();
    // samples[g][t][group] = (fmr values, fnmr values); metric_samples[g][t][metric] = values
    let mut samples: Vec<Vec<Vec<RateSamples>>> = gs
        .iter()
        .map(|g| vec![vec![(Vec::new(), Vec::new()); g.groups.len()]; nt])
        .collect();
    let mut metric_samples: Vec<Vec<Vec<Vec<f64>>>> =
        gs.iter().map(|_| vec![vec![Vec::new(); 7]; nt]).collect();
    let mut rng = SplitMix64::new(opts.seed);
    for _ in 0..opts.bootstrap {
        let w = draw_weights(&data.subject_combo, combos, &mut rng);
        let wc = prep.weighted(&w);
        for (gi, g) in gs.iter().enumerate() {
            for ti in 0..nt {
                let counts = prep.group_counts(&wc, g, ti);
                let mut fmr_items = Vec::with_capacity(counts.len());
                let mut fnmr_items = Vec::with_capacity(counts.len());
                for (k, cnt) in counts.iter().enumerate() {
                    let s = &mut samples[gi][ti][k];
                    s.0.push(cnt[0] / cnt[1]);
                    s.1.push(cnt[2] / cnt[3]);
                    fmr_items.push(equity::Item {
                        group: g.groups[k].clone(),
                        errors: cnt[0],
                        n: cnt[1],
                    });
                    fnmr_items.push(equity::Item {
                        group: g.groups[k].clone(),
                        errors: cnt[2],
                        n: cnt[3],
                    });
                }
                for (m, (_, _, v)) in equity::all(&fmr_items, &fnmr_items, opts.alpha)
                    .into_iter()
                    .enumerate()
                {
                    metric_samples[gi][ti][m].push(v.value);
                }
            }
        }
    }
    for (gi, (_, _, per_t)) in a.dets.iter_mut().enumerate() {
        for (ti, rates) in per_t.iter_mut().enumerate() {
            for (k, r) in rates.iter_mut().enumerate() {
                let (f, n) = &samples[gi][ti][k];
                r.fmr_ci_low = percentile(f, 2.5);
                r.fmr_ci_high = percentile(f, 97.5);
                r.fnmr_ci_low = percentile(n, 2.5);
                r.fnmr_ci_high = percentile(n, 97.5);
            }
        }
    }
    // equity rows are in (grouping, threshold, metric) order.
    for (idx, row) in a.equity.iter_mut().enumerate() {
        let (gi, rest) = (idx / (nt * 7), idx % (nt * 7));
        let (ti, m) = (rest / 7, rest % 7);
        let v = &metric_samples[gi][ti][m];
        row.ci_low = percentile(v, 2.5);
        row.ci_high = percentile(v, 97.5);
    }
}

//! Everything a 1:N report shows, from the searches: thresholds, rates with intervals, summaries,
//! CMC, DET, gallery-size growth and the implicated-group tables.

use super::curves::{self, CmcRow, DetCurve, GrowthRow};
use super::implicated;
use super::table::{self, Bootstrap, Metric, Row, SummaryRow};
use super::{threshold_for, FpirThreshold, Search};
use crate::metrics::groups::Grouping;

/// Settings of the analysis.
#[derive(Debug, Clone)]
pub struct Options {
    /// Candidate list length L.
    pub l: usize,
    /// Target FPIRs.
    pub targets: Vec<f64>,
    /// Calibrate T on this group's non-mated searches only (its label), else on all.
    pub reference_group: Option<String>,
    /// Bootstrap settings.
    pub bootstrap: Bootstrap,
}

/// The 1:N analysis.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Gallery sizes N.
    pub sizes: Vec<usize>,
    /// L.
    pub l: usize,
    /// The global thresholds.
    pub thresholds: Vec<FpirThreshold>,
    /// Targets left out, with why.
    pub left_out: Vec<String>,
    /// How T was calibrated, in words.
    pub calibration: String,
    /// `identification.csv`.
    pub rows: Vec<Row>,
    /// `identification_summary.csv`.
    pub summaries: Vec<SummaryRow>,
    /// `cmc.csv` (largest gallery).
    pub cmc: Vec<CmcRow>,
    /// `gallery_size.csv`.
    pub growth: Vec<GrowthRow>,
    /// `implicated.csv` (largest gallery).
    pub implicated: Vec<implicated::Row>,
    /// DET curves per grouping (largest gallery).
    pub det: Vec<(String, Vec<DetCurve>)>,
}

impl Analysis {
    /// The threshold the findings and charts lead with: the one for FPIR 0.01 when set, else the
    /// middle one; `None` without thresholds.
    pub fn headline_threshold(&self) -> Option<FpirThreshold> {
        self.thresholds
            .iter()
            .find(|t| (t.target - 0.01).abs() < 1e-12)
            .or_else(|| self.thresholds.get(self.thresholds.len() / 2))
            .copied()
    }

    /// The groupings reported on: every attribute and intersection of [`Analysis::rows`] (not
    /// `all`), in the order of the rows.
    pub fn groupings(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for r in &self.rows {
            if r.attribute != "all" && !v.contains(&r.attribute) {
                v.push(r.attribute.clone());
            }
        }
        v
    }

    /// The rows of one rate (metric, rank, target FPIR of T, `None` = investigative) at gallery size
    /// `n` for grouping `attr`, in group order.
    pub fn rows_of(
        &self,
        attr: &str,
        metric: Metric,
        rank: usize,
        target: Option<f64>,
        n: usize,
    ) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| {
                r.attribute == attr
                    && r.metric == metric
                    && r.rank == rank
                    && r.target_fpir == target
                    && r.gallery_size == n
            })
            .collect()
    }
}

/// A predicate choosing the searches that calibrate T.
type Calibrator<'a> = Box<dyn Fn(&Search) -> bool + 'a>;

/// Which searches calibrate T: all, or the reference group's (the first grouping naming it).
fn calibrator<'a>(
    gs: &'a [Grouping],
    reference: Option<&str>,
) -> Result<(Calibrator<'a>, String), String> {
    let Some(r) = reference else {
        return Ok((
            Box::new(|_| true),
            "on all non-mated searches at the largest gallery".into(),
        ));
    };
    for g in gs {
        if let Some(k) = g.groups.iter().position(|x| x == r) {
            let words = format!(
                "on the non-mated searches of the reference group {r} ({}) at the largest gallery, then applied to every group (NIST's 1:N demographic tables do the same)",
                g.name
            );
            return Ok((
                Box::new(move |x: &Search| {
                    g.group_of_combo.get(x.combo as usize) == Some(&Some(k))
                }),
                words,
            ));
        }
    }
    let list: Vec<String> = gs
        .iter()
        .map(|g| format!("{}: {}", g.name, g.groups.join(", ")))
        .collect();
    Err(format!(
        "--reference-group {r} names no group of this dataset; the groups are {}",
        list.join("; ")
    ))
}

/// Thresholds for the targets (largest gallery), and the targets left out with the reason.
fn thresholds(
    searches: &[Search],
    s: usize,
    targets: &[f64],
    calibrate: &dyn Fn(&Search) -> bool,
) -> (Vec<FpirThreshold>, Vec<String>) {
    let pool = searches.iter().filter(|x| !x.mated && calibrate(x)).count();
    let mut kept = Vec::new();
    let mut left = Vec::new();
    for &t in targets {
        match threshold_for(searches, s, t, calibrate) {
            Some(x) => kept.push(x),
            None => left.push(format!(
                "--target-fpir {t}: {pool} non-mated calibration searches cannot resolve it (it needs at least {:.0}; give a larger target or more non-mated searches)",
                (1.0 / t).ceil()
            )),
        }
    }
    (kept, left)
}

/// Runs the analysis. `gs` are the groupings of the searched dataset; `labels[k]` the candidate
/// labels of every gallery entry under `gs[k]` (see [`implicated::entry_labels`]).
pub fn analyse(
    searches: &[Search],
    gs: &[Grouping],
    labels: &[Vec<String>],
    combos: usize,
    sizes: &[usize],
    opts: &Options,
) -> Result<Analysis, String> {
    let last = sizes.len() - 1;
    let (calibrate, calibration) = calibrator(gs, opts.reference_group.as_deref())?;
    let (thr, left_out) = thresholds(searches, last, &opts.targets, &*calibrate);
    let specs = table::specs(sizes.len(), opts.l, &thr);
    let (rows, summaries) = table::tables(searches, gs, combos, &specs, sizes, opts.bootstrap);
    let all = table::everyone(combos);
    let with_all: Vec<&Grouping> = std::iter::once(&all).chain(gs).collect();
    let n = sizes[last];
    Ok(Analysis {
        sizes: sizes.to_vec(),
        l: opts.l,
        cmc: curves::cmc(searches, &with_all, last, n, opts.l),
        growth: curves::growth(searches, &with_all, sizes, opts.l + 1, &thr),
        implicated: gs
            .iter()
            .zip(labels)
            .flat_map(|(g, lab)| implicated::rows(searches, g, lab, last, n, opts.l, &thr))
            .collect(),
        det: with_all
            .iter()
            .map(|g| (g.name.clone(), curves::det(searches, g, last)))
            .collect(),
        thresholds: thr,
        left_out,
        calibration,
        rows,
        summaries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_targets(targets: &[f64]) -> Analysis {
        Analysis {
            sizes: vec![10],
            l: 1,
            thresholds: targets
                .iter()
                .map(|&target| FpirThreshold {
                    target,
                    t: 0.5,
                    false_positives: 0,
                    searches: 1000,
                })
                .collect(),
            left_out: Vec::new(),
            calibration: String::new(),
            rows: Vec::new(),
            summaries: Vec::new(),
            cmc: Vec::new(),
            growth: Vec::new(),
            implicated: Vec::new(),
            det: Vec::new(),
        }
    }

    #[test]
    fn the_headline_threshold_is_fpir_001_else_the_middle_one() {
        let target = |t: &[f64]| with_targets(t).headline_threshold().map(|x| x.target);
        assert_eq!(target(&[0.1, 0.001, 0.01]), Some(0.01));
        // Without 0.01: index len / 2 (the second of three, the second of two).
        assert_eq!(target(&[0.25, 0.1, 0.05]), Some(0.1));
        assert_eq!(target(&[0.25, 0.1]), Some(0.1));
        assert_eq!(target(&[]), None);
    }
}

//! Everything a 1:N report shows, from the searches: thresholds, rates with intervals, summaries,
//! CMC, DET, gallery-size growth and the implicated-group tables.

use super::curves::{self, CmcRow, DetCurve, GrowthRow};
use super::implicated;
use super::table::{self, Bootstrap, Row, SummaryRow};
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

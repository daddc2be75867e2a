//! The report stage: from an [`Analysis`] to files — the CSV exports, every chart per grouping, and
//! the human-facing pages (`index.html`, `summary.md`, see [`super::page`]).

use std::path::Path;

use super::charts;
use super::page::{ChartFile, Context};
use crate::compare::{edge, BINS};
use crate::metrics::analysis::{chart_threshold, Analysis, RelativeRate};
use crate::metrics::groups::Grouping;
use crate::metrics::{GroupCurves, GroupRate, Threshold};

/// File-name form of a grouping name (`sex×race` → `sex_x_race`).
pub fn sanitize(name: &str) -> String {
    name.replace('×', "_x_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes every report file into `dir` and returns the charts written.
pub fn write_report(dir: &Path, a: &Analysis, ctx: &Context) -> Result<Vec<ChartFile>, String> {
    let write = |name: &str, bytes: Vec<u8>| {
        std::fs::write(dir.join(name), bytes)
            .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
    };
    write("groups.csv", super::rows_csv(&a.rates)?)?;
    write("cross_fmr.csv", super::rows_csv(&a.cross)?)?;
    write("equity.csv", super::rows_csv(&a.equity)?)?;
    write("policies.csv", super::rows_csv(&a.policies)?)?;
    write("relative.csv", super::rows_csv(&a.relative)?)?;
    let mut files = Vec::new();
    let ct = chart_threshold(&a.thresholds).copied();
    let cti = ct.and_then(|t| a.thresholds.iter().position(|x| *x == t));
    let on = format!("{} on {}", ctx.model, ctx.dataset);
    for (gi, (g, curves, per_t)) in a.dets.iter().enumerate() {
        let charts = Charts {
            dir,
            on: &on,
            stem: sanitize(&g.name),
            g,
        };
        curve_charts(&charts, a, curves, per_t, &mut files)?;
        let (Some(t), Some(ti)) = (ct, cti) else {
            continue;
        };
        let reference = a.reference.get(gi).copied().unwrap_or(0);
        threshold_charts(&charts, a, &t, &per_t[ti], reference, &mut files)?;
    }
    write(
        "index.html",
        super::page::index_html(a, ctx, &files, dir)?.into_bytes(),
    )?;
    write(
        "summary.md",
        super::page::summary_md(a, ctx, &files, dir)?.into_bytes(),
    )?;
    Ok(files)
}

/// Where and for which grouping the charts of one grouping are drawn.
struct Charts<'a> {
    dir: &'a Path,
    /// `<model> on <dataset>`, the end of every title.
    on: &'a str,
    /// File-name form of the grouping name.
    stem: String,
    g: &'a Grouping,
}

impl Charts<'_> {
    /// The file stem of chart `kind` (`det_race`) and its path without extension.
    fn path(&self, kind: &str) -> (String, std::path::PathBuf) {
        let stem = format!("{kind}_{}", self.stem);
        let path = self.dir.join(&stem);
        (stem, path)
    }

    fn file(&self, stem: String, caption: String) -> ChartFile {
        ChartFile {
            stem,
            grouping: self.g.name.clone(),
            caption,
        }
    }
}

/// The charts over every threshold: DET, rates against τ, score distributions.
fn curve_charts(
    c: &Charts,
    a: &Analysis,
    curves: &[GroupCurves],
    per_t: &[Vec<GroupRate>],
    files: &mut Vec<ChartFile>,
) -> Result<(), String> {
    let (g, on) = (c.g, c.on);
    // Groups too small to resolve FMR at the chart threshold are drawn faded.
    let cti = chart_threshold(&a.thresholds).and_then(|t| a.thresholds.iter().position(|x| x == t));
    let faded: Vec<bool> = (0..g.groups.len())
        .map(|i| cti.is_some_and(|ti| !per_t[ti][i].fmr_evidence.sufficient()))
        .collect();
    let taus: Vec<(String, f64)> = a
        .thresholds
        .iter()
        .map(|t| (format!("FMR {:.0e}", t.target_fmr), t.tau))
        .collect();
    // 1. DET
    let det = charts::DetChart {
        title: format!("DET by {} — {on}", g.name),
        axes: [
            "FMR (false match rate, log10)".into(),
            "FNMR (false non-match rate, log10)".into(),
        ],
        series: g
            .groups
            .iter()
            .enumerate()
            .map(|(i, label)| charts::DetSeries {
                group: label.clone(),
                curve: crate::metrics::det_points(&curves[i])
                    .into_iter()
                    .map(|(_, f, n)| (f, n))
                    .collect(),
                operating: per_t.iter().map(|r| (r[i].fmr, r[i].fnmr)).collect(),
                faded: faded[i],
            })
            .collect(),
        thresholds: a
            .thresholds
            .iter()
            .map(|t| format!("τ={:.4} (FMR {:.0e})", t.tau, t.target_fmr))
            .collect(),
    };
    let (stem, path) = c.path("det");
    charts::render_det(&path, &det)?;
    files.push(c.file(stem, format!("DET curves by {}: FNMR against FMR, log axes; dots mark each global threshold, joined across groups.", g.name)));
    // 2. FMR and FNMR against the threshold
    let rates = charts::RatesVsThreshold {
        title: format!("FMR and FNMR against the threshold, by {} — {on}", g.name),
        series: g
            .groups
            .iter()
            .enumerate()
            .map(|(i, label)| (label.clone(), rate_curve(&curves[i])))
            .collect(),
        thresholds: taus.clone(),
        faded: faded.clone(),
    };
    let (stem, path) = c.path("rates");
    charts::render_rates_vs_threshold(&path, &rates)?;
    files.push(c.file(stem, format!("FMR (solid) and FNMR (dashed) of each {} group against τ; vertical lines at the global thresholds.", g.name)));
    // 6. score distributions
    let dist = charts::ScoreDistributions {
        title: format!("Score distributions by {} — {on}", g.name),
        series: g
            .groups
            .iter()
            .enumerate()
            .map(|(i, label)| {
                (
                    label.clone(),
                    // Mated pairs are far fewer: coarser bins keep the curve readable.
                    density(&curves[i].mated_tail, 128),
                    density(&curves[i].nonmated_tail, 512),
                )
            })
            .collect(),
        thresholds: taus,
        faded,
    };
    let (stem, path) = c.path("scores");
    charts::render_score_distributions(&path, &dist)?;
    files.push(c.file(
        stem,
        format!(
            "Genuine (dashed) and impostor (solid) score densities per {} group.",
            g.name
        ),
    ));
    Ok(())
}

/// The charts at the chart threshold `t` (rates `rates`): heatmap, dot plot, FMR relative to the
/// reference group.
fn threshold_charts(
    c: &Charts,
    a: &Analysis,
    t: &Threshold,
    rates: &[GroupRate],
    reference: usize,
    files: &mut Vec<ChartFile>,
) -> Result<(), String> {
    let (g, on) = (c.g, c.on);
    // 3. heatmap, over the groups with enough comparisons for FMR (all when fewer than two have)
    let enough: Vec<usize> = (0..g.groups.len())
        .filter(|&i| rates[i].fmr_evidence.sufficient())
        .collect();
    let shown: Vec<usize> = if enough.len() >= 2 {
        enough
    } else {
        (0..g.groups.len()).collect()
    };
    let k = shown.len();
    let mut cells = vec![vec![(0u64, 0u64); k]; k];
    for cr in a
        .cross
        .iter()
        .filter(|cr| cr.attribute == g.name && cr.target_fmr == t.target_fmr)
    {
        let at = |label: &str| shown.iter().position(|&i| g.groups[i] == label);
        if let (Some(x), Some(y)) = (at(&cr.group_a), at(&cr.group_b)) {
            cells[x][y] = (cr.false_matches, cr.comparisons);
        }
    }
    let left_out = g.groups.len() - k;
    let note = if left_out > 0 {
        format!("; {left_out} groups with too few comparisons left out (all cells are in cross_fmr.csv)")
    } else {
        String::new()
    };
    let heat = charts::Heatmap {
        title: format!(
            "Impostor FMR by {} at τ={:.4} (global FMR {:.0e}){note} — {on}",
            g.name, t.tau, t.target_fmr
        ),
        groups: shown.iter().map(|&i| g.groups[i].clone()).collect(),
        cells,
        target_fmr: t.target_fmr,
    };
    let (stem, path) = c.path("heatmap");
    charts::render_heatmap(&path, &heat)?;
    files.push(c.file(stem, format!("Cross-group impostor FMR by {} at the global threshold for FMR {:.0e}: grey at or below target, red above (scale on the right).", g.name, t.target_fmr)));
    // 4. dot plot with intervals, faceted by the second attribute
    let left_out = rates
        .iter()
        .filter(|r| !r.fmr_evidence.sufficient() && !r.fnmr_evidence.sufficient())
        .count();
    let note = if left_out > 0 {
        format!("; {left_out} groups without enough data for either rate not shown")
    } else {
        String::new()
    };
    let dots = charts::DotPlot {
        title: format!(
            "FMR and FNMR by {} with 95 % subject-bootstrap intervals, τ={:.4} (FMR {:.0e}){note} — {on}",
            g.name, t.tau, t.target_fmr
        ),
        rates: ["FMR".into(), "FNMR".into()],
        facets: facets(g, rates),
    };
    let (stem, path) = c.path("dots");
    charts::render_dot_plot(&path, &dots)?;
    files.push(c.file(stem, format!("Per-group FMR and FNMR by {} at the global threshold for FMR {:.0e}, with 95 % intervals.", g.name, t.target_fmr)));
    // 5. FMR and FNMR relative to the reference group, with the named-pair intervals
    let rel: Vec<&RelativeRate> = a
        .relative
        .iter()
        .filter(|r| r.attribute == g.name && r.target_fmr == t.target_fmr)
        .collect();
    for (rate, kind) in [("FMR", "relative"), ("FNMR", "relative_fnmr")] {
        let fmr = rate == "FMR";
        // Groups without enough data for this rate (theirs or the reference's) are left out.
        let bars: Vec<charts::RelativeBar> = rel
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                if fmr {
                    r.fmr_sufficient
                } else {
                    r.fnmr_sufficient
                }
            })
            .map(|(i, r)| {
                if fmr {
                    let iv = (r.fmr_ratio_ci_low, r.fmr_ratio_ci_high);
                    (r.group.clone(), i, r.fmr_ratio, iv, true)
                } else {
                    let iv = (r.fnmr_ratio_ci_low, r.fnmr_ratio_ci_high);
                    (r.group.clone(), i, r.fnmr_ratio, iv, true)
                }
            })
            .collect();
        let left_out = rel.len() - bars.len();
        let note = if left_out > 0 {
            format!("; {left_out} groups without enough data left out")
        } else {
            String::new()
        };
        let chart = charts::RelativeFmr {
            title: format!(
                "{rate} relative to {} (by {}), τ={:.4} (FMR {:.0e}){note} — {on}",
                g.groups[reference], g.name, t.tau, t.target_fmr
            ),
            rate: rate.into(),
            bars,
        };
        let (stem, path) = c.path(kind);
        charts::render_relative_fmr(&path, &chart)?;
        files.push(c.file(stem, format!("Each {} group's {rate} divided by that of {} (the reference), at the global threshold for FMR {:.0e}; bars are the 95 % subject-bootstrap interval of that ratio for the named pair; groups without enough comparisons are left out.", g.name, g.groups[reference], t.target_fmr)));
    }
    Ok(())
}

/// (τ, FMR, FNMR) at every 128th bin edge.
fn rate_curve(cv: &GroupCurves) -> Vec<(f64, f64, f64)> {
    (0..BINS)
        .step_by(128)
        .map(|k| {
            let fmr = cv.false_matches(k) as f64 / cv.nonmated_total.max(1) as f64;
            let fnmr = cv.false_non_matches(k) as f64 / cv.mated_total.max(1) as f64;
            (edge(k), fmr, fnmr)
        })
        .collect()
}

/// Density over `bins` coarse bins (width 2/bins; `bins` divides 2^16) from a tail-count array; empty
/// when there is no count.
fn density(tail: &[u64], bins: usize) -> Vec<(f64, f64)> {
    if tail.is_empty() || tail[0] == 0 {
        return Vec::new();
    }
    let (coarse, width) = (BINS / bins, 2.0 / bins as f64);
    let total = tail[0] as f64;
    (0..bins)
        .map(|i| {
            let count = tail[i * coarse] - tail[(i + 1) * coarse];
            (
                edge(i * coarse) + width / 2.0,
                count as f64 / (total * width),
            )
        })
        .collect()
}

/// Dot-plot facets: by the second attribute of an intersection, else one facet.
/// The dot plot's facets: one per value of the second attribute of an intersection (else one), each
/// group with enough data for FMR or FNMR (the others are left out; `faded` marks a rate without).
fn facets(g: &Grouping, rates: &[GroupRate]) -> Vec<charts::Facet> {
    let dot = |r: &GroupRate, group: &str, colour: usize| charts::Dot {
        group: group.to_string(),
        colour,
        rates: [
            (r.fmr, r.fmr_ci_low, r.fmr_ci_high),
            (r.fnmr, r.fnmr_ci_low, r.fnmr_ci_high),
        ],
        faded: [!r.fmr_evidence.sufficient(), !r.fnmr_evidence.sufficient()],
    };
    let shown = |r: &&GroupRate| r.fmr_evidence.sufficient() || r.fnmr_evidence.sufficient();
    if !g.name.contains('×') {
        let dots = rates
            .iter()
            .enumerate()
            .filter(|(_, r)| shown(r))
            .map(|(i, r)| dot(r, &r.group, i))
            .collect();
        return vec![(String::new(), dots)];
    }
    let mut firsts: Vec<String> = rates
        .iter()
        .map(|r| r.group.split('|').next().unwrap_or("").to_string())
        .collect();
    firsts.sort();
    firsts.dedup();
    let mut out: Vec<(String, Vec<charts::Dot>)> = Vec::new();
    for r in rates.iter().filter(shown) {
        let (first, second) = r.group.split_once('|').unwrap_or((r.group.as_str(), ""));
        let colour = firsts.iter().position(|f| f == first).unwrap_or(0);
        let d = dot(r, first, colour);
        match out.iter_mut().find(|(s, _)| s == second) {
            Some((_, v)) => v.push(d),
            None => out.push((second.to_string(), vec![d])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_integrates_to_one() {
        let mut counts = vec![0u64; BINS];
        counts[40000] = 3;
        counts[41000] = 1;
        let mut tail = vec![0u64; BINS + 1];
        for k in (0..BINS).rev() {
            tail[k] = tail[k + 1] + counts[k];
        }
        for bins in [128, 512] {
            let d = density(&tail, bins);
            let integral: f64 = d.iter().map(|p| p.1 * 2.0 / bins as f64).sum();
            assert!((integral - 1.0).abs() < 1e-12);
        }
        assert!(density(&[0, 0], 512).is_empty());
    }

    #[test]
    fn names_become_file_stems() {
        assert_eq!(sanitize("sex×race"), "sex_x_race");
        assert_eq!(sanitize("age band"), "age_band");
    }
}

//! The 1:N curves of one grouping: FPIR against gallery size at the headline T, the 1:N DET and the
//! CMC.

use super::{t_words, Grouping};
use crate::metrics::identification::curves::GrowthRow;
use crate::metrics::identification::table::Metric;
use crate::report::charts::{
    axis_floor, log_ticks, render_det, render_line_chart, Axis, DetChart, DetSeries, GroupLine,
    LineChart, TickFormat,
};
use crate::report::page::ChartFile;

/// `fpir_vs_n_<grouping>`: each group's FPIR at the headline T against N (log–log), measured
/// (line and markers) and predicted from its 1:1 FMR at T (dashed); a zero FPIR is a hollow marker on
/// the foot of the axis. Needs the headline T and two gallery sizes.
pub(super) fn fpir_vs_n(g: &Grouping) -> Result<Option<ChartFile>, String> {
    let (Some(t), true) = (g.t, g.a.sizes.len() > 1) else {
        return Ok(None);
    };
    let mut lines = Vec::new();
    let mut no_prediction = Vec::new();
    for (i, group) in g.groups.iter().enumerate() {
        let mut rows: Vec<_> =
            g.a.growth
                .iter()
                .filter(|r| r.attribute == g.name && &r.group == group && r.target_fpir == t.target)
                .collect();
        rows.sort_by_key(|r| r.gallery_size);
        // (N, rate) where the rate is positive (drawable on a log axis).
        let positive = |rate: fn(&GrowthRow) -> Option<f64>| -> Vec<(f64, f64)> {
            rows.iter()
                .filter_map(|r| {
                    rate(r)
                        .filter(|v| *v > 0.0)
                        .map(|v| (r.gallery_size as f64, v))
                })
                .collect()
        };
        let measured = positive(|r| r.fpir);
        let predicted = positive(|r| r.predicted_fpir);
        if predicted.is_empty() && !rows.is_empty() {
            no_prediction.push(group.clone());
        }
        let line = GroupLine {
            group: group.clone(),
            style: i,
            points: measured.clone(),
            markers: measured,
            companion: predicted,
            zeros: rows
                .iter()
                .filter(|r| r.fpir == Some(0.0))
                .map(|r| r.gallery_size as f64)
                .collect(),
            faded: g.fpir_faded(group),
        };
        // A group without rows has nothing to draw, nor a legend entry (its style stays its own).
        if !(line.points.is_empty() && line.zeros.is_empty() && line.companion.is_empty()) {
            lines.push(line);
        }
    }
    if lines
        .iter()
        .all(|l| l.points.is_empty() && l.zeros.is_empty())
    {
        return Ok(None);
    }
    let values: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().chain(&l.companion).map(|p| p.1))
        .collect();
    let (lo, hi) = log_range(&values, 1e-6);
    let sizes = &g.a.sizes;
    let (first, last) = (sizes[0] as f64, g.n as f64);
    let chart = LineChart {
        title: format!(
            "FPIR against gallery size N by {} at T\u{a0}=\u{a0}{:.4}, the threshold for FPIR {} at N = {}",
            g.name, t.t, t.target, g.n
        ),
        x: Axis {
            desc: "gallery size N (log10)".into(),
            range: (first / 1.25, last * 1.25),
            ticks: spaced(sizes),
            format: TickFormat::Integer,
        },
        y: Axis {
            desc: "FPIR at T (log10): measured solid, predicted dashed, hollow = 0".into(),
            range: (lo, hi),
            ticks: log_ticks(lo, hi),
            format: TickFormat::Exponent,
        },
        y_log: true,
        lines,
    };
    let (stem, path) = g.path("fpir_vs_n");
    render_line_chart(&path, &chart)?;
    let missing = if no_prediction.is_empty() {
        String::new()
    } else {
        format!(
            " No prediction for {} (no 1:1 false match at T).",
            no_prediction.join(", ")
        )
    };
    Ok(g.file(stem, format!(
        "FPIR of each {} group (share of its non-mated searches whose top candidate scores ≥ T) at {}, the threshold set for that FPIR at N = {}, against gallery size N = {} (log axes): measured (solid, markers) and predicted from the group's 1:1 FMR at T as s·(1 − (1 − FMR)^N) (dashed). Hollow markers on the foot of the axis: no false positive at that N (0 cannot be drawn on a log axis).{missing}",
        g.name,
        t_words(&t),
        g.n,
        sizes.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
    )))
}

/// The gallery sizes labelled on a log axis: each at least 1.4× the one before, so that labels do not
/// collide; the largest is always kept (10690 rather than 10000).
pub(super) fn spaced(sizes: &[usize]) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for &s in sizes.iter().rev() {
        if out.last().is_none_or(|&l| l / s as f64 >= 1.4) {
            out.push(s as f64);
        }
    }
    out.reverse();
    out
}

/// A log10 range holding every positive value: from the decade below the smallest (half of it when
/// the smallest is a decade; not under `floor`) to the decade above the largest (at most 1), at least one decade; `(1e-3, 1)` without a positive value.
fn log_range(values: &[f64], floor: f64) -> (f64, f64) {
    let pos: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
    if pos.is_empty() {
        return (floor.max(1e-3), 1.0);
    }
    let lo = axis_floor(pos.iter().copied().fold(1.0, f64::min)).max(floor);
    let hi = 10f64
        .powf(pos.iter().copied().fold(lo, f64::max).log10().ceil())
        .clamp(lo * 10.0, 1.0_f64.max(lo * 10.0));
    (lo, hi)
}

/// `det_1n_<grouping>`: each group's rank-1 FNIR against FPIR at the largest gallery as T moves over
/// its own non-mated top scores, with its operating point at every global threshold.
pub(super) fn det(g: &Grouping) -> Result<Option<ChartFile>, String> {
    let Some((_, curves)) = g.a.det.iter().find(|(name, _)| *name == g.name) else {
        return Ok(None);
    };
    if curves.iter().all(|c| c.points.is_empty()) {
        return Ok(None);
    }
    let rate = |m: Metric, target: f64, group: &str| {
        g.row(m, 1, Some(target), group)
            .and_then(|r| r.rate)
            .unwrap_or(f64::NAN)
    };
    let series: Vec<DetSeries> = curves
        .iter()
        .map(|c| DetSeries {
            group: c.group.clone(),
            curve: c.points.clone(),
            operating: g
                .a
                .thresholds
                .iter()
                .map(|t| {
                    (
                        rate(Metric::Fpir, t.target, &c.group),
                        rate(Metric::Fnir, t.target, &c.group),
                    )
                })
                .collect(),
            faded: g.fpir_faded(&c.group),
        })
        .collect();
    let zero = series
        .iter()
        .flat_map(|s| &s.operating)
        .any(|p| p.0 == 0.0 || p.1 == 0.0);
    let chart = DetChart {
        title: format!(
            "1:N DET by {}: rank-1 FNIR against FPIR, N = {}",
            g.name, g.n
        ),
        axes: [
            "FPIR (false positive identification rate, log10)".into(),
            "FNIR at rank 1 (false negative identification rate, log10)".into(),
        ],
        series,
        thresholds: g
            .a
            .thresholds
            .iter()
            .map(|t| format!("T={:.4} (FPIR {:.0e})", t.t, t.target))
            .collect(),
    };
    let (stem, path) = g.path("det_1n");
    render_det(&path, &chart)?;
    let targets: Vec<String> =
        g.a.thresholds
            .iter()
            .map(|t| t.target.to_string())
            .collect();
    Ok(g.file(stem, format!(
        "1:N DET curves by {} at N = {}: rank-1 FNIR (mate not the top candidate with score ≥ T) against FPIR (top candidate of a non-mated search ≥ T), each group's own searches, as T moves (log axes); markers at the global thresholds for FPIR {}, joined across groups{}.",
        g.name,
        g.n,
        targets.join(", "),
        if zero { "; operating points with a zero rate cannot be drawn on log axes and are left out" } else { "" }
    )))
}

/// `cmc_<grouping>`: each group's rank-k identification rate (no threshold) against k = 1..L at the
/// largest gallery.
pub(super) fn cmc(g: &Grouping) -> Result<Option<ChartFile>, String> {
    let l = g.a.l.max(1);
    let mut ticks = log_ticks(1.0, l as f64);
    if ticks.last() != Some(&(l as f64)) {
        ticks.push(l as f64);
    }
    let lines: Vec<GroupLine> = g
        .groups
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let points: Vec<(f64, f64)> =
                g.a.cmc
                    .iter()
                    .filter(|r| r.attribute == g.name && &r.group == group && r.gallery_size == g.n)
                    .filter_map(|r| r.rate.map(|v| (r.rank as f64, v)))
                    .collect();
            GroupLine {
                group: group.clone(),
                style: i,
                markers: points
                    .iter()
                    .copied()
                    .filter(|p| ticks.contains(&p.0))
                    .collect(),
                points,
                companion: Vec::new(),
                zeros: Vec::new(),
                faded: g.insufficient(Metric::Fnir, 1, None, group),
            }
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    let min = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(f64::INFINITY, f64::min);
    if !min.is_finite() {
        return Ok(None);
    }
    // The y axis starts at the 0.05 step below the lowest rate (minus a margin), so that the
    // groups' differences are visible; the caption says where it starts.
    let lo = (((min - 0.02) * 20.0).floor() / 20.0).clamp(0.0, 0.95);
    let step = match 1.0 - lo {
        s if s <= 0.3 => 0.05,
        s if s <= 0.6 => 0.1,
        _ => 0.2,
    };
    let y_ticks: Vec<f64> = (0..)
        .map(|k| lo + k as f64 * step)
        .take_while(|v| *v <= 1.0 + 1e-9)
        .collect();
    let chart = LineChart {
        title: format!(
            "CMC by {}: rank-k identification rate, N = {}, no threshold",
            g.name, g.n
        ),
        x: Axis {
            desc: "rank k (log10)".into(),
            range: (0.9, l as f64 * 1.1),
            ticks,
            format: TickFormat::Integer,
        },
        y: Axis {
            desc: "identification rate: mate among the top k".into(),
            range: (lo, 1.0),
            ticks: y_ticks,
            format: TickFormat::Fixed(2),
        },
        y_log: false,
        lines,
    };
    let (stem, path) = g.path("cmc");
    render_line_chart(&path, &chart)?;
    Ok(g.file(stem, format!(
        "Cumulative match characteristic by {}: the share of each group's mated searches whose mate is among the top k candidates (investigative mode, no threshold; 1 − FNIR at rank k), k = 1..{l}, at N = {} (log x; linear y from {lo:.2}).",
        g.name, g.n
    )))
}

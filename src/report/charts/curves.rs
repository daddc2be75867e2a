//! Charts over every threshold: DET curves, FMR/FNMR against τ, score distributions.

use std::path::Path;

use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    axis_floor, decade_floor, draw_markers, err, legend_panel, legend_width, pow10_label, render,
    style, titled, LegendEntry,
};

/// A group's line colour: its style's, faded when the group has too little data.
pub(super) fn line_color(i: usize, faded: bool) -> RGBAColor {
    let c = style(i).color;
    if faded {
        c.mix(0.25)
    } else {
        c.to_rgba()
    }
}

/// Splits a chart's area (below its title) into the plot and the legend panel on its right.
pub(super) fn plot_and_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    entries: usize,
) -> Result<[DrawingArea<DB, Shift>; 2], String> {
    let body = titled(root, title, 20)?;
    let (w, _) = body.dim_in_pixel();
    let (plot, legend) = body.split_horizontally(w.saturating_sub(legend_width(entries)));
    Ok([plot, legend])
}

/// Legend entries of groups `names`, faded where `faded` says so.
fn entries<'a>(names: impl Iterator<Item = &'a String>, faded: &[bool]) -> Vec<LegendEntry> {
    names
        .enumerate()
        .map(|(i, n)| (n.clone(), i, faded.get(i).copied().unwrap_or(false)))
        .collect()
}

/// Draws group `i`'s curve through `points` in colour `col`, 2 px, dashed where its style says so.
pub(super) fn group_line<
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
>(
    chart: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    points: Vec<(f64, f64)>,
    i: usize,
    col: RGBAColor,
) -> Result<(), String> {
    if style(i).dashed {
        chart
            .draw_series(DashedLineSeries::new(points, 8, 4, col.stroke_width(2)))
            .map_err(err)?;
    } else {
        chart
            .draw_series(LineSeries::new(points, col.stroke_width(2)))
            .map_err(err)?;
    }
    Ok(())
}

/// Every `n`-th point of a curve, for its markers.
fn every(points: &[(f64, f64)], n: usize) -> Vec<(f64, f64)> {
    points.iter().step_by(n.max(1)).copied().collect()
}

/// Writes a DET chart as `<stem>.png` and `<stem>.svg`.
pub fn render_det(stem: &Path, c: &DetChart) -> Result<(), String> {
    let w = 900 + legend_width(c.series.len());
    render(stem, (w, 720), |r| draw_det(r, c), |r| draw_det(r, c))
}

/// One group's DET curve and its operating points at the global thresholds.
#[derive(Debug, Clone)]
pub struct DetSeries {
    /// Group label.
    pub group: String,
    /// (false-positive rate, miss rate) points along the curve: (FMR, FNMR) or (FPIR, FNIR).
    pub curve: Vec<(f64, f64)>,
    /// The same rates at each global threshold, in the order of [`DetChart::thresholds`].
    pub operating: Vec<(f64, f64)>,
    /// Drawn faded: the group has too few comparisons at the chart threshold.
    pub faded: bool,
}

/// A DET chart: a miss rate against a false-positive rate for every group (FNMR against FMR in 1:1,
/// FNIR against FPIR in 1:N), both on log10 axes.
#[derive(Debug, Clone)]
pub struct DetChart {
    /// Title (model, dataset, grouping).
    pub title: String,
    /// Descriptions of the x axis (the false-positive rate) and the y axis (the miss rate).
    pub axes: [String; 2],
    /// Groups in fixed order.
    pub series: Vec<DetSeries>,
    /// Labels of the global thresholds, e.g. `τ=0.412 (FMR 1e-3)`.
    pub thresholds: Vec<String>,
}

/// Draws a DET chart.
pub fn draw_det<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &DetChart,
) -> Result<(), String> {
    let all = c
        .series
        .iter()
        .flat_map(|s| s.curve.iter().chain(&s.operating));
    let min_fmr = all
        .clone()
        .map(|p| p.0)
        .filter(|&v| v > 0.0)
        .fold(1.0, f64::min);
    let min_fnmr = all.map(|p| p.1).filter(|&v| v > 0.0).fold(1.0, f64::min);
    let x0 = axis_floor(min_fmr).max(1e-8);
    let y0 = axis_floor(min_fnmr).clamp(1e-5, 0.1);
    let [plot, side] = plot_and_legend(root, &c.title, c.series.len())?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..1.0).log_scale(), (y0..1.0).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(c.axes[0].as_str())
        .y_desc(c.axes[1].as_str())
        .x_label_formatter(&pow10_label)
        .y_label_formatter(&pow10_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    for (i, s) in c.series.iter().enumerate() {
        let col = line_color(i, s.faded);
        let pts: Vec<(f64, f64)> = s
            .curve
            .iter()
            .copied()
            .filter(|p| p.0 >= x0 && p.1 >= y0)
            .collect();
        group_line(&mut chart, pts, i, col)?;
    }
    // Connectors through the points sharing one global threshold, then the points themselves.
    for (t, label) in c.thresholds.iter().enumerate() {
        let pts: Vec<(f64, f64)> = c
            .series
            .iter()
            .filter_map(|s| s.operating.get(t).copied())
            .filter(|p| p.0 >= x0 && p.1 >= y0)
            .collect();
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.clone(), BLACK.mix(0.5).stroke_width(1)))
            .map_err(err)?;
        let top = pts
            .iter()
            .copied()
            .fold((0.0, 0.0), |a, p| if p.1 > a.1 { p } else { a });
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                top,
                ("sans-serif", 12).into_font().color(&BLACK),
            )))
            .map_err(err)?;
    }
    for (i, s) in c.series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = s
            .operating
            .iter()
            .copied()
            .filter(|p| p.0 >= x0 && p.1 >= y0)
            .collect();
        draw_markers(&mut chart, &pts, style(i).marker, 4, line_color(i, s.faded))?;
    }
    let entries: Vec<LegendEntry> = c
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| (s.group.clone(), i, s.faded))
        .collect();
    legend_panel(&side, &entries)
}

/// (τ, FMR, FNMR) points of one group.
pub type RateCurve = Vec<(f64, f64, f64)>;

/// FMR(τ) and FNMR(τ) per group against the threshold, with the global thresholds marked.
#[derive(Debug, Clone)]
pub struct RatesVsThreshold {
    /// Title.
    pub title: String,
    /// Per group: label and (τ, FMR, FNMR) points.
    pub series: Vec<(String, RateCurve)>,
    /// Global thresholds: (label, τ).
    pub thresholds: Vec<(String, f64)>,
    /// Per group: drawn faded (too few comparisons).
    pub faded: Vec<bool>,
}

/// Draws FMR (solid) and FNMR (dashed) against τ, log10 y.
pub fn draw_rates_vs_threshold<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &RatesVsThreshold,
) -> Result<(), String> {
    let y0 = c
        .series
        .iter()
        .flat_map(|(_, p)| p.iter().flat_map(|q| [q.1, q.2]))
        .filter(|&v| v > 0.0)
        .fold(1.0, f64::min)
        .max(1e-7);
    let y0 = decade_floor(y0);
    let [plot, side] = plot_and_legend(root, &c.title, c.series.len())?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.2f64..1.0, (y0..1.0).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("threshold τ (cosine similarity; a pair matches when score ≥ τ)")
        .y_desc("error rate (log10): FMR solid, FNMR dashed")
        .y_label_formatter(&pow10_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    for (i, (_, pts)) in c.series.iter().enumerate() {
        let col = line_color(i, c.faded.get(i).copied().unwrap_or(false));
        let fmr: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| p.1 >= y0 && p.0 >= -0.2)
            .map(|p| (p.0, p.1))
            .collect();
        let fnmr: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| p.2 >= y0 && p.0 >= -0.2)
            .map(|p| (p.0, p.2))
            .collect();
        let n = fmr.len() / 6;
        draw_markers(&mut chart, &every(&fmr, n), style(i).marker, 4, col)?;
        draw_markers(
            &mut chart,
            &every(&fnmr, fnmr.len() / 6),
            style(i).marker,
            4,
            col,
        )?;
        chart
            .draw_series(LineSeries::new(fmr, col.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(DashedLineSeries::new(fnmr, 6, 4, col.stroke_width(2)))
            .map_err(err)?;
    }
    for (i, (label, tau)) in c.thresholds.iter().enumerate() {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*tau, y0), (*tau, 1.0)],
                BLACK.mix(0.4).stroke_width(1),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*tau, y0 * 1.6 * 2f64.powi(i as i32 % 2 * 2)),
                ("sans-serif", 11).into_font().color(&BLACK),
            )))
            .map_err(err)?;
    }
    legend_panel(&side, &entries(c.series.iter().map(|s| &s.0), &c.faded))
}

/// Writes a rates-vs-threshold chart.
pub fn render_rates_vs_threshold(stem: &Path, c: &RatesVsThreshold) -> Result<(), String> {
    render(
        stem,
        (900 + legend_width(c.series.len()), 640),
        |r| draw_rates_vs_threshold(r, c),
        |r| draw_rates_vs_threshold(r, c),
    )
}

/// (score, density) points.
pub type Density = Vec<(f64, f64)>;

/// Genuine (mated) and impostor (non-mated) score densities per group.
#[derive(Debug, Clone)]
pub struct ScoreDistributions {
    /// Title.
    pub title: String,
    /// (group, genuine points (score, density), impostor points (score, density)).
    pub series: Vec<(String, Density, Density)>,
    /// Global thresholds (label, τ).
    pub thresholds: Vec<(String, f64)>,
    /// Per group: drawn faded (too few comparisons).
    pub faded: Vec<bool>,
}

/// Draws the densities: impostor solid, genuine dashed, same colour per group.
pub fn draw_score_distributions<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &ScoreDistributions,
) -> Result<(), String> {
    let ymax = c
        .series
        .iter()
        .flat_map(|s| s.1.iter().chain(&s.2).map(|p| p.1))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.05;
    let [plot, side] = plot_and_legend(root, &c.title, c.series.len())?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..1.0, 0.0..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("score (cosine similarity)")
        .y_desc("density: impostor solid, genuine dashed")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    for (i, (_, genuine, impostor)) in c.series.iter().enumerate() {
        let col = line_color(i, c.faded.get(i).copied().unwrap_or(false));
        let peak = |d: &Density| d.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
        let peaks: Vec<(f64, f64)> = peak(impostor).into_iter().chain(peak(genuine)).collect();
        draw_markers(&mut chart, &peaks, style(i).marker, 4, col)?;
        chart
            .draw_series(LineSeries::new(impostor.clone(), col.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(DashedLineSeries::new(
                genuine.clone(),
                6,
                4,
                col.stroke_width(2),
            ))
            .map_err(err)?;
    }
    for (i, (label, tau)) in c.thresholds.iter().enumerate() {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*tau, 0.0), (*tau, ymax)],
                BLACK.mix(0.4).stroke_width(1),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*tau, ymax * (0.97 - 0.04 * (i % 2) as f64)),
                ("sans-serif", 11).into_font().color(&BLACK),
            )))
            .map_err(err)?;
    }
    legend_panel(&side, &entries(c.series.iter().map(|s| &s.0), &c.faded))
}

/// Writes a score-distribution chart.
pub fn render_score_distributions(stem: &Path, c: &ScoreDistributions) -> Result<(), String> {
    render(
        stem,
        (900 + legend_width(c.series.len()), 600),
        |r| draw_score_distributions(r, c),
        |r| draw_score_distributions(r, c),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_29_group_det_keeps_its_legend_beside_the_plot() {
        // LFW's race grouping: 29 groups. The canvas grows by a two-column legend panel, and the panel
        // (right of the 900 px plot) holds every group's swatch, the last one's colour included.
        let series: Vec<DetSeries> = (0..29)
            .map(|i| DetSeries {
                group: format!("group {i}"),
                curve: vec![(1e-4, 0.2), (1e-2, 0.05 + i as f64 * 1e-3)],
                operating: vec![(1e-3, 0.1)],
                faded: i % 3 == 0,
            })
            .collect();
        let chart = DetChart {
            title: "DET by race — model on dataset".into(),
            axes: ["FMR".into(), "FNMR".into()],
            series,
            thresholds: vec!["τ=0.3 (FMR 1e-3)".into()],
        };
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("det");
        render_det(&stem, &chart).unwrap();
        let img = image::open(stem.with_extension("png")).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (900 + legend_width(29), 720));
        assert_eq!(legend_width(29), 560, "two legend columns beyond 24 groups");
        let last = style(28).color; // group 28: not faded, 5th colour, 4th marker
        let in_panel = |c: RGBColor| {
            img.enumerate_pixels()
                .any(|(x, _, p)| x >= 900 && p.0 == [c.0, c.1, c.2])
        };
        assert!(in_panel(last), "the legend panel shows the last group");
        // Nothing of the legend is drawn over the plot: its text column starts right of the plot.
        assert_ne!(style(28), style(20));
    }
}

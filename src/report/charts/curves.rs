//! Charts over every threshold: DET curves, FMR/FNMR against τ, score distributions.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{color, decade_floor, err, legend, pow10_label, render};

/// Writes a DET chart as `<stem>.png` and `<stem>.svg`.
pub fn render_det(stem: &Path, c: &DetChart) -> Result<(), String> {
    render(stem, (960, 720), |r| draw_det(r, c), |r| draw_det(r, c))
}

/// One group's DET curve and its operating points at the global thresholds.
#[derive(Debug, Clone)]
pub struct DetSeries {
    /// Group label.
    pub group: String,
    /// (FMR, FNMR) points along the curve.
    pub curve: Vec<(f64, f64)>,
    /// (FMR, FNMR) at each global threshold, in the order of [`DetChart::thresholds`].
    pub operating: Vec<(f64, f64)>,
}

/// A DET chart: FNMR against FMR for every group, both on log10 axes.
#[derive(Debug, Clone)]
pub struct DetChart {
    /// Title (model, dataset, grouping).
    pub title: String,
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
    let x0 = decade_floor(min_fmr).max(1e-8);
    let y0 = decade_floor(min_fnmr).clamp(1e-5, 0.1);
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..1.0).log_scale(), (y0..1.0).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("FMR (false match rate, log10)")
        .y_desc("FNMR (false non-match rate, log10)")
        .x_label_formatter(&pow10_label)
        .y_label_formatter(&pow10_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    for (i, s) in c.series.iter().enumerate() {
        let col = color(i);
        let pts: Vec<(f64, f64)> = s
            .curve
            .iter()
            .copied()
            .filter(|p| p.0 >= x0 && p.1 >= y0)
            .collect();
        chart
            .draw_series(LineSeries::new(pts, col.stroke_width(2)))
            .map_err(err)?
            .label(&s.group)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
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
        let col = color(i);
        chart
            .draw_series(
                s.operating
                    .iter()
                    .filter(|p| p.0 >= x0 && p.1 >= y0)
                    .map(|&p| Circle::new(p, 4, col.filled())),
            )
            .map_err(err)?;
    }
    // DET curves never reach the lower left (low FMR and low FNMR at once): the legend goes there.
    legend(&mut chart, SeriesLabelPosition::LowerLeft, 14)
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
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 20))
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
    for (i, (group, pts)) in c.series.iter().enumerate() {
        let col = color(i);
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
        chart
            .draw_series(LineSeries::new(fmr, col.stroke_width(2)))
            .map_err(err)?
            .label(group.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
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
    legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
    Ok(())
}

/// Writes a rates-vs-threshold chart.
pub fn render_rates_vs_threshold(stem: &Path, c: &RatesVsThreshold) -> Result<(), String> {
    render(
        stem,
        (960, 640),
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
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 20))
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
    for (i, (group, genuine, impostor)) in c.series.iter().enumerate() {
        let col = color(i);
        chart
            .draw_series(LineSeries::new(impostor.clone(), col.stroke_width(2)))
            .map_err(err)?
            .label(group.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
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
    legend(&mut chart, SeriesLabelPosition::UpperRight, 13)?;
    Ok(())
}

/// Writes a score-distribution chart.
pub fn render_score_distributions(stem: &Path, c: &ScoreDistributions) -> Result<(), String> {
    render(
        stem,
        (960, 600),
        |r| draw_score_distributions(r, c),
        |r| draw_score_distributions(r, c),
    )
}

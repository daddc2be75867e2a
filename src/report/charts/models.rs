//! The model-comparison charts: per-group rates with one row per model (NIST FRVT Part 3 Annex 15
//! style: log10 rate across, the groups' markers in their fixed colours, 95 % intervals as whiskers),
//! and accuracy against differential (overall FNMR across, FMR Max/GeoMean up, one point per model).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{axis_floor, err, legend_panel, legend_width, log_label, render, style, titled};

/// One model's row: per group (style index, rate, interval low, high); NaN interval = none.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// Model name.
    pub model: String,
    /// (group style index, rate, ci low, ci high) of each group with a rate.
    pub points: Vec<(usize, f64, f64, f64)>,
}

/// Per-group rates by model.
#[derive(Debug, Clone, PartialEq)]
pub struct RatesByModel {
    /// Title.
    pub title: String,
    /// What the x axis shows.
    pub x_desc: String,
    /// Group names, in style order.
    pub groups: Vec<String>,
    /// One row per model, top first.
    pub rows: Vec<ModelRow>,
}

/// Writes a [`RatesByModel`] chart as `<stem>.png` and `<stem>.svg`.
pub fn render_rates_by_model(stem: &Path, c: &RatesByModel) -> Result<(), String> {
    let h = 160 + 90 * c.rows.len() as u32;
    render(
        stem,
        (1000 + legend_width(c.groups.len()), h.max(360)),
        |r| draw_rates_by_model(r, c),
        |r| draw_rates_by_model(r, c),
    )
}

fn draw_rates_by_model<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &RatesByModel,
) -> Result<(), String> {
    let body = titled(root, &c.title, 20)?;
    let (w, _) = body.dim_in_pixel();
    let (plot, legend) = body.split_horizontally(w.saturating_sub(legend_width(c.groups.len())));
    let values: Vec<f64> = c
        .rows
        .iter()
        .flat_map(|r| r.points.iter().flat_map(|p| [p.1, p.2, p.3]))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = axis_floor(values.iter().copied().fold(1.0, f64::min).max(1e-9));
    let hi = 10f64
        .powf(values.iter().copied().fold(lo, f64::max).log10().ceil())
        .max(lo * 10.0);
    let n = c.rows.len();
    let names: Vec<String> = c.rows.iter().map(|r| r.model.clone()).collect();
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(190)
        .build_cartesian_2d(super::log_y(lo, hi), -0.5f64..(n as f64 - 0.5))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y: &f64| {
            let k = y.round();
            if (y - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < names.len() {
                names[names.len() - 1 - k as usize].clone()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&log_label)
        .x_desc(c.x_desc.clone())
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    let groups = c.groups.len().max(1) as f64;
    for (k, row) in c.rows.iter().enumerate() {
        let y0 = (n - 1 - k) as f64;
        for &(g, v, l, h) in &row.points {
            // Each group a little lower than the last, so that equal rates stay visible.
            let y = y0 + 0.3 - 0.6 * (g as f64 + 0.5) / groups;
            let col = style(g).color;
            if l.is_finite() && h.is_finite() && h > 0.0 {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(l.max(lo), y), (h, y)],
                        col.stroke_width(2),
                    )))
                    .map_err(err)?;
            }
            if v > 0.0 {
                let st = style(g);
                super::draw_markers(&mut chart, &[(v, y)], st.marker, 6, st.color.to_rgba())?;
            }
        }
    }
    let entries: Vec<super::LegendEntry> = c
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.clone(), i, false))
        .collect();
    legend_panel(&legend, &entries)
}

/// One model's point of the accuracy-against-differential chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPoint {
    /// Model name.
    pub model: String,
    /// Overall FNMR at its threshold.
    pub fnmr: f64,
    /// FMR Max/GeoMean, with its interval (NaN: none).
    pub differential: (f64, f64, f64),
}

/// Accuracy against differential.
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyVsDifferential {
    /// Title.
    pub title: String,
    /// One point per model.
    pub points: Vec<ModelPoint>,
}

/// Writes an [`AccuracyVsDifferential`] chart as `<stem>.png` and `<stem>.svg`.
pub fn render_accuracy_vs_differential(
    stem: &Path,
    c: &AccuracyVsDifferential,
) -> Result<(), String> {
    render(
        stem,
        (900, 620),
        |r| draw_accuracy(r, c),
        |r| draw_accuracy(r, c),
    )
}

fn draw_accuracy<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &AccuracyVsDifferential,
) -> Result<(), String> {
    let body = titled(root, &c.title, 20)?;
    let pts: Vec<&ModelPoint> = c
        .points
        .iter()
        .filter(|p| p.fnmr.is_finite() && p.differential.0.is_finite())
        .collect();
    let ys: Vec<f64> = pts
        .iter()
        .flat_map(|p| [p.differential.0, p.differential.1, p.differential.2])
        .filter(|v| v.is_finite())
        .collect();
    let y_hi = ys.iter().copied().fold(1.0, f64::max) * 1.15;
    let x_hi = (pts.iter().map(|p| p.fnmr).fold(0.0, f64::max) * 1.2).clamp(0.05, 1.0);
    let mut chart = ChartBuilder::on(&body)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_hi, 1.0f64.min(y_hi / 1.15)..y_hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("overall FNMR at the model's own threshold for FMR 1e-3 (lower = more accurate)")
        .y_desc("FMR Max/GeoMean (1 = equal; lower = fairer)")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
    for (i, p) in pts.iter().enumerate() {
        let col = style(i).color;
        let (v, l, h) = p.differential;
        if l.is_finite() && h.is_finite() {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(p.fnmr, l), (p.fnmr, h)],
                    col.stroke_width(2),
                )))
                .map_err(err)?;
        }
        chart
            .draw_series(std::iter::once(Circle::new((p.fnmr, v), 6, col.filled())))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{} ({v:.2})", p.model),
                (p.fnmr + x_hi * 0.015, v),
                ("sans-serif", 14).into_font().color(&col),
            )))
            .map_err(err)?;
    }
    Ok(())
}

//! Charts comparing groups at one threshold: the dot plot with intervals, and a rate relative to a
//! reference group (the cross-group heatmap is in `heatmap`).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{color, decade_floor, draw_markers, err, log_label, render, style};

/// A point estimate with its 95 % interval (NaN bounds when none).
pub type Estimate = (f64, f64, f64);

/// One dot of a dot plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    /// Group label.
    pub group: String,
    /// Style index.
    pub colour: usize,
    /// The estimates of the two rates (top panel, bottom panel), e.g. FMR and FNMR.
    pub rates: [Estimate; 2],
    /// Drawn faded in the top / bottom panel: too few comparisons for that rate.
    pub faded: [bool; 2],
}

/// A facet: its label and its dots.
pub type Facet = (String, Vec<Dot>);

/// Per-group rates with intervals (two rates, e.g. FMR and FNMR, one panel row each), one facet
/// per value of a second attribute.
#[derive(Debug, Clone)]
pub struct DotPlot {
    /// Title.
    pub title: String,
    /// Names of the two rates (top row, bottom row), e.g. `FMR` and `FNMR`.
    pub rates: [String; 2],
    /// Facets: (facet label, its groups' dots).
    pub facets: Vec<Facet>,
}

/// Rotated x labels need this many pixels for groups labelled `labels`.
fn label_band(labels: &[String]) -> u32 {
    let longest = labels
        .iter()
        .map(|l| l.chars().count().min(24))
        .max()
        .unwrap_or(4);
    (12 + 8 * longest as u32).max(30)
}

/// The x-axis of a chart with one column per group: label style (rotated when `rotate`) and the
/// formatter that writes each group's (abbreviated) label under its column.
fn group_axis(
    labels: Vec<String>,
    rotate: bool,
    size: u32,
) -> (TextStyle<'static>, impl Fn(&f64) -> String) {
    let font = ("sans-serif", size).into_font();
    let style = if rotate {
        font.transform(FontTransform::Rotate90).color(&BLACK)
    } else {
        font.color(&BLACK)
    };
    let fmt = move |v: &f64| {
        labels
            .get(v.round() as usize)
            .filter(|_| (v - v.round()).abs() < 0.01)
            .map(|l| super::tick_label(l, rotate))
            .unwrap_or_default()
    };
    (style, fmt)
}

/// Draws the dot plot: FMR on the top row, FNMR on the bottom row, one column per facet, log10 y.
pub fn draw_dot_plot<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &DotPlot,
) -> Result<(), String> {
    let body = super::titled(root, &d.title, 18)?;
    // Facets share the width in proportion to their groups.
    let wanted: Vec<u32> = d.facets.iter().map(|(_, g)| facet_width(g.len())).collect();
    let total = wanted.iter().sum::<u32>().max(1);
    let width = body.dim_in_pixel().0;
    let widths: Vec<u32> = wanted.iter().map(|w| w * width / total).collect();
    let (rows_top, rows_bottom) = body.split_vertically(body.dim_in_pixel().1 / 2);
    for (r, (rate, row)) in d.rates.iter().zip([rows_top, rows_bottom]).enumerate() {
        let values: Vec<f64> = d
            .facets
            .iter()
            .flat_map(|(_, g)| {
                g.iter().flat_map(|x| {
                    let e = x.rates[r];
                    [e.0, e.1, e.2]
                })
            })
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let lo = decade_floor(values.iter().copied().fold(1.0, f64::min).max(1e-8));
        let hi = 10f64
            .powf(values.iter().copied().fold(lo, f64::max).log10().ceil())
            .max(lo * 10.0);
        let mut rest = row;
        for (f, (facet, groups)) in d.facets.iter().enumerate() {
            let (area, next) = rest.split_horizontally(widths[f]);
            rest = next;
            let labels: Vec<String> = groups
                .iter()
                .map(|g| super::abbreviate(&g.group, 24))
                .collect();
            let band = label_band(&labels);
            let rotate = groups.len() > 6 || labels.iter().any(|l| l.chars().count() > 10);
            let (x_style, fmt) = group_axis(labels, rotate, 12);
            let caption = if facet.is_empty() {
                rate.clone()
            } else {
                format!("{rate} — {facet}")
            };
            let mut chart = ChartBuilder::on(&area)
                .caption(caption, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(if rotate { band } else { 30 })
                .y_label_area_size(55)
                .build_cartesian_2d(-0.5f64..(groups.len() as f64 - 0.5), super::log_y(lo, hi))
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(groups.len().max(1) * 2 + 1)
                .label_style(("sans-serif", 12))
                .x_label_formatter(&fmt)
                .x_label_style(x_style)
                .y_label_formatter(&log_label)
                .y_desc(format!("{rate} (log10)"))
                .draw()
                .map_err(err)?;
            for (x, dot) in groups.iter().enumerate() {
                draw_dot(&mut chart, x as f64, dot, r, lo)?;
            }
        }
    }
    Ok(())
}

/// Draws one dot of panel `r` at column `x`: its interval (clipped at the axis floor `lo`) and its
/// point in the group's colour and marker, or a "0" at the foot of the axis for a zero rate (which
/// has no point on a log axis).
fn draw_dot<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<
        DB,
        plotters::coord::cartesian::Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    x: f64,
    dot: &Dot,
    r: usize,
    lo: f64,
) -> Result<(), String> {
    let (p, l, h) = dot.rates[r];
    let col = if dot.faded[r] {
        color(dot.colour).mix(0.25)
    } else {
        color(dot.colour).to_rgba()
    };
    if l.is_finite() && h.is_finite() && h > 0.0 {
        let l = l.max(lo);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, l), (x, h)],
                col.stroke_width(2),
            )))
            .map_err(err)?;
        for y in [l, h] {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x - 0.12, y), (x + 0.12, y)],
                    col.stroke_width(2),
                )))
                .map_err(err)?;
        }
    }
    if p > 0.0 {
        draw_markers(chart, &[(x, p)], style(dot.colour).marker, 5, col)?;
    } else if p == 0.0 {
        chart
            .draw_series(std::iter::once(Text::new(
                "0",
                (x, lo * 1.25),
                ("sans-serif", 12)
                    .into_font()
                    .color(&col)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// Pixels of one facet with `groups` dots.
fn facet_width(groups: usize) -> u32 {
    (110 + 46 * groups as u32).max(260)
}

/// Writes a dot plot.
pub fn render_dot_plot(stem: &Path, d: &DotPlot) -> Result<(), String> {
    let w = d
        .facets
        .iter()
        .map(|(_, g)| facet_width(g.len()))
        .sum::<u32>()
        .max(700);
    let labels: Vec<String> = d
        .facets
        .iter()
        .flat_map(|(_, g)| g.iter().map(|x| x.group.clone()))
        .collect();
    render(
        stem,
        (w, 700 + 2 * label_band(&labels)),
        |r| draw_dot_plot(r, d),
        |r| draw_dot_plot(r, d),
    )
}

/// FMR of every group divided by a reference group's, at one threshold.
#[derive(Debug, Clone)]
pub struct RelativeFmr {
    /// Title.
    pub title: String,
    /// `FMR` or `FNMR`.
    pub rate: String,
    /// One bar per group.
    pub bars: Vec<RelativeBar>,
}

/// (group, colour index, ratio, 95 % interval of the ratio, whether both groups have enough data;
/// those without are drawn faded).
pub type RelativeBar = (String, usize, f64, (f64, f64), bool);

/// Draws relative FMR as dots on a log10 axis with a line at 1×.
pub fn draw_relative_fmr<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &RelativeFmr,
) -> Result<(), String> {
    let vals: Vec<f64> = c
        .bars
        .iter()
        .flat_map(|b| [b.2, b.3 .0, b.3 .1])
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = decade_floor(vals.iter().copied().fold(1.0, f64::min).max(1e-3)).min(0.5);
    let hi = 10f64
        .powf(vals.iter().copied().fold(1.0, f64::max).log10().ceil())
        .max(10.0);
    let labels: Vec<String> = c.bars.iter().map(|b| super::abbreviate(&b.0, 24)).collect();
    let rotate = c.bars.len() > 6 || labels.iter().any(|l| l.chars().count() > 12);
    let band = if rotate { label_band(&labels) } else { 40 };
    let (x_style, fmt) = group_axis(labels, rotate, 13);
    let body = super::titled(root, &c.title, 18)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(15)
        .x_label_area_size(band)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(c.bars.len() as f64 - 0.5), super::log_y(lo, hi))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(c.bars.len() * 2 + 1)
        .label_style(("sans-serif", 13))
        .x_label_formatter(&fmt)
        .x_label_style(x_style)
        .y_label_formatter(&log_label)
        .y_desc(format!(
            "{} relative to the reference group (log10, ×)",
            c.rate
        ))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, 1.0), (c.bars.len() as f64 - 0.5, 1.0)],
            BLACK.mix(0.6).stroke_width(1),
        )))
        .map_err(err)?;
    for (x, (_, ci, v, (l, h), sufficient)) in c.bars.iter().enumerate() {
        let col = if *sufficient {
            color(*ci).to_rgba()
        } else {
            color(*ci).mix(0.25)
        };
        let x = x as f64;
        if l.is_finite() && h.is_finite() && *h > 0.0 {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, l.max(lo)), (x, *h)],
                    col.stroke_width(2),
                )))
                .map_err(err)?;
        }
        if *v > 0.0 && v.is_finite() {
            chart
                .draw_series(std::iter::once(Circle::new((x, *v), 6, col.filled())))
                .map_err(err)?;
        }
        if *v > 0.0 && v.is_finite() && c.bars.len() <= 12 {
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{v:.1}×"),
                    (x + 0.08, *v),
                    ("sans-serif", 13).into_font().color(&BLACK),
                )))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// Writes a relative-FMR chart.
pub fn render_relative_fmr(stem: &Path, c: &RelativeFmr) -> Result<(), String> {
    let w = (140 * c.bars.len() as u32 + 200).clamp(640, 1600);
    let labels: Vec<String> = c.bars.iter().map(|b| b.0.clone()).collect();
    render(
        stem,
        (w, 520 + label_band(&labels)),
        |r| draw_relative_fmr(r, c),
        |r| draw_relative_fmr(r, c),
    )
}

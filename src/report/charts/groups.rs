//! Charts comparing groups at one threshold: the cross-group FMR heatmap, the dot plot with
//! intervals, and FMR relative to a reference group.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{color, decade_floor, err, log_label, render};

/// Writes a heatmap as `<stem>.png` and `<stem>.svg`.
pub fn render_heatmap(stem: &Path, h: &Heatmap) -> Result<(), String> {
    let side = (260 + 110 * h.groups.len() as u32).clamp(560, 1400);
    render(
        stem,
        (side + 150, side + 40),
        |r| draw_heatmap(r, h),
        |r| draw_heatmap(r, h),
    )
}

/// A cross-group FMR heatmap at one global threshold.
#[derive(Debug, Clone)]
pub struct Heatmap {
    /// Title.
    pub title: String,
    /// Group labels, fixed order (rows and columns).
    pub groups: Vec<String>,
    /// `cells[a][b]` = (false matches, comparisons).
    pub cells: Vec<Vec<(u64, u64)>>,
    /// The target FMR: cells at or below are grey, above are red.
    pub target_fmr: f64,
}

/// Colour of a heatmap cell: grey at/below target; red, deeper per decade above it.
pub fn heat_color(fmr: f64, target: f64) -> RGBColor {
    if !fmr.is_finite() {
        return RGBColor(255, 255, 255);
    }
    if fmr <= target {
        return RGBColor(215, 215, 215);
    }
    let decades = ((fmr / target).log10() / 2.0).clamp(0.0, 1.0);
    let fade = (200.0 * (1.0 - decades)) as u8;
    RGBColor(235, fade.saturating_add(20), fade.saturating_add(20))
}

/// Draws a heatmap.
pub fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &Heatmap,
) -> Result<(), String> {
    let k = h.groups.len();
    let short: Vec<String> = h.groups.iter().map(|g| super::abbreviate(g, 22)).collect();
    let groups = short.clone();
    let groups_y = short.clone();
    // Rotate the column labels when they would not fit side by side (about 7 px a character).
    let longest_label = short.iter().map(|g| g.chars().count()).max().unwrap_or(4);
    let cell_px = (260 + 110 * k).clamp(560, 1400) / k.max(1);
    let rotate = longest_label * 7 + 10 > cell_px;
    let label_x = move |v: &f64| {
        groups
            .get(v.floor() as usize)
            .filter(|_| v.fract() > 0.4 && v.fract() < 0.6)
            .map(|l| if rotate { below_axis(l) } else { l.clone() })
            .unwrap_or_default()
    };
    // Row a is drawn at y = k − 1 − a (first group on top), so the y labels run in reverse.
    let label_y = move |v: &f64| {
        groups_y
            .get((k as f64 - 1.0 - v.floor()).max(-1.0) as usize)
            .filter(|_| v.fract() > 0.4 && v.fract() < 0.6)
            .cloned()
            .unwrap_or_default()
    };
    let longest = short.iter().map(|g| g.chars().count()).max().unwrap_or(4) as u32;
    let body = super::titled(root, &h.title, 18)?;
    let (w, _) = body.dim_in_pixel();
    let (map_area, scale_area) = body.split_horizontally(w.saturating_sub(150));
    let mut chart = ChartBuilder::on(&map_area)
        .margin(15)
        .x_label_area_size(if rotate { 50 + 8 * longest } else { 40 })
        .y_label_area_size(20 + 8 * longest)
        .build_cartesian_2d(0f64..k as f64, 0f64..k as f64)
        .map_err(err)?;
    let x_style = if rotate {
        ("sans-serif", 13)
            .into_font()
            .transform(FontTransform::Rotate90)
            .color(&BLACK)
    } else {
        ("sans-serif", 13).into_font().color(&BLACK)
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(4 * k + 1)
        .y_labels(4 * k + 1)
        .label_style(("sans-serif", 13))
        .x_label_formatter(&label_x)
        .y_label_formatter(&label_y)
        .x_label_style(x_style)
        .x_desc("impostor group (second image)")
        .y_desc("impostor group (first image)")
        .draw()
        .map_err(err)?;
    colour_scale(&scale_area, h.target_fmr)?;
    // Beyond 12 groups the cells are too small for the counts, beyond 20 for the values: they stay
    // in cross_fmr.csv, and the colours (with the scale) carry the picture.
    let (show_counts, show_values) = (k <= 12, k <= 20);
    for a in 0..k {
        for b in 0..k {
            let (fm, n) = h.cells[a][b];
            let fmr = if n > 0 {
                fm as f64 / n as f64
            } else {
                f64::NAN
            };
            let (x, y) = (b as f64, (k - 1 - a) as f64);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    heat_color(fmr, h.target_fmr).filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    WHITE.stroke_width(2),
                )))
                .map_err(err)?;
            let value = if n == 0 {
                "no pairs".to_string()
            } else if fm == 0 {
                "0".to_string()
            } else {
                format!("{fmr:.1e}")
            };
            let style = ("sans-serif", 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center));
            let small = ("sans-serif", 11)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center));
            if show_values {
                let at = if show_counts { y + 0.6 } else { y + 0.5 };
                chart
                    .draw_series(std::iter::once(Text::new(value, (x + 0.5, at), style)))
                    .map_err(err)?;
            }
            if show_counts {
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{fm}/{n}"),
                        (x + 0.5, y + 0.3),
                        small,
                    )))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// The heatmap's colour scale: grey at or below the target, red deepening over two decades above it,
/// white where a cell has no pairs.
fn colour_scale<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    target: f64,
) -> Result<(), String> {
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    let (x, top, bar_h) = (14i32, 60i32, 240i32);
    area.draw(&Text::new("cell FMR", (x, top - 34), font.clone()))
        .map_err(err)?;
    area.draw(&Text::new(
        format!("(target {target:.0e})"),
        (x, top - 20),
        font.clone(),
    ))
    .map_err(err)?;
    // Top of the bar: 100× the target and above; bottom: just above the target.
    for i in 0..bar_h {
        let ratio = 10f64.powf(2.0 * (bar_h - i) as f64 / bar_h as f64);
        let c = heat_color(target * ratio, target);
        area.draw(&Rectangle::new(
            [(x, top + i), (x + 22, top + i + 1)],
            c.filled(),
        ))
        .map_err(err)?;
    }
    for (frac, label) in [
        (0.0, format!("≥ {:.0e}", target * 100.0)),
        (0.5, format!("{:.0e}", target * 10.0)),
        (1.0, format!("> {target:.0e}")),
    ] {
        let y = top + (frac * bar_h as f64) as i32;
        area.draw(&Text::new(label, (x + 28, y - 6), font.clone()))
            .map_err(err)?;
    }
    let y = top + bar_h + 16;
    area.draw(&Rectangle::new(
        [(x, y), (x + 22, y + 16)],
        heat_color(target, target).filled(),
    ))
    .map_err(err)?;
    area.draw(&Text::new(
        format!("≤ {target:.0e}"),
        (x + 28, y + 2),
        font.clone(),
    ))
    .map_err(err)?;
    let y = y + 26;
    area.draw(&Rectangle::new(
        [(x, y), (x + 22, y + 16)],
        BLACK.mix(0.4).stroke_width(1),
    ))
    .map_err(err)?;
    area.draw(&Text::new("no pairs", (x + 28, y + 2), font))
        .map_err(err)?;
    Ok(())
}

/// A point estimate with its 95 % interval (NaN bounds when none).
pub type Estimate = (f64, f64, f64);

/// One dot of a dot plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    /// Group label.
    pub group: String,
    /// Style index.
    pub colour: usize,
    /// FMR estimate.
    pub fmr: Estimate,
    /// FNMR estimate.
    pub fnmr: Estimate,
    /// Drawn faded in the FMR / FNMR panel: too few comparisons for that rate.
    pub faded: [bool; 2],
}

/// A facet: its label and its dots.
pub type Facet = (String, Vec<Dot>);

/// Per-group FMR and FNMR with intervals, one facet per value of a second attribute.
#[derive(Debug, Clone)]
pub struct DotPlot {
    /// Title.
    pub title: String,
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
            .map(|l| if rotate { below_axis(l) } else { l.clone() })
            .unwrap_or_default()
    };
    (style, fmt)
}

/// A log y range `lo..hi` with labelled ticks at every decade (and 2×, 5× on short ranges).
fn log_y(
    lo: f64,
    hi: f64,
) -> plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>> {
    (lo..hi)
        .log_scale()
        .with_key_points(super::log_ticks(lo, hi))
}

/// A rotated axis label: plotters centres tick labels on the tick, so the label is preceded by as
/// much blank (figure spaces) as it is long, which puts all of it below the axis.
fn below_axis(label: &str) -> String {
    "\u{2007}".repeat(label.chars().count() + 1) + label
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
    for (r, (rate, row)) in [("FMR", rows_top), ("FNMR", rows_bottom)]
        .into_iter()
        .enumerate()
    {
        let values: Vec<f64> = d
            .facets
            .iter()
            .flat_map(|(_, g)| {
                g.iter().flat_map(|x| {
                    let e = if r == 0 { x.fmr } else { x.fnmr };
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
                rate.to_string()
            } else {
                format!("{rate} — {facet}")
            };
            let mut chart = ChartBuilder::on(&area)
                .caption(caption, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(if rotate { band } else { 30 })
                .y_label_area_size(55)
                .build_cartesian_2d(-0.5f64..(groups.len() as f64 - 0.5), log_y(lo, hi))
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
                let (p, l, h) = if r == 0 { dot.fmr } else { dot.fnmr };
                let col = if dot.faded[r] {
                    color(dot.colour).mix(0.25)
                } else {
                    color(dot.colour).to_rgba()
                };
                let x = x as f64;
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
                    chart
                        .draw_series(std::iter::once(Circle::new((x, p), 5, col.filled())))
                        .map_err(err)?;
                } else if p == 0.0 {
                    // No error: a "0" at the bottom of the axis (the rate has no point on a log axis).
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
            }
        }
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
        .build_cartesian_2d(-0.5f64..(c.bars.len() as f64 - 0.5), log_y(lo, hi))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_colours_split_at_target() {
        assert_eq!(heat_color(1e-3, 1e-3), RGBColor(215, 215, 215));
        let just_above = heat_color(1.1e-3, 1e-3);
        let far_above = heat_color(1e-1, 1e-3);
        assert!(
            just_above.1 > far_above.1,
            "deeper red further above target"
        );
        assert_eq!(far_above, RGBColor(235, 20, 20));
    }
}

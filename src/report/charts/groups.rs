//! Charts comparing groups at one threshold: the cross-group FMR heatmap, the dot plot with
//! intervals, and FMR relative to a reference group.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{color, decade_floor, err, log_label, pow10_label, render};

/// Writes a heatmap as `<stem>.png` and `<stem>.svg`.
pub fn render_heatmap(stem: &Path, h: &Heatmap) -> Result<(), String> {
    let side = (260 + 110 * h.groups.len() as u32).clamp(500, 1400);
    render(
        stem,
        (side + 120, side),
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
    let groups = h.groups.clone();
    let groups_y = h.groups.clone();
    let label_x = move |v: &f64| {
        groups
            .get(v.floor() as usize)
            .filter(|_| v.fract() > 0.4 && v.fract() < 0.6)
            .cloned()
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
    let longest = h.groups.iter().map(|g| g.len()).max().unwrap_or(4) as u32;
    let mut chart = ChartBuilder::on(root)
        .caption(&h.title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(20 + 8 * longest)
        .build_cartesian_2d(0f64..k as f64, 0f64..k as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(4 * k + 1)
        .y_labels(4 * k + 1)
        .x_label_formatter(&label_x)
        .y_label_formatter(&label_y)
        .x_desc("impostor group (second image)")
        .y_desc("impostor group (first image)")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err)?;
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
            chart
                .draw_series(std::iter::once(Text::new(value, (x + 0.5, y + 0.6), style)))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{fm}/{n}"),
                    (x + 0.5, y + 0.3),
                    small,
                )))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// A point estimate with its 95 % interval (NaN bounds when none).
pub type Estimate = (f64, f64, f64);

/// One dot of a dot plot: group label, colour index, FMR and FNMR estimates.
pub type Dot = (String, usize, Estimate, Estimate);

/// A facet: its label and its dots.
pub type Facet = (String, Vec<Dot>);

/// Per-group FMR and FNMR with intervals, one facet per value of a second attribute.
#[derive(Debug, Clone)]
pub struct DotPlot {
    /// Title.
    pub title: String,
    /// Facets: (facet label, groups as (label, colour index, FMR estimate, FNMR estimate)).
    pub facets: Vec<Facet>,
}

/// Draws the dot plot: FMR on the top row, FNMR on the bottom row, one column per facet, log10 y.
pub fn draw_dot_plot<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &DotPlot,
) -> Result<(), String> {
    let (title_area, body) = root.split_vertically(40);
    title_area
        .titled(&d.title, ("sans-serif", 20))
        .map_err(err)?;
    let rows = body.split_evenly((2, d.facets.len().max(1)));
    for (r, rate) in ["FMR", "FNMR"].iter().enumerate() {
        let values: Vec<f64> = d
            .facets
            .iter()
            .flat_map(|(_, g)| {
                g.iter().flat_map(|x| {
                    let e = if r == 0 { x.2 } else { x.3 };
                    [e.0, e.1, e.2]
                })
            })
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let lo = decade_floor(values.iter().copied().fold(1.0, f64::min).max(1e-8));
        let hi = 10f64
            .powf(values.iter().copied().fold(lo, f64::max).log10().ceil())
            .max(lo * 10.0);
        for (f, (facet, groups)) in d.facets.iter().enumerate() {
            let area = &rows[r * d.facets.len() + f];
            let labels: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
            let fmt = move |v: &f64| {
                labels
                    .get(v.round() as usize)
                    .filter(|_| (v - v.round()).abs() < 0.01)
                    .cloned()
                    .unwrap_or_default()
            };
            let caption = if facet.is_empty() {
                rate.to_string()
            } else {
                format!("{rate} — {facet}")
            };
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(55)
                .build_cartesian_2d(-0.5f64..(groups.len() as f64 - 0.5), (lo..hi).log_scale())
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(groups.len().max(1) * 2 + 1)
                .x_label_formatter(&fmt)
                .y_label_formatter(if hi / lo <= 100.0 {
                    &log_label
                } else {
                    &pow10_label
                })
                .y_desc(format!("{rate} (log10)"))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(err)?;
            for (x, (_, ci, fmr, fnmr)) in groups.iter().enumerate() {
                let (p, l, h) = if r == 0 { *fmr } else { *fnmr };
                let col = color(*ci);
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
                    chart
                        .draw_series(std::iter::once(Text::new(
                            "0 errors",
                            (x - 0.3, lo * 1.5),
                            ("sans-serif", 11).into_font().color(&col),
                        )))
                        .map_err(err)?;
                }
            }
        }
    }
    Ok(())
}

/// Writes a dot plot.
pub fn render_dot_plot(stem: &Path, d: &DotPlot) -> Result<(), String> {
    let w = (320 * d.facets.len() as u32).clamp(700, 1800);
    render(
        stem,
        (w, 760),
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
    let labels: Vec<String> = c.bars.iter().map(|b| b.0.clone()).collect();
    let fmt = move |v: &f64| {
        labels
            .get(v.round() as usize)
            .filter(|_| (v - v.round()).abs() < 0.01)
            .cloned()
            .unwrap_or_default()
    };
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..(c.bars.len() as f64 - 0.5), (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(c.bars.len() * 2 + 1)
        .x_label_formatter(&fmt)
        .y_desc(format!(
            "{} relative to the reference group (log10, ×)",
            c.rate
        ))
        .label_style(("sans-serif", 13))
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
    render(
        stem,
        (w, 560),
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

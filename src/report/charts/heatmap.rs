//! Heatmaps: a [`Grid`] of coloured, annotated cells with its colour scale beside it. The 1:1
//! cross-group impostor FMR ([`Heatmap`]) is one; the 1:N implicated-group map is another.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{abbreviate, err, render, titled};

/// Width of the colour-scale panel right of a grid.
pub const SCALE_WIDTH: u32 = 150;

/// Writes a heatmap as `<stem>.png` and `<stem>.svg`.
pub fn render_heatmap(stem: &Path, h: &Heatmap) -> Result<(), String> {
    let side = (260 + 110 * h.groups.len() as u32).clamp(560, 1400);
    render(
        stem,
        (side + SCALE_WIDTH, side + 40),
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

/// Colour of a heatmap cell: grey at/below target; red, deeper per decade above it (full at 100×).
pub fn heat_color(fmr: f64, target: f64) -> RGBColor {
    heat_scale(fmr, target, 2.0)
}

/// Colour of a value against a reference: white when not finite, grey at or below the reference,
/// red above it, deepening until `decades` decades above.
pub fn heat_scale(value: f64, reference: f64, decades: f64) -> RGBColor {
    if !value.is_finite() {
        return RGBColor(255, 255, 255);
    }
    if value <= reference {
        return RGBColor(215, 215, 215);
    }
    let depth = ((value / reference).log10() / decades).clamp(0.0, 1.0);
    let fade = (200.0 * (1.0 - depth)) as u8;
    RGBColor(235, fade.saturating_add(20), fade.saturating_add(20))
}

/// One cell of a [`Grid`].
#[derive(Debug, Clone, PartialEq)]
pub struct GridCell {
    /// Fill colour.
    pub fill: RGBColor,
    /// The value written in the cell (none when the cells are too small).
    pub value: Option<String>,
    /// A smaller second line under it, e.g. the counts.
    pub detail: Option<String>,
}

/// The colour scale beside a grid: a ramp from just above `reference` to `decades` decades above it
/// (coloured by [`heat_scale`]), then swatches.
#[derive(Debug, Clone, PartialEq)]
pub struct ColourScale {
    /// Two lines above the ramp: what a cell's colour shows, and the reference.
    pub heading: [String; 2],
    /// The reference value (grey at or below it).
    pub reference: f64,
    /// Decades above the reference at which the red is deepest.
    pub decades: f64,
    /// Labels at the top, middle and foot of the ramp.
    pub ramp: [String; 3],
    /// Swatches under the ramp: fill (`None`: an empty outlined box) and label.
    pub swatches: Vec<(Option<RGBColor>, String)>,
}

/// A grid of coloured, annotated cells: `cells[row][col]`, the first row on top.
#[derive(Debug, Clone)]
pub struct Grid {
    /// Title.
    pub title: String,
    /// Row labels, top to bottom.
    pub rows: Vec<String>,
    /// Column labels, left to right (rotated when they would not fit side by side).
    pub cols: Vec<String>,
    /// `cells[row][col]`.
    pub cells: Vec<Vec<GridCell>>,
    /// Description of the column axis.
    pub x_desc: String,
    /// Description of the row axis.
    pub y_desc: String,
    /// The colour scale.
    pub scale: ColourScale,
}

impl Heatmap {
    /// The grid drawn: FMR and counts per cell (the counts up to 12 groups, the values up to 20;
    /// beyond, the colours and the scale carry the picture and cross_fmr.csv has the numbers).
    pub fn grid(&self) -> Grid {
        let k = self.groups.len();
        let (show_counts, show_values) = (k <= 12, k <= 20);
        let cell = |&(fm, n): &(u64, u64)| {
            let fmr = if n > 0 {
                fm as f64 / n as f64
            } else {
                f64::NAN
            };
            let value = if n == 0 {
                "no pairs".to_string()
            } else if fm == 0 {
                "0".to_string()
            } else {
                format!("{fmr:.1e}")
            };
            GridCell {
                fill: heat_color(fmr, self.target_fmr),
                value: show_values.then_some(value),
                detail: show_counts.then(|| format!("{fm}/{n}")),
            }
        };
        let t = self.target_fmr;
        Grid {
            title: self.title.clone(),
            rows: self.groups.clone(),
            cols: self.groups.clone(),
            cells: self
                .cells
                .iter()
                .map(|row| row.iter().map(cell).collect())
                .collect(),
            x_desc: "impostor group (second image)".into(),
            y_desc: "impostor group (first image)".into(),
            scale: ColourScale {
                heading: ["cell FMR".into(), format!("(target {t:.0e})")],
                reference: t,
                decades: 2.0,
                ramp: [
                    format!("≥ {:.0e}", t * 100.0),
                    format!("{:.0e}", t * 10.0),
                    format!("> {t:.0e}"),
                ],
                swatches: vec![
                    (Some(heat_color(t, t)), format!("≤ {t:.0e}")),
                    (None, "no pairs".into()),
                ],
            },
        }
    }
}

/// Draws a heatmap.
pub fn draw_heatmap<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &Heatmap,
) -> Result<(), String> {
    draw_grid(root, &h.grid())
}

/// Writes a grid as `<stem>.png` and `<stem>.svg` on a canvas of `size` pixels.
pub fn render_grid(stem: &Path, g: &Grid, size: (u32, u32)) -> Result<(), String> {
    render(stem, size, |r| draw_grid(r, g), |r| draw_grid(r, g))
}

/// Longest label (in characters) of `labels`, 4 when there are none.
fn longest(labels: &[String]) -> usize {
    labels.iter().map(|g| g.chars().count()).max().unwrap_or(4)
}

/// Draws a grid: labelled rows and columns, the cells, and the colour scale on the right.
pub fn draw_grid<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    g: &Grid,
) -> Result<(), String> {
    let (k, m) = (g.rows.len(), g.cols.len());
    let cols: Vec<String> = g.cols.iter().map(|l| abbreviate(l, 22)).collect();
    let rows: Vec<String> = g.rows.iter().map(|l| abbreviate(l, 22)).collect();
    // Rotate the column labels when they would not fit side by side (about 7 px a character).
    let (long_col, long_row) = (longest(&cols), longest(&rows) as u32);
    let cell_px = (root.dim_in_pixel().0.saturating_sub(SCALE_WIDTH) as usize) / m.max(1);
    let rotate = long_col * 7 + 10 > cell_px;
    let label_x = move |v: &f64| {
        cols.get(v.floor() as usize)
            .filter(|_| v.fract() > 0.4 && v.fract() < 0.6)
            .map(|l| super::tick_label(l, rotate))
            .unwrap_or_default()
    };
    // Row a is drawn at y = k − 1 − a (first row on top), so the y labels run in reverse.
    let label_y = move |v: &f64| {
        rows.get((k as f64 - 1.0 - v.floor()).max(-1.0) as usize)
            .filter(|_| v.fract() > 0.4 && v.fract() < 0.6)
            .cloned()
            .unwrap_or_default()
    };
    let body = titled(root, &g.title, 18)?;
    let (w, _) = body.dim_in_pixel();
    let (map_area, scale_area) = body.split_horizontally(w.saturating_sub(SCALE_WIDTH));
    let mut chart = ChartBuilder::on(&map_area)
        .margin(15)
        .x_label_area_size(if rotate { 50 + 8 * long_col as u32 } else { 40 })
        .y_label_area_size(20 + 8 * long_row)
        .build_cartesian_2d(0f64..m as f64, 0f64..k as f64)
        .map_err(err)?;
    let font = ("sans-serif", 13).into_font();
    let x_style = if rotate {
        font.transform(FontTransform::Rotate90).color(&BLACK)
    } else {
        font.color(&BLACK)
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(4 * m + 1)
        .y_labels(4 * k + 1)
        .label_style(("sans-serif", 13))
        .x_label_formatter(&label_x)
        .y_label_formatter(&label_y)
        .x_label_style(x_style)
        .axis_desc_style(("sans-serif", 13).into_font().color(&BLACK))
        .x_desc(g.x_desc.as_str())
        .y_desc(g.y_desc.as_str())
        .draw()
        .map_err(err)?;
    colour_scale(&scale_area, &g.scale)?;
    let centred = |size: u32| {
        ("sans-serif", size)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center))
    };
    for (a, row) in g.cells.iter().enumerate() {
        for (b, cell) in row.iter().enumerate() {
            let (x, y) = (b as f64, (k - 1 - a) as f64);
            let square = [(x, y), (x + 1.0, y + 1.0)];
            chart
                .draw_series(std::iter::once(Rectangle::new(square, cell.fill.filled())))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    square,
                    WHITE.stroke_width(2),
                )))
                .map_err(err)?;
            if let Some(v) = &cell.value {
                let at = if cell.detail.is_some() {
                    y + 0.6
                } else {
                    y + 0.5
                };
                chart
                    .draw_series(std::iter::once(Text::new(
                        v.clone(),
                        (x + 0.5, at),
                        centred(14),
                    )))
                    .map_err(err)?;
            }
            if let Some(d) = &cell.detail {
                chart
                    .draw_series(std::iter::once(Text::new(
                        d.clone(),
                        (x + 0.5, y + 0.3),
                        centred(11),
                    )))
                    .map_err(err)?;
            }
        }
    }
    Ok(())
}

/// The grid's colour scale: the heading, the ramp from just above the reference (foot) to
/// `decades` decades above it (top), then the swatches.
fn colour_scale<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &ColourScale,
) -> Result<(), String> {
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    let (x, top, bar_h) = (14i32, 60i32, 240i32);
    for (i, line) in s.heading.iter().enumerate() {
        area.draw(&Text::new(
            line.clone(),
            (x, top - 34 + 14 * i as i32),
            font.clone(),
        ))
        .map_err(err)?;
    }
    for i in 0..bar_h {
        let ratio = 10f64.powf(s.decades * (bar_h - i) as f64 / bar_h as f64);
        let c = heat_scale(s.reference * ratio, s.reference, s.decades);
        area.draw(&Rectangle::new(
            [(x, top + i), (x + 22, top + i + 1)],
            c.filled(),
        ))
        .map_err(err)?;
    }
    for (frac, label) in [0.0, 0.5, 1.0].into_iter().zip(&s.ramp) {
        let y = top + (frac * bar_h as f64) as i32;
        area.draw(&Text::new(label.clone(), (x + 28, y - 6), font.clone()))
            .map_err(err)?;
    }
    for (i, (fill, label)) in s.swatches.iter().enumerate() {
        let y = top + bar_h + 16 + 26 * i as i32;
        let square = [(x, y), (x + 22, y + 16)];
        match fill {
            Some(c) => area.draw(&Rectangle::new(square, c.filled())),
            None => area.draw(&Rectangle::new(square, BLACK.mix(0.4).stroke_width(1))),
        }
        .map_err(err)?;
        area.draw(&Text::new(label.clone(), (x + 28, y + 2), font.clone()))
            .map_err(err)?;
    }
    Ok(())
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
        // One decade of span: 10× the reference is already the deepest red.
        assert_eq!(heat_scale(10.0, 1.0, 1.0), RGBColor(235, 20, 20));
    }
}

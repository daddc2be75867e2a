//! Charts (plotters), each written as PNG and SVG, NIST style — log10 error axes, one colour per group
//! in a fixed order. This module has what every chart shares (palette, font, legend, axis labels, the
//! PNG + SVG writer); `curves` has the charts over all thresholds (DET, rates against τ, score
//! distributions), `groups` those comparing groups at one threshold (dot plot with intervals, FMR
//! relative to a reference group), `heatmap` the grids of coloured cells (cross-group FMR, who is
//! implicated), `lines` a rate against gallery size or rank; `identification` draws the 1:N set
//! with them.

mod curves;
mod groups;
mod heatmap;
pub mod identification;
mod lines;
pub mod models;

pub use curves::*;
pub use groups::*;
pub use heatmap::*;
pub use lines::*;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Fixed group palette (Okabe–Ito, then tab10 extras), used in group order.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Colour of the `i`-th group (the colour of its [`style`]).
pub fn color(i: usize) -> RGBColor {
    style(i).color
}

/// Colours cycled through before the marker changes.
pub const COLOURS: usize = 8;

/// A group's marker shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled triangle.
    Triangle,
    /// Filled square.
    Square,
    /// Cross.
    Cross,
}

/// How one group is drawn: colour, marker and line dash. The first 8 groups differ in colour; then the
/// marker changes (4 shapes), then the dash, so up to 64 groups have distinct combinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStyle {
    /// Line and marker colour.
    pub color: RGBColor,
    /// Marker.
    pub marker: Marker,
    /// Whether the group's curve is dashed (from the 33rd group on).
    pub dashed: bool,
}

/// The style of the `i`-th group.
pub fn style(i: usize) -> GroupStyle {
    const MARKERS: [Marker; 4] = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Cross,
    ];
    GroupStyle {
        color: PALETTE[i % COLOURS],
        marker: MARKERS[(i / COLOURS) % MARKERS.len()],
        dashed: (i / (COLOURS * MARKERS.len())) % 2 == 1,
    }
}

/// Draws the group's marker at pixel `p` of `area`, `size` px, in colour `c`.
pub fn draw_marker_px<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: (i32, i32),
    m: Marker,
    size: i32,
    c: RGBAColor,
) -> Result<(), String> {
    match m {
        Marker::Circle => area.draw(&Circle::new(p, size, c.filled())),
        Marker::Triangle => area.draw(&TriangleMarker::new(p, size + 1, c.filled())),
        Marker::Square => area.draw(&Rectangle::new(
            [(p.0 - size, p.1 - size), (p.0 + size, p.1 + size)],
            c.filled(),
        )),
        Marker::Cross => area.draw(&Cross::new(p, size, c.stroke_width(2))),
    }
    .map_err(err)
}

/// Draws the group's marker at each point of a chart (data coordinates).
pub fn draw_markers<DB: DrawingBackend, X: Ranged<ValueType = f64>, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<DB, plotters::coord::cartesian::Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    m: Marker,
    size: i32,
    c: RGBAColor,
) -> Result<(), String> {
    draw_markers_as(chart, points, m, size, c, true)
}

/// [`draw_markers`], filled or as outlines only (`filled` false: a point that is not a measured
/// rate, e.g. a zero drawn on the foot of a log axis; a cross stays a cross).
pub fn draw_markers_as<
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
>(
    chart: &mut ChartContext<DB, plotters::coord::cartesian::Cartesian2d<X, Y>>,
    points: &[(f64, f64)],
    m: Marker,
    size: i32,
    c: RGBAColor,
    filled: bool,
) -> Result<(), String> {
    let fill = if filled {
        c.filled()
    } else {
        c.stroke_width(2)
    };
    let area = chart.plotting_area();
    for &p in points {
        match m {
            Marker::Circle => area.draw(&Circle::new(p, size, fill)),
            Marker::Triangle => area.draw(&TriangleMarker::new(p, size + 1, fill)),
            Marker::Square => area.draw(
                &(EmptyElement::at(p) + Rectangle::new([(-size, -size), (size, size)], fill)),
            ),
            Marker::Cross => area.draw(&Cross::new(p, size, c.stroke_width(2))),
        }
        .map_err(err)?;
    }
    Ok(())
}

/// A legend entry: label, style index, and whether the group is drawn faded (not enough data).
pub type LegendEntry = (String, usize, bool);

/// Width of the legend panel beside a chart with `n` entries (two columns beyond 24).
pub fn legend_width(n: usize) -> u32 {
    if n > 24 {
        560
    } else {
        280
    }
}

/// Draws the legend in its own panel `area` (beside the plot, never over it): a line sample in the
/// group's colour and dash, its marker, and the label (faded entries say `insufficient data`).
pub fn legend_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    let cols = if entries.len() > 24 { 2 } else { 1 };
    let rows = entries.len().div_ceil(cols).max(1);
    let step = ((h as usize).saturating_sub(40) / rows).clamp(12, 22) as i32;
    let size = (step - 6).clamp(10, 14) as u32;
    let col_w = (w / cols as u32) as i32;
    for (k, (label, i, faded)) in entries.iter().enumerate() {
        let (x, y) = ((k / rows) as i32 * col_w + 8, 30 + (k % rows) as i32 * step);
        let st = style(*i);
        let c = if *faded {
            st.color.mix(0.3)
        } else {
            st.color.to_rgba()
        };
        let line = vec![(x, y), (x + 26, y)];
        if st.dashed {
            area.draw(&PathElement::new(line, c.stroke_width(1)))
                .map_err(err)?;
        } else {
            area.draw(&PathElement::new(line, c.stroke_width(3)))
                .map_err(err)?;
        }
        draw_marker_px(area, (x + 13, y), st.marker, 4, c)?;
        let text = if *faded {
            format!("{label} (insufficient data)")
        } else {
            label.clone()
        };
        let max_chars = (col_w as usize).saturating_sub(44) * 2 / size as usize;
        area.draw(&Text::new(
            abbreviate(&text, max_chars.max(8)),
            (x + 34, y - size as i32 / 2),
            ("sans-serif", size)
                .into_font()
                .color(&BLACK.mix(if *faded { 0.5 } else { 1.0 })),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// `s` cut to `max` characters with an ellipsis.
pub fn abbreviate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// Breaks a title into lines of at most `max` characters, at spaces (after ` — ` first).
pub fn wrap(title: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for part in title.split(" — ") {
        let mut line = String::new();
        for word in part.split(' ') {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// Draws `title` centred on top of `root`, wrapped to its width, and returns the area below it.
pub fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    size: u32,
) -> Result<DrawingArea<DB, Shift>, String> {
    let (w, _) = root.dim_in_pixel();
    // DejaVu Sans averages about 0.55 em per character.
    let max = ((w as f64 - 20.0) / (0.55 * size as f64)).max(20.0) as usize;
    let lines = wrap(title, max);
    let band = 10 + lines.len() as u32 * (size + 6);
    let (top, rest) = root.split_vertically(band);
    for (i, l) in lines.iter().enumerate() {
        top.draw(&Text::new(
            l.clone(),
            (w as i32 / 2, 8 + i as i32 * (size as i32 + 6)),
            ("sans-serif", size).into_font().color(&BLACK).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Top,
                ),
            ),
        ))
        .map_err(err)?;
    }
    Ok(rest)
}

/// Decade ticks covering `lo..hi`, plus the 2× and 5× ticks when it spans under two decades, so
/// that every log axis has at least two labelled ticks.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let dense = hi / lo < 100.0;
    let mut t = Vec::new();
    for e in a..=b {
        let d = 10f64.powi(e);
        for m in [1.0, 2.0, 5.0] {
            let v = d * m;
            if (m == 1.0 || dense) && v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                t.push(v);
            }
        }
    }
    t
}

const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

static FONT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Loads the chart font once: `$FACEBIAS_FONT`, else DejaVu Sans from the usual system folders.
pub fn ensure_font() -> Result<PathBuf, String> {
    FONT.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = std::env::var_os("FACEBIAS_FONT").map(PathBuf::from).into_iter().collect();
        candidates.extend(FONT_CANDIDATES.iter().map(PathBuf::from));
        let path = candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
            "no chart font found: install Debian's fonts-dejavu-core (apt-get install fonts-dejavu-core) or set FACEBIAS_FONT to a .ttf file".to_string()
        })?;
        let bytes: &'static [u8] = Box::leak(std::fs::read(&path).map_err(|e| format!("cannot read font {}: {e}", path.display()))?.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{} is not a usable TrueType font", path.display()))?;
        Ok(path)
    })
    .clone()
}

pub(crate) fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("chart drawing failed: {e:?}")
}

pub(crate) type Area<'a, DB> = DrawingArea<DB, Shift>;

/// Writes a chart as `<stem>.png` and `<stem>.svg`, drawing it once per backend.
pub(crate) fn render(
    stem: &Path,
    size: (u32, u32),
    draw_png: impl FnOnce(&Area<BitMapBackend>) -> Result<(), String>,
    draw_svg: impl FnOnce(&Area<SVGBackend>) -> Result<(), String>,
) -> Result<(), String> {
    ensure_font()?;
    let mut buf = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw_png(&root)?;
        root.present().map_err(err)?;
    }
    let img = image::RgbImage::from_raw(size.0, size.1, buf).ok_or("bad bitmap buffer")?;
    let png = stem.with_extension("png");
    img.save(&png)
        .map_err(|e| format!("cannot write {}: {e}", png.display()))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw_svg(&root)?;
        root.present().map_err(err)?;
    }
    let svg_path = stem.with_extension("svg");
    std::fs::write(&svg_path, svg).map_err(|e| format!("cannot write {}: {e}", svg_path.display()))
}

/// A rotated axis label: plotters centres tick labels on the tick, so the label is preceded by as
/// much blank (figure spaces) as it is long, which puts all of it below the axis.
pub(crate) fn below_axis(label: &str) -> String {
    "\u{2007}".repeat(label.chars().count() + 1) + label
}

/// A group's tick label: [`below_axis`] when the labels are rotated, else the label itself.
pub(crate) fn tick_label(label: &str, rotate: bool) -> String {
    if rotate {
        below_axis(label)
    } else {
        label.to_string()
    }
}

/// A log y range `lo..hi` with labelled ticks at every decade (and 2×, 5× on short ranges).
pub(crate) fn log_y(
    lo: f64,
    hi: f64,
) -> plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>> {
    (lo..hi).log_scale().with_key_points(log_ticks(lo, hi))
}

/// The foot of a log axis whose smallest value is `v`: the decade below it, or half of it when `v`
/// is (about) a decade itself — a 1:N FPIR of 1/1000 — so that its points stay off the border.
pub(crate) fn axis_floor(v: f64) -> f64 {
    let d = decade_floor(v);
    if v / d < 1.2 {
        d / 2.0
    } else {
        d
    }
}

pub(crate) fn decade_floor(v: f64) -> f64 {
    10f64.powf(v.log10().floor())
}

/// Tick label on a log axis spanning little more than a decade: every key point, as `2e-1`.
pub(crate) fn log_label(v: &f64) -> String {
    if *v <= 0.0 {
        return String::new();
    }
    let e = v.log10().floor() as i32;
    let m = v / 10f64.powi(e);
    if (m - m.round()).abs() < 1e-6 {
        format!("{}e{e}", m.round())
    } else {
        String::new()
    }
}

pub(crate) fn pow10_label(v: &f64) -> String {
    let e = v.log10().round() as i32;
    if (v.log10() - e as f64).abs() < 1e-6 {
        format!("1e{e}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_labels_on_short_axes() {
        assert_eq!(log_label(&0.2), "2e-1");
        assert_eq!(log_label(&1.0), "1e0");
        assert_eq!(log_label(&0.25), "");
    }

    #[test]
    fn styles_stay_distinct_for_many_groups() {
        // LFW's race has 29 groups: all 29 (and up to 64) styles differ.
        let styles: Vec<GroupStyle> = (0..64).map(style).collect();
        for i in 0..64 {
            for j in 0..i {
                assert_ne!(styles[i], styles[j], "groups {i} and {j}");
            }
        }
        assert_eq!(style(8).color, style(0).color);
        assert_ne!(style(8).marker, style(0).marker);
    }

    #[test]
    fn every_log_axis_gets_two_labelled_ticks() {
        // One decade or less (BFW's FNMR 0.05–0.3): 1e-1, 2e-1 and 5e-2 besides the decades.
        let t = log_ticks(0.05, 0.3);
        assert_eq!(t, vec![0.05, 0.1, 0.2]);
        assert!(t.iter().all(|v| !log_label(v).is_empty()));
        // Several decades: decades only.
        assert_eq!(log_ticks(1e-6, 1.0).len(), 7);
    }

    #[test]
    fn titles_wrap_instead_of_running_off() {
        let t = "FMR and FNMR by race with 95 % subject-bootstrap intervals, τ=0.3330 (FMR 1e-3) — mobilefacenet on lfw";
        let lines = wrap(t, 60);
        assert!(lines.iter().all(|l| l.chars().count() <= 60), "{lines:?}");
        assert_eq!(lines.last().unwrap(), "mobilefacenet on lfw");
        assert_eq!(lines.join(" "), t.replace(" — ", " "));
        assert_eq!(
            abbreviate("nativeamerican,asianindian,caucasian", 12),
            "nativeameri…"
        );
    }

    #[test]
    fn pow10_labels_only_on_decades() {
        assert_eq!(pow10_label(&1e-3), "1e-3");
        assert_eq!(pow10_label(&0.002), "");
    }
}

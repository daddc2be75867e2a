//! Charts (plotters), each written as PNG and SVG: the DET curve per group and the cross-group FMR
//! heatmap, NIST style — log10 error axes, one colour per group in a fixed order.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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

/// Colour of the `i`-th group.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
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

/// The legend every chart uses: a light box at `pos`, `size`-point labels.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
    size: u32,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", size))
        .draw()
        .map_err(err)
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("chart drawing failed: {e:?}")
}

type Area<'a, DB> = DrawingArea<DB, Shift>;

/// Writes a DET chart as `<stem>.png` and `<stem>.svg`.
pub fn render_det(stem: &Path, c: &DetChart) -> Result<(), String> {
    render(stem, (960, 720), |r| draw_det(r, c), |r| draw_det(r, c))
}

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

/// Writes a chart as `<stem>.png` and `<stem>.svg`, drawing it once per backend.
fn render(
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

fn decade_floor(v: f64) -> f64 {
    10f64.powf(v.log10().floor())
}

/// Tick label on a log axis spanning little more than a decade: every key point, as `2e-1`.
fn log_label(v: &f64) -> String {
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

fn pow10_label(v: &f64) -> String {
    let e = v.log10().round() as i32;
    if (v.log10() - e as f64).abs() < 1e-6 {
        format!("1e{e}")
    } else {
        String::new()
    }
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

    #[test]
    fn log_labels_on_short_axes() {
        assert_eq!(log_label(&0.2), "2e-1");
        assert_eq!(log_label(&1.0), "1e0");
        assert_eq!(log_label(&0.25), "");
    }

    #[test]
    fn pow10_labels_only_on_decades() {
        assert_eq!(pow10_label(&1e-3), "1e-3");
        assert_eq!(pow10_label(&0.002), "");
    }
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

/// FMR of every group divided by a reference group's, at one threshold.
#[derive(Debug, Clone)]
pub struct RelativeFmr {
    /// Title.
    pub title: String,
    /// (group, colour index, FMR ratio, interval of the ratio).
    pub bars: Vec<(String, usize, f64, (f64, f64))>,
}

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
        .y_desc("FMR relative to the reference group (log10, ×)")
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
    for (x, (_, ci, v, (l, h))) in c.bars.iter().enumerate() {
        let (x, col) = (x as f64, color(*ci));
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

/// Writes a rates-vs-threshold chart.
pub fn render_rates_vs_threshold(stem: &Path, c: &RatesVsThreshold) -> Result<(), String> {
    render(
        stem,
        (960, 640),
        |r| draw_rates_vs_threshold(r, c),
        |r| draw_rates_vs_threshold(r, c),
    )
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

/// Writes a score-distribution chart.
pub fn render_score_distributions(stem: &Path, c: &ScoreDistributions) -> Result<(), String> {
    render(
        stem,
        (960, 600),
        |r| draw_score_distributions(r, c),
        |r| draw_score_distributions(r, c),
    )
}

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
    chart
        .configure_series_labels()
        // DET curves never reach the lower left (low FMR and low FNMR at once): the legend goes there.
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    Ok(())
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
    fn pow10_labels_only_on_decades() {
        assert_eq!(pow10_label(&1e-3), "1e-3");
        assert_eq!(pow10_label(&0.002), "");
    }
}

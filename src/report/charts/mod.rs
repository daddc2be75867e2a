//! Charts (plotters), each written as PNG and SVG, NIST style — log10 error axes, one colour per group
//! in a fixed order. This module has what every chart shares (palette, font, legend, axis labels, the
//! PNG + SVG writer); `curves` has the charts over all thresholds (DET, rates against τ, score
//! distributions), `groups` those comparing groups at one threshold (cross-group heatmap, dot plot
//! with intervals, FMR relative to a reference group).

mod curves;
mod groups;

pub use curves::*;
pub use groups::*;

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
pub(crate) fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
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
    fn pow10_labels_only_on_decades() {
        assert_eq!(pow10_label(&1e-3), "1e-3");
        assert_eq!(pow10_label(&0.002), "");
    }
}

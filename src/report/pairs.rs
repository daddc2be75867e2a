//! `top_impostors.csv`, `worst_genuine.csv` and the contact sheet `top_impostors.png`: the pairs behind
//! the numbers, with both images' paths, subjects and groups, so that label errors and duplicate
//! identities can be seen (see [`crate::compare::top`] for how they are chosen).

use std::path::PathBuf;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compare::top::RankedPair;

/// One row of `top_impostors.csv` / `worst_genuine.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRow {
    /// 1-based rank among all pairs of its kind (empty beyond the first 100).
    pub rank: Option<usize>,
    /// 1-based rank within its group cell (impostors) or finest group (genuine pairs).
    pub rank_in_cell: usize,
    /// Cosine similarity.
    pub score: f32,
    /// First image, as written in the manifest.
    pub path_a: String,
    /// Its subject.
    pub subject_a: String,
    /// Its group (`sex=female race=indian`).
    pub group_a: String,
    /// Second image.
    pub path_b: String,
    /// Its subject.
    pub subject_b: String,
    /// Its group.
    pub group_b: String,
}

/// What the rows need of one enrolled row: manifest path, subject, group label, image file.
pub struct RowInfo {
    /// Path as written in the manifest.
    pub rel_path: String,
    /// Subject.
    pub subject: String,
    /// Group label.
    pub group: String,
    /// The image file (for the contact sheet).
    pub file: PathBuf,
}

/// Rows of ranked pairs; `info(row)` describes an enrolled row.
pub fn pair_rows<'a>(pairs: &[RankedPair], info: impl Fn(usize) -> &'a RowInfo) -> Vec<PairRow> {
    pairs
        .iter()
        .map(|p| {
            let (a, b) = (info(p.a), info(p.b));
            PairRow {
                rank: p.rank,
                rank_in_cell: p.rank_in_cell,
                score: p.score,
                path_a: a.rel_path.clone(),
                subject_a: a.subject.clone(),
                group_a: a.group.clone(),
                path_b: b.rel_path.clone(),
                subject_b: b.subject.clone(),
                group_b: b.group.clone(),
            }
        })
        .collect()
}

/// Pairs on the contact sheet.
pub const SHEET_PAIRS: usize = 12;
const THUMB: u32 = 128;
const COLS: u32 = 3;
const CELL_W: u32 = 2 * THUMB + 24;
const CELL_H: u32 = THUMB + 52;

/// `top_impostors.png`: the first [`SHEET_PAIRS`] overall-ranked pairs, each as two thumbnails with
/// rank, score, subjects and groups underneath. `files[i]` are pair i's two image files.
pub fn contact_sheet(rows: &[PairRow], files: &[(PathBuf, PathBuf)]) -> Result<Vec<u8>, String> {
    super::charts::ensure_font()?;
    let n = rows.len().min(files.len()).min(SHEET_PAIRS) as u32;
    let (w, h) = (COLS * CELL_W, n.div_ceil(COLS).max(1) * CELL_H);
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    for i in 0..n {
        let (x0, y0) = ((i % COLS) * CELL_W + 8, (i / COLS) * CELL_H + 6);
        let (fa, fb) = &files[i as usize];
        for (j, f) in [fa, fb].into_iter().enumerate() {
            let thumb = thumbnail(f)?;
            let dx = x0 + j as u32 * (THUMB + 6) + (THUMB - thumb.width()) / 2;
            image::imageops::overlay(&mut canvas, &thumb, dx as i64, y0 as i64);
        }
    }
    let mut buf = canvas.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let err = |e| format!("contact sheet drawing failed: {e:?}");
        for (i, r) in rows.iter().take(n as usize).enumerate() {
            let (x0, y0) = (
                (i as u32 % COLS) * CELL_W + 8,
                (i as u32 / COLS) * CELL_H + THUMB + 10,
            );
            let font = ("sans-serif", 13).into_font().color(&BLACK);
            let small = ("sans-serif", 11).into_font().color(&BLACK.mix(0.75));
            let head = format!("#{} score {:.3}", r.rank.unwrap_or(i + 1), r.score);
            root.draw(&Text::new(head, (x0 as i32, y0 as i32), font))
                .map_err(err)?;
            let who = format!("{} / {}", r.subject_a, r.subject_b);
            root.draw(&Text::new(who, (x0 as i32, y0 as i32 + 16), small.clone()))
                .map_err(err)?;
            let groups = if r.group_a == r.group_b {
                r.group_a.clone()
            } else {
                format!("{} / {}", r.group_a, r.group_b)
            };
            root.draw(&Text::new(groups, (x0 as i32, y0 as i32 + 29), small))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).ok_or("bad contact sheet buffer")?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("cannot encode the contact sheet: {e}"))?;
    Ok(png)
}

/// An image scaled to fit THUMB × THUMB.
fn thumbnail(path: &std::path::Path) -> Result<image::RgbImage, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let img = crate::preprocess::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let s = THUMB as f64 / img.width().max(img.height()) as f64;
    let (tw, th) = (
        ((img.width() as f64 * s).round() as u32).max(1),
        ((img.height() as f64 * s).round() as u32).max(1),
    );
    Ok(image::imageops::resize(
        &img,
        tw,
        th,
        image::imageops::FilterType::Triangle,
    ))
}

//! Who is implicated: the 1:N grid of searcher group × candidate group at the headline T.
//!
//! Distractor datasets bring their own labels (LFW's `female|african,caucasian`, UTKFace's
//! `Others`, `unlabelled`), so a grouping can have dozens of candidate groups, most of which no
//! candidate above T comes from. The columns are the searchers' own groups and every group with a
//! candidate (at most [`MAX_COLUMNS`] of them, those with the most candidates); the rest share one
//! last column.

use plotters::style::RGBColor;

use super::{t_title, t_words, Grouping};
use crate::metrics::identification::implicated::Row as Implicated;
use crate::report::charts::{heat_scale, render_grid, ColourScale, Grid, GridCell, SCALE_WIDTH};
use crate::report::page::ChartFile;

/// Fill of the gallery-share row: what the candidates would be by chance.
const CHANCE: RGBColor = RGBColor(214, 230, 247);

/// Decades above chance at which a cell is deepest red: 10× the gallery share.
const DECADES: f64 = 1.0;

/// Columns named before the rest are lumped together.
pub const MAX_COLUMNS: usize = 24;

/// A column: its label and the candidate groups it counts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Column {
    /// Label on the axis.
    pub label: String,
    /// The candidate groups counted in it.
    pub members: Vec<String>,
}

/// The columns: the searchers' own groups first (in group order, so that each searcher's own group
/// is easy to find), then the other groups with a candidate, alphabetically with `unlabelled` last;
/// beyond [`MAX_COLUMNS`] only those with the most candidates; every group left out in one last
/// column.
pub(super) fn columns(rows: &[&Implicated], groups: &[String]) -> Vec<Column> {
    let mut all: Vec<String> = Vec::new();
    for r in rows {
        if !all.contains(&r.candidate_group) {
            all.push(r.candidate_group.clone());
        }
    }
    let count = |c: &str| -> usize {
        rows.iter()
            .filter(|r| r.candidate_group == c)
            .map(|r| r.candidates)
            .sum()
    };
    let own: Vec<String> = groups.iter().filter(|g| all.contains(g)).cloned().collect();
    let mut others: Vec<String> = all
        .iter()
        .filter(|c| !own.contains(c) && count(c) > 0)
        .cloned()
        .collect();
    if own.len() + others.len() > MAX_COLUMNS {
        let room = MAX_COLUMNS.saturating_sub(own.len() + 1);
        others.sort_by_key(|c| std::cmp::Reverse(count(c)));
        others.truncate(room);
    }
    others.sort_by_key(|c| (c == "unlabelled", c.to_lowercase()));
    let rest: Vec<String> = all
        .iter()
        .filter(|c| !own.contains(c) && !others.contains(c))
        .cloned()
        .collect();
    let mut out: Vec<Column> = own
        .into_iter()
        .chain(others)
        .map(|c| Column {
            label: c.clone(),
            members: vec![c],
        })
        .collect();
    if !rest.is_empty() {
        let label = if rest.iter().all(|c| count(c) == 0) {
            format!("{} more, none above T", rest.len())
        } else {
            format!("{} more groups", rest.len())
        };
        out.push(Column {
            label,
            members: rest,
        });
    }
    out
}

/// `12 %`, `3.4 %`, `0.04 %`, `0 %`.
fn percent(share: f64) -> String {
    match share {
        0.0 => "0 %".into(),
        s if s >= 0.095 => format!("{:.0} %", 100.0 * s),
        s if s >= 0.001 => format!("{:.1} %", 100.0 * s),
        s => format!("{:.2} %", 100.0 * s),
    }
}

/// The cells of searcher group `s` (`total` candidates) over `cols`: share and count, coloured by the
/// share over the column's gallery share; blank where no candidate; `–` when `s` has none at all.
fn searcher_cells(rows: &[&Implicated], s: &str, total: usize, cols: &[Column]) -> Vec<GridCell> {
    cols.iter()
        .map(|col| {
            let mine = || {
                rows.iter().filter(move |r| {
                    r.search_group == s && col.members.contains(&r.candidate_group)
                })
            };
            let k: usize = mine().map(|r| r.candidates).sum();
            let chance: f64 = mine().map(|r| r.gallery_share).sum();
            let share = k as f64 / total.max(1) as f64;
            GridCell {
                fill: if total == 0 {
                    RGBColor(255, 255, 255)
                } else {
                    heat_scale(share, chance, DECADES)
                },
                value: match (total, k) {
                    (0, _) => Some("–".into()),
                    (_, 0) => None,
                    _ => Some(percent(share)),
                },
                detail: (k > 0).then(|| k.to_string()),
            }
        })
        .collect()
}

/// `implicated_<grouping>`: searcher group (rows) × candidate group (columns), each cell the share
/// of the row's candidates above the headline T in that column (with the count), coloured by that
/// share over the column's gallery share; the bottom row is the gallery share. Not drawn when no
/// candidate scored ≥ T.
pub(super) fn implicated(g: &Grouping) -> Result<Option<ChartFile>, String> {
    let Some(t) = g.t else {
        return Ok(None);
    };
    let rows: Vec<&Implicated> =
        g.a.implicated
            .iter()
            .filter(|r| {
                r.attribute == g.name
                    && r.mode == "above_threshold"
                    && r.target_fpir == Some(t.target)
                    && r.gallery_size == g.n
            })
            .collect();
    let total: usize = rows.iter().map(|r| r.candidates).sum();
    if total == 0 {
        return Ok(None);
    }
    let cols = columns(&rows, &g.groups);
    let mut labels = Vec::new();
    let mut cells = Vec::new();
    for s in g
        .groups
        .iter()
        .filter(|s| rows.iter().any(|r| &r.search_group == *s))
    {
        let n: usize = rows
            .iter()
            .filter(|r| &r.search_group == s)
            .map(|r| r.candidates)
            .sum();
        labels.push(format!("{s} ({n})"));
        cells.push(searcher_cells(&rows, s, n, &cols));
    }
    let gallery_share = |col: &Column| -> f64 {
        col.members
            .iter()
            .filter_map(|c| rows.iter().find(|r| &r.candidate_group == c))
            .map(|r| r.gallery_share)
            .sum()
    };
    labels.push("gallery share".into());
    cells.push(
        cols.iter()
            .map(|c| GridCell {
                fill: CHANCE,
                value: Some(percent(gallery_share(c))),
                detail: None,
            })
            .collect(),
    );
    let lumped = cols
        .last()
        .filter(|c| c.members.len() > 1)
        .map_or(String::new(), |c| {
            format!(
                " The last column lumps the other {} candidate groups (implicated.csv lists each).",
                c.members.len()
            )
        });
    let grid = Grid {
        title: format!(
            "Who is implicated, by {}: the {total} candidates above {} returned to non-mated searchers, N = {}",
            g.name,
            t_title(&t),
            g.n
        ),
        rows: labels,
        cols: cols.into_iter().map(|c| c.label).collect(),
        cells,
        x_desc: "candidate's group (as its dataset labels it)".into(),
        y_desc: "searcher's group (its candidates above T)".into(),
        scale: scale(),
    };
    let (stem, path) = g.path("implicated");
    render_grid(&path, &grid, grid_size(&grid))?;
    Ok(g.file(stem, format!(
        "Who is implicated by {} at {} (the threshold set for that FPIR at N = {}): every candidate among the top {} scoring ≥ T of a non-mated search — an innocent person — by the searcher's group (rows, with its number of such candidates) and the candidate's group (columns; labels as each dataset writes them, `unlabelled` where one is missing). A cell is the share of its row's candidates in that column, the count below (blank: none); its colour is that share over the column's share of the gallery (bottom row, what chance would give): grey at or below chance, red above, deepest at 10× or more; –: that searcher group had no candidate above T.{lumped}",
        g.name,
        t_words(&t),
        g.n,
        g.a.l
    )))
}

/// The colour scale: the share over the gallery share, grey up to 1×, deepest red at 10×.
fn scale() -> ColourScale {
    ColourScale {
        heading: ["share ÷ gallery share".into(), "(chance = 1×)".into()],
        reference: 1.0,
        decades: DECADES,
        ramp: ["≥ 10×".into(), "3.2×".into(), "> 1×".into()],
        swatches: vec![
            (Some(heat_scale(1.0, 1.0, DECADES)), "≤ 1× (chance)".into()),
            (Some(CHANCE), "gallery share".into()),
            (None, "none above T".into()),
        ],
    }
}

/// Canvas of a grid: cells of 58–130 × 46–90 px, the label bands, the title and the scale panel.
fn grid_size(grid: &Grid) -> (u32, u32) {
    let (k, m) = (grid.rows.len() as u32, grid.cols.len() as u32);
    let long = |v: &[String]| {
        v.iter()
            .map(|l| l.chars().count().min(22))
            .max()
            .unwrap_or(4) as u32
    };
    let (cell_w, cell_h) = (
        (1000 / m.max(1)).clamp(58, 130),
        (480 / k.max(1)).clamp(46, 90),
    );
    let width = 60 + 8 * long(&grid.rows) + m * cell_w + SCALE_WIDTH;
    let height = 120 + 8 * long(&grid.cols) + k * cell_h;
    (width.max(640), height.max(520))
}

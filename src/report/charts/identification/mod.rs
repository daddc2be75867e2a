//! The 1:N charts (PNG + SVG, the look of the 1:1 set), one set per grouping (every attribute and
//! intersection; not `all`), file stems `<kind>_<grouping>` as in 1:1:
//!
//! - `fpir_vs_n`: FPIR at the headline T against gallery size N, measured and predicted from the
//!   1:1 FMR (`curves`);
//! - `det_1n`: rank-1 FNIR against FPIR as T moves, with the global thresholds marked;
//! - `cmc`: the rank-k identification rate against k;
//! - `implicated`: who the candidates above the headline T are, by searcher and candidate group
//!   (`implicated`);
//! - `dots_1n`: FPIR and rank-1 FNIR at the headline T with 95 % intervals (`dots`).
//!
//! The headline T is [`Analysis::headline_threshold`]; the charts at one threshold are left out
//! without it, and a chart with nothing to draw is not written (nor listed).

mod curves;
mod dots;
mod implicated;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::metrics::identification::analysis::Analysis;
use crate::metrics::identification::table::{Metric, Row};
use crate::metrics::identification::FpirThreshold;
use crate::report::page::ChartFile;
use crate::report::render::sanitize;

/// Renders every 1:N chart into `dir` and lists those written, grouping by grouping.
pub fn render(dir: &Path, a: &Analysis) -> Result<Vec<ChartFile>, String> {
    let Some(&n) = a.sizes.last() else {
        return Ok(Vec::new());
    };
    let t = a.headline_threshold();
    let mut files = Vec::new();
    for name in a.groupings() {
        let groups = groups_of(a, &name);
        let g = Grouping {
            dir,
            a,
            stem: sanitize(&name),
            name,
            groups,
            n,
            t,
        };
        let charts: [ChartFn; 5] = [
            curves::fpir_vs_n,
            curves::det,
            curves::cmc,
            implicated::implicated,
            dots::dots,
        ];
        for chart in charts {
            files.extend(chart(&g)?);
        }
    }
    Ok(files)
}

/// Draws one chart of a grouping: the file written, `None` when there is nothing to draw.
type ChartFn = fn(&Grouping) -> Result<Option<ChartFile>, String>;

/// The groups of grouping `name` in their fixed order (that of its rows): group `i` has style `i`.
fn groups_of(a: &Analysis, name: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in a.rows.iter().filter(|r| r.attribute == name) {
        if !v.contains(&r.group) {
            v.push(r.group.clone());
        }
    }
    v
}

/// One grouping's charts: where they go and what they draw from.
struct Grouping<'a> {
    dir: &'a Path,
    a: &'a Analysis,
    /// Grouping name (`sex×race`).
    name: String,
    /// Its file-name form (`sex_x_race`).
    stem: String,
    /// Its groups, in order.
    groups: Vec<String>,
    /// The largest gallery size.
    n: usize,
    /// The headline threshold.
    t: Option<FpirThreshold>,
}

impl Grouping<'_> {
    /// The chart's file stem (`cmc_race`) and its path without extension.
    fn path(&self, kind: &str) -> (String, PathBuf) {
        let stem = format!("{kind}_{}", self.stem);
        let path = self.dir.join(&stem);
        (stem, path)
    }

    /// The listing of chart `stem`.
    fn file(&self, stem: String, caption: String) -> Option<ChartFile> {
        Some(ChartFile {
            stem,
            grouping: self.name.clone(),
            caption,
        })
    }

    /// Group `group`'s row of one rate at the largest gallery (`target` `None`: investigative).
    fn row(&self, metric: Metric, rank: usize, target: Option<f64>, group: &str) -> Option<&Row> {
        self.a
            .rows_of(&self.name, metric, rank, target, self.n)
            .into_iter()
            .find(|r| r.group == group)
    }

    /// Whether group `group` has too few searches for that rate to enter the summaries (drawn
    /// faded).
    fn insufficient(&self, metric: Metric, rank: usize, target: Option<f64>, group: &str) -> bool {
        self.row(metric, rank, target, group)
            .is_some_and(|r| r.flag == "insufficient")
    }

    /// Whether group `group`'s FPIR at the headline T is too thin to rank (its lines are faded).
    fn fpir_faded(&self, group: &str) -> bool {
        self.t
            .is_some_and(|t| self.insufficient(Metric::Fpir, 1, Some(t.target), group))
    }
}

/// `T = 0.5205 (FPIR 0.01)`.
fn t_words(t: &FpirThreshold) -> String {
    format!("T = {:.4} (FPIR {})", t.t, t.target)
}

/// [`t_words`] for a title: no line break inside `T = 0.5205`.
fn t_title(t: &FpirThreshold) -> String {
    t_words(t).replacen(" = ", "\u{a0}=\u{a0}", 1)
}

//! The 1:N dot plot of one grouping: FPIR and rank-1 FNIR at the headline T per group, with 95 %
//! intervals.

use super::{t_title, t_words, Grouping};
use crate::metrics::identification::table::{Metric, Row};
use crate::report::charts::{render_dot_plot, Dot, DotPlot};
use crate::report::page::ChartFile;

/// A rate's estimate (rate, 95 % interval), NaN where missing.
fn estimate(r: Option<&Row>) -> (f64, f64, f64) {
    let nan = f64::NAN;
    r.map_or((nan, nan, nan), |r| {
        (
            r.rate.unwrap_or(nan),
            r.ci_low.unwrap_or(nan),
            r.ci_high.unwrap_or(nan),
        )
    })
}

/// `dots_1n_<grouping>`: per group, FPIR (top) and rank-1 FNIR (bottom) at the headline T and the
/// largest gallery, with 95 % subject-bootstrap intervals; a rate flagged `insufficient` is faded.
pub(super) fn dots(g: &Grouping) -> Result<Option<ChartFile>, String> {
    let Some(t) = g.t else {
        return Ok(None);
    };
    let target = Some(t.target);
    let dots: Vec<Dot> = g
        .groups
        .iter()
        .enumerate()
        .filter_map(|(i, group)| {
            let fp = g.row(Metric::Fpir, 1, target, group);
            let fnr = g.row(Metric::Fnir, 1, target, group);
            let searched = |r: Option<&Row>| r.is_some_and(|r| r.searches > 0);
            (searched(fp) || searched(fnr)).then(|| Dot {
                group: group.clone(),
                colour: i,
                rates: [estimate(fp), estimate(fnr)],
                faded: [
                    g.insufficient(Metric::Fpir, 1, target, group),
                    g.insufficient(Metric::Fnir, 1, target, group),
                ],
            })
        })
        .collect();
    if dots.is_empty() {
        return Ok(None);
    }
    let plot = DotPlot {
        title: format!(
            "FPIR and rank-1 FNIR by {} with 95 % subject-bootstrap intervals, {}, N = {}",
            g.name,
            t_title(&t),
            g.n
        ),
        rates: ["FPIR".into(), "FNIR at rank 1".into()],
        facets: vec![(String::new(), dots)],
    };
    let (stem, path) = g.path("dots_1n");
    render_dot_plot(&path, &plot)?;
    Ok(g.file(stem, format!(
        "Per-group FPIR (top) and rank-1 FNIR (bottom) by {} at {} (the threshold set for that FPIR at N = {n}) and N = {n}, with 95 % searching-subject bootstrap intervals (log axes; a 0 marks a rate of zero, and an interval reaching 0 is cut at the foot of the axis). Faded: too few searches for the summaries (FPIR needs ⌈3/{}⌉ non-mated searches, FNIR 100 mated).",
        g.name,
        t_words(&t),
        t.target,
        n = g.n,
    )))
}

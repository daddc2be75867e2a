//! The 1:N report's plain-words findings and Markdown tables (`summary.md`; the page reuses them).
//!
//! Every sentence carries the counts it rests on; a group without enough searches is named as such
//! and never ranked; a zero-error group is written as "0 of n", never as a rate of 0 in a ratio.

use super::Protocol;
use crate::metrics::identification::analysis::Analysis;
use crate::metrics::identification::table::{Metric, Row, SummaryRow};
use crate::metrics::identification::FpirThreshold;
use crate::metrics::Bound;
use crate::report::page::{cell, provenance, Context};

/// What the command prints at the end and the pages open with.
#[derive(Debug, Clone, PartialEq)]
pub struct Headline {
    /// The findings, one sentence each.
    pub findings: Vec<String>,
    /// The console text.
    pub text: String,
}

/// `0.0123 (12/975)`; `no searches` without any.
pub fn rate_cell(r: &Row) -> String {
    match r.rate {
        Some(v) => format!("{v:.4} ({}/{})", r.errors, r.searches),
        None => "no searches".into(),
    }
}

/// `[0.0081, 0.0170]`, empty without an interval.
pub fn ci_cell(lo: Option<f64>, hi: Option<f64>) -> String {
    match (lo, hi) {
        (Some(l), Some(h)) => format!("[{l:.4}, {h:.4}]"),
        _ => String::new(),
    }
}

fn summary_of<'a>(
    a: &'a Analysis,
    attr: &str,
    metric: Metric,
    rank: usize,
    target: Option<f64>,
    n: usize,
) -> Option<&'a SummaryRow> {
    a.summaries.iter().find(|s| {
        s.attribute == attr
            && s.metric == metric
            && s.rank == rank
            && s.target_fpir == target
            && s.gallery_size == n
    })
}

/// "group 0.0520 (26/500, 95 % CI [0.03, 0.08])".
fn group_phrase(r: &Row) -> String {
    let ci = ci_cell(r.ci_low, r.ci_high);
    if ci.is_empty() {
        format!("{} {}", r.group, rate_cell(r))
    } else {
        format!("{} {} (95 % CI {ci})", r.group, rate_cell(r))
    }
}

/// Highest and lowest eligible groups of a rate, and the summary sentence.
fn spread_sentence(rows: &[&Row], s: Option<&SummaryRow>, what: &str) -> Option<String> {
    let eligible: Vec<&&Row> = rows
        .iter()
        .filter(|r| r.rate.is_some() && r.flag != "insufficient")
        .collect();
    let few: Vec<String> = rows
        .iter()
        .filter(|r| r.flag == "insufficient")
        .map(|r| format!("{} ({} searches)", r.group, r.searches))
        .collect();
    let hi = eligible
        .iter()
        .max_by(|a, b| a.rate.unwrap_or(0.0).total_cmp(&b.rate.unwrap_or(0.0)))?;
    let lo = eligible
        .iter()
        .min_by(|a, b| a.rate.unwrap_or(0.0).total_cmp(&b.rate.unwrap_or(0.0)))?;
    let mut t = format!(
        "{what}: highest {}, lowest {}",
        group_phrase(hi),
        group_phrase(lo)
    );
    if let Some(s) = s {
        match (s.bound, s.max_geomean) {
            (Bound::Undefined, _) | (_, None) => {
                t += &format!("; Max/GeoMean undefined ({})", s.note)
            }
            (b, Some(v)) => {
                t += &format!(
                    "; Max/GeoMean {}{v:.2}{} over {} groups",
                    if b == Bound::LowerBound { "≥ " } else { "" },
                    match (s.max_geomean_ci_low, s.max_geomean_ci_high) {
                        (Some(l), Some(h)) => format!(" [{l:.2}, {h:.2}]"),
                        _ => String::new(),
                    },
                    s.groups
                );
                if let Some(g) = s.gini {
                    t += &format!(", Gini {g:.3}");
                }
            }
        }
    }
    if !few.is_empty() {
        t += &format!("; too few searches to rank: {}", few.join(", "));
    }
    Some(t + ".")
}

/// The headline findings.
pub fn headline(a: &Analysis, p: &Protocol) -> Headline {
    let n = *a.sizes.last().expect("at least one gallery size");
    let mut f = Vec::new();
    let dnames: Vec<&str> = p
        .distractors
        .sources
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let mated = p.searched.searches.iter().filter(|x| x.mated).count();
    f.push(format!(
        "Protocol: {} of {} subjects enrolled, one image each; {mated} mated and {} non-mated searches against a gallery of {n} entries ({} enrolled mates{}); candidate lists of {}.",
        p.split.subjects[0],
        p.split.subjects[0] + p.split.subjects[1],
        p.searched.searches.len() - mated,
        p.searched.mates,
        if dnames.is_empty() {
            String::new()
        } else {
            format!(
                " + {} distractors from {}; {} duplicate files dropped",
                n - p.searched.mates,
                dnames.join(", "),
                p.distractors.dropped.len()
            )
        },
        a.l
    ));
    if let Some(t) = a.headline_threshold() {
        f.push(format!(
            "Identification mode: T = {:.4} gives FPIR {} ({} of {} calibration searches return a candidate), calibrated {}.",
            t.t, t.target, t.false_positives, t.searches, a.calibration
        ));
        for g in a.groupings() {
            let fp = a.rows_of(&g, Metric::Fpir, 1, Some(t.target), n);
            let s = summary_of(a, &g, Metric::Fpir, 1, Some(t.target), n);
            if let Some(x) = spread_sentence(&fp, s, &format!("FPIR by {g} at T")) {
                f.push(x);
            }
            let fn1 = a.rows_of(&g, Metric::Fnir, 1, Some(t.target), n);
            let s = summary_of(a, &g, Metric::Fnir, 1, Some(t.target), n);
            if let Some(x) = spread_sentence(&fn1, s, &format!("FNIR (rank 1) by {g} at T")) {
                f.push(x);
            }
        }
        f.extend(growth_sentences(a, &t));
        f.extend(implicated_sentence(a, &t));
    }
    for g in a.groupings().iter().take(1) {
        let inv = a.rows_of(g, Metric::Fnir, 1, None, n);
        let s = summary_of(a, g, Metric::Fnir, 1, None, n);
        if let Some(x) = spread_sentence(
            &inv,
            s,
            &format!("Investigative mode (no threshold), rank-1 FNIR by {g}"),
        ) {
            f.push(x);
        }
    }
    f.push(overlap_sentence(p));
    if let Some(m) = &p.args.gallery_mix {
        let parts: Vec<String> = super::composition(p, a, m)
            .iter()
            .filter(|x| x["distractors"].as_u64().unwrap_or(0) > 0)
            .map(|x| {
                let shares: Vec<String> = x["shares"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(l, v)| format!("{l} {:.0} %", 100.0 * v.as_f64().unwrap_or(0.0)))
                    .collect();
                format!("N = {}: {}", x["gallery_size"], shares.join(", "))
            })
            .collect();
        f.push(format!(
            "Gallery mix {m} (distractors re-ordered so every nested gallery approaches those shares while the pool lasts); the distractors' make-up achieved — {}.",
            parts.join("; ")
        ));
    }
    let text = f
        .iter()
        .map(|x| format!("- {x}"))
        .collect::<Vec<_>>()
        .join("\n");
    Headline { findings: f, text }
}

/// What the identity-overlap screen found and did.
fn overlap_sentence(p: &Protocol) -> String {
    let o = p.overlap;
    let Some(t_o) = o.t_o else {
        return "Identity overlap was not screened (no enrolled mates or no non-mated searches)."
            .into();
    };
    let dropped: std::collections::BTreeSet<(&str, &str)> = o
        .pairs
        .iter()
        .filter(|x| x.action == "dropped")
        .map(|x| (x.other_dataset.as_str(), x.other_subject.as_str()))
        .collect();
    let inside = o.pairs.iter().filter(|x| x.action == "kept").count();
    let mut t = format!(
        "Identity overlap: {} (searched subject, other identity) pairs look like the same person ({} or more of the subject's images match the identity at T_o = {t_o:.4}, the 1-in-1000 impostor level against the enrolled mates; overlap.csv lists them)",
        o.pairs.len(),
        crate::metrics::identification::overlap::MIN_SEARCHES
    );
    if p.args.keep_overlap {
        t += "; --keep-overlap kept them all in the gallery, so some \"false\" candidates above may be the searcher themself";
    } else if !dropped.is_empty() {
        t += &format!(
            "; the {} distractor identities among them ({} gallery images) were removed from the gallery before the searches counted here",
            dropped.len(),
            o.dropped_entries
        );
    }
    if inside > 0 {
        t += &format!("; {inside} pairs lie inside the searched dataset or were kept, and their searches count as the labels say");
    }
    t + ". The screen catches repeated matches only: a person in two datasets whose photos match once is still counted as a false candidate, and identical files were dropped before it."
}

/// How FPIR at T grows with the gallery for the highest and lowest group of the finest grouping.
fn growth_sentences(a: &Analysis, t: &FpirThreshold) -> Vec<String> {
    let Some(g) = a.groupings().last().cloned() else {
        return Vec::new();
    };
    if a.sizes.len() < 2 {
        return Vec::new();
    }
    let (first, last) = (a.sizes[0], *a.sizes.last().unwrap());
    let at = |grp: &str, n: usize| {
        a.growth.iter().find(|r| {
            r.attribute == g && r.group == grp && r.gallery_size == n && r.target_fpir == t.target
        })
    };
    let mut end: Vec<_> = a
        .growth
        .iter()
        .filter(|r| r.attribute == g && r.gallery_size == last && r.target_fpir == t.target)
        .filter(|r| r.fpir.is_some())
        .collect();
    end.sort_by(|x, y| {
        y.fpir
            .unwrap()
            .total_cmp(&x.fpir.unwrap())
            .then(x.group.cmp(&y.group))
    });
    let mut out = Vec::new();
    for r in [end.first(), end.last()].into_iter().flatten() {
        let Some(s) = at(&r.group, first) else {
            continue;
        };
        out.push(format!(
            "Gallery size ({g}, T fixed): {}'s FPIR goes from {:.4} ({}/{}) at N = {first} to {:.4} ({}/{}) at N = {last}; its 1:1 FMR at T is {} ({} of {} comparisons{}), which predicts {} and {}.",
            r.group,
            s.fpir.unwrap_or(f64::NAN), s.false_positives, s.searches,
            r.fpir.unwrap_or(f64::NAN), r.false_positives, r.searches,
            r.fmr.map_or("–".into(), |v| format!("{v:.2e}")),
            r.false_matches, r.comparisons,
            if r.fmr_saturated { ", a lower bound" } else { "" },
            s.predicted_fpir.map_or("–".into(), |v| format!("{v:.4}")),
            r.predicted_fpir.map_or("–".into(), |v| format!("{v:.4}")),
        ));
        if end.len() < 2 {
            break;
        }
    }
    out
}

/// Which candidate group is over-represented among the candidates returned above T.
fn implicated_sentence(a: &Analysis, t: &FpirThreshold) -> Option<String> {
    let g = a.groupings().last().cloned()?;
    let rows: Vec<_> = a
        .implicated
        .iter()
        .filter(|r| {
            r.attribute == g && r.mode == "above_threshold" && r.target_fpir == Some(t.target)
        })
        .collect();
    let total: usize = rows.iter().map(|r| r.candidates).sum();
    if total == 0 {
        return Some(format!(
            "Who is implicated ({g}): no non-mated search returned a candidate at or above T."
        ));
    }
    let mut by_cand: Vec<(String, usize, f64)> = Vec::new();
    for r in &rows {
        match by_cand.iter_mut().find(|x| x.0 == r.candidate_group) {
            Some(x) => x.1 += r.candidates,
            None => by_cand.push((r.candidate_group.clone(), r.candidates, r.gallery_share)),
        }
    }
    by_cand.sort_by(|x, y| {
        (y.1 as f64 / total as f64 / y.2.max(1e-12))
            .total_cmp(&(x.1 as f64 / total as f64 / x.2.max(1e-12)))
            .then(x.0.cmp(&y.0))
    });
    let (name, k, share) = &by_cand[0];
    let same: usize = rows
        .iter()
        .filter(|r| r.search_group == r.candidate_group)
        .map(|r| r.candidates)
        .sum();
    Some(format!(
        "Who is implicated ({g}, T): of the {total} innocent candidates returned to non-mated searchers, {k} ({:.1} %) are {name}, who make up {:.1} % of the gallery; {same} ({:.1} %) share the searcher's own group.",
        100.0 * *k as f64 / total as f64,
        100.0 * share,
        100.0 * same as f64 / total as f64
    ))
}

/// The per-group table at one threshold: FPIR and rank-1 FNIR with intervals.
fn rates_table(a: &Analysis, t: &FpirThreshold, n: usize) -> String {
    let mut md = "| grouping | group | FPIR | 95 % CI | FNIR rank 1 | 95 % CI | flag |\n|---|---|---|---|---|---|---|\n".to_string();
    for r in a.rows.iter().filter(|r| {
        r.metric == Metric::Fpir && r.target_fpir == Some(t.target) && r.gallery_size == n
    }) {
        let f = a
            .rows_of(&r.attribute, Metric::Fnir, 1, Some(t.target), n)
            .into_iter()
            .find(|x| x.group == r.group);
        md += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&r.attribute),
            cell(&r.group),
            rate_cell(r),
            ci_cell(r.ci_low, r.ci_high),
            f.map(rate_cell).unwrap_or_default(),
            f.map(|x| ci_cell(x.ci_low, x.ci_high)).unwrap_or_default(),
            r.flag
        );
    }
    md
}

/// The summary table (Max/GeoMean, Gini) at the largest gallery.
pub fn summary_table(a: &Analysis, n: usize) -> String {
    let mut md = "| grouping | rate | T for FPIR | Max/GeoMean | 95 % CI | Gini | 95 % CI | highest | groups | note |\n|---|---|---|---|---|---|---|---|---|---|\n".to_string();
    for s in a.summaries.iter().filter(|s| s.gallery_size == n) {
        let rate = format!("{} rank {}", s.metric.as_str().to_uppercase(), s.rank);
        md += &format!(
            "| {} | {rate} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&s.attribute),
            s.target_fpir
                .map_or("none (investigative)".into(), |t| t.to_string()),
            match (s.bound, s.max_geomean) {
                (Bound::LowerBound, Some(v)) => format!("≥ {v:.2}"),
                (_, Some(v)) => format!("{v:.2}"),
                _ => "undefined".into(),
            },
            match (s.max_geomean_ci_low, s.max_geomean_ci_high) {
                (Some(l), Some(h)) => format!("[{l:.2}, {h:.2}]"),
                _ => String::new(),
            },
            s.gini.map_or("–".into(), |g| format!("{g:.3}")),
            match (s.gini_ci_low, s.gini_ci_high) {
                (Some(l), Some(h)) => format!("[{l:.3}, {h:.3}]"),
                _ => String::new(),
            },
            cell(&s.highest_group),
            s.groups,
            cell(&s.note)
        );
    }
    md
}

/// FPIR against gallery size at T for the finest grouping, measured and predicted.
pub fn growth_table(a: &Analysis, t: &FpirThreshold) -> String {
    let Some(g) = a.groupings().last().cloned() else {
        return String::new();
    };
    let mut md = format!(
        "| group | {} |\n|---|{}\n",
        a.sizes
            .iter()
            .map(|n| format!("N = {n}"))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(a.sizes.len())
    );
    let mut groups: Vec<&str> = Vec::new();
    for r in a.growth.iter().filter(|r| r.attribute == g) {
        if !groups.contains(&r.group.as_str()) {
            groups.push(&r.group);
        }
    }
    for grp in groups {
        let cells: Vec<String> = a
            .sizes
            .iter()
            .map(|&n| {
                a.growth
                    .iter()
                    .find(|r| {
                        r.attribute == g
                            && r.group == grp
                            && r.gallery_size == n
                            && r.target_fpir == t.target
                    })
                    .map_or(String::new(), |r| {
                        format!(
                            "{} ({}/{}; predicted {})",
                            r.fpir.map_or("–".into(), |v| format!("{v:.4}")),
                            r.false_positives,
                            r.searches,
                            r.predicted_fpir.map_or("–".into(), |v| format!("{v:.4}"))
                        )
                    })
            })
            .collect();
        md += &format!("| {} | {} |\n", cell(grp), cells.join(" | "));
    }
    md
}

/// The threshold table.
pub fn thresholds_table(a: &Analysis) -> String {
    let mut md =
        "| target FPIR | T | false positives | calibration searches |\n|---|---|---|---|\n"
            .to_string();
    for t in &a.thresholds {
        md += &format!(
            "| {} | {:.5} | {} | {} |\n",
            t.target, t.t, t.false_positives, t.searches
        );
    }
    md
}

/// `summary.md`.
pub fn summary_md(a: &Analysis, ctx: &Context, h: &Headline) -> String {
    let n = *a.sizes.last().expect("a gallery size");
    let mut md = format!(
        "# 1:N identification: {} on {}\n\n{}\n\n## Findings\n\n{}\n\n## Global thresholds\n\n{}\n",
        ctx.model,
        ctx.dataset,
        provenance(ctx),
        h.text,
        thresholds_table(a)
    );
    for t in &a.thresholds {
        md += &format!(
            "\n## Per-group rates at T = {:.5} (FPIR {}), N = {n}\n\n{}",
            t.t,
            t.target,
            rates_table(a, t, n)
        );
    }
    md += &format!(
        "\n## Differentials at N = {n}\n\nMax/GeoMean of the groups' rates (NIST's MXOG; a zero-error group enters as 3/n, making the value a lower bound) and the Gini coefficient (n/(n−1) corrected) of the observed rates; intervals from the searching-subject bootstrap.\n\n{}",
        summary_table(a, n)
    );
    if let Some(t) = a.headline_threshold() {
        md += &format!(
            "\n## FPIR against gallery size at T = {:.5} (FPIR {})\n\nMeasured, with the prediction s · (1 − (1 − FMR)^N) from each group's 1:1 FMR at T.\n\n{}",
            t.t,
            t.target,
            growth_table(a, &t)
        );
    }
    md += &format!("\n## Conventions\n\n{}.\n", super::CONVENTIONS);
    md
}

//! Who gets implicated: the people a non-mated search returns as candidates — by definition
//! innocent, since the searcher is not enrolled — by the searcher's group and the candidate's.
//!
//! Two views, both at the largest gallery:
//! - `above_threshold`, per global threshold: every candidate among the top L scoring ≥ T of a
//!   non-mated search (the candidates identification mode returns);
//! - `candidate_list`: every one of the L candidates of every non-mated search (investigative mode:
//!   the lists a human reviewer is shown).
//!
//! A candidate's group is its label for the grouping's attributes: a searched subject's own, a
//! distractor's as its dataset writes it (see [`crate::manifest::gallery`]), `unlabelled` when one is
//! missing. `gallery_share` is that group's share of the gallery: what the share of candidates would
//! be if the model picked candidates without regard to who they are.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{FpirThreshold, Search};
use crate::metrics::groups::Grouping;

/// One row of `implicated.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Grouping.
    pub attribute: String,
    /// Group of the (non-mated) searcher.
    pub search_group: String,
    /// Group of the candidate returned.
    pub candidate_group: String,
    /// `above_threshold` or `candidate_list`.
    pub mode: &'static str,
    /// The target FPIR of T (empty for `candidate_list`).
    pub target_fpir: Option<f64>,
    /// T (empty for `candidate_list`).
    pub threshold: Option<f32>,
    /// Gallery size N.
    pub gallery_size: usize,
    /// Candidates of this search group falling in this candidate group.
    pub candidates: usize,
    /// Of all this search group's candidates in this mode, the share in this candidate group
    /// (empty when the search group has none).
    pub share: Option<f64>,
    /// The candidate group's share of the gallery's entries.
    pub gallery_share: f64,
}

/// The candidate-group label of every gallery entry under a grouping over attribute columns
/// `attrs` of `entry_values` (one value per attribute, empty when unlabelled).
pub fn entry_labels(entry_values: &[Vec<String>], attrs: &[usize]) -> Vec<String> {
    entry_values
        .iter()
        .map(|v| {
            let vals: Vec<&str> = attrs.iter().map(|&a| v[a].as_str()).collect();
            if vals.iter().any(|x| x.is_empty()) {
                "unlabelled".to_string()
            } else {
                vals.join("|")
            }
        })
        .collect()
}

/// `implicated.csv` rows for grouping `g` whose entries are labelled `labels` (index = gallery
/// entry), at gallery size index `s` (size `n`), list length `l`.
pub fn rows(
    searches: &[Search],
    g: &Grouping,
    labels: &[String],
    s: usize,
    n: usize,
    l: usize,
    thresholds: &[FpirThreshold],
) -> Vec<Row> {
    let mut gallery: BTreeMap<&str, usize> = BTreeMap::new();
    for lab in &labels[..n] {
        *gallery.entry(lab.as_str()).or_default() += 1;
    }
    let modes = std::iter::once(None).chain(thresholds.iter().map(Some));
    let mut out = Vec::new();
    for t in modes {
        // [search group] → candidate group → count
        let mut counts: Vec<BTreeMap<&str, usize>> = vec![BTreeMap::new(); g.groups.len()];
        for x in searches.iter().filter(|x| !x.mated) {
            let Some(Some(gi)) = g.group_of_combo.get(x.combo as usize) else {
                continue;
            };
            let list = x
                .candidates
                .get(s)
                .map_or(&[][..], |v| &v[..v.len().min(l)]);
            for c in list.iter().filter(|c| t.is_none_or(|t| c.score >= t.t)) {
                *counts[*gi]
                    .entry(labels[c.entry as usize].as_str())
                    .or_default() += 1;
            }
        }
        for (gi, search_group) in g.groups.iter().enumerate() {
            let total: usize = counts[gi].values().sum();
            for (&cand, &in_gallery) in &gallery {
                let k = counts[gi].get(cand).copied().unwrap_or(0);
                out.push(Row {
                    attribute: g.name.clone(),
                    search_group: search_group.clone(),
                    candidate_group: cand.to_string(),
                    mode: if t.is_some() {
                        "above_threshold"
                    } else {
                        "candidate_list"
                    },
                    target_fpir: t.map(|t| t.target),
                    threshold: t.map(|t| t.t),
                    gallery_size: n,
                    candidates: k,
                    share: (total > 0).then(|| k as f64 / total as f64),
                    gallery_share: in_gallery as f64 / n as f64,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::search::Candidate;

    #[test]
    fn implicated_by_hand() {
        // Gallery: entries 0, 1 labelled a, entry 2 b, entry 3 unlabelled.
        let values = vec![
            vec!["a".to_string()],
            vec!["a".into()],
            vec!["b".into()],
            vec!["".into()],
        ];
        let labels = entry_labels(&values, &[0]);
        assert_eq!(labels, vec!["a", "a", "b", "unlabelled"]);
        let g = Grouping {
            name: "race".into(),
            groups: vec!["a".into(), "b".into()],
            group_of_combo: vec![Some(0), Some(1)],
        };
        let c = |entry, score| Candidate { entry, score };
        let search = |combo, list| Search {
            mated: false,
            combo,
            subject: 0,
            mate: None,
            failed: false,
            candidates: vec![list],
        };
        // Group a's searcher returns b (0.8) and a (0.4); group b's returns unlabelled (0.6), a (0.5)
        // and, beyond L = 2, b (0.45). A mated search is never counted.
        let mut s = vec![
            search(0, vec![c(2, 0.8), c(0, 0.4)]),
            search(1, vec![c(3, 0.6), c(1, 0.5), c(2, 0.45)]),
        ];
        s.push(Search {
            mated: true,
            mate: Some(0),
            ..search(0, vec![c(0, 0.99)])
        });
        let t = FpirThreshold {
            target: 0.5,
            t: 0.55,
            false_positives: 2,
            searches: 2,
        };
        let r = rows(&s, &g, &labels, 0, 4, 2, &[t]);
        let get = |mode: &str, sg: &str, cg: &str| {
            r.iter()
                .find(|x| x.mode == mode && x.search_group == sg && x.candidate_group == cg)
                .map(|x| (x.candidates, x.share))
                .unwrap()
        };
        assert_eq!(get("candidate_list", "a", "a"), (1, Some(0.5)));
        assert_eq!(get("candidate_list", "b", "b"), (0, Some(0.0)));
        assert_eq!(get("above_threshold", "a", "b"), (1, Some(1.0)));
        assert_eq!(get("above_threshold", "b", "unlabelled"), (1, Some(1.0)));
        assert_eq!(get("above_threshold", "b", "a"), (0, Some(0.0)));
        // 3 candidate groups × 2 search groups × 2 modes.
        assert_eq!(r.len(), 12);
        assert_eq!(r[0].gallery_share, 0.5);
    }
}

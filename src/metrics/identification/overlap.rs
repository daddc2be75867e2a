//! Suspected same-person pairs across identities the labels call different: a searched subject
//! and a gallery identity (a distractor dataset's subject, or another subject of the searched
//! dataset) whose faces match too often for two people.
//!
//! Distractor datasets are other collections of public faces, and they share people: BFW's
//! subjects are VGGFace2 celebrities, many of whom are in LFW or UTKFace too. Such a "non-mated"
//! search returning the same person is no false positive, and a mated search returning the
//! person's other-dataset photo ahead of the mate is no miss. The rule, stated in every report:
//!
//! - T_o is the threshold for FPIR max(0.001, 1/n) over the n non-mated searches against the
//!   gallery of enrolled mates alone (identities the dataset itself labels distinct);
//! - a (searched subject, gallery identity) pair is a suspected same person when at least
//!   [`MIN_SEARCHES`] different images of the searched subject have an image of that identity
//!   among their candidates with score ≥ T_o. Two photos of one person each scoring at the
//!   1-in-1000 impostor level against one other identity is what a same-person pair looks like,
//!   and rarely what two people look like; it is a screening rule, not proof, and a pair with
//!   a single such image is not flagged (it stays counted as an error).
//!
//! The caller drops flagged distractor identities from the gallery (unless told to keep them)
//! and lists pairs inside the searched dataset without changing its labels.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{threshold_for, Search};

/// Different images of the searched subject needed to flag a pair.
pub const MIN_SEARCHES: usize = 2;

/// One suspected same-person pair (a row of `overlap.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    /// The searched subject.
    pub searched_subject: String,
    /// The other identity's dataset.
    pub other_dataset: String,
    /// The other identity's subject label.
    pub other_subject: String,
    /// Images of the searched subject with a candidate of the other identity ≥ T_o.
    pub images: usize,
    /// Searches (images) of the searched subject with a face.
    pub of_images: usize,
    /// The highest such score.
    pub max_score: f32,
    /// `dropped` (the other identity left the gallery) or `kept` (listed only).
    pub action: &'static str,
}

/// The screening threshold T_o from the searches at gallery size index `mates_only` (the gallery
/// of enrolled mates alone); `None` without non-mated searches.
pub fn screening_threshold(searches: &[Search], mates_only: usize) -> Option<f32> {
    let n = searches.iter().filter(|x| !x.mated).count();
    let target = (0.001f64).max(1.0 / n.max(1) as f64);
    threshold_for(searches, mates_only, target, |_| true).map(|t| t.t)
}

/// An identity: (dataset, subject).
type Identity<'a> = (&'a str, &'a str);

/// Where the pairs' identities come from.
pub struct Identities<'a> {
    /// Search k's subject.
    pub searcher: &'a [&'a str],
    /// Gallery entry e's (dataset, subject).
    pub entry: &'a [(&'a str, &'a str)],
    /// The identity search k may match: its own subject in the searched dataset.
    pub own: &'a [(&'a str, &'a str)],
    /// The searched dataset's name: pairs with another dataset's identity are `dropped` when
    /// `drop_distractors`, pairs inside the searched dataset are always `kept`.
    pub searched: &'a str,
    /// Whether flagged distractor identities leave the gallery.
    pub drop_distractors: bool,
}

/// Suspected pairs at gallery size index `s`, threshold `t_o`.
pub fn detect(searches: &[Search], ids: &Identities, s: usize, t_o: f32) -> Vec<Pair> {
    let (searcher, identity, own) = (ids.searcher, ids.entry, ids.own);
    // (searched subject, other identity) → (images with a hit, best score); searched subject → images.
    let mut hits: BTreeMap<(&str, Identity), (usize, f32)> = BTreeMap::new();
    let mut images: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, x) in searches.iter().enumerate() {
        if x.failed {
            continue;
        }
        *images.entry(searcher[k]).or_default() += 1;
        let mut best: BTreeMap<(&str, &str), f32> = BTreeMap::new();
        for c in x.candidates[s].iter().filter(|c| c.score >= t_o) {
            let id = identity[c.entry as usize];
            if id != own[k] {
                let b = best.entry(id).or_insert(c.score);
                *b = b.max(c.score);
            }
        }
        for (id, score) in best {
            let h = hits.entry((searcher[k], id)).or_insert((0, f32::MIN));
            h.0 += 1;
            h.1 = h.1.max(score);
        }
    }
    hits.into_iter()
        .filter(|(_, (n, _))| *n >= MIN_SEARCHES)
        .map(|((subj, (d, o)), (n, score))| Pair {
            searched_subject: subj.to_string(),
            other_dataset: d.to_string(),
            other_subject: o.to_string(),
            images: n,
            of_images: images[subj],
            max_score: score,
            action: if d != ids.searched && ids.drop_distractors {
                "dropped"
            } else {
                "kept"
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::search::Candidate;

    #[test]
    fn two_images_matching_one_identity_flag_a_pair() {
        let c = |entry, score| Candidate { entry, score };
        let x = |list: Vec<Candidate>| Search {
            mated: false,
            combo: 0,
            subject: 0,
            mate: None,
            failed: false,
            candidates: vec![list],
        };
        // Entries: 0 = (lfw, Ann) twice as entries 0 and 1, 2 = (lfw, Bob), 3 = (bfw, s1) — s1's own.
        let identity = [
            ("lfw", "Ann"),
            ("lfw", "Ann"),
            ("lfw", "Bob"),
            ("bfw", "s1"),
        ];
        let searches = vec![
            x(vec![c(0, 0.8), c(3, 0.9)]), // s1: Ann ≥ 0.5; its own entry never counts
            x(vec![c(1, 0.6), c(2, 0.7)]), // s1: Ann (another entry of hers) and Bob
            x(vec![c(2, 0.4)]),            // s1: Bob below T_o
            x(vec![c(2, 0.9)]),            // s2: Bob once only
        ];
        let searcher = ["s1", "s1", "s1", "s2"];
        let own = [("bfw", "s1"), ("bfw", "s1"), ("bfw", "s1"), ("bfw", "s2")];
        let ids = Identities {
            searcher: &searcher,
            entry: &identity,
            own: &own,
            searched: "bfw",
            drop_distractors: true,
        };
        let p = detect(&searches, &ids, 0, 0.5);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].searched_subject.as_str(), p[0].other_subject.as_str()),
            ("s1", "Ann")
        );
        assert_eq!((p[0].images, p[0].of_images, p[0].max_score), (2, 3, 0.8));
        assert_eq!(p[0].action, "dropped");
    }
}

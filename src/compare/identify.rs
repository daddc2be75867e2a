//! The 1:N comparison stage: the gallery and probe matrices from the protocol's roles and the
//! embeddings, one search at every nested gallery size ([`super::search`]), and one
//! [`Search`] record per searching image.
//!
//! - The enrolled gallery is the gallery and distractor images that produced a template, ordered by
//!   the split's `gallery_rank`; entry e of it is the e-th (so every size-N gallery is entries
//!   0..N, and the enrolled mates come first).
//! - Every searching image (mated or non-mated) yields a [`Search`]; one without a template has no
//!   candidates (`failed`).
//! - `keep` = L + 1 candidates are kept per list, so the mate's rank is exact up to L (see
//!   [`crate::metrics::identification`]).

use std::collections::HashMap;

use super::backend::SearchBackend;
use super::search;
use crate::manifest::split::{Role, Split};
use crate::metrics::identification::Search;

/// The searches and the gallery they ran against.
#[derive(Debug, Clone)]
pub struct Searched {
    /// Sample index of each enrolled gallery entry, in entry order.
    pub gallery: Vec<usize>,
    /// Enrolled mates (entries `0..mates`).
    pub mates: usize,
    /// Sample index of each search, in sample order.
    pub searchers: Vec<usize>,
    /// The searches (same order as `searchers`).
    pub searches: Vec<Search>,
    /// The gallery sizes searched (numbers of entries).
    pub sizes: Vec<usize>,
}

/// What the stage needs of every sample: its role, subject, finest group and embedding row.
pub struct Inputs<'a> {
    /// The protocol's split (roles and gallery ranks of every sample).
    pub split: &'a Split,
    /// Subject id of every sample (distractors included).
    pub subject_of: &'a [u32],
    /// Finest group of every searching sample (others: any value).
    pub combo_of: &'a [u16],
    /// Embedding matrix, row-major.
    pub emb: &'a [f32],
    /// Row of each sample in `emb` (`None`: no template).
    pub rows: &'a [Option<usize>],
    /// Embedding length.
    pub dim: usize,
}

/// The enrolled gallery (sample indices in entry order) and how many of them are mates.
pub fn enrolled_gallery(inp: &Inputs) -> (Vec<usize>, usize) {
    let mut g: Vec<usize> = (0..inp.rows.len())
        .filter(|&i| {
            matches!(inp.split.roles[i], Role::Gallery | Role::Distractor) && inp.rows[i].is_some()
        })
        .collect();
    g.sort_by_key(|&i| inp.split.gallery_rank[i]);
    let mates = g
        .iter()
        .filter(|&&i| inp.split.roles[i] == Role::Gallery)
        .count();
    (g, mates)
}

/// Runs every search against `gallery` (from [`enrolled_gallery`]) at `sizes`, keeping `keep`
/// candidates per list, on `backend` (the CPU or GPU search: the same lists either way).
pub fn run(
    backend: &mut SearchBackend,
    inp: &Inputs,
    gallery: Vec<usize>,
    mates: usize,
    sizes: Vec<usize>,
    keep: usize,
) -> Result<Searched, String> {
    if gallery.is_empty() {
        return Err("no gallery image has a face: nothing to search against".into());
    }
    let dim = inp.dim;
    let vector = |i: usize| {
        let r = inp.rows[i].expect("an enrolled sample has a row");
        &inp.emb[r * dim..(r + 1) * dim]
    };
    let g: Vec<f32> = gallery
        .iter()
        .flat_map(|&i| vector(i).iter().copied())
        .collect();
    let entry_of_subject: HashMap<u32, u32> = gallery[..mates]
        .iter()
        .enumerate()
        .map(|(e, &i)| (inp.subject_of[i], e as u32))
        .collect();
    let searchers: Vec<usize> = (0..inp.rows.len())
        .filter(|&i| matches!(inp.split.roles[i], Role::MatedSearch | Role::NonmatedSearch))
        .collect();
    let probing: Vec<usize> = searchers
        .iter()
        .copied()
        .filter(|&i| inp.rows[i].is_some())
        .collect();
    let probes: Vec<f32> = probing
        .iter()
        .flat_map(|&i| vector(i).iter().copied())
        .collect();
    let tie_rows: Vec<u32> = gallery.iter().map(|&i| i as u32).collect();
    let found = backend.search(&probes, &g, &tie_rows, dim, &sizes, keep)?;
    let mut lists: HashMap<usize, Vec<Vec<search::Candidate>>> =
        probing.iter().copied().zip(found).collect();
    // Dense subject ids of the searchers (the bootstrap's resampling units).
    let mut dense: HashMap<u32, u32> = HashMap::new();
    let searches = searchers
        .iter()
        .map(|&i| {
            let next = dense.len() as u32;
            Search {
                mated: inp.split.roles[i] == Role::MatedSearch,
                combo: inp.combo_of[i],
                subject: *dense.entry(inp.subject_of[i]).or_insert(next),
                mate: entry_of_subject.get(&inp.subject_of[i]).copied(),
                failed: inp.rows[i].is_none(),
                candidates: lists
                    .remove(&i)
                    .unwrap_or_else(|| vec![Vec::new(); sizes.len()]),
            }
        })
        .collect();
    Ok(Searched {
        gallery,
        mates,
        searchers,
        searches,
        sizes,
    })
}

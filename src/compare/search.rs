//! 1:N search: every probe scored against every gallery entry (exact, cosine of L2-normalised
//! embeddings), keeping the top L candidates at every nested gallery size in one pass.
//!
//! The gallery is given in `gallery_rank` order (see [`crate::manifest::split`]): the size-N
//! gallery is its first N entries, so one scan in that order serves every size — the running top-L
//! list is copied out as the scan passes each size. Candidates are ordered by score, higher first;
//! equal scores by the lower `row` (the entry's `samples.csv` row). Nothing of size probes × gallery
//! is stored: memory is O(probes · L · sizes).

use rayon::prelude::*;

use super::dot;

/// One candidate of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Position of the entry in the gallery (its `gallery_rank`).
    pub entry: u32,
    /// Its cosine score.
    pub score: f32,
}

/// Inserts `c` into the score-ordered list `top` (at most `l` long), ties by lower `rows[entry]`.
fn insert(top: &mut Vec<Candidate>, c: Candidate, l: usize, rows: &[u32]) {
    let before = |a: &Candidate, b: &Candidate| {
        a.score > b.score || (a.score == b.score && rows[a.entry as usize] < rows[b.entry as usize])
    };
    if top.len() == l && !before(&c, &top[l - 1]) {
        return;
    }
    let at = top.partition_point(|x| before(x, &c));
    top.insert(at, c);
    top.truncate(l);
}

/// The top `l` candidates of every probe at every gallery size. `probes` and `gallery` are
/// row-major `dim`-wide matrices, the gallery in `gallery_rank` order; `rows[e]` is gallery entry
/// e's `samples.csv` row (the tie-break); `sizes` are ascending and at most the gallery's length.
/// Returns `[probe][size] → candidates`.
pub fn search(
    probes: &[f32],
    gallery: &[f32],
    rows: &[u32],
    dim: usize,
    sizes: &[usize],
    l: usize,
) -> Result<Vec<Vec<Vec<Candidate>>>, String> {
    let entries = gallery.len() / dim.max(1);
    if rows.len() != entries {
        return Err(format!("{} gallery rows for {entries} entries", rows.len()));
    }
    if sizes.windows(2).any(|w| w[0] >= w[1]) || sizes.last().is_some_and(|&n| n > entries) {
        return Err(format!(
            "gallery sizes {sizes:?} must rise and be at most the gallery's {entries} entries"
        ));
    }
    if l == 0 {
        return Err("the candidate list length must be at least 1".into());
    }
    Ok(probes
        .par_chunks_exact(dim)
        .map(|p| {
            let mut top = Vec::with_capacity(l + 1);
            let mut out = Vec::with_capacity(sizes.len());
            let mut next = 0;
            for (e, g) in gallery.chunks_exact(dim).enumerate() {
                while next < sizes.len() && sizes[next] == e {
                    out.push(top.clone());
                    next += 1;
                }
                let c = Candidate {
                    entry: e as u32,
                    score: dot(p, g),
                };
                insert(&mut top, c, l, rows);
            }
            while out.len() < sizes.len() {
                out.push(top.clone());
            }
            out
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_lists_nest_and_ties_go_to_the_lower_row() {
        // 2-d unit vectors. Probe (1, 0); gallery scores in rank order: 0.6, 0.8, 0.8, 1.0, −1.0.
        let gallery = [0.6, 0.8, 0.8, 0.6, 0.8, -0.6, 1.0, 0.0, -1.0, 0.0];
        // Entries 1 and 2 tie at 0.8; entry 2 has the lower samples.csv row (3 < 7).
        let rows = [9, 7, 3, 5, 1];
        let r = search(&[1.0, 0.0], &gallery, &rows, 2, &[2, 3, 5], 2).unwrap();
        let ids = |v: &Vec<Candidate>| v.iter().map(|c| c.entry).collect::<Vec<_>>();
        // Size 2 (entries 0, 1): 1 (0.8), 0 (0.6). Size 3: the tie, 2 before 1. Size 5: 3 (1.0), then 2.
        assert_eq!(ids(&r[0][0]), vec![1, 0]);
        assert_eq!(ids(&r[0][1]), vec![2, 1]);
        assert_eq!(ids(&r[0][2]), vec![3, 2]);
        assert!((r[0][2][0].score - 1.0).abs() < 1e-7);
    }

    #[test]
    fn the_search_equals_a_full_sort_on_random_data() {
        let mut rng = crate::metrics::bootstrap::SplitMix64::new(3);
        let dim = 19;
        let mut unit = |n: usize| -> Vec<f32> {
            let mut v: Vec<f32> = (0..n * dim)
                .map(|_| (rng.next_u64() % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            v.chunks_exact_mut(dim).for_each(|r| {
                let s = r.iter().map(|x| x * x).sum::<f32>().sqrt();
                r.iter_mut().for_each(|x| *x /= s);
            });
            v
        };
        let (probes, gallery) = (unit(7), unit(60));
        let rows: Vec<u32> = (0..60).rev().collect();
        let r = search(&probes, &gallery, &rows, dim, &[10, 60], 5).unwrap();
        for (p, lists) in probes.chunks_exact(dim).zip(&r) {
            for (&n, list) in [10usize, 60].iter().zip(lists) {
                let mut all: Vec<(f32, u32, u32)> = (0..n)
                    .map(|e| (dot(p, &gallery[e * dim..(e + 1) * dim]), rows[e], e as u32))
                    .collect();
                all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                let want: Vec<u32> = all.iter().take(5).map(|x| x.2).collect();
                assert_eq!(list.iter().map(|c| c.entry).collect::<Vec<_>>(), want);
            }
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        let g = [1.0, 0.0];
        assert!(search(&[1.0, 0.0], &g, &[0], 2, &[2], 1).is_err());
        assert!(search(&[1.0, 0.0], &g, &[0], 2, &[1], 0).is_err());
    }
}

//! Comparison: scores of all mated pairs (same subject) kept exactly, and every non-mated pair counted
//! into per-(group_a, group_b) [`ScoreHistogram`]s, so N² scores are never stored.
//!
//! Scores are dot products of L2-normalised embeddings (= cosine similarity). The histogram has
//! [`BINS`] = 2^16 bins over [-1, 1]; bin `k` holds scores `s` with `floor(s·2^15) + 2^15 = k`
//! (scores outside [-1, 1) are clamped into the end bins). Since `s·2^15` is exact in floating point,
//! "score ≥ edge(k)" ⇔ "bin ≥ k": counts at any bin-edge threshold are exact, not approximations.
//!
//! Input is plain data (embeddings, a cell id and a subject id per embedding), output mergeable
//! histograms; the fast SIMD kernel slots in behind [`nonmated_histograms`].

pub mod backend;
pub mod bench;
pub mod gpu;
pub mod identify;
pub mod kernel;
pub mod search;
pub mod search_bench;
pub mod top;

use rayon::prelude::*;

/// Number of histogram bins over [-1, 1].
pub const BINS: usize = 1 << 16;
const HALF: f32 = (BINS / 2) as f32;

/// The bin of a score.
#[inline]
pub fn bin_of(score: f32) -> usize {
    let b = (score * HALF).floor() + HALF;
    if b.is_nan() {
        0
    } else {
        b.clamp(0.0, (BINS - 1) as f32) as usize
    }
}

/// The lower edge of bin `k` as a score threshold: `-1 + k / 2^15` (exact in f32 and f64).
pub fn edge(k: usize) -> f64 {
    -1.0 + k as f64 / HALF as f64
}

/// Counts of scores per bin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreHistogram {
    /// `counts[k]` = number of scores in bin `k`.
    pub counts: Vec<u64>,
}

impl Default for ScoreHistogram {
    fn default() -> Self {
        ScoreHistogram {
            counts: vec![0; BINS],
        }
    }
}

impl ScoreHistogram {
    /// Adds another histogram.
    pub fn merge(&mut self, other: &ScoreHistogram) {
        self.counts
            .iter_mut()
            .zip(&other.counts)
            .for_each(|(a, b)| *a += b);
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Counts at or above each bin: `tail[k]` = Σ_{j ≥ k} counts[j]; length BINS + 1 (`tail[BINS]` = 0).
    pub fn tail_counts(&self) -> Vec<u64> {
        let mut tail = vec![0u64; BINS + 1];
        for k in (0..BINS).rev() {
            tail[k] = tail[k + 1] + self.counts[k];
        }
        tail
    }
}

/// Histograms for every unordered pair of groups `(a, b)`, `a ≤ b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellHistograms {
    /// Number of groups.
    pub groups: usize,
    /// Upper-triangle cells in row-major order; see [`CellHistograms::index`].
    pub cells: Vec<ScoreHistogram>,
}

impl CellHistograms {
    /// Empty histograms for `groups` groups.
    pub fn new(groups: usize) -> CellHistograms {
        CellHistograms {
            groups,
            cells: vec![ScoreHistogram::default(); groups * (groups + 1) / 2],
        }
    }

    /// Index of cell `(a, b)` (order does not matter).
    pub fn index(&self, a: usize, b: usize) -> usize {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        a * self.groups - a * a.saturating_sub(1) / 2 + b - a
    }

    /// The histogram of cell `(a, b)`.
    pub fn cell(&self, a: usize, b: usize) -> &ScoreHistogram {
        &self.cells[self.index(a, b)]
    }

    /// Adds another set of cell histograms (same group count).
    pub fn merge(&mut self, other: &CellHistograms) {
        self.cells
            .iter_mut()
            .zip(&other.cells)
            .for_each(|(a, b)| a.merge(b));
    }
}

/// A scored mated pair (indices into the embedding rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatedScore {
    /// First row.
    pub a: usize,
    /// Second row (`a < b`).
    pub b: usize,
    /// Cosine similarity.
    pub score: f32,
}

/// Dot product with eight independent accumulators (vectorises without fast-math).
#[inline]
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (a, b) in xr.iter().zip(yr) {
        s += a * b;
    }
    s
}

/// Scores every mated pair: all pairs of rows sharing a subject id. Sorted by (a, b).
pub fn mated_scores(emb: &[f32], dim: usize, subject: &[u32]) -> Vec<MatedScore> {
    let mut by_subject: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (i, &s) in subject.iter().enumerate() {
        by_subject.entry(s).or_default().push(i);
    }
    let mut out = Vec::new();
    for rows in by_subject.values() {
        for (x, &a) in rows.iter().enumerate() {
            for &b in &rows[x + 1..] {
                out.push(MatedScore {
                    a,
                    b,
                    score: dot(&emb[a * dim..(a + 1) * dim], &emb[b * dim..(b + 1) * dim]),
                });
            }
        }
    }
    out.sort_by_key(|m| (m.a, m.b));
    out
}

/// Counts every non-mated pair (different subject ids) into the histogram of its `(cell[i], cell[j])`.
/// Rows are dealt to threads round-robin (balancing the triangle); per-thread histograms are merged
/// in thread order, and integer counts make the result independent of the thread count.
pub fn nonmated_histograms(
    emb: &[f32],
    dim: usize,
    cell: &[u16],
    subject: &[u32],
    groups: usize,
) -> CellHistograms {
    let n = cell.len();
    let threads = rayon::current_num_threads().max(1);
    let parts: Vec<CellHistograms> = (0..threads)
        .into_par_iter()
        .map(|t| {
            let mut h = CellHistograms::new(groups);
            let mut i = t;
            while i < n {
                let xi = &emb[i * dim..(i + 1) * dim];
                let row_cells: Vec<usize> =
                    (0..groups).map(|g| h.index(cell[i] as usize, g)).collect();
                for j in i + 1..n {
                    if subject[j] == subject[i] {
                        continue;
                    }
                    let s = dot(xi, &emb[j * dim..(j + 1) * dim]);
                    h.cells[row_cells[cell[j] as usize]].counts[bin_of(s)] += 1;
                }
                i += threads;
            }
            h
        })
        .collect();
    let mut total = CellHistograms::new(groups);
    for p in &parts {
        total.merge(p);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_edges_agree_exactly() {
        assert_eq!(bin_of(-1.0), 0);
        assert_eq!(bin_of(0.0), 32768);
        assert_eq!(bin_of(1.0), BINS - 1); // clamped
        assert_eq!(bin_of(f32::NAN), 0);
        // 0.5 is exactly edge 49152; the largest f32 below it falls in the bin below.
        assert_eq!(edge(49152), 0.5);
        assert_eq!(bin_of(0.5), 49152);
        assert_eq!(bin_of(0.5f32.next_down()), 49151);
        for k in [1usize, 777, 40000, 65535] {
            let e = edge(k) as f32;
            assert_eq!(bin_of(e), k);
            assert_eq!(bin_of(e.next_down()) + 1, k, "k={k}");
        }
    }

    #[test]
    fn cell_index_is_a_bijection_on_the_upper_triangle() {
        for g in 1..7 {
            let h = CellHistograms::new(g);
            let mut seen = vec![false; h.cells.len()];
            for a in 0..g {
                for b in a..g {
                    let i = h.index(a, b);
                    assert!(!seen[i]);
                    seen[i] = true;
                    assert_eq!(i, h.index(b, a));
                }
            }
            assert!(seen.iter().all(|&s| s));
        }
    }

    #[test]
    fn hand_counted_example() {
        // Four 2-d unit vectors: rows 0,1 subject 0 (group 0), row 2 subject 1 (group 0), row 3 subject 2 (group 1).
        let emb = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8, -1.0, 0.0];
        let cell = [0u16, 0, 0, 1];
        let subject = [0u32, 0, 1, 2];
        let mated = mated_scores(&emb, 2, &subject);
        assert_eq!(
            mated,
            vec![MatedScore {
                a: 0,
                b: 1,
                score: 0.0
            }]
        );
        let h = nonmated_histograms(&emb, 2, &cell, &subject, 2);
        // non-mated: (0,2)=0.6 cell(0,0); (1,2)=0.8 cell(0,0); (0,3)=-1 (1,3)=0 (2,3)=-0.6 in cell(0,1)
        assert_eq!(h.cell(0, 0).total(), 2);
        assert_eq!(h.cell(0, 1).total(), 3);
        assert_eq!(h.cell(1, 1).total(), 0);
        assert_eq!(h.cell(0, 0).counts[bin_of(0.6)], 1);
        assert_eq!(h.cell(0, 0).counts[bin_of(0.8)], 1);
        assert_eq!(h.cell(1, 0).counts[0], 1);
        let tail = h.cell(0, 1).tail_counts();
        assert_eq!(tail[bin_of(-0.6)], 2); // scores ≥ -0.6: -0.6 and 0
    }

    #[test]
    fn same_counts_for_any_thread_count() {
        let n = 61;
        let dim = 5;
        let mut x = 12345u64;
        let mut emb: Vec<f32> = (0..n * dim)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        for r in emb.chunks_mut(dim) {
            crate::embed::l2_normalize(r);
        }
        let cell: Vec<u16> = (0..n).map(|i| (i % 3) as u16).collect();
        let subject: Vec<u32> = (0..n).map(|i| (i / 4) as u32).collect();
        let run = |t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| nonmated_histograms(&emb, dim, &cell, &subject, 3))
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
        let pairs: u64 = one.cells.iter().map(|c| c.total()).sum();
        let mated = mated_scores(&emb, dim, &subject).len() as u64;
        assert_eq!(pairs + mated, (n * (n - 1) / 2) as u64);
    }
}

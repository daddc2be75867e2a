//! The pairs behind the numbers: the highest-scoring non-mated pairs (`top_impostors.csv`) and the
//! lowest-scoring mated pairs (`worst_genuine.csv`). A low-FMR result often rests on a few dozen false
//! matches; when they are one person filed under two identities (a label error) or duplicate images,
//! the user must be able to see it.
//!
//! Non-mated pairs are not stored, so a second kernel pass collects every non-mated pair at or above a
//! cut-off bin chosen from the histograms ([`candidate_cutoff`]) such that the [`TOP_OVERALL`] highest
//! overall and the [`TOP_PER_CELL`] highest of every group cell are among them; each is then rescored
//! exactly (the same dot product) and ranked by score, ties by row order.

use super::{dot, CellHistograms, MatedScore, BINS};

/// Highest-scoring non-mated (lowest-scoring mated) pairs kept overall.
pub const TOP_OVERALL: usize = 100;
/// … and within each group cell (non-mated) or finest group (mated).
pub const TOP_PER_CELL: usize = 20;
/// Most candidate pairs the second pass may collect; the cut-off rises until they fit.
pub const MAX_CANDIDATES: u64 = 20_000_000;

/// One ranked pair of enrolled rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedPair {
    /// First row (`a < b`).
    pub a: usize,
    /// Second row.
    pub b: usize,
    /// Cosine similarity.
    pub score: f32,
    /// 1-based rank among all pairs of its kind, when within the first [`TOP_OVERALL`].
    pub rank: Option<usize>,
    /// 1-based rank within its cell (non-mated) or finest group (mated).
    pub rank_in_cell: usize,
}

/// The bin from which to collect non-mated pairs, and how many there are at or above it.
pub fn candidate_cutoff(c: &CellHistograms) -> (usize, u64) {
    // Per cell, the bin of its TOP_PER_CELL-th highest pair (its lowest pair when it has fewer).
    let mut cutoff = BINS;
    for h in &c.cells {
        let mut acc = 0u64;
        for k in (0..BINS).rev() {
            if h.counts[k] > 0 {
                acc += h.counts[k];
                cutoff = cutoff.min(k);
                if acc >= TOP_PER_CELL as u64 {
                    break;
                }
            }
        }
    }
    let mut tail = vec![0u64; BINS + 1];
    for h in &c.cells {
        for (k, &n) in h.counts.iter().enumerate() {
            tail[k] += n;
        }
    }
    for k in (0..BINS).rev() {
        tail[k] += tail[k + 1];
    }
    let overall = (0..BINS)
        .rev()
        .find(|&k| tail[k] >= TOP_OVERALL as u64)
        .unwrap_or(0);
    let mut bin = cutoff.min(overall);
    while bin < BINS && tail[bin] > MAX_CANDIDATES {
        bin += 1;
    }
    (bin, tail[bin])
}

/// Ranks candidate pairs by exact score (descending for impostors, ascending for genuine pairs), and
/// keeps the first [`TOP_OVERALL`] plus the first [`TOP_PER_CELL`] of each cell; `cell_of(a, b)` names
/// a pair's cell.
fn rank(
    mut pairs: Vec<(usize, usize, f32)>,
    highest_first: bool,
    cell_of: impl Fn(usize, usize) -> usize,
) -> Vec<RankedPair> {
    pairs.sort_by(|x, y| {
        let by_score = if highest_first {
            y.2.total_cmp(&x.2)
        } else {
            x.2.total_cmp(&y.2)
        };
        by_score.then((x.0, x.1).cmp(&(y.0, y.1)))
    });
    let mut in_cell: std::collections::HashMap<usize, usize> = Default::default();
    let mut out = Vec::new();
    for (i, (a, b, score)) in pairs.into_iter().enumerate() {
        let n = in_cell.entry(cell_of(a, b)).or_default();
        *n += 1;
        let rank = (i < TOP_OVERALL).then_some(i + 1);
        if rank.is_some() || *n <= TOP_PER_CELL {
            out.push(RankedPair {
                a,
                b,
                score,
                rank,
                rank_in_cell: *n,
            });
        }
    }
    out
}

/// The highest-scoring non-mated pairs among `candidates` (the second pass's pairs of enrolled rows),
/// rescored from `emb`; cells are pairs of finest groups `combo[row]`.
pub fn top_impostors(
    candidates: &[(usize, usize, u16)],
    emb: &[f32],
    dim: usize,
    combo: &[u16],
    combos: usize,
) -> Vec<RankedPair> {
    let row = |i: usize| &emb[i * dim..(i + 1) * dim];
    let pairs = candidates
        .iter()
        .map(|&(a, b, _)| (a.min(b), a.max(b), dot(row(a), row(b))))
        .collect();
    rank(pairs, true, |a, b| {
        let (x, y) = (combo[a] as usize, combo[b] as usize);
        x.min(y) * combos + x.max(y)
    })
}

/// The lowest-scoring mated pairs; cells are finest groups.
pub fn worst_genuine(mated: &[MatedScore], combo: &[u16]) -> Vec<RankedPair> {
    let pairs = mated.iter().map(|m| (m.a, m.b, m.score)).collect();
    rank(pairs, false, |a, _| combo[a] as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::bin_of;

    #[test]
    fn ranks_overall_and_per_cell_by_hand() {
        // 3 rows in 2 combos: rows 0, 1 in combo 0, row 2 in combo 1. Rows (1, 0), (0.9, 0.43589),
        // (0.5, −0.86603): scores (0,1) 0.9, (0,2) 0.5, (1,2) 0.45 − 0.37750 = 0.0725. Highest first:
        // (0,1) in cell 0/0, (0,2) first in cell 0/1, (1,2) second in cell 0/1.
        let emb = [1.0, 0.0, 0.9, 0.43589, 0.5, -0.86603];
        let got = top_impostors(&[(0, 2, 0), (1, 0, 0), (1, 2, 0)], &emb, 2, &[0, 0, 1], 2);
        let order: Vec<(usize, usize, Option<usize>, usize)> = got
            .iter()
            .map(|p| (p.a, p.b, p.rank, p.rank_in_cell))
            .collect();
        assert_eq!(
            order,
            vec![(0, 1, Some(1), 1), (0, 2, Some(2), 1), (1, 2, Some(3), 2)]
        );
        assert!((got[0].score - 0.9).abs() < 1e-6);
    }

    #[test]
    fn keeps_the_first_hundred_and_twenty_per_cell() {
        // 130 pairs in cell A scoring above 30 pairs of cell B: the first 100 overall are all A; the
        // 20 best of B are kept as well, ranked in their cell but not overall.
        let mut pairs: Vec<(usize, usize, f32)> =
            (0..130).map(|i| (i, 1000, 0.9 - i as f32 * 1e-3)).collect();
        pairs.extend((0..30).map(|i| (2000 + i, 3000, 0.1 - i as f32 * 1e-3)));
        let got = rank(pairs, true, |a, _| usize::from(a >= 2000));
        assert_eq!(got.iter().filter(|p| p.rank.is_some()).count(), 100);
        assert_eq!(got.iter().filter(|p| p.a >= 2000).count(), 20);
        assert!(got.iter().filter(|p| p.a >= 2000).all(|p| p.rank.is_none()));
        assert_eq!(got.len(), 120);
    }

    #[test]
    fn cutoff_covers_the_top_of_every_cell() {
        let mut c = CellHistograms::new(2);
        // Cell 0: 200 pairs at 0.8; cell 1 (across): 5 pairs at -0.5; cell 2: 25 at 0.2, 10 at 0.6.
        c.cells[0].counts[bin_of(0.8)] += 200;
        c.cells[1].counts[bin_of(-0.5)] += 5;
        c.cells[2].counts[bin_of(0.2)] += 25;
        c.cells[2].counts[bin_of(0.6)] += 10;
        // Cell 1 has fewer than 20 pairs, so everything from its lowest bin is needed: all 240.
        assert_eq!(candidate_cutoff(&c), (bin_of(-0.5), 240));
    }
}

//! Subject-level (cluster) bootstrap of per-group rates and equity metrics.
//!
//! Comparisons that share a subject are not independent, so a replicate resamples **subjects** — with
//! replacement, within each finest group (combo), keeping group sizes — and never rescores anything:
//! a subject drawn w times contributes with weight w to its mated pairs and weight w_s·w_t to each of its
//! non-mated pairs with subject t. What this needs per replicate:
//! - FNMR: per subject, its mated comparisons (all images, failures to enrol included) and how many of
//!   its enrolled mated scores reach each threshold;
//! - FMR denominators: per combo A = Σ w_s n_s and B = Σ (w_s n_s)²; a cell (c, d) has A_c·A_d
//!   non-mated comparisons, (A_c² − B_c)/2 when c = d (with unit weights this is exactly
//!   C(N,2) − Σ C(n_s,2));
//! - FMR numerators: only the non-mated pairs scoring at or above the lowest threshold ("high pairs",
//!   collected by a second kernel pass), each adding w_s·w_t.
//!
//! With unit weights every count equals the exact count of `groups.csv`. Intervals are the 2.5 and 97.5
//! percentiles (linear interpolation) of the replicates; the seed and replicate count are recorded.

use super::groups::Grouping;

/// Per-subject data and high pairs, in subject order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BootstrapData {
    /// Combo of each subject.
    pub subject_combo: Vec<u16>,
    /// Images of each subject (failures to enrol included).
    pub subject_images: Vec<u64>,
    /// Bins of each subject's enrolled mated scores.
    pub mated_bins: Vec<Vec<u16>>,
    /// Non-mated image pairs scoring at or above `cutoff_bin`: (subject a, subject b, bin).
    pub high: Vec<(u32, u32, u16)>,
    /// Lowest bin kept in `high`.
    pub cutoff_bin: usize,
    /// Pairs left out by `--exclude-pairs`, as (subject a, subject b): a mated pair when a = b (one
    /// fewer mated comparison of that subject), else one fewer non-mated comparison between the two.
    /// Their scores are already absent from `mated_bins` and `high`.
    pub excluded: Vec<(u32, u32)>,
}

/// Version 2 ends with a sha256 of the rest ([`super::store::seal`]); version 1 is still read.
const MAGIC: &[u8] = b"FBBOOT2\n";
const MAGIC_V1: &[u8] = b"FBBOOT1\n";

impl BootstrapData {
    /// Per-subject data from the run: `combo_of` and `subjects` per sample (every image, failures to
    /// enrol included), `e_subject` the subject of each enrolled row, and the kernel's mated pairs and
    /// non-mated pairs at or above `cutoff` (enrolled-row indices).
    pub fn assemble(
        combo_of: &[u16],
        subjects: &[u32],
        e_subject: &[u32],
        mated: &[crate::compare::MatedScore],
        high: &[(usize, usize, u16)],
        cutoff: usize,
    ) -> BootstrapData {
        let n_subjects = subjects.iter().map(|&s| s as usize + 1).max().unwrap_or(0);
        let mut d = BootstrapData {
            subject_combo: vec![0; n_subjects],
            subject_images: vec![0; n_subjects],
            mated_bins: vec![Vec::new(); n_subjects],
            high: high
                .iter()
                .map(|&(a, b, bin)| (e_subject[a], e_subject[b], bin))
                .collect(),
            cutoff_bin: cutoff,
            excluded: Vec::new(),
        };
        for (i, &s) in subjects.iter().enumerate() {
            d.subject_combo[s as usize] = combo_of[i];
            d.subject_images[s as usize] += 1;
        }
        for m in mated {
            d.mated_bins[e_subject[m.a] as usize].push(crate::compare::bin_of(m.score) as u16);
        }
        d
    }

    /// `bootstrap.bin`: magic, then little-endian: subject count (u64); per subject combo (u16), images
    /// (u64), mated-score count (u32) and bins (u16 each); high-pair count (u64) and pairs (u32, u32, u16);
    /// cutoff bin (u64); then, when pairs were excluded, their count (u64) and subject pairs (u32, u32);
    /// then the sha256 of all of it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(MAGIC);
        o.extend_from_slice(&(self.subject_combo.len() as u64).to_le_bytes());
        for s in 0..self.subject_combo.len() {
            o.extend_from_slice(&self.subject_combo[s].to_le_bytes());
            o.extend_from_slice(&self.subject_images[s].to_le_bytes());
            o.extend_from_slice(&(self.mated_bins[s].len() as u32).to_le_bytes());
            self.mated_bins[s]
                .iter()
                .for_each(|b| o.extend_from_slice(&b.to_le_bytes()));
        }
        o.extend_from_slice(&(self.high.len() as u64).to_le_bytes());
        for &(a, b, bin) in &self.high {
            o.extend_from_slice(&a.to_le_bytes());
            o.extend_from_slice(&b.to_le_bytes());
            o.extend_from_slice(&bin.to_le_bytes());
        }
        o.extend_from_slice(&(self.cutoff_bin as u64).to_le_bytes());
        if !self.excluded.is_empty() {
            o.extend_from_slice(&(self.excluded.len() as u64).to_le_bytes());
            for &(a, b) in &self.excluded {
                o.extend_from_slice(&a.to_le_bytes());
                o.extend_from_slice(&b.to_le_bytes());
            }
        }
        super::store::seal(o)
    }

    /// Parses [`BootstrapData::to_bytes`] output.
    pub fn from_bytes(b: &[u8]) -> Result<BootstrapData, String> {
        let b = if b.starts_with(MAGIC) {
            super::store::unseal(b, "bootstrap.bin")?
        } else if b.starts_with(MAGIC_V1) {
            b
        } else {
            return Err("not a facebias bootstrap.bin".into());
        };
        let mut pos = MAGIC.len();
        // Lengths are counts times record sizes read from the file: overflow is truncation too.
        let mut take = |count: usize, size: usize| -> Result<&[u8], String> {
            let end = count
                .checked_mul(size)
                .and_then(|n| pos.checked_add(n))
                .ok_or("bootstrap.bin is truncated")?;
            let s = b.get(pos..end).ok_or("bootstrap.bin is truncated")?;
            pos = end;
            Ok(s)
        };
        let mut d = BootstrapData::default();
        let subjects = u64::from_le_bytes(take(1, 8)?.try_into().expect("8")) as usize;
        for _ in 0..subjects {
            d.subject_combo
                .push(u16::from_le_bytes(take(1, 2)?.try_into().expect("2")));
            d.subject_images
                .push(u64::from_le_bytes(take(1, 8)?.try_into().expect("8")));
            let m = u32::from_le_bytes(take(1, 4)?.try_into().expect("4")) as usize;
            let raw = take(m, 2)?;
            d.mated_bins.push(
                raw.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            );
        }
        let pairs = u64::from_le_bytes(take(1, 8)?.try_into().expect("8")) as usize;
        let raw = take(pairs, 10)?;
        d.high = raw
            .chunks_exact(10)
            .map(|c| {
                (
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                    u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                    u16::from_le_bytes([c[8], c[9]]),
                )
            })
            .collect();
        d.cutoff_bin = u64::from_le_bytes(take(1, 8)?.try_into().expect("8")) as usize;
        if let Ok(n) = take(1, 8) {
            let n = u64::from_le_bytes(n.try_into().expect("8")) as usize;
            d.excluded = take(n, 8)?
                .chunks_exact(8)
                .map(|c| {
                    (
                        u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                        u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                    )
                })
                .collect();
        }
        if pos != b.len() {
            return Err("bootstrap.bin has trailing bytes".into());
        }
        if d.subject_combo
            .iter()
            .any(|&c| c as usize >= u16::MAX as usize)
            || d.high
                .iter()
                .any(|&(a, b, _)| a as usize >= subjects || b as usize >= subjects)
            || d.excluded
                .iter()
                .any(|&(a, b)| a as usize >= subjects || b as usize >= subjects)
        {
            return Err("bootstrap.bin refers to a subject out of range".into());
        }
        Ok(d)
    }
}

/// SplitMix64: a small, well-tested seeded generator (Steele, Lea & Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with this seed.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform integer in 0..n (n > 0), by rejection (no modulo bias).
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// Weighted counts of one replicate, per combo / cell and per threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Weighted {
    /// Mated comparisons per combo.
    pub mated: Vec<f64>,
    /// False non-matches `[threshold][combo]`.
    pub fnm: Vec<Vec<f64>>,
    /// Non-mated comparisons per cell (upper-triangle index as in `CellHistograms`).
    pub nonmated: Vec<f64>,
    /// False matches `[threshold][cell]`.
    pub fm: Vec<Vec<f64>>,
}

fn cell_index(groups: usize, a: usize, b: usize) -> usize {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    a * groups - a * a.saturating_sub(1) / 2 + b - a
}

/// Precomputed, replicate-independent parts.
pub struct Prepared<'a> {
    data: &'a BootstrapData,
    combos: usize,
    thresholds: usize,
    /// Per subject: mated comparisons and false non-matches per threshold.
    subj_mated: Vec<f64>,
    subj_fnm: Vec<Vec<f64>>,
    /// Per high pair: its cell and how many thresholds it reaches.
    pair_cell: Vec<u32>,
    pair_level: Vec<u8>,
    /// Rank of each threshold by bin (0 = lowest bin).
    rank_of: Vec<usize>,
}

impl<'a> Prepared<'a> {
    /// Prepares the data for thresholds at `bins` (any order). Thresholds below the cutoff cannot be
    /// bootstrapped and make [`Prepared::new`] fail.
    pub fn new(
        data: &'a BootstrapData,
        combos: usize,
        bins: &[usize],
    ) -> Result<Prepared<'a>, String> {
        if let Some(b) = bins.iter().find(|&&b| b < data.cutoff_bin) {
            return Err(format!(
                "threshold bin {b} is below the collected high pairs (from bin {})",
                data.cutoff_bin
            ));
        }
        let mut subj_mated: Vec<f64> = data
            .subject_images
            .iter()
            .map(|&n| (n * n.saturating_sub(1) / 2) as f64)
            .collect();
        for &(a, b) in &data.excluded {
            if a == b {
                subj_mated[a as usize] -= 1.0;
            }
        }
        let subj_fnm = bins
            .iter()
            .map(|&t| {
                data.mated_bins
                    .iter()
                    .zip(&subj_mated)
                    .map(|(b, &m)| m - b.iter().filter(|&&x| x as usize >= t).count() as f64)
                    .collect()
            })
            .collect();
        let pair_cell = data
            .high
            .iter()
            .map(|&(a, b, _)| {
                cell_index(
                    combos,
                    data.subject_combo[a as usize] as usize,
                    data.subject_combo[b as usize] as usize,
                ) as u32
            })
            .collect();
        let pair_level = data
            .high
            .iter()
            .map(|&(_, _, bin)| bins.iter().filter(|&&t| bin as usize >= t).count() as u8)
            .collect();
        let mut order: Vec<usize> = (0..bins.len()).collect();
        order.sort_by_key(|&i| (bins[i], i));
        let mut rank_of = vec![0; bins.len()];
        order.iter().enumerate().for_each(|(r, &i)| rank_of[i] = r);
        Ok(Prepared {
            data,
            combos,
            thresholds: bins.len(),
            subj_mated,
            subj_fnm,
            pair_cell,
            pair_level,
            rank_of,
        })
    }

    /// Weighted counts for subject weights `w`.
    pub fn weighted(&self, w: &[f64]) -> Weighted {
        let (k, t) = (self.combos, self.thresholds);
        let cells = k * (k + 1) / 2;
        let mut mated = vec![0.0; k];
        let mut fnm = vec![vec![0.0; k]; t];
        let mut a = vec![0.0; k];
        let mut b = vec![0.0; k];
        for (s, &ws) in w.iter().enumerate() {
            if ws == 0.0 {
                continue;
            }
            let c = self.data.subject_combo[s] as usize;
            mated[c] += ws * self.subj_mated[s];
            for (ti, f) in fnm.iter_mut().enumerate() {
                f[c] += ws * self.subj_fnm[ti][s];
            }
            let x = ws * self.data.subject_images[s] as f64;
            a[c] += x;
            b[c] += x * x;
        }
        let mut nonmated = vec![0.0; cells];
        for c in 0..k {
            for d in c..k {
                nonmated[cell_index(k, c, d)] = if c == d {
                    (a[c] * a[c] - b[c]) / 2.0
                } else {
                    a[c] * a[d]
                };
            }
        }
        for &(sa, sb) in self.data.excluded.iter().filter(|(a, b)| a != b) {
            let (ca, cb) = (
                self.data.subject_combo[sa as usize] as usize,
                self.data.subject_combo[sb as usize] as usize,
            );
            nonmated[cell_index(k, ca, cb)] -= w[sa as usize] * w[sb as usize];
        }
        // A pair reaching `level` thresholds counts for the `level` lowest ones (by bin): accumulate per
        // level, then suffix-sum, so that level l holds every pair reaching at least l thresholds.
        let mut by_level = vec![vec![0.0; cells]; t + 1];
        for (p, &(sa, sb, _)) in self.data.high.iter().enumerate() {
            let ww = w[sa as usize] * w[sb as usize];
            if ww != 0.0 {
                by_level[self.pair_level[p] as usize][self.pair_cell[p] as usize] += ww;
            }
        }
        for l in (1..t).rev() {
            let (lo, hi) = by_level.split_at_mut(l + 1);
            lo[l].iter_mut().zip(&hi[0]).for_each(|(x, y)| *x += y);
        }
        // The threshold of rank r (0 = lowest bin) is reached by pairs of level > r.
        let fm = (0..t)
            .map(|ti| by_level[self.rank_of[ti] + 1].clone())
            .collect();
        Weighted {
            mated,
            fnm,
            nonmated,
            fm,
        }
    }

    /// Per-group (false matches, non-mated, false non-matches, mated) of a grouping at threshold `ti`.
    pub fn group_counts(&self, wc: &Weighted, g: &Grouping, ti: usize) -> Vec<[f64; 4]> {
        let k = self.combos;
        let mut out = vec![[0.0; 4]; g.groups.len()];
        for c in 0..k {
            if let Some(gc) = g.group_of_combo[c] {
                out[gc][2] += wc.fnm[ti][c];
                out[gc][3] += wc.mated[c];
            }
            for d in c..k {
                if let (Some(x), Some(y)) = (g.group_of_combo[c], g.group_of_combo[d]) {
                    if x == y {
                        let cell = cell_index(k, c, d);
                        out[x][0] += wc.fm[ti][cell];
                        out[x][1] += wc.nonmated[cell];
                    }
                }
            }
        }
        out
    }
}

/// Subject weights of one replicate: within each combo, as many draws with replacement as it has subjects.
pub fn draw_weights(subject_combo: &[u16], combos: usize, rng: &mut SplitMix64) -> Vec<f64> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); combos];
    for (s, &c) in subject_combo.iter().enumerate() {
        members[c as usize].push(s);
    }
    let mut w = vec![0.0; subject_combo.len()];
    for m in &members {
        for _ in 0..m.len() {
            w[m[rng.below(m.len() as u64) as usize]] += 1.0;
        }
    }
    w
}

/// The p-th percentile (0..100) of finite values, linear interpolation between order statistics
/// (numpy's default); NaN when there is none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = p / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two combos. Subjects 0,1 in combo 0 (2 and 1 images), subject 2 in combo 1 (2 images).
    fn toy() -> BootstrapData {
        BootstrapData {
            subject_combo: vec![0, 0, 1],
            subject_images: vec![2, 1, 2],
            mated_bins: vec![vec![40000], vec![], vec![30000]],
            // Non-mated image pairs at or above bin 35000: one in cell (0,0), one in (0,1).
            high: vec![(0, 1, 36000), (1, 2, 50000)],
            cutoff_bin: 35000,
            excluded: Vec::new(),
        }
    }

    #[test]
    fn unit_weights_give_the_exact_counts() {
        let d = toy();
        // Thresholds given highest first, as targets 1e-2, 1e-3 … would not be: order must not matter.
        let p = Prepared::new(&d, 2, &[45000, 35000]).unwrap();
        let mut wc = p.weighted(&[1.0, 1.0, 1.0]);
        wc.fnm.swap(0, 1);
        wc.fm.swap(0, 1);
        // Mated: combo 0 has C(2,2)=1 (+0) = 1; combo 1 has 1.
        assert_eq!(wc.mated, vec![1.0, 1.0]);
        // At bin 35000: subject 0's mated score (40000) matches → fnm 0; subject 2's (30000) does not → 1.
        assert_eq!(wc.fnm[0], vec![0.0, 1.0]);
        // At 45000 both miss.
        assert_eq!(wc.fnm[1], vec![1.0, 1.0]);
        // Non-mated: cell (0,0): (3² − (2² + 1²))/2 = 2 (subject 0's two images × subject 1's one);
        // cell (0,1): 3·2 = 6; cell (1,1): (4 − 4)/2 = 0.
        assert_eq!(wc.nonmated, vec![2.0, 6.0, 0.0]);
        assert_eq!(wc.fm[0], vec![1.0, 1.0, 0.0]);
        assert_eq!(wc.fm[1], vec![0.0, 1.0, 0.0]);
    }

    #[test]
    fn weights_scale_pairs_by_both_subjects() {
        let d = toy();
        let p = Prepared::new(&d, 2, &[35000]).unwrap();
        // Subject 1 drawn twice, subject 0 not at all: combo 0 = two copies of subject 1 (1 image each).
        let wc = p.weighted(&[0.0, 2.0, 1.0]);
        // Copies of one subject never pair with each other: (2² − 2²)/2 = 0 non-mated in cell (0,0).
        assert_eq!(wc.nonmated[0], 0.0);
        // Cell (0,1): A0 = 2, A1 = 2 → 4; the high pair (1,2) counts w1·w2 = 2.
        assert_eq!((wc.nonmated[1], wc.fm[0][1]), (4.0, 2.0));
        assert!(
            Prepared::new(&d, 2, &[100]).is_err(),
            "threshold below the cutoff"
        );
    }

    #[test]
    fn excluded_pairs_leave_the_denominators() {
        // Exclude subject 2's mated pair (a label error) and one non-mated pair between subjects 0
        // and 2 (its score already gone from `high`): combo 1 loses its mated comparison, cell (0,1)
        // one non-mated comparison (6 → 5 with unit weights; with weights 2, 1, 2 it loses w0·w2 = 4).
        let mut d = toy();
        d.mated_bins[2].clear();
        d.excluded = vec![(2, 2), (0, 2)];
        let p = Prepared::new(&d, 2, &[35000]).unwrap();
        let wc = p.weighted(&[1.0, 1.0, 1.0]);
        assert_eq!(wc.mated, vec![1.0, 0.0]);
        assert_eq!(wc.fnm[0], vec![0.0, 0.0]);
        assert_eq!(wc.nonmated, vec![2.0, 5.0, 0.0]);
        let wc = p.weighted(&[2.0, 1.0, 2.0]);
        // A0 = 2·2 + 1 = 5, A1 = 2·2 = 4 → 20, less w0·w2 = 4 → 16.
        assert_eq!(wc.nonmated[1], 16.0);
        assert_eq!(BootstrapData::from_bytes(&d.to_bytes()).unwrap(), d);
    }

    #[test]
    fn file_round_trip() {
        let d = toy();
        assert_eq!(BootstrapData::from_bytes(&d.to_bytes()).unwrap(), d);
        assert!(BootstrapData::from_bytes(&d.to_bytes()[..20]).is_err());
    }

    #[test]
    fn draws_keep_group_sizes_and_are_seeded() {
        let combo = vec![0u16, 0, 0, 1, 1];
        let a = draw_weights(&combo, 2, &mut SplitMix64::new(7));
        assert_eq!(a[..3].iter().sum::<f64>(), 3.0);
        assert_eq!(a[3..].iter().sum::<f64>(), 2.0);
        assert_eq!(a, draw_weights(&combo, 2, &mut SplitMix64::new(7)));
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        // numpy.percentile([1,2,3,4], 2.5) = 1.075; 97.5 → 3.925
        assert!((percentile(&[4.0, 1.0, 3.0, 2.0], 2.5) - 1.075).abs() < 1e-12);
        assert!((percentile(&[4.0, 1.0, 3.0, 2.0, f64::NAN], 97.5) - 3.925).abs() < 1e-12);
        assert!(percentile(&[], 50.0).is_nan());
    }
}

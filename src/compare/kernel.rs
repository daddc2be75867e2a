//! The all-pairs similarity kernel: a blocked, register-tiled product `X·Xᵀ` over L2-normalised
//! embeddings, fused with binning — every score goes straight into the histogram of its
//! (group_a, group_b) cell, and nothing of size N² is ever stored.
//!
//! Shape (that of an SGEMM micro-kernel):
//! - rows are sorted by (group, subject), so most tiles fall in one cell and pairs of the same subject
//!   (mated pairs, routed to the genuine side) can only occur in tiles near the diagonal;
//! - the sorted rows are packed twice: into 6-row A panels (`K×6`, one broadcast per row) and 16-column
//!   B panels (`K×16`, two 8-lane vectors per k);
//! - the micro-kernel keeps a 6×16 tile of scores in 12 AVX2 registers (`fmadd` over k), converts the
//!   tile to bin indices with vector instructions, then increments the bins;
//! - work is handed out as row blocks of 48 rows (upper triangle only) from an atomic counter to
//!   `threads` workers with private `u32` histograms, flushed into `u64` totals; integer counts make the
//!   result identical for any thread count and any scheduling.
//!
//! Kernels: [`Kernel::Avx512f`] on x86-64 with AVX-512F (a 14×32 tile in 28 of the 32 zmm registers),
//! [`Kernel::Avx2Fma`] with AVX2 and FMA (the 6×16 tile above), [`Kernel::Portable`] (the 6×16 tiling in
//! plain Rust, for other CPUs), and [`Kernel::Scalar`] (one dot product per pair, the reference).
//! [`Kernel::detect`] picks the best once and caches it. Every tiled kernel accumulates each pair's dot
//! product with one fused multiply-add per dimension, in increasing order from 0.0, so the AVX-512 and
//! AVX2 kernels give bit-identical scores, bins, mated scores and high-pair lists; work units are row
//! blocks whose size does not depend on the kernel, so shards computed by different CPU kernels
//! partition the same pairs and merge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::{bin_of, CellHistograms, MatedScore, BINS};

/// Tile height and width of the 6×16 kernels (AVX2 and portable).
const MR: usize = 6;
const NR: usize = 16;
/// Tile height and width of the AVX-512F kernel.
const MR512: usize = 14;
const NR512: usize = 32;
/// The largest tile of any kernel (score and bin buffers have this size).
const MAX_TILE: usize = MR512 * NR512;
/// Rows of a work unit are a multiple of this, the least common multiple of every kernel's tile
/// height, so that each kernel's A panels tile each work unit exactly and every kernel cuts the rows
/// into the same work units (shards of different CPU kernels partition the same pairs).
const JOB_QUANTUM: usize = lcm(MR, MR512);
/// 6-row A panels per work unit, at least (row block of 48 rows, before rounding to [`JOB_QUANTUM`]).
const PANELS_PER_JOB: usize = 8;

const fn lcm(a: usize, b: usize) -> usize {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    a / x * b
}

/// A similarity kernel implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Kernel {
    /// One 8-accumulator dot product per pair (the reference).
    Scalar,
    /// The blocked 6×16 tiling in portable Rust (compiler-vectorised).
    #[value(name = "portable-6x16", alias = "portable")]
    Portable,
    /// The blocked 6×16 tiling with AVX2 + FMA intrinsics.
    #[value(name = "avx2-fma-6x16", alias = "avx2-fma")]
    Avx2Fma,
    /// The blocked 14×32 tiling with AVX-512F intrinsics (28 zmm accumulators).
    #[value(name = "avx512f-14x32", alias = "avx512f")]
    Avx512f,
}

impl Kernel {
    /// The fastest kernel this CPU supports, detected once: AVX-512F, else AVX2 + FMA, else portable.
    pub fn detect() -> Kernel {
        static BEST: OnceLock<Kernel> = OnceLock::new();
        *BEST.get_or_init(|| {
            [Kernel::Avx512f, Kernel::Avx2Fma]
                .into_iter()
                .find(|k| k.available())
                .unwrap_or(Kernel::Portable)
        })
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512f => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx2Fma | Kernel::Avx512f => false,
            Kernel::Scalar | Kernel::Portable => true,
        }
    }

    /// The name recorded in run.json and bench output (also accepted by `--kernel`).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Portable => "portable-6x16",
            Kernel::Avx2Fma => "avx2-fma-6x16",
            Kernel::Avx512f => "avx512f-14x32",
        }
    }

    /// The kernel of a recorded name (`avx2-fma-6x16`, …), if there is one.
    pub fn from_name(name: &str) -> Option<Kernel> {
        [
            Kernel::Scalar,
            Kernel::Portable,
            Kernel::Avx2Fma,
            Kernel::Avx512f,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// Result of an all-pairs pass.
#[derive(Debug, Clone, PartialEq)]
pub struct AllPairs {
    /// Non-mated score histograms per cell.
    pub nonmated: CellHistograms,
    /// Every mated pair with its score, sorted by (a, b), `a < b` in input row order.
    pub mated: Vec<MatedScore>,
}

/// Which part of the work to do: shard `index` of `count` (0-based). Shards partition the row blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole job.
    pub const ALL: Shard = Shard { index: 0, count: 1 };
}

/// Scores all pairs of the `n = cell.len()` rows of `emb` (`n × dim`, L2-normalised): mated pairs
/// (same subject id) are returned with their scores, non-mated pairs are counted into the histogram of
/// their `(cell[i], cell[j])` pair of `groups` groups.
// The eight values are the kernel's natural inputs (data, layout, labels, execution); a wrapper
// struct would only move them.
#[allow(clippy::too_many_arguments)]
pub fn all_pairs(
    emb: &[f32],
    dim: usize,
    cell: &[u16],
    subject: &[u32],
    groups: usize,
    kernel: Kernel,
    threads: usize,
    shard: Shard,
) -> AllPairs {
    assert_eq!(emb.len(), cell.len() * dim, "embedding matrix size");
    assert_eq!(cell.len(), subject.len());
    assert!(
        shard.count >= 1 && shard.index < shard.count,
        "shard index out of range"
    );
    match kernel {
        Kernel::Scalar => scalar_all_pairs(emb, dim, cell, subject, groups, threads, shard),
        Kernel::Portable | Kernel::Avx2Fma | Kernel::Avx512f => {
            blocked_all_pairs(
                emb,
                dim,
                cell,
                subject,
                groups,
                tiled(kernel),
                threads,
                shard,
                None,
            )
            .0
        }
    }
}

fn scalar_all_pairs(
    emb: &[f32],
    dim: usize,
    cell: &[u16],
    subject: &[u32],
    groups: usize,
    threads: usize,
    shard: Shard,
) -> AllPairs {
    let n = cell.len();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .expect("thread pool");
    // A shard scores the pairs (i, j > i) of the rows i with i % count == index.
    let keep: Vec<bool> = (0..n).map(|i| i % shard.count == shard.index).collect();
    let parts: Vec<(CellHistograms, Vec<MatedScore>)> = pool.install(|| {
        use rayon::prelude::*;
        let t = rayon::current_num_threads().max(1);
        (0..t)
            .into_par_iter()
            .map(|w| {
                let mut h = CellHistograms::new(groups);
                let mut mated = Vec::new();
                let mut i = w;
                while i < n {
                    if keep[i] {
                        let xi = &emb[i * dim..(i + 1) * dim];
                        for j in i + 1..n {
                            let s = super::dot(xi, &emb[j * dim..(j + 1) * dim]);
                            if subject[i] == subject[j] {
                                mated.push(MatedScore {
                                    a: i,
                                    b: j,
                                    score: s,
                                });
                            } else {
                                let idx = h.index(cell[i] as usize, cell[j] as usize);
                                h.cells[idx].counts[bin_of(s)] += 1;
                            }
                        }
                    }
                    i += t;
                }
                (h, mated)
            })
            .collect()
    });
    let mut nonmated = CellHistograms::new(groups);
    let mut mated = Vec::new();
    for (h, m) in parts {
        nonmated.merge(&h);
        mated.extend(m);
    }
    mated.sort_by_key(|m| (m.a, m.b));
    AllPairs { nonmated, mated }
}

/// The tiled kernel that serves `kernel`: itself where this CPU has its features, else the portable
/// tiling (the scalar reference is served by the portable tiling too).
fn tiled(kernel: Kernel) -> Kernel {
    match kernel {
        Kernel::Avx2Fma | Kernel::Avx512f if kernel.available() => kernel,
        _ => Kernel::Portable,
    }
}

/// Rows sorted by (group, subject) and packed into A and B panels of one kernel's tile shape.
struct Packed {
    n: usize,
    dim: usize,
    /// Tile height (rows of an A panel) and width (columns of a B panel).
    mr: usize,
    nr: usize,
    /// Original row of each sorted position.
    order: Vec<usize>,
    /// Group of each sorted position (padded positions repeat the last).
    grp: Vec<u16>,
    /// Subject rank of each sorted position, non-decreasing.
    subj: Vec<u32>,
    /// `⌈n/mr⌉` panels of `dim × mr`.
    a: AlignedBuf,
    /// `⌈n/nr⌉` panels of `dim × nr`.
    b: AlignedBuf,
}

/// One cache line of floats; a `Vec` of them is 64-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A float buffer aligned to 64 bytes, so that the micro-kernel's 32-byte loads never straddle a
/// cache line (with `Vec<f32>`'s 16-byte alignment one of the two B loads per k did).
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    /// `len` zeros, 64-byte aligned.
    pub(crate) fn zeroed(len: usize) -> AlignedBuf {
        AlignedBuf {
            lines: vec![Line([0.0; 16]); len.div_ceil(16)],
            len,
        }
    }
}

impl AlignedBuf {
    /// `len` zeros, 64-byte aligned, written by `threads` workers (a large buffer is zeroed in
    /// parallel, on transparent huge pages where Linux grants them, instead of one `memset`).
    pub(crate) fn zeroed_parallel(len: usize, threads: usize) -> AlignedBuf {
        let lines = len.div_ceil(16);
        let mut v: Vec<Line> = Vec::with_capacity(lines);
        let spare = &mut v.spare_capacity_mut()[..lines];
        #[cfg(target_os = "linux")]
        {
            const HUGE: usize = 2 << 20;
            let start = spare.as_mut_ptr() as usize;
            let (lo, hi) = (
                start.next_multiple_of(HUGE),
                (start + lines * 64) / HUGE * HUGE,
            );
            if hi > lo {
                // SAFETY: [lo, hi) lies inside the vector's allocation, which nothing reads yet;
                // MADV_HUGEPAGE only changes how its untouched pages will be backed.
                unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
            }
        }
        let per = lines.div_ceil(threads.max(1)).max(1);
        std::thread::scope(|s| {
            for part in spare.chunks_mut(per) {
                s.spawn(move || {
                    part.iter_mut()
                        .for_each(|l| *l = std::mem::MaybeUninit::new(Line([0.0; 16])))
                });
            }
        });
        // SAFETY: every one of the `lines` elements was written above (the chunks cover `spare`).
        unsafe { v.set_len(lines) };
        AlignedBuf { lines: v, len }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` around `[f32; 16]` with no padding (64 bytes, align 64), so the
        // lines are a contiguous run of 16·lines.len() ≥ len initialised floats.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr() as *const f32, self.len) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, with unique access through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr() as *mut f32, self.len) }
    }
}

/// Rows in kernel order: sorted by (group, subject, row), so that each subject is one contiguous run
/// and tiles away from the diagonal hold no mated pairs.
pub(crate) struct SortedRows {
    /// Original row of each sorted position.
    pub order: Vec<usize>,
    /// Group of each sorted position.
    pub grp: Vec<u16>,
    /// Subject rank of each sorted position, non-decreasing (equal ⇔ same subject and group).
    pub subj: Vec<u32>,
}

/// Sorts rows by (group, subject, row) and ranks the subjects by first appearance.
pub(crate) fn sort_rows(cell: &[u16], subject: &[u32]) -> SortedRows {
    let n = cell.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (cell[i], subject[i], i));
    let grp: Vec<u16> = order.iter().map(|&i| cell[i]).collect();
    // Subjects become contiguous runs; rank them by first appearance so ranks never decrease.
    let mut subj = Vec::with_capacity(n);
    let mut rank = 0u32;
    for (p, &i) in order.iter().enumerate() {
        if p > 0 && (subject[i] != subject[order[p - 1]] || cell[i] != cell[order[p - 1]]) {
            rank += 1;
        }
        subj.push(rank);
    }
    SortedRows { order, grp, subj }
}

fn pack(emb: &[f32], dim: usize, cell: &[u16], subject: &[u32], mr: usize, nr: usize) -> Packed {
    let n = cell.len();
    let SortedRows { order, grp, subj } = sort_rows(cell, subject);
    let pa = n.div_ceil(mr);
    let pb = n.div_ceil(nr);
    // A panels are padded to whole cache lines too, so every panel starts on a line boundary when
    // dim·mr floats is a multiple of 16 (dim a multiple of 8), as for the usual embedding sizes.
    let mut a = AlignedBuf::zeroed(pa * dim * mr);
    let mut b = AlignedBuf::zeroed(pb * dim * nr);
    for (p, &i) in order.iter().enumerate() {
        let row = &emb[i * dim..(i + 1) * dim];
        let (qa, ra) = (p / mr, p % mr);
        let (qb, rb) = (p / nr, p % nr);
        for (k, &v) in row.iter().enumerate() {
            a[qa * dim * mr + k * mr + ra] = v;
            b[qb * dim * nr + k * nr + rb] = v;
        }
    }
    Packed {
        n,
        dim,
        mr,
        nr,
        order,
        grp,
        subj,
        a,
        b,
    }
}

/// A worker's private counts.
struct Local {
    groups: usize,
    /// `cells × BINS` u32 counts.
    counts: Vec<u32>,
    /// Pairs counted since the last flush (flushed before any bin could overflow).
    pending: u64,
    /// u64 totals the counts are flushed into when `pending` grows large.
    totals: Option<CellHistograms>,
    /// Mated pairs as (sorted position, sorted position, score).
    mated: Vec<(usize, usize, f32)>,
    /// Whether to count into histograms (the first pass) …
    count: bool,
    /// … and/or keep the non-mated pairs whose bin is at least this (`u32::MAX`: keep none).
    collect_from: u32,
    /// Kept non-mated pairs as (sorted position, sorted position, bin).
    high: Vec<(usize, usize, u16)>,
}

impl Local {
    fn new(groups: usize) -> Local {
        let cells = groups * (groups + 1) / 2;
        Local {
            groups,
            counts: vec![0; cells * BINS],
            pending: 0,
            totals: None,
            mated: Vec::new(),
            count: true,
            collect_from: u32::MAX,
            high: Vec::new(),
        }
    }

    #[inline]
    fn cell_offset(&self, a: u16, b: u16) -> usize {
        let (a, b) = if a <= b {
            (a as usize, b as usize)
        } else {
            (b as usize, a as usize)
        };
        (a * self.groups - a * a.saturating_sub(1) / 2 + b - a) * BINS
    }

    /// Moves the u32 counts into the u64 totals.
    fn flush(&mut self) {
        let groups = self.groups;
        let mut totals = self
            .totals
            .take()
            .unwrap_or_else(|| CellHistograms::new(groups));
        self.flush_into(&mut totals);
        self.totals = Some(totals);
    }

    fn flush_into(&mut self, total: &mut CellHistograms) {
        for (c, h) in total.cells.iter_mut().enumerate() {
            let src = &mut self.counts[c * BINS..(c + 1) * BINS];
            for (dst, s) in h.counts.iter_mut().zip(src.iter_mut()) {
                *dst += *s as u64;
                *s = 0;
            }
        }
        self.pending = 0;
    }
}

/// A register-tiled micro-kernel: `MR` rows (one A panel) × `NR` columns (one B panel), scores and
/// bins of the tile written row-major (`r·NR + c`) into the first `MR·NR` entries of the buffers.
trait Micro {
    const MR: usize;
    const NR: usize;
    /// One tile.
    ///
    /// # Safety
    /// The CPU must support the kernel's instruction set; `a` holds `dim·MR` and `b` `dim·NR` floats.
    unsafe fn tile(
        a: &[f32],
        b: &[f32],
        dim: usize,
        scores: &mut [f32; MAX_TILE],
        bins: &mut [u32; MAX_TILE],
    );
}

/// The 6×16 tiling in plain Rust.
struct PortableTile;

impl Micro for PortableTile {
    const MR: usize = MR;
    const NR: usize = NR;
    unsafe fn tile(
        a: &[f32],
        b: &[f32],
        dim: usize,
        scores: &mut [f32; MAX_TILE],
        bins: &mut [u32; MAX_TILE],
    ) {
        micro_portable(a, b, dim, scores);
        for (b, &s) in bins[..MR * NR].iter_mut().zip(&scores[..MR * NR]) {
            *b = bin_of(s) as u32;
        }
    }
}

/// Portable 6×16 micro-kernel: `out[r·16 + c] = Σ_k a[k·6 + r] · b[k·16 + c]`.
#[inline]
fn micro_portable(a: &[f32], b: &[f32], dim: usize, out: &mut [f32; MAX_TILE]) {
    let mut acc = [[0.0f32; NR]; MR];
    for k in 0..dim {
        let bk: &[f32; NR] = b[k * NR..k * NR + NR].try_into().expect("panel width");
        let ak: &[f32; MR] = a[k * MR..k * MR + MR].try_into().expect("panel height");
        for r in 0..MR {
            for c in 0..NR {
                acc[r][c] += ak[r] * bk[c];
            }
        }
    }
    for r in 0..MR {
        out[r * NR..r * NR + NR].copy_from_slice(&acc[r]);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{MAX_TILE, MR, NR};
    use std::arch::x86_64::*;

    /// The 6×16 AVX2 + FMA tile.
    pub(super) struct Avx2Tile;

    impl super::Micro for Avx2Tile {
        const MR: usize = MR;
        const NR: usize = NR;
        unsafe fn tile(
            a: &[f32],
            b: &[f32],
            dim: usize,
            scores: &mut [f32; MAX_TILE],
            bins: &mut [u32; MAX_TILE],
        ) {
            // SAFETY: the caller's contract (AVX2 + FMA, panel sizes).
            unsafe { micro(a, b, dim, scores, bins) }
        }
    }

    /// AVX2+FMA 6×16 micro-kernel with the binning of the tile fused in.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` holds `dim·6` and `b` `dim·16` floats.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn micro(
        a: &[f32],
        b: &[f32],
        dim: usize,
        scores: &mut [f32; MAX_TILE],
        bins: &mut [u32; MAX_TILE],
    ) {
        assert!(a.len() >= dim * MR && b.len() >= dim * NR);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut c = [_mm256_setzero_ps(); 12];
        for k in 0..dim {
            // SAFETY: k < dim, so the loads stay inside the panels (checked above).
            unsafe {
                let b0 = _mm256_loadu_ps(pb.add(k * NR));
                let b1 = _mm256_loadu_ps(pb.add(k * NR + 8));
                let ak = pa.add(k * MR);
                let a0 = _mm256_broadcast_ss(&*ak);
                c[0] = _mm256_fmadd_ps(a0, b0, c[0]);
                c[1] = _mm256_fmadd_ps(a0, b1, c[1]);
                let a1 = _mm256_broadcast_ss(&*ak.add(1));
                c[2] = _mm256_fmadd_ps(a1, b0, c[2]);
                c[3] = _mm256_fmadd_ps(a1, b1, c[3]);
                let a2 = _mm256_broadcast_ss(&*ak.add(2));
                c[4] = _mm256_fmadd_ps(a2, b0, c[4]);
                c[5] = _mm256_fmadd_ps(a2, b1, c[5]);
                let a3 = _mm256_broadcast_ss(&*ak.add(3));
                c[6] = _mm256_fmadd_ps(a3, b0, c[6]);
                c[7] = _mm256_fmadd_ps(a3, b1, c[7]);
                let a4 = _mm256_broadcast_ss(&*ak.add(4));
                c[8] = _mm256_fmadd_ps(a4, b0, c[8]);
                c[9] = _mm256_fmadd_ps(a4, b1, c[9]);
                let a5 = _mm256_broadcast_ss(&*ak.add(5));
                c[10] = _mm256_fmadd_ps(a5, b0, c[10]);
                c[11] = _mm256_fmadd_ps(a5, b1, c[11]);
            }
        }
        // Bins: floor(s·2^15) + 2^15, clamped to [0, 2^16 − 1]; NaN → 0 (max returns its second operand).
        let scale = _mm256_set1_ps(32768.0);
        let lo = _mm256_setzero_ps();
        let hi = _mm256_set1_ps(65535.0);
        for (v, acc) in c.iter().enumerate() {
            let f = _mm256_add_ps(_mm256_floor_ps(_mm256_mul_ps(*acc, scale)), scale);
            let f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
            // SAFETY: v < 12, so v·8 + 8 ≤ 96 ≤ MAX_TILE.
            unsafe {
                _mm256_storeu_ps(scores.as_mut_ptr().add(v * 8), *acc);
                _mm256_storeu_si256(
                    bins.as_mut_ptr().add(v * 8) as *mut __m256i,
                    _mm256_cvttps_epi32(f),
                );
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{MAX_TILE, MR512, NR512};
    use std::arch::x86_64::*;

    /// The AVX-512F tile, `MR512 × 32` (two zmm columns).
    pub(super) struct Avx512Tile;

    impl super::Micro for Avx512Tile {
        const MR: usize = MR512;
        const NR: usize = NR512;
        unsafe fn tile(
            a: &[f32],
            b: &[f32],
            dim: usize,
            scores: &mut [f32; MAX_TILE],
            bins: &mut [u32; MAX_TILE],
        ) {
            // SAFETY: the caller's contract (AVX-512F, panel sizes).
            unsafe { micro::<MR512, 2>(a, b, dim, scores, bins) }
        }
    }

    /// AVX-512F `MR × 16·NV` micro-kernel: per k, NV panel loads, MR broadcasts and MR·NV `vfmadd`
    /// (the pair's dot product accumulated in increasing k from 0, as in the AVX2 kernel), then the
    /// tile's bins computed 16 lanes at a time with the arithmetic of [`super::bin_of`].
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `a` holds `dim·MR` and `b` `dim·16·NV` floats, and
    /// `MR·16·NV ≤ MAX_TILE`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn micro<const MR: usize, const NV: usize>(
        a: &[f32],
        b: &[f32],
        dim: usize,
        scores: &mut [f32; MAX_TILE],
        bins: &mut [u32; MAX_TILE],
    ) {
        let nr = 16 * NV;
        assert!(a.len() >= dim * MR && b.len() >= dim * nr && MR * nr <= MAX_TILE);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut c = [[_mm512_setzero_ps(); NV]; MR];
        for k in 0..dim {
            // SAFETY: k < dim, so lanes k·nr .. k·nr + nr of `b` and values k·MR .. k·MR + MR of `a`
            // lie inside the panels (checked above).
            unsafe {
                let mut bk = [_mm512_setzero_ps(); NV];
                for (v, x) in bk.iter_mut().enumerate() {
                    *x = _mm512_loadu_ps(pb.add(k * nr + 16 * v));
                }
                for (r, cr) in c.iter_mut().enumerate() {
                    let ar = _mm512_set1_ps(*pa.add(k * MR + r));
                    for (x, bv) in cr.iter_mut().zip(&bk) {
                        *x = _mm512_fmadd_ps(ar, *bv, *x);
                    }
                }
            }
        }
        // Bins: floor(s·2^15) + 2^15, clamped to [0, 2^16 − 1]; NaN → 0 (max returns its second
        // operand), the same operations as the AVX2 kernel and `bin_of`.
        let scale = _mm512_set1_ps(32768.0);
        let lo = _mm512_setzero_ps();
        let hi = _mm512_set1_ps(65535.0);
        for (r, cr) in c.iter().enumerate() {
            for (v, acc) in cr.iter().enumerate() {
                let floor = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(
                    _mm512_mul_ps(*acc, scale),
                );
                let f = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(floor, scale), lo), hi);
                let at = r * nr + 16 * v;
                // SAFETY: at + 16 ≤ MR·nr ≤ MAX_TILE (checked above).
                unsafe {
                    _mm512_storeu_ps(scores.as_mut_ptr().add(at), *acc);
                    _mm512_storeu_si512(
                        bins.as_mut_ptr().add(at) as *mut __m512i,
                        _mm512_cvttps_epi32(f),
                    );
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn blocked_all_pairs(
    emb: &[f32],
    dim: usize,
    cell: &[u16],
    subject: &[u32],
    groups: usize,
    kernel: Kernel,
    threads: usize,
    shard: Shard,
    collect_from: Option<usize>,
) -> (AllPairs, Vec<(usize, usize, u16)>) {
    let args = (
        emb,
        dim,
        cell,
        subject,
        groups,
        threads,
        shard,
        collect_from,
    );
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512f if kernel.available() => blocked::<avx512::Avx512Tile>(args),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2Fma if kernel.available() => blocked::<avx2::Avx2Tile>(args),
        _ => blocked::<PortableTile>(args),
    }
}

type BlockedArgs<'a> = (
    &'a [f32],
    usize,
    &'a [u16],
    &'a [u32],
    usize,
    usize,
    Shard,
    Option<usize>,
);

/// The blocked all-pairs pass with the micro-kernel `M`, which the caller has checked this CPU runs.
fn blocked<M: Micro>(
    (emb, dim, cell, subject, groups, threads, shard, collect_from): BlockedArgs,
) -> (AllPairs, Vec<(usize, usize, u16)>) {
    let p = pack(emb, dim, cell, subject, M::MR, M::NR);
    let n = p.n;
    // The job size depends on n and dim only (not on the thread count or the kernel), so every
    // thread count, every shard split and every CPU kernel sees the same jobs.
    let rows = job_rows(dim, n);
    let jobs: Vec<usize> = (0..n.div_ceil(rows))
        .filter(|j| j % shard.count == shard.index)
        .collect();
    let next = AtomicUsize::new(0);
    let workers = threads.max(1).min(jobs.len().max(1));
    let locals: Vec<Local> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (p, jobs, next) = (&p, &jobs, &next);
                s.spawn(move || {
                    let mut local = Local::new(groups);
                    if let Some(cut) = collect_from {
                        local.count = false;
                        local.collect_from = cut as u32;
                    }
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&job) = jobs.get(j) else { break };
                        run_job::<M>(p, job * rows..((job + 1) * rows).min(n), &mut local);
                        // A job adds fewer than rows·n pairs; flush well before any u32 bin could
                        // overflow.
                        if local.pending > (u32::MAX as u64) / 2 {
                            local.flush();
                        }
                    }
                    local
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("kernel worker panicked"))
            .collect()
    });
    // Merge in worker order (integer sums: the order does not change the result).
    let mut nonmated = CellHistograms::new(groups);
    let mut mated = Vec::new();
    let mut high = Vec::new();
    for mut l in locals {
        high.extend(l.high.iter().map(|&(x, y, b)| {
            let (a, c) = (p.order[x], p.order[y]);
            (a.min(c), a.max(c), b)
        }));
        if let Some(t) = l.totals.take() {
            nonmated.merge(&t);
        }
        l.flush_into(&mut nonmated);
        mated.extend(l.mated.iter().map(|&(x, y, s)| {
            let (a, b) = (p.order[x], p.order[y]);
            MatedScore {
                a: a.min(b),
                b: a.max(b),
                score: s,
            }
        }));
    }
    mated.sort_by_key(|m| (m.a, m.b));
    high.sort_unstable();
    (AllPairs { nonmated, mated }, high)
}

/// The second pass for the bootstrap: every non-mated pair whose bin is at least `from_bin`, as
/// (row a, row b, bin) with `a < b`, sorted; computed with the same tiles as [`all_pairs`], so its bins
/// are exactly those counted there. (The scalar kernel is served by the portable tiling.)
#[allow(clippy::too_many_arguments)]
pub fn high_pairs(
    emb: &[f32],
    dim: usize,
    cell: &[u16],
    subject: &[u32],
    groups: usize,
    kernel: Kernel,
    threads: usize,
    from_bin: usize,
) -> Vec<(usize, usize, u16)> {
    blocked_all_pairs(
        emb,
        dim,
        cell,
        subject,
        groups,
        tiled(kernel),
        threads,
        Shard::ALL,
        Some(from_bin),
    )
    .1
}

/// One row block (sorted positions `rows`, which start on a multiple of [`JOB_QUANTUM`] and so on an
/// A-panel boundary of every kernel) against every B panel to its right (upper triangle).
fn run_job<M: Micro>(p: &Packed, rows: std::ops::Range<usize>, local: &mut Local) {
    let (n, dim) = (p.n, p.dim);
    let (mr, nr) = (M::MR, M::NR);
    debug_assert!(p.mr == mr && p.nr == nr && rows.start.is_multiple_of(mr));
    let tile_len = mr * nr;
    let (first_panel, last_panel) = (rows.start / mr, rows.end.div_ceil(mr));
    let mut scores = [0.0f32; MAX_TILE];
    let mut bins = [0u32; MAX_TILE];
    let panels_b = n.div_ceil(nr);
    // GotoBLAS order: each B panel (dim × nr) meets every A panel of the block (in L2).
    for qb in rows.start / nr..panels_b {
        let j0 = qb * nr;
        let j_end = (j0 + nr).min(n);
        let bpanel = &p.b[qb * dim * nr..(qb + 1) * dim * nr];
        for qa in first_panel..last_panel {
            let i0 = qa * mr;
            let i_end = (i0 + mr).min(n);
            if j_end <= i0 + 1 {
                continue; // no j > i in this tile
            }
            let apanel = &p.a[qa * dim * mr..(qa + 1) * dim * mr];
            // SAFETY: `blocked` runs M only where this CPU supports it; the panels hold dim·mr and
            // dim·nr floats.
            unsafe { M::tile(apanel, bpanel, dim, &mut scores, &mut bins) };
            let bins = &bins[..tile_len];
            let full = j0 >= i_end && i_end - i0 == mr && j_end - j0 == nr;
            let uniform = p.grp[i0] == p.grp[i_end - 1] && p.grp[j0] == p.grp[j_end - 1];
            let may_share_subject = p.subj[j0] <= p.subj[i_end - 1];
            if full && uniform && !may_share_subject {
                if local.count {
                    let base = local.cell_offset(p.grp[i0], p.grp[j0]);
                    let h = &mut local.counts[base..base + BINS];
                    for &b in bins.iter() {
                        h[b as usize] += 1;
                    }
                    local.pending += tile_len as u64;
                }
                if bins.iter().any(|&b| b >= local.collect_from) {
                    for (t, &b) in bins.iter().enumerate() {
                        if b >= local.collect_from {
                            local.high.push((i0 + t / nr, j0 + t % nr, b as u16));
                        }
                    }
                }
            } else {
                for i in i0..i_end {
                    let r = i - i0;
                    for j in (j0.max(i + 1))..j_end {
                        let t = r * nr + (j - j0);
                        if p.subj[i] == p.subj[j] {
                            local.mated.push((i, j, scores[t]));
                        } else {
                            if local.count {
                                let base = local.cell_offset(p.grp[i], p.grp[j]);
                                local.counts[base + bins[t] as usize] += 1;
                                local.pending += 1;
                            }
                            if bins[t] >= local.collect_from {
                                local.high.push((i, j, bins[t] as u16));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Rows of a work unit: 6-row A panels for an A block of about 256 KiB (a quarter of a 1 MiB L2), at
/// least 8, capped so that two threads still get at least 8 jobs each (dynamic load balance over
/// the triangle), then rounded up to a multiple of [`JOB_QUANTUM`]. It depends on `dim` and `n` only,
/// never on the kernel or the thread count. `FACEBIAS_MC` overrides the panel count for tuning.
fn job_rows(dim: usize, n: usize) -> usize {
    let by_cache = ((256 * 1024) / (dim.max(1) * MR * 4)).max(PANELS_PER_JOB);
    let by_balance = n.div_ceil(MR).div_ceil(8 * 2).max(1);
    let panels = std::env::var("FACEBIAS_MC")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(by_cache.min(by_balance))
        .max(1);
    (panels * MR).next_multiple_of(JOB_QUANTUM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::edge;
    use proptest::prelude::*;

    /// Deterministic unit vectors, `cells` groups, subjects of 1–3 images.
    fn data(n: usize, dim: usize, cells: usize, seed: u64) -> (Vec<f32>, Vec<u16>, Vec<u32>) {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut emb: Vec<f32> = (0..n * dim)
            .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect();
        // A shared component makes scores spread over a wide range, not only near 0.
        let common: Vec<f32> = (0..dim)
            .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect();
        for r in emb.chunks_mut(dim) {
            let w = (next() % 100) as f32 / 50.0;
            r.iter_mut().zip(&common).for_each(|(v, c)| *v += w * c);
            if !crate::embed::l2_normalize(r) {
                r[0] = 1.0;
            }
        }
        let mut subject = Vec::with_capacity(n);
        let mut s = 0u32;
        while subject.len() < n {
            for _ in 0..(1 + next() % 3) {
                subject.push(s);
            }
            s += 1;
        }
        subject.truncate(n);
        // Subjects are shuffled across rows so the kernel's sort matters.
        for i in (1..n).rev() {
            subject.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let cell: Vec<u16> = subject
            .iter()
            .map(|&s| (s as usize % cells) as u16)
            .collect();
        (emb, cell, subject)
    }

    /// Checks a kernel's result against float64 scores of every pair: same mated pairs (scores within
    /// `tol`), same number of non-mated pairs per cell, and at each probed edge the number of scores at
    /// or above it differs from the float64 count only by pairs whose float64 score is within `tol` of it.
    fn check_against_f64(
        r: &AllPairs,
        emb: &[f32],
        dim: usize,
        cell: &[u16],
        subject: &[u32],
        groups: usize,
        edges: &[usize],
    ) {
        let n = cell.len();
        let tol = 2e-6 * (dim as f64).sqrt() + 1e-6;
        let mut mated = Vec::new();
        let mut per_cell: Vec<Vec<f64>> = vec![Vec::new(); r.nonmated.cells.len()];
        for i in 0..n {
            for j in i + 1..n {
                let s: f64 = (0..dim)
                    .map(|k| emb[i * dim + k] as f64 * emb[j * dim + k] as f64)
                    .sum();
                if subject[i] == subject[j] {
                    mated.push((i, j, s));
                } else {
                    per_cell[r.nonmated.index(cell[i] as usize, cell[j] as usize)].push(s);
                }
            }
        }
        assert_eq!(r.mated.len(), mated.len());
        for (m, (a, b, s)) in r.mated.iter().zip(&mated) {
            assert_eq!((m.a, m.b), (*a, *b));
            assert!(
                (m.score as f64 - s).abs() <= tol,
                "mated {a},{b}: {} vs {s}",
                m.score
            );
        }
        for (c, scores) in per_cell.iter().enumerate() {
            let h = &r.nonmated.cells[c];
            assert_eq!(
                h.total(),
                scores.len() as u64,
                "cell {c} count, groups {groups}"
            );
            let tail = h.tail_counts();
            for &k in edges {
                let e = edge(k);
                let exact = scores.iter().filter(|&&s| s >= e).count() as i64;
                let near = scores.iter().filter(|&&s| (s - e).abs() <= tol).count() as i64;
                let diff = (tail[k] as i64 - exact).abs();
                assert!(
                    diff <= near,
                    "cell {c} edge {k} ({e}): kernel {} vs f64 {exact}, {near} scores within {tol}",
                    tail[k]
                );
            }
        }
    }

    fn edges_for(seed: u64) -> Vec<usize> {
        // Edges spread over [-1, 1], denser in the populated middle.
        let mut e: Vec<usize> = (0..40)
            .map(|i| (seed as usize * 7919 + i * 1637) % BINS)
            .collect();
        e.extend([0, 1, BINS / 2, BINS / 2 + 1, BINS - 1]);
        e
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn every_kernel_matches_float64(n in 1usize..160, dim in 1usize..1100, cells in 1usize..5, seed in 0u64..1000, threads in 1usize..4) {
            let (emb, cell, subject) = data(n, dim, cells, seed);
            let groups = cells;
            for kernel in [Kernel::Scalar, Kernel::Portable, Kernel::detect()] {
                let r = all_pairs(&emb, dim, &cell, &subject, groups, kernel, threads, Shard::ALL);
                check_against_f64(&r, &emb, dim, &cell, &subject, groups, &edges_for(seed));
            }
        }
    }

    /// Whether this CPU runs the AVX-512F kernel. Where it does not, prints a skip line that the test
    /// harness does not capture, or fails when `FACEBIAS_REQUIRE_AVX512=1`.
    fn avx512_or_skip(test: &str) -> bool {
        if Kernel::Avx512f.available() {
            return true;
        }
        assert!(
            std::env::var("FACEBIAS_REQUIRE_AVX512").as_deref() != Ok("1"),
            "{test}: FACEBIAS_REQUIRE_AVX512=1, but this CPU has no AVX-512F"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: this CPU has no AVX-512F (set FACEBIAS_REQUIRE_AVX512=1 to fail instead)"
        );
        false
    }

    /// Asserts two results equal bit for bit: every histogram count, and every mated pair with the
    /// same score bits.
    fn assert_bit_identical(a: &AllPairs, b: &AllPairs, what: &str) {
        assert!(a.nonmated == b.nonmated, "{what}: histograms differ");
        let bits = |r: &AllPairs| -> Vec<(usize, usize, u32)> {
            r.mated
                .iter()
                .map(|m| (m.a, m.b, m.score.to_bits()))
                .collect()
        };
        assert_eq!(bits(a), bits(b), "{what}: mated scores differ");
    }

    /// The lowest bin at or above which at most a twentieth of the non-mated pairs lie (so that a
    /// high-pair list holds some pairs but not all).
    fn tail_bin(r: &AllPairs) -> usize {
        let mut tail = vec![0u64; BINS + 1];
        for h in &r.nonmated.cells {
            for (t, c) in tail.iter_mut().zip(h.tail_counts()) {
                *t += c;
            }
        }
        (0..BINS)
            .find(|&k| tail[k] * 20 <= tail[0])
            .unwrap_or(BINS - 1)
    }

    /// Sizes around every tile edge: multiples of the tile heights (6, 14), widths (16, 32) and the
    /// work-unit quantum (84), ± 2.
    fn edge_size() -> impl Strategy<Value = usize> {
        (
            prop::sample::select(vec![
                MR,
                MR512,
                NR,
                NR512,
                JOB_QUANTUM,
                2 * JOB_QUANTUM + NR512,
            ]),
            1usize..5,
            -2i64..=2,
        )
            .prop_map(|(base, m, d)| (base as i64 * m as i64 + d).max(1) as usize)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
        #[test]
        fn avx512_equals_avx2_bit_for_bit(n in edge_size(), dim in 1usize..1100, cells in 1usize..5, seed in 0u64..1000, threads in 1usize..4, shards in 1usize..4) {
            if !avx512_or_skip("avx512_equals_avx2_bit_for_bit") || !Kernel::Avx2Fma.available() {
                return Ok(());
            }
            let (emb, cell, subject) = data(n, dim, cells, seed);
            let run = |k, t, shard| all_pairs(&emb, dim, &cell, &subject, cells, k, t, shard);
            let want = run(Kernel::Avx2Fma, 1, Shard::ALL);
            let what = format!("n {n} d {dim} cells {cells} seed {seed} threads {threads}");
            assert_bit_identical(&run(Kernel::Avx512f, threads, Shard::ALL), &want, &what);
            // Shards alternately computed by the two kernels merge into the whole.
            let mut merged = AllPairs { nonmated: CellHistograms::new(cells), mated: Vec::new() };
            for index in 0..shards {
                let k = [Kernel::Avx512f, Kernel::Avx2Fma][index % 2];
                let part = run(k, threads, Shard { index, count: shards });
                merged.nonmated.merge(&part.nonmated);
                merged.mated.extend(part.mated);
            }
            merged.mated.sort_by_key(|m| (m.a, m.b));
            assert_bit_identical(&merged, &want, &format!("{what}, {shards} mixed shards"));
            // The bootstrap's high-pair list.
            let from = tail_bin(&want);
            let high = |k, t| high_pairs(&emb, dim, &cell, &subject, cells, k, t, from);
            let want_high = high(Kernel::Avx2Fma, 1);
            prop_assert_eq!(high(Kernel::Avx512f, threads), want_high, "{} high pairs from bin {}", what, from);
        }
    }

    #[test]
    fn avx512_tiles_and_work_units_divide_evenly() {
        // Each work unit starts on an A-panel boundary of every kernel (the contract of `run_job`).
        assert!(JOB_QUANTUM.is_multiple_of(MR));
        assert!(JOB_QUANTUM.is_multiple_of(MR512));
        assert_eq!(JOB_QUANTUM, 42);
        assert_eq!(lcm(4, 6), 12);
        for (dim, n) in [(1, 1), (128, 20_000), (512, 20_000), (1100, 7), (33, 901)] {
            let rows = job_rows(dim, n);
            assert!(
                rows >= JOB_QUANTUM && rows.is_multiple_of(JOB_QUANTUM),
                "{dim} {n}: {rows}"
            );
        }
        // d = 512: 256 KiB / (512·6·4) = 21 panels = 126 rows, a multiple of 42 already.
        assert_eq!(job_rows(512, 20_000), 126);
    }

    #[test]
    fn avx512_hand_case_and_nan() {
        if !avx512_or_skip("avx512_hand_case_and_nan") {
            return;
        }
        // Hand case: as `small_hand_case_on_every_kernel`.
        let emb = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8, -1.0, 0.0];
        let r = all_pairs(
            &emb,
            2,
            &[0, 0, 0, 1],
            &[0, 0, 1, 2],
            2,
            Kernel::Avx512f,
            2,
            Shard::ALL,
        );
        assert_eq!(
            r.mated,
            vec![MatedScore {
                a: 0,
                b: 1,
                score: 0.0
            }]
        );
        assert_eq!(r.nonmated.cell(0, 0).counts[bin_of(0.6)], 1);
        assert_eq!(r.nonmated.cell(0, 0).counts[bin_of(0.8)], 1);
        assert_eq!(r.nonmated.cell(0, 1).counts[0], 1);
        // A NaN row lands in bin 0 for every pair, as `bin_of` puts it; scores of ±2 clamp.
        let emb = [f32::NAN, 2.0, 1.0, -2.0];
        let r = all_pairs(
            &emb,
            1,
            &[0; 4],
            &[0, 1, 2, 3],
            1,
            Kernel::Avx512f,
            1,
            Shard::ALL,
        );
        let h = &r.nonmated.cells[0].counts;
        assert_eq!(
            h[0],
            3 + 2,
            "3 NaN pairs and the two pairs scoring −4 and −2"
        );
        assert_eq!(h[BINS - 1], 1, "2·1 = 2 clamps to the top bin");
        assert_eq!(r.nonmated.cells[0].total(), 6);
    }

    #[test]
    fn identical_for_any_thread_count() {
        let (emb, cell, subject) = data(700, 67, 4, 5);
        for kernel in [Kernel::Portable, Kernel::detect(), Kernel::Scalar] {
            let one = all_pairs(&emb, 67, &cell, &subject, 4, kernel, 1, Shard::ALL);
            for t in [2, 3, 8] {
                assert!(
                    one == all_pairs(&emb, 67, &cell, &subject, 4, kernel, t, Shard::ALL),
                    "{kernel:?} threads {t}"
                );
            }
        }
    }

    #[test]
    fn shards_merge_to_the_whole() {
        let (emb, cell, subject) = data(901, 33, 3, 9);
        for kernel in [Kernel::detect(), Kernel::Scalar] {
            let whole = all_pairs(&emb, 33, &cell, &subject, 3, kernel, 2, Shard::ALL);
            let mut merged = CellHistograms::new(3);
            let mut mated = Vec::new();
            for index in 0..4 {
                let part = all_pairs(
                    &emb,
                    33,
                    &cell,
                    &subject,
                    3,
                    kernel,
                    2,
                    Shard { index, count: 4 },
                );
                merged.merge(&part.nonmated);
                mated.extend(part.mated);
            }
            mated.sort_by_key(|m| (m.a, m.b));
            assert!(merged == whole.nonmated, "{kernel:?}");
            assert_eq!(mated, whole.mated);
        }
    }

    #[test]
    fn small_hand_case_on_every_kernel() {
        // Rows 0,1 subject 0 (group 0), row 2 subject 1 (group 0), row 3 subject 2 (group 1).
        let emb = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8, -1.0, 0.0];
        for kernel in [Kernel::Scalar, Kernel::Portable, Kernel::detect()] {
            let r = all_pairs(
                &emb,
                2,
                &[0, 0, 0, 1],
                &[0, 0, 1, 2],
                2,
                kernel,
                2,
                Shard::ALL,
            );
            assert_eq!(
                r.mated,
                vec![MatedScore {
                    a: 0,
                    b: 1,
                    score: 0.0
                }]
            );
            assert_eq!(r.nonmated.cell(0, 0).counts[bin_of(0.6)], 1);
            assert_eq!(r.nonmated.cell(0, 0).counts[bin_of(0.8)], 1);
            assert_eq!(r.nonmated.cell(0, 1).total(), 3);
            assert_eq!(r.nonmated.cell(0, 1).counts[0], 1); // score -1
        }
    }
}

//! 1:N search: every probe scored against every gallery entry (exact, cosine of L2-normalised
//! embeddings), keeping the top L candidates at every nested gallery size in one pass.
//!
//! The gallery is given in `gallery_rank` order (see [`crate::manifest::split`]): the size-N
//! gallery is its first N entries, so one scan in that order serves every size — the running top-L
//! list is copied out as the scan passes each size. Candidates are ordered by score, higher first;
//! equal scores by the lower `row` (the entry's `samples.csv` row), then by the lower entry, so the
//! order is total and a top-L list does not depend on the order the entries were scanned in.
//! Nothing of size probes × gallery is stored: memory is O((probes + gallery) · d + probes · L ·
//! sizes) — one packed copy of the probes and of the gallery, 2L list slots per probe of a block
//! being scanned, and the lists returned.
//!
//! **Score contract.** A score is the dot product accumulated with one fused multiply-add per
//! dimension in increasing order from 0, starting from 0.0: `acc = p[k].mul_add(g[k], acc)` for
//! k = 0..d ([`dot_fma`]). Every kernel gives these bits exactly (the SIMD kernels run `fmadd` in k
//! order, the portable one `f32::mul_add`), so every kernel returns the same candidates with the same
//! scores; it is also the contract of the 1:1 AVX2 kernel and of the GPU kernel. A NaN score is
//! never a candidate.
//!
//! Shape of the fast kernels (an SGEMM micro-kernel with the top-L selection fused in):
//! - the probes are packed once into panels of NR probes (`d × NR`, k-major: NR lanes per k) and the
//!   gallery once into tiles of MR entries (`d × MR`, k-major), one run of tiles per gallery size so
//!   that no tile straddles a size; ragged panels and tiles are zero-padded;
//! - the micro-kernel keeps an MR entries × NR probes tile of scores in registers (`fmadd` over k,
//!   one broadcast per entry and k, NR/16 vector loads per k), then compares it with the NR probes'
//!   admission thresholds, one vector compare per register, into lane masks; it runs tile after tile
//!   in one call and returns only at a tile with an admitted lane;
//! - only admitted lanes (score ≥ threshold, so that a tie can still win on its row) reach the
//!   probe's list, and padded lanes never do (their threshold is +∞; padded rows are skipped). A list
//!   is a buffer of 2L slots: an admitted candidate is appended, and a full buffer is cut to its best
//!   L by a selection in the exact order, which sets the threshold to its L-th score (−∞ until the
//!   first cut). The threshold so lags the true L-th score by at most L admissions, which admits a
//!   few more candidates (about L·log₂(G/L) a probe instead of L·ln(G/L)) but makes each an append
//!   instead of an ordered insert; it never exceeds the true L-th score, so the lists are exact;
//! - work is handed out as probe blocks (a quarter of a thread's share of the panels) from an atomic
//!   counter to `threads` workers; each block scans the gallery in entry order in blocks of about
//!   1 MiB (kept in L2 while every panel of the probe block passes over it). An embedding longer than
//!   what keeps a panel's chunk within 24 KiB of L1 (192 dimensions for 32 probes) is scanned in
//!   even chunks, every tile of the block per chunk, the partial sums waiting in memory (resuming a
//!   chain of fused multiply-adds changes no bit). A probe's result depends on its own scan only, so
//!   it is identical for any thread count and any blocking.
//!
//! Kernels ([`SearchKernel`]): `avx512f-14x32` (14 entries × 32 probes, 28 zmm accumulators) where the
//! CPU has AVX-512F, else `avx2-fma-6x16` (6 × 16, 12 ymm accumulators) with AVX2 and FMA, else
//! `portable-6x16` (the same tiling in plain Rust); `scalar` ([`dot_fma`] per pair and a plain sorted
//! insert) is the reference the others are tested against. [`SearchKernel::detect`] picks the best
//! once. On a Sapphire-Rapids-class core the 14 × 32 tile ran at 93 % of the 16-lane FMA peak with
//! its data in L1, against 92 % for 12 × 32, 93 % for 6 × 64 and 90 % for 28 × 16 (d = 128).
//! `FACEBIAS_SEARCH_PANELS` (probe panels per block), `FACEBIAS_SEARCH_GALLERY_KIB` (gallery block
//! size) and `FACEBIAS_SEARCH_KC` (longest embedding chunk) override the blocking for tuning
//! experiments.

use std::sync::OnceLock;

use tiled::{tiled, Blocking, PortableTile};

mod simd;
mod tiled;

/// One candidate of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Position of the entry in the gallery (its `gallery_rank`).
    pub entry: u32,
    /// Its cosine score.
    pub score: f32,
}

/// A 1:N search kernel implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum SearchKernel {
    /// [`dot_fma`] per (probe, entry) pair and a plain sorted insert (the reference).
    Scalar,
    /// The 6 × 16 tiling with the fused top-L in portable Rust (`f32::mul_add`).
    Portable,
    /// 6 entries × 16 probes, AVX2 + FMA intrinsics.
    Avx2Fma,
    /// 14 entries × 32 probes, AVX-512F intrinsics.
    Avx512f,
}

impl SearchKernel {
    /// The fastest kernel this CPU supports, detected once.
    pub fn detect() -> SearchKernel {
        static BEST: OnceLock<SearchKernel> = OnceLock::new();
        *BEST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    return SearchKernel::Avx512f;
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    return SearchKernel::Avx2Fma;
                }
            }
            SearchKernel::Portable
        })
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            SearchKernel::Scalar | SearchKernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            SearchKernel::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            SearchKernel::Avx512f => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every kernel this CPU can run, the reference first.
    pub fn all_available() -> Vec<SearchKernel> {
        [
            SearchKernel::Scalar,
            SearchKernel::Portable,
            SearchKernel::Avx2Fma,
            SearchKernel::Avx512f,
        ]
        .into_iter()
        .filter(|k| k.available())
        .collect()
    }

    /// The name recorded in bench output.
    pub fn name(self) -> &'static str {
        match self {
            SearchKernel::Scalar => "scalar",
            SearchKernel::Portable => "portable-6x16",
            SearchKernel::Avx2Fma => "avx2-fma-6x16",
            SearchKernel::Avx512f => "avx512f-14x32",
        }
    }
}

/// The score of the contract: one fused multiply-add per dimension, in increasing k from 0.0.
#[inline]
pub fn dot_fma(x: &[f32], y: &[f32]) -> f32 {
    x.iter()
        .zip(y)
        .fold(0.0f32, |acc, (a, b)| a.mul_add(*b, acc))
}

/// The top `l` candidates of every probe at every gallery size, with the fastest kernel this CPU
/// has and every thread of the current rayon pool. `probes` and `gallery` are row-major `dim`-wide
/// matrices, the gallery in `gallery_rank` order; `rows[e]` is gallery entry e's `samples.csv` row
/// (the tie-break); `sizes` are ascending and at most the gallery's length.
/// Returns `[probe][size] → candidates` (at most `l`, best first).
pub fn search(
    probes: &[f32],
    gallery: &[f32],
    rows: &[u32],
    dim: usize,
    sizes: &[usize],
    l: usize,
) -> Result<Vec<Vec<Vec<Candidate>>>, String> {
    search_with(
        probes,
        gallery,
        rows,
        dim,
        sizes,
        l,
        SearchKernel::detect(),
        rayon::current_num_threads(),
    )
}

/// [`search`] with a chosen kernel on `threads` worker threads. The result is the same for every
/// kernel and every thread count (see the module's score contract).
// The eight values are the search's natural inputs (data, tie-break, sizes, execution); a wrapper
// struct would only move them.
#[allow(clippy::too_many_arguments)]
pub fn search_with(
    probes: &[f32],
    gallery: &[f32],
    rows: &[u32],
    dim: usize,
    sizes: &[usize],
    l: usize,
    kernel: SearchKernel,
    threads: usize,
) -> Result<Vec<Vec<Vec<Candidate>>>, String> {
    check(probes, gallery, rows, dim, sizes, l)?;
    if !kernel.available() {
        return Err(format!(
            "search kernel {} needs CPU features this machine lacks (it has {})",
            kernel.name(),
            SearchKernel::detect().name()
        ));
    }
    let job = Job {
        probes,
        gallery,
        rows,
        dim,
        sizes,
        l,
    };
    Ok(run(&job, kernel, threads.max(1), None))
}

/// Runs an available kernel; `blocking` overrides the cache blocking (tests).
fn run(job: &Job, kernel: SearchKernel, threads: usize, blocking: Option<Blocking>) -> Lists {
    match kernel {
        SearchKernel::Scalar => scalar_search(job, threads),
        SearchKernel::Portable => tiled::<PortableTile>(job, threads, blocking),
        #[cfg(target_arch = "x86_64")]
        SearchKernel::Avx2Fma => tiled::<simd::Avx2Tile>(job, threads, blocking),
        #[cfg(target_arch = "x86_64")]
        SearchKernel::Avx512f => tiled::<simd::Avx512Tile>(job, threads, blocking),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("x86-64 kernels are never available elsewhere"),
    }
}

/// The input checks shared by every kernel (the GPU search's too).
pub(crate) fn check(
    probes: &[f32],
    gallery: &[f32],
    rows: &[u32],
    dim: usize,
    sizes: &[usize],
    l: usize,
) -> Result<(), String> {
    if dim == 0 {
        return Err("the embedding length must be at least 1".into());
    }
    if !probes.len().is_multiple_of(dim) || !gallery.len().is_multiple_of(dim) {
        return Err(format!(
            "{} probe and {} gallery values are not whole rows of {dim}",
            probes.len(),
            gallery.len()
        ));
    }
    let entries = gallery.len() / dim;
    if rows.len() != entries {
        return Err(format!("{} gallery rows for {entries} entries", rows.len()));
    }
    if entries > u32::MAX as usize {
        return Err(format!(
            "{entries} gallery entries: at most {} are supported",
            u32::MAX
        ));
    }
    if sizes.windows(2).any(|w| w[0] >= w[1]) || sizes.last().is_some_and(|&n| n > entries) {
        return Err(format!(
            "gallery sizes {sizes:?} must rise and be at most the gallery's {entries} entries"
        ));
    }
    if l == 0 {
        return Err("the candidate list length must be at least 1".into());
    }
    Ok(())
}

/// The inputs of one search, checked.
struct Job<'a> {
    probes: &'a [f32],
    gallery: &'a [f32],
    rows: &'a [u32],
    dim: usize,
    sizes: &'a [usize],
    l: usize,
}

/// `[probe][size] → candidates`.
type Lists = Vec<Vec<Vec<Candidate>>>;

/// Whether candidate (score `s`, row `r`, entry `e`) goes before `c` in the order of the lists (the
/// GPU search merges its lists in this order too).
#[inline]
pub(crate) fn before(s: f32, r: u32, e: u32, c: (f32, u32, u32)) -> bool {
    s > c.0 || (s == c.0 && (r, e) < (c.1, c.2))
}

/// The reference: [`dot_fma`] for every pair, a plain sorted insert. Probes are split into
/// contiguous ranges, one per thread.
fn scalar_search(job: &Job, threads: usize) -> Lists {
    let Job {
        probes,
        gallery,
        rows,
        dim,
        sizes,
        l,
    } = *job;
    let per_thread = (probes.len() / dim).div_ceil(threads).max(1);
    let one = |p: &[f32]| -> Vec<Vec<Candidate>> {
        let mut top: Vec<Candidate> = Vec::with_capacity(l + 1);
        let mut out = Vec::with_capacity(sizes.len());
        let mut e = 0;
        for &n in sizes {
            while e < n {
                let s = dot_fma(p, &gallery[e * dim..(e + 1) * dim]);
                let key = |c: &Candidate| (c.score, rows[c.entry as usize], c.entry);
                let (r, id) = (rows[e], e as u32);
                let admitted = !s.is_nan() && (top.len() < l || before(s, r, id, key(&top[l - 1])));
                if admitted {
                    let at = top.partition_point(|c| {
                        let (cs, cr, ce) = key(c);
                        before(cs, cr, ce, (s, r, id))
                    });
                    top.insert(
                        at,
                        Candidate {
                            entry: id,
                            score: s,
                        },
                    );
                    top.truncate(l);
                }
                e += 1;
            }
            out.push(top.clone());
        }
        out
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = probes
            .chunks(per_thread * dim)
            .map(|part| s.spawn(move || part.chunks_exact(dim).map(one).collect::<Lists>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("search worker panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests;

//! The fused engine of the fast kernels (see the [parent module](super) for its shape): packing,
//! cache blocking, the threads, the micro-kernel interface and the top-L lists.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Candidate, Job, Lists};
use crate::compare::kernel::AlignedBuf;

/// A register-tiled micro-kernel: a tile of MR gallery entries against one panel of NR probes, over
/// a run of `kc` dimensions (the whole embedding, or one chunk of it when it is too long for the
/// panel to stay in L1).
pub(super) trait Tile {
    /// Gallery entries per tile (the broadcast side).
    const MR: usize;
    /// Probes per panel (the vector lanes), at most 64.
    const NR: usize;

    /// Scores the tiles `from..` of a pass, one after the other in one call. For each tile t, with
    /// accumulators `acc[t·MR·NR..][..MR·NR]` (row-major MR × NR): starting from them when
    /// `pass.resume`, else from 0.0, `acc[r·NR + c] = fma(a[k·MR + r], b[k·NR + c], acc[r·NR + c])`
    /// for k in increasing order over the chunk (`a` the tile's values, `b` the panel's). With
    /// `thr` (the last chunk), compares score (r, c) with `thr[c]`, sets bit c of `masks[r]` when it
    /// is at least that, and stops after the first tile with a set bit, its scores in its
    /// accumulators: returns its index. Without, leaves the partial sums in the accumulators.
    /// Returns `None` at the end of the block. Scores follow the module's contract exactly.
    ///
    /// # Safety
    /// The CPU must have the kernel's features; `acc` holds MR·NR floats per tile of the pass,
    /// `pass.b` kc·NR, `thr` NR and `masks` MR.
    unsafe fn run(
        pass: &Pass,
        acc: &mut [f32],
        from: usize,
        thr: Option<&[f32]>,
        masks: &mut [u64],
    ) -> Option<usize>;
}

/// One chunk of dimensions of one panel's pass over a gallery block.
pub(super) struct Pass<'a> {
    /// The block's packed tiles (tile t at `t·MR·dim`).
    pub(super) tiles: &'a [f32],
    pub(super) dim: usize,
    /// The chunk: dimensions `k0 .. k0 + kc`.
    pub(super) k0: usize,
    pub(super) kc: usize,
    /// The panel's values in the chunk (`kc·NR` floats).
    pub(super) b: &'a [f32],
    /// Whether an earlier chunk left partial sums in the accumulators.
    pub(super) resume: bool,
}

impl Pass<'_> {
    /// Tile t's values in the chunk.
    #[inline(always)]
    fn a(&self, t: usize, mr: usize) -> &[f32] {
        let base = t * mr * self.dim + self.k0 * mr;
        &self.tiles[base..base + mr * self.kc]
    }
}

/// The loop of [`Tile::run`] around a tile function (inlined into each kernel's own loop).
#[inline(always)]
pub(super) fn run_tiles(
    pass: &Pass,
    (mr, nr): (usize, usize),
    acc: &mut [f32],
    from: usize,
    mut tile: impl FnMut(&[f32], &mut [f32]) -> bool,
) -> Option<usize> {
    let n = pass.tiles.len() / (mr * pass.dim);
    (from..n).find(|&t| tile(pass.a(t, mr), &mut acc[t * mr * nr..(t + 1) * mr * nr]))
}

/// The portable 6 × 16 tiling.
pub(super) struct PortableTile;

impl Tile for PortableTile {
    const MR: usize = 6;
    const NR: usize = 16;

    unsafe fn run(
        pass: &Pass,
        acc: &mut [f32],
        from: usize,
        thr: Option<&[f32]>,
        masks: &mut [u64],
    ) -> Option<usize> {
        run_tiles(pass, (6, 16), acc, from, |a, acc| {
            portable_tile::<6, 16>(a, pass.b, pass.kc, acc, pass.resume, thr, masks)
        })
    }
}

/// One tile of [`Tile::run`] in plain Rust; returns whether a lane was admitted.
fn portable_tile<const MR: usize, const NR: usize>(
    a: &[f32],
    b: &[f32],
    kc: usize,
    out: &mut [f32],
    resume: bool,
    thr: Option<&[f32]>,
    masks: &mut [u64],
) -> bool {
    let mut acc = [[0.0f32; NR]; MR];
    if resume {
        for (r, acc_r) in acc.iter_mut().enumerate() {
            acc_r.copy_from_slice(&out[r * NR..(r + 1) * NR]);
        }
    }
    for k in 0..kc {
        let bk: &[f32; NR] = b[k * NR..(k + 1) * NR].try_into().expect("panel width");
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let ak = a[k * MR + r];
            for (s, &bc) in acc_r.iter_mut().zip(bk) {
                *s = ak.mul_add(bc, *s);
            }
        }
    }
    let mut any = 0u64;
    if let Some(thr) = thr {
        for (r, acc_r) in acc.iter().enumerate() {
            let m = acc_r
                .iter()
                .zip(thr)
                .enumerate()
                .fold(0u64, |m, (c, (&s, &t))| m | (((s >= t) as u64) << c));
            masks[r] = m;
            any |= m;
        }
        if any == 0 {
            return false;
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        out[r * NR..(r + 1) * NR].copy_from_slice(acc_r);
    }
    any != 0
}

/// The running top-L lists of a block of probes. Each probe has a buffer of 2L members, one `u128`
/// each (see [`member`]: a smaller value goes first in the order); admitted candidates are appended,
/// and a full buffer is cut to its best L by a selection, which sets the probe's admission
/// threshold to its L-th score. The threshold therefore lags the true L-th score by at most L
/// admissions — more candidates are admitted than strictly needed, but each costs an append
/// instead of an ordered insert — and the lists are exact: every member of the true top L scored
/// at least every threshold it met. The buffers of a panel's probes lie together, so they stay in
/// cache while the panel scans a gallery block.
struct TopLists {
    l: usize,
    members: Vec<u128>,
    len: Vec<u32>,
}

/// A candidate as one integer whose order is the lists' order (smaller first): the complement of
/// the score's order key (−0.0 as 0.0, so that they tie, as `==` has it), then `row << 32 | entry`
/// (lower first), then the complement of the score's own bits (to give them back unchanged).
#[inline]
fn member(s: f32, key: u64) -> u128 {
    // Flip every bit of a negative score, only the sign bit of a positive one (no branch).
    let b = (s + 0.0).to_bits();
    let ord = b ^ (((b as i32 >> 31) as u32) | 1 << 31);
    (!ord as u128) << 96 | (key as u128) << 32 | !s.to_bits() as u128
}

impl TopLists {
    fn new(probes: usize, l: usize) -> TopLists {
        TopLists {
            l,
            members: vec![0; probes * 2 * l],
            len: vec![0; probes],
        }
    }

    /// Appends an admitted candidate to probe i's buffer; when that fills it, cuts it to the best
    /// L and returns the new admission threshold.
    #[inline]
    fn offer(&mut self, i: usize, s: f32, key: u64) -> Option<f32> {
        if s.is_nan() {
            return None;
        }
        let cap = 2 * self.l;
        let n = self.len[i] as usize;
        self.members[i * cap + n] = member(s, key);
        self.len[i] += 1;
        (n + 1 == cap).then(|| self.cut(i))
    }

    /// Cuts probe i's buffer to its best L (unordered) and returns the L-th score (−∞ while fewer).
    fn cut(&mut self, i: usize) -> f32 {
        let (l, cap) = (self.l, 2 * self.l);
        let n = self.len[i] as usize;
        if n < l {
            return f32::NEG_INFINITY;
        }
        let buf = &mut self.members[i * cap..i * cap + n];
        let (_, &mut last, _) = buf.select_nth_unstable(l - 1);
        self.len[i] = l as u32;
        f32::from_bits(!(last as u32))
    }

    /// Probe i's list, best first; also cuts its buffer and returns its threshold.
    fn candidates(&mut self, i: usize) -> (Vec<Candidate>, f32) {
        let thr = self.cut(i);
        let cap = 2 * self.l;
        let n = self.len[i] as usize;
        let buf = &mut self.members[i * cap..i * cap + n];
        buf.sort_unstable();
        let list = buf
            .iter()
            .map(|&m| Candidate {
                entry: (m >> 32) as u32,
                score: f32::from_bits(!(m as u32)),
            })
            .collect();
        (list, thr)
    }
}

/// Packs groups of rows of `src` (`dim` wide) side by side, k-major: group g (`(first row, rows)`)
/// becomes `w·dim` floats at `g·w·dim` with row r's value k at `k·w + r`; the lanes of a short group
/// past its rows are zero. `threads` workers pack contiguous runs of groups.
fn pack_groups(
    src: &[f32],
    dim: usize,
    w: usize,
    groups: &[(usize, usize)],
    threads: usize,
) -> AlignedBuf {
    let mut buf = AlignedBuf::zeroed_parallel(groups.len() * w * dim, threads);
    let per = groups.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (part, out) in groups.chunks(per).zip(buf.chunks_mut(per * w * dim)) {
            s.spawn(move || {
                for (&(first, n), out) in part.iter().zip(out.chunks_exact_mut(w * dim)) {
                    let rows = &src[first * dim..(first + n) * dim];
                    // Written in order, read from n row streams.
                    for (k, lanes) in out.chunks_exact_mut(w).enumerate() {
                        for (r, x) in lanes[..n].iter_mut().enumerate() {
                            *x = rows[r * dim + k];
                        }
                    }
                }
            });
        }
    });
    buf
}

/// Probe panels per block (the unit of work), gallery tiles (of MR entries) per block, and the
/// length of the embedding chunks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Blocking {
    pub(super) panels: usize,
    pub(super) tiles: usize,
    pub(super) kc: usize,
}

impl Blocking {
    /// Probe blocks of a quarter of a thread's share of the panels (at most 256 panels), so that
    /// the gallery is streamed from memory few times and every thread still gets several blocks;
    /// gallery blocks of about 1 MiB (kept in the 2 MiB L2 of a recent server core while every
    /// panel of the probe block passes over them); embedding chunks as even as possible, each short
    /// enough for a panel's chunk to fit in 24 KiB (half of a 48 KiB L1).
    /// `FACEBIAS_SEARCH_PANELS`, `FACEBIAS_SEARCH_GALLERY_KIB` and `FACEBIAS_SEARCH_KC` override them.
    fn new(dim: usize, mr: usize, nr: usize, panels: usize, threads: usize) -> Blocking {
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
        };
        let kib = env("FACEBIAS_SEARCH_GALLERY_KIB").unwrap_or(1024).max(1);
        let kc_max = env("FACEBIAS_SEARCH_KC")
            .unwrap_or((24 << 10) / (nr * 4))
            .max(1);
        Blocking {
            panels: env("FACEBIAS_SEARCH_PANELS")
                .unwrap_or(panels.div_ceil(4 * threads).min(256))
                .max(1),
            tiles: ((kib << 10) / (dim * 4 * mr)).max(1),
            kc: dim.div_ceil(dim.div_ceil(kc_max)),
        }
    }
}

/// The fused search with micro-kernel `T`: probe blocks from an atomic counter to `threads` workers.
pub(super) fn tiled<T: Tile>(job: &Job, threads: usize, blocking: Option<Blocking>) -> Lists {
    let np = job.probes.len() / job.dim;
    if np == 0 {
        return Vec::new();
    }
    let groups: Vec<(usize, usize)> = (0..np.div_ceil(T::NR))
        .map(|p| (p * T::NR, T::NR.min(np - p * T::NR)))
        .collect();
    let packed = pack_groups(job.probes, job.dim, T::NR, &groups, threads);
    let gallery = PackedGallery::new(job, T::MR, threads);
    let panels = np.div_ceil(T::NR);
    let blocking =
        blocking.unwrap_or_else(|| Blocking::new(job.dim, T::MR, T::NR, panels, threads));
    let blocks = panels.div_ceil(blocking.panels);
    let next = AtomicUsize::new(0);
    let workers = threads.min(blocks);
    let mut done: Vec<(usize, Lists)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (packed, gallery, next, blocking) = (&packed, &gallery, &next, &blocking);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= blocks {
                            break;
                        }
                        let first = b * blocking.panels;
                        let last = (first + blocking.panels).min(panels);
                        let lists = probe_block::<T>(job, packed, gallery, first..last, blocking);
                        mine.push((b, lists));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("search worker panicked"))
            .collect()
    });
    done.sort_unstable_by_key(|&(b, _)| b);
    done.into_iter().flat_map(|(_, lists)| lists).collect()
}

/// The gallery packed once into tiles of MR entries (k-major: `tiles[t·MR·d + k·MR + r]`), one run
/// of tiles per gallery size so that no tile straddles a size; the ragged last tile of each run is
/// zero-padded.
struct PackedGallery {
    tiles: AlignedBuf,
    /// Per size: (first entry, entries, first tile) of the run that ends at it.
    runs: Vec<(usize, usize, usize)>,
}

impl PackedGallery {
    fn new(job: &Job, mr: usize, threads: usize) -> PackedGallery {
        let mut runs = Vec::with_capacity(job.sizes.len());
        let mut groups = Vec::new();
        let mut start = 0;
        for &size in job.sizes {
            runs.push((start, size - start, groups.len()));
            groups.extend((start..size).step_by(mr).map(|e| (e, mr.min(size - e))));
            start = size;
        }
        let tiles = pack_groups(job.gallery, job.dim, mr, &groups, threads);
        PackedGallery { tiles, runs }
    }
}

/// One probe block (panels `panels`) against the whole gallery, in entry order: its lists at every
/// size.
fn probe_block<T: Tile>(
    job: &Job,
    packed: &[f32],
    gallery: &PackedGallery,
    panels: std::ops::Range<usize>,
    blocking: &Blocking,
) -> Lists {
    let (dim, l, mr, nr) = (job.dim, job.l, T::MR, T::NR);
    let np = job.probes.len() / dim;
    let first = panels.start * nr;
    let count = (panels.end * nr).min(np) - first;
    let mut lists = TopLists::new(count, l);
    // Padded lanes have threshold +∞: no finite score is ever at least that.
    let mut thr = vec![f32::INFINITY; panels.len() * nr];
    thr[..count].fill(f32::NEG_INFINITY);
    let mut out: Lists = (0..count)
        .map(|_| Vec::with_capacity(job.sizes.len()))
        .collect();
    let mut scratch = Scratch {
        acc: vec![0.0; blocking.tiles * mr * nr],
        masks: vec![0; mr],
    };
    for &(e0, n, t0) in &gallery.runs {
        // Gallery blocks of `blocking.tiles` tiles, each scanned by every panel while in L2.
        let tiles = n.div_ceil(mr);
        let mut t = 0;
        while t < tiles {
            let t1 = (t + blocking.tiles).min(tiles);
            let block = Block {
                tiles: &gallery.tiles[(t0 + t) * mr * dim..(t0 + t1) * mr * dim],
                entries: e0 + t * mr..e0 + n.min(t1 * mr),
            };
            for (i, panel) in panels.clone().enumerate() {
                let lanes = i * nr..((i + 1) * nr).min(count);
                let panel = &packed[panel * dim * nr..(panel + 1) * dim * nr];
                let thr = &mut thr[i * nr..(i + 1) * nr];
                let lists = (&mut lists, lanes);
                scan::<T>(job, panel, &block, blocking.kc, thr, lists, &mut scratch);
            }
            t = t1;
        }
        for (i, o) in out.iter_mut().enumerate() {
            let (list, t) = lists.candidates(i);
            o.push(list);
            thr[i] = t;
        }
    }
    out
}

/// Buffers of one worker.
struct Scratch {
    /// Scores (or partial sums, when the embedding is scanned in chunks) of every tile of a block.
    acc: Vec<f32>,
    masks: Vec<u64>,
}

/// A gallery block: its packed tiles and the entries they hold (the last tile may be ragged).
struct Block<'a> {
    tiles: &'a [f32],
    entries: std::ops::Range<usize>,
}

/// One probe panel against a gallery block, updating the panel's lists and thresholds. Long
/// embeddings are scanned in chunks of `kc` dimensions, every tile of the block per chunk, so that
/// the panel's chunk stays in L1; the partial sums wait in `scratch.acc` (resuming a chain of fused
/// multiply-adds from memory changes no bit).
fn scan<T: Tile>(
    job: &Job,
    panel: &[f32],
    block: &Block,
    kc: usize,
    thr: &mut [f32],
    lists: (&mut TopLists, std::ops::Range<usize>),
    scratch: &mut Scratch,
) {
    let (lists, lanes) = lists;
    let (dim, mr, nr) = (job.dim, T::MR, T::NR);
    let mut k0 = 0;
    while k0 < dim {
        let k1 = (k0 + kc).min(dim);
        let last = k1 == dim;
        let pass = Pass {
            tiles: block.tiles,
            dim,
            k0,
            kc: k1 - k0,
            b: &panel[k0 * nr..k1 * nr],
            resume: k0 > 0,
        };
        let mut from = 0;
        // SAFETY: the kernel was checked to be available (`search_with`); `scratch.acc` holds
        // MR·NR floats for each tile of a block, `thr` NR and the masks MR.
        while let Some(t) = unsafe {
            T::run(
                &pass,
                &mut scratch.acc,
                from,
                last.then_some(&*thr),
                &mut scratch.masks,
            )
        } {
            let e0 = block.entries.start + t * mr;
            let valid = mr.min(block.entries.end - e0);
            let acc = &scratch.acc[t * mr * nr..(t + 1) * mr * nr];
            admit(
                job,
                (e0, valid, nr),
                acc,
                &scratch.masks,
                thr,
                lists,
                lanes.clone(),
            );
            from = t + 1;
        }
        k0 = k1;
    }
}

/// Offers the admitted lanes of a tile (first entry `e0`, `valid` real rows, `nr` lanes) to the
/// lists of the panel's probes `lanes`; padded rows and lanes are never admitted.
#[inline]
fn admit(
    job: &Job,
    (e0, valid, nr): (usize, usize, usize),
    scores: &[f32],
    masks: &[u64],
    thr: &mut [f32],
    lists: &mut TopLists,
    lanes: std::ops::Range<usize>,
) {
    for (r, &mask) in masks.iter().enumerate().take(valid) {
        let mut m = mask;
        let e = e0 + r;
        let key = (job.rows[e] as u64) << 32 | e as u64;
        while m != 0 {
            let c = m.trailing_zeros() as usize;
            m &= m - 1;
            // Only an infinite score could pass a padded lane's +∞.
            if lanes.start + c >= lanes.end {
                continue;
            }
            if let Some(t) = lists.offer(lanes.start + c, scores[r * nr + c], key) {
                thr[c] = t;
            }
        }
    }
}

//! The 1:N search on the device: [`crate::compare::search::search`]'s contract (exact top L per probe
//! at every nested gallery size, score desc, then lower `rows[e]`, then lower entry; NaN never a
//! candidate), with the scores computed by `fb_search_f32` in kernels.cu.
//!
//! - The probes (padded to tiles of 128, zero) and the first `sizes.last()` gallery entries are
//!   uploaded once, k-major, with the tie-break rows.
//! - Work items are (probe tile, gallery chunk): each size's new entries `[sizes[i−1], sizes[i])` are
//!   cut into chunks of at most [`SearchOptions::entries_per_block`], so no chunk straddles a size.
//!   One block scores one item and returns, per probe, the chunk's exact top `min(L, chunk)` in order.
//! - The host merges each probe's chunk lists in entry order: before the first chunk of size i it
//!   copies out the running list as the list of every smaller size. An entry in the top L of the
//!   size-N gallery is in the top L of its own chunk (a subset holding it), so the merged lists are
//!   exactly the CPU's, and the scores, one `fmaf` per dimension in increasing k from 0, are the same
//!   bits.
//!
//! Memory on the device: the probes and gallery (4·d bytes each), 4 bytes of row per entry, and per
//! launch, for each of at most [`SearchOptions::blocks_per_launch`] blocks, 128 candidate buffers of
//! 2l + 128 slots and 128 output lists of l (8 bytes a slot), l = min(L, entries_per_block).

use rayon::prelude::*;

use super::{Accelerator, DevPtr, GpuError, KernelArg, THREADS, TILE};
use crate::compare::search::{before, check, Candidate};

/// The kernel name recorded in run.json.
pub const KERNEL_NAME: &str = "cuda-fp32-search-128x128";

/// Bytes of candidate buffers and output lists one launch may use; fewer blocks per launch when L is long.
const LAUNCH_BYTES: usize = 512 << 20;

/// Launch settings of the GPU search. They change the speed and memory only, never the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchOptions {
    /// Gallery entries one block scans (rounded up to a multiple of 128 tiles in effect; the last
    /// chunk of a size is shorter).
    pub entries_per_block: usize,
    /// Most blocks (work items) per launch; also bounded by a 512 MiB budget of list buffers.
    pub blocks_per_launch: usize,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            entries_per_block: 4096,
            blocks_per_launch: 4096,
        }
    }
}

/// One block's work: probe tile `tile` against gallery entries `begin..end`, all of size `segment`
/// (the first size that holds them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// Probe tile (probes `128·tile ..`).
    pub tile: u32,
    /// First entry.
    pub begin: u32,
    /// One past the last entry.
    pub end: u32,
    /// Index of the first gallery size that holds the chunk.
    pub segment: usize,
}

/// The work items, probe tile after probe tile, each tile's chunks in entry order.
pub fn items(probes: usize, sizes: &[usize], entries_per_block: usize) -> Vec<Item> {
    let per = entries_per_block.max(1);
    let mut chunks = Vec::new();
    let mut from = 0;
    for (segment, &n) in sizes.iter().enumerate() {
        let mut b = from;
        while b < n {
            let e = (b + per).min(n);
            chunks.push((b as u32, e as u32, segment));
            b = e;
        }
        from = n;
    }
    (0..probes.div_ceil(TILE) as u32)
        .flat_map(|tile| {
            chunks.iter().map(move |&(begin, end, segment)| Item {
                tile,
                begin,
                end,
                segment,
            })
        })
        .collect()
}

/// `rows`-major `dim`-wide matrix → k-major with `stride` columns (zero beyond the rows).
fn k_major(m: &[f32], dim: usize, stride: usize) -> Vec<u8> {
    let n = m.len() / dim;
    let mut out = vec![0u8; stride * dim * 4];
    out.par_chunks_mut(stride * 4)
        .enumerate()
        .for_each(|(k, row)| {
            for p in 0..n {
                row[p * 4..p * 4 + 4].copy_from_slice(&m[p * dim + k].to_le_bytes());
            }
        });
    out
}

fn bytes_u32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes"))
}

/// The top `l` candidates of every probe at every gallery size, scored on the device — the contract
/// and the result of [`crate::compare::search::search`], bit for bit. Returns `[probe][size] →
/// candidates` (at most `l`, best first).
#[allow(clippy::too_many_arguments)]
pub fn search(
    acc: &mut dyn Accelerator,
    probes: &[f32],
    gallery: &[f32],
    rows: &[u32],
    dim: usize,
    sizes: &[usize],
    l: usize,
    opts: SearchOptions,
) -> Result<Vec<Vec<Vec<Candidate>>>, GpuError> {
    check(probes, gallery, rows, dim, sizes, l).map_err(GpuError::Input)?;
    let np = probes.len() / dim;
    let n = sizes.last().copied().unwrap_or(0);
    let work = items(np, sizes, opts.entries_per_block);
    let mut lists: Vec<Vec<Vec<Candidate>>> =
        (0..np).map(|_| Vec::with_capacity(sizes.len())).collect();
    if np == 0 {
        return Ok(lists);
    }
    let pp = np.div_ceil(TILE) * TILE;
    let gp = n.div_ceil(4).max(1) * 4;
    if pp > u32::MAX as usize || gp > u32::MAX as usize || dim > u32::MAX as usize {
        return Err(GpuError::Input(format!(
            "{np} probes and {n} gallery entries of {dim} dimensions exceed the GPU search's 32-bit indices; use --device cpu"
        )));
    }
    // l on the device: a chunk's list never needs more than the chunk's entries.
    let ld = l.min(opts.entries_per_block.max(1)).min(n.max(1));
    let cap = 2 * ld + TILE;
    let per_list = (cap + ld) * 8 + 4;
    let per_launch = opts
        .blocks_per_launch
        .max(1)
        .min((LAUNCH_BYTES / (TILE * per_list)).max(1))
        .min(work.len().max(1));
    let data_bytes = (pp + gp) * dim * 4 + gp * 4;
    let launch_bytes = per_launch * TILE * per_list + per_launch * 12;
    if let Some(free) = acc.free_memory() {
        let need = (data_bytes + launch_bytes) as u64;
        if need > free {
            return Err(GpuError::SearchMemory {
                free_mib: free >> 20,
                need_mib: need.div_ceil(1 << 20),
                what: format!(
                    "{} MiB of probes and gallery, {} MiB of candidate lists",
                    data_bytes >> 20,
                    launch_bytes >> 20
                ),
            });
        }
    }
    let mut allocs = Vec::new();
    let result = (|| {
        let mut alloc = |bytes: usize, acc: &mut dyn Accelerator| -> Result<DevPtr, GpuError> {
            let p = acc.alloc_zeroed(bytes.max(4))?;
            allocs.push(p);
            Ok(p)
        };
        let d_probes = alloc(pp * dim * 4, acc)?;
        acc.upload(d_probes, &k_major(probes, dim, pp))?;
        let d_gallery = alloc(gp * dim * 4, acc)?;
        acc.upload(d_gallery, &k_major(&gallery[..n * dim], dim, gp))?;
        let d_rows = alloc(gp * 4, acc)?;
        acc.upload(d_rows, &bytes_u32(&rows[..n]))?;
        let d_items = alloc(per_launch * 12, acc)?;
        let d_buf_score = alloc(per_launch * TILE * cap * 4, acc)?;
        let d_buf_entry = alloc(per_launch * TILE * cap * 4, acc)?;
        let d_out_score = alloc(per_launch * TILE * ld * 4, acc)?;
        let d_out_entry = alloc(per_launch * TILE * ld * 4, acc)?;
        let d_out_count = alloc(per_launch * TILE * 4, acc)?;
        // Per probe: the running list and how many sizes have been written out.
        let mut top: Vec<Vec<Candidate>> = vec![Vec::new(); np];
        let key = |c: &Candidate| (c.score, rows[c.entry as usize], c.entry);
        let order = |a: &Candidate, b: &Candidate| {
            let (s, r, e) = key(a);
            if before(s, r, e, key(b)) {
                std::cmp::Ordering::Less
            } else if (s, r, e) == key(b) {
                std::cmp::Ordering::Equal
            } else {
                std::cmp::Ordering::Greater
            }
        };
        for batch in work.chunks(per_launch) {
            let flat: Vec<u32> = batch
                .iter()
                .flat_map(|it| [it.tile, it.begin, it.end])
                .collect();
            acc.upload(d_items, &bytes_u32(&flat))?;
            acc.launch(
                "fb_search_f32",
                batch.len() as u32,
                THREADS,
                &[
                    KernelArg::Ptr(d_probes),
                    KernelArg::U32(pp as u32),
                    KernelArg::U32(np as u32),
                    KernelArg::Ptr(d_gallery),
                    KernelArg::U32(gp as u32),
                    KernelArg::U32(dim as u32),
                    KernelArg::Ptr(d_rows),
                    KernelArg::Ptr(d_items),
                    KernelArg::U32(ld as u32),
                    KernelArg::U32(cap as u32),
                    KernelArg::Ptr(d_buf_score),
                    KernelArg::Ptr(d_buf_entry),
                    KernelArg::Ptr(d_out_score),
                    KernelArg::Ptr(d_out_entry),
                    KernelArg::Ptr(d_out_count),
                ],
            )?;
            let lanes = batch.len() * TILE;
            let mut counts = vec![0u8; lanes * 4];
            let mut scores = vec![0u8; lanes * ld * 4];
            let mut entries = vec![0u8; lanes * ld * 4];
            acc.download(d_out_count, &mut counts)?;
            acc.download(d_out_score, &mut scores)?;
            acc.download(d_out_entry, &mut entries)?;
            for (b, it) in batch.iter().enumerate() {
                for lane in 0..TILE {
                    let p = it.tile as usize * TILE + lane;
                    if p >= np {
                        continue;
                    }
                    // Sizes below this chunk's are complete: write out their lists.
                    while lists[p].len() < it.segment {
                        lists[p].push(top[p].clone());
                    }
                    let list = b * TILE + lane;
                    let m = u32_at(&counts, list) as usize;
                    if m > ld {
                        return Err(GpuError::Inconsistent(format!(
                            "probe {p}: the device listed {m} candidates of entries {}..{}, at most {ld} were asked",
                            it.begin, it.end
                        )));
                    }
                    let mut prev: Option<Candidate> = None;
                    let mut chunk = Vec::with_capacity(m);
                    for i in 0..m {
                        let c = Candidate {
                            entry: u32_at(&entries, list * ld + i),
                            score: f32::from_le_bytes(
                                scores[4 * (list * ld + i)..4 * (list * ld + i) + 4]
                                    .try_into()
                                    .expect("4 bytes"),
                            ),
                        };
                        let in_chunk = (it.begin..it.end).contains(&c.entry);
                        let ordered = prev.is_none_or(|q| order(&q, &c).is_lt());
                        if !in_chunk || c.score.is_nan() || !ordered {
                            return Err(GpuError::Inconsistent(format!(
                                "probe {p}: candidate {i} of entries {}..{} (entry {}, score {}) is out of the chunk, NaN or out of order",
                                it.begin, it.end, c.entry, c.score
                            )));
                        }
                        prev = Some(c);
                        chunk.push(c);
                    }
                    if m > 0 {
                        top[p] = merge(&top[p], &chunk, l, &order);
                    }
                }
            }
        }
        for (p, list) in lists.iter_mut().enumerate() {
            while list.len() < sizes.len() {
                list.push(top[p].clone());
            }
        }
        Ok(())
    })();
    for p in allocs {
        acc.free(p);
    }
    result.map(|()| lists)
}

/// The best `l` of two lists sorted in `order` (distinct entries), in order: a linear merge.
fn merge(
    a: &[Candidate],
    b: &[Candidate],
    l: usize,
    order: &dyn Fn(&Candidate, &Candidate) -> std::cmp::Ordering,
) -> Vec<Candidate> {
    let mut out = Vec::with_capacity(l.min(a.len() + b.len()));
    let (mut i, mut j) = (0, 0);
    while out.len() < l && (i < a.len() || j < b.len()) {
        let take_a = j == b.len() || (i < a.len() && order(&a[i], &b[j]).is_lt());
        if take_a {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_cut_every_size_into_chunks_that_never_straddle_it() {
        // Sizes 5, 300, 301 with chunks of 128: [0,5) | [5,133) [133,261) [261,300) | [300,301).
        let it = items(130, &[5, 300, 301], 128);
        let chunks: Vec<(u32, u32, usize)> = it
            .iter()
            .filter(|i| i.tile == 0)
            .map(|i| (i.begin, i.end, i.segment))
            .collect();
        assert_eq!(
            chunks,
            vec![
                (0, 5, 0),
                (5, 133, 1),
                (133, 261, 1),
                (261, 300, 1),
                (300, 301, 2)
            ]
        );
        // 130 probes → 2 tiles, the second repeating the chunks.
        assert_eq!(it.len(), 10);
        assert!(it[5..].iter().all(|i| i.tile == 1));
        assert_eq!(it[5].begin, 0);
        // An empty first size has no chunk; no probes, no items.
        let e = items(1, &[0, 3], 2);
        assert_eq!(
            e.iter()
                .map(|i| (i.begin, i.end, i.segment))
                .collect::<Vec<_>>(),
            vec![(0, 2, 1), (2, 3, 1)]
        );
        assert!(items(0, &[3], 2).is_empty());
    }

    #[test]
    fn merge_keeps_the_best_l_in_order() {
        let c = |entry, score| Candidate { entry, score };
        let order = |x: &Candidate, y: &Candidate| {
            y.score
                .partial_cmp(&x.score)
                .unwrap()
                .then(x.entry.cmp(&y.entry))
        };
        let a = [c(4, 0.9), c(1, 0.5), c(0, 0.1)];
        let b = [c(7, 0.7), c(2, 0.5), c(9, 0.5)];
        let got = merge(&a, &b, 4, &order);
        assert_eq!(got, vec![c(4, 0.9), c(7, 0.7), c(1, 0.5), c(2, 0.5)]);
        assert_eq!(merge(&a, &[], 9, &order), a.to_vec());
        assert_eq!(merge(&[], &b, 1, &order), vec![c(7, 0.7)]);
    }

    #[test]
    fn k_major_transposes_and_pads_with_zero() {
        // Two rows of 3: (1, 2, 3), (4, 5, 6) with stride 4 → k rows (1, 4, 0, 0), (2, 5, 0, 0), (3, 6, 0, 0).
        let b = k_major(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 4);
        let v: Vec<f32> = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            v,
            vec![1.0, 4.0, 0.0, 0.0, 2.0, 5.0, 0.0, 0.0, 3.0, 6.0, 0.0, 0.0]
        );
    }
}

//! The comparison stage on an NVIDIA GPU: the all-pairs product in 128×128 tiles with the binning done
//! on the device, so that only the per-cell histograms (and the short mated / high-score lists) come
//! back to the host.
//!
//! Layers, from the bottom:
//! - `kernels.cu` ([`SOURCE`]): the CUDA kernels, compiled at run time by NVRTC ([`nvrtc`]) for the
//!   device's architecture; nothing of CUDA is needed to build facebias.
//! - [`Accelerator`]: what the host code needs of a device (allocate, copy, launch, synchronise).
//!   [`cuda::CudaDevice`] implements it with the CUDA driver API, loaded at run time; the tests also
//!   implement it with a CPU emulation of the same kernel source (tests/gpu_emulator/), which is how
//!   this module is tested on machines without a GPU.
//! - [`all_pairs`] and [`high_pairs`]: the same contracts as the CPU kernel's
//!   [`crate::compare::kernel::all_pairs`] and [`crate::compare::kernel::high_pairs`].
//! - [`search::search`]: the 1:N search, the contract and the lists of
//!   [`crate::compare::search::search`] (fp32 only).
//!
//! Exactness: in [`Precision::Fp32`] each score is accumulated with one fused multiply-add per
//! dimension in increasing order starting from 0, exactly as the CPU's AVX2 micro-kernel does, so the
//! histograms and mated scores are bit-identical to the CPU's. [`Precision::Bf16`] and
//! [`Precision::Fp16`] store the embeddings in 16 bits (half the memory and bandwidth) and still
//! accumulate in fp32: the result is bit-identical to the CPU kernel run on the rounded embeddings
//! ([`round_embeddings`]), and differs from full precision by the rounding of the inputs — for unit
//! vectors at most about 2⁻⁷ (bf16) or 2⁻¹⁰ (fp16) per score (each product `xₖyₖ` carries a
//! relative error of at most ≈ 2u, u = 2⁻⁸ or 2⁻¹¹, and `Σ|xₖyₖ| ≤ 1`). [`precision_drift`] counts
//! what that changes in a histogram.

pub mod cuda;
pub mod nvrtc;
pub mod search;

use rayon::prelude::*;

use super::kernel::{sort_rows, AllPairs, Shard};
use super::{CellHistograms, MatedScore, ScoreHistogram, BINS};

/// The CUDA source of the kernels.
pub const SOURCE: &str = include_str!("kernels.cu");
/// Rows and columns of one tile (one thread block of [`THREADS`] threads).
pub const TILE: usize = 128;
/// Threads per tile block.
pub const THREADS: u32 = 256;
/// Default tiles per launch: 2^16 tiles of 2^14 pairs = 2^30 pairs, so a u32 bin cannot overflow
/// before the histograms are flushed into u64 totals after the launch.
pub const TILES_PER_LAUNCH: usize = 1 << 16;

/// Storage precision of the embeddings on the device; accumulation is always fp32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Precision {
    /// 32-bit floats: bit-identical to the CPU kernel.
    Fp32,
    /// bfloat16 inputs (8-bit mantissa), fp32 accumulation.
    Bf16,
    /// IEEE half inputs (11-bit mantissa), fp32 accumulation.
    Fp16,
}

impl Precision {
    /// The kernel name in kernels.cu.
    pub fn kernel(self) -> &'static str {
        match self {
            Precision::Fp32 => "fb_tiles_f32",
            Precision::Bf16 => "fb_tiles_bf16",
            Precision::Fp16 => "fb_tiles_f16",
        }
    }

    /// Bytes per stored embedding element.
    pub fn bytes(self) -> usize {
        match self {
            Precision::Fp32 => 4,
            Precision::Bf16 | Precision::Fp16 => 2,
        }
    }

    /// The name recorded in run.json and bench output.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
        }
    }
}

/// Why the GPU path could not run.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// A library (driver or NVRTC) is missing; the text says what to install.
    #[error("{0}")]
    Missing(String),
    /// A CUDA driver call failed.
    #[error("CUDA {call} failed: {code} ({text})")]
    Driver {
        /// The driver function.
        call: &'static str,
        /// Its result code.
        code: i32,
        /// The driver's description of the code.
        text: String,
    },
    /// NVRTC could not compile the kernels.
    #[error("NVRTC could not compile the kernels for {arch}: {log}")]
    Compile {
        /// The target architecture option.
        arch: String,
        /// NVRTC's log or error.
        log: String,
    },
    /// The device has not enough memory for the job.
    #[error("the GPU has {free_mib} MiB free, the comparison needs {need_mib} MiB ({what}); use fewer groups, --precision bf16, or the CPU (--device cpu)")]
    Memory {
        /// Free device memory, MiB.
        free_mib: u64,
        /// Required, MiB.
        need_mib: u64,
        /// What takes the room.
        what: String,
    },
    /// The device's lists disagree with what the host expected (a kernel defect; never silently kept).
    #[error("GPU result check failed: {0}")]
    Inconsistent(String),
    /// The device has not enough memory for a 1:N search.
    #[error("the GPU has {free_mib} MiB free, the 1:N search needs {need_mib} MiB ({what}); use smaller --gallery-sizes or the CPU (--device cpu)")]
    SearchMemory {
        /// Free device memory, MiB.
        free_mib: u64,
        /// Required, MiB.
        need_mib: u64,
        /// What takes the room.
        what: String,
    },
    /// The inputs break the search's contract (the same checks as the CPU search).
    #[error("{0}")]
    Input(String),
}

/// A device address (the host address in an emulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevPtr(pub u64);

impl DevPtr {
    /// The null pointer (an absent optional buffer).
    pub const NULL: DevPtr = DevPtr(0);
}

/// One kernel argument, in the order of the kernel's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelArg {
    /// A device pointer (8 bytes).
    Ptr(DevPtr),
    /// An `unsigned` (4 bytes).
    U32(u32),
    /// An `unsigned long long` (8 bytes).
    U64(u64),
}

/// What the host code needs of a device.
pub trait Accelerator {
    /// A description for reports ("NVIDIA H100 80GB HBM3 (sm_90)", "CPU emulation").
    fn describe(&self) -> String;
    /// Free device memory in bytes, when known.
    fn free_memory(&mut self) -> Option<u64>;
    /// Blocks for the grid-stride flush kernel.
    fn flush_blocks(&self) -> u32;
    /// Allocates `bytes` of zeroed device memory.
    fn alloc_zeroed(&mut self, bytes: usize) -> Result<DevPtr, GpuError>;
    /// Copies host bytes to the device.
    fn upload(&mut self, dst: DevPtr, src: &[u8]) -> Result<(), GpuError>;
    /// Copies device bytes to the host (waits for the work before it).
    fn download(&mut self, src: DevPtr, dst: &mut [u8]) -> Result<(), GpuError>;
    /// Frees an allocation.
    fn free(&mut self, ptr: DevPtr);
    /// Launches `kernel` of [`SOURCE`] on `grid` blocks of `block` threads.
    fn launch(
        &mut self,
        kernel: &str,
        grid: u32,
        block: u32,
        args: &[KernelArg],
    ) -> Result<(), GpuError>;
    /// Waits for all launched work.
    fn synchronize(&mut self) -> Result<(), GpuError>;
}

/// Bins in a block's shared-memory window (`FB_WIN` in kernels.cu).
pub const WINDOW_BINS: usize = 16384;

/// Settings of a GPU pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuOptions {
    /// Storage precision of the embeddings.
    pub precision: Precision,
    /// Tiles per launch (at most [`TILES_PER_LAUNCH`], which keeps u32 bins from overflowing).
    pub tiles_per_launch: usize,
    /// Consecutive tiles (one tile row, neighbouring columns) scored by one block.
    pub tiles_per_block: usize,
    /// First bin of the blocks' shared-memory window; `None` centres it on a sample of the scores.
    /// It changes the speed only: every bin is counted exactly wherever the window sits.
    pub window: Option<u32>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            precision: Precision::Fp32,
            tiles_per_launch: TILES_PER_LAUNCH,
            tiles_per_block: 8,
            window: None,
        }
    }
}

/// The window's first bin: the median bin of up to 4,096 pairs (a fixed stride through the rows, so
/// the same data always gives the same window) minus half the window, even, inside [0, 2^16 − window].
pub fn window_start(emb: &[f32], dim: usize) -> u32 {
    let n = emb.len().checked_div(dim).unwrap_or(0);
    let mut bins: Vec<usize> = Vec::new();
    if n >= 2 {
        let step = (n / 64).max(1);
        let rows: Vec<usize> = (0..n).step_by(step).take(65).collect();
        for (x, &i) in rows.iter().enumerate() {
            for &j in &rows[x + 1..] {
                let s = super::dot(&emb[i * dim..(i + 1) * dim], &emb[j * dim..(j + 1) * dim]);
                bins.push(super::bin_of(s));
            }
        }
    }
    let centre = if bins.is_empty() {
        BINS / 2
    } else {
        let mid = bins.len() / 2;
        *bins.select_nth_unstable(mid).1
    };
    (centre
        .saturating_sub(WINDOW_BINS / 2)
        .min(BINS - WINDOW_BINS)
        & !1) as u32
}

impl GpuOptions {
    /// The kernel name recorded in run.json ("cuda-fp32-128x128").
    pub fn kernel_name(&self) -> &'static str {
        match self.precision {
            Precision::Fp32 => "cuda-fp32-128x128",
            Precision::Bf16 => "cuda-bf16-128x128",
            Precision::Fp16 => "cuda-fp16-128x128",
        }
    }
}

/// The embeddings as the device sees them: rounded to the precision (round to nearest even) and back
/// to f32, exactly. With these, the CPU kernel reproduces a reduced-precision GPU run bit for bit.
pub fn round_embeddings(emb: &[f32], precision: Precision) -> Vec<f32> {
    match precision {
        Precision::Fp32 => emb.to_vec(),
        Precision::Bf16 => emb
            .iter()
            .map(|&v| half::bf16::from_f32(v).to_f32())
            .collect(),
        Precision::Fp16 => emb
            .iter()
            .map(|&v| half::f16::from_f32(v).to_f32())
            .collect(),
    }
}

/// Rows sorted for the kernel, with the device copies of the embeddings and labels.
struct Staged {
    n: usize,
    np: usize,
    order: Vec<usize>,
    emb: DevPtr,
    grp: DevPtr,
    subj: DevPtr,
    /// Subject rank of each sorted position (host copy).
    subj_host: Vec<u32>,
}

fn as_bytes_u32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn stage(
    acc: &mut dyn Accelerator,
    emb: &[f32],
    dim: usize,
    cell: &[u16],
    subject: &[u32],
    precision: Precision,
    hist_bytes: usize,
) -> Result<Staged, GpuError> {
    let n = cell.len();
    let np = n.div_ceil(TILE).max(1) * TILE;
    let rows = sort_rows(cell, subject);
    let emb_bytes = np * dim * precision.bytes();
    let need = emb_bytes + 2 * np * 4 + hist_bytes + (TILES_PER_LAUNCH * 8);
    if let Some(free) = acc.free_memory() {
        if need as u64 > free {
            return Err(GpuError::Memory {
                free_mib: free >> 20,
                need_mib: (need as u64).div_ceil(1 << 20),
                what: format!(
                    "{} MiB of embeddings, {} MiB of histograms",
                    emb_bytes >> 20,
                    hist_bytes >> 20
                ),
            });
        }
    }
    // k-major: element (k, p) at k·np + p, padded rows zero; one k-row per task.
    let mut bytes = vec![0u8; emb_bytes];
    let w = precision.bytes();
    bytes
        .par_chunks_mut((np * w).max(1))
        .enumerate()
        .for_each(|(k, row)| {
            for (p, &i) in rows.order.iter().enumerate() {
                let v = emb[i * dim + k];
                let at = p * w;
                match precision {
                    Precision::Fp32 => row[at..at + 4].copy_from_slice(&v.to_le_bytes()),
                    Precision::Bf16 => {
                        row[at..at + 2].copy_from_slice(&half::bf16::from_f32(v).to_le_bytes())
                    }
                    Precision::Fp16 => {
                        row[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes())
                    }
                }
            }
        });
    let mut grp = vec![0u32; np];
    let mut subj = vec![u32::MAX; np];
    for p in 0..n {
        grp[p] = rows.grp[p] as u32;
        subj[p] = rows.subj[p];
    }
    let d_emb = acc.alloc_zeroed(emb_bytes.max(4))?;
    acc.upload(d_emb, &bytes)?;
    let d_grp = acc.alloc_zeroed(np * 4)?;
    acc.upload(d_grp, &as_bytes_u32(&grp))?;
    let d_subj = acc.alloc_zeroed(np * 4)?;
    acc.upload(d_subj, &as_bytes_u32(&subj))?;
    Ok(Staged {
        n,
        np,
        order: rows.order,
        emb: d_emb,
        grp: d_grp,
        subj: d_subj,
        subj_host: rows.subj,
    })
}

/// The upper-triangle tiles `(ti, tj)`, `ti ≤ tj`, of this shard: shards take tile rows `ti` with
/// `ti % count == index`, so N shards partition the pairs.
pub fn tiles(n: usize, shard: Shard) -> Vec<u32> {
    let t = n.div_ceil(TILE);
    let mut out = Vec::new();
    for ti in (0..t).filter(|ti| ti % shard.count == shard.index) {
        for tj in ti..t {
            out.push(ti as u32);
            out.push(tj as u32);
        }
    }
    out
}

/// Number of mated pairs among the sorted rows (runs of equal subject rank).
fn mated_count(subj: &[u32]) -> u64 {
    let mut total = 0u64;
    let mut run = 0u64;
    for (p, &s) in subj.iter().enumerate() {
        if p > 0 && s == subj[p - 1] {
            run += 1;
        } else {
            run = 1;
        }
        total += run - 1;
    }
    total
}

/// What one pass keeps.
enum Pass {
    /// Count histograms and list mated pairs.
    Count,
    /// List non-mated pairs whose bin is at least `from_bin`; `expected` of them (from the counting
    /// pass) are allocated, and a different number is an error.
    Collect { from_bin: u32, expected: u64 },
}

struct PassOutput {
    nonmated: Option<CellHistograms>,
    mated: Vec<MatedScore>,
    high: Vec<(usize, usize, u16)>,
}

#[allow(clippy::too_many_arguments)]
fn run_pass(
    acc: &mut dyn Accelerator,
    emb: &[f32],
    dim: usize,
    cell: &[u16],
    subject: &[u32],
    groups: usize,
    opts: GpuOptions,
    shard: Shard,
    pass: Pass,
) -> Result<PassOutput, GpuError> {
    assert_eq!(emb.len(), cell.len() * dim, "embedding matrix size");
    assert_eq!(cell.len(), subject.len());
    assert!(
        shard.count >= 1 && shard.index < shard.count,
        "shard index out of range"
    );
    let per_launch = opts.tiles_per_launch.clamp(1, TILES_PER_LAUNCH);
    let cells = groups * (groups + 1) / 2;
    let hist_len = cells * BINS;
    let counting = matches!(pass, Pass::Count);
    let hist_bytes = if counting { hist_len * 12 } else { 0 };
    let mut allocs = Vec::new();
    let result = (|| {
        let st = stage(acc, emb, dim, cell, subject, opts.precision, hist_bytes)?;
        allocs.extend([st.emb, st.grp, st.subj]);
        let list = tiles(st.n, shard);
        let d_tiles = acc.alloc_zeroed(per_launch * 8)?;
        allocs.push(d_tiles);
        let (mut h32, mut h64) = (DevPtr::NULL, DevPtr::NULL);
        let (mut mated, mut mated_score, mut mated_cnt, mut mated_cap) =
            (DevPtr::NULL, DevPtr::NULL, DevPtr::NULL, 0u64);
        let (mut high, mut high_cnt, mut high_cap, mut from_bin) =
            (DevPtr::NULL, DevPtr::NULL, 0u64, u32::MAX);
        match pass {
            Pass::Count => {
                h32 = acc.alloc_zeroed(hist_len * 4)?;
                allocs.push(h32);
                h64 = acc.alloc_zeroed(hist_len * 8)?;
                allocs.push(h64);
                // Every mated pair of the whole job (a shard's are a subset); at least one slot.
                mated_cap = mated_count(&st.subj_host);
                if mated_cap > u32::MAX as u64 {
                    return Err(GpuError::Inconsistent(format!(
                        "{mated_cap} mated pairs exceed the kernel's u32 list index"
                    )));
                }
                mated = acc.alloc_zeroed(mated_cap.max(1) as usize * 8)?;
                mated_score = acc.alloc_zeroed(mated_cap.max(1) as usize * 4)?;
                mated_cnt = acc.alloc_zeroed(4)?;
                allocs.extend([mated, mated_score, mated_cnt]);
            }
            Pass::Collect {
                from_bin: b,
                expected,
            } => {
                if expected > u32::MAX as u64 {
                    return Err(GpuError::Inconsistent(format!(
                        "{expected} high pairs exceed the kernel's u32 list index"
                    )));
                }
                from_bin = b;
                high_cap = expected;
                high = acc.alloc_zeroed(high_cap.max(1) as usize * 12)?;
                high_cnt = acc.alloc_zeroed(4)?;
                allocs.extend([high, high_cnt]);
            }
        }
        let per_block = opts.tiles_per_block.max(1);
        let win_lo = opts
            .window
            .map(|w| (w.min((BINS - WINDOW_BINS) as u32)) & !1)
            .unwrap_or_else(|| window_start(emb, dim));
        for batch in list.chunks(per_launch * 2) {
            acc.upload(d_tiles, &as_bytes_u32(batch))?;
            let ntiles = batch.len() / 2;
            acc.launch(
                opts.precision.kernel(),
                ntiles.div_ceil(per_block) as u32,
                THREADS,
                &[
                    KernelArg::Ptr(st.emb),
                    KernelArg::U32(st.np as u32),
                    KernelArg::U32(st.n as u32),
                    KernelArg::U32(dim as u32),
                    KernelArg::Ptr(st.grp),
                    KernelArg::Ptr(st.subj),
                    KernelArg::U32(groups as u32),
                    KernelArg::Ptr(d_tiles),
                    KernelArg::U32(ntiles as u32),
                    KernelArg::U32(per_block as u32),
                    KernelArg::U32(win_lo),
                    KernelArg::Ptr(h32),
                    KernelArg::U32(from_bin),
                    KernelArg::Ptr(mated),
                    KernelArg::Ptr(mated_score),
                    KernelArg::Ptr(mated_cnt),
                    KernelArg::U32(mated_cap as u32),
                    KernelArg::Ptr(high),
                    KernelArg::Ptr(high_cnt),
                    KernelArg::U32(high_cap as u32),
                ],
            )?;
            if counting {
                acc.launch(
                    "fb_flush",
                    acc.flush_blocks(),
                    256,
                    &[
                        KernelArg::Ptr(h32),
                        KernelArg::Ptr(h64),
                        KernelArg::U64(hist_len as u64),
                    ],
                )?;
            }
        }
        acc.synchronize()?;
        let order = &st.order;
        let unsort = |x: u32, y: u32| {
            let (a, b) = (order[x as usize], order[y as usize]);
            (a.min(b), a.max(b))
        };
        let mut out = PassOutput {
            nonmated: None,
            mated: Vec::new(),
            high: Vec::new(),
        };
        if counting {
            let mut raw = vec![0u8; hist_len * 8];
            acc.download(h64, &mut raw)?;
            let mut hist = CellHistograms::new(groups);
            for (c, h) in hist.cells.iter_mut().enumerate() {
                let base = c * BINS * 8;
                *h = ScoreHistogram {
                    counts: raw[base..base + BINS * 8]
                        .chunks_exact(8)
                        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .collect(),
                };
            }
            out.nonmated = Some(hist);
            let got = read_u32(acc, mated_cnt)? as u64;
            if got > mated_cap {
                return Err(GpuError::Inconsistent(format!(
                    "the device found {got} mated pairs, the labels allow {mated_cap}"
                )));
            }
            let mut ij = vec![0u8; got as usize * 8];
            let mut sc = vec![0u8; got as usize * 4];
            if got > 0 {
                acc.download(mated, &mut ij)?;
                acc.download(mated_score, &mut sc)?;
            }
            for (p, s) in ij.chunks_exact(8).zip(sc.chunks_exact(4)) {
                let x = u32::from_le_bytes(p[0..4].try_into().expect("4 bytes"));
                let y = u32::from_le_bytes(p[4..8].try_into().expect("4 bytes"));
                let (a, b) = unsort(x, y);
                out.mated.push(MatedScore {
                    a,
                    b,
                    score: f32::from_le_bytes(s.try_into().expect("4 bytes")),
                });
            }
            out.mated.sort_by_key(|m| (m.a, m.b));
        } else {
            let got = read_u32(acc, high_cnt)? as u64;
            if got != high_cap {
                return Err(GpuError::Inconsistent(format!(
                    "the collecting pass found {got} pairs at or above bin {from_bin}, the counting pass {high_cap}"
                )));
            }
            let mut raw = vec![0u8; got as usize * 12];
            if got > 0 {
                acc.download(high, &mut raw)?;
            }
            for e in raw.chunks_exact(12) {
                let w = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().expect("4 bytes"));
                let (a, b) = unsort(w(0), w(4));
                out.high.push((a, b, w(8) as u16));
            }
            out.high.sort_unstable();
        }
        Ok(out)
    })();
    for p in allocs {
        acc.free(p);
    }
    result
}

fn read_u32(acc: &mut dyn Accelerator, p: DevPtr) -> Result<u32, GpuError> {
    let mut b = [0u8; 4];
    acc.download(p, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// Scores all pairs on the device: mated pairs (same subject) with their scores, non-mated pairs
/// counted per `(cell[i], cell[j])` — the contract of [`crate::compare::kernel::all_pairs`].
#[allow(clippy::too_many_arguments)]
pub fn all_pairs(
    acc: &mut dyn Accelerator,
    emb: &[f32],
    dim: usize,
    cell: &[u16],
    subject: &[u32],
    groups: usize,
    opts: GpuOptions,
    shard: Shard,
) -> Result<AllPairs, GpuError> {
    let out = run_pass(
        acc,
        emb,
        dim,
        cell,
        subject,
        groups,
        opts,
        shard,
        Pass::Count,
    )?;
    Ok(AllPairs {
        nonmated: out.nonmated.expect("counting pass"),
        mated: out.mated,
    })
}

/// The bootstrap's second pass on the device: every non-mated pair whose bin is at least `from_bin`,
/// as (row a, row b, bin), `a < b`, sorted. `expected` is their number from the counting pass (the
/// histograms' tail), which sizes the list; a different count is an error.
#[allow(clippy::too_many_arguments)]
pub fn high_pairs(
    acc: &mut dyn Accelerator,
    emb: &[f32],
    dim: usize,
    cell: &[u16],
    subject: &[u32],
    groups: usize,
    opts: GpuOptions,
    from_bin: usize,
    expected: u64,
) -> Result<Vec<(usize, usize, u16)>, GpuError> {
    let out = run_pass(
        acc,
        emb,
        dim,
        cell,
        subject,
        groups,
        opts,
        Shard::ALL,
        Pass::Collect {
            from_bin: from_bin.min(BINS) as u32,
            expected,
        },
    )?;
    Ok(out.high)
}

/// How a reduced-precision histogram differs from the full-precision one of the same pairs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PrecisionDrift {
    /// Pairs counted.
    pub pairs: u64,
    /// A lower bound on the pairs whose bin changed: half the summed absolute count differences.
    pub moved_at_least: u64,
    /// The largest difference, over all bin edges and cells, in the number of pairs at or above the edge.
    pub max_tail_difference: u64,
}

/// Compares two sets of cell histograms over the same pairs (e.g. fp32 and bf16).
pub fn precision_drift(full: &CellHistograms, reduced: &CellHistograms) -> PrecisionDrift {
    let mut pairs = 0;
    let mut abs = 0u64;
    let mut max_tail = 0u64;
    for (a, b) in full.cells.iter().zip(&reduced.cells) {
        pairs += a.total();
        let (mut ta, mut tb) = (0u64, 0u64);
        for k in (0..BINS).rev() {
            abs += a.counts[k].abs_diff(b.counts[k]);
            ta += a.counts[k];
            tb += b.counts[k];
            max_tail = max_tail.max(ta.abs_diff(tb));
        }
    }
    PrecisionDrift {
        pairs,
        moved_at_least: abs / 2,
        max_tail_difference: max_tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_upper_triangle_once_across_shards() {
        // n = 300 → 3 tile rows → 3 + 2 + 1 = 6 tiles.
        let all = tiles(300, Shard::ALL);
        assert_eq!(all, vec![0, 0, 0, 1, 0, 2, 1, 1, 1, 2, 2, 2]);
        let mut merged: Vec<u32> = (0..2)
            .flat_map(|index| tiles(300, Shard { index, count: 2 }))
            .collect::<Vec<_>>();
        let mut pairs: Vec<(u32, u32)> = merged.chunks(2).map(|c| (c[0], c[1])).collect();
        pairs.sort();
        merged = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        assert_eq!(merged, all);
        assert_eq!(tiles(1, Shard::ALL), vec![0, 0]);
    }

    #[test]
    fn mated_count_sums_runs() {
        // Runs of 3, 1, 2 → 3 + 0 + 1 pairs.
        assert_eq!(mated_count(&[0, 0, 0, 1, 2, 2]), 4);
        assert_eq!(mated_count(&[]), 0);
    }

    #[test]
    fn rounding_is_exact_and_round_to_nearest_even() {
        // 1 + 2^-8 lies halfway between the bf16 neighbours 1 and 1 + 2^-7: ties to even → 1.
        let x = 1.0f32 + 2f32.powi(-8);
        assert_eq!(round_embeddings(&[x], Precision::Bf16), vec![1.0]);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even → 1 + 2^-6.
        let y = 1.0f32 + 3.0 * 2f32.powi(-8);
        assert_eq!(
            round_embeddings(&[y], Precision::Bf16),
            vec![1.0 + 2f32.powi(-6)]
        );
        // fp16 keeps 10 fraction bits: 1 + 2^-10 survives, 1 + 2^-12 does not.
        assert_eq!(
            round_embeddings(
                &[1.0 + 2f32.powi(-10), 1.0 + 2f32.powi(-12)],
                Precision::Fp16
            ),
            vec![1.0 + 2f32.powi(-10), 1.0]
        );
        assert_eq!(round_embeddings(&[0.3], Precision::Fp32), vec![0.3]);
    }

    #[test]
    fn drift_counts_moved_pairs() {
        let mut a = CellHistograms::new(1);
        let mut b = CellHistograms::new(1);
        // Three pairs; one moves from bin 100 to bin 101.
        a.cells[0].counts[100] = 2;
        a.cells[0].counts[200] = 1;
        b.cells[0].counts[100] = 1;
        b.cells[0].counts[101] = 1;
        b.cells[0].counts[200] = 1;
        let d = precision_drift(&a, &b);
        assert_eq!(d.pairs, 3);
        assert_eq!(d.moved_at_least, 1);
        // At edge 101: a has 1 pair at or above, b has 2.
        assert_eq!(d.max_tail_difference, 1);
    }
}

//! `facebias bench --search`: the 1:N search kernel on synthetic unit vectors — P probes against a
//! gallery of G entries, the top K of each — reported as seconds (median of the repetitions, each a
//! whole [`search_with`] call: probe packing, scoring, selection and the candidate lists), searches/s,
//! scores/s, GFLOP/s (2·P·G·d flops) and % of the measured FMA peak of the widest instruction set
//! the CPU has ([`widest_fma_peak`], so an AVX-512 kernel is measured against the 16-lane peak).
//! The peer is `shared/bench/faiss_search.py` (faiss-cpu `IndexFlatIP`, the same shapes).

use std::time::Instant;

use serde::Serialize;

use super::bench::{peak_rss_bytes, synthetic, widest_fma_peak, PeakIsa};
use super::search::{search_with, SearchKernel};

/// What `facebias bench --search` measured.
#[derive(Debug, Clone, Serialize)]
pub struct SearchBench {
    /// Probes searched.
    pub probes: usize,
    /// Gallery entries (one gallery size: all of them).
    pub gallery: usize,
    /// Embedding length.
    pub dim: usize,
    /// Candidates kept per probe (L).
    pub candidates: usize,
    /// Worker threads.
    pub threads: usize,
    /// Kernel measured.
    pub kernel: &'static str,
    /// Seconds of each repetition.
    pub seconds: Vec<f64>,
    /// Median seconds.
    pub median_seconds: f64,
    /// Probes searched per second at the median.
    pub searches_per_second: f64,
    /// Probe-entry scores per second at the median.
    pub scores_per_second: f64,
    /// 2·probes·gallery·d / median seconds / 1e9.
    pub gflops: f64,
    /// Measured FMA peak over `threads` threads (best of before and after the runs).
    pub peak_gflops: f64,
    /// The instruction set of that peak (`avx512f`, `avx2` or `portable`).
    pub peak_isa: PeakIsa,
    /// gflops / peak_gflops · 100.
    pub percent_of_peak: f64,
    /// Peak resident memory of the process, bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// Runs the search benchmark: seeded synthetic unit vectors (probes seed 42, gallery seed 43),
/// `repeat` timed calls of the kernel.
pub fn run(
    probes: usize,
    gallery: usize,
    dim: usize,
    candidates: usize,
    threads: usize,
    repeat: usize,
    kernel: SearchKernel,
) -> Result<SearchBench, String> {
    let peak_before = widest_fma_peak(threads);
    let p = synthetic(probes, dim, 1, 42).0;
    let g = synthetic(gallery, dim, 1, 43).0;
    let rows: Vec<u32> = (0..gallery as u32).collect();
    let mut seconds = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let r = search_with(&p, &g, &rows, dim, &[gallery], candidates, kernel, threads)?;
        seconds.push(t.elapsed().as_secs_f64());
        std::hint::black_box(&r);
    }
    // Measured again after the kernel ran (a cold core may not reach its clock at first).
    let peak = peak_before.gflops.max(widest_fma_peak(threads).gflops);
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let scores = probes as f64 * gallery as f64;
    let gflops = 2.0 * scores * dim as f64 / median / 1e9;
    Ok(SearchBench {
        probes,
        gallery,
        dim,
        candidates,
        threads,
        kernel: kernel.name(),
        seconds,
        median_seconds: median,
        searches_per_second: probes as f64 / median,
        scores_per_second: scores / median,
        gflops,
        peak_gflops: peak,
        peak_isa: peak_before.isa,
        percent_of_peak: 100.0 * gflops / peak,
        peak_memory_bytes: peak_rss_bytes(),
    })
}

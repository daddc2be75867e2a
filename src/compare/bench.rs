//! `facebias bench`: the machine's measured FMA peak, then the all-pairs kernel on synthetic
//! embeddings, reported as pairs/s, GFLOP/s (2·d flops a pair) and % of the measured peak, beside the
//! scalar per-pair baseline run in the same process. The 1:N search bench is in
//! [`super::search_bench`]; both measure against a peak from here ([`widest_fma_peak`] names the
//! instruction set it used).

use std::time::Instant;

use serde::Serialize;

use super::kernel::{all_pairs, Kernel, Shard};

/// Synthetic unit embeddings from a fixed-seed xorshift generator: `n × dim`, `groups` groups assigned
/// round-robin, one image per subject (every pair non-mated).
pub fn synthetic(n: usize, dim: usize, groups: usize, seed: u64) -> (Vec<f32>, Vec<u16>, Vec<u32>) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut emb: Vec<f32> = (0..n * dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    for r in emb.chunks_mut(dim) {
        crate::embed::l2_normalize(r);
    }
    let cell = (0..n).map(|i| (i % groups.max(1)) as u16).collect();
    let subject = (0..n as u32).collect();
    (emb, cell, subject)
}

/// Floating-point operations of an FMA peak loop: `threads` threads × `iters` iterations × `chains`
/// independent FMA chains × `lanes` lanes × 2 (a fused multiply-add is a multiply and an add).
pub fn fma_loop_flops(threads: usize, iters: u64, chains: usize, lanes: usize) -> f64 {
    threads as f64 * iters as f64 * chains as f64 * lanes as f64 * 2.0
}

/// The instruction set a measured FMA peak was reached with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeakIsa {
    /// 16-lane AVX-512F `vfmadd` (24 independent chains a thread).
    Avx512f,
    /// 8-lane AVX2 + FMA `vfmadd` (12 independent chains a thread).
    Avx2,
    /// `f32::mul_add` in plain Rust (CPUs without either).
    Portable,
}

impl PeakIsa {
    /// The widest FMA this CPU has.
    pub fn widest() -> PeakIsa {
        [PeakIsa::Avx512f, PeakIsa::Avx2]
            .into_iter()
            .find(|i| i.available())
            .unwrap_or(PeakIsa::Portable)
    }

    /// Whether this CPU runs the loop of this instruction set.
    pub fn available(self) -> bool {
        match self {
            PeakIsa::Avx512f => Kernel::Avx512f.available(),
            PeakIsa::Avx2 => Kernel::Avx2Fma.available(),
            PeakIsa::Portable => true,
        }
    }

    /// The name in bench output (`avx512f`, `avx2`, `portable`).
    pub fn name(self) -> &'static str {
        match self {
            PeakIsa::Avx512f => "avx512f",
            PeakIsa::Avx2 => "avx2",
            PeakIsa::Portable => "portable",
        }
    }

    /// Independent FMA chains a thread, enough to cover the FMA latency on two pipes.
    pub fn chains(self) -> usize {
        match self {
            PeakIsa::Avx512f => 24,
            PeakIsa::Avx2 | PeakIsa::Portable => 12,
        }
    }

    /// Lanes of one FMA.
    pub fn lanes(self) -> usize {
        match self {
            PeakIsa::Avx512f => 16,
            PeakIsa::Avx2 | PeakIsa::Portable => 8,
        }
    }

    /// Runs the peak loop on this thread: every lane of every chain starts at 1 and becomes
    /// `x·m + c` each iteration; returns the sum of all lanes (so `m = c = 1` gives
    /// `chains·lanes·(1 + iters)`, a count by hand). Falls back to the portable loop where the CPU
    /// lacks the instruction set.
    pub fn run_loop(self, iters: u64, m: f32, c: f32) -> f32 {
        let (m, c) = (std::hint::black_box(m), std::hint::black_box(c));
        #[cfg(target_arch = "x86_64")]
        match self {
            // SAFETY: AVX-512F / AVX2 + FMA were detected at run time.
            PeakIsa::Avx512f if self.available() => return unsafe { fma_loop_avx512(iters, m, c) },
            PeakIsa::Avx2 if self.available() => return unsafe { fma_loop_avx2(iters, m, c) },
            _ => {}
        }
        let mut acc = [[1.0f32; 8]; 12];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                for v in a.iter_mut() {
                    *v = v.mul_add(m, c);
                }
            }
        }
        acc.iter().flatten().sum()
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2(iters: u64, m: f32, c: f32) -> f32 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm256_set1_ps(m), _mm256_set1_ps(c));
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, m, c);
        }
    }
    let mut out = [0.0f32; 8];
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, a| _mm256_add_ps(s, *a));
    // SAFETY: out holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_avx512(iters: u64, m: f32, c: f32) -> f32 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm512_set1_ps(m), _mm512_set1_ps(c));
    let mut acc = [_mm512_set1_ps(1.0); 24];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, m, c);
        }
    }
    let sum = acc
        .iter()
        .fold(_mm512_setzero_ps(), |s, a| _mm512_add_ps(s, *a));
    _mm512_reduce_add_ps(sum)
}

/// A measured FMA peak and the instruction set it used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FmaPeak {
    /// GFLOP/s over all the threads (2 flops an FMA lane).
    pub gflops: f64,
    /// The instruction set of the loop.
    pub isa: PeakIsa,
}

/// The FMA peak of `isa` over `threads` threads: [`PeakIsa::run_loop`] on every thread, flops by
/// [`fma_loop_flops`], best of three runs of ~0.15 s (the first may pay for frequency ramp-up).
pub fn fma_peak(isa: PeakIsa, threads: usize) -> FmaPeak {
    let threads = threads.max(1);
    // About 0.15 s a run at 3 GHz with two FMA pipes.
    let iters: u64 = match isa {
        PeakIsa::Avx512f => 40_000_000,
        _ => 80_000_000,
    };
    let gflops = (0..3)
        .map(|_| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(move || std::hint::black_box(isa.run_loop(iters, 0.999_999, 1e-7)));
                }
            });
            let secs = start.elapsed().as_secs_f64();
            fma_loop_flops(threads, iters, isa.chains(), isa.lanes()) / secs / 1e9
        })
        .fold(0.0, f64::max);
    FmaPeak { gflops, isa }
}

/// The honest FMA peak of this machine over `threads` threads: the loop of the widest FMA the CPU
/// has ([`PeakIsa::widest`]: 16-lane AVX-512F where present, so a 16-lane kernel is measured against
/// a 16-lane peak).
pub fn widest_fma_peak(threads: usize) -> FmaPeak {
    fma_peak(PeakIsa::widest(), threads)
}

/// The peak measured before and after a kernel ran, and whether the two disagree by more than 10 %
/// (a machine busy with other work, or a clock that changed): the warning to print, if any.
pub fn peak_drift_warning(before: f64, after: f64) -> Option<String> {
    let (lo, hi) = (before.min(after), before.max(after));
    (hi > 1.10 * lo).then(|| {
        format!(
            "the FMA peak measured before ({before:.1} GFLOP/s) and after ({after:.1} GFLOP/s) the kernel differ by {:.0} %: the machine is busy or its clock changed, so the % of peak is uncertain",
            100.0 * (hi / lo - 1.0)
        )
    })
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What `facebias bench` measured, on the CPU or on a GPU.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BenchOutcome {
    /// The CPU kernel.
    Cpu(KernelBench),
    /// The GPU kernel, with the CPU kernel as baseline.
    Gpu(GpuKernelBench),
    /// The 1:N search kernel (`bench --search`).
    Search(super::search_bench::SearchBench),
}

/// What `facebias bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct KernelBench {
    /// Embeddings.
    pub n: usize,
    /// Embedding length.
    pub dim: usize,
    /// Groups (cells = groups·(groups+1)/2).
    pub groups: usize,
    /// Worker threads.
    pub threads: usize,
    /// Kernel measured.
    pub kernel: &'static str,
    /// Unique pairs n(n−1)/2.
    pub pairs: u64,
    /// Seconds of each repetition.
    pub seconds: Vec<f64>,
    /// Median seconds.
    pub median_seconds: f64,
    /// Pairs per second at the median.
    pub pairs_per_second: f64,
    /// 2·d·pairs / median seconds / 1e9.
    pub gflops: f64,
    /// Measured FMA peak over `threads` threads: the better of the measurements before and after
    /// the kernel, with the widest FMA the CPU has.
    pub peak_gflops: f64,
    /// The instruction set of the peak loop (`avx512f`, `avx2` or `portable`).
    pub peak_isa: &'static str,
    /// The peak measured before the kernel ran.
    pub peak_before_gflops: f64,
    /// The peak measured after the kernel ran.
    pub peak_after_gflops: f64,
    /// Set when the two peak measurements differ by more than 10 %.
    pub peak_warning: Option<String>,
    /// gflops / peak_gflops · 100.
    pub percent_of_peak: f64,
    /// Pairs per second of the scalar per-pair reference (same threads, on `scalar_n` embeddings).
    pub scalar_pairs_per_second: f64,
    /// Embeddings used for the scalar baseline.
    pub scalar_n: usize,
    /// pairs_per_second / scalar_pairs_per_second.
    pub speedup_vs_scalar: f64,
    /// Peak resident memory of the process, bytes.
    pub peak_memory_bytes: Option<u64>,
}

/// Runs the kernel benchmark.
pub fn run(
    n: usize,
    dim: usize,
    groups: usize,
    threads: usize,
    repeat: usize,
    kernel: Kernel,
    scalar_n: usize,
) -> KernelBench {
    let before = widest_fma_peak(threads);
    let (emb, cell, subject) = synthetic(n, dim, groups, 42);
    let pairs = (n as u64) * (n as u64).saturating_sub(1) / 2;
    let mut seconds = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let r = all_pairs(
            &emb,
            dim,
            &cell,
            &subject,
            groups,
            kernel,
            threads,
            Shard::ALL,
        );
        seconds.push(t.elapsed().as_secs_f64());
        std::hint::black_box(&r);
    }
    // Measured again after the kernel ran (a cold core may not reach its clock at first); the best is
    // kept, and a disagreement of more than 10 % is reported.
    let after = fma_peak(before.isa, threads);
    let peak = before.gflops.max(after.gflops);
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let scalar_n = scalar_n.min(n).max(2);
    let (se, sc, ss) = synthetic(scalar_n, dim, groups, 43);
    let t = Instant::now();
    std::hint::black_box(all_pairs(
        &se,
        dim,
        &sc,
        &ss,
        groups,
        Kernel::Scalar,
        threads,
        Shard::ALL,
    ));
    let scalar_pps = (scalar_n * (scalar_n - 1) / 2) as f64 / t.elapsed().as_secs_f64();
    let pps = pairs as f64 / median;
    let gflops = pps * 2.0 * dim as f64 / 1e9;
    KernelBench {
        n,
        dim,
        groups,
        threads,
        kernel: kernel.name(),
        pairs,
        seconds,
        median_seconds: median,
        pairs_per_second: pps,
        gflops,
        peak_gflops: peak,
        peak_isa: before.isa.name(),
        peak_before_gflops: before.gflops,
        peak_after_gflops: after.gflops,
        peak_warning: peak_drift_warning(before.gflops, after.gflops),
        percent_of_peak: 100.0 * gflops / peak,
        scalar_pairs_per_second: scalar_pps,
        scalar_n,
        speedup_vs_scalar: pps / scalar_pps,
        peak_memory_bytes: peak_rss_bytes(),
    }
}

/// What `facebias bench --device cuda` measured.
#[derive(Debug, Clone, Serialize)]
pub struct GpuKernelBench {
    /// The device in words.
    pub device: String,
    /// Embeddings.
    pub n: usize,
    /// Embedding length.
    pub dim: usize,
    /// Groups (cells = groups·(groups+1)/2).
    pub groups: usize,
    /// Kernel measured (e.g. `cuda-fp32-128x128`).
    pub kernel: &'static str,
    /// Storage precision of the embeddings.
    pub precision: &'static str,
    /// Unique pairs n(n−1)/2.
    pub pairs: u64,
    /// Seconds of each repetition, end to end: sorting and upload of the embeddings, every tile
    /// launch and flush, and the download of the histograms.
    pub seconds: Vec<f64>,
    /// Median seconds.
    pub median_seconds: f64,
    /// Pairs per second at the median.
    pub pairs_per_second: f64,
    /// 2·d·pairs / median seconds / 1e9.
    pub gflops: f64,
    /// The device's fp32 peak (SMs × fp32 lanes × 2 × peak clock), when known.
    pub fp32_peak_gflops: Option<f64>,
    /// gflops / fp32 peak · 100.
    pub percent_of_fp32_peak: Option<f64>,
    /// The device's dense 16-bit tensor-core peak, when known; the kernel runs on the fp32 units, so
    /// this share says how far a tensor-core kernel could go, not what this one uses.
    pub tensor_peak_gflops: Option<f64>,
    /// gflops / tensor peak · 100.
    pub percent_of_tensor_peak: Option<f64>,
    /// The CPU kernel measured in the same process on `cpu_n` embeddings.
    pub cpu_kernel: &'static str,
    /// Embeddings of the CPU baseline.
    pub cpu_n: usize,
    /// CPU threads of the baseline.
    pub cpu_threads: usize,
    /// Pairs per second of the CPU baseline.
    pub cpu_pairs_per_second: f64,
    /// pairs_per_second / cpu_pairs_per_second.
    pub speedup_vs_cpu: f64,
}

/// Runs the GPU kernel benchmark on `acc` (peaks from `info`), with the CPU kernel as the baseline.
#[allow(clippy::too_many_arguments)]
pub fn run_gpu(
    acc: &mut dyn super::gpu::Accelerator,
    info: Option<&super::gpu::cuda::DeviceInfo>,
    opts: super::gpu::GpuOptions,
    n: usize,
    dim: usize,
    groups: usize,
    repeat: usize,
    cpu_n: usize,
    cpu_threads: usize,
) -> Result<GpuKernelBench, super::gpu::GpuError> {
    let (emb, cell, subject) = synthetic(n, dim, groups, 42);
    let pairs = (n as u64) * (n as u64).saturating_sub(1) / 2;
    // One untimed call on a slice: first-launch costs (module, allocator) stay out of the timings.
    let warm = n.min(4096);
    super::gpu::all_pairs(
        acc,
        &emb[..warm * dim],
        dim,
        &cell[..warm],
        &subject[..warm],
        groups,
        opts,
        Shard::ALL,
    )?;
    let mut seconds = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let r = super::gpu::all_pairs(acc, &emb, dim, &cell, &subject, groups, opts, Shard::ALL)?;
        seconds.push(t.elapsed().as_secs_f64());
        std::hint::black_box(&r);
    }
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let pps = pairs as f64 / median;
    let gflops = pps * 2.0 * dim as f64 / 1e9;
    let cpu_n = cpu_n.clamp(2, n.max(2));
    let (ce, cc, cs) = synthetic(cpu_n, dim, groups, 43);
    let kernel = Kernel::detect();
    let t = Instant::now();
    std::hint::black_box(all_pairs(
        &ce,
        dim,
        &cc,
        &cs,
        groups,
        kernel,
        cpu_threads,
        Shard::ALL,
    ));
    let cpu_pps = (cpu_n * (cpu_n - 1) / 2) as f64 / t.elapsed().as_secs_f64();
    let fp32_peak = info.and_then(|i| i.fp32_peak_gflops());
    let tensor_peak = info.and_then(|i| i.tensor_peak_gflops());
    Ok(GpuKernelBench {
        device: acc.describe(),
        n,
        dim,
        groups,
        kernel: opts.kernel_name(),
        precision: opts.precision.name(),
        pairs,
        seconds,
        median_seconds: median,
        pairs_per_second: pps,
        gflops,
        fp32_peak_gflops: fp32_peak,
        percent_of_fp32_peak: fp32_peak.map(|p| 100.0 * gflops / p),
        tensor_peak_gflops: tensor_peak,
        percent_of_tensor_peak: tensor_peak.map(|p| 100.0 * gflops / p),
        cpu_kernel: kernel.name(),
        cpu_n,
        cpu_threads,
        cpu_pairs_per_second: cpu_pps,
        speedup_vs_cpu: pps / cpu_pps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flop_count_by_hand() {
        // 2 threads × 1000 iterations × 24 chains × 16 lanes × 2 flops.
        assert_eq!(fma_loop_flops(2, 1000, 24, 16), 1_536_000.0);
        assert_eq!(fma_loop_flops(1, 3, 12, 8), 576.0);
    }

    #[test]
    fn every_peak_loop_does_the_fmas_it_counts() {
        // With m = c = 1 each lane goes 1, 2, 3, …: after 1000 iterations it holds 1001, and the sum
        // over chains × lanes is exact in f32 (below 2^24), so the loop ran exactly
        // iters × chains × lanes FMAs, the count `fma_loop_flops` charges.
        for isa in [PeakIsa::Avx512f, PeakIsa::Avx2, PeakIsa::Portable] {
            if !isa.available() {
                eprintln!("skip: this CPU has no {} loop", isa.name());
                continue;
            }
            let lanes = (isa.chains() * isa.lanes()) as f32;
            assert_eq!(
                isa.run_loop(1000, 1.0, 1.0),
                lanes * 1001.0,
                "{}",
                isa.name()
            );
            // x·0.5 + 1 from 1: 1.5, 1.75, … → 2 − 2^-n after n iterations; with n = 10 every partial
            // sum of up to 384 lanes needs at most 20 significant bits, so it is exact in f32.
            let n = 10;
            let want = lanes * (2.0 - 0.5f32.powi(n));
            assert_eq!(isa.run_loop(n as u64, 0.5, 1.0), want, "{}", isa.name());
        }
        assert_eq!(PeakIsa::Avx512f.chains() * PeakIsa::Avx512f.lanes(), 384);
        assert_eq!(PeakIsa::Avx2.chains() * PeakIsa::Avx2.lanes(), 96);
    }

    #[test]
    fn widest_peak_names_the_widest_unit() {
        let want = if Kernel::Avx512f.available() {
            PeakIsa::Avx512f
        } else if Kernel::Avx2Fma.available() {
            PeakIsa::Avx2
        } else {
            PeakIsa::Portable
        };
        assert_eq!(PeakIsa::widest(), want);
    }

    #[test]
    fn drift_warning_above_ten_percent_only() {
        assert_eq!(peak_drift_warning(100.0, 109.0), None);
        assert_eq!(peak_drift_warning(109.0, 100.0), None);
        let w = peak_drift_warning(100.0, 111.0).expect("11 % apart");
        assert!(
            w.contains("11 %") && w.contains("100.0") && w.contains("111.0"),
            "{w}"
        );
        assert!(peak_drift_warning(120.0, 100.0).unwrap().contains("20 %"));
    }
}

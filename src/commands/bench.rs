//! `facebias bench`: the matching kernel on the CPU (against the measured FMA peak and a scalar
//! baseline) or, with `--device cuda`, on a GPU (against its peaks and the CPU kernel); with
//! `--search`, the 1:N search kernel on the CPU.

use anyhow::{anyhow, bail, Result};

use super::common::threads;
use crate::cli::{BenchKernel, KernelBenchArgs};
use crate::compare::backend::Backend;
use crate::compare::bench::{self, BenchOutcome, KernelBench};
use crate::compare::kernel::Kernel;
use crate::compare::search::SearchKernel;
use crate::compare::search_bench::{self, SearchBench};
use crate::runtime::Device;

/// `facebias bench`.
pub fn bench_kernel(a: &KernelBenchArgs) -> Result<BenchOutcome> {
    if a.search {
        return bench_search(a).map(BenchOutcome::Search);
    }
    if a.n < 2 || a.dim == 0 || a.groups == 0 || a.groups > 256 {
        bail!(
            "--n must be ≥ 2, --dim ≥ 1 and --groups in 1..=256 (got {}, {}, {})",
            a.n,
            a.dim,
            a.groups
        );
    }
    let (backend, note) = Backend::select(a.device, a.precision, threads(a.threads))?;
    if !note.is_empty() {
        eprintln!("note: {note}");
    }
    match backend {
        Backend::Cpu { .. } => bench_cpu_kernel(a).map(BenchOutcome::Cpu),
        Backend::Cuda { mut device, opts } => {
            if a.kernel.is_some() {
                bail!("--kernel picks a CPU kernel; it does not apply with a GPU (--device cuda)");
            }
            let info = device.info.clone();
            Ok(BenchOutcome::Gpu(bench::run_gpu(
                device.as_mut(),
                Some(&info),
                opts,
                a.n,
                a.dim,
                a.groups,
                a.repeat,
                a.cpu_n,
                threads(a.threads),
            )?))
        }
    }
}

fn bench_cpu_kernel(a: &KernelBenchArgs) -> Result<KernelBench> {
    let kernel = a.kernel.map_or_else(Kernel::detect, BenchKernel::all_pairs);
    if !kernel.available() {
        bail!(
            "--kernel {} needs CPU features this machine lacks; this CPU's best is {}",
            kernel.name(),
            Kernel::detect().name()
        );
    }
    Ok(bench::run(
        a.n,
        a.dim,
        a.groups,
        threads(a.threads),
        a.repeat,
        kernel,
        a.scalar_n,
    ))
}

/// `facebias bench --search`.
fn bench_search(a: &KernelBenchArgs) -> Result<SearchBench> {
    if a.probes == 0 || a.gallery == 0 || a.dim == 0 || a.candidates == 0 {
        bail!(
            "--probes, --gallery, --dim and --candidates must be ≥ 1 (got {}, {}, {}, {})",
            a.probes,
            a.gallery,
            a.dim,
            a.candidates
        );
    }
    if a.device != Device::Cpu {
        bail!("--search measures the CPU search kernel; drop --device (there is no GPU search)");
    }
    let kernel = a
        .kernel
        .map(BenchKernel::search)
        .unwrap_or_else(SearchKernel::detect);
    if !kernel.available() {
        bail!(
            "--kernel {} needs CPU features this machine lacks; this CPU's best is {}",
            kernel.name(),
            SearchKernel::detect().name()
        );
    }
    search_bench::run(
        a.probes,
        a.gallery,
        a.dim,
        a.candidates,
        threads(a.threads),
        a.repeat,
        kernel,
    )
    .map_err(|e| anyhow!(e))
}

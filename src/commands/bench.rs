//! `facebias bench`: the matching kernel on the CPU (against the measured FMA peak and a scalar
//! baseline) or, with `--device cuda`, on a GPU (against its peaks and the CPU kernel).

use anyhow::{bail, Result};

use super::common::threads;
use crate::cli::KernelBenchArgs;
use crate::compare::backend::Backend;
use crate::compare::bench::{self, BenchOutcome, KernelBench};
use crate::compare::kernel::Kernel;

/// `facebias bench`.
pub fn bench_kernel(a: &KernelBenchArgs) -> Result<BenchOutcome> {
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
    let kernel = a.kernel.unwrap_or_else(Kernel::detect);
    if !kernel.available() {
        bail!(
            "--kernel {} needs CPU features this machine lacks; use --kernel portable",
            kernel.name()
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

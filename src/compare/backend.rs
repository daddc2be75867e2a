//! Where the comparison stage runs: the CPU kernel or the GPU kernel, chosen from `--device` and
//! `--precision`, behind one interface with the contracts of [`super::kernel::all_pairs`] and
//! [`super::kernel::high_pairs`].
//! [`SearchBackend`] does the same for the 1:N search ([`super::search::search`]'s contract).

use super::gpu::search::SearchOptions;
use super::gpu::{self, cuda::CudaDevice, GpuError, GpuOptions, Precision};
use super::kernel::{self, AllPairs, Kernel, Shard};
use super::search::{self, Candidate, SearchKernel};
use crate::runtime::Device;

/// A comparison backend.
#[derive(Debug)]
pub enum Backend {
    /// The CPU kernel on `threads` threads.
    Cpu {
        /// The kernel.
        kernel: Kernel,
        /// Worker threads.
        threads: usize,
    },
    /// The GPU kernel on one device.
    Cuda {
        /// The opened device with its kernels loaded.
        device: Box<CudaDevice>,
        /// Precision and launch settings.
        opts: GpuOptions,
    },
}

/// How `--shard` splits the work: shards of one scheme partition the same pairs, so only shards of the
/// same scheme can be merged.
pub fn shard_scheme(kernel_name: &str) -> &'static str {
    if kernel_name.starts_with("cuda") {
        "gpu tile rows of 128"
    } else if kernel_name == "scalar" {
        "cpu rows modulo the shard count"
    } else {
        "cpu row blocks"
    }
}

impl Backend {
    /// Chooses the backend for `--device` and `--precision`; the string is a note for run.json when
    /// `auto` fell back to the CPU (empty otherwise). Reduced precision exists only on the GPU.
    pub fn select(
        device: Device,
        precision: Precision,
        threads: usize,
    ) -> Result<(Backend, String), GpuError> {
        let cpu = Backend::Cpu {
            kernel: Kernel::detect(),
            threads,
        };
        let opts = GpuOptions {
            precision,
            ..GpuOptions::default()
        };
        let reduced_needs_gpu = |why: &str| {
            GpuError::Missing(format!(
                "--precision {} runs only in the GPU kernel, and {why}; use --precision fp32 for the CPU",
                precision.name()
            ))
        };
        match device {
            Device::Cpu if precision != Precision::Fp32 => {
                Err(reduced_needs_gpu("--device cpu was asked for"))
            }
            Device::Cpu => Ok((cpu, String::new())),
            Device::Cuda(n) => Ok((
                Backend::Cuda {
                    device: Box::new(CudaDevice::open(n.max(0) as u32)?),
                    opts,
                },
                String::new(),
            )),
            Device::Auto => match CudaDevice::open(0) {
                Ok(d) => Ok((
                    Backend::Cuda {
                        device: Box::new(d),
                        opts,
                    },
                    String::new(),
                )),
                Err(e) if precision != Precision::Fp32 => Err(reduced_needs_gpu(&format!(
                    "--device auto found no usable GPU ({e})"
                ))),
                Err(e) => Ok((cpu, format!("comparison on the CPU: {e}"))),
            },
        }
    }

    /// This backend with the CPU kernel `kernel` (`--kernel`) instead of the detected one; refused
    /// when this CPU lacks the kernel's instruction set, or when the comparison runs on a GPU.
    pub fn with_cpu_kernel(self, kernel: Option<Kernel>) -> Result<Backend, String> {
        match (self, kernel) {
            (b, None) => Ok(b),
            (Backend::Cpu { threads, .. }, Some(k)) if k.available() => Ok(Backend::Cpu {
                kernel: k,
                threads,
            }),
            (Backend::Cpu { .. }, Some(k)) => Err(format!(
                "--kernel {} needs CPU features this machine lacks; this CPU's best is {}",
                k.name(),
                Kernel::detect().name()
            )),
            (Backend::Cuda { .. }, Some(k)) => Err(format!(
                "--kernel {} picks a CPU kernel, but the comparison runs on the GPU; drop --kernel or use --device cpu",
                k.name()
            )),
        }
    }

    /// The kernel name recorded in run.json and comparisons.bin.
    pub fn kernel_name(&self) -> &'static str {
        match self {
            Backend::Cpu { kernel, .. } => kernel.name(),
            Backend::Cuda { opts, .. } => opts.kernel_name(),
        }
    }

    /// The device in words.
    pub fn describe(&self) -> String {
        match self {
            Backend::Cpu { threads, .. } => format!("cpu ({threads} threads)"),
            Backend::Cuda { device, .. } => gpu::Accelerator::describe(device.as_ref()),
        }
    }

    /// Storage precision of the embeddings in the kernel.
    pub fn precision(&self) -> Precision {
        match self {
            Backend::Cpu { .. } => Precision::Fp32,
            Backend::Cuda { opts, .. } => opts.precision,
        }
    }

    /// All pairs: mated scores and per-cell non-mated histograms.
    #[allow(clippy::too_many_arguments)]
    pub fn all_pairs(
        &mut self,
        emb: &[f32],
        dim: usize,
        cell: &[u16],
        subject: &[u32],
        groups: usize,
        shard: Shard,
    ) -> Result<AllPairs, GpuError> {
        match self {
            Backend::Cpu { kernel, threads } => Ok(kernel::all_pairs(
                emb, dim, cell, subject, groups, *kernel, *threads, shard,
            )),
            Backend::Cuda { device, opts } => gpu::all_pairs(
                device.as_mut(),
                emb,
                dim,
                cell,
                subject,
                groups,
                *opts,
                shard,
            ),
        }
    }

    /// The bootstrap's pass: non-mated pairs with bin ≥ `from_bin` (`expected` of them, from the
    /// histograms of [`Backend::all_pairs`] on the same backend).
    #[allow(clippy::too_many_arguments)]
    pub fn high_pairs(
        &mut self,
        emb: &[f32],
        dim: usize,
        cell: &[u16],
        subject: &[u32],
        groups: usize,
        from_bin: usize,
        expected: u64,
    ) -> Result<Vec<(usize, usize, u16)>, GpuError> {
        match self {
            Backend::Cpu { kernel, threads } => Ok(kernel::high_pairs(
                emb, dim, cell, subject, groups, *kernel, *threads, from_bin,
            )),
            Backend::Cuda { device, opts } => gpu::high_pairs(
                device.as_mut(),
                emb,
                dim,
                cell,
                subject,
                groups,
                *opts,
                from_bin,
                expected,
            ),
        }
    }
}

/// Where the 1:N search runs: the CPU search kernel or the GPU search, chosen from `--device`, behind
/// the contract of [`super::search::search`] (the same lists, bit for bit, either way).
#[derive(Debug)]
pub enum SearchBackend {
    /// The fastest CPU search kernel on `threads` threads.
    Cpu {
        /// The kernel.
        kernel: SearchKernel,
        /// Worker threads.
        threads: usize,
    },
    /// The GPU search on one device.
    Cuda {
        /// The opened device with its kernels loaded.
        device: Box<CudaDevice>,
        /// Launch settings.
        opts: SearchOptions,
    },
}

impl SearchBackend {
    /// Chooses the search backend for `--device`, as [`Backend::select`] does for the comparison: `cpu`
    /// the CPU, `cuda`/`cuda:N` that GPU or an error saying what to install, `auto` the first GPU or
    /// else the CPU with a note for run.json (empty otherwise).
    pub fn select(device: Device, threads: usize) -> Result<(SearchBackend, String), GpuError> {
        let cpu = SearchBackend::Cpu {
            kernel: SearchKernel::detect(),
            threads,
        };
        let cuda = |d: CudaDevice| SearchBackend::Cuda {
            device: Box::new(d),
            opts: SearchOptions::default(),
        };
        match device {
            Device::Cpu => Ok((cpu, String::new())),
            Device::Cuda(n) => Ok((cuda(CudaDevice::open(n.max(0) as u32)?), String::new())),
            Device::Auto => match CudaDevice::open(0) {
                Ok(d) => Ok((cuda(d), String::new())),
                Err(e) => Ok((cpu, format!("search on the CPU: {e}"))),
            },
        }
    }

    /// The kernel name recorded in run.json.
    pub fn kernel_name(&self) -> &'static str {
        match self {
            SearchBackend::Cpu { kernel, .. } => kernel.name(),
            SearchBackend::Cuda { .. } => gpu::search::KERNEL_NAME,
        }
    }

    /// The device in words.
    pub fn describe(&self) -> String {
        match self {
            SearchBackend::Cpu { threads, .. } => format!("cpu ({threads} threads)"),
            SearchBackend::Cuda { device, .. } => gpu::Accelerator::describe(device.as_ref()),
        }
    }

    /// The top `l` candidates of every probe at every gallery size ([`super::search::search`]'s
    /// arguments and result).
    pub fn search(
        &mut self,
        probes: &[f32],
        gallery: &[f32],
        rows: &[u32],
        dim: usize,
        sizes: &[usize],
        l: usize,
    ) -> Result<Vec<Vec<Vec<Candidate>>>, String> {
        match self {
            SearchBackend::Cpu { kernel, threads } => {
                search::search_with(probes, gallery, rows, dim, sizes, l, *kernel, *threads)
            }
            SearchBackend::Cuda { device, opts } => {
                gpu::search::search(device.as_mut(), probes, gallery, rows, dim, sizes, l, *opts)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes to the process's stderr directly: libtest captures `eprintln!` of passing tests, so a skip
    /// would otherwise be invisible in the suite's output.
    macro_rules! visible_note {
        ($($t:tt)*) => {{
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), $($t)*);
        }};
    }

    #[test]
    fn reduced_precision_on_the_cpu_is_refused_with_the_fix() {
        let e = Backend::select(Device::Cpu, Precision::Bf16, 1).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("--precision bf16") && m.contains("--precision fp32"),
            "{m}"
        );
    }

    #[test]
    fn cpu_is_the_cpu_kernel() {
        let (b, note) = Backend::select(Device::Cpu, Precision::Fp32, 2).unwrap();
        assert_eq!(b.kernel_name(), Kernel::detect().name());
        assert!(note.is_empty());
        assert_eq!(shard_scheme(b.kernel_name()), "cpu row blocks");
        assert_eq!(shard_scheme("cuda-fp32-128x128"), "gpu tile rows of 128");
    }

    #[test]
    fn every_tiled_cpu_kernel_shares_one_shard_scheme_and_scalar_has_its_own() {
        for k in [Kernel::Portable, Kernel::Avx2Fma, Kernel::Avx512f] {
            assert_eq!(shard_scheme(k.name()), "cpu row blocks", "{}", k.name());
        }
        assert_eq!(shard_scheme("scalar"), "cpu rows modulo the shard count");
    }

    #[test]
    fn kernel_override_is_kept_or_refused_with_the_fix() {
        let cpu = || Backend::select(Device::Cpu, Precision::Fp32, 2).unwrap().0;
        assert_eq!(
            cpu().with_cpu_kernel(None).unwrap().kernel_name(),
            Kernel::detect().name()
        );
        let b = cpu().with_cpu_kernel(Some(Kernel::Portable)).unwrap();
        assert_eq!(b.kernel_name(), "portable-6x16");
        assert!(matches!(b, Backend::Cpu { threads: 2, .. }));
        for k in [Kernel::Avx2Fma, Kernel::Avx512f] {
            match cpu().with_cpu_kernel(Some(k)) {
                Ok(b) => {
                    assert!(k.available());
                    assert_eq!(b.kernel_name(), k.name());
                }
                Err(m) => {
                    assert!(!k.available());
                    assert!(
                        m.contains(k.name()) && m.contains(Kernel::detect().name()),
                        "{m}"
                    );
                }
            }
        }
    }

    #[test]
    fn without_a_gpu_auto_falls_back_with_a_note_and_cuda_names_the_driver() {
        if gpu::cuda::probe().is_ok_and(|n| n > 0) {
            visible_note!("SKIPPED without_a_gpu_auto_falls_back: this machine has a GPU");
            return;
        }
        let (b, note) = Backend::select(Device::Auto, Precision::Fp32, 1).unwrap();
        assert!(matches!(b, Backend::Cpu { .. }));
        assert!(note.starts_with("comparison on the CPU: "), "{note}");
        let e = Backend::select(Device::Cuda(0), Precision::Fp32, 1).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("libcuda.so.1") && m.contains("--device cpu"),
            "{m}"
        );
        let e = Backend::select(Device::Auto, Precision::Fp16, 1).unwrap_err();
        assert!(e.to_string().contains("--device auto found no usable GPU"));
    }

    #[test]
    fn search_on_the_cpu_and_without_a_gpu_auto_falls_back_and_cuda_names_the_fix() {
        let (b, note) = SearchBackend::select(Device::Cpu, 2).unwrap();
        assert_eq!(b.kernel_name(), SearchKernel::detect().name());
        assert_eq!(b.describe(), "cpu (2 threads)");
        assert!(note.is_empty());
        if gpu::cuda::probe().is_ok_and(|n| n > 0) {
            visible_note!("SKIPPED search: auto falls back: this machine has a GPU");
            return;
        }
        let (mut b, note) = SearchBackend::select(Device::Auto, 1).unwrap();
        assert!(matches!(b, SearchBackend::Cpu { .. }));
        assert!(note.starts_with("search on the CPU: "), "{note}");
        // The fallback searches: entry 1 (score 0.5) before entry 0 (0.25) for the probe (1, 0).
        let got = b
            .search(&[1.0, 0.0], &[0.25, 1.0, 0.5, 0.0], &[0, 1], 2, &[2], 5)
            .unwrap();
        let entries: Vec<u32> = got[0][0].iter().map(|c| c.entry).collect();
        assert_eq!(entries, vec![1, 0]);
        let m = SearchBackend::select(Device::Cuda(0), 1)
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("libcuda.so.1") && m.contains("--device cpu"),
            "{m}"
        );
    }
}

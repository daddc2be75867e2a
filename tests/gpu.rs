//! The GPU comparison path, tested up to the device boundary on any machine, and on the device when
//! there is one:
//! - NVRTC compiles the kernel source for the GPU generations facebias targets (needs the NVRTC wheel
//!   that `.ci/setup` installs; skipped with a message when it is missing, unless
//!   FACEBIAS_REQUIRE_NVRTC=1, which `.ci/run` sets);
//! - the same kernel source, compiled by g++ with the shim in tests/gpu_emulator/ and run with one CPU
//!   thread per CUDA thread, gives histograms and mated scores bit-identical to the CPU kernel through
//!   the real host code (`compare::gpu::all_pairs`, batching, flushes, shards, the bootstrap pass);
//! - the 1:N search kernel, run the same way through `compare::gpu::search::search`, returns candidate
//!   lists equal bit for bit to the CPU's scalar reference search (ties, NaN, nested sizes, L edges);
//! - on a machine with an NVIDIA GPU, the device gives the same bits (skipped with a message when no
//!   GPU is present, unless FACEBIAS_REQUIRE_GPU=1).

#[macro_use]
mod common;

use facebias::compare::gpu::{self, nvrtc, GpuError};

fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

#[test]
fn nvrtc_compiles_the_kernels_for_every_target_generation() {
    let nv = match nvrtc::load() {
        Ok(n) => n,
        Err(e) if !required("FACEBIAS_REQUIRE_NVRTC") => {
            visible_note!("SKIPPED nvrtc_compiles_the_kernels: {e}");
            return;
        }
        Err(e) => panic!("FACEBIAS_REQUIRE_NVRTC=1 but {e}"),
    };
    eprintln!(
        "NVRTC {}.{} from {}",
        nv.version.0, nv.version.1, nv.library
    );
    // Ampere (A100), Ada, Hopper (H100/H200).
    for arch in [80, 89, 90] {
        let cubin = nv.compile_cubin(gpu::SOURCE, arch).unwrap();
        assert_eq!(&cubin[..4], b"\x7fELF", "sm_{arch}: a CUBIN is an ELF file");
        // The symbol table names every kernel the host launches.
        for k in [
            "fb_tiles_f32",
            "fb_tiles_bf16",
            "fb_tiles_f16",
            "fb_flush",
            "fb_search_f32",
        ] {
            assert!(
                cubin.windows(k.len()).any(|w| w == k.as_bytes()),
                "sm_{arch} CUBIN lacks {k}"
            );
        }
    }
    // A compile error comes back with NVRTC's log, naming the line.
    let err = nv
        .compile_cubin("extern \"C\" __global__ void k() { undefined_name(); }", 90)
        .unwrap_err();
    match err {
        GpuError::Compile { arch, log } => {
            assert_eq!(arch, "--gpu-architecture=sm_90");
            assert!(log.contains("undefined_name"), "{log}");
        }
        other => panic!("{other}"),
    }
}

use facebias::compare::gpu::{
    cuda::CudaDevice, Accelerator, DevPtr, GpuOptions, KernelArg, Precision,
};
use facebias::compare::kernel::{self, AllPairs, Kernel, Shard};
use facebias::compare::{bin_of, CellHistograms, MatedScore};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The emulator library, built once per test run.
fn emulator_library() -> &'static libloading::Library {
    static LIB: OnceLock<libloading::Library> = OnceLock::new();
    LIB.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/gpu_emulator/emulator.cpp");
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fb_gpu_emulator.so");
        let status = std::process::Command::new("g++")
            .args([
                "-std=c++20",
                "-O2",
                "-ffp-contract=off",
                "-shared",
                "-fPIC",
                "-pthread",
                "-w",
            ])
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .status()
            .expect("g++ (the emulator needs a C++20 compiler)");
        assert!(status.success(), "g++ could not build {}", src.display());
        // SAFETY: our own library; no initialisers beyond the C++ runtime's.
        unsafe { libloading::Library::new(&out) }.expect("load the emulator")
    })
}

/// The emulator runs one launch at a time (its block state is global).
static EMULATOR_LOCK: Mutex<()> = Mutex::new(());

type EmulateFn =
    unsafe extern "C" fn(*const std::ffi::c_char, u32, u32, *mut *mut std::ffi::c_void) -> i32;

/// An [`Accelerator`] whose "device memory" is host memory and whose kernels run in the emulator.
#[derive(Default)]
struct Emulator {
    buffers: HashMap<u64, Vec<u64>>,
    launches: usize,
}

impl Accelerator for Emulator {
    fn describe(&self) -> String {
        "CPU emulation of kernels.cu".into()
    }
    fn free_memory(&mut self) -> Option<u64> {
        None
    }
    fn flush_blocks(&self) -> u32 {
        1
    }
    fn alloc_zeroed(&mut self, bytes: usize) -> Result<DevPtr, GpuError> {
        let v = vec![0u64; bytes.div_ceil(8).max(1)];
        let p = v.as_ptr() as u64;
        self.buffers.insert(p, v);
        Ok(DevPtr(p))
    }
    fn upload(&mut self, dst: DevPtr, src: &[u8]) -> Result<(), GpuError> {
        let buf = self
            .buffers
            .get_mut(&dst.0)
            .expect("upload into a live allocation");
        assert!(
            src.len() <= buf.len() * 8,
            "upload larger than the allocation"
        );
        // SAFETY: the allocation holds at least src.len() bytes (asserted).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), buf.as_mut_ptr() as *mut u8, src.len())
        };
        Ok(())
    }
    fn download(&mut self, src: DevPtr, dst: &mut [u8]) -> Result<(), GpuError> {
        let buf = self
            .buffers
            .get(&src.0)
            .expect("download from a live allocation");
        assert!(
            dst.len() <= buf.len() * 8,
            "download larger than the allocation"
        );
        // SAFETY: as above.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr() as *const u8, dst.as_mut_ptr(), dst.len())
        };
        Ok(())
    }
    fn free(&mut self, ptr: DevPtr) {
        if ptr != DevPtr::NULL {
            assert!(self.buffers.remove(&ptr.0).is_some(), "double free");
        }
    }
    fn launch(
        &mut self,
        kernel: &str,
        grid: u32,
        block: u32,
        args: &[KernelArg],
    ) -> Result<(), GpuError> {
        let mut values: Vec<u64> = args
            .iter()
            .map(|a| match *a {
                KernelArg::Ptr(p) => p.0,
                KernelArg::U32(v) => v as u64,
                KernelArg::U64(v) => v,
            })
            .collect();
        let mut params: Vec<*mut std::ffi::c_void> = values
            .iter_mut()
            .map(|v| v as *mut u64 as *mut std::ffi::c_void)
            .collect();
        let name = std::ffi::CString::new(kernel).unwrap();
        let _guard = EMULATOR_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the symbol has this signature (emulator.cpp); the pointers are live buffers.
        let rc = unsafe {
            let f: libloading::Symbol<EmulateFn> = emulator_library().get(b"fb_emulate\0").unwrap();
            f(name.as_ptr(), grid, block, params.as_mut_ptr())
        };
        assert_eq!(rc, 0, "emulator has no kernel {kernel}");
        self.launches += 1;
        Ok(())
    }
    fn synchronize(&mut self) -> Result<(), GpuError> {
        Ok(())
    }
}

/// Unit vectors with a shared component (scores spread over [-1, 1]), subjects of 1–3 rows
/// shuffled across rows, `groups` groups by subject.
fn data(n: usize, dim: usize, groups: usize, seed: u64) -> (Vec<f32>, Vec<u16>, Vec<u32>) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let unit = |next: &mut dyn FnMut() -> u64| (next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
    let common: Vec<f32> = (0..dim).map(|_| unit(&mut next)).collect();
    let mut emb = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let w = (next() % 100) as f32 / 40.0;
        let mut r: Vec<f32> = (0..dim).map(|k| unit(&mut next) + w * common[k]).collect();
        let norm = r.iter().map(|v| v * v).sum::<f32>().sqrt();
        r.iter_mut().for_each(|v| *v /= norm);
        emb.extend(r);
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
    for i in (1..n).rev() {
        subject.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    let cell = subject
        .iter()
        .map(|&s| (s as usize % groups) as u16)
        .collect();
    (emb, cell, subject)
}

/// The score as the kernels define it: fused multiply-adds in increasing k from 0.
fn fma_score(x: &[f32], y: &[f32]) -> f32 {
    x.iter()
        .zip(y)
        .fold(0.0f32, |acc, (a, b)| a.mul_add(*b, acc))
}

/// Brute force over all pairs with [`fma_score`]: the expected result, computed independently of
/// both kernels.
fn reference(emb: &[f32], dim: usize, cell: &[u16], subject: &[u32], groups: usize) -> AllPairs {
    let n = cell.len();
    let mut nonmated = CellHistograms::new(groups);
    let mut mated = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let s = fma_score(&emb[i * dim..(i + 1) * dim], &emb[j * dim..(j + 1) * dim]);
            if subject[i] == subject[j] {
                mated.push(MatedScore {
                    a: i,
                    b: j,
                    score: s,
                });
            } else {
                let c = nonmated.index(cell[i] as usize, cell[j] as usize);
                nonmated.cells[c].counts[bin_of(s)] += 1;
            }
        }
    }
    AllPairs { nonmated, mated }
}

fn assert_same(got: &AllPairs, want: &AllPairs, what: &str) {
    assert_eq!(
        got.mated.len(),
        want.mated.len(),
        "{what}: mated pair count"
    );
    for (g, w) in got.mated.iter().zip(&want.mated) {
        assert_eq!((g.a, g.b), (w.a, w.b), "{what}: mated pair");
        assert_eq!(
            g.score.to_bits(),
            w.score.to_bits(),
            "{what}: mated score of {},{}",
            g.a,
            g.b
        );
    }
    for (c, (g, w)) in got
        .nonmated
        .cells
        .iter()
        .zip(&want.nonmated.cells)
        .enumerate()
    {
        assert!(
            g == w,
            "{what}: cell {c} histogram differs ({} vs {} pairs)",
            g.total(),
            w.total()
        );
    }
}

fn opts(precision: Precision, tiles_per_launch: usize) -> GpuOptions {
    GpuOptions {
        precision,
        tiles_per_launch,
        ..GpuOptions::default()
    }
}

#[test]
fn emulated_fp32_kernel_is_bit_identical_to_the_fma_reference_and_the_cpu_kernel() {
    // Sizes around the 128-row tile (1, 2, 127, 128, 129, 300) and dims around the 8-wide k-chunk.
    let cases = [
        (1, 5, 1),
        (2, 3, 1),
        (127, 8, 2),
        (128, 16, 3),
        (129, 1, 2),
        (300, 67, 3),
        (260, 130, 4),
    ];
    for (i, &(n, dim, groups)) in cases.iter().enumerate() {
        let (emb, cell, subject) = data(n, dim, groups, 40 + i as u64);
        let want = reference(&emb, dim, &cell, &subject, groups);
        let mut emu = Emulator::default();
        let got = gpu::all_pairs(
            &mut emu,
            &emb,
            dim,
            &cell,
            &subject,
            groups,
            GpuOptions::default(),
            Shard::ALL,
        )
        .unwrap();
        let what = format!("n={n} dim={dim} groups={groups}");
        assert_same(&got, &want, &what);
        assert!(
            emu.buffers.is_empty(),
            "{what}: every device buffer is freed"
        );
        let pairs: u64 =
            got.nonmated.cells.iter().map(|c| c.total()).sum::<u64>() + got.mated.len() as u64;
        assert_eq!(pairs, (n * (n - 1) / 2) as u64, "{what}: every pair once");
        if Kernel::Avx2Fma.available() {
            let cpu = kernel::all_pairs(
                &emb,
                dim,
                &cell,
                &subject,
                groups,
                Kernel::Avx2Fma,
                2,
                Shard::ALL,
            );
            assert_same(&got, &cpu, &format!("{what} vs the CPU's AVX2 kernel"));
        }
    }
}

#[test]
fn emulated_batches_flushes_and_shards_add_up_to_the_whole() {
    let (emb, cell, subject) = data(390, 24, 3, 7);
    let want = reference(&emb, 24, &cell, &subject, 3);
    // One tile per launch: 10 tiles → 10 tile launches, each followed by a flush.
    let mut emu = Emulator::default();
    let one = gpu::all_pairs(
        &mut emu,
        &emb,
        24,
        &cell,
        &subject,
        3,
        opts(Precision::Fp32, 1),
        Shard::ALL,
    )
    .unwrap();
    assert_eq!(emu.launches, 20);
    assert_same(&one, &want, "one tile per launch");
    let mut merged = CellHistograms::new(3);
    let mut mated = Vec::new();
    for index in 0..3 {
        let part = gpu::all_pairs(
            &mut emu,
            &emb,
            24,
            &cell,
            &subject,
            3,
            opts(Precision::Fp32, 3),
            Shard { index, count: 3 },
        )
        .unwrap();
        merged.merge(&part.nonmated);
        mated.extend(part.mated);
    }
    mated.sort_by_key(|m| (m.a, m.b));
    assert_same(
        &AllPairs {
            nonmated: merged,
            mated,
        },
        &want,
        "3 shards merged",
    );
}

#[test]
fn emulated_reduced_precision_equals_the_reference_on_rounded_embeddings() {
    let (emb, cell, subject) = data(200, 40, 2, 11);
    let full = reference(&emb, 40, &cell, &subject, 2);
    for precision in [Precision::Bf16, Precision::Fp16] {
        let rounded = gpu::round_embeddings(&emb, precision);
        let want = reference(&rounded, 40, &cell, &subject, 2);
        let mut emu = Emulator::default();
        let got = gpu::all_pairs(
            &mut emu,
            &emb,
            40,
            &cell,
            &subject,
            2,
            opts(precision, 1 << 16),
            Shard::ALL,
        )
        .unwrap();
        assert_same(&got, &want, precision.name());
        // Against full precision the scores move by at most the documented bound: 2·2⁻⁸ (bf16) or
        // 2·2⁻¹¹ (fp16), plus the fp32 accumulation error of both (≤ dim·2⁻²⁴ each).
        let bound = match precision {
            Precision::Bf16 => 2.0 * 2f32.powi(-8),
            _ => 2.0 * 2f32.powi(-11),
        } + 2.0 * 40.0 * 2f32.powi(-24);
        for (g, f) in got.mated.iter().zip(&full.mated) {
            assert!(
                (g.score - f.score).abs() <= bound,
                "{}: {} vs {}",
                precision.name(),
                g.score,
                f.score
            );
        }
    }
}

#[test]
fn emulated_bootstrap_pass_lists_exactly_the_counted_high_pairs() {
    let (emb, cell, subject) = data(280, 32, 3, 3);
    let mut emu = Emulator::default();
    let counted = gpu::all_pairs(
        &mut emu,
        &emb,
        32,
        &cell,
        &subject,
        3,
        GpuOptions::default(),
        Shard::ALL,
    )
    .unwrap();
    // A cut with a few dozen pairs above it: the bin where the tail first exceeds 40.
    let mut total = vec![0u64; facebias::compare::BINS];
    for c in &counted.nonmated.cells {
        for (k, v) in c.counts.iter().enumerate() {
            total[k] += v;
        }
    }
    let mut tail = 0;
    let mut cut = facebias::compare::BINS;
    while tail <= 40 && cut > 0 {
        cut -= 1;
        tail += total[cut];
    }
    let high = gpu::high_pairs(
        &mut emu,
        &emb,
        32,
        &cell,
        &subject,
        3,
        GpuOptions::default(),
        cut,
        tail,
    )
    .unwrap();
    assert_eq!(high.len() as u64, tail);
    // Independently: every non-mated pair whose reference score's bin is ≥ cut.
    let mut want = Vec::new();
    for i in 0..280 {
        for j in i + 1..280 {
            let b = bin_of(fma_score(
                &emb[i * 32..(i + 1) * 32],
                &emb[j * 32..(j + 1) * 32],
            ));
            if subject[i] != subject[j] && b >= cut {
                want.push((i, j, b as u16));
            }
        }
    }
    assert_eq!(high, want);
    // A count that disagrees with the device is an error, not a silently short list.
    let err = gpu::high_pairs(
        &mut emu,
        &emb,
        32,
        &cell,
        &subject,
        3,
        GpuOptions::default(),
        cut,
        tail - 1,
    )
    .unwrap_err();
    assert!(err.to_string().contains("counting pass"), "{err}");
    assert!(emu.buffers.is_empty(), "buffers freed after an error too");
}

#[test]
fn on_device_results_are_bit_identical_to_the_cpu() {
    let mut dev = match CudaDevice::open(0) {
        Ok(d) => d,
        Err(e) if !required("FACEBIAS_REQUIRE_GPU") => {
            visible_note!(
                "SKIPPED on_device_results_are_bit_identical_to_the_cpu (no CUDA device here): {e}"
            );
            return;
        }
        Err(e) => panic!("FACEBIAS_REQUIRE_GPU=1 but {e}"),
    };
    eprintln!("device: {}", dev.describe());
    parity_checks(
        &mut dev,
        &[(3000, 128, 4), (2100, 512, 3), (777, 67, 2)],
        3000,
    );
}

#[test]
fn the_device_parity_checks_pass_on_the_emulator() {
    // The checks the GPU test runs, at emulator sizes: so the test itself is known to be right.
    parity_checks(&mut Emulator::default(), &[(300, 40, 3), (140, 9, 2)], 700);
}

/// fp32 and reduced precision against the fma reference, the bootstrap pass, window and block
/// variants: everything the device must reproduce bit for bit.
fn parity_checks(acc: &mut dyn Accelerator, sizes: &[(usize, usize, usize)], window_n: usize) {
    for &(n, dim, groups) in sizes {
        let (emb, cell, subject) = data(n, dim, groups, n as u64);
        let what = format!("n={n} dim={dim}");
        let want = reference(&emb, dim, &cell, &subject, groups);
        let got = gpu::all_pairs(
            acc,
            &emb,
            dim,
            &cell,
            &subject,
            groups,
            GpuOptions::default(),
            Shard::ALL,
        )
        .unwrap();
        assert_same(&got, &want, &format!("{what} fp32"));
        for precision in [Precision::Bf16, Precision::Fp16] {
            let want = reference(
                &gpu::round_embeddings(&emb, precision),
                dim,
                &cell,
                &subject,
                groups,
            );
            let got = gpu::all_pairs(
                acc,
                &emb,
                dim,
                &cell,
                &subject,
                groups,
                opts(precision, 1 << 16),
                Shard::ALL,
            )
            .unwrap();
            assert_same(&got, &want, &format!("{what} {}", precision.name()));
        }
        // The bootstrap pass lists exactly the pairs the histograms counted above a cut.
        let cut = facebias::compare::bin_of(0.2);
        let expected: u64 = got
            .nonmated
            .cells
            .iter()
            .map(|c| c.counts[cut..].iter().sum::<u64>())
            .sum();
        let high = gpu::high_pairs(
            acc,
            &emb,
            dim,
            &cell,
            &subject,
            groups,
            GpuOptions::default(),
            cut,
            expected,
        )
        .unwrap();
        assert_eq!(high.len() as u64, expected, "{what} high pairs");
        assert!(high.iter().all(|&(a, b, bin)| a < b
            && bin as usize >= cut
            && bin as usize
                == bin_of(fma_score(
                    &emb[a * dim..(a + 1) * dim],
                    &emb[b * dim..(b + 1) * dim]
                ))));
    }
    // Window placement and block grouping change nothing on the device either.
    let (emb, cell, subject) = data(window_n, 64, 2, 5);
    let want = reference(&emb, 64, &cell, &subject, 2);
    for (per_block, window) in [(1, Some(0)), (3, None), (16, Some(40000))] {
        let o = GpuOptions {
            tiles_per_block: per_block,
            window,
            ..GpuOptions::default()
        };
        let got = gpu::all_pairs(acc, &emb, 64, &cell, &subject, 2, o, Shard::ALL).unwrap();
        assert_same(
            &got,
            &want,
            &format!("{per_block} tiles per block, window {window:?}"),
        );
    }
}

#[test]
fn gpu_bench_reports_consistent_figures_through_the_emulator() {
    let mut emu = Emulator::default();
    let b = facebias::compare::bench::run_gpu(
        &mut emu,
        None,
        GpuOptions::default(),
        300,
        16,
        2,
        2,
        200,
        1,
    )
    .unwrap();
    assert_eq!(b.pairs, 300 * 299 / 2);
    assert_eq!(b.seconds.len(), 2);
    assert_eq!(b.kernel, "cuda-fp32-128x128");
    // pairs/s and GFLOP/s follow from the median: 2·d flops a pair.
    assert!((b.pairs_per_second * b.median_seconds - b.pairs as f64).abs() < 1e-6 * b.pairs as f64);
    assert!((b.gflops - b.pairs_per_second * 32.0 / 1e9).abs() < 1e-9 * b.gflops.max(1.0));
    // No device facts, no peak share (not a made-up figure).
    assert!(b.fp32_peak_gflops.is_none() && b.percent_of_fp32_peak.is_none());
    assert_eq!(b.cpu_n, 200);
    assert!(b.cpu_pairs_per_second > 0.0);
    assert!(
        (b.speedup_vs_cpu - b.pairs_per_second / b.cpu_pairs_per_second).abs()
            < 1e-9 * b.speedup_vs_cpu
    );
}

#[test]
fn peak_figures_follow_the_published_rates() {
    // H100 SXM: 132 SMs × 128 fp32 lanes × 2 × 1.98 GHz = 66.9 TFLOP/s fp32;
    // 132 × 2048 FMA/clk × 2 × 1.98 GHz = 1070.5 TFLOP/s dense 16-bit (989 at the 1.83 GHz of the datasheet).
    let h100 = facebias::compare::gpu::cuda::DeviceInfo {
        ordinal: 0,
        name: "H100".into(),
        compute_capability: (9, 0),
        multiprocessors: 132,
        clock_mhz: Some(1980.0),
        memory_bytes: 80 << 30,
        driver_version: 13000,
        nvrtc_version: (13, 0),
    };
    assert!((h100.fp32_peak_gflops().unwrap() - 66_908.16).abs() < 0.01);
    assert!((h100.tensor_peak_gflops().unwrap() - 1_070_530.56).abs() < 0.01);
    // A100: 108 × 64 × 2 × 1.41 GHz = 19.5 TFLOP/s fp32 (datasheet 19.5).
    let a100 = facebias::compare::gpu::cuda::DeviceInfo {
        compute_capability: (8, 0),
        multiprocessors: 108,
        clock_mhz: Some(1410.0),
        ..h100.clone()
    };
    assert!((a100.fp32_peak_gflops().unwrap() - 19_491.84).abs() < 0.01);
    // Unknown generation: no figure rather than a guess.
    let unknown = facebias::compare::gpu::cuda::DeviceInfo {
        compute_capability: (6, 1),
        ..h100
    };
    assert!(unknown.fp32_peak_gflops().is_none() && unknown.tensor_peak_gflops().is_none());
}

#[test]
fn emulated_shared_memory_window_counts_exactly_wherever_it_sits() {
    // Two groups of ~550 rows: most of the 45 tiles lie in one cell, so they take the window path;
    // blocks of 8 tiles flush the window after every 3 tiles and at each change of cell.
    let (emb, cell, subject) = data(1100, 24, 2, 21);
    let want = reference(&emb, 24, &cell, &subject, 2);
    let auto = gpu::window_start(&emb, 24);
    assert_eq!(auto % 2, 0);
    let top = (facebias::compare::BINS - gpu::WINDOW_BINS) as u32;
    for (per_block, window) in [
        (8, None),
        (1, Some(0)),
        (3, Some(top)),
        (8, Some(32767)),
        (5, Some(auto + 4000)),
    ] {
        let mut emu = Emulator::default();
        let o = GpuOptions {
            tiles_per_block: per_block,
            window,
            ..GpuOptions::default()
        };
        let got = gpu::all_pairs(&mut emu, &emb, 24, &cell, &subject, 2, o, Shard::ALL).unwrap();
        assert_same(
            &got,
            &want,
            &format!("{per_block} tiles per block, window {window:?}"),
        );
    }
}

#[test]
fn emulated_window_counters_never_overflow_their_16_bits() {
    // 1,100 copies of one vector with distinct subjects: every score is 1, all 604,450 pairs in the
    // top bin. With the window at the top, a block of 8 single-cell tiles would push one 16-bit
    // counter past 65,535 without the flush after every 3 tiles (3 × 16,384 = 49,152).
    let dim = 16;
    let row: Vec<f32> = (0..dim)
        .map(|k| if k % 2 == 0 { 0.5 } else { -0.25 })
        .collect();
    let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
    let emb: Vec<f32> = (0..1100)
        .flat_map(|_| row.iter().map(|v| v / norm))
        .collect();
    let cell = vec![0u16; 1100];
    let subject: Vec<u32> = (0..1100).collect();
    let want = reference(&emb, dim, &cell, &subject, 1);
    let top = (facebias::compare::BINS - gpu::WINDOW_BINS) as u32;
    let mut emu = Emulator::default();
    let o = GpuOptions {
        tiles_per_block: 8,
        window: Some(top),
        ..GpuOptions::default()
    };
    let got = gpu::all_pairs(&mut emu, &emb, dim, &cell, &subject, 1, o, Shard::ALL).unwrap();
    assert_same(&got, &want, "identical rows");
    assert_eq!(got.nonmated.cells[0].total(), 1100 * 1099 / 2);
}

/// Real MobileFaceNet embeddings of 800 BFW images (8 groups × 25 subjects × 4 images), with their
/// group cells and subjects, from `facebias run`.
fn bfw_embeddings(dir: &std::path::Path) -> (Vec<f32>, usize, Vec<u16>, Vec<u32>) {
    let manifest = common::bfw_subset(dir, 25, 4);
    let out = dir.join("report");
    common::facebias(dir)
        .args([
            "run",
            "--quiet",
            "--bootstrap",
            "0",
            "--attributes",
            "sex,race",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    common::run_embeddings(&out)
}

#[test]
fn real_embeddings_bit_identical_in_fp32_and_bounded_in_reduced_precision() {
    let dir = tempfile::tempdir().unwrap();
    let (emb, dim, cell, subject) = bfw_embeddings(dir.path());
    let n = cell.len();
    assert!(n >= 790, "{n} of 800 images enrolled");
    let want = reference(&emb, dim, &cell, &subject, 8);
    let mut emu = Emulator::default();
    let got = gpu::all_pairs(
        &mut emu,
        &emb,
        dim,
        &cell,
        &subject,
        8,
        GpuOptions::default(),
        Shard::ALL,
    )
    .unwrap();
    assert_same(&got, &want, "BFW fp32");
    if Kernel::Avx2Fma.available() {
        let cpu = kernel::all_pairs(
            &emb,
            dim,
            &cell,
            &subject,
            8,
            Kernel::Avx2Fma,
            2,
            Shard::ALL,
        );
        assert_same(&got, &cpu, "BFW fp32 vs the CPU kernel");
    }
    // Reduced precision, counted pair by pair against fp32 (the GPU result equals the reference on
    // the rounded embeddings, shown above for synthetic data and here again through the emulator).
    for (precision, u) in [
        (Precision::Bf16, 2f32.powi(-8)),
        (Precision::Fp16, 2f32.powi(-11)),
    ] {
        let rounded = gpu::round_embeddings(&emb, precision);
        let mut emu = Emulator::default();
        let o = GpuOptions {
            precision,
            ..GpuOptions::default()
        };
        let low = gpu::all_pairs(&mut emu, &emb, dim, &cell, &subject, 8, o, Shard::ALL).unwrap();
        assert_same(
            &low,
            &reference(&rounded, dim, &cell, &subject, 8),
            precision.name(),
        );
        let (mut max_diff, mut moved, mut pairs) = (0f32, 0u64, 0u64);
        for i in 0..n {
            for j in i + 1..n {
                let (x, y) = (i * dim..(i + 1) * dim, j * dim..(j + 1) * dim);
                let a = fma_score(&emb[x.clone()], &emb[y.clone()]);
                let b = fma_score(&rounded[x], &rounded[y]);
                max_diff = max_diff.max((a - b).abs());
                moved += (bin_of(a) != bin_of(b)) as u64;
                pairs += 1;
            }
        }
        let bound = 2.0 * u + 2.0 * dim as f32 * 2f32.powi(-24);
        let drift = gpu::precision_drift(&want.nonmated, &low.nonmated);
        eprintln!(
            "{}: {pairs} pairs, max |score change| {max_diff:.3e} (bound {bound:.3e}), {moved} pairs changed bin, histogram drift {drift:?}",
            precision.name()
        );
        assert!(
            max_diff <= bound,
            "{}: {max_diff} > {bound}",
            precision.name()
        );
        assert!(drift.moved_at_least <= moved);
    }
}

// ---------------------------------------------------------------------------------------------------
// The 1:N search kernel.

use facebias::compare::gpu::search::{self as gpu_search, SearchOptions};
use facebias::compare::search::{search_with, Candidate, SearchKernel};

/// A search job with ties: `probes` × `gallery` entries of `dim` values on a grid of 1/8 (so many
/// scores are exactly equal), a quarter of the gallery repeating earlier entries, a few rows tied
/// (the entry breaks those), one NaN entry and one NaN probe when there are enough.
fn search_data(
    probes: usize,
    gallery: usize,
    dim: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let grid = |next: &mut dyn FnMut() -> u64| ((next() % 9) as f32 - 4.0) / 8.0;
    let mut p: Vec<f32> = (0..probes * dim).map(|_| grid(&mut next)).collect();
    let mut g: Vec<f32> = Vec::with_capacity(gallery * dim);
    for e in 0..gallery {
        if e > 4 && next() % 4 == 0 {
            let src = (next() % e as u64) as usize;
            let copy: Vec<f32> = g[src * dim..(src + 1) * dim].to_vec();
            g.extend(copy);
        } else {
            g.extend((0..dim).map(|_| grid(&mut next)));
        }
    }
    if gallery > 10 {
        g[7 * dim] = f32::NAN;
    }
    if probes > 3 {
        p[2 * dim + dim / 2] = f32::NAN;
    }
    // Tie-break rows: a shuffled permutation, with every tenth entry sharing its neighbour's row.
    let mut rows: Vec<u32> = (0..gallery as u32).map(|r| r * 3 + 1).collect();
    for i in (1..gallery).rev() {
        rows.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    for e in (10..gallery).step_by(10) {
        rows[e] = rows[e - 1];
    }
    (p, g, rows)
}

fn assert_same_lists(got: &[Vec<Vec<Candidate>>], want: &[Vec<Vec<Candidate>>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: probes");
    for (p, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: probe {p} sizes");
        for (si, (gl, wl)) in g.iter().zip(w).enumerate() {
            let bits = |l: &[Candidate]| -> Vec<(u32, u32)> {
                l.iter().map(|c| (c.entry, c.score.to_bits())).collect()
            };
            assert_eq!(bits(gl), bits(wl), "{what}: probe {p}, size #{si}");
        }
    }
}

/// One search case: `(probes, gallery, dim, sizes, L, entries per block, blocks per launch)`.
type SearchCase<'a> = (usize, usize, usize, &'a [usize], usize, usize, usize);

/// Lists of the GPU search (emulated or on a device) against the scalar CPU reference for each case.
fn search_parity(acc: &mut dyn Accelerator, cases: &[SearchCase]) {
    for (i, &(np, ng, dim, sizes, l, per_block, per_launch)) in cases.iter().enumerate() {
        let (p, g, rows) = search_data(np, ng, dim, 90 + i as u64);
        let what = format!(
            "probes={np} gallery={ng} dim={dim} sizes={sizes:?} L={l} entries/block={per_block} blocks/launch={per_launch}"
        );
        let want = search_with(&p, &g, &rows, dim, sizes, l, SearchKernel::Scalar, 2).unwrap();
        let opts = SearchOptions {
            entries_per_block: per_block,
            blocks_per_launch: per_launch,
        };
        let got = gpu_search::search(acc, &p, &g, &rows, dim, sizes, l, opts).unwrap();
        assert_same_lists(&got, &want, &what);
        // Not vacuous: the lists are as long as the sizes allow (one NaN entry and the NaN probe
        // aside), and ties on the score were there to break.
        for (pi, lists) in want.iter().enumerate() {
            for (si, list) in lists.iter().enumerate() {
                let nan_entry = usize::from(ng > 10 && sizes[si] > 7);
                let expect = if np > 3 && pi == 2 {
                    0
                } else {
                    l.min(sizes[si] - nan_entry)
                };
                assert_eq!(
                    list.len(),
                    expect,
                    "{what}: probe {pi} size #{si} list length"
                );
            }
        }
        let ties = want
            .iter()
            .flat_map(|lists| lists.last())
            .filter(|list| list.windows(2).any(|w| w[0].score == w[1].score))
            .count();
        assert!(
            ties > 0 || l == 1 || ng < 3,
            "{what}: no tied scores in any list"
        );
    }
}

#[test]
fn emulated_search_lists_equal_the_scalar_search_bit_for_bit() {
    let mut emu = Emulator::default();
    // Probes around the 128-probe tile, galleries around the 128-entry tile and the chunk, dims around
    // the 8-wide k step, nested sizes on and off the tile and chunk edges, L = 1, L > a chunk,
    // L ≥ the gallery; chunks of 128 and 256 entries; one block per launch (batching) and many.
    search_parity(
        &mut emu,
        &[
            (1, 1, 1, &[1], 1, 4096, 4096),
            (3, 20, 7, &[5, 20], 50, 4096, 4096),
            (127, 300, 8, &[1, 100, 255, 300], 5, 128, 4096),
            (129, 257, 9, &[128, 129, 257], 1, 256, 1),
            (128, 600, 17, &[256, 600], 300, 256, 3),
            (40, 600, 16, &[600], 700, 256, 4096),
            (130, 400, 130, &[33, 400], 12, 128, 2),
            (5, 1200, 3, &[1, 2, 1199, 1200], 4, 1024, 4096),
            // One or two dimensions: a handful of distinct scores, so the L-th place is a tie
            // decided by the rows, again and again after each cut.
            (20, 1000, 1, &[10, 500, 1000], 5, 256, 4096),
            (20, 1000, 2, &[1000], 8, 1024, 4096),
        ],
    );
    assert!(emu.buffers.is_empty(), "every device buffer is freed");
}

#[test]
fn emulated_search_cuts_candidate_buffers_exactly_when_every_entry_is_admitted() {
    // Rising scores: every new entry beats all before it, so every entry is admitted and each probe's
    // buffer is cut after every 128-entry tile (L = 3: more than 2L = 6 admitted). Falling scores:
    // only the first tile's entries are ever admitted. Then a plateau of equal scores, where only the
    // tie-break rows decide (rows reversed against the entries).
    let dim = 4;
    let n = 1024;
    let rising: Vec<f32> = (0..n)
        .flat_map(|e| [e as f32 / 1024.0, 0.5, 0.0, 0.25])
        .collect();
    let falling: Vec<f32> = (0..n)
        .flat_map(|e| [(n - e) as f32 / 1024.0, 0.5, 0.0, 0.25])
        .collect();
    let plateau: Vec<f32> = (0..n).flat_map(|_| [0.5, 0.5, 0.0, 0.25]).collect();
    let probes: Vec<f32> = (0..130)
        .flat_map(|i| [1.0, i as f32 / 128.0, 0.0, 1.0])
        .collect();
    let up: Vec<u32> = (0..n as u32).collect();
    let down: Vec<u32> = (0..n as u32).rev().collect();
    let mut emu = Emulator::default();
    for (name, g, rows) in [
        ("rising", &rising, &up),
        ("falling", &falling, &up),
        ("plateau, rows reversed", &plateau, &down),
    ] {
        for (sizes, l) in [
            (&[1024usize][..], 3),
            (&[100, 700, 1024][..], 1),
            (&[500, 1024][..], 51),
        ] {
            let want =
                search_with(&probes, g, rows, dim, sizes, l, SearchKernel::Scalar, 2).unwrap();
            let opts = SearchOptions {
                entries_per_block: 1024,
                blocks_per_launch: 4096,
            };
            let got = gpu_search::search(&mut emu, &probes, g, rows, dim, sizes, l, opts).unwrap();
            assert_same_lists(&got, &want, &format!("{name}, sizes {sizes:?}, L={l}"));
        }
    }
    // The rising gallery's top 3 of all 1,024 is its last three entries.
    let got = gpu_search::search(
        &mut emu,
        &probes,
        &rising,
        &up,
        dim,
        &[1024],
        3,
        SearchOptions::default(),
    )
    .unwrap();
    assert_eq!(
        got[0][0].iter().map(|c| c.entry).collect::<Vec<_>>(),
        vec![1023, 1022, 1021]
    );
    // The plateau with reversed rows: the highest entries have the lowest rows.
    let got = gpu_search::search(
        &mut emu,
        &probes,
        &plateau,
        &down,
        dim,
        &[1024],
        2,
        SearchOptions::default(),
    )
    .unwrap();
    assert_eq!(
        got[5][0].iter().map(|c| c.entry).collect::<Vec<_>>(),
        vec![1023, 1022]
    );
    assert!(emu.buffers.is_empty());
}

#[test]
fn emulated_search_counts_its_launches_and_refuses_bad_input_by_name() {
    // 130 probes (2 tiles) × 300 entries in chunks of 128 (3 chunks) = 6 items; 4 per launch → 2 launches.
    let (p, g, rows) = search_data(130, 300, 8, 1);
    let mut emu = Emulator::default();
    let opts = SearchOptions {
        entries_per_block: 128,
        blocks_per_launch: 4,
    };
    gpu_search::search(&mut emu, &p, &g, &rows, 8, &[300], 5, opts).unwrap();
    assert_eq!(emu.launches, 2);
    // No probes: no launch, no list; an empty size: an empty list.
    let none = gpu_search::search(&mut emu, &[], &g, &rows, 8, &[300], 5, opts).unwrap();
    assert!(none.is_empty());
    let empty = gpu_search::search(&mut emu, &p[..8], &g, &rows, 8, &[0, 2], 5, opts).unwrap();
    assert_eq!(empty[0][0], Vec::new());
    assert_eq!(empty[0][1].len(), 2);
    assert_eq!(emu.launches, 3);
    // The CPU search's own checks, with its messages.
    let e = gpu_search::search(&mut emu, &p, &g, &rows, 8, &[301], 5, opts).unwrap_err();
    assert!(
        e.to_string().contains("at most the gallery's 300 entries"),
        "{e}"
    );
    let e = gpu_search::search(&mut emu, &p, &g, &rows, 8, &[300], 0, opts).unwrap_err();
    assert!(e.to_string().contains("at least 1"), "{e}");
    assert!(emu.buffers.is_empty());
}

#[test]
fn on_device_search_is_bit_identical_to_the_cpu() {
    let mut dev = match CudaDevice::open(0) {
        Ok(d) => d,
        Err(e) if !required("FACEBIAS_REQUIRE_GPU") => {
            visible_note!(
                "SKIPPED on_device_search_is_bit_identical_to_the_cpu (no CUDA device here): {e}"
            );
            return;
        }
        Err(e) => panic!("FACEBIAS_REQUIRE_GPU=1 but {e}"),
    };
    eprintln!("device: {}", dev.describe());
    let d = 4096;
    search_parity(
        &mut dev,
        &[
            (1000, 20_000, 128, &[1000, 5000, 20_000], 51, d, 4096),
            (300, 9000, 512, &[9000], 51, d, 7),
            (129, 3000, 67, &[1, 1500, 3000], 1, 1024, 4096),
            (77, 700, 9, &[700], 800, d, 4096),
        ],
    );
}

#[test]
fn the_device_search_checks_pass_on_the_emulator() {
    // The device test's shapes, at emulator sizes: so that test is known to be right.
    search_parity(
        &mut Emulator::default(),
        &[
            (200, 700, 40, &[100, 300, 700], 51, 256, 4096),
            (77, 300, 9, &[300], 400, 4096, 4096),
        ],
    );
}

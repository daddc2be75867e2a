//! Criterion benches of the comparison stage: all pairs of N synthetic unit embeddings scored and
//! binned into per-group-pair histograms (8 groups, 36 cells), per kernel (scalar, portable-6x16, and
//! avx2-fma-6x16 / avx512f-14x32 where the CPU has them), dims 128 and 512, N = 1k, 5k, 20k.
//! Throughput is in pairs. The scalar per-pair reference stops at 5k (20k takes ~10 s a run).
//!
//! `cargo bench --bench compare`; a single case: `cargo bench --bench compare -- avx512f-14x32/d128`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use facebias::compare::bench::synthetic;
use facebias::compare::kernel::{all_pairs, Kernel, Shard};

fn bench_kernels(c: &mut Criterion) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut kernels = vec![Kernel::Scalar, Kernel::Portable];
    kernels.extend(
        [Kernel::Avx2Fma, Kernel::Avx512f]
            .into_iter()
            .filter(|k| k.available()),
    );
    for kernel in kernels {
        let mut group = c.benchmark_group(format!("allpairs/{}", kernel.name()));
        group.sample_size(10);
        for dim in [128usize, 512] {
            for n in [1_000usize, 5_000, 20_000] {
                if kernel == Kernel::Scalar && n > 5_000 {
                    continue;
                }
                let (emb, cell, subject) = synthetic(n, dim, 8, 42);
                group.throughput(Throughput::Elements((n * (n - 1) / 2) as u64));
                group.bench_with_input(BenchmarkId::new(format!("d{dim}"), n), &n, |b, _| {
                    b.iter(|| all_pairs(&emb, dim, &cell, &subject, 8, kernel, threads, Shard::ALL))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_kernels);
criterion_main!(benches);

//! Criterion benches of the 1:N search: P synthetic unit probes against a gallery of G entries,
//! the top 50 of each, per kernel, dims 128 and 512. Throughput is in scores (probe-entry pairs).
//! The SIMD kernels run 2,000 × 20,000; `scalar` and `portable` (whose `f32::mul_add` is a libm call
//! on x86-64 without FMA code generation) run 500 × 2,000.
//!
//! `cargo bench --bench search`; a single case: `cargo bench --bench search -- avx512f-14x32/d128`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use facebias::compare::bench::synthetic;
use facebias::compare::search::{search_with, SearchKernel};

fn bench_search(c: &mut Criterion) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    for kernel in SearchKernel::all_available() {
        let (probes, gallery) = match kernel {
            SearchKernel::Scalar | SearchKernel::Portable => (500, 2_000),
            _ => (2_000, 20_000),
        };
        let mut group = c.benchmark_group(format!("search/{}", kernel.name()));
        group.sample_size(10);
        for dim in [128usize, 512] {
            let p = synthetic(probes, dim, 1, 42).0;
            let g = synthetic(gallery, dim, 1, 43).0;
            let rows: Vec<u32> = (0..gallery as u32).collect();
            group.throughput(Throughput::Elements((probes * gallery) as u64));
            let id = BenchmarkId::new(format!("d{dim}"), format!("{probes}x{gallery}"));
            group.bench_function(id, |b| {
                b.iter(|| search_with(&p, &g, &rows, dim, &[gallery], 50, kernel, threads).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_search);
criterion_main!(benches);

//! Criterion benches of the comparison stage: all non-mated pairs of N synthetic unit embeddings
//! binned into per-group-pair histograms. Throughput is reported in pairs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use facebias::compare::nonmated_histograms;

/// N unit vectors of length `dim` from a fixed-seed LCG, 8 groups, 5 images per subject.
fn synthetic(n: usize, dim: usize) -> (Vec<f32>, Vec<u16>, Vec<u32>) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut emb: Vec<f32> = (0..n * dim)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    for r in emb.chunks_mut(dim) {
        facebias::embed::l2_normalize(r);
    }
    let subject: Vec<u32> = (0..n).map(|i| (i / 5) as u32).collect();
    let cell: Vec<u16> = subject.iter().map(|&s| (s % 8) as u16).collect();
    (emb, cell, subject)
}

fn bench_reference(c: &mut Criterion) {
    let mut group = c.benchmark_group("allpairs_reference");
    group.sample_size(10);
    for dim in [128usize, 512] {
        let n = 1000;
        let (emb, cell, subject) = synthetic(n, dim);
        group.throughput(Throughput::Elements((n * (n - 1) / 2) as u64));
        group.bench_with_input(BenchmarkId::new(format!("scalar-d{dim}"), n), &n, |b, _| {
            b.iter(|| nonmated_histograms(&emb, dim, &cell, &subject, 8))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_reference);
criterion_main!(benches);

use super::*;
use crate::metrics::bootstrap::SplitMix64;
use proptest::prelude::*;

/// `n` random unit vectors of length `dim`.
fn unit(rng: &mut SplitMix64, n: usize, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n * dim)
        .map(|_| (rng.next_u64() % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    v.chunks_exact_mut(dim).for_each(|r| {
        if !crate::embed::l2_normalize(r) {
            r[0] = 1.0;
        }
    });
    v
}

/// A gallery of `n` unit vectors in which every fifth entry repeats an earlier one (so that its
/// scores tie exactly with that entry's), with shuffled tie-break rows.
fn gallery_with_ties(rng: &mut SplitMix64, n: usize, dim: usize) -> (Vec<f32>, Vec<u32>) {
    let mut g = unit(rng, n, dim);
    for e in (5..n).step_by(5) {
        let src = rng.below(e as u64) as usize;
        g.copy_within(src * dim..(src + 1) * dim, e * dim);
    }
    let mut rows: Vec<u32> = (0..n as u32).map(|r| r * 3 + 1).collect();
    for i in (1..n).rev() {
        rows.swap(i, rng.below(i as u64 + 1) as usize);
    }
    (g, rows)
}

fn ids(v: &[Candidate]) -> Vec<u32> {
    v.iter().map(|c| c.entry).collect()
}

/// Same entries and bit-identical scores.
fn assert_same(a: &Lists, b: &Lists, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: probes");
    for (p, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.len(), y.len(), "{what}: sizes of probe {p}");
        for (s, (u, v)) in x.iter().zip(y).enumerate() {
            let bits = |l: &[Candidate]| {
                l.iter()
                    .map(|c| (c.entry, c.score.to_bits()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(u), bits(v), "{what}: probe {p}, size index {s}");
        }
    }
}

#[test]
fn top_lists_nest_and_ties_go_to_the_lower_row() {
    // Probe (1, 0): a score is the entry's first component exactly (0·y adds an exact 0).
    // Scores in rank order: 0.5, 0.75, 0.75, 1.0, −1.0 (all exact in binary).
    let gallery = [0.5, 0.8, 0.75, 0.6, 0.75, -0.6, 1.0, 0.0, -1.0, 0.0];
    // Entries 1 and 2 tie at 0.75; entry 2 has the lower samples.csv row (3 < 7).
    let rows = [9, 7, 3, 5, 1];
    for kernel in SearchKernel::all_available() {
        let r = search_with(&[1.0, 0.0], &gallery, &rows, 2, &[2, 3, 5], 2, kernel, 2).unwrap();
        // Size 2 (entries 0, 1): 1 (0.75), 0 (0.5). Size 3: the tie, 2 before 1. Size 5: 3 (1.0), then 2.
        assert_eq!(ids(&r[0][0]), vec![1, 0], "{kernel:?}");
        assert_eq!(ids(&r[0][1]), vec![2, 1], "{kernel:?}");
        assert_eq!(ids(&r[0][2]), vec![3, 2], "{kernel:?}");
        assert_eq!(r[0][2][0].score, 1.0);
        assert_eq!(r[0][1][1].score, 0.75);
    }
    // The default kernel agrees.
    let r = search(&[1.0, 0.0], &gallery, &rows, 2, &[2, 3, 5], 2).unwrap();
    assert_eq!(ids(&r[0][1]), vec![2, 1]);
}

#[test]
fn the_reference_equals_a_full_sort_on_random_data() {
    let mut rng = SplitMix64::new(3);
    let dim = 19;
    let probes = unit(&mut rng, 7, dim);
    let (gallery, rows) = gallery_with_ties(&mut rng, 60, dim);
    let r = search_with(
        &probes,
        &gallery,
        &rows,
        dim,
        &[10, 60],
        5,
        SearchKernel::Scalar,
        1,
    );
    let r = r.unwrap();
    for (p, lists) in probes.chunks_exact(dim).zip(&r) {
        for (&n, list) in [10usize, 60].iter().zip(lists) {
            let mut all: Vec<(f32, u32, u32)> = (0..n)
                .map(|e| {
                    (
                        dot_fma(p, &gallery[e * dim..(e + 1) * dim]),
                        rows[e],
                        e as u32,
                    )
                })
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = all.iter().take(5).map(|x| x.2).collect();
            assert_eq!(ids(list), want);
        }
    }
}

#[test]
fn every_kernel_equals_the_reference_bit_for_bit() {
    let mut rng = SplitMix64::new(11);
    for dim in [1usize, 7, 16, 33, 128, 130] {
        for (np, ng) in [(1usize, 1usize), (13, 97), (37, 301), (70, 45)] {
            let probes = unit(&mut rng, np, dim);
            let (gallery, rows) = gallery_with_ties(&mut rng, ng, dim);
            // Sizes off the tile widths, the whole gallery, and 0.
            let mut sizes: Vec<usize> = vec![0, 1, 5, 17, 31, 44, 96, 200, ng];
            sizes.retain(|&s| s <= ng);
            sizes.dedup();
            for l in [1usize, 5, ng + 3] {
                let job = Job {
                    probes: &probes,
                    gallery: &gallery,
                    rows: &rows,
                    dim,
                    sizes: &sizes,
                    l,
                };
                let want = run(&job, SearchKernel::Scalar, 1, None);
                for kernel in SearchKernel::all_available() {
                    let what = format!("{kernel:?} d {dim} probes {np} gallery {ng} l {l}");
                    assert_same(&run(&job, kernel, 3, None), &want, &what);
                    // Small blocks: several probe blocks and gallery blocks per size, and the
                    // embedding in chunks of 5 (partial sums resumed from memory).
                    let small = Some(Blocking {
                        panels: 1,
                        tiles: 2,
                        kc: 5,
                    });
                    assert_same(
                        &run(&job, kernel, 2, small),
                        &want,
                        &format!("{what} small"),
                    );
                }
            }
        }
    }
}

#[test]
fn identical_for_any_thread_count() {
    let mut rng = SplitMix64::new(5);
    let dim = 40;
    let probes = unit(&mut rng, 300, dim);
    let (gallery, rows) = gallery_with_ties(&mut rng, 500, dim);
    for kernel in SearchKernel::all_available() {
        let one = search_with(&probes, &gallery, &rows, dim, &[100, 499], 20, kernel, 1).unwrap();
        for t in [2, 3, 8] {
            let many = search_with(&probes, &gallery, &rows, dim, &[100, 499], 20, kernel, t);
            assert_same(&many.unwrap(), &one, &format!("{kernel:?} threads {t}"));
        }
    }
}

#[test]
fn nan_scores_are_never_candidates() {
    // Entry 1 is NaN; the probe's lists hold the finite entries only, on every kernel.
    let gallery = [0.5, 0.0, f32::NAN, 0.0, 0.25, 0.0];
    for kernel in SearchKernel::all_available() {
        let r = search_with(&[1.0, 0.0], &gallery, &[0, 1, 2], 2, &[3], 3, kernel, 1).unwrap();
        assert_eq!(ids(&r[0][0]), vec![0, 2], "{kernel:?}");
    }
}

#[test]
fn empty_inputs_give_empty_lists() {
    for kernel in SearchKernel::all_available() {
        let r = search_with(&[], &[1.0, 0.0], &[0], 2, &[1], 3, kernel, 2).unwrap();
        assert!(r.is_empty());
        let r = search_with(&[1.0, 0.0], &[], &[], 2, &[0], 3, kernel, 2).unwrap();
        assert_eq!(r, vec![vec![Vec::<Candidate>::new()]]);
        let r = search_with(&[1.0, 0.0], &[1.0, 0.0], &[0], 2, &[], 3, kernel, 2).unwrap();
        assert_eq!(r, vec![Vec::<Vec<Candidate>>::new()]);
    }
}

#[test]
fn bad_inputs_are_refused() {
    let g = [1.0, 0.0];
    assert!(search(&[1.0, 0.0], &g, &[0], 2, &[2], 1).is_err()); // size above the gallery
    assert!(search(&[1.0, 0.0], &g, &[0], 2, &[1], 0).is_err()); // l = 0
    assert!(search(&[1.0, 0.0], &g, &[0], 2, &[1, 1], 1).is_err()); // sizes not rising
    assert!(search(&[1.0, 0.0], &g, &[0, 1], 2, &[1], 1).is_err()); // rows for 2 entries
    assert!(search(&[1.0, 0.0, 1.0], &g, &[0], 2, &[1], 1).is_err()); // ragged probes
    assert!(search(&[1.0, 0.0], &g, &[0], 0, &[1], 1).is_err()); // dim 0
}

#[test]
fn detect_picks_an_available_kernel() {
    let k = SearchKernel::detect();
    assert!(k.available());
    assert!(SearchKernel::all_available().contains(&k));
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        assert_eq!(k, SearchKernel::Avx512f);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_shapes_match_the_reference(
        np in 1usize..80,
        ng in 1usize..200,
        dim in 1usize..70,
        l in 1usize..30,
        cut in 0usize..200,
        seed in 0u64..1000,
        threads in 1usize..4,
    ) {
        let mut rng = SplitMix64::new(seed);
        let probes = unit(&mut rng, np, dim);
        let (gallery, rows) = gallery_with_ties(&mut rng, ng, dim);
        let mut sizes = vec![cut % (ng + 1), ng];
        sizes.dedup();
        let want = search_with(&probes, &gallery, &rows, dim, &sizes, l, SearchKernel::Scalar, 1).unwrap();
        for kernel in SearchKernel::all_available() {
            let got = search_with(&probes, &gallery, &rows, dim, &sizes, l, kernel, threads).unwrap();
            assert_same(&got, &want, &format!("{kernel:?}"));
        }
    }
}

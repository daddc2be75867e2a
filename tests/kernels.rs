//! The CPU comparison kernels end to end on real BFW images: `run --kernel` records the kernel in
//! run.json; the AVX-512F and AVX2 kernels give bit-identical histograms, mated scores and high-pair
//! lists on real MobileFaceNet embeddings, the same report, and shards computed by the two merge into
//! the single run; `bench --kernel` names the peak's instruction set. Where the CPU lacks AVX-512F the
//! tests print a skip line, or fail under `FACEBIAS_REQUIRE_AVX512=1`.

#[macro_use]
mod common;

use common::{bfw_subset, facebias};
use facebias::compare::kernel::{self, AllPairs, Kernel, Shard};

const AVX512: &str = "avx512f-14x32";
const AVX2: &str = "avx2-fma-6x16";

/// Whether this CPU runs both kernels; prints a visible skip line where it does not, or fails when
/// `FACEBIAS_REQUIRE_AVX512=1`.
fn both_kernels_or_skip(test: &str) -> bool {
    if Kernel::Avx512f.available() && Kernel::Avx2Fma.available() {
        return true;
    }
    assert!(
        std::env::var("FACEBIAS_REQUIRE_AVX512").as_deref() != Ok("1"),
        "{test}: FACEBIAS_REQUIRE_AVX512=1, but this CPU lacks AVX-512F (or AVX2)"
    );
    visible_note!("SKIPPED {test}: this CPU lacks AVX-512F or AVX2 + FMA (FACEBIAS_REQUIRE_AVX512=1 fails instead)");
    false
}

fn bits(r: &AllPairs) -> Vec<(usize, usize, u32)> {
    r.mated
        .iter()
        .map(|m| (m.a, m.b, m.score.to_bits()))
        .collect()
}

fn run_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

#[test]
fn avx512_and_avx2_agree_bit_for_bit_on_real_bfw_embeddings() {
    if !both_kernels_or_skip("avx512_and_avx2_agree_bit_for_bit_on_real_bfw_embeddings") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 10, 4); // 8 groups × 10 subjects × 4 images
    let run = |name: &str, kernel: &str, shard: Option<&str>| {
        let out = dir.path().join(name);
        let mut c = facebias(dir.path());
        c.args([
            "run",
            "--quiet",
            "--bootstrap",
            "0",
            "--attributes",
            "sex,race",
        ])
        .args(["--kernel", kernel, "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out);
        if let Some(s) = shard {
            c.args(["--shard", s]);
        }
        c.assert().success();
        out
    };
    let a = run("avx512", AVX512, None);
    let b = run("avx2", AVX2, None); // embeddings from the cache
    let (ja, jb) = (run_json(&a), run_json(&b));
    assert_eq!(ja["compare"]["kernel"], AVX512);
    assert_eq!(jb["compare"]["kernel"], AVX2);
    for f in [
        "samples.csv",
        "embeddings.npy",
        "groups.csv",
        "cross_fmr.csv",
        "equity.csv",
        "policies.csv",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between the kernels");
    }
    // The histograms themselves: the counts of b under a's header serialise to a's file.
    let store = |d: &std::path::Path| {
        facebias::metrics::store::from_bytes(&std::fs::read(d.join("comparisons.bin")).unwrap())
            .unwrap()
    };
    let (ha, ca) = store(&a);
    let same_counts = |d: &std::path::Path| {
        facebias::metrics::store::to_bytes(&ha, &store(d).1)
            == facebias::metrics::store::to_bytes(&ha, &ca)
    };
    assert!(same_counts(&b), "comparisons.bin counts differ");

    // Shards computed by the two kernels merge into the single run.
    let s0 = run("s0", AVX512, Some("0/2"));
    let s1 = run("s1", AVX2, Some("1/2"));
    let merged = dir.path().join("merged");
    facebias(dir.path())
        .arg("merge")
        .args([&s0, &s1])
        .args(["--bootstrap", "0", "--out"])
        .arg(&merged)
        .assert()
        .success();
    for f in ["groups.csv", "cross_fmr.csv", "equity.csv"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(merged.join(f)).unwrap(),
            "{f}: merged mixed-kernel shards differ from the single run"
        );
    }
    assert!(same_counts(&merged), "merged counts differ");

    // In process, on the run's embeddings: every thread count, and the bootstrap's high-pair list.
    let (emb, dim, cell, subject) = common::run_embeddings(&a);
    let rows = cell.len();
    assert!(rows >= 300, "{rows} of 320 images enrolled");
    let g = 1 + *cell.iter().max().unwrap() as usize;
    let want = kernel::all_pairs(
        &emb,
        dim,
        &cell,
        &subject,
        g,
        Kernel::Avx2Fma,
        1,
        Shard::ALL,
    );
    assert!(!want.mated.is_empty());
    for threads in 1..=3 {
        let got = kernel::all_pairs(
            &emb,
            dim,
            &cell,
            &subject,
            g,
            Kernel::Avx512f,
            threads,
            Shard::ALL,
        );
        assert!(
            got.nonmated == want.nonmated,
            "histograms, {threads} threads"
        );
        assert_eq!(bits(&got), bits(&want), "mated scores, {threads} threads");
    }
    // From bin 0.3 up: the pairs a bootstrap at a high threshold re-counts.
    let from = facebias::compare::bin_of(0.3);
    let high = |k| kernel::high_pairs(&emb, dim, &cell, &subject, g, k, 2, from);
    let want_high = high(Kernel::Avx2Fma);
    assert!(!want_high.is_empty(), "some non-mated pairs score ≥ 0.3");
    assert_eq!(high(Kernel::Avx512f), want_high);
}

#[test]
fn bench_names_the_kernel_and_the_peak_isa() {
    let dir = tempfile::tempdir().unwrap();
    let widest = facebias::compare::bench::PeakIsa::widest().name();
    for k in [Kernel::Portable, Kernel::Avx2Fma, Kernel::Avx512f] {
        let mut c = facebias(dir.path());
        c.args([
            "bench", "--json", "--n", "300", "--dim", "40", "--repeat", "1",
        ])
        .args(["--scalar-n", "50", "--threads", "1", "--kernel", k.name()]);
        if !k.available() {
            let out = c.assert().failure();
            let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
            assert!(
                err.contains(k.name()) && err.contains(Kernel::detect().name()),
                "{err}"
            );
            visible_note!("SKIPPED bench --kernel {}: this CPU lacks it", k.name());
            continue;
        }
        let out = c.assert().success().get_output().stdout.clone();
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(j["kernel"], k.name());
        assert_eq!(j["peak_isa"], widest);
        let (before, after) = (
            j["peak_before_gflops"].as_f64().unwrap(),
            j["peak_after_gflops"].as_f64().unwrap(),
        );
        assert!(before > 0.0 && after > 0.0);
        assert_eq!(j["peak_gflops"].as_f64().unwrap(), before.max(after));
        let share = 100.0 * j["gflops"].as_f64().unwrap() / before.max(after);
        assert!((j["percent_of_peak"].as_f64().unwrap() - share).abs() < 1e-9);
        // The warning is there exactly when the two differ by more than 10 %.
        let drift = before.max(after) > 1.10 * before.min(after);
        assert_eq!(j["peak_warning"].is_string(), drift, "{j}");
    }
    // The text names the peak's instruction set too.
    let text = facebias(dir.path())
        .args([
            "bench",
            "--n",
            "200",
            "--dim",
            "16",
            "--repeat",
            "1",
            "--scalar-n",
            "20",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(&format!("measured FMA peak ({widest})"))
            && text.contains(Kernel::detect().name()),
        "{text}"
    );
}

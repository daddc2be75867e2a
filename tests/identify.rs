//! `facebias identify` end to end on real BFW images: the protocol's counts and invariants, and every
//! FNIR/FPIR count recounted independently in float64 by tests/reference/identify_check.py.

mod common;

use common::{bfw_subset, facebias, read_csv};

#[test]
fn identify_splits_searches_and_counts_what_numpy_recounts() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 4, 3); // 8 groups × 4 subjects × 3 images = 96
    let run = |name: &str| {
        let out = dir.path().join(name);
        facebias(dir.path())
            .args([
                "identify",
                "--quiet",
                "--candidates",
                "5",
                "--target-fpir",
                "0.25,0.1,0.01",
            ])
            .arg("--dataset")
            .arg(&manifest)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        out
    };
    let out = run("a");
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let p = &rec["protocol"];
    // Half of each group's 4 subjects enrolled: 16 gallery images (one each), their other 2 images
    // are 32 mated searches; the 16 others' 48 images are non-mated searches.
    assert_eq!(
        (
            &p["subjects_enrolled"],
            &p["gallery_entries"],
            &p["mated_searches"],
            &p["nonmated_searches"]
        ),
        (
            &serde_json::json!(16),
            &serde_json::json!(16),
            &serde_json::json!(32),
            &serde_json::json!(48)
        )
    );
    // 48 non-mated searches resolve FPIR 0.25 and 0.1 but not 0.01 (it needs 100).
    let t: Vec<f64> = p["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target_fpir"].as_f64().unwrap())
        .collect();
    assert_eq!(t, vec![0.25, 0.1]);
    let samples = read_csv(&out.join("samples.csv"));
    for s in &samples {
        let same: Vec<&std::collections::HashMap<String, String>> = samples
            .iter()
            .filter(|x| x["subject"] == s["subject"])
            .collect();
        let in_gallery = same.iter().filter(|x| x["role"] == "gallery").count();
        match s["role"].as_str() {
            "nonmated_search" => assert_eq!(in_gallery, 0, "a non-mated searcher in the gallery"),
            "mated_search" | "gallery" => assert_eq!(in_gallery, 1),
            r => panic!("unexpected role {r}"),
        }
    }
    let cands = read_csv(&out.join("candidates.csv"));
    assert_eq!(cands.len(), 80 * 5, "80 searches × 5 candidates");
    let check = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/reference/identify_check.py"
        ))
        .arg(&out)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(said.contains(" 0 mismatches"), "{said}");
    // Seeded: a second run writes the same files.
    let b = run("b");
    for f in [
        "samples.csv",
        "candidates.csv",
        "identification.csv",
        "summary.md",
    ] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn identify_names_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    for (flag, value, needle) in [
        ("--enrolled-fraction", "1", "--enrolled-fraction"),
        ("--target-fpir", "2", "--target-fpir"),
        ("--candidates", "0", "--candidates"),
    ] {
        let a = facebias(dir.path())
            .args(["identify", "--quiet", flag, value, "--dataset"])
            .arg(&manifest)
            .arg("--out")
            .arg(dir.path().join("x"))
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
        assert!(err.contains(needle), "{flag}: {err}");
        assert!(!dir.path().join("x").exists());
    }
}

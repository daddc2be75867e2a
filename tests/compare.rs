//! `facebias compare` end to end on real BFW images and the shared models: the degenerate 192-d
//! MobileFaceNet is stopped by the sanity gate with a message about its score spread; each compared
//! model's per-group counts equal its own single-model run's; models.csv (Max/GeoMean, Gini, highest
//! group, ranking) is recomputed by tests/reference/compare_check.py; the page loads in Chromium.

mod common;

use common::{assert_page_loads, bfw_subset, facebias, read_csv};

#[test]
fn compare_stops_the_degenerate_model_and_matches_single_runs_and_numpy() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 4, 4); // 8 groups × 4 subjects × 4 images = 128
    let out = dir.path().join("cmp");
    let a = facebias(dir.path())
        .args([
            "compare",
            "--quiet",
            "--bootstrap",
            "100",
            "--models",
            "mobilefacenet,mobileface,human-mobilefacenet-192",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let said = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    assert!(
        said.contains("human-mobilefacenet-192") && said.contains("STOPPED"),
        "{said}"
    );
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let stopped = rec["stopped_by_sanity_gate"].as_array().unwrap();
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["name"], "human-mobilefacenet-192");
    let why = stopped[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("barely depend on the input") && why.contains("spread"),
        "{why}"
    );
    let spread = &stopped[0]["sanity"]["score_p1_p99"];
    assert!(
        spread[1].as_f64().unwrap() - spread[0].as_f64().unwrap() < 0.01,
        "{spread}"
    );
    assert!(
        !out.join("human-mobilefacenet-192").exists(),
        "no report for a stopped model"
    );
    let models = read_csv(&out.join("models.csv"));
    let names: std::collections::BTreeSet<&str> =
        models.iter().map(|r| r["model"].as_str()).collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["mobileface", "mobilefacenet"]
    );
    // The comparison's per-model folder holds the same counts as a single-model run on the images.
    let single = dir.path().join("single");
    facebias(dir.path())
        .args([
            "run",
            "--quiet",
            "--bootstrap",
            "100",
            "--model",
            "mobileface",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&single)
        .assert()
        .success();
    for f in ["groups.csv", "equity.csv", "cross_fmr.csv"] {
        assert_eq!(
            std::fs::read(single.join(f)).unwrap(),
            std::fs::read(out.join("mobileface").join(f)).unwrap(),
            "{f}"
        );
    }
    let check = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/reference/compare_check.py"
        ))
        .arg(&out)
        .output()
        .unwrap();
    let told = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && told.contains(" 0 mismatches"),
        "{told}"
    );
    // Every chart and each model's heatmap decode in the page: 3 charts × 3 groupings + 2 heatmaps.
    let shown = assert_page_loads(&out.join("index.html"), &dir.path().join("profile"));
    assert_eq!(shown, 3 * 3 + 2);
}

#[test]
fn compare_refuses_runs_of_different_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let a = bfw_subset(dir.path(), 2, 3);
    let b_dir = dir.path().join("b");
    std::fs::create_dir(&b_dir).unwrap();
    let b = bfw_subset(&b_dir, 3, 3);
    let run = |m: &std::path::Path, out: &str| {
        facebias(dir.path())
            .args(["run", "--quiet", "--bootstrap", "0", "--dataset"])
            .arg(m)
            .arg("--out")
            .arg(dir.path().join(out))
            .assert()
            .success();
        dir.path().join(out)
    };
    let (ra, rb) = (run(&a, "ra"), run(&b, "rb"));
    let e = facebias(dir.path())
        .args(["compare", "--quiet", "--runs"])
        .arg(format!("{},{}", ra.display(), rb.display()))
        .arg("--out")
        .arg(dir.path().join("c"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&e.get_output().stderr).to_string();
    assert!(err.contains("different datasets"), "{err}");
    assert!(!dir.path().join("c").exists());
}

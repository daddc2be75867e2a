//! `facebias identify` end to end on real BFW images: the protocol's counts and invariants, and every
//! FNIR/FPIR count recounted independently in float64 by tests/reference/identify_check.py.

mod common;

use common::{bfw_subset, facebias, read_csv};

/// A distractor manifest: the first `utk` UTKFace rows and `lfw` LFW rows (absolute paths), plus one
/// copy of a searched BFW image under another name (the duplicate the run must drop and count).
fn distractors(
    dir: &std::path::Path,
    searched: &std::path::Path,
    utk: usize,
    lfw: usize,
) -> std::path::PathBuf {
    let mut out = vec!["path,subject,sex,race,age".to_string()];
    for (name, n) in [("utkface", utk), ("lfw", lfw)] {
        let root = common::shared().join("datasets").join(name);
        let text = std::fs::read_to_string(root.join("manifest.csv")).unwrap();
        for line in text.lines().skip(1).take(n) {
            let (path, rest) = line.split_once(',').unwrap();
            out.push(format!("{},{rest}", root.join(path).display()));
        }
    }
    let first = std::fs::read_to_string(searched).unwrap();
    let bfw_image = first
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let copy = dir.join("copy-of-a-searched-image.jpg");
    std::fs::copy(&bfw_image, &copy).unwrap();
    out.push(format!("{},copy,female,Asian,30", copy.display()));
    let path = dir.join("distractors.csv");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

#[test]
fn identify_splits_searches_and_counts_what_numpy_recounts() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 4, 3); // 8 groups × 4 subjects × 3 images = 96
    let extra = distractors(dir.path(), &manifest, 40, 24);
    let run = |name: &str, device: &str| {
        let out = dir.path().join(name);
        facebias(dir.path())
            .args([
                "identify",
                "--device",
                device,
                "--quiet",
                "--candidates",
                "5",
                "--target-fpir",
                "0.25,0.1,0.01",
                "--gallery-sizes",
                "16,40,all",
                "--bootstrap",
                "50",
            ])
            .arg("--dataset")
            .arg(&manifest)
            .arg("--distractors")
            .arg(&extra)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        out
    };
    let out = run("a", "cpu");
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    // Where it ran: the CPU, as asked, so no note.
    assert_eq!(
        rec["runtime"]["execution_provider"],
        serde_json::json!("CPUExecutionProvider")
    );
    assert_eq!(rec["search"]["device_note"], serde_json::json!(""));
    assert!(rec["search"]["device"]
        .as_str()
        .unwrap()
        .starts_with("cpu ("));
    let p = &rec["protocol"];
    // Half of each group's 4 subjects enrolled: 16 gallery images (one each), their other 2 images
    // are 32 mated searches; the 16 others' 48 images are non-mated searches.
    assert_eq!(
        (
            &p["subjects_enrolled"],
            &p["enrolled_mates"],
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
    // The copied BFW image is dropped as a duplicate of a searched image, and counted.
    let d = &rec["distractors"];
    assert_eq!(d["dropped_duplicates"], serde_json::json!(1));
    assert_eq!(
        d["datasets"][0]["duplicates_of_searched"],
        serde_json::json!(1)
    );
    assert_eq!(d["datasets"][0]["images"], serde_json::json!(65));
    // 48 non-mated searches resolve FPIR 0.25 and 0.1 but not 0.01 (it needs 100).
    let t: Vec<f64> = p["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target_fpir"].as_f64().unwrap())
        .collect();
    assert_eq!(t, vec![0.25, 0.1]);
    let n_all = p["gallery_entries"].as_u64().unwrap() as usize;
    assert_eq!(p["gallery_sizes"], serde_json::json!([16, 40, n_all]));
    let samples = read_csv(&out.join("samples.csv"));
    assert_eq!(samples.len(), 96 + 64, "the duplicate is not a sample");
    // Protocol invariants: a non-mated searcher has no image in the gallery; a mated searcher's
    // gallery image ranks among the mates (so it is in every nested gallery); distractors rank after.
    let mates = p["enrolled_mates"].as_u64().unwrap() as usize;
    for s in &samples {
        let same = |role: &str| {
            samples
                .iter()
                .filter(|x| {
                    x["dataset"] == s["dataset"]
                        && x["subject"] == s["subject"]
                        && x["role"] == role
                })
                .count()
        };
        let rank = s["gallery_rank"].parse::<usize>().ok();
        match s["role"].as_str() {
            "nonmated_search" => {
                assert_eq!(same("gallery"), 0, "a non-mated searcher in the gallery")
            }
            "mated_search" => assert_eq!(same("gallery"), 1),
            "gallery" => assert!(s["embedding_row"].is_empty() || rank.unwrap() < mates),
            "distractor" => assert!(s["embedding_row"].is_empty() || rank.unwrap() >= mates),
            "unused" => assert!(
                rank.is_none(),
                "a screened-out distractor has no gallery rank"
            ),
            r => panic!("unexpected role {r}"),
        }
    }
    let cands = read_csv(&out.join("candidates.csv"));
    assert_eq!(
        cands.len(),
        80 * 5,
        "80 searches × 5 candidates at the largest gallery"
    );
    assert!(cands.iter().all(|c| c["gallery_size"] == n_all.to_string()));
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
    // `--device auto` searches on the GPU when there is one (bit-identical lists, the embeddings
    // coming from the cache) and otherwise falls back to the CPU and says so in run.json; either way
    // the results are the same files (index.html embeds run.json, so it differs by the note).
    let c = run("c", "auto");
    for f in [
        "samples.csv",
        "candidates.csv",
        "identification.csv",
        "summary.md",
    ] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(c.join(f)).unwrap(),
            "--device auto: {f}"
        );
    }
    let rec_c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.join("run.json")).unwrap()).unwrap();
    let search = &rec_c["search"];
    let on_gpu = search["kernel"] == serde_json::json!(facebias::compare::gpu::search::KERNEL_NAME);
    if facebias::compare::gpu::cuda::probe().is_err() {
        assert!(!on_gpu, "no driver here, yet the search ran on a GPU");
    }
    if !on_gpu {
        assert_eq!(search["kernel"], rec["search"]["kernel"]);
        let note = search["device_note"].as_str().unwrap();
        assert!(
            note.starts_with("search on the CPU: ") && note.contains("--device cpu"),
            "{note}"
        );
    }
    // Seeded: a second run with the same flags writes the same files.
    let b = run("b", "cpu");
    for f in [
        "samples.csv",
        "candidates.csv",
        "identification.csv",
        "identification_summary.csv",
        "cmc.csv",
        "gallery_size.csv",
        "implicated.csv",
        "overlap.csv",
        "summary.md",
        "index.html",
    ] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn identify_refuses_bad_gallery_inputs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 2, 2); // 16 subjects: 8 enrolled mates
    let extra = distractors(dir.path(), &manifest, 10, 0);
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec!["--gallery-sizes".into(), "100000".into()],
            "--gallery-sizes 100000 is larger than the gallery",
        ),
        (
            vec!["--gallery-sizes".into(), "3".into()],
            "smaller than the 8 enrolled mates",
        ),
        (
            vec!["--gallery-sizes".into(), "ten".into()],
            "not a gallery size",
        ),
        (
            vec!["--distractors".into(), manifest.clone().into()],
            "is the searched dataset itself",
        ),
        (
            vec!["--reference-group".into(), "martian".into()],
            "--reference-group martian names no group",
        ),
        (
            vec!["--gallery-mix".into(), "hair:grey=0.5".into()],
            "--gallery-mix hair:grey=0.5: the searched dataset has no attribute 'hair'",
        ),
    ];
    for (flags, needle) in cases {
        let a = facebias(dir.path())
            .args(["identify", "--quiet", "--bootstrap", "0", "--dataset"])
            .arg(&manifest)
            .args(if flags[0] == "--distractors" {
                vec![]
            } else {
                vec![
                    std::ffi::OsString::from("--distractors"),
                    extra.clone().into(),
                ]
            })
            .args(&flags)
            .arg("--out")
            .arg(dir.path().join("x"))
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
        assert!(err.contains(needle), "{flags:?}: {err}");
        assert!(!dir.path().join("x").exists(), "{flags:?} left a report");
    }
    // A target FPIR that 8 non-mated searches cannot resolve is left out with a note naming the flag.
    let a = facebias(dir.path())
        .args([
            "identify",
            "--quiet",
            "--bootstrap",
            "0",
            "--target-fpir",
            "0.5,0.01",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("y"))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("--target-fpir 0.01") && err.contains("cannot resolve"),
        "{err}"
    );
}

#[test]
fn identify_device_cuda_without_a_gpu_stops_naming_the_flag_and_the_fix() {
    if facebias::compare::gpu::cuda::probe().is_ok_and(|n| n > 0) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED identify_device_cuda_without_a_gpu: this machine has a GPU"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    for device in ["cuda", "cuda:1"] {
        let a = facebias(dir.path())
            .args(["identify", "--quiet", "--device", device, "--dataset"])
            .arg(&manifest)
            .arg("--out")
            .arg(dir.path().join("x"))
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
        let n = device.strip_prefix("cuda:").unwrap_or("0");
        assert!(
            err.contains(&format!("--device cuda:{n}")) && err.contains("use --device cpu"),
            "{device}: {err}"
        );
        assert!(!dir.path().join("x").exists(), "nothing written");
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

//! End-to-end tests of the CLI on the real models and images in ../shared.

mod common;

use std::collections::HashMap;

use common::{bfw_subset, facebias, read_csv, shared, testfaces};
use facebias::report::read_npy_f32;

#[test]
fn run_counts_equal_a_brute_force_recount() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 4, 5); // 8 groups × 4 subjects × 5 images = 160 images
    let out = dir.path().join("report");
    facebias(dir.path())
        .args(["run", "--quiet", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .args(["--target-fmr", "0.01,0.001"])
        .assert()
        .success();
    for f in [
        "samples.csv",
        "embeddings.npy",
        "groups.csv",
        "cross_fmr.csv",
        "equity.csv",
        "run.json",
        "det_race.png",
        "det_sex.svg",
        "heatmap_sex_x_race.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let samples = read_csv(&out.join("samples.csv"));
    assert_eq!(samples.len(), 160);
    let (emb, rows, dim) =
        read_npy_f32(&std::fs::read(out.join("embeddings.npy")).unwrap()).unwrap();
    assert_eq!(dim, 128);
    assert_eq!(
        rows,
        samples
            .iter()
            .filter(|s| !s["embedding_row"].is_empty())
            .count()
    );
    // Embeddings are unit vectors.
    for r in emb.chunks(dim) {
        let n: f64 = r.iter().map(|&x| x as f64 * x as f64).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
    // Recount every group's errors at each threshold with float64 dot products over all pairs.
    let groups = read_csv(&out.join("groups.csv"));
    let vec_of = |s: &HashMap<String, String>| -> Option<Vec<f64>> {
        s["embedding_row"].parse::<usize>().ok().map(|r| {
            emb[r * dim..(r + 1) * dim]
                .iter()
                .map(|&x| x as f64)
                .collect()
        })
    };
    let vecs: Vec<Option<Vec<f64>>> = samples.iter().map(vec_of).collect();
    let mut checked = 0;
    for g in groups
        .iter()
        .filter(|g| g["attribute"] == "race" || g["attribute"] == "sex×race")
    {
        let tau: f64 = g["threshold"].parse().unwrap();
        let in_group = |s: &HashMap<String, String>| match g["attribute"].as_str() {
            "race" => s["race"] == g["group"],
            _ => format!("{}|{}", s["sex"], s["race"]) == g["group"],
        };
        let (mut mated, mut fnm, mut nonmated, mut fm, mut near) = (0u64, 0u64, 0u64, 0u64, 0u64);
        for i in 0..samples.len() {
            for j in i + 1..samples.len() {
                if !(in_group(&samples[i]) && in_group(&samples[j])) {
                    continue;
                }
                let score = match (&vecs[i], &vecs[j]) {
                    (Some(a), Some(b)) => Some(a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>()),
                    _ => None, // a failure to enrol: non-match
                };
                if let Some(s) = score {
                    if (s - tau).abs() < 1e-6 {
                        near += 1;
                    }
                }
                let matched = score.is_some_and(|s| s >= tau);
                if samples[i]["subject"] == samples[j]["subject"] {
                    mated += 1;
                    fnm += !matched as u64;
                } else {
                    nonmated += 1;
                    fm += matched as u64;
                }
            }
        }
        assert_eq!(
            g["mated_comparisons"].parse::<u64>().unwrap(),
            mated,
            "{g:?}"
        );
        assert_eq!(
            g["nonmated_comparisons"].parse::<u64>().unwrap(),
            nonmated,
            "{g:?}"
        );
        let d_fm = g["false_matches"].parse::<i64>().unwrap() - fm as i64;
        let d_fnm = g["false_non_matches"].parse::<i64>().unwrap() - fnm as i64;
        assert!(
            d_fm.unsigned_abs() <= near && d_fnm.unsigned_abs() <= near,
            "{g:?}: recount fm {fm} fnm {fnm} ({near} scores within 1e-6 of τ)"
        );
        checked += 1;
    }
    assert_eq!(checked, 2 * (4 + 8));
    // Each group has 4 subjects × C(5,2) = 40 mated pairs, and C(20,2) − 40 = 150 non-mated pairs (sex×race).
    let wf = groups
        .iter()
        .find(|g| g["attribute"] == "sex×race" && g["group"] == "female|white")
        .unwrap();
    assert_eq!(
        (
            wf["mated_comparisons"].as_str(),
            wf["nonmated_comparisons"].as_str()
        ),
        ("40", "150")
    );
}

#[test]
fn embeddings_equal_python_onnxruntime_on_the_same_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = testfaces(dir.path());
    let out = dir.path().join("emb");
    facebias(dir.path())
        .args([
            "embed",
            "--quiet",
            "--dump-tensors",
            "--face-select",
            "largest",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let model = shared().join("models/mobilefacenet_foamliu_128d.onnx");
    let reference = dir.path().join("reference.npy");
    let status = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/reference/ort_embed.py"
        ))
        .arg(&model)
        .arg(out.join("tensors.npy"))
        .arg(&reference)
        .status()
        .expect("python3 with onnxruntime and numpy (installed by .ci/setup)");
    assert!(status.success());
    let (ours, n, dim) = read_npy_f32(&std::fs::read(out.join("embeddings.npy")).unwrap()).unwrap();
    let (theirs, n2, dim2) = read_npy_f32(&std::fs::read(&reference).unwrap()).unwrap();
    assert_eq!((n, dim), (31, 128));
    assert_eq!((n2, dim2), (n, dim));
    let max_diff = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff <= 1e-4, "max abs diff {max_diff}");
}

#[test]
fn test_faces_reproduce_the_published_pair_scores() {
    // MODELS.md, MobileFaceNet "Example pairs", computed with OpenCV's detector/aligner: our detector
    // decoding and least-squares alignment must land within 0.02 of them.
    let dir = tempfile::tempdir().unwrap();
    let manifest = testfaces(dir.path());
    let out = dir.path().join("emb");
    facebias(dir.path())
        .args([
            "embed",
            "--quiet",
            "--no-cache",
            "--face-select",
            "largest",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let samples = read_csv(&out.join("samples.csv"));
    let (emb, _, dim) = read_npy_f32(&std::fs::read(out.join("embeddings.npy")).unwrap()).unwrap();
    let row = |name: &str| {
        let s = samples
            .iter()
            .find(|s| s["path"].ends_with(&format!("/{name}.jpg")))
            .unwrap();
        s["embedding_row"].parse::<usize>().unwrap()
    };
    let score = |a: &str, b: &str| {
        let (x, y) = (row(a), row(b));
        (0..dim)
            .map(|k| emb[x * dim + k] * emb[y * dim + k])
            .sum::<f32>()
    };
    for (a, b, published) in [
        ("Trump-1", "Trump-2", 0.472),
        ("brad_1", "brad_2", 0.724),
        ("Melania-1", "Melania-3", 0.737),
        ("Trump-1", "Melania-1", -0.019),
        ("brad_1", "nicole_1", 0.012),
        ("LiuDehua-1", "ZhouRunfa-1", -0.027),
    ] {
        let s = score(a, b);
        assert!(
            (s - published).abs() <= 0.02,
            "{a}/{b}: {s:.3} vs published {published}"
        );
    }
    // MODELS.md: every same-person pair scores ≥ 0.469 > 0.385 ≥ every different-person pair (with OpenCV).
    let ids: Vec<&String> = samples.iter().map(|s| &s["subject"]).collect();
    let (mut worst_same, mut worst_diff) = (1.0f32, -1.0f32);
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            let s = (0..dim)
                .map(|k| emb[i * dim + k] * emb[j * dim + k])
                .sum::<f32>();
            if ids[i] == ids[j] {
                worst_same = worst_same.min(s);
            } else {
                worst_diff = worst_diff.max(s);
            }
        }
    }
    assert!(
        worst_same > worst_diff,
        "same {worst_same} vs different {worst_diff}"
    );
}

#[test]
fn reruns_are_byte_identical_and_use_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 2, 3);
    let run = |name: &str| {
        let out = dir.path().join(name);
        facebias(dir.path())
            .args(["run", "--quiet", "--dataset"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        out
    };
    let a = run("a");
    let b = run("b");
    for f in [
        "samples.csv",
        "embeddings.npy",
        "groups.csv",
        "cross_fmr.csv",
        "equity.csv",
        "policies.csv",
        "summary.md",
        "index.html",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs:\n{}\n---\n{}",
            String::from_utf8_lossy(&x),
            String::from_utf8_lossy(&y)
        );
    }
    let ja: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("run.json")).unwrap()).unwrap();
    let jb: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("run.json")).unwrap()).unwrap();
    assert_eq!(ja["execution"]["cache_hits"], 0);
    assert_eq!(jb["execution"]["cache_hits"], 48); // 8 groups × 2 subjects × 3 images
    let strip = |mut v: serde_json::Value| {
        v.as_object_mut().unwrap().remove("execution");
        v
    };
    assert_eq!(strip(ja.clone()), strip(jb));
    assert_eq!(
        ja["model"]["sha256"],
        "b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507"
    );
    assert_eq!(ja["runtime"]["onnxruntime_version"], "1.31.1");
}

#[test]
fn inspect_reports_the_model_interface() {
    let dir = tempfile::tempdir().unwrap();
    let model = shared().join("models/mobilefacenet_foamliu_128d.onnx");
    let out = facebias(dir.path())
        .args(["inspect", "--json"])
        .arg(&model)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["sha256"],
        "b7120c095d60094f28a4a54ba6a8bf51b297a6273fb40ef6350dfec1f63d9507"
    );
    assert_eq!(v["catalogue_match"], "mobilefacenet");
    assert_eq!(v["ir_version"], 8); // MODELS.md: opset 18, IR 8, pytorch 2.9.0
    assert_eq!(v["opsets"][0]["version"], 18);
    assert!(
        v["producer"].as_str().unwrap().starts_with("pytorch 2.9"),
        "{}",
        v["producer"]
    );
    assert_eq!(v["inputs"][0]["name"], "input0");
    assert_eq!(
        v["inputs"][0]["shape"],
        serde_json::json!(["1", "3", "112", "112"])
    );
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!(["1", "128"]));
    let det = shared().join("models/face_detection_yunet_s_dynamic.onnx");
    let text = facebias(dir.path())
        .arg("inspect")
        .arg(&det)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("input      input float32 [batch, 3, height, width]"),
        "{text}"
    );
    assert!(text.contains("catalogue: yunet-dynamic"), "{text}");
}

#[test]
fn shards_merged_equal_the_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 3, 4); // 96 images
    let run = |out: &std::path::Path, shard: Option<&str>| {
        let mut c = facebias(dir.path());
        c.args(["run", "--quiet", "--bootstrap", "0", "--dataset"]) // intervals need an unsharded run
            .arg(&manifest)
            .arg("--out")
            .arg(out);
        if let Some(s) = shard {
            c.args(["--shard", s]);
        }
        c.assert().success();
    };
    let single = dir.path().join("single");
    run(&single, None);
    let shards: Vec<_> = (0..3)
        .map(|k| dir.path().join(format!("shard{k}")))
        .collect();
    for (k, s) in shards.iter().enumerate() {
        run(s, Some(&format!("{k}/3")));
        assert!(!s.join("groups.csv").exists(), "a shard writes no report");
    }
    // Missing shard: refused, naming it.
    let partial = facebias(dir.path())
        .arg("merge")
        .args(&shards[..2])
        .arg("--out")
        .arg(dir.path().join("bad"))
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&partial.get_output().stderr)
        .contains("shards [2] of 3 are missing"));
    // A shard computed by the GPU kernel splits the pairs differently: refused, naming both kernels.
    let gpu_shard = dir.path().join("gpu_shard2");
    std::fs::create_dir(&gpu_shard).unwrap();
    for f in std::fs::read_dir(&shards[2]).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, gpu_shard.join(f.file_name().unwrap())).unwrap();
    }
    let bin = gpu_shard.join("comparisons.bin");
    let (mut header, counts) =
        facebias::metrics::store::from_bytes(&std::fs::read(&bin).unwrap()).unwrap();
    header.kernel = "cuda-fp32-128x128".into();
    std::fs::write(&bin, facebias::metrics::store::to_bytes(&header, &counts)).unwrap();
    let mixed = facebias(dir.path())
        .arg("merge")
        .args(&shards[..2])
        .arg(&gpu_shard)
        .arg("--out")
        .arg(dir.path().join("mixed"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&mixed.get_output().stderr).to_string();
    assert!(
        err.contains("cuda-fp32-128x128") && err.contains("same --device"),
        "{err}"
    );
    let merged = dir.path().join("merged");
    facebias(dir.path())
        .arg("merge")
        .args(&shards)
        .args(["--bootstrap", "0"])
        .arg("--out")
        .arg(&merged)
        .assert()
        .success();
    for f in [
        "samples.csv",
        "embeddings.npy",
        "comparisons.bin",
        "groups.csv",
        "cross_fmr.csv",
        "equity.csv",
    ] {
        let (x, y) = (
            std::fs::read(single.join(f)).unwrap(),
            std::fs::read(merged.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs between the single run and the merged shards"
        );
    }
    let strip = |p: &std::path::Path| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(p.join("run.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("execution");
        v
    };
    assert_eq!(strip(&single), strip(&merged));
}

#[test]
fn shard_flag_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let a = facebias(dir.path())
        .args(["run", "--dataset", "x", "--out", "y", "--shard", "4/4"])
        .assert()
        .failure();
    assert!(String::from_utf8_lossy(&a.get_output().stderr).contains("0 ≤ K < N"));
}

#[test]
fn report_rerenders_from_saved_comparisons() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 2, 4);
    let out = dir.path().join("run");
    facebias(dir.path())
        .args(["run", "--quiet", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let before = std::fs::read(out.join("groups.csv")).unwrap();
    // Same targets: identical files, without the model (an unusable --ort-lib proves it is not loaded).
    facebias(dir.path())
        .env("ORT_DYLIB_PATH", "/nonexistent.so")
        .arg("report")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(before, std::fs::read(out.join("groups.csv")).unwrap());
    // New targets: new thresholds from the same histograms.
    facebias(dir.path())
        .arg("report")
        .arg(&out)
        .args(["--target-fmr", "0.05"])
        .assert()
        .success();
    let rows = read_csv(&out.join("groups.csv"));
    assert!(!rows.is_empty() && rows.iter().all(|r| r["target_fmr"] == "0.05"));
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["target_fmrs"], serde_json::json!([0.05]));
}

#[test]
fn summary_metrics_agree_with_numpy_and_intervals_are_present() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 6, 5); // 240 images, 48 subjects
    let out = dir.path().join("run");
    facebias(dir.path())
        .args([
            "run",
            "--quiet",
            "--bootstrap",
            "300",
            "--target-fmr",
            "0.05,0.01",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let status = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/reference/equity_check.py"
        ))
        .arg(&out)
        .status()
        .expect("python3 with numpy (installed by .ci/setup)");
    assert!(status.success(), "numpy recomputation disagrees");
    let groups = read_csv(&out.join("groups.csv"));
    let with_errors: Vec<_> = groups
        .iter()
        .filter(|g| g["false_matches"] != "0")
        .collect();
    assert!(!with_errors.is_empty());
    for g in with_errors {
        let (lo, hi): (f64, f64) = (
            g["fmr_ci_low"].parse().unwrap(),
            g["fmr_ci_high"].parse().unwrap(),
        );
        assert!(lo.is_finite() && hi.is_finite() && lo <= hi, "{g:?}");
    }
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["bootstrap"]["replicates"], 300);
    assert_eq!(run["bootstrap"]["seed"], 8280);
}

#[test]
fn a_tie_between_two_groups_is_not_called_a_direction() {
    // Split BFW subjects of the same demographic groups alternately into arms `a` and `b`: the two arms
    // differ by chance only, so the named-pair interval of a/b (or b/a) must include 1 and the finding
    // must say the direction is not established, while max/min's own interval is ≥ 1 by construction.
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 6, 5);
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut subjects: Vec<String> = Vec::new();
    let mut out = vec!["path,subject,arm".to_string()];
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        if !subjects.iter().any(|s| s == cols[1]) {
            subjects.push(cols[1].to_string());
        }
        let i = subjects.iter().position(|s| s == cols[1]).unwrap();
        out.push(format!("{},{},{}", cols[0], cols[1], ["a", "b"][i % 2]));
    }
    let arms = dir.path().join("arms.csv");
    std::fs::write(&arms, out.join("\n") + "\n").unwrap();
    let run = dir.path().join("run");
    facebias(dir.path())
        .args([
            "run",
            "--quiet",
            "--bootstrap",
            "200",
            "--target-fmr",
            "0.05",
        ])
        .arg("--dataset")
        .arg(&arms)
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let rows = read_csv(&run.join("equity.csv"));
    let mm: Vec<_> = rows.iter().filter(|r| r["metric"] == "max_min").collect();
    assert_eq!(mm.len(), 2);
    let summary = std::fs::read_to_string(run.join("summary.md")).unwrap();
    let mut spanning = 0;
    for r in mm {
        let (lo, hi): (f64, f64) = (
            r["pair_ci_low"].parse().unwrap(),
            r["pair_ci_high"].parse().unwrap(),
        );
        let (mlo, value): (f64, f64) = (r["ci_low"].parse().unwrap(), r["value"].parse().unwrap());
        assert!(
            mlo >= 1.0 && value >= 1.0,
            "max/min is ≥ 1 by construction: {r:?}"
        );
        let line = summary
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "- By arm: {}'s {}",
                    r["group_high"],
                    r["rate"].to_uppercase()
                ))
            })
            .unwrap_or_else(|| panic!("no finding for {r:?} in {summary}"));
        if lo <= 1.0 {
            spanning += 1;
            assert!(line.contains("includes 1, so which of the two"), "{line}");
        } else {
            assert!(!line.contains("includes 1"), "{line}");
        }
        assert!(lo <= hi);
    }
    assert!(
        spanning >= 1,
        "two arms of the same people differ by chance only: {summary}"
    );
}

#[test]
fn excluded_pairs_leave_every_count_and_are_stated() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 6, 5);
    let run = |out: &std::path::Path, extra: &[&std::ffi::OsStr]| {
        facebias(dir.path())
            .args([
                "run",
                "--quiet",
                "--bootstrap",
                "100",
                "--target-fmr",
                "0.05,0.01",
            ])
            .args(extra)
            .arg("--dataset")
            .arg(&manifest)
            .arg("--out")
            .arg(out)
            .assert()
            .success();
    };
    let first = dir.path().join("first");
    run(&first, &[]);
    let top = read_csv(&first.join("top_impostors.csv"));
    let worst = read_csv(&first.join("worst_genuine.csv"));
    assert!(top.len() >= 100 && !worst.is_empty());
    assert_eq!(top[0]["rank"], "1");
    // Top impostor scores are in descending order, genuine ones ascending.
    let score = |r: &HashMap<String, String>| r["score"].parse::<f64>().unwrap();
    assert!(top
        .windows(2)
        .all(|w| score(&w[0]) >= score(&w[1]) || w[1]["rank"].is_empty()));
    assert!(worst
        .windows(2)
        .all(|w| score(&w[0]) <= score(&w[1]) || w[1]["rank"].is_empty()));
    let list = dir.path().join("exclude.csv");
    std::fs::write(
        &list,
        format!(
            "path_a,path_b,why\n{},{},same person\n{},{},wrong label\n",
            top[0]["path_a"], top[0]["path_b"], worst[0]["path_a"], worst[0]["path_b"]
        ),
    )
    .unwrap();
    let second = dir.path().join("second");
    run(&second, &["--exclude-pairs".as_ref(), list.as_os_str()]);
    let json = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("run.json")).unwrap()).unwrap()
    };
    let (a, b) = (json(&first), json(&second));
    assert_eq!(
        (
            b["exclusions"]["pairs"].as_u64(),
            b["exclusions"]["mated"].as_u64()
        ),
        (Some(2), Some(1))
    );
    for (key, less) in [
        ("nonmated_comparisons_scored", 1),
        ("mated_comparisons_scored", 1),
    ] {
        assert_eq!(
            b["compare"][key].as_u64().unwrap() + less,
            a["compare"][key].as_u64().unwrap(),
            "{key}"
        );
    }
    assert_eq!(
        b["thresholds"][0]["comparisons"].as_u64().unwrap() + 1,
        a["thresholds"][0]["comparisons"].as_u64().unwrap()
    );
    let top2 = read_csv(&second.join("top_impostors.csv"));
    assert!(!top2
        .iter()
        .any(|r| r["path_a"] == top[0]["path_a"] && r["path_b"] == top[0]["path_b"]));
    assert_eq!(
        top2[0]["path_a"], top[1]["path_a"],
        "the next pair moves up"
    );
    let summary = std::fs::read_to_string(second.join("summary.md")).unwrap();
    assert!(summary.contains("2 pairs listed in"), "{summary}");
    // The bootstrap leaves them out too: numpy's re-implementation agrees on every interval.
    let status = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/reference/equity_check.py"
        ))
        .arg(&second)
        .status()
        .unwrap();
    assert!(status.success());
    // A path that is not in the manifest names the file and row, before any work.
    std::fs::write(&list, "path_a,path_b\nnope.jpg,nope2.jpg\n").unwrap();
    let out = facebias(dir.path())
        .args(["run", "--quiet", "--exclude-pairs"])
        .arg(&list)
        .arg("--dataset")
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("exclude.csv") && err.contains("row 2") && err.contains("nope.jpg"),
        "{err}"
    );
    assert!(!dir.path().join("bad").exists());
}

#[test]
fn reference_group_naming_no_group_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let out = facebias(dir.path())
        .args([
            "run",
            "--quiet",
            "--reference-group",
            "martian",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--reference-group martian names no group")
            && err.contains("race: asian, black, indian, white"),
        "{err}"
    );
    assert!(
        !err.contains("failures to enrol"),
        "refused before embedding: {err}"
    );
    assert!(!dir.path().join("run").exists());
}

#[test]
fn html_report_loads_in_headless_chromium_with_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 3, 4);
    let out = dir.path().join("run");
    facebias(dir.path())
        .args(["run", "--quiet", "--bootstrap", "100", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let page = out.join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "the page must work offline"
    );
    let expected: usize = html
        .split("data-images-expected=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        expected,
        3 * 7 + 1,
        "7 charts for each of sex, race, sex×race, and the contact sheet of the top impostor pairs"
    );
    let dom = common::page_dom(&page, &dir.path().join("profile"));

    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's load handler did not run: {}",
        &dom[..dom.len().min(500)]
    );
    assert!(
        dom.contains(&format!("data-images-loaded=\"{expected}\"")),
        "not every image decoded"
    );
    assert!(!dom.contains("data-errors="), "the page raised errors");
    assert!(
        dom.contains("Findings")
            && dom.contains("Threshold policies")
            && dom.contains("Run record")
    );
}

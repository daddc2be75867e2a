//! Past one machine: sharded embedding joined by `embed-merge`, comparison shards started from an
//! embed folder (`run --embeddings`), shards that are no-ops when finished and complete when rerun
//! after a kill — every case byte-identical to the single-machine run.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};

use common::*;

/// `facebias embed` of `manifest` into `out` (optionally one shard), with the cache under `cache`.
fn embed(cache: &Path, manifest: &Path, out: &Path, shard: Option<&str>) -> String {
    let mut c = facebias(cache);
    c.args(["embed", "--quiet", "--dataset"])
        .arg(manifest)
        .arg("--out")
        .arg(out);
    if let Some(s) = shard {
        c.args(["--shard", s, "--skip-finished"]);
    }
    let o = c.assert().success();
    String::from_utf8_lossy(&o.get_output().stdout).to_string()
}

fn same_files(a: &Path, b: &Path, files: &[&str]) {
    for f in files {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// Embeds `manifest` in `n` shards (each with its own cold cache) and joins them into `dir/joined`.
fn sharded_embed(dir: &Path, manifest: &Path, n: usize) -> (Vec<PathBuf>, PathBuf) {
    let shards: Vec<PathBuf> = (0..n).map(|k| dir.join(format!("embed{k}"))).collect();
    for (k, s) in shards.iter().enumerate() {
        let cache = dir.join(format!("cache{k}"));
        let said = embed(&cache, manifest, s, Some(&format!("{k}/{n}")));
        assert!(
            said.contains(&format!("embedding shard {k} of {n}")),
            "{said}"
        );
    }
    let joined = dir.join("joined");
    facebias(dir)
        .arg("embed-merge")
        .args(&shards)
        .arg("--out")
        .arg(&joined)
        .assert()
        .success();
    (shards, joined)
}

#[test]
fn sharded_embed_joined_equals_the_unsharded_embed() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 2, 3); // 48 images
    let single = dir.path().join("single");
    embed(&dir.path().join("cache-single"), &manifest, &single, None);
    let (shards, joined) = sharded_embed(dir.path(), &manifest, 3);
    same_files(&single, &joined, &["samples.csv", "embeddings.npy"]);
    // Each shard holds its contiguous third of the manifest (16 rows, in order).
    let rows: Vec<usize> = shards
        .iter()
        .map(|s| read_csv(&s.join("samples.csv")).len())
        .collect();
    assert_eq!(rows, vec![16, 16, 16]);
    let first = read_csv(&shards[1].join("samples.csv"))[0]["path"].clone();
    assert_eq!(read_csv(&single.join("samples.csv"))[16]["path"], first);
    // A rerun of a finished shard is a no-op: it says so and leaves the folder as it was.
    let before = std::fs::metadata(shards[1].join("run.json"))
        .unwrap()
        .modified()
        .unwrap();
    let said = embed(
        &dir.path().join("cache1"),
        &manifest,
        &shards[1],
        Some("1/3"),
    );
    assert!(said.contains("nothing to do"), "{said}");
    assert_eq!(
        std::fs::metadata(shards[1].join("run.json"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    // Missing, doubled and foreign shards are refused, naming the problem.
    let fail = |args: &[&Path], want: &str| {
        let o = facebias(dir.path())
            .arg("embed-merge")
            .args(args)
            .arg("--out")
            .arg(dir.path().join("bad"))
            .assert()
            .failure();
        let err = String::from_utf8_lossy(&o.get_output().stderr).to_string();
        assert!(err.contains(want), "{err}");
    };
    fail(
        &[&shards[0], &shards[2]],
        "embedding shards [1] of 3 are missing",
    );
    fail(&[&shards[0], &shards[1], &shards[1]], "given twice");
    fail(
        &[&shards[0], &shards[1], &single],
        "is embedding shard 0 of 1",
    );
    // The joined folder cannot be read as a shard-less run input by mistake: it is a whole embed.
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(joined.join("run.json")).unwrap()).unwrap();
    assert_eq!(rec["shard"], serde_json::json!([0, 1]));
    assert_eq!(rec["images"], 48);
}

/// A manifest of the BFW subset whose images are copies in `dir/images` (relative paths), so that
/// the test can take the images away.
fn private_subset(dir: &Path, subjects_per_group: usize, images_per_subject: usize) -> PathBuf {
    let src = bfw_subset(
        &std::fs::canonicalize(dir).unwrap(),
        subjects_per_group,
        images_per_subject,
    );
    let text = std::fs::read_to_string(&src).unwrap();
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push(line.to_string());
            continue;
        }
        let (path, rest) = line.split_once(',').unwrap();
        let name = format!(
            "{i:04}-{}",
            Path::new(path).file_name().unwrap().to_string_lossy()
        );
        std::fs::copy(path, images.join(&name)).unwrap();
        out.push(format!("images/{name},{rest}"));
    }
    let manifest = dir.join("private.csv");
    std::fs::write(&manifest, out.join("\n") + "\n").unwrap();
    manifest
}

/// `facebias run --bootstrap 0` of `manifest` into `out`, with `extra` flags.
fn run(dir: &Path, manifest: &Path, out: &Path, extra: &[&str]) -> String {
    let o = facebias(dir)
        .args(["run", "--quiet", "--bootstrap", "0", "--dataset"])
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .args(extra)
        .assert()
        .success();
    String::from_utf8_lossy(&o.get_output().stdout).to_string()
}

/// run.json without the run-dependent `execution` block.
#[test]
fn comparison_shards_from_an_embed_folder_equal_a_run_from_images() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = private_subset(dir.path(), 2, 3); // 48 images
    let single = dir.path().join("single");
    run(dir.path(), &manifest, &single, &[]);
    let (_, joined) = sharded_embed(dir.path(), &manifest, 3);
    // Unsharded from the embed folder: the whole report, top impostors included (their contact
    // sheet is drawn from the images, so this one runs while they are there).
    let whole = dir.path().join("whole");
    let emb = joined.to_str().unwrap();
    run(dir.path(), &manifest, &whole, &["--embeddings", emb]);
    same_files(&single, &whole, &MERGED_REPORT);
    same_files(
        &single,
        &whole,
        &[
            "summary.md",
            "top_impostors.csv",
            "worst_genuine.csv",
            "top_impostors.png",
        ],
    );
    // From here on no image is there to read, and no model either: the shards and the unsharded run
    // from the embed folder must not need them.
    std::fs::remove_dir_all(dir.path().join("images")).unwrap();
    let no_model = [
        "--models-dir",
        "/nonexistent-models",
        "--ort-lib",
        "/nonexistent/libonnxruntime.so",
    ];
    let mut flags = vec!["--embeddings", emb];
    flags.extend(no_model);
    let shards: Vec<PathBuf> = (0..4).map(|k| dir.path().join(format!("cmp{k}"))).collect();
    for (k, s) in shards.iter().enumerate() {
        let shard = format!("{k}/4");
        let mut f = flags.clone();
        f.extend(["--shard", &shard, "--skip-finished"]);
        run(dir.path(), &manifest, s, &f);
        assert!(
            !s.join("embeddings.npy").exists(),
            "a shard keeps no copy of the matrix"
        );
        // Rerun of a finished shard: a no-op that says so.
        let said = run(dir.path(), &manifest, s, &f);
        assert!(said.contains("nothing to do"), "{said}");
    }
    let merged = dir.path().join("merged");
    facebias(dir.path())
        .arg("merge")
        .args(&shards)
        .args(["--bootstrap", "0", "--out"])
        .arg(&merged)
        .assert()
        .success();
    same_files(&single, &merged, &MERGED_REPORT);
    assert_eq!(
        record_without_execution(&single),
        record_without_execution(&merged)
    );
    // An embed folder of other samples is refused, naming the row.
    let other = dir.path().join("other.csv");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(3, 4);
    std::fs::write(&other, lines.join("\n") + "\n").unwrap();
    let o = facebias(dir.path())
        .args(["run", "--quiet", "--dataset"])
        .arg(&other)
        .args(["--out"])
        .arg(dir.path().join("bad"))
        .args(&flags)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&o.get_output().stderr).to_string();
    assert!(
        err.contains("samples.csv row 4") && err.contains("another dataset"),
        "{err}"
    );
}

/// The number of whole records in the one embedding cache file under `cache` (10-byte header).
fn cached_records(cache: &Path, record: u64) -> u64 {
    let dir = cache.join("facebias");
    std::fs::read_dir(dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "fbec3"))
        .map(|e| (e.metadata().unwrap().len().saturating_sub(10)) / record)
        .sum()
}

#[test]
fn a_killed_embedding_shard_rerun_completes_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 3, 6); // 144 images, 72 a shard
    let single = dir.path().join("single");
    let single_cache = dir.path().join("cache-single");
    embed(&single_cache, &manifest, &single, None);
    // Record size of the cache: every one of the 144 images has a face in this subset.
    let record = {
        let f = std::fs::read_dir(single_cache.join("facebias"))
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.path().extension().is_some_and(|x| x == "fbec3"))
            .unwrap();
        (f.metadata().unwrap().len() - 10) / 144
    };
    let shard0 = dir.path().join("embed0");
    embed(&dir.path().join("cache0"), &manifest, &shard0, Some("0/2"));
    // Shard 1 on one worker, killed once a quarter of its images are cached.
    let cache1 = dir.path().join("cache1");
    let shard1 = dir.path().join("embed1");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_facebias"))
        .env("XDG_CACHE_HOME", &cache1)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "embed",
            "--quiet",
            "--threads",
            "1",
            "--batch-size",
            "4",
            "--shard",
            "1/2",
            "--skip-finished",
            "--dataset",
        ])
        .arg(&manifest)
        .arg("--out")
        .arg(&shard1)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while cached_records(&cache1, record) < 18 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the shard ended before a quarter of its images were cached"
        );
        assert!(start.elapsed().as_secs() < 300, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    assert!(
        !shard1.join("run.json").exists(),
        "a killed shard must leave no finished folder"
    );
    let done = cached_records(&cache1, record);
    assert!(done < 72, "{done} of 72 cached before the kill");
    // The rerun (the same command, as a requeued Slurm job runs it) resumes from the cache.
    let said = embed(&cache1, &manifest, &shard1, Some("1/2"));
    assert!(!said.contains("nothing to do"), "{said}");
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shard1.join("run.json")).unwrap()).unwrap();
    assert_eq!(rec["cache_hits"].as_u64().unwrap(), done, "{rec}");
    visible_note!("killed embedding shard: {done} of 72 images cached before the kill, {} reused by the rerun", rec["cache_hits"]);
    let joined = dir.path().join("joined");
    facebias(dir.path())
        .arg("embed-merge")
        .args([&shard0, &shard1])
        .arg("--out")
        .arg(&joined)
        .assert()
        .success();
    same_files(&single, &joined, &["samples.csv", "embeddings.npy"]);
    // The hidden staging folder of the killed job is gone (the rerun cleans dead jobs' leftovers).
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn slurm_plan_writes_dependent_idempotent_jobs_and_status_counts_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 1, 2);
    let plan = dir.path().join("plan");
    let args = |c: &mut assert_cmd::Command| {
        c.args([
            "slurm",
            "plan",
            "--embed-shards",
            "3",
            "--compare-shards",
            "4",
        ])
        .args(["--partition", "gpu", "--time", "02:00:00", "--gpus", "1"])
        .args(["--target-fmr", "0.001", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&plan);
    };
    let mut c = facebias(dir.path());
    args(&mut c);
    c.assert().success();
    let read = |f: &str| std::fs::read_to_string(plan.join("slurm").join(f)).unwrap();
    let embed = read("embed.sbatch");
    for want in [
        "#SBATCH --array=0-2",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=02:00:00",
        "#SBATCH --gpus=1",
        "#SBATCH --requeue",
        "--skip-finished",
        "--shard \"$k/3\"",
        "--device cuda",
    ] {
        assert!(embed.contains(want), "embed.sbatch lacks {want}:\n{embed}");
    }
    let compare = read("compare.sbatch");
    for want in [
        "#SBATCH --array=0-3",
        "--embeddings",
        "--shard \"$k/4\"",
        "--skip-finished",
        "--target-fmr 0.001",
    ] {
        assert!(
            compare.contains(want),
            "compare.sbatch lacks {want}:\n{compare}"
        );
    }
    assert!(read("merge.sbatch").contains("compare/shard-3"));
    let submit = read("submit.sh");
    let order: Vec<usize> = [
        "embed.sbatch",
        "afterok:$embed",
        "afterok:$join",
        "afterok:$compare",
    ]
    .iter()
    .map(|w| {
        submit
            .find(w)
            .unwrap_or_else(|| panic!("submit.sh lacks {w}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{submit}");
    // Status: nine parts, all missing, exit 1.
    let o = facebias(dir.path())
        .args(["slurm", "status"])
        .arg(&plan)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&o.get_output().stderr).to_string();
    assert!(err.contains("9 of 9 parts missing"), "{err}");
    // Planning again over the plan is allowed; over a folder with someone else's file it is refused.
    let mut c = facebias(dir.path());
    args(&mut c);
    c.assert().success();
    std::fs::write(plan.join("slurm/notes.txt"), "mine").unwrap();
    let mut c = facebias(dir.path());
    args(&mut c);
    let o = c.assert().failure();
    assert!(String::from_utf8_lossy(&o.get_output().stderr).contains("notes.txt"));
    assert_eq!(
        std::fs::read_to_string(plan.join("slurm/notes.txt")).unwrap(),
        "mine"
    );
}

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

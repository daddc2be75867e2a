//! Interrupted runs resume from the embedding cache, concurrent runs share it safely, and damaged
//! cache records are recomputed, never used: every case ends byte-identical to an uninterrupted run.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The files of a report whose bytes must not depend on how the run got there.
const FILES: [&str; 7] = [
    "samples.csv",
    "embeddings.npy",
    "groups.csv",
    "cross_fmr.csv",
    "equity.csv",
    "policies.csv",
    "summary.md",
];

fn spawn_run(cache: &Path, manifest: &Path, out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_facebias"))
        .env("XDG_CACHE_HOME", cache)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--dataset"])
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn facebias")
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "run failed: {err}");
    err
}

/// The one cache file under `cache`.
fn cache_file(cache: &Path) -> Option<PathBuf> {
    let dir = cache.join("facebias");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "fbec3"))
        .collect();
    assert!(files.len() <= 1, "{files:?}");
    files.pop()
}

fn execution(out: &Path) -> serde_json::Value {
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    run["execution"].clone()
}

fn assert_same_report(a: &Path, b: &Path) {
    for f in FILES {
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

/// A reference run with a cache of its own; returns its output folder and the cache's record size.
fn reference(dir: &Path, manifest: &Path, images: u64) -> (PathBuf, u64) {
    let cache = dir.join("ref-cache");
    let out = dir.join("reference");
    finish(spawn_run(&cache, manifest, &out));
    assert_eq!(execution(&out)["cache_hits"], 0);
    let len = std::fs::metadata(cache_file(&cache).unwrap())
        .unwrap()
        .len();
    // Header `FBEC3\n` + u32 dim = 10 bytes, then one fixed-size record per image (all have faces).
    assert_eq!((len - 10) % images, 0, "cache of {len} bytes");
    (out, (len - 10) / images)
}

/// Starts a run and interrupts it with `signal` once the cache holds at least half the images.
/// Returns the number of whole records the cache held when the run was stopped.
fn interrupt_half_way(
    cache: &Path,
    manifest: &Path,
    out: &Path,
    images: u64,
    record: u64,
    signal: &str,
) -> u64 {
    let mut child = spawn_run(cache, manifest, out);
    let start = Instant::now();
    loop {
        let len = cache_file(cache)
            .and_then(|f| std::fs::metadata(f).ok())
            .map_or(0, |m| m.len());
        if len >= 10 + record * images / 2 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before half of its images were cached"
        );
        assert!(start.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let ended = child.wait().unwrap();
    assert!(
        !ended.success(),
        "the interrupted run must not report success"
    );
    assert!(
        !out.join("run.json").exists(),
        "an interrupted run must leave no report"
    );
    let len = std::fs::metadata(cache_file(cache).unwrap()).unwrap().len();
    (len - 10) / record
}

fn resume_after(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 3, 6);
    let images = 8 * 3 * 6; // 8 groups × 3 subjects × 6 images
    let (reference, record) = reference(dir.path(), &manifest, images);
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let done = interrupt_half_way(&cache, &manifest, &out, images, record, signal);
    assert!(
        done >= images / 2 && done < images,
        "{done} of {images} cached"
    );
    // The rerun into the same folder reuses every finished image and embeds only the rest.
    let err = finish(spawn_run(&cache, &manifest, &out));
    let exec = execution(&out);
    assert_eq!(exec["cache_hits"].as_u64().unwrap(), done, "{err}");
    assert_eq!(exec["cache_damaged_records"], 0);
    visible_note!(
        "resume after {signal} at half-way: {done} of {images} images reused, {} re-embedded",
        images - done
    );
    assert_same_report(&reference, &out);
    // The dead run's partial folder was cleaned by the rerun into the same parent.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_run_killed_half_way_resumes_and_ends_byte_identical() {
    resume_after("-KILL");
}

#[test]
fn a_run_interrupted_half_way_resumes_and_ends_byte_identical() {
    resume_after("-INT");
}

#[test]
fn concurrent_runs_share_a_cache_and_damaged_records_are_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = bfw_subset(dir.path(), 2, 4);
    let images = 8 * 2 * 4;
    let (reference, record) = reference(dir.path(), &manifest, images);
    // Two runs at once on one cold cache: both finish and agree with the reference, and the cache
    // holds every image once or twice, in whole records only.
    let cache = dir.path().join("cache");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let (ra, rb) = (
        spawn_run(&cache, &manifest, &a),
        spawn_run(&cache, &manifest, &b),
    );
    finish(ra);
    finish(rb);
    assert_same_report(&reference, &a);
    assert_same_report(&reference, &b);
    let file = cache_file(&cache).unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    assert_eq!((len - 10) % record, 0, "torn records in a shared cache");
    let records = (len - 10) / record;
    assert!(records >= images && records <= 2 * images, "{records}");
    // Flip one byte in each of three records (an embedding value, a status byte, a checksum), and
    // write NaN over a fourth record's embedding: the next run ignores all four and embeds them again.
    // First keep one copy of every image (the key is the record's first 32 bytes), so that a damaged
    // record is not found again in a second copy.
    let all = std::fs::read(&file).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut bytes = all[..10].to_vec();
    for r in all[10..].chunks_exact(record as usize) {
        if seen.insert(r[..32].to_vec()) {
            bytes.extend_from_slice(r);
        }
    }
    assert_eq!(seen.len() as u64, images);
    let at = |i: u64, off: u64| (10 + i * record + off) as usize;
    bytes[at(0, 33 + 60 + 8)] ^= 0x01;
    bytes[at(1, 32)] ^= 0x01;
    bytes[at(2, record - 1)] ^= 0x80;
    bytes[at(3, 33 + 60)..at(3, 33 + 64)].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&file, bytes).unwrap();
    let c = dir.path().join("c");
    let err = finish(spawn_run(&cache, &manifest, &c));
    let exec = execution(&c);
    assert_eq!(exec["cache_damaged_records"], 4, "{err}");
    assert_eq!(exec["cache_hits"].as_u64().unwrap(), images - 4);
    assert!(err.contains("4 damaged records"), "{err}");
    assert_same_report(&reference, &c);
}

//! Helpers shared by the integration tests: paths into ../shared, small manifests, running the CLI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Writes to the process's stderr directly: libtest captures `eprintln!` of passing tests, so a skip
/// would otherwise be invisible in the suite's output.
#[allow(unused_macros)] // used by some of the test binaries that include this module
macro_rules! visible_note {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

use assert_cmd::Command;

/// `../shared` beside the project.
pub fn shared() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    assert!(
        p.is_dir(),
        "the tests need ../shared (models and datasets) beside the project: {}",
        p.display()
    );
    p
}

/// The facebias binary, with a private cache folder so tests never share state.
pub fn facebias(cache: &Path) -> Command {
    let mut c = Command::cargo_bin("facebias").expect("binary");
    c.env("XDG_CACHE_HOME", cache)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Writes a manifest of the BFW rows of the first `subjects_per_group` subjects of every group,
/// `images_per_subject` images each, with absolute paths.
pub fn bfw_subset(dir: &Path, subjects_per_group: usize, images_per_subject: usize) -> PathBuf {
    let bfw = shared().join("datasets/bfw");
    let text = std::fs::read_to_string(bfw.join("manifest.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut out = vec![header.to_string()];
    let mut subjects: Vec<(String, String)> = Vec::new(); // (group, subject)
    let mut per_subject = std::collections::HashMap::<String, usize>::new();
    for line in lines {
        let cols: Vec<&str> = line.split(',').collect();
        let group = format!("{}|{}", cols[2], cols[3]);
        let subject = cols[1].to_string();
        if !subjects.iter().any(|(_, s)| *s == subject) {
            if subjects.iter().filter(|(g, _)| *g == group).count() >= subjects_per_group {
                continue;
            }
            subjects.push((group, subject.clone()));
        }
        let n = per_subject.entry(subject).or_default();
        if *n < images_per_subject {
            *n += 1;
            out.push(format!(
                "{},{}",
                bfw.join(cols[0]).display(),
                cols[1..].join(",")
            ));
        }
    }
    let path = dir.join("manifest.csv");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

/// Writes a manifest of the 31 test faces (subject = name before the first `-` or `_`, lowercased).
pub fn testfaces(dir: &Path) -> PathBuf {
    let tf = shared().join("models/testfaces");
    let mut names: Vec<String> = std::fs::read_dir(&tf)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    let mut out = vec!["path,subject".to_string()];
    for n in names {
        let subject = n.split(['-', '_']).next().unwrap().to_lowercase();
        out.push(format!("{},{}", tf.join(&n).display(), subject));
    }
    let path = dir.join("manifest.csv");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

/// Reads a CSV into header-keyed rows.
pub fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            headers
                .iter()
                .zip(rec.unwrap().iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// A run's embeddings (`embeddings.npy` of report folder `out`) with the `sex|race` group cell and the
/// subject of each row (numbered by first appearance in samples.csv): (embeddings, dim, cells,
/// subjects).
pub fn run_embeddings(out: &Path) -> (Vec<f32>, usize, Vec<u16>, Vec<u32>) {
    let (emb, rows, dim) =
        facebias::report::read_npy_f32(&std::fs::read(out.join("embeddings.npy")).unwrap())
            .unwrap();
    let samples = read_csv(&out.join("samples.csv"));
    let mut groups: Vec<String> = Vec::new();
    let mut subjects: Vec<String> = Vec::new();
    let (mut cell, mut subject) = (Vec::new(), Vec::new());
    for s in samples.iter().filter(|s| !s["embedding_row"].is_empty()) {
        let g = format!("{}|{}", s["sex"], s["race"]);
        if !groups.contains(&g) {
            groups.push(g.clone());
        }
        if !subjects.contains(&s["subject"]) {
            subjects.push(s["subject"].clone());
        }
        cell.push(groups.iter().position(|x| *x == g).unwrap() as u16);
        subject.push(subjects.iter().position(|x| *x == s["subject"]).unwrap() as u32);
    }
    assert_eq!(cell.len(), rows);
    (emb, dim, cell, subject)
}

/// The DOM of `page` after headless Chromium loaded it (Debian's `chromium`, installed by
/// .ci/setup), with its own profile folder.
pub fn page_dom(page: &Path, profile: &Path) -> String {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a headless Chromium (Debian package `chromium`, installed by .ci/setup)");
    let dom = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&dom.stdout).to_string()
}

/// Asserts that a page loaded in Chromium decoded all the images it says it holds (`expected`
/// from its `data-images-expected`, which is returned) and raised no error.
pub fn assert_page_loads(page: &Path, profile: &Path) -> usize {
    let html = std::fs::read_to_string(page).unwrap();
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
    let dom = page_dom(page, profile);
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
    expected
}

/// The files a merged report shares with the single-machine run, byte for byte (a merged run has no
/// top-pairs section: `merge` keeps only histograms, so summary.md and top_impostors.* are the
/// unsharded run's alone).
pub const MERGED_REPORT: [&str; 7] = [
    "samples.csv",
    "embeddings.npy",
    "comparisons.bin",
    "groups.csv",
    "cross_fmr.csv",
    "equity.csv",
    "policies.csv",
];

/// A report's run.json without its `execution` block (timings, shard, host), for comparing runs.
pub fn record_without_execution(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("execution");
    v
}

//! Bounded mutation fuzzing of every reader of untrusted bytes, driven by proptest: the manifest
//! parser, the image intake path (header sniffing + decode with limits), `comparisons.bin`,
//! `bootstrap.bin` and the embedding cache. Each target starts from real seeds (rows of the shared
//! datasets' manifests, a real BFW JPEG and a PNG made from it, the report and cache files of a
//! 32-image BFW run in `tests/fuzz/corpus/`), applies random byte flips, overwrites with boundary
//! integers, truncations, insertions, deletions and duplications, and checks that the reader neither
//! panics nor allocates without bound, and that whatever it accepts is consistent.
//!
//! The suite runs a fixed seed and a few seconds of cases per target. A longer run:
//! `FACEBIAS_FUZZ_CASES=20000 FACEBIAS_FUZZ_SEED=7 cargo test --release --test fuzz -- --nocapture`.
//! Inputs that once failed are kept in `tests/fuzz/regressions/` and replayed first.

#[macro_use]
mod common;

use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use facebias::embed::cache::{self, Cached};
use facebias::metrics::bootstrap::BootstrapData;
use facebias::metrics::store;

/// One edit of a seed. Positions are taken modulo the current length, so every edit applies.
#[derive(Debug, Clone)]
enum Op {
    Flip(usize, u8),
    /// Writes an integer of `width` bytes (1, 2, 4 or 8), little-endian: lengths and counts.
    Int(usize, u64, usize),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    /// Copies `len` bytes from one place to another (repeated records, repeated rows).
    Duplicate(usize, usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let boundary = prop_oneof![
        Just(0u64),
        Just(1),
        Just(0x7f),
        Just(0xff),
        Just(0xffff),
        Just(0x7fff_ffff),
        Just(0xffff_ffff),
        Just(u64::MAX),
        Just(1 << 40),
        any::<u64>(),
    ];
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(p, x)| Op::Flip(p, x)),
        2 => (any::<usize>(), boundary, prop_oneof![Just(1usize), Just(2), Just(4), Just(8)])
            .prop_map(|(p, v, w)| Op::Int(p, v, w)),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Op::Insert(p, b)),
        1 => (any::<usize>(), 1usize..64).prop_map(|(p, n)| Op::Remove(p, n)),
        1 => (any::<usize>(), any::<usize>(), 1usize..256)
            .prop_map(|(a, b, n)| Op::Duplicate(a, b, n)),
    ]
}

fn mutate(seed: &[u8], ops: &[Op]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for op in ops {
        let len = b.len().max(1);
        match op {
            Op::Flip(p, x) if !b.is_empty() => b[p % len] ^= x,
            Op::Int(p, v, w) if b.len() >= *w => {
                let at = p % (b.len() - w + 1);
                b[at..at + w].copy_from_slice(&v.to_le_bytes()[..*w]);
            }
            Op::Truncate(p) => b.truncate(p % (b.len() + 1)),
            Op::Insert(p, bytes) => {
                let at = p % (b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Op::Remove(p, n) if !b.is_empty() => {
                let at = p % b.len();
                b.drain(at..(at + n).min(b.len()));
            }
            Op::Duplicate(from, to, n) if !b.is_empty() => {
                let from = from % b.len();
                let piece = b[from..(from + n).min(b.len())].to_vec();
                let to = to % (b.len() + 1);
                b.splice(to..to, piece);
            }
            _ => {}
        }
    }
    b
}

/// Cases per target in this run: `FACEBIAS_FUZZ_CASES`, else the suite's bounded `default`.
fn cases(default: u32) -> u32 {
    std::env::var("FACEBIAS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `check` on mutants of the seeds (and first on every committed regression input of `target`),
/// then notes the count and the time taken.
fn fuzz(
    target: &str,
    seeds: Vec<Vec<u8>>,
    default_cases: u32,
    check: impl Fn(&[u8]) -> Result<bool, String>,
) {
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/regressions")
        .join(target);
    let mut replayed = 0;
    if let Ok(dir) = std::fs::read_dir(&regressions) {
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            if let Err(e) = check(&bytes) {
                panic!("{target}: regression {} fails again: {e}", f.display());
            }
            replayed += 1;
        }
    }
    let seed = std::env::var("FACEBIAS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261204);
    let n = cases(default_cases);
    let mut runner = TestRunner::new(Config {
        cases: n,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..seeds.len(), prop::collection::vec(op(), 1..6));
    let start = Instant::now();
    let (ran, accepted) = (std::cell::Cell::new(0u64), std::cell::Cell::new(0u64));
    let result = runner.run(&strategy, |(s, ops)| {
        ran.set(ran.get() + 1);
        let input = mutate(&seeds[s], &ops);
        let ok = check(&input).map_err(TestCaseError::fail)?;
        accepted.set(accepted.get() + ok as u64);
        Ok(())
    });
    if let Err(e) = result {
        panic!(
            "{target}: {e}\n(save the failing input under {} to keep it as a regression)",
            regressions.display()
        );
    }
    visible_note!(
        "fuzz {target}: {} mutants of {} seeds (+{replayed} regressions) in {:.2} s, {} accepted, the rest refused with an error; no failure (seed {seed})",
        ran.get(),
        seeds.len(),
        start.elapsed().as_secs_f64(),
        accepted.get()
    );
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fuzz/corpus")
            .join(name),
    )
    .unwrap()
}

/// The process may not grow its data segment past 2 GiB: a reader that trusts a length field and
/// allocates for it aborts the test binary instead of filling the machine.
fn limit_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let lim = libc::rlimit {
            rlim_cur: 2 << 30,
            rlim_max: 2 << 30,
        };
        // SAFETY: plain system call on a valid struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_DATA, &lim) }, 0);
    });
}

#[test]
fn fuzz_manifest_parser() {
    limit_memory();
    let shared = common::shared().join("datasets");
    let mut seeds: Vec<Vec<u8>> = ["bfw", "utkface", "lfw"]
        .iter()
        .map(|d| {
            let text = std::fs::read_to_string(shared.join(d).join("manifest.csv")).unwrap();
            (text.lines().take(40).collect::<Vec<_>>().join("\n") + "\n").into_bytes()
        })
        .collect();
    seeds.push(b"path,subject,sex\r\n\"a,b.jpg\",s1,\"f\"\"m\"\r\nb.jpg,s1,\r\n".to_vec());
    fuzz("manifest", seeds, 3000, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let Ok(m) = facebias::manifest::parse(Path::new("/fuzz/manifest.csv"), &text, None, false)
        else {
            return Ok(false);
        };
        // CSV ends a record at \r, \n or \r\n.
        let rows = text.split(['\r', '\n']).count();
        if m.samples.len() > rows {
            return Err(format!("{} samples from {rows} lines", m.samples.len()));
        }
        for s in &m.samples {
            if s.attributes.len() != m.attributes.len() {
                return Err(format!("{s:?} has not one value per attribute"));
            }
            if s.subject.is_empty() || s.rel_path.is_empty() {
                return Err(format!("{s:?} accepted without subject or path"));
            }
            if s.attributes.iter().any(|v| v.contains('|')) {
                return Err(format!("{s:?}: a label holds the group separator"));
            }
            let mut fields = s.attributes.iter().chain([&s.subject, &s.rel_path]);
            if fields.any(|v| v.chars().any(char::is_control)) {
                return Err(format!("{s:?}: a control character was accepted"));
            }
        }
        let mut names = m.attributes.clone();
        names.sort();
        names.dedup();
        if names.len() != m.attributes.len() {
            return Err(format!("duplicate attribute columns {:?}", m.attributes));
        }
        Ok(true)
    });
}

#[test]
fn fuzz_image_intake() {
    limit_memory();
    let jpeg_path = common::shared().join("datasets/bfw/images/asian_females/n000009/0010_01.jpg");
    let jpeg = std::fs::read(&jpeg_path).unwrap();
    let img = image::load_from_memory(&jpeg).unwrap();
    let mut png = Vec::new();
    img.resize(48, 48, image::imageops::FilterType::Triangle)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    const LIMIT: u64 = 4_000_000;
    fuzz(
        "image",
        vec![jpeg, png],
        400,
        |bytes| match facebias::preprocess::decode_limited(bytes, LIMIT) {
            Ok(img) => {
                let (w, h) = img.dimensions();
                if (w as u64) * (h as u64) > LIMIT || w < 8 || h < 8 {
                    return Err(format!("accepted a {w}x{h} image"));
                }
                if img.as_raw().len() != (w * h * 3) as usize {
                    return Err("pixel buffer does not match the dimensions".into());
                }
                Ok(true)
            }
            Err(_) => Ok(false),
        },
    );
}

/// `comparisons.bin` both ways: a mutated file must be refused (its checksum no longer matches), and
/// a mutated body sealed again must parse to a consistent result or an error, never a panic.
#[test]
fn fuzz_comparisons_reader() {
    limit_memory();
    let seed = corpus("comparisons.bin");
    let original = store::from_bytes(&seed).expect("the corpus file parses");
    let body = seed[..seed.len() - 32].to_vec();
    fuzz(
        "comparisons-sealed",
        vec![seed.clone()],
        1500,
        |bytes| match store::from_bytes(bytes) {
            Ok(_) if bytes != seed.as_slice() => Err("a changed file was accepted".into()),
            r => Ok(r.is_ok()),
        },
    );
    fuzz("comparisons-body", vec![body], 3000, |bytes| {
        let Ok((header, c)) = store::from_bytes(&store::seal(bytes.to_vec())) else {
            return Ok(false);
        };
        let k = header.combos.len();
        let consistent = c.images.len() == k
            && c.fte.len() == k
            && c.mated.len() == k
            && c.mated_total.len() == k
            && c.nonmated.cells.len() == k * (k + 1) / 2
            && c.nonmated_total.len() == k * (k + 1) / 2;
        if !consistent {
            return Err(format!("inconsistent shapes for {k} combos"));
        }
        Ok(true)
    });
    assert_eq!(original.0.combos.len(), 8, "sex × race of the corpus run");
}

#[test]
fn fuzz_bootstrap_reader() {
    limit_memory();
    let seed = corpus("bootstrap.bin");
    BootstrapData::from_bytes(&seed).expect("the corpus file parses");
    let body = seed[..seed.len() - 32].to_vec();
    fuzz(
        "bootstrap-sealed",
        vec![seed.clone()],
        1500,
        |bytes| match BootstrapData::from_bytes(bytes) {
            Ok(_) if bytes != seed.as_slice() => Err("a changed file was accepted".into()),
            r => Ok(r.is_ok()),
        },
    );
    fuzz("bootstrap-body", vec![body], 3000, |bytes| {
        let Ok(d) = BootstrapData::from_bytes(&store::seal(bytes.to_vec())) else {
            return Ok(false);
        };
        let n = d.subject_combo.len();
        if d.subject_images.len() != n || d.mated_bins.len() != n {
            return Err(format!("{n} subjects with unequal per-subject arrays"));
        }
        // What was accepted is what the file says: writing it again gives the same bytes (an
        // explicit count of 0 excluded pairs is the one form the writer leaves out).
        let again = d.to_bytes();
        let zero_excluded = bytes.len() >= 8 && bytes[bytes.len() - 8..] == [0; 8];
        if again != store::seal(bytes.to_vec())
            && !(zero_excluded && again == store::seal(bytes[..bytes.len() - 8].to_vec()))
        {
            return Err("accepted bytes that do not round-trip".into());
        }
        Ok(true)
    });
}

/// The embedding cache: whatever the damage, every record returned is one the intact file holds
/// (same image, same values: a checksum cannot be forged by chance), with a finite unit embedding.
#[test]
fn fuzz_cache_reader() {
    limit_memory();
    let seed = corpus("cache.fbec3");
    let dim = 128;
    let intact = cache::parse(&seed, dim).expect("the corpus cache parses");
    assert_eq!((intact.entries.len(), intact.damaged), (32, 0));
    let record = cache::record_len(dim);
    fuzz("cache", vec![seed], 3000, |bytes| {
        let Ok(p) = cache::parse(bytes, dim) else {
            return Ok(false);
        };
        let whole = (bytes.len() - 10) / record;
        if p.entries.len() + p.damaged > whole || p.whole_len != 10 + whole * record {
            return Err(format!(
                "{} + {} records from {whole}",
                p.entries.len(),
                p.damaged
            ));
        }
        for (hash, c) in &p.entries {
            if intact.entries.get(hash) != Some(c) {
                return Err(format!(
                    "a record not in the intact file: {:02x?}",
                    &hash[..4]
                ));
            }
            if let Cached::Embedding(_, v) = c {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if !(norm - 1.0).abs().lt(&1e-3) {
                    return Err(format!("embedding of norm {norm}"));
                }
            }
        }
        Ok(p.damaged == 0)
    });
}

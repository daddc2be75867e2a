//! The sanity set of an audit and the yardstick it is measured with.
//!
//! A sanity set is a labelled set of face photos, detected once; any spec can then be tried on it by
//! re-cropping and re-embedding. The committed sets (`--sanity lfw`, `--sanity bfw`: 600 images of 200
//! subjects each, `datasets/sanity/`) are taken from a dataset other than the one audited, so a spec
//! is never tuned on the images it is then measured on.
//!
//! [`Separation`] measures a spec on all pairs of the set: ranking AUC, d′, best balanced accuracy,
//! and — what the gate uses, because a wrong preprocessing shows at low FMR first — the FNMR at the
//! threshold where FMR ≤ [`GATE_FMR`] on the set's own non-mated pairs.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::Serialize;

use super::spec::ModelSpec;
use super::{l2_normalize, Embedder};
use crate::manifest::Sample;
use crate::preprocess::decode;
use crate::preprocess::detect::{Detector, DetectorConfig, Face};
use crate::preprocess::tensor::write_tensor;
use crate::runtime::Runtime;

/// The FMR of the gate's operating point.
pub const GATE_FMR: f64 = 1e-3;

/// The committed sanity sets: name, list (paths relative to the dataset folder), dataset folder name.
pub const COMMITTED: [(&str, &str); 2] = [
    ("lfw", include_str!("../../datasets/sanity/lfw.csv")),
    ("bfw", include_str!("../../datasets/sanity/bfw.csv")),
];

/// How well one spec separates mated from non-mated pairs on the sanity set.
#[derive(Debug, Clone, Serialize)]
pub struct Separation {
    /// Ranking AUC: P(mated score > non-mated score), ties counting half.
    pub auc: f64,
    /// d′ between the two score distributions.
    pub d_prime: f64,
    /// Best balanced accuracy ((TPR + TNR)/2) over all thresholds.
    pub accuracy: f64,
    /// The threshold achieving it.
    pub threshold: f64,
    /// FNMR at the lowest threshold with FMR ≤ [`GATE_FMR`] on the set's non-mated pairs.
    pub fnmr_at_gate_fmr: f64,
    /// Non-mated pairs at or above that threshold (at most ⌊GATE_FMR × non-mated pairs⌋).
    pub gate_false_matches: usize,
    /// Mean mated score.
    pub mated_mean: f64,
    /// Mean non-mated score.
    pub nonmated_mean: f64,
    /// Mated pairs.
    pub mated_pairs: usize,
    /// Non-mated pairs.
    pub nonmated_pairs: usize,
    /// The 1st and 99th percentile of all pair scores (mated and non-mated): nearly equal when the
    /// embeddings barely depend on the input.
    pub score_p1_p99: [f64; 2],
}

/// Below this spread (99th − 1st percentile of all pair scores on the sanity set) a model's
/// embeddings barely depend on the input. A working face model spreads them over 0.5 or more
/// (MobileFaceNet 0.49, MobileFace 0.50 on the LFW sanity set); the degenerate 192-d MobileFaceNet, whose
/// pairwise cosines are all ≥ 0.999, stays far below.
pub const MIN_SPREAD: f64 = 0.05;

impl Separation {
    /// Why the embeddings are unusable, when their scores hardly spread.
    pub fn degenerate(&self) -> Option<String> {
        let [lo, hi] = self.score_p1_p99;
        (hi - lo < MIN_SPREAD).then(|| {
            format!(
                "its embeddings barely depend on the input: 98 % of the {} pair scores on the sanity set lie between {lo:.5} and {hi:.5} (a spread of {:.2e}; working models spread them over 0.4 or more, and {MIN_SPREAD} is the least accepted)",
                self.mated_pairs + self.nonmated_pairs,
                hi - lo
            )
        })
    }
}

/// A sanity set with its faces found once.
pub struct SanitySet {
    /// Where it came from (a committed set's name, or the path given).
    pub name: String,
    images: Vec<(RgbImage, Face)>,
    subjects: Vec<String>,
    /// Images of the set without a detectable face (left out).
    pub skipped: usize,
}

/// Resolves `--sanity`: `lfw`/`bfw` (a committed list over `../shared/datasets/<name>`, or
/// `$FACEBIAS_DATASETS/<name>`), else a path. Returns the committed list's text with the folder its
/// paths are relative to, or `None` for a path.
pub fn committed(name: &str) -> Option<Result<(String, PathBuf), String>> {
    let (_, list) = COMMITTED.iter().find(|(n, _)| *n == name)?;
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("FACEBIAS_DATASETS") {
        roots.push(PathBuf::from(d));
    }
    roots.push(PathBuf::from("../shared/datasets"));
    roots.push(PathBuf::from("shared/datasets"));
    let found = roots.iter().map(|r| r.join(name)).find(|d| d.is_dir());
    Some(match found {
        Some(dir) => Ok((list.to_string(), dir)),
        None => Err(format!(
            "the sanity set `{name}` needs the dataset folder {name} in one of: {}; set FACEBIAS_DATASETS or pass --sanity with a folder or manifest",
            roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
        )),
    })
}

/// A decoded image and its face, or `None` when it has no usable face.
type Found = Option<(RgbImage, Face)>;

/// One sample read, decoded and detected.
fn detect_one(det: &mut Detector, s: &Sample) -> Result<Found, String> {
    let bytes = std::fs::read(&s.path)
        .map_err(|e| format!("sanity set: cannot read {}: {e}", s.path.display()))?;
    let Ok(img) = decode(&bytes) else {
        return Ok(None);
    };
    Ok(det.detect(&img)?.map(|face| (img, face)))
}

/// Loads and detects the sanity set (on every core, each with its own detector; the order of the
/// samples is kept).
pub fn load_set(
    rt: &Runtime,
    name: &str,
    samples: &[Sample],
    detector: &Path,
) -> Result<SanitySet, String> {
    let config = DetectorConfig {
        select: crate::preprocess::detect::FaceSelect::Largest,
        ..DetectorConfig::default()
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, samples.len().max(1));
    let per = samples.len().div_ceil(workers).max(1);
    let parts: Vec<Result<Vec<Found>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = samples
            .chunks(per)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut det = Detector::open(rt, detector, config, 1)?;
                    chunk.iter().map(|s| detect_one(&mut det, s)).collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("sanity detection panicked".into()))
            })
            .collect()
    });
    let mut set = SanitySet {
        name: name.to_string(),
        images: Vec::new(),
        subjects: Vec::new(),
        skipped: 0,
    };
    let found = parts.into_iter().collect::<Result<Vec<_>, _>>()?;
    for (s, f) in samples.iter().zip(found.into_iter().flatten()) {
        match f {
            Some(pair) => {
                set.images.push(pair);
                set.subjects.push(s.subject.clone());
            }
            None => set.skipped += 1,
        }
    }
    let mated = (0..set.subjects.len())
        .flat_map(|i| (i + 1..set.subjects.len()).map(move |j| (i, j)))
        .filter(|&(i, j)| set.subjects[i] == set.subjects[j])
        .count();
    if mated == 0 || set.subjects.len() < 4 {
        return Err(format!("the sanity set needs several subjects with two or more images each (found {} usable images, {mated} mated pairs)", set.subjects.len()));
    }
    Ok(set)
}

impl SanitySet {
    /// Images with a face.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether no image had a face.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The images and faces.
    pub fn faces(&self) -> &[(RgbImage, Face)] {
        &self.images
    }

    /// The model's input crops of the first `n` images under `spec` (for the crop sheet).
    pub fn crops(&self, spec: &ModelSpec, n: usize) -> Vec<RgbImage> {
        let crop = spec.crop();
        self.images
            .iter()
            .take(n)
            .map(|(img, face)| crop.apply(img, face, spec.size))
            .collect()
    }

    /// The first `n` images (the committed lists hold whole subjects in order, 3 images each).
    pub fn head(&self, n: usize) -> SanitySet {
        let n = n.min(self.images.len());
        SanitySet {
            name: format!("{} (first {n} images)", self.name),
            images: self.images[..n].to_vec(),
            subjects: self.subjects[..n].to_vec(),
            skipped: 0,
        }
    }

    /// Embeds every image with `spec` through an open embedder (batched when it allows).
    pub fn embed(&self, emb: &mut Embedder, spec: &ModelSpec) -> Result<Vec<Vec<f32>>, String> {
        let s = spec.size as usize;
        let crop = spec.crop();
        let norm = spec.normalization();
        let mut out = Vec::with_capacity(self.images.len());
        for chunk in self.images.chunks(emb.batch.max(1)) {
            let mut t = vec![0.0f32; chunk.len() * 3 * s * s];
            for ((img, face), slot) in chunk.iter().zip(t.chunks_exact_mut(3 * s * s)) {
                let aligned = crop.apply(img, face, spec.size);
                write_tensor(&aligned, spec.layout, spec.color, &norm, slot);
            }
            let raw = emb.run(&t, chunk.len())?;
            for v in raw.chunks_exact(raw.len() / chunk.len()) {
                let mut v = v.to_vec();
                if !l2_normalize(&mut v) {
                    v.iter_mut().for_each(|x| *x = 0.0);
                }
                out.push(v);
            }
        }
        Ok(out)
    }

    /// The separation of `spec` on this set.
    pub fn measure(&self, emb: &mut Embedder, spec: &ModelSpec) -> Result<Separation, String> {
        Ok(separation(&self.embed(emb, spec)?, &self.subjects))
    }
}

/// The sanity check of one spec on the whole set.
pub fn sanity(
    rt: &Runtime,
    model: &Path,
    spec: &ModelSpec,
    set: &SanitySet,
) -> Result<Separation, String> {
    let mut emb = Embedder::open(rt, model, spec, 1, 16)?;
    set.measure(&mut emb, spec)
}

/// Mated/non-mated separation of embeddings with subject labels.
pub fn separation(emb: &[Vec<f32>], subjects: &[String]) -> Separation {
    let (mut m, mut n) = (Vec::new(), Vec::new());
    for i in 0..emb.len() {
        for j in i + 1..emb.len() {
            let s: f64 = emb[i]
                .iter()
                .zip(&emb[j])
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            if subjects[i] == subjects[j] {
                m.push(s)
            } else {
                n.push(s)
            }
        }
    }
    of_scores(m, n)
}

/// [`Separation`] of mated scores `m` and non-mated scores `n` (both non-empty).
pub fn of_scores(mut m: Vec<f64>, mut n: Vec<f64>) -> Separation {
    m.sort_by(f64::total_cmp);
    n.sort_by(f64::total_cmp);
    let (lm, ln) = (m.len().max(1) as f64, n.len().max(1) as f64);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = |v: &[f64], mu: f64| {
        v.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / v.len().max(1) as f64
    };
    let (mm, nm) = (mean(&m), mean(&n));
    let d_prime = (mm - nm) / ((var(&m, mm) + var(&n, nm)) / 2.0).sqrt().max(1e-12);
    let below = |v: &[f64], t: f64| v.partition_point(|x| *x < t);
    let at_or_below = |v: &[f64], t: f64| v.partition_point(|x| *x <= t);
    // AUC: for each mated score, the non-mated scores below it, plus half of those equal.
    let wins: f64 = m
        .iter()
        .map(|&a| {
            let lo = below(&n, a);
            lo as f64 + 0.5 * (at_or_below(&n, a) - lo) as f64
        })
        .sum();
    // Best balanced accuracy over thresholds at every observed score (match when score ≥ t).
    let (mut best, mut best_t) = (0.0, 0.0);
    for &t in m.iter().chain(&n) {
        let tpr = (m.len() - below(&m, t)) as f64 / lm;
        let tnr = below(&n, t) as f64 / ln;
        let acc = (tpr + tnr) / 2.0;
        if acc > best {
            (best, best_t) = (acc, t);
        }
    }
    // The lowest threshold with FMR ≤ GATE_FMR lies just above the (k+1)-th highest non-mated score,
    // k = ⌊GATE_FMR × non-mated⌋: k non-mated pairs match, and mated pairs at or below it do not.
    let k = (GATE_FMR * n.len() as f64).floor() as usize;
    let (fnmr, fm) = match n.len().checked_sub(k + 1) {
        Some(idx) => (at_or_below(&m, n[idx]) as f64 / lm, k),
        None => (0.0, n.len()),
    };
    let mut all: Vec<f64> = m.iter().chain(&n).copied().collect();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Separation {
        score_p1_p99: [pct(0.01), pct(0.99)],
        auc: wins / (lm * ln),
        d_prime,
        accuracy: best,
        threshold: best_t,
        fnmr_at_gate_fmr: fnmr,
        gate_false_matches: fm,
        mated_mean: mm,
        nonmated_mean: nm,
        mated_pairs: m.len(),
        nonmated_pairs: n.len(),
    }
}

/// Samples of a sanity folder without a manifest: every JPEG/PNG, subject = the file name before the
/// first `-` or `_`, lowercased (the convention of `../shared/models/testfaces`).
pub fn folder_samples(dir: &Path) -> Result<Vec<Sample>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read sanity folder {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let subject = name.split(['-', '_']).next().unwrap_or("").to_lowercase();
            Sample {
                rel_path: name,
                path: p,
                subject,
                attributes: Vec::new(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_by_hand() {
        // Subjects a,a,b: one mated pair (score 1.0 · 0.8 = 0.8), two non-mated (0.6 and 0.0).
        let emb = vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]];
        let subjects = vec!["a".to_string(), "a".into(), "b".into()];
        let s = separation(&emb, &subjects);
        assert_eq!((s.mated_pairs, s.nonmated_pairs), (1, 2));
        assert!((s.auc - 1.0).abs() < 1e-12);
        assert!((s.mated_mean - 0.8).abs() < 1e-6 && (s.nonmated_mean - 0.3).abs() < 1e-6); // f32 inputs
        assert!((s.accuracy - 1.0).abs() < 1e-12);
        // 2 non-mated: k = 0, the threshold sits just above 0.6; the mated 0.8 matches.
        assert_eq!((s.fnmr_at_gate_fmr, s.gate_false_matches), (0.0, 0));
    }

    #[test]
    fn auc_ties_and_the_low_fmr_point_by_hand() {
        // Mated 0.5, 0.7, 0.9; non-mated 0.1 × 1997, 0.5, 0.6, 0.8 (2,000 pairs: k = ⌊2⌋ = 2).
        // AUC: 0.5 beats 1997 and ties 1 → 1997.5; 0.7 beats 1999; 0.9 beats 2000:
        // (1997.5 + 1999 + 2000) / 6000 = 0.99941667.
        // Threshold above the 3rd highest non-mated (0.5): mated 0.5 fails, FNMR = 1/3.
        let mut n = vec![0.1; 1997];
        n.extend([0.5, 0.6, 0.8]);
        let s = of_scores(vec![0.5, 0.7, 0.9], n);
        assert!((s.auc - 0.999_416_67).abs() < 1e-8, "{}", s.auc);
        assert!((s.fnmr_at_gate_fmr - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.gate_false_matches, 2);
    }

    #[test]
    fn committed_lists_hold_600_images_of_200_subjects() {
        for (name, list) in COMMITTED {
            let rows: Vec<&str> = list.lines().skip(1).collect();
            let subjects: std::collections::BTreeSet<&str> =
                rows.iter().map(|r| r.split(',').nth(1).unwrap()).collect();
            assert_eq!((rows.len(), subjects.len()), (600, 200), "{name}");
        }
    }
}

//! Preprocessing probe and sanity gate for models without a spec (a vendor's `.onnx`).
//!
//! [`probe`] detects the faces of a labelled sanity set once, then for every plausible preprocessing —
//! colour order (RGB, BGR) × pixel scaling (raw 0..255, [0,1], ±1, (x−127.5)/128, ImageNet mean/std)
//! × crop (the ArcFace 112 template scaled to the input, or a looser crop with more context) — with the
//! layout and size read from the model's declared input, it embeds the set and measures how well
//! mated pairs separate from non-mated ones: ranking AUC first, then d′ = (μ_m − μ_n)/√((σ_m² + σ_n²)/2).
//! [`sanity`] computes the verification accuracy of one spec on the set, which gates an audit.

use std::path::Path;

use image::RgbImage;
use serde::Serialize;

use super::spec::{ModelSpec, Template};
use super::{declared_shape, l2_normalize, Embedder};
use crate::manifest::Sample;
use crate::preprocess::align::{scaled_template, warp, Similarity, ARCFACE_112};
use crate::preprocess::decode;
use crate::preprocess::detect::{Detector, DetectorConfig, Face};
use crate::preprocess::tensor::{write_tensor, ColorOrder, Layout};
use crate::runtime::Runtime;

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
    /// Mean mated score.
    pub mated_mean: f64,
    /// Mean non-mated score.
    pub nonmated_mean: f64,
    /// Mated pairs.
    pub mated_pairs: usize,
    /// Non-mated pairs.
    pub nonmated_pairs: usize,
}

/// One probed preprocessing and its result.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Short description, e.g. `RGB imagenet arcface112`.
    pub name: String,
    /// The spec tried.
    pub spec: ModelSpec,
    /// Its separation.
    pub separation: Separation,
}

/// A sanity set with its faces found once.
pub struct SanitySet {
    images: Vec<(RgbImage, Face)>,
    subjects: Vec<String>,
    /// Images of the set without a detectable face (left out).
    pub skipped: usize,
}

/// Loads and detects the sanity set.
pub fn load_set(rt: &Runtime, samples: &[Sample], detector: &Path) -> Result<SanitySet, String> {
    let mut det = Detector::open(
        rt,
        detector,
        DetectorConfig {
            select: crate::preprocess::detect::FaceSelect::Largest,
            ..DetectorConfig::default()
        },
        1,
    )?;
    let mut set = SanitySet {
        images: Vec::new(),
        subjects: Vec::new(),
        skipped: 0,
    };
    for s in samples {
        let bytes = std::fs::read(&s.path)
            .map_err(|e| format!("sanity set: cannot read {}: {e}", s.path.display()))?;
        let Ok(img) = decode(&bytes) else {
            set.skipped += 1;
            continue;
        };
        match det.detect(&img)? {
            Some(face) => {
                set.images.push((img, face));
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

/// A looser crop: the ArcFace template pulled towards the centre by 15 %, so the face is smaller with more context.
fn loose_template(size: u32) -> [[f32; 2]; 5] {
    let c = size as f32 / 2.0;
    scaled_template(&ARCFACE_112, size).map(|[x, y]| [c + (x - c) * 0.85, c + (y - c) * 0.85])
}

/// Embeds the set with a spec (`loose` selects the looser crop).
fn embed_set(
    rt: &Runtime,
    model: &Path,
    spec: &ModelSpec,
    loose: bool,
    set: &SanitySet,
) -> Result<Vec<Vec<f32>>, String> {
    let mut emb = Embedder::open(rt, model, spec, 1, 1)?;
    let s = spec.size as usize;
    let template = if loose {
        loose_template(spec.size)
    } else {
        scaled_template(&ARCFACE_112, spec.size)
    };
    let mut out = Vec::with_capacity(set.images.len());
    for (img, face) in &set.images {
        let aligned = match spec.template {
            Template::Arcface112 => {
                warp(img, &Similarity::fit(&face.landmarks, &template), spec.size)
            }
            Template::None => image::imageops::resize(
                img,
                spec.size,
                spec.size,
                image::imageops::FilterType::Triangle,
            ),
        };
        let mut t = vec![0.0f32; 3 * s * s];
        write_tensor(
            &aligned,
            spec.layout,
            spec.color,
            &spec.normalization(),
            &mut t,
        );
        let mut v = emb.run(&t, 1)?;
        if !l2_normalize(&mut v) {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
        out.push(v);
    }
    Ok(out)
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
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = |v: &[f64], mu: f64| {
        v.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / v.len().max(1) as f64
    };
    let (mm, nm) = (mean(&m), mean(&n));
    let d_prime = (mm - nm) / ((var(&m, mm) + var(&n, nm)) / 2.0).sqrt().max(1e-12);
    let mut wins = 0.0;
    for a in &m {
        for b in &n {
            wins += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    let auc = wins / (m.len() * n.len()).max(1) as f64;
    // Best balanced accuracy over thresholds at every observed score.
    let (mut best, mut best_t) = (0.0, 0.0);
    for &t in m.iter().chain(&n) {
        let tpr = m.iter().filter(|&&s| s >= t).count() as f64 / m.len().max(1) as f64;
        let tnr = n.iter().filter(|&&s| s < t).count() as f64 / n.len().max(1) as f64;
        let acc = (tpr + tnr) / 2.0;
        if acc > best {
            (best, best_t) = (acc, t);
        }
    }
    Separation {
        auc,
        d_prime,
        accuracy: best,
        threshold: best_t,
        mated_mean: mm,
        nonmated_mean: nm,
        mated_pairs: m.len(),
        nonmated_pairs: n.len(),
    }
}

/// The sanity check of one spec.
pub fn sanity(
    rt: &Runtime,
    model: &Path,
    spec: &ModelSpec,
    set: &SanitySet,
) -> Result<Separation, String> {
    Ok(separation(
        &embed_set(rt, model, spec, false, set)?,
        &set.subjects,
    ))
}

/// Tries every plausible preprocessing and returns them best first. The model's input name, output
/// name, layout and size come from its declared input.
pub fn probe(
    rt: &Runtime,
    model: &Path,
    sha256: &str,
    set: &SanitySet,
) -> Result<Vec<Candidate>, String> {
    let session = crate::runtime::open_session(rt, model, 1)?;
    let input = session.inputs().first().ok_or("the model has no input")?;
    let output = session.outputs().first().ok_or("the model has no output")?;
    let shape = declared_shape(input.dtype()).ok_or("the model's input is not a tensor")?;
    if shape.len() != 4 {
        return Err(format!(
            "the model's input `{}` has {} dimensions; an image model takes 4 (N,C,H,W or N,H,W,C)",
            input.name(),
            shape.len()
        ));
    }
    let (layout, size) = if shape[3] == Some(3) && shape[1] != Some(3) {
        (Layout::Nhwc, shape[1].unwrap_or(112))
    } else {
        (Layout::Nchw, shape[2].unwrap_or(112))
    };
    let (input_name, output_name) = (input.name().to_string(), output.name().to_string());
    drop(session);
    let imagenet = ([0.485f64, 0.456, 0.406], [0.229f64, 0.224, 0.225]);
    let scalings: [(&str, f64, [f64; 3], [f64; 3]); 5] = [
        ("raw0-255", 1.0, [0.0; 3], [1.0; 3]),
        ("unit0-1", 1.0 / 255.0, [0.0; 3], [1.0; 3]),
        ("pm1", 1.0 / 127.5, [1.0; 3], [1.0; 3]),
        ("pm1-128", 1.0, [127.5; 3], [128.0; 3]),
        ("imagenet", 1.0 / 255.0, imagenet.0, imagenet.1),
    ];
    let mut out = Vec::new();
    for color in [ColorOrder::Rgb, ColorOrder::Bgr] {
        for (sname, scale, mean, std) in scalings {
            // Per-channel statistics are written in the model's channel order.
            let (mean, std) = if color == ColorOrder::Bgr {
                ([mean[2], mean[1], mean[0]], [std[2], std[1], std[0]])
            } else {
                (mean, std)
            };
            for loose in [false, true] {
                let spec = ModelSpec {
                    name: "probed".into(),
                    role: "embedding".into(),
                    file: model.display().to_string(),
                    sha256: sha256.into(),
                    bytes: 0,
                    input: input_name.clone(),
                    output: output_name.clone(),
                    size: size as u32,
                    layout,
                    color,
                    pixel_scale: scale,
                    mean,
                    std,
                    template: Template::Arcface112,
                    dim: 0,
                    license: "unknown (vendor model)".into(),
                    source: if loose {
                        "facebias probe (loose crop: ArcFace template pulled 15 % towards the centre)".into()
                    } else {
                        "facebias probe".into()
                    },
                };
                let emb = embed_set(rt, model, &spec, loose, set)?;
                let name = format!(
                    "{:?} {} {} {}",
                    color,
                    sname,
                    if loose { "loose" } else { "arcface112" },
                    format!("{layout:?}").to_uppercase()
                );
                out.push(Candidate {
                    name,
                    spec,
                    separation: separation(&emb, &set.subjects),
                });
            }
        }
    }
    out.sort_by(|a, b| {
        b.separation
            .auc
            .total_cmp(&a.separation.auc)
            .then(b.separation.d_prime.total_cmp(&a.separation.d_prime))
            .then(a.name.cmp(&b.name))
    });
    Ok(out)
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
    }

    #[test]
    fn loose_crop_keeps_the_centre() {
        let t = loose_template(112);
        let orig = scaled_template(&ARCFACE_112, 112);
        // Eye distance shrinks by 15 %.
        let d = |p: &[[f32; 2]; 5]| p[1][0] - p[0][0];
        assert!((d(&t) / d(&orig) - 0.85).abs() < 1e-5);
    }
}

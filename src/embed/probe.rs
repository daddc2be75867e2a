//! Preprocessing probe for models without a spec (a vendor's `.onnx`): a search, not a short list.
//!
//! The layout and input size come from the model's declared input. The faces of the sanity set are
//! detected once; each candidate only re-crops and re-embeds. The search runs on the first
//! [`PROBE_IMAGES`] images of the set, in three stages:
//! 1. **pixels**: colour order (RGB, BGR) × every [`SCALINGS`] entry, on the ArcFace crop;
//! 2. **geometry**, with the best pixels: each template family (ArcFace 112, dlib face chip with
//!    padding 0.25, the detector box squared) over a coarse grid of crop scales; then the best crop's
//!    vertical offset on a grid; then its eight neighbours (scale ×/÷ 1.05, offset ± 0.025);
//! 3. **pixels again**: stage 1's four best pixel choices on the best crop (a wrong crop can mislead
//!    stage 1);
//! 4. **confirmation**: the best [`CONFIRM`] measured again on the whole set (see [`confirm`]).
//!
//! Candidates are ranked by the FNMR at the set's FMR 1e-3 threshold, then d′, then AUC (see
//! [`super::sanity::Separation`]): AUC saturates on a sanity set (a wrong crop still scores 0.997)
//! while the error at low FMR, where an audit reports, does not. The result says how flat the top
//! is: how many candidates lie within [`FLAT_FNMR`] of the best FNMR.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::sanity::{SanitySet, Separation};
use super::spec::{ModelSpec, Template};
use super::{declared_shape, Embedder};
use crate::preprocess::crop::Crop;
use crate::preprocess::tensor::{ColorOrder, Layout};
use crate::runtime::Runtime;

/// Images of the sanity set the search runs on (the gate then uses the whole set).
pub const PROBE_IMAGES: usize = 240;

/// Candidates within this FNMR of the best count as "as good" when describing how flat the top is.
pub const FLAT_FNMR: f64 = 0.01;

/// A pixel normalisation: `(pixel · scale − mean[c]) / std[c]`, statistics in RGB order.
pub struct Scaling {
    /// Name used in candidate names.
    pub name: &'static str,
    /// Factor applied to 0..255 values first.
    pub scale: f64,
    /// Per-channel mean (RGB order).
    pub mean: [f64; 3],
    /// Per-channel std (RGB order).
    pub std: [f64; 3],
}

const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];
/// Caffe/VGGFace channel means, in RGB order (Keras "caffe": B 103.939, G 116.779, R 123.68).
const CAFFE_MEAN: [f64; 3] = [123.68, 116.779, 103.939];

/// The pixel normalisations vendors use.
pub const SCALINGS: [Scaling; 8] = [
    Scaling {
        name: "raw0-255",
        scale: 1.0,
        mean: [0.0; 3],
        std: [1.0; 3],
    },
    Scaling {
        name: "unit0-1",
        scale: 1.0 / 255.0,
        mean: [0.0; 3],
        std: [1.0; 3],
    },
    Scaling {
        name: "pm1",
        scale: 1.0 / 127.5,
        mean: [1.0; 3],
        std: [1.0; 3],
    },
    Scaling {
        name: "pm1-128",
        scale: 1.0,
        mean: [127.5; 3],
        std: [128.0; 3],
    },
    Scaling {
        name: "imagenet",
        scale: 1.0 / 255.0,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
    },
    Scaling {
        name: "caffe-mean",
        scale: 1.0,
        mean: CAFFE_MEAN,
        std: [1.0; 3],
    },
    Scaling {
        name: "caffe-mean/128",
        scale: 1.0,
        mean: CAFFE_MEAN,
        std: [128.0; 3],
    },
    Scaling {
        name: "caffe-mean/255",
        scale: 1.0,
        mean: CAFFE_MEAN,
        std: [255.0; 3],
    },
];

/// The template families of stage 2, each with its coarse grid of crop scales.
const FAMILIES: [(Template, &[f64]); 3] = [
    (Template::Arcface112, &[0.85, 1.0, 1.15, 1.3, 1.5]),
    (Template::Dlib, &[0.85, 1.0, 1.15, 1.3]),
    (Template::Box, &[1.0, 1.15, 1.3, 1.5, 1.75]),
];
const OFFSETS: [f64; 4] = [-0.1, -0.05, 0.05, 0.1];
/// Stage 1's best pixel choices that stage 3 tries again on the best crop.
const STAGE3_PIXELS: usize = 4;

/// One probed preprocessing and its result.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Short description, e.g. `BGR caffe-mean box ×1.300 NHWC`.
    pub name: String,
    /// The spec tried.
    pub spec: ModelSpec,
    /// Its separation on the probe's images.
    pub separation: Separation,
}

/// The probe's outcome.
pub struct Probe {
    /// Every candidate, best first, measured on the search's images.
    pub ranking: Vec<Candidate>,
    /// Images the search ran on.
    pub images: usize,
    /// Candidates within [`FLAT_FNMR`] of the best (the best included).
    pub flat: usize,
    /// The search's best [`CONFIRM`] measured again on the whole set, in the order chosen (see
    /// [`confirm`]); empty when there was no confirmation stage.
    pub confirmed: Vec<Candidate>,
    /// Images of the confirmation.
    pub confirmed_images: usize,
}

impl Probe {
    /// The chosen candidate: the first confirmed one, else the best of the search.
    pub fn chosen(&self) -> &Candidate {
        self.confirmed.first().unwrap_or(&self.ranking[0])
    }

    /// The runner-up: the lowest-FNMR candidate other than the chosen one, on the same images.
    pub fn runner_up(&self) -> Option<&Candidate> {
        let pool = if self.confirmed.is_empty() {
            &self.ranking
        } else {
            &self.confirmed
        };
        let chosen = &self.chosen().name;
        pool.iter().filter(|c| &c.name != chosen).min_by(|a, b| {
            a.separation
                .fnmr_at_gate_fmr
                .total_cmp(&b.separation.fnmr_at_gate_fmr)
        })
    }
}

/// Candidates of the search measured again on the whole sanity set.
pub const CONFIRM: usize = 6;

/// Measures the search's best [`CONFIRM`] candidates on the whole set and orders them: those whose
/// FNMR is within one binomial standard error (√(p(1−p)/mated), at least 1/mated) of the best count
/// as equally good, and among them the least-modified crop comes first (smallest |ln scale| +
/// |offset|), so that noise on the sanity set never pulls the crop away from a template it fits.
fn confirm(
    rt: &Runtime,
    model: &Path,
    base: &ModelSpec,
    full: &SanitySet,
    ranking: &[Candidate],
) -> Result<Vec<Candidate>, String> {
    let top: Vec<(String, ModelSpec)> = ranking
        .iter()
        .take(CONFIRM)
        .map(|c| (c.name.clone(), c.spec.clone()))
        .collect();
    let mut done = BTreeMap::new();
    evaluate(rt, model, base, full, top, &mut done)?;
    let mut v = rank(&done);
    let best = v[0].separation.fnmr_at_gate_fmr;
    let mated = v[0].separation.mated_pairs.max(1) as f64;
    let se = (best * (1.0 - best) / mated).sqrt().max(1.0 / mated);
    let departure = |c: &Candidate| c.spec.crop_scale.ln().abs() + c.spec.crop_offset_y.abs();
    let tied = v
        .iter()
        .take_while(|c| c.separation.fnmr_at_gate_fmr <= best + se + 1e-12)
        .count();
    v[..tied].sort_by(|a, b| departure(a).total_cmp(&departure(b)));
    Ok(v)
}

/// The model's declared input: name, output name, layout and side.
fn declared(rt: &Runtime, model: &Path) -> Result<(String, String, Layout, u32), String> {
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
    Ok((
        input.name().to_string(),
        output.name().to_string(),
        layout,
        size as u32,
    ))
}

/// A spec with these pixels and this crop.
fn with(base: &ModelSpec, color: ColorOrder, sc: &Scaling, crop: &Crop) -> (String, ModelSpec) {
    let mut spec = base.clone();
    spec.color = color;
    spec.pixel_scale = sc.scale;
    // Per-channel statistics are written in the model's channel order.
    let rev = |v: [f64; 3]| [v[2], v[1], v[0]];
    (spec.mean, spec.std) = match color {
        ColorOrder::Bgr => (rev(sc.mean), rev(sc.std)),
        ColorOrder::Rgb => (sc.mean, sc.std),
    };
    spec.set_crop(crop);
    spec.source = format!("facebias probe: {} {}", sc.name, crop.describe());
    let name = format!(
        "{:?} {} {} {}",
        color,
        sc.name,
        crop.describe(),
        format!("{:?}", spec.layout).to_uppercase()
    );
    (name, spec)
}

/// The scaling of a stage-1 candidate (pixels on the ArcFace crop), found by its name.
fn scaling_of(base: &ModelSpec, c: &Candidate) -> Option<&'static Scaling> {
    SCALINGS
        .iter()
        .find(|s| with(base, c.spec.color, s, &Crop::arcface()).0 == c.name)
}

/// Measures the candidates not yet in `done` on `set`, on `workers` threads (one embedder each).
fn evaluate(
    rt: &Runtime,
    model: &Path,
    base: &ModelSpec,
    set: &SanitySet,
    todo: Vec<(String, ModelSpec)>,
    done: &mut BTreeMap<String, Candidate>,
) -> Result<(), String> {
    let todo: Vec<(String, ModelSpec)> = todo
        .into_iter()
        .filter(|(n, _)| !done.contains_key(n))
        .collect();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(todo.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<Candidate, String>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut emb = match Embedder::open(rt, model, base, 1, 16) {
                    Ok(e) => e,
                    Err(e) => {
                        results.lock().expect("probe results").push(Err(e));
                        return;
                    }
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, spec)) = todo.get(i) else {
                        break;
                    };
                    let r = set.measure(&mut emb, spec).map(|separation| Candidate {
                        name: name.clone(),
                        spec: spec.clone(),
                        separation,
                    });
                    results.lock().expect("probe results").push(r);
                }
            });
        }
    });
    for r in results.into_inner().map_err(|_| "probe worker panicked")? {
        let c = r?;
        done.insert(c.name.clone(), c);
    }
    Ok(())
}

/// Best first: FNMR at the gate's FMR, then d′, then AUC, then name (a total, deterministic order).
fn rank(done: &BTreeMap<String, Candidate>) -> Vec<Candidate> {
    let mut v: Vec<Candidate> = done.values().cloned().collect();
    v.sort_by(|a, b| {
        let (x, y) = (&a.separation, &b.separation);
        x.fnmr_at_gate_fmr
            .total_cmp(&y.fnmr_at_gate_fmr)
            .then(y.d_prime.total_cmp(&x.d_prime))
            .then(y.auc.total_cmp(&x.auc))
            .then(a.name.cmp(&b.name))
    });
    v
}

/// The probe's outcome from every measured candidate (before any confirmation).
fn finish(done: &BTreeMap<String, Candidate>, images: usize) -> Probe {
    let ranking = rank(done);
    let top = ranking[0].separation.fnmr_at_gate_fmr;
    let flat = ranking
        .iter()
        .filter(|c| c.separation.fnmr_at_gate_fmr <= top + FLAT_FNMR)
        .count();
    Probe {
        ranking,
        images,
        flat,
        confirmed: Vec::new(),
        confirmed_images: 0,
    }
}

/// The best candidate among `done` whose name is in `names`.
fn best_of<'a>(done: &'a BTreeMap<String, Candidate>, names: &[String]) -> &'a Candidate {
    let ranked = rank(done);
    let best = ranked
        .into_iter()
        .find(|c| names.contains(&c.name))
        .expect("a measured candidate");
    &done[&best.name]
}

/// The spec every candidate starts from: the model's declared input, RGB raw pixels, ArcFace crop.
fn base_spec(rt: &Runtime, model: &Path, sha256: &str) -> Result<ModelSpec, String> {
    let (input, output, layout, size) = declared(rt, model)?;
    let bytes = std::fs::metadata(model).map(|m| m.len()).unwrap_or(0);
    Ok(ModelSpec {
        bytes,
        input,
        output,
        size,
        layout,
        ..ModelSpec::blank(
            model,
            sha256,
            "probed",
            "unknown (vendor model)",
            "facebias probe",
        )
    })
}

/// The name the spec under test gets among its alternatives.
pub const GIVEN: &str = "the given spec";

/// The given spec next to its nearest alternatives, on the probe's images: every colour order ×
/// pixel scaling on its crop, and its pixels on each template family's default crop. A given spec
/// that an alternative clearly beats is probably wrong in that part.
pub fn alternatives(
    rt: &Runtime,
    model: &Path,
    given: &ModelSpec,
    full: &SanitySet,
) -> Result<Probe, String> {
    let set = full.head(PROBE_IMAGES);
    let mut base = given.clone();
    base.source = "facebias probe".into();
    let crop = given.crop();
    let mut todo: Vec<(String, ModelSpec)> = [ColorOrder::Rgb, ColorOrder::Bgr]
        .into_iter()
        .flat_map(|c| SCALINGS.iter().map(move |s| (c, s)))
        .map(|(c, s)| with(&base, c, s, &crop))
        .collect();
    for (t, scales) in FAMILIES {
        let mut alt = given.clone();
        alt.set_crop(&Crop {
            template: t,
            scale: scales[1],
            ..Crop::arcface()
        });
        let name = format!("given pixels on {}", alt.crop().describe());
        todo.push((name, alt));
    }
    // An alternative that is the given spec under another name would only compare it with itself.
    let same = given.preprocessing_fingerprint();
    todo.retain(|(_, s)| s.preprocessing_fingerprint() != same);
    todo.push((GIVEN.to_string(), given.clone()));
    let mut done = BTreeMap::new();
    evaluate(rt, model, given, &set, todo, &mut done)?;
    Ok(finish(&done, set.len()))
}

/// Runs the three-stage search (see the module notes) and returns every candidate, best first.
pub fn probe(rt: &Runtime, model: &Path, sha256: &str, full: &SanitySet) -> Result<Probe, String> {
    let base = base_spec(rt, model, sha256)?;
    let set = full.head(PROBE_IMAGES);
    let mut done = BTreeMap::new();
    let pixels = |crop: &Crop| -> Vec<(String, ModelSpec)> {
        [ColorOrder::Rgb, ColorOrder::Bgr]
            .into_iter()
            .flat_map(|c| SCALINGS.iter().map(move |s| (c, s)))
            .map(|(c, s)| with(&base, c, s, crop))
            .collect()
    };
    // Stage 1: pixels on the ArcFace crop.
    let stage1 = pixels(&Crop::arcface());
    let names1: Vec<String> = stage1.iter().map(|c| c.0.clone()).collect();
    evaluate(rt, model, &base, &set, stage1, &mut done)?;
    let best1 = best_of(&done, &names1);
    let color = best1.spec.color;
    let scaling = scaling_of(&base, best1).expect("a probed scaling");
    // Stage 2: geometry with those pixels — coarse scales per family, then offsets, then neighbours.
    let mut geometry: Vec<Crop> = FAMILIES
        .iter()
        .flat_map(|(t, scales)| {
            scales.iter().map(|&scale| Crop {
                template: *t,
                scale,
                ..Crop::arcface()
            })
        })
        .collect();
    let mut tried: Vec<String> = Vec::new();
    for round in 0..3 {
        let specs: Vec<(String, ModelSpec)> = geometry
            .iter()
            .map(|g| with(&base, color, scaling, g))
            .collect();
        tried.extend(specs.iter().map(|c| c.0.clone()));
        evaluate(rt, model, &base, &set, specs, &mut done)?;
        let g = best_of(&done, &tried).spec.crop();
        geometry = match round {
            0 => OFFSETS
                .iter()
                .map(|&o| Crop {
                    offset_y: o,
                    ..g.clone()
                })
                .collect(),
            // The eight neighbours of the best: scale ×/÷ 1.05, offset ± 0.025, and both.
            _ => [1.0 / 1.05, 1.0, 1.05]
                .iter()
                .flat_map(|&k| [-0.025, 0.0, 0.025].map(|o| (k, o)))
                .filter(|&(k, o)| k != 1.0 || o != 0.0)
                .map(|(k, o)| Crop {
                    scale: g.scale * k,
                    offset_y: g.offset_y + o,
                    ..g.clone()
                })
                .collect(),
        };
    }
    // Stage 3: stage 1's four best pixel choices again on the best crop.
    let crop = best_of(&done, &tried).spec.crop();
    let ranked1: Vec<Candidate> = rank(&done)
        .into_iter()
        .filter(|c| names1.contains(&c.name))
        .take(STAGE3_PIXELS)
        .collect();
    let again: Vec<(String, ModelSpec)> = ranked1
        .iter()
        .filter_map(|c| Some(with(&base, c.spec.color, scaling_of(&base, c)?, &crop)))
        .collect();
    evaluate(rt, model, &base, &set, again, &mut done)?;
    let mut found = finish(&done, set.len());
    // Stage 4: the best few again on the whole set, where noise is smaller.
    found.confirmed = confirm(rt, model, &base, full, &found.ranking)?;
    found.confirmed_images = full.len();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgr_statistics_are_reversed_into_the_models_channel_order() {
        let base = crate::embed::spec::by_name("mobilefacenet").unwrap();
        let (name, spec) = with(&base, ColorOrder::Bgr, &SCALINGS[5], &Crop::arcface());
        assert_eq!(spec.mean, [103.939, 116.779, 123.68]);
        assert!(name.starts_with("Bgr caffe-mean arcface112"), "{name}");
        assert_eq!(spec.template, Template::Arcface112);
    }
}

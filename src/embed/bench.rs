//! `facebias bench-pipeline`: throughput of the whole extraction stage (decode + detect + align +
//! embed) over repeated runs with the cache off, summarised by the median run, against the
//! inference ceiling: what the two networks alone cost per image, measured in the same process.

use std::time::Instant;

use serde::Serialize;

use super::extract::{ExtractConfig, ExtractTimings};
use super::spec::Template;
use super::Embedder;
use crate::manifest::Sample;
use crate::preprocess::detect::{prepare, Detector, DetectorInput};
use crate::preprocess::{decode_limited, tensor::write_tensor};
use crate::runtime::Runtime;

/// The networks' own cost per image, and the throughput it allows.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkCeiling {
    /// Images the networks were timed on (the first ones with a face).
    pub images: usize,
    /// Timed passes over them; the median pass is reported.
    pub passes: usize,
    /// Detector milliseconds per image, one thread, at the sizes the run uses (0 without a detector).
    pub detector_ms: f64,
    /// Embedder milliseconds per image, one thread, batch 1.
    pub embedder_ms: f64,
    /// Workers the ceiling is for.
    pub workers: usize,
    /// `workers · 1000 / (detector_ms + embedder_ms)`: images/s if the workers did nothing but run
    /// the networks and scaled perfectly.
    pub images_per_second: f64,
}

impl NetworkCeiling {
    /// The ceiling from per-image network costs.
    pub fn new(
        images: usize,
        passes: usize,
        detector_ms: f64,
        embedder_ms: f64,
        workers: usize,
    ) -> NetworkCeiling {
        NetworkCeiling {
            images,
            passes,
            detector_ms,
            embedder_ms,
            workers,
            images_per_second: workers as f64 * 1000.0 / (detector_ms + embedder_ms),
        }
    }
}

/// Times the detector and the embedder alone, single-threaded, on the first `images` samples that
/// have a face: their inputs are decoded, resized, detected and aligned first, outside the timing,
/// then `passes` passes run only the networks (ONNX Runtime's `run` and reading the outputs, as
/// [`ExtractTimings::detect_infer_s`] and [`ExtractTimings::embed_infer_s`] count them). Nothing else
/// should run meanwhile: call it before or after the timed repetitions, not during them.
pub fn network_ceiling(
    rt: &Runtime,
    samples: &[Sample],
    cfg: &ExtractConfig,
    images: usize,
    passes: usize,
) -> Result<NetworkCeiling, String> {
    let mut detector = match cfg.spec.template {
        Template::None => None,
        _ => Some(Detector::open(rt, &cfg.detector, cfg.detector_config, 1)?),
    };
    let mut embedder = Embedder::open_on(rt, &cfg.model, &cfg.spec, 1, 1, cfg.device)?;
    let s = cfg.spec.size as usize;
    let mut det_inputs: Vec<DetectorInput> = Vec::new();
    let mut tensors: Vec<Vec<f32>> = Vec::new();
    for sample in samples {
        if tensors.len() >= images {
            break;
        }
        let Ok(bytes) = std::fs::read(&sample.path) else {
            continue;
        };
        let Ok(img) = decode_limited(&bytes, cfg.max_pixels) else {
            continue;
        };
        let face = match &mut detector {
            Some(d) => {
                let Some(face) = d.detect(&img)? else {
                    continue;
                };
                let c = d.config();
                det_inputs.push(prepare(&img, c.side, c.max_upscale));
                face
            }
            None => crate::preprocess::detect::Face {
                bbox: [0.0, 0.0, img.width() as f32, img.height() as f32],
                landmarks: [[0.0; 2]; 5],
                score: 1.0,
            },
        };
        let aligned = cfg.spec.crop().apply(&img, &face, cfg.spec.size);
        let mut tensor = vec![0.0f32; 3 * s * s];
        let norm = cfg.spec.normalization();
        write_tensor(
            &aligned,
            cfg.spec.layout,
            cfg.spec.color,
            &norm,
            &mut tensor,
        );
        tensors.push(tensor);
    }
    if tensors.is_empty() {
        return Err(format!(
            "none of the first {} images gave a face to time the networks on",
            samples.len()
        ));
    }
    let n = tensors.len() as f64;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let passes = passes.max(1);
    let mut det = Vec::with_capacity(passes);
    let mut emb = Vec::with_capacity(passes);
    for _ in 0..passes {
        if let Some(d) = &mut detector {
            let t = Instant::now();
            for input in &det_inputs {
                d.infer(input, |raw| {
                    std::hint::black_box(raw.per_stride[0][0].len())
                })?;
            }
            det.push(t.elapsed().as_secs_f64() * 1000.0 / n);
        }
        let t = Instant::now();
        for tensor in &tensors {
            std::hint::black_box(embedder.run(tensor, 1)?);
        }
        emb.push(t.elapsed().as_secs_f64() * 1000.0 / n);
    }
    let detector_ms = if det.is_empty() { 0.0 } else { median(det) };
    Ok(NetworkCeiling::new(
        tensors.len(),
        passes,
        detector_ms,
        median(emb),
        cfg.threads.max(1),
    ))
}

/// Result of `facebias bench-pipeline`.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineBench {
    /// Images per repetition.
    pub images: usize,
    /// Where the embedding model ran (ONNX Runtime execution provider).
    pub execution_provider: String,
    /// Parallel workers.
    pub threads: usize,
    /// Seconds per repetition.
    pub seconds: Vec<f64>,
    /// Median seconds.
    pub median_seconds: f64,
    /// Images per second at the median.
    pub images_per_second: f64,
    /// Summed stage times of the median repetition.
    pub stages: ExtractTimings,
    /// Failures to enrol in the run.
    pub failures: usize,
    /// The networks' own cost, measured in the same process before the repetitions.
    pub ceiling: NetworkCeiling,
    /// `images_per_second / ceiling.images_per_second`.
    pub share_of_ceiling: f64,
}

/// One repetition: wall seconds, stage times, failures to enrol.
pub type Repetition = (f64, ExtractTimings, usize);

impl PipelineBench {
    /// Summarises repetitions over `images` images: runs sorted by time, the median one's stages.
    pub fn from_runs(
        images: usize,
        execution_provider: String,
        threads: usize,
        mut runs: Vec<Repetition>,
        ceiling: NetworkCeiling,
    ) -> PipelineBench {
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let seconds: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let (median, stages, failures) = runs[runs.len() / 2].clone();
        PipelineBench {
            images,
            execution_provider,
            threads,
            seconds,
            median_seconds: median,
            images_per_second: images as f64 / median,
            stages,
            failures,
            share_of_ceiling: images as f64 / median / ceiling.images_per_second,
            ceiling,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_and_share_follow_the_per_image_costs() {
        // 2 workers, 1.6 ms + 3.4 ms an image: 2 · 1000 / 5 = 400 images/s.
        let c = NetworkCeiling::new(64, 3, 1.6, 3.4, 2);
        assert!((c.images_per_second - 400.0).abs() < 1e-9);
        // 1,000 images in runs of 4, 5 (median) and 6 s: 200 images/s = half the ceiling.
        let runs = vec![
            (6.0, ExtractTimings::default(), 0),
            (4.0, ExtractTimings::default(), 0),
            (5.0, ExtractTimings::default(), 1),
        ];
        let b = PipelineBench::from_runs(1000, "cpu".into(), 2, runs, c);
        assert_eq!(b.seconds, vec![4.0, 5.0, 6.0]);
        assert_eq!((b.median_seconds, b.failures), (5.0, 1));
        assert!((b.share_of_ceiling - 0.5).abs() < 1e-12);
    }
}

//! Feature extraction over a dataset: read → hash → (cache) → decode → detect → align → tensor →
//! embed, in `threads` parallel workers, each owning its own single-threaded detector and embedder
//! sessions (for small face models two independent sessions beat one session with two intra-op
//! threads). Work is handed out in small chunks from a shared counter; results are put back in
//! manifest order, so the output does not depend on scheduling.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::cache::{Cached, EmbeddingCache};
use super::spec::{ModelSpec, Template};
use super::{l2_normalize, Embedder};
use crate::manifest::Sample;
use crate::preprocess::detect::{Detector, DetectorConfig, Face};
use crate::preprocess::{decode_limited, tensor::write_tensor, DecodeError};
use crate::runtime::Runtime;

/// Outcome of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleStatus {
    /// Embedded.
    Ok,
    /// No face found: a failure to enrol.
    NoFace,
    /// The file is not a readable image.
    DecodeError,
    /// The file could not be read.
    ReadError,
    /// The model produced NaN/Inf or an all-zero vector.
    BadEmbedding,
    /// The image header claims more pixels than `--max-image-pixels`: not decoded.
    TooLarge,
}

impl SampleStatus {
    /// The name written to `samples.csv`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SampleStatus::Ok => "ok",
            SampleStatus::NoFace => "no_face",
            SampleStatus::DecodeError => "decode_error",
            SampleStatus::ReadError => "read_error",
            SampleStatus::BadEmbedding => "bad_embedding",
            SampleStatus::TooLarge => "too_large",
        }
    }
}

/// The result for one sample.
#[derive(Debug, Clone)]
pub struct SampleResult {
    /// Outcome.
    pub status: SampleStatus,
    /// Error detail for failures (empty when ok).
    pub detail: String,
    /// L2-normalised embedding when ok.
    pub embedding: Option<Vec<f32>>,
    /// The face used (absent for cache hits and failures).
    pub face: Option<Face>,
    /// Whether the result came from the cache.
    pub cached: bool,
    /// The model input tensor, when requested with `keep_tensors`.
    pub tensor: Option<Vec<f32>>,
}

/// How to run extraction.
#[derive(Debug, Clone)]
pub struct ExtractConfig {
    /// Embedding model file.
    pub model: PathBuf,
    /// Its spec.
    pub spec: ModelSpec,
    /// YuNet (dynamic) detector file; unused when the spec's template is `none`.
    pub detector: PathBuf,
    /// Detector settings.
    pub detector_config: DetectorConfig,
    /// Parallel workers (each with single-threaded sessions).
    pub threads: usize,
    /// Images per inference call when the model allows batches.
    pub batch_size: usize,
    /// Keep each input tensor in the results (for parity checks).
    pub keep_tensors: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Where the embedding model runs (detection stays on the CPU: the detector is tiny).
    pub device: crate::runtime::Device,
    /// Images whose header claims more pixels are skipped as `too_large`.
    pub max_pixels: u64,
}

/// Summed time spent in each stage across workers, plus the wall time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExtractTimings {
    /// Reading and hashing files.
    pub read_s: f64,
    /// Decoding images.
    pub decode_s: f64,
    /// Face detection (the sum of the three parts below).
    pub detect_s: f64,
    /// Of detection: resizing and laying out the detector's input.
    pub detect_prepare_s: f64,
    /// Of detection: the detector network itself (ONNX Runtime's `run` and reading its outputs).
    pub detect_infer_s: f64,
    /// Of detection: decoding anchors, NMS, choosing the face.
    pub detect_post_s: f64,
    /// Alignment and tensor layout.
    pub align_s: f64,
    /// Embedding inference (batching, the network, normalisation).
    pub embed_s: f64,
    /// Of embedding: the network itself (ONNX Runtime's `run` and reading its output).
    pub embed_infer_s: f64,
    /// Wall-clock time of the whole extraction.
    pub wall_s: f64,
}

/// Everything extraction produced.
pub struct ExtractOutput {
    /// One result per sample, in manifest order.
    pub results: Vec<SampleResult>,
    /// Embedding length.
    pub dim: usize,
    /// Stage timings.
    pub timings: ExtractTimings,
    /// How many samples were served from the cache.
    pub cache_hits: usize,
}

impl ExtractOutput {
    /// Packs the embeddings of enrolled samples into one row-major matrix; `rows[i]` is sample `i`'s row.
    pub fn matrix(&self) -> (Vec<f32>, Vec<Option<usize>>) {
        let mut emb = Vec::new();
        let mut rows = Vec::with_capacity(self.results.len());
        let mut next = 0;
        for r in &self.results {
            match &r.embedding {
                Some(v) if r.status == SampleStatus::Ok => {
                    emb.extend_from_slice(v);
                    rows.push(Some(next));
                    next += 1;
                }
                _ => rows.push(None),
            }
        }
        (emb, rows)
    }

    /// Failures to enrol by reason (`no_face`, `unreadable`, …), in name order.
    pub fn skipped(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut skipped = std::collections::BTreeMap::new();
        for r in &self.results {
            if r.status != SampleStatus::Ok {
                *skipped.entry(r.status.as_str()).or_default() += 1;
            }
        }
        skipped
    }
}

/// A new cache record: image content hash and what was found.
type CacheEntry = ([u8; 32], Cached);

struct Pending {
    index: usize,
    hash: [u8; 32],
    face: Face,
    tensor: Vec<f32>,
}

struct Worker<'a> {
    cfg: &'a ExtractConfig,
    cache: &'a EmbeddingCache,
    detector: Option<Detector>,
    embedder: Embedder,
    timings: ExtractTimings,
    out: Vec<(usize, SampleResult)>,
    /// New cache records of the current chunk, appended to the cache when the chunk is done.
    fresh: Vec<CacheEntry>,
    pending: Vec<Pending>,
}

fn failure(status: SampleStatus, detail: String) -> SampleResult {
    SampleResult {
        status,
        detail,
        embedding: None,
        face: None,
        cached: false,
        tensor: None,
    }
}

impl Worker<'_> {
    fn no_face_detail(&self) -> String {
        format!(
            "no face with detector score >= {}",
            self.cfg.detector_config.score_threshold
        )
    }

    fn process(&mut self, index: usize, path: &Path) -> Result<(), String> {
        let t = Instant::now();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.out.push((
                    index,
                    failure(SampleStatus::ReadError, format!("{}: {e}", path.display())),
                ));
                return Ok(());
            }
        };
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        self.timings.read_s += t.elapsed().as_secs_f64();
        if !self.cfg.keep_tensors {
            match self.cache.get(&hash) {
                Some(Cached::Embedding(face, v)) => {
                    let r = SampleResult {
                        status: SampleStatus::Ok,
                        detail: String::new(),
                        embedding: Some(v.clone()),
                        face: Some(*face),
                        cached: true,
                        tensor: None,
                    };
                    self.out.push((index, r));
                    return Ok(());
                }
                Some(Cached::NoFace) => {
                    let mut r = failure(SampleStatus::NoFace, self.no_face_detail());
                    r.cached = true;
                    self.out.push((index, r));
                    return Ok(());
                }
                None => {}
            }
        }
        let t = Instant::now();
        let img = match decode_limited(&bytes, self.cfg.max_pixels) {
            Ok(i) => i,
            Err(e) => {
                let status = match e {
                    DecodeError::TooLarge(_) => SampleStatus::TooLarge,
                    DecodeError::Corrupt(_) => SampleStatus::DecodeError,
                };
                self.out.push((index, failure(status, e.to_string())));
                return Ok(());
            }
        };
        self.timings.decode_s += t.elapsed().as_secs_f64();
        let spec = &self.cfg.spec;
        let t = Instant::now();
        let face = match &mut self.detector {
            Some(det) => {
                let Some(face) = det.detect(&img)? else {
                    self.timings.detect_s += t.elapsed().as_secs_f64();
                    // The same detail as a cache hit gives, so cold and warm runs write the same file.
                    let r = failure(SampleStatus::NoFace, self.no_face_detail());
                    self.out.push((index, r));
                    self.fresh.push((hash, Cached::NoFace));
                    return Ok(());
                };
                face
            }
            None => Face {
                bbox: [0.0, 0.0, img.width() as f32, img.height() as f32],
                landmarks: [[0.0; 2]; 5],
                score: 1.0,
            },
        };
        self.timings.detect_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let aligned = spec.crop().apply(&img, &face, spec.size);
        self.timings.align_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let s = spec.size as usize;
        let mut tensor = vec![0.0f32; 3 * s * s];
        write_tensor(
            &aligned,
            spec.layout,
            spec.color,
            &spec.normalization(),
            &mut tensor,
        );
        self.timings.align_s += t.elapsed().as_secs_f64();
        self.pending.push(Pending {
            index,
            hash,
            face,
            tensor,
        });
        if self.pending.len() >= self.embedder.batch {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        let n = self.pending.len();
        let input: Vec<f32> = self
            .pending
            .iter()
            .flat_map(|p| p.tensor.iter().copied())
            .collect();
        let t_net = Instant::now();
        let raw = self.embedder.run(&input, n)?;
        self.timings.embed_infer_s += t_net.elapsed().as_secs_f64();
        let dim = raw.len() / n;
        for (p, chunk) in std::mem::take(&mut self.pending)
            .into_iter()
            .zip(raw.chunks_exact(dim))
        {
            let mut v = chunk.to_vec();
            let tensor = self.cfg.keep_tensors.then_some(p.tensor);
            if l2_normalize(&mut v) {
                let r = SampleResult {
                    status: SampleStatus::Ok,
                    detail: String::new(),
                    embedding: Some(v.clone()),
                    face: Some(p.face),
                    cached: false,
                    tensor,
                };
                self.out.push((p.index, r));
                self.fresh.push((p.hash, Cached::Embedding(p.face, v)));
            } else {
                let mut r = failure(
                    SampleStatus::BadEmbedding,
                    "the model returned NaN/Inf or an all-zero embedding".into(),
                );
                r.face = Some(p.face);
                r.tensor = tensor;
                self.out.push((p.index, r));
            }
        }
        self.timings.embed_s += t.elapsed().as_secs_f64();
        Ok(())
    }
}

/// Opens the embedder once to learn the embedding length (for the cache key) without running anything.
pub fn probe_dim(rt: &Runtime, cfg: &ExtractConfig) -> Result<usize, String> {
    Ok(Embedder::open(rt, &cfg.model, &cfg.spec, 1, cfg.batch_size)?.dim)
}

/// Runs extraction over all samples. Per-image failures are results, not errors; an error means the
/// models could not be run at all.
pub fn extract(
    rt: &Runtime,
    samples: &[Sample],
    cfg: &ExtractConfig,
    cache: &EmbeddingCache,
) -> Result<ExtractOutput, String> {
    let start = Instant::now();
    let threads = cfg.threads.max(1).min(samples.len().max(1));
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let detector = match cfg.spec.template {
            Template::None => None,
            _ => Some(Detector::open(rt, &cfg.detector, cfg.detector_config, 1)?),
        };
        let embedder = Embedder::open_on(rt, &cfg.model, &cfg.spec, 1, cfg.batch_size, cfg.device)?;
        workers.push(Worker {
            cfg,
            cache,
            detector,
            embedder,
            timings: ExtractTimings::default(),
            out: Vec::new(),
            fresh: Vec::new(),
            pending: Vec::new(),
        });
    }
    let bar = crate::progress::bar(samples.len() as u64, "embedding", cfg.progress);
    let next = AtomicUsize::new(0);
    const CHUNK: usize = 8;
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let workers: Vec<Worker> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut w| {
                let (next, bar, first_error) = (&next, &bar, &first_error);
                scope.spawn(move || {
                    loop {
                        let begin = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if begin >= samples.len()
                            || first_error.lock().map(|e| e.is_some()).unwrap_or(true)
                        {
                            break;
                        }
                        let end = (begin + CHUNK).min(samples.len());
                        // Each finished chunk goes to the cache at once, so a killed run resumes.
                        let res = (begin..end)
                            .try_for_each(|i| w.process(i, &samples[i].path))
                            .and_then(|_| w.flush())
                            .and_then(|_| cache.append(&std::mem::take(&mut w.fresh)));
                        if let Err(e) = res {
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(e);
                            }
                            break;
                        }
                        bar.inc((end - begin) as u64);
                    }
                    w
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("extraction worker panicked"))
            .collect()
    });
    bar.finish_and_clear();
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut timings = ExtractTimings::default();
    let mut dim = 0;
    let mut slots: Vec<Option<SampleResult>> = vec![None; samples.len()];
    for w in workers {
        timings.read_s += w.timings.read_s;
        timings.decode_s += w.timings.decode_s;
        timings.detect_s += w.timings.detect_s;
        timings.align_s += w.timings.align_s;
        timings.embed_s += w.timings.embed_s;
        timings.embed_infer_s += w.timings.embed_infer_s;
        if let Some(d) = &w.detector {
            timings.detect_prepare_s += d.timings.prepare_s;
            timings.detect_infer_s += d.timings.infer_s;
            timings.detect_post_s += d.timings.post_s;
        }
        dim = dim.max(w.embedder.dim);
        for (i, r) in w.out {
            slots[i] = Some(r);
        }
    }
    let results: Vec<SampleResult> = slots
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                failure(
                    SampleStatus::ReadError,
                    format!("sample {i} was not processed"),
                )
            })
        })
        .collect();
    let cache_hits = results.iter().filter(|r| r.cached).count();
    timings.wall_s = start.elapsed().as_secs_f64();
    Ok(ExtractOutput {
        results,
        dim,
        timings,
        cache_hits,
    })
}

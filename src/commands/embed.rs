//! `facebias embed`: embeds a dataset only — `samples.csv`, `embeddings.npy` (and, with
//! `--dump-tensors`, the model input tensors) plus a short `run.json`.

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::common::{self, put};
use super::model::resolve_model;
use crate::cli::EmbedArgs;
use crate::embed::cache::EmbeddingCache;
use crate::embed::extract::{self, SampleStatus};
use crate::report::{self, record};
use crate::{manifest, runtime};

/// `facebias embed`.
pub fn embed(args: &EmbedArgs) -> Result<PathBuf> {
    let rt = runtime::load(args.model.ort_lib.as_deref())?;
    let staging = common::stage(&args.out)?;
    let manifest = manifest::load(&args.dataset, None, true)?;
    let model = resolve_model(&args.model)?;
    let mut cfg = common::extract_config(
        &model,
        &args.model,
        common::threads(args.exec.threads),
        args.exec.batch_size,
        args.dump_tensors,
        !args.exec.quiet,
    );
    let (device, device_note) =
        runtime::resolve_device(rt, args.exec.device).map_err(|e| anyhow!(e))?;
    cfg.device = device;
    cfg.max_pixels = args.exec.max_image_pixels;
    let cache = if args.dump_tensors {
        EmbeddingCache::disabled()
    } else {
        common::open_cache(rt, &model, &cfg, &args.exec)?
    };
    let ex = extract::extract(rt, &manifest.samples, &cfg, &cache).map_err(|e| anyhow!(e))?;
    let (emb, rows) = ex.matrix();
    let n = rows.iter().flatten().count();
    let samples_csv = report::samples_csv(&manifest, &ex.results, &rows).map_err(|e| anyhow!(e))?;
    put(&staging, "samples.csv", &samples_csv)?;
    put(
        &staging,
        "embeddings.npy",
        &report::npy_f32(&emb, n, ex.dim),
    )?;
    if args.dump_tensors {
        let tensors: Vec<f32> = ex
            .results
            .iter()
            .filter(|r| r.status == SampleStatus::Ok)
            .flat_map(|r| r.tensor.clone().unwrap_or_default())
            .collect();
        let per = tensors.len() / n.max(1);
        put(&staging, "tensors.npy", &report::npy_f32(&tensors, n, per))?;
    }
    let record = serde_json::json!({
        "schema_version": record::SCHEMA_VERSION,
        "model": {"path": model.path.display().to_string(), "sha256": model.sha256, "spec": model.spec},
        "detector": {"path": model.detector.display().to_string(), "sha256": model.detector_sha256},
        "images": manifest.samples.len(),
        "enrolled": n,
        "onnxruntime_version": rt.version,
        "execution_provider": device.provider(),
        "device_note": device_note,
    });
    let out = common::commit(staging, &record)?;
    println!(
        "embedded {n} of {} images into {}",
        manifest.samples.len(),
        out.display()
    );
    Ok(out)
}

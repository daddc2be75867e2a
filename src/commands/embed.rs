//! `facebias embed`: embeds a dataset only — `samples.csv`, `embeddings.npy` (and, with
//! `--dump-tensors`, the model input tensors) plus a short `run.json`. With `--shard K/N` it embeds
//! one contiguous share of the manifest's rows ([`crate::embed::folder::shard_range`]); `facebias
//! embed-merge` joins the N folders into the unsharded one.

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::common::{self, put};
use super::model::resolve_model;
use crate::cli::EmbedArgs;
use crate::compare::kernel::Shard;
use crate::embed::cache::EmbeddingCache;
use crate::embed::extract::{self, SampleStatus};
use crate::embed::folder::shard_range;
use crate::report::{self, record};
use crate::{manifest, runtime};

/// `facebias embed`.
pub fn embed(args: &EmbedArgs) -> Result<PathBuf> {
    let shard = args.shard.unwrap_or(Shard::ALL);
    let mut manifest = manifest::load(&args.dataset, None, true)?;
    let model = resolve_model(&args.model)?;
    let range = shard_range(manifest.samples.len(), shard);
    let expect = [
        ("/shard", serde_json::json!([shard.index, shard.count])),
        ("/dataset/manifest_sha256", manifest.sha256.clone().into()),
        ("/model/sha256", model.sha256.clone().into()),
        ("/model/spec", serde_json::to_value(&model.spec)?),
        ("/detector/sha256", model.detector_sha256.clone().into()),
        ("/tensors", args.dump_tensors.into()),
    ];
    if args.skip_finished
        && common::finished(&args.out, &expect, &["samples.csv", "embeddings.npy"])
    {
        println!(
            "{} already holds embedding shard {} of {} of this dataset and model; nothing to do",
            args.out.display(),
            shard.index,
            shard.count
        );
        return Ok(args.out.clone());
    }
    let rt = runtime::load(args.model.ort_lib.as_deref())?;
    let staging = common::stage(&args.out)?;
    let total = manifest.samples.len();
    let manifest_sha256 = manifest.sha256.clone();
    manifest.samples = manifest.samples[range.clone()].to_vec();
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
        "detector": {"path": model.detector.display().to_string(), "sha256": model.detector_sha256, "config": cfg.detector_config},
        "dataset": {"manifest": manifest.file.display().to_string(), "manifest_sha256": manifest_sha256, "images": total},
        "shard": [shard.index, shard.count],
        "samples": [range.start, range.end],
        "images": manifest.samples.len(),
        "enrolled": n,
        "tensors": args.dump_tensors,
        "onnxruntime_version": rt.version,
        "execution_provider": device.provider(),
        "device_note": device_note,
        "runtime": {
            "onnxruntime_version": rt.version,
            "library": rt.library.display().to_string(),
            "execution_provider": device.provider(),
            "device_note": device_note,
            "workers": cfg.threads,
            "intra_op_threads_per_worker": 1,
            "batch_size": args.exec.batch_size,
        },
        "timings_s": {"extract": ex.timings.wall_s},
        "cache_hits": ex.cache_hits,
    });
    let out = common::commit(staging, &record)?;
    let what = if shard.count > 1 {
        format!(
            " (embedding shard {} of {}: manifest rows {}..{} of {total})",
            shard.index, shard.count, range.start, range.end
        )
    } else {
        String::new()
    };
    println!(
        "embedded {n} of {} images into {}{what}",
        manifest.samples.len(),
        out.display()
    );
    Ok(out)
}

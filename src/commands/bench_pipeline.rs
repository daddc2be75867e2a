//! `facebias bench-pipeline`: decode + detect + align + embed throughput on a dataset, cache off,
//! against the networks' own cost measured first in the same process.

use anyhow::{anyhow, Result};

use super::common;
use super::model::resolve_model;
use crate::cli::BenchArgs;
use crate::embed::bench::{network_ceiling, PipelineBench};
use crate::embed::cache::EmbeddingCache;
use crate::embed::extract::{self, SampleStatus};
use crate::{manifest, runtime};

/// `facebias bench-pipeline`.
pub fn bench_pipeline(args: &BenchArgs) -> Result<PipelineBench> {
    let rt = runtime::load(args.model.ort_lib.as_deref())?;
    let mut manifest = manifest::load(&args.dataset, None, true)?;
    manifest.samples.truncate(args.images.max(1));
    let model = resolve_model(&args.model)?;
    let workers = common::threads(args.threads);
    let mut cfg = common::extract_config(&model, &args.model, workers, 32, false, false);
    let (device, device_note) = runtime::resolve_device(rt, args.device).map_err(|e| anyhow!(e))?;
    if !device_note.is_empty() {
        eprintln!("note: {device_note}");
    }
    cfg.device = device;
    // The networks alone first, while nothing else runs in this process.
    let ceiling = network_ceiling(rt, &manifest.samples, &cfg, 64, 5).map_err(|e| anyhow!(e))?;
    let mut runs = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let cache = EmbeddingCache::disabled();
        let ex = extract::extract(rt, &manifest.samples, &cfg, &cache).map_err(|e| anyhow!(e))?;
        let failures = ex
            .results
            .iter()
            .filter(|r| r.status != SampleStatus::Ok)
            .count();
        runs.push((ex.timings.wall_s, ex.timings, failures));
    }
    Ok(PipelineBench::from_runs(
        manifest.samples.len(),
        device.provider(),
        workers,
        runs,
        ceiling,
    ))
}

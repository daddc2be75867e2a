//! Steps that several commands share: worker count, the extraction stage's configuration and cache,
//! checking `--target-fmr`, finishing a report from saved comparisons, and committing it with its
//! `run.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use super::model::ResolvedModel;
use crate::cli::{AnalysisArgs, ExecArgs, ModelArgs};
use crate::embed::cache::{self, EmbeddingCache};
use crate::embed::extract::{self, ExtractConfig};
use crate::metrics::analysis::{self, Analysis};
use crate::metrics::bootstrap::BootstrapData;
use crate::metrics::{store, Comparisons};
use crate::preprocess::detect::DetectorConfig;
use crate::report::console::RunOutcome;
use crate::report::page::Context;
use crate::report::{record, render, Staging};
use crate::runtime::{self, Runtime};

/// Worker threads: `--threads`, else every core.
pub fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
    .max(1)
}

/// The extraction stage's configuration for `m` (on the CPU; callers set `device`).
pub fn extract_config(
    m: &ResolvedModel,
    model_args: &ModelArgs,
    threads: usize,
    batch_size: usize,
    keep_tensors: bool,
    progress: bool,
) -> ExtractConfig {
    ExtractConfig {
        model: m.path.clone(),
        spec: m.spec.clone(),
        detector: m.detector.clone(),
        detector_config: DetectorConfig {
            select: model_args.face_select,
            side: model_args.detect_size,
            max_upscale: model_args.detect_max_upscale,
            ..DetectorConfig::default()
        },
        threads,
        batch_size,
        keep_tensors,
        progress,
        device: runtime::Device::Cpu,
        max_pixels: crate::preprocess::DEFAULT_MAX_PIXELS,
    }
}

/// Opens the embedding cache of this model, detector and preprocessing (disabled by `--no-cache`).
pub fn open_cache(
    rt: &Runtime,
    m: &ResolvedModel,
    cfg: &ExtractConfig,
    exec: &ExecArgs,
) -> Result<EmbeddingCache> {
    if exec.no_cache {
        return Ok(EmbeddingCache::disabled());
    }
    let dim = extract::probe_dim(rt, cfg).map_err(|e| anyhow!(e))?;
    let key = format!(
        "{}-{}-{}-p{}-{:?}",
        &m.sha256[..16],
        &m.detector_sha256[..16],
        m.spec.preprocessing_fingerprint(),
        crate::preprocess::REVISION,
        cfg.detector_config.select
    )
    .to_lowercase();
    let dir = exec.cache_dir.clone().unwrap_or_else(cache::default_dir);
    let cache = EmbeddingCache::open(&dir, &key, dim).map_err(|e| anyhow!(e))?;
    let file = cache
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if let Some(aside) = cache.set_aside() {
        eprintln!(
            "warning: the embedding cache {file} was not readable (foreign header); it was moved to {} and a new cache started",
            aside.display()
        );
    }
    if cache.damaged() > 0 {
        eprintln!(
            "warning: {} damaged records in the embedding cache {file} were ignored; their images are embedded again",
            cache.damaged()
        );
    }
    Ok(cache)
}

/// Refuses a `--target-fmr` that is not a rate in (0, 1).
pub fn check_targets(targets: Option<&[f64]>) -> Result<()> {
    if let Some(bad) = targets
        .into_iter()
        .flatten()
        .find(|t| !(**t > 0.0 && **t < 1.0))
    {
        bail!("--target-fmr {bad} is not a rate in (0, 1)");
    }
    Ok(())
}

/// The metrics stage's settings from the command line.
pub fn analysis_options(opts: &AnalysisArgs) -> analysis::Options {
    analysis::Options {
        alpha: opts.alpha,
        bootstrap: opts.bootstrap,
        seed: opts.seed,
        reference_group: opts.reference_group.clone(),
    }
}

/// A staging folder for `--out` (fails fast when it cannot be written or holds other files).
pub fn stage(out: &Path) -> Result<Staging> {
    Staging::begin(out).map_err(|e| anyhow!(e))
}

/// Writes one file into the staging folder.
pub fn put(staging: &Staging, name: &str, bytes: &[u8]) -> Result<()> {
    staging.write(name, bytes).map_err(|e| anyhow!(e))
}

/// Copies the files `names` of folder `from` into the staging folder.
pub fn copy_into(staging: &Staging, from: &Path, names: &[&str]) -> Result<()> {
    for f in names {
        let path = from.join(f);
        let bytes =
            std::fs::read(&path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
        put(staging, f, &bytes)?;
    }
    Ok(())
}

/// Reads `dir/comparisons.bin`; `what` names the folder expected there (`shard folder`, `facebias run
/// folder`) for the error when it is missing.
pub fn read_comparisons(dir: &Path, what: &str) -> Result<(store::Header, Comparisons)> {
    let path = dir.join("comparisons.bin");
    let bytes = std::fs::read(&path).map_err(|e| {
        anyhow!(
            "cannot read {}; is {} a {what}?: {e}",
            path.display(),
            dir.display()
        )
    })?;
    store::from_bytes(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Metrics and report files from saved comparisons, into `staging`; fills the result fields of the
/// run record (`target_fmrs`, `thresholds`, counts, `files`, timings).
pub fn finish_report(
    staging: &Staging,
    header: &store::Header,
    c: &Comparisons,
    boot: Option<&BootstrapData>,
    opts: &AnalysisArgs,
    record: &mut serde_json::Value,
) -> Result<Analysis> {
    let partition = crate::metrics::groups::Partition {
        attributes: header.attributes.clone(),
        combos: header.combos.clone(),
        combo_of: Vec::new(),
    };
    crate::metrics::groups::check_reference(&partition, opts.reference_group.as_deref())
        .map_err(|e| anyhow!(e))?;
    let t_metrics = Instant::now();
    let requested = record::requested_targets(record);
    let options = analysis_options(opts);
    let analysis = analysis::analyse(header, c, requested.as_deref(), boot, &options);
    record::set_results(record, &analysis, c, &options).map_err(|e| anyhow!(e))?;
    record::set_timing(record, "metrics", t_metrics.elapsed().as_secs_f64());
    let t_report = Instant::now();
    render::write_report(staging.dir(), &analysis, &Context::from_record(record))
        .map_err(|e| anyhow!(e))?;
    record::set_timing(record, "report", t_report.elapsed().as_secs_f64());
    Ok(analysis)
}

/// Writes `run.json` and moves the finished report into place.
pub fn commit(staging: Staging, record: &serde_json::Value) -> Result<PathBuf> {
    put(
        &staging,
        "run.json",
        &record::to_bytes(record).map_err(|e| anyhow!(e))?,
    )?;
    staging.commit().map_err(|e| anyhow!(e))
}

/// The end-of-run summary of a finished report, with the image counts its run record holds.
pub fn outcome(out: PathBuf, record: &serde_json::Value, analysis: Analysis) -> RunOutcome {
    let (images, enrolled) = record::image_counts(record);
    RunOutcome {
        out,
        thresholds: analysis.thresholds,
        images,
        enrolled,
        rates: analysis.rates,
        equity: analysis.equity,
    }
}

/// Whether `out` already holds a finished folder of this very job (`--skip-finished`): its `run.json`
/// has every `(JSON pointer, value)` of `expect` (null: absent) and every file of `files` is there. A folder that
/// is missing, unfinished (no `run.json`: a killed job leaves only a hidden `.partial` sibling) or of
/// other inputs is not finished, and the job runs (replacing it only if it is a facebias folder).
pub fn finished(out: &Path, expect: &[(&str, serde_json::Value)], files: &[&str]) -> bool {
    let Ok(record) = record::read(out) else {
        return false;
    };
    expect
        .iter()
        .all(|(pointer, want)| record.pointer(pointer).unwrap_or(&serde_json::Value::Null) == want)
        && files.iter().all(|f| out.join(f).is_file())
}

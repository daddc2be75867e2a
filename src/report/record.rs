//! `run.json`, the run record: what was run on what, with which software, and what came out. Every
//! report folder has one; `facebias report` and `facebias merge` read it back.
//!
//! The record is built once as a [`RunRecord`] when a run has embedded and compared, turned into a JSON
//! value, and then completed by the later steps: the pair protocol ([`set_protocol`]), the bootstrap
//! request ([`set_bootstrap_request`]), a shard's marker ([`set_partial`]) or the results of the
//! metrics stage ([`set_results`]). Keys are written in sorted order (serde_json's map), so the bytes
//! depend only on the values.
//!
//! Everything except the `execution` block is identical for identical inputs; `execution` holds
//! timings, cache use and sharding.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::embed::extract::ExtractTimings;
use crate::embed::spec::ModelSpec;
use crate::manifest::protocol::{FoldAccuracy, PairList};
use crate::manifest::Warning;
use crate::metrics::analysis::{Analysis, Options};
use crate::metrics::Comparisons;
use crate::preprocess::detect::DetectorConfig;

/// Schema version of `run.json` and the other report files; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The files of a finished (unsharded) report, as listed in `run.json`.
pub const REPORT_FILES: [&str; 21] = [
    "index.html",
    "summary.md",
    "samples.csv",
    "embeddings.npy",
    "comparisons.bin",
    "bootstrap.bin",
    "groups.csv",
    "cross_fmr.csv",
    "equity.csv",
    "policies.csv",
    "relative.csv",
    "top_impostors.csv",
    "worst_genuine.csv",
    "top_impostors.png",
    "det_*",
    "rates_*",
    "scores_*",
    "heatmap_*",
    "dots_*",
    "relative_*",
    "relative_fnmr_* (.png and .svg)",
];

/// The tool that wrote the record.
#[derive(Debug, Clone, Serialize)]
pub struct ToolRecord {
    /// `facebias`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
    /// Git revision the binary was built from (`build.rs`).
    pub git_revision: &'static str,
}

impl ToolRecord {
    /// This binary.
    pub fn current() -> ToolRecord {
        ToolRecord {
            name: "facebias",
            version: env!("CARGO_PKG_VERSION"),
            git_revision: env!("FACEBIAS_GIT_REVISION"),
        }
    }
}

/// The embedding model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRecord {
    /// Model file.
    pub path: String,
    /// Its sha256.
    pub sha256: String,
    /// The preprocessing and input/output spec used.
    pub spec: ModelSpec,
}

/// The face detector.
#[derive(Debug, Clone, Serialize)]
pub struct DetectorRecord {
    /// Detector file.
    pub path: String,
    /// Its sha256.
    pub sha256: String,
    /// Face selection and detection size.
    pub config: DetectorConfig,
}

/// The dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetRecord {
    /// Folder or file name of `--dataset`.
    pub name: String,
    /// Manifest file read (or the adapter's source file).
    pub manifest: String,
    /// Its sha256.
    pub manifest_sha256: String,
    /// Images listed.
    pub images: usize,
    /// Distinct subjects.
    pub subjects: usize,
    /// Attribute columns.
    pub attributes: Vec<String>,
    /// Validation warnings.
    pub warnings: Vec<Warning>,
}

/// Where the embedding model ran.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeRecord {
    /// ONNX Runtime version, as the library reports it.
    pub onnxruntime_version: String,
    /// The shared library loaded.
    pub library: String,
    /// Execution provider (CPU or CUDA).
    pub execution_provider: String,
    /// Why `--device auto` chose what it chose (empty otherwise).
    pub device_note: String,
    /// Parallel workers.
    pub workers: usize,
    /// ONNX Runtime intra-op threads of each worker.
    pub intra_op_threads_per_worker: usize,
    /// Images per inference batch.
    pub batch_size: usize,
}

/// The comparison stage.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRecord {
    /// Kernel name (`avx2-fma-6x16`, …).
    pub kernel: &'static str,
    /// Device it ran on.
    pub device: String,
    /// Storage precision of the embeddings (`fp32`, `bf16`, `fp16`).
    pub precision: &'static str,
    /// Why `--device auto` chose what it chose (empty otherwise).
    pub device_note: String,
    /// Score histogram bins.
    pub bins: usize,
    /// What a score is.
    pub score: &'static str,
}

impl CompareRecord {
    /// What every run's `compare.score` says.
    pub const SCORE: &'static str =
        "cosine similarity of L2-normalised embeddings; a pair matches when score >= threshold";
}

/// Run-dependent facts (timings, cache use, sharding).
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionRecord {
    /// Seconds per stage.
    pub timings_s: BTreeMap<&'static str, f64>,
    /// Extraction stage times summed over workers.
    pub extract: ExtractTimings,
    /// Embedding cache file, if one was used.
    pub cache_file: Option<String>,
    /// Images served from the cache (reused, not embedded again: a resumed run's finished work).
    pub cache_hits: usize,
    /// Cache records ignored as damaged (failed checksum or validation); their images were re-embedded.
    pub cache_damaged_records: usize,
    /// Where an unreadable cache file was moved before a new one was started, if one was.
    pub cache_set_aside: Option<String>,
    /// `[index, count]` of this shard; `[0, 1]` for a whole run.
    pub shard: [usize; 2],
}

/// `run.json` as first written by `run`; the later steps add to its JSON value.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The tool.
    pub tool: ToolRecord,
    /// The embedding model.
    pub model: ModelRecord,
    /// The face detector.
    pub detector: DetectorRecord,
    /// The dataset.
    pub dataset: DatasetRecord,
    /// ONNX Runtime.
    pub runtime: RuntimeRecord,
    /// The comparison stage.
    pub compare: CompareRecord,
    /// The seed of the run's only random step, the subject bootstrap (the same as `bootstrap.seed`).
    pub seed: u64,
    /// What the seed covers.
    pub seed_note: &'static str,
    /// `--target-fmr` as given.
    pub requested_target_fmrs: Option<Vec<f64>>,
    /// Targets used (filled by [`set_results`]).
    pub target_fmrs: Vec<f64>,
    /// Global thresholds (filled by [`set_results`]).
    pub thresholds: Vec<crate::metrics::Threshold>,
    /// Which comparisons calibrate the thresholds.
    pub calibration_population: &'static str,
    /// Failures to enrol by reason.
    pub skipped: BTreeMap<&'static str, usize>,
    /// Files of the folder (filled by [`set_results`] or [`set_partial`]).
    pub files: Vec<&'static str>,
    /// Run-dependent (timings, cache use, sharding); everything else is identical for identical inputs.
    pub execution: ExecutionRecord,
}

impl RunRecord {
    /// What `seed` covers.
    pub const SEED_NOTE: &'static str =
        "the subject bootstrap is the only random step; its draws (SplitMix64) start from this seed";
    /// `calibration_population` of a 1:1 run.
    pub const CALIBRATION: &'static str = "all non-mated comparisons of the dataset";

    /// The record as a JSON value, for the later steps to complete.
    pub fn to_value(&self) -> Result<serde_json::Value, String> {
        serde_json::to_value(self).map_err(|e| format!("cannot serialise run.json: {e}"))
    }
}

/// Adds the dataset's own pair protocol and its k-fold accuracy (`acc[0]` is the overall row).
pub fn set_protocol(record: &mut serde_json::Value, list: &PairList, acc: &[FoldAccuracy]) {
    record["protocol"] = serde_json::json!({
        "name": list.name,
        "pairs": list.pairs.len(),
        "pairs_missing_from_dataset": list.missing,
        "mated": list.pairs.iter().filter(|p| p.mated).count(),
        "evaluation": "k-fold: each fold's threshold maximises accuracy on the other folds; mean and std of fold accuracies",
        "accuracy": acc.first().map(|a| a.accuracy),
        "accuracy_std": acc.first().map(|a| a.std),
    });
}

/// The bootstrap as requested, with `note` saying why there are no intervals (empty when there are);
/// [`set_results`] replaces it with the full description.
pub fn set_bootstrap_request(record: &mut serde_json::Value, opts: &Options, note: &str) {
    record["bootstrap"] = serde_json::json!({"replicates": opts.bootstrap, "seed": opts.seed, "alpha": opts.alpha, "note": note});
}

/// Records `--exclude-pairs`: the file, its sha256, and how many pairs (mated, scored) it took out.
pub fn set_exclusions(
    record: &mut serde_json::Value,
    file: &Path,
    pairs: usize,
    mated: usize,
    scored: usize,
) {
    record["exclusions"] = serde_json::json!({
        "file": file.display().to_string(),
        "sha256": crate::embed::spec::sha256_file(file).unwrap_or_default(),
        "pairs": pairs,
        "mated": mated,
        "nonmated": pairs - mated,
        "scored": scored,
        "note": "pairs judged label errors by the user; every count, rate, threshold and interval leaves them out",
    });
}

/// Marks the record of shard `index` of `count`: its files are partial until `facebias merge`.
pub fn set_partial(record: &mut serde_json::Value, index: usize, count: usize) {
    record["files"] =
        serde_json::json!(["samples.csv", "embeddings.npy", "comparisons.bin (partial)"]);
    record["partial"] = serde_json::json!(format!(
        "shard {index} of {count}: run `facebias merge` over all {count} shard folders"
    ));
}

/// Turns the record of shard 0 into that of the merged run.
pub fn set_merged(record: &mut serde_json::Value, shards: &[&Path]) {
    if let Some(o) = record.as_object_mut() {
        o.remove("partial");
    }
    record["execution"]["shard"] = serde_json::json!([0, 1]);
    record["execution"]["merged_from"] = serde_json::json!(shards
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>());
}

/// The `--target-fmr` values the record asks for (`None`: the defaults).
pub fn requested_targets(record: &serde_json::Value) -> Option<Vec<f64>> {
    serde_json::from_value(record["requested_target_fmrs"].clone()).unwrap_or(None)
}

/// Fills the results of the metrics stage: targets, thresholds, comparison counts, the bootstrap's
/// description and the file list.
pub fn set_results(
    record: &mut serde_json::Value,
    analysis: &Analysis,
    c: &Comparisons,
    opts: &Options,
) -> Result<(), String> {
    record["target_fmrs"] = serde_json::json!(analysis
        .thresholds
        .iter()
        .map(|t| t.target_fmr)
        .collect::<Vec<_>>());
    record["thresholds"] = serde_json::to_value(&analysis.thresholds)
        .map_err(|e| format!("cannot serialise the thresholds: {e}"))?;
    record["compare"]["mated_comparisons_scored"] =
        serde_json::json!(c.mated.iter().map(|h| h.total()).sum::<u64>());
    record["compare"]["nonmated_comparisons_scored"] =
        serde_json::json!(c.nonmated.cells.iter().map(|h| h.total()).sum::<u64>());
    record["seed"] = serde_json::json!(opts.seed);
    record["bootstrap"] = serde_json::json!({
        "replicates": opts.bootstrap,
        "seed": opts.seed,
        "alpha": opts.alpha,
        "reference_group": opts.reference_group,
        "resampling": "subjects, with replacement, within each finest group (attribute-value combination)",
        "interval": "2.5 and 97.5 percentiles",
        "note": analysis.bootstrap_note,
    });
    record["files"] = serde_json::json!(REPORT_FILES);
    Ok(())
}

/// Records the seconds a stage took under `execution.timings_s`.
pub fn set_timing(record: &mut serde_json::Value, stage: &str, seconds: f64) {
    record["execution"]["timings_s"][stage] = serde_json::json!(seconds);
}

/// Reads `dir/run.json`.
pub fn read(dir: &Path) -> Result<serde_json::Value, String> {
    let path = dir.join("run.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// `run.json` bytes: the record, pretty-printed.
pub fn to_bytes(record: &serde_json::Value) -> Result<Vec<u8>, String> {
    serde_json::to_vec_pretty(record).map_err(|e| format!("cannot serialise run.json: {e}"))
}

/// Images and images with an embedding, as the record counts them (`dataset.images` less every
/// failure to enrol in `skipped`).
pub fn image_counts(record: &serde_json::Value) -> (usize, usize) {
    let images = record["dataset"]["images"].as_u64().unwrap_or(0) as usize;
    let skipped = record["skipped"]
        .as_object()
        .map(|o| o.values().filter_map(|v| v.as_u64()).sum::<u64>())
        .unwrap_or(0) as usize;
    (images, images.saturating_sub(skipped))
}

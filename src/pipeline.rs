//! The pipeline behind each command: validates the arguments into configurations (failing fast, before
//! any long computation), then runs the stages in order: manifest → embed → compare → metrics → report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::cli::{
    AnalysisArgs, AuditArgs, BenchArgs, DatasetsArgs, DemoArgs, EmbedArgs, ExecArgs, InspectArgs,
    KernelBenchArgs, MergeArgs, ModelArgs, ReportArgs, RunArgs,
};
use crate::compare::{self, ScoreHistogram, BINS};
use crate::embed::cache::{self, EmbeddingCache};
use crate::embed::extract::{self, ExtractConfig, ExtractOutput, ExtractTimings, SampleStatus};
use crate::embed::spec::{self, ModelSpec, Template};
use crate::embed::{declared_shape, inspect};
use crate::manifest::{self, Manifest};
use crate::metrics::analysis::{self, chart_threshold, Analysis};
use crate::metrics::groups::Partition;
use crate::metrics::{self, store, Comparisons, Threshold};
use crate::preprocess::detect::DetectorConfig;
use crate::report::{self, charts, Staging};
use crate::runtime::{self, Runtime};

/// The model, detector and spec a run uses.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// Embedding model file.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: String,
    /// The spec used (catalogue entry with any overrides).
    pub spec: ModelSpec,
    /// Detector file.
    pub detector: PathBuf,
    /// Detector sha256.
    pub detector_sha256: String,
}

/// Resolves `--model` and the spec flags into a model + spec; an unknown model without a spec is an error
/// that says which flags to give.
pub fn resolve_model(args: &ModelArgs) -> Result<ResolvedModel> {
    let (path, catalogue_spec) =
        spec::resolve(&args.model, args.models_dir.as_deref()).map_err(|e| anyhow!(e))?;
    let sha256 = spec::sha256_file(&path)
        .with_context(|| format!("cannot read model {}", path.display()))?;
    let mut s = match (&args.spec, catalogue_spec) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --spec {}", file.display()))?;
            toml::from_str::<ModelSpec>(&text).map_err(|e| {
                anyhow!(
                    "--spec {}: {e}; the fields are those of a models/models.toml entry",
                    file.display()
                )
            })?
        }
        (None, Some(s)) => s,
        (None, None) => {
            let overrides = args.input_name.is_some()
                && args.output_name.is_some()
                && args.input_size.is_some()
                && args.layout.is_some()
                && args.color.is_some()
                && args.pixel_scale.is_some()
                && args.mean.is_some()
                && args.std.is_some();
            if !overrides {
                bail!(
                    "model {} (sha256 {sha256}) is not in the catalogue; describe its preprocessing with --spec FILE.toml, \
                     or all of --input-name --output-name --input-size --layout --color --pixel-scale --mean --std \
                     (and --template; `facebias inspect {}` shows its inputs and outputs)",
                    path.display(),
                    path.display()
                );
            }
            ModelSpec {
                name: "custom".into(),
                role: "embedding".into(),
                file: path.display().to_string(),
                sha256: sha256.clone(),
                bytes: 0,
                input: String::new(),
                output: String::new(),
                size: 0,
                layout: crate::preprocess::tensor::Layout::Nchw,
                color: crate::preprocess::tensor::ColorOrder::Rgb,
                pixel_scale: 1.0,
                mean: [0.0; 3],
                std: [1.0; 3],
                template: Template::Arcface112,
                dim: 0,
                license: "unknown".into(),
                source: "user-supplied".into(),
            }
        }
    };
    if s.role != "embedding" {
        bail!(
            "--model {} is a {} in the catalogue, not an embedding model",
            args.model,
            s.role
        );
    }
    if let Some(v) = &args.input_name {
        s.input = v.clone();
    }
    if let Some(v) = &args.output_name {
        s.output = v.clone();
    }
    if let Some(v) = args.input_size {
        s.size = v;
    }
    if let Some(v) = args.layout {
        s.layout = v;
    }
    if let Some(v) = args.color {
        s.color = v;
    }
    if let Some(v) = args.pixel_scale {
        s.pixel_scale = v as f64;
    }
    if let Some(v) = &args.mean {
        s.mean = [v[0] as f64, v[1] as f64, v[2] as f64];
    }
    if let Some(v) = &args.std {
        if v.contains(&0.0) {
            bail!("--std must not contain 0 (got {v:?})");
        }
        s.std = [v[0] as f64, v[1] as f64, v[2] as f64];
    }
    if let Some(v) = args.template {
        s.template = v;
    }
    if s.size == 0 {
        bail!("the model spec has no input size; give --input-size");
    }
    let detector = match &args.detector {
        Some(p) if p.is_file() => p.clone(),
        Some(p) => bail!("--detector {} does not exist", p.display()),
        None => {
            spec::resolve("yunet-dynamic", args.models_dir.as_deref())
                .map_err(|e| anyhow!(e))?
                .0
        }
    };
    let detector_sha256 = spec::sha256_file(&detector)
        .with_context(|| format!("cannot read detector {}", detector.display()))?;
    Ok(ResolvedModel {
        path,
        sha256,
        spec: s,
        detector,
        detector_sha256,
    })
}

fn threads(t: Option<usize>) -> usize {
    t.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
    .max(1)
}

fn extract_config(
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
    }
}

fn open_cache(
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
        "{}-{}-{}-{:?}",
        &m.sha256[..16],
        &m.detector_sha256[..16],
        m.spec.preprocessing_fingerprint(),
        cfg.detector_config.select
    )
    .to_lowercase();
    let dir = exec.cache_dir.clone().unwrap_or_else(cache::default_dir);
    EmbeddingCache::open(&dir, &key, dim).map_err(|e| anyhow!(e))
}

/// Everything `run` computed, for the summary printed at the end.
pub struct RunOutcome {
    /// The report folder.
    pub out: PathBuf,
    /// Global thresholds.
    pub thresholds: Vec<Threshold>,
    /// Images, enrolled.
    pub images: usize,
    /// Images with an embedding.
    pub enrolled: usize,
    /// Per-group rates.
    pub rates: Vec<metrics::GroupRate>,
    /// Summary metrics.
    pub equity: Vec<metrics::EquityRow>,
}

#[derive(Serialize)]
struct ToolRecord {
    name: &'static str,
    version: &'static str,
    git_revision: &'static str,
}

#[derive(Serialize)]
struct ModelRecord {
    path: String,
    sha256: String,
    spec: ModelSpec,
}

#[derive(Serialize)]
struct DetectorRecord {
    path: String,
    sha256: String,
    config: DetectorConfig,
}

#[derive(Serialize)]
struct DatasetRecord {
    name: String,
    manifest: String,
    manifest_sha256: String,
    images: usize,
    subjects: usize,
    attributes: Vec<String>,
    warnings: Vec<manifest::Warning>,
}

#[derive(Serialize)]
struct RuntimeRecord {
    onnxruntime_version: String,
    library: String,
    execution_provider: String,
    device_note: String,
    workers: usize,
    intra_op_threads_per_worker: usize,
    batch_size: usize,
}

#[derive(Serialize)]
struct CompareRecord {
    kernel: &'static str,
    device: String,
    precision: &'static str,
    device_note: String,
    bins: usize,
    score: &'static str,
}

#[derive(Serialize)]
struct ExecutionRecord {
    timings_s: BTreeMap<&'static str, f64>,
    extract: ExtractTimings,
    cache_file: Option<String>,
    cache_hits: usize,
    shard: [usize; 2],
}

#[derive(Serialize)]
struct RunRecord {
    schema_version: u32,
    tool: ToolRecord,
    model: ModelRecord,
    detector: DetectorRecord,
    dataset: DatasetRecord,
    runtime: RuntimeRecord,
    compare: CompareRecord,
    seed: u64,
    seed_note: &'static str,
    requested_target_fmrs: Option<Vec<f64>>,
    target_fmrs: Vec<f64>,
    thresholds: Vec<Threshold>,
    calibration_population: &'static str,
    skipped: BTreeMap<&'static str, usize>,
    files: Vec<&'static str>,
    /// Run-dependent (timings, cache use, sharding); everything else is identical for identical inputs.
    execution: ExecutionRecord,
}

/// Maps subject ids to dense integers in sorted order.
fn subject_ids(m: &Manifest) -> Vec<u32> {
    let mut names: Vec<&str> = m.samples.iter().map(|s| s.subject.as_str()).collect();
    names.sort();
    names.dedup();
    m.samples
        .iter()
        .map(|s| names.binary_search(&s.subject.as_str()).unwrap_or(0) as u32)
        .collect()
}

/// `facebias run`.
pub fn run(args: &RunArgs) -> Result<RunOutcome> {
    let t_total = Instant::now();
    // Fail fast: runtime, font, output folder, manifest, model — before any long computation.
    let rt = runtime::load(args.model.ort_lib.as_deref())?;
    charts::ensure_font().map_err(|e| anyhow!(e))?;
    let staging = Staging::begin(&args.out).map_err(|e| anyhow!(e))?;
    let adapted = manifest::adapters::load(
        &args.dataset,
        args.adapter,
        args.attributes.as_deref(),
        true,
    )?;
    let (manifest, protocol_pairs) = (adapted.manifest, adapted.pairs);
    for w in &manifest.warnings {
        eprintln!("warning: {}", w.message);
    }
    let model = resolve_model(&args.model)?;
    let partition =
        Partition::new(&manifest.attributes, &manifest.samples).map_err(|e| anyhow!(e))?;
    if let Some(targets) = &args.target_fmr {
        if let Some(bad) = targets.iter().find(|t| !(**t > 0.0 && **t < 1.0)) {
            bail!("--target-fmr {bad} is not a rate in (0, 1)");
        }
    }
    let workers = threads(args.exec.threads);
    let mut cfg = extract_config(
        &model,
        &args.model,
        workers,
        args.exec.batch_size,
        false,
        !args.exec.quiet,
    );
    let (device, device_note) =
        runtime::resolve_device(rt, args.exec.device).map_err(|e| anyhow!(e))?;
    cfg.device = device;
    // The comparison device is opened (and its kernels compiled) before the long embedding stage.
    let (mut backend, compare_note) =
        compare::backend::Backend::select(args.exec.device, args.precision, workers)?;
    let mut cache = open_cache(rt, &model, &cfg, &args.exec)?;

    // Embed.
    let ex = extract::extract(rt, &manifest.samples, &cfg, &mut cache).map_err(|e| anyhow!(e))?;
    let mut skipped: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in &ex.results {
        if r.status != SampleStatus::Ok {
            *skipped.entry(r.status.as_str()).or_default() += 1;
        }
    }
    for (reason, n) in &skipped {
        eprintln!(
            "note: {n} of {} images are failures to enrol ({reason}); see samples.csv",
            manifest.samples.len()
        );
    }
    let (emb, rows) = embedding_matrix(&ex);
    let enrolled_idx: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|_| i))
        .collect();
    if enrolled_idx.len() < 2 {
        bail!(
            "only {} of {} images could be enrolled; nothing to compare (see the notes above)",
            enrolled_idx.len(),
            manifest.samples.len()
        );
    }

    // Compare.
    let t_compare = Instant::now();
    let subjects = subject_ids(&manifest);
    let e_combo: Vec<u16> = enrolled_idx
        .iter()
        .map(|&i| partition.combo_of[i])
        .collect();
    let e_subject: Vec<u32> = enrolled_idx.iter().map(|&i| subjects[i]).collect();
    let combos = partition.combos.len();
    let shard = args.shard.unwrap_or(compare::kernel::Shard::ALL);
    let pairs = backend.all_pairs(&emb, ex.dim, &e_combo, &e_subject, combos, shard)?;
    let mut mated_hist = vec![ScoreHistogram::default(); combos];
    for m in &pairs.mated {
        mated_hist[e_combo[m.a] as usize].counts[compare::bin_of(m.score)] += 1;
    }
    let enrolled: Vec<bool> = rows.iter().map(Option::is_some).collect();
    let comparisons = Comparisons::new(
        combos,
        &partition.combo_of,
        &subjects,
        &enrolled,
        pairs.nonmated,
        mated_hist,
    );
    let compare_s = t_compare.elapsed().as_secs_f64();

    let samples_csv = report::samples_csv(&manifest, &ex.results, &rows).map_err(|e| anyhow!(e))?;
    let embeddings_npy = report::npy_f32(&emb, enrolled_idx.len(), ex.dim);
    let header = store::Header {
        attributes: partition.attributes.clone(),
        combos: partition.combos.clone(),
        shard: [shard.index, shard.count],
        fingerprint: fingerprint(&[&samples_csv, &embeddings_npy]),
        kernel: backend.kernel_name().into(),
    };
    staging
        .write("samples.csv", &samples_csv)
        .map_err(|e| anyhow!(e))?;
    staging
        .write("embeddings.npy", &embeddings_npy)
        .map_err(|e| anyhow!(e))?;
    staging
        .write("comparisons.bin", &store::to_bytes(&header, &comparisons))
        .map_err(|e| anyhow!(e))?;
    let protocol = protocol_pairs
        .as_ref()
        .map(|list| protocol_accuracy(list, &manifest, &emb, ex.dim, &rows));
    if let Some(rows) = &protocol {
        staging
            .write(
                "protocol.csv",
                &report::rows_csv(rows).map_err(|e| anyhow!(e))?,
            )
            .map_err(|e| anyhow!(e))?;
    }
    let mut bootstrap_note = String::new();
    let mut boot_data = None;
    if shard.count == 1 && args.analysis.bootstrap > 0 {
        // Second pass: the non-mated pairs at or above the lowest threshold, for the subject bootstrap.
        let total: u64 = comparisons.nonmated_total.iter().sum();
        let targets = args
            .target_fmr
            .clone()
            .unwrap_or_else(|| metrics::default_targets(total));
        let cutoff = metrics::global_thresholds(&comparisons, &targets)
            .iter()
            .map(|t| t.bin)
            .min()
            .unwrap_or(BINS);
        let high_count: u64 = comparisons
            .nonmated
            .cells
            .iter()
            .map(|h| h.counts.get(cutoff..).map_or(0, |t| t.iter().sum::<u64>()))
            .sum();
        if high_count <= MAX_BOOTSTRAP_PAIRS {
            let high = backend.high_pairs(
                &emb, ex.dim, &e_combo, &e_subject, combos, cutoff, high_count,
            )?;
            let boot = bootstrap_data(
                &manifest,
                &partition.combo_of,
                &subjects,
                &e_subject,
                &pairs.mated,
                &high,
                cutoff,
            );
            staging
                .write("bootstrap.bin", &boot.to_bytes())
                .map_err(|e| anyhow!(e))?;
            boot_data = Some(boot);
        } else {
            bootstrap_note = format!("{high_count} pairs above the lowest threshold exceed the bootstrap's limit of {MAX_BOOTSTRAP_PAIRS}; no intervals");
        }
    } else if shard.count > 1 {
        bootstrap_note =
            "sharded run: intervals need an unsharded run (the bootstrap keeps per-subject pairs)"
                .into();
    }

    let manifest_sha256 = manifest.sha256.clone();
    let mut timings_s = BTreeMap::new();
    timings_s.insert("extract", ex.timings.wall_s);
    timings_s.insert("compare", compare_s);
    let record = RunRecord {
        schema_version: report::SCHEMA_VERSION,
        tool: ToolRecord { name: "facebias", version: env!("CARGO_PKG_VERSION"), git_revision: env!("FACEBIAS_GIT_REVISION") },
        model: ModelRecord { path: model.path.display().to_string(), sha256: model.sha256.clone(), spec: model.spec.clone() },
        detector: DetectorRecord { path: model.detector.display().to_string(), sha256: model.detector_sha256.clone(), config: cfg.detector_config },
        dataset: DatasetRecord {
            name: args.dataset.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
            manifest: manifest.file.display().to_string(),
            manifest_sha256,
            images: manifest.samples.len(),
            subjects: manifest.subject_count(),
            attributes: manifest.attributes.clone(),
            warnings: manifest.warnings.clone(),
        },
        runtime: RuntimeRecord {
            onnxruntime_version: rt.version.clone(),
            library: rt.library.display().to_string(),
            execution_provider: device.provider(),
            device_note: device_note.clone(),
            workers,
            intra_op_threads_per_worker: 1,
            batch_size: args.exec.batch_size,
        },
        compare: CompareRecord {
            kernel: backend.kernel_name(),
            device: backend.describe(),
            precision: backend.precision().name(),
            device_note: compare_note.clone(),
            bins: BINS,
            score: "cosine similarity of L2-normalised embeddings; a pair matches when score >= threshold",
        },
        seed: 0,
        seed_note: "no random sampling in this run; the seed is recorded for the resampling stages",
        requested_target_fmrs: args.target_fmr.clone(),
        target_fmrs: Vec::new(),
        thresholds: Vec::new(),
        calibration_population: "all non-mated comparisons of the dataset",
        skipped: skipped.clone(),
        files: Vec::new(),
        execution: ExecutionRecord {
            timings_s,
            extract: ex.timings.clone(),
            cache_file: cache.path().map(|p| p.display().to_string()),
            cache_hits: ex.cache_hits,
            shard: [shard.index, shard.count],
        },
    };
    let mut record = serde_json::to_value(&record).context("cannot serialise run.json")?;
    record["dataset"]["adapter"] = serde_json::to_value(adapted.adapter)?;
    if let (Some(list), Some(acc)) = (&protocol_pairs, &protocol) {
        record["protocol"] = serde_json::json!({
            "name": list.name,
            "pairs": list.pairs.len(),
            "pairs_missing_from_dataset": list.missing,
            "mated": list.pairs.iter().filter(|p| p.mated).count(),
            "evaluation": "k-fold: each fold's threshold maximises accuracy on the other folds; mean and std of fold accuracies",
            "accuracy": acc.first().map(|a| a.accuracy),
            "accuracy_std": acc.first().map(|a| a.std),
        });
        if let Some(a) = acc.first() {
            eprintln!("note: {} protocol: {} pairs, {}-fold accuracy {:.4} ± {:.4} ({} pairs of the list are not in the dataset)", list.name, a.pairs, a.folds, a.accuracy, a.std, list.missing);
        }
    }
    record["bootstrap"] = serde_json::json!({"replicates": args.analysis.bootstrap, "seed": args.analysis.seed, "alpha": args.analysis.alpha, "note": bootstrap_note});
    if shard.count > 1 {
        // A shard stops here: its partial histograms wait for `facebias merge`.
        record["files"] =
            serde_json::json!(["samples.csv", "embeddings.npy", "comparisons.bin (partial)"]);
        record["partial"] = serde_json::json!(format!(
            "shard {} of {}: run `facebias merge` over all {} shard folders",
            shard.index, shard.count, shard.count
        ));
        staging
            .write("run.json", &serde_json::to_vec_pretty(&record)?)
            .map_err(|e| anyhow!(e))?;
        let out = staging.commit().map_err(|e| anyhow!(e))?;
        return Ok(RunOutcome {
            out,
            thresholds: Vec::new(),
            images: manifest.samples.len(),
            enrolled: enrolled_idx.len(),
            rates: Vec::new(),
            equity: Vec::new(),
        });
    }
    let analysis = finish_report(
        &staging,
        &header,
        &comparisons,
        boot_data.as_ref(),
        &args.analysis,
        &mut record,
    )?;
    record["execution"]["timings_s"]["total"] = serde_json::json!(t_total.elapsed().as_secs_f64());
    staging
        .write("run.json", &serde_json::to_vec_pretty(&record)?)
        .map_err(|e| anyhow!(e))?;
    let out = staging.commit().map_err(|e| anyhow!(e))?;
    Ok(RunOutcome {
        out,
        thresholds: analysis.thresholds,
        images: manifest.samples.len(),
        enrolled: enrolled_idx.len(),
        rates: analysis.rates,
        equity: analysis.equity,
    })
}

/// sha256 over several byte strings (length-prefixed), as hex.
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    for p in parts {
        sha2::Digest::update(&mut h, (p.len() as u64).to_le_bytes());
        sha2::Digest::update(&mut h, p);
    }
    spec::hex(&sha2::Digest::finalize(h))
}

/// Most non-mated pairs the bootstrap keeps in memory (10 bytes each on disk).
const MAX_BOOTSTRAP_PAIRS: u64 = 50_000_000;

/// Per-subject data for the bootstrap from the manifest and the kernel's mated and high pairs.
fn bootstrap_data(
    manifest: &Manifest,
    combo_of: &[u16],
    subjects: &[u32],
    e_subject: &[u32],
    mated: &[compare::MatedScore],
    high: &[(usize, usize, u16)],
    cutoff: usize,
) -> metrics::bootstrap::BootstrapData {
    let n_subjects = subjects.iter().map(|&s| s as usize + 1).max().unwrap_or(0);
    let mut d = metrics::bootstrap::BootstrapData {
        subject_combo: vec![0; n_subjects],
        subject_images: vec![0; n_subjects],
        mated_bins: vec![Vec::new(); n_subjects],
        high: high
            .iter()
            .map(|&(a, b, bin)| (e_subject[a], e_subject[b], bin))
            .collect(),
        cutoff_bin: cutoff,
    };
    for (i, &s) in subjects.iter().enumerate().take(manifest.samples.len()) {
        d.subject_combo[s as usize] = combo_of[i];
        d.subject_images[s as usize] += 1;
    }
    for m in mated {
        d.mated_bins[e_subject[m.a] as usize].push(compare::bin_of(m.score) as u16);
    }
    d
}

/// Metrics and report files from saved comparisons, into `staging`; fills the result fields of the
/// run record (`target_fmrs`, `thresholds`, counts, `files`, timings).
fn finish_report(
    staging: &Staging,
    header: &store::Header,
    c: &Comparisons,
    boot: Option<&metrics::bootstrap::BootstrapData>,
    opts: &AnalysisArgs,
    record: &mut serde_json::Value,
) -> Result<Analysis> {
    let t_metrics = Instant::now();
    let requested: Option<Vec<f64>> =
        serde_json::from_value(record["requested_target_fmrs"].clone()).unwrap_or(None);
    let options = analysis::Options {
        alpha: opts.alpha,
        bootstrap: opts.bootstrap,
        seed: opts.seed,
        reference_group: opts.reference_group.clone(),
    };
    let analysis = analysis::analyse(header, c, requested.as_deref(), boot, &options);
    record["target_fmrs"] = serde_json::json!(analysis
        .thresholds
        .iter()
        .map(|t| t.target_fmr)
        .collect::<Vec<_>>());
    record["thresholds"] = serde_json::to_value(&analysis.thresholds)?;
    record["compare"]["mated_comparisons_scored"] =
        serde_json::json!(c.mated.iter().map(|h| h.total()).sum::<u64>());
    record["compare"]["nonmated_comparisons_scored"] =
        serde_json::json!(c.nonmated.cells.iter().map(|h| h.total()).sum::<u64>());
    record["bootstrap"] = serde_json::json!({
        "replicates": opts.bootstrap,
        "seed": opts.seed,
        "alpha": opts.alpha,
        "reference_group": opts.reference_group,
        "resampling": "subjects, with replacement, within each finest group (attribute-value combination)",
        "interval": "2.5 and 97.5 percentiles",
        "note": analysis.bootstrap_note,
    });
    record["files"] = serde_json::json!([
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
        "det_*",
        "rates_*",
        "scores_*",
        "heatmap_*",
        "dots_*",
        "relative_* (.png and .svg)"
    ]);
    record["execution"]["timings_s"]["metrics"] =
        serde_json::json!(t_metrics.elapsed().as_secs_f64());
    let t_report = Instant::now();
    let ctx = crate::report::render::Context {
        model: record["model"]["spec"]["name"]
            .as_str()
            .unwrap_or("model")
            .to_string(),
        dataset: record["dataset"]["name"]
            .as_str()
            .unwrap_or("dataset")
            .to_string(),
        record: strip_execution(record),
    };
    crate::report::render::write_report(staging.dir(), &analysis, &ctx).map_err(|e| anyhow!(e))?;
    record["execution"]["timings_s"]["report"] =
        serde_json::json!(t_report.elapsed().as_secs_f64());
    Ok(analysis)
}

/// The run record without its run-dependent `execution` part (what the pages show, so that they are
/// identical for identical inputs).
fn strip_execution(record: &serde_json::Value) -> serde_json::Value {
    let mut r = record.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("execution");
    }
    r
}

/// `facebias merge`: adds the partial comparisons of every shard of one run and writes the full report.
pub fn merge(args: &MergeArgs) -> Result<RunOutcome> {
    charts::ensure_font().map_err(|e| anyhow!(e))?;
    if args.shards.is_empty() {
        bail!("give the shard folders to merge (the --out folders of `facebias run --shard k/n`)");
    }
    let staging = Staging::begin(&args.out).map_err(|e| anyhow!(e))?;
    let mut merged: Option<(store::Header, Comparisons)> = None;
    let mut seen = Vec::new();
    for dir in &args.shards {
        let path = dir.join("comparisons.bin");
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read {} (is {} a shard folder?)",
                path.display(),
                dir.display()
            )
        })?;
        let (h, c) = store::from_bytes(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        match &mut merged {
            None => merged = Some((h.clone(), c)),
            Some((h0, c0)) => {
                if h.fingerprint != h0.fingerprint || h.combos != h0.combos {
                    bail!(
                        "{} comes from a different run (other embeddings or samples) than {}",
                        dir.display(),
                        args.shards[0].display()
                    );
                }
                let (scheme, scheme0) = (
                    compare::backend::shard_scheme(&h.kernel),
                    compare::backend::shard_scheme(&h0.kernel),
                );
                if scheme != scheme0 {
                    bail!(
                        "{} was computed by {} ({scheme}) but {} by {} ({scheme0}); shards split the pairs by their kernel's scheme, so run every shard with the same --device",
                        dir.display(),
                        h.kernel,
                        args.shards[0].display(),
                        h0.kernel
                    );
                }
                if h.shard[1] != h0.shard[1] {
                    bail!(
                        "{} is shard {} of {}, but {} is of {}",
                        dir.display(),
                        h.shard[0],
                        h.shard[1],
                        args.shards[0].display(),
                        h0.shard[1]
                    );
                }
                store::merge_into(c0, &c).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
            }
        }
        if seen.contains(&h.shard[0]) {
            bail!(
                "shard {} of {} is given twice ({})",
                h.shard[0],
                h.shard[1],
                dir.display()
            );
        }
        seen.push(h.shard[0]);
    }
    let (mut header, comparisons) = merged.expect("at least one shard");
    let count = header.shard[1];
    let missing: Vec<usize> = (0..count).filter(|i| !seen.contains(i)).collect();
    if !missing.is_empty() {
        bail!("shards {missing:?} of {count} are missing; merge needs every shard folder");
    }
    header.shard = [0, 1];
    let first = &args.shards[0];
    for f in ["samples.csv", "embeddings.npy"] {
        let bytes = std::fs::read(first.join(f))
            .with_context(|| format!("cannot read {}", first.join(f).display()))?;
        staging.write(f, &bytes).map_err(|e| anyhow!(e))?;
    }
    staging
        .write("comparisons.bin", &store::to_bytes(&header, &comparisons))
        .map_err(|e| anyhow!(e))?;
    let mut record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(first.join("run.json"))
            .with_context(|| format!("cannot read {}", first.join("run.json").display()))?,
    )?;
    if let Some(o) = record.as_object_mut() {
        o.remove("partial");
    }
    record["execution"]["shard"] = serde_json::json!([0, 1]);
    record["execution"]["merged_from"] = serde_json::json!(args
        .shards
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>());
    let analysis = finish_report(
        &staging,
        &header,
        &comparisons,
        None,
        &args.analysis,
        &mut record,
    )?;
    staging
        .write("run.json", &serde_json::to_vec_pretty(&record)?)
        .map_err(|e| anyhow!(e))?;
    let out = staging.commit().map_err(|e| anyhow!(e))?;
    Ok(outcome_from_record(out, &record, analysis))
}

/// Packs the embeddings of enrolled samples into one row-major matrix; `rows[i]` is sample `i`'s row.
pub fn embedding_matrix(ex: &ExtractOutput) -> (Vec<f32>, Vec<Option<usize>>) {
    let mut emb = Vec::new();
    let mut rows = Vec::with_capacity(ex.results.len());
    let mut next = 0;
    for r in &ex.results {
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

/// Prints the end-of-run summary.
pub fn print_run_summary(o: &RunOutcome) {
    println!("report: {}", o.out.display());
    println!(
        "images: {} ({} enrolled, {} failures to enrol)",
        o.images,
        o.enrolled,
        o.images - o.enrolled
    );
    for t in &o.thresholds {
        println!(
            "target FMR {:.0e}: τ = {:.5}, {} false matches / {} non-mated comparisons (FMR {:.3e}){}",
            t.target_fmr,
            t.tau,
            t.false_matches,
            t.comparisons,
            t.fmr,
            if t.supported { "" } else { " — too few comparisons for this target" }
        );
    }
    if let Some(t) = chart_threshold(&o.thresholds) {
        for d in o
            .equity
            .iter()
            .filter(|d| d.target_fmr == t.target_fmr && d.metric == "max_min" && !d.value.is_nan())
        {
            let rel = if d.bound == metrics::Bound::LowerBound {
                "≥ "
            } else {
                ""
            };
            println!(
                "{} {} max/min at FMR {:.0e}: {rel}{:.2} ({})",
                d.attribute, d.rate, t.target_fmr, d.value, d.note
            );
        }
    }
}

/// `facebias demo`.
pub fn demo(args: &DemoArgs) -> Result<RunOutcome> {
    if !args.dataset.exists() {
        bail!("the demo dataset {} is missing; it ships in ../shared/datasets beside the project (or pass --dataset)", args.dataset.display());
    }
    let run_args = RunArgs {
        dataset: args.dataset.clone(),
        out: args.out.clone(),
        target_fmr: None,
        attributes: None,
        shard: None,
        precision: compare::gpu::Precision::Fp32,
        adapter: manifest::adapters::Adapter::Auto,
        analysis: AnalysisArgs::default(),
        model: ModelArgs {
            models_dir: args.models_dir.clone(),
            ort_lib: args.ort_lib.clone(),
            ..ModelArgs::named("mobilefacenet")
        },
        exec: args.exec.clone(),
    };
    run(&run_args)
}

/// `facebias embed`.
pub fn embed(args: &EmbedArgs) -> Result<PathBuf> {
    let rt = runtime::load(args.model.ort_lib.as_deref())?;
    let staging = Staging::begin(&args.out).map_err(|e| anyhow!(e))?;
    let manifest = manifest::load(&args.dataset, None, true)?;
    let model = resolve_model(&args.model)?;
    let mut cfg = extract_config(
        &model,
        &args.model,
        threads(args.exec.threads),
        args.exec.batch_size,
        args.dump_tensors,
        !args.exec.quiet,
    );
    let (device, device_note) =
        runtime::resolve_device(rt, args.exec.device).map_err(|e| anyhow!(e))?;
    cfg.device = device;
    let mut cache = if args.dump_tensors {
        EmbeddingCache::disabled()
    } else {
        open_cache(rt, &model, &cfg, &args.exec)?
    };
    let ex = extract::extract(rt, &manifest.samples, &cfg, &mut cache).map_err(|e| anyhow!(e))?;
    let (emb, rows) = embedding_matrix(&ex);
    let n = rows.iter().flatten().count();
    staging
        .write(
            "samples.csv",
            &report::samples_csv(&manifest, &ex.results, &rows).map_err(|e| anyhow!(e))?,
        )
        .map_err(|e| anyhow!(e))?;
    staging
        .write("embeddings.npy", &report::npy_f32(&emb, n, ex.dim))
        .map_err(|e| anyhow!(e))?;
    if args.dump_tensors {
        let tensors: Vec<f32> = ex
            .results
            .iter()
            .filter(|r| r.status == SampleStatus::Ok)
            .flat_map(|r| r.tensor.clone().unwrap_or_default())
            .collect();
        let per = tensors.len() / n.max(1);
        staging
            .write("tensors.npy", &report::npy_f32(&tensors, n, per))
            .map_err(|e| anyhow!(e))?;
    }
    let record = serde_json::json!({
        "schema_version": report::SCHEMA_VERSION,
        "model": {"path": model.path.display().to_string(), "sha256": model.sha256, "spec": model.spec},
        "detector": {"path": model.detector.display().to_string(), "sha256": model.detector_sha256},
        "images": manifest.samples.len(),
        "enrolled": n,
        "onnxruntime_version": rt.version,
        "execution_provider": device.provider(),
        "device_note": device_note,
    });
    staging
        .write("run.json", &serde_json::to_vec_pretty(&record)?)
        .map_err(|e| anyhow!(e))?;
    let out = staging.commit().map_err(|e| anyhow!(e))?;
    println!(
        "embedded {n} of {} images into {}",
        manifest.samples.len(),
        out.display()
    );
    Ok(out)
}

/// `facebias inspect`.
pub fn inspect(args: &InspectArgs) -> Result<()> {
    let (path, _) =
        spec::resolve(&args.model, args.models_dir.as_deref()).map_err(|e| anyhow!(e))?;
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let header = inspect::parse_header(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let sha = spec::hex(&sha2::Digest::finalize(
        <sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes),
    ));
    let matched = spec::by_sha256(&sha);
    let rt = runtime::load(args.ort_lib.as_deref())?;
    let session = runtime::open_session(rt, &path, 1).map_err(|e| anyhow!(e))?;
    let describe = |o: &ort::value::Outlet| {
        let (dtype, shape) = match o.dtype() {
            ort::value::ValueType::Tensor {
                ty,
                dimension_symbols,
                ..
            } => {
                let shape: Vec<String> = declared_shape(o.dtype())
                    .unwrap_or_default()
                    .iter()
                    .zip(dimension_symbols.iter())
                    .map(|(d, sym)| {
                        d.map(|v| v.to_string()).unwrap_or_else(|| {
                            if sym.is_empty() {
                                "?".into()
                            } else {
                                sym.to_string()
                            }
                        })
                    })
                    .collect();
                (format!("{ty:?}").to_lowercase(), shape)
            }
            other => (format!("{other:?}"), Vec::new()),
        };
        serde_json::json!({"name": o.name(), "dtype": dtype, "shape": shape})
    };
    let inputs: Vec<_> = session.inputs().iter().map(describe).collect();
    let outputs: Vec<_> = session.outputs().iter().map(describe).collect();
    let info = serde_json::json!({
        "path": path.display().to_string(),
        "bytes": bytes.len(),
        "sha256": sha,
        "ir_version": header.ir_version,
        "opsets": header.opsets.iter().map(|(d, v)| serde_json::json!({"domain": d, "version": v})).collect::<Vec<_>>(),
        "producer": format!("{} {}", header.producer_name, header.producer_version).trim().to_string(),
        "inputs": inputs,
        "outputs": outputs,
        "catalogue_match": matched.as_ref().map(|m| m.name.clone()),
        "spec": matched,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("model:     {}", path.display());
    println!("size:      {} bytes", bytes.len());
    println!("sha256:    {sha}");
    println!("ir:        {}", header.ir_version);
    println!(
        "opsets:    {}",
        header
            .opsets
            .iter()
            .map(|(d, v)| format!("{d} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("producer:  {}", info["producer"].as_str().unwrap_or(""));
    for (kind, list) in [("input", &inputs), ("output", &outputs)] {
        for io in list {
            let shape: Vec<String> = io["shape"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().unwrap_or("?").to_string())
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "{kind:<10} {} {} [{}]",
                io["name"].as_str().unwrap_or(""),
                io["dtype"].as_str().unwrap_or(""),
                shape.join(", ")
            );
        }
    }
    if args.probe {
        let detector = detector_path(args.detector.as_deref(), args.models_dir.as_deref())?;
        let set = crate::embed::probe::load_set(rt, &sanity_samples(&args.sanity)?, &detector)
            .map_err(|e| anyhow!("sanity set {}: {e}", args.sanity.display()))?;
        let ranking = run_probe(rt, &path, &sha, &set, false)?;
        let out = args.spec_out.clone().unwrap_or_else(|| {
            PathBuf::from(format!(
                "{}.spec.toml",
                path.file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_else(|| "model".into())
            ))
        });
        std::fs::write(
            &out,
            toml::to_string(&ranking[0].spec).context("cannot write the spec")?,
        )
        .with_context(|| format!("cannot write {}", out.display()))?;
        println!(
            "best: {} — spec written to {} (edit it if needed; use it with --spec)",
            ranking[0].name,
            out.display()
        );
        if let Some(m) = &matched {
            println!("note: this model is in the catalogue as `{}`; its documented spec takes precedence", m.name);
        }
        return Ok(());
    }
    match matched {
        Some(m) => println!(
            "catalogue: {} ({}; {} {}x{} {:?} {:?}, pixel_scale {}, mean {:?}, std {:?}, template {:?})",
            m.name, m.role, m.input, m.size, m.size, m.layout, m.color, m.pixel_scale, m.mean, m.std, m.template
        ),
        None => println!("catalogue: no entry has this sha256; run it with --spec FILE.toml or the preprocessing flags (see `facebias run --help`)"),
    }
    Ok(())
}

/// Result of `facebias bench`.
#[derive(Debug, Serialize)]
pub struct BenchResult {
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
}

/// `facebias bench`: decode + detect + align + embed throughput, cache disabled.
pub fn bench(args: &BenchArgs) -> Result<BenchResult> {
    let rt = runtime::load(args.model.ort_lib.as_deref())?;
    let mut manifest = manifest::load(&args.dataset, None, true)?;
    manifest.samples.truncate(args.images.max(1));
    let model = resolve_model(&args.model)?;
    let workers = threads(args.threads);
    let mut cfg = extract_config(&model, &args.model, workers, 32, false, false);
    let (device, device_note) = runtime::resolve_device(rt, args.device).map_err(|e| anyhow!(e))?;
    if !device_note.is_empty() {
        eprintln!("note: {device_note}");
    }
    cfg.device = device;
    let mut runs = Vec::new();
    for _ in 0..args.repeat.max(1) {
        let mut cache = EmbeddingCache::disabled();
        let ex =
            extract::extract(rt, &manifest.samples, &cfg, &mut cache).map_err(|e| anyhow!(e))?;
        let failures = ex
            .results
            .iter()
            .filter(|r| r.status != SampleStatus::Ok)
            .count();
        runs.push((ex.timings.wall_s, ex.timings, failures));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let seconds: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let (median, stages, failures) = runs[runs.len() / 2].clone();
    let n = manifest.samples.len();
    Ok(BenchResult {
        images: n,
        execution_provider: device.provider(),
        threads: workers,
        seconds,
        median_seconds: median,
        images_per_second: n as f64 / median,
        stages,
        failures,
    })
}

/// Prints a bench result as text.
pub fn print_bench(b: &BenchResult) {
    println!(
        "pipeline throughput (decode + detect + align + embed), {} images, {} workers, embedding on {}",
        b.images, b.threads, b.execution_provider
    );
    println!("  runs (s): {}", fmt_runs(&b.seconds));
    println!(
        "  median:   {:.3} s = {:.1} images/s",
        b.median_seconds, b.images_per_second
    );
    let s = &b.stages;
    println!(
        "  stage time summed over workers (s): read {:.2}, decode {:.2}, detect {:.2}, align {:.2}, embed {:.2}",
        s.read_s, s.decode_s, s.detect_s, s.align_s, s.embed_s
    );
    println!("  failures to enrol: {}", b.failures);
}

/// What `facebias bench` measured, on the CPU or on a GPU.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum BenchOutcome {
    /// The CPU kernel.
    Cpu(compare::bench::KernelBench),
    /// The GPU kernel, with the CPU kernel as baseline.
    Gpu(compare::bench::GpuKernelBench),
}

/// `facebias bench`: the matching kernel on the CPU or, with `--device cuda`, on a GPU.
pub fn bench_kernel(a: &KernelBenchArgs) -> Result<BenchOutcome> {
    if a.n < 2 || a.dim == 0 || a.groups == 0 || a.groups > 256 {
        bail!(
            "--n must be ≥ 2, --dim ≥ 1 and --groups in 1..=256 (got {}, {}, {})",
            a.n,
            a.dim,
            a.groups
        );
    }
    let (backend, note) =
        compare::backend::Backend::select(a.device, a.precision, threads(a.threads))?;
    if !note.is_empty() {
        eprintln!("note: {note}");
    }
    match backend {
        compare::backend::Backend::Cpu { .. } => bench_cpu_kernel(a).map(BenchOutcome::Cpu),
        compare::backend::Backend::Cuda { mut device, opts } => {
            if a.kernel.is_some() {
                bail!("--kernel picks a CPU kernel; it does not apply with a GPU (--device cuda)");
            }
            let info = device.info.clone();
            Ok(BenchOutcome::Gpu(compare::bench::run_gpu(
                device.as_mut(),
                Some(&info),
                opts,
                a.n,
                a.dim,
                a.groups,
                a.repeat,
                a.cpu_n,
                threads(a.threads),
            )?))
        }
    }
}

fn bench_cpu_kernel(a: &KernelBenchArgs) -> Result<compare::bench::KernelBench> {
    let kernel = a.kernel.unwrap_or_else(compare::kernel::Kernel::detect);
    if !kernel.available() {
        bail!(
            "--kernel {} needs CPU features this machine lacks; use --kernel portable",
            kernel.name()
        );
    }
    Ok(compare::bench::run(
        a.n,
        a.dim,
        a.groups,
        threads(a.threads),
        a.repeat,
        kernel,
        a.scalar_n,
    ))
}

/// Prints a kernel bench result as text.
pub fn print_kernel_bench(b: &BenchOutcome) {
    match b {
        BenchOutcome::Cpu(b) => print_cpu_kernel_bench(b),
        BenchOutcome::Gpu(b) => print_gpu_kernel_bench(b),
    }
}

fn print_gpu_kernel_bench(b: &compare::bench::GpuKernelBench) {
    println!(
        "all-pairs kernel {} on {}: n = {}, d = {}, {} groups, {} pairs",
        b.kernel, b.device, b.n, b.dim, b.groups, b.pairs
    );
    println!("  runs (s, end to end): {}", fmt_runs(&b.seconds));
    println!(
        "  median:   {:.3} s  = {:.3e} pairs/s = {:.1} GFLOP/s",
        b.median_seconds, b.pairs_per_second, b.gflops
    );
    let share = |peak: Option<f64>, pct: Option<f64>, what: &str| match (peak, pct) {
        (Some(p), Some(s)) => println!("  {what} peak: {:.1} TFLOP/s -> {s:.1} % of peak", p / 1e3),
        _ => println!("  {what} peak: unknown for this device"),
    };
    share(b.fp32_peak_gflops, b.percent_of_fp32_peak, "fp32");
    share(
        b.tensor_peak_gflops,
        b.percent_of_tensor_peak,
        "16-bit tensor-core (not used by this kernel)",
    );
    println!(
        "  CPU kernel {} (n = {}, {} threads): {:.3e} pairs/s -> GPU is {:.1}x faster",
        b.cpu_kernel, b.cpu_n, b.cpu_threads, b.cpu_pairs_per_second, b.speedup_vs_cpu
    );
}

fn print_cpu_kernel_bench(b: &compare::bench::KernelBench) {
    println!(
        "all-pairs kernel {}: n = {}, d = {}, {} groups, {} threads, {} pairs",
        b.kernel, b.n, b.dim, b.groups, b.threads, b.pairs
    );
    println!("  runs (s): {}", fmt_runs(&b.seconds));
    println!(
        "  median:   {:.3} s  = {:.3e} pairs/s = {:.1} GFLOP/s",
        b.median_seconds, b.pairs_per_second, b.gflops
    );
    println!(
        "  measured FMA peak: {:.1} GFLOP/s on {} threads -> {:.1} % of peak",
        b.peak_gflops, b.threads, b.percent_of_peak
    );
    println!(
        "  scalar per-pair baseline (n = {}): {:.3e} pairs/s -> kernel is {:.1}x faster",
        b.scalar_n, b.scalar_pairs_per_second, b.speedup_vs_scalar
    );
    if let Some(m) = b.peak_memory_bytes {
        println!("  peak memory: {:.1} MiB", m as f64 / (1 << 20) as f64);
    }
}

/// `facebias report`: metrics and charts again from a run folder's saved comparisons.
pub fn rerender(args: &ReportArgs) -> Result<RunOutcome> {
    charts::ensure_font().map_err(|e| anyhow!(e))?;
    let dir = &args.run_dir;
    let path = dir.join("comparisons.bin");
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}; is {} a facebias run folder?",
            path.display(),
            dir.display()
        )
    })?;
    let (header, comparisons) =
        store::from_bytes(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if header.shard[1] > 1 {
        bail!(
            "{} holds shard {} of {} only; run `facebias merge` over all shard folders first",
            dir.display(),
            header.shard[0],
            header.shard[1]
        );
    }
    if let Some(bad) = args
        .target_fmr
        .iter()
        .flatten()
        .find(|t| !(**t > 0.0 && **t < 1.0))
    {
        bail!("--target-fmr {bad} is not a rate in (0, 1)");
    }
    let mut record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("run.json"))
            .with_context(|| format!("cannot read {}", dir.join("run.json").display()))?,
    )?;
    if let Some(t) = &args.target_fmr {
        record["requested_target_fmrs"] = serde_json::json!(t);
    }
    let staging = Staging::begin(dir).map_err(|e| anyhow!(e))?;
    for f in ["samples.csv", "embeddings.npy", "comparisons.bin"] {
        let bytes = std::fs::read(dir.join(f))
            .with_context(|| format!("cannot read {}", dir.join(f).display()))?;
        staging.write(f, &bytes).map_err(|e| anyhow!(e))?;
    }
    let boot = match std::fs::read(dir.join("bootstrap.bin")) {
        Ok(bytes) => {
            staging
                .write("bootstrap.bin", &bytes)
                .map_err(|e| anyhow!(e))?;
            Some(
                metrics::bootstrap::BootstrapData::from_bytes(&bytes)
                    .map_err(|e| anyhow!("{}: {e}", dir.join("bootstrap.bin").display()))?,
            )
        }
        Err(_) => None,
    };
    let analysis = finish_report(
        &staging,
        &header,
        &comparisons,
        boot.as_ref(),
        &args.analysis,
        &mut record,
    )?;
    staging
        .write("run.json", &serde_json::to_vec_pretty(&record)?)
        .map_err(|e| anyhow!(e))?;
    let out = staging.commit().map_err(|e| anyhow!(e))?;
    Ok(outcome_from_record(out, &record, analysis))
}

/// The end-of-run summary of a report rebuilt from saved data (counts read from its run record).
fn outcome_from_record(out: PathBuf, record: &serde_json::Value, analysis: Analysis) -> RunOutcome {
    let images = record["dataset"]["images"].as_u64().unwrap_or(0) as usize;
    let skipped = record["skipped"]
        .as_object()
        .map(|o| o.values().filter_map(|v| v.as_u64()).sum::<u64>())
        .unwrap_or(0) as usize;
    RunOutcome {
        out,
        thresholds: analysis.thresholds,
        images,
        enrolled: images.saturating_sub(skipped),
        rates: analysis.rates,
        equity: analysis.equity,
    }
}

/// Seconds of repeated runs as `0.123, 0.125, …`.
fn fmt_runs(seconds: &[f64]) -> String {
    seconds
        .iter()
        .map(|s| format!("{s:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The samples of a sanity set: a manifest, a folder with manifest.csv, or a folder of named images.
fn sanity_samples(path: &Path) -> Result<Vec<crate::manifest::Sample>> {
    if path.is_file() || path.join("manifest.csv").is_file() {
        Ok(manifest::load(path, Some(&[]), true)?.samples)
    } else if path.is_dir() {
        crate::embed::probe::folder_samples(path).map_err(|e| anyhow!(e))
    } else {
        bail!(
            "sanity set {} does not exist; pass --sanity with a labelled folder or manifest",
            path.display()
        )
    }
}

fn detector_path(explicit: Option<&Path>, models_dir: Option<&Path>) -> Result<PathBuf> {
    match explicit {
        Some(p) if p.is_file() => Ok(p.to_path_buf()),
        Some(p) => bail!("--detector {} does not exist", p.display()),
        None => Ok(spec::resolve("yunet-dynamic", models_dir)
            .map_err(|e| anyhow!(e))?
            .0),
    }
}

/// Runs the probe and prints its ranking; returns the ranking (best first).
fn run_probe(
    rt: &Runtime,
    model: &Path,
    sha: &str,
    set: &crate::embed::probe::SanitySet,
    quiet: bool,
) -> Result<Vec<crate::embed::probe::Candidate>> {
    let ranking = crate::embed::probe::probe(rt, model, sha, set).map_err(|e| anyhow!(e))?;
    if !quiet {
        println!("probe ranking on the sanity set (best first; AUC, then d′):");
        for (i, c) in ranking.iter().enumerate() {
            let s = &c.separation;
            println!(
                "{:>3}. {:<34} AUC {:.4}  d′ {:>6.3}  accuracy {:.3}  mated mean {:.3}  non-mated mean {:.3}",
                i + 1,
                c.name,
                s.auc,
                s.d_prime,
                s.accuracy,
                s.mated_mean,
                s.nonmated_mean
            );
        }
    }
    Ok(ranking)
}

/// `facebias audit`.
pub fn audit(args: &AuditArgs) -> Result<RunOutcome> {
    let rt = runtime::load(args.ort_lib.as_deref())?;
    if !args.model.is_file() {
        bail!("model {} does not exist", args.model.display());
    }
    // Fail fast on the output folder before the probe runs.
    Staging::begin(&args.out).map_err(|e| anyhow!(e))?;
    let sha = spec::sha256_file(&args.model)
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    let detector = detector_path(args.detector.as_deref(), args.models_dir.as_deref())?;
    println!("model {} sha256 {sha}", args.model.display());
    let set = crate::embed::probe::load_set(rt, &sanity_samples(&args.sanity)?, &detector)
        .map_err(|e| anyhow!("sanity set {}: {e}", args.sanity.display()))?;
    let mut ranking = Vec::new();
    let (spec_used, source) = match (&args.spec, spec::by_sha256(&sha)) {
        (Some(f), _) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read --spec {}", f.display()))?;
            (
                toml::from_str::<ModelSpec>(&text)
                    .map_err(|e| anyhow!("--spec {}: {e}", f.display()))?,
                format!("--spec {}", f.display()),
            )
        }
        (None, Some(s)) => (s.clone(), format!("catalogue entry `{}`", s.name)),
        (None, None) => {
            println!(
                "no spec for this model: probing its preprocessing on {}",
                args.sanity.display()
            );
            ranking = run_probe(rt, &args.model, &sha, &set, false)?;
            (
                ranking[0].spec.clone(),
                format!("probe: {}", ranking[0].name),
            )
        }
    };
    let check =
        crate::embed::probe::sanity(rt, &args.model, &spec_used, &set).map_err(|e| anyhow!(e))?;
    println!(
        "sanity check ({source}): balanced accuracy {:.3} on {} mated and {} non-mated pairs (AUC {:.3})",
        check.accuracy, check.mated_pairs, check.nonmated_pairs, check.auc
    );
    if check.accuracy < args.min_accuracy && !args.force {
        bail!(
            "sanity check failed: balanced verification accuracy {:.3} on the sanity set is below {:.2}, so the preprocessing is              probably wrong (colour order, pixel scaling, crop or layout). Run `facebias inspect --probe {}` to rank the              alternatives, fix the spec and pass it with --spec, or use --force to audit anyway",
            check.accuracy,
            args.min_accuracy,
            args.model.display()
        );
    }
    // The full run with exactly this spec.
    let spec_text = toml::to_string(&spec_used).context("cannot write the spec")?;
    let tmp = tempfile_path(&args.out, "model_spec.toml");
    std::fs::write(&tmp, &spec_text).with_context(|| format!("cannot write {}", tmp.display()))?;
    let run_args = RunArgs {
        dataset: args.dataset.clone(),
        out: args.out.clone(),
        target_fmr: args.target_fmr.clone(),
        attributes: None,
        shard: None,
        precision: compare::gpu::Precision::Fp32,
        adapter: manifest::adapters::Adapter::Auto,
        analysis: args.analysis.clone(),
        model: ModelArgs {
            models_dir: args.models_dir.clone(),
            detector: Some(detector),
            ort_lib: args.ort_lib.clone(),
            spec: Some(tmp.clone()),
            ..ModelArgs::named(args.model.display().to_string())
        },
        exec: args.exec.clone(),
    };
    let outcome = run(&run_args);
    let _ = std::fs::remove_file(&tmp);
    let outcome = outcome?;
    let sanity_json = serde_json::json!({
        "sanity_set": args.sanity.display().to_string(),
        "spec_source": source,
        "accuracy": check.accuracy,
        "auc": check.auc,
        "d_prime": check.d_prime,
        "threshold": check.threshold,
        "mated_pairs": check.mated_pairs,
        "nonmated_pairs": check.nonmated_pairs,
        "images_without_face": set.skipped,
        "min_accuracy": args.min_accuracy,
        "forced": args.force && check.accuracy < args.min_accuracy,
        "probe_ranking": ranking.iter().map(|c| serde_json::json!({"name": c.name, "auc": c.separation.auc, "d_prime": c.separation.d_prime, "accuracy": c.separation.accuracy})).collect::<Vec<_>>(),
    });
    std::fs::write(outcome.out.join("model_spec.toml"), spec_text)
        .context("cannot write model_spec.toml")?;
    std::fs::write(
        outcome.out.join("sanity.json"),
        serde_json::to_vec_pretty(&sanity_json)?,
    )
    .context("cannot write sanity.json")?;
    Ok(outcome)
}

/// A hidden temporary file beside `target`.
fn tempfile_path(target: &Path, name: &str) -> PathBuf {
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join(format!(
        ".{}.{name}.{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        std::process::id()
    ))
}

/// Accuracy of the dataset's pair protocol, overall and per group of each attribute (pairs whose two
/// images share the group's value). Pairs with an image that has no embedding count as errors.
fn protocol_accuracy(
    list: &crate::manifest::protocol::PairList,
    m: &Manifest,
    emb: &[f32],
    dim: usize,
    rows: &[Option<usize>],
) -> Vec<crate::manifest::protocol::FoldAccuracy> {
    use crate::manifest::protocol::{kfold_accuracy, FoldAccuracy};
    let score = |a: usize, b: usize| -> Option<f32> {
        let (x, y) = (rows[a]?, rows[b]?);
        Some(compare::dot(
            &emb[x * dim..(x + 1) * dim],
            &emb[y * dim..(y + 1) * dim],
        ))
    };
    let scored: Vec<_> = list.pairs.iter().map(|p| (*p, score(p.a, p.b))).collect();
    let unscored = |f: &dyn Fn(&crate::manifest::protocol::ProtocolPair) -> bool| {
        scored.iter().filter(|(p, s)| f(p) && s.is_none()).count()
    };
    let (acc, std, folds) = kfold_accuracy(&scored, |_| true);
    let mut out = vec![FoldAccuracy {
        protocol: list.name.clone(),
        attribute: "all".into(),
        group: "all".into(),
        folds,
        pairs: scored.len(),
        unscored: unscored(&|_| true),
        accuracy: acc,
        std,
    }];
    for (ai, attr) in m.attributes.iter().enumerate() {
        let mut values: Vec<&str> = m
            .samples
            .iter()
            .map(|s| s.attributes[ai].as_str())
            .filter(|v| !v.is_empty())
            .collect();
        values.sort();
        values.dedup();
        for v in values {
            let in_group = |p: &crate::manifest::protocol::ProtocolPair| {
                m.samples[p.a].attributes[ai] == v && m.samples[p.b].attributes[ai] == v
            };
            let n = scored.iter().filter(|(p, _)| in_group(p)).count();
            if n == 0 {
                continue;
            }
            let (acc, std, folds) = kfold_accuracy(&scored, in_group);
            out.push(FoldAccuracy {
                protocol: list.name.clone(),
                attribute: attr.clone(),
                group: v.to_string(),
                folds,
                pairs: n,
                unscored: unscored(&in_group),
                accuracy: acc,
                std,
            });
        }
    }
    out
}

/// `facebias datasets`: the adapters, or one dataset's counts per group.
pub fn datasets(args: &DatasetsArgs) -> Result<()> {
    let Some(path) = &args.dataset else {
        println!("adapters (--adapter; `auto` picks one from the layout):");
        for (name, layout) in [
            ("manifest", "CSV `path,subject,<attributes…>`, or a folder with manifest.csv (+ LFW pairs.txt)"),
            ("lfw", "<Name>/<Name>_NNNN.jpg person folders + pairs.txt; male/female_names.txt, lfw_race_dict.json, Columbia lfw_attributes.txt if present"),
            ("rfw", "[data/]<African|Asian|Caucasian|Indian>/<id>/<id>_000N.jpg + txts/<race>/<race>_pairs.txt"),
            ("bfw", "BFW pair table CSV (p1,p2,label,fold,id1,id2,e1,e2,g1,g2 or att1,att2)"),
            ("utkface", "[age]_[gender]_[race]_[date].jpg file names (no identities: FMR only)"),
            ("fairface", "label CSV file,age,gender,race (no identities: FMR only)"),
            ("folder", "<group>/<subject>/<image>"),
        ] {
            println!("  {name:<9} {layout}");
        }
        return Ok(());
    };
    let adapted = manifest::adapters::load(path, args.adapter, args.attributes.as_deref(), true)?;
    let m = &adapted.manifest;
    let subjects = subject_ids(m);
    let partition = Partition::new(&m.attributes, &m.samples).map_err(|e| anyhow!(e))?;
    let counts = metrics::groups::counts(&partition, &subjects);
    let n = m.samples.len() as u64;
    let mut per_subject: BTreeMap<u32, u64> = BTreeMap::new();
    subjects
        .iter()
        .for_each(|&s| *per_subject.entry(s).or_default() += 1);
    let mated: u64 = per_subject
        .values()
        .map(|k| k * k.saturating_sub(1) / 2)
        .sum();
    if args.json {
        let v = serde_json::json!({
            "adapter": adapted.adapter, "images": n, "subjects": per_subject.len(),
            "subjects_with_pairs": per_subject.values().filter(|&&k| k >= 2).count(),
            "mated_comparisons": mated, "nonmated_comparisons": n * n.saturating_sub(1) / 2 - mated,
            "attributes": m.attributes, "warnings": m.warnings, "groups": counts,
            "protocol": adapted.pairs.as_ref().map(|p| serde_json::json!({"name": p.name, "pairs": p.pairs.len(), "mated": p.pairs.iter().filter(|x| x.mated).count(), "missing": p.missing})),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("dataset {} (adapter {:?}): {} images, {} subjects ({} with ≥ 2 images), {} mated and {} non-mated comparisons", path.display(), adapted.adapter, n, per_subject.len(), per_subject.values().filter(|&&k| k >= 2).count(), mated, n * n.saturating_sub(1) / 2 - mated);
    for w in &m.warnings {
        println!("warning: {}", w.message);
    }
    println!(
        "{:<18} {:<22} {:>7} {:>8} {:>9} {:>12} {:>14} {:>11}",
        "attribute", "group", "images", "subjects", "subj≥2", "mated", "non-mated", "lowest FMR"
    );
    for c in &counts {
        println!(
            "{:<18} {:<22} {:>7} {:>8} {:>9} {:>12} {:>14} {:>11}",
            c.attribute,
            c.group,
            c.images,
            c.subjects,
            c.subjects_with_pairs,
            c.mated_comparisons,
            c.nonmated_comparisons,
            if c.lowest_fmr.is_finite() {
                format!("{:.0e}", c.lowest_fmr)
            } else {
                "–".into()
            }
        );
    }
    if let Some(p) = &adapted.pairs {
        println!(
            "pair protocol `{}`: {} pairs ({} mated), {} listed pairs not in the dataset",
            p.name,
            p.pairs.len(),
            p.pairs.iter().filter(|x| x.mated).count(),
            p.missing
        );
    }
    println!("(lowest FMR: the rate at which a group still expects 10 false matches among its non-mated comparisons)");
    Ok(())
}

//! `facebias run`: manifest → embed → compare → metrics → report, for one model over one dataset.
//!
//! Everything that can fail without the long work (runtime, font, output folder, manifest, model,
//! targets, comparison device, cache) is checked first (`prepare`); then the stages run in order.
//! With `--embeddings DIR` the embed stage is a finished `facebias embed` folder instead: its
//! `embeddings.npy` is memory-mapped, and neither the images nor the model are read.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};

use super::common::{self, put};
use super::model::{resolve_model, ResolvedModel};
use crate::cli::RunArgs;
use crate::compare::backend::Backend;
use crate::compare::kernel::Shard;
use crate::compare::{self, top, MatedScore, ScoreHistogram, BINS};
use crate::embed::cache::EmbeddingCache;
use crate::embed::extract::{self, ExtractConfig, ExtractTimings};
use crate::embed::folder::EmbedFolder;
use crate::manifest::adapters::{self, Adapted};
use crate::manifest::protocol::{self, FoldAccuracy};
use crate::metrics::bootstrap::BootstrapData;
use crate::metrics::groups::Partition;
use crate::metrics::{self, store, Comparisons};
use crate::preprocess::detect::DetectorConfig;
use crate::report::console::RunOutcome;
use crate::report::pairs::{self, RowInfo};
use crate::report::record::{self, RunRecord};
use crate::report::{self, charts, Staging};
use crate::runtime::{self, Runtime};

/// Most non-mated pairs the bootstrap keeps in memory (10 bytes each on disk).
const MAX_BOOTSTRAP_PAIRS: u64 = 50_000_000;

/// What [`prepare`] opened and checked before any long computation.
struct Prepared {
    /// The runtime and extraction settings (none with `--embeddings`: nothing is embedded).
    embedder: Option<(&'static Runtime, ExtractConfig)>,
    /// `--embeddings`: the embed folder read back.
    folder: Option<EmbedFolder>,
    staging: Staging,
    adapted: Adapted,
    model: ResolvedModel,
    detector_config: DetectorConfig,
    runtime: record::RuntimeRecord,
    partition: Partition,
    backend: Backend,
    compare_note: String,
    cache: EmbeddingCache,
    /// `--exclude-pairs`, as sample-index pairs.
    excluded: Vec<(usize, usize)>,
}

/// What `--exclude-pairs` took out of the counts.
#[derive(Default)]
struct Excluded {
    /// Pairs of enrolled rows whose scores are gone (never listed, never in the bootstrap).
    rows: std::collections::HashSet<(usize, usize)>,
    /// Bins of the scored non-mated ones (the kernel still finds them: its expected counts add them).
    nonmated_bins: Vec<usize>,
    /// (subject a, subject b) of every excluded pair, for the bootstrap.
    subjects: Vec<(u32, u32)>,
    mated: usize,
    scored: usize,
}

impl Excluded {
    /// Scored excluded non-mated pairs at or above `bin`: the kernel still finds them, so they are
    /// added to the count it is told to expect.
    fn at_or_above(&self, bin: usize) -> u64 {
        self.nonmated_bins.iter().filter(|&&b| b >= bin).count() as u64
    }

    /// Drops the excluded pairs from a kernel's list of (row a, row b, bin).
    fn remove_from(&self, pairs: &mut Vec<(usize, usize, u16)>) {
        pairs.retain(|&(a, b, _)| !self.rows.contains(&(a.min(b), a.max(b))));
    }
}

/// The comparison stage's output, with the row assignment it used.
struct Scored {
    comparisons: Comparisons,
    mated: Vec<MatedScore>,
    /// Subject id of every sample.
    subjects: Vec<u32>,
    /// Combo and subject of every enrolled row.
    e_combo: Vec<u16>,
    e_subject: Vec<u32>,
    seconds: f64,
}

/// The embeddings of a run: extracted from the images, or an embed folder's mapped matrix.
struct Embedded {
    samples_csv: Vec<u8>,
    matrix: Matrix,
    rows: Vec<Option<usize>>,
    dim: usize,
    skipped: BTreeMap<&'static str, usize>,
    timings: ExtractTimings,
    cache_hits: usize,
    /// Seconds spent on the embed stage (extraction, or reading the embed folder).
    seconds: f64,
}

/// The `rows × dim` embedding matrix, with the bytes of its `embeddings.npy`.
enum Matrix {
    /// Extracted in this run: the values and their npy bytes.
    Owned(Vec<f32>, Vec<u8>),
    /// Mapped from an embed folder (`--embeddings`).
    Mapped(EmbedFolder),
}

impl Matrix {
    fn values(&self) -> &[f32] {
        match self {
            Matrix::Owned(v, _) => v,
            Matrix::Mapped(f) => f.matrix.values(),
        }
    }
    fn npy(&self) -> &[u8] {
        match self {
            Matrix::Owned(_, b) => b,
            Matrix::Mapped(f) => f.matrix.file_bytes(),
        }
    }
}

/// The embed stage: extraction over the manifest's images, or the `--embeddings` folder.
fn embed_stage(p: &mut Prepared) -> Result<Embedded> {
    let t = Instant::now();
    let manifest = &p.adapted.manifest;
    if let Some(folder) = p.folder.take() {
        let rows: Vec<Option<usize>> = folder.samples.iter().map(|s| s.row).collect();
        let mut skipped = BTreeMap::new();
        for s in folder.samples.iter().filter(|s| s.row.is_none()) {
            *skipped.entry(status_name(&s.status)).or_default() += 1;
        }
        let dim = folder.matrix.dim;
        return Ok(Embedded {
            samples_csv: folder.samples_csv.clone(),
            rows,
            dim,
            skipped,
            timings: ExtractTimings::default(),
            cache_hits: 0,
            matrix: Matrix::Mapped(folder),
            seconds: t.elapsed().as_secs_f64(),
        });
    }
    let (rt, cfg) = p
        .embedder
        .as_ref()
        .expect("an embedder without --embeddings");
    let ex = extract::extract(rt, &manifest.samples, cfg, &p.cache).map_err(|e| anyhow!(e))?;
    let (emb, rows) = ex.matrix();
    let enrolled = rows.iter().flatten().count();
    let samples_csv = report::samples_csv(manifest, &ex.results, &rows).map_err(|e| anyhow!(e))?;
    let npy = report::npy_f32(&emb, enrolled, ex.dim);
    Ok(Embedded {
        samples_csv,
        matrix: Matrix::Owned(emb, npy),
        rows,
        dim: ex.dim,
        skipped: ex.skipped(),
        timings: ex.timings.clone(),
        cache_hits: ex.cache_hits,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// The `&'static` name of a failure-to-enrol status read from a samples.csv (`other` for one this
/// version does not write).
fn status_name(s: &str) -> &'static str {
    use crate::embed::extract::SampleStatus as S;
    [
        S::NoFace,
        S::DecodeError,
        S::ReadError,
        S::BadEmbedding,
        S::TooLarge,
    ]
    .iter()
    .map(|x| x.as_str())
    .find(|n| *n == s)
    .unwrap_or("other")
}

/// `facebias run`.
pub fn run(args: &RunArgs) -> Result<RunOutcome> {
    let t_total = Instant::now();
    let Some(mut p) = prepare(args)? else {
        let shard = args.shard.unwrap_or(Shard::ALL);
        println!(
            "{} already holds comparison shard {} of {} of these inputs; nothing to do",
            args.out.display(),
            shard.index,
            shard.count
        );
        return Ok(RunOutcome {
            out: args.out.clone(),
            thresholds: Vec::new(),
            images: 0,
            enrolled: 0,
            rates: Vec::new(),
            equity: Vec::new(),
        });
    };
    let e = embed_stage(&mut p)?;
    let manifest = &p.adapted.manifest;
    let skipped = e.skipped.clone();
    for (reason, n) in &skipped {
        eprintln!(
            "note: {n} of {} images are failures to enrol ({reason}); see samples.csv",
            manifest.samples.len()
        );
    }
    let (emb, rows) = (e.matrix.values(), &e.rows);
    let enrolled = rows.iter().flatten().count();
    if enrolled < 2 {
        bail!(
            "only {enrolled} of {} images could be enrolled; nothing to compare (see the notes above)",
            manifest.samples.len()
        );
    }
    let shard = args.shard.unwrap_or(Shard::ALL);
    let dim = e.dim;
    let mut scored = score(&mut p, emb, dim, rows, shard)?;
    let excluded = exclude(&p, &mut scored, emb, dim, rows);
    let manifest = &p.adapted.manifest;

    let samples_csv = &e.samples_csv;
    let embeddings_npy = e.matrix.npy();
    let header = store::Header {
        attributes: p.partition.attributes.clone(),
        combos: p.partition.combos.clone(),
        shard: [shard.index, shard.count],
        fingerprint: store::fingerprint(&[samples_csv, embeddings_npy]),
        kernel: p.backend.kernel_name().into(),
        excluded_pairs: p.excluded.len(),
        split_revision: store::SPLIT_REVISION,
    };
    put(&p.staging, "samples.csv", samples_csv)?;
    // A comparison shard started from an embed folder does not copy its matrix (N x d floats per
    // shard); `merge` takes it from the folder, checked against the shard's fingerprint.
    let from_folder = args.embeddings.is_some() && shard.count > 1;
    if !from_folder {
        put(&p.staging, "embeddings.npy", embeddings_npy)?;
    }
    put(
        &p.staging,
        "comparisons.bin",
        &store::to_bytes(&header, &scored.comparisons),
    )?;
    let protocol = p.adapted.pairs.as_ref().map(|list| {
        protocol::accuracy_by_group(list, manifest, |a, b| {
            let (x, y) = (rows[a]?, rows[b]?);
            let d = dim;
            Some(compare::dot(
                &emb[x * d..(x + 1) * d],
                &emb[y * d..(y + 1) * d],
            ))
        })
    });
    if let Some(rows) = &protocol {
        let csv = report::rows_csv(rows).map_err(|e| anyhow!(e))?;
        put(&p.staging, "protocol.csv", &csv)?;
    }
    let (boot, bootstrap_note) = if shard.count > 1 {
        let note =
            "sharded run: intervals need an unsharded run (the bootstrap keeps per-subject pairs)";
        (None, note.to_string())
    } else if args.analysis.bootstrap > 0 {
        bootstrap_pass(&mut p, args, emb, dim, &scored, &excluded)?
    } else {
        (None, String::new())
    };
    if shard.count == 1 {
        top_pairs(&mut p, emb, dim, rows, &scored, &excluded)?;
    }

    let mut record = run_record(args, &p, &e, skipped, scored.seconds, shard)
        .to_value()
        .map_err(|e| anyhow!(e))?;
    if let Some(dir) = &args.embeddings {
        record["execution"]["embeddings_from"] = dir.display().to_string().into();
    }
    record["dataset"]["adapter"] = serde_json::to_value(p.adapted.adapter)?;
    if let Some(f) = &args.exclude_pairs {
        let n = p.excluded.len();
        record::set_exclusions(&mut record, f, n, excluded.mated, excluded.scored);
    }
    if let (Some(list), Some(acc)) = (&p.adapted.pairs, &protocol) {
        record::set_protocol(&mut record, list, acc);
        print_protocol(list, acc);
    }
    let options = common::analysis_options(&args.analysis);
    record::set_bootstrap_request(&mut record, &options, &bootstrap_note);
    if let Some(a) = &args.audit {
        record["audit"] = a.summary.clone();
        for (name, bytes) in &a.files {
            p.staging.write(name, bytes).map_err(|e| anyhow!(e))?;
        }
    }
    if let Some(ia) = &args.identify {
        record["identification"] = identification_section(&p.staging, ia)?;
    }
    if let Some(ca) = &args.compare {
        let dir = p.staging.dir().join(crate::report::comparison::FOLDER);
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
        let rec = super::compare::write_into(ca, &dir)?;
        std::fs::write(
            dir.join("run.json"),
            record::to_bytes(&rec).map_err(|e| anyhow!(e))?,
        )
        .map_err(|e| anyhow!("cannot write {}: {e}", dir.display()))?;
        crate::report::staging::mark(&dir).map_err(|e| anyhow!(e))?;
        record["comparison"] = crate::report::comparison::section_record(&dir, &rec);
    }
    let images = p.adapted.manifest.samples.len();
    let outcome = |out, analysis: Option<metrics::analysis::Analysis>| {
        let a = analysis.map(|a| (a.thresholds, a.rates, a.equity));
        let (thresholds, rates, equity) = a.unwrap_or_default();
        RunOutcome {
            out,
            thresholds,
            images,
            enrolled,
            rates,
            equity,
        }
    };
    if shard.count > 1 {
        // A shard stops here: its partial histograms wait for `facebias merge`.
        record::set_partial(&mut record, shard.index, shard.count);
        if from_folder {
            record["files"] = serde_json::json!(["samples.csv", "comparisons.bin (partial)"]);
        }
        return Ok(outcome(common::commit(p.staging, &record)?, None));
    }
    let analysis = common::finish_report(
        &p.staging,
        &header,
        &scored.comparisons,
        boot.as_ref(),
        &args.analysis,
        &mut record,
    )?;
    record::set_timing(&mut record, "total", t_total.elapsed().as_secs_f64());
    Ok(outcome(common::commit(p.staging, &record)?, Some(analysis)))
}

/// Runs `identify` into the report's `identification/` folder (its own run.json and marker) and
/// returns what the 1:1 page says of it.
fn identification_section(
    staging: &crate::report::Staging,
    ia: &crate::cli::IdentifyArgs,
) -> Result<serde_json::Value> {
    let dir = staging.dir().join(crate::report::identification::FOLDER);
    std::fs::create_dir_all(&dir).map_err(|e| anyhow!("cannot create {}: {e}", dir.display()))?;
    let (rec, headline) = super::identify::write_into(ia, &dir)?;
    let bytes = record::to_bytes(&rec).map_err(|e| anyhow!(e))?;
    std::fs::write(dir.join("run.json"), bytes)
        .map_err(|e| anyhow!("cannot write {}: {e}", dir.display()))?;
    crate::report::staging::mark(&dir).map_err(|e| anyhow!(e))?;
    println!("1:N identification:\n{}", headline.text);
    Ok(serde_json::json!({
        "folder": crate::report::identification::FOLDER,
        "findings": headline.findings,
        "distractors": rec["distractors"]["datasets"].as_array().map(|d| d.iter().map(|x| x["name"].clone()).collect::<Vec<_>>()),
    }))
}

/// Fail fast: runtime, font, output folder, manifest, model, targets, comparison device and cache —
/// before any long computation. `None`: `--skip-finished` and `--out` already holds this job.
fn prepare(args: &RunArgs) -> Result<Option<Prepared>> {
    let folder = match &args.embeddings {
        Some(dir) => Some(EmbedFolder::open(dir).map_err(|e| anyhow!("--embeddings: {e}"))?),
        None => None,
    };
    charts::ensure_font().map_err(|e| anyhow!(e))?;
    // With --embeddings the images are not read: their files are not even checked.
    let adapted = adapters::load(
        &args.dataset,
        args.adapter,
        args.attributes.as_deref(),
        folder.is_none(),
    )?;
    if let Some(f) = &folder {
        check_folder_matches(f, &adapted.manifest)?;
    }
    for w in &adapted.manifest.warnings {
        eprintln!("warning: {}", w.message);
    }
    let excluded = match &args.exclude_pairs {
        Some(f) => crate::manifest::exclude::read(f, &adapted.manifest)?,
        None => Vec::new(),
    };
    let model = match &folder {
        Some(f) => model_of_folder(f)?,
        None => resolve_model(&args.model)?,
    };
    let mut inputs = vec![
        args.dataset.as_path(),
        adapted.manifest.file.as_path(),
        &model.path,
    ];
    inputs.extend(args.exclude_pairs.as_deref());
    inputs.extend(args.embeddings.as_deref());
    crate::report::staging::check_not_input(&args.out, &inputs).map_err(|e| anyhow!(e))?;
    let partition = Partition::new(&adapted.manifest.attributes, &adapted.manifest.samples)
        .map_err(|e| anyhow!(e))?;
    common::check_targets(args.target_fmr.as_deref())?;
    crate::metrics::groups::check_reference(&partition, args.analysis.reference_group.as_deref())
        .map_err(|e| anyhow!(e))?;
    let workers = common::threads(args.exec.threads);
    let shard = args.shard.unwrap_or(Shard::ALL);
    if args.skip_finished {
        let expect = [
            (
                "/execution/shard",
                serde_json::json!([shard.index, shard.count]),
            ),
            (
                "/dataset/manifest_sha256",
                adapted.manifest.sha256.clone().into(),
            ),
            (
                "/dataset/attributes",
                serde_json::to_value(&adapted.manifest.attributes)?,
            ),
            ("/model/sha256", model.sha256.clone().into()),
            ("/model/spec", serde_json::to_value(&model.spec)?),
            ("/exclusions/pairs", exclusion_count(args, &excluded)),
        ];
        if common::finished(&args.out, &expect, &["samples.csv", "comparisons.bin"]) {
            return Ok(None);
        }
    }
    let staging = common::stage(&args.out)?;
    if let Some(f) = folder {
        let (backend, compare_note) = Backend::select(args.exec.device, args.precision, workers)?;
        let r = &f.record;
        let detector_config = serde_json::from_value(r["detector"]["config"].clone()).map_err(|e| {
            anyhow!("--embeddings {}: run.json has no detector config ({e}); embed again with this facebias", f.dir.display())
        })?;
        let text = |k: &str| r["runtime"][k].as_str().unwrap_or("").to_string();
        let num = |k: &str| r["runtime"][k].as_u64().unwrap_or(0) as usize;
        let runtime = record::RuntimeRecord {
            onnxruntime_version: text("onnxruntime_version"),
            library: text("library"),
            execution_provider: text("execution_provider"),
            device_note: text("device_note"),
            workers: num("workers"),
            intra_op_threads_per_worker: num("intra_op_threads_per_worker"),
            batch_size: num("batch_size"),
        };
        return Ok(Some(Prepared {
            embedder: None,
            folder: Some(f),
            staging,
            adapted,
            model,
            detector_config,
            runtime,
            partition,
            backend,
            compare_note,
            cache: EmbeddingCache::disabled(),
            excluded,
        }));
    }
    let rt = runtime::load(args.model.ort_lib.as_deref())?;
    let mut cfg = common::extract_config(
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
    cfg.max_pixels = args.exec.max_image_pixels;
    // The comparison device is opened (and its kernels compiled) before the long embedding stage.
    let (backend, compare_note) = Backend::select(args.exec.device, args.precision, workers)?;
    let backend = backend
        .with_cpu_kernel(args.kernel)
        .map_err(|e| anyhow!(e))?;
    let cache = common::open_cache(rt, &model, &cfg, &args.exec)?;
    let runtime = record::RuntimeRecord {
        onnxruntime_version: rt.version.clone(),
        library: rt.library.display().to_string(),
        execution_provider: cfg.device.provider(),
        device_note,
        workers,
        intra_op_threads_per_worker: 1,
        batch_size: args.exec.batch_size,
    };
    Ok(Some(Prepared {
        embedder: Some((rt, cfg.clone())),
        folder: None,
        staging,
        adapted,
        model,
        detector_config: cfg.detector_config,
        runtime,
        partition,
        backend,
        compare_note,
        cache,
        excluded,
    }))
}

/// What run.json's `exclusions.pairs` holds for this run (null without `--exclude-pairs`).
fn exclusion_count(args: &RunArgs, excluded: &[(usize, usize)]) -> serde_json::Value {
    match &args.exclude_pairs {
        Some(_) => excluded.len().into(),
        None => serde_json::Value::Null,
    }
}

/// Refuses an embed folder that is not of this dataset: same samples, in the same order, with the
/// same subjects.
fn check_folder_matches(f: &EmbedFolder, m: &crate::manifest::Manifest) -> Result<()> {
    if f.samples.len() != m.samples.len() {
        bail!(
            "--embeddings {} holds {} samples but the dataset lists {}; embed this dataset (facebias embed --dataset …) or give its manifest",
            f.dir.display(),
            f.samples.len(),
            m.samples.len()
        );
    }
    if let Some((i, (a, b))) = f
        .samples
        .iter()
        .zip(&m.samples)
        .enumerate()
        .find(|(_, (a, b))| a.path != b.rel_path || a.subject != b.subject)
    {
        bail!(
            "--embeddings {}: samples.csv row {} is {} (subject {}) but the dataset's manifest row {} is {} (subject {}); the folder embeds another dataset",
            f.dir.display(),
            i + 2,
            a.path,
            a.subject,
            i + 2,
            b.rel_path,
            b.subject
        );
    }
    Ok(())
}

/// The model and detector an embed folder's run.json records (their files are not read).
fn model_of_folder(f: &EmbedFolder) -> Result<ResolvedModel> {
    let r = &f.record;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let spec = serde_json::from_value(r["model"]["spec"].clone()).map_err(|e| {
        anyhow!(
            "--embeddings {}: run.json has no readable model spec: {e}",
            f.dir.display()
        )
    })?;
    Ok(ResolvedModel {
        path: text(&r["model"]["path"]).into(),
        sha256: text(&r["model"]["sha256"]),
        spec,
        detector: text(&r["detector"]["path"]).into(),
        detector_sha256: text(&r["detector"]["sha256"]),
    })
}

/// The comparison stage: every pair of enrolled rows (of this shard), mated scores binned per combo.
fn score(
    p: &mut Prepared,
    emb: &[f32],
    dim: usize,
    rows: &[Option<usize>],
    shard: Shard,
) -> Result<Scored> {
    let t = Instant::now();
    let subjects = p.adapted.manifest.subject_ids();
    let enrolled_idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].is_some()).collect();
    let combo_of = &p.partition.combo_of;
    let e_combo: Vec<u16> = enrolled_idx.iter().map(|&i| combo_of[i]).collect();
    let e_subject: Vec<u32> = enrolled_idx.iter().map(|&i| subjects[i]).collect();
    let combos = p.partition.combos.len();
    let pairs = p
        .backend
        .all_pairs(emb, dim, &e_combo, &e_subject, combos, shard)?;
    let mut mated_hist = vec![ScoreHistogram::default(); combos];
    for m in &pairs.mated {
        mated_hist[e_combo[m.a] as usize].counts[compare::bin_of(m.score)] += 1;
    }
    let enrolled: Vec<bool> = rows.iter().map(Option::is_some).collect();
    let comparisons = Comparisons::new(
        combos,
        combo_of,
        &subjects,
        &enrolled,
        pairs.nonmated,
        mated_hist,
    );
    Ok(Scored {
        comparisons,
        mated: pairs.mated,
        subjects,
        e_combo,
        e_subject,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// Takes the `--exclude-pairs` pairs out of the comparison counts and the mated scores.
fn exclude(
    p: &Prepared,
    s: &mut Scored,
    emb: &[f32],
    dim: usize,
    rows: &[Option<usize>],
) -> Excluded {
    let mut x = Excluded::default();
    let combo_of = &p.partition.combo_of;
    for &(i, j) in &p.excluded {
        let (si, sj) = (s.subjects[i], s.subjects[j]);
        let mated = si == sj;
        let scored = rows[i].zip(rows[j]).map(|(a, b)| (a.min(b), a.max(b)));
        let bin = scored.map(|(a, b)| {
            compare::bin_of(compare::dot(
                &emb[a * dim..(a + 1) * dim],
                &emb[b * dim..(b + 1) * dim],
            ))
        });
        let (ci, cj) = (combo_of[i] as usize, combo_of[j] as usize);
        s.comparisons.exclude(ci, cj, mated, bin);
        if let Some(pair) = scored {
            x.rows.insert(pair);
            x.scored += 1;
            if !mated {
                x.nonmated_bins.extend(bin);
            }
        }
        x.mated += usize::from(mated);
        x.subjects.push((si, sj));
    }
    // One pass over the mated scores (a, b: row order, a < b) for all excluded mated pairs.
    if x.mated > 0 {
        s.mated.retain(|m| !x.rows.contains(&(m.a, m.b)));
    }
    x
}

/// Second kernel pass for the subject bootstrap: the non-mated pairs at or above the lowest threshold,
/// saved as `bootstrap.bin`. Returns the data, or none with a note saying why.
fn bootstrap_pass(
    p: &mut Prepared,
    args: &RunArgs,
    emb: &[f32],
    dim: usize,
    s: &Scored,
    x: &Excluded,
) -> Result<(Option<BootstrapData>, String)> {
    let c = &s.comparisons;
    let total: u64 = c.nonmated_total.iter().sum();
    let targets = args
        .target_fmr
        .clone()
        .unwrap_or_else(|| metrics::default_targets(total));
    let cutoff = metrics::global_thresholds(c, &targets)
        .iter()
        .map(|t| t.bin)
        .min()
        .unwrap_or(BINS);
    let high_count: u64 = c
        .nonmated
        .cells
        .iter()
        .map(|h| h.counts.get(cutoff..).map_or(0, |t| t.iter().sum::<u64>()))
        .sum();
    if high_count > MAX_BOOTSTRAP_PAIRS {
        let note = format!("{high_count} pairs above the lowest threshold exceed the bootstrap's limit of {MAX_BOOTSTRAP_PAIRS}; no intervals");
        return Ok((None, note));
    }
    let combos = p.partition.combos.len();
    let found = high_count + x.at_or_above(cutoff);
    let mut high =
        p.backend
            .high_pairs(emb, dim, &s.e_combo, &s.e_subject, combos, cutoff, found)?;
    x.remove_from(&mut high);
    let mut boot = BootstrapData::assemble(
        &p.partition.combo_of,
        &s.subjects,
        &s.e_subject,
        &s.mated,
        &high,
        cutoff,
    );
    boot.excluded = x.subjects.clone();
    put(&p.staging, "bootstrap.bin", &boot.to_bytes())?;
    Ok((Some(boot), String::new()))
}

/// `top_impostors.csv` (a third kernel pass collects the candidates), `worst_genuine.csv` and the
/// contact sheet `top_impostors.png`.
fn top_pairs(
    p: &mut Prepared,
    emb: &[f32],
    dim: usize,
    rows: &[Option<usize>],
    s: &Scored,
    x: &Excluded,
) -> Result<()> {
    let combos = p.partition.combos.len();
    let (cutoff, count) = top::candidate_cutoff(&s.comparisons.nonmated);
    let found = count + x.at_or_above(cutoff);
    let mut candidates =
        p.backend
            .high_pairs(emb, dim, &s.e_combo, &s.e_subject, combos, cutoff, found)?;
    x.remove_from(&mut candidates);
    let impostors = top::top_impostors(&candidates, emb, dim, &s.e_combo, combos);
    let genuine = top::worst_genuine(&s.mated, &s.e_combo);
    let m = &p.adapted.manifest;
    let info: Vec<RowInfo> = (0..rows.len())
        .filter(|&i| rows[i].is_some())
        .map(|i| RowInfo {
            rel_path: m.samples[i].rel_path.clone(),
            subject: m.samples[i].subject.clone(),
            group: group_label(&m.attributes, &m.samples[i].attributes),
            file: m.samples[i].path.clone(),
        })
        .collect();
    let top_rows = pairs::pair_rows(&impostors, |r| &info[r]);
    let csv = |rows: &[pairs::PairRow]| report::rows_csv(rows).map_err(|e| anyhow!(e));
    put(&p.staging, "top_impostors.csv", &csv(&top_rows)?)?;
    let worst_rows = pairs::pair_rows(&genuine, |r| &info[r]);
    put(&p.staging, "worst_genuine.csv", &csv(&worst_rows)?)?;
    let overall: Vec<&top::RankedPair> = impostors.iter().filter(|x| x.rank.is_some()).collect();
    let sheet_rows: Vec<pairs::PairRow> = top_rows
        .iter()
        .filter(|r| r.rank.is_some())
        .cloned()
        .collect();
    let files: Vec<_> = overall
        .iter()
        .map(|x| (info[x.a].file.clone(), info[x.b].file.clone()))
        .collect();
    if !files.is_empty() {
        let png = pairs::contact_sheet(&sheet_rows, &files).map_err(|e| anyhow!(e))?;
        put(&p.staging, "top_impostors.png", &png)?;
    }
    Ok(())
}

/// `sex=female race=indian`: a sample's labelled attributes.
fn group_label(attributes: &[String], values: &[String]) -> String {
    attributes
        .iter()
        .zip(values)
        .filter(|(_, v)| !v.is_empty())
        .map(|(a, v)| format!("{a}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The run record as far as the run itself knows it (the metrics stage adds its results).
fn run_record(
    args: &RunArgs,
    p: &Prepared,
    e: &Embedded,
    skipped: BTreeMap<&'static str, usize>,
    compare_s: f64,
    shard: Shard,
) -> RunRecord {
    let (m, manifest) = (&p.model, &p.adapted.manifest);
    let mut timings_s = BTreeMap::new();
    match args.embeddings {
        Some(_) => timings_s.insert("load_embeddings", e.seconds),
        None => timings_s.insert("extract", e.timings.wall_s),
    };
    timings_s.insert("compare", compare_s);
    RunRecord {
        schema_version: record::SCHEMA_VERSION,
        tool: record::ToolRecord::current(),
        model: record::ModelRecord {
            path: m.path.display().to_string(),
            sha256: m.sha256.clone(),
            spec: m.spec.clone(),
        },
        detector: record::DetectorRecord {
            path: m.detector.display().to_string(),
            sha256: m.detector_sha256.clone(),
            config: p.detector_config,
        },
        dataset: record::DatasetRecord {
            name: args
                .dataset
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            manifest: manifest.file.display().to_string(),
            manifest_sha256: manifest.sha256.clone(),
            images: manifest.samples.len(),
            subjects: manifest.subject_count(),
            attributes: manifest.attributes.clone(),
            warnings: manifest.warnings.clone(),
        },
        runtime: p.runtime.clone(),
        compare: record::CompareRecord {
            kernel: p.backend.kernel_name(),
            device: p.backend.describe(),
            precision: p.backend.precision().name(),
            device_note: p.compare_note.clone(),
            bins: BINS,
            score: record::CompareRecord::SCORE,
        },
        seed: args.analysis.seed,
        seed_note: RunRecord::SEED_NOTE,
        requested_target_fmrs: args.target_fmr.clone(),
        target_fmrs: Vec::new(),
        thresholds: Vec::new(),
        calibration_population: RunRecord::CALIBRATION,
        skipped,
        files: Vec::new(),
        execution: record::ExecutionRecord {
            timings_s,
            extract: e.timings.clone(),
            cache_file: p.cache.path().map(|p| p.display().to_string()),
            cache_hits: e.cache_hits,
            cache_damaged_records: p.cache.damaged(),
            cache_set_aside: p.cache.set_aside().map(|p| p.display().to_string()),
            shard: [shard.index, shard.count],
        },
    }
}

/// Prints the dataset protocol's overall k-fold accuracy.
fn print_protocol(list: &protocol::PairList, acc: &[FoldAccuracy]) {
    if let Some(a) = acc.first() {
        eprintln!("note: {} protocol: {} pairs, {}-fold accuracy {:.4} ± {:.4} ({} pairs of the list are not in the dataset)", list.name, a.pairs, a.folds, a.accuracy, a.std, list.missing);
    }
}

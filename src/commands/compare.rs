//! `facebias compare`: models side by side on one dataset. With `--models`, each model first meets
//! the sanity gate (score spread and FNMR on the sanity set; a model that fails is stopped, with the
//! reason, never reported with differentials), then runs into its own folder inside `--out`
//! (`--common-enrolled`: all on the images every model enrolled); with `--runs`, finished run
//! folders of one dataset are read. Then every model is analysed from its saved comparisons
//! ([`crate::metrics::comparison`]) and one comparison report is written
//! ([`crate::report::comparison`]).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use super::common;
use super::inspect::load_sanity_set;
use super::model::resolve_model;
use crate::cli::{CompareArgs, ModelArgs, RunArgs};
use crate::embed::{extract, sanity};
use crate::metrics::bootstrap::BootstrapData;
use crate::metrics::{analysis, store, Comparisons};
use crate::report::comparison::{self as report, Loaded, Stopped};
use crate::report::{charts, record, render};
use crate::{manifest, runtime};

/// `facebias compare`.
pub fn compare(args: &CompareArgs) -> Result<PathBuf> {
    let staging = common::stage(&args.out)?;
    let record = write_into(args, staging.dir())?;
    let out = common::commit(staging, &record)?;
    println!("comparison report: {}", out.display());
    Ok(out)
}

/// Runs (or reads) the models and writes the comparison into `dir` (all but `run.json`, returned as
/// the record); used by `compare` and by the demo's comparison section.
pub fn write_into(args: &CompareArgs, dir: &Path) -> Result<serde_json::Value> {
    if args.models.is_empty() == args.runs.is_empty() {
        bail!("give either --models (with --dataset) to run and compare models, or --runs with finished run folders of one dataset");
    }
    charts::ensure_font().map_err(|e| anyhow!(e))?;
    common::check_targets(args.target_fmr.as_deref())?;
    let (folders, stopped, common_note) = if args.models.is_empty() {
        (args.runs.clone(), Vec::new(), None)
    } else {
        run_models(args, dir)?
    };
    if folders.is_empty() {
        bail!(
            "no model passed the sanity gate, so there is nothing to compare: {}",
            stopped
                .iter()
                .map(|s: &Stopped| format!("{}: {}", s.name, s.reason))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let loaded = folders
        .iter()
        .map(|f| load_run(f, args))
        .collect::<Result<Vec<_>>>()?;
    same_dataset(&loaded)?;
    report::write(dir, &loaded, &stopped, common_note.as_deref()).map_err(|e| anyhow!(e))
}

/// Gates and runs every `--models` model into `dir/<name>`; returns the run folders, the
/// stopped models and, with `--common-enrolled`, what was left out.
fn run_models(
    args: &CompareArgs,
    dir: &Path,
) -> Result<(Vec<PathBuf>, Vec<Stopped>, Option<String>)> {
    let Some(dataset) = &args.dataset else {
        bail!("--models needs --dataset (the images every model is run over)");
    };
    let rt = runtime::load(args.ort_lib.as_deref())?;
    let model_args = |name: &str, allow: bool| ModelArgs {
        models_dir: args.models_dir.clone(),
        ort_lib: args.ort_lib.clone(),
        allow_unusable: allow,
        ..ModelArgs::named(name)
    };
    let sanity_path = args
        .sanity
        .clone()
        .unwrap_or_else(|| super::audit::default_sanity(dataset));
    let mut passed = Vec::new();
    let mut stopped = Vec::new();
    let mut set = None;
    for name in &args.models {
        let model = resolve_model(&model_args(name, true))?;
        if set.is_none() {
            set = Some(load_sanity_set(rt, &sanity_path, &model.detector)?);
        }
        let set = set.as_ref().expect("loaded");
        let check = sanity::sanity(rt, &model.path, &model.spec, set).map_err(|e| anyhow!(e))?;
        let reason = check.degenerate().or_else(|| {
            (check.fnmr_at_gate_fmr > args.max_sanity_fnmr).then(|| {
                format!(
                    "FNMR {:.3} at the sanity set's FMR {} threshold is above --max-sanity-fnmr {} (AUC {:.4})",
                    check.fnmr_at_gate_fmr,
                    sanity::GATE_FMR,
                    args.max_sanity_fnmr,
                    check.auc
                )
            })
        });
        println!(
            "sanity gate, {name}: FNMR {:.3} at FMR {} on {}, scores spread {:.3}..{:.3}: {}",
            check.fnmr_at_gate_fmr,
            sanity::GATE_FMR,
            set.name,
            check.score_p1_p99[0],
            check.score_p1_p99[1],
            reason
                .as_deref()
                .map_or("passed".to_string(), |r| format!("STOPPED — {r}"))
        );
        match reason {
            Some(reason) => stopped.push(Stopped {
                name: name.clone(),
                sha256: model.sha256.clone(),
                reason,
                separation: check,
            }),
            None => passed.push((name.clone(), model)),
        }
    }
    let (dataset, note) = if args.common_enrolled && passed.len() > 1 {
        let (path, note) = common_manifest(args, dataset, &passed, dir)?;
        (path, Some(note))
    } else {
        (dataset.clone(), None)
    };
    let mut folders = Vec::new();
    for (name, _) in &passed {
        let out = dir.join(render::sanitize(name));
        let run_args = RunArgs {
            embeddings: None,
            skip_finished: false,
            dataset: dataset.clone(),
            out: out.clone(),
            target_fmr: args.target_fmr.clone(),
            attributes: None,
            shard: None,
            exclude_pairs: None,
            precision: crate::compare::gpu::Precision::Fp32,
            kernel: None,
            adapter: crate::manifest::adapters::Adapter::Auto,
            analysis: args.analysis.clone(),
            model: model_args(name, false),
            exec: args.exec.clone(),
            audit: None,
            identify: None,
            compare: None,
        };
        println!("running {name} over {}", dataset.display());
        super::run::run(&run_args)?;
        folders.push(out);
    }
    Ok((folders, stopped, note))
}

/// `--common-enrolled`: embeds the dataset with every model (cached for the runs), keeps the images
/// all of them enrolled, writes that manifest into `dir`; returns it and a sentence on what it left out.
fn common_manifest(
    args: &CompareArgs,
    dataset: &Path,
    models: &[(String, super::model::ResolvedModel)],
    dir: &Path,
) -> Result<(PathBuf, String)> {
    let rt = runtime::load(args.ort_lib.as_deref())?;
    let m = manifest::load(dataset, None, true)?;
    let mut keep = vec![true; m.samples.len()];
    let mut lost = Vec::new();
    for (name, model) in models {
        let margs = ModelArgs::named(name.as_str());
        let mut cfg = common::extract_config(
            model,
            &margs,
            common::threads(args.exec.threads),
            args.exec.batch_size,
            false,
            !args.exec.quiet,
        );
        cfg.max_pixels = args.exec.max_image_pixels;
        let cache = common::open_cache(rt, model, &cfg, &args.exec)?;
        let ex = extract::extract(rt, &m.samples, &cfg, &cache).map_err(|e| anyhow!(e))?;
        let failed = ex.results.iter().filter(|r| r.embedding.is_none()).count();
        lost.push(format!("{name} {failed}"));
        for (k, r) in keep.iter_mut().zip(&ex.results) {
            *k &= r.embedding.is_some();
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["path".to_string(), "subject".to_string()];
    header.extend(m.attributes.iter().cloned());
    w.write_record(&header)?;
    for (s, _) in m.samples.iter().zip(&keep).filter(|(_, k)| **k) {
        let mut rec = vec![s.path.display().to_string(), s.subject.clone()];
        rec.extend(s.attributes.iter().cloned());
        w.write_record(&rec)?;
    }
    let path = dir.join(report::COMMON_MANIFEST);
    std::fs::write(&path, w.into_inner().map_err(|e| anyhow!("{e}"))?)
        .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
    let kept = keep.iter().filter(|k| **k).count();
    Ok((
        path,
        format!(
            "--common-enrolled: {kept} of {} images were enrolled by every model and all models ran on those only, listed in {} in this folder (each run's run.json names that file by the path it had while the comparison was written; failures to enrol per model: {})",
            m.samples.len(),
            report::COMMON_MANIFEST,
            lost.join(", ")
        ),
    ))
}

/// Reads a run folder and analyses its saved comparisons.
fn load_run(dir: &Path, args: &CompareArgs) -> Result<Loaded> {
    let (header, comparisons): (store::Header, Comparisons) =
        common::read_comparisons(dir, "facebias run folder")?;
    if header.shard[1] > 1 {
        bail!(
            "{} holds shard {} of {} only; run `facebias merge` over all shard folders first",
            dir.display(),
            header.shard[0],
            header.shard[1]
        );
    }
    let record = record::read(dir).map_err(|e| anyhow!(e))?;
    let boot = match std::fs::read(dir.join("bootstrap.bin")) {
        Ok(bytes) => Some(
            BootstrapData::from_bytes(&bytes)
                .map_err(|e| anyhow!("{}: {e}", dir.join("bootstrap.bin").display()))?,
        ),
        Err(_) => None,
    };
    let opts = common::analysis_options(&args.analysis);
    let targets = args
        .target_fmr
        .clone()
        .or_else(|| record::requested_targets(&record));
    let analysis = analysis::analyse(
        &header,
        &comparisons,
        targets.as_deref(),
        boot.as_ref(),
        &opts,
    );
    Ok(Loaded {
        dir: dir.to_path_buf(),
        record,
        header,
        comparisons,
        analysis,
    })
}

/// Refuses runs of different datasets (their rates would not be comparable).
fn same_dataset(runs: &[Loaded]) -> Result<()> {
    let sha = |l: &Loaded| {
        l.record["dataset"]["manifest_sha256"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let first = sha(&runs[0]);
    for l in &runs[1..] {
        if sha(l) != first {
            bail!(
                "{} and {} are runs over different datasets (manifest sha256 {} and {}): a comparison needs the same images",
                runs[0].dir.display(),
                l.dir.display(),
                first,
                sha(l)
            );
        }
    }
    Ok(())
}

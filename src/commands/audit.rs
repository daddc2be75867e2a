//! `facebias audit`: a model file in one command — inspect, probe its preprocessing when it has no
//! spec, the sanity gate, then `run` with exactly that spec, plus `model_spec.toml` and `sanity.json`
//! in the report.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::inspect::{load_sanity_set, run_probe};
use super::model::{detector_path, read_spec};
use crate::cli::{AuditArgs, ModelArgs, RunArgs};
use crate::embed::probe::{self, Candidate, Separation};
use crate::embed::spec;
use crate::report::console::RunOutcome;
use crate::report::Staging;
use crate::runtime;

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
    let set = load_sanity_set(rt, &args.sanity, &detector)?;
    let mut ranking = Vec::new();
    let (spec_used, source) = match (&args.spec, spec::by_sha256(&sha)) {
        (Some(f), _) => (read_spec(f)?, format!("--spec {}", f.display())),
        (None, Some(s)) => (s.clone(), format!("catalogue entry `{}`", s.name)),
        (None, None) => {
            println!(
                "no spec for this model: probing its preprocessing on {}",
                args.sanity.display()
            );
            ranking = run_probe(rt, &args.model, &sha, &set)?;
            (
                ranking[0].spec.clone(),
                format!("probe: {}", ranking[0].name),
            )
        }
    };
    let check = probe::sanity(rt, &args.model, &spec_used, &set).map_err(|e| anyhow!(e))?;
    println!(
        "sanity check ({source}): balanced accuracy {:.3} on {} mated and {} non-mated pairs (AUC {:.3})",
        check.accuracy, check.mated_pairs, check.nonmated_pairs, check.auc
    );
    if check.accuracy < args.min_accuracy && !args.force {
        bail!(
            "sanity check failed: balanced verification accuracy {:.3} on the sanity set is below {:.2}, so the preprocessing is \
             probably wrong (colour order, pixel scaling, crop or layout). Run `facebias inspect --probe {}` to rank the \
             alternatives, fix the spec and pass it with --spec, or use --force to audit anyway",
            check.accuracy,
            args.min_accuracy,
            args.model.display()
        );
    }
    let spec_text = toml::to_string(&spec_used).context("cannot write the spec")?;
    let outcome = run_with_spec(args, &spec_text, detector)?;
    let sanity_json = sanity_record(args, &source, &check, set.skipped, &ranking);
    std::fs::write(outcome.out.join("model_spec.toml"), spec_text)
        .context("cannot write model_spec.toml")?;
    std::fs::write(
        outcome.out.join("sanity.json"),
        serde_json::to_vec_pretty(&sanity_json)?,
    )
    .context("cannot write sanity.json")?;
    Ok(outcome)
}

/// The full run with exactly this spec (written to a temporary file beside `--out` for `run`).
fn run_with_spec(args: &AuditArgs, spec_text: &str, detector: PathBuf) -> Result<RunOutcome> {
    let tmp = tempfile_path(&args.out, "model_spec.toml");
    std::fs::write(&tmp, spec_text).with_context(|| format!("cannot write {}", tmp.display()))?;
    let run_args = RunArgs {
        dataset: args.dataset.clone(),
        out: args.out.clone(),
        target_fmr: args.target_fmr.clone(),
        attributes: None,
        shard: None,
        exclude_pairs: None,
        precision: crate::compare::gpu::Precision::Fp32,
        adapter: crate::manifest::adapters::Adapter::Auto,
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
    let outcome = super::run::run(&run_args);
    let _ = std::fs::remove_file(&tmp);
    outcome
}

/// `sanity.json`: the gate's set, spec source, result and (when the probe ran) its ranking.
fn sanity_record(
    args: &AuditArgs,
    source: &str,
    check: &Separation,
    images_without_face: usize,
    ranking: &[Candidate],
) -> serde_json::Value {
    serde_json::json!({
        "sanity_set": args.sanity.display().to_string(),
        "spec_source": source,
        "accuracy": check.accuracy,
        "auc": check.auc,
        "d_prime": check.d_prime,
        "threshold": check.threshold,
        "mated_pairs": check.mated_pairs,
        "nonmated_pairs": check.nonmated_pairs,
        "images_without_face": images_without_face,
        "min_accuracy": args.min_accuracy,
        "forced": args.force && check.accuracy < args.min_accuracy,
        "probe_ranking": ranking.iter().map(|c| serde_json::json!({"name": c.name, "auc": c.separation.auc, "d_prime": c.separation.d_prime, "accuracy": c.separation.accuracy})).collect::<Vec<_>>(),
    })
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

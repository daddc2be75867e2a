//! `facebias audit`: a model file in one command — inspect, probe its preprocessing when it has no
//! spec, the sanity gate, then `run` with exactly that spec, plus `model_spec.toml` and `sanity.json`
//! in the report.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::inspect::{load_sanity_set, run_probe};
use super::model::{detector_path, read_spec};
use crate::cli::{AuditArgs, ModelArgs, RunArgs};
use crate::embed::probe::{self, Candidate, Probe};
use crate::embed::sanity::{self, SanitySet, Separation};
use crate::embed::spec::{self, ModelSpec};
use crate::report::audit::AuditAttachment;
use crate::report::console::RunOutcome;
use crate::report::Staging;
use crate::runtime;
use crate::runtime::Runtime;

/// How the spec of an audit was chosen.
struct Chosen {
    spec: ModelSpec,
    /// `catalogue entry …`, `--spec FILE`, or `probe: …`.
    source: String,
    /// The spec names another file (its sha256 differs) and `--force` let it through.
    sha256_mismatch: bool,
    probe: Option<Probe>,
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
    let sanity_path = args
        .sanity
        .clone()
        .unwrap_or_else(|| default_sanity(&args.dataset));
    // A --spec written for another file is refused before any image is read.
    let given = match &args.spec {
        Some(f) => Some(given_spec(args, f, &sha)?),
        None => None,
    };
    let set = load_sanity_set(rt, &sanity_path, &detector)?;
    let chosen = choose_spec(args, rt, &sha, &set, given)?;
    let check = sanity::sanity(rt, &args.model, &chosen.spec, &set).map_err(|e| anyhow!(e))?;
    println!(
        "sanity check ({}) on {}: FNMR {:.3} at the set's FMR {} threshold ({} mated, {} non-mated pairs, {} false matches allowed); AUC {:.4}, d′ {:.2}",
        chosen.source,
        set.name,
        check.fnmr_at_gate_fmr,
        sanity::GATE_FMR,
        check.mated_pairs,
        check.nonmated_pairs,
        check.gate_false_matches,
        check.auc,
        check.d_prime
    );
    // A --spec also meets its nearest alternatives: one that clearly beats it names the wrong part.
    let rivals = match &args.spec {
        Some(_) => {
            Some(probe::alternatives(rt, &args.model, &chosen.spec, &set).map_err(|e| anyhow!(e))?)
        }
        None => None,
    };
    let beaten = rivals.as_ref().and_then(beaten_by);
    let passed = check.fnmr_at_gate_fmr <= args.max_sanity_fnmr
        && beaten.is_none()
        && check.degenerate().is_none();
    if !passed && !args.force {
        bail!(match beaten {
            Some((given, best)) => rival_failure(args, given, best),
            None => gate_failure(args, &check, chosen.probe.as_ref()),
        });
    }
    let spec_text = toml::to_string(&chosen.spec).context("cannot write the spec")?;
    let sanity_json = sanity_record(args, &set, &chosen, &check, passed, rivals.as_ref());
    let runner_up = runner_up(&chosen, rivals.as_ref());
    let mut rows = vec![(
        format!("chosen: {}", chosen.source),
        set.crops(&chosen.spec, CROPS),
    )];
    if let Some(r) = runner_up {
        rows.push((format!("runner-up: {}", r.name), set.crops(&r.spec, CROPS)));
    }
    let attachment = AuditAttachment {
        summary: audit_summary(args, &set, &chosen, &check, passed, runner_up),
        files: vec![
            ("model_spec.toml".into(), spec_text.clone().into_bytes()),
            (
                "sanity.json".into(),
                serde_json::to_vec_pretty(&sanity_json)?,
            ),
            (
                crate::report::audit::CROPS_FILE.into(),
                crate::report::audit::crop_sheet(&rows).map_err(|e| anyhow!(e))?,
            ),
        ],
    };
    run_with_spec(args, &spec_text, detector, attachment)
}

/// Crops of the first images of the sanity set on the crop sheet, per spec.
const CROPS: usize = 12;

/// The runner-up: the probe's second, or a --spec's best alternative other than itself.
fn runner_up<'a>(chosen: &'a Chosen, rivals: Option<&'a Probe>) -> Option<&'a Candidate> {
    match (&chosen.probe, rivals) {
        (Some(p), _) => p.runner_up(),
        (None, Some(r)) => r.ranking.iter().find(|c| c.name != probe::GIVEN),
        _ => None,
    }
}

/// The `audit` section of run.json: verdict, spec source, runner-up, sanity figures.
fn audit_summary(
    args: &AuditArgs,
    set: &SanitySet,
    chosen: &Chosen,
    check: &Separation,
    passed: bool,
    runner_up: Option<&Candidate>,
) -> serde_json::Value {
    let verdict = match (passed, chosen.sha256_mismatch) {
        (true, false) => "passed".to_string(),
        (true, true) => "forced: the spec was written for another file".to_string(),
        (false, _) => "forced: the spec failed the sanity gate, so these figures may come from a model fed the wrong input".to_string(),
    };
    // The probe's images for a runner-up, and the chosen spec's figure on those same images.
    let (images, chosen_fnmr) = match (&chosen.probe, runner_up) {
        (Some(p), Some(_)) => (p.confirmed_images, p.chosen().separation.fnmr_at_gate_fmr),
        _ => (0, f64::NAN),
    };
    serde_json::json!({
        "verdict": verdict,
        "model_file": args.model.file_name().map(|n| n.to_string_lossy().to_string()),
        "spec_source": chosen.source,
        "spec_sha256_mismatch": chosen.sha256_mismatch,
        "flat": chosen.probe.as_ref().map(|p| p.flat),
        "sanity": {
            "set": set.name,
            "chosen_by": if args.sanity.is_some() { "--sanity" } else { "default" },
            "images": set.len(),
            "mated_pairs": check.mated_pairs,
            "nonmated_pairs": check.nonmated_pairs,
            "fmr": sanity::GATE_FMR,
            "fnmr": check.fnmr_at_gate_fmr,
            "max_fnmr": args.max_sanity_fnmr,
            "auc": check.auc,
        },
        "runner_up": runner_up.filter(|_| chosen.probe.is_some()).map(|r| serde_json::json!({
            "name": r.name,
            "fnmr": r.separation.fnmr_at_gate_fmr,
            "chosen_fnmr": chosen_fnmr,
            "images": images,
        })),
        "crops": crate::report::audit::CROPS_FILE,
    })
}

/// The default sanity set: `lfw`, or `bfw` when the audited dataset is the shared LFW (a spec is
/// never checked on the images it is audited on).
pub(crate) fn default_sanity(dataset: &Path) -> PathBuf {
    let lfw = sanity::committed("lfw")
        .and_then(|r| r.ok())
        .map(|(_, d)| d);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a.starts_with(b),
        _ => false,
    };
    match lfw {
        Some(d) if same(dataset, &d) => PathBuf::from("bfw"),
        _ => PathBuf::from("lfw"),
    }
}

/// Reads `--spec` and refuses it when it was written for another file (unless forced).
fn given_spec(args: &AuditArgs, f: &Path, sha: &str) -> Result<Chosen> {
    let s = read_spec(f)?;
    let mismatch = !s.sha256.is_empty() && !s.sha256.eq_ignore_ascii_case(sha);
    if mismatch && !args.force {
        bail!(
            "the spec {} was written for the file with sha256 {}, but {} has sha256 {sha}: it describes another model. \
             Probe this file instead (omit --spec), fix `sha256` in the spec if it really is this model's, or pass --force (recorded in sanity.json)",
            f.display(),
            s.sha256,
            args.model.display()
        );
    }
    let mut s = s;
    if mismatch {
        // Forced: run it on this file (the mismatch is recorded in sanity.json and on the page).
        s.sha256 = sha.to_string();
    }
    Ok(Chosen {
        spec: s,
        source: format!("--spec {}", f.display()),
        sha256_mismatch: mismatch,
        probe: None,
    })
}

/// The spec: `--spec` (already read), the catalogue entry matching the file's sha256, else the
/// probe's best.
fn choose_spec(
    args: &AuditArgs,
    rt: &Runtime,
    sha: &str,
    set: &SanitySet,
    given: Option<Chosen>,
) -> Result<Chosen> {
    let known = spec::by_sha256(sha).filter(|_| !args.no_catalogue);
    match (given, known) {
        (Some(g), _) => Ok(g),
        (None, Some(s)) => Ok(Chosen {
            source: format!("catalogue entry `{}`", s.name),
            spec: s,
            sha256_mismatch: false,
            probe: None,
        }),
        (None, None) => {
            println!(
                "no spec for this model: probing its preprocessing on {}",
                set.name
            );
            let found = run_probe(rt, &args.model, sha, set)?;
            Ok(Chosen {
                spec: found.chosen().spec.clone(),
                source: format!("probe: {}", found.chosen().name),
                sha256_mismatch: false,
                probe: Some(found),
            })
        }
    }
}

/// The given spec and the alternative that clearly beats it (FNMR above 1.5 × the alternative's
/// + 0.02 on the probe's images), if one does.
fn beaten_by(rivals: &Probe) -> Option<(&Candidate, &Candidate)> {
    let given = rivals.ranking.iter().find(|c| c.name == probe::GIVEN)?;
    let best = rivals.ranking.first()?;
    let (g, b) = (
        given.separation.fnmr_at_gate_fmr,
        best.separation.fnmr_at_gate_fmr,
    );
    (g > 1.5 * b + 0.02).then_some((given, best))
}

/// The refusal of a --spec that an alternative beats, naming the part that differs.
fn rival_failure(args: &AuditArgs, given: &Candidate, best: &Candidate) -> String {
    let (g, b) = (&given.spec, &best.spec);
    let part = if g.color != b.color {
        "colour order"
    } else if g.crop() != b.crop() {
        "crop"
    } else {
        "pixel scaling"
    };
    format!(
        "sanity check failed: the spec's FNMR at the sanity set's FMR {} threshold is {:.3}, but `{}` (which differs in its {part}) reaches {:.3} on the same images: \
         the spec's {part} is probably wrong. Fix it, or run `facebias inspect --probe {}` to rank the alternatives, or use --force to audit anyway",
        sanity::GATE_FMR,
        given.separation.fnmr_at_gate_fmr,
        best.name,
        best.separation.fnmr_at_gate_fmr,
        args.model.display()
    )
}

/// The gate's refusal: the figures, and which part of the spec to try next.
fn gate_failure(args: &AuditArgs, check: &Separation, probed: Option<&Probe>) -> String {
    if let Some(why) = check.degenerate() {
        return format!(
            "sanity check failed: {why}; FNMR {:.3} at the sanity set's FMR {} threshold (AUC {:.4}). No preprocessing makes such a model measure anything: its \"differentials\" would be noise. Use --force to audit it anyway",
            check.fnmr_at_gate_fmr,
            sanity::GATE_FMR,
            check.auc
        );
    }
    if let Some(p) = probed {
        return format!(
            "sanity check failed: FNMR {:.3} at the sanity set's FMR {} threshold is above {:.2} (--max-sanity-fnmr; AUC {:.4} on {} mated and {} non-mated pairs), and that is the best of the {} preprocessings the probe tried: \
             this model does not separate faces under any of them (or needs a preprocessing outside the probe's search: then describe it with --spec). Use --force to audit it anyway",
            check.fnmr_at_gate_fmr,
            sanity::GATE_FMR,
            args.max_sanity_fnmr,
            check.auc,
            check.mated_pairs,
            check.nonmated_pairs,
            p.ranking.len()
        );
    }
    let hint = if check.auc < 0.9 {
        "the scores barely separate at all, so the pixel scaling, colour order or layout is probably wrong (or the model does not work)"
    } else {
        "the pairs separate overall but not at low FMR: check the crop first (template, crop_scale, crop_offset_y), then the pixel scaling"
    };
    format!(
        "sanity check failed: FNMR {:.3} at the sanity set's FMR {} threshold is above {:.2} (--max-sanity-fnmr; AUC {:.4} on {} mated and {} non-mated pairs): \
         {hint}. Run `facebias inspect --probe {}` to rank the alternatives, fix the spec and pass it with --spec, or use --force to audit anyway",
        check.fnmr_at_gate_fmr,
        sanity::GATE_FMR,
        args.max_sanity_fnmr,
        check.auc,
        check.mated_pairs,
        check.nonmated_pairs,
        args.model.display()
    )
}

/// The full run with exactly this spec (written to a temporary file beside `--out` for `run`).
fn run_with_spec(
    args: &AuditArgs,
    spec_text: &str,
    detector: PathBuf,
    attachment: AuditAttachment,
) -> Result<RunOutcome> {
    let tmp = tempfile_path(&args.out, "model_spec.toml");
    std::fs::write(&tmp, spec_text).with_context(|| format!("cannot write {}", tmp.display()))?;
    let run_args = RunArgs {
        embeddings: None,
        skip_finished: false,
        dataset: args.dataset.clone(),
        out: args.out.clone(),
        target_fmr: args.target_fmr.clone(),
        attributes: None,
        shard: None,
        exclude_pairs: None,
        precision: crate::compare::gpu::Precision::Fp32,
        kernel: None,
        adapter: crate::manifest::adapters::Adapter::Auto,
        analysis: args.analysis.clone(),
        model: ModelArgs {
            models_dir: args.models_dir.clone(),
            detector: Some(detector),
            ort_lib: args.ort_lib.clone(),
            spec: Some(tmp.clone()),
            allow_unusable: args.force,
            ..ModelArgs::named(args.model.display().to_string())
        },
        exec: args.exec.clone(),
        audit: Some(attachment),
        identify: None,
        compare: None,
    };
    let outcome = super::run::run(&run_args);
    let _ = std::fs::remove_file(&tmp);
    outcome
}

/// `sanity.json`: the gate's set, spec source, result and (when the probe ran) its ranking.
fn sanity_record(
    args: &AuditArgs,
    set: &SanitySet,
    chosen: &Chosen,
    check: &Separation,
    passed: bool,
    rivals: Option<&Probe>,
) -> serde_json::Value {
    let alternatives = rivals.map(|p| {
        serde_json::json!({
            "images": p.images,
            "ranking": p.ranking.iter().take(10).map(|c| serde_json::json!({
                "name": c.name,
                "fnmr_at_gate_fmr": c.separation.fnmr_at_gate_fmr,
                "auc": c.separation.auc,
            })).collect::<Vec<_>>(),
            "beaten": beaten_by(p).map(|(_, best)| best.name.clone()),
        })
    });
    let probe = chosen.probe.as_ref().map(|p| {
        serde_json::json!({
            "images": p.images,
            "candidates": p.ranking.len(),
            "within_flat_fnmr_of_best": p.flat,
            "confirmed_images": p.confirmed_images,
            "confirmed": p.confirmed.iter().map(|c| serde_json::json!({
                "name": c.name,
                "auc": c.separation.auc,
                "d_prime": c.separation.d_prime,
                "fnmr_at_gate_fmr": c.separation.fnmr_at_gate_fmr,
            })).collect::<Vec<_>>(),
            "flat_fnmr": crate::embed::probe::FLAT_FNMR,
            "ranking": p.ranking.iter().take(20).map(|c| serde_json::json!({
                "name": c.name,
                "auc": c.separation.auc,
                "d_prime": c.separation.d_prime,
                "fnmr_at_gate_fmr": c.separation.fnmr_at_gate_fmr,
            })).collect::<Vec<_>>(),
        })
    });
    serde_json::json!({
        "sanity_set": set.name,
        "images": set.len(),
        "images_without_face": set.skipped,
        "spec_source": chosen.source,
        "spec_sha256_mismatch": chosen.sha256_mismatch,
        "gate": {
            "fmr": sanity::GATE_FMR,
            "max_fnmr": args.max_sanity_fnmr,
            "fnmr": check.fnmr_at_gate_fmr,
            "false_matches_allowed": check.gate_false_matches,
            "passed": passed,
            "forced": args.force && !passed,
        },
        "auc": check.auc,
        "d_prime": check.d_prime,
        "accuracy": check.accuracy,
        "threshold": check.threshold,
        "mated_pairs": check.mated_pairs,
        "nonmated_pairs": check.nonmated_pairs,
        "probe": probe,
        "alternatives": alternatives,
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

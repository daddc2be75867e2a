//! `facebias inspect`: an ONNX model's inputs, outputs, opsets, producer, sha256 and catalogue match;
//! with `--probe`, a ranking of candidate preprocessings on a sanity set and the best as a spec file.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::model::detector_path;
use crate::cli::InspectArgs;
use crate::embed::inspect::{self, ModelInfo};
use crate::embed::probe::{self, Probe};
use crate::embed::sanity::{self, SanitySet};
use crate::embed::spec::{self, ModelSpec};
use crate::manifest::{self, Sample};
use crate::report::console;
use crate::runtime::{self, Runtime};

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
    let info = ModelInfo::new(&path, bytes.len(), &sha, &header, &session, matched.clone());
    if args.json {
        // Through a JSON value, so the keys come out sorted.
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(&info)?)?
        );
        return Ok(());
    }
    console::print_model_info(&info);
    if args.probe {
        return probe_to_spec(args, rt, &path, &sha, matched.as_ref());
    }
    console::print_catalogue_match(matched.as_ref());
    Ok(())
}

/// `inspect --probe`: ranks the candidate preprocessings and writes the best as a spec TOML.
fn probe_to_spec(
    args: &InspectArgs,
    rt: &Runtime,
    path: &Path,
    sha: &str,
    matched: Option<&ModelSpec>,
) -> Result<()> {
    let detector = detector_path(args.detector.as_deref(), args.models_dir.as_deref())?;
    let set = load_sanity_set(rt, &args.sanity, &detector)?;
    let found = run_probe(rt, path, sha, &set)?;
    let chosen = found.chosen();
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
        toml::to_string(&chosen.spec).context("cannot write the spec")?,
    )
    .with_context(|| format!("cannot write {}", out.display()))?;
    let sheet = out.with_extension("crops.png");
    let rows: Vec<_> = std::iter::once(chosen)
        .chain(found.runner_up())
        .zip(["chosen", "runner-up"])
        .map(|(c, role)| (format!("{role}: {}", c.name), set.crops(&c.spec, 12)))
        .collect();
    let png = crate::report::audit::crop_sheet(&rows).map_err(|e| anyhow!(e))?;
    std::fs::write(&sheet, png).with_context(|| format!("cannot write {}", sheet.display()))?;
    println!(
        "best: {} — spec written to {} (edit it if needed; use it with --spec); its crops next to the runner-up's: {}",
        chosen.name,
        out.display(),
        sheet.display()
    );
    if let Some(m) = matched {
        println!(
            "note: this model is in the catalogue as `{}`; its documented spec takes precedence",
            m.name
        );
    }
    Ok(())
}

/// The samples of a sanity set: a committed set's name (`lfw`, `bfw`), a manifest, a folder with
/// manifest.csv, or a folder of named images.
fn sanity_samples(path: &Path) -> Result<Vec<Sample>> {
    if let Some(found) = path.to_str().and_then(sanity::committed) {
        let (list, dir) = found.map_err(|e| anyhow!(e))?;
        // The committed list's paths are relative to the dataset folder.
        return Ok(manifest::parse(&dir.join("sanity.csv"), &list, Some(&[]), true)?.samples);
    }
    if path.is_file() || path.join("manifest.csv").is_file() {
        Ok(manifest::load(path, Some(&[]), true)?.samples)
    } else if path.is_dir() {
        sanity::folder_samples(path).map_err(|e| anyhow!(e))
    } else {
        anyhow::bail!(
            "sanity set {} does not exist; pass --sanity lfw, --sanity bfw, or a labelled folder or manifest",
            path.display()
        )
    }
}

/// Loads the sanity set at `path` and finds its faces once.
pub fn load_sanity_set(rt: &Runtime, path: &Path, detector: &Path) -> Result<SanitySet> {
    let name = path.display().to_string();
    sanity::load_set(rt, &name, &sanity_samples(path)?, detector)
        .map_err(|e| anyhow!("sanity set {name}: {e}"))
}

/// Runs the probe and prints its ranking.
pub fn run_probe(rt: &Runtime, model: &Path, sha: &str, set: &SanitySet) -> Result<Probe> {
    let found = probe::probe(rt, model, sha, set).map_err(|e| anyhow!(e))?;
    console::print_probe_ranking(&found);
    Ok(found)
}

//! Resolving `--model` and the spec flags into a model file, its spec and a detector — the first step
//! of every command that embeds images.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::ModelArgs;
use crate::embed::spec::{self, ModelSpec, Template};

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
            let s = read_spec(file)?;
            if !s.sha256.is_empty() && !s.sha256.eq_ignore_ascii_case(&sha256) {
                bail!(
                    "--spec {} describes the model file {} (sha256 {}), but --model {} is {} (sha256 {sha256}); pass --model with the spec's file (or fix `sha256` in the spec if it really is this model's)",
                    file.display(),
                    s.file,
                    s.sha256,
                    args.model,
                    path.display()
                );
            }
            s
        }
        (None, Some(s)) => s,
        (None, None) => custom_spec(args, &path, &sha256)?,
    };
    if s.role != "embedding" {
        bail!(
            "--model {} is a {} in the catalogue, not an embedding model",
            args.model,
            s.role
        );
    }
    if !s.unusable.is_empty() && !args.allow_unusable {
        bail!(
            "--model {} ({}) is marked unusable in the catalogue: {}. A report from it would present noise as demographic differentials; pass --allow-unusable to run it anyway (its report then says so)",
            args.model,
            s.name,
            s.unusable
        );
    }
    apply_overrides(&mut s, args)?;
    let detector = detector_path(args.detector.as_deref(), args.models_dir.as_deref())?;
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

/// Reads a `--spec` TOML file (the fields of a `models/models.toml` entry).
pub fn read_spec(file: &Path) -> Result<ModelSpec> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read --spec {}", file.display()))?;
    let spec = toml::from_str::<ModelSpec>(&text).map_err(|e| {
        anyhow!(
            "--spec {}: {}; the fields are those of a models/models.toml entry (see its header)",
            file.display(),
            e.to_string().trim_end()
        )
    })?;
    check_crop(&spec).with_context(|| format!("--spec {}", file.display()))?;
    Ok(spec)
}

/// The spec of a model outside the catalogue given by flags alone: every preprocessing flag must be
/// there (they are applied by [`apply_overrides`]), else the error names them.
fn custom_spec(args: &ModelArgs, path: &Path, sha256: &str) -> Result<ModelSpec> {
    let complete = args.input_name.is_some()
        && args.output_name.is_some()
        && args.input_size.is_some()
        && args.layout.is_some()
        && args.color.is_some()
        && args.pixel_scale.is_some()
        && args.mean.is_some()
        && args.std.is_some();
    if !complete {
        bail!(
            "model {} (sha256 {sha256}) is not in the catalogue; describe its preprocessing with --spec FILE.toml, \
             or all of --input-name --output-name --input-size --layout --color --pixel-scale --mean --std \
             (and --template; `facebias inspect {}` shows its inputs and outputs)",
            path.display(),
            path.display()
        );
    }
    Ok(ModelSpec::blank(
        path,
        sha256,
        "custom",
        "unknown",
        "user-supplied",
    ))
}

/// Applies the preprocessing flags given on the command line to `s`.
fn apply_overrides(s: &mut ModelSpec, args: &ModelArgs) -> Result<()> {
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
    for (flag, v) in [("--mean", &args.mean), ("--std", &args.std)] {
        if let Some(v) = v.as_ref().filter(|v| v.len() != 3) {
            bail!("{flag} takes three comma-separated values, one per channel (e.g. {flag} 127.5,127.5,127.5); got {} ({v:?})", v.len());
        }
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
    if let Some(v) = args.crop_scale {
        s.crop_scale = v;
    }
    if let Some(v) = args.crop_offset_y {
        s.crop_offset_y = v;
    }
    if let Some(v) = args.padding {
        s.padding = v;
    }
    check_crop(s)?;
    if s.size == 0 {
        bail!("the model spec has no input size; give --input-size");
    }
    Ok(())
}

/// Refuses crop geometry that cannot describe a face crop.
pub fn check_crop(s: &ModelSpec) -> Result<()> {
    if !(s.crop_scale.is_finite() && s.crop_scale > 0.05 && s.crop_scale < 20.0) {
        bail!("crop scale {} is not a usable crop size (give --crop-scale / crop_scale between 0.05 and 20; 1 = the template as is)", s.crop_scale);
    }
    if !(s.crop_offset_y.is_finite() && s.crop_offset_y.abs() <= 1.0) {
        bail!("crop offset {} moves the crop by more than its side (give --crop-offset-y / crop_offset_y between -1 and 1)", s.crop_offset_y);
    }
    if s.template == Template::Dlib
        && !(s.padding.is_finite() && s.padding >= 0.0 && s.padding <= 2.0)
    {
        bail!(
            "dlib padding {} is outside 0..2 (dlib's face recognition example uses 0.25)",
            s.padding
        );
    }
    if s.template == Template::Points && s.template_points.is_none() {
        bail!("template `points` needs template_points (five [x, y] points: eyes, nose tip, mouth corners, as seen in the image) and template_size in the spec file");
    }
    Ok(())
}

/// The face detector: `--detector`, else the catalogue's `yunet-dynamic` in the models folder.
pub fn detector_path(explicit: Option<&Path>, models_dir: Option<&Path>) -> Result<PathBuf> {
    match explicit {
        Some(p) if p.is_file() => Ok(p.to_path_buf()),
        Some(p) => bail!("--detector {} does not exist", p.display()),
        None => Ok(spec::resolve("yunet-dynamic", models_dir)
            .map_err(|e| anyhow!(e))?
            .0),
    }
}

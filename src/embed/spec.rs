//! Model specifications: how to feed an ONNX face model, and the catalogue in `models/models.toml`.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::preprocess::tensor::{ColorOrder, Layout, Normalization};

/// The catalogue shipped with facebias (compiled in).
pub const CATALOGUE_TOML: &str = include_str!("../../models/models.toml");

use crate::preprocess::crop::Crop;
pub use crate::preprocess::crop::Template;

fn one() -> f64 {
    1.0
}

fn dlib_padding() -> f64 {
    0.25
}

fn points_size() -> u32 {
    112
}

fn is_default_padding(p: &f64) -> bool {
    *p == 0.25
}

/// Everything needed to run one model: file, tensor names, input geometry and pixel normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Catalogue name (or `custom`).
    pub name: String,
    /// `embedding` or `detector`.
    pub role: String,
    /// File name (catalogue) or path.
    pub file: String,
    /// Expected sha256 of the file, lowercase hex.
    pub sha256: String,
    /// File size in bytes (0 when unknown).
    #[serde(default)]
    pub bytes: u64,
    /// Input tensor name.
    pub input: String,
    /// Output tensor name.
    pub output: String,
    /// Square input side in pixels (0 = dynamic).
    pub size: u32,
    /// Tensor layout.
    pub layout: Layout,
    /// Channel order.
    pub color: ColorOrder,
    /// Factor applied to 0..255 pixel values before the mean is subtracted.
    pub pixel_scale: f64,
    /// Per-channel mean.
    pub mean: [f64; 3],
    /// Per-channel standard deviation.
    pub std: [f64; 3],
    /// Crop template family (see [`crate::preprocess::crop`]).
    pub template: Template,
    /// Crop side relative to the template's (> 1: wider, more context).
    #[serde(default = "one")]
    pub crop_scale: f64,
    /// Downward shift of the crop window, as a fraction of its side (the face moves up).
    #[serde(default)]
    pub crop_offset_y: f64,
    /// dlib's face-chip padding (template `dlib` only).
    #[serde(default = "dlib_padding", skip_serializing_if = "is_default_padding")]
    pub padding: f64,
    /// Five template points (template `points` only): image-left eye, image-right eye, nose tip,
    /// image-left and image-right mouth corner, in a frame of `template_size` pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_points: Option<[[f64; 2]; 5]>,
    /// The side of the frame `template_points` are given in.
    #[serde(default = "points_size")]
    pub template_size: u32,
    /// Embedding length (0 = read from the model).
    pub dim: usize,
    /// Licence of the weights.
    #[serde(default)]
    pub license: String,
    /// Where the file comes from.
    #[serde(default)]
    pub source: String,
    /// What a reader of any report from this model must know about its training data and the test
    /// data (e.g. that it may have been trained on the identities of a benchmark); shown on every
    /// report that uses the model.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub training_overlap: String,
    /// Why the file is not usable as an embedding model (empty: usable); `run` refuses such a model
    /// and says why, `--force` runs it anyway.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unusable: String,
}

impl ModelSpec {
    /// The pixel normalisation of this spec.
    pub fn normalization(&self) -> Normalization {
        Normalization {
            pixel_scale: self.pixel_scale as f32,
            mean: self.mean.map(|v| v as f32),
            std: self.std.map(|v| v as f32),
        }
    }

    /// A spec for an embedding model `file` (sha256 `sha256`) with nothing known yet: no tensor names
    /// or size, RGB raw pixels, the ArcFace crop. Callers fill in what they know.
    pub fn blank(file: &Path, sha256: &str, name: &str, license: &str, source: &str) -> ModelSpec {
        ModelSpec {
            name: name.into(),
            role: "embedding".into(),
            file: file.display().to_string(),
            sha256: sha256.into(),
            bytes: 0,
            input: String::new(),
            output: String::new(),
            size: 0,
            layout: crate::preprocess::tensor::Layout::Nchw,
            color: ColorOrder::Rgb,
            pixel_scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
            template: Template::Arcface112,
            crop_scale: 1.0,
            crop_offset_y: 0.0,
            padding: 0.25,
            template_points: None,
            template_size: 112,
            dim: 0,
            license: license.into(),
            source: source.into(),
            training_overlap: String::new(),
            unusable: String::new(),
        }
    }

    /// The crop geometry of this spec.
    pub fn crop(&self) -> Crop {
        Crop {
            template: self.template,
            scale: self.crop_scale,
            offset_y: self.crop_offset_y,
            padding: self.padding,
            points: self.template_points,
            points_size: self.template_size,
        }
    }

    /// Sets the crop geometry of this spec.
    pub fn set_crop(&mut self, c: &Crop) {
        self.template = c.template;
        self.crop_scale = c.scale;
        self.crop_offset_y = c.offset_y;
        self.padding = c.padding;
        self.template_points = c.points;
        self.template_size = c.points_size;
    }

    /// A short fingerprint of everything that changes the embedding of an image (cache key part).
    pub fn preprocessing_fingerprint(&self) -> String {
        let text = format!(
            "{}|{}|{}|{:?}|{:?}|{}|{:?}|{:?}|{:?}|{}|{}|{}|{:?}|{}",
            self.input,
            self.output,
            self.size,
            self.layout,
            self.color,
            self.pixel_scale,
            self.mean,
            self.std,
            self.template,
            self.crop_scale,
            self.crop_offset_y,
            self.padding,
            self.template_points,
            self.template_size
        );
        hex(&Sha256::digest(text.as_bytes()))[..16].to_string()
    }
}

#[derive(Deserialize)]
struct CatalogueFile {
    model: Vec<ModelSpec>,
}

/// The parsed model catalogue.
pub fn catalogue() -> Vec<ModelSpec> {
    // The catalogue is compiled in; a parse failure is a build defect caught by the tests below.
    toml::from_str::<CatalogueFile>(CATALOGUE_TOML)
        .map(|c| c.model)
        .unwrap_or_default()
}

/// Looks a model up by catalogue name.
pub fn by_name(name: &str) -> Option<ModelSpec> {
    catalogue().into_iter().find(|m| m.name == name)
}

/// Looks a model up by file sha256.
pub fn by_sha256(sha: &str) -> Option<ModelSpec> {
    catalogue().into_iter().find(|m| m.sha256 == sha)
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Folders searched for catalogue model files: `--models-dir`, `$FACEBIAS_MODELS`, `../shared/models`, `shared/models`.
pub fn model_dirs(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = explicit {
        dirs.push(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("FACEBIAS_MODELS") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("../shared/models"));
    dirs.push(PathBuf::from("shared/models"));
    dirs
}

/// Resolves `--model` (a catalogue name or a path) to a file path and, when known, its spec.
/// Unknown files get `None` and must be described with explicit flags or `--spec`.
pub fn resolve(
    model: &str,
    models_dir: Option<&Path>,
) -> Result<(PathBuf, Option<ModelSpec>), String> {
    if let Some(spec) = by_name(model) {
        let dirs = model_dirs(models_dir);
        let found = dirs
            .iter()
            .map(|d| d.join(&spec.file))
            .find(|p| p.is_file());
        return match found {
            Some(p) => Ok((p, Some(spec))),
            None => Err(format!(
                "catalogue model `{model}` needs the file {} in one of: {}; pass --models-dir or the file's path",
                spec.file,
                dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
            )),
        };
    }
    let path = PathBuf::from(model);
    if !path.is_file() {
        let names: Vec<String> = catalogue().into_iter().map(|m| m.name).collect();
        return Err(format!(
            "--model `{model}` is neither an existing .onnx file nor a catalogue name ({})",
            names.join(", ")
        ));
    }
    let sha =
        sha256_file(&path).map_err(|e| format!("cannot read model {}: {e}", path.display()))?;
    Ok((path, by_sha256(&sha)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_parses_and_holds_the_shared_models() {
        let cat = catalogue();
        assert_eq!(cat.len(), 7);
        // Every entry names its shared file by the right sha256 and size.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
        for m in &cat {
            let f = dir.join(&m.file);
            assert_eq!(sha256_file(&f).unwrap(), m.sha256, "{}", m.name);
            assert_eq!(std::fs::metadata(&f).unwrap().len(), m.bytes, "{}", m.name);
        }
        let faceres = by_name("faceres").unwrap();
        assert_eq!(
            (faceres.size, faceres.dim, faceres.layout),
            (224, 1024, Layout::Nhwc)
        );
        assert!(faceres.training_overlap.contains("VGGFace2"));
        assert!(by_name("human-mobilefacenet-192")
            .unwrap()
            .unusable
            .contains("barely depend"));
        assert!(cat
            .iter()
            .filter(|m| m.name != "human-mobilefacenet-192")
            .all(|m| m.unusable.is_empty()));
        let mfn = by_name("mobilefacenet").unwrap();
        assert_eq!((mfn.size, mfn.dim, mfn.color), (112, 128, ColorOrder::Rgb));
        assert!((mfn.pixel_scale - 1.0 / 255.0).abs() < 1e-9);
        assert_eq!(by_sha256(&mfn.sha256).unwrap().name, "mobilefacenet");
    }

    #[test]
    fn fingerprint_changes_with_preprocessing() {
        let a = by_name("mobilefacenet").unwrap();
        let mut b = a.clone();
        b.color = ColorOrder::Bgr;
        assert_ne!(a.preprocessing_fingerprint(), b.preprocessing_fingerprint());
        assert_eq!(
            a.preprocessing_fingerprint(),
            a.clone().preprocessing_fingerprint()
        );
    }

    #[test]
    fn unknown_model_names_the_catalogue() {
        let err = resolve("no-such-model", None).unwrap_err();
        assert!(err.contains("mobilefacenet"), "{err}");
    }
}

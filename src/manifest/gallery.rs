//! What the 1:N gallery holds besides the enrolled subjects: **distractor** datasets (gallery-only
//! images, `--distractors`), and the nested **gallery sizes** (`--gallery-sizes`).
//!
//! Distractors:
//! - every image of a distractor manifest joins the gallery only; identity labels are not needed;
//! - its demographic labels are kept for the attributes the searched dataset has, matched to the
//!   searched dataset's groups by case-insensitive equality (UTKFace's `Asian` is BFW's `asian`);
//!   other values are kept as their source writes them (LFW's `caucasian` is not renamed `white`:
//!   that would be a claim this tool cannot check), and a missing attribute is unlabelled;
//! - an image whose file content (sha256) equals a searched image's, or an earlier distractor's, is
//!   dropped and counted: the same photo on both sides would be a perfect "false" match.
//!
//! Gallery sizes: `N` values or `all`. Every size holds every enrolled mate, so a size below the
//! number of mates is refused; the sizes are sorted and deduplicated. Without `--gallery-sizes` the
//! ladder is the mates alone, then 1-2-5 steps (1,000, 2,000, 5,000, 10,000, …) strictly between,
//! then the whole gallery.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Manifest, Sample};

/// One distractor dataset as used.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Source {
    /// Its manifest file.
    pub manifest: PathBuf,
    /// sha256 of the manifest.
    pub manifest_sha256: String,
    /// Short name (the manifest's folder), written to `samples.csv`'s `dataset` column.
    pub name: String,
    /// Images listed.
    pub images: usize,
    /// Images dropped because the same file is a searched image.
    pub duplicates_of_searched: usize,
    /// Images dropped because the same file is an earlier distractor.
    pub duplicates_of_distractors: usize,
}

/// A dropped duplicate (`run.json` lists them).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Dropped {
    /// Its dataset's short name.
    pub dataset: String,
    /// Its path as its manifest writes it.
    pub path: String,
    /// The image it duplicates (`dataset:path`).
    pub duplicate_of: String,
}

/// The distractors: samples (attributes in the searched manifest's order) and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Distractors {
    /// The kept distractor images.
    pub samples: Vec<Sample>,
    /// Index into `sources` of each kept image.
    pub source_of: Vec<usize>,
    /// Each distractor dataset.
    pub sources: Vec<Source>,
    /// The dropped duplicates.
    pub dropped: Vec<Dropped>,
}

/// sha256 of every file, in parallel; the error names the file.
pub fn file_hashes(samples: &[Sample]) -> Result<Vec<String>, String> {
    samples
        .par_iter()
        .map(|s| {
            crate::embed::spec::sha256_file(&s.path)
                .map_err(|e| format!("cannot read image {}: {e}", s.path.display()))
        })
        .collect()
}

/// The short name of a dataset: its manifest's folder (or the manifest's stem).
pub fn short_name(manifest: &Path) -> String {
    let folder = manifest.parent().and_then(|p| p.file_name());
    match (manifest.file_name().and_then(|f| f.to_str()), folder) {
        (Some("manifest.csv"), Some(f)) => f.to_string_lossy().into_owned(),
        _ => manifest
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// Loads the distractor manifests `paths` for a search over `searched` (whose files hash to
/// `searched_hashes`), mapping labels and dropping duplicates as the module doc says.
pub fn load(
    paths: &[PathBuf],
    searched: &Manifest,
    searched_hashes: &[String],
) -> Result<Distractors, String> {
    let searched_name = short_name(&searched.file);
    // File hash → (`dataset:path`, whether it is a searched image).
    let mut seen: HashMap<String, (String, bool)> = searched
        .samples
        .iter()
        .zip(searched_hashes)
        .map(|(s, h)| (h.clone(), (format!("{searched_name}:{}", s.rel_path), true)))
        .collect();
    let mut out = Distractors {
        samples: Vec::new(),
        source_of: Vec::new(),
        sources: Vec::new(),
        dropped: Vec::new(),
    };
    for path in paths {
        let m = super::load(path, None, true)
            .map_err(|e| format!("--distractors {}: {e}", path.display()))?;
        if m.file == searched.file {
            return Err(format!(
                "--distractors {} is the searched dataset itself: give other datasets (e.g. ../shared/datasets/lfw)",
                path.display()
            ));
        }
        let hashes = file_hashes(&m.samples)?;
        let mut src = Source {
            manifest: m.file.clone(),
            manifest_sha256: m.sha256.clone(),
            name: short_name(&m.file),
            images: m.samples.len(),
            duplicates_of_searched: 0,
            duplicates_of_distractors: 0,
        };
        let map = label_map(searched, &m);
        let vocab = vocabulary(searched);
        for (s, h) in m.samples.iter().zip(hashes) {
            if let Some((of, of_searched)) = seen.get(&h) {
                if *of_searched {
                    src.duplicates_of_searched += 1;
                } else {
                    src.duplicates_of_distractors += 1;
                }
                out.dropped.push(Dropped {
                    dataset: src.name.clone(),
                    path: s.rel_path.clone(),
                    duplicate_of: of.clone(),
                });
                continue;
            }
            seen.insert(h, (format!("{}:{}", src.name, s.rel_path), false));
            out.samples.push(Sample {
                rel_path: s.rel_path.clone(),
                path: s.path.clone(),
                subject: s.subject.clone(),
                attributes: map
                    .iter()
                    .map(|col| col.map(|(a, j)| canonical(&vocab[a], &s.attributes[j])))
                    .map(Option::unwrap_or_default)
                    .collect(),
            });
            out.source_of.push(out.sources.len());
        }
        out.sources.push(src);
    }
    Ok(out)
}

/// For each searched attribute, `(searched index, distractor column)` when the distractor has it.
fn label_map(searched: &Manifest, d: &Manifest) -> Vec<Option<(usize, usize)>> {
    searched
        .attributes
        .iter()
        .enumerate()
        .map(|(i, a)| d.attributes.iter().position(|b| b == a).map(|j| (i, j)))
        .collect()
}

/// The labelled values of each searched attribute, sorted.
fn vocabulary(searched: &Manifest) -> Vec<Vec<String>> {
    (0..searched.attributes.len())
        .map(|a| {
            let mut v: Vec<String> = searched
                .samples
                .iter()
                .map(|s| s.attributes[a].clone())
                .filter(|v| !v.is_empty())
                .collect();
            v.sort();
            v.dedup();
            v
        })
        .collect()
}

/// A distractor's value of an attribute whose searched values are `vocab`: the searched dataset's
/// spelling when they match case-insensitively, else the value as written.
fn canonical(vocab: &[String], value: &str) -> String {
    vocab
        .iter()
        .find(|v| v.eq_ignore_ascii_case(value))
        .map_or(value, |v| v.as_str())
        .to_string()
}

/// One `--gallery-sizes` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// A gallery of N entries.
    N(usize),
    /// The whole gallery.
    All,
}

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Size, String> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(Size::All);
        }
        match s.replace('_', "").parse::<usize>() {
            Ok(n) if n > 0 => Ok(Size::N(n)),
            _ => Err(format!(
                "'{s}' is not a gallery size: give whole numbers or `all`, e.g. 1000,10000,all"
            )),
        }
    }
}

/// The gallery sizes for a gallery of `entries` enrolled entries whose first `mates` are the mates.
pub fn sizes(given: Option<&[Size]>, mates: usize, entries: usize) -> Result<Vec<usize>, String> {
    let mut out: Vec<usize> = match given {
        None => {
            let mut v = vec![mates];
            let mut step = 1000usize;
            'ladder: loop {
                for m in [1, 2, 5] {
                    let n = step * m;
                    if n >= entries {
                        break 'ladder;
                    }
                    if n > mates {
                        v.push(n);
                    }
                }
                step *= 10;
            }
            v.push(entries);
            v
        }
        Some(given) => {
            let mut v = Vec::new();
            for s in given {
                let n = match *s {
                    Size::All => entries,
                    Size::N(n) if n > entries => {
                        return Err(format!(
                            "--gallery-sizes {n} is larger than the gallery ({entries} enrolled entries): give sizes up to {entries}, or `all`"
                        ))
                    }
                    Size::N(n) if n < mates => {
                        return Err(format!(
                            "--gallery-sizes {n} is smaller than the {mates} enrolled mates every gallery holds: give sizes from {mates} up"
                        ))
                    }
                    Size::N(n) => n,
                };
                v.push(n);
            }
            v
        }
    };
    out.sort_unstable();
    out.dedup();
    out.retain(|&n| n > 0);
    if out.is_empty() {
        return Err("the gallery is empty: nothing to search against".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_ladder_and_given_sizes() {
        assert_eq!(
            sizes(None, 400, 10_858).unwrap(),
            vec![400, 1000, 2000, 5000, 10_000, 10_858]
        );
        assert_eq!(sizes(None, 400, 400).unwrap(), vec![400]);
        assert_eq!(sizes(None, 1500, 2000).unwrap(), vec![1500, 2000]);
        let given = [Size::All, Size::N(500), Size::N(500)];
        assert_eq!(sizes(Some(&given), 400, 900).unwrap(), vec![500, 900]);
        let e = sizes(Some(&[Size::N(901)]), 400, 900).unwrap_err();
        assert!(
            e.contains("--gallery-sizes 901") && e.contains("900"),
            "{e}"
        );
        let e = sizes(Some(&[Size::N(100)]), 400, 900).unwrap_err();
        assert!(e.contains("400 enrolled mates"), "{e}");
        assert_eq!("all".parse::<Size>(), Ok(Size::All));
        assert_eq!("10_000".parse::<Size>(), Ok(Size::N(10_000)));
        assert!("0".parse::<Size>().is_err() && "ten".parse::<Size>().is_err());
    }

    #[test]
    fn names_of_datasets() {
        assert_eq!(short_name(Path::new("/d/lfw/manifest.csv")), "lfw");
        assert_eq!(short_name(Path::new("/d/lists/extra.csv")), "extra");
    }
}

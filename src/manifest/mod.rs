//! Dataset manifests: `path,subject,<attribute columns…>` CSV files turned into validated [`Manifest`]s.
//!
//! A dataset is either a CSV manifest or a folder holding `manifest.csv` (the layout of every dataset in
//! `../shared/datasets`). Paths in the manifest are relative to the manifest's folder unless absolute.
//!
//! Validation happens before any expensive work and is split in two kinds:
//! - **errors** stop the run: missing columns, an empty subject id, a duplicate path, a file that does
//!   not exist, or a subject carrying two different values of one attribute;
//! - **warnings** are counted and reported: a group (attribute value) with no mated pair, an empty
//!   attribute value (the sample is left out of that attribute's groups).
//!
//! Numeric `age` columns are turned into the age bands NIST and UTKFace use (`<18`, `18-29`, `30-44`,
//! `45-64`, `65+`), because per-year groups would be too small to measure anything.

pub mod adapters;
pub mod exclude;
pub mod gallery;
pub mod protocol;
pub mod split;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors from reading or validating a manifest. Each names the file and, where it applies, the row.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The manifest or dataset folder could not be read.
    #[error("cannot read dataset manifest {path}: {source}. Pass a manifest CSV or a folder holding manifest.csv")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A CSV row could not be parsed.
    #[error("{path}: row {row}: {message}")]
    Row {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line number of the row in the file (the header is line 1).
        row: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The manifest as a whole is invalid.
    #[error("{path}: {message}")]
    Invalid {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// One image of the dataset: where it is, whose face it shows, and its demographic labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The path exactly as written in the manifest.
    pub rel_path: String,
    /// The resolved path of the image file.
    pub path: PathBuf,
    /// Subject (identity) id.
    pub subject: String,
    /// One value per attribute of [`Manifest::attributes`]; empty when unlabelled.
    pub attributes: Vec<String>,
}

/// A counted, non-fatal problem found while validating a manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// Short machine-readable kind (`group_without_mated_pairs`, `unlabelled`).
    pub kind: String,
    /// Human-readable explanation, naming the attribute, group or row.
    pub message: String,
    /// How many samples or groups it concerns.
    pub count: usize,
}

/// A validated dataset manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest CSV file.
    pub file: PathBuf,
    /// Names of the attribute columns, in file order (after any `--attributes` selection).
    pub attributes: Vec<String>,
    /// All samples, in file order.
    pub samples: Vec<Sample>,
    /// Counted warnings.
    pub warnings: Vec<Warning>,
    /// sha256 of the manifest text (for adapters, of the manifest they generated).
    pub sha256: String,
}

/// Resolves a dataset argument (a manifest CSV, or a folder holding `manifest.csv`) to the manifest file.
pub fn resolve_manifest_path(dataset: &Path) -> Result<PathBuf, ManifestError> {
    if dataset.is_dir() {
        let candidate = dataset.join("manifest.csv");
        if candidate.is_file() {
            return Ok(candidate);
        }
        return Err(ManifestError::Invalid {
            path: dataset.to_path_buf(),
            message: "this folder has no manifest.csv; write one with the columns path,subject,<attributes…> \
                      (see datasets/README.md) or pass the manifest file itself"
                .into(),
        });
    }
    if dataset.is_file() {
        return Ok(dataset.to_path_buf());
    }
    Err(ManifestError::Io {
        path: dataset.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
    })
}

/// Reads and validates a manifest. `only_attributes`, when given, keeps just those attribute columns
/// (each must exist). `check_files` verifies that every image file exists.
pub fn load(
    dataset: &Path,
    only_attributes: Option<&[String]>,
    check_files: bool,
) -> Result<Manifest, ManifestError> {
    let file = resolve_manifest_path(dataset)?;
    let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Io {
        path: file.clone(),
        source,
    })?;
    parse(&file, &text, only_attributes, check_files)
}

/// Parses manifest text (the content of `file`) and validates it. See [`load`].
pub fn parse(
    file: &Path,
    text: &str,
    only_attributes: Option<&[String]>,
    check_files: bool,
) -> Result<Manifest, ManifestError> {
    let invalid = |message: String| ManifestError::Invalid {
        path: file.to_path_buf(),
        message,
    };
    let base = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| invalid(format!("cannot read the header row: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut sorted = headers.clone();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(format!(
            "the header names the column `{}` twice; give every column a distinct name",
            w[0]
        )));
    }
    if let Some(h) = headers.iter().find(|h| h.contains('|') || h.contains('×')) {
        return Err(invalid(format!(
            "the column name `{h}` contains `|` or `×`, which facebias uses to join attributes of an intersection; rename it"
        )));
    }
    let path_col = headers.iter().position(|h| h == "path");
    let subject_col = headers.iter().position(|h| h == "subject");
    let (Some(path_col), Some(subject_col)) = (path_col, subject_col) else {
        return Err(invalid(format!(
            "the header must have the columns `path` and `subject` (found: {}); attribute columns such as sex,race,age follow",
            headers.join(",")
        )));
    };
    let mut attr_cols: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != path_col && *i != subject_col)
        .map(|(i, h)| (i, h.clone()))
        .collect();
    if let Some(only) = only_attributes {
        for name in only {
            if !attr_cols.iter().any(|(_, h)| h == name) {
                return Err(invalid(format!(
                    "--attributes names `{name}`, which is not a column of this manifest (attribute columns: {})",
                    attr_cols.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>().join(",")
                )));
            }
        }
        attr_cols.retain(|(_, h)| only.contains(h));
    }

    let mut samples = Vec::new();
    let mut seen_paths: HashMap<String, usize> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = record.map_err(|e| ManifestError::Row {
            path: file.to_path_buf(),
            row,
            message: format!("malformed CSV: {e}"),
        })?;
        let row_err = |message: String| ManifestError::Row {
            path: file.to_path_buf(),
            row,
            message,
        };
        // Control characters (a NUL, a stray carriage return) never belong in a path or a label:
        // they would corrupt every CSV and page the labels are written to.
        if let Some((c, bad)) = record
            .iter()
            .enumerate()
            .find_map(|(c, f)| f.chars().find(|ch| ch.is_control()).map(|ch| (c, ch)))
        {
            return Err(row_err(format!(
                "the `{}` field holds the control character U+{:04X}; a manifest holds plain text, so fix or remove it",
                headers.get(c).map(String::as_str).unwrap_or("?"),
                bad as u32
            )));
        }
        let rel_path = record.get(path_col).unwrap_or("").to_string();
        let subject = record.get(subject_col).unwrap_or("").to_string();
        if rel_path.is_empty() {
            return Err(row_err(
                "empty `path`; every row needs an image path".into(),
            ));
        }
        if subject.is_empty() {
            return Err(row_err(format!(
                "empty `subject` for {rel_path}; every image needs an identity id (for images without identity, use a unique id per image)"
            )));
        }
        if let Some(first) = seen_paths.insert(rel_path.clone(), row) {
            return Err(row_err(format!(
                "duplicate path {rel_path} (first on row {first}); each image may appear once"
            )));
        }
        let path = if Path::new(&rel_path).is_absolute() {
            PathBuf::from(&rel_path)
        } else {
            base.join(&rel_path)
        };
        if check_files && !path.is_file() {
            return Err(row_err(format!(
                "image file {} does not exist; fix the path or remove the row",
                path.display()
            )));
        }
        let attributes: Vec<String> = attr_cols
            .iter()
            .map(|(c, _)| record.get(*c).unwrap_or("").to_string())
            .collect();
        if let Some((v, (_, col))) = attributes
            .iter()
            .zip(&attr_cols)
            .find(|(v, _)| v.contains('|'))
        {
            return Err(row_err(format!(
                "the `{col}` value `{v}` contains `|`, which joins the values of an intersection (`female|asian`) and would merge two groups; replace it (e.g. with `/` or `+`)"
            )));
        }
        samples.push(Sample {
            rel_path,
            path,
            subject,
            attributes,
        });
    }
    if samples.is_empty() {
        return Err(invalid("the manifest has no rows".into()));
    }
    let attributes: Vec<String> = attr_cols.into_iter().map(|(_, h)| h).collect();
    band_ages(&attributes, &mut samples);
    let mut warnings = validate_labels(file, &attributes, &samples)?;
    fill_from_subject(&attributes, &mut samples, &mut warnings);
    Ok(Manifest {
        file: file.to_path_buf(),
        attributes,
        samples,
        warnings,
        sha256: crate::embed::spec::hex(&<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
    })
}

/// The age band of an age in years, as used for grouping.
pub fn age_band(years: f64) -> &'static str {
    match years {
        y if y < 18.0 => "<18",
        y if y < 30.0 => "18-29",
        y if y < 45.0 => "30-44",
        y if y < 65.0 => "45-64",
        _ => "65+",
    }
}

/// Replaces numeric values of an attribute named `age` with age bands.
fn band_ages(attributes: &[String], samples: &mut [Sample]) {
    let Some(col) = attributes.iter().position(|a| a == "age") else {
        return;
    };
    let all_numeric = samples
        .iter()
        .all(|s| s.attributes[col].is_empty() || s.attributes[col].parse::<f64>().is_ok());
    if !all_numeric {
        return;
    }
    for s in samples {
        if let Ok(y) = s.attributes[col].parse::<f64>() {
            s.attributes[col] = age_band(y).to_string();
        }
    }
}

fn validate_labels(
    file: &Path,
    attributes: &[String],
    samples: &[Sample],
) -> Result<Vec<Warning>, ManifestError> {
    let mut warnings = Vec::new();
    // A subject must have one value per attribute (empty values are ignored).
    let mut first_value: HashMap<(&str, usize), (&str, &str)> = HashMap::new();
    for s in samples {
        for (a, v) in s.attributes.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            match first_value.get(&(s.subject.as_str(), a)) {
                Some((prev, prev_path)) if *prev != v.as_str() => {
                    return Err(ManifestError::Invalid {
                        path: file.to_path_buf(),
                        message: format!(
                            "subject {} has two values of `{}`: `{}` ({}) and `{}` ({}); a subject's demographic labels must agree — fix the labels or split the subject",
                            s.subject, attributes[a], prev, prev_path, v, s.rel_path
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    first_value.insert((s.subject.as_str(), a), (v.as_str(), s.rel_path.as_str()));
                }
            }
        }
    }
    for (a, name) in attributes.iter().enumerate() {
        let unlabelled = samples
            .iter()
            .filter(|s| s.attributes[a].is_empty())
            .count();
        if unlabelled == samples.len() {
            warnings.push(Warning {
                kind: "empty_column".into(),
                message: format!("the `{name}` column is empty in every row: no `{name}` groups"),
                count: unlabelled,
            });
        } else if unlabelled > 0 {
            warnings.push(Warning {
                kind: "unlabelled".into(),
                message: format!(
                    "{unlabelled} of {} images have no `{name}` label; they are left out of the `{name}` groups",
                    samples.len()
                ),
                count: unlabelled,
            });
        }
        // Groups without any mated pair (no subject with two images) cannot have an FNMR.
        let mut per_subject: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        for s in samples {
            let v = s.attributes[a].as_str();
            if !v.is_empty() {
                *per_subject
                    .entry(v)
                    .or_default()
                    .entry(&s.subject)
                    .or_default() += 1;
            }
        }
        let without: Vec<&str> = per_subject
            .iter()
            .filter(|(_, subs)| subs.values().all(|&n| n < 2))
            .map(|(g, _)| *g)
            .collect();
        if !without.is_empty() {
            warnings.push(Warning {
                kind: "group_without_mated_pairs".into(),
                message: format!(
                    "`{name}` groups with no subject having two images (FNMR cannot be measured, FMR only): {}",
                    without.join(", ")
                ),
                count: without.len(),
            });
        }
    }
    Ok(warnings)
}

/// Labels are subject-level: an image with an empty value takes its subject's value from other rows.
fn fill_from_subject(attributes: &[String], samples: &mut [Sample], warnings: &mut Vec<Warning>) {
    for (a, name) in attributes.iter().enumerate() {
        let known: HashMap<String, String> = samples
            .iter()
            .filter(|s| !s.attributes[a].is_empty())
            .map(|s| (s.subject.clone(), s.attributes[a].clone()))
            .collect();
        let mut filled = 0;
        for s in samples.iter_mut() {
            if s.attributes[a].is_empty() {
                if let Some(v) = known.get(&s.subject) {
                    s.attributes[a] = v.clone();
                    filled += 1;
                }
            }
        }
        if filled > 0 {
            warnings.push(Warning {
                kind: "filled_from_subject".into(),
                message: format!("{filled} images without a `{name}` label took their subject's label from other rows"),
                count: filled,
            });
        }
    }
}

impl Manifest {
    /// Number of distinct subjects.
    pub fn subject_count(&self) -> usize {
        self.samples
            .iter()
            .map(|s| s.subject.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Each sample's subject as a dense integer: subject names numbered in sorted order.
    pub fn subject_ids(&self) -> Vec<u32> {
        let mut names: Vec<&str> = self.samples.iter().map(|s| s.subject.as_str()).collect();
        names.sort();
        names.dedup();
        self.samples
            .iter()
            .map(|s| names.binary_search(&s.subject.as_str()).unwrap_or(0) as u32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Manifest, ManifestError> {
        parse(Path::new("/data/m.csv"), text, None, false)
    }

    #[test]
    fn reads_columns_and_resolves_paths() {
        let m =
            parse_text("path,subject,sex,race\na/1.jpg,s1,female,asian\na/2.jpg,s1,female,asian\n")
                .unwrap();
        assert_eq!(m.attributes, vec!["sex", "race"]);
        assert_eq!(m.samples.len(), 2);
        assert_eq!(m.samples[0].path, PathBuf::from("/data/a/1.jpg"));
        assert_eq!(m.samples[1].attributes, vec!["female", "asian"]);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn conflicting_labels_name_subject_and_both_files() {
        let err = parse_text("path,subject,sex\na.jpg,s1,female\nb.jpg,s1,male\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("s1") && msg.contains("a.jpg") && msg.contains("b.jpg"),
            "{msg}"
        );
    }

    #[test]
    fn duplicate_path_and_empty_subject_name_the_row() {
        let err = parse_text("path,subject\na.jpg,s1\na.jpg,s2\n").unwrap_err();
        assert!(err.to_string().contains("row 3"), "{err}");
        let err = parse_text("path,subject\na.jpg,\n").unwrap_err();
        assert!(
            err.to_string().contains("row 2") && err.to_string().contains("subject"),
            "{err}"
        );
    }

    #[test]
    fn missing_columns_are_an_error() {
        let err = parse_text("file,id\na.jpg,s1\n").unwrap_err();
        assert!(err.to_string().contains("`path` and `subject`"), "{err}");
    }

    #[test]
    fn ages_are_banded_and_unlabelled_counted() {
        let m =
            parse_text("path,subject,age\na,s1,17\nb,s2,29\nc,s3,30\nd,s4,64.5\ne,s5,65\nf,s6,\n")
                .unwrap();
        let bands: Vec<&str> = m.samples.iter().map(|s| s.attributes[0].as_str()).collect();
        assert_eq!(bands, vec!["<18", "18-29", "30-44", "45-64", "65+", ""]);
        let unl = m.warnings.iter().find(|w| w.kind == "unlabelled").unwrap();
        assert_eq!(unl.count, 1);
        // Every group has a single image per subject: 5 groups without mated pairs.
        let nomated = m
            .warnings
            .iter()
            .find(|w| w.kind == "group_without_mated_pairs")
            .unwrap();
        assert_eq!(nomated.count, 5);
    }

    #[test]
    fn empty_labels_are_filled_from_the_subject() {
        let m = parse_text("path,subject,sex\na,s1,female\nb,s1,\nc,s2,\n").unwrap();
        assert_eq!(m.samples[1].attributes[0], "female");
        assert_eq!(m.samples[2].attributes[0], "");
        assert_eq!(
            m.warnings
                .iter()
                .find(|w| w.kind == "filled_from_subject")
                .unwrap()
                .count,
            1
        );
    }

    #[test]
    fn attribute_selection_checks_names() {
        let text = "path,subject,sex,race\na,s1,female,asian\n";
        let m = parse(Path::new("m.csv"), text, Some(&["race".to_string()]), false).unwrap();
        assert_eq!(m.attributes, vec!["race"]);
        assert_eq!(m.samples[0].attributes, vec!["asian"]);
        let err = parse(Path::new("m.csv"), text, Some(&["age".to_string()]), false).unwrap_err();
        assert!(err.to_string().contains("--attributes"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error_when_checked() {
        let err = parse(
            Path::new("/nonexistent/m.csv"),
            "path,subject\nx.jpg,s\n",
            None,
            true,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/x.jpg") && err.to_string().contains("row 2"),
            "{err}"
        );
    }
}

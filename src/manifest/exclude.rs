//! `--exclude-pairs FILE`: pairs of images a user has judged to be label errors (one person filed under
//! two identities, duplicates), to be left out of every count. The file is a CSV with the columns
//! `path_a,path_b` naming images exactly as the manifest does (`top_impostors.csv` has that layout, so
//! rows can be copied from it); other columns are ignored.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::{Manifest, ManifestError};

/// The excluded pairs as sample indices `(i, j)`, `i < j`, sorted, each once.
pub fn read(file: &Path, m: &Manifest) -> Result<Vec<(usize, usize)>, ManifestError> {
    let invalid = |message: String| ManifestError::Invalid {
        path: file.to_path_buf(),
        message,
    };
    let mut r = csv::Reader::from_path(file)
        .map_err(|e| invalid(format!("cannot read the pair list: {e}")))?;
    let header = r.headers().map_err(|e| invalid(e.to_string()))?.clone();
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            invalid(format!(
                "no `{name}` column; the pair list needs `path_a,path_b` (as in top_impostors.csv)"
            ))
        })
    };
    let (ca, cb) = (col("path_a")?, col("path_b")?);
    let index: HashMap<&str, usize> = m
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| (s.rel_path.as_str(), i))
        .collect();
    let mut out = BTreeSet::new();
    for (k, rec) in r.records().enumerate() {
        let row = k + 2;
        let rec = rec.map_err(|e| invalid(format!("row {row}: {e}")))?;
        let find = |c: usize| {
            let p = rec.get(c).unwrap_or("");
            index.get(p).copied().ok_or_else(|| {
                invalid(format!(
                    "row {row}: `{p}` is not an image of the dataset's manifest; write paths as the manifest (and samples.csv) does"
                ))
            })
        };
        let (a, b) = (find(ca)?, find(cb)?);
        if a == b {
            return Err(invalid(format!(
                "row {row}: both sides are the same image; a pair needs two"
            )));
        }
        out.insert((a.min(b), a.max(b)));
    }
    Ok(out.into_iter().collect())
}

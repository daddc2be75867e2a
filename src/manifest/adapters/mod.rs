//! Dataset adapters: read public face datasets in their published layouts and turn them into a
//! validated [`Manifest`] (plus the dataset's own pair protocol where it has one).
//!
//! | adapter | layout |
//! |---|---|
//! | `manifest` | a CSV `path,subject,<attributes…>`, or a folder holding `manifest.csv` (+ LFW `pairs.txt` if present) |
//! | `lfw` | person folders `<Name>/<Name>_NNNN.jpg` (at the root or under `images/`, `lfw/`, `lfw-deepfunneled/`), `pairs.txt` (View 2, 10 folds), optional `male_names.txt`/`female_names.txt`, `lfw_race_dict.json` and Columbia `lfw_attributes.txt` |
//! | `rfw` | `[data/]<African|Asian|Caucasian|Indian>/<id>/<id>_000N.jpg`, pairs `txts/<race>/<race>_pairs.txt` |
//! | `bfw` | BFW's pair table (CSV with `p1,p2` and `label`, `fold`, `id1,id2`, `e1,e2`/`g1,g2` or `att1,att2`), paths relative to the CSV's folder |
//! | `utkface` | images named `[age]_[gender]_[race]_[date].jpg[.chip.jpg]` (no identities: FMR only) |
//! | `fairface` | a label CSV `file,age,gender,race[,…]` (no identities: FMR only) |
//! | `folder` | `<group>/<subject>/<image>` |

use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod layouts;
mod lfw;

use layouts::{bfw_rows, fairface_rows, folder_rows, rfw_rows, utk_labels, utk_rows};
use lfw::{lfw_format_pairs, lfw_pairs, lfw_people_dir, lfw_rows};

use super::protocol::{PairList, ProtocolPair};
use super::{parse, Manifest, ManifestError, Warning};

/// Each adapter's name (as `--adapter` takes it) and the layout it reads, for `facebias datasets`.
pub const LAYOUTS: [(&str, &str); 7] = [
    ("manifest", "CSV `path,subject,<attributes…>`, or a folder with manifest.csv (+ LFW pairs.txt)"),
    ("lfw", "<Name>/<Name>_NNNN.jpg person folders + pairs.txt; male/female_names.txt, lfw_race_dict.json, Columbia lfw_attributes.txt if present"),
    ("rfw", "[data/]<African|Asian|Caucasian|Indian>/<id>/<id>_000N.jpg + txts/<race>/<race>_pairs.txt"),
    ("bfw", "BFW pair table CSV (p1,p2,label,fold,id1,id2,e1,e2,g1,g2 or att1,att2)"),
    ("utkface", "[age]_[gender]_[race]_[date].jpg file names (no identities: FMR only)"),
    ("fairface", "label CSV file,age,gender,race (no identities: FMR only)"),
    ("folder", "<group>/<subject>/<image>"),
];

/// Which adapter reads a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Adapter {
    /// Detect from the layout.
    Auto,
    /// A manifest CSV or a folder holding manifest.csv.
    Manifest,
    /// Labeled Faces in the Wild.
    Lfw,
    /// Racial Faces in the Wild.
    Rfw,
    /// Balanced Faces in the Wild pair table.
    Bfw,
    /// UTKFace file-name labels.
    Utkface,
    /// FairFace label CSV.
    Fairface,
    /// `<group>/<subject>/<image>` folders.
    Folder,
}

/// A dataset read by an adapter.
#[derive(Debug, Clone)]
pub struct Adapted {
    /// The adapter used.
    pub adapter: Adapter,
    /// The manifest.
    pub manifest: Manifest,
    /// The dataset's own pair protocol, if it has one.
    pub pairs: Option<PairList>,
}

fn invalid(path: &Path, message: String) -> ManifestError {
    ManifestError::Invalid {
        path: path.to_path_buf(),
        message,
    }
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

/// A path's last component as a string.
fn name_of(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string()
}

/// `p` relative to `root`, as written in a manifest.
fn rel_to(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .to_string()
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Opens a label CSV and returns the reader with its header, trimmed and lowercased.
fn open_csv(
    file: &Path,
    what: &str,
) -> Result<(csv::Reader<std::fs::File>, Vec<String>), ManifestError> {
    let mut r = csv::Reader::from_path(file)
        .map_err(|e| invalid(file, format!("cannot read the {what}: {e}")))?;
    let h = r
        .headers()
        .map_err(|e| invalid(file, e.to_string()))?
        .iter()
        .map(|s| s.trim().to_lowercase())
        .collect();
    Ok((r, h))
}

fn csv_header(path: &Path) -> Vec<String> {
    csv::Reader::from_path(path)
        .ok()
        .and_then(|mut r| {
            r.headers()
                .ok()
                .map(|h| h.iter().map(|s| s.trim().to_lowercase()).collect())
        })
        .unwrap_or_default()
}

/// Picks the adapter from the layout.
pub fn detect(path: &Path) -> Adapter {
    if path.is_file() {
        let h = csv_header(path);
        let has = |c: &str| h.iter().any(|x| x == c);
        return if has("p1") && has("p2") {
            Adapter::Bfw
        } else if has("file") && has("race") && has("gender") {
            Adapter::Fairface
        } else {
            Adapter::Manifest
        };
    }
    if path.join("manifest.csv").is_file() {
        Adapter::Manifest
    } else if path.join("pairs.txt").is_file() && lfw_people_dir(path).is_some() {
        Adapter::Lfw
    } else if path.join("txts").is_dir() {
        Adapter::Rfw
    } else if sorted_entries(path)
        .iter()
        .filter(|p| is_image(p))
        .any(|p| utk_labels(p).is_some())
    {
        Adapter::Utkface
    } else {
        Adapter::Folder
    }
}

/// Reads a dataset with an adapter (`Auto` detects it) and validates the manifest.
pub fn load(
    path: &Path,
    adapter: Adapter,
    only_attributes: Option<&[String]>,
    check_files: bool,
) -> Result<Adapted, ManifestError> {
    if !path.exists() {
        return Err(invalid(
            path,
            "does not exist; check the --dataset path (a manifest CSV or a dataset folder)".into(),
        ));
    }
    let adapter = if adapter == Adapter::Auto {
        detect(path)
    } else {
        adapter
    };
    let (root, rows, attrs, pairs_src, mut notes): Rows = match adapter {
        Adapter::Auto | Adapter::Manifest => {
            let m = super::load(path, only_attributes, check_files)?;
            let dir = m.file.parent().unwrap_or(Path::new(".")).to_path_buf();
            let pairs = if dir.join("pairs.txt").is_file() {
                Some(lfw_pairs(&dir.join("pairs.txt"), &m)?)
            } else {
                None
            };
            return Ok(Adapted {
                adapter: Adapter::Manifest,
                manifest: m,
                pairs,
            });
        }
        Adapter::Folder => folder_rows(path)?,
        Adapter::Lfw => lfw_rows(path)?,
        Adapter::Rfw => rfw_rows(path)?,
        Adapter::Bfw => bfw_rows(path)?,
        Adapter::Utkface => utk_rows(path)?,
        Adapter::Fairface => fairface_rows(path)?,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["path", "subject"];
    header.extend(&attrs);
    w.write_record(&header)
        .map_err(|e| invalid(path, e.to_string()))?;
    for r in &rows {
        w.write_record(r)
            .map_err(|e| invalid(path, e.to_string()))?;
    }
    let text = String::from_utf8(w.into_inner().map_err(|e| invalid(path, e.to_string()))?)
        .unwrap_or_default();
    // A name without separators, so that paths resolve against the dataset root.
    let virtual_file = root.join(format!("(facebias {adapter:?} adapter)"));
    let mut m = parse(&virtual_file, &text, only_attributes, check_files)?;
    m.warnings.append(&mut notes);
    let pairs = match pairs_src {
        Some(PairsSource::LfwFormat(files)) => Some(lfw_format_pairs(&files, &m)?),
        Some(PairsSource::Given(list)) => Some(list_pairs(list, &m)),
        None => None,
    };
    Ok(Adapted {
        adapter,
        manifest: m,
        pairs,
    })
}

/// Rows, attribute names, and where the pairs come from.
type Rows = (
    PathBuf,
    Vec<Vec<String>>,
    Vec<&'static str>,
    Option<PairsSource>,
    Vec<Warning>,
);

enum PairsSource {
    /// LFW-format pair files (`name i j` / `name1 i name2 j`), each one protocol's folds, with the
    /// image naming `<dir>/<name>/<name>_<i:04>.jpg` (`dir` relative to the root).
    LfwFormat(Vec<(PathBuf, String)>),
    /// Pairs given by relative paths: (path a, path b, mated, fold).
    Given(Vec<(String, String, bool, usize)>),
}

/// Index of each sample by its path relative to the dataset root (and by its last two components).
fn index(m: &Manifest) -> HashMap<String, usize> {
    let mut idx = HashMap::new();
    for (i, s) in m.samples.iter().enumerate() {
        idx.insert(s.rel_path.clone(), i);
        let p = Path::new(&s.rel_path);
        let comps: Vec<_> = p.components().rev().take(2).collect();
        if comps.len() == 2 {
            idx.entry(format!(
                "{}/{}",
                comps[1].as_os_str().to_string_lossy(),
                comps[0].as_os_str().to_string_lossy()
            ))
            .or_insert(i);
        }
    }
    idx
}

fn list_pairs(given: Vec<(String, String, bool, usize)>, m: &Manifest) -> PairList {
    let idx = index(m);
    let mut list = PairList {
        name: "bfw".into(),
        ..PairList::default()
    };
    for (a, b, mated, fold) in given {
        match (idx.get(&a), idx.get(&b)) {
            (Some(&a), Some(&b)) => list.pairs.push(ProtocolPair { a, b, mated, fold }),
            _ => list.missing += 1,
        }
    }
    list
}

#[cfg(test)]
mod tests {
    use super::lfw::columbia_attributes;
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn rfw_layout_with_pair_lists() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for (race, id, n) in [
            ("African", "m.01", 2),
            ("African", "m.02", 1),
            ("Asian", "m.03", 2),
        ] {
            for i in 1..=n {
                touch(&r.join(format!("data/{race}/{id}/{id}_{i:04}.jpg")));
            }
        }
        std::fs::create_dir_all(r.join("txts/African")).unwrap();
        std::fs::write(
            r.join("txts/African/African_pairs.txt"),
            "m.01\t1\t2\nm.01\t1\tm.02\t1\nm.09\t1\t2\n",
        )
        .unwrap();
        assert_eq!(detect(r), Adapter::Rfw);
        let a = load(r, Adapter::Auto, None, true).unwrap();
        assert_eq!(a.manifest.samples.len(), 5);
        assert_eq!(a.manifest.attributes, vec!["race"]);
        assert_eq!(a.manifest.samples[0].attributes, vec!["african"]);
        let p = a.pairs.unwrap();
        assert_eq!(
            (p.pairs.len(), p.missing),
            (2, 1),
            "m.09 is not in the dataset"
        );
        assert!(p.pairs[0].mated && !p.pairs[1].mated);
    }

    #[test]
    fn bfw_pair_table() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for p in [
            "asian_females/n1/a.jpg",
            "asian_females/n1/b.jpg",
            "white_males/n2/c.jpg",
        ] {
            touch(&r.join(p));
        }
        let csv = "fold,p1,p2,label,id1,id2,e1,e2,g1,g2\n1,asian_females/n1/a.jpg,asian_females/n1/b.jpg,1,n1,n1,A,A,F,F\n2,asian_females/n1/a.jpg,white_males/n2/c.jpg,0,n1,n2,A,W,F,M\n";
        std::fs::write(r.join("bfw-datatable.csv"), csv).unwrap();
        let f = r.join("bfw-datatable.csv");
        assert_eq!(detect(&f), Adapter::Bfw);
        let a = load(&f, Adapter::Auto, None, true).unwrap();
        let s: Vec<(&str, &str, &Vec<String>)> = a
            .manifest
            .samples
            .iter()
            .map(|s| (s.rel_path.as_str(), s.subject.as_str(), &s.attributes))
            .collect();
        assert_eq!(
            s[2],
            (
                "white_males/n2/c.jpg",
                "n2",
                &vec!["male".to_string(), "white".to_string()]
            )
        );
        let p = a.pairs.unwrap();
        assert_eq!(
            p.pairs
                .iter()
                .map(|x| (x.mated, x.fold))
                .collect::<Vec<_>>(),
            vec![(true, 0), (false, 1)]
        );
    }

    #[test]
    fn fairface_and_folder_layouts() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(&r.join("train/1.jpg"));
        touch(&r.join("train/2.jpg"));
        std::fs::write(r.join("labels.csv"), "file,age,gender,race,service_test\ntrain/1.jpg,20-29,Male,East Asian,True\ntrain/2.jpg,3-9,Female,Black,False\n").unwrap();
        assert_eq!(detect(&r.join("labels.csv")), Adapter::Fairface);
        let a = load(&r.join("labels.csv"), Adapter::Auto, None, true).unwrap();
        assert_eq!(
            a.manifest.samples[0].attributes,
            vec!["male", "East Asian", "20-29"]
        );
        assert_ne!(
            a.manifest.samples[0].subject, a.manifest.samples[1].subject,
            "no identities: one subject per image"
        );

        let f = tempfile::tempdir().unwrap();
        touch(&f.path().join("g1/s1/a.png"));
        touch(&f.path().join("g1/s1/b.png"));
        touch(&f.path().join("g2/s2/c.jpg"));
        assert_eq!(detect(f.path()), Adapter::Folder);
        let a = load(f.path(), Adapter::Auto, None, true).unwrap();
        assert_eq!(
            a.manifest
                .samples
                .iter()
                .map(|s| s.attributes[0].as_str())
                .collect::<Vec<_>>(),
            vec!["g1", "g1", "g2"]
        );
    }

    #[test]
    fn utkface_names_and_columbia_attributes() {
        assert_eq!(
            utk_labels(Path::new("25_1_3_20170104.jpg.chip.jpg")),
            Some(("25".into(), "female".into(), "Indian".into()))
        );
        assert_eq!(
            utk_labels(Path::new("25_1_3.jpg")),
            None,
            "a missing field is malformed"
        );
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lfw_attributes.txt");
        std::fs::write(&p, "# title\n#\tperson\timagenum\tMale\tAsian\tWhite\tBlack\tIndian\tBaby\tChild\tYouth\tMiddle Aged\tSenior\nAaron Eckhart\t1\t1.5\t-1\t2\t-1\t-2\t-3\t-2\t0.5\t1.2\t-1\n").unwrap();
        let c = columbia_attributes(&p);
        assert_eq!(
            c["Aaron_Eckhart_0001.jpg"],
            ("male".into(), "white".into(), "middle aged".into())
        );
    }
}

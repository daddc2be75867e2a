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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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

fn folder_rows(root: &Path) -> Result<Rows, ManifestError> {
    let mut rows = Vec::new();
    for g in sorted_entries(root).into_iter().filter(|p| p.is_dir()) {
        let group = name_of(&g);
        for s in sorted_entries(&g).into_iter().filter(|p| p.is_dir()) {
            let subject = name_of(&s);
            for img in sorted_entries(&s).into_iter().filter(|p| is_image(p)) {
                let rel = rel_to(root, &img);
                rows.push(vec![rel, format!("{group}/{subject}"), group.clone()]);
            }
        }
    }
    if rows.is_empty() {
        return Err(invalid(root, "no images in a <group>/<subject>/<image> layout; give a manifest.csv or choose --adapter".into()));
    }
    Ok((root.to_path_buf(), rows, vec!["group"], None, Vec::new()))
}

fn lfw_people_dir(root: &Path) -> Option<PathBuf> {
    ["", "images", "lfw", "lfw-deepfunneled", "lfw_funneled"]
        .iter()
        .map(|d| {
            if d.is_empty() {
                root.to_path_buf()
            } else {
                root.join(d)
            }
        })
        .find(|d| {
            sorted_entries(d)
                .iter()
                .filter(|p| p.is_dir())
                .take(3)
                .any(|p| {
                    let name = name_of(p);
                    p.join(format!("{name}_0001.jpg")).is_file()
                })
        })
}

fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    [
        root.to_path_buf(),
        root.join("labels_source"),
        root.join("labels"),
    ]
    .into_iter()
    .map(|d| d.join(name))
    .find(|p| p.is_file())
}

fn lfw_rows(root: &Path) -> Result<Rows, ManifestError> {
    let people = lfw_people_dir(root).ok_or_else(|| {
        invalid(
            root,
            "no LFW person folders (<Name>/<Name>_0001.jpg) found".into(),
        )
    })?;
    let dir = people
        .strip_prefix(root)
        .unwrap_or(Path::new(""))
        .to_string_lossy()
        .to_string();
    // Per-image sex lists (Afifi & Abdelhamed) and per-subject labels, voted to one value per subject.
    let mut sex: HashMap<String, String> = HashMap::new();
    for (file, label) in [("female_names.txt", "female"), ("male_names.txt", "male")] {
        if let Some(p) = find_file(root, file) {
            for line in std::fs::read_to_string(&p).unwrap_or_default().lines() {
                sex.entry(line.trim().to_string())
                    .or_insert_with(|| label.to_string());
            }
        }
    }
    let race: HashMap<String, String> = find_file(root, "lfw_race_dict.json")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<HashMap<String, serde_json::Value>>(&t).ok())
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let columbia = find_file(root, "lfw_attributes.txt")
        .map(|p| columbia_attributes(&p))
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut votes: BTreeMap<String, [BTreeMap<String, usize>; 3]> = BTreeMap::new();
    for person in sorted_entries(&people).into_iter().filter(|p| p.is_dir()) {
        let name = name_of(&person);
        for img in sorted_entries(&person).into_iter().filter(|p| is_image(p)) {
            let file = name_of(&img);
            let rel = rel_to(root, &img);
            let v = votes.entry(name.clone()).or_default();
            let col = columbia.get(&file);
            if let Some(s) = sex.get(&file).or(col.map(|c| &c.0)) {
                *v[0].entry(s.clone()).or_default() += 1;
            }
            if let Some(r) = race.get(&name).or(col.map(|c| &c.1)) {
                *v[1].entry(r.clone()).or_default() += 1;
            }
            if let Some(a) = col.map(|c| &c.2) {
                *v[2].entry(a.clone()).or_default() += 1;
            }
            rows.push(vec![rel, name.clone()]);
        }
    }
    let majority = |m: &BTreeMap<String, usize>| {
        m.iter()
            .max_by_key(|(_, n)| **n)
            .map(|(k, _)| k.clone())
            .unwrap_or_default()
    };
    for r in rows.iter_mut() {
        let v = &votes[&r[1]];
        r.extend([majority(&v[0]), majority(&v[1]), majority(&v[2])]);
    }
    let pairs = Some(PairsSource::LfwFormat(vec![(root.join("pairs.txt"), dir)]));
    Ok((
        root.to_path_buf(),
        rows,
        vec!["sex", "race", "age"],
        pairs,
        Vec::new(),
    ))
}

/// Columbia LFW attributes (Kumar et al.): per image, sex from `Male`, race from the largest of
/// Asian/White/Black/Indian, age from the largest of Baby/Child/Youth/Middle Aged/Senior.
fn columbia_attributes(path: &Path) -> HashMap<String, (String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let _title = lines.next();
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let cols: Vec<&str> = header
        .trim_start_matches('#')
        .split('\t')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let idx = |n: &str| cols.iter().position(|c| *c == n);
    let argmax = |vals: &[f64], names: &[&str]| {
        vals.iter()
            .zip(names)
            .max_by(|a, b| a.0.total_cmp(b.0))
            .map(|(_, n)| n.to_lowercase())
            .unwrap_or_default()
    };
    let mut out = HashMap::new();
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        let (Some(pi), Some(ni)) = (idx("person"), idx("imagenum")) else {
            break;
        };
        let (Some(person), Some(num)) = (
            f.get(pi),
            f.get(ni).and_then(|n| n.trim().parse::<u32>().ok()),
        ) else {
            continue;
        };
        let val = |n: &str| {
            idx(n)
                .and_then(|i| f.get(i))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(f64::NEG_INFINITY)
        };
        let sex = if val("Male") > 0.0 { "male" } else { "female" };
        let races = ["Asian", "White", "Black", "Indian"];
        let ages = ["Baby", "Child", "Youth", "Middle Aged", "Senior"];
        let race = argmax(&races.map(val), &races);
        let age = argmax(&ages.map(val), &ages);
        let file = format!("{}_{num:04}.jpg", person.trim().replace(' ', "_"));
        out.insert(file, (sex.to_string(), race, age));
    }
    out
}

fn rfw_rows(root: &Path) -> Result<Rows, ManifestError> {
    let base = if root.join("data").is_dir() {
        root.join("data")
    } else {
        root.to_path_buf()
    };
    let mut rows = Vec::new();
    let mut files = Vec::new();
    for race in ["African", "Asian", "Caucasian", "Indian"] {
        let dir = base.join(race);
        if !dir.is_dir() {
            continue;
        }
        for id in sorted_entries(&dir).into_iter().filter(|p| p.is_dir()) {
            let subject = name_of(&id);
            for img in sorted_entries(&id).into_iter().filter(|p| is_image(p)) {
                let rel = rel_to(root, &img);
                rows.push(vec![rel, subject.clone(), race.to_lowercase()]);
            }
        }
        let list = root
            .join("txts")
            .join(race)
            .join(format!("{race}_pairs.txt"));
        if list.is_file() {
            let rel_dir = rel_to(root, &dir);
            files.push((list, rel_dir));
        }
    }
    if rows.is_empty() {
        return Err(invalid(root, "no RFW race folders (African, Asian, Caucasian, Indian) found, at the root or under data/".into()));
    }
    Ok((
        root.to_path_buf(),
        rows,
        vec!["race"],
        Some(PairsSource::LfwFormat(files)),
        Vec::new(),
    ))
}

fn bfw_rows(file: &Path) -> Result<Rows, ManifestError> {
    let root = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let (mut r, h) = open_csv(file, "BFW pair table")?;
    let col = |n: &str| h.iter().position(|c| c == n);
    let (Some(p1), Some(p2)) = (col("p1"), col("p2")) else {
        return Err(invalid(
            file,
            "the BFW pair table needs columns p1 and p2".into(),
        ));
    };
    let ethnicity = |v: &str| match v.trim().to_ascii_uppercase().as_str() {
        "A" => "asian".to_string(),
        "B" => "black".into(),
        "I" => "indian".into(),
        "W" => "white".into(),
        other => other.to_lowercase(),
    };
    let gender = |v: &str| match v.trim().to_ascii_uppercase().as_str() {
        "F" => "female".to_string(),
        "M" => "male".into(),
        other => other.to_lowercase(),
    };
    let mut samples: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let mut pairs = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| ManifestError::Row {
            path: file.to_path_buf(),
            row: i + 2,
            message: e.to_string(),
        })?;
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").trim().to_string();
        for (p, id, e, g, att) in [
            (p1, "id1", "e1", "g1", "att1"),
            (p2, "id2", "e2", "g2", "att2"),
        ] {
            let path = get(Some(p));
            let subject = Some(get(col(id)))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| {
                    Path::new(&path)
                        .parent()
                        .map(|d| d.to_string_lossy().to_string())
                        .unwrap_or_default()
                });
            let att = get(col(att)).to_lowercase();
            let (race, sex) = match (get(col(e)), get(col(g))) {
                (e, g) if !e.is_empty() && !g.is_empty() => (ethnicity(&e), gender(&g)),
                _ => {
                    let (a, b) = att.split_once('_').unwrap_or((att.as_str(), ""));
                    (a.to_string(), b.trim_end_matches('s').to_string())
                }
            };
            samples.entry(path).or_insert((subject, sex, race));
        }
        let mated = get(col("label")) == "1";
        let fold = get(col("fold")).parse::<usize>().unwrap_or(0);
        pairs.push((get(Some(p1)), get(Some(p2)), mated, fold));
    }
    let min_fold = pairs.iter().map(|p| p.3).min().unwrap_or(0);
    pairs.iter_mut().for_each(|p| p.3 -= min_fold);
    let rows = samples
        .into_iter()
        .map(|(p, (s, sex, race))| vec![p, s, sex, race])
        .collect();
    Ok((
        root,
        rows,
        vec!["sex", "race"],
        Some(PairsSource::Given(pairs)),
        Vec::new(),
    ))
}

/// UTKFace labels from a file name: (age, sex, race).
fn utk_labels(p: &Path) -> Option<(String, String, String)> {
    let name = p.file_name()?.to_str()?;
    let mut f = name.split('_');
    let age: u32 = f.next()?.parse().ok()?;
    let sex = match f.next()? {
        "0" => "male",
        "1" => "female",
        _ => return None,
    };
    let race = match f.next()? {
        "0" => "White",
        "1" => "Black",
        "2" => "Asian",
        "3" => "Indian",
        "4" => "Others",
        _ => return None,
    };
    f.next()?; // the date field must exist
    Some((age.to_string(), sex.into(), race.into()))
}

fn utk_rows(root: &Path) -> Result<Rows, ManifestError> {
    let dir = if root.join("images").is_dir() {
        root.join("images")
    } else {
        root.to_path_buf()
    };
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for img in sorted_entries(&dir).into_iter().filter(|p| is_image(p)) {
        let rel = rel_to(root, &img);
        match utk_labels(&img) {
            Some((age, sex, race)) => {
                let stem = img
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .split('.')
                    .next()
                    .unwrap_or("")
                    .to_string();
                rows.push(vec![rel, format!("utk_{stem}"), sex, race, age]);
            }
            None => skipped.push(rel),
        }
    }
    let notes = if skipped.is_empty() {
        Vec::new()
    } else {
        vec![Warning {
            kind: "skipped_file".into(),
            message: format!(
                "{} files without UTKFace labels in their names were left out: {}",
                skipped.len(),
                skipped
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            count: skipped.len(),
        }]
    };
    Ok((
        root.to_path_buf(),
        rows,
        vec!["sex", "race", "age"],
        None,
        notes,
    ))
}

fn fairface_rows(file: &Path) -> Result<Rows, ManifestError> {
    let root = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let (mut r, h) = open_csv(file, "FairFace labels")?;
    let col = |n: &str| h.iter().position(|c| c == n);
    let (Some(fc), Some(ac), Some(gc), Some(rc)) =
        (col("file"), col("age"), col("gender"), col("race"))
    else {
        return Err(invalid(
            file,
            "FairFace labels need the columns file, age, gender, race".into(),
        ));
    };
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| ManifestError::Row {
            path: file.to_path_buf(),
            row: i + 2,
            message: e.to_string(),
        })?;
        let f = rec.get(fc).unwrap_or("").trim().to_string();
        let subject = format!("ff_{}", f.replace(['/', '.'], "_"));
        rows.push(vec![
            f,
            subject,
            rec.get(gc).unwrap_or("").trim().to_lowercase(),
            rec.get(rc).unwrap_or("").trim().to_string(),
            rec.get(ac).unwrap_or("").trim().to_string(),
        ]);
    }
    Ok((root, rows, vec!["sex", "race", "age"], None, Vec::new()))
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

/// LFW `pairs.txt` against a manifest whose images are named `<name>/<name>_<i:04>.jpg`.
fn lfw_pairs(file: &Path, m: &Manifest) -> Result<PairList, ManifestError> {
    lfw_format_pairs(&[(file.to_path_buf(), String::new())], m)
}

fn lfw_format_pairs(files: &[(PathBuf, String)], m: &Manifest) -> Result<PairList, ManifestError> {
    let idx = index(m);
    let mut list = PairList {
        name: "pairs".into(),
        ..PairList::default()
    };
    for (file, _) in files {
        let text = std::fs::read_to_string(file).map_err(|source| ManifestError::Io {
            path: file.clone(),
            source,
        })?;
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        // LFW starts with "folds<TAB>pairs-per-class"; RFW lists have no header (10 folds assumed).
        let (folds, per_fold) = match lines
            .first()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
        {
            Some(h) if h.len() == 2 && h.iter().all(|x| x.parse::<usize>().is_ok()) => {
                lines.remove(0);
                (
                    h[0].parse::<usize>().unwrap_or(10),
                    2 * h[1].parse::<usize>().unwrap_or(300),
                )
            }
            _ => (10, lines.len().div_ceil(10).max(1)),
        };
        list.name = if files.len() > 1 {
            "rfw".into()
        } else {
            file.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string()
        };
        for (n, l) in lines.iter().enumerate() {
            let f: Vec<&str> = l.split_whitespace().collect();
            let key = |name: &str, i: &str| -> Option<String> {
                Some(format!("{name}/{name}_{:04}.jpg", i.parse::<u32>().ok()?))
            };
            let (ka, kb, mated) = match f.len() {
                3 => (key(f[0], f[1]), key(f[0], f[2]), true),
                4 => (key(f[0], f[1]), key(f[2], f[3]), false),
                _ => {
                    return Err(ManifestError::Row {
                        path: file.clone(),
                        row: n + 2,
                        message: format!("expected `name i j` or `name1 i name2 j`, got `{l}`"),
                    });
                }
            };
            match (ka.and_then(|k| idx.get(&k)), kb.and_then(|k| idx.get(&k))) {
                (Some(&a), Some(&b)) => list.pairs.push(ProtocolPair {
                    a,
                    b,
                    mated,
                    fold: (n / per_fold).min(folds - 1),
                }),
                _ => list.missing += 1,
            }
        }
    }
    Ok(list)
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

//! The LFW layout: person folders, `pairs.txt` (View 2), the sex lists, the race dictionary and the
//! Columbia attributes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::*;

pub(super) fn lfw_people_dir(root: &Path) -> Option<PathBuf> {
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

pub(super) fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    [
        root.to_path_buf(),
        root.join("labels_source"),
        root.join("labels"),
    ]
    .into_iter()
    .map(|d| d.join(name))
    .find(|p| p.is_file())
}

pub(super) fn lfw_rows(root: &Path) -> Result<Rows, ManifestError> {
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
pub(super) fn columbia_attributes(path: &Path) -> HashMap<String, (String, String, String)> {
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

/// LFW `pairs.txt` against a manifest whose images are named `<name>/<name>_<i:04>.jpg`.
pub(super) fn lfw_pairs(file: &Path, m: &Manifest) -> Result<PairList, ManifestError> {
    lfw_format_pairs(&[(file.to_path_buf(), String::new())], m)
}

pub(super) fn lfw_format_pairs(
    files: &[(PathBuf, String)],
    m: &Manifest,
) -> Result<PairList, ManifestError> {
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

//! The other published layouts: `<group>/<subject>/<image>` folders, RFW, BFW's pair table, UTKFace
//! file names and FairFace's label CSV.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

pub(super) fn folder_rows(root: &Path) -> Result<Rows, ManifestError> {
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

pub(super) fn rfw_rows(root: &Path) -> Result<Rows, ManifestError> {
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

pub(super) fn bfw_rows(file: &Path) -> Result<Rows, ManifestError> {
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
pub(super) fn utk_labels(p: &Path) -> Option<(String, String, String)> {
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

pub(super) fn utk_rows(root: &Path) -> Result<Rows, ManifestError> {
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

pub(super) fn fairface_rows(file: &Path) -> Result<Rows, ManifestError> {
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

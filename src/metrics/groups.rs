//! Demographic groups. Samples are partitioned once into *combos* (one combination of every
//! attribute value, e.g. `female|asian`); comparison histograms are kept per pair of combos, and any
//! coarser [`Grouping`] (one attribute, or the intersection of two) is a sum of combo cells.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::manifest::Sample;

/// The finest partition of samples: every distinct combination of attribute values.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// Attribute names.
    pub attributes: Vec<String>,
    /// Distinct value combinations, sorted.
    pub combos: Vec<Vec<String>>,
    /// Combo id of each sample.
    pub combo_of: Vec<u16>,
}

/// Largest number of combos facebias will histogram (cells grow as combos²/2).
pub const MAX_COMBOS: usize = 96;

impl Partition {
    /// Partitions samples by all attribute values.
    pub fn new(attributes: &[String], samples: &[Sample]) -> Result<Partition, String> {
        let mut ids: BTreeMap<&[String], u16> = BTreeMap::new();
        for s in samples {
            let next = ids.len() as u16;
            ids.entry(s.attributes.as_slice()).or_insert(next);
        }
        if ids.len() > MAX_COMBOS {
            return Err(format!(
                "the attributes {} form {} combinations of values (more than {MAX_COMBOS}); choose fewer with --attributes",
                attributes.join(","),
                ids.len()
            ));
        }
        // Renumber in sorted order so ids do not depend on row order.
        let combos: Vec<Vec<String>> = ids.keys().map(|k| k.to_vec()).collect();
        let sorted: BTreeMap<&[String], u16> = ids
            .keys()
            .enumerate()
            .map(|(i, k)| (*k, i as u16))
            .collect();
        let combo_of = samples
            .iter()
            .map(|s| sorted[s.attributes.as_slice()])
            .collect();
        Ok(Partition {
            attributes: attributes.to_vec(),
            combos,
            combo_of,
        })
    }
}

/// A way of grouping samples: by one attribute (`race`) or the intersection of two (`race×sex`).
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// Name written to reports: the attribute, or `a×b`.
    pub name: String,
    /// Group labels in fixed (sorted) order; intersections are written `x|y`.
    pub groups: Vec<String>,
    /// For each combo, its group here (None when a needed attribute is unlabelled).
    pub group_of_combo: Vec<Option<usize>>,
}

/// All groupings of a partition: each attribute with ≥ 2 labelled values, then each pair of those.
pub fn groupings(p: &Partition) -> Vec<Grouping> {
    let useful: Vec<usize> = (0..p.attributes.len())
        .filter(|&a| {
            let mut vals: Vec<&str> = p
                .combos
                .iter()
                .map(|c| c[a].as_str())
                .filter(|v| !v.is_empty())
                .collect();
            vals.sort();
            vals.dedup();
            vals.len() >= 2
        })
        .collect();
    let mut out: Vec<Grouping> = useful.iter().map(|&a| grouping(p, &[a])).collect();
    for (i, &a) in useful.iter().enumerate() {
        for &b in &useful[i + 1..] {
            out.push(grouping(p, &[a, b]));
        }
    }
    out
}

fn grouping(p: &Partition, attrs: &[usize]) -> Grouping {
    let label = |c: &Vec<String>| -> Option<String> {
        let vals: Vec<&str> = attrs.iter().map(|&a| c[a].as_str()).collect();
        if vals.iter().any(|v| v.is_empty()) {
            None
        } else {
            Some(vals.join("|"))
        }
    };
    let mut groups: Vec<String> = p.combos.iter().filter_map(label).collect();
    groups.sort();
    groups.dedup();
    let group_of_combo = p
        .combos
        .iter()
        .map(|c| label(c).map(|l| groups.binary_search(&l).unwrap_or(0)))
        .collect();
    Grouping {
        name: attrs
            .iter()
            .map(|&a| p.attributes[a].as_str())
            .collect::<Vec<_>>()
            .join("×"),
        groups,
        group_of_combo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sample(attrs: &[&str]) -> Sample {
        Sample {
            rel_path: String::new(),
            path: PathBuf::new(),
            subject: "s".into(),
            attributes: attrs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn partition_and_groupings() {
        let attrs = vec!["sex".to_string(), "race".to_string(), "age".to_string()];
        let samples = vec![
            sample(&["m", "b", ""]),
            sample(&["f", "a", ""]),
            sample(&["m", "a", ""]),
            sample(&["f", "", ""]),
        ];
        let p = Partition::new(&attrs, &samples).unwrap();
        // Sorted combos: [f,,], [f,a,], [m,a,], [m,b,]
        assert_eq!(p.combo_of, vec![3, 1, 2, 0]);
        let gs = groupings(&p);
        // age has no labelled value: only sex, race and sex×race.
        assert_eq!(
            gs.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            vec!["sex", "race", "sex×race"]
        );
        assert_eq!(gs[1].groups, vec!["a", "b"]);
        assert_eq!(gs[1].group_of_combo, vec![None, Some(0), Some(0), Some(1)]);
        assert_eq!(gs[2].groups, vec!["f|a", "m|a", "m|b"]);
    }
}

/// Comparison counts of one group, from the manifest alone (before any model runs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCount {
    /// Grouping name.
    pub attribute: String,
    /// Group label.
    pub group: String,
    /// Images.
    pub images: u64,
    /// Subjects.
    pub subjects: u64,
    /// Subjects with at least two images.
    pub subjects_with_pairs: u64,
    /// Mated comparisons (all pairs of a subject's images).
    pub mated_comparisons: u64,
    /// Non-mated comparisons with both images in the group.
    pub nonmated_comparisons: u64,
    /// Lowest FMR the group can resolve: 10 expected false matches (10 / non-mated comparisons); NaN
    /// (`null` in JSON, `–` in the table) when that is no rate below 1.
    pub lowest_fmr: f64,
}

/// Refuses a `--reference-group` that is no group of any grouping, listing the groups there are.
pub fn check_reference(p: &Partition, reference: Option<&str>) -> Result<(), String> {
    let Some(r) = reference else { return Ok(()) };
    let gs = groupings(p);
    if gs.iter().any(|g| g.groups.iter().any(|x| x == r)) {
        return Ok(());
    }
    let list: Vec<String> = gs
        .iter()
        .map(|g| format!("{}: {}", g.name, g.groups.join(", ")))
        .collect();
    Err(format!(
        "--reference-group {r} names no group of this dataset; the groups are {}",
        list.join("; ")
    ))
}

/// Comparison counts of a whole dataset, from each sample's subject id alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetTotals {
    /// Images.
    pub images: u64,
    /// Distinct subjects.
    pub subjects: usize,
    /// Subjects with at least two images.
    pub subjects_with_pairs: usize,
    /// Mated comparisons (all pairs of a subject's images).
    pub mated_comparisons: u64,
    /// Every other pair of images.
    pub nonmated_comparisons: u64,
}

/// Totals over all samples; `subject_of[i]` is sample `i`'s subject id.
pub fn totals(subject_of: &[u32]) -> DatasetTotals {
    let n = subject_of.len() as u64;
    let mut per_subject: std::collections::BTreeMap<u32, u64> = Default::default();
    subject_of
        .iter()
        .for_each(|&s| *per_subject.entry(s).or_default() += 1);
    let mated: u64 = per_subject
        .values()
        .map(|k| k * k.saturating_sub(1) / 2)
        .sum();
    DatasetTotals {
        images: n,
        subjects: per_subject.len(),
        subjects_with_pairs: per_subject.values().filter(|&&k| k >= 2).count(),
        mated_comparisons: mated,
        nonmated_comparisons: n * n.saturating_sub(1) / 2 - mated,
    }
}

/// Counts per group of every grouping, from the partition and each sample's subject id.
pub fn counts(p: &Partition, subject_of: &[u32]) -> Vec<GroupCount> {
    let mut per_subject: std::collections::BTreeMap<u32, (u16, u64)> = Default::default();
    for (i, &s) in subject_of.iter().enumerate() {
        per_subject.entry(s).or_insert((p.combo_of[i], 0)).1 += 1;
    }
    let mut out = Vec::new();
    for g in groupings(p) {
        for (gi, label) in g.groups.iter().enumerate() {
            let members: Vec<u64> = per_subject
                .values()
                .filter(|(c, _)| g.group_of_combo[*c as usize] == Some(gi))
                .map(|(_, n)| *n)
                .collect();
            let images: u64 = members.iter().sum();
            let mated: u64 = members.iter().map(|n| n * n.saturating_sub(1) / 2).sum();
            let nonmated = images * images.saturating_sub(1) / 2 - mated;
            out.push(GroupCount {
                attribute: g.name.clone(),
                group: label.clone(),
                images,
                subjects: members.len() as u64,
                subjects_with_pairs: members.iter().filter(|&&n| n >= 2).count() as u64,
                mated_comparisons: mated,
                nonmated_comparisons: nonmated,
                // 10 expected false matches need more than 10 comparisons to be a rate below 1.
                lowest_fmr: if nonmated > 10 {
                    10.0 / nonmated as f64
                } else {
                    f64::NAN
                },
            });
        }
    }
    out
}

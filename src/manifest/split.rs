//! The 1:N identification protocol's split of a dataset into a gallery and searches (NIST IR 8271
//! style; `../shared/docs/METRICS.md`, "Identification (1:N) protocol").
//!
//! Each finest group's subjects (a subject's group is that of its first image) are shuffled with a
//! seeded [`SplitMix64`] and the first ⌊fraction × n + ½⌋ are **enrolled**, keeping at least one
//! subject on each side when the group has two or more. An enrolled subject's first image (manifest
//! order) goes into the **gallery**; its other images are **mated searches**; every image of a
//! non-enrolled subject is a **non-mated search**. Distractor images join the gallery only.
//!
//! Gallery entries get a `gallery_rank`: the mates first (in seeded order), then the distractors (in
//! seeded order). The size-N gallery is the entries with `gallery_rank < N`, so galleries nest and
//! every mate is in every gallery of at least as many entries as there are mates.

use crate::metrics::bootstrap::SplitMix64;

/// What one sample is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// An enrolled subject's gallery image.
    Gallery,
    /// An enrolled subject's other image: its search has a mate in the gallery.
    MatedSearch,
    /// An image of a subject who is not enrolled: its search has no mate.
    NonmatedSearch,
    /// A distractor dataset's image: gallery only.
    Distractor,
    /// Not used (no role in this protocol).
    Unused,
}

impl Role {
    /// The name written to `samples.csv`'s `role` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Gallery => "gallery",
            Role::MatedSearch => "mated_search",
            Role::NonmatedSearch => "nonmated_search",
            Role::Distractor => "distractor",
            Role::Unused => "unused",
        }
    }
}

/// The split's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitConfig {
    /// Share of each finest group's subjects that is enrolled, in (0, 1).
    pub enrolled_fraction: f64,
    /// Seed of the shuffles.
    pub seed: u64,
}

/// The split: one role per sample, and the gallery rank of gallery and distractor samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Role of each sample (searched samples first, then distractors, in the order given).
    pub roles: Vec<Role>,
    /// `gallery_rank` of each sample (`None` when not in the gallery).
    pub gallery_rank: Vec<Option<usize>>,
    /// Gallery entries that are mates (ranks `0..mates`).
    pub mates: usize,
    /// Enrolled and non-enrolled subjects.
    pub subjects: [usize; 2],
}

/// Fisher–Yates with `rng`.
fn shuffle<T>(v: &mut [T], rng: &mut SplitMix64) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

/// Splits `subject_of.len()` searched samples (subject id and finest group of each) followed by
/// `distractors` distractor samples.
pub fn split(
    subject_of: &[u32],
    combo_of: &[u16],
    distractors: usize,
    cfg: &SplitConfig,
) -> Result<Split, String> {
    let f = cfg.enrolled_fraction;
    if !(f > 0.0 && f < 1.0) {
        return Err(format!(
            "--enrolled-fraction {f} is not a share in (0, 1): give e.g. 0.5 (half of each group's subjects enrolled)"
        ));
    }
    let n = subject_of.len();
    // Subjects in first-appearance order, with their first image and their group.
    let mut first: std::collections::BTreeMap<u32, usize> = Default::default();
    for (i, &s) in subject_of.iter().enumerate() {
        first.entry(s).or_insert(i);
    }
    let mut by_group: std::collections::BTreeMap<u16, Vec<u32>> = Default::default();
    for (&s, &i) in &first {
        by_group.entry(combo_of[i]).or_default().push(s);
    }
    let mut rng = SplitMix64::new(cfg.seed);
    let mut enrolled = std::collections::BTreeSet::new();
    let mut counts = [0usize; 2];
    for subjects in by_group.values_mut() {
        shuffle(subjects, &mut rng);
        let k = (f * subjects.len() as f64 + 0.5).floor() as usize;
        let k = if subjects.len() >= 2 {
            k.clamp(1, subjects.len() - 1)
        } else {
            k.min(subjects.len())
        };
        enrolled.extend(subjects[..k].iter().copied());
        counts[0] += k;
        counts[1] += subjects.len() - k;
    }
    let mut roles = Vec::with_capacity(n + distractors);
    for (i, s) in subject_of.iter().enumerate() {
        roles.push(match (enrolled.contains(s), first[s] == i) {
            (true, true) => Role::Gallery,
            (true, false) => Role::MatedSearch,
            (false, _) => Role::NonmatedSearch,
        });
    }
    roles.extend(std::iter::repeat_n(Role::Distractor, distractors));
    let mut mates: Vec<usize> = (0..n).filter(|&i| roles[i] == Role::Gallery).collect();
    let mut others: Vec<usize> = (n..n + distractors).collect();
    shuffle(&mut mates, &mut rng);
    shuffle(&mut others, &mut rng);
    let mut gallery_rank = vec![None; n + distractors];
    for (r, &i) in mates.iter().chain(&others).enumerate() {
        gallery_rank[i] = Some(r);
    }
    Ok(Split {
        roles,
        gallery_rank,
        mates: mates.len(),
        subjects: counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3 groups × 4 subjects × 3 images, then 5 distractors.
    fn data() -> (Vec<u32>, Vec<u16>) {
        let mut s = Vec::new();
        let mut g = Vec::new();
        for subject in 0..12u32 {
            for _ in 0..3 {
                s.push(subject);
                g.push((subject / 4) as u16);
            }
        }
        (s, g)
    }

    #[test]
    fn the_split_is_stratified_seeded_and_keeps_mates_in_every_gallery() {
        let (s, g) = data();
        let cfg = SplitConfig {
            enrolled_fraction: 0.5,
            seed: 7,
        };
        let a = split(&s, &g, 5, &cfg).unwrap();
        assert_eq!(a, split(&s, &g, 5, &cfg).unwrap(), "seeded");
        // Each group: 2 of 4 subjects enrolled → 6 enrolled, 6 not, 6 gallery images, 12 mated searches.
        assert_eq!(a.subjects, [6, 6]);
        let count = |r: Role| a.roles.iter().filter(|x| **x == r).count();
        assert_eq!(
            (
                count(Role::Gallery),
                count(Role::MatedSearch),
                count(Role::NonmatedSearch)
            ),
            (6, 12, 18)
        );
        for group in 0..3u16 {
            let enrolled = (0..36)
                .filter(|&i| g[i] == group && a.roles[i] == Role::Gallery)
                .count();
            assert_eq!(enrolled, 2, "group {group}");
        }
        // No non-mated searcher has an image in the gallery; every mated searcher's gallery image
        // ranks among the mates, so it is in every gallery of ≥ 6 entries.
        for i in 0..36 {
            let gallery_of = (0..36).find(|&j| s[j] == s[i] && a.roles[j] == Role::Gallery);
            match a.roles[i] {
                Role::NonmatedSearch => assert!(gallery_of.is_none()),
                Role::MatedSearch => {
                    assert!(a.gallery_rank[gallery_of.unwrap()].unwrap() < a.mates)
                }
                _ => {}
            }
        }
        // Distractors rank after the mates; the ranks are a permutation of 0..11.
        let mut ranks: Vec<usize> = a.gallery_rank.iter().flatten().copied().collect();
        assert!((36..41).all(|i| a.gallery_rank[i].unwrap() >= 6));
        ranks.sort();
        assert_eq!(ranks, (0..11).collect::<Vec<_>>());
        // Another seed, another split.
        let b = split(&s, &g, 5, &SplitConfig { seed: 8, ..cfg }).unwrap();
        assert_ne!(a.roles, b.roles);
    }

    #[test]
    fn small_groups_keep_one_subject_on_each_side_and_bad_fractions_are_refused() {
        let s = vec![0, 0, 1, 1];
        let g = vec![0, 0, 0, 0];
        let cfg = SplitConfig {
            enrolled_fraction: 0.9,
            seed: 1,
        };
        assert_eq!(split(&s, &g, 0, &cfg).unwrap().subjects, [1, 1]);
        let err = split(
            &s,
            &g,
            0,
            &SplitConfig {
                enrolled_fraction: 1.0,
                seed: 1,
            },
        )
        .unwrap_err();
        assert!(err.contains("--enrolled-fraction"), "{err}");
    }
}

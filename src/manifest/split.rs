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
    /// The distractors' demographic make-up along the gallery order (`--gallery-mix`), if set.
    pub mix: Option<Mix>,
}

/// `--gallery-mix`: target shares of some labels of one attribute among the distractors at every
/// nested gallery size. The distractors are taken, in their seeded order, from one queue per named
/// label and one for all other labels; each next rank goes to the queue furthest below its target
/// share (its share × ranks so far minus what it has), earlier-named first on a tie, the other
/// labels sharing what the named ones leave. A queue that runs out is skipped, so a share the pool
/// cannot supply is not reached (the report gives the shares achieved).
#[derive(Debug, Clone, PartialEq)]
pub struct Mix {
    /// The attribute (a column of the searched manifest).
    pub attribute: String,
    /// Named labels and their target shares (summing to at most 1).
    pub shares: Vec<(String, f64)>,
    /// The attribute's value of each distractor (in distractor order).
    pub labels: Vec<String>,
}

impl Mix {
    /// Parses `ATTRIBUTE:LABEL=SHARE,…` (one attribute; shares in [0, 1] summing to at most 1).
    pub fn parse(
        text: &str,
        attributes: &[String],
    ) -> Result<(String, Vec<(String, f64)>), String> {
        let bad = |why: String| {
            format!("--gallery-mix {text}: {why}; write e.g. race:white=0.8 or race:black=0.5,race:white=0.5")
        };
        let mut attribute: Option<String> = None;
        let mut shares: Vec<(String, f64)> = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (a, rest) = part
                .split_once(':')
                .ok_or_else(|| bad(format!("'{part}' has no ATTRIBUTE:")))?;
            let (label, share) = rest
                .split_once('=')
                .ok_or_else(|| bad(format!("'{part}' has no =SHARE")))?;
            let share: f64 = share
                .parse()
                .map_err(|_| bad(format!("'{share}' is not a share")))?;
            if !(0.0..=1.0).contains(&share) {
                return Err(bad(format!("share {share} is not in [0, 1]")));
            }
            if !attributes.iter().any(|x| x == a) {
                return Err(bad(format!(
                    "the searched dataset has no attribute '{a}' (it has {})",
                    attributes.join(", ")
                )));
            }
            if attribute.as_deref().is_some_and(|x| x != a) {
                return Err(bad("all labels must be of one attribute".into()));
            }
            if shares.iter().any(|(l, _)| l == label) {
                return Err(bad(format!("label '{label}' is named twice")));
            }
            attribute = Some(a.to_string());
            shares.push((label.to_string(), share));
        }
        let total: f64 = shares.iter().map(|s| s.1).sum();
        if total > 1.0 + 1e-9 {
            return Err(bad(format!("the shares add up to {total}, more than 1")));
        }
        let attribute = attribute.ok_or_else(|| bad("no label given".into()))?;
        Ok((attribute, shares))
    }

    /// Re-orders `items` (in seeded order) by the mix; `label` gives an item's label.
    pub fn order<'a>(&self, items: &[usize], label: impl Fn(usize) -> &'a String) -> Vec<usize> {
        let k = self.shares.len();
        let mut queues: Vec<std::collections::VecDeque<usize>> = vec![Default::default(); k + 1];
        for &i in items {
            let q = self
                .shares
                .iter()
                .position(|(l, _)| l == label(i))
                .unwrap_or(k);
            queues[q].push_back(i);
        }
        let rest = 1.0 - self.shares.iter().map(|s| s.1).sum::<f64>();
        let target: Vec<f64> = self
            .shares
            .iter()
            .map(|s| s.1)
            .chain([rest.max(0.0)])
            .collect();
        let mut taken = vec![0usize; k + 1];
        let mut out = Vec::with_capacity(items.len());
        while out.len() < items.len() {
            let step = (out.len() + 1) as f64;
            let q = (0..=k)
                .filter(|&q| !queues[q].is_empty())
                .max_by(|&a, &b| {
                    let da = target[a] * step - taken[a] as f64;
                    let db = target[b] * step - taken[b] as f64;
                    da.total_cmp(&db).then(b.cmp(&a))
                })
                .expect("items remain");
            out.push(queues[q].pop_front().expect("non-empty"));
            taken[q] += 1;
        }
        out
    }
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
    if let Some(mix) = &cfg.mix {
        others = mix.order(&others, |i| &mix.labels[i - n]);
    }
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
            mix: None,
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
    fn a_gallery_mix_holds_its_shares_at_every_prefix_while_the_pool_lasts() {
        // 10 "a", 30 "b", 10 "c" distractors; ask for 60 % a: every prefix of 5 holds 3 a (5·0.6)
        // until the 10 a run out after 16 or so ranks, then b and c share the rest.
        let labels: Vec<String> = (0..50)
            .map(|i| {
                match i % 5 {
                    0 => "a",
                    4 => "c",
                    _ => "b",
                }
                .to_string()
            })
            .collect();
        let (attr, shares) = Mix::parse("race:a=0.6", &["sex".into(), "race".into()]).unwrap();
        assert_eq!(
            (attr.as_str(), shares.clone()),
            ("race", vec![("a".to_string(), 0.6)])
        );
        let mix = Mix {
            attribute: attr,
            shares,
            labels: labels.clone(),
        };
        let items: Vec<usize> = (0..50).collect();
        let order = mix.order(&items, |i| &labels[i]);
        let a_in = |n: usize| order[..n].iter().filter(|&&i| labels[i] == "a").count();
        assert_eq!((a_in(5), a_in(10), a_in(15)), (3, 6, 9));
        assert_eq!(a_in(50), 10, "all of them, once");
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, items, "a permutation");
        for bad in [
            "race:a=1.5",
            "race:a=0.6,sex:m=0.2",
            "age:a=0.1",
            "race:a=0.7,race:b=0.7",
            "race",
            "race:a=x",
        ] {
            let e = Mix::parse(bad, &["sex".into(), "race".into()]).unwrap_err();
            assert!(e.contains("--gallery-mix"), "{bad}: {e}");
        }
    }

    #[test]
    fn small_groups_keep_one_subject_on_each_side_and_bad_fractions_are_refused() {
        let s = vec![0, 0, 1, 1];
        let g = vec![0, 0, 0, 0];
        let cfg = SplitConfig {
            enrolled_fraction: 0.9,
            seed: 1,
            mix: None,
        };
        assert_eq!(split(&s, &g, 0, &cfg).unwrap().subjects, [1, 1]);
        let err = split(
            &s,
            &g,
            0,
            &SplitConfig {
                enrolled_fraction: 1.0,
                seed: 1,
                mix: None,
            },
        )
        .unwrap_err();
        assert!(err.contains("--enrolled-fraction"), "{err}");
    }
}

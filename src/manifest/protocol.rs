//! Pair-list protocols (LFW `pairs.txt`, RFW `<race>_pairs.txt`, BFW's pair table): a given list of
//! mated and non-mated pairs in folds, evaluated as those papers do — for each fold, the threshold
//! that maximises accuracy on the other nine folds is applied to it; the result is the mean and
//! standard deviation of the ten fold accuracies.

use serde::Serialize;

/// One pair of the protocol (indices into the manifest's samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolPair {
    /// First sample.
    pub a: usize,
    /// Second sample.
    pub b: usize,
    /// Whether the pair is mated (same person).
    pub mated: bool,
    /// Fold, 0-based.
    pub fold: usize,
}

/// A dataset's own pair list.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PairList {
    /// Protocol name (e.g. `lfw-view2`).
    pub name: String,
    /// The pairs.
    pub pairs: Vec<ProtocolPair>,
    /// Pairs whose images are not in the dataset (counted, reported).
    pub missing: usize,
}

/// Accuracy of one group under the k-fold protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldAccuracy {
    /// Protocol name.
    pub protocol: String,
    /// Grouping (`all`, or an attribute).
    pub attribute: String,
    /// Group label (`all`, or the group of both images; pairs across groups form `mixed`).
    pub group: String,
    /// Folds with pairs of this group.
    pub folds: usize,
    /// Pairs scored.
    pub pairs: usize,
    /// Pairs that could not be scored (an image without a face), counted as errors.
    pub unscored: usize,
    /// Mean fold accuracy.
    pub accuracy: f64,
    /// Standard deviation of the fold accuracies.
    pub std: f64,
}

/// Accuracy of `pairs` (scores `None` for unscorable pairs: always wrong) under the k-fold protocol.
/// Thresholds are chosen on all other folds' pairs (of every group), as the papers do, then applied to
/// this group's pairs in the held-out fold. Returns (mean, std, folds used).
pub fn kfold_accuracy(
    scored: &[(ProtocolPair, Option<f32>)],
    in_group: impl Fn(&ProtocolPair) -> bool,
) -> (f64, f64, usize) {
    let folds = scored.iter().map(|(p, _)| p.fold + 1).max().unwrap_or(0);
    let mut accs = Vec::new();
    for f in 0..folds {
        let train: Vec<(f32, bool)> = scored
            .iter()
            .filter(|(p, s)| p.fold != f && s.is_some())
            .map(|(p, s)| (s.unwrap_or(0.0), p.mated))
            .collect();
        let t = best_threshold(&train);
        let test: Vec<&(ProtocolPair, Option<f32>)> = scored
            .iter()
            .filter(|(p, _)| p.fold == f && in_group(p))
            .collect();
        if test.is_empty() {
            continue;
        }
        let correct = test
            .iter()
            .filter(|(p, s)| s.is_some_and(|s| (s >= t) == p.mated))
            .count();
        accs.push(correct as f64 / test.len() as f64);
    }
    if accs.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / accs.len() as f64).sqrt();
    (mean, std, accs.len())
}

/// The threshold (at an observed score, or midway) maximising accuracy on `(score, mated)` pairs.
pub fn best_threshold(pairs: &[(f32, bool)]) -> f32 {
    let mut v: Vec<(f32, bool)> = pairs.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Threshold below everything: all predicted mated.
    let mut correct = v.iter().filter(|p| p.1).count();
    let (mut best, mut best_t) = (correct, v.first().map(|p| p.0).unwrap_or(0.0));
    for i in 0..v.len() {
        // Moving the threshold above v[i]: it becomes predicted non-mated.
        correct = if v[i].1 { correct - 1 } else { correct + 1 };
        if i + 1 < v.len() && v[i + 1].0 == v[i].0 {
            continue;
        }
        if correct > best {
            best = correct;
            best_t = if i + 1 < v.len() {
                (v[i].0 + v[i + 1].0) / 2.0
            } else {
                v[i].0 + 1e-6
            };
        }
    }
    best_t
}

/// Accuracy of the dataset's pair protocol, overall and per group of each attribute of `m` (pairs whose
/// two images share the group's value). `score(a, b)` is the similarity of samples `a` and `b`, `None`
/// when either has no embedding: such pairs count as errors.
pub fn accuracy_by_group(
    list: &PairList,
    m: &super::Manifest,
    score: impl Fn(usize, usize) -> Option<f32>,
) -> Vec<FoldAccuracy> {
    let scored: Vec<_> = list.pairs.iter().map(|p| (*p, score(p.a, p.b))).collect();
    let unscored = |f: &dyn Fn(&ProtocolPair) -> bool| {
        scored.iter().filter(|(p, s)| f(p) && s.is_none()).count()
    };
    let (acc, std, folds) = kfold_accuracy(&scored, |_| true);
    let mut out = vec![FoldAccuracy {
        protocol: list.name.clone(),
        attribute: "all".into(),
        group: "all".into(),
        folds,
        pairs: scored.len(),
        unscored: unscored(&|_| true),
        accuracy: acc,
        std,
    }];
    for (ai, attr) in m.attributes.iter().enumerate() {
        let mut values: Vec<&str> = m
            .samples
            .iter()
            .map(|s| s.attributes[ai].as_str())
            .filter(|v| !v.is_empty())
            .collect();
        values.sort();
        values.dedup();
        for v in values {
            let in_group = |p: &ProtocolPair| {
                m.samples[p.a].attributes[ai] == v && m.samples[p.b].attributes[ai] == v
            };
            let n = scored.iter().filter(|(p, _)| in_group(p)).count();
            if n == 0 {
                continue;
            }
            let (acc, std, folds) = kfold_accuracy(&scored, in_group);
            out.push(FoldAccuracy {
                protocol: list.name.clone(),
                attribute: attr.clone(),
                group: v.to_string(),
                folds,
                pairs: n,
                unscored: unscored(&in_group),
                accuracy: acc,
                std,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_threshold_separates_by_hand() {
        // mated 0.9, 0.7; non-mated 0.2, 0.5 → any τ in (0.5, 0.7] is perfect; midway = 0.6
        assert!(
            (best_threshold(&[(0.9, true), (0.2, false), (0.7, true), (0.5, false)]) - 0.6).abs()
                < 1e-6
        );
    }

    #[test]
    fn ten_fold_accuracy_by_hand() {
        // Two folds; in fold 1 one mated pair scores low (0.1) → that fold's accuracy 3/4.
        let mk = |fold, mated, s: f32| {
            (
                ProtocolPair {
                    a: 0,
                    b: 1,
                    mated,
                    fold,
                },
                Some(s),
            )
        };
        let scored = vec![
            mk(0, true, 0.9),
            mk(0, true, 0.8),
            mk(0, false, 0.1),
            mk(0, false, 0.2),
            mk(1, true, 0.9),
            mk(1, true, 0.1),
            mk(1, false, 0.2),
            mk(1, false, 0.0),
        ];
        let (mean, std, folds) = kfold_accuracy(&scored, |_| true);
        // Fold 0 is tested with τ from fold 1 (sorted 0.0F 0.1T 0.2F 0.9T): the first best, 3 of 4, is
        //   τ = (0.0+0.1)/2 = 0.05, which calls fold 0's non-mated 0.1 and 0.2 matches → 2/4 = 0.5.
        // Fold 1 is tested with τ from fold 0 (0.1F 0.2F 0.8T 0.9T): 4 of 4 at τ = 0.5 → fold 1: the
        //   mated 0.1 is missed → 3/4 = 0.75. Mean 0.625, standard deviation 0.125.
        assert_eq!(folds, 2);
        assert!(
            (mean - 0.625).abs() < 1e-12 && (std - 0.125).abs() < 1e-12,
            "{mean} {std}"
        );
        // An unscorable pair counts as an error.
        let mut with_fte = scored.clone();
        with_fte[0].1 = None;
        assert!(kfold_accuracy(&with_fte, |_| true).0 < mean);
    }
}

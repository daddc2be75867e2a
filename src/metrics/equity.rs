//! Summary metrics of demographic differentials over the groups g = 1..G of one grouping, at one global
//! threshold (definitions from `../shared/docs/METRICS.md`; α weighs FMR against FNMR):
//!
//! - `max_min`: max_g x_g / min_g x_g;
//! - `max_geomean`: max_g x_g / (∏ x_g)^(1/G) (NIST IR 8429's lead metric);
//! - `fdr` (de Freitas Pereira & Marcel): 1 − (α·max|FMR_i − FMR_j| + (1−α)·max|FNMR_i − FNMR_j|);
//! - `inequity_rate`: (max/min FMR)^α · (max/min FNMR)^(1−α);
//! - `garbe` (Howard et al. 2022): α·Gini(FMR) + (1−α)·Gini(FNMR), with
//!   Gini(x) = n/(n−1) · Σ_i Σ_j |x_i − x_j| / (2 n² mean(x)).
//!
//! Evidence rule: only groups marked [`Item::eligible`] (enough comparisons, see [`super::evidence`])
//! enter a metric; the others are named in the note as "insufficient data" with their counts. Fewer
//! than two eligible groups leaves the metric undefined.
//!
//! Zero-count rule: a ratio cannot use a rate of 0. A group with no error out of n comparisons gets the
//! rule-of-three 95 % upper bound 3/n instead. That is an *upper* bound of its rate, so it may only
//! stand where a larger value makes the ratio smaller: in the denominator (the min, the geometric
//! mean). The max is always an observed rate. A ratio with a bound in it is reported as a
//! [`Bound::LowerBound`] with the group named in the note; when the bounds leave it at or below 1 (they
//! exceed the highest observed rate) the metric is undefined rather than a vacuous bound. Differences
//! and Gini use the observed rates.
//!
//! Counts are `f64` so that the same functions serve bootstrap replicates (weighted counts).

use serde::Serialize;

use super::Bound;

/// One group's errors out of comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Group label.
    pub group: String,
    /// Errors (false matches or false non-matches), possibly weighted.
    pub errors: f64,
    /// Comparisons, possibly weighted.
    pub n: f64,
    /// Whether the group has enough comparisons to enter the metric (decided on the observed counts,
    /// kept in every bootstrap replicate).
    pub eligible: bool,
}

/// A metric's value, how to read it, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Value {
    /// The value (NaN when undefined).
    pub value: f64,
    /// Exact, a lower bound, or undefined.
    pub bound: Bound,
    /// Which groups set it, and any zero-count substitution.
    pub note: String,
    /// The group with the highest rate (max/min and Max/GeoMean), else empty.
    pub high: String,
    /// The group with the lowest rate (max/min), else empty.
    pub low: String,
    /// Whether `low` had no error, so that its rate entered as the upper bound 3/n.
    pub low_bounded: bool,
}

impl Value {
    fn undefined(why: &str) -> Value {
        Value {
            value: f64::NAN,
            bound: Bound::Undefined,
            note: why.into(),
            high: String::new(),
            low: String::new(),
            low_bounded: false,
        }
    }

    fn exact(value: f64, note: String) -> Value {
        Value {
            value,
            bound: Bound::Exact,
            note,
            high: String::new(),
            low: String::new(),
            low_bounded: false,
        }
    }
}

/// Groups with comparisons that may enter a metric.
fn live(items: &[Item]) -> Vec<&Item> {
    items.iter().filter(|i| i.n > 0.0 && i.eligible).collect()
}

/// `; insufficient data: a (12 comparisons), …` for the groups left out, else empty.
fn insufficient_note(items: &[Item]) -> String {
    let out: Vec<String> = items
        .iter()
        .filter(|i| i.n > 0.0 && !i.eligible)
        .map(|i| format!("{} ({} comparisons)", i.group, i.n))
        .collect();
    if out.is_empty() {
        String::new()
    } else {
        format!("; insufficient data: {}", out.join(", "))
    }
}

/// Rates with zeros replaced by 3/n; returns (label, rate, substituted).
fn bounded_rates(items: &[&Item]) -> Vec<(String, f64, bool)> {
    items
        .iter()
        .map(|i| {
            if i.errors == 0.0 {
                (i.group.clone(), 3.0 / i.n, true)
            } else {
                (i.group.clone(), i.errors / i.n, false)
            }
        })
        .collect()
}

fn zero_note(rates: &[(String, f64, bool)], items: &[&Item]) -> String {
    let z: Vec<String> = rates
        .iter()
        .zip(items)
        .filter(|(r, _)| r.2)
        .map(|(r, i)| format!("{} (0/{}, used 3/n)", r.0, i.n))
        .collect();
    if z.is_empty() {
        String::new()
    } else {
        format!("; zero errors: {}", z.join(", "))
    }
}

/// The highest observed rate (never a substituted bound): (label, rate). On a tie the later group in
/// the fixed order is the max while the earlier one is the min, so a tie names two groups (ratio 1).
fn highest(rates: &[(String, f64, bool)]) -> Option<&(String, f64, bool)> {
    rates
        .iter()
        .filter(|r| !r.2)
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// max/min of the rates.
pub fn max_min(items: &[Item]) -> Value {
    ratio_metric(items, |rates| {
        let max = highest(rates)?;
        let min = rates.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
        Some((
            max.1 / min.1,
            format!("max {} / min {}", max.0, min.0),
            max.0.clone(),
            min.0.clone(),
        ))
    })
}

/// max / geometric mean of the rates.
pub fn max_geomean(items: &[Item]) -> Value {
    ratio_metric(items, |rates| {
        let max = highest(rates)?;
        let geo = (rates.iter().map(|r| r.1.ln()).sum::<f64>() / rates.len() as f64).exp();
        Some((
            max.1 / geo,
            format!("max {} / geometric mean of {} groups", max.0, rates.len()),
            max.0.clone(),
            String::new(),
        ))
    })
}

/// A ratio of rates: `f` gets the eligible groups' rates (zeros replaced by 3/n) and returns
/// (value, note, high group, low group).
fn ratio_metric(
    items: &[Item],
    f: impl Fn(&[(String, f64, bool)]) -> Option<(f64, String, String, String)>,
) -> Value {
    let l = live(items);
    let left_out = insufficient_note(items);
    if l.len() < 2 {
        return Value::undefined(&format!(
            "fewer than two groups with enough comparisons{left_out}"
        ));
    }
    if l.iter().all(|i| i.errors == 0.0) {
        return Value::undefined(&format!("no errors in any group{left_out}"));
    }
    let rates = bounded_rates(&l);
    let Some((value, note, high, low)) = f(&rates) else {
        return Value::undefined("no group with errors");
    };
    let low_bounded = rates.iter().any(|r| r.2 && r.0 == low);
    let substituted = rates.iter().any(|r| r.2);
    if substituted && value <= 1.0 {
        return Value::undefined(&format!(
            "the 95 % upper bounds (3/n) of the zero-error groups are not below the highest observed rate, so no ratio can be bounded{}{left_out}",
            zero_note(&rates, &l)
        ));
    }
    Value {
        value,
        bound: if substituted {
            Bound::LowerBound
        } else {
            Bound::Exact
        },
        note: note + &zero_note(&rates, &l) + &left_out,
        high,
        low,
        low_bounded,
    }
}

fn observed(items: &[Item]) -> Vec<f64> {
    live(items).iter().map(|i| i.errors / i.n).collect()
}

fn max_diff(x: &[f64]) -> f64 {
    let max = x.iter().copied().fold(f64::MIN, f64::max);
    let min = x.iter().copied().fold(f64::MAX, f64::min);
    max - min
}

/// Gini coefficient with the small-sample factor n/(n−1); None for fewer than 2 values or mean 0.
pub fn gini(x: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    if x.len() < 2 || mean <= 0.0 {
        return None;
    }
    let s: f64 = x
        .iter()
        .map(|a| x.iter().map(|b| (a - b).abs()).sum::<f64>())
        .sum();
    Some(n / (n - 1.0) * s / (2.0 * n * n * mean))
}

/// FDR at weight α.
pub fn fdr(fmr: &[Item], fnmr: &[Item], alpha: f64) -> Value {
    let (a, b) = (observed(fmr), observed(fnmr));
    if a.len() < 2 || b.len() < 2 {
        return Value::undefined("needs two groups with non-mated and with mated comparisons");
    }
    Value::exact(
        1.0 - (alpha * max_diff(&a) + (1.0 - alpha) * max_diff(&b)),
        format!("alpha {alpha}"),
    )
}

/// Inequity rate at weight α.
pub fn inequity_rate(fmr: &[Item], fnmr: &[Item], alpha: f64) -> Value {
    let (a, b) = (max_min(fmr), max_min(fnmr));
    if a.bound == Bound::Undefined || b.bound == Bound::Undefined {
        return Value::undefined(&format!(
            "max/min undefined: FMR: {}; FNMR: {}",
            a.note, b.note
        ));
    }
    let bound = if a.bound == Bound::LowerBound || b.bound == Bound::LowerBound {
        Bound::LowerBound
    } else {
        Bound::Exact
    };
    Value {
        bound,
        ..Value::exact(
            a.value.powf(alpha) * b.value.powf(1.0 - alpha),
            format!("alpha {alpha}; FMR {}; FNMR {}", a.note, b.note),
        )
    }
}

/// GARBE at weight α.
pub fn garbe(fmr: &[Item], fnmr: &[Item], alpha: f64) -> Value {
    match (gini(&observed(fmr)), gini(&observed(fnmr))) {
        (Some(a), Some(b)) => Value::exact(
            alpha * a + (1.0 - alpha) * b,
            format!("alpha {alpha}; Gini FMR {a:.4}, FNMR {b:.4}"),
        ),
        _ => Value::undefined(
            "Gini needs two groups with a non-zero mean rate for both FMR and FNMR",
        ),
    }
}

/// All metrics of one grouping at one threshold: `(metric, rate, value)` in a fixed order.
pub fn all(fmr: &[Item], fnmr: &[Item], alpha: f64) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("max_min", "fmr", max_min(fmr)),
        ("max_min", "fnmr", max_min(fnmr)),
        ("max_geomean", "fmr", max_geomean(fmr)),
        ("max_geomean", "fnmr", max_geomean(fnmr)),
        ("fdr", "both", fdr(fmr, fnmr, alpha)),
        ("inequity_rate", "both", inequity_rate(fmr, fnmr, alpha)),
        ("garbe", "both", garbe(fmr, fnmr, alpha)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(g: &str, e: f64, n: f64) -> Item {
        Item {
            group: g.into(),
            errors: e,
            n,
            eligible: true,
        }
    }

    #[test]
    fn ratios_by_hand() {
        // FMR 0.01 and 0.001: max/min 10; geomean sqrt(1e-5) = 0.00316228 → max/geo = 3.16228
        let f = [it("a", 10.0, 1000.0), it("b", 1.0, 1000.0)];
        assert!((max_min(&f).value - 10.0).abs() < 1e-12);
        assert!((max_geomean(&f).value - 3.1622777).abs() < 1e-6);
        assert_eq!(max_min(&f).bound, Bound::Exact);
    }

    #[test]
    fn zero_counts_give_flagged_bounds_not_zero_or_infinity() {
        // b: 0/300 → 3/300 = 0.01; a: 50/1000 = 0.05 → max/min ≥ 5
        let v = max_min(&[it("a", 50.0, 1000.0), it("b", 0.0, 300.0)]);
        assert!((v.value - 5.0).abs() < 1e-12);
        assert_eq!(v.bound, Bound::LowerBound);
        assert!(v.note.contains("b (0/300"), "{}", v.note);
        assert_eq!(
            max_min(&[it("a", 0.0, 10.0), it("b", 0.0, 10.0)]).bound,
            Bound::Undefined
        );
        assert_eq!(
            max_min(&[it("a", 3.0, 10.0)]).bound,
            Bound::Undefined,
            "single group"
        );
        assert_eq!(
            max_min(&[it("a", 3.0, 10.0), it("b", 1.0, 0.0)]).bound,
            Bound::Undefined,
            "a group without comparisons is left out"
        );
    }

    #[test]
    fn a_zero_group_bound_never_becomes_the_max() {
        // LFW-like: `other` has 0 false matches in 1 comparison (bound 3/1 = 3, not a rate); the
        // others 2/1000 and 1/1000. Even if it were eligible, the max is an observed rate: 0.002.
        let mut items = vec![
            it("a", 2.0, 1000.0),
            it("b", 1.0, 1000.0),
            it("other", 0.0, 1.0),
        ];
        let v = max_min(&items);
        // max is a's observed 0.002 (not other's bound 3), min b's 0.001: 2×, a lower bound because
        // `other` could still have a lower rate.
        assert_eq!((v.value, v.bound), (2.0, Bound::LowerBound), "{v:?}");
        assert_eq!(
            (v.high.as_str(), v.low.as_str(), v.low_bounded),
            ("a", "b", false)
        );
        // A zero group whose bound is above every observed rate leaves no bounded ratio above 1.
        let v = max_min(&[it("a", 1.0, 1000.0), it("z", 0.0, 10.0)]);
        assert_eq!(v.bound, Bound::Undefined, "{v:?}");
        // Left out as insufficient data, the ratio is exact: 0.002 / 0.001 = 2.
        items[2].eligible = false;
        let v = max_min(&items);
        assert_eq!((v.value, v.bound), (2.0, Bound::Exact));
        assert_eq!((v.high.as_str(), v.low.as_str()), ("a", "b"));
        assert!(
            v.note.contains("insufficient data: other (1 comparisons)"),
            "{}",
            v.note
        );
        // A zero group with a usable bound stays in the denominator: 0/3000 → 1e-3; 0.004/0.001 = 4.
        let v = max_min(&[it("a", 12.0, 3000.0), it("z", 0.0, 3000.0)]);
        assert!((v.value - 4.0).abs() < 1e-12);
        assert_eq!((v.bound, v.low.as_str()), (Bound::LowerBound, "z"));
        // Max/GeoMean: max 0.004 over geomean sqrt(0.004·0.001) = 0.002 → 2, a lower bound.
        let g = max_geomean(&[it("a", 12.0, 3000.0), it("z", 0.0, 3000.0)]);
        assert!((g.value - 2.0).abs() < 1e-12);
        assert_eq!(g.bound, Bound::LowerBound);
    }

    #[test]
    fn fdr_inequity_garbe_by_hand() {
        // FMR: 0.02, 0.01, 0.005 (max diff 0.015); FNMR: 0.10, 0.20, 0.15 (max diff 0.10); α = 0.5
        let fmr = [
            it("a", 20.0, 1000.0),
            it("b", 10.0, 1000.0),
            it("c", 5.0, 1000.0),
        ];
        let fnmr = [
            it("a", 10.0, 100.0),
            it("b", 20.0, 100.0),
            it("c", 15.0, 100.0),
        ];
        // FDR = 1 − (0.5·0.015 + 0.5·0.10) = 0.9425
        assert!((fdr(&fmr, &fnmr, 0.5).value - 0.9425).abs() < 1e-12);
        // inequity = (0.02/0.005)^0.5 · (0.2/0.1)^0.5 = 2 · 1.41421 = 2.828427
        assert!((inequity_rate(&fmr, &fnmr, 0.5).value - 2.8284271).abs() < 1e-6);
        // Gini(FMR): Σ|xi−xj| over ordered pairs = 2·(0.01+0.015+0.005) = 0.06; n=3, mean=0.011667:
        //   3/2 · 0.06 / (2·9·0.011667) = 1.5 · 0.285714 = 0.428571
        // Gini(FNMR): 2·(0.1+0.05+0.05) = 0.4; mean 0.15: 1.5 · 0.4/(2·9·0.15) = 0.222222
        // GARBE = 0.5·0.428571 + 0.5·0.222222 = 0.325397
        assert!((gini(&[0.02, 0.01, 0.005]).unwrap() - 0.4285714).abs() < 1e-6);
        assert!((garbe(&fmr, &fnmr, 0.5).value - 0.3253968).abs() < 1e-6);
        assert_eq!(gini(&[0.0, 0.0]), None);
        assert_eq!(gini(&[0.3]), None);
    }
}

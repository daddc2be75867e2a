"""Independent recomputation of facebias's summary metrics and intervals (numpy only).

Usage: python3 tests/reference/equity_check.py RUN_DIR

1. Evidence rules: from the per-group counts in groups.csv, a group's FMR is `insufficient` below
   ceil(3 / target) non-mated comparisons and `few_comparisons` below 10 / target; its FNMR is
   `insufficient` below 100 mated comparisons. The columns fmr_evidence / fnmr_evidence must say so.
2. Summary metrics over the groups with enough data, for every (attribute, target): max/min and
   Max/GeoMean of FMR and FNMR (a zero-error group enters as 3/n, only ever as the minimum; the max is
   an observed rate; a bounded ratio <= 1 is undefined), FDR, inequity rate and GARBE at the run's
   alpha, compared with equity.csv (relative 1e-9), including the named groups (group_high, group_low).
3. The subject bootstrap, re-implemented from bootstrap.bin (SplitMix64 draws within each finest
   group, weighted counts, no rescoring): the 95 % interval of each max/min row's named pair
   (pair_ci_low / pair_ci_high) and of every ratio to the reference group in relative.csv must agree
   (relative 1e-9).
Exits non-zero with a message on any disagreement; prints how many values were checked.
"""
import csv
import json
import math
import struct
import sys
from collections import defaultdict

import numpy as np

MASK = (1 << 64) - 1
MIN_MATED = 100


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        zone = MASK - MASK % n
        while True:
            x = self.next()
            if x < zone:
                return x % n


def fmr_evidence(n, target):
    if n < math.ceil(3.0 / target - 1e-9):
        return "insufficient"
    return "few_comparisons" if n * target < 10 else "ok"


def fnmr_evidence(n):
    return "insufficient" if n < MIN_MATED else "ok"


def ratio_metrics(items):
    """items: (errors, n, label) of the eligible groups with n > 0 -> (max/min, max/geomean, hi, lo)."""
    if len(items) < 2 or all(e == 0 for e, _, _ in items):
        return math.nan, math.nan, "", ""
    x = np.array([3.0 / m if e == 0 else e / m for e, m, _ in items])
    zero = any(e == 0 for e, _, _ in items)
    observed = [(e / m, g) for e, m, g in items if e > 0]
    # Ties: the last group with the highest rate and the first with the lowest (as facebias's
    # max_by / min_by), so that a tie still names two different groups.
    top, hi = observed[0]
    for r, g in observed:
        if r >= top:
            top, hi = r, g
    lo = items[int(np.argmin(x))][2]
    mm = top / x.min()
    mg = top / math.exp(np.log(x).mean())
    if zero and mm <= 1:
        mm, hi, lo = math.nan, "", ""
    if zero and mg <= 1:
        mg = math.nan
    return mm, mg, hi, lo


def gini(x):
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 2 or x.mean() <= 0:
        return math.nan
    return n / (n - 1) * np.abs(x[:, None] - x[None, :]).sum() / (2 * n * n * x.mean())


def close(got, want):
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    if math.isinf(want) or math.isinf(got):
        return got == want
    return abs(got - want) <= 1e-9 * max(1.0, abs(want))


def check_metrics(groups, equity, alpha):
    checked = 0
    for (attr, target), rows in groups.items():
        t = float(target)
        for r in rows:
            want = (fmr_evidence(int(r["nonmated_comparisons"]), t), fnmr_evidence(int(r["mated_comparisons"])))
            got = (r["fmr_evidence"], r["fnmr_evidence"])
            if want != got:
                sys.exit(f"{attr} {r['group']} at {target}: evidence {got}, numpy says {want}")
            checked += 2
        fmr = [(float(r["false_matches"]), float(r["nonmated_comparisons"]), r["group"]) for r in rows
               if float(r["nonmated_comparisons"]) > 0 and r["fmr_evidence"] != "insufficient"]
        fnmr = [(float(r["false_non_matches"]), float(r["mated_comparisons"]), r["group"]) for r in rows
                if float(r["mated_comparisons"]) > 0 and r["fnmr_evidence"] != "insufficient"]
        mm_f, mg_f, hi_f, lo_f = ratio_metrics(fmr)
        mm_n, mg_n, hi_n, lo_n = ratio_metrics(fnmr)
        obs_f = np.array([e / m for e, m, _ in fmr])
        obs_n = np.array([e / m for e, m, _ in fnmr])
        ok2 = len(obs_f) >= 2 and len(obs_n) >= 2
        fdr = 1 - (alpha * np.ptp(obs_f) + (1 - alpha) * np.ptp(obs_n)) if ok2 else math.nan
        ineq = mm_f ** alpha * mm_n ** (1 - alpha)
        garbe = alpha * gini(obs_f) + (1 - alpha) * gini(obs_n) if ok2 else math.nan
        expected = {
            ("max_min", "fmr"): (mm_f, hi_f, lo_f), ("max_min", "fnmr"): (mm_n, hi_n, lo_n),
            ("max_geomean", "fmr"): (mg_f, None, None), ("max_geomean", "fnmr"): (mg_n, None, None),
            ("fdr", "both"): (fdr, None, None), ("inequity_rate", "both"): (ineq, None, None),
            ("garbe", "both"): (garbe, None, None),
        }
        for (metric, rate), (want, hi, lo) in expected.items():
            row = equity[(attr, target, metric, rate)]
            got = float(row["value"])
            if not close(got, want):
                sys.exit(f"{attr} {target} {metric} {rate}: facebias {got} vs numpy {want}")
            if hi is not None and not math.isnan(want) and (row["group_high"], row["group_low"]) != (hi, lo):
                sys.exit(f"{attr} {target} {metric} {rate}: pair {row['group_high']}/{row['group_low']} vs numpy {hi}/{lo}")
            lo_ci, hi_ci = float(row["ci_low"]), float(row["ci_high"])
            if not (math.isnan(lo_ci) or math.isnan(hi_ci)) and lo_ci > hi_ci:
                sys.exit(f"{attr} {target} {metric} {rate}: interval [{lo_ci}, {hi_ci}] is not ordered")
            checked += 1
    return checked


def read_bootstrap(path):
    b = open(path, "rb").read()
    assert b[:8] in (b"FBBOOT1\n", b"FBBOOT2\n"), "not a bootstrap.bin"
    if b[:8] == b"FBBOOT2\n":
        b = b[:-32]  # the sha256 trailer
    pos = 8
    (n,) = struct.unpack_from("<Q", b, pos); pos += 8
    combo, images, mated_bins = [], [], []
    for _ in range(n):
        c, im, k = struct.unpack_from("<HQI", b, pos); pos += 14
        bins = np.frombuffer(b, dtype="<u2", count=k, offset=pos).astype(np.int64); pos += 2 * k
        combo.append(c); images.append(im); mated_bins.append(bins)
    (h,) = struct.unpack_from("<Q", b, pos); pos += 8
    high = np.frombuffer(b, dtype=np.dtype([("a", "<u4"), ("b", "<u4"), ("bin", "<u2")]), count=h, offset=pos)
    pos += 10 * h + 8  # the pairs, then the cut-off bin
    excluded = []
    if pos < len(b):  # pairs left out by --exclude-pairs: (subject a, subject b)
        (n,) = struct.unpack_from("<Q", b, pos); pos += 8
        excluded = [struct.unpack_from("<II", b, pos + 8 * i) for i in range(n)]
    return np.array(combo), np.array(images, dtype=float), mated_bins, high, excluded


def read_header(path):
    b = open(path, "rb").read()
    assert b[:7] in (b"FBCMP1\n", b"FBCMP2\n"), "not a comparisons.bin"
    (n,) = struct.unpack_from("<I", b, 7)
    return json.loads(b[11:11 + n])


def groupings(attributes, combos):
    """Each attribute with >= 2 labelled values, then each pair: (name, labels, group of each combo)."""
    useful = [a for a in range(len(attributes)) if len({c[a] for c in combos if c[a]}) >= 2]
    sets = [[a] for a in useful] + [[a, b] for i, a in enumerate(useful) for b in useful[i + 1:]]
    out = []
    for s in sets:
        lab = ["|".join(c[a] for a in s) if all(c[a] for a in s) else None for c in combos]
        labels = sorted({x for x in lab if x is not None})
        out.append(("×".join(attributes[a] for a in s), labels, [labels.index(x) if x is not None else -1 for x in lab]))
    return out


def percentile_ci(v):
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan
    return float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))


def bootstrap_counts(run, record):
    """Per (grouping, target) the weighted (fm, nm, fnm, m) of every group in every replicate."""
    combo, images, mated_bins, high, excluded = read_bootstrap(f"{run}/bootstrap.bin")
    header = read_header(f"{run}/comparisons.bin")
    ncombos = len(header["combos"])
    gs = groupings(header["attributes"], header["combos"])
    thresholds = [(t["target_fmr"], t["bin"]) for t in record["thresholds"]]
    subj_mated = images * (images - 1) / 2
    for a, b in excluded:
        if a == b:
            subj_mated[a] -= 1  # an excluded mated pair (its score is already out of mated_bins)
    cross = [(a, b) for a, b in excluded if a != b]
    fnm = {b: subj_mated - np.array([(mb >= b).sum() for mb in mated_bins]) for _, b in thresholds}
    members = [np.flatnonzero(combo == c) for c in range(ncombos)]
    rng = SplitMix64(record["bootstrap"]["seed"])
    out = defaultdict(list)
    for _ in range(record["bootstrap"]["replicates"]):
        w = np.zeros(len(combo))
        for m in members:
            for _ in range(len(m)):
                w[m[rng.below(len(m))]] += 1
        a_c = np.array([(w[m] * images[m]).sum() for m in members])
        b_c = np.array([((w[m] * images[m]) ** 2).sum() for m in members])
        ww = w[high["a"]] * w[high["b"]]
        ca, cb = combo[high["a"]], combo[high["b"]]
        for name, labels, gof in gs:
            gof = np.array(gof)
            for target, tb in thresholds:
                reached = high["bin"] >= tb
                rep = []
                for k in range(len(labels)):
                    in_k = np.flatnonzero(gof == k)
                    subj = np.isin(combo, in_k)
                    a, b2 = a_c[in_k].sum(), b_c[in_k].sum()
                    pairs = np.isin(ca, in_k) & np.isin(cb, in_k) & reached
                    gone = sum(w[x] * w[y] for x, y in cross if combo[x] in in_k and combo[y] in in_k)
                    rep.append((ww[pairs].sum(), (a * a - b2) / 2 - gone, (w[subj] * fnm[tb][subj]).sum(), (w[subj] * subj_mated[subj]).sum()))
                out[(name, target)].append((labels, rep))
    return out


def pair_ci(reps, hi, lo, e):
    """95 % interval of (observed rate of hi) / (rate of lo, 3/n when zero) over the replicates."""
    vals = []
    for labels, rep in reps:
        h, l = rep[labels.index(hi)], rep[labels.index(lo)]
        top = h[e] / h[e + 1] if h[e + 1] > 0 else math.nan
        den = math.nan if l[e + 1] <= 0 else (3.0 / l[e + 1] if l[e] == 0 else l[e] / l[e + 1])
        vals.append(top / den)
    return percentile_ci(vals)


def check_intervals(run, record, equity, relative):
    counts = bootstrap_counts(run, record)
    checked = 0
    by_target = {str(t["target_fmr"]): t["target_fmr"] for t in record["thresholds"]}

    def compare(what, got, want):
        for g, w in zip(got, want):
            if not close(g, w):
                sys.exit(f"{what}: facebias {got} vs numpy {want}")

    for (attr, target, metric, rate), row in equity.items():
        if metric != "max_min" or not row["group_high"]:
            continue
        reps = counts[(attr, by_target.get(target, float(target)))]
        want = pair_ci(reps, row["group_high"], row["group_low"], 0 if rate == "fmr" else 2)
        compare(f"{attr} {target} {rate} {row['group_high']}/{row['group_low']} pair interval",
                (float(row["pair_ci_low"]), float(row["pair_ci_high"])), want)
        checked += 2
    for r in relative:
        reps = counts[(r["attribute"], by_target.get(r["target_fmr"], float(r["target_fmr"])))]
        for e, k in ((0, "fmr"), (2, "fnmr")):
            if r["group"] == r["reference_group"]:
                want = (1.0, 1.0)  # the reference against itself
            else:
                want = pair_ci(reps, r["group"], r["reference_group"], e)
            compare(f"{r['attribute']} {r['target_fmr']} {r['group']}/{r['reference_group']} {k} relative interval",
                    (float(r[f"{k}_ratio_ci_low"]), float(r[f"{k}_ratio_ci_high"])), want)
            checked += 2
    return checked


def main():
    run = sys.argv[1]
    record = json.load(open(f"{run}/run.json"))
    alpha = record["bootstrap"]["alpha"]
    groups = defaultdict(list)
    for r in csv.DictReader(open(f"{run}/groups.csv")):
        groups[(r["attribute"], r["target_fmr"])].append(r)
    equity = {(r["attribute"], r["target_fmr"], r["metric"], r["rate"]): r for r in csv.DictReader(open(f"{run}/equity.csv"))}
    relative = list(csv.DictReader(open(f"{run}/relative.csv")))
    checked = check_metrics(groups, equity, alpha)
    intervals = 0
    if record["bootstrap"]["replicates"] > 0:
        intervals = check_intervals(run, record, equity, relative)
    for rows in groups.values():
        for r in rows:
            for k in ("fmr", "fnmr"):
                lo, hi = float(r[f"{k}_ci_low"]), float(r[f"{k}_ci_high"])
                if not (math.isnan(lo) or math.isnan(hi)) and lo > hi:
                    sys.exit(f"{r['attribute']} {r['group']} {k}: interval [{lo}, {hi}] is not ordered")
    print(f"{checked} summary values and evidence labels and {intervals} named-pair interval ends agree with numpy")


if __name__ == "__main__":
    main()

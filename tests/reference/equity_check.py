"""Independent recomputation of facebias's summary metrics from its groups.csv (numpy only).

Usage: python3 tests/reference/equity_check.py RUN_DIR
For every (attribute, target_fmr) it recomputes, from the per-group error counts in groups.csv,
max/min and Max/GeoMean of FMR and FNMR (zero-count rule: a group with 0 errors out of n uses 3/n),
FDR, inequity rate and GARBE at the run's alpha, and compares them with equity.csv (relative 1e-9).
It also checks every bootstrap interval is ordered (low <= high) and brackets a value of the same scale.
Exits non-zero with a message on any disagreement; prints the number of values checked.
"""
import csv
import json
import math
import sys
from collections import defaultdict

import numpy as np


def rates(rows, err, n):
    out = []
    for r in rows:
        e, m = float(r[err]), float(r[n])
        if m > 0:
            out.append((e, m))
    return out


def bounded(items):
    return np.array([3.0 / m if e == 0 else e / m for e, m in items])


def ratio_metrics(items):
    if len(items) < 2 or all(e == 0 for e, _ in items):
        return math.nan, math.nan
    x = bounded(items)
    return x.max() / x.min(), x.max() / math.exp(np.log(x).mean())


def gini(x):
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 2 or x.mean() <= 0:
        return math.nan
    return n / (n - 1) * np.abs(x[:, None] - x[None, :]).sum() / (2 * n * n * x.mean())


def main():
    run = sys.argv[1]
    alpha = json.load(open(f"{run}/run.json"))["bootstrap"]["alpha"]
    groups = defaultdict(list)
    for r in csv.DictReader(open(f"{run}/groups.csv")):
        groups[(r["attribute"], r["target_fmr"])].append(r)
    equity = {(r["attribute"], r["target_fmr"], r["metric"], r["rate"]): r for r in csv.DictReader(open(f"{run}/equity.csv"))}
    checked = 0
    for (attr, target), rows in groups.items():
        fmr = rates(rows, "false_matches", "nonmated_comparisons")
        fnmr = rates(rows, "false_non_matches", "mated_comparisons")
        mm_f, mg_f = ratio_metrics(fmr)
        mm_n, mg_n = ratio_metrics(fnmr)
        obs_f = np.array([e / m for e, m in fmr])
        obs_n = np.array([e / m for e, m in fnmr])
        ok2 = len(obs_f) >= 2 and len(obs_n) >= 2
        fdr = 1 - (alpha * np.ptp(obs_f) + (1 - alpha) * np.ptp(obs_n)) if ok2 else math.nan
        ineq = mm_f ** alpha * mm_n ** (1 - alpha)
        garbe = alpha * gini(obs_f) + (1 - alpha) * gini(obs_n) if ok2 else math.nan
        expected = {
            ("max_min", "fmr"): mm_f, ("max_min", "fnmr"): mm_n,
            ("max_geomean", "fmr"): mg_f, ("max_geomean", "fnmr"): mg_n,
            ("fdr", "both"): fdr, ("inequity_rate", "both"): ineq, ("garbe", "both"): garbe,
        }
        for (metric, rate), want in expected.items():
            row = equity[(attr, target, metric, rate)]
            got = float(row["value"])
            if math.isnan(want) != math.isnan(got) or (not math.isnan(want) and abs(got - want) > 1e-9 * max(1.0, abs(want))):
                sys.exit(f"{attr} {target} {metric} {rate}: facebias {got} vs numpy {want}")
            lo, hi = float(row["ci_low"]), float(row["ci_high"])
            if not (math.isnan(lo) or math.isnan(hi)) and lo > hi:
                sys.exit(f"{attr} {target} {metric} {rate}: interval [{lo}, {hi}] is not ordered")
            checked += 1
    for rows in groups.values():
        for r in rows:
            for k in ("fmr", "fnmr"):
                lo, hi = float(r[f"{k}_ci_low"]), float(r[f"{k}_ci_high"])
                if not (math.isnan(lo) or math.isnan(hi)) and lo > hi:
                    sys.exit(f"{r['attribute']} {r['group']} {k}: interval [{lo}, {hi}] is not ordered")
    print(f"{checked} summary values agree with numpy")


if __name__ == "__main__":
    main()

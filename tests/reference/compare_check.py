"""Recomputes `facebias compare`'s models.csv from each model's own groups.csv (its per-group counts at
its own global thresholds), independently: FMR and FNMR Max/GeoMean over the groups with enough evidence
(a zero-error group enters as 3/n and makes the value a lower bound; the max is always an observed
rate), the FMR Gini coefficient (n/(n-1)), the highest-FMR group, and the ranking per (grouping,
target) by FMR Max/GeoMean (undefined last, ties by name).
Usage: python3 tests/reference/compare_check.py COMPARISON_DIR   (exit 1 on a mismatch)"""
import csv
import json
import math
import sys


def max_geomean(rows, err, n, evidence):
    live = [r for r in rows if r[evidence] != "insufficient" and int(r[n]) > 0]
    if len(live) < 2 or all(int(r[err]) == 0 for r in live):
        return None, "undefined"
    rates = [(int(r[err]) / int(r[n]), False) if int(r[err]) > 0 else (3 / int(r[n]), True) for r in live]
    mx = max(v for v, sub in rates if not sub)
    geo = math.exp(sum(math.log(v) for v, _ in rates) / len(rates))
    sub = any(s for _, s in rates)
    if sub and mx / geo <= 1:
        return None, "undefined"
    return mx / geo, "lower_bound" if sub else "exact"


def gini(x):
    if len(x) < 2 or sum(x) <= 0:
        return None
    n, mean = len(x), sum(x) / len(x)
    return n / (n - 1) * sum(abs(a - b) for a in x for b in x) / (2 * n * n * mean)


def main(d):
    rec = json.load(open(f"{d}/run.json"))
    rows = list(csv.DictReader(open(f"{d}/models.csv", newline="")))
    folders = {m["name"]: m["folder"] for m in rec["models"]}
    bad = checked = 0
    want_rank = {}
    for r in rows:
        groups = [g for g in csv.DictReader(open(f"{d}/{folders[r['model']]}/groups.csv", newline=""))
                  if g["attribute"] == r["attribute"] and float(g["target_fmr"]) == float(r["target_fmr"])]
        f, fb = max_geomean(groups, "false_matches", "nonmated_comparisons", "fmr_evidence")
        n, _ = max_geomean(groups, "false_non_matches", "mated_comparisons", "fnmr_evidence")
        g = gini([int(x["false_matches"]) / int(x["nonmated_comparisons"]) for x in groups if x["fmr_evidence"] != "insufficient" and int(x["nonmated_comparisons"]) > 0])
        eligible = [x for x in groups if x["fmr_evidence"] != "insufficient"]
        high = max(eligible, key=lambda x: float(x["fmr"]))["group"] if eligible else ""
        got = lambda k: None if r[k] in ("", "NaN") else float(r[k])
        ok = (got("fmr_max_geomean") is None) == (f is None) and r["fmr_max_geomean_bound"] == fb
        ok &= f is None or abs(got("fmr_max_geomean") - f) < 1e-9 * f
        ok &= n is None or abs(got("fnmr_max_geomean") - n) < 1e-9 * n
        ok &= (g is None and got("fmr_gini") is None) or (g is not None and abs(got("fmr_gini") - g) < 1e-9)
        ok &= r["highest_fmr_group"] == high
        checked += 1
        if not ok:
            bad += 1
            print("MISMATCH", r["model"], r["attribute"], r["target_fmr"], "python:", f, fb, n, g, high)
        want_rank.setdefault((r["attribute"], r["target_fmr"]), []).append((math.inf if f is None else f, r["model"], r))
    for key, items in want_rank.items():
        items.sort(key=lambda x: (x[0], x[1]))
        for k, (_, name, r) in enumerate(items, 1):
            checked += 1
            if int(r["rank"]) != k:
                bad += 1
                print("RANK MISMATCH", key, name, r["rank"], "python:", k)
    print(f"compare_check: {checked} values recomputed, {bad} mismatches")
    return bad == 0 and checked > 0


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1]) else 1)

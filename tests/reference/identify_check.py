"""Recounts `facebias identify`'s outputs independently, in float64, from samples.csv (roles, gallery
ranks, embedding rows, labels) + embeddings.npy + run.json (gallery sizes, L, thresholds):

- identification.csv: every FNIR(N, R, T) / FPIR(N, T) count per group, at every gallery size;
  the mate's rank counts ties against the mate (1 + other entries scoring >= the mate's score);
- cmc.csv: rank-k hits per group at the largest gallery;
- gallery_size.csv: FPIR counts per size and the 1:1 false-match counts (all probe x gallery
  scores >= T at the largest gallery; facebias counts them from its kept lists, so they agree
  unless the row says `fmr_saturated`), and the prediction s * (1 - (1 - FMR)^N) from the row's
  own FMR;
- implicated.csv: candidates >= T among the top L of non-mated searches, by searcher x candidate group;
- identification_summary.csv: Max/GeoMean (zero-error groups as 3/n, lower bound) and the Gini
  coefficient (n/(n-1)) recomputed from identification.csv's own counts and flags.

A count may differ only by searches (or, for false matches and implicated candidates, pairs) whose
deciding score lies within 1e-5 of T or of the score it is ranked against (float32 vs float64);
those are counted and printed, and must explain any difference. Such pairs exist by construction:
T is the next float32 above the (k+1)-th highest top score, so the pair that set it sits one float32
step below T, and its float64 score can lie above T (seen on the test's BFW subset: float32
0.27893344 with one fused multiply-add per dimension, float64 0.2789335398, T 0.27893347).
Usage: python3 tests/reference/identify_check.py REPORT_DIR   (exit 1 on a mismatch)
"""
import csv
import json
import math
import sys

import numpy as np

EPS = 1e-5


def load(d):
    samples = list(csv.DictReader(open(f"{d}/samples.csv", newline="")))
    emb = np.load(f"{d}/embeddings.npy").astype(np.float64)
    run = json.load(open(f"{d}/run.json"))
    return samples, emb, run


def groups_of(labels):
    """[(grouping, group)] of one set of labels, as facebias names them (sorted attribute order)."""
    out = [("all", "all")]
    for a, v in labels:
        if v != "":
            out.append((a, v))
    for x in range(len(labels)):
        for y in range(x + 1, len(labels)):
            (a, v), (b, w) = labels[x], labels[y]
            if v != "" and w != "":
                out.append((f"{a}×{b}", f"{v}|{w}"))
    return out


def main(d):
    samples, emb, run = load(d)
    proto = run["protocol"]
    L, sizes = proto["candidates"], proto["gallery_sizes"]
    header = list(samples[0].keys())
    attrs = header[2:header.index("status")]
    gallery = sorted((int(s["gallery_rank"]), i) for i, s in enumerate(samples) if s["gallery_rank"] != "")
    g_rows = [i for _, i in gallery]
    assert [r for r, _ in gallery] == list(range(len(g_rows))), "gallery ranks are 0..N-1"
    G = emb[[int(samples[i]["embedding_row"]) for i in g_rows]]
    mate_of = {samples[i]["subject"]: e for e, i in enumerate(g_rows) if samples[i]["role"] == "gallery"}
    searches = [i for i, s in enumerate(samples) if s["role"] in ("mated_search", "nonmated_search")]
    n_max = sizes[-1]
    assert n_max == len(g_rows)
    bad = checked = borderline = 0

    # Per search: (mated, labels, scores against the whole gallery or None).
    res = []
    for i in searches:
        s = samples[i]
        sc = None if s["embedding_row"] == "" else G @ emb[int(s["embedding_row"])]
        res.append((s["role"] == "mated_search", s, sc))

    def fnir_error(s, sc, n, rank, t):
        """(error, borderline) of a mated search at size n."""
        mate = mate_of.get(s["subject"])
        if sc is None or mate is None or mate >= n:
            return True, False
        ms = sc[mate]
        others = np.delete(sc[:n], mate)
        r = 1 + int(np.sum(others >= ms))
        # Borderline only when float32 rounding could move the mate across rank R or across T.
        lo, hi = 1 + int(np.sum(others > ms + EPS)), 1 + int(np.sum(others >= ms - EPS))
        border = abs(ms - t) < EPS or ((lo <= rank) != (hi <= rank))
        return not (r <= rank and ms >= t), border

    def fpir_error(sc, n, t):
        if sc is None:
            return False, False
        top = sc[:n].max()
        return top >= t, abs(top - t) < EPS

    cache = {}

    def count(metric, n, rank, t):
        key = (metric, n, rank, t)
        if key in cache:
            return cache[key]
        c = {}
        for mated, s, sc in res:
            if (metric == "fnir") != mated:
                continue
            err, border = fnir_error(s, sc, n, rank, t) if mated else fpir_error(sc, n, t)
            for k in groups_of([(a, s[a]) for a in attrs]):
                x = c.setdefault(k, [0, 0, 0])
                x[0] += 1
                x[1] += int(err)
                x[2] += int(border)
        cache[key] = c
        return c

    ident = list(csv.DictReader(open(f"{d}/identification.csv", newline="")))
    for r in ident:
        t = float(r["threshold"]) if r["threshold"] != "" else -np.inf
        n_, e_, b_ = count(r["metric"], int(r["gallery_size"]), int(r["rank"]), t).get((r["attribute"], r["group"]), [0, 0, 0])
        ok = int(r["searches"]) == n_ and abs(int(r["errors"]) - e_) <= b_ and (r["rate"] == "") == (n_ == 0)
        checked += 1
        borderline += b_
        if not ok:
            bad += 1
            print("MISMATCH identification", r, "numpy:", n_, e_, "borderline", b_)

    # CMC at the largest gallery: hits at rank <= k = searches - FNIR(N, k, -inf) errors.
    for r in csv.DictReader(open(f"{d}/cmc.csv", newline="")):
        n_, e_, b_ = count("fnir", n_max, int(r["rank"]), -np.inf).get((r["attribute"], r["group"]), [0, 0, 0])
        checked += 1
        if int(r["searches"]) != n_ or abs(int(r["hits"]) - (n_ - e_)) > b_:
            bad += 1
            print("MISMATCH cmc", r, "numpy:", n_, n_ - e_)

    # Gallery size: FPIR counts at each size, false matches over all scores at the largest gallery.
    for r in csv.DictReader(open(f"{d}/gallery_size.csv", newline="")):
        t, n = float(r["threshold"]), int(r["gallery_size"])
        n_, e_, b_ = count("fpir", n, 1, t).get((r["attribute"], r["group"]), [0, 0, 0])
        fm = fm_border = faced = 0
        for mated, s, sc in res:
            if mated or sc is None or (r["attribute"], r["group"]) not in groups_of([(a, s[a]) for a in attrs]):
                continue
            faced += 1
            fm += int(np.sum(sc >= t))
            fm_border += int(np.sum(np.abs(sc - t) < EPS))
        saturated = r["fmr_saturated"] == "true"
        got_fm = int(r["false_matches"])
        ok = int(r["searches"]) == n_ and abs(int(r["false_positives"]) - e_) <= b_
        ok &= int(r["comparisons"]) == faced * n_max
        # A pair within EPS of T may fall either side in float32 (the threshold is the next float
        # above a float32 score, so the pair that set it sits right there).
        ok &= abs(got_fm - fm) <= fm_border or (saturated and got_fm <= fm + fm_border)
        if r["predicted_fpir"] != "" and not saturated and faced:
            fmr = got_fm / (faced * n_max)
            pred = faced / n_ * (1 - (1 - fmr) ** n)
            ok &= abs(float(r["predicted_fpir"]) - pred) < 1e-9
        checked += 1
        if not ok:
            bad += 1
            print("MISMATCH gallery_size", r, "numpy:", n_, e_, fm, faced)

    # Implicated (above T, top L, largest gallery): searcher group x candidate group.
    g_labels = [samples[i] for i in g_rows]
    imp = {}
    for r in csv.DictReader(open(f"{d}/implicated.csv", newline="")):
        if r["mode"] != "above_threshold":
            continue
        t = float(r["threshold"])
        if t not in imp:
            c = {}
            for mated, s, sc in res:
                if mated or sc is None:
                    continue
                order = np.lexsort((np.array(g_rows), -sc))[:L]
                for e in order:
                    if sc[e] < t - EPS:
                        continue
                    border = int(abs(sc[e] - t) < EPS)
                    cand = g_labels[e]
                    for (ga, gv) in groups_of([(a, s[a]) for a in attrs])[1:]:
                        names = ga.split("×")
                        vals = [cand[a] for a in names]
                        cg = "unlabelled" if any(v == "" for v in vals) else "|".join(vals)
                        x = c.setdefault((ga, gv, cg), [0, 0])
                        x[0] += int(sc[e] >= t)
                        x[1] += border
            imp[t] = c
        want, border = imp[t].get((r["attribute"], r["search_group"], r["candidate_group"]), [0, 0])
        borderline += border
        checked += 1
        if abs(int(r["candidates"]) - want) > border:
            bad += 1
            print("MISMATCH implicated", r, "numpy:", want)

    # Summaries from identification.csv's counts.
    rows = {}
    for r in ident:
        rows.setdefault((r["attribute"], r["gallery_size"], r["metric"], r["rank"], r["target_fpir"]), []).append(r)
    for s in csv.DictReader(open(f"{d}/identification_summary.csv", newline="")):
        grp = rows[(s["attribute"], s["gallery_size"], s["metric"], s["rank"], s["target_fpir"])]
        live = [r for r in grp if r["flag"] not in ("insufficient", "no_searches")]
        obs = [int(r["errors"]) / int(r["searches"]) for r in live]
        want_m, bound = None, "undefined"
        if len(live) >= 2 and any(int(r["errors"]) > 0 for r in live):
            rates = [(int(r["errors"]) / int(r["searches"]), False) if int(r["errors"]) > 0 else (3 / int(r["searches"]), True) for r in live]
            mx = max(v for v, sub in rates if not sub)
            geo = math.exp(sum(math.log(v) for v, _ in rates) / len(rates))
            sub = any(x for _, x in rates)
            if not (sub and mx / geo <= 1):
                want_m, bound = mx / geo, "lower_bound" if sub else "exact"
        mean = sum(obs) / len(obs) if obs else 0
        want_g = None
        if len(obs) >= 2 and mean > 0:
            n = len(obs)
            want_g = n / (n - 1) * sum(abs(a - b) for a in obs for b in obs) / (2 * n * n * mean)
        got_m = float(s["max_geomean"]) if s["max_geomean"] != "" else None
        got_g = float(s["gini"]) if s["gini"] != "" else None
        ok = s["bound"] == bound and ((got_m is None) == (want_m is None)) and ((got_g is None) == (want_g is None))
        ok &= got_m is None or abs(got_m - want_m) < 1e-9 * max(1, want_m)
        ok &= got_g is None or abs(got_g - want_g) < 1e-9
        checked += 1
        if not ok:
            bad += 1
            print("MISMATCH summary", s, "python:", want_m, bound, want_g)

    print(f"identify_check: {checked} rows recounted, {bad} mismatches, {borderline} borderline searches")
    return bad == 0 and checked > 0


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1]) else 1)

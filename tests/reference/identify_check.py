"""Recounts `facebias identify`'s per-group FNIR/FPIR from its own outputs, independently, in float64:
samples.csv (roles, gallery ranks, embedding rows, labels) + embeddings.npy -> every search scored
against the whole gallery with numpy -> FNIR(R, T) and FPIR(T) per group -> compared with
identification.csv row by row. Thresholds are taken from run.json (they are the tool's output under
test only in the sense that the same T is applied on both sides).

A count may differ only by searches whose deciding score lies within 1e-5 of T or of the score it is
ranked against (float32 vs float64 rounding); those are counted and printed, and must explain any
difference. Usage: python3 tests/reference/identify_check.py REPORT_DIR   (exit 1 on a mismatch)
"""
import csv
import json
import sys

import numpy as np

EPS = 1e-5


def main(d):
    samples = list(csv.DictReader(open(f"{d}/samples.csv", newline="")))
    emb = np.load(f"{d}/embeddings.npy").astype(np.float64)
    run = json.load(open(f"{d}/run.json"))
    proto = run["protocol"]
    L = proto["candidates"]
    header = list(samples[0].keys())
    attrs = header[2:header.index("status")]
    gallery = sorted((int(s["gallery_rank"]), i) for i, s in enumerate(samples) if s["gallery_rank"] != "")
    g_rows = [i for _, i in gallery]
    G = emb[[int(samples[i]["embedding_row"]) for i in g_rows]]
    entry_of_subject = {samples[i]["subject"]: e for e, i in enumerate(g_rows)}
    searches = [i for i, s in enumerate(samples) if s["role"] in ("mated_search", "nonmated_search")]

    # Per search: mated?, labels, sorted (score, row) list or None when it has no face.
    results = []
    for i in searches:
        s = samples[i]
        mated = s["role"] == "mated_search"
        if s["embedding_row"] == "":
            results.append((mated, s, None))
            continue
        sc = G @ emb[int(s["embedding_row"])]
        s["_scores"] = sc
        order = sorted(range(len(g_rows)), key=lambda e: (-sc[e], g_rows[e]))
        results.append((mated, s, [(sc[e], e) for e in order[:L + 1]]))

    def groups_of(s):
        out = [("all", "all")]
        vals = [(a, s[a]) for a in attrs]
        for a, v in vals:
            if v != "":
                out.append((a, v))
        for x in range(len(vals)):
            for y in range(x + 1, len(vals)):
                (a, v), (b, w) = vals[x], vals[y]
                if v != "" and w != "":
                    out.append((f"{a}×{b}", f"{v}|{w}"))
        return out

    def count(metric, rank, t):
        """{(attribute, group): [searches, errors, borderline]}"""
        c = {}
        for mated, s, lst in results:
            if (metric == "fnir") != mated:
                continue
            border = False
            if metric == "fnir":
                mate = entry_of_subject.get(s["subject"])
                if lst is None or mate is None:
                    err = True
                else:
                    top = lst[:rank]
                    hit = any(e == mate and v >= t for v, e in top)
                    err = not hit
                    ms = s["_scores"][mate]
                    edge = lst[max(0, rank - 1):rank + 1]
                    border = abs(ms - t) < EPS or any(abs(ms - v) < EPS for v, e in edge if e != mate)
            else:
                err = lst is not None and lst[0][0] >= t
                border = lst is not None and abs(lst[0][0] - t) < EPS
            for k in groups_of(s):
                x = c.setdefault(k, [0, 0, 0])
                x[0] += 1
                x[1] += int(err)
                x[2] += int(border)
        return c

    cache = {}
    bad = 0
    checked = 0
    borderline = 0
    for r in csv.DictReader(open(f"{d}/identification.csv", newline="")):
        t = float(r["threshold"]) if r["threshold"] != "" else -np.inf
        key = (r["metric"], int(r["rank"]), t)
        if key not in cache:
            cache[key] = count(*key)
        searches_, errors, border = cache[key].get((r["attribute"], r["group"]), [0, 0, 0])
        ok = int(r["searches"]) == searches_ and abs(int(r["errors"]) - errors) <= border
        rate_ok = (r["rate"] == "") == (searches_ == 0)
        checked += 1
        borderline += border
        if not (ok and rate_ok):
            bad += 1
            print("MISMATCH", r, "numpy:", searches_, errors, "borderline", border)
    print(f"identify_check: {checked} rows recounted, {bad} mismatches, {borderline} borderline searches")
    return bad == 0 and checked > 0


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1]) else 1)

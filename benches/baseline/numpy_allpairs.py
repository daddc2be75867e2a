"""The way a researcher would bin all pairs in Python: numpy/OpenBLAS `X @ X.T` in row blocks, then
`np.bincount` per (group_a, group_b) cell over the upper triangle. Same synthetic setting as
`facebias bench` (n unit vectors, groups assigned round-robin, 65,536 bins over [-1, 1]).

Usage: python3 benches/baseline/numpy_allpairs.py [--n 20000] [--dim 128] [--groups 8] [--repeat 3] [--block 2048]
Prints the median seconds and pairs/s, and one JSON line.
"""
import argparse
import json
import statistics
import time

import numpy as np

BINS = 1 << 16


def allpairs_histograms(x, groups, block):
    """Histograms per unordered group pair, as a (groups·groups, BINS) array indexed lo·groups + hi."""
    n = x.shape[0]
    g = np.arange(n) % groups
    counts = np.zeros(groups * groups * BINS, dtype=np.int64)
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        s = x[r0:r1] @ x[r0:].T                      # scores of rows r0..r1 against columns r0..n
        bins = np.floor(s * (BINS // 2)).astype(np.int64) + BINS // 2
        np.clip(bins, 0, BINS - 1, out=bins)
        ga = g[r0:r1][:, None]
        gb = g[r0:][None, :]
        cell = np.minimum(ga, gb) * groups + np.maximum(ga, gb)
        upper = np.triu(np.ones((r1 - r0, n - r0), dtype=bool), k=1)   # each unordered pair once
        counts += np.bincount((cell * BINS + bins)[upper], minlength=groups * groups * BINS)
    return counts.reshape(groups * groups, BINS)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--groups", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--block", type=int, default=2048)
    a = p.parse_args()
    rng = np.random.default_rng(42)
    x = rng.random((a.n, a.dim), dtype=np.float32) - 0.5
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    times = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        cells = allpairs_histograms(x, a.groups, a.block)
        times.append(time.perf_counter() - t)
    pairs = a.n * (a.n - 1) // 2
    assert int(cells.sum()) == pairs
    med = statistics.median(times)
    print(f"numpy X@X.T blocks + bincount: n={a.n} d={a.dim} groups={a.groups}: runs {', '.join(f'{t:.2f}' for t in times)} s, "
          f"median {med:.3f} s = {pairs / med:.3e} pairs/s")
    print(json.dumps({"n": a.n, "dim": a.dim, "groups": a.groups, "median_seconds": med, "pairs_per_second": pairs / med, "seconds": times}))


if __name__ == "__main__":
    main()

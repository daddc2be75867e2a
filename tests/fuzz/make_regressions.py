"""Writes the hand-made regression inputs of tests/fuzz.rs (bodies without the sha256 trailer: the
*-body targets seal them before parsing). Run from the repository root: python3 tests/fuzz/make_regressions.py

- bootstrap-body/wrapped-pair-count.bin: a high-pair count of 0x199999999999999A, whose byte length
  (10 bytes a pair) wraps to 4 in 64-bit arithmetic; the reader once took 4 bytes and accepted the file
  with no pairs.
- comparisons-body/97-groups.bin: a header with 97 groups (a run makes at most 96) and all-empty
  histograms: 4,753 + 97 dense histograms of 512 KiB, 2.5 GB from a 60 KB file, before the reader
  refused group counts a run never makes.
"""
import json
import struct

out = "tests/fuzz/regressions/"

b = b"FBBOOT2\n" + struct.pack("<Q", 0) + struct.pack("<Q", 0x199999999999999A) + bytes(4) + struct.pack("<Q", 0)
open(out + "bootstrap-body/wrapped-pair-count.bin", "wb").write(b)

k = 97
cells = k * (k + 1) // 2
header = json.dumps({
    "attributes": ["g"],
    "combos": [[f"g{i}"] for i in range(k)],
    "shard": [0, 1],
    "fingerprint": "0" * 64,
    "kernel": "scalar",
}, separators=(",", ":")).encode()
c = b"FBCMP2\n" + struct.pack("<I", len(header)) + header
c += struct.pack(f"<{3 * k + cells}Q", *([1] * (3 * k + cells)))
c += struct.pack("<I", 0) * (cells + k)
open(out + "comparisons-body/97-groups.bin", "wb").write(c)

#!/usr/bin/env python3
"""Writes a synthetic `facebias embed` folder for memory and throughput measurements of the comparison
(`run --embeddings`): N unit vectors of dimension D (fixed seed), two images per subject, eight
sex x race groups, a manifest whose image paths are symbolic links to one real face (the unsharded run's
contact sheet reads a few of them), and a run.json whose model block is copied from a real embed
folder (TEMPLATE/run.json) with the spec's dim set to D.

    python3 benches/synthetic_embed_folder.py OUT N D TEMPLATE_EMBED_DIR FACE.jpg
"""
import hashlib
import json
import os
import sys

import numpy as np

out, n, d, template, face = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
os.makedirs(os.path.join(out, "images"), exist_ok=True)
emb_dir = os.path.join(out, "embed")
os.makedirs(emb_dir, exist_ok=True)
sexes, races = ["female", "male"], ["asian", "black", "indian", "white"]
rows = []
for i in range(n):
    s = i // 2
    g = s % 8
    rows.append((f"images/{i:07d}.jpg", f"s{s:07d}", sexes[g // 4], races[g % 4]))
manifest = "path,subject,sex,race\n" + "".join(f"{p},{s},{a},{b}\n" for p, s, a, b in rows)
with open(os.path.join(out, "manifest.csv"), "w") as f:
    f.write(manifest)
for p, *_ in rows:
    dst = os.path.join(out, p)
    if not os.path.exists(dst):
        os.symlink(os.path.abspath(face), dst)
with open(os.path.join(emb_dir, "samples.csv"), "w") as f:
    f.write("path,subject,sex,race,status,detail,embedding_row,face_score\n")
    f.write("".join(f"{p},{s},{a},{b},ok,,{i},0.9000\n" for i, (p, s, a, b) in enumerate(rows)))
x = np.random.default_rng(8280).standard_normal((n, d)).astype(np.float32)
x /= np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True).astype(np.float32)
header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {d}), }}"
pad = (64 - (10 + len(header) + 1) % 64) % 64
header = header + " " * pad + "\n"
with open(os.path.join(emb_dir, "embeddings.npy"), "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    f.write(x.astype("<f4").tobytes())
rec = json.load(open(os.path.join(template, "run.json")))
rec["model"]["spec"]["dim"] = d
rec["dataset"] = {
    "images": n,
    "manifest": os.path.join(out, "manifest.csv"),
    "manifest_sha256": hashlib.sha256(manifest.encode()).hexdigest(),
}
rec.update({"images": n, "enrolled": n, "samples": [0, n], "shard": [0, 1], "cache_hits": 0})
with open(os.path.join(emb_dir, "run.json"), "w") as f:
    json.dump(rec, f, indent=2)
print(f"wrote {emb_dir}: {n} x {d}")

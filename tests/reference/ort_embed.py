"""Reference embeddings from Python onnxruntime on the exact tensors facebias fed its model.

Usage: python3 tests/reference/ort_embed.py MODEL.onnx TENSORS.npy OUT.npy [size]

TENSORS.npy is facebias's `embed --dump-tensors` output: float32 [rows, 3*size*size], NCHW.
OUT.npy receives float32 [rows, dim], L2-normalised, computed one image at a time (the model's batch is 1).
The Rust test compares it with facebias's embeddings.npy (max abs difference <= 1e-4).
"""
import sys

import numpy as np
import onnxruntime as ort


def main():
    model, tensors, out = sys.argv[1:4]
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 112
    x = np.load(tensors).astype(np.float32)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    embs = []
    for row in x:
        e = sess.run(None, {name: row.reshape(1, 3, size, size)})[0].reshape(-1).astype(np.float64)
        embs.append(e / np.linalg.norm(e))
    np.save(out, np.asarray(embs, dtype=np.float32))


if __name__ == "__main__":
    main()

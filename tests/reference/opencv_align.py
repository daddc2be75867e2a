"""Reference aligned face crops: InsightFace's `norm_crop` pipeline with OpenCV, on given pixels.

Usage: python3 tests/reference/opencv_align.py JOBS.json RESULTS.json

JOBS.json is a list of jobs, each
    {"image": "face.npy", "landmarks": [[x, y] * 5], "template": [[x, y] * 5], "size": 112,
     "out": "crop.npy"}
where `image` is uint8 [h, w, 3] (an .npy, so that no image codec enters; any other file is read with
cv2.imread), `landmarks` are the 5 detected points in image pixels and `template` the 5 target points
in the size x size crop. For each job it fits the similarity as skimage's
`SimilarityTransform.estimate(landmarks, template)` does (Umeyama 1991, least squares with scale,
no reflection; the algorithm of skimage.transform._geometric._umeyama, re-implemented with numpy so
that scikit-image is not needed), warps with `cv2.warpAffine(img, M[:2], (size, size),
borderValue=0.0)` (INTER_LINEAR, BORDER_CONSTANT) and saves the crop to `out` as uint8
[size, size, 3], channels in the input's order. RESULTS.json receives, per job, the 2x3 matrix used and
OpenCV's version.

The Rust test tests/align_opencv.rs compares these crops with facebias's `align::warp`.
"""
import json
import sys

import numpy as np

try:
    import cv2
except ImportError as e:  # the Rust test turns this exit status into a failure naming the fix
    sys.stderr.write(f"opencv_align.py: cannot import cv2 ({e}); run `bash .ci/setup`\n")
    sys.exit(3)


def umeyama(src, dst):
    """skimage's _umeyama(src, dst, estimate_scale=True): the 3x3 similarity mapping src onto dst."""
    num, dim = src.shape
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_demean = src - src_mean
    dst_demean = dst - dst_mean
    a = dst_demean.T @ src_demean / num
    d = np.ones((dim,), dtype=np.float64)
    if np.linalg.det(a) < 0:
        d[dim - 1] = -1
    t = np.eye(dim + 1, dtype=np.float64)
    u, s, v = np.linalg.svd(a)
    rank = np.linalg.matrix_rank(a)
    if rank == 0:
        return np.nan * t
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(v) > 0:
            t[:dim, :dim] = u @ v
        else:
            keep = d[dim - 1]
            d[dim - 1] = -1
            t[:dim, :dim] = u @ np.diag(d) @ v
            d[dim - 1] = keep
    else:
        t[:dim, :dim] = u @ np.diag(d) @ v
    scale = 1.0 / src_demean.var(axis=0).sum() * (s @ d)
    t[:dim, dim] = dst_mean - scale * (t[:dim, :dim] @ src_mean.T)
    t[:dim, :dim] *= scale
    return t


def load(path):
    if path.endswith(".npy"):
        img = np.load(path)
    else:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"opencv_align.py: cannot read {path}")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise SystemExit(f"opencv_align.py: {path} is {img.dtype} {img.shape}, not uint8 [h, w, 3]")
    return np.ascontiguousarray(img)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    jobs_path, results_path = sys.argv[1:3]
    with open(jobs_path) as f:
        jobs = json.load(f)
    images = {}
    results = []
    for job in jobs:
        path = job["image"]
        if path not in images:
            images[path] = load(path)
        img = images[path]
        lmk = np.asarray(job["landmarks"], dtype=np.float64).reshape(5, 2)
        dst = np.asarray(job["template"], dtype=np.float64).reshape(5, 2)
        size = int(job["size"])
        m = umeyama(lmk, dst)[0:2, :]
        crop = cv2.warpAffine(img, m, (size, size), borderValue=0.0)
        np.save(job["out"], np.ascontiguousarray(crop, dtype=np.uint8))
        results.append({"out": job["out"], "matrix": m.tolist()})
    with open(results_path, "w") as f:
        json.dump({"opencv": cv2.__version__, "results": results}, f)


if __name__ == "__main__":
    main()

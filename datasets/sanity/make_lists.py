"""Writes the committed sanity sets of `facebias audit` / `inspect --probe` (`--sanity lfw|bfw`):
600 images each, 3 per subject, chosen by rule from the shared manifests so that anyone can rebuild
the same lists: python3 datasets/sanity/make_lists.py ../shared/datasets

- lfw.csv: the 901 LFW subjects with at least 3 images, sorted by name; 200 of them spread evenly
  (subject floor(i * 901 / 200) for i = 0..199); each subject's first 3 images by path.
- bfw.csv: each of BFW's 8 sex x race groups: its first 25 subjects by id; each one's first 3 images
  by path.
Paths are relative to the dataset folder (../shared/datasets/lfw or /bfw).
"""
import collections
import csv
import sys

root = sys.argv[1]


def rows(name):
    return list(csv.DictReader(open(f"{root}/{name}/manifest.csv", newline="")))


def write(name, picked):
    with open(f"datasets/sanity/{name}.csv", "w", newline="") as f:
        f.write("path,subject\n")
        for path, subject in picked:
            f.write(f"{path},{subject}\n")
    print(name, len(picked), "images", len({s for _, s in picked}), "subjects")


by_subject = collections.defaultdict(list)
for r in rows("lfw"):
    by_subject[r["subject"]].append(r["path"])
eligible = sorted(s for s, p in by_subject.items() if len(p) >= 3)
chosen = [eligible[i * len(eligible) // 200] for i in range(200)]
write("lfw", [(p, s) for s in chosen for p in sorted(by_subject[s])[:3]])

groups = collections.defaultdict(lambda: collections.defaultdict(list))
for r in rows("bfw"):
    groups[(r["sex"], r["race"])][r["subject"]].append(r["path"])
picked = []
for g in sorted(groups):
    for s in sorted(groups[g])[:25]:
        picked += [(p, s) for p in sorted(groups[g][s])[:3]]
write("bfw", picked)

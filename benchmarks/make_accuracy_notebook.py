"""Writes notebooks/accuracy_nwucla.ipynb (then run: jupyter nbconvert --to notebook --execute --inplace).

The notebook computes the NW-UCLA accuracy table from what ships: each model in ctrgcn/pretrained/
is loaded and evaluated on view 3; sizes, latency and float16 / int8 top-1 are measured there; the
training curves come from the committed logs. Models not trained yet show as such."""
import os

import nbformat as nbf

HERE = os.path.dirname(os.path.abspath(__file__))
cells = []


def md(text):
    cells.append(nbf.v4.new_markdown_cell(text.strip()))


def code(text):
    cells.append(nbf.v4.new_code_cell(text.strip()))


md("""
# NW-UCLA accuracy of the CTR-GCN family, from the shipped weights

Every number below is computed here: each model shipped in `ctrgcn/pretrained/` is loaded and evaluated on
NW-UCLA view 3 (464 clips, the official protocol: train on views 1 and 2). The models come from
`benchmarks/train_nwucla.sh`: the project's own trainer, the official CTR-GCN NW-UCLA recipe
(65 epochs, batch 16, SGD + Nesterov, lr 0.1 with 5 warm-up epochs, x0.1 at epoch 50, weight decay 1e-4, the
training list repeated 5 times), one run at a time on this machine's two cores; the rows marked *tuned* train
with the seed article's tuned recipe instead (warm-up cosine lr, mixup 0.2, label smoothing 0.1, weight decay
4e-4; 65 epochs, configs `nwucla_ctrgcn_light_joint_aug`, `nwucla_ctrgcn_lightv2_joint_aug` for the light
variants, `nwucla_ctrgcn_joint_aug`, `nwucla_ctrgcn_bone_aug`, `nwucla_ctrgcn_motion_aug` and
`nwucla_ctrgcn_bone_motion_aug` for CTRGCN's four streams).
The table's top-1 is the
**last epoch's** (no choosing by the validation view); the best epoch stands beside it, from the log.
Models whose run has not finished show as *not trained yet*, with their progress.
""")

code("""
import json, os, tempfile, time
import numpy as np
import ctrgcn
from ctrgcn import metrics
from ctrgcn.commands.evaluate import score
from ctrgcn.training.data import default_ucla_root

RESULTS = os.path.join("..", "benchmarks", "results")
RUNS = [  # name, variant, stream (modality)
    ("nwucla_ctrgcn_joint", "CTRGCN", "joint"),
    ("nwucla_ctrgcn_bone", "CTRGCN", "bone"),
    ("nwucla_ctrgcn_motion", "CTRGCN", "motion"),
    ("nwucla_ctrgcn_bone_motion", "CTRGCN", "bone_motion"),
    ("nwucla_ctrgcn_light_joint", "CTRGCN_light", "joint"),
    ("nwucla_ctrgcn_lightv1_joint", "CTRGCN_lightV1", "joint"),
    ("nwucla_ctrgcn_lightv2_joint", "CTRGCN_lightV2", "joint"),
    ("nwucla_ctrgcn_light_joint_aug", "CTRGCN_light", "joint"),
    ("nwucla_ctrgcn_lightv2_joint_aug", "CTRGCN_lightV2", "joint"),
    ("nwucla_ctrgcn_bone_motion_aug", "CTRGCN", "bone_motion"),
    ("nwucla_ctrgcn_bone_aug", "CTRGCN", "bone"),
    ("nwucla_ctrgcn_motion_aug", "CTRGCN", "motion"),
    ("nwucla_ctrgcn_joint_aug", "CTRGCN", "joint"),
]
def recipe(name):
    return "tuned" if name.endswith("_aug") else "official"

def log_of(name):
    \"\"\"Epoch records of a run: the finished run's log, else the in-progress one (if committed).\"\"\"
    for path in (os.path.join(RESULTS, "nwucla", name, "log.jsonl"), os.path.join(RESULTS, name, "log.jsonl")):
        if os.path.exists(path):
            with open(path) as f:
                recs = [json.loads(l) for l in f if l.strip()]
            return [r for r in recs if "val_acc" in r], [r for r in recs if "loss" in r]
    return [], []

shipped = set(ctrgcn.pretrained())
print("shipped:", ", ".join(sorted(shipped)) or "nothing yet")
print("OpenBLAS pinned by the environment:", os.environ.get("OPENBLAS_CORETYPE", "no"))
""")

code("""
root = default_ucla_root()
val = {m: ctrgcn.data.NWUCLA(root, split="val", modality=m) for m in sorted({r[2] for r in RUNS})}

def file_size(model, dtype):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m.ctrgcn")
        model.save(p, dtype=dtype)
        return os.path.getsize(p)

rows, scores = [], {}
for name, variant, stream in RUNS:
    epochs, _ = log_of(name)
    best = max(epochs, key=lambda r: r["val_acc"]) if epochs else None
    if name not in shipped:
        rows.append((variant, stream, recipe(name), None, None, None, None, None, None,
                     f"{best['val_acc'] * 100:.2f} (ep {best['epoch'] + 1})" if best else "-", None, None,
                     f"not trained yet ({len(epochs)} of 65 epochs)"))
        continue
    model = ctrgcn.pretrained(name)  # float16 as shipped, computed in float32
    s16, labels = score(model, val[stream])
    scores[name] = s16
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "m8.ctrgcn")
        model.save(p, dtype="int8")
        s8, _ = score(ctrgcn.load(p), val[stream])
    lat = ctrgcn.benchmark(model, batch_size=1, frames=52, warmup=10, repeats=30, threads=2,
                          min_seconds=1.0)["median_ms"]
    last = epochs[-1]["val_acc"] if epochs else None
    rows.append((variant, stream, recipe(name), model.num_parameters(),
                 file_size(model, "float32"), file_size(model, "float16"), file_size(model, "int8"), lat,
                 None if last is None else f"{last * 100:.2f}",
                 f"{best['val_acc'] * 100:.2f} (ep {best['epoch'] + 1})" if best else "-",
                 metrics.topk_accuracy(s16, labels) * 100, metrics.topk_accuracy(s8, labels) * 100, "shipped"))

hdr = ("variant", "stream", "recipe", "params", "f32 MB", "f16 MB", "int8 MB", "CPU ms (b1, 2 thr)", "top-1 last",
       "top-1 best (epoch)", "f16 top-1", "int8 top-1", "status")
print(" | ".join(hdr))
for r in rows:
    cells_ = []
    for i, v in enumerate(r):
        if v is None: cells_.append("-")
        elif i in (4, 5, 6): cells_.append(f"{v / 1e6:.2f}")
        elif i == 3: cells_.append(f"{v / 1e6:.3f} M")
        elif i == 7: cells_.append(f"{v:.1f}")
        elif i in (10, 11): cells_.append(f"{v:.2f}")
        else: cells_.append(str(v))
    print(" | ".join(cells_))
""")

md("""
The 4-stream ensemble (joint, bone, motion, bone-motion of CTRGCN): scores summed with equal weights, and with
weights chosen by a grid search on the **training views** (views 1 and 2, fixed frames, no augmentation), so
view 3 never picks them (when every weighting scores the same there, the search keeps the weights closest to
equal), and, for reference, with the fixed weights of the official repository's `ensemble.py`. The same fusion
from the command line:
`python -m ctrgcn eval --weights W --dataset nwucla --modality M --scores M.npz` per stream, then
`python -m ctrgcn ensemble joint.npz bone.npz motion.npz bone_motion.npz [--fit train_*.npz]`. The shipped
streams as one model: `ctrgcn.pretrained_ensemble()` (equal weights; `weights=[...]` for others), or
`python -m ctrgcn predict CLIP.json --ensemble`.
""")

code("""
streams = ["nwucla_ctrgcn_joint", "nwucla_ctrgcn_bone", "nwucla_ctrgcn_motion", "nwucla_ctrgcn_bone_motion"]
OFFICIAL_WEIGHTS = [0.6, 0.6, 0.4, 0.4]  # CTR-GCN's ensemble.py: joint, bone, joint motion, bone motion
if all(s in scores for s in streams):
    labels = val["joint"].labels
    eq = metrics.topk_accuracy(metrics.fuse([scores[s] for s in streams]), labels)
    train_scores = []
    for s, (_, _, m) in zip(streams, [r for r in RUNS if r[0] in streams]):
        ds = ctrgcn.data.NWUCLA(root, split="train", modality=m, augment=False)
        train_scores.append(score(ctrgcn.pretrained(s), ds)[0])
    w, train_acc = metrics.search_weights(train_scores, ds.labels)
    fit = metrics.topk_accuracy(metrics.fuse([scores[s] for s in streams], w), labels)
    official = metrics.topk_accuracy(metrics.fuse([scores[s] for s in streams], OFFICIAL_WEIGHTS), labels)
    print(f"4-stream ensemble, equal weights: {eq * 100:.2f}%")
    print(f"4-stream ensemble, weights {w} chosen on views 1-2 (train top-1 {train_acc * 100:.2f}%): {fit * 100:.2f}%")
    print(f"4-stream ensemble, the official repository's fixed weights {OFFICIAL_WEIGHTS}: {official * 100:.2f}%")
    for k in (2, 3):
        part = metrics.topk_accuracy(metrics.fuse([scores[s] for s in streams[:k]]), labels)
        print(f"{k}-stream ensemble ({', '.join(s.split('_', 2)[2] for s in streams[:k])}), equal weights: "
              f"{part * 100:.2f}%")
    # the same streams with some trained on the tuned recipe instead (the "_aug" runs), every choice
    from itertools import combinations
    for n in (3, 4):
        swaps = [s for s in streams[:n] if s + "_aug" in scores]
        for k in range(1, len(swaps) + 1):
            for chosen in combinations(swaps, k):
                tuned = [s + "_aug" if s in chosen else s for s in streams[:n]]
                acc = metrics.topk_accuracy(metrics.fuse([scores[s] for s in tuned]), labels)
                which = " and ".join(s.split("_", 2)[2] for s in chosen)
                print(f"{n}-stream ensemble with the tuned-recipe {which} stream{'s' if k > 1 else ''}, "
                      f"equal weights: {acc * 100:.2f}%")
else:
    have = [s for s in streams if s in scores]
    if len(have) >= 2:  # what the shipped streams give so far, equal weights (not the table's goal)
        part = metrics.topk_accuracy(metrics.fuse([scores[s] for s in have]), val["joint"].labels)
        print(f"{len(have)}-stream ensemble so far ({', '.join(s.split('_', 2)[2] for s in have)}), "
              f"equal weights: {part * 100:.2f}%")
    print("4-stream ensemble: waiting for", ", ".join(s for s in streams if s not in scores))
""")

md("## Training curves (from the logs)")

code("""
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
for name, variant, stream in RUNS:
    epochs, steps = log_of(name)
    if not epochs:
        continue
    label = f"{variant} {stream}" + (" (tuned)" if recipe(name) == "tuned" else "")
    a1.plot([r["epoch"] + 1 for r in epochs], [r["train_loss"] for r in epochs], "-", label=label)
    a2.plot([r["epoch"] + 1 for r in epochs], [r["val_acc"] * 100 for r in epochs], "o-", ms=3, label=label)
a1.set_xlabel("epoch"); a1.set_ylabel("training loss"); a1.set_yscale("log"); a1.grid(alpha=0.3)
a2.set_xlabel("epoch"); a2.set_ylabel("top-1 on view 3 (%)"); a2.grid(alpha=0.3); a2.legend(fontsize=8)
a2.axvline(50, color="k", lw=0.8, ls=":"); a1.axvline(50, color="k", lw=0.8, ls=":")
plt.tight_layout(); plt.savefig("accuracy_nwucla.png", dpi=90); plt.show()
for name, variant, stream in RUNS:
    epochs, _ = log_of(name)
    if epochs:
        print(f"{variant:>15} {stream:<12} {recipe(name):<8} {len(epochs):>2} epochs, last {epochs[-1]['val_acc'] * 100:.2f}%, "
              f"best {max(r['val_acc'] for r in epochs) * 100:.2f}%, {np.mean([r['train_samples_per_s'] for r in epochs]):.1f} samples/s")
""")

md("""
## Beside it: the seed's NTU RGB+D X-sub (joint) table

Reported by the seed article (PaddleVideo, not reproduced here: this machine holds five raw NTU files, not the
56,880 of NTU RGB+D 60):

| model | top-1 | inference model | GPU ms | CPU ms |
| --- | --- | --- | --- | --- |
| CTRGCN (official weights) | 89.93% | 14.5 MB | 31.4 | 302.6 |
| CTRGCN_light, official recipe | 89.31% | 9.7 MB | 23.7 | 188.5 |
| CTRGCN_light, tuned recipe | 90.95% | 9.7 MB | 23.7 | 188.5 |
| CTRGCN_lightV2, tuned recipe | 91.16% | 9.8 MB | 18.2 | 177.4 |
| CTRGCN_lightV2 + mutual learning | 91.19% | 9.8 MB | 18.2 | 177.4 |

The commands that reproduce it from the raw `.skeleton` files (about 60 GB prepared; days of training on a
CPU, hours on a GPU):

```bash
python -m ctrgcn prepare-ntu nturgb+d_skeletons/ data/ntu60 --benchmark ntu60 --workers 8
python -m ctrgcn train --config ntu60_xsub_ctrgcn_lightv2_joint_aug --set data_root=data/ntu60/xsub
python -m ctrgcn eval --weights runs/ntu60_xsub_ctrgcn_lightv2_joint_aug/last.ctrgcn --dataset ntu --data-root data/ntu60/xsub
```
""")

nb = nbf.v4.new_notebook()
nb["cells"] = cells
nb["metadata"]["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
out = os.path.join(HERE, "..", "notebooks", "accuracy_nwucla.ipynb")
nbf.write(nb, out)
print("wrote", os.path.normpath(out))

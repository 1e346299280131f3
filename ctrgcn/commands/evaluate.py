"""``python -m ctrgcn eval --weights W (--config C | --dataset nwucla --modality M)``: score a model.

Prints top-1 and top-5 accuracy, per-class accuracy and the confusion matrix of a split (default:
the validation split, NW-UCLA view 3 or NTU's val set) and, with ``--scores OUT.npz``, saves the
per-sample scores (``scores`` (n, classes) float32, ``labels``, ``names`` where the dataset has them)
for ``python -m ctrgcn ensemble``. Modality and data root come from the config when one is given."""
from __future__ import annotations

import argparse
import sys
from typing import IO, TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn._files import savez
from ctrgcn._types import F32Array, I64Array, PathLike

if TYPE_CHECKING:
    from ctrgcn.data import NTUDataset, NWUCLA
    from ctrgcn.data.loader import Dataset
    from ctrgcn.model import Model


def dataset_for(dataset: str, data_root: Optional[PathLike], modality: str, split: str,
                window: int = 64) -> Union[NWUCLA, NTUDataset]:
    """The evaluation dataset: fixed frames, no augmentation, whichever split is asked for."""
    from ctrgcn import InputError, data
    if dataset == "nwucla":
        from ctrgcn.training.data import default_ucla_root
        return data.NWUCLA(data_root or default_ucla_root(), split=split, modality=modality, augment=False)
    if dataset == "ntu":
        if not data_root:
            raise InputError("--data-root is needed for NTU: a prepared split folder or a CTR-GCN .npz")
        return data.NTUDataset(data_root, split=split, modality=modality, augment=False, window=window)
    raise InputError(f"dataset must be 'nwucla' or 'ntu', got {dataset!r}")


def score(model: Model, ds: Dataset, batch_size: int = 64) -> Tuple[F32Array, I64Array]:
    """(scores (n, classes) float32, labels (n,)) over the dataset in order."""
    from ctrgcn.training.data import batches
    out, labels = [], []
    for x, y in batches(ds, batch_size, shuffle=False, seed=0, drop_last=False):
        out.append(model(x))
        labels.append(y)
    if not out:
        return np.zeros((0, model.num_classes), np.float32), np.zeros(0, np.int64)
    return np.concatenate(out).astype(np.float32), np.concatenate(labels).astype(np.int64)


def report(scores: ArrayLike, labels: NDArray[np.integer[Any]], class_names: Optional[Sequence[str]] = None,
           out: Optional[IO[str]] = None) -> Dict[str, Any]:
    """Print top-1 / top-5, per-class accuracy and the confusion matrix; return the numbers."""
    out = sys.stdout if out is None else out
    from ctrgcn import metrics
    top1, top5 = metrics.topk_accuracy(scores, labels, 1), metrics.topk_accuracy(scores, labels, 5)
    conf = metrics.confusion_matrix(scores, labels)
    per_class = metrics.per_class_accuracy(conf)
    K = conf.shape[0]
    names = list(class_names) if class_names is not None and len(class_names) == K else [str(k) for k in range(K)]
    print(f"samples {len(labels)}  top-1 {100 * top1:.2f}%  top-5 {100 * top5:.2f}%", file=out)
    print("per-class accuracy:", file=out)
    for k in range(K):
        acc = "   n/a" if np.isnan(per_class[k]) else f"{100 * per_class[k]:6.2f}%"
        print(f"  {k:3d} {names[k][:28]:<28} {acc}  ({int(conf[k].sum())} samples)", file=out)
    width = max(4, len(str(int(conf.max()))) + 1 if conf.size else 4)
    print("confusion matrix (rows: true class, columns: predicted):", file=out)
    print("     " + "".join(f"{k:>{width}d}" for k in range(K)), file=out)
    for k in range(K):
        print(f"  {k:3d}" + "".join(f"{int(c):>{width}d}" for c in conf[k]), file=out)
    return {"top1": top1, "top5": top5, "per_class": per_class, "confusion": conf}


def main(argv: Optional[Sequence[str]]) -> int:
    """Score the model as the arguments say and print the report; the exit status (0)."""
    ap = argparse.ArgumentParser(prog="python -m ctrgcn eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="any weight file ctrgcn.load reads, or a shipped model's name")
    ap.add_argument("--config", help="a training config (bundled name or file): dataset, modality, data_root")
    ap.add_argument("--dataset", choices=["nwucla", "ntu"], help="without --config")
    ap.add_argument("--modality", default=None, help="joint, bone, motion or bone_motion (default: joint)")
    ap.add_argument("--data-root", default=None, help="NW-UCLA all_sqe folder, or prepared NTU data")
    ap.add_argument("--split", default="val", choices=["train", "val"],
                    help="val (default) or train, scored without augmentation")
    ap.add_argument("--scores", default=None, metavar="OUT.npz", help="save per-sample scores here")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)

    import ctrgcn
    from ctrgcn import InputError
    if args.config:
        from ctrgcn.commands.train import resolve
        from ctrgcn.training.config import load_config, merged_config
        cfg = merged_config(load_config(resolve(args.config)))
        dataset, modality = cfg["dataset"], args.modality or cfg["modality"]
        data_root, window = args.data_root or cfg["data_root"], int(cfg["window"])
    elif args.dataset:
        dataset, modality, data_root, window = args.dataset, args.modality or "joint", args.data_root, 64
    else:
        raise InputError("give --config or --dataset")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    model = ctrgcn.load(args.weights)
    ds = dataset_for(dataset, data_root, modality, args.split, window)
    scores, labels = score(model, ds, args.batch_size)
    if scores.shape[1] <= int(labels.max(initial=0)):
        raise InputError(f"the model has {scores.shape[1]} classes but the data has labels up to {labels.max()}")
    print(f"{args.weights}: {dataset} {args.split} split, {modality}")
    report(scores, labels, getattr(model, "classes", None))
    if args.scores:
        arrays: Dict[str, ArrayLike] = {"scores": scores, "labels": labels, "modality": np.array(modality),
                                        "dataset": np.array(dataset), "split": np.array(args.split)}
        if getattr(ds, "names", None) is not None:
            arrays["names"] = np.array(ds.names)
        savez(args.scores, arrays)
        print(f"scores saved to {args.scores}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m ctrgcn ensemble SCORES.npz... [--weights a,b,...] [--fit TRAIN_SCORES.npz...]``.

Fuses the per-sample scores that ``python -m ctrgcn eval --scores`` saved for several streams of
the same samples (joint, bone, motion, bone-motion): a weighted sum, equal weights by default.
``--fit`` chooses the weights instead, by a grid search on scores of the *training* split (one file
per stream, same order), so the validation split never picks them. Prints each stream's top-1 and
the fused top-1 / top-5."""
from __future__ import annotations

import argparse
import sys
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

from ctrgcn._types import I64Array, PathLike


def load_scores(path: PathLike) -> Tuple[NDArray[Any], I64Array, Optional[NDArray[Any]], str]:
    """(scores (n, classes), labels (n,), sample names or None, modality or "?") of a scores file
    that ``eval --scores`` wrote; a FileError when it cannot be read, an InputError when it is no
    scores file."""
    from ctrgcn import FileError, InputError
    try:
        with np.load(path, allow_pickle=False) as z:
            scores, labels = np.asarray(z["scores"]), np.asarray(z["labels"])
            names = np.asarray(z["names"]) if "names" in z.files else None
            modality = str(z["modality"]) if "modality" in z.files else "?"
    except (OSError, ValueError) as exc:
        raise FileError(f"cannot read scores from {path!r}: {exc}") from None
    except KeyError as exc:
        raise InputError(f"{path!r} is not a scores file (no {exc})") from None
    if scores.ndim != 2 or labels.shape != (len(scores),):
        raise InputError(f"{path!r}: scores must be (n, classes) with n labels")
    return scores, labels.astype(np.int64), names, modality


def load_streams(paths: Sequence[PathLike]) -> Tuple[List[NDArray[Any]], I64Array, List[str]]:
    """Scores of several streams over the same samples: their labels (and names) must agree."""
    from ctrgcn import InputError
    streams = [load_scores(p) for p in paths]
    _, labels, names, _ = streams[0]
    for p, (s, l, n, _) in zip(paths[1:], streams[1:]):
        if s.shape != streams[0][0].shape or not np.array_equal(l, labels):
            raise InputError(f"{p!r} does not score the same samples as {paths[0]!r}")
        if names is not None and n is not None and not np.array_equal(n, names):
            raise InputError(f"{p!r} lists its samples in another order than {paths[0]!r}")
    return [s for s, _, _, _ in streams], labels, [m for _, _, _, m in streams]


def main(argv: Optional[Sequence[str]]) -> int:
    """Fuse the score files the arguments name and print the accuracies; the exit status (0)."""
    ap = argparse.ArgumentParser(prog="python -m ctrgcn ensemble", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scores", nargs="+", help="score files of the streams (python -m ctrgcn eval --scores)")
    ap.add_argument("--weights", default=None, help="comma-separated fusion weights, one per stream")
    ap.add_argument("--fit", nargs="+", default=None, metavar="TRAIN_SCORES",
                    help="training-split score files, one per stream in the same order: choose the weights")
    ap.add_argument("--out", default=None, metavar="FUSED.npz", help="save the fused scores")
    args = ap.parse_args(argv)

    from ctrgcn import InputError, metrics
    scores, labels, modalities = load_streams(args.scores)
    weights = None
    if args.weights and args.fit:
        raise InputError("give --weights or --fit, not both")
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            raise InputError(f"--weights: expected numbers separated by commas, got {args.weights!r}") from None
    if args.fit:
        if len(args.fit) != len(args.scores):
            raise InputError(f"--fit needs one training score file per stream ({len(args.scores)})")
        train_scores, train_labels, _ = load_streams(args.fit)
        weights, train_acc = metrics.search_weights(train_scores, train_labels)
        assert weights is not None  # one or more streams on the default grid: weights were tried
        print(f"weights chosen on the training split: {', '.join(f'{w:g}' for w in weights)} "
              f"(train top-1 {100 * train_acc:.2f}%)")
    for path, s, m in zip(args.scores, scores, modalities):
        print(f"  {m:<12} top-1 {100 * metrics.topk_accuracy(s, labels):6.2f}%  {path}")
    fused = metrics.fuse(scores, weights)
    w = weights or [1.0] * len(scores)
    print(f"fused ({', '.join(f'{x:g}' for x in w)}): top-1 {100 * metrics.topk_accuracy(fused, labels):.2f}%  "
          f"top-5 {100 * metrics.topk_accuracy(fused, labels, 5):.2f}%  ({len(labels)} samples)")
    if args.out:
        np.savez(args.out, scores=fused.astype(np.float32), labels=labels, weights=np.array(w))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

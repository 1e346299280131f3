"""Classification metrics over per-sample scores, and score fusion across streams.

Scores are what the network returns (logits, one row per sample); every metric here depends only
on their order within a row, except fusion, which adds weighted rows as the CTR-GCN ensemble does."""
from __future__ import annotations

import itertools
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn._core import InputError
from ctrgcn._types import F32Array, F64Array, I64Array


def softmax(scores: ArrayLike) -> F32Array:
    """Row-wise softmax of (n, classes) scores, computed in float64, returned as float32."""
    s = np.asarray(scores).astype(np.float64)
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    probabilities: F32Array = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    return probabilities


def _check(scores: ArrayLike, labels: ArrayLike) -> Tuple[NDArray[Any], I64Array]:
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or labels.ndim != 1 or len(scores) != len(labels):
        raise InputError(f"scores must be (n, classes) and labels (n,); got {scores.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise InputError(f"labels must lie in [0, {scores.shape[1]})")
    return scores, labels.astype(np.int64)


def topk_accuracy(scores: ArrayLike, labels: ArrayLike, k: int = 1) -> float:
    """Fraction of samples whose label is among the k highest scores (ties: the first ones)."""
    scores, labels = _check(scores, labels)
    if not len(labels):
        return 0.0
    k = min(int(k), scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(scores: ArrayLike, labels: ArrayLike) -> I64Array:
    """counts[true, predicted] over the samples (argmax prediction)."""
    scores, labels = _check(scores, labels)
    K = scores.shape[1]
    counts = np.zeros((K, K), np.int64)
    np.add.at(counts, (labels, scores.argmax(axis=1)), 1)
    return counts


def per_class_accuracy(confusion: ArrayLike) -> F64Array:
    """Recall of each class (diagonal / row sum); NaN for a class with no samples."""
    confusion = np.asarray(confusion, np.float64)
    rows = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall: F64Array = np.where(rows > 0, np.diag(confusion) / np.maximum(rows, 1), np.nan)
    return recall


def fuse(score_list: Sequence[ArrayLike], weights: Optional[Sequence[float]] = None) -> F64Array:
    """Weighted sum of per-stream scores (each (n, classes), same samples in the same order)."""
    if not score_list:
        raise InputError("fuse: no scores given")
    first = np.asarray(score_list[0])
    w_list = [1.0] * len(score_list) if weights is None else [float(w) for w in weights]
    if len(w_list) != len(score_list):
        raise InputError(f"{len(w_list)} weights for {len(score_list)} score sets")
    out = np.zeros(first.shape, np.float64)
    for scores, w in zip(score_list, w_list):
        s = np.asarray(scores)
        if s.shape != first.shape:
            raise InputError(f"score sets differ in shape: {first.shape} and {s.shape}")
        out += w * s.astype(np.float64)
    return out


def search_weights(score_list: Sequence[ArrayLike], labels: ArrayLike,
                   grid: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)) -> Tuple[Optional[List[float]], float]:
    """Fusion weights maximising top-1 on the given (training) scores: a grid search over every
    stream's weight (all zero excluded); ties keep the weights closest to equal, then the first."""
    best, best_w = -1.0, None  # None only when no weights were tried (no streams, or a grid of zeros)
    for w in itertools.product(grid, repeat=len(score_list)):
        if not any(w):
            continue
        acc = topk_accuracy(fuse(score_list, w), labels)
        if acc > best + 1e-12 or (best_w is not None and abs(acc - best) <= 1e-12 and np.ptp(w) < np.ptp(best_w)):
            best, best_w = acc, [float(x) for x in w]
    return best_w, best

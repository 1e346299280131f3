"""Losses on soft targets: label smoothing, mixup and deep mutual learning's KL term."""
from __future__ import annotations

from typing import Tuple

import numpy as np
from numpy.typing import ArrayLike

from ctrgcn._core import InputError
from ctrgcn._types import F32Array, FloatArray, I64Array


def soft_targets(labels: ArrayLike, num_classes: int, smoothing: float = 0.0) -> F32Array:
    """One-hot rows, label-smoothed as PaddleVideo does: (1 - eps) * onehot + eps / K."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or (labels < 0).any() or (labels >= num_classes).any():
        raise InputError(f"labels must be a 1-D array of class indices in 0..{num_classes - 1}")
    t = np.zeros((labels.size, num_classes), np.float32)
    t[np.arange(labels.size), labels] = 1.0
    if smoothing:
        t = (1.0 - smoothing) * t + smoothing / num_classes
    return t.astype(np.float32)


def kl_toward(logits: FloatArray, peer_logits: FloatArray, temperature: float = 1.0) -> Tuple[float, F32Array]:
    """Deep mutual learning term: KL(softmax(peer/T) || softmax(logits/T)) * T^2 averaged over the
    batch, and its gradient with respect to ``logits`` (the peer is a fixed target)."""
    T = float(temperature)
    z = logits.astype(np.float64) / T
    zp = peer_logits.astype(np.float64) / T
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    logq = zp - zp.max(1, keepdims=True)
    logq -= np.log(np.exp(logq).sum(1, keepdims=True))
    q = np.exp(logq)
    n = logits.shape[0]
    loss = float((q * (logq - logp)).sum() / n * T * T)
    grad = (np.exp(logp) - q) * T / n
    return loss, grad.astype(np.float32)


def mixup(x: F32Array, labels: I64Array, num_classes: int, alpha: float, smoothing: float,
          rng: np.random.Generator) -> Tuple[F32Array, F32Array]:
    """Mix each sample with a partner of a random permutation: lam ~ Beta(alpha, alpha).
    The mixed loss lam*CE(y) + (1-lam)*CE(y_perm) is the CE against the mixed soft targets."""
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(labels))
    xm = (lam * x + (1.0 - lam) * x[perm]).astype(np.float32)
    t = lam * soft_targets(labels, num_classes, smoothing) + (1.0 - lam) * soft_targets(labels[perm], num_classes,
                                                                                        smoothing)
    return xm, t.astype(np.float32)



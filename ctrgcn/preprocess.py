"""Test-time preprocessing of one NTU sample: the valid-frame crop and the resize to a window."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn._core import InputError
from ctrgcn._types import F32Array


def valid_frames(sample: NDArray[np.number]) -> int:
    """Frames whose sum over C, V, M is non-zero, counted as the reference feeders count them."""
    return int(np.count_nonzero(sample.sum(axis=(0, 2, 3)) != 0))


def preprocess(sample: ArrayLike, window: int = 64, p: float = 0.95) -> F32Array:
    """Crop ``[bias, valid - bias)`` with ``bias = int((1 - p) * valid / 2)`` and resize that
    length to ``window`` frames by linear interpolation with half-pixel centres
    (``align_corners=False``). ``sample``: ``(C, T, V, M)``, zero-padded at the end."""
    x = np.asarray(sample)
    if x.ndim != 4:
        raise InputError(f"sample: expected (C, T, V, M), got shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise InputError(f"sample: expected real numbers, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise InputError("sample has non-finite values")
    if int(window) < 1:
        raise InputError(f"window must be >= 1, got {window}")
    if not 0 < p <= 1:
        raise InputError(f"p must be in (0, 1], got {p}")
    window = int(window)
    valid = valid_frames(x)
    if valid == 0:
        raise InputError("sample has no non-zero frame")
    bias = int((1 - p) * valid / 2)
    clip = x[:, bias:valid - bias]
    L = clip.shape[1]
    # half-pixel centres, as F.interpolate(mode='linear' / 'bilinear', align_corners=False)
    src = (np.arange(window, dtype=np.float64) + 0.5) * (L / window) - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), L - 1)
    i1 = np.minimum(i0 + 1, L - 1)
    w1 = (src - i0).astype(np.float32)[None, :, None, None]
    out = clip[:, i0] * (1 - w1) + clip[:, i1] * w1
    return np.ascontiguousarray(out, dtype=np.float32)

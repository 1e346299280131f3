"""Latency measurement of a model's forward pass."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Dict, List, Union

import numpy as np

from ctrgcn._core import InputError

if TYPE_CHECKING:
    from ctrgcn.model import Model


def benchmark(model: Model, batch_size: int = 1, frames: int = 64, warmup: int = 2, repeats: int = 10,
              threads: int = 0, seed: int = 0, min_seconds: float = 0.0) -> Dict[str, Union[int, float]]:
    """Time ``model(x)`` on random input ``(batch_size, C, frames, V, M)``.

    Returns a dict: ``median_ms``, ``p90_ms``, ``mean_ms``, ``min_ms``, ``samples_per_s`` (from the
    median), ``repeats`` and the settings. ``min_seconds`` keeps timing until that much time has
    passed, even beyond ``repeats``."""
    if batch_size < 1 or frames < 1 or repeats < 1 or warmup < 0:
        raise InputError("batch_size, frames and repeats must be >= 1, warmup >= 0")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, model.in_channels, frames, model.num_joints, model.num_person),
                            dtype=np.float32)
    model.set_threads(threads)
    for _ in range(warmup):
        model(x)
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    median = float(np.median(ms))
    return {
        "batch_size": batch_size, "frames": frames, "threads": threads, "repeats": len(times),
        "median_ms": median, "p90_ms": float(np.percentile(ms, 90)), "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()), "samples_per_s": batch_size / (median / 1e3),
    }

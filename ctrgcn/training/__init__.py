"""Training on the C core: the loop (``train``), losses, configs and data wiring.

The numerics (train-mode forward and backward, cross-entropy, SGD) run in C inside a training
session (``Model.trainer``); this package sequences them, draws the random numbers and writes files."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Tuple

from numpy.typing import ArrayLike

from ctrgcn._types import F32Array
from ctrgcn.training.config import DEFAULTS, load_config, lr_at, merged_config
from ctrgcn.training.data import batches, make_datasets
from ctrgcn.training.losses import kl_toward, mixup, soft_targets
from ctrgcn.training.loop import evaluate, train

if TYPE_CHECKING:
    from ctrgcn.model import Model


def gradients(model: Model, x: ArrayLike, y: ArrayLike,
              label_smoothing: float = 0.0) -> Tuple[float, Dict[str, F32Array]]:
    """Mean train-mode cross-entropy of a batch and the gradient of every learned tensor by name."""
    return model.gradients(x, y, label_smoothing)


__all__ = ["DEFAULTS", "batches", "evaluate", "gradients", "kl_toward", "load_config", "lr_at", "make_datasets",
           "merged_config", "mixup", "soft_targets", "train"]

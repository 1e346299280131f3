"""Training on the C core: the loop (``train``), losses, configs and data wiring.

The numerics (train-mode forward and backward, cross-entropy, SGD) run in C inside a training
session (``Model.trainer``); this package sequences them, draws the random numbers and writes files."""
from ctrgcn.training.config import DEFAULTS, load_config, lr_at, merged_config
from ctrgcn.training.data import batches, make_datasets
from ctrgcn.training.losses import kl_toward, mixup, soft_targets
from ctrgcn.training.loop import evaluate, train


def gradients(model, x, y, label_smoothing=0.0):
    """Mean train-mode cross-entropy of a batch and the gradient of every learned tensor by name."""
    return model.gradients(x, y, label_smoothing)


__all__ = ["DEFAULTS", "batches", "evaluate", "gradients", "kl_toward", "load_config", "lr_at", "make_datasets",
           "merged_config", "mixup", "soft_targets", "train"]

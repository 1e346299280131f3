"""Source names -> the project's names.

Official PyTorch, wrapped checkpoints and DataParallel: ``module.`` prefixes go. PaddleVideo:
``backbone.`` / ``head.`` prefixes go, BatchNorm ``_mean`` / ``_variance`` become ``running_mean`` /
``running_var``, and ``fc.weight`` (a Paddle Linear stores ``[in, out]``) is transposed."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

import numpy as np
from numpy.typing import NDArray

from ctrgcn._core import InputError

WRAPPER_KEYS = ("state_dict", "model", "weights", "model_state_dict", "model_state", "net")
DROPPED = ("num_batches_tracked", "StructuredToParameterName@@")
PREFIXES = ("module.", "backbone.", "head.")


def unwrap_checkpoint(obj: Any, what: str) -> dict[Any, Any]:
    """The dict of tensors inside a checkpoint: the object itself, or what it holds under one of the
    usual keys (``state_dict``, ``model``, ``weights``...)."""
    for _ in range(3):
        if not isinstance(obj, dict):
            raise InputError(f"{what}: holds a {type(obj).__name__}, not a dict of tensors")
        if any(isinstance(v, np.ndarray) for v in obj.values()):
            return obj
        inner = [obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)]
        if not inner:
            break
        obj = inner[0]
    raise InputError(f"{what}: no tensors found (looked at the top level and under "
                     f"{', '.join(WRAPPER_KEYS)})")


def normalise(state: Mapping[Any, Any], paddle_layout: bool = False,
              what: str = "weights") -> OrderedDict[str, NDArray[Any]]:
    """OrderedDict project name -> ndarray. ``paddle_layout``: the source stores Linear weights
    ``[in, out]``; otherwise ``fc.weight`` is transposed only when its shape shows it."""
    out: OrderedDict[str, NDArray[Any]] = OrderedDict()
    for key, value in state.items():
        if not isinstance(key, str):
            raise InputError(f"{what}: a tensor name that is not a string ({key!r})")
        name = key
        if name.rsplit(".", 1)[-1] in DROPPED or name in DROPPED:
            continue
        changed = True
        while changed:
            changed = False
            for prefix in PREFIXES:
                if name.startswith(prefix):
                    name, changed = name[len(prefix):], True
        if name.endswith("._mean"):
            name = name[: -len("_mean")] + "running_mean"
        elif name.endswith("._variance"):
            name = name[: -len("_variance")] + "running_var"
        if not isinstance(value, np.ndarray):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name.endswith("alpha"):
                value = np.array([value], dtype=np.float32)
            else:
                raise InputError(f"{what}: entry {key!r} is a {type(value).__name__}, not a tensor")
        if name in out:
            raise InputError(f"{what}: {key!r} and another entry both name {name!r}")
        out[name] = value
    fc, bias = out.get("fc.weight"), out.get("fc.bias")
    if fc is not None and fc.ndim == 2:
        transposed = paddle_layout
        if bias is not None and bias.ndim == 1 and fc.shape[0] != fc.shape[1]:
            transposed = fc.shape[1] == bias.shape[0]  # the shapes decide when they can
        if transposed:
            out["fc.weight"] = np.ascontiguousarray(fc.T)
    return out

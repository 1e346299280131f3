"""Small files: BatchNorm folding before float16 / int8 storage.

``fold_batchnorms`` moves every BatchNorm that directly follows a convolution into that
convolution, exactly: with ``s = gamma / sqrt(var + eps)`` the convolution's weight rows and bias
are multiplied by ``s`` and the BatchNorm becomes a pure shift: weight 1, bias ``beta - s * mean``,
mean 0 and variance ``IDENTITY_VAR``, the float32 nearest ``1 - eps``, whose
``1 / sqrt(var + eps)`` (computed in double, as the C core folds) is ``1 + 6.8e-9``: it changes no
float32 weight when the core folds it again. Which BatchNorms qualify (model-family.md):
``X.1`` after conv ``X.0`` (branch 1x1 convs, ``down``, fused ``conv_pw``, branch 3), ``X.bn``
after ``X.conv`` (dilated tconvs, residuals), and ``gcn1.bn``, which follows the sum over subsets
of per-channel aggregations and so folds into each subset's value convolution (``conv3``, or the
last ``3 * Cout`` rows of the fused ``conv1``). Not ``data_bn`` and not the BatchNorms after the
max-pool (``branches.2.4`` / fused ``branches.2.1``): nothing linear comes right before them.

Then the C writer stores the folded network (``ctrgcn_model_save_as``): float16 for every tensor,
or int8 with one scale per output channel for convolution weights and ``fc.weight``."""
from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Tuple

import numpy as np
from numpy.typing import NDArray

from ctrgcn._core import InputError
from ctrgcn._types import F32Array, F64Array, PathLike

if TYPE_CHECKING:
    from ctrgcn.model import Model

# project name -> array, as Model.state_dict gives it
State = Mapping[str, NDArray[Any]]

BN_EPS = 1e-5
IDENTITY_VAR = np.float32(1.0 - BN_EPS)
DTYPES = {"float32": 0, "float16": 1, "int8": 2}


def bn_scale_shift(state: State, bn: str) -> Tuple[F64Array, F64Array]:
    """float64 (s, h) of BatchNorm ``bn``: y = s * x + h."""
    g = state[bn + ".weight"].astype(np.float64)
    s = g / np.sqrt(state[bn + ".running_var"].astype(np.float64) + BN_EPS)
    return s, state[bn + ".bias"].astype(np.float64) - state[bn + ".running_mean"].astype(np.float64) * s


def _is_conv(state: State, prefix: str) -> bool:
    w = state.get(prefix + ".weight")
    return w is not None and w.ndim == 4


def conv_before(state: State, bn: str, layout_of_block: object = None) -> List[Tuple[str, int, Optional[int]]]:
    """[(conv prefix, first row, rows)] of the convolution(s) that BatchNorm ``bn`` directly follows;
    empty when it follows something else. ``rows`` None: all of them. (``layout_of_block`` is
    not used.)"""
    if bn.endswith(".gcn1.bn"):
        block = bn[: -len(".bn")]
        if _is_conv(state, block + ".convs.conv1"):
            rows = state[bn + ".weight"].shape[0]
            total = state[block + ".convs.conv1.weight"].shape[0]
            return [(block + ".convs.conv1", total - 3 * rows + i * rows, rows) for i in range(3)]
        return [(f"{block}.convs.{i}.conv3", 0, None) for i in range(3) if _is_conv(state, f"{block}.convs.{i}.conv3")]
    for bn_suffix, conv_suffix in ((".1", ".0"), (".bn", ".conv")):
        if bn.endswith(bn_suffix):
            conv = bn[: -len(bn_suffix)] + conv_suffix
            if _is_conv(state, conv):
                return [(conv, 0, None)]
    return []


def batchnorms(state: State) -> List[str]:
    """The BatchNorm prefixes of a state dict (those with a ``running_mean``), in its order."""
    return [k[: -len(".running_mean")] for k in state if k.endswith(".running_mean")]


def fold_batchnorms(state: State) -> OrderedDict[str, F32Array]:
    """A copy of ``state`` (project names, float32) with every foldable BatchNorm folded."""
    out = OrderedDict((k, np.array(v, dtype=np.float32)) for k, v in state.items())
    for bn in batchnorms(state):
        convs = conv_before(state, bn)
        if not convs:
            continue
        s, h = bn_scale_shift(state, bn)
        for conv, row0, rows in convs:
            rows = rows or state[conv + ".weight"].shape[0]
            if rows != s.shape[0]:
                raise InputError(f"{conv} has {rows} output rows, {bn} {s.shape[0]} channels")
            sl = slice(row0, row0 + rows)
            w = out[conv + ".weight"]
            w[sl] = (state[conv + ".weight"][sl].astype(np.float64) * s[:, None, None, None]).astype(np.float32)
            if conv + ".bias" in state:
                out[conv + ".bias"][sl] = (state[conv + ".bias"][sl].astype(np.float64) * s).astype(np.float32)
        out[bn + ".weight"] = np.ones_like(out[bn + ".weight"])
        out[bn + ".bias"] = h.astype(np.float32)
        out[bn + ".running_mean"] = np.zeros_like(out[bn + ".running_mean"])
        out[bn + ".running_var"] = np.full_like(out[bn + ".running_var"], IDENTITY_VAR)
    return out


def dtype_code(dtype: str) -> int:
    """The C writer's code of a storage dtype name (0 float32, 1 float16, 2 int8); an InputError
    for any other name."""
    try:
        return DTYPES[str(dtype)]
    except KeyError:
        raise InputError(f"dtype {dtype!r}: use 'float32', 'float16' or 'int8'") from None


def save(model: Model, path: PathLike, dtype: str = "float32", fold: bool = True) -> None:
    """Write ``model`` in the project's format with tensors stored as ``dtype``; float16 and int8
    store the BatchNorm-folded network (same function, fewer rounding steps) unless ``fold`` is
    False: the BatchNorms as trained, so that training can start from the file (folded, a
    BatchNorm's weight and running statistics no longer say what its batch statistics will be)."""
    code = dtype_code(dtype)
    if code == 0 or not fold:
        model.write_file(path, code)
        return
    from ctrgcn.model import Model
    folded = Model.from_spec(model.spec)
    folded.load_state_dict(fold_batchnorms(model.state_dict()))
    folded.classes = model.classes
    folded.write_file(path, code)


def looks_folded(state: State) -> bool:
    """Whether every foldable BatchNorm of ``state`` is as ``fold_batchnorms`` leaves it (weight 1,
    mean 0, variance ``IDENTITY_VAR`` or, stored as float16, 1): a file written folded, whose
    BatchNorms lost what training in batch statistics needs."""
    foldable = [bn for bn in batchnorms(state) if conv_before(state, bn)]
    return bool(foldable) and all(
        np.all(np.asarray(state[bn + ".weight"]) == 1) and np.all(np.asarray(state[bn + ".running_mean"]) == 0)
        and np.all(np.abs(np.asarray(state[bn + ".running_var"], np.float64) - 1.0) < 1e-3)  # float16 rounds it to 1
        for bn in foldable)

"""From a recording to what a model takes: the files ``predict`` reads and each graph's evaluation
preprocessing, shared by ``predict``, ``Stream`` and ``Ensemble``.

A recording is ``(T, M, V, C)`` float32: frames, persons, joints, channels. ``prepare`` turns it into
the model's input ``(C, T', V, M)`` by one of two evaluation transforms: "nwucla", the official NW-UCLA
feeder's (centre, per-axis min-max, 52 frames by linspace; ``ctrgcn.data.NWUCLA`` with split "val"),
or "crop", the fixed evaluation crop of NTU and ``Sequences`` (the middle 95% of the frames, resized
to ``window`` frames by linear interpolation; ``ctrgcn.preprocess``). "auto" picks "nwucla" for
NW-UCLA models (graph ``ucla``, one person) and "crop" for the others; a model trained with
``Sequences`` on NW-UCLA's layout wants "crop". Then the modality, and persons padded with zeros or
cut to the model's count."""
from __future__ import annotations

PREPROCESS = ("auto", "nwucla", "crop")
import os
import zipfile
from typing import TYPE_CHECKING, Any, Dict, List, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn import _core
from ctrgcn._core import FileError, InputError
from ctrgcn._types import F32Array, I64Array, PathLike
from ctrgcn.data.modalities import check_modality
from ctrgcn.skeletons import GRAPHS, Graph, parents_from_edges

if TYPE_CHECKING:
    from ctrgcn.model import Model

UCLA_STEPS = 52
WINDOW = 64
TEST_P = 0.95
ARRAY_KEYS = ("x", "data", "skeleton", "joints")


def to_tmvc(arr: ArrayLike, channels: int, joints: int, what: str = "input") -> F32Array:
    """An array of (T, V, C), (T, M, V, C) or (C, T, V, M) as float32 (T, M, V, C); ``channels`` and
    ``joints`` are what the model takes (they tell the two 4-D layouts apart)."""
    a = np.asarray(arr)
    if a.dtype.kind not in "fiu":
        raise InputError(f"{what}: expected numbers, got dtype {a.dtype}")
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4:
        tmvc = a.shape[2] == joints and a.shape[3] == channels
        ctvm = a.shape[0] == channels and a.shape[2] == joints
        if ctvm:  # the model's own layout wins when both read
            a = a.transpose(1, 3, 2, 0)
        elif not tmvc and a.shape[2] != joints:
            raise InputError(f"{what}: {a.shape[2]} joints in shape {a.shape}; the model takes {joints} joints")
        elif not tmvc:
            raise InputError(f"{what}: shape {a.shape} is neither (T, M, V, C) nor (C, T, V, M) with "
                             f"C = {channels} channels and V = {joints} joints")
    else:
        raise InputError(f"{what}: expected (T, V, C), (T, M, V, C) or (C, T, V, M), got shape {a.shape}")
    if a.shape[2] != joints:
        raise InputError(f"{what}: {a.shape[2]} joints; the model takes {joints} joints")
    if a.shape[3] != channels:
        raise InputError(f"{what}: {a.shape[3]} channels per joint; the model takes {channels}")
    if a.shape[0] < 1:
        raise InputError(f"{what}: zero frames")
    a = np.ascontiguousarray(a, np.float32)
    if not np.isfinite(a).all():
        raise InputError(f"{what}: non-finite values")
    return a


def model_graph(model: Model) -> Union[Graph, List[Tuple[int, int]]]:
    """The model's built-in ``Graph``, or its edge list when it has a custom one."""
    spec = model.spec
    return GRAPHS.get(spec.get("graph")) or spec["edges"]


def model_parents(model: Model) -> I64Array:
    """parent[v] of the model's graph (the bones of a built-in graph, else its edge list)."""
    g = model_graph(model)
    return g.parents() if not isinstance(g, list) else parents_from_edges(g, model.num_joints)


def prepare(model: Model, tmvc: ArrayLike, modality: str = "joint", window: int = WINDOW,
            preprocess: str = "auto") -> F32Array:
    """(C, T', V, M) float32 for ``model`` from a (T, M, V, C) recording (see the module docstring)."""
    code = check_modality(modality)
    if preprocess not in PREPROCESS:
        raise InputError(f"preprocess must be one of {', '.join(PREPROCESS)}, got {preprocess!r}")
    ucla_shaped = model.num_joints == 20 and model.in_channels == 3 and model.num_person == 1
    if preprocess == "auto":
        preprocess = "nwucla" if model.spec["graph"] == "ucla" and ucla_shaped else "crop"
    if preprocess == "nwucla" and not ucla_shaped:
        raise InputError(f"the NW-UCLA preprocessing takes one person of 20 joints x 3 coordinates; the model takes "
                         f"{model.num_person} x {model.num_joints} x {model.in_channels}")
    x = np.asarray(tmvc, np.float32)
    M = model.num_person
    if x.shape[1] < M:
        x = np.concatenate([x, np.zeros((x.shape[0], M - x.shape[1]) + x.shape[2:], np.float32)], axis=1)
    x = x[:, :M]
    nonzero = np.flatnonzero(np.abs(x).reshape(len(x), -1).sum(axis=1) > 0)
    if len(nonzero) == 0:
        raise InputError("the recording holds no non-zero frame")
    x = np.ascontiguousarray(x[: nonzero[-1] + 1])  # zero padding at the end is no motion
    if preprocess == "nwucla":
        seq = np.ascontiguousarray(x[:, 0], np.float64)
        one = np.zeros(1, np.int64)
        out = _core.data_ucla_batch(seq, one, np.array([len(seq)], np.int64), one, False, 0, code, UCLA_STEPS)
        sample: F32Array = out[0]
        return sample
    needs_parents = modality in ("bone", "bone_motion")
    out = _core.data_seq_batch(x, np.zeros(1, np.int64), np.array([len(x)], np.int64), np.zeros(1, np.int64), 0,
                               False, int(window), 1.0, 1.0, TEST_P, int(window), 0.0, modality,
                               model_parents(model) if needs_parents else None)
    sample = out[0]
    return sample


def _read_npz(path: PathLike) -> Dict[str, NDArray[Any]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise InputError(f"{path!r}: not a readable .npz archive ({exc})") from None


def read_recordings(path: PathLike) -> List[Tuple[str, NDArray[Any]]]:
    """[(label, array)] from one input file (``to_tmvc`` puts each into the model's terms): an NTU
    RGB+D ``.skeleton`` (parsed, denoised and translated as the reference scripts do), an NW-UCLA
    ``.json``, a ``.npy`` of one recording, or a ``.npz`` holding one array (``x`` / ``data`` / its only array) or sequences in
    the ``Sequences`` file form (one recording per sequence, labelled ``path:name``)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileError(f"cannot open {path!r}: no such file")
    low = path.lower()
    if low.endswith(".skeleton"):
        from ctrgcn.data.ntu import prepare_sample
        aligned = prepare_sample(path).aligned
        return [(path, aligned.reshape(len(aligned), -1, 25, 3))]
    if low.endswith(".json"):
        from ctrgcn.data.ucla import load_sequence
        seq, _ = load_sequence(path)
        return [(path, seq)]
    if low.endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise InputError(f"{path!r}: not a readable .npy array ({exc})") from None
        return [(path, arr)]
    if low.endswith(".npz"):
        z = _read_npz(path)
        if "frames" in z and "offsets" in z:
            from ctrgcn.data.sequences import read_sequences_npz
            seqs = read_sequences_npz(path, z)
            return [(f"{path}:{name}", x) for name, x in zip(seqs["names"], seqs["sequences"])]
        key = next((k for k in ARRAY_KEYS if k in z), None) or (next(iter(z)) if len(z) == 1 else None)
        if key is None:
            raise InputError(f"{path!r}: expected one array (or one named {' / '.join(ARRAY_KEYS)}), "
                             f"found {', '.join(z) or 'none'}")
        return [(path, z[key])]
    raise InputError(f"{path!r}: unknown input type (expected .skeleton, .json, .npy or .npz)")

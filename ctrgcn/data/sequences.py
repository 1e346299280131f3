"""Your own recordings as a dataset: ``Sequences`` over arrays of different lengths, and its file form.

The file form is an ``.npz`` holding ``frames`` float32 (F, M, V, C), ``offsets`` int64 (n + 1) —
sequence i is ``frames[offsets[i]:offsets[i + 1]]`` — ``labels`` int64 (n), and optionally ``names``
(n), ``classes`` (K), ``edges`` int64 (E, 2) (0-based inward pairs: child, parent) and ``split`` (n) of
"train" / "val". ``write_npz`` writes one.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, TypedDict, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn import _core
from ctrgcn._core import FileError, InputError
from ctrgcn._files import savez
from ctrgcn._types import F32Array, I64Array, PathLike
from ctrgcn.data._base import BatchedDataset
from ctrgcn.data.modalities import check_modality, parents_of
from ctrgcn.skeletons import GRAPHS, Graph, GraphLike

ROTATION = 0.3  # radians per axis, as the NTU training augmentation draws them
P_INTERVAL = (0.5, 1.0)
TEST_P = 0.95

_S = TypeVar("_S", bound="Sequences")
# a graph as Sequences keeps it: a built-in name, or an edge list of (child, parent) pairs
GraphRef = Union[str, List[List[int]]]


class SequencesFile(TypedDict):
    """The checked contents of a sequences file, as ``read_sequences_npz`` returns them."""
    sequences: List[F32Array]
    labels: I64Array
    names: List[str]
    classes: Optional[List[str]]
    edges: Optional[I64Array]
    split: Optional[NDArray[np.str_]]


class ModelArgs(TypedDict):
    """Keyword arguments of a ``ctrgcn.Model`` that a dataset decides (``Sequences.model_args``)."""
    num_classes: int
    graph: GraphRef
    num_person: int
    in_channels: int


def _as_tmvc(seq: ArrayLike, i: int) -> NDArray[Any]:
    a = np.asarray(seq)
    if a.dtype.kind not in "fiu":
        raise InputError(f"sequence {i}: expected numbers, got dtype {a.dtype}")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise InputError(f"sequence {i}: expected (T, V, C) or (T, M, V, C), got shape {a.shape}")
    if a.shape[0] < 1:
        raise InputError(f"sequence {i}: zero frames")
    if not np.isfinite(a).all():
        raise InputError(f"sequence {i}: non-finite values")
    return a


def graph_of(graph: Optional[GraphLike], V: int) -> Tuple[GraphRef, Optional[Graph]]:
    """A built-in name, a ``Graph`` or (child, parent) edges -> (name or edge list, Graph or None),
    checked against V joints. An edge list equal to a built-in graph's bones becomes its name."""
    if isinstance(graph, str):
        if graph not in GRAPHS:
            raise InputError(f"unknown graph {graph!r}; built in: {', '.join(GRAPHS)} (or a list of (i, j) edges)")
        graph = GRAPHS[graph]
    if isinstance(graph, Graph):
        if graph.num_joints != V:
            raise InputError(f"graph {graph.name!r} has {graph.num_joints} joints, the sequences {V}")
        return graph.name, graph
    edges = np.asarray(graph, dtype=np.int64).reshape(-1, 2) if graph is not None else None
    if edges is None:
        found = [g for g in GRAPHS.values() if g.num_joints == V]
        if not found:
            raise InputError(f"no built-in graph has {V} joints: give graph= (an edge list)")
        return found[0].name, found[0]
    if edges.size and (edges.min() < 0 or edges.max() >= V):
        raise InputError(f"graph: edges must join joints 0..{V - 1}")
    for g in GRAPHS.values():
        if g.num_joints == V and sorted(map(tuple, edges.tolist())) == sorted(g.bones):
            return g.name, g
    return edges.tolist(), None


class Sequences(BatchedDataset):
    """A dataset over a list of recordings of different lengths, each (T_i, V, C) or (T_i, M, V, C).

    ``ds[i]`` -> (x (C, window, V, M) float32, label). Training (``train=True``) draws the NTU
    recipe's crop: a random ratio in ``p_interval`` of the frames (at least ``window`` or all),
    resized to ``window`` frames, then a rotation by up to ``rotation`` radians about each axis (3-D
    layouts only: by default 0.3 when C is 3 and the graph is not a planar pose-estimator layout);
    evaluation keeps the middle 95% of the frames, resized. Then the modality, in C. Fewer persons
    than the most in any sequence are padded with zeros. Randomness is a function of (seed, epoch, index).
    ``graph``: a built-in name (``ctrgcn.graphs``), a ``Graph`` or (child, parent) edges; by default
    the built-in graph with V joints. ``graph``, ``num_person``, ``in_channels`` and ``classes`` are
    what a model for this data needs (``model_args()``)."""

    def __init__(self, sequences: Iterable[ArrayLike], labels: ArrayLike, graph: Optional[GraphLike] = None,
                 window: int = 64, train: bool = False, modality: str = "joint",
                 names: Optional[Iterable[object]] = None, classes: Optional[Iterable[object]] = None,
                 p_interval: Sequence[float] = P_INTERVAL, rotation: Optional[float] = None, seed: int = 0) -> None:
        seqs = [_as_tmvc(s, i) for i, s in enumerate(sequences)]
        if not seqs:
            raise InputError("Sequences: no sequences")
        V, C = seqs[0].shape[2:]
        for i, s in enumerate(seqs):
            if s.shape[2:] != (V, C):
                raise InputError(f"sequence {i}: {s.shape[2]} joints x {s.shape[3]} channels, sequence 0 has {V} x {C}")
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self.labels) != len(seqs):
            raise InputError(f"{len(seqs)} sequences but {len(self.labels)} labels")
        if self.labels.min() < 0:
            raise InputError("labels must be >= 0")
        self.classes = None if classes is None else [str(c) for c in classes]
        if self.classes is not None and self.labels.max() >= len(self.classes):
            raise InputError(f"label {int(self.labels.max())} but only {len(self.classes)} classes")
        self.names = [str(n) for n in names] if names is not None else [str(i) for i in range(len(seqs))]
        if len(self.names) != len(seqs):
            raise InputError(f"{len(seqs)} sequences but {len(self.names)} names")
        self.graph, self._graph = graph_of(graph, V)
        self.window, self.train, self.modality, self.seed, self.epoch = int(window), bool(train), modality, int(seed), 0
        if self.window < 1:
            raise InputError(f"window must be >= 1, got {window}")
        self._modality = check_modality(modality)
        self.p_interval = (float(p_interval[0]), float(p_interval[-1]))
        if not 0 < self.p_interval[0] <= self.p_interval[1] <= 1:
            raise InputError(f"p_interval must lie in (0, 1], got {p_interval}")
        planar = self._graph is not None and self._graph.planar
        self.rotation = (ROTATION if C == 3 and not planar else 0.0) if rotation is None else float(rotation)
        if self.rotation and C != 3:
            raise InputError(f"rotation needs 3-D joints (C = 3), the sequences have C = {C}")
        M = max(s.shape[1] for s in seqs)
        self.num_joints, self.num_person, self.in_channels = int(V), int(M), int(C)
        self._lengths = np.array([len(s) for s in seqs], np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self._lengths)[:-1]]).astype(np.int64)
        pool = np.zeros((int(self._lengths.sum()), M, V, C), np.float32)
        for off, s in zip(self._offsets, seqs):
            pool[off:off + len(s), :s.shape[1]] = s
        self._pool = pool
        self._parents = parents_of(self._graph if self._graph is not None else self.graph, V)

    @classmethod
    def from_npz(cls: Type[_S], path: PathLike, split: Optional[str] = None, window: int = 64,
                 train: Optional[bool] = None, modality: str = "joint", **kwargs: Any) -> _S:
        """The sequences of a file (see the module docstring), those of ``split`` ("train" / "val")
        when given; ``train=None`` augments when split is "train"."""
        f = read_sequences_npz(path)
        keep = np.arange(len(f["labels"]))
        if split is not None:
            if f["split"] is None:
                raise InputError(f"{os.fspath(path)!r} has no 'split' array, so split={split!r} selects nothing")
            keep = np.flatnonzero(f["split"] == split)
            if not len(keep):
                raise InputError(f"{os.fspath(path)!r} holds no sequence of split {split!r}")
        train = (split == "train") if train is None else train
        graph = kwargs.pop("graph", f["edges"] if f["edges"] is not None else None)
        classes = kwargs.pop("classes", f["classes"])
        return cls([f["sequences"][i] for i in keep], f["labels"][keep], graph=graph, window=window, train=train,
                   modality=modality, names=[f["names"][i] for i in keep], classes=classes, **kwargs)

    def model_args(self) -> ModelArgs:
        """Keyword arguments of a ``ctrgcn.Model`` for this data (variant and seed aside)."""
        K = len(self.classes) if self.classes is not None else int(self.labels.max()) + 1
        return dict(num_classes=K, graph=self.graph, num_person=self.num_person, in_channels=self.in_channels)

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: ArrayLike, epoch: Optional[int] = None) -> Tuple[F32Array, I64Array]:
        """(x (B, C, window, V, M) float32, y (B,) int64), assembled in C over threads."""
        idx = self._checked_indices(indices)
        seed = self._seed(epoch)
        parents = self._parents if self.modality in ("bone", "bone_motion") else None
        x = _core.data_seq_batch(self._pool, self._offsets, self._lengths, idx, seed, self.train, self.window,
                                 self.p_interval[0], self.p_interval[1], TEST_P, self.window,
                                 self.rotation if self.train else 0.0, self.modality, parents)
        return x, self.labels[idx]


def _strings(z: Mapping[str, NDArray[Any]], key: str, n: Optional[int], path: str) -> Optional[List[str]]:
    if key not in z:
        return None
    a = z[key]
    if a.dtype.kind not in "US" or a.ndim != 1 or (n is not None and len(a) != n):
        raise InputError(f"{path!r}: '{key}' must be {n if n is not None else 'a list of'} strings, "
                         f"got {a.dtype} of shape {a.shape}")
    return [x.decode() if isinstance(x, bytes) else str(x) for x in a]


def read_sequences_npz(path: PathLike, z: Optional[Mapping[str, NDArray[Any]]] = None) -> SequencesFile:
    """The checked contents of a sequences file: dict of sequences (list of (T_i, M, V, C) float32),
    labels, names, classes (or None), edges (or None), split (array of str, or None)."""
    path = os.fspath(path)
    if z is None:
        if not os.path.exists(path):
            raise FileError(f"cannot open {path!r}: no such file")
        from ctrgcn.inputs import _read_npz
        z = _read_npz(path)
    for key in ("frames", "offsets", "labels"):
        if key not in z:
            raise InputError(f"{path!r}: no '{key}' array (a sequences file holds frames, offsets and labels)")
    frames, offsets, labels = z["frames"], z["offsets"], z["labels"]
    if frames.ndim != 4 or frames.dtype.kind != "f":
        raise InputError(f"{path!r}: 'frames' must be float (F, M, V, C), got {frames.dtype} {frames.shape}")
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu" or len(offsets) < 2:
        raise InputError(f"{path!r}: 'offsets' must be n + 1 integers, got {offsets.dtype} {offsets.shape}")
    n = len(offsets) - 1
    if offsets[0] != 0 or offsets[-1] != len(frames) or (np.diff(offsets) < 1).any():
        raise InputError(f"{path!r}: 'offsets' must rise from 0 to {len(frames)} (the frame count) by at least 1")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != n:
        raise InputError(f"{path!r}: 'labels' must be {n} integers, got {labels.dtype} {labels.shape}")
    if (labels < 0).any():
        raise InputError(f"{path!r}: labels must be >= 0")
    if not np.isfinite(frames).all():
        raise InputError(f"{path!r}: 'frames' holds non-finite values")
    classes = _strings(z, "classes", None, path)
    if classes is not None and labels.max() >= len(classes):
        raise InputError(f"{path!r}: label {int(labels.max())} but {len(classes)} classes")
    edges = None
    if "edges" in z:
        edges = z["edges"]
        if edges.dtype.kind not in "iu" or (edges.size and (edges.ndim != 2 or edges.shape[1] != 2)):
            raise InputError(f"{path!r}: 'edges' must be int (E, 2), got {edges.dtype} {edges.shape}")
        edges = edges.reshape(-1, 2).astype(np.int64)
    split_names = _strings(z, "split", n, path)
    split = None
    if split_names is not None:
        bad = sorted(set(split_names) - {"train", "val"})
        if bad:
            raise InputError(f"{path!r}: 'split' holds {bad[0]!r}; expected 'train' or 'val'")
        split = np.array(split_names)
    names = _strings(z, "names", n, path) or [str(i) for i in range(n)]
    frames = np.ascontiguousarray(frames, np.float32)
    return dict(sequences=[frames[offsets[i]:offsets[i + 1]] for i in range(n)], labels=labels.astype(np.int64),
                names=names, classes=classes, edges=edges, split=split)


def write_npz(path: PathLike, sequences: Iterable[ArrayLike], labels: ArrayLike,
              names: Optional[Iterable[object]] = None, classes: Optional[Iterable[object]] = None,
              edges: Optional[ArrayLike] = None, split: Optional[Iterable[object]] = None) -> None:
    """Write sequences (each (T_i, V, C) or (T_i, M, V, C)) in the file form ``from_npz`` reads."""
    seqs = [_as_tmvc(s, i) for i, s in enumerate(sequences)]
    M = max(s.shape[1] for s in seqs)
    frames = np.concatenate([np.pad(s, ((0, 0), (0, M - s.shape[1]), (0, 0), (0, 0))) for s in seqs]).astype(np.float32)
    out: Dict[str, NDArray[Any]] = dict(
        frames=frames, offsets=np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64),
        labels=np.asarray(labels, np.int64))
    for key, value in (("names", names), ("classes", classes), ("split", split)):
        if value is not None:
            out[key] = np.array([str(v) for v in value])
    if edges is not None:
        out["edges"] = np.asarray(edges, np.int64).reshape(-1, 2)
    savez(path, out)

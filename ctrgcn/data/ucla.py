"""NW-UCLA (all_sqe/*.json) with the official CTR-GCN feeder's protocol; samples are made in C."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from ctrgcn.data._base import BatchedDataset
from ctrgcn import _core
from ctrgcn.classes import NWUCLA_CLASSES
from ctrgcn._core import FileError, InputError
from ctrgcn._types import F32Array, F64Array, I64Array, PathLike
from ctrgcn.data.modalities import check_modality

NAME_RE = re.compile(r"^a(\d+)_s(\d+)_e(\d+)_v(\d+)$")
VIEWS = {"train": (1, 2), "val": (3,)}
NUM_CLASSES = 10
TIME_STEPS = 52


def load_sequence(path: PathLike) -> Tuple[F64Array, int]:
    """(skeletons (T, 20, 3) float64, label 0..9) of one all_sqe JSON file, checked."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise FileError(f"cannot read '{path}': {exc.strerror}") from None
    if not text.strip():
        raise InputError(f"file '{path}': empty file")
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"file '{path}': malformed JSON ({exc})") from None
    if not isinstance(obj, dict) or "skeletons" not in obj or "label" not in obj:
        raise InputError(f"file '{path}': expected an object with 'skeletons' and 'label'")
    label = obj["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= NUM_CLASSES:
        raise InputError(f"file '{path}': label must be an integer 1..{NUM_CLASSES}, got {label!r}")
    try:
        x = np.array(obj["skeletons"], dtype=np.float64)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise InputError(f"file '{path}': 'skeletons' is not a (frames, 20, 3) array of numbers") from None
    if x.ndim == 1 and x.size == 0:
        raise InputError(f"file '{path}': zero frames")
    if x.ndim != 3 or x.shape[1:] != (20, 3):
        raise InputError(f"file '{path}': 'skeletons' must be (frames, 20, 3), got shape {x.shape}")
    if len(x) == 0:
        raise InputError(f"file '{path}': zero frames")
    if not np.isfinite(x).all():
        raise InputError(f"file '{path}': non-finite coordinates")
    return x, label - 1


class NWUCLA(BatchedDataset):
    """NW-UCLA, official protocol: train = views 1 and 2 (1020 samples), val = view 3 (464).

    ``ds[i]`` -> (x (3, 52, 20, 1) float32, label 0..9); ``ds.names[i % n]`` is the file of item i
    (names sorted). Centred on joint 2 of frame 0; each axis min-max scaled to [-1, 1] over the
    sequence (a flat axis gives 0); 52 frames (train: sorted random draw from the frame list
    repeated 100 times; val: linspace). Training also rotates about x and y by integer degrees in
    [-60, 60] and scales by [0.5, 1.5] before the scaling. Randomness: a function of
    (seed, epoch, index). ``repeat`` repeats the list (len = n * repeat). ``augment`` (default: the
    split is "train") chooses the training draw and rotation or the fixed evaluation frames, so the
    training views can also be scored as the validation view is."""

    def __init__(self, root: PathLike, split: str = "train", modality: str = "joint", repeat: int = 1, seed: int = 0,
                 augment: Optional[bool] = None) -> None:
        if split not in VIEWS:
            raise InputError(f"split must be 'train' or 'val', got {split!r}")
        if int(repeat) < 1:
            raise InputError(f"repeat must be >= 1, got {repeat}")
        root = Path(root)
        if (root / "all_sqe").is_dir():
            root = root / "all_sqe"
        if not root.is_dir():
            raise FileError(f"no such folder: '{root}'")
        self.split, self.modality, self.repeat, self.seed, self.epoch = split, modality, int(repeat), int(seed), 0
        self.augment = (split == "train") if augment is None else bool(augment)
        self._modality = check_modality(modality)
        files = [p for p in sorted(root.glob("*.json"))
                 if (m := NAME_RE.match(p.stem)) and int(m.group(4)) in VIEWS[split]]
        if not files:
            raise FileError(f"'{root}' holds no NW-UCLA files of views {VIEWS[split]}")
        seqs: List[F64Array] = []
        labels: List[int] = []
        for p in files:
            x, y = load_sequence(p)
            seqs.append(x)
            labels.append(y)
        self.names = [p.stem for p in files]
        self.classes = list(NWUCLA_CLASSES)
        self.labels = np.array(labels, np.int64)
        self._lengths = np.array([len(s) for s in seqs], np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self._lengths)[:-1]]).astype(np.int64)
        self._pool = np.ascontiguousarray(np.concatenate(seqs), np.float64)

    def __len__(self) -> int:
        return len(self.names) * self.repeat

    def batch(self, indices: ArrayLike, epoch: Optional[int] = None) -> Tuple[F32Array, I64Array]:
        """(x (B, 3, 52, 20, 1) float32, y (B,) int64), assembled in C over threads."""
        idx = self._checked_indices(indices)
        x = _core.data_ucla_batch(self._pool, self._offsets, self._lengths, idx, self.augment, self._seed(epoch),
                                  self._modality, TIME_STEPS)
        return x, self.labels[idx % len(self.names)]

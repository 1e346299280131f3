"""The datasets a training config names, and batches over them."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ctrgcn._core import InputError
from ctrgcn._types import F32Array, I64Array

if TYPE_CHECKING:
    from ctrgcn.data._base import BatchedDataset
    from ctrgcn.data.loader import Dataset, Loader


def make_datasets(cfg: Mapping[str, Any]) -> Tuple[Union[BatchedDataset, Subset], Union[BatchedDataset, Subset]]:
    """Train and val datasets. Their augmentation is a function of (seed, epoch, index) and the
    loader's order of (seed, epoch), so a resumed run draws exactly what an uninterrupted one would."""
    from ctrgcn import data
    seed = int(cfg["seed"])
    train: BatchedDataset  # each branch builds its own kind
    val: BatchedDataset
    if cfg["dataset"] == "nwucla":
        root = cfg["data_root"] or default_ucla_root()
        train = data.NWUCLA(root, split="train", modality=cfg["modality"], repeat=int(cfg["repeat"]), seed=seed)
        val = data.NWUCLA(root, split="val", modality=cfg["modality"], seed=0)
    elif cfg["dataset"] == "ntu":
        train = data.NTUDataset(cfg["data_root"], split="train", modality=cfg["modality"], augment=True,
                                window=int(cfg["window"]), seed=seed)
        val = data.NTUDataset(cfg["data_root"], split="val", modality=cfg["modality"], augment=False,
                              window=int(cfg["window"]), seed=0)
    elif cfg["dataset"] == "sequences":
        if not cfg["data_root"]:
            raise InputError("dataset 'sequences' needs data_root: a sequences .npz file")
        args = dict(window=int(cfg["window"]), modality=cfg["modality"], graph=cfg["graph"])
        train = data.Sequences.from_npz(cfg["data_root"], split="train", seed=seed, **args)
        val = data.Sequences.from_npz(cfg["data_root"], split="val", **args)
    else:
        raise InputError(f"dataset must be 'nwucla', 'ntu' or 'sequences', got {cfg['dataset']!r}")
    return subset(train, cfg["train_subset"], cfg["repeat"] if cfg["dataset"] == "nwucla" else 1), \
        subset(val, cfg["val_subset"], 1)


def sequences_defaults(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """What a sequences file decides unless the config sets it: graph, persons, channels, classes
    (and a 64-frame window)."""
    from ctrgcn.data.sequences import graph_of, read_sequences_npz
    if not cfg.get("data_root"):
        raise InputError("dataset 'sequences' needs data_root: a sequences .npz file")
    f = read_sequences_npz(cfg["data_root"])
    first = f["sequences"][0]
    graph, _ = graph_of(cfg.get("graph", f["edges"]), first.shape[2])
    K = len(f["classes"]) if f["classes"] is not None else int(f["labels"].max()) + 1
    found = dict(graph=graph, num_person=int(first.shape[1]), in_channels=int(first.shape[3]), num_classes=K,
                 window=64)
    return {k: v for k, v in found.items() if k not in cfg}


def default_ucla_root() -> str:
    """Where the NW-UCLA ``all_sqe`` folder lies when the config names none: ``../shared`` beside
    the checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    # ctrgcn/training -> the checkout -> its parent, where ../shared lives beside the checkout
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "data", "nw-ucla", "all_sqe"))


class Subset:
    """Some samples of a dataset, ``ds[index[i]]`` for item i (see ``subset``)."""

    def __init__(self, ds: BatchedDataset, index: List[int]) -> None:
        self.index = index
        self.ds = ds
        self.classes: Optional[List[str]] = getattr(ds, "classes", None)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Tuple[F32Array, int]:
        return self.ds[self.index[i]]

    def batch(self, indices: Iterable[int], epoch: Optional[int] = None) -> Tuple[F32Array, I64Array]:
        """The batch of the dataset's samples ``index[i]`` for i in ``indices``."""
        return self.ds.batch([self.index[int(i)] for i in indices], epoch)


def subset(ds: BatchedDataset, k: Optional[int], repeat: int) -> Union[BatchedDataset, Subset]:
    """The first k distinct samples of a dataset (each of its repeats kept), for quick runs; the
    dataset itself when k is 0 or None."""
    if not k:
        return ds
    base = len(ds) // max(int(repeat), 1)
    step = max(base // int(k), 1)
    picks = list(range(0, base, step))[:int(k)]
    return Subset(ds, [r * base + i for r in range(max(int(repeat), 1)) for i in picks])


def batches(ds: Dataset, batch_size: int, shuffle: bool, seed: int, drop_last: bool) -> Loader:
    """A ``ctrgcn.data.Loader`` over ``ds``, without a prefetching thread: a batch costs well under 1% of
    a step to assemble, and the thread, waking beside the step's OpenMP threads, made NW-UCLA training
    10% slower on two cores (lightV2: 73.6 samples/s with it, 82.6 without, as fast as one fixed batch)."""
    from ctrgcn import data
    return data.Loader(ds, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, prefetch=0)

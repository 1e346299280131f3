"""Batches for training: shuffled indices, assembly in C (the dataset's ``batch``), and a
background thread that prepares the next batches while the model works (the C code releases the
GIL, so the two really overlap)."""
from __future__ import annotations

import queue
import threading
from typing import Iterator, List, Literal, Optional, Protocol, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from ctrgcn._core import InputError
from ctrgcn._types import F32Array, I64Array

Batch = Tuple[F32Array, I64Array]
# what the prefetching thread hands over: a batch, the end, or the exception that stopped it
_Message = Union[Tuple[Literal["batch"], Batch], Tuple[Literal["end"], None], Tuple[Literal["error"], BaseException]]


class Dataset(Protocol):
    """What ``Loader`` iterates: ``len(ds)`` samples, ``ds[i]`` -> (x, label). A dataset that also
    has ``batch(indices, epoch)`` (``ctrgcn.data``'s do) gets whole batches from it."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Tuple[ArrayLike, int]: ...


class Loader:
    """Iterate (x float32 (B, C, T, V, M), y int64 (B,)) over a dataset.

    shuffle: a new permutation per epoch from (seed, epoch). drop_last: leave out the last,
    incomplete batch (default: when shuffling). prefetch: batches prepared ahead (0: none).
    Datasets with ``batch(indices, epoch)`` are assembled in C; others by stacking ``ds[i]``."""

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: Optional[bool] = None, prefetch: int = 2) -> None:
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle, self.seed = dataset, int(batch_size), bool(shuffle), int(seed)
        self.drop_last = self.shuffle if drop_last is None else bool(drop_last)
        self.prefetch, self.epoch = int(prefetch), 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _plan(self, epoch: int) -> List[I64Array]:
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        return [order[s:s + self.batch_size] for s in range(0, len(self) * self.batch_size, self.batch_size)
                if len(order[s:s + self.batch_size])]

    def _make(self, idx: I64Array, epoch: int) -> Batch:
        if hasattr(self.dataset, "batch"):
            batch: Batch = self.dataset.batch(idx, epoch)
            return batch
        items = [self.dataset[int(i)] for i in idx]
        x = np.ascontiguousarray(np.stack([it[0] for it in items]), np.float32)
        return x, np.array([it[1] for it in items], np.int64)

    def __iter__(self) -> Iterator[Batch]:
        epoch = self.epoch
        self.epoch += 1
        batches = self._plan(epoch)
        if self.prefetch <= 0:
            for idx in batches:
                yield self._make(idx, epoch)
            return
        q: queue.Queue[_Message] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item: _Message) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    pass
            return False

        def work() -> None:
            try:
                for idx in batches:
                    if not put(("batch", self._make(idx, epoch))):
                        return
                put(("end", None))
            except BaseException as exc:  # handed to the consumer, raised there
                put(("error", exc))

        thread = threading.Thread(target=work, name="ctrgcn-loader", daemon=True)
        thread.start()
        try:
            while True:
                message = q.get()
                if message[0] == "end":
                    return
                if message[0] == "error":
                    raise message[1]
                yield message[1]
        finally:
            stop.set()
            thread.join()

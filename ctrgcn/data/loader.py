"""Batches for training: shuffled indices, assembly in C (the dataset's ``batch``), and a
background thread that prepares the next batches while the model works (the C code releases the
GIL, so the two really overlap)."""
import queue
import threading

import numpy as np

from ctrgcn._core import InputError


class Loader:
    """Iterate (x float32 (B, C, T, V, M), y int64 (B,)) over a dataset.

    shuffle: a new permutation per epoch from (seed, epoch). drop_last: leave out the last,
    incomplete batch (default: when shuffling). prefetch: batches prepared ahead (0: none).
    Datasets with ``batch(indices, epoch)`` are assembled in C; others by stacking ``ds[i]``."""

    def __init__(self, dataset, batch_size, shuffle=True, seed=0, drop_last=None, prefetch=2):
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle, self.seed = dataset, int(batch_size), bool(shuffle), int(seed)
        self.drop_last = self.shuffle if drop_last is None else bool(drop_last)
        self.prefetch, self.epoch = int(prefetch), 0

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _plan(self, epoch):
        n = len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        return [order[s:s + self.batch_size] for s in range(0, len(self) * self.batch_size, self.batch_size)
                if len(order[s:s + self.batch_size])]

    def _make(self, idx, epoch):
        if hasattr(self.dataset, "batch"):
            return self.dataset.batch(idx, epoch)
        items = [self.dataset[int(i)] for i in idx]
        x = np.ascontiguousarray(np.stack([it[0] for it in items]), np.float32)
        return x, np.array([it[1] for it in items], np.int64)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        batches = self._plan(epoch)
        if self.prefetch <= 0:
            for idx in batches:
                yield self._make(idx, epoch)
            return
        q, stop = queue.Queue(maxsize=self.prefetch), threading.Event()

        def put(item):
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    pass
            return False

        def work():
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
                kind, item = q.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

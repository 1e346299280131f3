"""What every dataset of ctrgcn.data shares: items are batches of one, and the batch seed is a
function of (seed, epoch)."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from ctrgcn._types import F32Array, I64Array
from ctrgcn.data._seed import mix_seed


class BatchedDataset:
    """A dataset whose C code builds whole batches (``batch(indices, epoch)``); ``ds[i]`` is the
    batch of sample i alone, so single items and batches always agree."""

    seed: int
    epoch: int

    def __len__(self) -> int:
        raise NotImplementedError

    def batch(self, indices: ArrayLike, epoch: Optional[int] = None) -> Tuple[F32Array, I64Array]:
        """(x (B, C, T, V, M) float32, y (B,) int64) of the samples ``indices`` at ``epoch``
        (default: the current one)."""
        raise NotImplementedError

    def __getitem__(self, i: int) -> Tuple[F32Array, int]:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} samples")
        x, y = self.batch([i % len(self)])
        item: F32Array = x[0]
        return item, int(y[0])

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose augmentation ``batch`` draws when it is given none."""
        self.epoch = int(epoch)

    def _seed(self, epoch: Optional[int]) -> int:
        """The C side's seed of a batch: a function of (seed, epoch), the current epoch by default."""
        return mix_seed(self.seed, self.epoch if epoch is None else epoch)

    def _checked_indices(self, indices: ArrayLike) -> I64Array:
        """``indices`` as int64 (B,); an IndexError when one lies outside 0..len - 1."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} samples")
        return idx

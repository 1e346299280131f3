"""Files written whole or not at all: a temporary file renamed over the target."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import IO, BinaryIO, Iterator, Mapping, Union

import numpy as np
from numpy.typing import ArrayLike

from ctrgcn._types import PathLike


def savez(file: Union[PathLike, IO[bytes]], arrays: Mapping[str, ArrayLike]) -> None:
    """``np.savez(file, **arrays)``: one uncompressed ``.npz`` member per name."""
    # mypy matches **arrays against savez's keyword `allow_pickle: bool` as well; arrays holds none
    np.savez(file, **arrays)  # type: ignore[arg-type]


@contextmanager
def atomic_write(path: PathLike, tmp: str, fsync: bool = False) -> Iterator[BinaryIO]:
    """Open ``tmp`` for the body to write, then rename it over ``path`` (with ``fsync``, the data
    reaches the disk before the rename). An OSError on the way removes ``tmp`` where it can and
    propagates, so ``path`` keeps its old content."""
    try:
        with open(tmp, "wb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise

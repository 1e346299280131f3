"""Label pickles (PaddleVideo's ``*_label.pkl``) read with the project's restricted unpickler:
NumPy arrays of numbers or strings and plain containers, nothing that can run code."""
from __future__ import annotations

from typing import Any, Tuple

from ctrgcn._core import InputError
from ctrgcn._types import PathLike
from ctrgcn.formats.safe_pickle import LABEL_GLOBALS, loads, read_file


def load_labels(path: PathLike) -> Tuple[Any, Any]:
    """(names, labels) from a label pickle: ``[names, labels]`` of arrays or lists (as unpickled:
    the caller checks what they hold)."""
    obj = loads(read_file(path), allowed=LABEL_GLOBALS, what=f"file '{path}'")
    if not isinstance(obj, (list, tuple)) or len(obj) != 2:
        raise InputError(f"file '{path}': expected [names, labels]")
    return obj[0], obj[1]

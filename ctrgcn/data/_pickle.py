"""Label pickles (PaddleVideo's ``*_label.pkl``) read with the project's restricted unpickler:
NumPy arrays of numbers or strings and plain containers, nothing that can run code."""
from ctrgcn._core import InputError
from ctrgcn.formats.safe_pickle import LABEL_GLOBALS, loads


def load_labels(path):
    """(names, labels) from a label pickle: ``[names, labels]`` of arrays or lists."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise InputError(f"file '{path}': cannot read ({exc.strerror})") from None
    obj = loads(data, allowed=LABEL_GLOBALS, what=f"file '{path}'")
    if not isinstance(obj, (list, tuple)) or len(obj) != 2:
        raise InputError(f"file '{path}': expected [names, labels]")
    return obj[0], obj[1]

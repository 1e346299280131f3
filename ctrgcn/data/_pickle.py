"""Label pickles (PaddleVideo's ``*_label.pkl``) read without running arbitrary code: only NumPy
array reconstruction and plain containers are allowed."""
import pickle

from ctrgcn._core import InputError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("builtins", "list"), ("builtins", "tuple"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_labels(path):
    """(names, labels) from a label pickle: ``[names, labels]`` of arrays or lists."""
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError) as exc:
        raise InputError(f"file '{path}': not a label pickle ({exc})") from None
    if not isinstance(obj, (list, tuple)) or len(obj) != 2:
        raise InputError(f"file '{path}': expected [names, labels]")
    return obj[0], obj[1]

"""A pickle reader that builds nothing but containers, numbers, strings and arrays.

Weight files from PyTorch and Paddle are pickles, and a pickle can name any importable callable and
have it called. Here ``find_class`` admits a short list of names, each mapped to a function of ours
that only builds NumPy arrays; any other global (``os.system``, ``builtins.eval``, ``subprocess``...)
raises before anything is called. The C unpickler calls ``find_class`` for every GLOBAL, STACK_GLOBAL,
INST, OBJ and EXT opcode, so no other path reaches an import."""
from __future__ import annotations

import io
import math
import pickle
import pickletools
from collections import OrderedDict
from typing import IO, Any, Callable, Dict, Mapping, Optional, Set, Tuple, cast

import numpy as np
from numpy.typing import NDArray

from ctrgcn._core import FileError, InputError
from ctrgcn._types import PathLike

# (module, name) of a global a pickle may name -> what it gets instead
Allowed = Mapping[Tuple[str, str], object]
# a pickle's persistent id -> the object it stands for
PersistentLoad = Callable[[Any], object]

# dtypes a weight tensor may hold; object arrays never.
_NUMERIC_KINDS = "fiub"


class _DType:
    """Stands for ``numpy.dtype(spec, align, copy)`` until its BUILD state gives the byte order."""
    kinds = _NUMERIC_KINDS
    dtype: Optional[np.dtype[Any]] = None  # also what an instance made without __init__ (NEWOBJ) holds

    def __init__(self, spec: object, align: object = False, copy: object = False) -> None:
        try:
            dt = np.dtype(spec) if isinstance(spec, str) else None
        except TypeError:
            dt = None
        if dt is None or dt.kind not in self.kinds:
            raise InputError(f"pickle holds an array of dtype {spec!r}; weights are numbers")
        self.dtype = dt

    def __setstate__(self, state: object) -> None:
        if self.dtype is None:
            raise InputError("pickle: a dtype state without a dtype")
        if isinstance(state, tuple) and len(state) >= 2 and state[1] in ("<", ">", "|", "="):
            self.dtype = self.dtype.newbyteorder(state[1]) if state[1] in "<>" else self.dtype


def _as_dtype(obj: object) -> np.dtype[Any]:
    if isinstance(obj, _DType) and obj.dtype is not None:
        return obj.dtype
    raise InputError("pickle: an array's dtype is not a numeric dtype")


class _NDArray:
    """Stands for ``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``; its BUILD state
    ``(version, shape, dtype, is_fortran, raw bytes)`` becomes a real array."""
    array: Optional[NDArray[Any]] = None  # also what an instance made without __init__ (NEWOBJ) holds

    def __init__(self, cls: object = None, shape: object = None, typecode: object = None) -> None:
        self.array = None

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise InputError("pickle: malformed array state")
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran, raw = state
        dtype = _as_dtype(dtype)
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise InputError("pickle: malformed array shape")
        if isinstance(raw, (list, str)) or not isinstance(raw, (bytes, bytearray, memoryview)):
            raise InputError("pickle: array data is not raw bytes")
        count = math.prod(shape)  # Python integers: a huge claimed shape cannot wrap around
        if len(raw) != count * dtype.itemsize:
            raise InputError(f"pickle: array of shape {shape} holds {len(raw)} bytes, expected "
                             f"{count * dtype.itemsize}")
        arr = np.frombuffer(bytes(raw), dtype=dtype, count=count)
        self.array = arr.reshape(shape, order="F" if fortran else "C").copy()


def _scalar(dtype: object, raw: object = b"") -> np.generic:
    dt = _as_dtype(dtype)
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != dt.itemsize:
        raise InputError("pickle: malformed NumPy scalar")
    value: np.generic = np.frombuffer(bytes(raw), dtype=dt)[0]
    return value


def _codecs_encode(text: object, encoding: str = "utf-8") -> bytes:
    """Protocol 2 writes bytes as ``_codecs.encode(latin-1 text, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise InputError("pickle: unexpected _codecs.encode call")
    return text.encode("latin1")


NUMPY_GLOBALS: Dict[Tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): _NDArray,
    ("numpy._core.multiarray", "_reconstruct"): _NDArray,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy", "ndarray"): "ndarray",  # only ever the first argument of _reconstruct
    ("numpy", "dtype"): _DType,
    ("collections", "OrderedDict"): OrderedDict,
    ("_codecs", "encode"): _codecs_encode,
}


class _TextDType(_DType):
    """Label files also hold names: byte and unicode strings, never objects."""
    kinds = _NUMERIC_KINDS + "SU"


# what PaddleVideo's label pickles need: arrays of numbers or fixed-width strings
LABEL_GLOBALS = {**NUMPY_GLOBALS, ("numpy", "dtype"): _TextDType}


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` whose globals come from ``allowed`` only ((module, name) -> object),
    and whose persistent ids go to ``persistent_load`` (refused when None)."""

    def __init__(self, file: IO[bytes], allowed: Allowed, persistent_load: Optional[PersistentLoad] = None) -> None:
        super().__init__(file)
        self._allowed = allowed
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> object:
        """What ``allowed`` maps (module, name) to; an InputError for any other global."""
        try:
            return self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise InputError(f"pickle refers to {module}.{name}, which no weight file needs; refused "
                             "without running it") from None

    def persistent_load(self, pid: Any) -> object:
        """The object ``persistent_load`` makes of ``pid``; an InputError without one."""
        if self._persistent is None:
            raise InputError("pickle refers to external data, which this format does not have")
        return self._persistent(pid)


MAX_DEPTH = 100  # weight files nest a few levels (a checkpoint dict, a state dict, arrays)


def unwrap(obj: Any, _depth: int = 0, _active: Optional[Set[int]] = None) -> Any:
    """Replace stand-ins by real arrays throughout containers. A container that holds itself (a
    pickle can build one) or nesting deeper than MAX_DEPTH is an InputError."""
    if isinstance(obj, _NDArray):
        if obj.array is None:
            raise InputError("pickle: an array without data")
        return obj.array
    if isinstance(obj, _DType):
        return _as_dtype(obj)
    if not isinstance(obj, (dict, list, tuple)):
        return obj
    if _depth > MAX_DEPTH:
        raise InputError(f"pickle: containers nested more than {MAX_DEPTH} deep")
    active = set() if _active is None else _active
    if id(obj) in active:
        raise InputError("pickle: a container that contains itself")
    active.add(id(obj))
    try:
        if isinstance(obj, dict):
            out: OrderedDict[Any, Any] = OrderedDict()
            for k, v in obj.items():
                out[k] = unwrap(v, _depth + 1, active)
            return out
        items = [unwrap(v, _depth + 1, active) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    finally:
        active.discard(id(obj))


def read_file(path: PathLike) -> bytes:
    """The bytes of a pickle file; an unreadable file is a ctrgcn.FileError (an OSError)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise FileError(f"cannot read {str(path)!r}: {exc.strerror}") from None


_MEMO_OPS = ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET")


def _check_opcodes(data: bytes) -> None:
    """Walk the opcodes before unpickling, so that memory stays bounded by the data: every counted
    argument must be present (the unpickler allocates a BINBYTES8's claimed size before reading it),
    memo indices small (it grows its memo table to the largest index written), and frames well formed
    (one inside another, or an opcode across a frame's end, sends the unpickler's reads elsewhere than
    this walk's, and there it was seen to allocate gigabytes)."""
    limit = len(data)
    frame_end: Optional[int] = None
    previous = 0
    for op, arg, pos in pickletools.genops(data):
        assert pos is not None  # genops gives the position of every opcode of a bytes object
        if frame_end is not None and pos >= frame_end:
            if previous < frame_end < pos:
                raise ValueError(f"an opcode at byte {previous} crosses the end of its frame")
            frame_end = None
        if op.name == "FRAME":
            if frame_end is not None:
                raise ValueError(f"a frame inside a frame at byte {pos}")
            start, size = pos + 9, cast(int, arg)  # FRAME's argument: the frame's length
            if size > limit - start:
                raise ValueError(f"a frame of {size} bytes at byte {pos} runs past the end")
            frame_end = start + size
        if op.name in _MEMO_OPS and isinstance(arg, int) and not 0 <= arg <= limit:
            raise ValueError(f"memo index {arg} in a pickle of {limit} bytes")
        if op.name == "STOP":
            if frame_end is not None and pos + 1 > frame_end:
                raise ValueError("STOP crosses the end of its frame")
            return
        previous = pos
    raise ValueError("no STOP opcode")


def loads(data: bytes, allowed: Optional[Allowed] = None, persistent_load: Optional[PersistentLoad] = None,
          what: str = "pickle") -> Any:
    """Unpickle ``data`` admitting only ``allowed`` (default: NumPy arrays and containers)."""
    allowed = NUMPY_GLOBALS if allowed is None else allowed
    try:
        _check_opcodes(data)
        obj = RestrictedUnpickler(io.BytesIO(data), allowed, persistent_load).load()
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    except RecursionError:
        raise InputError(f"{what}: nested too deeply") from None
    except MemoryError:
        raise InputError(f"{what}: asks for more memory than a weight file can") from None
    except Exception as exc:  # pickle reports damage as UnpicklingError, EOFError, ValueError, TypeError...
        raise InputError(f"{what}: damaged or not a weight pickle ({type(exc).__name__}: {exc})") from None
    return unwrap(obj)

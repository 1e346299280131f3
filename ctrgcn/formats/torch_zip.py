"""PyTorch checkpoints (``torch.save`` zip format) without PyTorch.

The zip holds ``<root>/data.pkl`` (the pickled object, with each tensor's storage referred to by a
persistent id ``('storage', <Kind>Storage, key, location, numel)``) and ``<root>/data/<key>`` (the raw
little-endian bytes). The pickle may call only ``torch._utils._rebuild_tensor_v2`` and its relatives,
mapped to functions that slice NumPy arrays out of the storages (see safe_pickle)."""
from __future__ import annotations

import os
import zipfile
import zlib
from typing import Any, Dict, Iterable, Union

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ctrgcn._core import InputError
from ctrgcn._types import F32Array, PathLike
from ctrgcn.formats import safe_pickle
from ctrgcn.formats.npz import check_sizes

# a NumPy dtype, or "bfloat16", which NumPy lacks (widened to float32 on reading)
STORAGE_DTYPES: Dict[str, Union[DTypeLike, str]] = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
MAX_PICKLE_BYTES = 64 << 20


class _StorageKind:
    def __init__(self, name: str) -> None:
        self.name = name


class _Storage:
    def __init__(self, array: NDArray[Any]) -> None:
        self.array = array


def _bfloat16_to_float32(raw: bytes) -> F32Array:
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


def _rebuild_tensor(storage: object, offset: object, size: object, stride: object, *unused: object) -> NDArray[Any]:
    if not isinstance(storage, _Storage):
        raise InputError("checkpoint: a tensor without a storage")
    if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and all(isinstance(v, int) and v >= 0 for v in size + stride)
            and offset >= 0):
        raise InputError("checkpoint: malformed tensor geometry")
    flat = storage.array
    if any(d == 0 for d in size):
        return np.zeros(size, dtype=flat.dtype)
    last = offset + sum((d - 1) * s for d, s in zip(size, stride))
    if last >= flat.size:
        raise InputError(f"checkpoint: tensor of shape {size} reaches element {last} of a storage of {flat.size}")
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=tuple(s * item for s in stride))
    return np.array(view)


def _rebuild_tensor_v3(storage: object, offset: object, size: object, stride: object, requires_grad: object,
                       hooks: object, dtype: object, *unused: object) -> NDArray[Any]:
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data: object, requires_grad: object = False, hooks: object = None,
                       *unused: object) -> NDArray[Any]:
    if not isinstance(data, np.ndarray):
        raise InputError("checkpoint: a parameter without tensor data")
    return data


def _rebuild_from_type_v2(func: object, new_type: object, args: Iterable[Any], state: object = None) -> NDArray[Any]:
    if func not in (_rebuild_tensor, _rebuild_parameter) or new_type not in ("Tensor", "Parameter"):
        raise InputError("checkpoint: unexpected tensor subclass")
    return func(*args)


def _allowed() -> Dict[tuple[str, str], object]:
    allowed = dict(safe_pickle.NUMPY_GLOBALS)
    allowed.update({
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): "Tensor",
        ("torch.nn.parameter", "Parameter"): "Parameter",
        ("torch", "Size"): tuple,
    })
    for name in STORAGE_DTYPES:
        allowed[("torch", name)] = _StorageKind(name)
    return allowed


def _find_root(names: Iterable[str]) -> str:
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise InputError("not a PyTorch checkpoint: expected one <root>/data.pkl in the zip")
    return pkls[0][: -len("data.pkl")]


def read_torch(path: PathLike) -> Any:
    """name -> ndarray (or nested containers) of a ``torch.save`` zip checkpoint."""
    try:
        with zipfile.ZipFile(path) as z:
            check_sizes(z, repr(path), os.path.getsize(path))
            infos = {i.filename: i for i in z.infolist()}
            root = _find_root(infos)
            order = infos.get(root + "byteorder")
            if order is not None and z.read(order).strip() not in (b"little", b""):
                raise InputError("checkpoint written on a big-endian machine: not supported")
            pkl = infos[root + "data.pkl"]
            if pkl.file_size > MAX_PICKLE_BYTES:
                raise InputError("checkpoint: data.pkl is implausibly large")
            data = z.read(pkl)
            storages: Dict[str, _Storage] = {}

            def persistent_load(pid: object) -> _Storage:
                if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                        and isinstance(pid[1], _StorageKind) and isinstance(pid[2], str)):
                    raise InputError(f"checkpoint: unknown persistent reference {str(pid)[:80]}")
                kind, key, numel = pid[1], pid[2], pid[4]
                if key in storages:
                    return storages[key]
                info = infos.get(f"{root}data/{key}")
                if info is None:
                    raise InputError(f"checkpoint: storage {key!r} is missing from the zip")
                dtype = STORAGE_DTYPES[kind.name]
                item = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
                if not isinstance(numel, int) or numel < 0 or info.file_size != numel * item:
                    raise InputError(f"checkpoint: storage {key!r} holds {info.file_size} bytes, "
                                     f"expected {numel} x {item}")
                raw = z.read(info)
                if dtype == "bfloat16":
                    array = _bfloat16_to_float32(raw)
                else:
                    array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
                storages[key] = _Storage(array)
                return storages[key]

            return safe_pickle.loads(data, _allowed(), persistent_load, what=f"{path!r} (data.pkl)")
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, KeyError, ValueError, OSError,
            NotImplementedError, OverflowError, UnicodeDecodeError, RuntimeError) as exc:
        raise InputError(f"{path!r}: damaged PyTorch checkpoint ({type(exc).__name__}: {exc})") from None

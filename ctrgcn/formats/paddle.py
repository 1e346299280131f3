"""Paddle weights without Paddle.

* ``.pdparams`` (``paddle.save`` of a state dict): a pickle of name -> NumPy array, read with the
  restricted unpickler; a ``StructuredToParameterName@@`` entry (structured -> internal names) is
  dropped.
* Inference files (``paddle.jit.save``): ``<prefix>.pdiparams`` holds every persistable tensor, in
  the order of their sorted internal names (``conv2d_0.w_0``, ``batch_norm2d_3.w_1`` ...), each as a
  LoDTensor record: u32 version, u64 LoD levels (each u64 byte count + data), u32 version,
  i32 descriptor size, a TensorDesc protobuf (data_type, dims), the raw little-endian data. The
  names and shapes come from ``<prefix>.json`` (PIR programs, Paddle >= 3) or ``<prefix>.pdmodel``
  (a ProgramDesc protobuf, legacy IR); ``<prefix>.pdiparams.info`` (written with the legacy IR)
  maps them to the structured names the model needs. Without it, a PIR program's op graph does
  (``paddle_program``).
"""
from __future__ import annotations

import json
import os
import struct
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from numpy.typing import NDArray

from ctrgcn._core import FileError, InputError
from ctrgcn._types import PathLike
from ctrgcn.formats import safe_pickle

# one field of a protobuf message: (field number, wire type, varint, bytes); a varint field (wire
# type 0) fills the varint and leaves b"", the others fill the bytes and leave 0
Field = Tuple[int, int, int, bytes]

STRUCTURE_KEY = "StructuredToParameterName@@"
# framework.proto VarType.Type -> NumPy
PADDLE_DTYPES: Dict[int, type[np.generic]] = {
    0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32, 6: np.float64, 20: np.uint8,
    21: np.int8}
JSON_DTYPES: Dict[str, type[np.generic]] = {
    "0.t_f32": np.float32, "0.t_f64": np.float64, "0.t_f16": np.float16, "0.t_i64": np.int64, "0.t_i32": np.int32,
    "0.t_i8": np.int8, "0.t_ui8": np.uint8, "0.t_bool": np.bool_, "0.t_i16": np.int16}
MAX_NDIM = 8


def read_pdparams(path: PathLike) -> Dict[Any, Any]:
    """name -> ndarray of a ``paddle.save`` pickle."""
    data = safe_pickle.read_file(path)
    if not data.startswith(b"\x80"):
        raise InputError(f"{path!r}: not a pickle (a .pdparams starts with the pickle protocol byte)")
    obj = safe_pickle.loads(data, what=repr(path))
    if not isinstance(obj, dict):
        raise InputError(f"{path!r}: the pickle holds a {type(obj).__name__}, not a dict of parameters")
    return obj


# ---- protobuf, just enough to walk a ProgramDesc ----
def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise InputError("protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _fields(buf: bytes) -> List[Field]:
    """(field number, wire type, varint, bytes) of one message (see ``Field``)."""
    pos, out = 0, []
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        number, data = 0, b""
        if wire == 0:
            number, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if n > len(buf) - pos:
                raise InputError("protobuf: truncated field")
            data, pos = buf[pos:pos + n], pos + n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            if n > len(buf) - pos:
                raise InputError("protobuf: truncated field")
            data, pos = buf[pos:pos + n], pos + n
        else:
            raise InputError(f"protobuf: unsupported wire type {wire}")
        out.append((field, wire, number, data))
    return out


def _tensor_desc(buf: bytes) -> Tuple[Optional[int], Tuple[int, ...]]:
    dtype, dims = None, []
    for field, wire, number, data in _fields(buf):
        if field == 1 and wire == 0:
            dtype = number
        elif field == 2 and wire == 0:
            dims.append(number - (1 << 64) if number >= 1 << 63 else number)
        elif field == 2 and wire == 2:  # packed
            pos = 0
            while pos < len(data):
                v, pos = _varint(data, pos)
                dims.append(v - (1 << 64) if v >= 1 << 63 else v)
    return dtype, tuple(dims)


def _pdmodel_params(buf: bytes) -> List[Tuple[str, Tuple[int, ...]]]:
    """[(name, shape)] of the persistable LoD tensors of block 0 of a ProgramDesc."""
    params = []
    blocks = [v for f, w, _, v in _fields(buf) if f == 1 and w == 2]
    if not blocks:
        raise InputError("the .pdmodel holds no program block")
    for field, wire, _, var in _fields(blocks[0]):
        if field != 3 or wire != 2:
            continue
        name, persistable, vtype, shape = None, False, None, None
        for f, w, n, v in _fields(var):
            if f == 1 and w == 2:
                name = v.decode("utf-8", "replace")
            elif f == 3 and w == 0:
                persistable = bool(n)
            elif f == 2 and w == 2:
                for f2, w2, n2, v2 in _fields(v):
                    if f2 == 1 and w2 == 0:
                        vtype = n2
                    elif f2 == 3 and w2 == 2:  # lod_tensor { tensor }
                        for f3, w3, _, v3 in _fields(v2):
                            if f3 == 1 and w3 == 2:
                                shape = _tensor_desc(v3)[1]
        if persistable and vtype == 7 and name is not None and name not in ("feed", "fetch") and shape is not None:
            params.append((name, shape))
    return params


def _json_params(text: str) -> List[Tuple[str, Tuple[int, ...]]]:
    """[(name, shape)] of the parameter ops ("p") of a PIR program."""
    try:
        prog = json.loads(text)
        ops = prog["program"]["regions"][0]["blocks"][0]["ops"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        raise InputError(f"not a Paddle PIR program ({type(exc).__name__})") from None
    params = []
    for op in ops:
        if not isinstance(op, dict) or op.get("#") != "p":
            continue
        try:
            name = op["A"][3]
            shape = tuple(int(d) for d in op["O"]["TT"]["D"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            raise InputError("a parameter entry of the PIR program is malformed") from None
        params.append((str(name), shape))
    return params


def _read_lod_tensor(buf: bytes, pos: int) -> Tuple[NDArray[Any], int]:
    def take(n: int) -> bytes:
        nonlocal pos
        if n < 0 or n > len(buf) - pos:
            raise InputError("truncated tensor record")
        out = buf[pos:pos + n]
        pos += n
        return out

    version, = struct.unpack("<I", take(4))
    if version != 0:
        raise InputError(f"tensor record version {version}")
    levels, = struct.unpack("<Q", take(8))
    if levels > 16:
        raise InputError("implausible LoD")
    for _ in range(levels):
        n, = struct.unpack("<Q", take(8))
        take(n)
    version, = struct.unpack("<I", take(4))
    if version != 0:
        raise InputError(f"tensor record version {version}")
    desc_size, = struct.unpack("<i", take(4))
    dtype_code, dims = _tensor_desc(take(desc_size))
    if dtype_code not in PADDLE_DTYPES:
        raise InputError(f"tensor of Paddle dtype {dtype_code}")
    if len(dims) > MAX_NDIM or any(d < 0 for d in dims):
        raise InputError(f"tensor of shape {dims}")
    dtype = np.dtype(PADDLE_DTYPES[dtype_code]).newbyteorder("<")
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    raw = take(count * dtype.itemsize)
    return np.frombuffer(raw, dtype=dtype).reshape(dims).copy(), pos


def inference_prefix(path: PathLike) -> str:
    """The common prefix of an inference model's files, given any of them (or the prefix)."""
    path = os.fspath(path)
    for ext in (".pdiparams.info", ".pdiparams", ".pdmodel", ".json"):
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def read_inference(path: PathLike, structured: bool = True) -> Dict[str, NDArray[Any]]:
    """name -> ndarray of a ``paddle.jit.save`` model. ``structured``: the structured names
    (``backbone.l1.gcn1.PA``, ...) from the ``.pdiparams.info`` beside it, or, for a PIR program
    without one, the project's names through the program's op graph; otherwise Paddle's internal
    names (``conv2d_0.w_0``, ...)."""
    prefix = inference_prefix(path)
    try:
        with open(prefix + ".pdiparams", "rb") as f:
            buf = f.read()
    except OSError as exc:
        raise FileError(f"cannot read {prefix + '.pdiparams'!r}: {exc.strerror}") from None
    program_path = prefix + ".pdmodel"
    if os.path.exists(prefix + ".pdmodel"):
        with open(prefix + ".pdmodel", "rb") as f:
            params = _pdmodel_params(f.read())
    elif os.path.exists(prefix + ".json"):
        program_path = prefix + ".json"
        with open(prefix + ".json", "rb") as f:
            params = _json_params(f.read().decode("utf-8", "replace"))
    else:
        raise InputError(f"{prefix + '.pdiparams'!r}: its program ({prefix}.json or .pdmodel) is needed for "
                         "the parameter names")
    params = sorted(params)  # save_combine writes them in the order of their names
    names = [n for n, _ in params]
    if len(set(names)) != len(names):
        raise InputError(f"{prefix!r}: the program names a parameter twice")
    out, pos = {}, 0
    try:
        for name, shape in params:
            arr, pos = _read_lod_tensor(buf, pos)
            if tuple(arr.shape) != tuple(shape):
                raise InputError(f"parameter {name!r} has shape {arr.shape} in the .pdiparams, {shape} in the "
                                 "program")
            out[name] = arr
    except InputError as exc:
        raise InputError(f"{prefix + '.pdiparams'!r}: {exc}") from None
    except struct.error:
        raise InputError(f"{prefix + '.pdiparams'!r}: truncated") from None
    if pos != len(buf):
        raise InputError(f"{prefix + '.pdiparams'!r}: {len(buf) - pos} bytes beyond the {len(params)} parameters "
                         "the program names")
    if structured:
        # Paddle 3 (PIR) exports have no .pdiparams.info: the program itself gives the layer names
        if not os.path.exists(prefix + ".pdiparams.info") and program_path.endswith(".json"):
            from ctrgcn.formats.paddle_program import structured_from_program
            return structured_from_program(out, program_path)
        if not os.path.exists(prefix + ".pdiparams.info"):
            raise InputError(f"{prefix!r}: this Paddle inference model names its parameters only by Paddle's "
                             f"internal names ({', '.join(names[:3])}, ...) and has no .pdiparams.info to map them "
                             "to layers; load the training .pdparams instead, or export with the legacy IR "
                             "(FLAGS_enable_pir_api=0), which writes the .pdiparams.info")
        with open(prefix + ".pdiparams.info", "rb") as f:
            info = safe_pickle.loads(f.read(), what=repr(prefix + ".pdiparams.info"))
        out = _structured(out, info, prefix)
    return out


def _structured(params: Dict[str, NDArray[Any]], info: Any, prefix: str) -> Dict[str, NDArray[Any]]:
    if not isinstance(info, dict):
        raise InputError(f"{prefix + '.pdiparams.info'!r}: not a dict")
    out = {}
    for name, arr in params.items():
        entry = info.get(name)
        sname = entry.get("structured_name") if isinstance(entry, dict) else None
        if not isinstance(sname, str):
            raise InputError(f"{prefix + '.pdiparams.info'!r} gives no structured name for {name!r}")
        out[sname] = arr
    return out

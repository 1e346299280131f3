"""``.npz`` archives read with memory bounded by the file.

``np.load`` trusts each member's header: a member claiming shape (10**9, 10**9) makes it allocate
the whole array before finding that the data is not there. Here every member's header is checked
against the bytes the member holds before anything is allocated, the archive's total inflated size
against its own size, and object arrays are refused."""
from __future__ import annotations

import io
import os
import tokenize
import zipfile
import zlib
from typing import IO, Any, Collection, Dict, Literal, Optional, Tuple, cast

import numpy as np
from numpy.typing import NDArray

from ctrgcn._core import FileError, InputError
from ctrgcn._types import PathLike

# A deflated member may expand (deflate's limit is about 1032:1), but all members together may not
# claim more than this multiple of the archive's size: weight and data arrays compress by a few
# times at most, while a zip bomb claims thousands.
MAX_INFLATION = 64
SLACK_BYTES = 1 << 20


def _header(f: IO[bytes], what: str) -> Tuple[Tuple[int, ...], bool, np.dtype[Any]]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise InputError(f"{what}: .npy format version {version} is not supported")
    if dtype.hasobject:
        raise InputError(f"{what}: holds Python objects (a pickle), which are refused")
    return shape, fortran, dtype


def check_sizes(z: zipfile.ZipFile, what: str, archive_bytes: int) -> None:
    """An InputError when a member of ``z`` is encrypted, compressed by other than stored or
    deflated, claims more bytes than it or the archive holds, or all members together claim more
    than ``MAX_INFLATION`` times the archive's size."""
    total = 0
    for info in z.infolist():
        if info.flag_bits & 0x1:
            raise InputError(f"{what}: member {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InputError(f"{what}: member {info.filename!r} uses compression method {info.compress_type}; "
                             "only stored and deflated members are read")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise InputError(f"{what}: stored member {info.filename!r} claims {info.file_size} bytes but "
                             f"holds {info.compress_size}")
        if info.compress_size > archive_bytes:
            raise InputError(f"{what}: member {info.filename!r} claims more bytes than the archive has")
        total += info.file_size
    if total > MAX_INFLATION * archive_bytes + SLACK_BYTES:
        raise InputError(f"{what}: members claim {total} bytes in an archive of {archive_bytes} bytes")


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> NDArray[Any]:
    member = f"{what} member {info.filename!r}"
    with z.open(info) as f:
        shape, fortran, dtype = _header(f, member)
        header_bytes = f.tell()
        count = 1
        for d in shape:
            count *= d  # a Python integer: no wrap-around
        need = count * dtype.itemsize
        if need != info.file_size - header_bytes:
            raise InputError(f"{member}: its header claims shape {shape} of {dtype} ({need} bytes), the member "
                             f"holds {info.file_size - header_bytes}")
        buf = bytearray(need)
        # ZipFile.open gives a ZipExtFile, an io.BufferedIOBase (typeshed says only IO[bytes])
        if cast(io.BufferedIOBase, f).readinto(memoryview(buf)) != need:
            raise InputError(f"{member}: truncated")
    order: Literal["C", "F"] = "F" if fortran else "C"
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape, order=order)


def read_npz(path: PathLike, keys: Optional[Collection[str]] = None) -> Dict[str, NDArray[Any]]:
    """name -> array of every ``.npy`` member (or of ``keys`` only), pickles refused; an
    ``InputError`` for anything malformed, a ``FileError`` when the file cannot be read."""
    path = os.fspath(path)
    what = repr(path)
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as z:
            check_sizes(z, what, size)
            out: Dict[str, NDArray[Any]] = {}
            for info in z.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if keys is not None and name not in keys:
                    continue
                if name in out:
                    raise InputError(f"{what}: two members named {name!r}")
                out[name] = _read_member(z, info, what)
            return out
    except InputError:
        raise
    except FileNotFoundError as exc:
        raise FileError(f"cannot open {what}: {exc.strerror}") from None
    except IsADirectoryError as exc:
        raise FileError(f"cannot open {what}: {exc.strerror}") from None
    except PermissionError as exc:
        raise FileError(f"cannot open {what}: {exc.strerror}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError, KeyError, OSError,
            NotImplementedError, OverflowError, TypeError, UnicodeDecodeError, SyntaxError, tokenize.TokenError,
            MemoryError, RecursionError, RuntimeError) as exc:
        raise InputError(f"{what}: not a readable .npz archive ({type(exc).__name__}: {exc})") from None


def read_npy(path: PathLike, mmap: bool = True) -> NDArray[Any]:
    """The array of a ``.npy`` file, memory-mapped read-only when ``mmap``; its header is checked
    against the file's size first, so a claimed shape never outgrows the data."""
    path = os.fspath(path)
    what = repr(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            shape, fortran, dtype = _header(f, what)
            header_bytes = f.tell()
        count = 1
        for d in shape:
            count *= d
        if count * dtype.itemsize != size - header_bytes:
            raise InputError(f"{what}: its header claims shape {shape} of {dtype} ({count * dtype.itemsize} bytes), "
                             f"the file holds {size - header_bytes}")
        array: NDArray[Any] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        return array
    except InputError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise FileError(f"cannot open {what}: {exc.strerror}") from None
    except (ValueError, EOFError, OSError, OverflowError, TypeError, SyntaxError, UnicodeDecodeError,
            tokenize.TokenError, MemoryError, RecursionError) as exc:
        raise InputError(f"{what}: not a readable .npy file ({type(exc).__name__}: {exc})") from None

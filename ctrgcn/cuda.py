"""The CUDA backend, as this install has it.

    ctrgcn.cuda.built()          # the backend library was compiled into this install
    ctrgcn.cuda.is_available()   # ... and loads, and sees at least one GPU
    ctrgcn.cuda.device_count()   # GPUs it sees (0 without a driver or device)
    ctrgcn.cuda.reason()         # why it is unavailable ("" when available)

Models run on it with ``ctrgcn.Model(..., device="cuda")`` or ``model.to("cuda")``; arrays stay
NumPy in and out (copied to and from the device at the edges). Device 0 is used.
"""
from __future__ import annotations

from typing import Optional

from ctrgcn import _core
from ctrgcn._core import Error, InputError
from ctrgcn._types import CudaInfo

DEVICES = ("cpu", "cuda")


def _info() -> CudaInfo:
    return _core.cuda_info()


def built() -> bool:
    """True when the CUDA backend library was built into this install."""
    return bool(_info()["built"])


def device_count() -> int:
    """GPUs the CUDA backend can use; 0 when it is not built, does not load or finds no device."""
    return int(_info()["devices"])


def is_available() -> bool:
    """True when a model can run with ``device="cuda"``."""
    return device_count() > 0


def reason() -> str:
    """Why ``device="cuda"`` is unavailable, or "" when it is available."""
    return _info()["reason"]


def check_device(device: Optional[str]) -> str:
    """A device name ("cpu", "cuda", "cuda:0") -> the backend's name; ctrgcn.Error when the CUDA
    backend is unavailable, InputError for anything else."""
    name = str(device).lower() if device is not None else "cpu"
    if name == "cuda:0":
        name = "cuda"
    if name not in DEVICES:
        raise InputError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if name == "cuda" and not is_available():
        raise Error(f"device='cuda' is unavailable: {reason()}")
    return name

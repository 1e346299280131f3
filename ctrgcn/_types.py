"""Types shared by the package and the stub of ``ctrgcn._core``: array aliases and the shapes of
the dicts the C core hands out (a model spec, a block layout, the records of the NTU reader)."""
from __future__ import annotations

import os
from typing import Any, List, Literal, Optional, Tuple, TypedDict, Union

import numpy as np
from numpy.typing import NDArray

F32Array = NDArray[np.float32]
F64Array = NDArray[np.float64]
I64Array = NDArray[np.int64]
FloatArray = NDArray[np.floating[Any]]
# what a path argument of the C core takes (PyUnicode_FSConverter) and of open()
PathLike = Union[str, os.PathLike[str]]


class BlockSpec(TypedDict):
    """One of the ten blocks of a spec: output width, stride, whether it has the spatial module,
    the width of its graph convolution, the temporal kernel and the two dilations."""
    out_channels: int
    stride: int
    spatial: bool
    gcn_width: int
    kernel_size: int
    dilations: List[int]


class SpecShape(TypedDict):
    """The fields of a spec that the names and shapes of a state dict tell (``weights.infer_spec``)."""
    variant: str
    num_classes: int
    num_joints: int
    num_person: int
    in_channels: int
    base_channel: int


class Spec(SpecShape):
    """A model spec as ``_core.preset_spec`` and ``Net.spec`` give it (and ``Net`` takes it)."""
    conv: Literal["separate", "fused"]
    relation: Literal["per_subset", "shared"]
    rel_reduction: int
    rel_small: int
    blocks: List[BlockSpec]
    edges: List[Tuple[int, int]]


class ModelSpec(Spec):
    """``Model.spec``: the C spec plus the graph's name ("ntu", "ucla", ..., or "custom")."""
    graph: str


class BlockLayout(TypedDict):
    """What one block computes, as ``Net.layout`` derives it from the spec (csrc/python/net.c)."""
    cin: int
    cout: int
    stride: int
    has_gcn: bool
    gcn_cin: int
    gcn_cout: int
    R: int
    nrel: int
    fused: bool
    down: int
    tcn_cin: int
    B: int
    last: int
    residual: int
    kernel: int
    residual_in_tcn: bool
    dilations: Tuple[int, int]


class CudaInfo(TypedDict):
    """``_core.cuda_info()``: the CUDA backend library was built, the devices it sees, why none."""
    built: bool
    devices: int
    reason: str


class BodyRecord(TypedDict):
    """One body of a parsed ``.skeleton`` file (see ``ctrgcn.data.ntu.Body``)."""
    id: str
    joints: F32Array
    colors: F32Array
    interval: I64Array
    frames: I64Array
    motion: Optional[float]


class SkeletonRecord(TypedDict):
    """``_core.data_prepare_skeleton(path, 0)``: the parsed file."""
    num_frames_in_file: int
    num_frames: int
    frames_drop: I64Array
    bodies: List[BodyRecord]


class DenoisedRecord(SkeletonRecord):
    """``_core.data_prepare_skeleton(path, 1)``: parsed and denoised."""
    denoised: F32Array
    denoised_colors: F32Array
    num_actors: int
    actor1: List[int]
    actor2: List[int]
    denoised_motion: List[float]
    body_dropped: List[int]
    frames_removed: int
    actors_info: Optional[str]


class PreparedRecord(DenoisedRecord):
    """``_core.data_prepare_skeleton(path, 2)``: parsed, denoised and translated."""
    aligned: F32Array
    origin: F32Array
    origin_frame: int

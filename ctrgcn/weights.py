"""Reading weights: the project's file, ``.npz`` archives of named arrays, PyTorch checkpoints,
PaddleVideo ``.pdparams`` and Paddle inference files (readers in ``ctrgcn/formats/``), and spec
inference from names and shapes."""
from __future__ import annotations

import os
import zipfile
from typing import Any, Dict, List, Mapping, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn import _core
from ctrgcn._core import FileError, InputError
from ctrgcn._types import PathLike, SpecShape
from ctrgcn.model import GRAPHS, IGNORED_SUFFIXES, Model
from ctrgcn.skeletons import EdgeList

# What a reader of ctrgcn.formats returns: name -> array under the source's names, or (unpickled
# checkpoints) any nesting of containers that ``names.unwrap_checkpoint`` looks into.
RawState = Dict[Any, Any]

MAGIC = b"CTRGCN\x00\x01"


def read_npz(path: PathLike) -> Dict[str, NDArray[Any]]:
    """name -> array from a ``.npz`` (pickles refused, memory bounded by the file: formats/npz.py)."""
    from ctrgcn.formats.npz import read_npz as read
    return read(path)


def infer_spec(state: Mapping[str, ArrayLike]) -> SpecShape:
    """(variant, num_classes, num_joints, num_person, in_channels, base_channel) from tensor names
    and shapes, as the official and PaddleVideo checkpoints name them."""
    keys = {k for k in state if not k.endswith(IGNORED_SUFFIXES)}

    def shape(name: str) -> Tuple[int, ...]:
        if name not in keys:
            raise InputError(f"cannot tell the model from these weights: no {name!r}")
        return tuple(np.shape(state[name]))

    fc = shape("fc.weight")
    if len(fc) != 2:
        raise InputError(f"fc.weight must be 2-D, got shape {fc}")
    num_classes, width = fc
    if width % 4:
        raise InputError(f"fc.weight has {width} inputs, not 4 x a base width")
    base = width // 4
    PA = shape("l1.gcn1.PA")
    if len(PA) != 3 or PA[0] != 3 or PA[1] != PA[2]:
        raise InputError(f"l1.gcn1.PA must be (3, V, V), got {PA}")
    V = PA[1]
    fused = "l1.gcn1.convs.conv1.weight" in keys
    if fused:
        rows, cin = shape("l1.gcn1.convs.conv1.weight")[:2]
        R = shape("l1.gcn1.convs.conv2.0.weight")[1]
        ratio = (rows - 3 * base) / R if R else 0
        if ratio == 6:
            variant = "CTRGCN_lightV1"
        elif ratio == 2:
            variant = "CTRGCN_lightV2"
        else:
            raise InputError(f"l1.gcn1.convs.conv1 has {rows} rows: neither lightV1 (6R + 3b) nor lightV2 (2R + 3b)")
    else:
        cin = shape("l1.gcn1.convs.0.conv1.weight")[1]
        variant = "CTRGCN" if "l2.gcn1.PA" in keys else "CTRGCN_light"
    if variant == "CTRGCN_lightV1" and "l2.gcn1.PA" in keys:
        raise InputError("fused weights with a spatial module in l2 match no known variant")
    mvc = shape("data_bn.weight")[0]
    if mvc % (V * cin):
        raise InputError(f"data_bn has {mvc} channels, not persons x {V} joints x {cin} coordinates")
    return dict(variant=variant, num_classes=int(num_classes), num_joints=int(V), num_person=int(mvc // (V * cin)),
                in_channels=int(cin), base_channel=int(base))


def model_from_state(state: Mapping[str, ArrayLike], graph: Union[str, EdgeList, None] = None) -> Model:
    """A model whose spec ``infer_spec`` reads off ``state``, with those weights; the graph from V
    (25 -> ntu, 20 -> ucla) unless given."""
    spec = infer_spec(state)
    V = spec["num_joints"]
    if graph is None:
        graph = {v: k for k, v in GRAPHS.items()}.get(V)
        if graph is None:
            raise InputError(f"weights for {V} joints: pass graph= (an edge list) to load them")
    model = Model(spec["variant"], num_classes=spec["num_classes"], graph=graph, num_person=spec["num_person"],
                  in_channels=spec["in_channels"], base_channel=spec["base_channel"], num_joints=V)
    if model.num_joints != V:
        raise InputError(f"graph has {model.num_joints} joints, the weights {V}")
    model.load_state_dict(state)
    return model


INFERENCE_SUFFIXES = (".pdiparams", ".pdmodel", ".pdiparams.info", ".json")


def _zip_names(path: str) -> List[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
            UnicodeDecodeError, RuntimeError) as exc:
        raise InputError(f"{path!r}: damaged zip archive ({exc})") from None


def read_raw(path: PathLike) -> Tuple[RawState, bool]:
    """(name -> array under the source's names, whether Linear weights are stored [in, out])."""
    path = os.fspath(path)
    if path.endswith(INFERENCE_SUFFIXES) or (not os.path.exists(path) and os.path.exists(path + ".pdiparams")):
        from ctrgcn.formats.paddle import read_inference
        return read_inference(path), True
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise FileError(f"cannot open {path!r}: {exc.strerror}") from None
    if head[:4] == b"PK\x03\x04" or (head[:2] == b"PK" and path.endswith((".pt", ".pth", ".npz"))):
        names = _zip_names(path)
        if any(n.endswith("/data.pkl") for n in names):
            from ctrgcn.formats.torch_zip import read_torch
            return read_torch(path), False
        return read_npz(path), False
    if head[:4] == b"\x80\x02\x8a\x0a":  # pickle of a long: the legacy (pre-1.6) torch.save magic number
        raise InputError(f"{path!r}: a PyTorch checkpoint in the legacy pre-1.6 format; re-save it with "
                         "torch.save(..., _use_new_zipfile_serialization=True)")
    if head[:1] == b"\x80":
        from ctrgcn.formats.paddle import read_pdparams
        return read_pdparams(path), True
    raise InputError(f"{path!r}: unknown weight file format (expected a ctrgcn file, a PyTorch checkpoint, "
                     "a .pdparams, a Paddle inference model or a .npz)")


def read_state(path: PathLike) -> Dict[str, NDArray[Any]]:
    """project name -> array from any weight file this version reads."""
    from ctrgcn.formats.names import normalise, unwrap_checkpoint
    raw, paddle_layout = read_raw(path)
    return normalise(unwrap_checkpoint(raw, repr(os.fspath(path))), paddle_layout, repr(os.fspath(path)))


def load(path: PathLike, graph: Union[str, EdgeList, None] = None) -> Model:
    """A model from a weight file: the project's own file (float32, float16 or int8), an official
    PyTorch checkpoint, a PaddleVideo ``.pdparams``, a Paddle inference model or a ``.npz`` of named
    arrays (official PyTorch or PaddleVideo names). Variant, classes, joints and persons come from names and shapes;
    the graph from V (25 -> ntu, 20 -> ucla) unless given. A name that is no file but a shipped
    model's (``ctrgcn.pretrained()``) loads that model."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        if not path.endswith(INFERENCE_SUFFIXES) and os.path.exists(path + ".pdiparams"):
            head = b""  # an inference model's prefix
        else:
            from ctrgcn.zoo import available, pretrained
            if not os.path.exists(path) and path in available():
                return pretrained(path)  # no such file, but a shipped model of that name
            raise FileError(f"cannot open {path!r}: {exc.strerror}") from None
    if head == MAGIC:
        net = _core.load_file(path)
        return Model._wrap(net, graph if isinstance(graph, str) else None)
    return model_from_state(read_state(path), graph)

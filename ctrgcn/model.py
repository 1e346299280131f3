"""The Python face of a model: NumPy in, NumPy out, over one C handle (``_core.Net``)."""
from collections import OrderedDict

import numpy as np

from ctrgcn import _core
from ctrgcn._core import InputError

VARIANTS = ("CTRGCN", "CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2")
GRAPHS = {"ntu": 25, "ucla": 20}
# Keys official checkpoints carry that hold no values of ours.
IGNORED_SUFFIXES = (".num_batches_tracked",)


def _check_variant(variant):
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def _graph_args(graph, num_joints):
    """'ntu' / 'ucla' / an edge list -> (graph name, V, edges or None)."""
    if isinstance(graph, str):
        if graph not in GRAPHS:
            raise InputError(f"unknown graph {graph!r}; use 'ntu', 'ucla' or a list of (i, j) edges")
        if num_joints is not None and int(num_joints) != GRAPHS[graph]:
            raise InputError(f"graph {graph!r} has {GRAPHS[graph]} joints, num_joints says {num_joints}")
        return graph, GRAPHS[graph], None
    try:
        edges = np.asarray(graph, dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError("graph: expected 'ntu', 'ucla' or a list of (i, j) joint pairs") from None
    if edges.size == 0:
        edges = edges.reshape(0, 2)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise InputError(f"graph: expected a list of (i, j) joint pairs, got an array of shape {edges.shape}")
    if edges.size and edges.min() < 0:
        raise InputError("graph: joint indices are 0-based and must be >= 0")
    V = int(num_joints) if num_joints else (int(edges.max()) + 1 if edges.size else 1)
    return "custom", V, edges.astype(np.int32)


class Model:
    """A CTR-GCN family network in eval mode.

    ``Model(variant="CTRGCN", num_classes=60, graph="ntu", num_person=2, in_channels=3, seed=0)``
    initialises as the official code does (Kaiming-normal convolutions, BatchNorm at 1 / 0, the
    spatial BN at 1e-6, ``alpha`` 0, ``PA`` the graph); ``graph`` is "ntu", "ucla" or a list of
    inward edges ``(i, j)`` over 0-based joints.
    """

    def __init__(self, variant="CTRGCN", num_classes=60, graph="ntu", num_person=2, in_channels=3, seed=0,
                 base_channel=None, num_joints=None):
        _check_variant(variant)
        if base_channel is not None and int(base_channel) < 1:
            raise InputError(f"base_channel must be a positive width, got {base_channel}")
        name, V, edges = _graph_args(graph, num_joints)
        kwargs = dict(base_channel=int(base_channel or 0))
        if edges is not None:
            kwargs.update(num_joints=V, edges=edges)
        self._net = _core.Net(variant, name if edges is None else "ntu", int(num_classes), int(num_person),
                              int(in_channels), int(seed) & (2**64 - 1), **kwargs)
        self._graph = name

    @classmethod
    def _wrap(cls, net, graph=None):
        self = cls.__new__(cls)
        self._net = net
        spec = net.spec()
        if graph is None:
            graph = {25: "ntu", 20: "ucla"}.get(spec["num_joints"], "custom")
        self._graph = graph
        return self

    # ---- description ----
    @property
    def spec(self):
        """The model spec as a dict (variant, classes, joints, persons, channels, base width, edges)."""
        spec = self._net.spec()
        spec["graph"] = self._graph
        return spec

    variant = property(lambda self: self._net.spec()["variant"])
    num_classes = property(lambda self: self._net.spec()["num_classes"])
    num_joints = property(lambda self: self._net.spec()["num_joints"])
    num_person = property(lambda self: self._net.spec()["num_person"])
    in_channels = property(lambda self: self._net.spec()["in_channels"])
    base_channel = property(lambda self: self._net.spec()["base_channel"])

    def num_parameters(self):
        """Learned values (BatchNorm running statistics excluded)."""
        return self._net.num_parameters()

    def __repr__(self):
        s = self._net.spec()
        return (f"Model(variant={s['variant']!r}, num_classes={s['num_classes']}, graph={self._graph!r}, "
                f"num_person={s['num_person']}, in_channels={s['in_channels']}, base_channel={s['base_channel']})")

    # ---- inference ----
    def _input(self, x):
        if isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous:
            arr = x
        else:
            try:
                arr = np.asarray(x)
            except (TypeError, ValueError) as exc:
                raise InputError(f"x: not convertible to an array ({exc})") from None
            if arr.dtype.kind not in "fiub":
                raise InputError(f"x: expected real numbers, got dtype {arr.dtype}")
        if arr.ndim != 5:
            hint = " (one sample? use x[None])" if arr.ndim == 4 else ""
            raise InputError(f"x: expected 5 dimensions (N, C, T, V, M), got shape {arr.shape}{hint}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def forward(self, x):
        """Logits ``(N, num_classes)`` float32 for ``x`` ``(N, C, T, V, M)``, any ``T >= 1``."""
        return self._net.forward(self._input(x))

    __call__ = forward

    def forward_block(self, x, block):
        """Logits and the output of block ``block`` (1..10) for every person: ``(N*M, C, T', V)``."""
        if not 1 <= int(block) <= 10:
            raise InputError(f"block must be in 1..10, got {block}")
        return self._net.forward(self._input(x), int(block))

    def predict_proba(self, x):
        logits = self.forward(x).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict(self, x):
        """Top-1 class index per sample."""
        return np.argmax(self.forward(x), axis=1)

    def set_threads(self, threads):
        """Threads for forward; 0 uses every core."""
        self._net.set_threads(int(threads))

    # ---- training ----
    def gradients(self, x, y, label_smoothing=0.0):
        """``(loss, grads)``: the mean cross-entropy of a batch in train mode (BatchNorm on batch
        statistics) and a dict of gradients under the state_dict names (learned tensors only).
        The model is left unchanged."""
        from ctrgcn.training import gradients
        return gradients(self, x, y, label_smoothing)

    # ---- weights ----
    def tensor_shapes(self):
        """OrderedDict name -> shape of every named tensor, in table order."""
        return OrderedDict((name, shape) for name, shape, _ in self._net.tensors())

    def state_dict(self):
        """OrderedDict name -> float32 array (copies): official PyTorch names for the unfused
        variants, PaddleVideo module paths for the fused ones."""
        return OrderedDict((name, self._net.get(name)) for name, _, _ in self._net.tensors())

    def load_state_dict(self, state, strict=True):
        """Copy tensors in. Every name and shape is checked before anything changes, so a failed
        load leaves the model as it was. ``num_batches_tracked`` entries are ignored."""
        shapes = self.tensor_shapes()
        given = {k: v for k, v in state.items() if not k.endswith(IGNORED_SUFFIXES)}
        missing = [k for k in shapes if k not in given]
        unexpected = [k for k in given if k not in shapes]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:8])}" + (" ..." if len(missing) > 8 else ""))
            if unexpected:
                parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:8])}"
                             + (" ..." if len(unexpected) > 8 else ""))
            raise InputError(f"state dict does not fit this {self.variant} model: " + "; ".join(parts))
        arrays = {}
        for name, shape in shapes.items():
            if name not in given:
                continue
            try:
                arr = np.asarray(given[name])
            except (TypeError, ValueError):
                raise InputError(f"tensor {name!r}: not an array") from None
            if arr.dtype.kind not in "fiub":
                raise InputError(f"tensor {name!r}: expected real numbers, got dtype {arr.dtype}")
            if tuple(arr.shape) != tuple(shape):
                if arr.size == int(np.prod(shape)) and name.endswith("alpha"):
                    arr = arr.reshape(shape)  # a scalar alpha saved as ()
                else:
                    raise InputError(f"tensor {name!r}: expected shape {tuple(shape)}, got {tuple(arr.shape)}")
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if not np.isfinite(arr).all():
                raise InputError(f"tensor {name!r} has non-finite values")
            if name.endswith("running_var") and (arr < 0).any():
                raise InputError(f"tensor {name!r} has negative variances")
            arrays[name] = arr
        for name, arr in arrays.items():
            self._net.set(name, arr)

    def save(self, path, dtype="float32"):
        """Write the project's own single file (versioned header with the spec, named tensors,
        CRC-32), atomically. ``dtype``: "float32"; "float16" (every tensor half precision) or
        "int8" (convolution and classifier weights int8 with a float32 scale per output channel),
        both after folding each BatchNorm into the convolution before it (ctrgcn/formats/quantize.py)."""
        from ctrgcn.formats import quantize
        quantize.save(self, path, dtype)

    def export_onnx(self, path, opset=17):
        """Write the eval network as ONNX (needs the ``onnx`` package): input "x" (N, C, T, V, M)
        with N and T dynamic, output "logits"; the aggregation is a MatMul, so every runtime takes it."""
        from ctrgcn.formats import onnx_export
        onnx_export.export(self, path, opset)

    def block_shape(self, block, frames):
        """(channels, frames) of block ``block``'s output for an input of ``frames`` frames."""
        return self._net.block_shape(int(block), int(frames))

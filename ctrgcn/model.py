"""The Python face of a model: NumPy in, NumPy out.

A ``Model`` holds weights and the spec (one C handle, ``_core.Net``); execution happens in
sessions (``_core.Session``) that own the backend, the folded weights and the workspaces. Each
call to ``model(x)`` borrows a session from the model's pool (a new one when every session is in
use), so one model serves any number of threads at once, with any shapes.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn import _core
from ctrgcn._core import InputError
from ctrgcn._types import BlockLayout, F32Array, ModelSpec, PathLike, Spec
from ctrgcn.metrics import softmax
from ctrgcn.skeletons import CORE_GRAPHS, GRAPHS as SKELETONS, EdgeList, edge_array
from ctrgcn.cuda import check_device

if TYPE_CHECKING:
    from ctrgcn.profile import OpProfile

VARIANTS = tuple(_core.preset_spec())  # the presets are rows of one table in C (spec.c)
GRAPHS = {name: g.num_joints for name, g in SKELETONS.items()}  # built-in graph -> joints
# Keys official checkpoints carry that hold no values of ours.
IGNORED_SUFFIXES = (".num_batches_tracked",)

_M = TypeVar("_M", bound="Model")
_D = TypeVar("_D", bound=np.generic)

_busy_lock = threading.Lock()
_busy = [0]  # forwards running in this process: concurrent calls share the cores instead of each taking all


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def _graph_args(graph: Union[str, EdgeList],
                num_joints: Optional[int]) -> Tuple[str, int, Optional[NDArray[np.int32]]]:
    """A built-in graph name / an edge list -> (graph name, V, edges or None). The C core builds
    'ntu' and 'ucla' by name; the other built-in graphs travel as their bone lists."""
    if isinstance(graph, str):
        if graph not in GRAPHS:
            raise InputError(f"unknown graph {graph!r}; use one of {', '.join(GRAPHS)} or a list of (i, j) edges")
        if num_joints is not None and int(num_joints) != GRAPHS[graph]:
            raise InputError(f"graph {graph!r} has {GRAPHS[graph]} joints, num_joints says {num_joints}")
        if graph in CORE_GRAPHS:
            return graph, GRAPHS[graph], None
        return graph, GRAPHS[graph], SKELETONS[graph].edges.astype(np.int32)
    edges = edge_array(graph, "a list of (i, j) joint pairs", "a built-in graph name or ")
    if edges.size and edges.min() < 0:
        raise InputError("graph: joint indices are 0-based and must be >= 0")
    V = int(num_joints) if num_joints else (int(edges.max()) + 1 if edges.size else 1)
    return "custom", V, edges.astype(np.int32)


def _graph_name(spec: Spec) -> str:
    """The built-in graph a spec's joints and edges are, or "custom"."""
    for name, g in SKELETONS.items():
        if g.num_joints != spec["num_joints"]:
            continue  # a known joint count with a different edge list is custom
        ref = _core.preset_spec("CTRGCN", name, 1, 1, 3)["edges"] if name in CORE_GRAPHS else g.edges.tolist()
        if [tuple(e) for e in ref] == [tuple(e) for e in spec["edges"]]:
            return name
    return "custom"


def preset_spec(variant: str = "CTRGCN", num_classes: int = 60, graph: Union[str, EdgeList] = "ntu",
                num_person: int = 2, in_channels: int = 3, base_channel: Optional[int] = None,
                num_joints: Optional[int] = None) -> Spec:
    """The spec dict of a preset (read from the C table), ready to edit and pass to
    ``Model.from_spec``: widths, strides, ``spatial`` per block, ``conv`` "separate" / "fused",
    ``relation`` "per_subset" / "shared", kernel size and dilations, the relation-width rule."""
    _check_variant(variant)
    name, V, edges = _graph_args(graph, num_joints)
    spec = _core.preset_spec(variant, name if edges is None else "ntu", int(num_classes), int(num_person),
                             int(in_channels))
    if edges is not None:
        spec["num_joints"], spec["edges"] = V, edges.tolist()
    if base_channel is not None:
        base = int(base_channel)
        if base < 8:
            raise InputError(f"base_channel must be at least 8, got {base_channel}")
        if spec["conv"] == "separate" and base % 4:
            raise InputError(f"{variant} splits each width in four branches: base_channel must be divisible by 4, "
                             f"got {base}")
        old = spec["base_channel"]
        for b in spec["blocks"]:  # preset widths are b, 2b, 4b
            b["out_channels"] = b["out_channels"] // old * base
        spec["base_channel"] = base
    return spec


class Model:
    """A CTR-GCN family network.

    ``Model(variant="CTRGCN", num_classes=60, graph="ntu", num_person=2, in_channels=3, seed=0)``
    initialises as the official code does (Kaiming-normal convolutions, BatchNorm at 1 / 0, the
    spatial BN at 1e-6, ``alpha`` 0, ``PA`` the graph); ``graph`` is "ntu", "ucla" or a list of
    inward edges ``(i, j)`` over 0-based joints. ``Model.from_spec(spec)`` builds any spec
    (see ``preset_spec``). Calls are thread-safe: each concurrent call runs in its own session.
    ``device`` ("cpu" or "cuda") is where calls run; the weights themselves stay in host memory
    (each session keeps its copy on the device), so ``to(device)`` is cheap and files do not care.
    """

    def __init__(self, variant: str = "CTRGCN", num_classes: int = 60, graph: Union[str, EdgeList] = "ntu",
                 num_person: int = 2, in_channels: int = 3, seed: int = 0, base_channel: Optional[int] = None,
                 num_joints: Optional[int] = None, device: str = "cpu") -> None:
        device = check_device(device)
        spec = preset_spec(variant, num_classes, graph, num_person, in_channels, base_channel, num_joints)
        self._setup(_core.Net(spec, int(seed) & (2**64 - 1)), _graph_args(graph, num_joints)[0])
        self._device = device

    @classmethod
    def from_spec(cls: Type[_M], spec: Mapping[str, Any], seed: int = 0, device: str = "cpu") -> _M:
        """A model of a user-defined spec (a dict as ``preset_spec`` returns, edited)."""
        if not isinstance(spec, dict):
            raise InputError("spec: expected a dict (see ctrgcn.preset_spec)")
        spec = dict(spec)
        spec.pop("graph", None)
        spec.pop("variant", None)
        device = check_device(device)
        self = cls.__new__(cls)
        self._setup(_core.Net(spec, int(seed) & (2**64 - 1)), None)
        self._device = device
        return self

    def _setup(self, net: _core.Net, graph: Optional[str]) -> None:
        self._net = net
        if graph is None:
            graph = _graph_name(net.spec())
        self._graph = graph
        self._device = "cpu"
        self._threads = 0
        self._pool: Dict[Tuple[str, int], List[_core.Session]] = {}
        self._pool_lock = threading.Lock()
        self._names_lock = threading.Lock()  # a save (GIL released) reads the names that a setter frees

    @classmethod
    def _wrap(cls: Type[_M], net: _core.Net, graph: Optional[str] = None) -> _M:
        self = cls.__new__(cls)
        self._setup(net, graph)
        return self

    # ---- sessions ----
    @contextmanager
    def _session(self) -> Iterator[_core.Session]:
        """A session for this call: from the pool, or new. Concurrent calls with threads=0 share
        the cores (n calls get cores/n threads each) instead of oversubscribing them."""
        with _busy_lock:
            _busy[0] += 1
            active = _busy[0]
        threads = self._threads or max(1, _CORES // active)
        with self._pool_lock:
            device = self._device
            key = (device, threads if device == "cpu" else 0)
            free = self._pool.setdefault(key, [])
            sess = free.pop() if free else None
        try:
            if sess is None:
                sess = _core.Session(self._net, device, key[1])
            yield sess
        finally:
            with self._pool_lock:
                if sess is not None and device == self._device:  # a session of the old device is dropped
                    self._pool.setdefault(key, []).append(sess)
            with _busy_lock:
                _busy[0] -= 1

    # ---- device ----
    @property
    def device(self) -> str:
        """Where calls run: "cpu" or "cuda"."""
        return self._device

    def to(self: _M, device: str) -> _M:
        """Run later calls on ``device`` ("cpu" or "cuda"); returns the model. Without a usable GPU,
        "cuda" raises ctrgcn.Error saying why. Sessions of the other device are released."""
        device = check_device(device)
        with self._pool_lock:
            if device != self._device:
                self._device = device
                self._pool = {}
        return self

    # ---- description ----
    @property
    def spec(self) -> ModelSpec:
        """The model spec as a dict (variant, classes, joints, persons, channels, base width, edges)."""
        spec: ModelSpec = {**self._net.spec(), "graph": self._graph}
        return spec

    @property
    def variant(self) -> str:
        """The preset the spec is, or "custom" for an edited spec."""
        return self._net.spec()["variant"]

    @property
    def num_classes(self) -> int:
        """Classes the model scores (columns of the logits)."""
        return self._net.spec()["num_classes"]

    @property
    def num_joints(self) -> int:
        """Joints per person, V."""
        return self._net.spec()["num_joints"]

    @property
    def num_person(self) -> int:
        """Persons per sample, M."""
        return self._net.spec()["num_person"]

    @property
    def in_channels(self) -> int:
        """Channels per joint, C (3 for x, y, z)."""
        return self._net.spec()["in_channels"]

    @property
    def base_channel(self) -> int:
        """The base width b (blocks are b, 2b and 4b wide in the presets)."""
        return self._net.spec()["base_channel"]

    @property
    def classes(self) -> Optional[List[str]]:
        """Class names (a list of ``num_classes`` str) or None; kept when the model is saved."""
        return self._net.classes()

    @classes.setter
    def classes(self, names: Optional[Sequence[str]]) -> None:
        if names is not None:
            if isinstance(names, str):
                raise InputError("classes: expected a list of names, got one str")
            names = [str(n) if isinstance(n, np.str_) else n for n in names]
            if len(names) != self.num_classes:
                raise InputError(f"classes: {len(names)} names for a model of {self.num_classes} classes")
        with self._names_lock:
            self._net.set_classes(names)

    def class_name(self, index: int) -> str:
        """The name of class ``index``, or ``str(index)`` when the model carries no names."""
        names = self.classes
        return names[int(index)] if names else str(int(index))

    def num_parameters(self) -> int:
        """Learned values (BatchNorm running statistics excluded)."""
        return self._net.num_parameters()

    def __repr__(self) -> str:
        s = self._net.spec()
        return (f"Model(variant={s['variant']!r}, num_classes={s['num_classes']}, graph={self._graph!r}, "
                f"num_person={s['num_person']}, in_channels={s['in_channels']}, base_channel={s['base_channel']}"
                + (f", device={self._device!r})" if self._device != "cpu" else ")"))

    # ---- inference ----
    def _input(self, x: ArrayLike) -> F32Array:
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

    def forward(self, x: ArrayLike) -> F32Array:
        """Logits ``(N, num_classes)`` float32 for ``x`` ``(N, C, T, V, M)``, any ``T >= 1``."""
        x = self._input(x)
        with self._session() as sess:
            return sess.forward(x)

    __call__ = forward

    def forward_block(self, x: ArrayLike, block: int) -> Tuple[F32Array, F32Array]:
        """Logits and the output of block ``block`` (1..10) for every person: ``(N*M, C, T', V)``."""
        if not 1 <= int(block) <= 10:
            raise InputError(f"block must be in 1..10, got {block}")
        x = self._input(x)
        with self._session() as sess:
            return sess.forward(x, int(block))

    def predict_proba(self, x: ArrayLike) -> F32Array:
        """Class probabilities ``(N, num_classes)`` float32: the softmax of the logits."""
        return softmax(self.forward(x))

    def predict(self, x: ArrayLike) -> NDArray[np.intp]:
        """Top-1 class index per sample."""
        top: NDArray[np.intp] = np.argmax(self.forward(x), axis=1)
        return top

    def set_threads(self, threads: int) -> None:
        """Threads per call; 0 (the default) uses every core, shared among concurrent calls."""
        threads = int(threads)
        if threads < 0:
            raise InputError(f"threads must be >= 0, got {threads}")
        with self._pool_lock:
            self._threads = threads

    # ---- training ----
    def gradients(self, x: ArrayLike, y: ArrayLike,
                  label_smoothing: float = 0.0) -> Tuple[float, Dict[str, F32Array]]:
        """``(loss, grads)``: the mean cross-entropy of a batch in train mode (BatchNorm on batch
        statistics) and a dict of gradients under the state_dict names (learned tensors only).
        The model is left unchanged."""
        from ctrgcn.training.losses import soft_targets
        sess = _core.Session(self._net, self._device, self._threads)
        sess.train_forward(self._input(x), False)
        loss = sess.train_backward(soft_targets(y, self.num_classes, label_smoothing))
        return loss, self.split_flat(sess.gradients())

    def profile(self, x: ArrayLike, steps: int = 5, warmup: int = 2) -> OpProfile:
        """Time every backend op of the eval forward of ``x`` (see ``ctrgcn.profile``), on a
        session of its own with this model's device and threads."""
        from ctrgcn.profile import run_profile
        sess = _core.Session(self._net, self._device, self._threads)
        xin = self._input(x)
        what = f"{self.variant} eval {tuple(xin.shape)} on {self._device}"
        return run_profile(sess, lambda: sess.forward(xin), steps, warmup, what)

    def trainer(self, momentum: float = 0.9, weight_decay: float = 1e-4, nesterov: bool = True,
                threads: Optional[int] = None, device: Optional[str] = None) -> Trainer:
        """A ``Trainer``: a training session over this model (parameters, gradients and momentum
        live in it, on the model's device unless ``device`` says otherwise; ``sync()`` writes the
        weights back)."""
        return Trainer(self, momentum, weight_decay, nesterov, self._threads if threads is None else threads,
                       self._device if device is None else device)

    # ---- the flat parameter layout (checkpoints, optimizers) ----
    def flat_params(self) -> F32Array:
        """Every tensor in one float32 array, tensor i at ``offsets()[i]`` in table order."""
        return self._net.params()

    def set_flat_params(self, flat: ArrayLike) -> None:
        """Every tensor from one flat array in the layout of ``flat_params``."""
        self._net.set_params(flat)

    def offsets(self) -> List[int]:
        """The offset of each tensor in the flat layout, in table order."""
        return self._net.offsets()

    def tensor_table(self) -> List[Tuple[str, Tuple[int, ...], bool, int]]:
        """[(name, shape, is_buffer, offset in the flat layout)] in table order."""
        return [(n, s, b, o) for (n, s, b), o in zip(self._net.tensors(), self._net.offsets())]

    def split_flat(self, flat: NDArray[_D], learned_only: bool = True) -> Dict[str, NDArray[_D]]:
        """A flat array -> dict name -> array (copies), learned tensors only by default."""
        out: Dict[str, NDArray[_D]] = {}
        for (name, shape, is_buffer), off in zip(self._net.tensors(), self._net.offsets()):
            if learned_only and is_buffer:
                continue
            n = int(np.prod(shape))
            out[name] = np.asarray(flat[off:off + n]).reshape(shape).copy()
        return out

    def block_layout(self) -> List[BlockLayout]:
        """What each block computes, as the spec implies it: a dict per block (widths, stride,
        spatial module, relation width R and count, fused, down path, branch widths, residual,
        kernel and dilations)."""
        return self._net.layout()

    def write_file(self, path: PathLike, dtype_code: int = 0) -> None:
        """The project's file with tensors stored as given (0 float32, 1 float16, 2 int8) as they
        are; ``save`` folds BatchNorms first for the compact dtypes."""
        with self._names_lock:
            self._net.save(str(path), int(dtype_code))

    # ---- weights ----
    def tensor_shapes(self) -> OrderedDict[str, Tuple[int, ...]]:
        """OrderedDict name -> shape of every named tensor, in table order."""
        return OrderedDict((name, shape) for name, shape, _ in self._net.tensors())

    def state_dict(self) -> OrderedDict[str, F32Array]:
        """OrderedDict name -> float32 array (copies): official PyTorch names for the unfused
        variants, PaddleVideo module paths for the fused ones."""
        return OrderedDict((name, self._net.get(name)) for name, _, _ in self._net.tensors())

    def load_state_dict(self, state: Mapping[str, ArrayLike], strict: bool = True) -> None:
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
        arrays: Dict[str, F32Array] = {}
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

    def save(self, path: PathLike, dtype: str = "float32", fold_bn: bool = True) -> None:
        """Write the project's own single file (versioned header with the spec, named tensors,
        CRC-32), atomically. ``dtype``: "float32"; "float16" (every tensor half precision) or
        "int8" (convolution and classifier weights int8 with a float32 scale per output channel),
        both after folding each BatchNorm into the convolution before it (ctrgcn/formats/quantize.py)
        unless ``fold_bn`` is False, which keeps the BatchNorms as trained so that fine-tuning can
        start from the file."""
        from ctrgcn.formats import quantize
        quantize.save(self, path, dtype, fold_bn)

    def export_onnx(self, path: PathLike, opset: int = 17) -> None:
        """Write the eval network as ONNX (needs the ``onnx`` package): input "x" (N, C, T, V, M)
        with N and T dynamic, output "logits"; the aggregation is a MatMul, so every runtime takes it."""
        from ctrgcn.formats import onnx_export
        onnx_export.export(self, path, opset)

    def block_shape(self, block: int, frames: int) -> Tuple[int, int]:
        """(channels, frames) of block ``block``'s output for an input of ``frames`` frames."""
        return self._net.block_shape(int(block), int(frames))


def _core_count() -> int:
    import os
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_CORES = _core_count()  # once: every call divides them among the calls running at once


class Trainer:
    """Training in C: a session holding the parameters, gradients and SGD momentum of one model.

    ``step(x, targets, lr)`` runs forward, the loss on soft targets, backward, weight decay and SGD
    in one call and returns ``(loss, logits)``; ``forward`` / ``backward`` / ``sgd_step`` split it
    (mutual learning adds ``extra_dlogits``). The model's weights change only on ``sync()``.
    On ``device="cuda"`` parameters, gradients, momentum and activations stay on the GPU; a step
    copies the batch in and the loss and logits out."""

    def __init__(self, model: Model, momentum: float = 0.9, weight_decay: float = 1e-4, nesterov: bool = True,
                 threads: int = 0, device: Optional[str] = "cpu") -> None:
        self.model = model
        self.device = check_device(device)
        self._sess = _core.Session(model._net, self.device, int(threads))
        self._sess.set_sgd(float(momentum), float(weight_decay), bool(nesterov))

    def forward(self, x: ArrayLike, update_stats: bool = True) -> F32Array:
        """Train-mode logits of ``x``, keeping what ``backward`` needs; ``update_stats``: move the
        BatchNorm running statistics."""
        return self._sess.train_forward(self.model._input(x), bool(update_stats))

    def backward(self, targets: ArrayLike, extra_dlogits: Optional[ArrayLike] = None) -> float:
        """The mean loss of the last ``forward`` against soft ``targets`` (N, classes); its gradients
        (plus ``extra_dlogits`` at the logits) stay in the session."""
        return self._sess.train_backward(targets, extra_dlogits)

    def sgd_step(self, lr: float) -> None:
        """One SGD update (momentum, weight decay, Nesterov as set) of the session's parameters."""
        self._sess.sgd_step(float(lr))

    def step(self, x: ArrayLike, targets: ArrayLike, lr: float) -> Tuple[float, F32Array]:
        """``forward``, ``backward`` and ``sgd_step`` in one: returns (loss, logits)."""
        logits = self.forward(x)
        loss = self.backward(targets)
        self.sgd_step(lr)
        return loss, logits

    def profile(self, x: ArrayLike, targets: ArrayLike, lr: float = 0.0, steps: int = 5,
                warmup: int = 2) -> OpProfile:
        """Time every backend op of ``step(x, targets, lr)`` (see ``ctrgcn.profile``); the steps
        train this session's parameters like any other."""
        from ctrgcn.profile import run_profile
        xin = self.model._input(x)
        what = f"{self.model.variant} training step {tuple(xin.shape)} on {self.device}"
        return run_profile(self._sess, lambda: self.step(xin, targets, lr), steps, warmup, what)

    def gradients(self) -> Dict[str, F32Array]:
        """Gradients of the last backward by state_dict name."""
        return self.model.split_flat(self._sess.gradients())

    def sync(self) -> None:
        """Write the trained weights and running statistics into the model."""
        self._sess.write_params()

    def velocity(self) -> Tuple[F32Array, int]:
        """(flat momentum buffer, steps taken), for checkpoints."""
        return self._sess.get_velocity()

    def set_velocity(self, velocity: ArrayLike, steps: int) -> None:
        """Restore the momentum buffer and the step count from a checkpoint (see ``velocity``)."""
        self._sess.set_velocity(velocity, int(steps))

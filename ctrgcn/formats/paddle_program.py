"""Layer names for a Paddle 3 inference model (``<prefix>.json`` + ``<prefix>.pdiparams``).

Paddle 3's default ``paddle.jit.save`` writes the program as PIR JSON and no ``.pdiparams.info``,
so the parameters carry only Paddle's internal names (``conv2d_7.w_0``, ``batch_norm2d_3.w_1``,
``create_parameter_2.w_0``, ``linear_0.b_0``). Those names still tell two things: the layer type
and its creation counter, and within one type PaddleVideo creates layers in the order of the
network's tensor table. The program's op graph tells what each tensor is: a ``conv2d`` filter, a
bias added to a ``conv2d`` output, the mean / variance / scale / shift operands of one
``batch_norm``, the matrix of a ``matmul``. The mapping pairs, type by type, the program's layers
in creation order with the spec's layers in table order, and checks every role and shape; the
variant is the one whose table fits. The counters may start anywhere (a process that built other
layers first), only their order counts.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, NoReturn, Optional, Set, Tuple, Type, TypeVar, Union

import numpy as np
from numpy.typing import NDArray

from ctrgcn import _core
from ctrgcn._core import FileError, InputError
from ctrgcn._types import PathLike

_T = TypeVar("_T")
Shape = Tuple[int, ...]
# a layer of the program: tensor ("weight", "running_mean", ...; "" for a bare parameter) -> internal name
Layer = Dict[str, str]
# a layer of the spec's table: its module (None for a bare parameter), tensor -> (project name, shape)
ExpectedLayer = Tuple[Optional[str], Dict[str, Tuple[str, Shape]]]

MAX_NDIM = 8
MIN_PARAMS_PER_BASE2 = 200
INTERNAL_NAME = re.compile(r"([a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*)_(\d{1,9})\.([wb])_(\d{1,3})")
# layer type of the internal name -> kind of layer in the spec's table
TYPE_KIND = {"conv2d": "conv", "batch_norm2d": "bn", "batch_norm": "bn", "batch_norm1d": "bn1d",
             "linear": "linear", "create_parameter": "param"}
# slot of the internal name -> tensor of the layer, per kind
SLOTS = {"conv": {"w_0": "weight", "b_0": "bias"},
         "bn": {"w_0": "weight", "b_0": "bias", "w_1": "running_mean", "w_2": "running_var"},
         "linear": {"w_0": "weight", "b_0": "bias"}}
SLOTS["bn1d"] = SLOTS["bn"]
# operand index of a batch_norm op -> the BN tensor it must be
BN_OPERANDS = {1: "running_mean", 2: "running_var", 3: "weight", 4: "bias"}
VARIANTS = ("CTRGCN", "CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2")


def _fail(what: str, message: str) -> NoReturn:
    raise InputError(f"{what}: {message}")


def _get(obj: Any, key: Union[str, int], kind: Type[_T], what: str, where: str) -> _T:
    """obj[key] of the given type, or an InputError naming the place."""
    try:
        value = obj[key]
    except (KeyError, IndexError, TypeError):
        _fail(what, f"malformed PIR program ({where} is missing)")
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        _fail(what, f"malformed PIR program ({where} is a {type(value).__name__})")
    return value


def _value_id(entry: Any, what: str, where: str) -> int:
    return _get(entry, "%", int, what, where + " value id")


class Program:
    """The parts of a PIR program the mapping needs: parameters (internal name -> (shape, value
    id)) and ops in program order as (op name, operand value ids, result value ids)."""

    def __init__(self, text: str, what: str) -> None:
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            _fail(what, f"not a JSON document ({type(exc).__name__})")
        program = _get(doc, "program", dict, what, "program")
        regions = _get(program, "regions", list, what, "program.regions")
        block = _get(_get(_get(regions, 0, dict, what, "region 0"), "blocks", list, what, "blocks"), 0, dict, what,
                     "block 0")
        ops = _get(block, "ops", list, what, "the ops of block 0")
        self.params: Dict[str, Tuple[Shape, int]] = {}
        self.ops: List[Tuple[str, List[int], List[int]]] = []
        for i, op in enumerate(ops):
            name = _get(op, "#", str, what, f"op {i} name")
            if name == "p":
                self._parameter(op, i, what)
                continue
            ids = [_value_id(e, what, f"op {i} ({name}) operand")
                   for e in _get(op, "I", list, what, f"op {i} ({name}) operands")]
            outs = [_value_id(e, what, f"op {i} ({name}) result")
                    for e in _get(op, "O", list, what, f"op {i} ({name}) results")]
            self.ops.append((name, ids, outs))
        self.outputs: Dict[int, int] = {}  # value id -> index of the op producing it
        for k, (_, _, outs) in enumerate(self.ops):
            for vid in outs:
                self.outputs[vid] = k
        self.users: Dict[int, List[Tuple[int, int]]] = {}  # value id -> [(op index, operand index)]
        for k, (_, ids, _) in enumerate(self.ops):
            for j, vid in enumerate(ids):
                self.users.setdefault(vid, []).append((k, j))

    def _parameter(self, op: Any, i: int, what: str) -> None:
        attrs = _get(op, "A", list, what, f"parameter op {i} attributes")
        name = _get(attrs, 3, str, what, f"parameter op {i} name")
        out = _get(op, "O", dict, what, f"parameter {name!r} output")
        desc = _get(_get(out, "TT", dict, what, f"parameter {name!r} type"), "D", list, what, f"parameter {name!r}")
        dims = _get(desc, 1, list, what, f"parameter {name!r} dims")
        if len(dims) > MAX_NDIM or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31
                                          for d in dims):
            _fail(what, f"parameter {name!r} has the shape {dims!r}")
        if name in self.params:
            _fail(what, f"the program declares the parameter {name!r} twice")
        self.params[name] = (tuple(dims), _value_id(out, what, f"parameter {name!r}"))

    def role(self, vid: int) -> Tuple[str, Optional[str], Optional[int]]:
        """What the op graph makes of a parameter value: ("conv", "weight", op), ("conv", "bias",
        conv op), ("bn", tensor, op), ("linear", "weight" / "bias", op) or ("other", None, None)."""
        for k, j in self.users.get(vid, []):
            name = self.ops[k][0]
            if name == "1.conv2d" and j == 1:
                return "conv", "weight", k
            if name in ("1.batch_norm_", "1.batch_norm") and j in BN_OPERANDS:
                return "bn", BN_OPERANDS[j], k
            if name == "1.matmul" and j == 1:
                return "linear", "weight", k
            if name == "1.reshape" and j == 0:  # a conv bias is reshaped to [1, C, 1, 1] then added
                for out in self.ops[k][2]:
                    conv = self._added_to(out, "1.conv2d")
                    if conv is not None:
                        return "conv", "bias", conv
            if name == "1.add":
                if self._added_to(vid, "1.matmul") is not None:
                    return "linear", "bias", self._added_to(vid, "1.matmul")
                conv = self._added_to(vid, "1.conv2d")
                if conv is not None:
                    return "conv", "bias", conv
        return "other", None, None

    def _added_to(self, vid: int, producer: str) -> Optional[int]:
        """The index of the ``producer`` op whose output an ``add`` sums with value ``vid``."""
        for k, _ in self.users.get(vid, []):
            name, ids, _ = self.ops[k]
            if name != "1.add":
                continue
            for other in ids:
                src = self.outputs.get(other)
                if other != vid and src is not None and self.ops[src][0] == producer:
                    return src
        return None


def _layers(program: Program, what: str) -> Dict[str, List[Layer]]:
    """kind -> [{tensor: internal name}] in creation order."""
    layers: Dict[str, Dict[Tuple[str, int], Layer]] = {}
    feeds: Dict[Tuple[str, int], Set[Optional[int]]] = {}  # the program ops a layer's tensors feed
    for name, (shape, vid) in program.params.items():
        m = INTERNAL_NAME.fullmatch(name)
        if not m or m.group(1) not in TYPE_KIND:
            _fail(what, f"the parameter {name!r} is not named as Paddle names the layers of a CTR-GCN network "
                        "(conv2d_N, batch_norm2d_N, batch_norm1d_N, linear_N, create_parameter_N)")
        ltype, counter, slot = m.group(1), int(m.group(2)), f"{m.group(3)}_{m.group(4)}"
        kind = TYPE_KIND[ltype]
        if kind == "param":
            if slot != "w_0":
                _fail(what, f"unexpected parameter {name!r}")
            layers.setdefault(kind, {})[(ltype, counter)] = {"": name}
            continue
        tensor = SLOTS[kind].get(slot)
        if tensor is None:
            _fail(what, f"unexpected parameter {name!r} for a {ltype} layer")
        graph_kind, graph_tensor, op = program.role(vid)
        if graph_kind != ("bn" if kind == "bn1d" else kind) or graph_tensor != tensor:
            seen = "unused" if graph_kind == "other" else f"the {graph_tensor} of a {graph_kind} op"
            _fail(what, f"the op graph uses {name!r} as {seen}, not as the {tensor} of a {ltype} layer")
        layer = layers.setdefault(kind, {}).setdefault((ltype, counter), {})
        layer[tensor] = name
        ops = feeds.setdefault((ltype, counter), set())
        ops.add(op)
        if len(ops) > 1:
            _fail(what, f"the tensors of layer {ltype}_{counter} feed different ops of the program")
    for kind, group in layers.items():
        for (ltype, counter), layer in group.items():
            needed = {"bn": {"weight", "bias", "running_mean", "running_var"}, "param": {""}}.get(
                "bn" if kind == "bn1d" else kind, {"weight"})
            if not needed <= set(layer):
                _fail(what, f"layer {ltype}_{counter} lacks its {', '.join(sorted(needed - set(layer)))}")
    return {kind: [layer for _, layer in sorted(group.items(), key=lambda kv: (kv[0][1], kv[0][0]))]
            for kind, group in layers.items()}


def _kind_of(module: str, names: Set[str]) -> str:
    """The kind of a module of the spec's table, from its tensors' names."""
    if module == "data_bn":
        return "bn1d"
    if module == "fc":
        return "linear"
    if module + ".running_mean" in names:
        return "bn"
    if module.rsplit(".", 1)[-1] in ("PA", "alpha"):
        return "param"
    return "conv"


def _expected(variant: str, dims: Tuple[int, int, int, int, int]) -> Optional[Dict[str, List[ExpectedLayer]]]:
    """kind -> [(module, {tensor: (project name, shape)})] in table order for a variant, or None
    when the dimensions do not make one."""
    num_classes, base, V, num_person, cin = dims
    try:
        spec = _core.preset_spec(variant, "ntu", int(num_classes), int(num_person), int(cin))
        # widths and joints as the file has them; the edge list does not change any shape
        spec["num_joints"], spec["edges"] = V, [(i, i + 1) for i in range(V - 1)]
        for b in spec["blocks"]:
            b["out_channels"] = b["out_channels"] // spec["base_channel"] * base
        spec["base_channel"] = base
        tensors = _core.Net(spec, 0).tensors()
    except (_core.Error, ValueError, KeyError, TypeError):
        return None
    names = {name for name, _, _ in tensors}
    out: Dict[str, List[ExpectedLayer]] = {}
    for name, shape, _ in tensors:
        module, tensor = name.rsplit(".", 1)
        kind = _kind_of(name if tensor in ("PA", "alpha") else module, names)
        if kind == "param":
            out.setdefault(kind, []).append((None, {"": (name, tuple(shape))}))
            continue
        group = out.setdefault(kind, [])
        if not group or group[-1][0] != module:
            group.append((module, {}))
        group[-1][1][tensor] = (name, tuple(shape))
    return out


def _dims(program: Program, layers: Dict[str, List[Layer]], what: str) -> Tuple[int, int, int, int, int]:
    """(classes, base width, joints, persons, coordinates) from the head, data_bn, PA and the first
    convolution."""
    def shape(layer: Layer, tensor: str) -> Shape:
        return program.params[layer[tensor]][0]

    linear, bn1d = layers.get("linear", []), layers.get("bn1d", [])
    if len(linear) != 1 or len(bn1d) != 1 or "weight" not in linear[0]:
        _fail(what, "not a network of the CTR-GCN family (it needs one Linear head and one BatchNorm1D "
                    f"data_bn; the program has {len(linear)} and {len(bn1d)})")
    fc = shape(linear[0], "weight")
    pa = [program.params[p[""]][0] for p in layers.get("param", []) if len(program.params[p[""]][0]) == 3]
    convs = layers.get("conv", [])
    if len(fc) != 2 or fc[0] % 4 or fc[0] < 32 or not pa or not convs or "running_mean" not in bn1d[0]:
        _fail(what, "not a network of the CTR-GCN family (no 4b -> classes head, PA matrices or convolutions)")
    V = pa[0][1]
    cin = shape(convs[0], "weight")[1] if len(shape(convs[0], "weight")) == 4 else 0
    mvc = shape(bn1d[0], "running_mean")[0] if shape(bn1d[0], "running_mean") else 0
    if not V or not cin or mvc % (V * cin) or pa[0] != (3, V, V):
        _fail(what, f"not a network of the CTR-GCN family (PA {pa[0]}, first convolution {shape(convs[0], 'weight')}, "
                    f"data_bn of {mvc} channels)")
    base = fc[0] // 4
    # every variant holds 280-360 b^2 numbers; a width the file holds too few numbers for is refused
    # before a table (as large as the network) is built for it
    if MIN_PARAMS_PER_BASE2 * base * base > sum(int(np.prod(s)) for s, _ in program.params.values()):
        _fail(what, f"not a network of the CTR-GCN family (a {fc[0]}-wide head over too few parameters)")
    return fc[1], base, V, mvc // (V * cin), cin


def _match(program: Program, layers: Dict[str, List[Layer]],
           expected: Dict[str, List[ExpectedLayer]]) -> Tuple[Optional[Dict[str, str]], Optional[str]]:
    """(mapping project name -> internal name, None) when the layers fit, else (None, why)."""
    mapping = {}
    for kind in sorted(set(layers) | set(expected)):
        have, want = layers.get(kind, []), expected.get(kind, [])
        if len(have) != len(want):
            return None, f"{len(have)} {kind} layers where it has {len(want)}"
        for layer, (module, spec_tensors) in zip(have, want):
            tensors = set(layer)
            wanted = set(spec_tensors)
            if tensors != wanted:
                what = module if module is not None else next(iter(spec_tensors.values()))
                return None, f"{sorted(tensors)} where {what} has {sorted(wanted)}"
            for tensor in wanted:
                internal = layer[tensor]
                name, shape = spec_tensors[tensor]
                got = program.params[internal][0]
                if kind == "linear" and tensor == "weight":
                    got = got[::-1]  # a Paddle Linear stores [in, out]
                if got != shape:
                    return None, f"{internal} has shape {program.params[internal][0]} where {name} has {shape}"
                mapping[name] = internal
    return mapping, None


def structured_from_program(params: Dict[str, NDArray[Any]], json_path: PathLike) -> Dict[str, NDArray[Any]]:
    """Project name -> array for the internal-name -> array ``params`` of a Paddle 3 inference
    model, through its PIR program ``json_path``. An InputError when the program is not a network
    of the CTR-GCN family (any variant, any classes, joints, persons and width)."""
    what = repr(str(json_path))
    try:
        with open(json_path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise FileError(f"cannot read {what}: {exc.strerror}") from None
    program = Program(data.decode("utf-8", "replace"), what)
    if set(program.params) != set(params):
        _fail(what, "the program and the .pdiparams name different parameters")
    layers = _layers(program, what)
    dims = _dims(program, layers, what)
    reasons = []
    for variant in VARIANTS:
        expected = _expected(variant, dims)
        if expected is None:
            reasons.append(f"{variant}: no such network of {dims[1]} base channels")
            continue
        mapping, why = _match(program, layers, expected)
        if mapping is not None:
            return {name: params[internal] for name, internal in mapping.items()}
        reasons.append(f"{variant}: {why}")
    _fail(what, "the program is not a network of the CTR-GCN family: " + "; ".join(reasons))


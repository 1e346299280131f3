"""The eval network as an ONNX graph, built with ``onnx.helper`` from the block layout and the
state dict.

BatchNorms that follow a convolution are folded into it (quantize.fold_batchnorms's rule); the
rest become Mul/Add. Per unit_gcn, one Conv computes every projection (q and k of each relation,
the three values, the down path), a grouped Conv the relation convs (alpha folded), and the
aggregation ``einsum('ncuv,nctv->nctu')`` is ``MatMul(val [n,3,C,T,V], Ahat^T [n,3,C,V,U])``
followed by a sum over subsets, so runtimes without Einsum take it. Per temporal module, one Conv
holds the three pointwise branch convs. Input "x" ``[N, C, T, V, M]``, N and T dynamic; output
"logits" ``[N, classes]``."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn._core import FileError, InputError
from ctrgcn._files import atomic_write
from ctrgcn._types import BlockLayout, F64Array, PathLike
from ctrgcn.formats.quantize import bn_scale_shift, fold_batchnorms

if TYPE_CHECKING:
    from ctrgcn.model import Model

# project name -> array (BatchNorms folded)
State = Mapping[str, NDArray[Any]]


def _onnx() -> Tuple[Any, Any, Any, Any]:
    """The onnx module, helper, numpy_helper and TensorProto (untyped: onnx is an optional peer)."""
    try:
        import onnx
        from onnx import helper, numpy_helper, TensorProto
    except ImportError:
        raise ImportError("ONNX export needs the 'onnx' package: pip install onnx") from None
    return onnx, helper, numpy_helper, TensorProto


class _Graph:
    def __init__(self, opset: int) -> None:
        self.onnx, self.helper, self.numpy_helper, self.TP = _onnx()
        self.opset = opset
        self.nodes: List[Any] = []  # onnx NodeProto
        self.inits: List[Any] = []  # onnx TensorProto
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array: ArrayLike, hint: str = "c") -> str:
        name = self.name(hint)
        arr = np.asarray(array)
        arr = arr.astype(np.int64 if arr.dtype.kind in "iu" else np.float32)
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(self, op_type: str, inputs: Iterable[str], hint: Optional[str] = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def reduce_mean(self, x: str, axes: Sequence[int], keepdims: int) -> str:
        if self.opset >= 18:
            return self.op("ReduceMean", [x, self.const(np.array(axes))], keepdims=keepdims)
        return self.op("ReduceMean", [x], axes=list(axes), keepdims=keepdims)

    def reduce_sum(self, x: str, axes: Sequence[int], keepdims: int) -> str:
        return self.op("ReduceSum", [x, self.const(np.array(axes))], keepdims=keepdims)

    def conv(self, x: str, w: NDArray[Any], b: Optional[ArrayLike] = None, stride: int = 1, dilation: int = 1,
             group: int = 1, hint: str = "conv") -> str:
        kt = w.shape[2]
        pad = (kt - 1) * dilation // 2
        inputs = [x, self.const(w, hint + "_w")] + ([self.const(b, hint + "_b")] if b is not None else [])
        return self.op("Conv", inputs, hint, kernel_shape=[kt, 1], strides=[stride, 1], dilations=[dilation, 1],
                       pads=[pad, 0, pad, 0], group=group)

    def affine(self, x: str, scale: ArrayLike, shift: ArrayLike, shape: Tuple[int, ...]) -> str:
        x = self.op("Mul", [x, self.const(np.asarray(scale).reshape(shape))])
        return self.op("Add", [x, self.const(np.asarray(shift).reshape(shape))])


def _conv_wb(state: State, prefix: str) -> Tuple[NDArray[Any], Optional[NDArray[Any]]]:
    return state[prefix + ".weight"], state.get(prefix + ".bias")


def _shift(state: State, bn: str) -> F64Array:
    """The shift a folded BatchNorm leaves (its weight is 1, mean 0)."""
    return bn_scale_shift(state, bn)[1]


def _bias_plus_shift(state: State, conv: str, bn: str) -> Tuple[NDArray[Any], NDArray[Any]]:
    w, b = _conv_wb(state, conv)
    return w, (b if b is not None else 0.0) + _shift(state, bn)


def _gcn(g: _Graph, state: State, p: str, L: BlockLayout, x: str, V: int) -> str:
    """unit_gcn of block prefix p on x [n, ci, T, V] -> [n, gc, T, V] (ReLU applied)."""
    gc, R, nrel = L["gcn_cout"], L["R"], L["nrel"]
    if L["fused"]:
        w1, b1 = state[p + ".gcn1.convs.conv1.weight"], state[p + ".gcn1.convs.conv1.bias"]
        nq = nrel * R
        Wq, bq = w1[:2 * nq], b1[:2 * nq]
        Wv, bv = w1[2 * nq:], b1[2 * nq:]
        rel_w = [state[f"{p}.gcn1.convs.conv2.{i}.weight"] for i in range(3)]
        rel_b = [state[f"{p}.gcn1.convs.conv2.{i}.bias"] for i in range(3)]
    else:
        c = [f"{p}.gcn1.convs.{i}" for i in range(3)]
        Wq = np.concatenate([state[s + ".conv1.weight"] for s in c] + [state[s + ".conv2.weight"] for s in c])
        bq = np.concatenate([state[s + ".conv1.bias"] for s in c] + [state[s + ".conv2.bias"] for s in c])
        Wv = np.concatenate([state[s + ".conv3.weight"] for s in c])
        bv = np.concatenate([state[s + ".conv3.bias"] for s in c])
        rel_w = [state[s + ".conv4.weight"] for s in c]
        rel_b = [state[s + ".conv4.bias"] for s in c]
    parts_w, parts_b, sizes = [Wq, Wv], [bq, bv], [2 * nq if L["fused"] else 6 * R, 3 * gc]
    if L["down"] == 2:
        wd, bd = _bias_plus_shift(state, p + ".gcn1.down.0", p + ".gcn1.down.1")
        parts_w.append(wd)
        parts_b.append(np.broadcast_to(bd, (gc,)))
        sizes.append(gc)
    proj = g.conv(x, np.concatenate(parts_w), np.concatenate(parts_b), hint=p + "_proj")
    outs = [g.name(p + "_part") for _ in sizes]
    g.nodes.append(g.helper.make_node("Split", [proj, g.const(np.array(sizes))], outs, axis=1))
    qk, val = outs[0], outs[1]
    qk = g.reduce_mean(qk, [2], keepdims=0)  # [n, 2*nrel*R, V]
    half = [nrel * R, nrel * R]
    q, k = g.name(p + "_q"), g.name(p + "_k")
    g.nodes.append(g.helper.make_node("Split", [qk, g.const(np.array(half))], [q, k], axis=1))
    q = g.op("Unsqueeze", [q, g.const(np.array([3]))])
    k = g.op("Unsqueeze", [k, g.const(np.array([2]))])
    rel = g.op("Tanh", [g.op("Sub", [q, k])])  # [n, nrel*R, V, V]
    alpha = float(state[p + ".gcn1.alpha"].reshape(-1)[0])
    W4 = np.concatenate(rel_w) * alpha          # [3*gc, R, 1, 1]
    b4 = np.concatenate(rel_b) * alpha
    A = g.conv(rel, W4, b4, group=3 if nrel == 3 else 1, hint=p + "_rel")  # [n, 3*gc, V, V]
    A = g.op("Reshape", [A, g.const(np.array([0, 3, gc, V, V]))])
    A = g.op("Add", [A, g.const(state[p + ".gcn1.PA"].reshape(1, 3, 1, V, V))])
    AT = g.op("Transpose", [A], perm=[0, 1, 2, 4, 3])
    val = g.op("Reshape", [val, g.const(np.array([0, 3, gc, -1, V]))])
    y = g.reduce_sum(g.op("MatMul", [val, AT]), [1], keepdims=0)  # [n, gc, T, V]
    y = g.op("Add", [y, g.const(_shift(state, p + ".gcn1.bn").reshape(gc, 1, 1))])
    y = g.op("Add", [y, outs[2] if L["down"] == 2 else x])
    return g.op("Relu", [y])


def _tcn(g: _Graph, state: State, t: str, L: BlockLayout, x: str) -> str:
    """Temporal module at prefix t (``l{k}.tcn1``) on x [n, tcn_cin, T, V] -> [n, cout, T', V]."""
    B, s = L["B"], L["stride"]
    if L["fused"]:
        Wpw, bpw = _bias_plus_shift(state, t + ".conv_pw.0", t + ".conv_pw.1")
        tconv = [(t + f".branches.{i}.conv", t + f".branches.{i}.bn") for i in range(2)]
        pool_bn = t + ".branches.2.1"
        b3 = (t + ".branches.3.0", t + ".branches.3.1")
    else:
        ws, bs = zip(*(_bias_plus_shift(state, t + f".branches.{i}.0", t + f".branches.{i}.1") for i in range(3)))
        Wpw, bpw = np.concatenate(ws), np.concatenate(bs)
        tconv = [(t + f".branches.{i}.3.conv", t + f".branches.{i}.3.bn") for i in range(2)]
        pool_bn = t + ".branches.2.4"
        b3 = (t + ".branches.3.0", t + ".branches.3.1")
    pw = g.op("Relu", [g.conv(x, Wpw, bpw, hint=t + "_pw")])
    chunks = [g.name(t + "_chunk") for _ in range(3)]
    g.nodes.append(g.helper.make_node("Split", [pw, g.const(np.array([B, B, B]))], chunks, axis=1))
    branches = []
    for i, (conv, bn) in enumerate(tconv):
        w, b = _bias_plus_shift(state, conv, bn)
        branches.append(g.conv(chunks[i], w, b, stride=s, dilation=L["dilations"][i], hint=f"{t}_tconv{i}"))
    pooled = g.op("MaxPool", [chunks[2]], kernel_shape=[3, 1], strides=[s, 1], pads=[1, 0, 1, 0])
    ps, ph = bn_scale_shift(state, pool_bn)
    branches.append(g.affine(pooled, ps, ph, (B, 1, 1)))
    w, b = _bias_plus_shift(state, *b3)
    branches.append(g.conv(x, w, b, stride=s, hint=t + "_b3"))
    return g.op("Concat", branches, axis=1)


def _residual(g: _Graph, state: State, prefix: str, L: BlockLayout, x: str) -> Optional[str]:
    if L["residual"] == 0:
        return None
    if L["residual"] == 1:
        return x
    w, b = _bias_plus_shift(state, prefix + ".conv", prefix + ".bn")
    return g.conv(x, w, b, stride=L["stride"], hint=prefix)


def build(model: Model, opset: int = 17) -> Any:
    """The onnx.ModelProto of ``model``'s eval network (typed Any: onnx is an optional peer)."""
    if not 13 <= int(opset) <= 21:
        raise InputError(f"opset {opset}: this exporter writes opsets 13 to 21")
    g = _Graph(int(opset))
    spec = model.spec
    C, V, M, K = spec["in_channels"], spec["num_joints"], spec["num_person"], spec["num_classes"]
    state = fold_batchnorms(model.state_dict())
    # data_bn over channel m*V*C + v*C + c, per frame: x [N,C,T,V,M] -> [N,M,V,C,T]
    x = g.op("Transpose", ["x"], perm=[0, 4, 3, 1, 2])
    s, h = bn_scale_shift(state, "data_bn")
    x = g.affine(x, s, h, (M, V, C, 1))
    x = g.op("Transpose", [x], perm=[0, 1, 3, 4, 2])          # [N, M, C, T, V]
    T = g.op("Slice", [g.op("Shape", ["x"]), g.const(np.array([2])), g.const(np.array([3]))])
    shape = g.op("Concat", [g.const(np.array([-1, C])), T, g.const(np.array([V]))], axis=0)
    x = g.op("Reshape", [x, shape])                            # [N*M, C, T, V]
    for k, L in enumerate(model.block_layout(), start=1):
        p = f"l{k}"
        y = _gcn(g, state, p, L, x, V) if L["has_gcn"] else x
        y = _tcn(g, state, p + ".tcn1", L, y)
        res = _residual(g, state, p + (".tcn1.residual" if L["residual_in_tcn"] else ".residual"), L, x)
        x = g.op("Relu", [g.op("Add", [y, res]) if res is not None else y], hint=p)
    width = model.block_layout()[-1]["cout"]
    pooled = g.reduce_mean(x, [2, 3], keepdims=0)             # [N*M, 4b]
    pooled = g.op("Reshape", [pooled, g.const(np.array([-1, M, width]))])
    pooled = g.reduce_mean(pooled, [1], keepdims=0)           # [N, 4b]
    g.nodes.append(g.helper.make_node("Gemm", [pooled, g.const(state["fc.weight"]), g.const(state["fc.bias"])],
                                      ["logits"], transB=1))
    TP = g.TP
    graph = g.helper.make_graph(
        g.nodes, f"{spec['variant']}_eval",
        [g.helper.make_tensor_value_info("x", TP.FLOAT, ["N", C, "T", V, M])],
        [g.helper.make_tensor_value_info("logits", TP.FLOAT, ["N", K])], g.inits)
    proto = g.helper.make_model(graph, opset_imports=[g.helper.make_opsetid("", int(opset))],
                                producer_name="ctrgcn")
    proto.ir_version = min(proto.ir_version, 8 if opset <= 17 else 9)
    g.onnx.checker.check_model(proto)
    return proto


def export(model: Model, path: PathLike, opset: int = 17) -> None:
    """Write ``model`` as an ONNX file at ``path``, atomically; a FileError when it cannot."""
    proto = build(model, opset)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    try:
        with atomic_write(path, tmp) as f:
            f.write(proto.SerializeToString())
    except OSError as exc:
        raise FileError(f"cannot write {os.fspath(path)!r}: {exc.strerror}") from None

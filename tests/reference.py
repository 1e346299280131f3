"""A slow, float64 NumPy twin of the CTR-GCN family, written from ``shared/docs/model-family.md``.

It shares nothing with the package: widths, tensor names and the computation are derived here from
the written definitions, so agreement with the C core is an independent check. Arrays are
``[n, C, T, V]`` inside the backbone; parameters are a dict ``name -> array`` under the names
``Model.state_dict()`` uses (official PyTorch names, PaddleVideo module paths for fused variants).
"""
from collections import OrderedDict

import numpy as np

EPS = 1e-5

NTU_EDGES_1BASED = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
                    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
                    (20, 19), (22, 23), (23, 8), (24, 25), (25, 12)]
UCLA_EDGES_1BASED = [(1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10),
                     (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)]
GRAPH_EDGES = {"ntu": (25, [(i - 1, j - 1) for i, j in NTU_EDGES_1BASED]),
               "ucla": (20, [(i - 1, j - 1) for i, j in UCLA_EDGES_1BASED])}

# variant -> (base width, blocks without spatial module, fused, lightV2 changes)
VARIANT_TABLE = {
    "CTRGCN": (64, (), False, False),
    "CTRGCN_light": (60, (2, 3, 5, 8), False, False),
    "CTRGCN_lightV1": (72, (2, 3, 5, 8), True, False),
    "CTRGCN_lightV2": (62, (), True, True),
}


# ---------------------------------------------------------------- graph
def edge_matrix(edges, V):
    B = np.zeros((V, V))
    for i, j in edges:
        B[j, i] = 1.0
    return B


def normalize_columns(B):
    col = B.sum(axis=0)
    inv = np.where(col > 0, 1.0 / np.where(col > 0, col, 1.0), 0.0)
    return B @ np.diag(inv)


def graph_A(edges, V):
    """[I, In, Out] as a (3, V, V) array."""
    inward = list(edges)
    outward = [(j, i) for i, j in inward]
    return np.stack([np.eye(V), normalize_columns(edge_matrix(inward, V)),
                     normalize_columns(edge_matrix(outward, V))])


# ---------------------------------------------------------------- layers
def conv1x1(x, w, b=None, stride=1):
    """x [n, cin, T, V], w [cout, cin, 1, 1] (or [cout, cin]); time stride ``stride``."""
    w2 = w.reshape(w.shape[0], w.shape[1])
    y = np.einsum("oi,nitv->notv", w2, x[:, :, ::stride])
    if b is not None:
        y = y + b[None, :, None, None]
    return y


def tconv_frames(T, k, d, s):
    pad = (k - 1) * d // 2
    return (T + 2 * pad - d * (k - 1) - 1) // s + 1


def tconv(x, w, b=None, stride=1, dilation=1):
    """Convolution over time: x [n, cin, T, V], w [cout, cin, k, 1], zero padding (k-1)*d/2."""
    n, cin, T, V = x.shape
    cout, _, k = w.shape[:3]
    pad = (k - 1) * dilation // 2
    To = tconv_frames(T, k, dilation, stride)
    xp = np.zeros((n, cin, T + 2 * pad, V))
    xp[:, :, pad:pad + T] = x
    y = np.zeros((n, cout, To, V))
    for j in range(k):
        start = j * dilation
        window = xp[:, :, start:start + stride * (To - 1) + 1:stride]
        y += np.einsum("oi,nitv->notv", w[:, :, j, 0], window)
    if b is not None:
        y = y + b[None, :, None, None]
    return y


def maxpool_time(x, stride):
    """Kernel 3, stride s, padding 1 (padding never wins)."""
    n, C, T, V = x.shape
    To = (T + 2 - 3) // stride + 1
    xp = np.full((n, C, T + 2, V), -np.inf)
    xp[:, :, 1:1 + T] = x
    y = np.full((n, C, To, V), -np.inf)
    for j in range(3):
        y = np.maximum(y, xp[:, :, j:j + stride * (To - 1) + 1:stride])
    return y


def batchnorm(x, p, axis=1):
    """Eval-mode BN with parameters ``p`` (weight, bias, running_mean, running_var) over ``axis``."""
    shape = [1] * x.ndim
    shape[axis] = -1
    scale = p["weight"] / np.sqrt(p["running_var"] + EPS)
    return (x - p["running_mean"].reshape(shape)) * scale.reshape(shape) + p["bias"].reshape(shape)


def relu(x):
    return np.maximum(x, 0.0)


def rel_width(cin):
    return 8 if cin in (3, 9) or cin < 8 else cin // 8  # narrow 2-D inputs get 8, as the spec rule says


# ---------------------------------------------------------------- parameter table
def _bn(table, prefix, c):
    for s in ("weight", "bias", "running_mean", "running_var"):
        table[f"{prefix}.{s}"] = (c,)


def _conv(table, prefix, cout, cin, k=1, bias=True):
    table[f"{prefix}.weight"] = (cout, cin, k, 1)
    if bias:
        table[f"{prefix}.bias"] = (cout,)


def block_layout(variant, base):
    """Per block: (cin, cout, stride, residual, has_spatial)."""
    _, no_spatial, _, _ = VARIANT_TABLE[variant]
    b = base
    io = [(3, b, 1), (b, b, 1), (b, b, 1), (b, b, 1), (b, 2 * b, 2), (2 * b, 2 * b, 1), (2 * b, 2 * b, 1),
          (2 * b, 4 * b, 2), (4 * b, 4 * b, 1), (4 * b, 4 * b, 1)]
    return [(cin, cout, s, k != 1, k not in no_spatial) for k, (cin, cout, s) in enumerate(io, start=1)]


def make_spec(variant, num_classes=60, V=25, M=2, C=3, base=None):
    return dict(variant=variant, num_classes=num_classes, V=V, M=M, C=C,
                base=base or VARIANT_TABLE[variant][0])


def _temporal_widths(cout, fused):
    B = cout // 4
    return B, (cout - 3 * B if fused else B)


def param_shapes(spec):
    """OrderedDict name -> shape of every tensor the spec has, from the written definitions."""
    variant, V, M, C, base = spec["variant"], spec["V"], spec["M"], spec["C"], spec["base"]
    _, _, fused, v2 = VARIANT_TABLE[variant]
    t = OrderedDict()
    _bn(t, "data_bn", M * V * C)
    layout = block_layout(variant, base)
    layout[0] = (C,) + layout[0][1:]
    for k, (cin, cout, s, residual, spatial) in enumerate(layout, start=1):
        p = f"l{k}"
        tin = cin
        if spatial:
            gout = cin if (v2 and s != 1) else cout
            tin = gout
            R = rel_width(cin)
            t[f"{p}.gcn1.PA"] = (3, V, V)
            t[f"{p}.gcn1.alpha"] = (1,)
            if fused:
                P = 2 * R if v2 else 6 * R
                _conv(t, f"{p}.gcn1.convs.conv1", P + 3 * gout, cin)
                for i in range(3):
                    _conv(t, f"{p}.gcn1.convs.conv2.{i}", gout, R)
            else:
                for i in range(3):
                    _conv(t, f"{p}.gcn1.convs.{i}.conv1", R, cin)
                    _conv(t, f"{p}.gcn1.convs.{i}.conv2", R, cin)
                    _conv(t, f"{p}.gcn1.convs.{i}.conv3", gout, cin)
                    _conv(t, f"{p}.gcn1.convs.{i}.conv4", gout, R)
            if cin != gout:
                _conv(t, f"{p}.gcn1.down.0", gout, cin, bias=not fused)
                _bn(t, f"{p}.gcn1.down.1", gout)
            _bn(t, f"{p}.gcn1.bn", gout)
        B, last = _temporal_widths(cout, fused)
        q = f"{p}.tcn1"
        if fused:
            _conv(t, f"{q}.conv_pw.0", 3 * B, tin, bias=False)
            _bn(t, f"{q}.conv_pw.1", 3 * B)
            for i in range(2):
                _conv(t, f"{q}.branches.{i}.conv", B, B, k=5, bias=False)
                _bn(t, f"{q}.branches.{i}.bn", B)
            _bn(t, f"{q}.branches.2.1", B)
            _conv(t, f"{q}.branches.3.0", last, tin, bias=False)
            _bn(t, f"{q}.branches.3.1", last)
        else:
            for i in range(2):
                _conv(t, f"{q}.branches.{i}.0", B, tin)
                _bn(t, f"{q}.branches.{i}.1", B)
                _conv(t, f"{q}.branches.{i}.3.conv", B, B, k=5)
                _bn(t, f"{q}.branches.{i}.3.bn", B)
            _conv(t, f"{q}.branches.2.0", B, tin)
            _bn(t, f"{q}.branches.2.1", B)
            _bn(t, f"{q}.branches.2.4", B)
            _conv(t, f"{q}.branches.3.0", B, tin)
            _bn(t, f"{q}.branches.3.1", B)
        if residual and not (cin == cout and s == 1):
            rp = f"{p}.residual" if spatial else f"{q}.residual"
            _conv(t, f"{rp}.conv", cout, cin, bias=not fused)
            _bn(t, f"{rp}.bn", cout)
    t["fc.weight"] = (spec["num_classes"], 4 * base)
    t["fc.bias"] = (spec["num_classes"],)
    return t


def num_parameters(spec):
    return sum(int(np.prod(s)) for n, s in param_shapes(spec).items()
               if not n.endswith(("running_mean", "running_var")))


def random_params(spec, rng, A=None):
    """Random weights where every path matters: conv ~ N(0, 1/fan_in), biases and BN affine random
    (BN scales of both signs), alpha in [0.2, 1], PA = graph + noise, BN statistics random (use
    :func:`calibrate` to make them those of real activations)."""
    params = OrderedDict()
    for name, shape in param_shapes(spec).items():
        if name.endswith(".PA"):
            base = A if A is not None else np.zeros(shape)
            val = base + 0.1 * rng.standard_normal(shape)
        elif name.endswith(".alpha"):
            val = rng.uniform(0.2, 1.0, size=shape)
        elif name.endswith("running_mean"):
            val = 0.2 * rng.standard_normal(shape)
        elif name.endswith("running_var"):
            val = rng.uniform(0.5, 2.0, size=shape)
        elif name.endswith(".bias"):
            val = 0.2 * rng.standard_normal(shape)
        elif name.endswith(".weight") and len(shape) == 1:  # BN scale
            val = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape, p=[0.2, 0.8])
        else:  # conv / fc weight
            fan_in = int(np.prod(shape[1:]))
            val = rng.standard_normal(shape) / np.sqrt(fan_in)
        params[name] = np.asarray(val, dtype=np.float64)
    return params


# ---------------------------------------------------------------- modules
class _Net:
    """One forward pass. With ``calibrate=True`` every BatchNorm first sets its running statistics to
    the batch statistics of its input (like a trained net's), then normalises in eval mode."""

    def __init__(self, spec, params, calibrate=False):
        self.spec = spec
        self.p = params
        self.calibrate = calibrate
        _, _, self.fused, self.v2 = VARIANT_TABLE[spec["variant"]]

    def w(self, name):
        return np.asarray(self.p[name], dtype=np.float64)

    def opt(self, name):
        return self.w(name) if name in self.p else None

    def bn(self, prefix, x, axis=1):
        if self.calibrate:
            axes = tuple(a for a in range(x.ndim) if a != axis)
            self.p[f"{prefix}.running_mean"] = x.mean(axis=axes)
            self.p[f"{prefix}.running_var"] = x.var(axis=axes) * np.exp(np.random.default_rng(x.size).uniform(
                -0.3, 0.3, size=x.shape[axis]))
        p = {s: self.w(f"{prefix}.{s}") for s in ("weight", "bias", "running_mean", "running_var")}
        return batchnorm(x, p, axis)

    def conv(self, prefix, x, stride=1):
        return conv1x1(x, self.w(f"{prefix}.weight"), self.opt(f"{prefix}.bias"), stride)

    # -- spatial
    def ctrgc_aggregate(self, rel, conv_prefix, A_i, alpha, val):
        """Ahat = alpha * conv(rel) + A_i, out[c,t,u] = sum_v Ahat[c,u,v] val[c,t,v]."""
        Ahat = alpha * self.conv(conv_prefix, rel) + A_i[None, None]
        return np.einsum("ncuv,nctv->nctu", Ahat, val)

    def unit_gcn(self, p, x, cout):
        cin = x.shape[1]
        R = rel_width(cin)
        PA = self.w(f"{p}.PA")
        alpha = float(self.w(f"{p}.alpha").reshape(-1)[0])
        y = 0.0
        if self.fused:
            h = self.conv(f"{p}.convs.conv1", x)
            P = 2 * R if self.v2 else 6 * R
            assert h.shape[1] == P + 3 * cout
            qk = h[:, :P].mean(axis=2)  # [n, P, V]
            nq = R if self.v2 else 3 * R
            q, k = qk[:, :nq], qk[:, nq:]
            rel = np.tanh(q[:, :, :, None] - k[:, :, None, :])  # [n, *, u, v]
            for i in range(3):
                rel_i = rel if self.v2 else rel[:, i * R:(i + 1) * R]
                val = h[:, P + i * cout:P + (i + 1) * cout]
                y = y + self.ctrgc_aggregate(rel_i, f"{p}.convs.conv2.{i}", PA[i], alpha, val)
        else:
            for i in range(3):
                c = f"{p}.convs.{i}"
                q = self.conv(f"{c}.conv1", x).mean(axis=2)
                k = self.conv(f"{c}.conv2", x).mean(axis=2)
                val = self.conv(f"{c}.conv3", x)
                rel = np.tanh(q[:, :, :, None] - k[:, :, None, :])
                y = y + self.ctrgc_aggregate(rel, f"{c}.conv4", PA[i], alpha, val)
        y = self.bn(f"{p}.bn", y)
        if cin != cout:
            y = y + self.bn(f"{p}.down.1", self.conv(f"{p}.down.0", x))
        else:
            y = y + x
        return relu(y)

    # -- temporal
    def ms_tcn(self, p, x, cout, stride):
        if self.fused:
            B = cout // 4
            h = relu(self.bn(f"{p}.conv_pw.1", self.conv(f"{p}.conv_pw.0", x)))
            chunks = [h[:, i * B:(i + 1) * B] for i in range(3)]
            outs = []
            for i, d in enumerate((1, 2)):
                z = tconv(chunks[i], self.w(f"{p}.branches.{i}.conv.weight"), None, stride, d)
                outs.append(self.bn(f"{p}.branches.{i}.bn", z))
            outs.append(self.bn(f"{p}.branches.2.1", maxpool_time(chunks[2], stride)))
            outs.append(self.bn(f"{p}.branches.3.1", self.conv(f"{p}.branches.3.0", x, stride)))
        else:
            outs = []
            for i, d in enumerate((1, 2)):
                h = relu(self.bn(f"{p}.branches.{i}.1", self.conv(f"{p}.branches.{i}.0", x)))
                z = tconv(h, self.w(f"{p}.branches.{i}.3.conv.weight"), self.opt(f"{p}.branches.{i}.3.conv.bias"),
                          stride, d)
                outs.append(self.bn(f"{p}.branches.{i}.3.bn", z))
            h = relu(self.bn(f"{p}.branches.2.1", self.conv(f"{p}.branches.2.0", x)))
            outs.append(self.bn(f"{p}.branches.2.4", maxpool_time(h, stride)))
            outs.append(self.bn(f"{p}.branches.3.1", self.conv(f"{p}.branches.3.0", x, stride)))
        y = np.concatenate(outs, axis=1)
        assert y.shape[1] == cout
        return y

    def residual(self, prefix, x, cout, stride):
        if x.shape[1] == cout and stride == 1:
            return x
        return self.bn(f"{prefix}.bn", self.conv(f"{prefix}.conv", x, stride))

    def tcn_gcn_unit(self, k, x, cout, stride, residual):
        cin = x.shape[1]
        gout = cin if (self.v2 and stride != 1) else cout
        h = self.unit_gcn(f"l{k}.gcn1", x, gout)
        y = self.ms_tcn(f"l{k}.tcn1", h, cout, stride)
        if residual:
            y = y + self.residual(f"l{k}.residual", x, cout, stride)
        return relu(y)

    def tcn_unit(self, k, x, cout, stride):
        y = self.ms_tcn(f"l{k}.tcn1", x, cout, stride)
        return relu(y + self.residual(f"l{k}.tcn1.residual", x, cout, stride))

    # -- whole
    def forward(self, x):
        x = np.asarray(x, dtype=np.float64)
        N, C, T, V, M = x.shape
        # data_bn channel m*V*C + v*C + c, per frame
        z = x.transpose(0, 4, 3, 1, 2).reshape(N, M * V * C, T)
        z = self.bn("data_bn", z, axis=1)
        h = z.reshape(N, M, V, C, T).transpose(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
        acts = []
        for k, (_, cout, s, residual, spatial) in enumerate(block_layout(self.spec["variant"], self.spec["base"]),
                                                         start=1):
            h = self.tcn_gcn_unit(k, h, cout, s, residual) if spatial else self.tcn_unit(k, h, cout, s)
            acts.append(h)
        feat = h.reshape(N, M, h.shape[1], -1).mean(axis=3).mean(axis=1)
        logits = feat @ self.w("fc.weight").T + self.w("fc.bias")
        return logits, acts


def forward(spec, params, x):
    """(logits [N, classes], [act_l1 .. act_l10] each [N*M, C, T', V]) in float64."""
    return _Net(spec, params).forward(x)


def calibrate(spec, params, x):
    """Set every BN's running statistics from a pass over ``x`` (variances jittered by up to
    exp(+-0.3)) so that eval activations stay of order 1, as in a trained net. Returns the params."""
    params = OrderedDict((k, np.array(v, dtype=np.float64)) for k, v in params.items())
    _Net(spec, params, calibrate=True).forward(x)
    return params


def block_frames(T):
    """Output frames of each block for an input of T frames."""
    out, t = [], T
    for s in (1, 1, 1, 1, 2, 1, 1, 2, 1, 1):
        t = tconv_frames(t, 5, 1, s)
        out.append(t)
    return out


# ---------------------------------------------------------------- preprocessing
def preprocess(sample, window=64, p=0.95):
    x = np.asarray(sample, dtype=np.float64)
    valid = int((x.sum(axis=(0, 2, 3)) != 0).sum())
    bias = int((1 - p) * valid / 2)
    clip = x[:, bias:valid - bias]
    L = clip.shape[1]
    out = np.empty((x.shape[0], window) + x.shape[2:])
    for t in range(window):
        src = max((t + 0.5) * L / window - 0.5, 0.0)
        i0 = min(int(np.floor(src)), L - 1)
        i1 = min(i0 + 1, L - 1)
        w1 = src - i0
        out[:, t] = (1 - w1) * clip[:, i0] + w1 * clip[:, i1]
    return out, valid

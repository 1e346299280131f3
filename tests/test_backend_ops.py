"""Every op of every registered backend (``_core.backend_names()``) against a float64 NumPy reference.

A backend registered in ``csrc/backends/registry.c`` gets this whole suite. Each op runs through
``_core.backend_op`` (csrc/python/ops.c), which uploads the arrays into backend memory, runs the op
and downloads its outputs. The checks:

* forward against the reference, over small odd shapes, with person strides (``ld*``) larger than
  one person (a channel slice of a larger tensor): what lies between persons must stay untouched;
* "written" outputs are prefilled with NaN (every value must be written), "accumulated" ones with
  random values (the op must add to them);
* every backward against the reference backward, and that reference against central differences
  of the reference forward (float64), and the backend's backward against central differences of
  the backend's own forward (float32, loose);
* every call with threads = 2 equals the same call with threads = 1 (the CPU splits one person's
  rows or columns when persons are fewer than threads): ``run`` does this for every call.
"""
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

import ctrgcn
from ctrgcn import _core

BACKENDS = _core.backend_names()
SENT = np.float32(12345.0)  # between persons: must survive every op
EPS_BN = 1e-5


@pytest.fixture(params=BACKENDS)
def be(request):
    return request.param


@pytest.fixture(params=[1, 2], ids=["t1", "t2"])
def threads(request):
    return request.param


# ---------------------------------------------------------------------------------------- helpers
def run(be, op, threads, arrays, **params):
    """backend_op, and with threads > 1 the same call on one thread, which must agree."""
    out = _core.backend_op(be, op, threads, arrays, params)
    if threads > 1:
        one = _core.backend_op(be, op, 1, arrays, params)
        assert out.keys() == one.keys()
        for k, v in out.items():
            if isinstance(v, np.ndarray):
                w = one[k]
                if v.dtype.kind == "i":
                    np.testing.assert_array_equal(v, w, err_msg=f"{op}.{k}: threads {threads} vs 1")
                else:
                    scale = max(float(np.nanmax(np.abs(w), initial=0.0)), 1e-30)
                    np.testing.assert_allclose(v, w, rtol=1e-6, atol=1e-6 * scale, equal_nan=True,
                                               err_msg=f"{op}.{k}: threads {threads} vs 1")
            else:
                assert v == pytest.approx(one[k], rel=1e-6, abs=1e-9), f"{op}.{k}: threads {threads} vs 1"
    return out


def close(got, want, tol=1e-5, scale=None, what=""):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert np.all(np.isfinite(got)), f"{what}: values not written (NaN prefill left) or non-finite"
    if scale is None:
        scale = max(float(np.abs(want).max(initial=0.0)), 1e-3)
    err = float(np.abs(got - want).max(initial=0.0))
    assert err <= tol * scale, f"{what}: max error {err:.3g} > {tol:.1g} x {scale:.3g}"


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def pack(x, extra):
    """x [n, ...] -> (flat float32, ld): person i at i*ld, ld = one person + extra, SENT between."""
    x = np.asarray(x, np.float32)
    n, tight = x.shape[0], x[0].size
    buf = np.full((n, tight + extra), SENT, np.float32)
    buf[:, :tight] = x.reshape(n, tight)
    return buf.ravel(), tight + extra


def unpack(flat, shape, extra, what=""):
    """Inverse of pack; asserts that nothing between persons changed."""
    n, tight = shape[0], int(np.prod(shape[1:]))
    v = np.asarray(flat).reshape(n, tight + extra)
    assert np.all(v[:, tight:] == SENT), f"{what}: the op wrote between persons"
    return v[:, :tight].reshape(shape)


def nan_like(shape):
    return np.full(shape, np.nan, np.float32)


def pads(padded, *extras):
    return extras if padded else (0,) * len(extras)


# ============================================================================ NumPy references (f64)
def r_conv1x1(x, W, b, s):
    y = np.einsum("oc,nctv->notv", W, x[:, :, ::s])
    return y if b is None else y + b[None, :, None, None]


def r_conv1x1_grad(x, W, s, dy):
    dx = np.zeros_like(x)
    dx[:, :, ::s] = np.einsum("oc,notv->nctv", W, dy)
    return dict(dx=dx, dW=np.einsum("notv,nctv->oc", dy, x[:, :, ::s]), db=dy.sum((0, 2, 3)))


def tconv_frames(T, k, dil, s):
    pad = (k - 1) * dil // 2
    return (T + 2 * pad - dil * (k - 1) - 1) // s + 1


def r_tconv(x, W, b, dil, s):
    k, co = W.shape[:2]
    n, ci, T, V = x.shape
    pad = (k - 1) * dil // 2
    To = tconv_frames(T, k, dil, s)
    xp = np.zeros((n, ci, T + 2 * pad + dil * k, V))
    xp[:, :, pad:pad + T] = x
    y = np.zeros((n, co, To, V))
    for j in range(k):
        y += np.einsum("oc,nctv->notv", W[j], xp[:, :, np.arange(To) * s + j * dil])
    return y if b is None else y + b[None, :, None, None]


def r_tconv_grad(x, W, dil, s, dy):
    k = W.shape[0]
    n, ci, T, V = x.shape
    pad = (k - 1) * dil // 2
    To = dy.shape[2]
    xp = np.zeros((n, ci, T + 2 * pad + dil * k, V))
    xp[:, :, pad:pad + T] = x
    dxp = np.zeros_like(xp)
    dW = np.zeros(W.shape)
    for j in range(k):
        idx = np.arange(To) * s + j * dil
        dW[j] = np.einsum("notv,nctv->oc", dy, xp[:, :, idx])
        dxp[:, :, idx] += np.einsum("oc,notv->nctv", W[j], dy)
    return dict(dx=dxp[:, :, pad:pad + T], dW=dW, db=dy.sum((0, 2, 3)))


def r_maxpool(x, s, scale=None, shift=None):
    """Kernel 3, stride s, padding 1 that never wins; the first maximum of a window wins."""
    n, C, T, V = x.shape
    To = (T - 1) // s + 1
    y = np.zeros((n, C, To, V))
    am = np.zeros((n, C, To, V), np.int32)
    for t in range(To):
        lo, hi = max(t * s - 1, 0), min(t * s + 1, T - 1)
        win = x[:, :, lo:hi + 1]
        a = np.argmax(win, axis=2)  # first occurrence of the maximum
        am[:, :, t] = lo + a
        y[:, :, t] = np.take_along_axis(win, a[:, :, None], 2)[:, :, 0]
    if scale is not None:
        y = y * scale[None, :, None, None]
    if shift is not None:
        y = y + shift[None, :, None, None]
    return y, am


def r_maxpool_grad(am, T, dy):
    n, C, To, V = dy.shape
    dx = np.zeros((n, C, T, V))
    ni, ci, _, vi = np.meshgrid(np.arange(n), np.arange(C), np.arange(To), np.arange(V), indexing="ij")
    np.add.at(dx, (ni, ci, am, vi), dy)
    return dict(dx=dx)


def r_relation(qk, nrel, R):
    q, k = qk[:, :nrel * R], qk[:, nrel * R:]
    return np.tanh(q[:, :, None, :] - k[:, :, :, None])  # [n][nrel*R][v][u]


def r_relation_grad(rel, drel):
    g = drel * (1 - rel ** 2)
    return dict(dqk=np.concatenate([g.sum(2), -g.sum(3)], axis=1))


def r_adjacency(rel, W4, b4, alpha, PA, nrel, C):
    n, _, V, _ = rel.shape
    R = W4.shape[1]
    rel = rel.reshape(n, nrel, R, V, V)
    pre = np.zeros((n, 3 * C, V, V))
    for j in range(3):
        pre[:, j * C:(j + 1) * C] = np.einsum("cr,nrvu->ncvu", W4[j * C:(j + 1) * C], rel[:, j if nrel == 3 else 0])
    pre += b4[None, :, None, None]
    AT = alpha[0] * pre + np.repeat(np.transpose(PA, (0, 2, 1)), C, axis=0)[None]
    return AT, pre


def r_adjacency_grad(rel, W4, alpha, pre, nrel, C, dAT):
    n, _, V, _ = rel.shape
    R = W4.shape[1]
    rel5 = rel.reshape(n, nrel, R, V, V)
    dpre = alpha[0] * dAT
    dW4 = np.zeros(W4.shape)
    drel = np.zeros(rel5.shape)
    for j in range(3):
        jj = j if nrel == 3 else 0
        rows = slice(j * C, (j + 1) * C)
        dW4[rows] = np.einsum("ncvu,nrvu->cr", dpre[:, rows], rel5[:, jj])
        drel[:, jj] += np.einsum("cr,ncvu->nrvu", W4[rows], dpre[:, rows])
    dPA = np.transpose(dAT.reshape(n, 3, C, V, V).sum((0, 2)), (0, 2, 1))
    return dict(drel=drel.reshape(rel.shape), dW4=dW4, db4=dpre.sum((0, 2, 3)),
                dalpha=np.array([np.sum(dAT * pre)]), dPA=dPA)


def r_aggregate(val, AT, base=None, shift=None, relu=False):
    n, C3, T, V = val.shape
    C = C3 // 3
    y = np.einsum("njctv,njcvu->nctu", val.reshape(n, 3, C, T, V), AT.reshape(n, 3, C, V, V))
    if base is not None:
        y = y + base
    if shift is not None:
        y = y + shift[None, :, None, None]
    return np.maximum(y, 0) if relu else y


def r_aggregate_grad(val, AT, dy):
    n, C3, T, V = val.shape
    C = C3 // 3
    A = AT.reshape(n, 3, C, V, V)
    dval = np.einsum("nctu,njcvu->njctv", dy, A).reshape(val.shape)
    dAT = np.einsum("njctv,nctu->njcvu", val.reshape(n, 3, C, T, V), dy).reshape(AT.shape)
    return dict(dval=dval, dAT=dAT)


def r_bn(x, gamma, beta):
    mu = x.mean((0, 2))
    var = x.var((0, 2))
    inv = 1 / np.sqrt(var + EPS_BN)
    y = (x - mu[None, :, None]) * (gamma * inv)[None, :, None] + beta[None, :, None]
    return y, np.concatenate([mu, inv])


def r_bn_grad(x, gamma, stat, dy):
    C = x.shape[1]
    mu, inv = stat[:C], stat[C:]
    xh = (x - mu[None, :, None]) * inv[None, :, None]
    m1 = dy.mean((0, 2))
    m2 = (dy * xh).mean((0, 2))
    dx = (gamma * inv)[None, :, None] * (dy - m1[None, :, None] - xh * m2[None, :, None])
    return dict(dx=dx, dgamma=(dy * xh).sum((0, 2)), dbeta=dy.sum((0, 2)))


def r_linear(x, W, b):
    y = x @ W.T
    return y if b is None else y + b


def r_xent(z, t):
    z = z - z.max(1, keepdims=True)
    lse = np.log(np.exp(z).sum(1, keepdims=True))
    p = np.exp(z - lse)
    return float(-(t * (z - lse)).sum() / len(z)), (p - t) / len(z)


# ================================================================ the differentiable op pairs
# Each pair: inputs(rng, case) -> (f32 inputs, cfg); ref(ins, cfg) -> {out: f64}; ref_grad(ins, cfg,
# dy) -> {grad: f64}; fwd(be, th, ins, cfg, padded) -> {out}; bwd(be, th, ins, cfg, dy, acc,
# padded) -> {grad}; OUT: the differentiated output; GRAD: input name -> its gradient's name;
# ACC: the gradients the backend accumulates (the rest are written).
class Conv1x1:
    # n co ci T V s; (2, 19, 9, 23, 5, 1): whole 8 x 48 tiles of the forward's own kernel and every
    # remainder; the last two: weight gradients by the own kernel on the transposed input (32+ rows
    # and input channels: one person's rows split over threads, three persons shared out)
    CASES = [(1, 5, 3, 8, 7, 1), (1, 6, 5, 8, 7, 2), (3, 4, 6, 5, 3, 2), (3, 7, 2, 1, 3, 1), (2, 19, 9, 23, 5, 1),
             (1, 64, 40, 6, 5, 1), (3, 33, 32, 4, 9, 1)]
    OUT, GRAD, ACC = "y", dict(x="dx", W="dW", b="db"), ("dx", "dW", "db")

    def inputs(self, rng, case):
        n, co, ci, T, V, s = case
        return dict(x=f32(rng, n, ci, T, V), W=f32(rng, co, ci), b=f32(rng, co)), dict(s=s)

    def ref(self, ins, cfg):
        return dict(y=r_conv1x1(ins["x"], ins["W"], ins["b"], cfg["s"]))

    def ref_grad(self, ins, cfg, dy):
        return r_conv1x1_grad(ins["x"], ins["W"], cfg["s"], dy)

    def fwd(self, be, th, ins, cfg, padded, b=True, y0=None):
        x, W = ins["x"], ins["W"]
        n, ci, T, V = x.shape
        co, s = W.shape[0], cfg["s"]
        shape = (n, co, (T - 1) // s + 1, V)
        ey, ex = pads(padded, 2 * V + 1, 5)
        xf, ldx = pack(x, ex)
        yf, ldy = pack(nan_like(shape) if y0 is None else y0, ey)
        r = run(be, "conv1x1_forward", th, dict(y=yf, x=xf, W=W, b=ins["b"] if b else None),
                n=n, co=co, ci=ci, T=T, V=V, stride=s, accumulate=int(y0 is not None), ldy=ldy, ldx=ldx)
        return dict(y=unpack(r["y"], shape, ey, "y"))

    def bwd(self, be, th, ins, cfg, dy, acc, padded, want_dx=True, want_db=True):
        x, W = ins["x"], ins["W"]
        n, ci, T, V = x.shape
        co, s = W.shape[0], cfg["s"]
        edx, edy, ex = pads(padded, 3, 7, 1)
        xf, ldx = pack(x, ex)
        dyf, lddy = pack(dy, edy)
        dxf, lddx = pack(acc["dx"], edx)
        r = run(be, "conv1x1_backward", th,
                dict(dx=dxf if want_dx else None, dW=acc["dW"], db=acc["db"] if want_db else None, dy=dyf, x=xf, W=W),
                n=n, co=co, ci=ci, T=T, V=V, stride=s, lddx=lddx, lddy=lddy, ldx=ldx)
        out = dict(dW=r["dW"])
        if want_dx:
            out["dx"] = unpack(r["dx"], x.shape, edx, "dx")
        if want_db:
            out["db"] = r["db"]
        return out


class Tconv:
    # n co ci T V k dil s
    CASES = [(1, 5, 3, 8, 7, 5, 1, 1), (1, 6, 4, 8, 7, 3, 2, 2), (3, 4, 6, 5, 3, 5, 2, 1), (3, 5, 3, 8, 3, 3, 1, 2),
             (1, 3, 2, 1, 3, 3, 1, 1), (3, 5, 2, 5, 7, 5, 2, 2),
             (2, 13, 5, 24, 5, 5, 2, 1), (2, 9, 4, 25, 5, 3, 2, 2)]  # interior frames over whole tiles
    OUT, GRAD, ACC = "y", dict(x="dx", W="dW", b="db"), ("dx", "dW", "db")

    def inputs(self, rng, case):
        n, co, ci, T, V, k, dil, s = case
        return dict(x=f32(rng, n, ci, T, V), W=f32(rng, k, co, ci), b=f32(rng, co)), dict(dil=dil, s=s)

    def ref(self, ins, cfg):
        return dict(y=r_tconv(ins["x"], ins["W"], ins["b"], cfg["dil"], cfg["s"]))

    def ref_grad(self, ins, cfg, dy):
        return r_tconv_grad(ins["x"], ins["W"], cfg["dil"], cfg["s"], dy)

    def _p(self, ins, cfg):
        n, ci, T, V = ins["x"].shape
        k, co = ins["W"].shape[:2]
        return dict(n=n, co=co, ci=ci, T=T, V=V, k=k, dil=cfg["dil"], stride=cfg["s"])

    def fwd(self, be, th, ins, cfg, padded, b=True):
        p = self._p(ins, cfg)
        shape = (p["n"], p["co"], tconv_frames(p["T"], p["k"], p["dil"], p["stride"]), p["V"])
        ey, ex = pads(padded, 4, 2 * p["V"])
        xf, ldx = pack(ins["x"], ex)
        yf, ldy = pack(nan_like(shape), ey)
        r = run(be, "tconv_forward", th, dict(y=yf, x=xf, W=ins["W"], b=ins["b"] if b else None), ldy=ldy, ldx=ldx, **p)
        return dict(y=unpack(r["y"], shape, ey, "y"))

    def bwd(self, be, th, ins, cfg, dy, acc, padded, want_dx=True, want_db=True):
        p = self._p(ins, cfg)
        edx, edy, ex = pads(padded, 6, 1, 3)
        xf, ldx = pack(ins["x"], ex)
        dyf, lddy = pack(dy, edy)
        dxf, lddx = pack(acc["dx"], edx)
        r = run(be, "tconv_backward", th,
                dict(dx=dxf if want_dx else None, dW=acc["dW"], db=acc["db"] if want_db else None, dy=dyf, x=xf,
                     W=ins["W"]), lddx=lddx, lddy=lddy, ldx=ldx, **p)
        out = dict(dW=r["dW"])
        if want_dx:
            out["dx"] = unpack(r["dx"], ins["x"].shape, edx, "dx")
        if want_db:
            out["db"] = r["db"]
        return out


class Maxpool:
    CASES = [(1, 5, 8, 7, 1), (1, 3, 8, 7, 2), (3, 4, 5, 3, 2), (3, 2, 1, 3, 1), (1, 3, 5, 3, 2)]  # n C T V s
    OUT, GRAD, ACC = "y", dict(x="dx"), ("dx",)

    def inputs(self, rng, case):
        n, C, T, V, s = case
        return dict(x=f32(rng, n, C, T, V)), dict(s=s)

    def ref(self, ins, cfg):
        y, am = r_maxpool(ins["x"], cfg["s"])
        return dict(y=y, argmax=am)

    def ref_grad(self, ins, cfg, dy):
        return r_maxpool_grad(r_maxpool(ins["x"], cfg["s"])[1], ins["x"].shape[2], dy)

    def fwd(self, be, th, ins, cfg, padded, scale=None, shift=None, argmax=True):
        x = ins["x"]
        n, C, T, V = x.shape
        s = cfg["s"]
        shape = (n, C, (T - 1) // s + 1, V)
        ey, ex = pads(padded, 5, V)
        xf, ldx = pack(x, ex)
        yf, ldy = pack(nan_like(shape), ey)
        r = run(be, "maxpool_forward", th,
                dict(y=yf, x=xf, argmax=np.full(shape, -7, np.int32) if argmax else None, scale=scale, shift=shift),
                n=n, C=C, T=T, V=V, stride=s, ldy=ldy, ldx=ldx)
        out = dict(y=unpack(r["y"], shape, ey, "y"))
        if argmax:
            out["argmax"] = r["argmax"]
        return out

    def bwd(self, be, th, ins, cfg, dy, acc, padded):
        x = ins["x"]
        n, C, T, V = x.shape
        am = r_maxpool(x, cfg["s"])[1]
        edx, edy = pads(padded, 2, 9)
        dyf, lddy = pack(dy, edy)
        dxf, lddx = pack(acc["dx"], edx)
        r = run(be, "maxpool_backward", th, dict(dx=dxf, dy=dyf, argmax=am),
                n=n, C=C, T=T, V=V, stride=cfg["s"], lddx=lddx, lddy=lddy)
        return dict(dx=unpack(r["dx"], x.shape, edx, "dx"))


class MeanTime:
    CASES = [(1, 5, 8, 7), (3, 4, 5, 3), (3, 2, 1, 33)]  # n C T V
    OUT, GRAD, ACC = "y", dict(x="dx"), ("dx",)

    def inputs(self, rng, case):
        n, C, T, V = case
        return dict(x=f32(rng, n, C, T, V)), {}

    def ref(self, ins, cfg):
        return dict(y=ins["x"].mean(2))

    def ref_grad(self, ins, cfg, dy):
        T = ins["x"].shape[2]
        return dict(dx=np.broadcast_to(dy[:, :, None] / T, ins["x"].shape).copy())

    def fwd(self, be, th, ins, cfg, padded):
        x = ins["x"]
        n, C, T, V = x.shape
        (ex,) = pads(padded, 3 * V)
        xf, ldx = pack(x, ex)
        r = run(be, "mean_time_forward", th, dict(x=xf), n=n, C=C, T=T, V=V, ldx=ldx)
        return dict(y=r["y"].reshape(n, C, V))

    def bwd(self, be, th, ins, cfg, dy, acc, padded):
        n, C, T, V = ins["x"].shape
        (edx,) = pads(padded, 11)
        dxf, lddx = pack(acc["dx"], edx)
        r = run(be, "mean_time_backward", th, dict(dx=dxf, dy=dy), n=n, C=C, T=T, V=V, lddx=lddx)
        return dict(dx=unpack(r["dx"], ins["x"].shape, edx, "dx"))


class Relation:
    CASES = [(1, 1, 3, 7), (3, 3, 2, 3), (1, 3, 4, 33), (3, 1, 1, 5)]  # n nrel R V
    OUT, GRAD, ACC = "rel", dict(qk="dqk"), ()

    def inputs(self, rng, case):
        n, nrel, R, V = case
        return dict(qk=f32(rng, n, 2 * nrel * R, V)), dict(nrel=nrel, R=R)

    def ref(self, ins, cfg):
        return dict(rel=r_relation(ins["qk"], cfg["nrel"], cfg["R"]))

    def ref_grad(self, ins, cfg, drel):
        return r_relation_grad(r_relation(ins["qk"], cfg["nrel"], cfg["R"]), drel)

    def fwd(self, be, th, ins, cfg, padded):
        n, _, V = ins["qk"].shape
        r = run(be, "relation_forward", th, dict(qk=ins["qk"]), n=n, nrel=cfg["nrel"], R=cfg["R"], V=V)
        return dict(rel=r["rel"].reshape(n, cfg["nrel"] * cfg["R"], V, V))

    def bwd(self, be, th, ins, cfg, drel, acc, padded):
        n, _, V = ins["qk"].shape
        rel = self.fwd(be, 1, ins, cfg, False)["rel"]
        r = run(be, "relation_backward", th, dict(dqk=nan_like(ins["qk"].shape), drel=drel, rel=rel),
                n=n, nrel=cfg["nrel"], R=cfg["R"], V=V)
        return dict(dqk=r["dqk"])


class Adjacency:
    # n nrel C R V alpha; alpha 0 is CTR-GCN's initial value, where dalpha must still come out right
    CASES = [(1, 1, 5, 3, 7, 0.7), (1, 3, 5, 4, 7, 0.7), (3, 3, 2, 3, 3, 0.7), (3, 1, 3, 2, 33, 0.7),
             (2, 3, 4, 3, 5, 0.0), (2, 1, 3, 2, 4, 0.0)]
    OUT, GRAD = "AT", dict(rel="drel", W4="dW4", b4="db4", alpha="dalpha", PA="dPA")
    ACC = ("dW4", "db4", "dalpha", "dPA")

    def inputs(self, rng, case):
        n, nrel, C, R, V, alpha = case
        ins = dict(rel=f32(rng, n, nrel * R, V, V), W4=f32(rng, 3 * C, R), b4=f32(rng, 3 * C),
                   alpha=np.array([alpha], np.float32), PA=f32(rng, 3, V, V))
        return ins, dict(nrel=nrel, C=C)

    def ref(self, ins, cfg):
        AT, _ = r_adjacency(ins["rel"], ins["W4"], ins["b4"], ins["alpha"], ins["PA"], cfg["nrel"], cfg["C"])
        return dict(AT=AT)

    def ref_grad(self, ins, cfg, dAT):
        _, pre = r_adjacency(ins["rel"], ins["W4"], ins["b4"], ins["alpha"], ins["PA"], cfg["nrel"], cfg["C"])
        return r_adjacency_grad(ins["rel"], ins["W4"], ins["alpha"], pre, cfg["nrel"], cfg["C"], dAT)

    def _p(self, ins, cfg):
        n, nR, V, _ = ins["rel"].shape
        return dict(n=n, nrel=cfg["nrel"], C=cfg["C"], R=nR // cfg["nrel"], V=V)

    def fwd(self, be, th, ins, cfg, padded):
        p = self._p(ins, cfg)
        shape = (p["n"], 3 * p["C"], p["V"], p["V"])
        r = run(be, "adjacency_forward", th, dict(AT=nan_like(shape), **ins), **p)
        return dict(AT=r["AT"])

    def bwd(self, be, th, ins, cfg, dAT, acc, padded):
        p = self._p(ins, cfg)
        dAT = np.asarray(dAT, np.float32)
        keep = dAT.copy()
        r = run(be, "adjacency_backward", th,
                dict(drel=nan_like(ins["rel"].shape), dW4=acc["dW4"], db4=acc["db4"], dalpha=acc["dalpha"],
                     dPA=acc["dPA"], dAT=dAT, rel=ins["rel"], W4=ins["W4"], b4=ins["b4"], alpha=ins["alpha"]), **p)
        np.testing.assert_array_equal(dAT, keep, err_msg="adjacency_backward changed its input dAT")
        return {k: r[k] for k in ("drel", "dW4", "db4", "dalpha", "dPA")}


class Aggregate:
    CASES = [(1, 5, 8, 7), (3, 3, 5, 3), (1, 2, 3, 33), (3, 2, 1, 7), (1, 3, 8, 32), (1, 2, 4, 20), (2, 2, 3, 16),
             (1, 2, 5, 17), (1, 2, 9, 25), (2, 2, 13, 8), (1, 1, 7, 26)]
    # n C T V: 16, 17, 20, 32 cross the 16-lane vectors and transpose blocks; 8-26 joints take the
    # input gradient with the subsets side by side (2-5 vectors, row tiles of 6 or 4 and their rests)
    OUT, GRAD, ACC = "y", dict(val="dval", AT="dAT"), ()

    def inputs(self, rng, case):
        n, C, T, V = case
        return dict(val=f32(rng, n, 3 * C, T, V), AT=f32(rng, n, 3 * C, V, V)), {}

    def ref(self, ins, cfg):
        return dict(y=r_aggregate(ins["val"], ins["AT"]))

    def ref_grad(self, ins, cfg, dy):
        return r_aggregate_grad(ins["val"], ins["AT"], dy)

    def fwd(self, be, th, ins, cfg, padded, base=None, shift=None, relu=False):
        val, AT = ins["val"], ins["AT"]
        n, C3, T, V = val.shape
        shape = (n, C3 // 3, T, V)
        ey, ev, eb = pads(padded, V, 3, 2 * T * V)
        yf, ldy = pack(nan_like(shape), ey)
        vf, ldval = pack(val, ev)
        bf, ldbase = pack(base, eb) if base is not None else (None, shape[1] * T * V)
        r = run(be, "aggregate_forward", th, dict(y=yf, val=vf, AT=AT, base=bf, shift=shift),
                n=n, C=shape[1], T=T, V=V, relu=int(relu), ldy=ldy, ldval=ldval, ldbase=ldbase)
        return dict(y=unpack(r["y"], shape, ey, "y"))

    def bwd(self, be, th, ins, cfg, dy, acc, padded):
        val, AT = ins["val"], ins["AT"]
        n, C3, T, V = val.shape
        edv, edy, ev = pads(padded, 7, T * V, 1)
        dvf, lddval = pack(nan_like(val.shape), edv)
        dyf, lddy = pack(dy, edy)
        vf, ldval = pack(val, ev)
        r = run(be, "aggregate_backward", th, dict(dval=dvf, dAT=nan_like(AT.shape), dy=dyf, val=vf, AT=AT),
                n=n, C=C3 // 3, T=T, V=V, lddval=lddval, lddy=lddy, ldval=ldval)
        return dict(dval=unpack(r["dval"], val.shape, edv, "dval"), dAT=r["dAT"].reshape(AT.shape))


class BatchNorm:
    CASES = [(1, 5, 56), (3, 4, 15), (3, 3, 1), (1, 2, 7)]  # n C L
    OUT, GRAD, ACC = "y", dict(x="dx", gamma="dgamma", beta="dbeta"), ("dgamma", "dbeta")

    def inputs(self, rng, case):
        n, C, L = case
        x = f32(rng, n, C, L) * 2 + f32(rng, 1, C, 1) * 3  # channels off zero
        return dict(x=x.astype(np.float32), gamma=f32(rng, C), beta=f32(rng, C)), {}

    def ref(self, ins, cfg):
        y, stat = r_bn(ins["x"], ins["gamma"], ins["beta"])
        return dict(y=y, stat=stat)

    def ref_grad(self, ins, cfg, dy):
        stat = r_bn(ins["x"], ins["gamma"], ins["beta"])[1]
        return r_bn_grad(ins["x"], ins["gamma"], stat, dy)

    def fwd(self, be, th, ins, cfg, padded, run_stats=None, momentum=0.1, alias=False, res=None, relu=False):
        x = ins["x"]
        n, C, L = x.shape
        ey, ex, er = pads(padded, 3, 3 if alias else 8, 5)
        xf, ldx = pack(x, ex)
        yf, ldy = pack(nan_like(x.shape), ey)
        arrays = dict(y="x" if alias else yf, x=xf, gamma=ins["gamma"], beta=ins["beta"], stat=nan_like(2 * C))
        if run_stats is not None:
            arrays.update(run_mean=run_stats[0], run_var=run_stats[1])
        ldres = C * L
        if res is not None:
            arrays["res"], ldres = pack(res, er)
        r = run(be, "bn_forward", th, arrays, n=n, C=C, L=L, ldy=ldy, ldx=ldx, momentum=momentum, ldres=ldres,
                relu=int(relu))
        out = dict(y=unpack(r["y"], x.shape, ey, "y"), stat=r["stat"])
        if run_stats is not None:
            out.update(run_mean=r["run_mean"], run_var=r["run_var"])
        return out

    def bwd(self, be, th, ins, cfg, dy, acc, padded, alias=False):
        x = ins["x"]
        n, C, L = x.shape
        stat = self.fwd(be, 1, ins, cfg, False)["stat"]
        edx, edy, ex = pads(padded, 2, 2 if alias else 5, 1)
        xf, ldx = pack(x, ex)
        dyf, lddy = pack(dy, edy)
        dxf, lddx = pack(nan_like(x.shape), edx)
        r = run(be, "bn_backward", th,
                dict(dx="dy" if alias else dxf, dy=dyf, x=xf, gamma=ins["gamma"], stat=stat, dgamma=acc["dgamma"],
                     dbeta=acc["dbeta"]), n=n, C=C, L=L, lddx=lddx, lddy=lddy, ldx=ldx)
        return dict(dx=unpack(r["dx"], x.shape, edx, "dx"), dgamma=r["dgamma"], dbeta=r["dbeta"])


class Relu:
    CASES = [1, 37, 1000]
    OUT, GRAD, ACC = "y", dict(a="dx", b="dx"), ()

    def inputs(self, rng, count):
        return dict(a=f32(rng, count), b=f32(rng, count)), {}

    def ref(self, ins, cfg):
        return dict(y=np.maximum(ins["a"] + ins["b"], 0))

    def ref_grad(self, ins, cfg, dy):
        return dict(dx=dy * (ins["a"] + ins["b"] > 0))

    def fwd(self, be, th, ins, cfg, padded, alias=False, b=True):
        a = ins["a"]
        r = run(be, "add_relu_forward", th, dict(y="a" if alias else nan_like(a.shape), a=a, b=ins["b"] if b else None),
                count=a.size)
        return dict(y=r["y"])

    def bwd(self, be, th, ins, cfg, dy, acc, padded, alias=False):
        y = self.fwd(be, 1, ins, cfg, False)["y"]
        r = run(be, "relu_backward", th, dict(dx="dy" if alias else nan_like(y.shape), dy=dy, y=y), count=y.size)
        return dict(dx=r["dx"])


class Persons:
    CASES = [(1, 3, 5, 7, 1), (3, 2, 8, 3, 2), (2, 3, 1, 33, 2)]  # N C T V M
    OUT, GRAD, ACC = "y", dict(x="dx"), ()

    def inputs(self, rng, case):
        N, C, T, V, M = case
        return dict(x=f32(rng, N, M * V * C, T)), dict(dims=case)

    def ref(self, ins, cfg):
        N, C, T, V, M = cfg["dims"]
        return dict(y=ins["x"].reshape(N, M, V, C, T).transpose(0, 1, 3, 4, 2).reshape(N * M, C, T, V))

    def ref_grad(self, ins, cfg, dy):
        N, C, T, V, M = cfg["dims"]
        return dict(dx=dy.reshape(N, M, C, T, V).transpose(0, 1, 4, 2, 3).reshape(N, M * V * C, T))

    def _p(self, cfg):
        return dict(zip("NCTVM", cfg["dims"]))

    def fwd(self, be, th, ins, cfg, padded):
        N, C, T, V, M = cfg["dims"]
        r = run(be, "persons_forward", th, dict(x=ins["x"]), **self._p(cfg))
        return dict(y=r["y"].reshape(N * M, C, T, V))

    def bwd(self, be, th, ins, cfg, dy, acc, padded):
        r = run(be, "persons_backward", th, dict(dx=nan_like(ins["x"].shape), dy=dy), **self._p(cfg))
        return dict(dx=r["dx"])


class Pool:
    CASES = [(1, 1, 5, 15), (3, 2, 4, 7), (2, 2, 3, 1)]  # N M F L
    OUT, GRAD, ACC = "feat", dict(x="dx"), ()

    def inputs(self, rng, case):
        N, M, F, L = case
        return dict(x=f32(rng, N * M, F, L)), dict(N=N, M=M)

    def ref(self, ins, cfg):
        N, M = cfg["N"], cfg["M"]
        _, F, L = ins["x"].shape
        return dict(feat=ins["x"].reshape(N, M, F, L).mean((1, 3)))

    def ref_grad(self, ins, cfg, dfeat):
        N, M = cfg["N"], cfg["M"]
        _, F, L = ins["x"].shape
        return dict(dx=np.broadcast_to((dfeat / (M * L))[:, None, :, None], (N, M, F, L)).reshape(N * M, F, L))

    def fwd(self, be, th, ins, cfg, padded):
        _, F, L = ins["x"].shape
        r = run(be, "pool_forward", th, dict(feat=nan_like((cfg["N"], F)), x=ins["x"]), N=cfg["N"], M=cfg["M"], F=F,
                L=L)
        return dict(feat=r["feat"])

    def bwd(self, be, th, ins, cfg, dfeat, acc, padded):
        _, F, L = ins["x"].shape
        r = run(be, "pool_backward", th, dict(dx=nan_like(ins["x"].shape), dfeat=dfeat), N=cfg["N"], M=cfg["M"],
                F=F, L=L)
        return dict(dx=r["dx"])


class Linear:
    CASES = [(1, 5, 7), (3, 4, 9), (5, 1, 3)]  # N K F
    OUT, GRAD, ACC = "y", dict(x="dx", W="dW", b="db"), ("dW", "db")

    def inputs(self, rng, case):
        N, K, F = case
        return dict(x=f32(rng, N, F), W=f32(rng, K, F), b=f32(rng, K)), {}

    def ref(self, ins, cfg):
        return dict(y=r_linear(ins["x"], ins["W"], ins["b"]))

    def ref_grad(self, ins, cfg, dy):
        return dict(dx=dy @ ins["W"], dW=dy.T @ ins["x"], db=dy.sum(0))

    def fwd(self, be, th, ins, cfg, padded, b=True):
        (N, F), K = ins["x"].shape, ins["W"].shape[0]
        r = run(be, "linear_forward", th, dict(y=nan_like((N, K)), x=ins["x"], W=ins["W"], b=ins["b"] if b else None),
                N=N, K=K, F=F)
        return dict(y=r["y"])

    def bwd(self, be, th, ins, cfg, dy, acc, padded):
        (N, F), K = ins["x"].shape, ins["W"].shape[0]
        r = run(be, "linear_backward", th,
                dict(dx=nan_like((N, F)), dW=acc["dW"], db=acc["db"], dy=dy, x=ins["x"], W=ins["W"]), N=N, K=K, F=F)
        return dict(dx=r["dx"], dW=r["dW"], db=r["db"])


PAIRS = dict(conv1x1=Conv1x1(), tconv=Tconv(), maxpool=Maxpool(), mean_time=MeanTime(), relation=Relation(),
             adjacency=Adjacency(), aggregate=Aggregate(), bn=BatchNorm(), relu=Relu(), persons=Persons(),
             pool=Pool(), linear=Linear())
PAIR_CASES = [pytest.param(name, case, id=f"{name}-{'x'.join(map(str, np.atleast_1d(case)))}")
              for name, pair in PAIRS.items() for case in pair.CASES]


def seed(*parts):
    return zlib.crc32(repr(parts).encode())


# ====================================================================================== generic tests
@pytest.mark.parametrize("padded", [False, True], ids=["tight", "ld"])
@pytest.mark.parametrize("name,case", PAIR_CASES)
def test_forward(be, threads, name, case, padded):
    pair = PAIRS[name]
    rng = np.random.default_rng(seed(name, case))
    ins, cfg = pair.inputs(rng, case)
    want = pair.ref({k: v.astype(np.float64) for k, v in ins.items()}, cfg)
    got = pair.fwd(be, threads, ins, cfg, padded)
    for k, w in want.items():
        if w.dtype.kind == "i":
            np.testing.assert_array_equal(np.asarray(got[k]).reshape(w.shape), w, err_msg=f"{name}.{k}")
        else:
            close(np.asarray(got[k]).reshape(w.shape), w, what=f"{name}.{k}")


@pytest.mark.parametrize("padded", [False, True], ids=["tight", "ld"])
@pytest.mark.parametrize("name,case", PAIR_CASES)
def test_backward(be, threads, name, case, padded):
    """Backend backward against the reference backward; accumulated gradients prefilled."""
    pair = PAIRS[name]
    rng = np.random.default_rng(seed(name, case, "b"))
    ins, cfg = pair.inputs(rng, case)
    ins64 = {k: v.astype(np.float64) for k, v in ins.items()}
    out = pair.ref(ins64, cfg)[pair.OUT]
    dy = f32(rng, *out.shape)
    want = pair.ref_grad(ins64, cfg, dy.astype(np.float64))
    acc = {k: f32(rng, *want[k].shape) for k in pair.ACC}
    got = pair.bwd(be, threads, ins, cfg, dy, acc, padded)
    assert set(got) == set(want)
    for k, w in want.items():
        g = np.asarray(got[k], np.float64).reshape(w.shape)
        if k in acc:
            close(g, acc[k] + w, scale=max(np.abs(w).max(), np.abs(acc[k]).max(), 1e-3), what=f"{name}.{k} (acc)")
        else:
            close(g, w, what=f"{name}.{k}")


def numeric_grads(f, ins, keys, rng, eps, points):
    """Central differences of f(ins) (a scalar) at up to `points` entries of each input in keys."""
    out = {}
    for k in keys:
        x = ins[k]
        flat = np.arange(x.size)
        pick = flat if x.size <= points else rng.choice(flat, points, replace=False)
        g = {}
        for i in pick:
            xp, xm = x.copy(), x.copy()
            xp.flat[i] += eps
            xm.flat[i] -= eps
            h = float(xp.flat[i]) - float(xm.flat[i])  # the step the dtype really took
            g[int(i)] = (f({**ins, k: xp}) - f({**ins, k: xm})) / h
        out[k] = g
    return out


@pytest.mark.parametrize("name,case", PAIR_CASES)
def test_reference_gradients(name, case):
    """The reference backward is the derivative of the reference forward (float64)."""
    pair = PAIRS[name]
    rng = np.random.default_rng(seed(name, case, "fd"))
    ins, cfg = pair.inputs(rng, case)
    ins = {k: v.astype(np.float64) for k, v in ins.items()}
    w = rng.standard_normal(pair.ref(ins, cfg)[pair.OUT].shape)
    grads = pair.ref_grad(ins, cfg, w)
    num = numeric_grads(lambda d: float(np.sum(w * pair.ref(d, cfg)[pair.OUT])), ins, pair.GRAD, rng, 1e-6, 24)
    for k, g in num.items():
        ana = grads[pair.GRAD[k]].ravel()
        scale = max(np.abs(ana).max(), 1e-3)
        for i, v in g.items():
            assert abs(v - ana[i]) <= 1e-6 * scale + 1e-7, (k, i, v, ana[i])


@pytest.mark.parametrize("name,case", [p for p in PAIR_CASES if p.values[0] != "maxpool"] +
                         [pytest.param("maxpool", (1, 3, 8, 7, 2), id="maxpool-distinct")])
def test_backend_gradients(be, name, case):
    """The backend's backward is the derivative of the backend's own forward (float32, loose)."""
    pair = PAIRS[name]
    rng = np.random.default_rng(seed(name, case, "bfd"))
    ins, cfg = pair.inputs(rng, case)
    if name == "maxpool":  # well-separated values: no window changes its winner under the step
        x = ins["x"]
        ins["x"] = (rng.permutation(x.size).reshape(x.shape) * 0.1).astype(np.float32)
    w = rng.standard_normal(np.shape(pair.fwd(be, 1, ins, cfg, False)[pair.OUT]))
    zeros = {k: np.zeros(np.shape(v), np.float32)
             for k, v in pair.ref_grad({k: v.astype(np.float64) for k, v in ins.items()}, cfg, w).items()
             if k in pair.ACC}
    grads = pair.bwd(be, 1, ins, cfg, w.astype(np.float32), zeros, False)

    def loss(d):
        return float(np.sum(w * np.asarray(pair.fwd(be, 1, d, cfg, False)[pair.OUT], np.float64).reshape(w.shape)))

    num = numeric_grads(loss, ins, pair.GRAD, rng, 1e-2 if name != "bn" else 3e-3, 5)
    for k, g in num.items():
        ana = np.asarray(grads[pair.GRAD[k]], np.float64).ravel()
        scale = max(np.abs(ana).max(), 1e-2)
        for i, v in g.items():
            assert abs(v - ana[i]) <= 2e-2 * scale, (k, i, v, ana[i])


def test_every_op_is_covered():
    tested = {"memory", "count_nonfinite", "lanes", "run_lanes", "input_forward", "persons_forward",
              "persons_backward", "bn_forward", "bn_backward", "affine_forward", "add_relu_forward", "relu_backward",
              "accumulate", "conv1x1_forward", "conv1x1_backward", "tconv_forward", "tconv_backward",
              "maxpool_forward", "maxpool_backward", "mean_time_forward", "mean_time_backward", "relation_forward",
              "relation_backward", "adjacency_forward", "adjacency_backward", "aggregate_forward",
              "aggregate_backward", "pool_forward", "pool_backward", "linear_forward", "linear_backward",
              "xent_forward", "sgd_update"}
    assert set(_core.backend_op_names()) == tested
    assert "cpu" in BACKENDS


# ==================================================================================== op-specific tests
def test_memory_hooks(be):
    with pytest.raises(ctrgcn.InputError):
        _core.backend_op(be, "memory", 1, dict(x="x"), dict(offset=1, count=1))
    x = np.arange(1, 38, dtype=np.float32)
    r = _core.backend_op(be, "memory", 1, dict(x=x), dict(offset=5, count=11))
    want = x.copy()
    want[5:16] = 0
    np.testing.assert_array_equal(r["x"], want)
    r = _core.backend_op(be, "memory", 1, dict(x=x.reshape(37, 1)), {})
    np.testing.assert_array_equal(r["x"], x.reshape(37, 1))  # round trip, shape kept


def test_count_nonfinite(be, threads):
    x = np.linspace(-1, 1, 1001).astype(np.float32)
    x[[0, 17, 500, 999]] = [np.nan, np.inf, -np.inf, np.nan]
    assert run(be, "count_nonfinite", threads, dict(x=x))["count"] == 4
    assert run(be, "count_nonfinite", threads, dict(x=x), count=999)["count"] == 3
    assert run(be, "count_nonfinite", threads, dict(x=x[1:17]))["count"] == 0


@pytest.mark.parametrize("chunks", [0, 1, 5, 16])
def test_lanes(be, threads, chunks):
    r = _core.backend_op(be, "lanes", threads, {}, dict(chunks=chunks))
    assert 1 <= r["lanes"] or chunks == 0
    assert r["lanes"] <= max(chunks, 1)
    assert r["eval_chunk"] >= 0
    r = _core.backend_op(be, "run_lanes", threads, {}, dict(chunks=chunks))
    assert r["bad"] == 0, "a chunk or lane out of range"
    np.testing.assert_array_equal(r["calls"], np.ones(chunks, np.int32))  # every chunk exactly once
    assert np.all((r["chunk_lane"] >= 0) & (r["chunk_lane"] < max(r["lanes"], 1)))
    assert r["overlaps"] == 0, "two chunks ran on one lane at once"


@pytest.mark.parametrize("dims", [(1, 3, 5, 7, 1), (3, 2, 8, 3, 2), (2, 3, 1, 33, 2)], ids=str)
def test_input_forward(be, threads, dims):
    N, C, T, V, M = dims
    x = f32(np.random.default_rng(1), N, C, T, V, M)
    y = run(be, "input_forward", threads, dict(x=x), **dict(zip("NCTVM", dims)))["y"]
    np.testing.assert_array_equal(y.reshape(N, M * V * C, T), x.transpose(0, 4, 3, 1, 2).reshape(N, M * V * C, T))


@pytest.mark.parametrize("padded", [False, True], ids=["tight", "ld"])
def test_affine_forward(be, threads, padded):
    rng = np.random.default_rng(2)
    for n, C, L in [(1, 5, 56), (3, 3, 7)]:
        x, sc, sh = f32(rng, n, C, L), f32(rng, C), f32(rng, C)
        (e,) = pads(padded, 9)
        xf, ld = pack(x, e)
        yf, _ = pack(nan_like(x.shape), e)
        r = run(be, "affine_forward", threads, dict(y=yf, x=xf, scale=sc, shift=sh), n=n, C=C, L=L, ldn=ld)
        close(unpack(r["y"], x.shape, e, "y"), sc[None, :, None] * x.astype(np.float64) + sh[None, :, None])


def test_accumulate(be, threads):
    rng = np.random.default_rng(3)
    for count in [1, 37, 1000]:
        d, s = f32(rng, count), f32(rng, count)
        r = run(be, "accumulate", threads, dict(dst=d, src=s), count=count)
        np.testing.assert_array_equal(r["dst"], d + s)
    d = f32(rng, 10)
    r = run(be, "accumulate", threads, dict(dst=d, src=np.ones(10)), count=6)  # count, not the array size
    np.testing.assert_array_equal(r["dst"], np.concatenate([d[:6] + 1, d[6:]]))


def test_add_relu_variants(be, threads):
    pair = PAIRS["relu"]
    rng = np.random.default_rng(4)
    ins, cfg = pair.inputs(rng, 37)
    a = ins["a"]
    np.testing.assert_array_equal(pair.fwd(be, threads, ins, cfg, False, b=False)["y"], np.maximum(a, 0))
    np.testing.assert_array_equal(pair.fwd(be, threads, ins, cfg, False, alias=True)["y"],
                                  np.maximum(a + ins["b"], 0))  # y == a: in place
    y = np.maximum(a + ins["b"], 0).astype(np.float32)
    dy = f32(rng, 37)
    np.testing.assert_array_equal(pair.bwd(be, threads, ins, cfg, dy, {}, False, alias=True)["dx"],
                                  np.where(y > 0, dy, 0))  # dx == dy: in place
    # count smaller than the arrays: the rest is not touched
    r = run(be, "add_relu_forward", threads, dict(y=nan_like(37), a=a), count=20)
    assert np.all(np.isnan(r["y"][20:])) and np.all(np.isfinite(r["y"][:20]))


@pytest.mark.parametrize("case", Conv1x1.CASES, ids=str)
def test_conv1x1_accumulate_and_optional(be, threads, case):
    pair = PAIRS["conv1x1"]
    rng = np.random.default_rng(seed("c1acc", case))
    ins, cfg = pair.inputs(rng, case)
    ins64 = {k: v.astype(np.float64) for k, v in ins.items()}
    n, co, ci, T, V, s = case
    y0 = f32(rng, n, co, (T - 1) // s + 1, V)
    for b in (True, False):
        want = r_conv1x1(ins64["x"], ins64["W"], ins64["b"] if b else None, s)
        close(pair.fwd(be, threads, ins, cfg, True, b=b)["y"], want, what="written")
        close(pair.fwd(be, threads, ins, cfg, True, b=b, y0=y0)["y"], y0 + want, what="accumulated")
    dy = f32(rng, *y0.shape)
    want = r_conv1x1_grad(ins64["x"], ins64["W"], s, dy.astype(np.float64))
    acc = {k: f32(rng, *want[k].shape) for k in want}
    got = pair.bwd(be, threads, ins, cfg, dy, acc, True, want_dx=False, want_db=False)  # dx, db NULL
    assert set(got) == {"dW"}
    close(got["dW"], acc["dW"] + want["dW"], scale=np.abs(want["dW"]).max() + 1)


@pytest.mark.parametrize("case", Tconv.CASES, ids=str)
def test_tconv_optional(be, threads, case):
    pair = PAIRS["tconv"]
    rng = np.random.default_rng(seed("tcopt", case))
    ins, cfg = pair.inputs(rng, case)
    ins64 = {k: v.astype(np.float64) for k, v in ins.items()}
    want = r_tconv(ins64["x"], ins64["W"], None, cfg["dil"], cfg["s"])
    close(pair.fwd(be, threads, ins, cfg, True, b=False)["y"], want, what="no bias")
    dy = f32(rng, *want.shape)
    wg = r_tconv_grad(ins64["x"], ins64["W"], cfg["dil"], cfg["s"], dy.astype(np.float64))
    acc = {k: f32(rng, *wg[k].shape) for k in wg}
    got = pair.bwd(be, threads, ins, cfg, dy, acc, True, want_dx=False, want_db=False)
    assert set(got) == {"dW"}
    close(got["dW"], acc["dW"] + wg["dW"], scale=np.abs(wg["dW"]).max() + 1)


def test_tconv_padding_is_zero(be):
    # a constant input: only the border frames see the zero padding
    pair = PAIRS["tconv"]
    ins = dict(x=np.ones((1, 1, 9, 1), np.float32), W=np.ones((5, 1, 1), np.float32), b=np.zeros(1, np.float32))
    y = pair.fwd(be, 1, ins, dict(dil=1, s=1), False)["y"].ravel()
    np.testing.assert_array_equal(y, [3, 4, 5, 5, 5, 5, 5, 4, 3])
    y = pair.fwd(be, 1, ins, dict(dil=2, s=2), False)["y"].ravel()
    np.testing.assert_array_equal(y, [3, 4, 5, 4, 3])


@pytest.mark.parametrize("case", [(2, 3, 12, 8, 25, 0.7), (3, 1, 20, 8, 20, 0.0)], ids=str)
def test_adjacency_network_shapes(be, threads, case):
    """Joint counts of the real graphs (whole and partial 16-lane vectors of V*V), forward and backward."""
    pair = PAIRS["adjacency"]
    rng = np.random.default_rng(seed("adj-net", case))
    ins, cfg = pair.inputs(rng, case)
    ins64 = {k: v.astype(np.float64) for k, v in ins.items()}
    close(pair.fwd(be, threads, ins, cfg, False)["AT"], pair.ref(ins64, cfg)["AT"], what="AT")
    dAT = f32(rng, *pair.ref(ins64, cfg)["AT"].shape)
    want = pair.ref_grad(ins64, cfg, dAT.astype(np.float64))
    acc = {k: np.zeros(want[k].shape, np.float32) for k in pair.ACC}
    got = pair.bwd(be, threads, ins, cfg, dAT, acc, False)
    for k, w in want.items():
        close(np.asarray(got[k], np.float64).reshape(w.shape), w, what=f"adjacency.{k}")


@pytest.mark.parametrize("case", Maxpool.CASES, ids=str)
def test_maxpool_ties_scale_shift(be, threads, case):
    """Integer values in a small range: ties everywhere, and the first maximum must win."""
    pair = PAIRS["maxpool"]
    n, C, T, V, s = case
    rng = np.random.default_rng(seed("mp", case))
    x = rng.integers(0, 3, (n, C, T, V)).astype(np.float32)
    x[0, 0] = 1.0  # an all-equal channel
    want, am = r_maxpool(x.astype(np.float64), s)
    got = pair.fwd(be, threads, dict(x=x), dict(s=s), True)
    np.testing.assert_array_equal(got["argmax"].reshape(am.shape), am)
    np.testing.assert_array_equal(got["y"], want)
    sc, sh = f32(rng, C), f32(rng, C)
    want = r_maxpool(x.astype(np.float64), s, sc.astype(np.float64), sh.astype(np.float64))[0]
    close(pair.fwd(be, threads, dict(x=x), dict(s=s), True, scale=sc, shift=sh, argmax=False)["y"], want)
    close(pair.fwd(be, threads, dict(x=x), dict(s=s), True, scale=sc)["y"], r_maxpool(x, s, sc)[0])
    close(pair.fwd(be, threads, dict(x=x), dict(s=s), True, shift=sh)["y"], r_maxpool(x, s, None, sh)[0])


@pytest.mark.parametrize("case", Aggregate.CASES, ids=str)
@pytest.mark.parametrize("relu", [False, True])
def test_aggregate_epilogue(be, threads, case, relu):
    """base (person-strided), shift and ReLU fused into the aggregation."""
    pair = PAIRS["aggregate"]
    rng = np.random.default_rng(seed("agg", case, relu))
    ins, cfg = pair.inputs(rng, case)
    n, C, T, V = case
    base, shift = f32(rng, n, C, T, V), f32(rng, C)
    i64 = {k: v.astype(np.float64) for k, v in ins.items()}
    for bb, ss in [(base, shift), (base, None), (None, shift), (None, None)]:
        want = r_aggregate(i64["val"], i64["AT"], bb, ss, relu)
        got = pair.fwd(be, threads, ins, cfg, True, base=bb, shift=ss, relu=relu)["y"]
        close(got, want, what=f"base={bb is not None} shift={ss is not None} relu={relu}")
        if relu:
            assert np.all(got >= 0)


@pytest.mark.parametrize("case", BatchNorm.CASES, ids=str)
def test_bn_forward_epilogue(be, threads, case):
    """A residual (person-strided) and ReLU fused into the normalising pass: y = relu(BN(x) + res),
    the statistics those of x alone; in place (y = x) too."""
    pair = PAIRS["bn"]
    rng = np.random.default_rng(seed("bnepi", case))
    ins, cfg = pair.inputs(rng, case)
    n, C, L = case
    res = f32(rng, n, C, L)
    bn, stat = r_bn(ins["x"].astype(np.float64), ins["gamma"].astype(np.float64), ins["beta"].astype(np.float64))
    for rr, relu in [(res, True), (res, False), (None, True)]:
        want = bn + (rr if rr is not None else 0)
        want = np.maximum(want, 0) if relu else want
        for alias in (False, True):
            got = pair.fwd(be, threads, ins, cfg, True, alias=alias, res=rr, relu=relu)
            close(got["y"], want, what=f"res={rr is not None} relu={relu} alias={alias}")
            close(got["stat"], stat, what="stat")
            if relu:
                assert np.all(got["y"] >= 0)


@pytest.mark.parametrize("case", BatchNorm.CASES, ids=str)
def test_bn_running_stats_and_alias(be, threads, case):
    pair = PAIRS["bn"]
    rng = np.random.default_rng(seed("bnrun", case))
    ins, cfg = pair.inputs(rng, case)
    n, C, L = case
    x = ins["x"].astype(np.float64)
    rm, rv = f32(rng, C), np.abs(f32(rng, C)) + 0.5
    mom = 0.3
    got = pair.fwd(be, threads, ins, cfg, True, run_stats=(rm, rv), momentum=mom)
    mu = x.mean((0, 2))
    var_u = x.var((0, 2), ddof=1) if n * L > 1 else x.var((0, 2))
    close(got["run_mean"], (1 - mom) * rm + mom * mu, what="run_mean")
    close(got["run_var"], (1 - mom) * rv + mom * var_u, what="run_var (unbiased)")
    y, stat = r_bn(x, ins["gamma"].astype(np.float64), ins["beta"].astype(np.float64))
    close(got["stat"], stat, what="stat = [mean | invstd]")
    close(got["y"], y, what="y")
    # y aliasing x (ldy == ldx)
    close(pair.fwd(be, threads, ins, cfg, True, alias=True)["y"], y, what="y in place")
    # dx aliasing dy
    dy = f32(rng, n, C, L)
    want = r_bn_grad(x, ins["gamma"].astype(np.float64), stat, dy.astype(np.float64))
    acc = dict(dgamma=f32(rng, C), dbeta=f32(rng, C))
    got = pair.bwd(be, threads, ins, cfg, dy, acc, True, alias=True)
    close(got["dx"], want["dx"], what="dx in place")
    close(got["dgamma"], acc["dgamma"] + want["dgamma"], scale=np.abs(want["dgamma"]).max() + 1)


def test_bn_is_not_fooled_by_a_large_mean(be):
    rng = np.random.default_rng(5)
    x = (1000 + f32(rng, 2, 3, 50) * 0.01).astype(np.float32)
    g, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    got = PAIRS["bn"].fwd(be, 1, dict(x=x, gamma=g, beta=b), {}, False)
    y, stat = r_bn(x.astype(np.float64), g, b)
    close(got["stat"], stat, tol=1e-5, what="stat")
    # y = a*x + b with b ~ -1e5 loses float32 digits: only loosely
    close(got["y"], y, tol=1e-2, what="y")


@pytest.mark.parametrize("dims", [(1, 7), (3, 5), (4, 1)], ids=str)
def test_xent(be, threads, dims):
    N, K = dims
    rng = np.random.default_rng(seed("xent", dims))
    z = f32(rng, N, K, scale=3.0)
    z[0, 0] += 50  # large logits must not overflow
    t = rng.random((N, K))
    t = (t / t.sum(1, keepdims=True)).astype(np.float32)  # soft targets
    r = run(be, "xent_forward", threads, dict(logits=z, targets=t), N=N, K=K)
    loss, grad = r_xent(z.astype(np.float64), t.astype(np.float64))
    assert r["loss"] == pytest.approx(loss, rel=1e-6, abs=1e-6)
    close(r["dlogits"].reshape(N, K), grad, what="dlogits")
    # the gradient is the derivative of the loss (float64 reference, central differences)
    z64, eps = z.astype(np.float64), 1e-6
    for i, k in [(0, 0), (N - 1, K - 1)]:
        zp, zm = z64.copy(), z64.copy()
        zp[i, k] += eps
        zm[i, k] -= eps
        num = (r_xent(zp, t)[0] - r_xent(zm, t)[0]) / (2 * eps)
        assert num == pytest.approx(grad[i, k], abs=1e-6)


@pytest.mark.parametrize("nesterov", [0, 1])
@pytest.mark.parametrize("first_step", [0, 1])
@pytest.mark.parametrize("wd", [0.0, 5e-4])
def test_sgd_update(be, threads, nesterov, first_step, wd):
    rng = np.random.default_rng(seed("sgd", nesterov, first_step, wd))
    count, lr, mu = 1001, 0.1, 0.9
    p, g, v = f32(rng, count), f32(rng, count), f32(rng, count)
    r = run(be, "sgd_update", threads, dict(p=p, g=g, v=v), count=count, lr=lr, momentum=mu, weight_decay=wd,
            nesterov=nesterov, first_step=first_step)
    p64, g64, v64 = (a.astype(np.float64) for a in (p, g, v))
    d = g64 + wd * p64
    vn = d if first_step else mu * v64 + d
    pn = p64 - lr * (d + mu * vn if nesterov else vn)
    close(r["v"], vn, what="v")
    close(r["p"], pn, what="p")


def test_sgd_two_steps_match_the_recurrence(be):
    rng = np.random.default_rng(6)
    p, g1, g2 = f32(rng, 9), f32(rng, 9), f32(rng, 9)
    v = np.full(9, 123.0, np.float32)  # ignored on the first step
    prm = dict(count=9, lr=0.5, momentum=0.9, weight_decay=0.0, nesterov=0)
    r = _core.backend_op(be, "sgd_update", 1, dict(p=p, g=g1, v=v), dict(prm, first_step=1))
    r = _core.backend_op(be, "sgd_update", 1, dict(p=r["p"], g=g2, v=r["v"]), dict(prm, first_step=0))
    v1 = g1.astype(np.float64)
    v2 = 0.9 * v1 + g2
    close(r["p"], p - 0.5 * v1 - 0.5 * v2)


# ======================================================================== bad calls raise, never crash
BAD_CALLS = [
    ("nonexistent_op", {}, {}),
    ("conv1x1_forward", dict(x=np.zeros(10), W=np.zeros(4)), dict(n=1, co=2, ci=2, T=5)),  # V missing
    ("conv1x1_forward", dict(x=np.zeros(10), W=np.zeros(4)), dict(n=1, co=2, ci=2, T=5, V=1, bogus=1)),
    ("conv1x1_forward", dict(x=np.zeros(9), W=np.zeros(4)), dict(n=1, co=2, ci=2, T=5, V=1)),  # x too small
    ("conv1x1_forward", dict(x=np.zeros(10)), dict(n=1, co=2, ci=2, T=5, V=1)),  # W missing
    ("conv1x1_forward", dict(x=np.zeros(10), W=np.zeros(4)), dict(n=1, co=2, ci=2, T=5, V=1, ldx=3)),  # ld < tight
    ("conv1x1_forward", dict(x=np.zeros(10), W=np.zeros(4)), dict(n=1, co=2, ci=2, T=5, V=1, accumulate=1)),  # no y
    ("conv1x1_forward", dict(x=np.zeros(10), W=np.zeros(4)), dict(n=0, co=2, ci=2, T=5, V=1)),
    ("conv1x1_forward", dict(x=np.zeros(10), W=np.zeros(4)), dict(n=1, co=2, ci=2, T=5, V="a")),
    ("conv1x1_forward", dict(x=np.array(["a"] * 10), W=np.zeros(4)), dict(n=1, co=2, ci=2, T=5, V=1)),
    ("conv1x1_forward", dict(x=np.zeros(10), W=np.zeros(4), y="nope"), dict(n=1, co=2, ci=2, T=5, V=1)),
    ("conv1x1_forward", dict(x=np.zeros(10), W=np.zeros(4), n=np.zeros(3)), dict(n=1, co=2, ci=2, T=5, V=1)),
    ("conv1x1_forward", dict(x=np.zeros(10), W=np.zeros(4)), dict(n=1, co=2, ci=2, T=5, V=1 << 40)),
    ("tconv_forward", dict(x=np.zeros(10), W=np.zeros(20)), dict(n=1, co=2, ci=2, T=5, V=1, k=5, stride=9)),
    ("maxpool_backward", dict(dx=np.zeros(6), dy=np.zeros(6), argmax=np.full(6, 3, np.int32)), dict(n=1, C=2, T=3, V=1)),
    ("maxpool_backward", dict(dx=np.zeros(6), dy=np.zeros(6), argmax=np.zeros(6)), dict(n=1, C=2, T=3, V=1)),
    ("adjacency_forward", dict(rel=np.zeros(8), W4=np.zeros(6), b4=np.zeros(3), alpha=np.ones(1), PA=np.zeros(12)),
     dict(n=1, nrel=2, C=1, R=2, V=2)),
    ("bn_forward", dict(x=np.zeros(6), gamma=np.ones(2), beta=np.ones(2), run_mean=np.zeros(2)), dict(n=1, C=2, L=3)),
    ("sgd_update", dict(p=np.zeros(3), g=np.zeros(3), v=np.zeros(3)), dict(count=3, lr=0.1)),  # momentum missing
    ("count_nonfinite", dict(x=np.zeros(3)), dict(count=4)),
    ("memory", dict(x=np.zeros(3)), dict(offset=2, count=2)),
]


@pytest.mark.parametrize("op,arrays,params", BAD_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_CALLS)])
def test_bad_calls_raise_input_error(be, op, arrays, params):
    with pytest.raises(ctrgcn.InputError):
        _core.backend_op(be, op, 1, arrays, params)


def test_bad_backend_and_types():
    with pytest.raises(ctrgcn.InputError):
        _core.backend_op("no-such-backend", "accumulate", 1, {}, {})
    with pytest.raises(ctrgcn.InputError):
        _core.backend_op("cpu", "accumulate", 1, [], {})
    with pytest.raises(ctrgcn.InputError):
        _core.backend_op("cpu", "accumulate", 1, {}, [])
    with pytest.raises(ctrgcn.InputError):
        _core.backend_op("cpu", "accumulate", -1, dict(dst=np.zeros(1), src=np.zeros(1)), dict(count=1))


@pytest.mark.parametrize("op", sorted(_core.backend_op_names()))
def test_empty_call_raises(be, op):
    with pytest.raises(ctrgcn.InputError):
        _core.backend_op(be, op, 1, {}, {})


@pytest.mark.parametrize("name", list(PAIRS))
def test_truncated_arrays_and_bad_params_raise(be, name, monkeypatch):
    """Every array of a valid call emptied, every integer param made negative: InputError each time."""
    calls, real_run = [], run

    def record(be_, op, threads, arrays, **params):
        calls.append((op, arrays, params))
        return real_run(be_, op, threads, arrays, **params)

    monkeypatch.setattr(sys.modules[__name__], "run", record)
    pair = PAIRS[name]
    rng = np.random.default_rng(7)
    ins, cfg = pair.inputs(rng, pair.CASES[-1])
    out = pair.fwd(be, 1, ins, cfg, True)[pair.OUT]
    grads = pair.ref_grad({k: v.astype(np.float64) for k, v in ins.items()}, cfg, np.ones(np.shape(out)))
    pair.bwd(be, 1, ins, cfg, np.ones(np.shape(out), np.float32),
             {k: np.zeros(np.shape(v), np.float32) for k, v in grads.items() if k in pair.ACC}, True)
    assert calls
    for op, arrays, params in calls:
        for k, v in arrays.items():
            if isinstance(v, np.ndarray):
                with pytest.raises(ctrgcn.InputError):
                    _core.backend_op(be, op, 1, {**arrays, k: v.ravel()[:0]}, params)
            for alias in (k, "no_such_array"):  # aliasing itself or nothing
                with pytest.raises(ctrgcn.InputError):
                    _core.backend_op(be, op, 1, {**arrays, k: alias}, params)
        for k, v in params.items():
            if isinstance(v, (int, np.integer)):
                with pytest.raises(ctrgcn.InputError):
                    _core.backend_op(be, op, 1, arrays, {**params, k: -1})


@pytest.mark.skipif(os.environ.get("CTRGCN_NO_AVX512"), reason="already running without AVX-512")
def test_suite_without_avx512():
    """The kernels a CPU without AVX-512 runs (8-wide, zero-padded operands) pass this whole file
    too: the process-wide switch CTRGCN_NO_AVX512=1 selects them, in a child process."""
    env = dict(os.environ, CTRGCN_NO_AVX512="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", __file__],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]

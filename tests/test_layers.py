"""Each C kernel exposed by ``ctrgcn._core`` against the float64 NumPy reference, over odd sizes,
strides 1 and 2, dilations 1 and 2, clips shorter than the kernel's extent, and T = 1."""
import numpy as np
import pytest

import ctrgcn
import reference as ref
from ctrgcn import _core

RTOL = 1e-5  # of max|ref|: float32 sums of a few dozen terms


def close(got, want, rtol=RTOL):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(np.abs(want).max(), 1e-30)
    err = np.abs(got - want).max() / scale
    assert err <= rtol, f"max error {err:.3g} x max|ref|"


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- temporal convolution
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("k", [5, 3, 1])
@pytest.mark.parametrize("T", [13, 1, 2, 4, 7, 64])
def test_tconv(T, k, dilation, stride):
    rng = np.random.default_rng(T * 100 + k * 10 + dilation + stride)
    cin, cout, V = 5, 7, 11
    x, w = f32(rng, cin, T, V), f32(rng, k, cout, cin)
    y = _core.k_tconv(x, w, stride, dilation)
    w_ref = np.transpose(w, (1, 2, 0)).astype(np.float64)[..., None]  # [cout, cin, k, 1]
    want = ref.tconv(x[None].astype(np.float64), w_ref, None, stride, dilation)[0]
    assert want.shape[1] == ref.tconv_frames(T, k, dilation, stride)
    close(y, want)


def test_tconv_padding_is_zero():
    # a constant input: only the border frames see the zero padding
    x = np.ones((1, 6, 1), np.float32)
    w = np.ones((5, 1, 1), np.float32)
    y = _core.k_tconv(x, w, 1, 1)[0, :, 0]
    np.testing.assert_array_equal(y, [3, 4, 5, 5, 4, 3])
    x = np.ones((1, 9, 1), np.float32)
    y = _core.k_tconv(x, w, 1, 2)[0, :, 0]  # taps at t-4, t-2, t, t+2, t+4
    np.testing.assert_array_equal(y, [3, 3, 4, 4, 5, 4, 4, 3, 3])
    y = _core.k_tconv(x, w, 2, 2)[0, :, 0]
    np.testing.assert_array_equal(y, [3, 4, 5, 4, 3])


def test_tconv_wide_channels():
    rng = np.random.default_rng(7)
    x, w = f32(rng, 33, 19, 25), f32(rng, 5, 31, 33)
    want = ref.tconv(x[None].astype(np.float64), np.transpose(w, (1, 2, 0))[..., None].astype(np.float64), None, 2, 2)
    close(_core.k_tconv(x, w, 2, 2), want[0])


def test_tconv_accepts_strided_input():
    rng = np.random.default_rng(8)
    big = f32(rng, 10, 13, 22)
    x = big[::2, :, ::2]  # non-contiguous view
    w = f32(rng, 5, 3, 5)
    want = ref.tconv(np.ascontiguousarray(x)[None].astype(np.float64),
                     np.transpose(w, (1, 2, 0))[..., None].astype(np.float64), None, 1, 1)
    close(_core.k_tconv(x, w, 1, 1), want[0])


@pytest.mark.parametrize("args", [
    (np.zeros((2, 5, 3), np.float32), np.zeros((4, 1, 2), np.float32), 1, 1),   # even kernel
    (np.zeros((2, 5, 3), np.float32), np.zeros((5, 1, 3), np.float32), 1, 1),   # cin mismatch
    (np.zeros((2, 5, 3), np.float32), np.zeros((5, 1, 2), np.float32), 0, 1),   # stride 0
    (np.zeros((2, 5, 3), np.float32), np.zeros((5, 1, 2), np.float32), 1, 0),   # dilation 0
    (np.zeros((2, 5), np.float32), np.zeros((5, 1, 2), np.float32), 1, 1),      # wrong ndim
])
def test_tconv_bad_args(args):
    with pytest.raises(ctrgcn.Error):
        _core.k_tconv(*args)


# ---------------------------------------------------------------- max-pool over time
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("T", [13, 1, 2, 3, 4, 64])
def test_maxpool(T, stride):
    rng = np.random.default_rng(T * 10 + stride)
    C, V = 7, 11
    x = f32(rng, C, T, V) - 3.0  # mostly negative: zero padding would win, the real one must not
    scale = rng.uniform(0.2, 2.0, C).astype(np.float32)
    y = _core.k_maxpool(x, scale, stride)
    want = scale[:, None, None].astype(np.float64) * ref.maxpool_time(x[None].astype(np.float64), stride)[0]
    close(y, want)


def test_maxpool_negative_scale():
    # the documented contract is scale[c] * maxpool(x), also for a negative scale
    rng = np.random.default_rng(3)
    x = f32(rng, 4, 9, 5)
    scale = np.array([-1.5, 0.5, -0.25, 2.0], np.float32)
    want = scale[:, None, None].astype(np.float64) * ref.maxpool_time(x[None].astype(np.float64), 2)[0]
    close(_core.k_maxpool(x, scale, 2), want)


def test_maxpool_padding_never_wins():
    x = -np.arange(1, 6, dtype=np.float32).reshape(1, 5, 1)  # -1 .. -5
    y = _core.k_maxpool(x, np.ones(1, np.float32), 1)[0, :, 0]
    np.testing.assert_array_equal(y, [-1, -1, -2, -3, -4])
    y = _core.k_maxpool(x[:, :1], np.ones(1, np.float32), 1)[0, :, 0]
    np.testing.assert_array_equal(y, [-1])


def test_maxpool_bad_scale():
    with pytest.raises(ctrgcn.Error):
        _core.k_maxpool(np.zeros((3, 4, 2), np.float32), np.ones(2, np.float32), 1)


# ---------------------------------------------------------------- CTR-GC relation
@pytest.mark.parametrize("R,V", [(1, 1), (3, 11), (8, 25), (7, 20), (2, 128)])
def test_relation(R, V):
    rng = np.random.default_rng(R * 1000 + V)
    q, k = f32(rng, R, V), f32(rng, R, V)
    relT = _core.k_relation(q, k)
    q64, k64 = q.astype(np.float64), k.astype(np.float64)
    rel = np.tanh(q64[:, :, None] - k64[:, None, :])  # rel[r, u, v] as the definition writes it
    close(relT, np.transpose(rel, (0, 2, 1)), 2e-6)


def test_relation_saturates():
    q = np.array([[40.0, -40.0, 0.0]], np.float32)
    k = np.zeros((1, 3), np.float32)
    relT = _core.k_relation(q, k)
    assert np.all(np.isfinite(relT))
    np.testing.assert_allclose(relT[0, 0], [1.0, -1.0, 0.0], atol=1e-6)


def test_relation_shape_mismatch():
    with pytest.raises(ctrgcn.Error):
        _core.k_relation(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32))


# ---------------------------------------------------------------- CTR-GC aggregation
@pytest.mark.parametrize("nsub", [1, 3])
@pytest.mark.parametrize("with_base", [False, True])
@pytest.mark.parametrize("with_shift", [False, True])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("C,T,V", [(7, 13, 11), (5, 1, 25), (3, 2, 1), (9, 5, 20)])
def test_aggregate(C, T, V, relu, with_shift, with_base, nsub):
    rng = np.random.default_rng(C * 31 + T * 7 + V + 2 * relu + 4 * with_shift + 8 * with_base + nsub)
    val, AT = f32(rng, nsub * C, T, V), f32(rng, nsub, C, V, V)
    base = f32(rng, C, T, V) if with_base else None
    shift = f32(rng, C) if with_shift else None
    y = _core.k_aggregate(val, AT, base, shift, relu)
    v64, A64 = val.astype(np.float64).reshape(nsub, C, T, V), AT.astype(np.float64)
    want = np.einsum("ictv,icvu->ctu", v64, A64)
    if base is not None:
        want += base
    if shift is not None:
        want += shift[:, None, None]
    if relu:
        want = ref.relu(want)
    close(y, want)


def test_aggregate_bad_shapes():
    val, AT = np.zeros((6, 4, 5), np.float32), np.zeros((3, 2, 5, 5), np.float32)
    with pytest.raises(ctrgcn.Error):
        _core.k_aggregate(val[:5], AT, None, None, False)
    with pytest.raises(ctrgcn.Error):
        _core.k_aggregate(val, AT, np.zeros((2, 4, 4), np.float32), None, False)
    with pytest.raises(ctrgcn.Error):
        _core.k_aggregate(val, AT, None, np.zeros(3, np.float32), False)


# ---------------------------------------------------------------- the reference's own building blocks
def test_reference_graph_normalisation():
    A = ref.graph_A([(0, 1), (2, 1)], 4)
    np.testing.assert_array_equal(A[0], np.eye(4))
    # In: mat[j, i] = 1 for (i, j): column i has its ones at rows j; both edges go to joint 1
    np.testing.assert_array_equal(A[1], [[0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_allclose(A[2][:, 1], [0.5, 0, 0.5, 0])  # joint 1 has two outward edges
    assert np.all(A[2][:, 3] == 0)  # an isolated joint's column stays zero

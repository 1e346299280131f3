"""Training numerics: every backward kernel against finite differences, whole-model gradients against
finite differences and against the float64 golden references, running statistics, the loss, SGD
and the learning-rate schedules."""
import numpy as np
import pytest

import ctrgcn
from ctrgcn import _core
from ctrgcn.training import kl_toward, lr_at, mixup, soft_targets

RNG = np.random.default_rng(7)


def fd_directional(f, x, direction, eps):
    """Central difference of a scalar function along a direction (float64 arithmetic on the sides)."""
    return (f(x + eps * direction) - f(x - eps * direction)) / (2 * eps)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ---- per-layer finite-difference checks ---------------------------------------------------------
@pytest.mark.parametrize("cin,cout,T,V,stride,dil", [(5, 7, 13, 3, 1, 1), (5, 7, 13, 3, 2, 2), (3, 4, 4, 2, 2, 1),
                                                     (2, 3, 1, 5, 1, 2), (4, 6, 9, 1, 2, 2)])
def test_tconv_backward_matches_finite_differences(cin, cout, T, V, stride, dil):
    x, w = rand(cin, T, V), rand(5, cout, cin)
    y = _core.k_tconv(x, w, stride, dil)
    proj = rand(*y.shape)
    dx, dw = _core.k_tconv_backward(proj, x, w, stride, dil)
    # the convolution is linear: the directional derivative equals the change exactly
    ux, uw = rand(*x.shape), rand(*w.shape)
    loss = lambda xx, ww: float((_core.k_tconv(xx, ww, stride, dil).astype(np.float64) * proj).sum())
    num_x = fd_directional(lambda xx: loss(xx.astype(np.float32), w), x.astype(np.float64), ux, 1e-2)
    num_w = fd_directional(lambda ww: loss(x, ww.astype(np.float32)), w.astype(np.float64), uw, 1e-2)
    assert np.isclose(num_x, (dx * ux).sum(), rtol=2e-3, atol=1e-3)
    assert np.isclose(num_w, (dw * uw).sum(), rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("T,stride", [(9, 1), (9, 2), (2, 2), (1, 1)])
def test_maxpool_backward_routes_to_the_argmax(T, stride):
    x = rand(3, T, 4)
    dy = rand(3, (T - 1) // stride + 1, 4)
    dx = _core.k_maxpool_backward(x, dy, stride)
    eps = 1e-3
    ones = np.ones(3, np.float32)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num = ((_core.k_maxpool(xp, ones, stride) - _core.k_maxpool(xm, ones, stride)) * dy).sum() / (2 * eps)
        assert abs(num - dx[idx]) < 1e-2 * (1 + abs(dx[idx]))


@pytest.mark.parametrize("n,C,L", [(3, 4, 7), (1, 2, 5), (5, 3, 1)])
def test_batchnorm_train_backward_matches_finite_differences(n, C, L):
    x, g, b, dy = rand(n, C, L), rand(C), rand(C), rand(n, C, L)
    y, dx, dg, db = _core.k_bn_train(x, g, b, dy)
    # forward: batch statistics
    mu = x.astype(np.float64).mean(axis=(0, 2), keepdims=True)
    var = x.astype(np.float64).var(axis=(0, 2), keepdims=True)
    ref = (x - mu) / np.sqrt(var + 1e-5) * g[None, :, None] + b[None, :, None]
    assert np.abs(y - ref).max() < 1e-5 * (1 + np.abs(ref).max())

    def loss(xx, gg, bb):
        return float((_core.k_bn_train(xx.astype(np.float32), gg.astype(np.float32), bb.astype(np.float32), dy)[0]
                      .astype(np.float64) * dy).sum())
    ux, ug, ub = rand(*x.shape), rand(C), rand(C)
    num_x = fd_directional(lambda xx: loss(xx, g, b), x.astype(np.float64), ux, 1e-3)
    num_g = fd_directional(lambda gg: loss(x, gg, b), g.astype(np.float64), ug, 1e-3)
    num_b = fd_directional(lambda bb: loss(x, g, bb), b.astype(np.float64), ub, 1e-3)
    assert np.isclose(num_x, (dx * ux).sum(), rtol=1e-2, atol=2e-3)
    assert np.isclose(num_g, (dg * ug).sum(), rtol=1e-2, atol=2e-3)
    assert np.isclose(num_b, (db * ub).sum(), rtol=1e-2, atol=2e-3)


@pytest.mark.parametrize("nsub,C,T,V", [(3, 5, 7, 4), (1, 2, 3, 9)])
def test_aggregate_backward_matches_finite_differences(nsub, C, T, V):
    val, AT, dy = rand(nsub * C, T, V), rand(nsub, C, V, V), rand(C, T, V)
    dval, dAT = _core.k_aggregate_backward(dy, val, AT)
    loss = lambda v, a: float((_core.k_aggregate(v.astype(np.float32), a.astype(np.float32), None, None, False)
                               .astype(np.float64) * dy).sum())
    uv, ua = rand(*val.shape), rand(*AT.shape)
    assert np.isclose(fd_directional(lambda v: loss(v, AT), val.astype(np.float64), uv, 1e-2), (dval * uv).sum(),
                      rtol=2e-3, atol=1e-3)
    assert np.isclose(fd_directional(lambda a: loss(val, a), AT.astype(np.float64), ua, 1e-2), (dAT * ua).sum(),
                      rtol=2e-3, atol=1e-3)


def test_relation_backward_matches_finite_differences():
    R, V = 3, 6
    q, k, g = rand(R, V) * 0.5, rand(R, V) * 0.5, rand(R, V, V)
    dq, dk = _core.k_relation_backward(g, q, k)
    loss = lambda qq, kk: float((_core.k_relation(qq.astype(np.float32), kk.astype(np.float32)).astype(np.float64) * g).sum())
    uq, uk = rand(R, V), rand(R, V)
    assert np.isclose(fd_directional(lambda qq: loss(qq, k), q.astype(np.float64), uq, 1e-3), (dq * uq).sum(),
                      rtol=1e-2, atol=1e-3)
    assert np.isclose(fd_directional(lambda kk: loss(q, kk), k.astype(np.float64), uk, 1e-3), (dk * uk).sum(),
                      rtol=1e-2, atol=1e-3)


def test_softmax_cross_entropy_and_its_gradient():
    logits, y = rand(4, 6) * 3, np.array([0, 5, 2, 2])
    t = soft_targets(y, 6, smoothing=0.1)
    assert np.allclose(t.sum(1), 1) and np.isclose(t[0, 0], 0.9 + 0.1 / 6)
    loss, d = _core.softmax_xent(logits, t)
    z = logits.astype(np.float64)
    logp = z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)
    assert np.isclose(loss, -(t * logp).mean(0).sum(), rtol=1e-6)
    assert np.allclose(d, (np.exp(logp) - t) / 4, atol=1e-7)


def test_mutual_learning_term_gradient():
    a, b = rand(3, 5), rand(3, 5)
    loss, grad = kl_toward(a, b, temperature=2.0)
    u = rand(3, 5)
    num = fd_directional(lambda z: kl_toward(z, b, 2.0)[0], a.astype(np.float64), u, 1e-4)
    assert loss >= 0 and np.isclose(num, (grad * u).sum(), rtol=1e-3, atol=1e-6)
    assert abs(kl_toward(a, a)[0]) < 1e-7


def test_mixup_mixes_inputs_and_targets_alike():
    x, y = rand(6, 3, 4, 5, 1), np.arange(6) % 3
    xm, t = mixup(x, y, 3, 0.2, 0.0, np.random.default_rng(0))
    lam = t[np.arange(6), y].min()  # each row holds lam on its own label (or 1 when the partner agrees)
    assert xm.shape == x.shape and np.allclose(t.sum(1), 1)
    assert 0 <= lam <= 1


# ---- whole-model checks ---------------------------------------------------------------------------
def tiny_model(variant, seed=0):
    m = ctrgcn.Model(variant, num_classes=4, graph=[(0, 1), (1, 2), (3, 1), (4, 3)], num_person=2, base_channel=8,
                     seed=seed)
    rng = np.random.default_rng(seed)
    state = m.state_dict()
    for k, v in state.items():  # every path carries signal: alpha and the BN affine terms non-trivial
        if k.endswith("alpha"):
            state[k] = np.full(v.shape, 0.7, np.float32)
        elif k.endswith(("bn.weight", ".1.weight", ".4.weight")) and v.ndim == 1:
            state[k] = rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
        elif k.endswith("bias"):
            state[k] = (0.1 * rng.standard_normal(v.shape)).astype(np.float32)
    m.load_state_dict(state)
    return m


def test_whole_model_gradient_matches_finite_differences(golden):
    """The complete chain on a well-conditioned network (the golden NW-UCLA weights): central
    differences along one random direction per part of the network. Float32 differences of a deep
    net with ReLU and max-pool kinks are only good to a few percent, hence the tolerance; the exact
    checks are the float64 references below and the per-layer tests above."""
    m = ctrgcn.load(golden("official/ucla_weights.npz"))
    ref = np.load(golden("official/ucla_train.npz"))
    x, y = np.asarray(ref["x"], np.float32), ref["y"]
    t = soft_targets(y, m.num_classes)
    _, grads = m.gradients(x, y)
    p0 = m.flat_params().astype(np.float64)
    table = [((n, s, b), o) for n, s, b, o in m.tensor_table()]
    flat = np.zeros_like(p0)
    tr = m.trainer()
    for (name, shape, _), off in table:
        if name in grads:
            flat[off:off + int(np.prod(shape))] = grads[name].ravel()

    def f(p):
        m.set_flat_params(p.astype(np.float32))  # the trainer reads the changed model again
        return _core.softmax_xent(tr.forward(x, False), t)[0]
    rng = np.random.default_rng(0)
    for group in ("data_bn", "l1.", "l5.", "l10.", "fc"):
        u = np.zeros_like(p0)
        for (name, shape, is_buf), off in table:
            if name.startswith(group) and not is_buf:
                u[off:off + int(np.prod(shape))] = rng.standard_normal(int(np.prod(shape)))
        u /= np.linalg.norm(u)
        num, ana = fd_directional(f, p0, u, 1e-3), float(flat @ u)
        assert abs(num - ana) <= 0.1 * abs(ana) + 1e-3, (group, num, ana)
    m.set_flat_params(p0.astype(np.float32))


@pytest.mark.parametrize("variant", ctrgcn.VARIANTS)
@pytest.mark.parametrize("T", [6, 3])
def test_tiny_model_gradients_match_pytorch_float64_autograd(variant, T):
    """Odd tiny shapes (custom 5-joint graph, base 8, T down to 3 so stride 2 ends at one frame)
    against autograd of the PyTorch twin in benchmarks/, run in float64."""
    torch = pytest.importorskip("torch")
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from torch_family import Net
    m = tiny_model(variant)
    x = np.random.default_rng(T).standard_normal((3, 3, T, 5, 2)).astype(np.float32)
    y = np.array([0, 3, 1])
    loss, grads = m.gradients(x, y)
    net = Net(m).double().train()
    ref_loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x).double()), torch.from_numpy(y))
    ref_loss.backward()
    assert abs(loss - ref_loss.item()) < 1e-5 * max(1.0, abs(loss))
    params = dict(net.named_parameters())
    assert set(params) == set(grads)
    G = max(float(p.grad.abs().max()) for p in params.values())
    for name, p in params.items():
        ref = p.grad.numpy()
        # float32 against float64 through a tiny train-mode net: ~1e-4 typical, a wrong gradient ~1
        assert np.abs(grads[name] - ref).max() <= 1e-2 * max(np.abs(ref).max(), 1e-2 * G), name


@pytest.mark.parametrize("variant", ["CTRGCN", "CTRGCN_lightV2"])
def test_gradients_do_not_depend_on_the_threads(variant):
    """Training's graph step runs in passes of one person per thread (the CPU's train_chunk), its
    adjacencies recomputed in the backward: 1, 2 and 3 threads over 10 persons (passes of 1; of 2;
    of 3, 3, 3 and 1) must give one loss and one set of gradients."""
    m = tiny_model(variant)
    x = np.random.default_rng(5).standard_normal((5, 3, 6, 5, 2)).astype(np.float32)
    y = np.array([0, 3, 1, 2, 1])
    results = []
    for threads in (1, 2, 3):
        m.set_threads(threads)
        results.append(m.gradients(x, y))
    m.set_threads(0)
    loss0, g0 = results[0]
    G = max(float(np.abs(v).max()) for v in g0.values())  # a conv bias before a BatchNorm: gradient ~0
    for loss, g in results[1:]:
        assert abs(loss - loss0) <= 1e-6 * max(1.0, abs(loss0))
        for k, v in g0.items():
            assert np.abs(g[k] - v).max() <= 1e-5 * max(np.abs(v).max(), 1e-2 * G), (k, np.abs(g[k] - v).max())


GOLDEN_TRAIN = [("official/ntu_weights.npz", "official/ntu_train.npz"),
                ("official/ucla_weights.npz", "official/ucla_train.npz"),
                ("paddlevideo/CTRGCN_light_weights.npz", "paddlevideo/CTRGCN_light_train.npz"),
                ("paddlevideo/CTRGCN_lightV1_weights.npz", "paddlevideo/CTRGCN_lightV1_train.npz"),
                ("paddlevideo/CTRGCN_lightV2_weights.npz", "paddlevideo/CTRGCN_lightV2_train.npz")]


@pytest.mark.parametrize("weights,train", GOLDEN_TRAIN, ids=[t.split("/")[1] for _, t in GOLDEN_TRAIN])
def test_gradients_match_golden(golden, weights, train):
    m = ctrgcn.load(golden(weights))
    ref = np.load(golden(train))
    before = m.state_dict()
    loss, grads = m.gradients(ref["x"], ref["y"])
    assert abs(loss - float(ref["loss"])) < 1e-5
    refs = {k[5:]: ref[k] for k in ref.files if k.startswith("grad.")}
    assert set(refs) == set(grads)
    G = max(np.abs(r).max() for r in refs.values())
    scores = {k: np.abs(grads[k] - r).max() / max(np.abs(r).max(), 1e-2 * G) for k, r in refs.items()}
    worst = max(scores, key=scores.get)
    assert scores[worst] < 0.05, (worst, scores[worst])
    logits = m.trainer().forward(np.asarray(ref["x"], np.float32), False)
    assert np.abs(logits - ref["logits"]).max() <= 5e-6 * np.abs(ref["logits"]).max()
    after = m.state_dict()  # gradients() leaves the model as it was
    assert all(np.array_equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("weights,train", GOLDEN_TRAIN[:2], ids=["ntu", "ucla"])
def test_running_statistics_move_as_pytorch_moves_them(golden, weights, train):
    m = ctrgcn.load(golden(weights))
    ref = np.load(golden(train))
    tr = m.trainer()
    tr.forward(np.asarray(ref["x"], np.float32), True)
    tr.sync()
    state = m.state_dict()
    for key in ref.files:
        for prefix, suffix in (("run_mean.", ".running_mean"), ("run_var.", ".running_var")):
            if key.startswith(prefix):
                got, want = state[key[len(prefix):] + suffix], ref[key]
                assert np.abs(got - want).max() <= 1e-5 * max(np.abs(want).max(), 1e-3), key


# ---- optimiser and schedules --------------------------------------------------------------------
@pytest.mark.parametrize("nesterov", [True, False])
def test_sgd_in_the_session_matches_the_pytorch_update_rule(nesterov):
    """Three C training steps (forward, loss, backward, weight decay, SGD in the session) against the
    PyTorch SGD rule applied in NumPy to the gradients the session reports at each step."""
    m = tiny_model("CTRGCN_lightV2")
    table = m.tensor_table()
    p = m.flat_params().astype(np.float64)
    buf = np.zeros(p.size, bool)
    for name, shape, is_buf, off in table:
        buf[off:off + int(np.prod(shape))] = is_buf
    tr = m.trainer(momentum=0.9, weight_decay=1e-3, nesterov=nesterov)
    x, t = rand(2, 3, 4, 5, 2), soft_targets([0, 3], m.num_classes, 0.1)
    v_ref = np.zeros_like(p)
    for step in range(3):
        tr.forward(x, update_stats=False)
        tr.backward(t)
        g = np.zeros_like(p)
        for name, arr in tr.gradients().items():
            off = next(o for n, _, _, o in table if n == name)
            g[off:off + arr.size] = arr.ravel()
        tr.sgd_step(0.05)
        d = g + 1e-3 * p
        v_ref = d if step == 0 else 0.9 * v_ref + d
        upd = d + 0.9 * v_ref if nesterov else v_ref
        p = np.where(buf, p, p - 0.05 * upd)
    before = m.flat_params()
    tr.sync()
    assert not np.array_equal(before, m.flat_params())  # the model changes on sync only
    assert np.abs(m.flat_params() - p).max() < 1e-5
    vel, steps = tr.velocity()
    assert steps == 3 and np.abs(vel - np.where(buf, 0, v_ref)).max() < 1e-4


def test_schedules():
    cos = {"schedule": "cosine", "base_lr": 0.1, "warmup_start": 0.01, "warmup_epochs": 10}
    ipe = 100
    assert np.isclose(lr_at(cos, 100, ipe, 0), 0.01)
    end_of_warmup = 0.05 * (1 + np.cos(np.pi * 10 / 100))
    assert np.isclose(lr_at(cos, 100, ipe, 10 * ipe), end_of_warmup)
    assert np.isclose(lr_at(cos, 100, ipe, 5 * ipe), 0.01 + (end_of_warmup - 0.01) / 2)
    assert np.isclose(lr_at(cos, 100, ipe, 55 * ipe), 0.05 * (1 + np.cos(np.pi * 55 / 100)))
    assert lr_at(cos, 100, ipe, 100 * ipe) == 0
    step = {"schedule": "step", "base_lr": 0.1, "warmup_start": 0.0, "warmup_epochs": 5, "steps": [35, 55], "gamma": 0.1}
    assert np.isclose(lr_at(step, 65, ipe, 250), 0.05)
    assert np.isclose(lr_at(step, 65, ipe, 6 * ipe), 0.1)
    assert np.isclose(lr_at(step, 65, ipe, 40 * ipe), 0.01)
    assert np.isclose(lr_at(step, 65, ipe, 60 * ipe), 0.001)


# ---- bad input ------------------------------------------------------------------------------------
def test_training_bad_input_raises_clear_errors():
    m = tiny_model("CTRGCN")
    tr = m.trainer()
    with pytest.raises(ctrgcn.Error, match="train_forward first"):
        tr.backward(np.zeros((2, 4), np.float32))
    with pytest.raises(ctrgcn.Error, match="train_backward first"):
        tr.sgd_step(0.1)
    x = rand(2, 3, 4, 5, 2)
    x[0, 0, 0, 0, 0] = np.nan
    with pytest.raises(ctrgcn.InputError, match="non-finite"):
        m.gradients(x, [0, 1])
    with pytest.raises(ctrgcn.InputError, match="non-finite"):
        tr.forward(x)
    with pytest.raises(ctrgcn.InputError, match="class indices"):
        m.gradients(rand(2, 3, 4, 5, 2), [0, 9])
    with pytest.raises(ctrgcn.InputError, match="one value per channel"):
        ctrgcn.Model("CTRGCN", num_classes=4, graph=[(0, 0)], num_person=1, base_channel=8).trainer().forward(
            rand(1, 3, 1, 1, 1))
    tr.forward(rand(2, 3, 4, 5, 2))
    with pytest.raises(ctrgcn.InputError):
        tr.backward(np.zeros((2, 3), np.float32))  # wrong class count
    with pytest.raises(ctrgcn.InputError, match="rows"):
        tr.backward(np.zeros((3, 4), np.float32))  # wrong batch
    with pytest.raises(ctrgcn.InputError, match="non-finite"):
        tr.backward(np.full((2, 4), np.nan, np.float32))
    tr.backward(soft_targets([0, 1], 4))
    with pytest.raises(ctrgcn.InputError, match="learning rate"):
        tr.sgd_step(float("nan"))
    with pytest.raises(ctrgcn.InputError, match="momentum"):
        m.trainer(momentum=1.5)

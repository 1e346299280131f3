"""One model from many threads at once: sessions apart from weights make every call independent."""
import threading

import numpy as np
import pytest

import ctrgcn


def _inputs(model, shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, model.in_channels, t, model.num_joints, model.num_person)).astype(np.float32)
            for n, t in shapes]


@pytest.mark.parametrize("variant", ["CTRGCN", "CTRGCN_lightV2"])
def test_many_threads_with_different_shapes_match_single_threaded(variant):
    model = ctrgcn.Model(variant, num_classes=10, graph="ucla", num_person=2, base_channel=16, seed=3)
    shapes = [(1, 8), (3, 5), (2, 12), (1, 1), (4, 7), (2, 3)]
    xs = _inputs(model, shapes)
    want = [model(x) for x in xs]
    results, errors = {}, []

    def work(tid):
        try:
            for r in range(4):
                i = (tid + r) % len(xs)
                results[(tid, r)] = (i, model(xs[i]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 32
    for i, got in results.values():
        np.testing.assert_array_equal(got, want[i])


def test_training_one_model_while_another_predicts():
    a = ctrgcn.Model("CTRGCN_light", num_classes=5, graph="ucla", num_person=1, base_channel=16, seed=1)
    b = ctrgcn.Model("CTRGCN", num_classes=5, graph="ucla", num_person=1, base_channel=16, seed=2)
    x = _inputs(b, [(2, 9)])[0]
    want = b(x)
    stop, errors, seen = threading.Event(), [], []

    def predict():
        try:
            while not stop.is_set():
                seen.append(np.array_equal(b(x), want))
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    th = threading.Thread(target=predict)
    th.start()
    tr = a.trainer()
    xt = _inputs(a, [(4, 6)], seed=5)[0]
    targets = np.eye(5, dtype=np.float32)[[0, 1, 2, 3]]
    losses = [tr.step(xt, targets, 0.05)[0] for _ in range(5)]
    stop.set()
    th.join()
    assert not errors and seen and all(seen)
    assert losses[-1] < losses[0]


def test_a_session_refuses_a_second_thread_instead_of_racing():
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=4, graph="ucla", num_person=1, base_channel=16)
    from ctrgcn import _core
    sess = _core.Session(model._net, "cpu", 1)
    x = _inputs(model, [(8, 30)])[0]
    errors = []

    def run():
        try:
            for _ in range(20):
                sess.forward(x)
        except ctrgcn.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # either every call ran one at a time, or the session said so; it never crashes
    assert all("another thread" in str(e) for e in errors)


def test_weights_changed_between_calls_are_seen():
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=4, graph="ucla", num_person=1, base_channel=16)
    x = _inputs(model, [(2, 6)])[0]
    before = model(x)
    state = model.state_dict()
    state["fc.bias"] = state["fc.bias"] + 1.0
    model.load_state_dict(state)
    np.testing.assert_allclose(model(x), before + 1.0, rtol=0, atol=1e-5)


def test_unknown_backend_is_a_clear_error():
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=4, graph="ucla", num_person=1, base_channel=16)
    from ctrgcn import _core
    with pytest.raises(ctrgcn.InputError, match="backend 'tpu'"):
        _core.Session(model._net, "tpu", 1)

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


# ---- the same from C, under AddressSanitizer and ThreadSanitizer ------------------------------------
def _build_concurrency(tmp_path, cc, flags):
    import glob
    import subprocess
    from pathlib import Path
    sob = pytest.importorskip("scipy_openblas32")
    root = Path(__file__).resolve().parents[1]
    sources = sorted(glob.glob(str(root / "csrc" / "core" / "*.c")) + glob.glob(str(root / "csrc" / "layers" / "*.c"))
                     + glob.glob(str(root / "csrc" / "backends" / "*.c"))
                     + glob.glob(str(root / "csrc" / "backends" / "cpu" / "*.c")))
    exe = tmp_path / "concurrency"
    build = subprocess.run([cc, "-std=c11", "-g", "-O1", "-fopenmp", "-pthread", *flags, "-D_GNU_SOURCE",
                            "-DCTRGCN_BLAS_SCIPY=1", f"-I{root / 'csrc' / 'include'}", f"-I{root / 'csrc'}",
                            f"-I{sob.get_include_dir()}", *sources, str(root / "tests" / "c" / "concurrency.c"),
                            "-o", str(exe), f"-L{sob.get_lib_dir()}", f"-l{sob.get_library()}",
                            f"-Wl,-rpath,{sob.get_lib_dir()}", "-lm"], capture_output=True, text=True)
    if build.returncode != 0 and ("san" in build.stderr.lower() or "omp" in build.stderr.lower()):
        pytest.skip(f"{cc} cannot build with {flags}: {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr[-3000:]
    return exe, root


def test_c_sessions_from_many_threads_under_address_sanitizer(tmp_path):
    """8 threads predicting on one model (2 OpenMP threads inside each session) while a ninth trains
    another model: results equal to single-threaded ones bit for bit, no memory error, no leak."""
    import os
    import shutil
    import subprocess
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    exe, root = _build_concurrency(tmp_path, cc, ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"])
    env = dict(os.environ, OMP_NUM_THREADS="2", ASAN_OPTIONS="detect_leaks=1",
               LSAN_OPTIONS=f"suppressions={root / 'tests' / 'c' / 'lsan.supp'}")
    run = subprocess.run([str(exe), "2"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and "9 threads ok" in run.stdout, run.stderr[-4000:]


def test_c_sessions_from_many_threads_under_thread_sanitizer(tmp_path):
    """The same under ThreadSanitizer. With clang and LLVM's OpenMP runtime, its Archer tool makes
    OpenMP's synchronisation visible, so sessions keep 2 OpenMP threads; with gcc (libgomp is not
    instrumented, its barriers would read as races) each session runs one thread."""
    import glob
    import os
    import shutil
    import subprocess
    clang = shutil.which("clang")
    archer = sorted(glob.glob("/usr/lib/llvm-*/lib/libarcher.so"))
    if clang and archer:
        exe, _ = _build_concurrency(tmp_path, clang, ["-fsanitize=thread"])
        env = dict(os.environ, OMP_NUM_THREADS="2", OMP_TOOL_LIBRARIES=archer[-1],
                   TSAN_OPTIONS="halt_on_error=1:ignore_noninstrumented_modules=1")
        args = [str(exe), "2"]
    else:
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            pytest.skip("no C compiler")
        exe, _ = _build_concurrency(tmp_path, cc, ["-fsanitize=thread"])
        env = dict(os.environ, OMP_NUM_THREADS="1", TSAN_OPTIONS="halt_on_error=1")
        args = [str(exe), "1"]
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and "9 threads ok" in run.stdout, run.stderr[-4000:]
    assert "ThreadSanitizer" not in run.stderr, run.stderr[-4000:]

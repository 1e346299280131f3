"""The CUDA backend.

What needs no GPU runs everywhere: the build produced the library whenever nvcc and cuBLAS were
found, ``ctrgcn.cuda`` reports the machine truthfully, ``device="cuda"`` without a GPU raises a
clear ``ctrgcn.Error``, and the kernels' index arithmetic (``csrc/backends/cuda/index.cuh``,
compiled for the host by the C compiler and by nvcc) agrees with NumPy and brute force.

What needs a GPU skips without one: every golden on CUDA, CUDA against the CPU backend at NTU
shapes, 50 training steps of each variant against the CPU run, the CPU's errors for bad input,
out-of-memory as ``ctrgcn.ResourceError``, no device-memory growth over 1,000 calls, files moving
between devices. The backend-ops suite (tests/test_backend_ops.py) runs every op on "cuda" by
itself once the backend is registered; ``test_cuda_is_registered`` checks that it is.

Without a GPU, tests/test_cuda_host.py runs these same tests on the real CUDA sources compiled for
the host against an emulation of the CUDA runtime and cuBLAS (tests/cuda_host/); there
``CTRGCN_CUDA_HOST=1`` shortens the longest ones (an emulated kernel runs thread by thread).
"""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn import _core

ROOT = Path(__file__).resolve().parents[1]
GPU = ctrgcn.cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason=f"no usable CUDA device: {ctrgcn.cuda.reason()}")
no_gpu = pytest.mark.skipif(GPU, reason="a CUDA device is available here")
VARIANTS = ["CTRGCN", "CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2"]
EMULATED = os.environ.get("CTRGCN_CUDA_HOST") == "1"  # the host emulation (tests/test_cuda_host.py)


def cuda_build_module():
    spec = importlib.util.spec_from_file_location("cuda_build", ROOT / "cuda_build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ================================================================================== no GPU needed
def test_build_produced_the_library():
    """Where the build's own rule finds nvcc and cuBLAS, the library is there and reported built."""
    lib = Path(ctrgcn.__file__).parent / "libctrgcn_cuda.so"
    if os.environ.get("CTRGCN_CUDA") == "0":
        pytest.skip("CTRGCN_CUDA=0: the CUDA backend is switched off")
    plan = cuda_build_module().plan()
    if not plan["build"]:
        assert not ctrgcn.cuda.built()
        pytest.skip(f"this machine cannot build the CUDA backend: {plan['reason']}")
    assert lib.exists(), f"nvcc and cuBLAS were found but {lib} was not built"
    assert ctrgcn.cuda.built()


def test_cuda_switch(monkeypatch):
    cb = cuda_build_module()
    monkeypatch.setenv("CTRGCN_CUDA", "0")
    assert cb.plan()["build"] is False
    monkeypatch.setenv("CTRGCN_CUDA", "2")
    with pytest.raises(SystemExit, match="must be 0 or 1"):
        cb.plan()
    monkeypatch.setenv("CTRGCN_CUDA", "1")
    monkeypatch.setattr(cb, "find_nvcc", lambda: None)
    with pytest.raises(SystemExit, match="nvcc not found"):
        cb.plan()  # forced on without a toolkit: the build fails instead of quietly leaving it out
    monkeypatch.delenv("CTRGCN_CUDA")
    assert cb.plan() == {"build": False, "required": False, "nvcc": None, "cublas": None, "reason": "nvcc not found"}


def test_a_compile_error_fails_the_build(tmp_path, monkeypatch):
    cb = cuda_build_module()
    monkeypatch.delenv("CTRGCN_CUDA", raising=False)
    plan = cb.plan()
    if not plan["build"]:
        pytest.skip(f"cannot build CUDA here: {plan['reason']}")
    broken = tmp_path / "broken.cu"
    broken.write_text("__global__ void k(float *x) { x[0] = undeclared_name; }\n")
    monkeypatch.setattr(cb, "SOURCES", [str(broken)])
    monkeypatch.chdir(ROOT)
    with pytest.raises(RuntimeError, match="CUDA backend build failed"):
        cb.build(plan, str(tmp_path / "lib.so"), str(tmp_path / "obj"))


def test_cuda_module_is_consistent():
    info = _core.cuda_info()
    assert ctrgcn.cuda.built() == info["built"] == (Path(ctrgcn.__file__).parent / "libctrgcn_cuda.so").exists()
    assert ctrgcn.cuda.device_count() == info["devices"] >= 0
    assert ctrgcn.cuda.is_available() == (info["devices"] > 0)
    assert ("cuda" in _core.backend_names()) == ctrgcn.cuda.is_available()
    assert bool(ctrgcn.cuda.reason()) != ctrgcn.cuda.is_available()  # a reason exactly when unavailable


@no_gpu
def test_device_cuda_without_a_gpu_raises_clearly(tmp_path):
    why = ctrgcn.cuda.reason()
    assert why
    with pytest.raises(ctrgcn.Error, match="device='cuda' is unavailable") as err:
        ctrgcn.Model("CTRGCN_lightV2", device="cuda")
    assert why in str(err.value)
    m = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1)
    with pytest.raises(ctrgcn.Error, match="unavailable"):
        m.to("cuda")
    assert m.device == "cpu" and m.to("cpu") is m
    assert m(np.zeros((1, 3, 8, 20, 1), np.float32)).shape == (1, 10)  # the model still works
    with pytest.raises(ctrgcn.Error, match="unavailable"):
        m.trainer(device="cuda")
    with pytest.raises(ctrgcn.Error, match="unavailable"):
        ctrgcn.Model.from_spec(ctrgcn.preset_spec("CTRGCN_light"), device="cuda")
    with pytest.raises(ctrgcn.Error, match="'cuda' is unavailable"):
        _core.Session(m._net, "cuda", 0)  # the C core refuses on its own, too
    with pytest.raises(ctrgcn.Error, match="unavailable"):
        _core.backend_op("cuda", "accumulate", 1, dict(dst=np.zeros(1), src=np.zeros(1)), dict(count=1))
    work = tmp_path / "run"
    with pytest.raises(ctrgcn.Error, match="unavailable"):
        ctrgcn.train({"device": "cuda", "work_dir": str(work)})
    assert not work.exists()  # refused before anything was written


def test_bad_device_names():
    for bad in ("gpu", "cuda:1", "tpu", 3):
        with pytest.raises(ctrgcn.InputError, match="device must be"):
            ctrgcn.Model("CTRGCN_lightV2", device=bad)
    m = ctrgcn.Model("CTRGCN_lightV2", device="CPU")
    assert m.device == "cpu"
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.train({"device": "npu", "work_dir": "unused"})


def test_train_command_takes_device_setting(tmp_path):
    from ctrgcn.commands import train as cmd
    if GPU:
        pytest.skip("checks the refusal without a GPU")
    with pytest.raises(ctrgcn.Error, match="unavailable"):
        cmd.main(["--config", "nwucla_ctrgcn_joint", "--set", "device=cuda", "--set", f"work_dir={tmp_path / 'w'}"])


# ---- the loader and the device="cuda" paths, through a stand-in library ---------------------------
PLUMBING = r"""
import numpy as np, ctrgcn, os
from ctrgcn import _core
from ctrgcn.training.losses import soft_targets
assert ctrgcn.cuda.built() and ctrgcn.cuda.is_available() and ctrgcn.cuda.device_count() == 1
assert ctrgcn.cuda.reason() == "" and _core.backend_names() == ["cpu", "cuda"]
rng = np.random.default_rng(0)
x = rng.standard_normal((3, 3, 12, 25, 2)).astype(np.float32)
cpu = ctrgcn.Model("CTRGCN_lightV2", seed=4)
dev = ctrgcn.Model("CTRGCN_lightV2", seed=4, device="cuda")
assert dev.device == "cuda" and "device='cuda'" in repr(dev)
def close(a, b):
    assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max(), np.abs(a - b).max()
close(dev(x), cpu(x))  # the driver's whole-batch pass (eval_chunk 0)
logits, act = dev.forward_block(x, 7)
close(act, cpu.forward_block(x, 7)[1])
close(cpu.to("cuda")(x), dev(x)); assert cpu.device == "cuda"
assert cpu.to("cpu").device == "cpu"
t = soft_targets([1, 2, 3], 60, 0.1)
a, b = cpu.trainer(), dev.trainer()
assert b.device == "cuda" and a.device == "cpu" and cpu.trainer(device="cuda").device == "cuda"
for step in range(3):  # the first loss is a forward (tight); after it float32 noise in the gradients
    la, _ = a.step(x, t, 0.01)  # (max-pool near-ties flipping) moves later steps by up to a few 1e-3:
    lb, _ = b.step(x, t, 0.01)  # test_fifty_training_steps_agree_with_cpu measures that band
    assert abs(la - lb) <= (1e-5 if step == 0 else 3e-2) * abs(la), (step, la, lb)
b.sync(); a.sync()
p, q = dev.flat_params(), cpu.flat_params()
assert np.abs(p - q).max() <= 3e-2 * np.abs(q).max()
loss, grads = dev.gradients(x, [1, 2, 3])
assert np.isfinite(loss) and len(grads) > 10
# the op profile through the device's sync: whole-batch passes, one aggregation per spatial module
prof = dev.profile(x, steps=1, warmup=1)
ops = {op: calls for op, calls, _ in prof.rows}
assert ops["aggregate_forward"] == sum(blk["has_gcn"] for blk in dev.block_layout()), ops
assert b.profile(x, t, 0.01, steps=1, warmup=1).rows[0][2] > 0
# a device fault (reported by the backend's check after the call) is raised with its message, and the
# sessions recover once the device does: eval re-uploads its weights, training restarts from the model's
before = dev(x)
os.environ["FAKE_CUDA_FAULT"] = "an illegal memory access was encountered"
for call in (lambda: dev(x), lambda: b.step(x, t, 0.01), lambda: dev.gradients(x, [1, 2, 3])):
    try:
        call()
        raise AssertionError("no error")
    except ctrgcn.Error as exc:
        assert "illegal memory access" in str(exc) and not isinstance(exc, ctrgcn.InputError), exc
del os.environ["FAKE_CUDA_FAULT"]
def after_fault(call):  # the real backend raises the fault once more: the call whose ops it skipped
    try:                # while the fault lasted (the stand-in and a passing fault forget it at once)
        return call()
    except ctrgcn.Error as exc:
        assert "illegal memory access" in str(exc), exc
        return call()
close(after_fault(lambda: dev(x)), before)
lb, _ = after_fault(lambda: b.step(x, t, 0.01))
assert np.isfinite(lb)
if os.environ.get("UCLA"):  # a training run from a config with device: cuda
    r = ctrgcn.train({"device": "cuda", "variant": "CTRGCN_lightV2", "data_root": os.environ["UCLA"], "epochs": 1,
                      "batch_size": 8, "max_iters_per_epoch": 2, "train_subset": 16, "val_subset": 8,
                      "work_dir": os.environ["WORK"], "progress": False})
    assert r["models"][0].device == "cuda", r.keys()
print("plumbing ok")
"""


@no_gpu  # with a GPU the real library runs every one of these paths
def test_loader_and_device_paths_with_a_stand_in_library(tmp_path):
    """Not CUDA: the CPU ops under the name "cuda" in a library of their own, loaded as the real one
    is (CTRGCN_CUDA_LIB), so the loader, ctrgcn.cuda, Model(device=), to(), trainers and the
    driver's whole-batch pass run here exactly as they would on a GPU."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    import scipy_openblas32 as sob
    srcs = [ROOT / "tests" / "c" / "fake_cuda_module.c", ROOT / "csrc" / "core" / "error.c",
            *sorted((ROOT / "csrc" / "backends" / "cpu").glob("*.c")), *sorted((ROOT / "csrc" / "layers").glob("*.c"))]
    lib = tmp_path / "libfake_cuda.so"
    # the core's own flags for these files (setup.py), so both sides compute alike
    cmd = [cc, "-std=c11", "-O3", "-ffp-contract=fast", "-fno-math-errno", "-fPIC", "-shared", "-fopenmp",
           "-D_GNU_SOURCE", "-DCTRGCN_BLAS_SCIPY=1",
           "-I", str(ROOT / "csrc"), "-I", str(ROOT / "csrc" / "include"), "-I", sob.get_include_dir(),
           "-o", str(lib), *map(str, srcs), "-L", sob.get_lib_dir(), "-l" + sob.get_library(),
           "-Wl,-rpath," + sob.get_lib_dir()]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ucla = ROOT.parent / "shared" / "data" / "nw-ucla" / "all_sqe"
    env = dict(os.environ, CTRGCN_CUDA_LIB=str(lib), OMP_NUM_THREADS="1", WORK=str(tmp_path / "w"),
               UCLA=str(ucla) if ucla.is_dir() else "")
    r = subprocess.run([sys.executable, "-c", PLUMBING], capture_output=True, text=True, env=env, cwd=str(ROOT))
    assert r.returncode == 0 and "plumbing ok" in r.stdout, r.stdout + r.stderr
    # a library from another build is refused with a clear reason, and "cuda" stays unavailable
    env["CTRGCN_CUDA_LIB"] = str(ROOT / "tests" / "c" / "fake_cuda_module.c")  # not a library at all
    r = subprocess.run([sys.executable, "-c", "import ctrgcn; print(ctrgcn.cuda.is_available(), ctrgcn.cuda.reason())"],
                       capture_output=True, text=True, env=env, cwd=str(ROOT))
    assert r.returncode == 0 and r.stdout.startswith("False") and "does not load" in r.stdout, r.stdout + r.stderr


# ---- index arithmetic of the kernels, compiled for the host ------------------------------------
def _compilers():
    out = []
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc:
        out.append(pytest.param([cc, "-std=c11", "-O1", "-Wall", "-Werror"], id="cc"))
    nvcc = cuda_build_module().find_nvcc()
    out.append(pytest.param([nvcc, "-x", "cu", "-O1"] if nvcc else None, id="nvcc"))
    return out


@pytest.fixture(scope="module", params=_compilers())
def index_tool(request, tmp_path_factory):
    if request.param is None:
        pytest.skip("nvcc not found: the index functions are checked as C only")
    exe = tmp_path_factory.mktemp("idx") / "cuda_index_test"
    cmd = [*request.param, "-I", str(ROOT / "csrc"), "-o", str(exe), str(ROOT / "tests" / "c" / "cuda_index_test.c")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    def run(*args):
        r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, check=True)
        return r.stdout

    return run


@pytest.mark.parametrize("dims", [(1, 3, 5, 7, 1), (3, 2, 8, 3, 2), (2, 3, 1, 25, 2), (2, 1, 4, 1, 3)], ids=str)
def test_layout_indices_match_numpy(index_tool, dims):
    N, C, T, V, M = dims
    lines = index_tool("layout", *dims).splitlines()
    got_in = np.array(lines[0].split(), np.int64)
    got_pe = np.array(lines[1].split(), np.int64)
    src = np.arange(N * C * T * V * M)
    # input_forward: y[n][m, v, c][t] = x[n][c][t][v][m]
    np.testing.assert_array_equal(got_in, src.reshape(N, C, T, V, M).transpose(0, 4, 3, 1, 2).ravel())
    # persons_forward: y[n*M + m][c][t][v] = x[n][(m, v, c)][t]
    np.testing.assert_array_equal(got_pe, src.reshape(N, M, V, C, T).transpose(0, 1, 3, 4, 2).ravel())
    # and the two compose to the plain per-person transpose the CPU backend computes
    x = np.random.default_rng(0).standard_normal((N, C, T, V, M))
    y = x.ravel()[got_in]
    persons = y[got_pe].reshape(N * M, C, T, V)
    np.testing.assert_array_equal(persons, x.transpose(0, 4, 1, 2, 3).reshape(N * M, C, T, V))


@pytest.mark.parametrize("T,V,s", [(7, 3, 2), (64, 25, 2), (5, 1, 3), (1, 4, 2), (9, 2, 1)])
def test_strided_columns_match_numpy(index_tool, T, V, s):
    got = np.array(index_tool("strided", T, V, s).split(), np.int64)
    np.testing.assert_array_equal(got, np.arange(T * V).reshape(T, V)[::s].ravel())


@pytest.mark.parametrize("T,s", [(7, 2), (64, 2), (5, 3), (1, 2), (6, 1), (2, 4)])
def test_phases_match_numpy(index_tool, T, s):
    rows = [tuple(map(int, ln.split())) for ln in index_tool("phases", T, s).splitlines()]
    frames = np.arange(T)
    start = 0
    for p, (length, st) in enumerate(rows):
        assert length == np.sum(frames % s == p)
        assert st == start
        start += length
    assert start == T


@pytest.mark.parametrize("T,k,dil,s", [(64, 5, 1, 1), (64, 5, 2, 2), (7, 5, 2, 2), (3, 5, 1, 1), (13, 9, 1, 3),
                                       (2, 3, 4, 1), (11, 3, 2, 2)])
def test_tap_windows_match_brute_force(index_tool, T, k, dil, s):
    lines = index_tool("taps", T, k, dil, s).splitlines()
    To = int(lines[0])
    pad = (k - 1) * dil // 2
    assert To == (T + 2 * pad - dil * (k - 1) - 1) // s + 1
    for j, ln in enumerate(lines[1:]):
        ok, p, sh, t0, t1 = map(int, ln.split())
        o = j * dil - pad
        valid = [t for t in range(To) if 0 <= s * t + o < T]  # output frames whose input frame exists
        assert bool(ok) == bool(valid)
        if valid:
            assert valid == list(range(t0, t1))
            for t in valid:  # frame s*t + o is frame t + sh of phase p
                assert (s * t + o) % s == p and (s * t + o) // s == t + sh


@pytest.mark.parametrize("T,s", [(7, 1), (7, 2), (64, 2), (1, 1), (2, 2), (10, 3)])
def test_pool_windows_and_inverse_match_brute_force(index_tool, T, s):
    lines = index_tool("pool", T, s).splitlines()
    To = int(lines[0])
    assert To == (T - 1) // s + 1
    win = [tuple(map(int, ln.split())) for ln in lines[1:1 + To]]
    inv = [tuple(map(int, ln.split())) for ln in lines[1 + To:]]
    for t, (lo, hi) in enumerate(win):
        assert (lo, hi) == (max(t * s - 1, 0), min(t * s + 1, T - 1))
    for tt, (t0, t1) in enumerate(inv):
        assert [t for t in range(To) if win[t][0] <= tt <= win[t][1]] == list(range(t0, t1 + 1))


# ==================================================================================== GPU needed
@needs_gpu
def test_cuda_is_registered():
    """With it registered, tests/test_backend_ops.py runs every op forward and backward on "cuda"."""
    assert "cuda" in _core.backend_names()
    assert _core.backend_op("cuda", "lanes", 1, {}, dict(chunks=8)) == {"lanes": 1, "eval_chunk": 0}


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    return np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)


GOLDEN_SETS = {
    "official-ntu": ("official/ntu_weights.npz", "official/ntu_eval.npz", "official/ntu_train.npz"),
    "official-ucla": ("official/ucla_weights.npz", "official/ucla_eval.npz", "official/ucla_train.npz"),
    "pv-light": ("paddlevideo/CTRGCN_light_weights.npz", "paddlevideo/CTRGCN_light_eval.npz",
                 "paddlevideo/CTRGCN_light_train.npz"),
    "pv-lightV1": ("paddlevideo/CTRGCN_lightV1_weights.npz", "paddlevideo/CTRGCN_lightV1_eval.npz",
                   "paddlevideo/CTRGCN_lightV1_train.npz"),
    "pv-lightV2": ("paddlevideo/CTRGCN_lightV2_weights.npz", "paddlevideo/CTRGCN_lightV2_eval.npz",
                   "paddlevideo/CTRGCN_lightV2_train.npz"),
}


@needs_gpu
@pytest.mark.parametrize("name", list(GOLDEN_SETS))
def test_golden_on_cuda(name, golden):
    """Eval logits, every block output, the train-mode loss and gradients: the CPU's bounds."""
    wpath, epath, tpath = GOLDEN_SETS[name]
    model = ctrgcn.load(golden(wpath)).to("cuda")
    ev = np.load(golden(epath))
    assert rel_err(model(ev["x"]), ev["logits"]) < 1e-5
    persons = ev["act_l1"].shape[0]
    for k in range(1, 11):
        _, act = model.forward_block(ev["x"], k)
        assert rel_err(act[:persons], ev[f"act_l{k}"]) < 1e-5, f"block {k}"
    ref = np.load(golden(tpath))
    loss, grads = model.gradients(ref["x"], ref["y"])
    assert abs(loss - float(ref["loss"])) < 1e-5
    refs = {k[5:]: ref[k] for k in ref.files if k.startswith("grad.")}
    G = max(np.abs(r).max() for r in refs.values())
    scores = {k: np.abs(grads[k] - r).max() / max(np.abs(r).max(), 1e-2 * G) for k, r in refs.items()}
    worst = max(scores, key=scores.get)
    assert scores[worst] < 0.05, (worst, scores[worst])


@needs_gpu
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("batch", [1, 8])
def test_eval_matches_cpu_at_ntu_shapes(variant, batch):
    m = ctrgcn.Model(variant, seed=3)
    x = np.random.default_rng(batch).standard_normal((batch, 3, 64, 25, 2)).astype(np.float32)
    want = m(x)
    got = m.to("cuda")(x)
    assert rel_err(got, want) < 1e-5


@needs_gpu
def test_graph_replay_matches_direct_runs(monkeypatch):
    """Eval passes are captured into a CUDA graph once they repeat, and replayed only while the
    pass is the same: new input values, a probe, other shapes and new weights all stay right."""
    rng = np.random.default_rng(4)
    x1, x2 = (rng.standard_normal((1, 3, 64, 25, 2)).astype(np.float32) for _ in range(2))
    x3 = rng.standard_normal((1, 3, 40, 25, 2)).astype(np.float32)
    cpu = ctrgcn.Model("CTRGCN", seed=2)
    gpu = ctrgcn.Model("CTRGCN", seed=2, device="cuda")
    gpu.set_threads(1)  # one pooled session: every call below meets the same graph state
    for x in (x1, x1, x1, x2, x2, x3, x1, x1, x1):  # direct, direct, captured, replays, a new plan...
        assert rel_err(gpu(x), cpu(x)) < 1e-5
    _, act = gpu.forward_block(x1, 6)  # a probed pass must not replay (it downloads block 6 inside)
    _, want = cpu.forward_block(x1, 6)
    assert rel_err(act, want) < 1e-5
    assert rel_err(gpu(x1), cpu(x1)) < 1e-5
    flat = cpu.flat_params() * np.float32(0.9)  # new weights: folded again into the same memory
    cpu.set_flat_params(flat)
    gpu.set_flat_params(flat)
    for _ in range(3):
        assert rel_err(gpu(x2), cpu(x2)) < 1e-5
    monkeypatch.setenv("CTRGCN_CUDA_GRAPHS", "0")
    direct = ctrgcn.Model("CTRGCN", seed=2, device="cuda")
    direct.set_flat_params(flat)
    np.testing.assert_allclose(direct(x2), gpu(x2), rtol=1e-6, atol=1e-6 * np.abs(direct(x2)).max())


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_gpu)])
def test_graph_survives_training_on_the_same_session(device):
    """A captured eval pass holds the scratch's address: training on the same session grows the
    scratch (freeing the old buffer), so the graph must be dropped, not replayed on freed memory."""
    m = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, seed=1)
    s = _core.Session(m._net, device, 0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 52, 20, 1)).astype(np.float32)
    want = m(x)
    for _ in range(3):  # the third pass is captured
        assert rel_err(s.forward(x), want) < 1e-5
    s.train_forward(rng.standard_normal((16, 3, 52, 20, 1)).astype(np.float32), False)  # grows the scratch
    for _ in range(3):
        assert rel_err(s.forward(x), want) < 1e-5


@needs_gpu
@pytest.mark.parametrize("variant", VARIANTS)
def test_fifty_training_steps_agree_with_cpu(variant):
    """50 SGD steps at NW-UCLA shapes from the same weights and batches: the CUDA run stays within
    three times as far from the CPU run as the CPU run strays from itself when its input moves by
    1e-5 (relative; what float32 differences in every op amount to), step by step. The noise is
    measured, not assumed: max-pool and ReLU make a step's gradient jump wherever a near tie flips,
    so two float32 runs of one network drift apart by more than any fixed bound (a 1e-6 change of
    the input moves the loss by up to 1% over 50 steps at this lr, and by 40% at lr 0.01, where
    the runs are chaotic), while the first steps' band is tight (1e-5 of the loss after one step).
    The first loss (a forward) agrees to 1e-5."""
    from ctrgcn.training.losses import soft_targets
    rng = np.random.default_rng(11)
    batches = [(rng.standard_normal((8, 3, 52, 20, 1)).astype(np.float32), rng.integers(0, 10, 8))
               for _ in range(5)]
    steps = 4 if EMULATED else 50

    def run(device, eps=0.0, seed=0):
        noise = np.random.default_rng(seed)
        m = ctrgcn.Model(variant, num_classes=10, graph="ucla", num_person=1, seed=5)
        tr = m.trainer(momentum=0.9, weight_decay=1e-4, nesterov=True, device=device)
        losses = []
        for step in range(steps):
            x, y = batches[step % len(batches)]
            if eps:
                x = (x * (1 + eps * noise.standard_normal(x.shape))).astype(np.float32)
            losses.append(tr.step(x, soft_targets(y, 10, 0.1), lr=3e-4)[0])
        tr.sync()
        return np.array(losses), m.flat_params()

    lc, pc = run("cpu")
    band_loss, band_params = np.zeros(steps), 0.0
    for seed in (1, 2, 3):
        lp, pp = run("cpu", 1e-5, seed)
        band_loss = np.maximum(band_loss, np.maximum.accumulate(np.abs(lp - lc)))
        band_params = max(band_params, np.abs(pp - pc).max())
    lg, pg = run("cuda")
    assert abs(lg[0] - lc[0]) <= 1e-5 * abs(lc[0]), (lg[0], lc[0])
    dev = np.abs(lg - lc)
    assert (dev <= 3 * band_loss + 1e-5 * np.abs(lc)).all(), np.c_[lc, lg, band_loss]
    assert np.abs(pg - pc).max() <= 3 * band_params + 1e-5 * np.abs(pc).max(), (np.abs(pg - pc).max(), band_params)


@needs_gpu
def test_one_model_from_several_threads():
    """A CUDA model called from three threads at once with different shapes: the calls take sessions
    of their own (a stream and a cuBLAS handle each) and every result equals the CPU's."""
    import threading
    cpu = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, seed=2)
    gpu = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, seed=2, device="cuda")
    rng = np.random.default_rng(6)
    xs = [rng.standard_normal(shape).astype(np.float32) for shape in ((1, 3, 20, 20, 1), (3, 3, 16, 20, 1),
                                                                       (2, 3, 30, 20, 1))]
    got, errors = {}, []

    def work(i):
        try:
            got[i] = [gpu(xs[i]) for _ in range(3)]
        except Exception as exc:  # surfaced below, with its thread
            errors.append((i, exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, x in enumerate(xs):
        want = cpu(x)
        for out in got[i]:
            assert rel_err(out, want) < 1e-5


@needs_gpu
def test_bad_input_raises_as_on_cpu():
    m = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, device="cuda")
    x = np.zeros((2, 3, 8, 20, 1), np.float32)
    bad = x.copy()
    bad[1, 0, 3, 4, 0] = np.nan
    for arr, err in ((bad, ctrgcn.InputError), (x[..., :0], ctrgcn.InputError), (x[:, :2], ctrgcn.InputError),
                     (x[0], ctrgcn.InputError)):
        for model in (m, ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1)):
            with pytest.raises(err):
                model(arr)
    tr = m.trainer()
    with pytest.raises(ctrgcn.Error):
        tr.backward(np.zeros((2, 10), np.float32))  # no forward yet
    tr.forward(x)
    with pytest.raises(ctrgcn.InputError):
        tr.backward(np.full((2, 10), np.nan, np.float32))
    assert m(x).shape == (2, 10)  # still usable


@needs_gpu
def test_out_of_memory_is_a_resource_error():
    m = ctrgcn.Model("CTRGCN", device="cuda")
    tr = m.trainer()
    huge = np.zeros((1024, 3, 300, 25, 2), np.float32)  # training memory far beyond any GPU's
    with pytest.raises(ctrgcn.ResourceError):
        tr.forward(huge)
    small = np.random.default_rng(0).standard_normal((2, 3, 16, 25, 2)).astype(np.float32)
    assert np.isfinite(tr.forward(small)).all()  # the session recovers
    assert np.isfinite(m(small)).all()


def device_free_bytes():
    """Free device memory: from torch on a GPU, from the emulation's own cudaMemGetInfo on the host;
    None when neither can tell."""
    if EMULATED:
        import ctypes
        lib = ctypes.CDLL(os.environ["CTRGCN_CUDA_LIB"])
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        assert lib.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) == 0
        return free.value
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None


@needs_gpu
def test_no_device_memory_growth_over_1000_calls():
    if device_free_bytes() is None:
        pytest.skip("torch cannot see the GPU to read its free memory")
    m = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, device="cuda")
    tr = m.trainer()
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((b, 3, t, 20, 1)).astype(np.float32) for b, t in ((1, 52), (4, 30), (2, 52))]
    from ctrgcn.training.losses import soft_targets

    def calls(count):
        for i in range(count):
            x = xs[i % len(xs)]
            m(x)
            if i % 10 == 0:
                tr.step(x, soft_targets(np.zeros(len(x), int), 10, 0.0), lr=0.001)

    calls(12 if EMULATED else 30)  # every shape planned once, a training step among them
    free0 = device_free_bytes()
    count = 30 if EMULATED else 1000
    calls(count)
    free1 = device_free_bytes()
    assert free0 - free1 <= 8 << 20, f"device memory fell by {(free0 - free1) / 2**20:.1f} MiB over {count} calls"


@needs_gpu
def test_files_move_between_devices(tmp_path):
    m = ctrgcn.Model("CTRGCN_light", num_classes=10, graph="ucla", num_person=1, device="cuda")
    tr = m.trainer()
    x = np.random.default_rng(2).standard_normal((4, 3, 20, 20, 1)).astype(np.float32)
    from ctrgcn.training.losses import soft_targets
    for _ in range(3):
        tr.step(x, soft_targets([0, 1, 2, 3], 10, 0.0), lr=0.05)
    tr.sync()
    path = tmp_path / "m.ctrgcn"
    m.save(path)
    on_cpu = ctrgcn.load(path)
    assert on_cpu.device == "cpu"
    assert rel_err(on_cpu(x), m(x)) < 1e-5
    back = ctrgcn.load(path).to("cuda")
    assert rel_err(back(x), on_cpu(x)) < 1e-5

"""The CUDA backend's own sources, run without a GPU.

csrc/backends/cuda/*.cu are compiled by g++ for the host against tests/cuda_host/, an emulation of
the CUDA runtime and cuBLAS (kernels run block by block, a block's threads as fibers that switch at
barriers and shuffles; cuBLAS on OpenBLAS; device memory checked on every copy and operand), into a
library that ctrgcn loads as its "cuda" backend (CTRGCN_CUDA_LIB). The GPU tests then run on it in
a subprocess: the backend-ops suite (every op, forward and backward, against NumPy), a golden
model, eval against the CPU, graph capture and replay, training steps within the CPU's own float32
noise, bad input, out of memory, memory growth, and the device-fault path of the session.

This checks the kernels' logic and the backend's use of the runtime; it says nothing of speed, of
the device's floating point, or of races between a kernel's threads (they never run at once here).
``CTRGCN_CUDA_HOST_FULL=1`` runs every GPU test (about 10 minutes on two cores) instead of the
selection below (about 2).
"""
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOST = ROOT / "tests" / "cuda_host"

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                                reason="the emulation's fiber switch is x86-64 assembly")

# What runs by default: every op (at one thread count: the device ignores it), one golden, and each
# other kind of GPU test once.
CUDA_TESTS = ("test_cuda_is_registered or golden_on_cuda and official-ntu or eval_matches_cpu and 1- or "
              "graph_replay or graph_survives or fifty and lightV2 or several_threads or bad_input or out_of_memory or "
              "growth")


@pytest.fixture(scope="module")
def host_lib(tmp_path_factory):
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("g++")
    if not cxx:
        pytest.skip("no C++ compiler")
    try:
        import scipy_openblas32 as sob
    except ImportError:
        pytest.skip("scipy-openblas32 (the OpenBLAS the emulated cuBLAS runs on) is not installed")
    lib = tmp_path_factory.mktemp("cuda_host") / "libctrgcn_cuda_host.so"
    cmd = [cxx, "-std=c++17", "-O3", "-fPIC", "-shared", "-Wall", "-Wno-unused-function", "-DCTRGCN_CUDA_HOST",
           "-DCTRGCN_BLAS_SCIPY=1", "-I", str(HOST), "-I", str(ROOT / "csrc"), "-I", str(ROOT / "csrc" / "include"),
           "-I", sob.get_include_dir(), "-x", "c++", *map(str, sorted((ROOT / "csrc" / "backends" / "cuda").glob("*.cu"))),
           "-x", "none", str(HOST / "cuda_host.cpp"), "-L", sob.get_lib_dir(), "-l" + sob.get_library(),
           "-Wl,-rpath," + sob.get_lib_dir(), "-o", str(lib)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr  # the CUDA sources must compile for the host too
    return lib


def emulated_env(lib, **extra):
    return dict(os.environ, CTRGCN_CUDA_LIB=str(lib), CTRGCN_CUDA_HOST="1", **extra)


def test_gpu_tests_pass_on_the_host_emulation(host_lib):
    full = os.environ.get("CTRGCN_CUDA_HOST_FULL") == "1"
    runs = [("tests/test_backend_ops.py", "cuda" if full else "cuda and not t2", 300),
            ("tests/test_cuda.py", "cuda or not cuda" if full else CUDA_TESTS, 10)]
    # both at once: an emulated kernel runs on one core (launches take turns within a process)
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path, "-k", select],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=emulated_env(host_lib),
                              cwd=str(ROOT)) for path, select, _ in runs]
    outs = [p.communicate()[0] for p in procs]
    for (path, _, least), p, out in zip(runs, procs, outs):
        assert p.returncode == 0, out[-6000:]
        passed = re.search(r"(\d+) passed", out)
        # the GPU tests ran on the emulated device, not skipped for want of one
        assert passed and int(passed.group(1)) >= least, out[-3000:]


def test_session_plumbing_and_device_faults_on_the_host_emulation(host_lib, tmp_path):
    """tests/test_cuda.py's PLUMBING script (loader, Model(device=), to(), trainers, the op profile,
    a device fault raised and recovered from) on the real backend rather than the stand-in."""
    from test_cuda import PLUMBING
    r = subprocess.run([sys.executable, "-c", PLUMBING], capture_output=True, text=True, cwd=str(ROOT),
                       env=emulated_env(host_lib, WORK=str(tmp_path / "w"), UCLA=""))
    assert r.returncode == 0 and "plumbing ok" in r.stdout, r.stdout + r.stderr


def test_emulation_catches_what_a_gpu_would_refuse(host_lib):
    """The emulation is strict where the device is: a copy in the wrong direction or past its
    allocation fails (reported once, not sticky), and so do an allocation beyond the device's
    memory and a second free; a write past an allocation (its red zone) is a device fault."""
    prog = r"""
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
p = ctypes.c_void_p()
assert lib.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(1024)) == 0
host = (ctypes.c_char * 1024)()
H2D, D2H = 1, 2
assert lib.cudaMemcpyAsync(p, host, ctypes.c_size_t(1024), H2D, None) == 0
assert lib.cudaMemcpyAsync(host, p, ctypes.c_size_t(1024), H2D, None) != 0      # host -> device, backwards
assert lib.cudaMemcpyAsync(host, p, ctypes.c_size_t(2048), D2H, None) != 0      # past the allocation
assert lib.cudaGetLastError() != 0 and lib.cudaGetLastError() == 0              # reported once, not sticky
big = ctypes.c_void_p()
assert lib.cudaMalloc(ctypes.byref(big), ctypes.c_size_t(1 << 40)) == 2         # out of memory
assert lib.cudaFree(p) == 0 and lib.cudaFree(p) != 0                            # freed twice
q = ctypes.c_void_p()
assert lib.cudaMalloc(ctypes.byref(q), ctypes.c_size_t(1024)) == 0 and lib.cudaStreamSynchronize(None) == 0
ctypes.memset(q.value + 1024, 0, 4)                   # as a kernel writing one float past its buffer
assert lib.cudaStreamSynchronize(None) == 719 and lib.cudaGetLastError() == 719  # a sticky launch failure
print("strict ok")
"""
    r = subprocess.run([sys.executable, "-c", prog, str(host_lib)], capture_output=True, text=True)
    assert r.returncode == 0 and "strict ok" in r.stdout, r.stdout + r.stderr

"""Build of the optional CUDA backend, ``ctrgcn/libctrgcn_cuda.so``, for setup.py.

The backend is a shared library of its own, opened by the C core the first time a session asks
for "cuda" (csrc/backends/registry.c), so the package builds, installs and imports the same with
or without a toolkit. ``CTRGCN_CUDA=0`` never builds it; ``CTRGCN_CUDA=1`` must build it (a
missing nvcc or cuBLAS, or any compile error, fails the build); unset, it is built when nvcc and
cuBLAS are found, and then a compile error fails the build too.

nvcc: ``$CUDA_HOME/bin/nvcc``, else ``/usr/local/cuda/bin/nvcc``, else the PATH. cuBLAS: the
toolkit's own, else the ``nvidia-cublas`` wheel's (``nvidia/cu13`` in site-packages, as PyTorch
installs it), else ``$CTRGCN_CUBLAS_HOME`` (a folder with ``include/`` and ``lib/``).
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor

LIBRARY = "libctrgcn_cuda.so"
SOURCES = sorted(glob.glob(os.path.join("csrc", "backends", "cuda", "*.cu")))
# Hopper machine code plus its PTX, which newer GPUs compile at load time.
ARCH = ["-gencode", "arch=compute_90,code=sm_90", "-gencode", "arch=compute_90,code=compute_90"]
NVCC_FLAGS = ["-std=c++17", "-O3", "-Xcompiler", "-fPIC,-fvisibility=hidden,-Wall", "-Icsrc", "-Icsrc/include"]
JOBS = int(os.environ.get("CTRGCN_CUDA_JOBS", "2"))  # the development machines have two cores


def find_nvcc():
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home and os.path.isfile(os.path.join(home, "bin", "nvcc")):
            return os.path.join(home, "bin", "nvcc")
    return shutil.which("nvcc")


def _site_dirs():
    dirs = [sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")]
    try:
        import site
        dirs += site.getsitepackages()
    except AttributeError:
        pass
    dirs += sys.path
    seen, out = set(), []
    for d in dirs:
        if d and os.path.isdir(d) and d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _cublas_in(root):
    """(include dir, library dir, library file) of a cuBLAS under root, or None."""
    inc = os.path.join(root, "include")
    if not os.path.isfile(os.path.join(inc, "cublas_v2.h")):
        return None
    for lib in ("lib64", "lib", os.path.join("targets", "x86_64-linux", "lib")):
        libs = sorted(glob.glob(os.path.join(root, lib, "libcublas.so*")))
        if libs:
            return inc, os.path.join(root, lib), os.path.basename(libs[0] if libs[0].endswith(".so") else libs[-1])
    return None


def find_cublas(nvcc):
    roots = []
    if os.environ.get("CTRGCN_CUBLAS_HOME"):
        roots.append(os.environ["CTRGCN_CUBLAS_HOME"])
    if nvcc:
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    for d in _site_dirs():
        roots += sorted(glob.glob(os.path.join(d, "nvidia", "cu1[3-9]")), reverse=True)
        roots.append(os.path.join(d, "nvidia", "cublas"))
    for root in roots:
        found = _cublas_in(root)
        if found:
            return found
    return None


def plan():
    """What this build does: {"build": bool, "required": bool, "nvcc", "cublas", "reason"}."""
    mode = os.environ.get("CTRGCN_CUDA", "").strip()
    if mode not in ("", "0", "1"):
        raise SystemExit(f"CTRGCN_CUDA must be 0 or 1, got {mode!r}")
    if mode == "0":
        return {"build": False, "required": False, "nvcc": None, "cublas": None, "reason": "CTRGCN_CUDA=0"}
    nvcc = find_nvcc()
    cublas = find_cublas(nvcc) if nvcc else None
    reason = "" if nvcc and cublas else ("nvcc not found" if not nvcc else
                                         "cuBLAS not found (pip install nvidia-cublas, or set CTRGCN_CUBLAS_HOME)")
    if mode == "1" and reason:
        raise SystemExit(f"CTRGCN_CUDA=1 but the CUDA backend cannot be built: {reason}")
    return {"build": not reason, "required": mode == "1" or bool(nvcc), "nvcc": nvcc, "cublas": cublas,
            "reason": reason}


def _run(cmd):
    print(" ".join(cmd), flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.stdout:
        print(r.stdout, flush=True)
    if r.returncode:
        raise RuntimeError(f"CUDA backend build failed ({os.path.basename(cmd[0])} exited {r.returncode})")


def build(p, out_path, temp_dir):
    """Compile every .cu (JOBS at a time) and link the library at out_path."""
    inc, libdir, libfile = p["cublas"]
    os.makedirs(temp_dir, exist_ok=True)
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    objs = [os.path.join(temp_dir, os.path.basename(s)[:-3] + ".o") for s in SOURCES]
    cmds = [[p["nvcc"], *NVCC_FLAGS, *ARCH, "-I" + inc, "-c", s, "-o", o] for s, o in zip(SOURCES, objs)]
    with ThreadPoolExecutor(JOBS) as pool:
        list(pool.map(_run, cmds))
    lib = "-l:" + libfile if not libfile.endswith(".so") else "-lcublas"
    _run([p["nvcc"], "-shared", *ARCH, "-o", out_path, *objs, "-L" + libdir, lib,
          "-Xlinker", "-rpath", "-Xlinker", libdir])

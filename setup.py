"""Build of the one extension, ``ctrgcn._core``, from ``csrc/``.

OpenBLAS does every GEMM. When nvcc and cuBLAS are found (or ``CTRGCN_CUDA=1``), the CUDA
backend is built beside it as ``ctrgcn/libctrgcn_cuda.so``, a separate library the core opens
on first use (cuda_build.py). A system OpenBLAS found by pkg-config wins; otherwise PyPI's
``scipy-openblas32`` (a build requirement) supplies headers, library and the ``scipy_`` symbol
prefix, and ``ctrgcn/__init__.py`` preloads that library at import time (the build environment is
temporary, so no rpath into it would survive).
"""
import glob
import os
import shlex
import subprocess
import sys

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cuda_build  # noqa: E402


def _pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args, "openblas"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out)


def blas_flags():
    if os.environ.get("CTRGCN_BLAS", "") != "scipy":
        cflags, libs = _pkg_config("--cflags"), _pkg_config("--libs")
        if cflags is not None and libs is not None:
            return {"extra_compile_args": cflags + ["-DCTRGCN_BLAS_SYSTEM=1"], "extra_link_args": libs}
    import scipy_openblas32 as sob
    return {
        "extra_compile_args": ["-I" + sob.get_include_dir(), "-DCTRGCN_BLAS_SCIPY=1"],
        "extra_link_args": ["-L" + sob.get_lib_dir(), "-l" + sob.get_library()],
    }


blas = blas_flags()
sources = sorted(glob.glob("csrc/core/*.c") + glob.glob("csrc/layers/*.c") + glob.glob("csrc/backends/*.c")
                 + glob.glob("csrc/backends/cpu/*.c")
                 + glob.glob("csrc/data/*.c") + glob.glob("csrc/python/*.c"))
# -O3 without -march: the wheel must run on any x86-64; the hot loops carry target_clones
# (AVX2+FMA chosen at load time where the CPU has it).
compile_args = ["-std=c11", "-O3", "-fopenmp", "-Wall", "-Wextra", "-Wno-unused-parameter",
                "-Wno-missing-field-initializers", "-Wno-cast-function-type", "-fno-math-errno",
                "-D_GNU_SOURCE", "-DNPY_NO_DEPRECATED_API=NPY_1_7_API_VERSION"]

# The kernels (layers and backends) may fuse a*b+c into one FMA: faster and no less accurate. The
# rest of the core may not: the data preparation reproduces reference scripts bit for bit, and
# C11 mode keeps contraction off by default for exactly that reason.
CONTRACTED = (os.path.join("csrc", "layers") + os.sep, os.path.join("csrc", "backends") + os.sep)


class BuildExt(build_ext):
    def build_extension(self, ext):
        compile_one = self.compiler._compile

        def _compile(obj, src, ext_, cc_args, extra_postargs, pp_opts):
            rel = os.path.relpath(src)
            extra = list(extra_postargs) + (["-ffp-contract=fast"] if rel.startswith(CONTRACTED) else [])
            compile_one(obj, src, ext_, cc_args, extra, pp_opts)

        self.compiler._compile = _compile
        try:
            super().build_extension(ext)
        finally:
            self.compiler._compile = compile_one


ext = Extension(
    "ctrgcn._core",
    sources=sources,
    include_dirs=["csrc/include", "csrc", numpy.get_include()],
    extra_compile_args=compile_args + blas["extra_compile_args"],
    extra_link_args=["-fopenmp"] + blas["extra_link_args"],
)


class BuildExtCuda(BuildExt):
    """BuildExt, then the optional CUDA backend library next to the extension."""

    def _cuda_target(self):
        return os.path.join(self.build_lib, "ctrgcn", cuda_build.LIBRARY)

    def build_extensions(self):
        super().build_extensions()
        p = cuda_build.plan()
        if not p["build"]:
            print(f"ctrgcn: CUDA backend not built: {p['reason']}", flush=True)
            return
        cuda_build.build(p, self._cuda_target(), os.path.join(self.build_temp, "cuda"))

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        stale = os.path.join("ctrgcn", cuda_build.LIBRARY)
        if os.path.exists(self._cuda_target()):
            self.copy_file(self._cuda_target(), stale, level=self.verbose)
        elif os.path.exists(stale):
            os.remove(stale)  # an old library would claim a backend this build does not have

    def get_outputs(self):
        outs = super().get_outputs()
        if not self.inplace and cuda_build.plan()["build"]:
            outs.append(self._cuda_target())
        return outs

    def get_output_mapping(self):
        mapping = super().get_output_mapping()
        if self.inplace and os.path.exists(self._cuda_target()):
            mapping[self._cuda_target()] = os.path.join("ctrgcn", cuda_build.LIBRARY)
        return mapping


setup(ext_modules=[ext], cmdclass={"build_ext": BuildExtCuda})

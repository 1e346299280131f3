"""Make the OpenBLAS that ``_core`` links against loadable before ``_core`` is imported.

With PyPI's scipy-openblas32 the library lives inside that package; loading it once with
RTLD_GLOBAL lets the dynamic linker satisfy ``_core``'s dependency on it by its soname.
"""
import ctypes
import os


# OpenMP threads that wait at a barrier spin before they sleep (GOMP_SPINCOUNT rounds; libgomp's
# default is 300,000). The package used to set 10,000 rounds, for big steps on loaded cores; it no
# longer overrides libgomp, because short spins cost far more where the ops are small. Measured on
# the 2-core machine (2026-11-30), under load (two CPU-burning processes): a batch-1 forward (one
# NW-UCLA person) 61 ms with 10,000 rounds, 6.9 ms with the default, while a CTRGCN_light training
# step (batch 16) took 398 ms and 527 ms (two training processes at once: 472 and 485-518 ms).
# Quiet, that forward on two cores is bimodal on this VM with either setting (3.1 ms in some
# processes, 4.2-4.5 in others; always the slow one with the threads pinned). Long training runs
# on a shared machine can set GOMP_SPINCOUNT=10000 in their environment.


def preload() -> None:
    """Load scipy-openblas32's library globally when that package is installed; else do nothing."""
    try:
        import scipy_openblas32 as sob
    except ImportError:  # a build against the system OpenBLAS needs nothing
        return
    path = os.path.join(sob.get_lib_dir(), sob.get_library(fullname=True))
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)

"""Make the OpenBLAS that ``_core`` links against loadable before ``_core`` is imported.

With PyPI's scipy-openblas32 the library lives inside that package; loading it once with
RTLD_GLOBAL lets the dynamic linker satisfy ``_core``'s dependency on it by its soname.
"""
import ctypes
import os


# OpenMP threads that wait at a barrier spin before they sleep; libgomp's default spin (300,000
# rounds) suits a machine of its own, but where other processes share the cores a thread spins
# through the time slice its partner needs: on 2 loaded cores a training step took 2.1 s with it
# and 0.9 s with 10,000 rounds, which cost nothing on the quiet machine (270 ms a step either way,
# batch-1 forwards within 1%). libgomp reads the setting once, when _core loads it; a value the
# user set is kept.
SPINCOUNT = "10000"


def preload() -> None:
    """Load scipy-openblas32's library globally when that package is installed; else do nothing.
    Also sets GOMP_SPINCOUNT (unless set) before _core brings in libgomp."""
    os.environ.setdefault("GOMP_SPINCOUNT", SPINCOUNT)
    try:
        import scipy_openblas32 as sob
    except ImportError:  # a build against the system OpenBLAS needs nothing
        return
    path = os.path.join(sob.get_lib_dir(), sob.get_library(fullname=True))
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)

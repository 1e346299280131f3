"""Make the OpenBLAS that ``_core`` links against loadable before ``_core`` is imported.

With PyPI's scipy-openblas32 the library lives inside that package; loading it once with
RTLD_GLOBAL lets the dynamic linker satisfy ``_core``'s dependency on it by its soname.
"""
import ctypes
import os


def preload() -> None:
    """Load scipy-openblas32's library globally when that package is installed; else do nothing."""
    try:
        import scipy_openblas32 as sob
    except ImportError:  # a build against the system OpenBLAS needs nothing
        return
    path = os.path.join(sob.get_lib_dir(), sob.get_library(fullname=True))
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)

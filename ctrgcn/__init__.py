from ctrgcn._blas import preload as _preload

_preload()
from ctrgcn._core import Error, InputError, FileError, ResourceError  # noqa: E402

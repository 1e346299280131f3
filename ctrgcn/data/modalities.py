"""Input modalities: joint, bone (child minus parent), motion (next frame minus this one, last
frame 0) and bone motion, computed in C on ``(C, T, V, M)`` or ``(N, C, T, V, M)`` arrays."""
import numpy as np

from ctrgcn import _core
from ctrgcn._core import InputError

MODALITIES = ("joint", "bone", "motion", "bone_motion")
# (child, parent), 1-based, as the reference feeders list them; (21, 21) / (3, 3) are roots.
NTU_BONE_PAIRS = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                  (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
                  (21, 21), (23, 8), (24, 25), (25, 12))
UCLA_BONE_PAIRS = ((1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10),
                   (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19))


def check_modality(name):
    if name not in MODALITIES:
        raise InputError(f"unknown modality {name!r}; expected one of {', '.join(MODALITIES)}")
    return MODALITIES.index(name)


def _graph_of(x, graph):
    if graph is not None:
        return graph
    V = x.shape[-2]
    if V == 25:
        return "ntu"
    if V == 20:
        return "ucla"
    raise InputError(f"cannot tell the skeleton from V={V}; pass graph='ntu' or 'ucla'")


def modality(x, name, graph=None):
    """The modality `name` of x (C, T, V, M) or (N, C, T, V, M), as float32."""
    check_modality(name)
    x = np.asarray(x)
    if x.ndim not in (4, 5):
        raise InputError(f"expected (C, T, V, M) or (N, C, T, V, M), got shape {x.shape}")
    g = _graph_of(x, graph)
    if x.ndim == 4:
        return _core.data_modality(x, name, g)
    return np.stack([_core.data_modality(s, name, g) for s in x]) if len(x) else x.astype(np.float32)


def bone(x, graph=None):
    return modality(x, "bone", graph)


def motion(x):
    return modality(x, "motion", graph="any")


def bone_motion(x, graph=None):
    return modality(x, "bone_motion", graph)

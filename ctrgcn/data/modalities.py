"""Input modalities: joint, bone (child minus parent), motion (next frame minus this one, last
frame 0) and bone motion, computed in C on ``(C, T, V, M)`` or ``(N, C, T, V, M)`` arrays."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn import _core
from ctrgcn._core import InputError
from ctrgcn._types import F32Array, I64Array
from ctrgcn.skeletons import GRAPHS, NTU, UCLA, Graph, GraphLike, edge_array, graph_named, parents_from_edges

MODALITIES = ("joint", "bone", "motion", "bone_motion")


def _reference_pairs(graph: Graph) -> Tuple[Tuple[int, int], ...]:
    """1-based (child, parent) pairs with the root as its own parent, as the reference feeders list them."""
    return tuple(sorted([(c + 1, p + 1) for c, p in graph.bones] + [(graph.root + 1, graph.root + 1)]))


NTU_BONE_PAIRS = _reference_pairs(NTU)
UCLA_BONE_PAIRS = _reference_pairs(UCLA)


def check_modality(name: str) -> int:
    """The index of modality ``name`` in ``MODALITIES`` (the C core's code); an InputError for an unknown one."""
    if name not in MODALITIES:
        raise InputError(f"unknown modality {name!r}; expected one of {', '.join(MODALITIES)}")
    return MODALITIES.index(name)


def parents_of(graph: GraphLike, V: int) -> I64Array:
    """parent[v] (int64) of a graph: a built-in name, a ``Graph`` or an edge list of (child, parent)."""
    if isinstance(graph, Graph):
        g = graph
    elif isinstance(graph, str):
        g = graph_named(graph)
    else:
        edges = edge_array(graph, "(child, parent) pairs", "a built-in name, a Graph or ")
        if edges.size and (edges.min() < 0 or edges.max() >= V):
            raise InputError(f"graph: edges must join joints 0..{V - 1}")
        return parents_from_edges(edges, V)
    if g.num_joints != V:
        raise InputError(f"graph {g.name!r} has {g.num_joints} joints, the data {V}")
    return g.parents()


def _graph_of(x: NDArray[np.generic], graph: Optional[GraphLike]) -> GraphLike:
    if graph is not None:
        return graph
    V = x.shape[-2]
    for g in GRAPHS.values():
        if g.num_joints == V:
            return g
    raise InputError(f"cannot tell the skeleton from V={V}; pass graph= (one of {', '.join(GRAPHS)} or an edge list)")


def modality(x: ArrayLike, name: str, graph: Optional[GraphLike] = None) -> F32Array:
    """The modality `name` of x (C, T, V, M) or (N, C, T, V, M), as float32. ``graph`` (a built-in
    name, a ``Graph`` or (child, parent) edges) gives the bones; by default it follows V."""
    check_modality(name)
    x = np.asarray(x)
    if x.ndim not in (4, 5):
        raise InputError(f"expected (C, T, V, M) or (N, C, T, V, M), got shape {x.shape}")
    parents = None if name in ("joint", "motion") else parents_of(_graph_of(x, graph), x.shape[-2])
    if x.ndim == 4:
        return _core.data_modality(x, name, parents)
    return np.stack([_core.data_modality(s, name, parents) for s in x]) if len(x) else x.astype(np.float32)


def bone(x: ArrayLike, graph: Optional[GraphLike] = None) -> F32Array:
    """The bone modality of ``x`` (``modality(x, "bone", graph)``): child joint minus parent."""
    return modality(x, "bone", graph)


def motion(x: ArrayLike) -> F32Array:
    """The motion modality of ``x``: next frame minus this one, the last frame zero."""
    return modality(x, "motion")


def bone_motion(x: ArrayLike, graph: Optional[GraphLike] = None) -> F32Array:
    """The bone-motion modality of ``x``: the motion of the bones."""
    return modality(x, "bone_motion", graph)

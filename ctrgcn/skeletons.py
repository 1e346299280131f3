"""Skeleton layouts: joint names and bones of the built-in graphs, one description each.

``ctrgcn.graphs`` maps a name to its ``Graph``. The bones, ``(child, parent)`` pairs over 0-based
joints with the root absent, are both the inward edges the network's adjacency is built from and
the pairs the bone modality subtracts (``bone[child] = x[child] - x[parent]``, zero at the root).
``ntu`` and ``ucla`` are the reference layouts (their adjacency is also compiled into the C core,
``csrc/core/spec.c``, and checked against these bones by the tests); ``coco17`` (COCO keypoints as
most 2-D pose estimators output them), ``openpose18`` (OpenPose's COCO-18 order, with a neck) and
``mediapipe33`` (MediaPipe Pose landmarks) are trees rooted at the nose or the neck.
Pose-estimator layouts are planar: their input is ``(x, y)`` or ``(x, y, confidence)``, so models
take ``in_channels`` 2 or 3 and training does not rotate them in 3-D.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn._types import I64Array


@dataclass(frozen=True)
class Graph:
    """A skeleton layout: ``joints`` (names, in input order), ``bones`` ((child, parent), 0-based,
    one per non-root joint), ``root`` (the joint without a parent) and ``planar`` (2-D keypoints,
    optionally with a confidence channel, rather than 3-D positions)."""
    name: str
    joints: Tuple[str, ...]
    bones: Tuple[Tuple[int, int], ...]
    root: int
    planar: bool = False

    @property
    def num_joints(self) -> int:
        """The number of joints, V."""
        return len(self.joints)

    @property
    def edges(self) -> I64Array:
        """The inward edges of the adjacency: the bones, as an (E, 2) int64 array."""
        return np.array(self.bones, dtype=np.int64).reshape(-1, 2)

    def parents(self) -> I64Array:
        """parent[v] of every joint (the root is its own parent), int64."""
        return parents_from_edges(self.bones, self.num_joints)


# An edge list: (i, j) pairs over 0-based joints, as a sequence of pairs or an (E, 2) integer array.
EdgeList = Union[Sequence[Sequence[int]], NDArray[np.integer[Any]]]
# What a ``graph=`` argument takes: a built-in name, a ``Graph`` or an edge list.
GraphLike = Union[str, Graph, EdgeList]


def edge_array(graph: ArrayLike, pairs: str, alternatives: str) -> I64Array:
    """``graph`` as an (E, 2) int64 array of joint pairs (an empty list gives (0, 2)). An
    InputError says what was expected: ``graph: expected {alternatives}{pairs}`` when it is no
    array of integers, ``graph: expected {pairs}, got an array of shape ...`` when not (E, 2)."""
    from ctrgcn._core import InputError
    try:
        edges = np.asarray(graph, dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError(f"graph: expected {alternatives}{pairs}") from None
    if edges.size == 0:
        edges = edges.reshape(0, 2)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise InputError(f"graph: expected {pairs}, got an array of shape {edges.shape}")
    return edges


def parents_from_edges(edges: ArrayLike, num_joints: int) -> I64Array:
    """parent[v] from (child, parent) pairs; a joint that is no child is its own parent (zero bone).
    A joint listed as the child of two parents keeps the first (an edge list may be a graph, not a tree)."""
    parent = np.arange(int(num_joints), dtype=np.int64)
    seen = np.zeros(int(num_joints), bool)
    for child, par in np.asarray(edges, dtype=np.int64).reshape(-1, 2):
        if not seen[child]:
            parent[child], seen[child] = par, True
    return parent


def _graph(name: str, joints: Sequence[str], bones_1based: Optional[Sequence[Tuple[int, int]]] = None,
           bones: Sequence[Tuple[int, int]] = (), planar: bool = False) -> Graph:
    pairs = tuple((c - 1, p - 1) for c, p in bones_1based) if bones_1based else tuple(bones)
    roots = sorted(set(range(len(joints))) - {c for c, _ in pairs})
    assert len(roots) == 1 and len(pairs) == len(joints) - 1, name  # a tree: one root, one parent each
    return Graph(name, tuple(joints), pairs, roots[0], planar)


NTU = _graph("ntu", (
    "spine_base", "spine_mid", "neck", "head", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle",
    "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot", "spine_shoulder", "left_hand_tip",
    "left_thumb", "right_hand_tip", "right_thumb"),
    bones_1based=((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                  (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
                  (23, 8), (24, 25), (25, 12)))

UCLA = _graph("ucla", (
    "hip_center", "spine", "shoulder_center", "head", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle",
    "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot"),
    bones_1based=((1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10), (12, 11),
                  (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19)))

COCO17 = _graph("coco17", (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle"),
    bones=((1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6), (9, 7), (10, 8), (11, 5), (12, 6),
           (13, 11), (14, 12), (15, 13), (16, 14)), planar=True)

OPENPOSE18 = _graph("openpose18", (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye",
    "right_ear", "left_ear"),
    bones=((0, 1), (2, 1), (3, 2), (4, 3), (5, 1), (6, 5), (7, 6), (8, 1), (9, 8), (10, 9), (11, 1), (12, 11),
           (13, 12), (14, 0), (15, 0), (16, 14), (17, 15)), planar=True)

MEDIAPIPE33 = _graph("mediapipe33", (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index"),
    bones=((1, 0), (2, 1), (3, 2), (7, 3), (4, 0), (5, 4), (6, 5), (8, 6), (9, 0), (10, 0), (11, 0), (12, 0),
           (13, 11), (14, 12), (15, 13), (16, 14), (17, 15), (18, 16), (19, 15), (20, 16), (21, 15), (22, 16),
           (23, 11), (24, 12), (25, 23), (26, 24), (27, 25), (28, 26), (29, 27), (30, 28), (31, 27), (32, 28)),
    planar=True)

GRAPHS = MappingProxyType({g.name: g for g in (NTU, UCLA, COCO17, OPENPOSE18, MEDIAPIPE33)})
# The graphs whose adjacency the C core builds by name; the others travel as edge lists.
CORE_GRAPHS = ("ntu", "ucla")


def graph_named(name: str) -> Graph:
    """The built-in ``Graph`` called ``name``."""
    from ctrgcn._core import InputError
    try:
        return GRAPHS[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown graph {name!r}; built in: {', '.join(GRAPHS)} (or a list of (i, j) edges)") from None

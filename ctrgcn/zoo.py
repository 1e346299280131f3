"""Weights shipped with the package: ``ctrgcn.pretrained()`` lists them, ``ctrgcn.pretrained(name)``
loads one, offline.

They are the project's own files, ``<name>.ctrgcn``, in ``ctrgcn/pretrained/`` (package data). The
folder can be replaced by setting ``CTRGCN_PRETRAINED_DIR`` or ``ctrgcn.zoo.PRETRAINED_DIR``."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, List, Optional, Sequence, Union, overload

from ctrgcn._core import InputError

if TYPE_CHECKING:
    from ctrgcn.ensemble import Ensemble
    from ctrgcn.model import Model

PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
SUFFIX = ".ctrgcn"
# The model `predict` uses when no weights are given (NW-UCLA skeletons, joint modality).
DEFAULT_MODEL = "nwucla_ctrgcn_joint"
# A family's streams are shipped as <family>_<stream>; the ensemble takes them in this order.
STREAMS = ("joint", "bone", "motion", "bone_motion")
DEFAULT_FAMILY = "nwucla_ctrgcn"


def pretrained_dir() -> str:
    """The folder of the shipped weights: ``CTRGCN_PRETRAINED_DIR`` when set, else ``PRETRAINED_DIR``."""
    return os.environ.get("CTRGCN_PRETRAINED_DIR") or PRETRAINED_DIR


def available() -> List[str]:
    """Names of the shipped weight files, sorted."""
    folder = pretrained_dir()
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX) and os.path.isfile(os.path.join(folder, n)))


@overload
def pretrained(name: None = None) -> List[str]: ...
@overload
def pretrained(name: str) -> Model: ...
def pretrained(name: Optional[str] = None) -> Union[List[str], Model]:
    """``pretrained()``: the names of the shipped models. ``pretrained(name)``: that model, loaded
    from the package (no network); an unknown name raises ``ctrgcn.InputError`` listing the names."""
    names = available()
    if name is None:
        return names
    if name not in names:
        shipped = ", ".join(names) if names else f"none (no weight files in {pretrained_dir()})"
        raise InputError(f"no shipped model {name!r}; available: {shipped}")
    from ctrgcn.weights import load
    return load(os.path.join(pretrained_dir(), name + SUFFIX))


def pretrained_ensemble(family: str = DEFAULT_FAMILY, weights: Optional[Sequence[float]] = None,
                        tuned: bool = True) -> Ensemble:
    """The shipped streams of ``family`` (``<family>_joint``, ``_bone``, ``_motion``, ``_bone_motion``:
    those shipped, in that order) as one ``ctrgcn.Ensemble`` that takes joints; with ``tuned`` (the
    default) each stream's model trained on the tuned recipe (``<family>_<stream>_aug``) where one is
    shipped, else the official recipe's. ``weights`` one per stream found (default: equal, as the
    accuracy table's ensemble). ``ctrgcn.InputError`` when the family has no shipped stream."""
    from ctrgcn.ensemble import Ensemble
    names = available()
    streams = [s for s in STREAMS if f"{family}_{s}" in names]
    if not streams:
        families = sorted({n.rsplit("_", 1)[0] for n in names if n.endswith("_joint")})
        raise InputError(f"no shipped streams of {family!r}; families with a joint stream: "
                         f"{', '.join(families) or 'none'}")
    if weights is not None and len(weights) != len(streams):
        raise InputError(f"{len(weights)} weights for the {len(streams)} shipped streams of {family!r} "
                         f"({', '.join(streams)})")
    chosen = [f"{family}_{s}_aug" if tuned and f"{family}_{s}_aug" in names else f"{family}_{s}" for s in streams]
    return Ensemble([pretrained(n) for n in chosen], streams, weights)

"""Fine-tuning: a run that starts from trained weights (config ``init_weights``: a weight file any
format ``ctrgcn.load`` reads, or a shipped model's name) instead of a random initialisation.

Every tensor is copied from the source, which must be the same network (its spec: variant, widths,
graph, persons, channels). Only the number of classes may differ — a new set of actions — and then
the classifier (``fc.weight``, ``fc.bias``) keeps its fresh initialisation. A float16 / int8 file
written with its BatchNorms folded into the convolutions (the default of ``save``) has lost what
training in batch statistics needs: the run goes on from it with a warning, but starts far from
the source's accuracy. The shipped weights keep their BatchNorms (``convert --keep-bn``)."""
from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, List, Sequence

from ctrgcn._core import InputError
from ctrgcn._types import PathLike

if TYPE_CHECKING:
    from ctrgcn.model import Model

HEAD = ("fc.weight", "fc.bias")


def init_from(models: Sequence[Model], source: PathLike) -> List[str]:
    """Copy the weights of ``source`` into each of ``models``; returns the names left as initialised
    (the classifier when the class counts differ). Nothing changes when the networks differ."""
    from ctrgcn.formats.quantize import looks_folded
    from ctrgcn.weights import load
    src = load(source)  # a file, or a shipped model's name
    state = src.state_dict()
    if looks_folded(state):
        warnings.warn(f"init_weights {os.fspath(source)!r}: its BatchNorms are folded into the convolutions, so "
                      "training in batch statistics starts far from its accuracy; write it with "
                      "`convert --keep-bn` (or use the float32 file)", stacklevel=2)
    want = {k: v for k, v in src.spec.items() if k != "num_classes"}
    for m in models:  # every model checked before any changes
        have = {k: v for k, v in m.spec.items() if k != "num_classes"}
        if have != want:
            keys = [k for k in sorted(set(want) | set(have)) if want.get(k) != have.get(k)]
            raise InputError(f"init_weights {os.fspath(source)!r}: a {src.variant} network for {src.num_person} x "
                             f"{src.num_joints} joints x {src.in_channels} channels; this run trains a {m.variant} "
                             f"for {m.num_person} x {m.num_joints} x {m.in_channels} (they differ in "
                             f"{', '.join(keys)}); only the number of classes may differ")
    fresh: List[str] = []
    for m in models:
        fresh = [n for n in HEAD if tuple(state[n].shape) != tuple(m.tensor_shapes()[n])]
        m.load_state_dict({n: a for n, a in state.items() if n not in fresh}, strict=False)
        if m.classes is None and not fresh and src.classes:
            m.classes = list(src.classes)
    return fresh

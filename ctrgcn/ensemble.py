"""Multi-stream fusion: several models, each fed its own modality of one joint input, their logits
summed with weights, as the accuracy tables fuse the joint, bone, motion and bone-motion streams
(the official CTR-GCN ensemble sums the streams' scores the same way)."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn._core import InputError
from ctrgcn._types import F32Array, F64Array
from ctrgcn.data.modalities import check_modality, modality
from ctrgcn.inputs import model_graph
from ctrgcn.metrics import softmax

if TYPE_CHECKING:
    from ctrgcn.model import Model


class Ensemble:
    """``Ensemble(models, modalities, weights=None)``: model i takes modality ``modalities[i]``
    ("joint", "bone", "motion", "bone_motion") of the joint input; ``weights`` default to 1 each.
    ``scores(x)`` is the weighted sum of the models' logits for ``x`` (N, C, T, V, M) of joints,
    ``predict_proba`` its softmax, ``predict`` its argmax. Every model must take the same classes,
    joints, channels and persons."""

    def __init__(self, models: Sequence[Model], modalities: Sequence[str],
                 weights: Optional[Sequence[float]] = None) -> None:
        self.models, self.modalities = list(models), list(modalities)
        if not self.models:
            raise InputError("Ensemble: no models")
        if len(self.modalities) != len(self.models):
            raise InputError(f"Ensemble: {len(self.models)} models but {len(self.modalities)} modalities")
        for name in self.modalities:
            check_modality(name)
        self.weights = [1.0] * len(self.models) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.models):
            raise InputError(f"Ensemble: {len(self.models)} models but {len(self.weights)} weights")
        if not all(np.isfinite(self.weights)):
            raise InputError("Ensemble: weights must be finite")
        first = self.models[0]

        def shape(m: Model) -> Tuple[int, int, int, int]:
            return m.num_classes, m.num_joints, m.in_channels, m.num_person

        for i, m in enumerate(self.models[1:], 1):
            if shape(m) != shape(first):
                raise InputError(f"Ensemble: model {i} takes (classes, joints, channels, persons) {shape(m)}, "
                                 f"model 0 {shape(first)}")
        self._graph = model_graph(first)

    @property
    def num_classes(self) -> int:
        """Classes the models score."""
        return self.models[0].num_classes

    @property
    def classes(self) -> Optional[List[str]]:
        """The first model's class names that any model carries, or None."""
        return next((m.classes for m in self.models if m.classes), None)

    def class_name(self, index: int) -> str:
        """The name of class ``index``, or ``str(index)`` when no model carries names."""
        names = self.classes
        return names[int(index)] if names else str(int(index))

    def scores(self, x: ArrayLike) -> F32Array:
        """Weighted sum of the models' logits, float32 (N, K)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 5:
            raise InputError(f"x: expected (N, C, T, V, M) joints, got shape {x.shape}")
        total: Optional[F64Array] = None
        for m, name, w in zip(self.models, self.modalities, self.weights):
            stream = x if name == "joint" else modality(x, name, self._graph)
            logits = m(stream).astype(np.float64) * w
            total = logits if total is None else total + logits
        assert total is not None  # __init__ refuses an ensemble without models
        return total.astype(np.float32)

    def predict_proba(self, x: ArrayLike) -> F32Array:
        """Class probabilities ``(N, K)`` float32: the softmax of ``scores``."""
        return softmax(self.scores(x))

    def predict(self, x: ArrayLike) -> NDArray[np.intp]:
        """Top-1 class index per sample."""
        top: NDArray[np.intp] = np.argmax(self.scores(x), axis=1)
        return top

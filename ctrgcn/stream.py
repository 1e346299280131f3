"""Recognition over a live pose stream: one frame of joints per person at a time, a prediction
every ``stride`` frames over the last ``window`` frames.

Persons are tracked by the ids the pose estimator gives (or by position). A person missing from a
few frames keeps the last pose seen (a detector's dropout is not motion); before a person's first
frame in the window and after the last one, the person is zeros, as absent actors are in NTU RGB+D.
When more persons are in the window than the model takes, those seen in the most frames win.
The window is then preprocessed as the model's own evaluation does (``ctrgcn/inputs.py``: NW-UCLA
models resample it to 52 frames, the others take the middle 95% resized to ``frames``)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Deque, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from ctrgcn._core import InputError
from ctrgcn._types import F32Array
from ctrgcn.inputs import PREPROCESS, WINDOW, prepare
from ctrgcn.skeletons import GRAPHS

if TYPE_CHECKING:
    from ctrgcn.model import Model

# One frame of a stream: {person id: (V, C) joints}, one (V, C) array, (P, V, C) persons by position, or nobody.
Frame = Union[Mapping[Hashable, ArrayLike], ArrayLike, Sequence[ArrayLike], None]

SMOOTHING = (None, "mean", "ema")


@dataclass
class StreamPrediction:
    """One update: ``frame`` (0-based index of the window's last frame), ``probabilities`` (smoothed,
    float32 (K,)), ``window_probabilities`` (this window alone), ``index`` and ``label`` of the top
    class, ``top`` [(label, index, probability)] and the ``persons`` (ids) the window used."""
    frame: int
    probabilities: F32Array
    window_probabilities: F32Array
    index: int
    label: str
    top: List[Tuple[str, int, float]] = field(default_factory=list)
    persons: List[Hashable] = field(default_factory=list)


class Stream:
    """``Stream(model, window=64, stride=8, smoothing=None, ...)``; ``push(frame)`` returns a
    ``StreamPrediction`` whenever a window completes (every ``stride`` frames once ``window``
    frames have arrived), else None (also when nobody was seen in the window).

    A frame is a dict ``{person_id: (V, C) array}``, one ``(V, C)`` array (one person), a
    ``(P, V, C)`` array or list of ``(V, C)`` arrays (persons by position), or None / ``{}`` (nobody).
    ``smoothing``: None, "mean" (of the last ``smooth_windows`` windows' probabilities) or "ema"
    (``p = alpha * new + (1 - alpha) * p``). ``center``: a joint whose position in the window's first
    frame (of its first person) is subtracted from every present joint, as NTU's preparation
    translates a sample; "auto" uses the spine (joint 1) for ``ntu`` models and nothing otherwise
    (NW-UCLA models centre in their own preprocessing). ``modality``: the stream the model takes;
    ``frames``: the model's input length under the "crop" preprocessing (64); ``preprocess``: "auto",
    "nwucla" or "crop" (``ctrgcn/inputs.py``)."""

    def __init__(self, model: Model, window: int = 64, stride: int = 8, smoothing: Optional[str] = None,
                 smooth_windows: int = 4, alpha: float = 0.5, modality: str = "joint",
                 center: Union[int, str, None] = "auto", top_k: int = 5, frames: int = WINDOW,
                 preprocess: str = "auto") -> None:
        if int(window) < 1 or int(stride) < 1:
            raise InputError(f"window and stride must be >= 1, got {window} and {stride}")
        if smoothing not in SMOOTHING:
            raise InputError(f"smoothing must be one of {SMOOTHING}, got {smoothing!r}")
        if preprocess not in PREPROCESS:
            raise InputError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
        if int(smooth_windows) < 1 or not 0 < float(alpha) <= 1:
            raise InputError(f"smooth_windows must be >= 1 and alpha in (0, 1], got {smooth_windows} and {alpha}")
        self.model, self.window, self.stride = model, int(window), int(stride)
        self.smoothing, self.alpha, self.modality, self.top_k = smoothing, float(alpha), modality, int(top_k)
        self.frames, self.preprocess = int(frames), preprocess
        self.V, self.C, self.M = model.num_joints, model.in_channels, model.num_person
        if center == "auto":
            center = 1 if model.spec["graph"] == "ntu" else None
        if center is not None and not 0 <= int(center) < self.V:
            raise InputError(f"center must be a joint in 0..{self.V - 1}, got {center}")
        self.center = None if center is None else int(center)
        g = GRAPHS.get(model.spec["graph"])
        self._coords = 2 if g is not None and g.planar else min(3, self.C)  # a confidence channel is no position
        self._recent: Deque[F32Array] = deque(maxlen=int(smooth_windows))
        self.reset()

    def reset(self) -> None:
        """Forget every frame and the smoothing state."""
        self._frames: Deque[Dict[Hashable, F32Array]] = deque(maxlen=self.window)
        self._count = 0
        self._recent.clear()
        self._ema: Optional[F32Array] = None

    @property
    def frames_seen(self) -> int:
        """Frames pushed since the stream began (or was reset)."""
        return self._count

    def _persons(self, frame: Frame) -> Dict[Hashable, F32Array]:
        """A frame -> {id: (V, C) float32}."""
        if frame is None:
            return {}
        items: Iterable[Tuple[Hashable, Any]]
        if isinstance(frame, dict):
            items = frame.items()
        else:
            arr = np.asarray(frame, dtype=np.float32)
            if arr.ndim == 2:
                arr = arr[None]
            if arr.ndim != 3:
                raise InputError(f"frame: expected (V, C), (P, V, C) or {{id: (V, C)}}, got shape {arr.shape}")
            items = enumerate(arr)
        out: Dict[Hashable, F32Array] = {}
        for pid, joints in items:
            j = np.asarray(joints, dtype=np.float32)
            if j.shape != (self.V, self.C):
                raise InputError(f"frame {self._count}, person {pid!r}: expected ({self.V}, {self.C}) joints, "
                                 f"got shape {j.shape}")
            if not np.isfinite(j).all():
                raise InputError(f"frame {self._count}, person {pid!r}: non-finite coordinates")
            out[pid] = j
        return out

    def push(self, frame: Frame) -> Optional[StreamPrediction]:
        """Add one frame; a ``StreamPrediction`` when a window completes, else None."""
        self._frames.append(self._persons(frame))
        self._count += 1
        if self._count < self.window or (self._count - self.window) % self.stride:
            return None
        clip, persons = self._clip()
        if clip is None:
            return None
        x = prepare(self.model, clip, self.modality, self.frames, self.preprocess)
        p = self.model.predict_proba(x[None])[0]
        return self._emit(p, persons)

    def _clip(self) -> Tuple[Optional[F32Array], List[Hashable]]:
        """(window, M, V, C) of the persons seen in the most frames, and their ids."""
        seen: Dict[Hashable, Tuple[int, int]] = {}
        for t, f in enumerate(self._frames):
            for pid in f:
                first, n = seen.get(pid, (t, 0))
                seen[pid] = (first, n + 1)
        if not seen:
            return None, []
        chosen = sorted(seen, key=lambda pid: (-seen[pid][1], seen[pid][0]))[: self.M]
        T = len(self._frames)
        clip = np.zeros((T, self.M, self.V, self.C), np.float32)
        for m, pid in enumerate(chosen):
            present = [t for t, f in enumerate(self._frames) if pid in f]
            last = None
            for t in range(present[0], present[-1] + 1):
                last = self._frames[t].get(pid, last)  # a dropout keeps the last pose seen
                clip[t, m] = last
        if self.center is not None:
            t0 = next(t for t, f in enumerate(self._frames) if chosen[0] in f)
            k = self._coords
            origin = clip[t0, 0, self.center, :k].copy()
            for m in range(len(chosen)):
                alive = np.abs(clip[:, m]).sum(axis=(1, 2)) > 0
                clip[alive, m, :, :k] -= origin
        return clip, chosen

    def _emit(self, p: F32Array, persons: List[Hashable]) -> StreamPrediction:
        if self.smoothing == "mean":
            self._recent.append(p)
            smooth = np.mean(self._recent, axis=0)
        elif self.smoothing == "ema":
            self._ema = p if self._ema is None else self.alpha * p + (1 - self.alpha) * self._ema
            smooth = self._ema
        else:
            smooth = p
        smooth = np.asarray(smooth, np.float32)
        order = np.argsort(-smooth, kind="stable")[: max(1, self.top_k)]
        top = [(self.model.class_name(i), int(i), float(smooth[i])) for i in order]
        return StreamPrediction(frame=self._count - 1, probabilities=smooth, window_probabilities=p,
                                index=int(order[0]), label=top[0][0], top=top, persons=list(persons))

"""Where the time goes: every backend op of a forward or a training step, timed in C.

``Model.profile(x)`` (eval) and ``Trainer.profile(x, targets)`` (training steps) run a few warm-up
calls, then ``steps`` calls with the session timing each backend op (syncing the device around it,
so a GPU's queued work is charged to the op that queued it), and return an ``OpProfile``: per op,
calls and seconds per step, beside the step's wall time measured without the timers.

    python -m ctrgcn profile --variant CTRGCN --shape nwucla --batch 16 [--eval] [--device cuda]
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, List, Tuple

import numpy as np

from ctrgcn._core import InputError, Session


@dataclass
class OpProfile:
    """``rows``: (op, calls per step, seconds per step), slowest first; ``step_seconds``: the median
    wall time of a call without the timers; ``timed_seconds``: the mean wall time with them."""
    rows: List[Tuple[str, float, float]] = field(default_factory=list)
    step_seconds: float = 0.0
    timed_seconds: float = 0.0
    what: str = ""

    @property
    def op_seconds(self) -> float:
        """Sum of the ops' seconds per step (thread-seconds where eval lanes ran ops at once)."""
        return float(sum(r[2] for r in self.rows))

    def table(self, top: int = 0) -> str:
        """A text table: op, calls, ms per step, share of the ops' total."""
        total = self.op_seconds or 1.0
        lines = [f"{self.what}: {self.step_seconds * 1e3:.2f} ms per step untimed, "
                 f"{self.timed_seconds * 1e3:.2f} ms timed, ops {self.op_seconds * 1e3:.2f} ms",
                 f"  {'op':<22} {'calls':>6} {'ms':>9} {'share':>7}"]
        for op, calls, sec in self.rows[:top or None]:
            lines.append(f"  {op:<22} {calls:>6g} {sec * 1e3:>9.3f} {sec / total:>6.1%}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def run_profile(sess: Session, call: Callable[[], object], steps: int, warmup: int, what: str) -> OpProfile:
    """Time ``call`` (which runs on ``sess``) untimed, then with the op timers on."""
    if steps < 1 or warmup < 0:
        raise InputError(f"steps must be >= 1 and warmup >= 0, got {steps}, {warmup}")
    for _ in range(max(warmup, 1)):  # the first call plans memory
        call()
    wall = []
    for _ in range(steps):
        t0 = time.perf_counter()
        call()
        wall.append(time.perf_counter() - t0)
    sess.profile(True)
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            call()
        timed = (time.perf_counter() - t0) / steps
        raw = sess.profile_read()
    finally:
        sess.profile(False)
    rows = sorted(((op, calls / steps, sec / steps) for op, calls, sec in raw), key=lambda r: -r[2])
    return OpProfile(rows, float(np.median(wall)), timed, what)

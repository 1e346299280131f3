"""``python -m ctrgcn profile``: where the time of a forward or a training step goes, op by op.

Random weights and inputs at NW-UCLA shapes (3 x 52 frames x 20 joints x 1 person, 10 classes,
the training recipe's batch 16) or NTU shapes (3 x 64 x 25 x 2, 60 classes), or a weight file."""
from __future__ import annotations

import argparse
from typing import NamedTuple, Optional, Sequence

import numpy as np

import ctrgcn
from ctrgcn.training.losses import soft_targets



class Shape(NamedTuple):
    graph: str
    num_person: int
    num_classes: int
    frames: int


SHAPES = {"nwucla": Shape("ucla", 1, 10, 52), "ntu": Shape("ntu", 2, 60, 64)}


def main(argv: Optional[Sequence[str]]) -> int:
    """Print each variant's table; the exit status (0)."""
    ap = argparse.ArgumentParser(prog="python -m ctrgcn profile", description=__doc__)
    ap.add_argument("--variants", nargs="+", default=["CTRGCN"], choices=ctrgcn.VARIANTS)
    ap.add_argument("--weights", default=None, help="a weight file or shipped model instead of random weights")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="nwucla")
    ap.add_argument("--batch", type=int, default=None, help="default: 16 for training, 1 for --eval")
    ap.add_argument("--eval", action="store_true", help="the eval forward instead of training steps")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--top", type=int, default=0, help="only the slowest N ops")
    args = ap.parse_args(argv)
    shape = SHAPES[args.shape]
    batch = args.batch or (1 if args.eval else 16)
    rng = np.random.default_rng(0)
    models = ([ctrgcn.load(args.weights)] if args.weights else
              [ctrgcn.Model(v, num_classes=shape.num_classes, graph=shape.graph, num_person=shape.num_person)
               for v in args.variants])
    for model in models:
        model.set_threads(args.threads)
        model.to(args.device)
        x = rng.standard_normal((batch, model.in_channels, shape.frames, model.num_joints, model.num_person),
                                dtype=np.float32)
        if args.eval:
            prof = model.profile(x, steps=args.steps)
        else:
            y = soft_targets(rng.integers(0, model.num_classes, batch), model.num_classes)
            prof = model.trainer(threads=args.threads).profile(x, y, lr=0.01, steps=args.steps)
        print(prof.table(args.top), flush=True)
    return 0

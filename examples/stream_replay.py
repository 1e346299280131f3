"""Replay a recorded skeleton sample as a live stream and print the running predictions.

    python examples/stream_replay.py RECORDING [--weights W] [--window 64] [--stride 8]
                                     [--smoothing ema] [--fps 30]

RECORDING: an NTU RGB+D ``.skeleton`` file (each body keeps the id the Kinect gave it; bodies appear
and vanish as in the file), an NW-UCLA ``.json`` (one person), or a ``.npy`` of (T, V, C) or
(T, M, V, C) joints. Frames are pushed one at a time into ``ctrgcn.Stream``, as a pose estimator
would deliver them; ``--fps`` paces them in real time (0: as fast as possible). Without ``--weights``
the shipped NW-UCLA model is used (for NW-UCLA recordings)."""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

import ctrgcn
from ctrgcn.zoo import DEFAULT_MODEL


def frames_of(path):
    """Yield one frame at a time: a dict {person id: (V, C) joints}."""
    path = Path(path)
    if path.suffix == ".skeleton":
        from ctrgcn.data import read_skeleton
        sk = read_skeleton(path)
        where = [{int(f): i for i, f in enumerate(b.frames)} for b in sk.bodies]
        for t in range(sk.num_frames):
            yield {b.id: b.joints[w[t]] for b, w in zip(sk.bodies, where) if t in w}
    elif path.suffix == ".json":
        from ctrgcn.data.ucla import load_sequence
        seq, _ = load_sequence(path)
        for joints in seq.astype(np.float32):
            yield {0: joints}
    else:
        arr = np.load(path, allow_pickle=False)
        arr = arr[:, None] if arr.ndim == 3 else arr
        for frame in arr.astype(np.float32):
            yield {m: frame[m] for m in range(len(frame)) if np.any(frame[m])}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recording")
    ap.add_argument("--weights", help=f"a weight file or a shipped model's name (default {DEFAULT_MODEL})")
    ap.add_argument("--window", type=int, default=None, help="frames per window (default: 52 NW-UCLA, 64 else)")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--smoothing", choices=("none", "mean", "ema"), default="ema")
    ap.add_argument("--fps", type=float, default=0.0, help="replay speed in frames per second (0: no pacing)")
    args = ap.parse_args(argv)
    try:
        weights = args.weights or DEFAULT_MODEL
        if weights in ctrgcn.pretrained():
            model = ctrgcn.pretrained(weights)
        elif args.weights:
            model = ctrgcn.load(weights)
        else:
            raise ctrgcn.InputError(f"the shipped model {DEFAULT_MODEL} is not in this build: pass --weights FILE")
        window = args.window or (52 if model.spec["graph"] == "ucla" else 64)
        stream = ctrgcn.Stream(model, window=window, stride=args.stride,
                               smoothing=None if args.smoothing == "none" else args.smoothing)
        start = time.perf_counter()
        for t, frame in enumerate(frames_of(args.recording)):
            if args.fps > 0:
                time.sleep(max(0.0, start + t / args.fps - time.perf_counter()))
            tick = time.perf_counter()
            pred = stream.push(frame)
            if pred is not None:
                ms = (time.perf_counter() - tick) * 1e3
                second = f", then {pred.top[1][0]} {pred.top[1][2]:.0%}" if len(pred.top) > 1 else ""
                print(f"frame {pred.frame:4d}  {pred.label} {pred.top[0][2]:.0%}{second}  "
                      f"({len(pred.persons)} person{'s' if len(pred.persons) != 1 else ''}, {ms:.1f} ms)")
        if stream.frames_seen < window:
            print(f"{stream.frames_seen} frames: fewer than one window of {window}", file=sys.stderr)
    except ctrgcn.Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

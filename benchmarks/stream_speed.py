"""Streaming speed: updates per second and latency per update of ``ctrgcn.Stream``.

    python benchmarks/stream_speed.py [--variants CTRGCN,CTRGCN_lightV2] [--updates 30] [--threads N]
                                      [--log benchmarks/results/stream_speed.txt | --no-log]

At NTU shapes (25 joints, 2 persons, a 64-frame window resampled to 64 frames) and NW-UCLA shapes
(20 joints, 1 person, a 52-frame window resampled to 52 frames by the NW-UCLA preprocessing), stride 8,
EMA smoothing. Frames are random joints (speed does not depend on the values); one person vanishes for
a stretch and reappears, so the person tracking is exercised. An update is the ``push`` that completes a
window: tracking, preprocessing, one forward at batch 1 and smoothing. Reported: updates per second
(1 / median update latency), median and p90 latency per update, the forward alone at batch 1 on the
same shape (measured in the same run), the stream's own work per update (person tracking and the
model's preprocessing, timed alone) and the mean cost of the other pushes. The line above the table gives
the machine's load average: updates are one forward each, so their latency follows the load.
"""
import argparse
import os
import platform
import time

import numpy as np

import ctrgcn
from ctrgcn.inputs import prepare

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {"NTU": dict(graph="ntu", V=25, M=2, window=64, classes=60),
          "NW-UCLA": dict(graph="ucla", V=20, M=1, window=52, classes=10)}


def frames(V, M, n, rng):
    for t in range(n):
        frame = {}
        for m in range(M):
            if m == 1 and 100 <= t % 160 < 110:
                continue  # the second person leaves for ten frames
            frame[f"person{m}"] = rng.standard_normal((V, 3)).astype(np.float32)
        yield frame


def measure(variant, shape, updates, threads, stride=8):
    model = ctrgcn.Model(variant, num_classes=shape["classes"], graph=shape["graph"], num_person=shape["M"])
    model.set_threads(threads)
    stream = ctrgcn.Stream(model, window=shape["window"], stride=stride, smoothing="ema")
    rng = np.random.default_rng(0)
    n = shape["window"] + stride * (updates + 2)
    update_ms, other_ms = [], []
    for frame in frames(shape["V"], shape["M"], n, rng):
        t = time.perf_counter()
        out = stream.push(frame)
        ms = (time.perf_counter() - t) * 1e3
        (update_ms if out is not None else other_ms).append(ms)
    update_ms = np.array(update_ms[2:])  # the first updates plan memory
    med = float(np.median(update_ms))
    # the forward alone on the same input shape, interleaved in the same run: what the stream adds is the rest
    x = np.random.default_rng(1).standard_normal((1, 3, shape["window"], shape["V"], shape["M"])).astype(np.float32)
    forward_ms = []
    for _ in range(len(update_ms)):
        t = time.perf_counter()
        model(x)
        forward_ms.append((time.perf_counter() - t) * 1e3)
    # what the stream itself does per update: person tracking and the model's preprocessing
    own_ms = []
    for _ in range(len(update_ms)):
        t = time.perf_counter()
        clip, _ = stream._clip()
        prepare(model, clip)
        own_ms.append((time.perf_counter() - t) * 1e3)
    return dict(updates_per_s=1e3 / med, median_ms=med, p90_ms=float(np.percentile(update_ms, 90)),
                forward_ms=float(np.median(forward_ms)), own_ms=float(np.median(own_ms)), other_push_ms=float(np.mean(other_ms)),
                updates=len(update_ms))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="CTRGCN,CTRGCN_lightV2")
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="threads per forward (0: all cores)")
    ap.add_argument("--log", default=os.path.join(HERE, "results", "stream_speed.txt"))
    ap.add_argument("--no-log", action="store_true")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [f"# stream_speed {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | {platform.processor() or platform.machine()}"
             f" | {os.cpu_count()} cores, load average {load:.1f} | threads {args.threads or 'all'} | stride 8, EMA smoothing",
             "| shape | variant | window -> frames | updates/s | median ms / update | p90 ms | forward alone ms |"
             " tracking + preprocessing ms | other push ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    print("\n".join(lines), flush=True)
    for shape_name, shape in SHAPES.items():
        for variant in args.variants.split(","):
            r = measure(variant, shape, args.updates, args.threads)
            line = (f"| {shape_name} | {variant} | {shape['window']} -> {shape['window']} | {r['updates_per_s']:.1f} | "
                    f"{r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['forward_ms']:.1f} | {r['own_ms']:.3f} | "
                    f"{r['other_push_ms']:.3f} |")
            print(line, flush=True)
            lines.append(line)
    if not args.no_log:
        from _log import append_log
        append_log(args.log, lines)


if __name__ == "__main__":
    main()

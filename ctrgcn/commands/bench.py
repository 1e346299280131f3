"""``python -m ctrgcn bench``: the seed's size / speed table for the four variants on this machine."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Optional, Sequence

import ctrgcn


def main(argv: Optional[Sequence[str]]) -> int:
    """Print the table; the exit status (0)."""
    ap = argparse.ArgumentParser(prog="python -m ctrgcn bench", description=__doc__)
    ap.add_argument("--variants", nargs="+", default=list(ctrgcn.VARIANTS), choices=ctrgcn.VARIANTS)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per row (default: 10 at batch 1, 3 above)")
    args = ap.parse_args(argv)

    cores = os.cpu_count()
    print(f"ctrgcn {ctrgcn.__version__}: NTU shapes (C=3, T={args.frames}, V=25, M=2, 60 classes), "
          f"{args.threads or cores} thread(s) of {cores} cores, random weights", flush=True)
    head = f"{'variant':<16} {'params':>9} {'file MB':>8}"
    for b in args.batches:
        head += f" {'b' + str(b) + ' ms':>10} {'b' + str(b) + ' p90':>9} {'b' + str(b) + ' smp/s':>11}"
    print(head)
    print("-" * len(head))
    for variant in args.variants:
        model = ctrgcn.Model(variant, num_classes=60, graph="ntu", num_person=2)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.ctrgcn")
            model.save(path)
            size_mb = os.path.getsize(path) / 1e6
        row = f"{variant:<16} {model.num_parameters() / 1e6:>8.3f}M {size_mb:>8.2f}"
        for b in args.batches:
            repeats = args.repeats or (10 if b == 1 else 3)
            r = ctrgcn.benchmark(model, batch_size=b, frames=args.frames, repeats=repeats,
                                 warmup=1 if b > 8 else 2, threads=args.threads)
            row += f" {r['median_ms']:>10.1f} {r['p90_ms']:>9.1f} {r['samples_per_s']:>11.1f}"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

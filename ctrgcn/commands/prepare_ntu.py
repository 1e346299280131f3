"""python -m ctrgcn prepare-ntu SKELETON_DIR OUT_DIR [--benchmark ntu60|ntu120] [--workers N]"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import IO, Optional, Sequence


class ProgressBar:
    """A one-line bar on stderr, redrawn at most ten times a second."""

    def __init__(self, stream: IO[str] = sys.stderr, width: int = 30) -> None:
        self.stream, self.width, self.start, self.last = stream, width, time.perf_counter(), 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        filled = self.width * done // max(total, 1)
        rate = done / max(now - self.start, 1e-9)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} files {rate:8.1f} files/s")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


def main(argv: Optional[Sequence[str]]) -> int:
    """Prepare as the arguments say and print the summary; the exit status (1 when every file failed)."""
    parser = argparse.ArgumentParser(prog="python -m ctrgcn prepare-ntu",
                                     description="NTU RGB+D raw .skeleton files -> PaddleVideo / CTR-GCN arrays, "
                                                 "as the reference preparation scripts make them")
    parser.add_argument("skeleton_dir", help="folder of .skeleton files")
    parser.add_argument("out_dir", help="output folder")
    parser.add_argument("--benchmark", choices=("ntu60", "ntu120"), default="ntu60")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel files (default: CPUs)")
    parser.add_argument("--max-frames", type=int, default=300, help="pad (or cut) every sample to this length")
    parser.add_argument("--ignore", help="file of sample names to leave out (samples_with_missing_skeletons.txt)")
    parser.add_argument("--no-npz", action="store_true", help="write only PaddleVideo's layout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from ctrgcn.data import prepare_ntu
    summary = prepare_ntu(args.skeleton_dir, args.out_dir, benchmark=args.benchmark, workers=args.workers,
                          max_frames=args.max_frames, npz=not args.no_npz, ignore=args.ignore,
                          progress=None if args.quiet else ProgressBar())
    splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
    print(f"{summary['prepared']} of {summary['files']} files prepared ({len(summary['failed'])} failed, "
          f"{summary['skipped']} skipped) in {summary['seconds']:.2f} s: {summary['files_per_second']:.1f} files/s "
          f"with {args.workers} workers; {splits}; log: {os.path.join(args.out_dir, 'prepare_ntu.log')}")
    return 1 if summary["failed"] and not summary["prepared"] else 0

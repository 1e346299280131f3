"""Data throughput: prepare-ntu files/s, and the batch loader against the model's step time.

    python benchmarks/bench_data.py [--shared ../shared] [--copies 40] [--workers N]

The five real .skeleton samples are linked under new names (another replication number) to give a
folder of 5 * copies files. The model step is estimated as 3 x the forward time of
CTRGCN (UCLA graph, one person) at batch 16, T = 52.
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import ctrgcn
from ctrgcn.data import Loader, NTUDataset, NWUCLA, prepare_ntu


def best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_prepare(samples, copies, workers):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "skeletons"
        src.mkdir()
        for p in sorted(samples.glob("*.skeleton")):
            for r in range(1, copies + 1):
                (src / (p.name[:13] + f"{r:03d}" + p.name[16:])).symlink_to(p)
        n = len(list(src.iterdir()))
        t = time.perf_counter()
        summary = prepare_ntu(src, Path(tmp) / "out", workers=workers)
        total = time.perf_counter() - t
        print(f"prepare-ntu: {n} files, {workers} workers: parse+denoise+translate {summary['files_per_second']:.0f} "
              f"files/s; whole command incl. writing {n / total:.0f} files/s")
        return Path(tmp), summary


def bench_loader(name, ds, batch_size, step_s):
    idx = np.arange(batch_size)
    t_batch = best(lambda: ds.batch(idx))
    ld = Loader(ds, batch_size, shuffle=True)
    t = time.perf_counter()
    n = sum(len(y) for _, y in ld)
    t_epoch = time.perf_counter() - t
    print(f"{name}: one batch of {batch_size} in {t_batch * 1e3:.2f} ms ({batch_size / t_batch:.0f} samples/s); "
          f"Loader epoch {n / t_epoch:.0f} samples/s; model step ~{step_s * 1e3:.0f} ms "
          f"({batch_size / step_s:.0f} samples/s) -> loader needs {100 * t_batch / step_s:.1f}% of a step")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    shared = Path(args.shared)
    print(f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    model = ctrgcn.Model("CTRGCN", num_classes=10, graph="ucla", num_person=1)
    x = np.random.default_rng(0).standard_normal((16, 3, 52, 20, 1)).astype(np.float32)
    model(x)
    step = 3 * best(lambda: model(x), repeat=3)

    ucla = shared / "data" / "nw-ucla" / "all_sqe"
    if ucla.is_dir():
        for modality in ("joint", "bone_motion"):
            bench_loader(f"NW-UCLA train {modality}", NWUCLA(ucla, "train", modality=modality), 16, step)
    samples = shared / "data" / "ntu" / "skeleton-samples"
    if samples.is_dir():
        for w in sorted({1, args.workers}):
            bench_prepare(samples, args.copies, w)
        with tempfile.TemporaryDirectory() as tmp:
            prepare_ntu(samples, tmp, workers=args.workers)
            ds = NTUDataset(Path(tmp) / "xsub", "train")
            big = NTUDataset.__new__(NTUDataset)
            big.__dict__.update(ds.__dict__)
            big.data = np.ascontiguousarray(np.repeat(ds.data, 22, axis=0))  # 66 samples
            big.labels = np.repeat(ds.labels, 22)
            bench_loader("NTU train joint (crop+resize+rotation, 2 persons, 64 frames)", big, 16, step)


if __name__ == "__main__":
    main()

"""ctrgcn against PyTorch eager (and ONNX Runtime when installed) on the same weights, the same
input and the same thread count, in one process. Prints latencies and the ratios.

    pip install torch==2.13.0 onnx onnxruntime
    python benchmarks/compare_cpu.py [--threads 2] [--batches 1 64] [--log benchmarks/results/compare_cpu.txt]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

import ctrgcn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _log import append_log  # noqa: E402


def timeit(fn, x, repeats, warmup):
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def torch_runner(model, threads):
    import torch
    from torch_family import Net
    torch.set_num_threads(threads)
    net = Net(model).eval()
    missing, unexpected = net.load_state_dict(
        {k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)

    def run(x):
        with torch.inference_mode():
            return net(torch.from_numpy(x)).numpy()
    return run, f"torch {torch.__version__}"


def onnx_runner(model, threads, tmp):
    from onnx_runner import make_onnx_runner
    import onnxruntime
    return make_onnx_runner(model, os.path.join(tmp, "model.onnx"), threads), f"onnxruntime {onnxruntime.__version__}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--variants", nargs="+", default=list(ctrgcn.VARIANTS))
    ap.add_argument("--log", default=None, help="also append the table to this file")
    args = ap.parse_args()

    lines = []

    def out(s=""):
        print(s, flush=True)
        lines.append(s)

    out(f"# {time.strftime('%Y-%m-%d %H:%M')} compare_cpu: NTU shapes (C=3, T={args.frames}, V=25, M=2), "
        f"{args.threads} thread(s), {os.cpu_count()} cores, median ms per batch")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            model = ctrgcn.Model(variant, num_classes=60, graph="ntu", num_person=2, seed=1)
            # non-trivial statistics so no path is numerically idle
            state = model.state_dict()
            for k, v in state.items():
                if k.endswith("running_var"):
                    state[k] = rng.uniform(0.5, 2.0, v.shape).astype(np.float32)
                elif k.endswith("alpha"):
                    state[k] = np.full(v.shape, 0.5, np.float32)
            model.load_state_dict(state)
            model.set_threads(args.threads)
            peers = []
            try:
                peers.append(torch_runner(model, args.threads))
            except ImportError as exc:
                out(f"(torch not available: {exc})")
            try:
                peers.append(onnx_runner(model, args.threads, tmp))
            except ImportError as exc:
                out(f"(onnxruntime not available: {exc})")
            for b in args.batches:
                x = rng.standard_normal((b, 3, args.frames, 25, 2), dtype=np.float32)
                ref = model(x)
                repeats, warmup = (10, 2) if b <= 4 else (3, 1)
                ours = timeit(model, x, repeats, warmup)
                row = f"{variant:<16} batch {b:>3}: ctrgcn {ours:8.1f} ms"
                for run, name in peers:
                    err = float(np.abs(run(x) - ref).max() / np.abs(ref).max())
                    theirs = timeit(run, x, repeats, warmup)
                    row += f" | {name} {theirs:8.1f} ms, ratio {theirs / ours:5.2f}x, rel.err {err:.1e}"
                out(row)
    append_log(args.log, lines)


if __name__ == "__main__":
    main()

"""Training throughput: ctrgcn against PyTorch eager on the same network, batch and threads, at
NW-UCLA shapes (batch 16, 3 x 52 frames x 20 joints x 1 person, 10 classes), one SGD step per
iteration (train-mode forward, cross-entropy, backward, Nesterov momentum + weight decay).

    pip install torch==2.13.0
    python benchmarks/compare_train.py [--threads 2] [--iters 5] [--log benchmarks/results/compare_train.txt]
"""
import argparse
import os
import sys
import time

import numpy as np

import ctrgcn
from ctrgcn import _core
from ctrgcn.training import soft_targets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _log import append_log  # noqa: E402


def ours_step(model, threads):
    trainer = model.trainer(momentum=0.9, weight_decay=1e-4, nesterov=True, threads=threads)

    def step(x, y, first):  # forward, loss, backward and SGD in one C call sequence
        return trainer.step(x, soft_targets(y, model.num_classes), 0.01)[0]
    return step


def torch_step(model, threads):
    import torch
    from torch_family import Net
    torch.set_num_threads(threads)
    net = Net(model).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)

    def step(x, y, first):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        return loss.item()
    return step, f"torch {torch.__version__}"


def timed(step, x, y, iters):
    step(x, y, True)  # warm-up (plans memory)
    t0 = time.perf_counter()
    losses = [step(x, y, False) for _ in range(iters)]
    return (time.perf_counter() - t0) / iters, losses


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=list(ctrgcn.VARIANTS))
    ap.add_argument("--log", default=None)
    args = ap.parse_args()
    lines = []

    def out(s):
        print(s, flush=True)
        lines.append(s)

    out(f"# {time.strftime('%Y-%m-%d %H:%M')} compare_train: NW-UCLA shapes, batch {args.batch}, "
        f"{args.threads} thread(s), {os.cpu_count()} cores, samples/s of full SGD steps")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 3, 52, 20, 1), dtype=np.float32)
    y = rng.integers(0, 10, args.batch)
    for variant in args.variants:
        model = ctrgcn.Model(variant, num_classes=10, graph="ucla", num_person=1, seed=1)
        model.set_threads(args.threads)
        try:
            step, name = torch_step(model, args.threads)  # built first: it copies the initial weights
        except ImportError as exc:
            step, name = None, f"torch unavailable ({exc})"
        t_ours, l_ours = timed(ours_step(model, args.threads), x, y, args.iters)
        row = f"{variant:<16} ctrgcn {args.batch / t_ours:7.1f} samples/s ({t_ours * 1e3:7.1f} ms/step)"
        if step:
            t_torch, l_torch = timed(step, x, y, args.iters)
            row += (f" | {name} {args.batch / t_torch:7.1f} samples/s ({t_torch * 1e3:7.1f} ms/step) | "
                    f"ratio {t_torch / t_ours:4.2f}x | first-step loss {l_ours[0]:.4f} vs {l_torch[0]:.4f}")
        out(row)
    append_log(args.log, lines)


if __name__ == "__main__":
    main()

"""Training throughput: ctrgcn against PyTorch eager on the same network, batch and threads, at
NW-UCLA shapes (batch 16, 3 x 52 frames x 20 joints x 1 person, 10 classes), one SGD step per
iteration (train-mode forward, cross-entropy, backward, Nesterov momentum + weight decay), both
warmed up and then timed in blocks taken in turn (``in_turn``).

    pip install torch==2.13.0
    python benchmarks/compare_train.py [--threads 2] [--rounds 3] [--log benchmarks/results/compare_train.txt]
"""
import argparse
import os
import sys
import time

import numpy as np

import ctrgcn
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


def in_turn(steps, x, y, warmup=3, rounds=3, per_block=3):
    """Seconds per step of each of ``steps`` [(name, step)] in steady state, and each one's first
    loss: ``warmup`` steps each (the first plans memory; PyTorch's allocator keeps speeding up over
    its first few), then ``rounds`` rounds of a block of ``per_block`` steps per contender in turn,
    the median of the blocks. In turn, not one after the other: the machine's speed drifts, and
    measured one after the other (5 steps each) PyTorch read 10-15% slower than in steady state."""
    first, blocks = {}, {name: [] for name, _ in steps}
    for name, step in steps:
        first[name] = step(x, y, True)
        for _ in range(warmup - 1):
            step(x, y, False)
    for _ in range(rounds):
        for name, step in steps:
            t0 = time.perf_counter()
            for _ in range(per_block):
                step(x, y, False)
            blocks[name].append((time.perf_counter() - t0) / per_block)
    return {name: float(np.median(b)) for name, b in blocks.items()}, first


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="blocks per contender, taken in turn")
    ap.add_argument("--per-block", type=int, default=3, help="steps per block")
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
        contenders = [("ctrgcn", ours_step(model, args.threads))] + ([("torch", step)] if step else [])
        t, loss = in_turn(contenders, x, y, rounds=args.rounds, per_block=args.per_block)
        row = f"{variant:<16} ctrgcn {args.batch / t['ctrgcn']:7.1f} samples/s ({t['ctrgcn'] * 1e3:7.1f} ms/step)"
        if step:
            row += (f" | {name} {args.batch / t['torch']:7.1f} samples/s ({t['torch'] * 1e3:7.1f} ms/step) | "
                    f"ratio {t['torch'] / t['ctrgcn']:4.2f}x | first-step loss {loss['ctrgcn']:.4f} vs {loss['torch']:.4f}")
        out(row)
    append_log(args.log, lines)


if __name__ == "__main__":
    main()

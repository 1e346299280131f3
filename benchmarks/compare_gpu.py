"""ctrgcn's CUDA backend against PyTorch eager on the same GPU, the same weights and the same data.

    python benchmarks/compare_gpu.py [--variants CTRGCN ...] [--quick] [--log benchmarks/results/compare_gpu.txt]

Eval at NTU shapes (3 x 64 frames x 25 joints x 2 persons, 60 classes): batch-1 latency (median
of many calls) and batch-256 throughput. Training at NW-UCLA shapes (batch 16, 52 frames, 20
joints, 1 person, 10 classes) and NTU shapes (batch 64): samples/s of full SGD steps (train-mode
forward, cross-entropy, backward, Nesterov momentum with weight decay). Both sides take NumPy in
and hand NumPy out, so the host-device copies are in both timings. PyTorch runs
``benchmarks/torch_family.py`` (the same network, the same state dict), float32 without TF32.
Goals (H100 / H200): CTRGCN batch 1 <= 0.5 ms; batch 256 >= 2x PyTorch; training >= 2x PyTorch;
the full NW-UCLA protocol (65 epochs x 5,100 samples, CTRGCN) in <= 5 minutes.
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


def median_time(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def torch_eval(model, torch):
    from torch_family import Net
    net = Net(model).cuda().eval()

    @torch.no_grad()
    def run(x):
        return net(torch.from_numpy(x).cuda()).cpu().numpy()  # .cpu() waits for the GPU
    return run


def torch_train(model, torch, lr=0.01):
    from torch_family import Net
    net = Net(model).cuda().train()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x).cuda()), torch.from_numpy(y).cuda())
        loss.backward()
        opt.step()
        return loss.item()
    return step


def ours_train(model, lr=0.01):
    tr = model.trainer(momentum=0.9, weight_decay=1e-4, nesterov=True, device="cuda")

    def step(x, y):
        return tr.step(x, soft_targets(y, model.num_classes), lr)[0]
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(ctrgcn.VARIANTS))
    ap.add_argument("--quick", action="store_true", help="few repeats (a smoke test)")
    ap.add_argument("--log", default=None)
    args = ap.parse_args()
    if not ctrgcn.cuda.is_available():
        raise SystemExit(f"no CUDA device: {ctrgcn.cuda.reason()}")
    try:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        have_torch = torch.cuda.is_available()
    except ImportError:
        torch, have_torch = None, False
    rep1, rep256, steps = (20, 3, 3) if args.quick else (200, 10, 10)
    lines = []

    def out(s):
        print(s, flush=True)
        lines.append(s)

    gpu = torch.cuda.get_device_name(0) if have_torch else "GPU"
    out(f"# {time.strftime('%Y-%m-%d %H:%M')} compare_gpu on {gpu}: ctrgcn CUDA backend vs "
        f"{'PyTorch ' + torch.__version__ + ' eager' if have_torch else 'no PyTorch'}; NumPy in and out on both sides")
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((1, 3, 64, 25, 2), dtype=np.float32)
    x256 = rng.standard_normal((256, 3, 64, 25, 2), dtype=np.float32)
    goals = []
    for variant in args.variants:
        model = ctrgcn.Model(variant, num_classes=60, seed=1)
        peer = torch_eval(model, torch) if have_torch else None
        model.to("cuda")
        t1 = median_time(lambda: model(x1), rep1)
        t256 = median_time(lambda: model(x256), rep256, warmup=1)
        row = f"eval  {variant:<15} batch 1 {t1 * 1e3:7.3f} ms | batch 256 {256 / t256:8.0f} samples/s"
        if peer:
            p1 = median_time(lambda: peer(x1), rep1)
            p256 = median_time(lambda: peer(x256), rep256, warmup=1)
            diff = np.abs(model(x1) - peer(x1)).max() / np.abs(peer(x1)).max()
            row += (f" || torch batch 1 {p1 * 1e3:7.3f} ms ({p1 / t1:4.2f}x) | batch 256 {256 / p256:8.0f} samples/s "
                    f"({p256 / t256:4.2f}x) | logits differ by {diff:.1e} of their scale")
            if variant == "CTRGCN":
                goals.append(("CTRGCN eval batch 256 >= 2x PyTorch eager", p256 / t256 >= 2.0, f"{p256 / t256:.2f}x"))
        if variant == "CTRGCN":
            goals.append(("CTRGCN eval batch 1 <= 0.5 ms", t1 <= 0.5e-3, f"{t1 * 1e3:.3f} ms"))
        out(row)
    shapes = {"NW-UCLA": ((16, 3, 52, 20, 1), 10, "ucla", 1), "NTU": ((64, 3, 64, 25, 2), 60, "ntu", 2)}
    for name, (shape, K, graph, M) in shapes.items():
        x = rng.standard_normal(shape, dtype=np.float32)
        y = rng.integers(0, K, shape[0])
        for variant in args.variants:
            model = ctrgcn.Model(variant, num_classes=K, graph=graph, num_person=M, seed=1)
            peer = torch_train(model, torch) if have_torch else None
            ours = ours_train(model)
            t = median_time(lambda: ours(x, y), steps, warmup=2)
            row = f"train {name:<8} {variant:<15} batch {shape[0]:3d} {shape[0] / t:8.1f} samples/s"
            if peer:
                p = median_time(lambda: peer(x, y), steps, warmup=2)
                row += f" || torch {shape[0] / p:8.1f} samples/s | ratio {p / t:4.2f}x"
                if variant == "CTRGCN":
                    goals.append((f"CTRGCN training at {name} shapes >= 2x PyTorch eager", p / t >= 2.0,
                                  f"{p / t:.2f}x"))
            if name == "NW-UCLA" and variant == "CTRGCN":
                minutes = 65 * 5100 / (shape[0] / t) / 60
                row += f" | NW-UCLA protocol (65 x 5,100 samples, steps only) ~{minutes:.1f} min"
                goals.append(("NW-UCLA protocol <= 5 min (training steps only)", minutes <= 5.0, f"{minutes:.1f} min"))
            out(row)
    for what, ok, value in goals:
        out(f"{'PASS' if ok else 'MISS'}  {what}: {value}")
    append_log(args.log, lines)


if __name__ == "__main__":
    main()

"""A few small CUDA passes of every variant (eval, a probed eval, two training steps), each checked
against the CPU: small enough to run under compute-sanitizer (benchmarks/gpu_check.sh does)."""
import numpy as np

import ctrgcn
from ctrgcn.training import soft_targets


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 12, 25, 2)).astype(np.float32)
    t = soft_targets([1, 4], 60, 0.1)
    worst = 0.0
    for variant in ctrgcn.VARIANTS:
        cpu = ctrgcn.Model(variant, seed=1)
        gpu = ctrgcn.Model(variant, seed=1, device="cuda")
        want = cpu(x)
        for got in (gpu(x), gpu(x), gpu(x), gpu.forward_block(x, 5)[0]):
            worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
        a, b = cpu.trainer(), gpu.trainer()
        for _ in range(2):
            la, _ = a.step(x, t, 0.01)
            lb, _ = b.step(x, t, 0.01)
            worst = max(worst, abs(la - lb) / abs(la))
        print(f"{variant}: ok", flush=True)
    print(f"largest relative difference from the CPU: {worst:.2e}")
    if not worst < 1e-4:
        raise SystemExit("CUDA and CPU disagree")


if __name__ == "__main__":
    main()

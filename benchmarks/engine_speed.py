"""How fast the engine is against the machine's own ceiling and against its peers, in one process.

Speed is quoted as a fraction of the fp32 FMA peak measured in the same run (a register-only AVX2
loop, benchmarks/fma_peak.c, built here with the system gcc and measured at the start and at the
end), and as ratios against peers run side by side on the same weights, input and thread count:

  1. FMA peak, 1 thread and all cores (best of several ~0.3 s runs), at the start and at the end
  2. eval at NTU shapes (3 x 64 frames x 25 joints x 2 persons, 60 classes), batch 1 and 64
  3. one person at batch 1 (NW-UCLA shapes, 3 x 52 x 20 x 1): 1 thread against all cores
  4. training at NW-UCLA shapes, batch 16, every variant: full SGD steps (model.trainer) against
     PyTorch eager
  5. ONNX Runtime at NTU shapes, batch 1 and 64: ctrgcn's own export, and torch.onnx.export of the
     PyTorch network (torch_family.py, CTR-GC aggregation with torch.einsum as the official code)
  6. one model called from two Python threads at batch 1 against one thread making the same calls

Peaks are measured twice over: the AVX2 loop (the unit of the goals) and, where the CPU has it, the
AVX-512 loop (on cores with full-width 512-bit units, such as AMD Zen 5, twice the AVX2 ceiling). The
run unsets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when the environment pins OpenBLAS's kernels (a user's
machine has no such pin) and names the kernels that ran; --keep-blas-env keeps the pin.

FLOPs per sample come from ../shared/docs/performance-notes.md (multiply-adds x 2); they are linear
in T*V*M, so NW-UCLA shapes scale them by (52*20*1)/(64*25*2); training counts 3x the forward.
Each number gets a PASS/MISS against its goal. Run it on a quiet machine: two processes on the same
cores halve each other and make every number here meaningless.

    pip install torch==2.13.0 onnx onnxruntime
    python benchmarks/engine_speed.py            # full: about 2 minutes on 2 quiet cores
    python benchmarks/engine_speed.py --quick    # smoke test: few repeats, CTRGCN only, no log
"""
import argparse
import ctypes
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

import ctrgcn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _log import append_log  # noqa: E402
from compare_cpu import timeit  # noqa: E402
import compare_train  # noqa: E402
from onnx_runner import make_onnx_runner  # noqa: E402

# GFLOP per NTU sample (3 x 64 x 25 x 2), eval forward; performance-notes.md
NTU_GFLOP = {"CTRGCN": 3.88, "CTRGCN_light": 2.32, "CTRGCN_lightV1": 3.30, "CTRGCN_lightV2": 2.84}
NTU_SHAPE = (3, 64, 25, 2)
UCLA_SHAPE = (3, 52, 20, 1)
TRAIN_FLOP_FACTOR = 3.0
GOALS = {
    "eval_b1": 0.65,          # fraction of the all-core peak
    "eval_b64": 0.75,
    "ucla_speedup": 1.6,      # all cores / 1 thread, one person at batch 1
    "train_frac": 0.55,       # fraction of the all-core peak
    "train_vs_torch": 2.5,    # ctrgcn samples/s / PyTorch eager samples/s
    "ort_b1": 1.5,            # ONNX Runtime time / ctrgcn time
    "ort_b64": 2.5,
    "two_threads": 1.0,       # total batch-1 throughput of two Python threads on one model / one thread
    "agree": 1e-4,            # max |ort - ctrgcn| / max |ctrgcn|
}


def gflop_per_sample(variant, shape):
    C, T, V, M = shape
    return NTU_GFLOP[variant] * (T * V * M) / (NTU_SHAPE[1] * NTU_SHAPE[2] * NTU_SHAPE[3])


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# ---------------------------------------------------------------- OpenBLAS's kernel choice
# Some machines pin OpenBLAS to older kernels through the environment (OPENBLAS_CORETYPE=Haswell with
# OPENBLAS_L2_SIZE), for old OpenBLAS builds that miscompute on newer CPUs. A user's machine has no such
# pin, so the benchmark runs without it (re-executing itself with both unset, together) and says which
# kernels ran; --keep-blas-env measures the pinned setting instead. Tests and CI never change it.
BLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def unpin_blas(keep):
    if keep or not any(k in os.environ for k in BLAS_PINS):
        return
    env = {k: v for k, v in os.environ.items() if k not in BLAS_PINS}
    env["CTRGCN_BENCH_UNPINNED"] = " ".join(f"{k}={os.environ[k]}" for k in BLAS_PINS if k in os.environ)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)


def blas_core():
    """The kernel family OpenBLAS chose when it loaded (Haswell, SkylakeX, Zen, ...)."""
    try:
        import scipy_openblas32 as sob
        fn = ctypes.CDLL(os.path.join(sob.get_lib_dir(), sob.get_library(fullname=True))).scipy_openblas_get_corename
    except (ImportError, OSError, AttributeError):
        try:
            fn = ctypes.CDLL("libopenblas.so.0").openblas_get_corename
        except (OSError, AttributeError):
            return "unknown"
    fn.restype = ctypes.c_char_p
    return fn().decode()


# ---------------------------------------------------------------- the ceiling
class FmaPeak:
    """benchmarks/fma_peak.c built with the system gcc into a temp dir and loaded with ctypes;
    ``width`` 256 runs the AVX2 loop, 512 the AVX-512 one."""

    def __init__(self, tmp, cc="gcc", width=256):
        missing = {"avx2", "fma"} - cpu_flags()
        if missing:
            raise RuntimeError(f"the CPU lacks {', '.join(sorted(missing))}")
        so = os.path.join(tmp, "fma_peak.so")
        cmd = [cc, "-O2", "-mavx2", "-mfma", "-fopenmp", "-shared", "-fPIC", os.path.join(HERE, "fma_peak.c"), "-o", so]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip()}")
        if width == 512 and "avx512f" not in cpu_flags():
            raise RuntimeError("the CPU lacks avx512f")
        self.lib = ctypes.CDLL(so)
        prefix = "fma_peak512" if width == 512 else "fma_peak"
        self.run = getattr(self.lib, prefix + "_run")
        self.run.restype = ctypes.c_double
        self.run.argtypes = [ctypes.c_long, ctypes.c_int]
        self.flops_per_iter = getattr(self.lib, prefix + "_flops_per_iter")()

    def handoff_ns(self, rounds=15):
        """One-way time of a cache line passing between two threads (fma_peak.c, core_handoff_ns)."""
        f = self.lib.core_handoff_ns
        f.restype, f.argtypes = ctypes.c_double, [ctypes.c_int]
        return f(rounds)

    def gflops(self, threads, runs, seconds=0.3):
        """Best GFLOP/s of ``runs`` runs of about ``seconds`` each on ``threads`` threads."""
        run = self.run
        run(1 << 16, threads)  # start the OpenMP team
        iters = 1 << 20
        while True:  # calibrate to ~seconds per run
            t = run(iters, threads)
            if t > 0.05:
                break
            iters *= 4
        iters = max(1, int(iters * seconds / t))
        best = 0.0
        for _ in range(runs):
            t = run(iters, threads)
            best = max(best, threads * iters * self.flops_per_iter / t / 1e9)
        return best


# ---------------------------------------------------------------- contenders
def nontrivial(model, rng):
    """BatchNorm statistics and alpha away from their init (as compare_cpu.py does), so every
    path does real arithmetic and the agreement check means something."""
    state = model.state_dict()
    for k, v in state.items():
        if k.endswith("running_var"):
            state[k] = rng.uniform(0.5, 2.0, v.shape).astype(np.float32)
        elif k.endswith("running_mean"):
            state[k] = rng.uniform(-0.2, 0.2, v.shape).astype(np.float32)
        elif k.endswith("alpha"):
            state[k] = np.full(v.shape, 0.5, np.float32)
    model.load_state_dict(state)
    return model


class TorchExport:
    """Stands in for a ctrgcn model in onnx_runner.make_onnx_runner: its ``export_onnx`` writes a
    torch.onnx.export of the PyTorch network of torch_family.py (CTR-GC aggregation with
    ``torch.einsum('ncuv,nctv->nctu', ...)`` as the official code), with the same weights."""

    def __init__(self, model, sample):
        import torch
        from torch_family import Net
        self.torch = torch
        self.net = Net(model).eval()
        state = {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
        self.sample = sample
        self.ops = {}

    def export_onnx(self, path):
        torch = self.torch
        kwargs = dict(input_names=["x"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            try:  # the TorchScript exporter: the dynamo one needs onnxscript
                torch.onnx.export(self.net, (torch.from_numpy(self.sample),), path, dynamo=False, **kwargs)
            except TypeError:
                torch.onnx.export(self.net, (torch.from_numpy(self.sample),), path, **kwargs)
        import onnx
        for node in onnx.load(path).graph.node:
            self.ops[node.op_type] = self.ops.get(node.op_type, 0) + 1


def in_blocks(contenders, x, rounds, repeats, warmup):
    """Median ms per call of each ``fn`` in ``contenders`` [(name, fn)]: ``rounds`` rounds, in each a
    block of ``warmup`` + ``repeats`` calls per contender (compare_cpu.timeit), contenders in turn
    (A A A B B B C C C A A A ...), the median over all blocks' medians. Blocks, not single calls in
    turn: after a call the previous runtime's worker threads spin for some milliseconds, and on a
    2-core machine a call right after another runtime's measured up to 2x slow."""
    times = {name: [] for name, _ in contenders}
    for _ in range(rounds):
        for name, fn in contenders:
            times[name].append(timeit(fn, x, repeats, warmup))
    return {name: float(np.median(t)) for name, t in times.items()}


# ---------------------------------------------------------------- report
class Table:
    HEAD = ("what", "measured", "GFLOP/s", "of AVX2", "of 512", "goal", "result")
    WIDTH = (56, 44, 8, 7, 7, 16, 6)

    def __init__(self, out):
        self.out = out
        self.verdicts = []

    def header(self, title):
        self.out("")
        self.out(f"## {title}")
        self.out("  ".join(h.ljust(w) if i < 2 else h.rjust(w) if i < 5 else h.ljust(w)
                           for i, (h, w) in enumerate(zip(self.HEAD, self.WIDTH))).rstrip())

    def row(self, what, measured, gflops=None, frac=None, goal="", result=""):
        """frac: (fraction of the AVX2 peak, fraction of the AVX-512 peak or None), or None."""
        f2, f5 = frac if frac is not None else (None, None)
        cells = (what, measured, "" if gflops is None else f"{gflops:.1f}",
                 "" if f2 is None else f"{f2:.2f}", "" if f5 is None else f"{f5:.2f}", goal, result)
        self.out("  ".join(c.ljust(w) if i < 2 else c.rjust(w) if i < 5 else c.ljust(w)
                           for i, (c, w) in enumerate(zip(cells, self.WIDTH))).rstrip())
        if result:
            self.verdicts.append((what, result))

    @staticmethod
    def at_least(value, goal):
        return "PASS" if value >= goal else "MISS"

    @staticmethod
    def below(value, goal):
        return "PASS" if value < goal else "MISS"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=cores(), help="threads for every contender (default: all cores)")
    ap.add_argument("--quick", action="store_true", help="smoke test: few repeats, CTRGCN only, no log by default")
    ap.add_argument("--log", default=None,
                    help="append the table here (default benchmarks/results/engine_speed.txt; none with --quick)")
    ap.add_argument("--no-log", action="store_true")
    ap.add_argument("--cc", default="gcc", help="C compiler for the FMA loop")
    ap.add_argument("--keep-blas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as set (default: unset both for this run)")
    args = ap.parse_args()
    unpin_blas(args.keep_blas_env)
    default_log = None if args.quick else os.path.join(HERE, "results", "engine_speed.txt")
    log = None if args.no_log else args.log or default_log
    n = args.threads
    eval_variants = ["CTRGCN"] if args.quick else ["CTRGCN", "CTRGCN_lightV2"]
    train_variants = ["CTRGCN"] if args.quick else list(ctrgcn.VARIANTS)
    # repeats per block; every contender gets `rounds` blocks in turn
    R = dict(peak_runs=3 if args.quick else 7, rounds=1 if args.quick else 2, b1=5 if args.quick else 10,
             b64=2 if args.quick else 2, ucla=10 if args.quick else 20, train=1 if args.quick else 3, train_block=2 if args.quick else 3)

    lines = []

    def out(s=""):
        print(s, flush=True)
        lines.append(s)

    started = time.perf_counter()
    import torch
    import onnxruntime
    out(f"# {time.strftime('%Y-%m-%d %H:%M')} engine_speed{' --quick' if args.quick else ''}: {cpu_model()}, "
        f"{cores()} cores, {n} thread(s) per contender; ctrgcn {ctrgcn.__version__}, torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}, numpy {np.__version__}")
    pins = os.environ.get("CTRGCN_BENCH_UNPINNED")
    out(f"# OpenBLAS kernels: {blas_core()}" + (f" (this run unset the machine's {pins})" if pins else "")
        + (f" (pinned by {', '.join(k + '=' + os.environ[k] for k in BLAS_PINS if k in os.environ)})"
           if any(k in os.environ for k in BLAS_PINS) else ""))
    out(f"# load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
        f"(a busy machine makes every number here low and noisy)")
    table = Table(out)
    rng = np.random.default_rng(0)

    with tempfile.TemporaryDirectory() as tmp:
        # ---- 1. the ceilings, at the start: AVX2 (the goals' unit) and AVX-512 where the CPU has it
        fmas = {}
        for width in (256, 512):
            try:
                fmas[width] = FmaPeak(tmp, args.cc, width)
            except (RuntimeError, OSError) as exc:
                out(f"# {'AVX2' if width == 256 else 'AVX-512'} FMA peak unavailable ({exc})")
        fma = fmas.get(256)
        peaks = {}

        def measure_peak(when):
            for width, f in fmas.items():
                isa, intr = ("AVX2", "_mm256_fmadd_ps") if width == 256 else ("AVX-512", "_mm512_fmadd_ps")
                table.header(f"FMA peak ({when}): register-only {isa} loop, 10 chains of {intr}, "
                             f"best of {R['peak_runs']} x 0.3 s")
                for threads in sorted({1, n, cores()}):
                    g = f.gflops(threads, R["peak_runs"])
                    peaks[(when, width, threads)] = g
                    table.row(f"{threads} thread(s)", f"{g:.1f} GFLOP/s", g)
            if fma is not None and cores() >= 2:
                # where the two cores sit: sharing a last-level cache (42-46 ns on the development VM)
                # or not (179-218 ns); the one-person two-core speed-up has followed it (fma_peak.c)
                out(f"# cross-core cache-line handoff ({when}): {fma.handoff_ns():.0f} ns one way")

        measure_peak("start")

        def peak(threads, width=256):  # the best showing of the machine in this run: conservative fractions
            vals = [v for (w, wd, t), v in peaks.items() if t == threads and wd == width]
            return max(vals) if vals else None

        def frac(gflops, threads):
            """(fraction of the AVX2 peak, of the AVX-512 peak); None where unmeasured."""
            p2, p5 = peak(threads, 256), peak(threads, 512)
            if not p2:
                return None
            return gflops / p2, (gflops / p5 if p5 else None)

        # ---- 2 + 5. eval at NTU shapes: ctrgcn, ORT on ctrgcn's export, ORT on torch.onnx.export
        evals, orts = [], []
        for variant in eval_variants:
            model = nontrivial(ctrgcn.Model(variant, num_classes=60, graph="ntu", num_person=2, seed=1), rng)
            model.set_threads(n)
            x1 = rng.standard_normal((1,) + NTU_SHAPE, dtype=np.float32)
            run_own = make_onnx_runner(model, os.path.join(tmp, f"{variant}_ctrgcn.onnx"), n)
            texp = TorchExport(model, x1)
            run_torch = make_onnx_runner(texp, os.path.join(tmp, f"{variant}_torch.onnx"), n)
            torch_desc = f"torch.onnx.export, {texp.ops.get('Einsum', 0)} Einsum nodes"
            for b in (1, 64):
                x = x1 if b == 1 else rng.standard_normal((b,) + NTU_SHAPE, dtype=np.float32)
                ref = model(x)  # also each contender's first warm-up call
                scale = float(np.abs(ref).max())
                errs = {"own": float(np.abs(run_own(x) - ref).max()) / scale,
                        "torch": float(np.abs(run_torch(x) - ref).max()) / scale}
                reps, warm = (R["b1"], 2) if b == 1 else (R["b64"], 0)  # b64: the calls above warmed up
                ms = in_blocks([("ctrgcn", model), ("own", run_own), ("torch", run_torch)], x, R["rounds"], reps, warm)
                evals.append((variant, b, ms["ctrgcn"]))
                orts.append((variant, b, ms, errs, torch_desc))
            del run_own, run_torch, texp

        table.header(f"eval, NTU shapes {NTU_SHAPE}, 60 classes: median ms per batch, {n} thread(s); "
                     f"fraction of the {n}-thread peak")
        for variant, b, ms in evals:
            g = b * NTU_GFLOP[variant] / (ms / 1e3)
            f = frac(g, n)
            goal = GOALS["eval_b1" if b == 1 else "eval_b64"]
            table.row(f"{variant} batch {b}", f"{ms:.1f} ms ({b / ms * 1e3:.1f} samples/s)", g, f,
                      f">= {goal:.2f} of peak", "" if f is None else table.at_least(f[0], goal))

        # ---- 3. one person at batch 1: 1 thread against all cores
        table.header(f"one person at batch 1, NW-UCLA shapes {UCLA_SHAPE}, 10 classes: median ms; "
                     f"fraction of the peak at that thread count")
        xu = rng.standard_normal((1,) + UCLA_SHAPE, dtype=np.float32)
        for variant in eval_variants:
            one = nontrivial(ctrgcn.Model(variant, num_classes=10, graph="ucla", num_person=1, seed=1), rng)
            every = ctrgcn.Model(variant, num_classes=10, graph="ucla", num_person=1, seed=1)
            every.load_state_dict(one.state_dict())  # the same network twice: one per thread setting
            one.set_threads(1)
            every.set_threads(0)
            gf = gflop_per_sample(variant, UCLA_SHAPE)
            ms = in_blocks([("1", one), ("all", every)], xu, R["rounds"], R["ucla"], 3)
            for key, t, label in (("1", 1, "set_threads(1)"), ("all", cores(), "set_threads(0), all cores")):
                g = gf / (ms[key] / 1e3)
                table.row(f"{variant} {label}", f"{ms[key]:.2f} ms", g, frac(g, t))
            s = ms["1"] / ms["all"]
            table.row(f"{variant} speed-up, all cores / 1 thread", f"{s:.2f}x", goal=f">= {GOALS['ucla_speedup']}x",
                      result=table.at_least(s, GOALS["ucla_speedup"]))

        # ---- 4. training at NW-UCLA shapes, batch 16
        batch = 16
        xt = rng.standard_normal((batch,) + UCLA_SHAPE, dtype=np.float32)
        yt = rng.integers(0, 10, batch)
        table.header(f"training, NW-UCLA shapes, batch {batch}: full SGD steps (Nesterov 0.9, wd 1e-4), 3 warm-up "
                     f"steps, then the median of {R['train']} blocks of {R['train_block']} steps taken in turn with "
                     f"PyTorch; {TRAIN_FLOP_FACTOR:g}x the eval FLOPs; {n} thread(s)")
        for variant in train_variants:
            model = ctrgcn.Model(variant, num_classes=10, graph="ucla", num_person=1, seed=1)
            model.set_threads(n)
            t_step, torch_name = compare_train.torch_step(model, n)  # first: it copies the initial weights
            o_step = compare_train.ours_step(model, n)  # model.trainer(momentum=0.9, weight_decay=1e-4, nesterov=True)
            t, loss = compare_train.in_turn([("ours", o_step), ("torch", t_step)], xt, yt, rounds=R["train"],
                                            per_block=R["train_block"])
            t_ours, t_torch = t["ours"], t["torch"]
            sps = batch / t_ours
            g = sps * TRAIN_FLOP_FACTOR * gflop_per_sample(variant, UCLA_SHAPE)
            f = frac(g, n)
            table.row(f"{variant} ctrgcn", f"{sps:.1f} samples/s ({t_ours * 1e3:.0f} ms/step)", g, f,
                      f">= {GOALS['train_frac']:.2f} of peak",
                      "" if f is None else table.at_least(f[0], GOALS["train_frac"]))
            ratio = t_torch / t_ours
            table.row(f"{variant} vs PyTorch eager", f"{ratio:.2f}x (torch {batch / t_torch:.1f} samples/s)",
                      goal=f">= {GOALS['train_vs_torch']}x", result=table.at_least(ratio, GOALS["train_vs_torch"]))
            table.row(f"{variant} first-step loss, ctrgcn vs torch", f"{loss['ours']:.4f} vs {loss['torch']:.4f}")
        out(f"# ctrgcn: model.trainer(...).step (compare_train.ours_step); "
            f"peer: {torch_name} (compare_train.torch_step)")

        # ---- 5. report ONNX Runtime
        table.header(f"ONNX Runtime {onnxruntime.__version__} (intra_op_num_threads={n}), NTU shapes: median ms; "
                     f"ratio = ORT time / ctrgcn time, timed in blocks taken in turn")
        for variant, b, ms, errs, torch_desc in orts:
            goal = GOALS["ort_b1" if b == 1 else "ort_b64"]
            for key, desc in (("own", "ctrgcn's export_onnx"), ("torch", torch_desc)):
                r = ms[key] / ms["ctrgcn"]
                table.row(f"{variant} b{b} ORT on {desc}",
                          f"{ms[key]:.1f} ms vs ctrgcn {ms['ctrgcn']:.1f} ms = {r:.2f}x",
                          goal=f">= {goal}x", result=table.at_least(r, goal))
                table.row(f"{variant} b{b}   agreement, max|diff|/max|logit|", f"{errs[key]:.1e}",
                          goal=f"< {GOALS['agree']:.0e}", result=table.below(errs[key], GOALS["agree"]))

        # ---- 6. one model, two Python threads at batch 1 against one thread making the same calls.
        # Both ways warmed first (the two-thread way makes the pool's one-core sessions), then
        # `rounds` alternating pairs of timings, the best of each kept: steady-state throughput,
        # not the first calls' session set-up.
        calls = 4 * R["b1"]
        table.header(f"one model from two Python threads, batch 1, NTU shapes: wall time of {calls} calls per "
                     f"variant, best of {R['rounds'] + 1}; ratio = one thread's time / two threads' time")
        for variant in eval_variants:
            model = nontrivial(ctrgcn.Model(variant, num_classes=60, graph="ntu", num_person=2, seed=1), rng)
            x1 = rng.standard_normal((1,) + NTU_SHAPE, dtype=np.float32)

            def run(k):
                for _ in range(k):
                    model(x1)

            def one(k):
                t = time.perf_counter()
                run(k)
                return time.perf_counter() - t

            def two(k):
                workers = [threading.Thread(target=run, args=(k // 2,)) for _ in range(2)]
                t = time.perf_counter()
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
                return time.perf_counter() - t

            one(4), two(8)
            t_one, t_two = float("inf"), float("inf")
            for _ in range(R["rounds"] + 1):
                t_one, t_two = min(t_one, one(calls)), min(t_two, two(calls))
            ratio = t_one / t_two
            table.row(f"{variant} two threads vs one", f"{ratio:.2f}x ({t_one * 1e3:.0f} vs {t_two * 1e3:.0f} ms)",
                      goal=f">= {GOALS['two_threads']:.1f}x", result=table.at_least(ratio, GOALS["two_threads"]))

        # ---- 1'. the ceiling, at the end
        measure_peak("end")
        if fma is not None:
            for t in sorted({1, n, cores()}):
                a, z = peaks[("start", 256, t)], peaks[("end", 256, t)]
                out(f"# {t}-thread AVX2 peak start {a:.1f} / end {z:.1f} GFLOP/s (drift {100 * (z - a) / a:+.1f}%); "
                    f"fractions above use the larger, {max(a, z):.1f}")
            a, z = peaks[("start", 256, n)], peaks[("end", 256, n)]
            if abs(z - a) > 0.1 * max(a, z):
                out(f"# WARNING: the {n}-thread peak moved {100 * (z - a) / a:+.0f}% during the run: the machine was "
                    f"not quiet (or its clock changed); treat every number above as unreliable")
            one = max(peaks[("start", 256, 1)], peaks[("end", 256, 1)])
            if n > 1 and max(a, z) < 0.75 * n * one:
                out(f"# WARNING: the {n}-thread peak is only {max(a, z) / one:.2f}x the 1-thread peak: other processes "
                    f"held cores during the run; treat every number above as unreliable")
        if 512 in fmas and fma is not None:
            ratio = peak(n, 512) / peak(n, 256)
            out(f"# AVX-512 peak / AVX2 peak: {ratio:.2f}x ({'full-width 512-bit units' if ratio > 1.5 else 'split units'}); "
                f"the goals are fractions of the AVX2 peak, the 'of 512' column of the machine's true ceiling")

    passed = sum(v == "PASS" for _, v in table.verdicts)
    out("")
    out(f"# {passed} of {len(table.verdicts)} goals met; load average at end: "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; {time.perf_counter() - started:.0f} s in all")
    append_log(log, lines)
    if log:
        print(f"(appended to {os.path.relpath(log)})")


if __name__ == "__main__":
    main()

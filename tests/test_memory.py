"""No leaks: the C core's model life cycle (init, save, load, forward, training steps, write back,
save in every dtype, free, with a failed load and a .skeleton parse on the way) under
LeakSanitizer with a flat heap from round to round, and under valgrind; from Python, resident
memory flat over 10,000 predictions and 1,000 load/free cycles."""
import glob
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build(tmp_path, name, flags):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    sob = pytest.importorskip("scipy_openblas32")
    sources = sorted(glob.glob(str(ROOT / "csrc" / "core" / "*.c")) + glob.glob(str(ROOT / "csrc" / "layers" / "*.c"))
                     + glob.glob(str(ROOT / "csrc" / "backends" / "*.c"))
                     + glob.glob(str(ROOT / "csrc" / "backends" / "cpu" / "*.c"))
                     + glob.glob(str(ROOT / "csrc" / "data" / "*.c")))
    exe = tmp_path / name
    cmd = [cc, "-std=c11", "-g", "-fopenmp", *flags, "-D_GNU_SOURCE", "-DCTRGCN_BLAS_SCIPY=1",
           f"-I{ROOT / 'csrc' / 'include'}", f"-I{ROOT / 'csrc'}", f"-I{sob.get_include_dir()}", *sources,
           str(ROOT / "tests" / "c" / "lifecycle.c"), "-o", str(exe), f"-L{sob.get_lib_dir()}",
           f"-l{sob.get_library()}", f"-Wl,-rpath,{sob.get_lib_dir()}", "-lm"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    if build.returncode != 0 and "asan" in build.stderr.lower():
        pytest.skip("the sanitizer runtime is not installed")
    assert build.returncode == 0, build.stderr[-3000:]
    return exe


def test_c_lifecycle_under_leak_sanitizer(tmp_path):
    """12 rounds over the four variants: no leak at exit, and the heap in use after round 4 equal to
    the byte after every later round (lifecycle.c checks it)."""
    exe = _build(tmp_path, "lifecycle_asan", ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"])
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1", OMP_NUM_THREADS="1",
               LSAN_OPTIONS=f"suppressions={ROOT / 'tests' / 'c' / 'lsan.supp'}")
    run = subprocess.run([str(exe), str(tmp_path), "12"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0 and "12 rounds ok" in run.stdout, (run.stdout, run.stderr[-4000:])


def test_c_lifecycle_under_valgrind(tmp_path):
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind not installed")
    exe = _build(tmp_path, "lifecycle", ["-O2"])
    run = subprocess.run(["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                          "--error-exitcode=3", str(exe), str(tmp_path), "1"], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert run.returncode == 0 and "1 rounds ok" in run.stdout, (run.stdout, run.stderr[-4000:])


_PYTHON_LOOPS = textwrap.dedent("""
    import gc, json, os, sys
    import numpy as np
    import ctrgcn

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    # a narrow custom spec: every code path of a preset (sessions, plans, the file format), at a
    # fraction of the arithmetic, so 10,000 calls take seconds
    spec = ctrgcn.preset_spec("CTRGCN_lightV2", num_classes=4, graph="ucla", num_person=1)
    spec["variant"] = "custom"
    for block in spec["blocks"]:
        block["out_channels"] = 8
    model = ctrgcn.Model.from_spec(spec, seed=1)
    model.set_threads(1)
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 20, 1)).astype(np.float32)
    out = {}
    for i in range(500):          # warm up: sessions, plans, allocator pools
        model(x)
    gc.collect()
    before = rss()
    for i in range(10000):
        model(x)
    gc.collect()
    out["predict"] = rss() - before
    paths = [os.path.join(sys.argv[1], "m.ctrgcn"), os.path.join(sys.argv[1], "m.npz")]
    model.save(paths[0])
    # .npz weights name a preset (the variant is told from the names and shapes)
    preset = ctrgcn.Model("CTRGCN_lightV2", num_classes=4, graph="ucla", num_person=1, base_channel=8, seed=1)
    np.savez(paths[1], **preset.state_dict())
    for path, cycles in zip(paths, (800, 200)):   # 1,000 load/free cycles, a prediction each
        for i in range(50):
            ctrgcn.load(path)
        gc.collect()
        before = rss()
        for i in range(cycles):
            loaded = ctrgcn.load(path)
            loaded.set_threads(1)
            loaded(x)
            del loaded
        gc.collect()
        out[os.path.basename(path)] = rss() - before
    print(json.dumps(out))
""")


def test_python_memory_flat_over_predictions_and_loads(tmp_path):
    """Bounds: 2 MB over 10,000 predictions (a leak of 200 bytes per call would show) and 2 MB over
    800 load cycles of the project's file and 200 of a .npz (a leak of 10 KB per cycle would show;
    a model is 60-170 KB)."""
    run = subprocess.run([sys.executable, "-c", _PYTHON_LOOPS, str(tmp_path)], capture_output=True, text=True,
                         timeout=300, cwd=str(ROOT), env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr[-3000:]
    import json
    grown = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(v < (2 << 20) for v in grown.values()), grown

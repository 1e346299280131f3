"""examples/predict.c: the C API used from a plain C program agrees with the Python module."""
import glob
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import ctrgcn

ROOT = Path(__file__).resolve().parents[1]


def test_c_program_predicts_what_python_predicts(tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    sob = pytest.importorskip("scipy_openblas32")
    exe = tmp_path / "predict"
    sources = sorted(glob.glob(str(ROOT / "csrc" / "core" / "*.c")) + glob.glob(str(ROOT / "csrc" / "layers" / "*.c"))
                     + glob.glob(str(ROOT / "csrc" / "backends" / "*.c"))
                     + glob.glob(str(ROOT / "csrc" / "backends" / "cpu" / "*.c")))
    build = subprocess.run([cc, "-std=c11", "-O2", "-fopenmp", "-D_GNU_SOURCE", "-DCTRGCN_BLAS_SCIPY=1",
                            f"-I{ROOT / 'csrc' / 'include'}", f"-I{ROOT / 'csrc'}", f"-I{sob.get_include_dir()}",
                            *sources, str(ROOT / "examples" / "predict.c"), f"-L{sob.get_lib_dir()}",
                            f"-l{sob.get_library()}", f"-Wl,-rpath,{sob.get_lib_dir()}", "-lm", "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    model = ctrgcn.Model("CTRGCN_light", num_classes=11, graph="ucla", num_person=1, seed=4)
    model.save(tmp_path / "m.ctrgcn")
    x = np.random.default_rng(0).standard_normal((3, 3, 23, 20, 1)).astype(np.float32)
    x.tofile(tmp_path / "x.f32")
    run = subprocess.run([str(exe), str(tmp_path / "m.ctrgcn"), str(tmp_path / "x.f32"), "3", "23"],
                         capture_output=True, text=True, check=True)
    rows = [line.split() for line in run.stdout.strip().splitlines()]
    logits = model(x)
    assert [int(r[1]) for r in rows] == list(logits.argmax(1))
    assert np.allclose([float(r[2]) for r in rows], logits.max(1), rtol=1e-4)
    model.classes = [f"action {k}" for k in range(11)]  # a file that names its classes: the name follows
    model.save(tmp_path / "m.ctrgcn")
    run = subprocess.run([str(exe), str(tmp_path / "m.ctrgcn"), str(tmp_path / "x.f32"), "3", "23"],
                         capture_output=True, text=True, check=True)
    assert [line.split(None, 3)[3] for line in run.stdout.strip().splitlines()] == \
        [f"action {k}" for k in logits.argmax(1)]
    bad = subprocess.run([str(exe), str(tmp_path / "x.f32"), str(tmp_path / "x.f32"), "3", "23"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "not a ctrgcn model file" in bad.stderr

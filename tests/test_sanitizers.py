"""The C core built with AddressSanitizer and UndefinedBehaviorSanitizer, driven by
tests/c/sanitize_driver.c: models of every variant, the file format under every truncation and
corruption, the .skeleton parser under truncation and garbage."""
import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKELETON = ROOT.parent / "shared" / "data" / "ntu" / "skeleton-samples" / "S001C003P008R002A058.skeleton"


def test_core_under_sanitizers(tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    try:
        import scipy_openblas32 as sob
    except ImportError:
        pytest.skip("scipy-openblas32 not installed")
    sources = sorted(glob.glob(str(ROOT / "csrc" / "core" / "*.c")) + glob.glob(str(ROOT / "csrc" / "layers" / "*.c"))
                     + glob.glob(str(ROOT / "csrc" / "backends" / "*.c"))
                     + glob.glob(str(ROOT / "csrc" / "backends" / "cpu" / "*.c"))
                     + glob.glob(str(ROOT / "csrc" / "data" / "*.c")))
    exe = tmp_path / "driver"
    cmd = [cc, "-std=c11", "-O1", "-g", "-fopenmp", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
           "-D_GNU_SOURCE", "-DCTRGCN_BLAS_SCIPY=1", f"-I{ROOT / 'csrc' / 'include'}", f"-I{ROOT / 'csrc'}",
           f"-I{sob.get_include_dir()}", *sources, str(ROOT / "tests" / "c" / "sanitize_driver.c"), "-o", str(exe),
           f"-L{sob.get_lib_dir()}", f"-l{sob.get_library()}", f"-Wl,-rpath,{sob.get_lib_dir()}", "-lm"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    if build.returncode != 0 and "asan" in build.stderr.lower():
        pytest.skip("the sanitizer runtime is not installed")
    assert build.returncode == 0, build.stderr[-3000:]
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1", UBSAN_OPTIONS="print_stacktrace=1",
               OMP_NUM_THREADS="2", LSAN_OPTIONS=f"suppressions={ROOT / 'tests' / 'c' / 'lsan.supp'}")
    run = subprocess.run([str(exe), str(tmp_path), str(SKELETON) if SKELETON.exists() else "-"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0 and "ok" in run.stdout, (run.stdout[-2000:], run.stderr[-6000:])

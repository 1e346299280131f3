"""A short run of every fuzzer (tests/fuzz/, about 25 s in all) and a replay of the C findings.
The long runs (>= 1,000,000 executions per C harness, >= 100,000 per Python target) are
``python tests/fuzz/run_fuzz.py campaign``; their counts are in tests/fuzz/README.md."""
import importlib.util
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ))
import run_fuzz  # noqa: E402

C_SECONDS, PY_SECONDS = 3, 12  # libFuzzer takes whole seconds


@pytest.fixture(scope="module")
def harnesses():
    try:
        return {name: run_fuzz.build_c(name) for name in run_fuzz.C_HARNESSES}
    except OSError as exc:
        pytest.skip(f"C fuzzers not built: {exc}")


def _clean(done, name):
    out = done.stdout or ""
    assert done.returncode == 0, f"{name}: fuzzer finding\n{out[-4000:]}"
    assert run_fuzz.executions(out), out[-2000:]


@pytest.mark.parametrize("name", sorted(run_fuzz.C_HARNESSES))
def test_c_harness_short_run(harnesses, name, tmp_path):
    """libFuzzer under ASan + UBSan + LeakSanitizer for a few seconds from the seeds."""
    done = run_fuzz.run_c(name, [f"-max_total_time={C_SECONDS}"], capture_output=True, text=True, timeout=120,
                          artifacts=tmp_path, corpus_root=tmp_path / "corpus")
    _clean(done, name)


@pytest.mark.parametrize("name", sorted(run_fuzz.C_HARNESSES))
def test_c_findings_replayed(harnesses, name, tmp_path):
    """Every input a C fuzzer found once runs clean now (libFuzzer's replay mode)."""
    found = sorted((FUZZ / "regressions" / f"c_{name}").glob("*"))
    if not found:
        pytest.skip(f"no findings kept for {name}")
    done = run_fuzz.run_c(name, [str(p) for p in found], capture_output=True, text=True, timeout=120,
                          artifacts=tmp_path, corpus_dir=False)
    assert done.returncode == 0, done.stdout[-4000:]


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed (pip install atheris)")
def test_python_targets_short_run(tmp_path):
    """atheris over every Python reader at once (the first byte picks the reader) from all seeds."""
    done = run_fuzz.run_py("every_target", [f"-max_total_time={PY_SECONDS}"], capture_output=True, text=True,
                           timeout=180, artifacts=tmp_path, corpus_root=tmp_path / "corpus")
    _clean(done, "every_target")
    assert run_fuzz.executions(done.stdout) >= 100  # the seeds alone are about 25 inputs

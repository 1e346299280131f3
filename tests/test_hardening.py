"""Hostile and damaged input: every reader raises only ctrgcn.Error, memory stays bounded by the
file, fuzzing findings stay fixed, extreme values give finite outputs or a clear error.

Readers under test (tests/fuzz/targets.py): weights as .npz, .pt, .pdparams, Paddle inference
files and the project's own file; label pickles; training configs; NW-UCLA JSON; NTU .skeleton."""
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ctrgcn

FUZZ = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ))
import claims  # noqa: E402
import fuzz_seeds  # noqa: E402
import targets  # noqa: E402


@pytest.fixture(scope="module")
def seeds():
    return fuzz_seeds.synthetic()


def _mutants(seed, rng, n):
    """Byte flips, integer-sized overwrites and truncations, as a crude fuzzer makes them."""
    for _ in range(n):
        b = bytearray(seed)
        if rng.random() < 0.2 and len(b) > 1:
            yield bytes(b[:rng.randrange(len(b))])
            continue
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(b))
            if rng.random() < 0.5:
                b[pos] = rng.randrange(256)
            else:
                b[pos:pos + 4] = rng.choice([b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00", b"9999", b"-1", b"\x80",
                                             b"\xc3\x28"])
        yield bytes(b)


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_mutated_inputs_raise_only_ctrgcn_errors(seeds, target):
    if not seeds[target]:
        pytest.skip(f"no seed for {target} (torch absent)")
    rng = random.Random(target)
    fn = targets.TARGETS[target]
    for seed in seeds[target]:
        fn(seed)
        for data in _mutants(seed, rng, 60):
            fn(data)  # anything but a ctrgcn.Error propagates and fails the test


REGRESSIONS = sorted(p for p in (FUZZ / "regressions").glob("*/*") if p.is_file())


@pytest.mark.parametrize("path", REGRESSIONS, ids=[f"{p.parent.name}/{p.name}" for p in REGRESSIONS])
def test_fuzzing_findings_stay_fixed(path):
    """Each input a fuzzer found (tests/fuzz/README.md says what it was) is refused cleanly."""
    targets.TARGETS[path.parent.name](path.read_bytes())


def test_skeleton_error_quotes_bytes_as_text(tmp_path):
    """Non-UTF-8 bytes in a .skeleton gave a UnicodeDecodeError; now an InputError quoting them as '?'."""
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_bytes(b"1\n1\n1 0 1 1 1 1 0 0 0 2\n25\n" + b"0.1 \xd7\xff 0.3" + b" 0" * 9 + b"\n")
    with pytest.raises(ctrgcn.InputError, match=r"'\?\?'"):
        ctrgcn.data.read_skeleton(path)


# ---- memory bounded by the input -----------------------------------------------------------------
_CLAIMS_RUNNER = textwrap.dedent("""
    import json, resource, sys
    sys.path.insert(0, sys.argv[1])
    import ctrgcn, claims, targets
    cases = claims.cases()
    targets._expect_error = lambda fn, *a: fn(*a)   # let the error through: the test checks its type
    for target, name, data in cases[:1]:            # warm up imports and lazy allocations before the limit
        try: targets.TARGETS[target](data)
        except Exception: pass
    with open("/proc/self/statm") as f:
        vm = int(f.read().split()[0]) * resource.getpagesize()
    limit = vm + (int(sys.argv[2]) << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = []
    for target, name, data in cases:
        try:
            targets.TARGETS[target](data)
            out.append((target, name, "accepted", ""))
        except Exception as exc:
            out.append((target, name, type(exc).__name__, str(exc)[:300]))
    print(json.dumps(out))
""")


def test_claims_of_huge_sizes_fail_fast_without_allocating(tmp_path):
    """Files of a few bytes claiming 10^9 frames, bodies, joints, elements or a billion weights, one
    or more per reader, are refused with an InputError while the process may allocate no more than
    256 MB beyond what it holds: the readers check claims against the file before allocating."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", _CLAIMS_RUNNER, str(FUZZ), "256"], capture_output=True, text=True,
                         env=env, timeout=120, cwd=str(Path(__file__).resolve().parents[1]))
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert {t for t, *_ in results} >= set(targets.TARGETS), "a reader without a claim case"
    wrong = [r for r in results if r[2] != "InputError"]
    assert not wrong, wrong


def test_many_bodies_cost_a_small_multiple_of_the_file(tmp_path):
    """Real (not claimed) counts: 3000 distinct one-frame bodies. Each body reserved room for 64
    frames (32 KB for about 700 bytes of file); now the parse stays within a few times the file."""
    data = claims._skeleton_bodies(3000)
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_bytes(data)
    code = textwrap.dedent("""
        import resource, sys, ctrgcn.data as d
        d.read_skeleton(sys.argv[3])  # warm up on a small file (a large one would leave its heap behind)
        with open("/proc/self/statm") as f:
            vm = int(f.read().split()[0]) * resource.getpagesize()
        limit = vm + int(sys.argv[2])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        print(len(d.read_skeleton(sys.argv[1]).bodies))
    """)
    # the address space, not the resident size: untouched reserved pages count too
    bound = 8 * len(data) + (16 << 20)
    small = tmp_path / "S001C001P001R001A002.skeleton"
    small.write_bytes(claims._skeleton_bodies(2))
    run = subprocess.run([sys.executable, "-c", code, str(path), str(bound), str(small)], capture_output=True, text=True,
                         timeout=120, cwd=str(Path(__file__).resolve().parents[1]), env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0 and run.stdout.split()[-1] == "3000", (len(data), run.stderr[-2000:])

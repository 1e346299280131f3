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
import ctrgcn.data

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


# regressions/<python target>/...: run through the reader; regressions/c_<harness>/...: C harness
# inputs, replayed by tests/test_fuzz.py
REGRESSIONS = sorted(p for p in (FUZZ / "regressions").glob("*/*")
                     if p.is_file() and not p.parent.name.startswith("c_"))


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
    # refused by a check of the claim, not by a failed allocation turned into an InputError
    wrong = [r for r in results if r[2] != "InputError" or "more memory" in r[3] or "out of memory" in r[3]]
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
    run = subprocess.run([sys.executable, "-c", code, str(path), str(bound), str(small)], capture_output=True,
                         text=True, timeout=120, cwd=str(Path(__file__).resolve().parents[1]),
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0 and run.stdout.split()[-1] == "3000", (len(data), run.stderr[-2000:])


# ---- extreme values ----------------------------------------------------------------------------
def _model():
    path = Path(__file__).resolve().parents[2] / "shared" / "golden" / "official" / "ucla_weights.npz"
    model = ctrgcn.load(path) if path.exists() else ctrgcn.Model("CTRGCN", num_classes=10, graph="ucla", num_person=1,
                                                                seed=3)  # trained weights: realistic gains
    model.set_threads(1)
    return model


@pytest.fixture(scope="module")
def clip():
    x = np.random.default_rng(0).standard_normal((1, 3, 20, 20, 1)).astype(np.float32)
    return x / np.abs(x).max()


def test_extreme_inputs_give_finite_logits_or_a_clear_error(clip):
    model = _model()
    limit = np.float32(1e30)
    for x in (clip * limit, np.full_like(clip, limit), clip * np.float32(1e-40), np.zeros_like(clip), clip[:, :, :1],
              np.zeros_like(clip[:, :, :1])):
        assert np.isfinite(model(x)).all()
    # denormals act as zeros; 1e30 as a scaled clip (no silent overflow inside)
    np.testing.assert_allclose(model(clip * np.float32(1e-40)), model(np.zeros_like(clip)), rtol=1e-5, atol=1e-5)
    big, ref = model(clip * limit) / 1e30, model(clip * np.float32(1e25)) / 1e25
    assert np.abs(big - ref).max() <= 1e-3 * np.abs(ref).max()
    with pytest.raises(ctrgcn.InputError, match="rescale the input"):
        model(clip * np.float32(1e31))
    for bad in (np.nan, np.inf, -np.inf):
        x = clip.copy()
        x[0, 1, 2, 3, 0] = bad
        with pytest.raises(ctrgcn.InputError, match="non-finite"):
            model(x)


def test_extreme_training_inputs_give_finite_steps_or_a_clear_error(clip):
    targets = np.eye(10, dtype=np.float32)[[1, 2]]
    for x in (clip * np.float32(1e15), clip * np.float32(1e-40), np.zeros_like(clip), clip[:, :, :1]):
        model = _model()
        trainer = model.trainer(threads=1)
        batch = np.concatenate([x, x * np.float32(0.5)])
        loss, logits = trainer.step(batch, targets, lr=0.1)
        trainer.sync()
        assert np.isfinite(loss) and np.isfinite(logits).all() and np.isfinite(model.flat_params()).all()
    with pytest.raises(ctrgcn.InputError, match="BatchNorm variances"):
        _model().trainer(threads=1).step(np.concatenate([clip, clip]) * np.float32(1e16), targets, lr=0.1)


def test_extreme_samples_through_the_data_pipeline(tmp_path):
    """Single-frame, all-zero, denormal and 1e30 skeletons: NW-UCLA and NTU batches stay finite;
    the one sample with nothing to centre on (all zeros) is a clear error in preprocess."""
    rng = np.random.default_rng(1)
    ucla = tmp_path / "ucla"
    ucla.mkdir()
    for i, (frames, scale) in enumerate([(1, 1.0), (5, 1e30), (5, 1e-310), (5, 0.0), (4, 1e300)]):
        x = rng.standard_normal((frames, 20, 3)) * scale
        (ucla / f"a01_s01_e0{i}_v01.json").write_text(json.dumps({"skeletons": x.tolist(), "label": 1}))
    for modality in ("joint", "bone", "motion", "bone_motion"):
        ds = ctrgcn.data.NWUCLA(ucla, split="train", modality=modality)
        x, _ = ds.batch(np.arange(len(ds)))
        assert np.isfinite(x).all() and np.abs(x).max() <= 4.0
    ntu = np.zeros((4, 3, 300, 25, 2), np.float32)
    ntu[0, :, :1] = rng.standard_normal((3, 1, 25, 2))
    ntu[1, :, :50] = rng.standard_normal((3, 50, 25, 2)) * 1e30
    ntu[2, :, :50] = rng.standard_normal((3, 50, 25, 2)) * 1e-40
    np.save(tmp_path / "train_data.npy", ntu)
    import pickle
    (tmp_path / "train_label.pkl").write_bytes(pickle.dumps([np.array([b"S001C001P001R001A001"] * 4, "S20"),
                                                             np.arange(4)]))
    for augment in (True, False):
        x, _ = ctrgcn.data.NTUDataset(tmp_path, split="train", augment=augment).batch(np.arange(4))
        assert np.isfinite(x).all()
    assert np.isfinite(ctrgcn.preprocess(ntu[0])).all()
    with pytest.raises(ctrgcn.InputError, match="no non-zero frame"):
        ctrgcn.preprocess(ntu[3])

"""Crash-safe training: runs killed with SIGKILL at random moments (some in the middle of a
checkpoint write) and resumed with ``--resume`` end with exactly the weights of an uninterrupted
run; the log is flushed line by line; an unwritable work_dir or a full disk is a clear error that
leaves the last checkpoint as it was. A tiny config on synthetic NW-UCLA files keeps each run to
seconds."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ctrgcn

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
TIMING_KEYS = ("train_samples_per_s", "train_seconds")


@pytest.fixture(scope="module")
def ucla(tmp_path_factory):
    """8 training clips (views 1 and 2) and 4 validation clips (view 3) of random walks."""
    root = tmp_path_factory.mktemp("ucla")
    rng = np.random.default_rng(0)
    for i in range(12):
        view = (1, 2, 3)[i % 3]
        x = np.cumsum(rng.standard_normal((12 + i, 20, 3)) * 0.05, axis=0)
        (root / f"a{1 + i % 10:02d}_s01_e{i:02d}_v{view:02d}.json").write_text(
            json.dumps({"skeletons": x.round(4).tolist(), "label": 1 + i % 10}))
    return root


def write_config(path, ucla, work_dir, epochs=2):
    cfg = {"variant": "CTRGCN_lightV2", "num_classes": 10, "graph": "ucla", "num_person": 1, "data_root": str(ucla),
           "repeat": 1, "epochs": epochs, "batch_size": 4, "test_batch_size": 4, "max_iters_per_epoch": 2,
           "seed": 5, "threads": 1, "mixup_alpha": 0.2, "label_smoothing": 0.1, "log_every": 1, "progress": False,
           "lr": {"schedule": "cosine", "base_lr": 0.05, "warmup_epochs": 1, "warmup_start": 0.01},
           "work_dir": str(work_dir)}
    path.write_text(json.dumps(cfg))
    return path


def train_cmd(config, resume=False):
    return [sys.executable, "-m", "ctrgcn", "train", "--config", str(config)] + (["--resume"] if resume else [])


def final_state(work_dir):
    with np.load(work_dir / "checkpoint.npz") as ck:
        return ck["params_a"].copy(), ck["velocity_a"].copy(), json.loads(str(ck["meta"]))["epoch"]


def log_records(work_dir):
    lines = (work_dir / "log.jsonl").read_text().splitlines()
    records = [json.loads(ln) for ln in lines]  # every line whole: no torn write survives a resume
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def killed_run(config, work_dir, rng, during_write, budget):
    """Start a run and SIGKILL it: at a random moment within ``budget`` seconds, or as soon as a
    checkpoint write is seen under way. Returns whether the kill hit a checkpoint write."""
    tmp = work_dir / "checkpoint.npz.tmp"
    proc = subprocess.Popen(train_cmd(config), env=ENV, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + (budget if during_write else rng.uniform(0.3, budget))
    hit = False
    while proc.poll() is None and time.monotonic() < deadline:
        if during_write and tmp.exists():
            hit = True
            break
        time.sleep(0.0005 if during_write else 0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return hit or tmp.exists()


def test_kill_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path, ucla):
    ref_dir = tmp_path / "ref"
    t0 = time.monotonic()
    subprocess.run(train_cmd(write_config(tmp_path / "ref.json", ucla, ref_dir)), env=ENV, cwd=str(ROOT), check=True,
                   capture_output=True)
    duration = time.monotonic() - t0
    ref_params, ref_velocity, ref_epoch = final_state(ref_dir)
    ref_log = log_records(ref_dir)
    rng = random.Random(12)
    hits = 0
    for trial in range(5):
        work = tmp_path / f"trial{trial}"
        config = write_config(tmp_path / f"trial{trial}.json", ucla, work)
        during_write = trial >= 3  # trials 4 and 5 aim at a checkpoint write
        hits += killed_run(config, work, rng, during_write, duration)
        if during_write and not hits:  # missed the window: one more try at it
            hits += killed_run(config, work, rng, True, duration)
        if (work / "checkpoint.npz").exists():
            with np.load(work / "checkpoint.npz") as ck:  # whatever the moment, a whole checkpoint or none
                assert ck["params_a"].shape == ref_params.shape
        done = subprocess.run(train_cmd(config, resume=True), env=ENV, cwd=str(ROOT), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        params, velocity, epoch = final_state(work)
        assert epoch == ref_epoch
        assert np.array_equal(params, ref_params) and np.array_equal(velocity, ref_velocity), f"trial {trial}"
        assert log_records(work) == ref_log, f"trial {trial}"
        assert (work / "last.ctrgcn").read_bytes() == (ref_dir / "last.ctrgcn").read_bytes()
        assert not [p.name for p in work.iterdir() if ".tmp" in p.name]
    assert hits >= 1, "no kill landed during a checkpoint write"


def test_log_lines_reach_the_disk_before_the_epoch_ends(tmp_path, ucla):
    """Killed in its first epoch (after its first step), a run has already written that step's line."""
    work = tmp_path / "w"
    config = write_config(tmp_path / "c.json", ucla, work, epochs=1)
    cfg = json.loads(config.read_text())
    cfg["max_iters_per_epoch"], cfg["repeat"] = 50, 20
    config.write_text(json.dumps(cfg))
    proc = subprocess.Popen(train_cmd(config), env=ENV, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log = work / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= 1:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lines = log.read_text().splitlines()
    assert lines and all("iter" in json.loads(ln) for ln in lines)
    assert not (work / "checkpoint.npz").exists()  # no epoch ended: the lines were not held back for one


def test_unwritable_work_dir_is_a_clear_error(tmp_path, ucla):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ctrgcn.FileError, match="work_dir .* is not writable"):
        ctrgcn.train(json.loads(write_config(tmp_path / "c.json", ucla, blocker / "run").read_text()))
    done = subprocess.run(train_cmd(write_config(tmp_path / "c.json", ucla, blocker / "run")), env=ENV, cwd=str(ROOT),
                          capture_output=True, text=True)
    assert done.returncode != 0 and "is not writable" in done.stderr and "Traceback" not in done.stderr


_FULL_DISK = """
import json, resource, signal, sys
import ctrgcn
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)    # a write beyond the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
try:
    ctrgcn.train(json.load(open(sys.argv[1])), resume=True)
except ctrgcn.FileError as exc:
    print("FileError:", exc)
"""


def test_full_disk_leaves_the_last_checkpoint_intact(tmp_path, ucla):
    """After one epoch the disk 'fills up' (a file-size limit of 64 KB: every model or checkpoint
    write fails, log lines still pass): the resumed run stops with a FileError naming the file, and
    the checkpoint of the first epoch is byte for byte what it was."""
    work = tmp_path / "w"
    config = write_config(tmp_path / "c.json", ucla, work, epochs=3)
    ctrgcn.train(json.loads(config.read_text()), stop_after=1)
    before = (work / "checkpoint.npz").read_bytes()
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(config), str(64 << 10)], env=ENV, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("FileError:") and "cannot write" in done.stdout, done.stdout
    assert (work / "checkpoint.npz").read_bytes() == before
    assert not [p.name for p in work.iterdir() if ".tmp" in p.name]
    # and with room again, the run resumes from that checkpoint to the end
    result = ctrgcn.train(json.loads(config.read_text()), resume=True)
    assert [h["epoch"] for h in result["history"]] == [0, 1, 2]

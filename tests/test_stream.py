"""ctrgcn.Stream: windows over a live pose stream, against the offline preparation of real NTU and
NW-UCLA recordings, with persons that appear, vanish and skip frames, strides and smoothing; and
examples/stream_replay.py."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.data import NWUCLA, prepare_sample, read_skeleton
from ctrgcn.data.ucla import load_sequence
from ctrgcn.inputs import prepare

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
UCLA_ROOT = SHARED / "data" / "nw-ucla" / "all_sqe"
NTU_SAMPLES = SHARED / "data" / "ntu" / "skeleton-samples"
ONE_BODY = "S002C001P003R001A003"  # 100 frames, one body
LONG_UCLA = "a08_s07_e01_v03"      # 126 frames


def skeleton_frames(path):
    sk = read_skeleton(path)
    where = [{int(f): i for i, f in enumerate(b.frames)} for b in sk.bodies]
    return [{b.id: b.joints[w[t]] for b, w in zip(sk.bodies, where) if t in w} for t in range(sk.num_frames)]


@pytest.fixture(scope="module")
def ntu_model():
    m = ctrgcn.Model("CTRGCN_lightV2", num_classes=60, graph="ntu", num_person=2, seed=11)
    m.classes = list(ctrgcn.NTU60_CLASSES)
    return m


def test_ntu_window_is_the_reference_preparation(ntu_model):
    """With the window as long as the recording, the one update equals predict on the file: parse,
    translate to the first frame's spine, crop and resize to 64 frames."""
    path = NTU_SAMPLES / f"{ONE_BODY}.skeleton"
    if not path.exists():
        pytest.skip("no NTU samples")
    frames = skeleton_frames(path)
    stream = ctrgcn.Stream(ntu_model, window=len(frames), stride=5)
    outs = [stream.push(f) for f in frames]
    assert all(o is None for o in outs[:-1]) and outs[-1] is not None
    s = prepare_sample(path)
    want = ntu_model.predict_proba(ctrgcn.preprocess(s.paddle(len(s.aligned)))[None])[0]
    np.testing.assert_allclose(outs[-1].window_probabilities, want, rtol=1e-4, atol=1e-6)
    assert outs[-1].label == ctrgcn.NTU60_CLASSES[int(want.argmax())] and outs[-1].frame == len(frames) - 1


def test_ucla_window_is_the_validation_feeder(ucla_subset):
    if not UCLA_ROOT.is_dir():
        pytest.skip("no NW-UCLA data")
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, seed=2)
    seq, _ = load_sequence(UCLA_ROOT / f"{LONG_UCLA}.json")
    stream = ctrgcn.Stream(model, window=len(seq), stride=1)
    for joints in seq[:-1]:
        assert stream.push(joints) is None  # one (V, C) array: one person
    out = stream.push(seq[-1])
    val = NWUCLA(ucla_subset([LONG_UCLA]), split="val")
    want = model.predict_proba(val[val.names.index(LONG_UCLA)][0][None])[0]
    np.testing.assert_allclose(out.window_probabilities, want, rtol=1e-4, atol=1e-6)
    # then a sliding window of 52: an update every 8 frames, each the feeder's view of those frames
    stream = ctrgcn.Stream(model, window=52, stride=8)
    updates = [(t, o) for t, o in enumerate(stream.push(j) for j in seq) if o is not None]
    assert [t for t, _ in updates] == list(range(51, len(seq), 8))
    t, o = updates[3]
    x = prepare(model, seq[t - 51:t + 1, None].astype(np.float32))
    np.testing.assert_allclose(o.window_probabilities, model.predict_proba(x[None])[0], rtol=1e-5, atol=1e-7)


def test_persons_appear_vanish_and_skip_frames(ntu_model):
    rng = np.random.default_rng(0)
    poses = {p: rng.standard_normal((40, 25, 3)).astype(np.float32) for p in "abc"}
    frames = []
    for t in range(40):
        f = {"a": poses["a"][t]}
        if 10 <= t < 30 and t not in (20, 21, 22):  # b enters at 10, is missed at 20-22, leaves at 30
            f["b"] = poses["b"][t]
        if t in (5, 6):  # c flickers in for two frames: fewer frames than a and b
            f["c"] = poses["c"][t]
        frames.append(f)
    stream = ctrgcn.Stream(ntu_model, window=40, stride=4, center=None)
    for f in frames:
        out = stream.push(f)
    clip, persons = stream._clip()
    assert persons == ["a", "b"] and out.persons == ["a", "b"]
    np.testing.assert_array_equal(clip[:, 0], poses["a"])
    assert not clip[:10, 1].any() and not clip[30:, 1].any()          # absent before and after: zeros
    np.testing.assert_array_equal(clip[10:20, 1], poses["b"][10:20])
    for t in (20, 21, 22):                                             # a dropout keeps the last pose
        np.testing.assert_array_equal(clip[t, 1], poses["b"][19])
    want = ntu_model.predict_proba(prepare(ntu_model, clip)[None])[0]
    np.testing.assert_allclose(out.window_probabilities, want, rtol=1e-5, atol=1e-7)
    # nobody in the window: no prediction; persons by position work too
    empty = ctrgcn.Stream(ntu_model, window=3, stride=1)
    assert [empty.push(None), empty.push({}), empty.push({})] == [None, None, None]
    assert empty.push(np.stack([poses["a"][0], poses["b"][0]])) is not None


def test_centering_translates_like_ntu(ntu_model):
    """center: the window's first spine position is subtracted, so a shifted stream predicts the same."""
    rng = np.random.default_rng(4)
    poses = rng.standard_normal((16, 25, 3)).astype(np.float32)
    a = ctrgcn.Stream(ntu_model, window=16, stride=1)
    b = ctrgcn.Stream(ntu_model, window=16, stride=1)
    for p in poses:
        oa, ob = a.push(p), b.push(p + np.array([0.5, -2.0, 3.0], np.float32))
    np.testing.assert_allclose(oa.window_probabilities, ob.window_probabilities, rtol=1e-4, atol=1e-6)
    # keypoints with a confidence channel: only x and y move
    coco = ctrgcn.Model("CTRGCN_lightV2", num_classes=3, graph="coco17", num_person=1, in_channels=3)
    s = ctrgcn.Stream(coco, window=4, stride=1, center=0)
    kp = np.random.default_rng(6).random((4, 17, 3)).astype(np.float32)
    for p in kp:
        s.push(p)
    clip, _ = s._clip()
    np.testing.assert_allclose(clip[:, 0, :, :2], kp[:, :, :2] - kp[0, 0, :2], atol=1e-7)
    np.testing.assert_array_equal(clip[:, 0, :, 2], kp[:, :, 2])


def test_smoothing(ntu_model):
    rng = np.random.default_rng(5)
    frames = [rng.standard_normal((25, 3)).astype(np.float32) * (1 + t / 10) for t in range(40)]
    runs = {}
    for mode in (None, "mean", "ema"):
        s = ctrgcn.Stream(ntu_model, window=16, stride=4, smoothing=mode, smooth_windows=3, alpha=0.3)
        runs[mode] = [o for o in map(s.push, frames) if o is not None]
    raw = [o.window_probabilities for o in runs[None]]
    assert len(raw) == 7
    for mode in ("mean", "ema"):
        for o, r in zip(runs[mode], raw):
            np.testing.assert_allclose(o.window_probabilities, r, rtol=1e-6)
    for k, o in enumerate(runs["mean"]):
        np.testing.assert_allclose(o.probabilities, np.mean(raw[max(0, k - 2):k + 1], axis=0), rtol=1e-5, atol=1e-7)
    ema = raw[0]
    for k, o in enumerate(runs["ema"]):
        ema = raw[0] if k == 0 else 0.3 * raw[k] + 0.7 * ema
        np.testing.assert_allclose(o.probabilities, ema, rtol=1e-5, atol=1e-7)
        assert o.index == int(np.argmax(o.probabilities)) and o.top[0][1] == o.index


def test_bad_frames_and_settings(ntu_model):
    s = ctrgcn.Stream(ntu_model, window=4)
    for bad in (np.zeros((20, 3)), np.zeros((25, 2)), {"a": np.full((25, 3), np.nan)}, np.zeros((1, 1, 25, 3))):
        with pytest.raises(ctrgcn.InputError):
            s.push(bad)
    assert s.frames_seen == 0  # a refused frame is not counted
    for kw in (dict(window=0), dict(stride=0), dict(smoothing="median"), dict(alpha=0), dict(center=25)):
        with pytest.raises(ctrgcn.InputError):
            ctrgcn.Stream(ntu_model, **kw)


def test_stream_replay_example(tmp_path, ntu_model):
    path = NTU_SAMPLES / "S001C003P008R002A058.skeleton"  # two bodies
    if not path.exists():
        pytest.skip("no NTU samples")
    ntu_model.save(tmp_path / "ntu.ctrgcn")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "stream_replay.py"), str(path), "--weights",
                        str(tmp_path / "ntu.ctrgcn"), "--window", "32", "--stride", "8"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [int(line.split()[1]) for line in lines] == list(range(31, 70, 8))
    assert all("2 persons" in line and any(c in line for c in ctrgcn.NTU60_CLASSES) for line in lines)

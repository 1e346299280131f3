"""NW-UCLA against the official feeder's validation tensors, training augmentation, bad input."""
import json
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.data import NWUCLA

SHARED = Path(__file__).resolve().parents[2] / "shared"
ROOT = SHARED / "data" / "nw-ucla" / "all_sqe"
GOLDEN = SHARED / "golden" / "nw-ucla"


@pytest.fixture(scope="module")
def root():
    if not ROOT.is_dir():
        pytest.skip(f"NW-UCLA data not found under {ROOT}")
    return ROOT


@pytest.mark.parametrize("modality", ["joint", "bone"])
def test_val_matches_official_feeder(root, modality):
    path = GOLDEN / f"val_{modality}.npz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    gold = np.load(path)
    ds = NWUCLA(root, split="val", modality=modality)
    assert len(ds) == 464 and sorted(ds.names) == sorted(str(n) for n in gold["names"])
    pos = {n: i for i, n in enumerate(ds.names)}
    idx = np.array([pos[str(n)] for n in gold["names"]])
    x, y = ds.batch(idx)
    assert x.shape == (464, 3, 52, 20, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x, gold["x"], atol=1e-5, rtol=0)
    assert np.array_equal(y, gold["y"])
    x0, y0 = ds[int(idx[0])]
    assert np.array_equal(x0, x[0]) and y0 == y[0]


def _reference_val(seq):
    """The official validation transform, in NumPy (for the motion modalities golden lacks)."""
    v = seq - seq[0, 1]
    flat = v.reshape(-1, 3)
    flat = (flat - flat.min(0)) / (flat.max(0) - flat.min(0)) * 2 - 1
    v = flat.reshape(-1, 20, 3)
    return v[np.linspace(0, len(v) - 1, 52).astype(int)]


def test_motion_modalities_against_numpy(root):
    from ctrgcn.data.modalities import UCLA_BONE_PAIRS
    name = "a01_s01_e00_v03"
    seq = np.array(json.loads((root / f"{name}.json").read_text())["skeletons"], np.float64)
    data = _reference_val(seq)
    bone = np.zeros_like(data)
    for c, p in UCLA_BONE_PAIRS:
        bone[:, c - 1] = data[:, c - 1] - data[:, p - 1]
    for modality, ref in (("motion", data), ("bone_motion", bone)):
        mot = np.zeros_like(ref)
        mot[:-1] = ref[1:] - ref[:-1]
        ds = NWUCLA(root, split="val", modality=modality)
        x, _ = ds[ds.names.index(name)]
        np.testing.assert_allclose(x[..., 0], mot.transpose(2, 0, 1), atol=1e-5)


def test_train_split_and_augmentation(root):
    ds = NWUCLA(root, split="train", seed=3)
    assert len(ds) == 1020 and set(n[-3:] for n in ds.names) == {"v01", "v02"}
    assert set(np.unique(ds.labels)) == set(range(10))
    x, y = ds.batch(np.arange(64))
    assert x.shape == (64, 3, 52, 20, 1) and np.isfinite(x).all()
    assert x.min() >= -1 - 1e-6 and x.max() <= 1 + 1e-6
    # each axis of the sequence reaches -1 and 1 unless the sampled frames miss the extremes
    again, _ = ds.batch(np.arange(64))
    assert np.array_equal(x, again)  # deterministic for (seed, epoch, index)
    other, _ = ds.batch(np.arange(64), epoch=1)
    assert not np.array_equal(x, other)
    assert not np.array_equal(x, NWUCLA(root, split="train", seed=4).batch(np.arange(64))[0])
    # the same item alone or in a batch: the same tensor
    assert np.array_equal(ds[5][0], x[5])
    rep = NWUCLA(root, split="train", repeat=2)
    assert len(rep) == 2040 and rep[1020][1] == rep[0][1]


def _write(tmp_path, name, content):
    d = tmp_path / "all_sqe"
    d.mkdir(exist_ok=True)
    (d / f"{name}.json").write_text(content)
    return d


def test_degenerate_samples_are_finite(tmp_path):
    one_frame = json.dumps({"skeletons": [[[0.1 * j, 0.2, 3.0] for j in range(20)]], "label": 2})
    flat = json.dumps({"skeletons": [[[1.0, 2.0, 3.0]] * 20] * 7, "label": 1})
    d = _write(tmp_path, "a01_s01_e00_v03", one_frame)
    _write(tmp_path, "a01_s01_e01_v03", flat)
    _write(tmp_path, "a01_s01_e00_v01", one_frame)
    for split in ("val", "train"):
        for modality in ("joint", "bone", "motion", "bone_motion"):
            ds = NWUCLA(d, split=split, modality=modality)
            x, y = ds.batch(np.arange(len(ds)))
            assert np.isfinite(x).all()
    x, y = NWUCLA(d, split="val").batch([0, 1])
    assert y.tolist() == [1, 0] and np.all(x[1] == 0)  # every axis flat: 0
    assert np.all(x[0, 1] == 0) and np.all(x[0, 2] == 0) and x[0, 0].min() == -1 and x[0, 0].max() == 1


@pytest.mark.parametrize("content,message", [
    ("", "empty file"),
    ("{\"skeletons\": [[[1, 2, 3]", "malformed JSON"),
    ("[1, 2]", "expected an object"),
    ("{\"skeletons\": [], \"label\": 1}", "zero frames"),
    ("{\"skeletons\": [[[1, 2]]], \"label\": 1}", r"must be \(frames, 20, 3\)"),
    ("{\"skeletons\": [[[1, 2, \"x\"]]], \"label\": 1}", "array of numbers"),
    ("{\"skeletons\": [[[1, 2, 3]] * 20], \"label\": 1}", "malformed JSON"),
    ("{\"skeletons\": [[[1, 2, 3]]], \"label\": 11}", "label must be"),
    ("{\"skeletons\": [[[NaN, 2, 3]]], \"label\": 1}", "non-finite|frames, 20, 3"),
])
def test_bad_json(tmp_path, content, message):
    d = _write(tmp_path, "a01_s01_e00_v03", content)
    with pytest.raises(ctrgcn.InputError, match=message):
        NWUCLA(d, split="val")


def test_bad_arguments(tmp_path):
    with pytest.raises(ctrgcn.FileError):
        NWUCLA(tmp_path / "nope")
    d = _write(tmp_path, "a01_s01_e00_v03", json.dumps({"skeletons": [[[1, 2, 3]] * 20], "label": 1}))
    with pytest.raises(ctrgcn.InputError):
        NWUCLA(d, split="test")
    with pytest.raises(ctrgcn.InputError):
        NWUCLA(d, split="val", modality="velocity")
    with pytest.raises(ctrgcn.FileError):
        NWUCLA(d, split="train")  # no view 1 or 2 files
    ds = NWUCLA(d, split="val")
    with pytest.raises(IndexError):
        ds[1]
    with pytest.raises(IndexError):
        ds.batch([0, 5])

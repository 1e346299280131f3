"""Modalities, NTU augmentation (C) against NumPy references, and the batch loader."""
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.data import Loader, NTUDataset, bone, bone_motion, motion, prepare_ntu
from ctrgcn.data.modalities import NTU_BONE_PAIRS, UCLA_BONE_PAIRS

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "data" / "ntu" / "skeleton-samples"


def _np_bone(x, pairs):
    out = np.zeros_like(x)
    for c, p in pairs:
        out[:, :, c - 1] = x[:, :, c - 1] - x[:, :, p - 1]
    return out


def _np_motion(x):
    out = np.zeros_like(x)
    out[:, :-1] = x[:, 1:] - x[:, :-1]
    return out


@pytest.mark.parametrize("V,pairs,M", [(25, NTU_BONE_PAIRS, 2), (20, UCLA_BONE_PAIRS, 1)])
def test_modalities_match_numpy(V, pairs, M):
    x = np.random.default_rng(0).standard_normal((3, 17, V, M)).astype(np.float32)
    np.testing.assert_array_equal(bone(x), _np_bone(x, pairs))
    np.testing.assert_array_equal(motion(x), _np_motion(x))
    np.testing.assert_array_equal(bone_motion(x), _np_motion(_np_bone(x, pairs)))
    root = 20 if V == 25 else 2  # (21, 21) and (3, 3): zero bones
    assert np.all(bone(x)[:, :, root] == 0)
    assert bone(x[None]).shape == (1, 3, 17, V, M)
    with pytest.raises(ctrgcn.InputError):
        bone(np.zeros((3, 4, 7, 1)))
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.data.modality(x, "speed")


@pytest.fixture(scope="module")
def xsub(tmp_path_factory):
    if not SAMPLES.is_dir():
        pytest.skip("no NTU samples")
    out = tmp_path_factory.mktemp("ntu")
    prepare_ntu(SAMPLES, out, workers=2, npz=True)
    return out


def test_ntu_eval_is_the_test_time_preprocess(xsub):
    ds = NTUDataset(xsub / "xsub", split="val")
    assert ds.names == ["S002C001P003R001A003", "S004C002P003R001A017"]
    raw = np.load(xsub / "xsub" / "val_data.npy")
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (3, 64, 25, 2) and y == ds.labels[i]
        np.testing.assert_allclose(x, ctrgcn.preprocess(raw[i]), atol=1e-5)
    npz = NTUDataset(xsub / "NTU60_CS.npz", split="test")
    assert np.array_equal(npz.batch([0, 1])[0], ds.batch([0, 1])[0]) and np.array_equal(npz.labels, ds.labels)


def test_ntu_eval_golden_example():
    path = SHARED / "golden" / "official" / "example_preprocess.npz"
    if not path.exists():
        pytest.skip("no example_preprocess.npz")
    z = np.load(path)
    from ctrgcn import _core
    x = _core.data_ntu_batch(np.ascontiguousarray(z["raw"][None]), np.array([0]), 0, False, 64, 0.5, 1.0, 0.95, 64,
                             0.0, 0)
    np.testing.assert_allclose(x[0], z["cropped"], atol=1e-5)


def _np_crop_resize(x, begin, length, window=64):
    clip = x[:, begin:begin + length]
    src = np.maximum((np.arange(window) + 0.5) * (length / window) - 0.5, 0)
    i0 = np.minimum(np.floor(src).astype(int), length - 1)
    i1 = np.minimum(i0 + 1, length - 1)
    w = (src - i0)[None, :, None, None]
    return clip[:, i0] * (1 - w) + clip[:, i1] * w


def test_ntu_train_crop_and_rotation(xsub):
    plain = NTUDataset(xsub / "xsub", split="train", rotation=0.0, seed=1)
    rot = NTUDataset(xsub / "xsub", split="train", seed=1)
    raw = np.load(xsub / "xsub" / "train_data.npy")
    for i in range(len(plain)):
        valid = int(np.count_nonzero(raw[i].sum(axis=(0, 2, 3)) != 0))
        x, _ = plain[i]
        # the crop is one of the windows the rule allows: find it
        lengths = range(min(64, valid), valid + 1)
        found = any(np.allclose(x, _np_crop_resize(raw[i], b, L), atol=1e-5)
                    for L in lengths if L >= min(max(int(valid * 0.5), 64), valid)
                    for b in range(valid - L + 1))
        assert found, f"sample {i}: no crop window of the rule reproduces the output"
        r, _ = rot[i]
        # same crop (same stream), then a rotation: lengths of every joint vector are kept
        np.testing.assert_allclose(np.linalg.norm(r, axis=0), np.linalg.norm(x, axis=0), atol=1e-5)
        assert not np.allclose(r, x)
    a, _ = rot.batch([0, 1, 2])
    assert np.array_equal(a, rot.batch([0, 1, 2])[0]) and not np.array_equal(a, rot.batch([0, 1, 2], epoch=1)[0])
    bm = NTUDataset(xsub / "xsub", split="train", modality="bone_motion", seed=1)
    np.testing.assert_allclose(bm.batch([0])[0][0], _np_motion(_np_bone(a[0], NTU_BONE_PAIRS)), atol=1e-6)


class _Toy:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((3, 4, 5, 1), i, np.float32), i % 3


def test_loader_generic_and_order():
    ld = Loader(_Toy(10), batch_size=4, shuffle=True, seed=0)
    assert ld.drop_last and len(ld) == 2
    e0 = [y.tolist() for _, y in ld]
    e1 = [y.tolist() for _, y in ld]
    assert len(e0) == 2 and e0 != e1
    seen = np.concatenate([x[:, 0, 0, 0, 0] for x, _ in Loader(_Toy(10), 4, shuffle=False)])
    assert seen.tolist() == list(range(10))  # drop_last defaults to False without shuffling
    assert Loader(_Toy(10), 4, shuffle=True, drop_last=False).__len__() == 3
    with pytest.raises(ctrgcn.InputError):
        Loader(_Toy(3), 0)


def test_loader_stops_and_reports_errors():
    class Bad(_Toy):
        def __getitem__(self, i):
            if i == 7:
                raise ValueError("broken sample")
            return super().__getitem__(i)
    with pytest.raises(ValueError, match="broken sample"):
        list(Loader(Bad(10), 2, shuffle=False))
    it = iter(Loader(_Toy(100), 2, shuffle=False))
    next(it)
    it.close()  # the worker thread ends


def test_loader_over_ucla():
    root = SHARED / "data" / "nw-ucla" / "all_sqe"
    if not root.is_dir():
        pytest.skip("no NW-UCLA data")
    ds = ctrgcn.data.NWUCLA(root, split="val")
    ld = Loader(ds, batch_size=64, shuffle=False)
    xs, ys = zip(*ld)
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.dtype == np.float32 and x.shape == (464, 3, 52, 20, 1) and x.flags.c_contiguous
    assert np.array_equal(x, ds.batch(np.arange(464))[0]) and np.array_equal(y, ds.labels)
    model = ctrgcn.Model("CTRGCN", num_classes=10, graph="ucla", num_person=1)
    assert model(xs[0][:2]).shape == (2, 10)

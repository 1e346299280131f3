"""ctrgcn.data.Sequences over real NW-UCLA clips: the evaluation crop against ctrgcn.preprocess, the
training crop and rotation, modalities, persons, 2-D layouts, the .npz file form, and training from
it with ``python -m ctrgcn train --config``."""
import json
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.__main__ import main
from ctrgcn.data import Loader, Sequences, modality, write_npz
from ctrgcn.data.ucla import load_sequence

SHARED = Path(__file__).resolve().parents[2] / "shared"
UCLA_ROOT = SHARED / "data" / "nw-ucla" / "all_sqe"


@pytest.fixture(scope="module")
def clips():
    """24 real NW-UCLA clips (views 1 and 3) as float32 (T, 20, 3), their labels and names."""
    if not UCLA_ROOT.is_dir():
        pytest.skip("no NW-UCLA data")
    files = sorted(UCLA_ROOT.glob("a0[1-4]_s0[1-3]_e00_v0[13].json"))
    seqs, labels = zip(*(load_sequence(f) for f in files))
    return [s.astype(np.float32) for s in seqs], np.array(labels), [f.stem for f in files]


def as_ctvm(seq):
    return seq.transpose(2, 0, 1)[..., None]  # (T, V, C) -> (C, T, V, 1)


def test_eval_crop_is_the_test_time_preprocess(clips):
    seqs, labels, names = clips
    ds = Sequences(seqs, labels, graph="ucla", window=48, names=names)
    assert len(ds) == len(seqs) and ds.names == names and not ds.train and ds.rotation == 0.3
    for i in (0, 7, len(seqs) - 1):
        x, y = ds[i]
        assert x.shape == (3, 48, 20, 1) and y == labels[i]
        np.testing.assert_allclose(x, ctrgcn.preprocess(as_ctvm(seqs[i]), window=48), atol=1e-5)
    xb, yb = ds.batch([3, 1])
    np.testing.assert_array_equal(xb[1], ds[1][0])
    np.testing.assert_array_equal(yb, labels[[3, 1]])
    bone = Sequences(seqs, labels, graph="ucla", window=48, modality="bone")
    np.testing.assert_allclose(bone[5][0], modality(ds[5][0], "bone", "ucla"), atol=1e-6)
    assert ds.model_args() == dict(num_classes=int(labels.max()) + 1, graph="ucla", num_person=1, in_channels=3)


def test_training_crop_and_rotation(clips):
    seqs, labels, _ = clips
    whole = Sequences(seqs, labels, window=40, train=True, p_interval=(1.0, 1.0), rotation=0.0, seed=3)
    for i in (0, 9):  # ratio 1 and no rotation: the whole clip, resized
        np.testing.assert_allclose(whole[i][0], ctrgcn.preprocess(as_ctvm(seqs[i]), window=40, p=1.0), atol=1e-5)
    rotated = Sequences(seqs, labels, window=40, train=True, p_interval=(1.0, 1.0), seed=3)
    a, b = whole[4][0], rotated[4][0]
    assert np.abs(a - b).max() > 1e-2  # rotated ...
    np.testing.assert_allclose(np.linalg.norm(b, axis=0), np.linalg.norm(a, axis=0), rtol=1e-4, atol=1e-5)  # ... rigidly
    aug = Sequences(seqs, labels, window=40, train=True, seed=3)
    e0, e0_again, e1 = aug.batch([2, 5], epoch=0)[0], aug.batch([2, 5], epoch=0)[0], aug.batch([2, 5], epoch=1)[0]
    np.testing.assert_array_equal(e0, e0_again)  # a function of (seed, epoch, index)
    assert np.abs(e0 - e1).max() > 1e-3
    batches = list(Loader(aug, batch_size=8, shuffle=True, seed=0))
    assert len(batches) == len(seqs) // 8 and batches[0][0].shape == (8, 3, 40, 20, 1)


def test_persons_and_planar_layouts(clips):
    seqs, labels, _ = clips
    two = [np.stack([s, s[:, ::-1]], axis=1) if i % 2 else s for i, s in enumerate(seqs[:6])]
    ds = Sequences(two, labels[:6], graph="ucla", window=16)
    assert ds.num_person == 2
    x0, x1 = ds[0][0], ds[1][0]
    assert x0.shape == x1.shape == (3, 16, 20, 2) and not x0[..., 1].any() and x1[..., 1].any()
    # COCO-17 keypoints, (x, y) and (x, y, confidence): no 3-D rotation
    rng = np.random.default_rng(0)
    for C in (2, 3):
        kp = [rng.random((int(n), 17, C)).astype(np.float32) for n in (30, 45, 12)]
        ds = Sequences(kp, [0, 1, 0], graph="coco17", window=20, train=True)
        assert ds.rotation == 0.0 and ds.batch([0, 1, 2])[0].shape == (3, C, 20, 17, 1)
        model = ctrgcn.Model("CTRGCN_lightV2", **ds.model_args())
        assert model(ds.batch([0, 1])[0]).shape == (2, 2)
    with pytest.raises(ctrgcn.InputError):
        Sequences([k[..., :2] for k in kp], [0, 1, 0], graph="coco17", rotation=0.3)  # rotation needs 3-D joints
    for bad in (dict(sequences=[seqs[0], seqs[1][:, :10]], labels=[0, 1]), dict(sequences=seqs[:2], labels=[0]),
                dict(sequences=[seqs[0][:0]], labels=[0]), dict(sequences=seqs[:2], labels=[0, 1], graph="ntu"),
                dict(sequences=seqs[:2], labels=[0, 5], classes=["a", "b"])):
        with pytest.raises(ctrgcn.InputError):
            Sequences(**bad)


def test_npz_file_form(tmp_path, clips):
    seqs, labels, names = clips
    split = ["train" if n.endswith("v01") else "val" for n in names]
    path = tmp_path / "mine.npz"
    write_npz(path, seqs, labels, names=names, classes=ctrgcn.NWUCLA_CLASSES, split=split,
              edges=ctrgcn.graphs["ucla"].edges)
    with np.load(path) as z:
        assert z["frames"].dtype == np.float32 and z["frames"].shape[1:] == (1, 20, 3)
        assert z["offsets"].dtype == np.int64 and len(z["offsets"]) == len(seqs) + 1
    train = Sequences.from_npz(path, split="train", window=32)
    val = Sequences.from_npz(path, split="val", window=32)
    assert train.train and not val.train and len(train) + len(val) == len(seqs)
    assert train.graph == "ucla" and train.classes == list(ctrgcn.NWUCLA_CLASSES)
    i = names.index(val.names[2])
    np.testing.assert_allclose(val[2][0], ctrgcn.preprocess(as_ctvm(seqs[i]), window=32), atol=1e-5)
    assert len(Sequences.from_npz(path)) == len(seqs)
    custom = tmp_path / "custom.npz"
    write_npz(custom, seqs[:3], [0, 1, 1], edges=[(1, 0), (2, 1)])
    ds = Sequences.from_npz(custom)
    assert ds.graph == [[1, 0], [2, 1]] and ds.classes is None and ds.model_args()["num_classes"] == 2
    bone = Sequences.from_npz(custom, modality="bone")[0][0]
    joint = ds[0][0]
    np.testing.assert_allclose(bone[:, :, 2], joint[:, :, 2] - joint[:, :, 1], atol=1e-6)
    np.testing.assert_array_equal(bone[:, :, 5], 0)  # joints outside the edges are their own parents


def test_npz_errors(tmp_path, clips):
    seqs, labels, _ = clips
    good = dict(frames=np.concatenate(seqs[:2])[:, None], offsets=np.array([0, len(seqs[0]), len(seqs[0]) + len(seqs[1])]),
                labels=np.array([0, 1]))
    cases = {"no 'offsets'": dict(good, offsets=None), "rise from 0": dict(good, offsets=np.array([0, 5, 3])),
             "'labels' must be 2": dict(good, labels=np.array([0])), "'split' holds 'test'":
             dict(good, split=np.array(["train", "test"])), "but 1 classes": dict(good, classes=np.array(["a"])),
             "'frames' must be float": dict(good, frames=good["frames"].astype(np.int64))}
    for message, content in cases.items():
        path = tmp_path / "bad.npz"
        np.savez(path, **{k: v for k, v in content.items() if v is not None})
        with pytest.raises(ctrgcn.InputError, match=message) as info:
            Sequences.from_npz(path)
        assert "bad.npz" in str(info.value)
    np.savez(tmp_path / "nosplit.npz", **good)
    with pytest.raises(ctrgcn.InputError, match="no 'split'"):
        Sequences.from_npz(tmp_path / "nosplit.npz", split="train")
    with pytest.raises(ctrgcn.FileError):
        Sequences.from_npz(tmp_path / "absent.npz")


def test_train_command_reads_a_sequences_file(tmp_path, clips, capsys):
    seqs, labels, names = clips
    data = tmp_path / "mine.npz"
    write_npz(data, seqs, labels, names=names, classes=ctrgcn.NWUCLA_CLASSES,
              split=["train" if n.endswith("v01") else "val" for n in names])
    cfg = dict(dataset="sequences", data_root=str(data), variant="CTRGCN_lightV2", epochs=1, batch_size=4,
               test_batch_size=8, window=24, threads=1, progress=False, work_dir=str(tmp_path / "run"),
               lr=dict(schedule="cosine", base_lr=0.05, warmup_epochs=0))
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    assert main(["train", "--config", str(tmp_path / "cfg.json")]) == 0
    assert "done: best val acc" in capsys.readouterr().out
    model = ctrgcn.load(tmp_path / "run" / "last.ctrgcn")
    # graph, persons, channels and classes came from the file
    assert model.spec["graph"] == "ucla" and model.num_person == 1 and model.in_channels == 3
    assert model.num_classes == 10 and model.classes == list(ctrgcn.NWUCLA_CLASSES)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["epoch"] == 0 and 0 <= log[-1]["val_acc"] <= 1 and np.isfinite(log[-1]["train_loss"])

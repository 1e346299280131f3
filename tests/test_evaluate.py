"""Evaluation and fusion: metrics against plain NumPy, `python -m ctrgcn eval` on real NW-UCLA and on
NTU data prepared from the raw samples, `python -m ctrgcn ensemble` with equal, given and fitted weights."""
import json
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn import metrics
from ctrgcn.__main__ import main


def test_topk_and_confusion_match_numpy():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((200, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 200)
    order = np.argsort(-scores, axis=1)
    for k in (1, 2, 5, 7):
        assert metrics.topk_accuracy(scores, labels, k) == pytest.approx((order[:, :k] == labels[:, None]).any(1).mean())
    conf = metrics.confusion_matrix(scores, labels)
    for t in range(7):
        for p in range(7):
            assert conf[t, p] == np.sum((labels == t) & (scores.argmax(1) == p))
    per = metrics.per_class_accuracy(conf)
    assert per[3] == pytest.approx(np.mean(scores[labels == 3].argmax(1) == 3))
    assert np.isnan(metrics.per_class_accuracy(np.zeros((2, 2)))).all()
    with pytest.raises(ctrgcn.InputError):
        metrics.topk_accuracy(scores, np.full(200, 9))


def test_search_weights_finds_the_informative_stream():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, 300)
    noise = rng.standard_normal((300, 5))
    good = noise * 0.5 + 3.0 * np.eye(5)[labels]
    weights, acc = metrics.search_weights([noise * 3, good], labels)
    assert weights[0] < weights[1] and acc > 0.9
    fused = metrics.fuse([noise, good], [0.5, 2.0])
    assert np.allclose(fused, 0.5 * noise + 2.0 * good)
    with pytest.raises(ctrgcn.InputError):
        metrics.fuse([noise, good[:10]])


@pytest.fixture(scope="module")
def ucla_model(tmp_path_factory, shared):
    if not (shared / "data" / "nw-ucla" / "all_sqe").is_dir():
        pytest.skip("NW-UCLA data not found in ../shared")
    path = tmp_path_factory.mktemp("w") / "ucla.ctrgcn"
    ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, seed=5).save(str(path))
    return path


def test_eval_nwucla_val_scores_every_clip(ucla_model, shared, tmp_path, capsys):
    root = shared / "data" / "nw-ucla" / "all_sqe"
    out = tmp_path / "joint.npz"
    assert main(["eval", "--weights", str(ucla_model), "--dataset", "nwucla", "--data-root", str(root),
                 "--scores", str(out)]) == 0
    text = capsys.readouterr().out
    z = np.load(out)
    ds = ctrgcn.data.NWUCLA(root, split="val")
    assert z["scores"].shape == (464, 10) and np.array_equal(z["labels"], ds.labels)
    assert list(z["names"]) == ds.names
    model = ctrgcn.load(str(ucla_model))
    x, _ = ds.batch(np.arange(8))
    np.testing.assert_allclose(z["scores"][:8], model(x), rtol=1e-5, atol=1e-5)
    top1 = metrics.topk_accuracy(z["scores"], z["labels"])
    assert f"samples 464  top-1 {100 * top1:.2f}%" in text
    assert "confusion matrix" in text and "(48 samples)" in text


def test_eval_train_views_are_not_augmented(ucla_model, shared, tmp_path):
    out1, out2 = tmp_path / "a.npz", tmp_path / "b.npz"
    for out in (out1, out2):
        assert main(["eval", "--weights", str(ucla_model), "--config", "nwucla_ctrgcn_joint", "--modality", "bone",
                     "--split", "train", "--scores", str(out)]) == 0
    a, b = np.load(out1), np.load(out2)
    assert a["scores"].shape == (1020, 10) and str(a["modality"]) == "bone"
    assert np.array_equal(a["scores"], b["scores"])  # fixed frames, no random draw


def test_ensemble_command(tmp_path, capsys):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 120)
    streams = [rng.standard_normal((120, 4)) + 2.0 * np.eye(4)[labels] * s for s in (0.0, 1.0)]
    paths = []
    for i, (split, n) in enumerate([("val", 120), ("val", 120), ("train", 120), ("train", 120)]):
        p = tmp_path / f"{split}{i}.npz"
        np.savez(p, scores=streams[i % 2].astype(np.float32), labels=labels, modality=np.array(f"m{i % 2}"))
        paths.append(str(p))
    assert main(["ensemble", paths[0], paths[1], "--out", str(tmp_path / "f.npz")]) == 0
    fused = np.load(tmp_path / "f.npz")["scores"]
    np.testing.assert_allclose(fused, (streams[0] + streams[1]).astype(np.float32), rtol=1e-6, atol=1e-6)
    assert main(["ensemble", paths[0], paths[1], "--weights", "0,1"]) == 0
    assert f"fused (0, 1): top-1 {100 * metrics.topk_accuracy(streams[1], labels):.2f}%" in capsys.readouterr().out
    assert main(["ensemble", paths[0], paths[1], "--fit", paths[2], paths[3]]) == 0
    assert "weights chosen on the training split" in capsys.readouterr().out
    other = tmp_path / "other.npz"
    np.savez(other, scores=streams[0].astype(np.float32), labels=np.roll(labels, 1))
    assert main(["ensemble", paths[0], str(other)]) == 1
    assert "does not score the same samples" in capsys.readouterr().err
    assert main(["ensemble", paths[0], paths[1], "--weights", "1,x"]) == 1


def test_eval_on_prepared_ntu(shared, tmp_path, capsys):
    samples = shared / "data" / "ntu" / "skeleton-samples"
    if not samples.is_dir():
        pytest.skip("NTU raw samples not found in ../shared")
    out = tmp_path / "prep"
    assert main(["prepare-ntu", str(samples), str(out), "--benchmark", "ntu60", "--workers", "1", "--quiet"]) == 0
    weights = tmp_path / "ntu.ctrgcn"
    ctrgcn.Model("CTRGCN_lightV2", num_classes=60, graph="ntu", num_person=2, seed=1).save(str(weights))
    for root in (out / "xsub", out / "NTU60_CS.npz"):
        scores = tmp_path / "s.npz"
        assert main(["eval", "--weights", str(weights), "--dataset", "ntu", "--data-root", str(root),
                     "--scores", str(scores)]) == 0
        z = np.load(scores)
        ds = ctrgcn.data.NTUDataset(str(root), split="val", augment=False)
        assert z["scores"].shape == (len(ds), 60) and np.array_equal(z["labels"], ds.labels)
    assert "top-5" in capsys.readouterr().out
    assert main(["eval", "--weights", str(weights), "--dataset", "ntu"]) == 1  # no data root: a clear error


SHIPPED_NWUCLA = ["nwucla_ctrgcn_joint", "nwucla_ctrgcn_bone", "nwucla_ctrgcn_motion", "nwucla_ctrgcn_bone_motion",
                  "nwucla_ctrgcn_light_joint", "nwucla_ctrgcn_lightv1_joint", "nwucla_ctrgcn_lightv2_joint",
                  "nwucla_ctrgcn_light_joint_aug", "nwucla_ctrgcn_lightv2_joint_aug", "nwucla_ctrgcn_bone_motion_aug",
                  "nwucla_ctrgcn_bone_aug", "nwucla_ctrgcn_motion_aug", "nwucla_ctrgcn_joint_aug"]


@pytest.mark.parametrize("name", SHIPPED_NWUCLA)
def test_shipped_nwucla_model_scores_view_3(shared, name):
    """Each shipped float16 NW-UCLA model carries the class names and scores on view 3 what its training
    log recorded for the last epoch (float32) within two clips of 464, and the joint model >= 93.5%
    (the accuracy issue's floor)."""
    if name not in ctrgcn.pretrained():
        pytest.skip(f"{name} is not trained and shipped yet")
    root = shared / "data" / "nw-ucla" / "all_sqe"
    if not root.is_dir():
        pytest.skip("NW-UCLA data not found in ../shared")
    from ctrgcn.commands.evaluate import score
    log = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "nwucla" / name / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    last = max((r for r in records if "val_acc" in r), key=lambda r: r["epoch"])
    modality = name.split("_", 2)[2].removesuffix("_aug")  # joint, bone, motion, bone_motion, or light*_joint
    for variant in ("light_", "lightv1_", "lightv2_"):
        modality = modality.removeprefix(variant)
    model = ctrgcn.pretrained(name)
    assert model.classes == list(ctrgcn.NWUCLA_CLASSES)
    scores, labels = score(model, ctrgcn.data.NWUCLA(root, split="val", modality=modality))
    acc = metrics.topk_accuracy(scores, labels)
    assert abs(acc - last["val_acc"]) <= 2 / len(labels) + 1e-9, (acc, last["val_acc"])
    if name == "nwucla_ctrgcn_joint":
        assert acc >= 0.935

"""Fine-tuning (config ``init_weights``): a run starts from trained weights — a file or a shipped
model — and keeps what they learned; a new class count gets a fresh classifier; a different
network is refused before anything changes; a file with folded BatchNorms is flagged."""
import os

import numpy as np
import pytest

import ctrgcn
from ctrgcn.training.finetune import HEAD, init_from

UCLA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nw-ucla", "all_sqe")
SOURCE = "nwucla_ctrgcn_joint"


@pytest.fixture
def shipped():
    if SOURCE not in ctrgcn.pretrained():
        pytest.skip(f"{SOURCE} is not shipped")
    return ctrgcn.pretrained(SOURCE)


def test_fine_tuning_starts_from_the_shipped_accuracy(tmp_path, shipped):
    """Two small-lr steps on 32 training clips from the shipped joint model: view 3 accuracy stays
    near the shipped model's (a run from scratch scores ~10-30% after the same steps)."""
    if not os.path.isdir(UCLA):
        pytest.skip("NW-UCLA data not found in ../shared")
    cfg = {"variant": "CTRGCN", "num_classes": 10, "graph": "ucla", "num_person": 1, "data_root": UCLA,
           "repeat": 1, "epochs": 1, "batch_size": 16, "test_batch_size": 64, "train_subset": 32, "val_subset": 96,
           "max_iters_per_epoch": 2, "seed": 5, "lr": {"schedule": "cosine", "base_lr": 1e-3, "warmup_epochs": 0},
           "work_dir": str(tmp_path / "ft"), "progress": False}
    tuned = ctrgcn.train(cfg, init_weights=SOURCE)["history"][-1]["val_acc"]
    scratch = ctrgcn.train(cfg, work_dir=str(tmp_path / "scratch"))["history"][-1]["val_acc"]
    assert tuned >= 0.85 and scratch <= 0.5, (tuned, scratch)


def test_new_classes_get_a_fresh_classifier(shipped):
    m = ctrgcn.Model("CTRGCN", num_classes=3, graph="ucla", num_person=1, seed=2)
    head = {n: m.state_dict()[n] for n in HEAD}
    assert init_from([m], SOURCE) == list(HEAD)
    got, src = m.state_dict(), shipped.state_dict()
    for name, arr in got.items():
        np.testing.assert_array_equal(arr, head[name] if name in HEAD else src[name], err_msg=name)
    assert m.classes is None  # ten class names do not name three classes
    same = ctrgcn.Model("CTRGCN", num_classes=10, graph="ucla", num_person=1)
    assert init_from([same], SOURCE) == [] and same.classes == list(ctrgcn.NWUCLA_CLASSES)


@pytest.mark.parametrize("kwargs, word", [(dict(variant="CTRGCN_lightV2"), "variant"),
                                          (dict(graph="ntu", num_person=2), "num_joints"),
                                          (dict(in_channels=2), "in_channels")])
def test_a_different_network_is_refused(shipped, kwargs, word):
    args = dict(variant="CTRGCN", num_classes=10, graph="ucla", num_person=1)
    args.update(kwargs)
    m = ctrgcn.Model(args.pop("variant"), **args)
    before = m.flat_params().copy()
    with pytest.raises(ctrgcn.InputError, match=word):
        init_from([m], SOURCE)
    np.testing.assert_array_equal(m.flat_params(), before)


def test_folded_files_are_flagged_and_kept_files_are_not(tmp_path, shipped):
    folded, kept = tmp_path / "folded.ctrgcn", tmp_path / "kept.ctrgcn"
    shipped.save(folded, dtype="float16")
    shipped.save(kept, dtype="float16", fold_bn=False)
    m = ctrgcn.Model("CTRGCN", num_classes=10, graph="ucla", num_person=1)
    with pytest.warns(UserWarning, match="folded"):
        init_from([m], folded)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init_from([m], kept)
    # kept BatchNorms: the file holds the trained statistics, and predicts what the folded file does
    st = ctrgcn.load(kept).state_dict()
    assert not np.all(st["l1.tcn1.branches.0.1.running_var"] == 1)
    x = np.random.default_rng(0).standard_normal((2, 3, 52, 20, 1), dtype=np.float32)
    a, b = ctrgcn.load(folded)(x), ctrgcn.load(kept)(x)
    assert np.abs(a - b).max() <= 2e-2 * np.abs(a).max()


def test_convert_keep_bn(tmp_path, shipped, capsys):
    from ctrgcn.commands.convert import main as convert
    from ctrgcn.formats.quantize import looks_folded
    src = tmp_path / "src.ctrgcn"
    shipped.save(src)
    for flags, folded in (([], True), (["--keep-bn"], False)):
        out = tmp_path / f"out{len(flags)}.ctrgcn"
        assert convert([str(src), str(out), "--dtype", "int8"] + flags) == 0
        assert looks_folded(ctrgcn.load(out).state_dict()) is folded
    assert "BatchNorms kept" in capsys.readouterr().out

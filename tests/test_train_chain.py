"""The train -> save -> load -> infer chain on real NW-UCLA data, and exact resumption."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ctrgcn

UCLA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nw-ucla", "all_sqe")


@pytest.fixture
def ucla_root():
    if not os.path.isdir(UCLA):
        pytest.skip(f"NW-UCLA data not found at {UCLA}")
    return UCLA


def small_config(work_dir, ucla_root, **over):
    cfg = {"variant": "CTRGCN_lightV2", "num_classes": 10, "graph": "ucla", "num_person": 1,
           "data_root": ucla_root, "repeat": 1, "epochs": 2, "batch_size": 8, "test_batch_size": 16,
           "train_subset": 16, "val_subset": 16, "max_iters_per_epoch": 2, "seed": 3,
           "lr": {"schedule": "cosine", "base_lr": 0.05, "warmup_epochs": 1, "warmup_start": 0.01},
           "weight_decay": 1e-4, "work_dir": str(work_dir), "progress": False, "log_every": 1}
    cfg.update(over)
    return cfg


def test_train_save_load_predict_chain(tmp_path, ucla_root):
    from ctrgcn.data import NWUCLA
    val = NWUCLA(ucla_root, split="val")
    x, y = val.batch(np.arange(0, 464, 29))  # 16 real validation samples
    cfg = small_config(tmp_path, ucla_root, epochs=3, max_iters_per_epoch=4, mixup_alpha=0.2, label_smoothing=0.1)
    probe = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, seed=cfg["seed"])
    before = probe.gradients(x, y)[0]
    result = ctrgcn.train(cfg)
    model = result["models"][0]
    after = model.gradients(x, y)[0]
    history = result["history"]
    assert len(history) == 3 and all(np.isfinite(h["train_loss"]) for h in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert after < before, (before, after)
    # the saved model, read by a fresh process, predicts what the trained one predicts
    path = tmp_path / "last.ctrgcn"
    assert path.exists() and (tmp_path / "best.ctrgcn").exists() and (tmp_path / "checkpoint.npz").exists()
    np.save(tmp_path / "x.npy", x)
    code = ("import numpy as np, ctrgcn, sys; m = ctrgcn.load(sys.argv[1]); "
            "np.save(sys.argv[3], m(np.load(sys.argv[2])))")
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.npy"), str(tmp_path / "out.npy")],
                   check=True)
    fresh = np.load(tmp_path / "out.npy")
    ours = model(x)
    assert np.abs(fresh - ours).max() <= 1e-5 * np.abs(ours).max()
    assert (fresh.argmax(1) == model.predict(x)).all()
    # the log is JSON lines: steps and one record per epoch
    lines = [json.loads(ln) for ln in open(tmp_path / "log.jsonl")]
    assert sum("val_acc" in ln for ln in lines) == 3 and sum("loss" in ln for ln in lines) == 6  # 2 steps x 3 epochs


def test_resume_continues_exactly(tmp_path, ucla_root):
    full = ctrgcn.train(small_config(tmp_path / "full", ucla_root, epochs=3, mixup_alpha=0.2))
    part = small_config(tmp_path / "part", ucla_root, epochs=3, mixup_alpha=0.2)
    ctrgcn.train(part, stop_after=1)  # interrupted after its first epoch
    resumed = ctrgcn.train(part, resume=True)
    steps = lambda d: [json.loads(ln)["loss"] for ln in open(d / "log.jsonl") if '"loss"' in ln]
    assert steps(tmp_path / "full") == steps(tmp_path / "part")
    assert [h["train_loss"] for h in full["history"]] == [h["train_loss"] for h in resumed["history"]]
    assert np.array_equal(full["models"][0].flat_params(), resumed["models"][0].flat_params())


def test_mutual_learning_trains_two_models(tmp_path, ucla_root):
    result = ctrgcn.train(small_config(tmp_path, ucla_root, dml=True, epochs=1, max_iters_per_epoch=2))
    a, b = result["models"]
    assert not np.array_equal(a.flat_params(), b.flat_params())
    assert "val_acc_b" in result["history"][0]


def test_bad_config_is_refused(tmp_path):
    with pytest.raises(ctrgcn.InputError, match="unknown config keys"):
        ctrgcn.train({"epochz": 3, "work_dir": str(tmp_path)})
    with pytest.raises(ctrgcn.InputError, match="schedule"):
        ctrgcn.train({"lr": {"schedule": "linear"}, "work_dir": str(tmp_path), "dataset": "nwucla",
                      "data_root": str(tmp_path), "epochs": 1})

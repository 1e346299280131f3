"""The op profiler (``Model.profile``, ``Trainer.profile``, ``python -m ctrgcn profile``): it times
what ran and changes nothing that ran, on a shipped model and real NW-UCLA clips."""
import numpy as np
import pytest

import ctrgcn
from ctrgcn.__main__ import main
from ctrgcn.inputs import prepare, read_recordings, to_tmvc
from ctrgcn.training import soft_targets
from conftest import UCLA_ROOT

CLIPS = ["a01_s01_e00_v03", "a04_s02_e01_v03", "a09_s10_e02_v03"]


@pytest.fixture(scope="module")
def model_and_batch():
    if not UCLA_ROOT.is_dir():
        pytest.skip(f"no NW-UCLA data under {UCLA_ROOT}")
    model = ctrgcn.pretrained("nwucla_ctrgcn_light_joint")
    x = []
    for name in CLIPS:
        (_, rec), = read_recordings(UCLA_ROOT / f"{name}.json")
        x.append(prepare(model, to_tmvc(rec, model.in_channels, model.num_joints)))
    return model, np.stack(x).astype(np.float32)


def spatial_blocks(model):
    return sum(b["has_gcn"] for b in model.block_layout())


def test_eval_profile_counts_ops_and_keeps_results(model_and_batch):
    model, x = model_and_batch
    model.set_threads(1)  # one lane: the ops' seconds are wall seconds
    before = model(x)
    prof = model.profile(x, steps=2, warmup=1)
    ops = {op: (calls, sec) for op, calls, sec in prof.rows}
    # once a pass per spatial module: the CPU carries one person a pass, a GPU the whole batch
    assert ops["aggregate_forward"][0] in (spatial_blocks(model), len(x) * spatial_blocks(model))
    assert ops["linear_forward"][0] == 1 and ops["upload"][0] >= 1
    assert "bn_backward" not in ops and "sgd_update" not in ops  # eval runs no training op
    assert all(sec >= 0 for _, sec in ops.values())
    assert 0 < prof.op_seconds <= prof.timed_seconds * 1.05
    assert [r[2] for r in prof.rows] == sorted((r[2] for r in prof.rows), reverse=True)
    np.testing.assert_array_equal(model(x), before)
    assert "aggregate_forward" in prof.table() and len(prof.table(top=3).splitlines()) == 5
    model.set_threads(0)


def test_training_profile_matches_an_untimed_step(model_and_batch):
    model, x = model_and_batch
    y = soft_targets(np.array([0, 3, 8]), model.num_classes)
    plain, timed = model.trainer(threads=1), model.trainer(threads=1)
    prof = timed.profile(x, y, lr=0.01, steps=2, warmup=1)
    for _ in range(5):  # the same five steps (1 warm-up, 2 untimed, 2 timed), untimed
        plain.step(x, y, 0.01)
    loss_p, logits_p = plain.step(x, y, 0.01)
    loss_t, logits_t = timed.step(x, y, 0.01)
    assert loss_t == loss_p
    np.testing.assert_array_equal(logits_t, logits_p)
    ops = {op: calls for op, calls, _ in prof.rows}
    assert ops["sgd_update"] == 1 and ops["xent_forward"] == 1
    passes = x.shape[0] * model.num_person  # one thread: the graph step takes one person a pass
    assert ops["aggregate_backward"] == spatial_blocks(model) * passes
    # every forward convolution has its backward; the values conv runs pass by pass forward only
    assert ops["conv1x1_forward"] - ops["conv1x1_backward"] == spatial_blocks(model) * (passes - 1)
    assert prof.step_seconds > 0 and prof.op_seconds <= prof.timed_seconds * 1.05


def test_profile_off_after_and_bad_arguments(model_and_batch):
    model, x = model_and_batch
    with pytest.raises(ctrgcn.InputError):
        model.profile(x, steps=0)
    with pytest.raises(ctrgcn.InputError):
        model.profile(x[:, :2])  # wrong channels: the input check, before anything runs


def test_profile_command(capsys):
    assert main(["profile", "--variants", "CTRGCN_lightV1", "--batch", "2", "--steps", "1", "--top", "4"]) == 0
    out = capsys.readouterr().out
    assert "CTRGCN_lightV1 training step (2, 3, 52, 20, 1) on cpu" in out
    assert len(out.strip().splitlines()) == 6
    assert main(["profile", "--eval", "--shape", "ntu", "--steps", "1"]) == 0
    assert "CTRGCN eval (1, 3, 64, 25, 2) on cpu" in capsys.readouterr().out

"""A user-defined spec (widths, spatial modules, kernel and dilations, relation, graph, persons,
channels) works end to end: forward, training, save / load, ONNX."""
import numpy as np
import pytest

import ctrgcn


def custom_spec():
    spec = ctrgcn.preset_spec("CTRGCN_lightV2", num_classes=6, graph=[(0, 1), (1, 2), (2, 3), (1, 4), (4, 5)],
                              num_person=1, in_channels=3)
    widths = [12, 12, 16, 16, 24, 24, 24, 32, 32, 40]
    for k, b in enumerate(spec["blocks"]):
        b["out_channels"] = widths[k]
        b["spatial"] = k % 3 != 1
        b["kernel_size"] = 3 if k < 5 else 5
        b["dilations"] = [1, 3] if k < 5 else [2, 2]
    spec["relation"] = "per_subset"
    return spec


def test_presets_come_from_the_c_table():
    assert ctrgcn.VARIANTS == ("CTRGCN", "CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2")
    spec = ctrgcn.preset_spec("CTRGCN_light")
    assert [b["spatial"] for b in spec["blocks"]] == [True, False, False, True, False, True, True, False, True, True]
    assert ctrgcn.Model.from_spec(spec).variant == "CTRGCN_light"


def test_custom_spec_end_to_end(tmp_path):
    model = ctrgcn.Model.from_spec(custom_spec(), seed=4)
    assert model.variant == "custom" and model.num_joints == 6
    layout = model.block_layout()
    assert [L["kernel"] for L in layout][:2] == [3, 3] and tuple(layout[6]["dilations"]) == (2, 2)
    x = np.random.default_rng(0).standard_normal((3, 3, 10, 6, 1)).astype(np.float32)
    logits = model(x)
    assert logits.shape == (3, 6) and np.isfinite(logits).all()
    tr = model.trainer(momentum=0.9, weight_decay=1e-4)
    targets = np.eye(6, dtype=np.float32)[[0, 2, 4]]
    losses = [tr.step(x, targets, 0.05)[0] for _ in range(6)]
    assert losses[-1] < losses[0]
    tr.sync()
    path = tmp_path / "custom.ctrgcn"
    model.save(path)
    back = ctrgcn.load(path)
    assert back.spec["blocks"] == model.spec["blocks"] and back.variant == "custom"
    np.testing.assert_array_equal(back(x), model(x))
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "custom.onnx"
    model.export_onnx(onnx_path)
    got = ort.InferenceSession(str(onnx_path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, model(x), rtol=1e-4, atol=1e-4 * np.abs(model(x)).max())


@pytest.mark.parametrize("key,value,pattern", [
    ("kernel_size", 4, "kernel_size"), ("stride", 3, "stride"), ("out_channels", 2, "out_channels"),
    ("dilations", [0, 1], "dilations")])
def test_bad_custom_specs_are_refused(key, value, pattern):
    spec = custom_spec()
    spec["blocks"][3][key] = value
    with pytest.raises(ctrgcn.InputError, match=pattern):
        ctrgcn.Model.from_spec(spec)

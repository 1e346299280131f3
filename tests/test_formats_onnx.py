"""ONNX export checked by ONNX Runtime against ctrgcn's logits, four variants, two frame counts,
batch 1 and 3 (skipped without onnx / onnxruntime)."""
from pathlib import Path

import numpy as np
import pytest

import ctrgcn

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"
SETS = {"CTRGCN": "official/ntu_weights.npz"}
SETS.update({v: f"paddlevideo/{v}_weights.npz" for v in ("CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2")})


@pytest.mark.parametrize("variant", list(SETS))
def test_onnxruntime_matches(tmp_path, variant):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = GOLDEN / SETS[variant]
    model = ctrgcn.load(path) if path.exists() else ctrgcn.Model(variant, seed=3)
    model.export_onnx(tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    ops = {n.op_type for n in proto.graph.node}
    assert "Einsum" not in ops and "MatMul" in ops
    assert [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim][0::2] == ["N", "T", ""]
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for n, t in ((1, 64), (3, 37)):
        x = rng.standard_normal((n, 3, t, 25, 2)).astype(np.float32)
        ref = model(x)
        out = session.run(["logits"], {"x": x})[0]
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()


def test_runner_and_opset_bounds(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from onnx_runner import make_onnx_runner
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, seed=1)
    run = make_onnx_runner(model, tmp_path / "m.onnx", threads=1)
    x = np.random.default_rng(1).standard_normal((2, 3, 20, 20, 1)).astype(np.float32)
    ref = model(x)
    assert np.abs(run(x) - ref).max() <= 1e-4 * np.abs(ref).max()
    model.export_onnx(tmp_path / "m18.onnx", opset=18)
    with pytest.raises(ctrgcn.InputError):
        model.export_onnx(tmp_path / "m9.onnx", opset=9)

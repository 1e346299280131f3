"""PaddleVideo .pdparams and Paddle inference files, written by real Paddle (skipped when
``paddlepaddle`` is absent) and read without it; hostile and damaged pickles."""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.formats.paddle import read_inference

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"
SETS = {"CTRGCN": ("official/ntu_weights.npz", "official/ntu_eval.npz")}
SETS.update({v: (f"paddlevideo/{v}_weights.npz", f"paddlevideo/{v}_eval.npz")
             for v in ("CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2")})
needs_golden = pytest.mark.skipif(not (GOLDEN / "paddlevideo").is_dir(), reason="golden files absent")


def paddlevideo_names(state):
    """Project names -> PaddleVideo's (model-family.md): backbone./head. prefixes, _mean/_variance,
    head.fc.weight stored [4b, classes]."""
    out = {}
    for k, v in state.items():
        if k.startswith("fc."):
            out["head." + k] = np.ascontiguousarray(v.T) if k == "fc.weight" else v
        else:
            out["backbone." + k.replace("running_mean", "_mean").replace("running_var", "_variance")] = v
    return out


def golden(variant):
    w, e = SETS[variant]
    return dict(np.load(GOLDEN / w)), np.load(GOLDEN / e)


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def paddle():
    return pytest.importorskip("paddle")


@needs_golden
@pytest.mark.parametrize("variant", list(SETS))
def test_pdparams_from_paddle_gives_golden_logits(tmp_path, paddle, variant):
    state, ev = golden(variant)
    tensors = {k: paddle.to_tensor(v) for k, v in paddlevideo_names(state).items()}
    assert tensors["head.fc.weight"].shape[0] == state["fc.weight"].shape[1]
    path = tmp_path / "model.pdparams"
    paddle.save(tensors, str(path))
    model = ctrgcn.load(path)
    assert model.variant == variant
    assert rel_err(model(ev["x"]), ev["logits"]) < 1e-5


@needs_golden
def test_pdparams_with_structure_entry(tmp_path):
    state, ev = golden("CTRGCN_lightV1")
    obj = paddlevideo_names(state)
    obj["StructuredToParameterName@@"] = {k: f"param_{i}" for i, k in enumerate(obj)}
    path = tmp_path / "m.pdparams"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    assert rel_err(ctrgcn.load(path)(ev["x"]), ev["logits"]) < 1e-5


@needs_golden
def test_pdparams_shape_mismatch_and_unknown_key(tmp_path):
    state, _ = golden("CTRGCN_lightV2")
    obj = paddlevideo_names(state)
    bad = dict(obj, **{"backbone.l4.tcn1.conv_pw.0.weight": np.zeros((3, 3, 1, 1), np.float32)})
    (tmp_path / "a.pdparams").write_bytes(pickle.dumps(bad, protocol=4))
    with pytest.raises(ctrgcn.InputError, match="conv_pw"):
        ctrgcn.load(tmp_path / "a.pdparams")
    (tmp_path / "b.pdparams").write_bytes(pickle.dumps(dict(obj, **{"backbone.l4.spare": np.zeros(2)}), protocol=4))
    with pytest.raises(ctrgcn.InputError, match="unexpected"):
        ctrgcn.load(tmp_path / "b.pdparams")
    (tmp_path / "c.pdparams").write_bytes(pickle.dumps({"backbone.l1.y": np.zeros(2), "backbone.l1.x": "text"}, protocol=4))
    with pytest.raises(ctrgcn.InputError, match="not a tensor"):
        ctrgcn.load(tmp_path / "c.pdparams")


class Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("kind", ["os.system", "subprocess.Popen", "builtins.eval", "posix.system"])
def test_malicious_pdparams_runs_nothing(tmp_path, kind):
    import builtins
    marker = tmp_path / "marker"
    func = {"os.system": os.system, "subprocess.Popen": subprocess.Popen, "builtins.eval": builtins.eval,
            "posix.system": os.system}[kind]
    arg = (["touch", str(marker)],) if kind == "subprocess.Popen" else (
        (f"__import__('os').system('touch {marker}')",) if kind == "builtins.eval" else (f"touch {marker}",))
    data = pickle.dumps({"backbone.data_bn.weight": np.ones(3, np.float32), "evil": Reduce(func, arg)}, protocol=4)
    if kind == "os.system":  # pickle.dumps writes posix.system; spell os.system by hand (protocol 2 framing)
        data = b"\x80\x02cos\nsystem\nX" + len(arg[0]).to_bytes(4, "little") + arg[0].encode() + b"\x85R."
    path = tmp_path / "evil.pdparams"
    path.write_bytes(data)
    with pytest.raises(ctrgcn.Error, match="refused"):
        ctrgcn.load(path)
    assert not marker.exists()
    assert path.read_bytes() == data


def test_object_arrays_refused(tmp_path):
    path = tmp_path / "o.pdparams"
    path.write_bytes(pickle.dumps({"a": np.array([1, "x"], dtype=object)}, protocol=4))
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(path)


@needs_golden
@pytest.mark.parametrize("cut", [0.9999, 0.5, 0.05, 0.001])
def test_truncated_pdparams(tmp_path, cut):
    state, _ = golden("CTRGCN_light")
    data = pickle.dumps(paddlevideo_names(state), protocol=4)
    path = tmp_path / "cut.pdparams"
    path.write_bytes(data[: max(1, int(len(data) * cut))])
    before = path.read_bytes()
    with pytest.raises(ctrgcn.Error):
        ctrgcn.load(path)
    assert path.read_bytes() == before


# ---- Paddle inference files (paddle.jit.save) ----
EXPORT_SCRIPT = '''
import sys
import numpy as np
import paddle


class Holder(paddle.nn.Layer):
    """Parameters under nested sublayers named like PaddleVideo's; forward touches every one so
    the exported program keeps them all."""

    def __init__(self, state):
        super().__init__()
        for name, value in state.items():
            *path, leaf = name.split(".")
            layer = self
            for part in path:
                sub = layer._sub_layers.get(part)
                if sub is None:
                    sub = paddle.nn.Layer()
                    layer.add_sublayer(part, sub)
                layer = sub
            param = paddle.create_parameter(list(value.shape), "float32",
                                            default_initializer=paddle.nn.initializer.Assign(value))
            layer.add_parameter(leaf, param)

    def forward(self, x):
        total = x.mean()
        for p in self.parameters():
            total = total + p.mean()
        return total


net = Holder(dict(np.load(sys.argv[1])))
net.eval()
paddle.jit.save(net, sys.argv[2], input_spec=[paddle.static.InputSpec([None, 4], "float32", "x")])
names = {k: p.name for k, p in net.state_dict().items()}
np.savez(sys.argv[2] + ".names.npz", structured=np.array(list(names)), internal=np.array(list(names.values())))
'''


@pytest.fixture(scope="module")
def exported(tmp_path_factory, paddle):
    """lightV2 golden weights exported by paddle.jit.save with PIR (.json) and the legacy IR
    (.pdmodel + .pdiparams.info)."""
    if not (GOLDEN / "paddlevideo").is_dir():
        pytest.skip("golden files absent")
    root = tmp_path_factory.mktemp("inference")
    state, _ = golden("CTRGCN_lightV2")
    np.savez(root / "src.npz", **paddlevideo_names(state))
    (root / "export.py").write_text(EXPORT_SCRIPT)
    out = {}
    for ir, flag in (("pir", "1"), ("legacy", "0")):
        env = dict(os.environ, FLAGS_enable_pir_api=flag, GLOG_minloglevel="3")
        proc = subprocess.run([sys.executable, str(root / "export.py"), str(root / "src.npz"), str(root / ir / "m")],
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[ir] = root / ir / "m"
    return out


@pytest.mark.parametrize("ir", ["pir", "legacy"])
def test_inference_parameters_and_internal_names(exported, ir):
    prefix = exported[ir]
    expected = {".pdiparams", ".json"} if ir == "pir" else {".pdiparams", ".pdmodel", ".pdiparams.info"}
    for ext in expected:
        assert os.path.exists(str(prefix) + ext)
    names = np.load(str(prefix) + ".names.npz")
    params = read_inference(str(prefix) + ".pdiparams", structured=False)
    src = np.load(prefix.parents[1] / "src.npz")
    assert len(params) == len(src.files)
    for structured, internal in zip(names["structured"], names["internal"]):
        np.testing.assert_array_equal(params[str(internal)], src[str(structured)])


def test_inference_legacy_loads_a_model(exported):
    _, ev = golden("CTRGCN_lightV2")
    for path in (str(exported["legacy"]) + ".pdiparams", str(exported["legacy"]) + ".pdmodel", str(exported["legacy"])):
        model = ctrgcn.load(path)
        assert model.variant == "CTRGCN_lightV2"
        assert rel_err(model(ev["x"]), ev["logits"]) < 1e-5


def test_inference_pir_of_no_network_is_a_clear_error(exported):
    """The holder's program is no CTR-GCN network, so its op graph names no layer
    (test_formats_paddle3.py loads real networks' programs)."""
    with pytest.raises(ctrgcn.InputError, match="not a network of the CTR-GCN family"):
        ctrgcn.load(str(exported["pir"]) + ".pdiparams")


@pytest.mark.parametrize("ir", ["pir", "legacy"])
def test_inference_truncated_or_extended(exported, tmp_path, ir):
    data = Path(str(exported[ir]) + ".pdiparams").read_bytes()
    for ext in (".json", ".pdmodel", ".pdiparams.info"):
        if os.path.exists(str(exported[ir]) + ext):
            (tmp_path / ("m" + ext)).write_bytes(Path(str(exported[ir]) + ext).read_bytes())
    for variant in (data[: len(data) // 3], data[:-1], data + b"\0" * 8, data[:30]):
        (tmp_path / "m.pdiparams").write_bytes(variant)
        with pytest.raises(ctrgcn.InputError):
            read_inference(tmp_path / "m.pdiparams", structured=False)
        assert (tmp_path / "m.pdiparams").read_bytes() == variant
    program = next(p for p in (tmp_path / "m.json", tmp_path / "m.pdmodel") if p.exists())
    (tmp_path / "m.pdiparams").write_bytes(data)
    program.write_bytes(program.read_bytes()[: 200])
    with pytest.raises(ctrgcn.InputError):
        read_inference(tmp_path / "m.pdiparams", structured=False)

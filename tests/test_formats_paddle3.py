"""Paddle 3 inference models (PIR ``.json`` + ``.pdiparams``, no ``.pdiparams.info``) written by real
Paddle for each variant, read without Paddle; damaged and foreign programs. Skipped when
``paddlepaddle`` or the golden files are absent."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.formats.paddle import read_inference

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"
SETS = {"CTRGCN": ("official/ntu_weights.npz", "official/ntu_eval.npz", 64),
        "CTRGCN_light": ("paddlevideo/CTRGCN_light_weights.npz", "paddlevideo/CTRGCN_light_eval.npz", 60),
        "CTRGCN_lightV1": ("paddlevideo/CTRGCN_lightV1_weights.npz", "paddlevideo/CTRGCN_lightV1_eval.npz", 72),
        "CTRGCN_lightV2": ("paddlevideo/CTRGCN_lightV2_weights.npz", "paddlevideo/CTRGCN_lightV2_eval.npz", 62)}
FRAMES = 16  # the exported programs take [N, 3, 16, 25, 2]; the loaded model takes any length


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """variant -> (prefix, Paddle's logits on a short input): each variant built in Paddle with the
    golden weights and saved by ``paddle.jit.save`` with Paddle 3's defaults. All in one process, so
    the later variants' internal names count on from the earlier ones'."""
    paddle = pytest.importorskip("paddle")
    if not (GOLDEN / "paddlevideo").is_dir():
        pytest.skip("golden files absent")
    import paddle_ctrgcn
    root = tmp_path_factory.mktemp("paddle3")
    out = {}
    for variant, (weights, evals, base) in SETS.items():
        net = paddle_ctrgcn.Network(variant, base)
        state = paddle_ctrgcn.paddle_state(dict(np.load(GOLDEN / weights)))
        missing, unexpected = net.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
        assert not missing and not unexpected
        net.eval()
        x = np.load(GOLDEN / evals)["x"][:1, :, :FRAMES]
        logits = net(paddle.to_tensor(x)).numpy()
        prefix = root / variant
        paddle.jit.save(net, str(prefix),
                        input_spec=[paddle.static.InputSpec([None, 3, FRAMES, 25, 2], "float32", "x")])
        out[variant] = (prefix, x, logits)
    return out


@pytest.mark.parametrize("variant", list(SETS))
def test_paddle3_export_gives_golden_and_paddle_logits(exports, variant):
    prefix, x, paddle_logits = exports[variant]
    for ext, present in ((".json", True), (".pdiparams", True), (".pdiparams.info", False), (".pdmodel", False)):
        assert os.path.exists(str(prefix) + ext) == present, ext
    ev = np.load(GOLDEN / SETS[variant][1])
    for path in (str(prefix) + ".json", str(prefix) + ".pdiparams", str(prefix)):
        model = ctrgcn.load(path)
        assert model.variant == variant
        assert model.num_classes == 60
        assert rel_err(model(ev["x"]), ev["logits"]) < 1e-5
    assert rel_err(model(x), paddle_logits) < 1e-5


def test_internal_names_count_from_anywhere(exports):
    """Later exports in one process name their layers conv2d_53..., not conv2d_0: only the order counts."""
    names = read_inference(str(exports["CTRGCN_lightV2"][0]) + ".pdiparams", structured=False)
    assert "conv2d_0.w_0" not in names and "create_parameter_0.w_0" not in names
    structured = read_inference(str(exports["CTRGCN_lightV2"][0]) + ".pdiparams")
    golden = np.load(GOLDEN / SETS["CTRGCN_lightV2"][0])
    assert set(structured) == set(golden.files)
    for name in golden.files:
        ref = golden[name].T if name == "fc.weight" else golden[name]  # the file keeps Paddle's [in, out]
        np.testing.assert_array_equal(structured[name], ref)


def copy_export(exports, variant, dest):
    prefix = exports[variant][0]
    for ext in (".json", ".pdiparams"):
        shutil.copy(str(prefix) + ext, dest / ("m" + ext))
    return dest / "m"


def edit_program(path, change):
    program = json.loads(Path(str(path) + ".json").read_text())
    change(program["program"]["regions"][0]["blocks"][0]["ops"])
    Path(str(path) + ".json").write_text(json.dumps(program))


def rename_ops(old, new):
    def change(ops):
        for op in ops:
            if op.get("#") == old:
                op["#"] = new
    return change


def set_field(op_name, key, value):
    def change(ops):
        for op in ops:
            if op.get("#") == op_name:
                op[key] = value
    return change


@pytest.mark.parametrize("change, match", [
    (rename_ops("1.conv2d", "1.depthwise_conv2d"), "op graph uses"),  # convolution weights feed no conv2d
    (rename_ops("1.batch_norm_", "1.layer_norm"), "op graph uses"),
    (set_field("1.conv2d", "I", "not a list"), "malformed PIR program"),
    (set_field("1.batch_norm_", "I", [{"%": "x"}, 5, None]), "malformed PIR program"),
    (set_field("1.matmul", "#", 7), "malformed PIR program"),
    (set_field("1.add", "O", {"%": 1}), "malformed PIR program"),
    (set_field("1.reshape", "I", []), "op graph uses"),  # conv biases no longer reach their conv2d
])
def test_damaged_program_is_an_input_error(exports, tmp_path, change, match):
    prefix = copy_export(exports, "CTRGCN_lightV1", tmp_path)
    edit_program(prefix, change)
    with pytest.raises(ctrgcn.InputError, match=match):
        ctrgcn.load(str(prefix) + ".json")


def test_hybrid_outside_the_family_is_refused(exports, tmp_path):
    """lightV2's fused shared-relation blocks with lightV1's temporal-only l2, l3, l5, l8: every
    layer a family layer, but no variant's table fits; the message says where each one differs."""
    paddle = pytest.importorskip("paddle")
    import paddle_ctrgcn
    net = paddle_ctrgcn.Network("CTRGCN_lightV2", 62, temporal_only=paddle_ctrgcn.TEMPORAL_ONLY)
    net.eval()
    paddle.jit.save(net, str(tmp_path / "hybrid"),
                    input_spec=[paddle.static.InputSpec([None, 3, FRAMES, 25, 2], "float32", "x")])
    with pytest.raises(ctrgcn.InputError, match="not a network of the CTR-GCN family") as err:
        ctrgcn.load(tmp_path / "hybrid.json")
    for variant in SETS:
        assert f"{variant}: " in str(err.value)


def test_foreign_network_is_refused(tmp_path):
    """A Paddle 3 export of some other convolutional network: a clear InputError."""
    paddle = pytest.importorskip("paddle")
    nn = paddle.nn

    class Other(nn.Layer):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1D(6)
            self.conv = nn.Conv2D(3, 8, 3)
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            x = self.bn(x.reshape([-1, 6, 16])).reshape([-1, 3, 8, 4])
            return self.fc(self.conv(x).mean(axis=[2, 3]))

    net = Other()
    net.eval()
    paddle.jit.save(net, str(tmp_path / "other"), input_spec=[paddle.static.InputSpec([None, 3, 8, 4], "float32")])
    assert (tmp_path / "other.json").exists() and not (tmp_path / "other.pdiparams.info").exists()
    with pytest.raises(ctrgcn.InputError, match="CTR-GCN family"):
        ctrgcn.load(tmp_path / "other.json")


def test_parameter_names_paddle_did_not_write(exports, tmp_path):
    """Parameters renamed by hand (ParamAttr(name=...)) carry no layer type: refused by name."""
    prefix = copy_export(exports, "CTRGCN_lightV2", tmp_path)
    params = read_inference(str(prefix) + ".pdiparams", structured=False)
    target = next(n for n in sorted(params) if n.startswith("linear_") and n.endswith(".w_0"))
    # linear_ sorts last and the new name right after the old: the .pdiparams still reads in order
    text = Path(str(prefix) + ".json").read_text().replace(f'"{target}"', f'"{target}_head"')
    Path(str(prefix) + ".json").write_text(text)
    with pytest.raises(ctrgcn.InputError, match="not named as Paddle names"):
        ctrgcn.load(str(prefix) + ".pdiparams")


# ---- hand-made programs: no Paddle needed ----
def param_op(name, shape, vid):
    return {"#": "p", "A": [0, 1, 1, name],
            "O": {"%": vid, "TT": {"#": "0.t_dtensor", "D": [{"#": "0.t_f32"}, list(shape), "NCHW", [], 0]}}}


def op(name, inputs, outputs):
    return {"#": name, "I": [{"%": v} for v in inputs], "O": [{"%": v} for v in outputs]}


def write_program(path, params, ops):
    """A PIR program: ``params`` [(name, shape)] get value ids 1, 2, ...; the input is value 100."""
    doc = {"base_code": {}, "program": {"regions": [{"blocks": [{"ops": [
        param_op(name, shape, i) for i, (name, shape) in enumerate(params, 1)] + ops}]}]}}
    path.write_text(json.dumps(doc))
    return {name: np.zeros(shape, np.float32) for name, shape in params}


def small_head_program(path, head_width, bn_tensors=("w_0", "b_0", "w_1", "w_2")):
    """data_bn, one PA, one convolution and a Linear head, wired as Paddle wires them."""
    params = [(f"batch_norm1d_0.{t}", (6,)) for t in bn_tensors] + [
        ("create_parameter_0.w_0", (3, 2, 2)), ("conv2d_0.w_0", (4, 3, 1, 1)), ("linear_0.w_0", (head_width, 2))]
    ids = {name: i for i, (name, _) in enumerate(params, 1)}
    bn = [ids.get(f"batch_norm1d_0.{t}", 999) for t in ("w_1", "w_2", "w_0", "b_0")]
    ops = [op("1.batch_norm_", [100] + bn, [101]), op("1.conv2d", [101, ids["conv2d_0.w_0"]], [102]),
           op("1.multiply", [102, ids["create_parameter_0.w_0"]], [103]),
           op("1.matmul", [103, ids["linear_0.w_0"]], [104])]
    return write_program(path, params, ops)


def test_width_the_file_cannot_hold_is_refused_before_building(tmp_path):
    from ctrgcn.formats.paddle_program import structured_from_program
    params = small_head_program(tmp_path / "m.json", 4 * 20000)  # a 20000-wide network: ~1e11 numbers
    with pytest.raises(ctrgcn.InputError, match="too few parameters"):
        structured_from_program(params, tmp_path / "m.json")
    params = small_head_program(tmp_path / "m.json", 4 * 8)
    with pytest.raises(ctrgcn.InputError, match="CTR-GCN family"):
        structured_from_program(params, tmp_path / "m.json")


def test_layer_missing_a_tensor(tmp_path):
    from ctrgcn.formats.paddle_program import structured_from_program
    params = small_head_program(tmp_path / "m.json", 32, bn_tensors=("w_0", "b_0", "w_1"))
    with pytest.raises(ctrgcn.InputError, match="lacks its running_var"):
        structured_from_program(params, tmp_path / "m.json")


@pytest.mark.parametrize("text, match", [
    ("", "not a JSON document"),
    ("[" * 100000 + "]" * 100000, "not a JSON document"),
    ('{"program": []}', "program is a list"),
    ('{"program": {"regions": [{"blocks": [{"ops": 5}]}]}}', "ops of block 0 is a int"),
    ('{"program": {"regions": [{"blocks": [{"ops": [{"#": "p", "A": [0, 1, 1]}]}]}]}}', "parameter op 0 name"),
    ('{"program": {"regions": [{"blocks": [{"ops": [{"#": "p", "A": [0, 1, 1, "a"], "O": {"%": 1, "TT": {"D": '
     '[{}, [-4, 2]]}}}]}]}]}}', r"shape \[-4, 2\]"),
    ('{"program": {"regions": [{"blocks": [{"ops": [{"#": "p", "A": [0, 1, 1, "a"], "O": {"%": 1, "TT": {"D": '
     '[{}, [1, 1, 1, 1, 1, 1, 1, 1, 1]]}}}]}]}]}}', "has the shape"),
    ('{"program": {"regions": [{"blocks": [{"ops": [{"#": "1.add", "I": [{"%": true}], "O": []}]}]}]}}',
     "operand value id is a bool"),
])
def test_malformed_program_text(text, match):
    from ctrgcn.formats.paddle_program import Program
    with pytest.raises(ctrgcn.InputError, match=match):
        Program(text, "'m.json'")


def test_deeply_nested_program_is_an_input_error(tmp_path):
    """json.loads recurses: a program nested 100,000 deep is refused as malformed, not a RecursionError."""
    (tmp_path / "m.json").write_text("[" * 100000 + "]" * 100000)
    (tmp_path / "m.pdiparams").write_bytes(b"\0" * 64)
    with pytest.raises(ctrgcn.InputError, match="not a Paddle PIR program"):
        ctrgcn.load(str(tmp_path / "m.json"))

"""The project's file in float16 and int8: BatchNorm folding, exact storage rounding against NumPy,
sizes and errors, the C loader's checks, and the convert command."""
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.__main__ import main as cli
from ctrgcn.formats.quantize import IDENTITY_VAR, conv_before, fold_batchnorms

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden"
SETS = {"CTRGCN": ("official/ntu_weights.npz", "official/ntu_eval.npz")}
SETS.update({v: (f"paddlevideo/{v}_weights.npz", f"paddlevideo/{v}_eval.npz")
             for v in ("CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2")})
pytestmark = pytest.mark.skipif(not (GOLDEN / "paddlevideo").is_dir(), reason="golden files absent")


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def load_set(variant):
    w, e = SETS[variant]
    return ctrgcn.load(GOLDEN / w), np.load(GOLDEN / e)


def reference_int8(w):
    """What the C writer must store for a weight: per-output-channel symmetric int8, dequantised."""
    rows = w.reshape(w.shape[0], -1)
    amax = np.abs(rows).max(axis=1)
    scale = np.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(np.float32)[:, None]
    q = np.clip(np.rint(rows / scale), -127, 127).astype(np.float32)
    return (q * scale).reshape(w.shape)


@pytest.mark.parametrize("variant", list(SETS))
def test_folding_is_exact_and_leaves_shift_only(variant):
    model, ev = load_set(variant)
    state = model.state_dict()
    folded = fold_batchnorms(state)
    bns = [k[:-len(".running_mean")] for k in state if k.endswith(".running_mean")]
    touched = [bn for bn in bns if conv_before(state, bn)]
    untouched = sorted(set(bns) - set(touched))
    assert all(bn == "data_bn" or bn.endswith((".branches.2.4", ".branches.2.1")) for bn in untouched)
    assert any(bn.endswith(".gcn1.bn") for bn in touched) and any(bn.endswith("down.1") for bn in touched)
    for bn in touched:
        assert (folded[bn + ".running_var"] == IDENTITY_VAR).all() and (folded[bn + ".weight"] == 1).all()
    ref = model(ev["x"])
    model.load_state_dict(folded)
    assert rel_err(model(ev["x"]), ref) < 2e-6


@pytest.mark.parametrize("variant", list(SETS))
def test_float16_and_int8_files(tmp_path, variant):
    model, ev = load_set(variant)
    ref = model(ev["x"])
    folded = fold_batchnorms(model.state_dict())
    sizes = {}
    for dtype in ("float32", "float16", "int8"):
        path = tmp_path / f"m.{dtype}"
        model.save(path, dtype=dtype)
        sizes[dtype] = os.path.getsize(path)
        assert struct.unpack("<I", path.read_bytes()[8:12])[0] == 3  # version 3: the architecture is in the file
        back = ctrgcn.load(path)
        assert back.variant == variant
        got = back.state_dict()
        for name, value in (model.state_dict() if dtype == "float32" else folded).items():
            if dtype == "float32":
                expect = value
            elif dtype == "float16":
                expect = value.astype(np.float16).astype(np.float32)
            elif value.ndim == 4 or name == "fc.weight":
                expect = reference_int8(value)
            else:
                expect = value
            np.testing.assert_array_equal(got[name], expect, err_msg=f"{dtype} {name}")
        err = rel_err(back(ev["x"]), ref)
        assert err < {"float32": 1e-7, "float16": 1e-2, "int8": 0.1}[dtype], (dtype, err)
        assert np.array_equal(back(ev["x"]).argmax(1), ref.argmax(1))
    assert sizes["float16"] < 0.51 * sizes["float32"] and sizes["int8"] < 0.3 * sizes["float32"]
    if variant == "CTRGCN_lightV2":
        assert sizes["float16"] <= 2.5e6 and sizes["int8"] <= 1.4e6


def test_float16_range_and_bad_dtype(tmp_path):
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=5, graph="ucla", num_person=1)
    state = model.state_dict()
    state["fc.bias"][0] = 1e6
    model.load_state_dict(state)
    with pytest.raises(ctrgcn.Error, match="float16"):
        model.save(tmp_path / "m", dtype="float16")
    assert not (tmp_path / "m").exists() and os.listdir(tmp_path) == []
    with pytest.raises(ctrgcn.InputError, match="dtype"):
        model.save(tmp_path / "m", dtype="bfloat16")


def test_damaged_typed_files(tmp_path):
    model, _ = load_set("CTRGCN_lightV2")
    for dtype in ("float16", "int8"):
        path = tmp_path / f"m.{dtype}"
        model.save(path, dtype=dtype)
        data = path.read_bytes()
        for bad in (data[:-1], data[: len(data) // 2], data[:20], data[:7] + b"\x09" + data[8:],
                    data[:8] + b"\x07\0\0\0" + data[12:]):
            p = tmp_path / "bad"
            p.write_bytes(bad)
            with pytest.raises(ctrgcn.Error):
                ctrgcn.load(p)
            assert p.read_bytes() == bad
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x40
        (tmp_path / "bad").write_bytes(bytes(flipped))
        with pytest.raises(ctrgcn.Error, match="checksum"):
            ctrgcn.load(tmp_path / "bad")


def test_file_rejects_unknown_tensor_dtype(tmp_path):
    """Patch a tensor's dtype byte to a code no build writes, fix the CRC, expect a refusal."""
    import zlib
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=5, graph="ucla", num_person=1)
    model.save(tmp_path / "m")
    data = bytearray((tmp_path / "m").read_bytes()[:-4])
    name = b"data_bn.weight"
    at = data.index(name) + len(name)
    assert data[at] == 0
    data[at] = 7
    data += struct.pack("<I", zlib.crc32(bytes(data)))
    (tmp_path / "m").write_bytes(bytes(data))
    with pytest.raises(ctrgcn.Error, match="dtype"):
        ctrgcn.load(tmp_path / "m")


def test_convert_command(tmp_path, capsys):
    src = GOLDEN / "official" / "ntu_state_dict.pt"
    ev = np.load(GOLDEN / "official" / "ntu_eval.npz")
    assert cli(["convert", str(src), str(tmp_path / "m.int8"), "--dtype", "int8"]) == 0
    assert rel_err(ctrgcn.load(tmp_path / "m.int8")(ev["x"]), ev["logits"]) < 0.1
    assert cli(["convert", str(tmp_path / "m.int8"), str(tmp_path / "m.f16"), "--dtype", "float16"]) == 0
    assert ctrgcn.load(tmp_path / "m.f16").variant == "CTRGCN"
    assert cli(["convert", str(tmp_path / "missing.pt"), str(tmp_path / "x")]) == 1
    assert "cannot open" in capsys.readouterr().err
    if __import__("importlib").util.find_spec("onnx") is not None:
        assert cli(["convert", str(src), str(tmp_path / "m.onnx"), "--onnx"]) == 0
        assert os.path.getsize(tmp_path / "m.onnx") > 5e6
    with pytest.raises(SystemExit):
        cli(["convert", str(src), str(tmp_path / "y"), "--dtype", "int4"])

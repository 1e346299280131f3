"""Official PyTorch checkpoints read without PyTorch: the golden .pt, wrapped and DataParallel
checkpoints (written with torch when installed), and damaged or malicious zips."""
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.formats.torch_zip import read_torch

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden" / "official"
needs_golden = pytest.mark.skipif(not (GOLDEN / "ntu_state_dict.pt").exists(), reason="golden files absent")


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@needs_golden
def test_golden_state_dict_gives_golden_logits():
    ev = np.load(GOLDEN / "ntu_eval.npz")
    model = ctrgcn.load(GOLDEN / "ntu_state_dict.pt")
    assert model.variant == "CTRGCN" and model.num_classes == 60 and model.num_person == 2
    assert rel_err(model(ev["x"]), ev["logits"]) < 1e-5


@needs_golden
def test_golden_tensors_match_npz_exactly():
    raw = read_torch(GOLDEN / "ntu_state_dict.pt")
    ref = np.load(GOLDEN / "ntu_weights.npz")
    assert sum(k.endswith("num_batches_tracked") for k in raw) > 0
    for name in ref.files:
        assert raw[name].dtype == np.float32
        np.testing.assert_array_equal(raw[name], ref[name])


@needs_golden
@pytest.mark.parametrize("wrap", ["state_dict", "model", "weights", "module", "parameters"])
def test_wrapped_and_dataparallel_checkpoints(tmp_path, wrap):
    torch = pytest.importorskip("torch")
    sd = {k: torch.from_numpy(v) for k, v in np.load(GOLDEN / "ntu_weights.npz").items()}
    if wrap == "module":
        obj = {"module." + k: v for k, v in sd.items()}
    elif wrap == "parameters":  # nn.Parameter objects and a non-contiguous (transposed-back) tensor
        obj = {k: torch.nn.Parameter(v.clone()) for k, v in sd.items()}
        obj["fc.weight"] = torch.nn.Parameter(sd["fc.weight"].t().contiguous().t())
    else:
        obj = {wrap: {"module." + k: v for k, v in sd.items()}, "epoch": 7, "optimizer": {"lr": 0.1}}
    path = tmp_path / "ckpt.pt"
    torch.save(obj, path)
    ev = np.load(GOLDEN / "ntu_eval.npz")
    assert rel_err(ctrgcn.load(path)(ev["x"]), ev["logits"]) < 1e-5


@needs_golden
def test_float16_and_float64_storages(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {k: torch.from_numpy(v) for k, v in np.load(GOLDEN / "ntu_weights.npz").items()}
    sd["fc.bias"] = sd["fc.bias"].half()
    sd["fc.weight"] = sd["fc.weight"].double()
    torch.save(sd, tmp_path / "m.pt")
    raw = read_torch(tmp_path / "m.pt")
    assert raw["fc.bias"].dtype == np.float16 and raw["fc.weight"].dtype == np.float64
    np.testing.assert_array_equal(raw["fc.bias"], sd["fc.bias"].numpy())


# ---- hostile and damaged input ----
def torch_like_zip(path, pkl_bytes, storages=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl_bytes)
        z.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            z.writestr(f"archive/data/{key}", raw)
        z.writestr("archive/version", "3\n")


class Reduce:
    """Pickles as a call of func(*args)."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):  # lets a Reduce stand in the callable position of another
        raise AssertionError("never called while pickling")


def evil_payloads(marker):
    import builtins
    import importlib
    import subprocess
    cmd = f"touch {marker}"
    return {
        "os.system": Reduce(os.system, (cmd,)),
        "subprocess.call": Reduce(subprocess.call, (["touch", str(marker)],)),
        "builtins.eval": Reduce(builtins.eval, (f"__import__('os').system({cmd!r})",)),
        "builtins.exec": Reduce(builtins.exec, (f"open({str(marker)!r}, 'w').close()",)),
        "getattr": Reduce(Reduce(getattr, (Reduce(importlib.import_module, ("os",)), "system")), (cmd,)),
    }


def test_crafted_payload_is_real(tmp_path):
    """The payload does run under a plain pickle.loads, so the refusals below mean something."""
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(evil_payloads(marker)["os.system"], protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("kind", ["os.system", "subprocess.call", "builtins.eval", "builtins.exec", "getattr"])
def test_malicious_pickle_in_pt_zip_runs_nothing(tmp_path, kind):
    marker = tmp_path / "marker"
    payload = {"fc.bias": np.zeros(3, np.float32), "x": evil_payloads(marker)[kind]}
    path = tmp_path / "evil.pt"
    torch_like_zip(path, pickle.dumps(payload, protocol=2))
    before = path.read_bytes()
    with pytest.raises(ctrgcn.Error, match="refused"):
        ctrgcn.load(path)
    assert not marker.exists()
    assert path.read_bytes() == before


def test_unknown_persistent_id_and_missing_storage(tmp_path):
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return obj if isinstance(obj, tuple) and obj and obj[0] == "storage" else None
    buf = io.BytesIO()
    P(buf, protocol=2).dump({"a": ("storage", "not-a-kind", "0", "cpu", 4)})
    torch_like_zip(tmp_path / "a.pt", buf.getvalue())
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(tmp_path / "a.pt")


@needs_golden
def test_storage_size_mismatch_is_refused(tmp_path):
    src = GOLDEN / "ntu_state_dict.pt"
    with zipfile.ZipFile(src) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    key = next(n for n in entries if "/data/" in n)
    entries[key] = entries[key][:-4]
    with zipfile.ZipFile(tmp_path / "m.pt", "w") as z:
        for n, raw in entries.items():
            z.writestr(n, raw)
    with pytest.raises(ctrgcn.InputError, match="bytes"):
        ctrgcn.load(tmp_path / "m.pt")


@needs_golden
@pytest.mark.parametrize("cut", [0.999, 0.6, 0.2, 0.01])
def test_truncated_pt(tmp_path, cut):
    data = (GOLDEN / "ntu_state_dict.pt").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: int(len(data) * cut)])
    before = path.read_bytes()
    with pytest.raises(ctrgcn.Error):
        ctrgcn.load(path)
    assert path.read_bytes() == before


@needs_golden
def test_corrupted_pt_byte(tmp_path):
    data = bytearray((GOLDEN / "ntu_state_dict.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside a storage: the zip CRC catches it
    path = tmp_path / "bad.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(ctrgcn.Error):
        ctrgcn.load(path)


@needs_golden
def test_shape_mismatch_and_unknown_key(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {k: torch.from_numpy(v) for k, v in np.load(GOLDEN / "ntu_weights.npz").items()}
    bad = dict(sd, **{"l3.gcn1.PA": torch.zeros(3, 25, 24)})
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(ctrgcn.InputError, match="l3.gcn1.PA"):
        ctrgcn.load(tmp_path / "shape.pt")
    torch.save(dict(sd, **{"l3.extra.weight": torch.zeros(2)}), tmp_path / "key.pt")
    with pytest.raises(ctrgcn.InputError, match="unexpected"):
        ctrgcn.load(tmp_path / "key.pt")


def test_wrong_magic_and_legacy_format(tmp_path):
    (tmp_path / "a.pt").write_bytes(b"GARBAGE!" * 10)
    with pytest.raises(ctrgcn.InputError, match="unknown weight file format"):
        ctrgcn.load(tmp_path / "a.pt")
    (tmp_path / "b.pt").write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + b"rest")
    with pytest.raises(ctrgcn.InputError, match="legacy"):
        ctrgcn.load(tmp_path / "b.pt")
    with pytest.raises(ctrgcn.FileError):
        ctrgcn.load(tmp_path / "missing.pt")

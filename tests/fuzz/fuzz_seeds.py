"""Seed inputs of every fuzz target, built here: small synthetic files (a tiny model in every
weight format, short skeleton clips, a config) plus, at run time, the real inputs under ../shared
when present (read in place, never copied into the repository).

    python tests/fuzz/fuzz_seeds.py OUT_DIR      # OUT_DIR/<target>/<n> for every target
"""
import io
import json
import os
import pickle
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHARED = ROOT.parent / "shared"


def tiny_model(variant="CTRGCN_lightV2"):
    import ctrgcn
    return ctrgcn.Model(variant, num_classes=3, graph="ucla", num_person=1, base_channel=8, seed=1)


def tiny_custom(variant="CTRGCN_lightV2", width=4):
    """A custom spec of 3 joints and narrow blocks: the smallest file the format holds (tens of KB), so
    the model-file fuzzer runs fast."""
    import ctrgcn
    spec = ctrgcn.preset_spec(variant, num_classes=2, graph=[(0, 1), (1, 2)], num_person=1, num_joints=3)
    spec["variant"] = "custom"
    spec["rel_small"] = spec["rel_reduction"] = 2
    for b in spec["blocks"]:
        b["out_channels"], b["kernel_size"] = width, 3
    return ctrgcn.Model.from_spec(spec, seed=2)


def _paddle_names(state):
    out = {}
    for k, v in state.items():
        if k.startswith("fc."):
            out["head." + k] = np.ascontiguousarray(v.T) if k == "fc.weight" else v
        else:
            out["backbone." + k.replace("running_mean", "_mean").replace("running_var", "_variance")] = v
    return out


def _saved(model, dtype):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.ctrgcn")
        model.save(path, dtype=dtype)
        return Path(path).read_bytes()


def _npz(state, compressed):
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **state)
    return buf.getvalue()


def _torch(state):
    try:
        import torch
    except ImportError:
        return []
    buf = io.BytesIO()
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, buf)
    return [buf.getvalue()]


# ---- a small Paddle inference model, written field by field ----
def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(num, value):
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    return _varint(num << 3 | 2) + _varint(len(value)) + value


INFERENCE_PARAMS = [("batch_norm2d_0.w_0", (4,)), ("conv2d_0.w_0", (2, 3, 1, 1)), ("linear_0.b_0", (3,))]


def inference_model():
    """part -> bytes of a three-parameter Paddle inference model (.pdiparams, .pdmodel, .pdiparams.info)
    and its PIR program (.json)."""
    rng = np.random.default_rng(0)
    records, variables, ops = b"", b"", []
    for name, shape in INFERENCE_PARAMS:
        desc = _field(1, 5) + b"".join(_field(2, d) for d in shape)
        data = rng.standard_normal(shape).astype("<f4").tobytes()
        records += struct.pack("<IQI", 0, 0, 0) + struct.pack("<i", len(desc)) + desc + data
        var_type = _field(1, 7) + _field(3, _field(1, desc))
        variables += _field(3, _field(1, name.encode()) + _field(2, var_type) + _field(3, 1))
        ops.append({"#": "p", "A": [0, 1, 1, name], "O": {"TT": {"D": ["0.t_f32", list(shape)]}}})
    info = {name: {"structured_name": f"layer{i}.weight"} for i, (name, _) in enumerate(INFERENCE_PARAMS)}
    program = {"program": {"regions": [{"blocks": [{"ops": ops}]}]}}
    return {".pdiparams": records, ".pdmodel": _field(1, _field(1, 0) + variables),
            ".pdiparams.info": pickle.dumps(info, protocol=2), ".json": json.dumps(program).encode()}


def skeleton_text(frames=2, bodies=2, seed=0):
    rng = np.random.default_rng(seed)
    lines = [str(frames)]
    for f in range(frames):
        lines.append(str(bodies))
        for b in range(bodies):
            lines.append(f"{72057594037931648 + b} 0 1 1 1 1 0 -0.1 0.14 2")
            lines.append("25")
            for j in range(25):
                v = rng.standard_normal(12) * [0.5, 0.5, 1, 100, 100, 300, 300, 1, 1, 1, 1, 0] + [0, 0, 3, 0, 0, 0, 0,
                                                                                                 0, 0, 0, 0, 2]
                lines.append(" ".join(f"{x:.7g}" for x in v[:11]) + " 2")
    return ("\r\n".join(lines) + "\r\n").encode()


def ucla_text(frames=3, seed=0):
    rng = np.random.default_rng(seed)
    return json.dumps({"file_name": "a01_s01_e00_v01", "skeletons": np.round(rng.standard_normal((frames, 20, 3)),
                                                                             3).tolist(), "label": 1}).encode()


def synthetic():
    """target -> [bytes] of small synthetic seeds."""
    m = tiny_model()
    state = {k: np.asarray(v) for k, v in m.state_dict().items()}
    labels = [np.array([b"S001C001P001R001A001", b"S001C001P001R001A002"], dtype="S20"), np.array([0, 1], np.int64)]
    config = (ROOT / "ctrgcn" / "configs" / "nwucla_ctrgcn_joint.yaml").read_bytes()
    parts = inference_model()
    # a few tensors (what the spec is told from, and one block): fast to read, so the fuzzers run
    # mostly on these; the full state reaches model building
    few = {k: v for k, v in state.items() if k.startswith(("fc.", "data_bn.", "l1.gcn1.PA", "l1.gcn1.convs.conv1"))}
    return {
        "weights_npz": [_npz(few, False), _npz(_paddle_names(few), True), _npz(state, False)],
        "weights_pt": _torch(few) + _torch(state),
        "weights_pdparams": [pickle.dumps(_paddle_names(few), protocol=2), pickle.dumps(_paddle_names(few), protocol=4),
                             pickle.dumps(_paddle_names(state), protocol=2)],
        "weights_ctrgcn": [_saved(m, "float32"), _saved(m, "float16"), _saved(m, "int8"),
                           _saved(tiny_custom(), "float32"), _saved(tiny_custom("CTRGCN", 8), "int8")],
        "label_pickle": [pickle.dumps(labels, protocol=2),
                         pickle.dumps([list(labels[0]), labels[1].tolist()], protocol=4)],
        "paddle_inference": [bytes([i]) + parts[ext]
                             for i, ext in enumerate((".pdiparams", ".pdmodel", ".pdiparams.info", ".json"))],
        "train_config": [config,
                         json.dumps({"variant": "CTRGCN_light", "epochs": 2, "lr": {"base_lr": 0.05}}).encode()],
        "ucla_json": [ucla_text(3), ucla_text(1, 1)],
        "ntu_skeleton": [skeleton_text(2, 2), skeleton_text(3, 1, 1)],
    }


def real():
    """target -> [Path] of real inputs under ../shared (empty where absent)."""
    out = {}
    ntu = SHARED / "data" / "ntu" / "skeleton-samples"
    out["ntu_skeleton"] = sorted(ntu.glob("*.skeleton"))[:2] if ntu.is_dir() else []
    ucla = SHARED / "data" / "nw-ucla" / "all_sqe"
    out["ucla_json"] = sorted(ucla.glob("*.json"))[:2] if ucla.is_dir() else []
    return out  # the real weight files (MBs) would only slow the fuzzers; the tiny model has every tensor


def write_corpus(out_dir, with_real=True):
    """OUT_DIR/<target>/seed_<n> for every target; returns the target directories."""
    out_dir = Path(out_dir)
    dirs = {}
    reals = real() if with_real else {}
    for target, seeds in synthetic().items():
        d = out_dir / target
        d.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(seeds):
            (d / f"seed_{i}").write_bytes(data)
        for i, path in enumerate(reals.get(target, [])):
            (d / f"real_{i}").write_bytes(path.read_bytes())
        dirs[target] = d
    return dirs


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for t, d in write_corpus(sys.argv[1] if len(sys.argv) > 1 else "fuzz-corpus").items():
        print(t, len(list(d.iterdir())), sum(p.stat().st_size for p in d.iterdir()))

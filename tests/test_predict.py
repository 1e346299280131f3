"""``python -m ctrgcn predict``: real NW-UCLA and NTU files through each model's own preprocessing,
arrays in every layout, the JSON form, the shipped default model and the errors."""
import json
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.__main__ import main
from ctrgcn.data import NWUCLA, Sequences, prepare_sample, write_npz
from ctrgcn.data.ucla import load_sequence

SHARED = Path(__file__).resolve().parents[2] / "shared"
UCLA_ROOT = SHARED / "data" / "nw-ucla" / "all_sqe"
NTU_SAMPLES = SHARED / "data" / "ntu" / "skeleton-samples"
UCLA_FILES = ["a01_s01_e00_v03", "a04_s02_e01_v03", "a09_s10_e02_v03"]


@pytest.fixture(scope="module")
def ucla():
    if not UCLA_ROOT.is_dir():
        pytest.skip("no NW-UCLA data")
    return UCLA_ROOT


@pytest.fixture(scope="module")
def ucla_model(tmp_path_factory):
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, seed=5)
    model.classes = list(ctrgcn.NWUCLA_CLASSES)
    path = tmp_path_factory.mktemp("w") / "ucla.ctrgcn"
    model.save(path)
    return model, path


def run(capsys, *argv):
    rc = main(["predict", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_nwucla_json_as_the_validation_feeder(capsys, ucla, ucla_model, ucla_subset):
    model, weights = ucla_model
    files = [ucla / f"{n}.json" for n in UCLA_FILES]
    rc, out, _ = run(capsys, *files, "--weights", weights, "--json", "--top-k", 3)
    assert rc == 0
    results = json.loads(out)
    few = ucla_subset(UCLA_FILES)
    val = NWUCLA(few, split="val")
    for path, res in zip(files, results):
        assert res["input"] == str(path) and len(res["top"]) == 3
        want = model.predict_proba(val[val.names.index(path.stem)][0][None])[0]
        order = np.argsort(-want, kind="stable")[:3]
        assert [t["index"] for t in res["top"]] == order.tolist()
        assert [t["class"] for t in res["top"]] == [ctrgcn.NWUCLA_CLASSES[i] for i in order]
        np.testing.assert_allclose([t["probability"] for t in res["top"]], want[order], rtol=1e-5, atol=1e-7)
    # the bone stream is the feeder's bone stream
    rc, out, _ = run(capsys, files[1], "--weights", weights, "--json", "--modality", "bone", "--top-k", 10)
    bone = NWUCLA(few, split="val", modality="bone")
    want = model.predict_proba(bone[bone.names.index(files[1].stem)][0][None])[0]
    got = {t["index"]: t["probability"] for t in json.loads(out)[0]["top"]}
    np.testing.assert_allclose([got[i] for i in range(10)], want, rtol=1e-5, atol=1e-7)
    rc, out, _ = run(capsys, files[0], "--weights", weights, "--top-k", 2)  # the text form names classes
    lines = out.splitlines()
    assert rc == 0 and lines[0] == str(files[0]) and len(lines) == 3
    assert any(name in lines[1] for name in ctrgcn.NWUCLA_CLASSES) and lines[1].strip().split()[0].endswith("%")


def test_ntu_skeleton_as_the_reference_preparation(capsys, tmp_path):
    if not NTU_SAMPLES.is_dir():
        pytest.skip("no NTU samples")
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=60, graph="ntu", num_person=2, seed=3)
    model.classes = list(ctrgcn.NTU60_CLASSES)
    model.save(tmp_path / "ntu.ctrgcn", dtype="float16")
    model = ctrgcn.load(tmp_path / "ntu.ctrgcn")
    files = sorted(NTU_SAMPLES.glob("*.skeleton"))[:3]
    rc, out, _ = run(capsys, *files, "--weights", tmp_path / "ntu.ctrgcn", "--json", "--top-k", 60)
    assert rc == 0
    for path, res in zip(files, json.loads(out)):
        s = prepare_sample(path)
        x = ctrgcn.preprocess(s.paddle(len(s.aligned)))  # parse, denoise, translate; crop and resize to 64
        want = model.predict_proba(x[None])[0]
        got = np.array([t["probability"] for t in sorted(res["top"], key=lambda t: t["index"])])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        assert res["top"][0]["class"] == ctrgcn.NTU60_CLASSES[int(want.argmax())]


def test_arrays_in_every_layout_agree(capsys, tmp_path, ucla, ucla_model):
    _, weights = ucla_model
    seq, _ = load_sequence(ucla / f"{UCLA_FILES[1]}.json")
    seq = seq.astype(np.float32)
    np.save(tmp_path / "tvc.npy", seq)                                    # (T, V, C)
    np.save(tmp_path / "tmvc.npy", seq[:, None])                          # (T, M, V, C)
    np.savez(tmp_path / "ctvm.npz", x=seq.transpose(2, 0, 1)[..., None])  # (C, T, V, M)
    write_npz(tmp_path / "seqs.npz", [seq, seq[::2]], [3, 3], names=["full", "half"])
    rc, out, err = run(capsys, ucla / f"{UCLA_FILES[1]}.json", tmp_path / "tvc.npy", tmp_path / "tmvc.npy",
                       tmp_path / "ctvm.npz", tmp_path / "seqs.npz", "--weights", weights, "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert [r["input"] for r in res][-2:] == [f"{tmp_path / 'seqs.npz'}:full", f"{tmp_path / 'seqs.npz'}:half"]
    for r in res[1:5]:
        assert r["top"] == res[0]["top"]
    assert res[5]["top"] != res[0]["top"]  # every second frame is another recording


def test_crop_preprocessing_is_the_sequences_evaluation(capsys, ucla, ucla_model):
    """--preprocess crop: what a model trained with Sequences on NW-UCLA's layout saw in evaluation."""
    model, weights = ucla_model
    path = ucla / f"{UCLA_FILES[2]}.json"
    seq, label = load_sequence(path)
    x = Sequences([seq.astype(np.float32)], [label], graph="ucla", window=64)[0][0]
    want = model.predict_proba(x[None])[0]
    rc, out, _ = run(capsys, path, "--weights", weights, "--json", "--preprocess", "crop", "--top-k", 10)
    got = {t["index"]: t["probability"] for t in json.loads(out)[0]["top"]}
    np.testing.assert_allclose([got[i] for i in range(10)], want, rtol=1e-5, atol=1e-7)
    stream = ctrgcn.Stream(model, window=len(seq), preprocess="crop")
    out = [stream.push(j) for j in seq][-1]
    np.testing.assert_allclose(out.window_probabilities, want, rtol=1e-5, atol=1e-7)
    ntu = ctrgcn.Model("CTRGCN_lightV2", num_classes=3, graph="ntu", num_person=2)
    with pytest.raises(ctrgcn.InputError, match="NW-UCLA preprocessing"):
        ctrgcn.Stream(ntu, window=1, stride=1, preprocess="nwucla").push(np.ones((25, 3)))
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.Stream(ntu, preprocess="resize")


def test_default_model_is_the_shipped_nwucla_one(capsys, tmp_path, monkeypatch, ucla, ucla_model):
    model, weights = ucla_model
    monkeypatch.setenv("CTRGCN_PRETRAINED_DIR", str(tmp_path))
    json_file = ucla / f"{UCLA_FILES[0]}.json"
    rc, _, err = run(capsys, json_file)
    assert rc == 1 and "nwucla_ctrgcn_joint is not in this build" in err and "--weights" in err
    (tmp_path / "nwucla_ctrgcn_joint.ctrgcn").write_bytes(weights.read_bytes())
    rc, out, _ = run(capsys, json_file, "--json")
    rc2, out2, _ = run(capsys, json_file, "--json", "--weights", weights)
    assert rc == rc2 == 0 and json.loads(out) == json.loads(out2)
    rc, out3, _ = run(capsys, json_file, "--json", "--weights", "nwucla_ctrgcn_joint")  # by its shipped name
    assert json.loads(out3) == json.loads(out)
    if NTU_SAMPLES.is_dir():
        skeleton = sorted(NTU_SAMPLES.glob("*.skeleton"))[0]
        rc, _, err = run(capsys, skeleton)
        assert rc == 1 and skeleton.name in err and "25 joints" in err and "nwucla_ctrgcn_joint" in err
        assert "--weights" in err


def test_errors_name_the_file(capsys, tmp_path, ucla_model):
    _, weights = ucla_model
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"skeletons": [[1, 2]], "label": 1')
    wrong_channels = tmp_path / "xy.npy"
    np.save(wrong_channels, np.zeros((10, 20, 2), np.float32))
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((10, 20, 3), np.float32))
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((10, 20, 3), np.nan, np.float32))
    odd = tmp_path / "clip.mp4"
    odd.write_bytes(b"\0")
    for path, words in ((bad_json, "malformed JSON"), (wrong_channels, "2 channels"), (empty, "no non-zero frame"),
                        (nan, "non-finite"), (odd, "unknown input type"), (tmp_path / "absent.json", "no such file")):
        rc, out, err = run(capsys, path, "--weights", weights)
        assert rc == 1 and path.name in err and words in err, err
        assert out == ""

"""NTU RGB+D raw pipeline against the reference scripts' golden output, stage by stage, and bad input."""
import pickle
from pathlib import Path

import numpy as np
import pytest

import ctrgcn
from ctrgcn.data import prepare_ntu, prepare_sample, read_skeleton
from ctrgcn.data.ntu import BENCHMARKS, split_orders

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "data" / "ntu" / "skeleton-samples"
GOLDEN = SHARED / "golden" / "ntu-pipeline" / "ntu_pipeline.npz"


@pytest.fixture(scope="module")
def gold():
    if not GOLDEN.exists() or not SAMPLES.is_dir():
        pytest.skip(f"NTU golden data not found under {SHARED}")
    return np.load(GOLDEN)


@pytest.fixture(scope="module")
def prepared(gold):
    return {n: prepare_sample(SAMPLES / f"{n}.skeleton") for n in gold["names"]}


def test_raw_bodies(gold):
    for n in gold["names"]:
        sk = read_skeleton(SAMPLES / f"{n}.skeleton")
        p = f"{n}.raw."
        assert sk.num_frames_in_file == gold[p + "num_frames_in_file"]
        assert sk.num_frames == gold[p + "num_frames"]
        assert np.array_equal(sk.frames_drop, gold[p + "frames_drop"])
        assert len(sk.bodies) == gold[p + "num_bodies"]
        for b, body in enumerate(sk.bodies):
            q = f"{p}body{b}."
            assert body.id == str(gold[q + "bodyID"])
            assert body.joints.dtype == np.float32 and np.array_equal(body.joints, gold[q + "joints"])
            assert np.array_equal(body.colors, gold[q + "colors"])
            assert np.array_equal(body.interval, gold[q + "interval"])
            assert np.array_equal(body.frames, gold[q + "interval"])  # no gaps in these five
            if q + "motion" in gold.files:  # float32 maths, bit-equal
                assert np.float32(body.motion) == gold[q + "motion"]
            else:
                assert body.motion is None


def test_denoised_and_actors(gold, prepared):
    for n, s in prepared.items():
        assert s.denoised.shape == gold[f"{n}.denoised"].shape  # 75 wide for one actor
        assert np.array_equal(s.denoised, gold[f"{n}.denoised"])
        assert np.array_equal(s.denoised_colors, gold[f"{n}.denoised.colors"], equal_nan=True)
        assert len(s.denoised) == gold[f"{n}.denoised.num_frames"]
        assert s.actor1_ids == list(gold[f"{n}.denoised.actor1_bodyIDs"])
        assert s.actor2_ids == list(gold[f"{n}.denoised.actor2_bodyIDs"])
        key = f"{n}.denoised.actors_info"
        assert s.actors_info == (str(gold[key]) if key in gold.files else None)
    # the two-body sample: actor 1 is the file's second body (larger motion)
    s = prepared["S001C003P008R002A058"]
    assert s.actor1_ids == [s.skeleton.bodies[1].id]


def test_transformed_and_paddle(gold, prepared):
    for n, s in prepared.items():
        assert s.origin_frame == gold[f"{n}.transformed.origin_frame"]
        assert np.array_equal(s.origin, gold[f"{n}.transformed.origin"])
        assert np.array_equal(s.aligned, gold[f"{n}.transformed.aligned"])
        assert np.array_equal(s.padded(300), gold[f"{n}.transformed"])
        assert np.array_equal(s.paddle(300), gold[f"{n}.transformed.paddle"])


def test_split_orders_and_labels(gold):
    names = [str(n) for n in gold["names"]]
    for (folder, _, field, tr, te), off in zip(BENCHMARKS["ntu60"], ("CS", "CV")):
        train, test = split_orders(names, field, tr, te)
        assert np.array_equal(train, gold[f"paddle.{folder}.train_order"])
        assert np.array_equal(test, gold[f"paddle.{folder}.test_order"])
        assert np.array_equal(train, gold[f"official.{off}.train_order"])
        assert np.array_equal(gold["labels"][train], gold[f"paddle.{folder}.train_label"])


def test_cli_output_matches_golden(gold, tmp_path):
    out = tmp_path / "out"
    from ctrgcn.__main__ import main
    assert main(["prepare-ntu", str(SAMPLES), str(out), "--benchmark", "ntu60", "--workers", "2", "--quiet"]) == 0
    names = [str(n) for n in gold["names"]]
    for folder, npz_name in (("xsub", "NTU60_CS.npz"), ("xview", "NTU60_CV.npz")):
        off = "CS" if folder == "xsub" else "CV"
        z = np.load(out / npz_name)
        for part, key in (("train", "train"), ("val", "test")):
            order = gold[f"paddle.{folder}.{key}_order"]
            data = np.load(out / folder / f"{part}_data.npy")
            assert data.shape == (len(order), 3, 300, 25, 2) and data.dtype == np.float32
            for k, i in enumerate(order):
                assert np.array_equal(data[k], gold[f"{names[i]}.transformed.paddle"])
                assert np.array_equal(z[f"x_{key}"][k], gold[f"{names[i]}.transformed"])
            lab_names, labels = ctrgcn.data.load_labels(out / folder / f"{part}_label.pkl")
            assert lab_names.dtype == np.dtype("S20") and labels.dtype == np.int64
            assert [x.decode() for x in lab_names] == [names[i] for i in order]
            assert np.array_equal(labels, gold[f"paddle.{folder}.{key}_label"])
            assert np.array_equal(z[f"y_{key}"], gold[f"official.{off}.y_{key}"])
    log = (out / "prepare_ntu.log").read_text()
    assert "S001C003P008R002A058" in log and "5 prepared" in log


def test_label_reader_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    path = tmp_path / "bad_label.pkl"
    path.write_bytes(pickle.dumps([Evil(), [1]]))
    with pytest.raises(ctrgcn.InputError, match="builtins.print.*refused"):
        ctrgcn.data.load_labels(path)


# ---- bad input: clear errors, no crash -------------------------------------------------------------
def _body(frame_body_id="72057594037931648", joints=25, line=None):
    info = f"{frame_body_id} 0 1 1 1 1 0 -0.1 0.1 2"
    jl = line or "0.2 0.1 3.8 276.0 190.0 1032.3 514.0 -0.17 0.04 0.97 -0.15 2"
    return [info, str(joints)] + [jl] * 25


def _file(tmp_path, lines, name="S001C001P001R001A001.skeleton"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _real_lines():
    return (SAMPLES / "S001C001P001R001A011.skeleton").read_text().splitlines()


def test_truncated_file(tmp_path):
    if not SAMPLES.is_dir():
        pytest.skip("no NTU samples")
    lines = _real_lines()
    p = _file(tmp_path, lines[:500])
    with pytest.raises(ctrgcn.InputError, match=r"S001C001P001R001A001\.skeleton', line 501: unexpected end of file"):
        read_skeleton(p)


def test_body_count_that_lies(tmp_path):
    p = _file(tmp_path, ["2", "2"] + _body() + ["1"] + _body())
    with pytest.raises(ctrgcn.InputError, match=r"line 30: .*10-field body info line.*body count lie"):
        read_skeleton(p)
    p = _file(tmp_path, ["1", "3"] + _body() + _body("72057594037931649"))
    with pytest.raises(ctrgcn.InputError, match="unexpected end of file"):
        read_skeleton(p)


@pytest.mark.parametrize("bad", ["abc", "0x1F", "nan", "1.0.0", "inf"])
def test_non_numeric_fields(tmp_path, bad):
    line = f"0.2 {bad} 3.8 276.0 190.0 1032.3 514.0 -0.17 0.04 0.97 -0.15 2"
    p = _file(tmp_path, ["1", "1"] + _body(line=line))
    with pytest.raises(ctrgcn.InputError, match=r"line 5: joint 1 field 2 .* is not a number"):
        read_skeleton(p)
    for lines, msg in ((["x"], "frame count"), (["1", "one"], "body count"), (["1", "1", "id 0 1 1 1 1 0 a 0.1 2"],
                                                                                "field 8")):
        with pytest.raises(ctrgcn.InputError, match=msg):
            read_skeleton(_file(tmp_path, lines))


def test_wrong_counts_and_empty(tmp_path):
    with pytest.raises(ctrgcn.InputError, match="expected 25 joints, got 24"):
        read_skeleton(_file(tmp_path, ["1", "1"] + _body(joints=24)))
    short = "0.2 0.1 3.8 276.0 190.0 1032.3 514.0"
    with pytest.raises(ctrgcn.InputError, match="expected 12 numbers, got 7"):
        read_skeleton(_file(tmp_path, ["1", "1"] + _body(line=short)))
    with pytest.raises(ctrgcn.InputError, match="zero frames"):
        read_skeleton(_file(tmp_path, ["0"]))
    with pytest.raises(ctrgcn.InputError, match="all 2 frames have no body"):
        read_skeleton(_file(tmp_path, ["2", "0", "0"]))
    empty = tmp_path / "empty.skeleton"
    empty.write_bytes(b"")
    with pytest.raises(ctrgcn.InputError, match="line 1: unexpected end of file"):
        read_skeleton(empty)
    with pytest.raises(ctrgcn.FileError):
        read_skeleton(tmp_path / "missing.skeleton")
    binary = tmp_path / "bin.skeleton"
    binary.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(ctrgcn.InputError):
        read_skeleton(binary)
    long_line = _file(tmp_path, ["1", "1", "9" * 100000])
    with pytest.raises(ctrgcn.InputError):
        read_skeleton(long_line)


def test_denoise_paths(tmp_path):
    """Length filter, frames without bodies, and bodies that vanish and return (packed interval)."""
    a, b = "72057594037900001", "72057594037900002"
    wide = "0.9 0.1 3.8 276.0 190.0 1032.3 514.0 -0.17 0.04 0.97 -0.15 2"
    frames = []
    for t in range(20):
        bodies = _body(a) + (_body(b, line=wide) if t < 5 else [])
        frames += [str(2 if t < 5 else 1)] + bodies
    p = _file(tmp_path, ["21", "0"] + frames)
    s = prepare_sample(p)
    assert s.skeleton.num_frames == 20 and list(s.skeleton.frames_drop) == [0]
    assert s.actor1_ids == [a] and s.body_dropped == [0, 1] and s.denoised.shape == (20, 75)
    assert "Filter out: 72057594037900002, 5 (length)." in s.actors_info
    assert s.actors_info.rstrip().endswith(f"Main actor: {a}")
    # a body listed twice in one frame would overrun the scripts' arrays: a clear error
    p = _file(tmp_path, ["2", "2"] + _body(a) + _body(a) + ["1"] + _body(a))
    with pytest.raises(ctrgcn.InputError, match="listed twice"):
        prepare_sample(p)


def test_prepare_reports_bad_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _file(src, ["1", "1"] + _body(), name="S001C001P001R001A001.skeleton")
    _file(src, ["3", "1"] + _body(), name="S001C002P002R001A002.skeleton")  # truncated
    _file(src, ["1", "1"] + _body(), name="S001C001P001R001A099.skeleton")  # not NTU60
    summary = prepare_ntu(src, tmp_path / "out", workers=2)
    assert summary["prepared"] == 1 and summary["failed"] == ["S001C002P002R001A002.skeleton"]
    log = (tmp_path / "out" / "prepare_ntu.log").read_text()
    assert "FAILED" in log and "unexpected end of file" in log and "A099: skipped" in log

"""The readers under fuzzing, one function per target taking the bytes of one input.

Each writes the bytes where the reader expects a file, runs the reader and lets nothing but a
``ctrgcn.Error`` pass silently: any other exception is a finding. Shared by the atheris harnesses
(fuzz_python.py), the mutation tests (tests/test_hardening.py) and the seed corpora."""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import ctrgcn

# a fuzzer ends through libFuzzer's exit(), past Python's atexit: run_fuzz.py then lends a folder it removes
if os.environ.get("CTRGCN_FUZZ_TMP"):
    _DIR = Path(os.environ["CTRGCN_FUZZ_TMP"])
else:
    _DIR = Path(tempfile.mkdtemp(prefix="ctrgcn-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    atexit.register(shutil.rmtree, _DIR, True)


def _put(name, data):
    path = _DIR / name
    path.write_bytes(data)
    return path


def _expect_error(fn, *args):
    try:
        return fn(*args)
    except ctrgcn.Error:
        return None


def weights_npz(data):
    _expect_error(ctrgcn.load, _put("w.npz", data))


def weights_pt(data):
    _expect_error(ctrgcn.load, _put("w.pt", data))


def weights_pdparams(data):
    _expect_error(ctrgcn.load, _put("w.pdparams", data))


def weights_ctrgcn(data):
    _expect_error(ctrgcn.load, _put("w.ctrgcn", data))


def label_pickle(data):
    from ctrgcn.data._pickle import load_labels
    _expect_error(load_labels, _put("l.pkl", data))


# Paddle inference: a fuzzed input is one file of a small model whose other files are the seed's.
INFERENCE_PARTS = (".pdiparams", ".pdmodel", ".pdiparams.info", ".json")


def paddle_inference(data, companions=None):
    """``data[0] % 4`` picks the part the rest of ``data`` replaces (.pdiparams, .pdmodel,
    .pdiparams.info or the PIR .json); ``companions`` (part -> bytes) are the other files."""
    from ctrgcn.formats.paddle import read_inference
    if not data:
        return
    from fuzz_seeds import inference_model
    parts = dict(companions or inference_model())
    part = INFERENCE_PARTS[data[0] % 4]
    if part == ".json":
        parts.pop(".pdmodel", None)
        parts.pop(".pdiparams.info", None)
    parts[part] = data[1:]
    for ext in INFERENCE_PARTS:
        p = _DIR / ("m" + ext)
        if ext in parts:
            p.write_bytes(parts[ext])
        elif p.exists():
            p.unlink()
    structured = part != ".json"
    _expect_error(read_inference, str(_DIR / "m.pdiparams"), structured)


def train_config(data):
    from ctrgcn.training.config import load_config, merged_config

    def read(path):
        return merged_config(load_config(path))
    _expect_error(read, _put("c.yaml", data))
    _expect_error(read, _put("c.json", data))


def ucla_json(data):
    from ctrgcn.data.ucla import load_sequence
    _expect_error(load_sequence, _put("a01_s01_e00_v01.json", data))


def ntu_skeleton(data):
    from ctrgcn.data.ntu import prepare_sample
    _expect_error(prepare_sample, _put("S001C001P001R001A001.skeleton", data))


TARGETS = {f.__name__: f for f in (weights_npz, weights_pt, weights_pdparams, weights_ctrgcn, label_pickle,
                                    paddle_inference, train_config, ucla_json, ntu_skeleton)}


def every_target(data):
    """All targets in one process (a short CI run pays one start-up): ``data[0]`` picks the target
    (in the order of TARGETS), the rest is its input."""
    if data:
        names = sorted(TARGETS)
        TARGETS[names[data[0] % len(names)]](data[1:])


"""Class names carried by a model and kept in its file (format version 4), the datasets' names,
and the shipped-weights registry ``ctrgcn.pretrained``."""
import os
import struct
import zlib

import numpy as np
import pytest

import ctrgcn
from ctrgcn import zoo


def _version(path):
    return struct.unpack("<I", path.read_bytes()[8:12])[0]


def _rewrite(path, data):
    """Write bytes with a fresh CRC-32 at the end (what a writer of that layout would produce)."""
    path.write_bytes(data + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF))


def small(classes=4, **kw):
    return ctrgcn.Model("CTRGCN_lightV2", num_classes=classes, graph="ucla", num_person=1, **kw)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_names_survive_save_and_load(tmp_path, dtype):
    model = small()
    assert model.classes is None and model.class_name(2) == "2"
    names = ["wave", "sit down", "pick up (two hands)", "überschlag ✓"]
    model.classes = names
    assert model.classes == names and model.class_name(3) == names[3]
    path = tmp_path / "m.ctrgcn"
    model.save(path, dtype=dtype)
    assert _version(path) == 4
    back = ctrgcn.load(path)
    assert back.classes == names
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 20, 1)).astype(np.float32)
    if dtype == "float32":
        np.testing.assert_array_equal(back(x), model(x))
    model.classes = None
    model.save(path)
    assert _version(path) == 3 and ctrgcn.load(path).classes is None  # no names: readable by older builds


def test_bad_names_are_refused():
    model = small()
    for bad in (["a", "b"], "abcd", ["a", "b", "", "d"], ["a", "b", "c\0", "d"], ["a", "b", 3, "d"],
                ["a", "b", "c", "x" * 1025]):
        with pytest.raises(ctrgcn.InputError):
            model.classes = bad
    assert model.classes is None  # a refused assignment changes nothing


def test_old_files_still_load(tmp_path):
    """A version-1 file (the preset named, no architecture section, no names) loads with classes None."""
    model = small(classes=3)
    path = tmp_path / "m.ctrgcn"
    model.save(path)
    data = path.read_bytes()[:-4]
    edges = struct.unpack("<i", data[12 + 6 * 4:12 + 7 * 4])[0]
    arch_at = 12 + 7 * 4 + 8 * edges
    old = data[:8] + struct.pack("<I", 1) + data[12:arch_at] + data[arch_at + 4 * (4 + 7 * 10):]
    _rewrite(path, old)
    back = ctrgcn.load(path)
    assert back.classes is None and back.variant == "CTRGCN_lightV2"
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 20, 1)).astype(np.float32)
    np.testing.assert_array_equal(back(x), model(x))


def test_damaged_name_sections_are_errors(tmp_path):
    model = small(classes=2)
    model.classes = ["left", "right"]
    path = tmp_path / "m.ctrgcn"
    model.save(path)
    good = path.read_bytes()[:-4]
    tail = struct.pack("<I", 2) + b"\x04\x00left" + b"\x05\x00right"
    assert good.endswith(tail)
    body = good[: -len(tail)]
    cases = {"3 class names for 2": body + struct.pack("<I", 3) + tail[4:],
             "truncated": body + tail[:-2],
             "empty": body + struct.pack("<I", 2) + b"\x00\x00" + b"\x05\x00right",
             "NUL": body + struct.pack("<I", 2) + b"\x04\x00le\x00t" + b"\x05\x00right",
             "extra bytes": good + b"\x00"}
    for message, data in cases.items():
        _rewrite(path, data)
        with pytest.raises(ctrgcn.InputError, match=message):
            ctrgcn.load(path)
    path.write_bytes(good + b"\x00\x00\x00\x00")  # a wrong checksum
    with pytest.raises(ctrgcn.InputError, match="checksum"):
        ctrgcn.load(path)


def test_dataset_class_names():
    assert len(ctrgcn.NWUCLA_CLASSES) == 10 and len(ctrgcn.NTU60_CLASSES) == 60
    assert ctrgcn.NWUCLA_CLASSES[3] == "walk around" and ctrgcn.NTU60_CLASSES[58] == "walking towards each other"
    assert len(set(ctrgcn.NTU60_CLASSES)) == 60 and len(set(ctrgcn.NWUCLA_CLASSES)) == 10


def test_pretrained_lists_and_loads_from_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CTRGCN_PRETRAINED_DIR", str(tmp_path))
    assert ctrgcn.pretrained() == []
    with pytest.raises(ctrgcn.InputError, match="none"):
        ctrgcn.pretrained("nwucla_ctrgcn_joint")
    model = small(classes=10)
    model.classes = list(ctrgcn.NWUCLA_CLASSES)
    model.save(tmp_path / "nwucla_ctrgcn_joint.ctrgcn", dtype="float16")
    small(classes=2).save(tmp_path / "other_model.ctrgcn")
    (tmp_path / "notes.txt").write_text("not weights")
    assert ctrgcn.pretrained() == ["nwucla_ctrgcn_joint", "other_model"]
    loaded = ctrgcn.pretrained("nwucla_ctrgcn_joint")
    assert loaded.classes == list(ctrgcn.NWUCLA_CLASSES) and loaded.num_classes == 10
    with pytest.raises(ctrgcn.Error, match="available: nwucla_ctrgcn_joint, other_model"):
        ctrgcn.pretrained("ntu_ctrgcn_joint")


def test_shipped_folder_holds_only_real_weight_files():
    """The package folder exists; whatever it ships loads and names its classes."""
    assert zoo.pretrained_dir() == zoo.PRETRAINED_DIR or "CTRGCN_PRETRAINED_DIR" in os.environ
    assert os.path.isdir(zoo.PRETRAINED_DIR)
    for name in zoo.available():
        assert ctrgcn.pretrained(name).classes is not None


def test_convert_adds_class_names(tmp_path, capsys):
    from ctrgcn.__main__ import main
    small(classes=10).save(tmp_path / "plain.ctrgcn")
    assert main(["convert", str(tmp_path / "plain.ctrgcn"), str(tmp_path / "named.ctrgcn"), "--dtype", "float16",
                 "--classes", "nwucla"]) == 0
    assert ctrgcn.load(tmp_path / "named.ctrgcn").classes == list(ctrgcn.NWUCLA_CLASSES)
    (tmp_path / "names.txt").write_text("\n".join(f"class {k}" for k in range(10)) + "\n")
    assert main(["convert", str(tmp_path / "named.ctrgcn"), str(tmp_path / "mine.ctrgcn"),
                 "--classes", str(tmp_path / "names.txt")]) == 0
    assert ctrgcn.load(tmp_path / "mine.ctrgcn").classes == [f"class {k}" for k in range(10)]
    assert main(["convert", str(tmp_path / "named.ctrgcn"), str(tmp_path / "x.ctrgcn"), "--classes", "ntu60"]) == 1
    assert "60 names for a model of 10 classes" in capsys.readouterr().err


def test_load_takes_a_shipped_name_where_no_file_is():
    names = ctrgcn.pretrained()
    if not names:
        pytest.skip("no shipped weights")
    m = ctrgcn.load(names[0])
    assert m.classes and m.state_dict().keys() == ctrgcn.pretrained(names[0]).state_dict().keys()
    with pytest.raises(ctrgcn.FileError, match="cannot open"):
        ctrgcn.load(names[0] + "_nope")

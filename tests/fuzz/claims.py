"""Small files that claim huge sizes: 10^9 frames, bodies, joints, elements, a spec of billions of
weights, a zip member of terabytes. Each reader must refuse them with a ctrgcn.InputError without
allocating what they claim (tests/test_hardening.py runs them under an address-space limit)."""
import io
import json
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

import fuzz_seeds


def _npy_header(shape, descr="<f4"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _zip(members, claimed_sizes=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    raw = bytearray(buf.getvalue())
    for name, size in (claimed_sizes or {}).items():
        # rewrite the uncompressed size in the member's local header and central directory entry
        encoded = name.encode()
        for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            pos = raw.find(sig)
            while pos >= 0:
                name_at = pos + (30 if sig == b"PK\x03\x04" else 46)
                if raw[name_at:name_at + len(encoded)] == encoded:
                    struct.pack_into("<I", raw, pos + off, size)
                pos = raw.find(sig, pos + 4)
    return bytes(raw)


def _ctrgcn_wide_spec():
    """The tiny model's file with every block 16384 channels wide (billions of weights claimed)."""
    data = bytearray(fuzz_seeds.synthetic()["weights_ctrgcn"][0])
    num_edges = struct.unpack_from("<i", data, 12 + 6 * 4)[0]
    blocks = 12 + 7 * 4 + num_edges * 8 + 4 * 4
    struct.pack_into("<i", data, 12, 4)  # CTRGCN_VARIANT_CUSTOM: widths edited away from the preset
    for k in range(10):
        struct.pack_into("<i", data, blocks + k * 7 * 4, 16384)
    struct.pack_into("<I", data, len(data) - 4, zlib.crc32(bytes(data[:-4])))
    return bytes(data)


class _ClaimedArray:
    """Pickles as NumPy pickles an array, with a state that claims ``shape`` over 4 bytes."""

    def __init__(self, shape):
        self.shape = shape

    def __reduce__(self):
        return (np.ndarray.__reduce__(np.zeros(1))[0], (np.ndarray, (0,), b"b"),
                (1, self.shape, np.dtype("<f4"), False, b"\0" * 4))


def _pickle_reconstruct(shape):
    return pickle.dumps({"fc.weight": _ClaimedArray(shape)}, protocol=2)


def _lod_record(dims):
    desc = fuzz_seeds._field(1, 5) + b"".join(fuzz_seeds._field(2, d) for d in dims)
    return struct.pack("<IQI", 0, 0, 0) + struct.pack("<i", len(desc)) + desc + b"\0" * 16


def _skeleton_bodies(n):
    """One frame holding n distinct one-frame bodies (a real, not a claimed, count)."""
    joint = " ".join(["0.1"] * 11) + " 2"
    body = "\n".join(["{} 0 1 1 1 1 0 0 0 2", "25"] + [joint] * 25)
    return ("1\n" + f"{n}\n" + "\n".join(body.format(i) for i in range(n)) + "\n").encode()


def cases():
    """[(target, case name, bytes)]; every one must give a ctrgcn.InputError."""
    parts = fuzz_seeds.inference_model()
    npz_huge = _zip({"w.npy": _npy_header((10 ** 9, 10 ** 9)) + b"\0" * 64})
    npz_member_claim = _zip({"w.npy": _npy_header((4,)) + b"\0" * 16}, {"w.npy": 4 * 10 ** 9})
    billion_laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9))
    return [
        ("ntu_skeleton", "10^8 frames claimed", b"100000000\n1\n"),
        ("ntu_skeleton", "10^8 bodies claimed", b"1\n100000000\n1 0 1 1 1 1 0 0 0 2\n"),
        ("ntu_skeleton", "10^9 joints claimed", b"1\n1\n1 0 1 1 1 1 0 0 0 2\n1000000000\n"),
        ("weights_ctrgcn", "a spec of billions of weights", _ctrgcn_wide_spec()),
        ("weights_npz", "an .npy header of 10^18 elements", npz_huge),
        ("weights_npz", "a member claiming 4 GB", npz_member_claim),
        ("weights_pt", "a storage claiming 4 GB", _zip({"archive/data.pkl": b"\x80\x02}q\x00.",
                                                       "archive/data/0": b"\0" * 16}, {"archive/data/0": 4 * 10 ** 9})),
        ("weights_pdparams", "an array state claiming 10^18 elements", _pickle_reconstruct((10 ** 9, 10 ** 9))),
        ("weights_pdparams", "bytes of 10^12 claimed", b"\x80\x04\x8e" + struct.pack("<Q", 10 ** 12) + b"abc."),
        ("weights_pdparams", "a memo index of 10^9", b"\x80\x04N" + b"r" + struct.pack("<I", 10 ** 9) + b"."),
        ("label_pickle", "a frame inside a frame (the unpickler then allocated 2.8 GB)",
         (Path(__file__).parent / "regressions" / "label_pickle" / "nested_frame_oom").read_bytes()),
        ("label_pickle", "a memo index of 2^32 - 1", b"\x80\x04N" + b"r" + struct.pack("<I", 2 ** 32 - 1) + b"."),
        ("paddle_inference", "a tensor record of 10^18 elements",
         b"\x00" + _lod_record((10 ** 9, 10 ** 9)) + parts[".pdiparams"]),
        ("paddle_inference", "a LoD of 2^60 levels", b"\x00" + struct.pack("<IQ", 0, 2 ** 60) + b"\0" * 32),
        ("train_config", "a billion laughs", billion_laughs.encode()),
        ("train_config", "10^6 nested lists", b"[" * 10 ** 6),
        ("ucla_json", "10^6 nested lists", b'{"skeletons": ' + b"[" * 10 ** 6),
        ("ucla_json", "10^9 frames claimed by a shape", json.dumps({"skeletons": [[[0, 0, 0]] * 20], "label": 1,
                                                                      "frames": 10 ** 9}).replace(
            "[[", "[" * 40, 1).encode()),
    ]

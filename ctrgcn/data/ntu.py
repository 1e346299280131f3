"""NTU RGB+D: the .skeleton reader, the reference preparation (parse, denoise, translate, pad,
split) and a dataset over its output. Parsing, denoising and translation run in C
(``csrc/data``); this module orders files, splits and writes them."""
from __future__ import annotations

import os
import pickle
import re
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, TypedDict, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrgcn.data._base import BatchedDataset
from ctrgcn import _core
from ctrgcn.classes import NTU60_CLASSES
from ctrgcn._core import Error, FileError, InputError
from ctrgcn._types import F32Array, I64Array, PathLike, SkeletonRecord
from ctrgcn.data._pickle import load_labels
from ctrgcn.data.modalities import check_modality
from ctrgcn.formats.npz import read_npy, read_npz

NAME_RE = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")
MAX_FRAMES = 300

# Split rules of the reference scripts (CTR-GCN data/ntu*/seq_transformation.py). Rows are grouped
# by ID in the order of these lists, then by name.
NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU60_XSUB_TEST = (3, 6, 7, 10, 11, 12, 20, 21, 22, 23, 24, 26, 29, 30, 32, 33, 36, 37, 39, 40)
NTU120_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50,
                     52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95,
                     97, 98, 100, 103)
NTU120_XSUB_TEST = tuple(i for i in range(1, 107) if i not in NTU120_XSUB_TRAIN)
# benchmark -> [(PaddleVideo folder, CTR-GCN npz, name field, train ids, test ids)]
BENCHMARKS = {
    "ntu60": [("xsub", "NTU60_CS.npz", "performer", NTU60_XSUB_TRAIN, NTU60_XSUB_TEST),
              ("xview", "NTU60_CV.npz", "camera", (2, 3), (1,))],
    "ntu120": [("xsub", "NTU120_CSub.npz", "performer", NTU120_XSUB_TRAIN, NTU120_XSUB_TEST),
               ("xset", "NTU120_CSet.npz", "setup", tuple(range(2, 33, 2)), tuple(range(1, 33, 2)))],
}
NUM_CLASSES = {"ntu60": 60, "ntu120": 120}


def parse_name(name: str) -> Dict[str, int]:
    """{'setup', 'camera', 'performer', 'replication', 'action'} of a name like S001C001P001R001A011."""
    m = NAME_RE.match(name)
    if not m:
        raise InputError(f"{name!r} is not an NTU sample name (SsssCcccPpppRrrrAaaa)")
    return dict(zip(("setup", "camera", "performer", "replication", "action"), map(int, m.groups())))


@dataclass
class Body:
    """One body of a ``.skeleton`` file: its tracking id and where and when it was seen."""
    id: str
    joints: F32Array       # (n, 25, 3) float32, metres
    colors: F32Array       # (n, 25, 2) float32, pixels of the RGB frame
    interval: I64Array     # (n,) the scripts' packed valid-frame indices: first .. first + n - 1
    frames: I64Array       # (n,) valid-frame index of each appearance
    motion: Optional[float]  # sum of per-axis variances; only for samples with >= 2 bodies


@dataclass
class Skeleton:
    """A parsed ``.skeleton`` file: its frame counts, the frames without a body, the bodies."""
    name: str
    num_frames_in_file: int
    num_frames: int          # frames with at least one body
    frames_drop: I64Array    # 0-based file frames with no body
    bodies: List[Body]


@dataclass
class PreparedSample:
    """Every stage of the reference preparation of one file."""
    name: str
    skeleton: Skeleton
    denoised: F32Array          # (T, 75) one actor / (T, 150) two
    denoised_colors: F32Array   # (valid frames, actors, 25, 2), NaN where absent
    actor1_ids: List[str]
    actor2_ids: List[str]
    actors_info: Optional[str]  # the scripts' actors_info text (multi-body samples)
    body_dropped: List[int]     # per body: 0 kept, 1 length filter, 2 spread filter, 3 not placed
    frames_removed: int
    origin_frame: int
    origin: F32Array            # (3,) subtracted from every x, y, z
    aligned: F32Array           # (T, 75 or 150) after translation, before padding

    def padded(self, max_frames: int = MAX_FRAMES) -> F32Array:
        """(max_frames, 150): zero-padded frames, zero second actor for one-actor samples."""
        out = np.zeros((max_frames, 150), np.float32)
        T = min(len(self.aligned), max_frames)
        out[:T, :self.aligned.shape[1]] = self.aligned[:T]
        return out

    def paddle(self, max_frames: int = MAX_FRAMES) -> F32Array:
        """(3, max_frames, 25, 2), PaddleVideo's layout."""
        return to_paddle(self.padded(max_frames))


def to_paddle(x: ArrayLike) -> NDArray[Any]:
    """(..., T, 150) -> (..., 3, T, 25, 2)."""
    x = np.asarray(x)
    lead, T = x.shape[:-2], x.shape[-2]
    y = x.reshape(*lead, T, 2, 25, 3)
    return np.ascontiguousarray(np.moveaxis(y, (-4, -3, -2, -1), (-3, -1, -2, -4)))


def _skeleton(name: str, d: SkeletonRecord) -> Skeleton:
    bodies = [Body(b["id"], b["joints"], b["colors"], b["interval"], b["frames"], b["motion"]) for b in d["bodies"]]
    return Skeleton(name, d["num_frames_in_file"], d["num_frames"], d["frames_drop"], bodies)


def _stem(path: PathLike) -> str:
    name = os.path.basename(os.fspath(path))
    return name[:-len(".skeleton")] if name.endswith(".skeleton") else name


def read_skeleton(path: PathLike) -> Skeleton:
    """Parse an NTU RGB+D .skeleton file (C). Raises ctrgcn.InputError naming the file and line
    when it is malformed or truncated, ctrgcn.FileError when it cannot be read."""
    return _skeleton(_stem(path), _core.data_prepare_skeleton(os.fspath(path), 0))


def prepare_sample(path: PathLike) -> PreparedSample:
    """Parse, denoise and translate one file exactly as the reference scripts do."""
    d = _core.data_prepare_skeleton(os.fspath(path), 2)
    sk = _skeleton(_stem(path), d)
    ids = [b.id for b in sk.bodies]
    return PreparedSample(sk.name, sk, d["denoised"], d["denoised_colors"], [ids[i] for i in d["actor1"]],
                          [ids[i] for i in d["actor2"]], d["actors_info"], d["body_dropped"], d["frames_removed"],
                          d["origin_frame"], d["origin"], d["aligned"])


def split_orders(names: Sequence[str], field_name: str, train_ids: Iterable[int],
                 test_ids: Iterable[int]) -> Tuple[I64Array, I64Array]:
    """Row orders (indices into names) of the train and test files of one split."""
    values = np.array([parse_name(n)[field_name] for n in names], dtype=np.int64)

    def order(ids: Iterable[int]) -> NDArray[np.intp]:
        return np.concatenate([np.flatnonzero(values == i) for i in ids] or [np.zeros(0, np.int64)])

    return order(train_ids).astype(np.int64), order(test_ids).astype(np.int64)


def _read_ignore(ignore: Union[PathLike, Iterable[str], None]) -> Set[str]:
    if ignore is None:
        return set()
    if isinstance(ignore, (str, os.PathLike)):
        try:
            text = Path(ignore).read_bytes().decode("utf-8", "replace")
        except OSError as exc:
            raise FileError(f"cannot read the ignore list '{ignore}': {exc.strerror}") from None
        return {line.strip() for line in text.splitlines() if line.strip()}
    return set(ignore)


_DROP_REASON = {1: "length <= 11 frames", 2: "spread filter", 3: "overlaps both actors"}


def _log_sample(log: IO[str], s: PreparedSample) -> None:
    notes = []
    if s.skeleton.frames_drop.size:
        notes.append(f"{len(s.skeleton.frames_drop)} frames without body dropped: {s.skeleton.frames_drop.tolist()}")
    for b, code in zip(s.skeleton.bodies, s.body_dropped):
        if code:
            notes.append(f"body {b.id} dropped ({_DROP_REASON[code]})")
    if s.frames_removed:
        notes.append(f"{s.frames_removed} all-zero frames removed after the choice of actors")
    if notes or s.actors_info:
        log.write(f"{s.name}: " + "; ".join(notes or ["denoised"]) + "\n")
    if s.actors_info:
        log.write("".join("    " + line + "\n" for line in s.actors_info.rstrip("\n").split("\n")))


class PrepareSummary(TypedDict):
    """What ``prepare_ntu`` did: files found, prepared, failed (their names) and skipped, the time
    taken, and the samples of each split (``"xsub/train"``: count, ...)."""
    files: int
    prepared: int
    failed: List[str]
    skipped: int
    seconds: float
    files_per_second: float
    splits: Dict[str, int]


def prepare_ntu(skeleton_dir: PathLike, out_dir: PathLike, benchmark: str = "ntu60", workers: Optional[int] = None,
                max_frames: int = MAX_FRAMES, npz: bool = True, ignore: Union[PathLike, Iterable[str], None] = None,
                progress: Optional[Callable[[int, int], object]] = None) -> PrepareSummary:
    """The whole reference preparation of a folder of .skeleton files.

    Writes, per split (ntu60: xsub, xview; ntu120: xsub, xset), PaddleVideo's
    ``<split>/{train,val}_data.npy`` (N, 3, max_frames, 25, 2) float32 and ``{train,val}_label.pkl``
    ([names S20, int64 labels]), CTR-GCN's ``NTU60_CS.npz`` ... (x_train (N, max_frames, 150), one-hot
    y_train, x_test, y_test) unless npz is False, and ``prepare_ntu.log`` (what was dropped or denoised).
    ``ignore``: names (or a file of names, e.g. samples_with_missing_skeletons.txt) to leave out.
    ``progress(done, total)`` is called as files finish. Returns a summary dict."""
    if benchmark not in BENCHMARKS:
        raise InputError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
    if int(max_frames) < 1:
        raise InputError("max_frames must be >= 1")
    skeleton_dir, out_dir = Path(skeleton_dir), Path(out_dir)
    if not skeleton_dir.is_dir():
        raise FileError(f"no such folder: '{skeleton_dir}'")
    workers = max(1, int(workers or os.cpu_count() or 1))
    num_classes = NUM_CLASSES[benchmark]
    skip = _read_ignore(ignore)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = open(out_dir / "prepare_ntu.log", "w")
    log.write(f"prepare-ntu {benchmark}: {skeleton_dir}\n")
    files: List[Path] = []
    notes: List[str] = []
    for p in sorted(skeleton_dir.glob("*.skeleton")):
        name = p.name[:-len(".skeleton")]
        if not NAME_RE.match(name):
            notes.append(f"{p.name}: skipped (not an NTU sample name)")
        elif name in skip:
            notes.append(f"{name}: skipped (in the ignore list)")
        elif parse_name(name)["action"] > num_classes:
            notes.append(f"{name}: skipped (action {parse_name(name)['action']} is not in {benchmark})")
        else:
            files.append(p)
    for n in notes:
        log.write(n + "\n")

    names: List[str] = []
    labels: List[int] = []
    rows: List[Tuple[int, int, int]] = []  # (offset, frames, width) of each sample in the temporary file
    failed: List[str] = []
    start = time.perf_counter()
    tmp = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".prepare-ntu-", suffix=".f32", delete=False)
    try:
        offset = 0

        def work(path: Path) -> Union[PreparedSample, str]:
            """The prepared sample, or the message of the error that stopped it."""
            try:
                return prepare_sample(path)
            except Error as exc:
                return str(exc)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            window = workers * 4
            pending: List[Optional[Future[Union[PreparedSample, str]]]]  # None once taken
            pending = [pool.submit(work, p) for p in files[:window]]
            for i, p in enumerate(files):
                future = pending[i]
                assert future is not None
                sample = future.result()
                pending[i] = None
                if i + window < len(files):
                    pending.append(pool.submit(work, files[i + window]))
                if isinstance(sample, str):
                    failed.append(p.name)
                    log.write(f"{p.name}: FAILED, left out: {sample}\n")
                else:
                    _log_sample(log, sample)
                    a = np.ascontiguousarray(sample.aligned, np.float32)
                    if len(a) > max_frames:
                        log.write(f"{sample.name}: {len(a)} frames truncated to {max_frames}\n")
                        a = np.ascontiguousarray(a[:max_frames])
                    tmp.write(a.tobytes())
                    rows.append((offset, a.shape[0], a.shape[1]))
                    offset += a.size
                    names.append(sample.name)
                    labels.append(parse_name(sample.name)["action"] - 1)
                if progress:
                    progress(i + 1, len(files))
        tmp.close()
        elapsed = time.perf_counter() - start
        store = np.memmap(tmp.name, np.float32, "r", shape=(offset,)) if offset else np.zeros(0, np.float32)
        labels_arr = np.array(labels, np.int64)
        split_sizes: Dict[str, int] = {}
        for folder, npz_name, field_name, train_ids, test_ids in BENCHMARKS[benchmark]:
            train, test = split_orders(names, field_name, train_ids, test_ids)
            outside = len(names) - len(train) - len(test)
            if outside:
                log.write(f"{folder}: {outside} samples in neither split\n")
            (out_dir / folder).mkdir(exist_ok=True)
            arrays: Dict[str, Tuple[NDArray[np.float32], I64Array]] = {}
            for part, order in (("train", train), ("val", test)):
                data = np.lib.format.open_memmap(out_dir / folder / f"{part}_data.npy", "w+", np.float32,
                                                 (len(order), 3, max_frames, 25, 2))
                for k, r in enumerate(order):
                    off, T, width = rows[r]
                    full = np.zeros((max_frames, 150), np.float32)
                    full[:T, :width] = np.asarray(store[off:off + T * width]).reshape(T, width)
                    data[k] = to_paddle(full)
                data.flush()
                with open(out_dir / folder / f"{part}_label.pkl", "wb") as f:
                    pickle.dump([np.array([names[r] for r in order], dtype="S20"), labels_arr[order]], f)
                arrays[part] = (data, order)
                split_sizes[f"{folder}/{part}"] = len(order)
            if npz:
                _write_npz(out_dir / npz_name, arrays, labels_arr, num_classes, max_frames)
            del arrays
        del store
    finally:
        tmp.close()
        os.unlink(tmp.name)
    summary: PrepareSummary = {
        "files": len(files), "prepared": len(names), "failed": failed, "skipped": len(notes), "seconds": elapsed,
        "files_per_second": len(files) / elapsed if elapsed > 0 else float("inf"), "splits": split_sizes}
    log.write(f"{len(names)} prepared, {len(failed)} failed, {len(notes)} skipped; "
              f"{summary['files_per_second']:.1f} files/s with {workers} workers\n")
    log.close()
    return summary


def _write_npz(path: Path, arrays: Mapping[str, Tuple[NDArray[np.float32], I64Array]], labels: I64Array,
               num_classes: int, max_frames: int, chunk: int = 256) -> None:
    """CTR-GCN's npz, streamed from the PaddleVideo arrays so nothing of data-set size sits in memory."""
    import zipfile
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        for part, key in (("train", "train"), ("val", "test")):
            data, order = arrays[part]
            with zf.open(f"x_{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                        "shape": (len(data), max_frames, 150)})
                for s in range(0, len(data), chunk):
                    block = np.asarray(data[s:s + chunk]).transpose(0, 2, 4, 3, 1)
                    f.write(np.ascontiguousarray(block).tobytes())
            with zf.open(f"y_{key}.npy", "w", force_zip64=True) as f:
                one_hot = np.zeros((len(order), num_classes))
                one_hot[np.arange(len(order)), labels[order]] = 1.0
                np.lib.format.write_array(f, one_hot)


class NTUDataset(BatchedDataset):
    """Prepared NTU samples: a PaddleVideo split folder (``{train,val}_data.npy`` + ``_label.pkl``)
    or a CTR-GCN ``.npz`` (x_train / x_test (N, T, 150), one-hot y).

    ``ds[i]`` -> (x (3, window, 25, 2) float32, label). Training (augment=True, the default for
    split="train"): a random crop of the valid frames (ratio p uniform in p_interval, at least 64
    frames or all valid ones) resized to `window`, then a random rotation about each axis by
    angles uniform in [-rotation, rotation] rad. Evaluation: the centre crop with p = test_p resized
    to `window` (ctrgcn.preprocess). Randomness is a function of (seed, epoch, index)."""

    def __init__(self, root: PathLike, split: str = "train", modality: str = "joint", augment: Optional[bool] = None,
                 window: int = 64, p_interval: Sequence[float] = (0.5, 1.0), test_p: float = 0.95,
                 rotation: float = 0.3, seed: int = 0, mmap: bool = True) -> None:
        if split not in ("train", "val", "test"):
            raise InputError(f"split must be 'train' or 'val' ('test'), got {split!r}")
        part = "train" if split == "train" else "val"
        self.modality = modality
        self._modality = check_modality(modality)
        self.augment = (split == "train") if augment is None else bool(augment)
        self.window, self.test_p, self.rotation = int(window), float(test_p), float(rotation)
        self.p_interval = (float(p_interval[0]), float(p_interval[-1]))
        self.seed, self.epoch = int(seed), 0
        root = Path(root)
        if root.suffix == ".npz":
            if not root.is_file():
                raise FileError(f"no such file: '{root}'")
            key = "train" if part == "train" else "test"
            z = read_npz(root, keys={f"x_{key}", f"y_{key}"})
            if f"x_{key}" not in z or f"y_{key}" not in z:
                raise InputError(f"file '{root}': no x_{key} and y_{key} arrays")
            x = z[f"x_{key}"]
            if x.dtype.kind not in "fiu":
                raise InputError(f"file '{root}': x_{key} holds {x.dtype}, not numbers")
            if x.ndim != 3 or x.shape[2] != 150:
                raise InputError(f"file '{root}': x_{key} must be (N, T, 150), got {x.shape}")
            self.data: F32Array = to_paddle(x.astype(np.float32))
            y = np.asarray(z[f"y_{key}"])
            if y.dtype.kind not in "fiub" or y.ndim != 2 or len(y) != len(x) or y.shape[1] < 1:
                raise InputError(f"file '{root}': y_{key} must be one-hot (N, classes), got {y.shape}")
            self.labels = y.argmax(axis=1).astype(np.int64)
            self.names: Optional[List[str]] = None
        else:
            data_path, label_path = root / f"{part}_data.npy", root / f"{part}_label.pkl"
            if not data_path.is_file() or not label_path.is_file():
                raise FileError(f"'{root}' has no {data_path.name} and {label_path.name}")
            data = read_npy(data_path, mmap)
            if data.dtype.kind not in "fiu":
                raise InputError(f"file '{data_path}': holds {data.dtype}, not numbers")
            if data.dtype != np.float32 or not data.flags.c_contiguous:
                data = np.ascontiguousarray(data, np.float32)
            self.data = data
            names, labels = load_labels(label_path)
            self.names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]
            try:
                self.labels = np.asarray(labels, np.int64).reshape(-1)
            except (ValueError, TypeError, OverflowError):
                raise InputError(f"file '{label_path}': labels are not integers") from None
        if self.data.ndim != 5 or self.data.shape[1] != 3 or self.data.shape[3] != 25:
            raise InputError(f"'{root}': expected data (N, 3, T, 25, M), got {self.data.shape}")
        self.classes = list(NTU60_CLASSES)  # the first 60 actions (NTU-120 adds 60 more)
        if len(self.labels) != len(self.data):
            raise InputError(f"'{root}': {len(self.data)} samples but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, indices: ArrayLike, epoch: Optional[int] = None) -> Tuple[F32Array, I64Array]:
        """(x (B, 3, window, 25, M) float32, y (B,) int64), assembled in C over threads (an index
        out of range is the C side's InputError)."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        x = _core.data_ntu_batch(self.data, idx, self._seed(epoch), self.augment, self.window, self.p_interval[0],
                                 self.p_interval[1], self.test_p, 64, self.rotation, self._modality)
        return x, self.labels[idx] if len(idx) else np.zeros(0, np.int64)

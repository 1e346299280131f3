"""Training configs: defaults, YAML / JSON files, validation, learning-rate schedules."""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, Mapping, Tuple, Union

from ctrgcn import _core
from ctrgcn._core import FileError, InputError
from ctrgcn._types import PathLike
from ctrgcn.cuda import check_device

# A config: settings parsed from YAML / JSON or given as keywords, so their values are whatever the
# file holds until merged_config has checked them.
Config = Dict[str, Any]
# what isinstance takes: a type or a tuple of types
_Types = Union[type, Tuple[type, ...]]

DEFAULTS: Config = {
    "variant": "CTRGCN", "num_classes": 10, "graph": "ucla", "num_person": 1, "in_channels": 3,
    "dataset": "nwucla", "data_root": None, "modality": "joint", "repeat": 5, "window": 52,
    "epochs": 65, "batch_size": 16, "test_batch_size": 64, "seed": 1,
    "lr": {"schedule": "step", "base_lr": 0.1, "warmup_epochs": 5, "warmup_start": 0.02, "steps": [50],
           "gamma": 0.1},
    "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4,
    "label_smoothing": 0.0, "mixup_alpha": 0.0, "dml": False, "dml_temperature": 1.0,
    "threads": 0, "device": "cpu", "max_iters_per_epoch": None, "train_subset": None, "val_subset": None,
    "work_dir": "runs/train", "log_every": 10, "progress": True, "init_weights": None,
}


# ---- schedules -------------------------------------------------------------------------------
def lr_at(cfg_lr: Mapping[str, Any], epochs: int, iters_per_epoch: int, iteration: int) -> float:
    """The learning rate at ``iteration`` of the schedule ``cfg_lr`` (a config's ``lr`` section):
    "cosine" or "step" (decay by ``gamma`` at each epoch of ``steps``), after a linear warmup from
    ``warmup_start`` over ``warmup_epochs``; computed in C."""
    kind = {"cosine": 0, "step": 1}.get(cfg_lr.get("schedule", "cosine"))
    if kind is None:
        raise InputError(f"lr.schedule must be 'cosine' or 'step', got {cfg_lr.get('schedule')!r}")
    return _core.lr_at(kind, float(cfg_lr["base_lr"]), float(cfg_lr.get("warmup_start", 0.0)),
                       float(cfg_lr.get("warmup_epochs", 0)), int(epochs), int(iters_per_epoch),
                       [int(s) for s in cfg_lr.get("steps", [])], float(cfg_lr.get("gamma", 0.1)), int(iteration))


# ---- config ----------------------------------------------------------------------------------
_NUMBER = (int, float)
# settings whose default is None, and what they hold otherwise
_PATH = (str, os.PathLike)
_OPTIONAL: Dict[str, _Types] = {"data_root": _PATH, "max_iters_per_epoch": int, "train_subset": int, "val_subset": int,
                                "init_weights": _PATH}
_SPECIAL: Dict[str, _Types] = {"work_dir": _PATH, "graph": (str, list)}  # a graph may be an edge list
_LR_TYPES: Dict[str, _Types] = {"schedule": str, "base_lr": _NUMBER, "warmup_epochs": _NUMBER,
                                "warmup_start": _NUMBER, "steps": list, "gamma": _NUMBER}
_POSITIVE = ("epochs", "batch_size", "test_batch_size", "num_classes", "num_person", "in_channels", "repeat",
             "window", "log_every")


def load_config(path: PathLike) -> Config:
    """The settings of a YAML (``.yaml`` / ``.yml``) or JSON config file, as a dict; a
    ``ctrgcn.FileError`` when it cannot be read, a ``ctrgcn.InputError`` when it is not a mapping
    of settings in either syntax."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise FileError(f"cannot read config {str(path)!r}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"config {str(path)!r}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if str(path).endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise InputError("reading a YAML config needs PyYAML (pip install pyyaml), or use JSON") from None
        try:
            cfg = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError, ValueError) as exc:
            raise InputError(f"config {str(path)!r}: malformed YAML ({str(exc).splitlines()[0]})") from None
    else:
        try:
            cfg = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise InputError(f"config {str(path)!r}: malformed JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise InputError(f"config {str(path)!r}: a config is a mapping of settings")
    return cfg


def _check_type(key: str, value: object, expected: _Types) -> None:
    ok = isinstance(value, expected) and not (isinstance(value, bool) and expected in (int, _NUMBER))
    if not ok:
        names: Dict[_Types, str] = {str: "text", int: "an integer", bool: "true or false", list: "a list",
                                    dict: "a mapping", _NUMBER: "a number", _PATH: "a path",
                                    (str, list): "a name or an edge list"}
        raise InputError(f"config: {key} must be {names.get(expected, expected)}, got {value!r:.60}")


def merged_config(cfg: Mapping[str, Any]) -> Config:
    """The defaults updated by ``cfg``, every setting checked: unknown keys, wrong types and
    impossible values are a ``ctrgcn.InputError``."""
    if not isinstance(cfg, dict):
        raise InputError("config: a config is a mapping of settings")
    unknown = set(map(str, cfg)) - set(DEFAULTS)
    if unknown or not all(isinstance(k, str) for k in cfg):
        raise InputError(f"unknown config keys: {', '.join(sorted(unknown))}")
    out = dict(DEFAULTS)
    out.update(cfg)
    for key, default in DEFAULTS.items():
        value = out[key]
        if key == "lr":
            continue
        if default is None:
            if value is not None:
                _check_type(key, value, _OPTIONAL[key])
        elif key in _SPECIAL:
            _check_type(key, value, _SPECIAL[key])
        else:
            _check_type(key, value, bool if isinstance(default, bool) else int if isinstance(default, int)
                        else _NUMBER if isinstance(default, float) else type(default))
    lr_cfg = cfg.get("lr", {})
    _check_type("lr", lr_cfg, dict)
    lr = dict(DEFAULTS["lr"])
    for key, value in lr_cfg.items():
        if key not in _LR_TYPES:
            raise InputError(f"unknown config key lr.{key}")
        _check_type(f"lr.{key}", value, _LR_TYPES[key])
        lr[key] = value
    out["lr"] = lr
    if lr["schedule"] not in ("cosine", "step"):
        raise InputError(f"lr.schedule must be 'cosine' or 'step', got {lr['schedule']!r}")
    for step in lr["steps"]:
        _check_type("lr.steps[]", step, int)
    for key in _POSITIVE:
        if out[key] < 1:
            raise InputError(f"{key} must be >= 1, got {out[key]}")
    out["device"] = check_device(out["device"])  # before anything is written: no GPU, no run
    for key in ("epochs", "batch_size", "test_batch_size", "num_classes", "window", "repeat"):
        if out[key] > 10 ** 7:
            raise InputError(f"{key} = {out[key]} is not a plausible setting")
    for key in ("lr.base_lr", "momentum", "weight_decay", "label_smoothing", "mixup_alpha", "dml_temperature",
                "lr.warmup_epochs", "lr.warmup_start", "lr.gamma"):
        value = lr[key[3:]] if key.startswith("lr.") else out[key]
        if not (math.isfinite(value) and value >= 0):
            raise InputError(f"{key} must be a finite number >= 0, got {value}")
    return out

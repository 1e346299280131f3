"""Training configs: defaults, YAML / JSON files, validation, learning-rate schedules."""
import json

from ctrgcn import _core
from ctrgcn._core import InputError
from ctrgcn.cuda import check_device

DEFAULTS = {
    "variant": "CTRGCN", "num_classes": 10, "graph": "ucla", "num_person": 1, "in_channels": 3,
    "dataset": "nwucla", "data_root": None, "modality": "joint", "repeat": 5, "window": 52,
    "epochs": 65, "batch_size": 16, "test_batch_size": 64, "seed": 1,
    "lr": {"schedule": "step", "base_lr": 0.1, "warmup_epochs": 5, "warmup_start": 0.02, "steps": [50],
           "gamma": 0.1},
    "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4,
    "label_smoothing": 0.0, "mixup_alpha": 0.0, "dml": False, "dml_temperature": 1.0,
    "threads": 0, "device": "cpu", "max_iters_per_epoch": None, "train_subset": None, "val_subset": None,
    "work_dir": "runs/train", "log_every": 10, "progress": True,
}


# ---- schedules -------------------------------------------------------------------------------
def lr_at(cfg_lr, epochs, iters_per_epoch, iteration):
    kind = {"cosine": 0, "step": 1}.get(cfg_lr.get("schedule", "cosine"))
    if kind is None:
        raise InputError(f"lr.schedule must be 'cosine' or 'step', got {cfg_lr.get('schedule')!r}")
    return _core.lr_at(kind, float(cfg_lr["base_lr"]), float(cfg_lr.get("warmup_start", 0.0)),
                       float(cfg_lr.get("warmup_epochs", 0)), int(epochs), int(iters_per_epoch),
                       [int(s) for s in cfg_lr.get("steps", [])], float(cfg_lr.get("gamma", 0.1)), int(iteration))


# ---- config ----------------------------------------------------------------------------------
def load_config(path):
    with open(path) as f:
        text = f.read()
    if str(path).endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise InputError("reading a YAML config needs PyYAML (pip install pyyaml), or use JSON") from None
        cfg = yaml.safe_load(text)
    else:
        cfg = json.loads(text)
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: a config is a mapping of settings")
    return cfg


def merged_config(cfg):
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise InputError(f"unknown config keys: {', '.join(sorted(unknown))}")
    out = dict(DEFAULTS)
    out.update(cfg)
    lr = dict(DEFAULTS["lr"])
    lr.update(cfg.get("lr", {}))
    out["lr"] = lr
    if lr["schedule"] not in ("cosine", "step"):
        raise InputError(f"lr.schedule must be 'cosine' or 'step', got {lr['schedule']!r}")
    for key in ("epochs", "batch_size", "num_classes"):
        if int(out[key]) < 1:
            raise InputError(f"{key} must be >= 1, got {out[key]}")
    out["device"] = check_device(out["device"])  # before anything is written: no GPU, no run
    return out



"""Training on the C core: losses, mixup, deep mutual learning, the loop, logs and checkpoints.

The numerics (train-mode forward and backward, cross-entropy, SGD, learning-rate schedules) run
in C; this module only sequences them, draws the random numbers and writes files."""
import json
import os
import sys
import time

import numpy as np

from ctrgcn import _core
from ctrgcn._core import InputError
from ctrgcn.model import Model

DEFAULTS = {
    "variant": "CTRGCN", "num_classes": 10, "graph": "ucla", "num_person": 1, "in_channels": 3,
    "dataset": "nwucla", "data_root": None, "modality": "joint", "repeat": 5, "window": 52,
    "epochs": 65, "batch_size": 16, "test_batch_size": 64, "seed": 1,
    "lr": {"schedule": "step", "base_lr": 0.1, "warmup_epochs": 5, "warmup_start": 0.02, "steps": [50],
           "gamma": 0.1},
    "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4,
    "label_smoothing": 0.0, "mixup_alpha": 0.0, "dml": False, "dml_temperature": 1.0,
    "threads": 0, "max_iters_per_epoch": None, "train_subset": None, "val_subset": None,
    "work_dir": "runs/train", "log_every": 10, "progress": True,
}


# ---- losses ----------------------------------------------------------------------------------
def soft_targets(labels, num_classes, smoothing=0.0):
    """One-hot rows, label-smoothed as PaddleVideo does: (1 - eps) * onehot + eps / K."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or (labels < 0).any() or (labels >= num_classes).any():
        raise InputError(f"labels must be a 1-D array of class indices in 0..{num_classes - 1}")
    t = np.zeros((labels.size, num_classes), np.float32)
    t[np.arange(labels.size), labels] = 1.0
    if smoothing:
        t = (1.0 - smoothing) * t + smoothing / num_classes
    return t.astype(np.float32)


def kl_toward(logits, peer_logits, temperature=1.0):
    """Deep mutual learning term: KL(softmax(peer/T) || softmax(logits/T)) * T^2 averaged over the
    batch, and its gradient with respect to ``logits`` (the peer is a fixed target)."""
    T = float(temperature)
    z = logits.astype(np.float64) / T
    zp = peer_logits.astype(np.float64) / T
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    logq = zp - zp.max(1, keepdims=True)
    logq -= np.log(np.exp(logq).sum(1, keepdims=True))
    q = np.exp(logq)
    n = logits.shape[0]
    loss = float((q * (logq - logp)).sum() / n * T * T)
    grad = (np.exp(logp) - q) * T / n
    return loss, grad.astype(np.float32)


def mixup(x, labels, num_classes, alpha, smoothing, rng):
    """Mix each sample with a partner of a random permutation: lam ~ Beta(alpha, alpha).
    The mixed loss lam*CE(y) + (1-lam)*CE(y_perm) is the CE against the mixed soft targets."""
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(labels))
    xm = (lam * x + (1.0 - lam) * x[perm]).astype(np.float32)
    t = lam * soft_targets(labels, num_classes, smoothing) + (1.0 - lam) * soft_targets(labels[perm], num_classes,
                                                                                        smoothing)
    return xm, t.astype(np.float32)


# ---- gradients of one batch ------------------------------------------------------------------
def split_flat(model, flat, learned_only=True):
    out = {}
    for (name, shape, is_buffer), off in zip(model._net.tensors(), model._net.offsets()):
        if learned_only and is_buffer:
            continue
        n = int(np.prod(shape))
        out[name] = flat[off:off + n].reshape(shape).copy()
    return out


def gradients(model, x, y, label_smoothing=0.0):
    """Mean cross-entropy of a batch in train mode (BatchNorm on batch statistics) and the gradient
    of every learned tensor under its state_dict name. The model is left unchanged: running
    statistics do not move."""
    x = model._input(x)
    logits = model._net.train_forward(x, False)
    loss, dlogits = _core.softmax_xent(logits, soft_targets(y, model.num_classes, label_smoothing))
    flat = model._net.train_backward(dlogits)
    return loss, split_flat(model, flat)


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
    return out


# ---- data ------------------------------------------------------------------------------------
def make_datasets(cfg):
    """Train and val datasets. Their augmentation is a function of (seed, epoch, index) and the
    loader's order of (seed, epoch), so a resumed run draws exactly what an uninterrupted one would."""
    from ctrgcn import data
    seed = int(cfg["seed"])
    if cfg["dataset"] == "nwucla":
        root = cfg["data_root"] or default_ucla_root()
        train = data.NWUCLA(root, split="train", modality=cfg["modality"], repeat=int(cfg["repeat"]), seed=seed)
        val = data.NWUCLA(root, split="val", modality=cfg["modality"], seed=0)
    elif cfg["dataset"] == "ntu":
        train = data.NTUDataset(cfg["data_root"], split="train", modality=cfg["modality"], augment=True,
                                window=int(cfg["window"]), seed=seed)
        val = data.NTUDataset(cfg["data_root"], split="val", modality=cfg["modality"], augment=False,
                              window=int(cfg["window"]), seed=0)
    else:
        raise InputError(f"dataset must be 'nwucla' or 'ntu', got {cfg['dataset']!r}")
    return subset(train, cfg["train_subset"], cfg["repeat"] if cfg["dataset"] == "nwucla" else 1), \
        subset(val, cfg["val_subset"], 1)


def default_ucla_root():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "shared", "data", "nw-ucla", "all_sqe"))


class subset:
    """The first k distinct samples of a dataset (each of its repeats kept), for quick runs."""

    def __new__(cls, ds, k, repeat):
        if not k:
            return ds
        self = object.__new__(cls)
        base = len(ds) // max(int(repeat), 1)
        step = max(base // int(k), 1)
        picks = list(range(0, base, step))[:int(k)]
        self.index = [r * base + i for r in range(max(int(repeat), 1)) for i in picks]
        self.ds = ds
        return self

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        return self.ds[self.index[i]]

    def batch(self, indices, epoch=None):
        return self.ds.batch([self.index[int(i)] for i in indices], epoch)


def batches(ds, batch_size, shuffle, seed, drop_last):
    from ctrgcn import data
    return data.Loader(ds, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)


def evaluate(model, ds, batch_size=64):
    """Top-1 accuracy and mean loss over a dataset, in eval mode."""
    correct, total, loss_sum = 0, 0, 0.0
    for x, y in batches(ds, batch_size, shuffle=False, seed=0, drop_last=False):
        logits = model(x)
        loss, _ = _core.softmax_xent(logits, soft_targets(y, model.num_classes))
        correct += int((logits.argmax(1) == y).sum())
        total += len(y)
        loss_sum += loss * len(y)
    return correct / max(total, 1), loss_sum / max(total, 1)


# ---- the loop --------------------------------------------------------------------------------
class Progress:
    def __init__(self, total, prefix, enabled):
        self.total, self.prefix, self.enabled, self.t0 = total, prefix, enabled, time.time()

    def update(self, done, extra=""):
        if not self.enabled:
            return
        frac = done / max(self.total, 1)
        bar = "#" * int(30 * frac)
        rate = done / max(time.time() - self.t0, 1e-9)
        sys.stderr.write(f"\r{self.prefix} [{bar:<30}] {done}/{self.total} {rate:.2f} it/s {extra}   ")
        sys.stderr.flush()
        if done >= self.total:
            sys.stderr.write("\n")


def _save_checkpoint(path, state):
    """np.savez to a temporary file, then rename: a crash never leaves half a checkpoint."""
    tmp = path + ".tmp.npz"
    np.savez(tmp, **state)
    os.replace(tmp, path)


def train(config=None, resume=False, stop_after=None, **overrides):
    """Train a model as the config says (a dict, or a path to a YAML / JSON file; keyword
    arguments override it). Writes into work_dir: ``log.jsonl`` (one JSON object per logged step
    and per epoch), ``checkpoint.npz`` (every epoch, atomically), ``best.ctrgcn`` and
    ``last.ctrgcn``. ``resume=True`` continues from the checkpoint exactly. Returns a dict with
    the history and the trained model(s). ``stop_after`` ends the run after that many epochs of
    this call, as an interruption would (the checkpoint is written)."""
    cfg = load_config(config) if isinstance(config, (str, os.PathLike)) else dict(config or {})
    cfg.update(overrides)
    cfg = merged_config(cfg)
    work = cfg["work_dir"]
    os.makedirs(work, exist_ok=True)
    K = int(cfg["num_classes"])
    names = ["a", "b"] if cfg["dml"] else ["a"]
    models = [Model(cfg["variant"], num_classes=K, graph=cfg["graph"], num_person=int(cfg["num_person"]),
                    in_channels=int(cfg["in_channels"]), seed=int(cfg["seed"]) + 7919 * i)
              for i in range(len(names))]
    for m in models:
        m.set_threads(int(cfg["threads"]))
    velocities = [np.zeros(m._net.params().size, np.float32) for m in models]
    start_epoch, iteration, best_acc, history = 0, 0, -1.0, []
    ckpt_path = os.path.join(work, "checkpoint.npz")
    log_path = os.path.join(work, "log.jsonl")
    if resume and os.path.exists(ckpt_path):
        with np.load(ckpt_path, allow_pickle=False) as ck:
            saved = json.loads(str(ck["meta"]))
            for i, m in enumerate(models):
                m._net.set_params(ck[f"params_{names[i]}"])
                velocities[i][:] = ck[f"velocity_{names[i]}"]
        start_epoch, iteration, best_acc, history = (saved["epoch"] + 1, saved["iteration"], saved["best_acc"],
                                                     saved["history"])
        # the log keeps only what the checkpoint covers: a crash mid-epoch leaves lines to drop
        if os.path.exists(log_path):
            with open(log_path) as f:
                kept = [ln for ln in f if json.loads(ln).get("epoch", 0) < start_epoch]
            with open(log_path, "w") as f:
                f.writelines(kept)
    elif os.path.exists(log_path):
        os.remove(log_path)
    log = open(log_path, "a")
    try:
        train_ds, val_ds = make_datasets(cfg)
        loader = batches(train_ds, int(cfg["batch_size"]), shuffle=True, seed=int(cfg["seed"]), drop_last=True)
        for epoch in range(start_epoch, int(cfg["epochs"])):
            loader.epoch = epoch  # order and augmentation of this epoch
            iters = len(loader)
            if cfg["max_iters_per_epoch"]:
                iters = min(iters, int(cfg["max_iters_per_epoch"]))
            rng = np.random.default_rng([int(cfg["seed"]), epoch, 12345])
            bar = Progress(iters, f"epoch {epoch + 1}/{cfg['epochs']}", cfg["progress"])
            t0, losses, correct, seen = time.time(), [], 0, 0
            for step, (x, y) in enumerate(loader):
                if step >= iters:
                    break
                lr = lr_at(cfg["lr"], cfg["epochs"], iters, iteration)
                if cfg["mixup_alpha"]:
                    x, targets = mixup(x, y, K, float(cfg["mixup_alpha"]), float(cfg["label_smoothing"]), rng)
                else:
                    targets = soft_targets(y, K, float(cfg["label_smoothing"]))
                logits = [m._net.train_forward(x, True) for m in models]
                step_loss = []
                for i, m in enumerate(models):
                    loss, dlogits = _core.softmax_xent(logits[i], targets)
                    if len(models) == 2:  # each pulled toward the other's (fixed) prediction
                        kl, dkl = kl_toward(logits[i], logits[1 - i], float(cfg["dml_temperature"]))
                        loss += kl
                        dlogits = dlogits + dkl
                    grads = m._net.train_backward(dlogits)
                    m._net.sgd_step(grads, velocities[i], lr, float(cfg["momentum"]), float(cfg["weight_decay"]),
                                    bool(cfg["nesterov"]), iteration == 0)
                    step_loss.append(loss)
                losses.append(step_loss[0])
                correct += int((logits[0].argmax(1) == y).sum())
                seen += len(y)
                iteration += 1
                if step % int(cfg["log_every"]) == 0:
                    log.write(json.dumps({"epoch": epoch, "iter": iteration, "lr": lr, "loss": step_loss}) + "\n")
                bar.update(step + 1, f"loss {np.mean(losses[-20:]):.4f} lr {lr:.4f}")
            train_time = time.time() - t0
            record = {"epoch": epoch, "iter": iteration, "train_loss": float(np.mean(losses)),
                      "train_acc": correct / max(seen, 1), "train_samples_per_s": seen / train_time,
                      "train_seconds": train_time}
            for i, m in enumerate(models):
                acc, vloss = evaluate(m, val_ds, int(cfg["test_batch_size"]))
                record[f"val_acc{'' if i == 0 else '_' + names[i]}"] = acc
                record[f"val_loss{'' if i == 0 else '_' + names[i]}"] = vloss
            history.append(record)
            log.write(json.dumps(record) + "\n")
            log.flush()
            if cfg["progress"]:
                print(f"epoch {epoch + 1}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f} | "
                      f"val acc {record['val_acc']:.4f} loss {record['val_loss']:.4f} | "
                      f"{record['train_samples_per_s']:.1f} samples/s", file=sys.stderr, flush=True)
            models[0].save(os.path.join(work, "last.ctrgcn"))
            if record["val_acc"] > best_acc:
                best_acc = record["val_acc"]
                models[0].save(os.path.join(work, "best.ctrgcn"))
            state = {"meta": json.dumps({"epoch": epoch, "iteration": iteration, "best_acc": best_acc,
                                         "history": history, "config": cfg})}
            for i, m in enumerate(models):
                state[f"params_{names[i]}"] = m._net.params()
                state[f"velocity_{names[i]}"] = velocities[i]
            _save_checkpoint(ckpt_path, state)
            if stop_after is not None and epoch + 1 - start_epoch >= int(stop_after):
                break
    finally:
        log.close()
    return {"history": history, "models": models, "best_acc": best_acc, "work_dir": work}

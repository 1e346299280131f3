"""The training loop: epochs of C training steps, evaluation, logs, checkpoints, exact resume."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Tuple, TypedDict, Union

import numpy as np
from numpy.typing import ArrayLike

from ctrgcn import _core
from ctrgcn._core import FileError, InputError
from ctrgcn._files import atomic_write, savez
from ctrgcn._types import F32Array, PathLike
from ctrgcn.formats.npz import read_npz
from ctrgcn.model import Model
from ctrgcn.training.config import load_config, lr_at, merged_config
from ctrgcn.training.data import batches, make_datasets, sequences_defaults
from ctrgcn.training.finetune import init_from
from ctrgcn.training.losses import kl_toward, mixup, soft_targets

if TYPE_CHECKING:
    from ctrgcn.data.loader import Dataset


class TrainResult(TypedDict):
    """What ``train`` returns: one log record per epoch, the trained model(s) (two with deep mutual
    learning), the best validation accuracy and the folder written to."""
    history: List[Dict[str, Any]]
    models: List[Model]
    best_acc: float
    work_dir: str


def evaluate(model: Model, ds: Dataset, batch_size: int = 64) -> Tuple[float, float]:
    """Top-1 accuracy and mean loss over a dataset, in eval mode."""
    correct, total, loss_sum = 0, 0, 0.0
    for x, y in batches(ds, batch_size, shuffle=False, seed=0, drop_last=False):
        logits = model(x)
        loss, _ = _core.softmax_xent(logits, soft_targets(y, model.num_classes))
        correct += int((logits.argmax(1) == y).sum())
        total += len(y)
        loss_sum += loss * len(y)
    return correct / max(total, 1), loss_sum / max(total, 1)


class Progress:
    """A one-line progress bar on stderr: ``prefix [###   ] done/total rate extra``."""

    def __init__(self, total: int, prefix: str, enabled: bool) -> None:
        self.total, self.prefix, self.enabled, self.t0 = total, prefix, enabled, time.time()

    def update(self, done: int, extra: str = "") -> None:
        """Redraw the bar at ``done`` steps (nothing when disabled); a newline when done reaches total."""
        if not self.enabled:
            return
        frac = done / max(self.total, 1)
        bar = "#" * int(30 * frac)
        rate = done / max(time.time() - self.t0, 1e-9)
        sys.stderr.write(f"\r{self.prefix} [{bar:<30}] {done}/{self.total} {rate:.2f} it/s {extra}   ")
        sys.stderr.flush()
        if done >= self.total:
            sys.stderr.write("\n")


def _fsync_dir(path: str) -> None:
    """Make a rename in ``path`` durable (POSIX: the directory entry lives in the directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_checkpoint(path: str, state: Mapping[str, ArrayLike]) -> None:
    """Write to a temporary file, fsync it, rename it over the checkpoint and fsync the folder: a
    crash or a full disk leaves either the old checkpoint or the new one, never half of one."""
    try:
        with atomic_write(path, path + ".tmp", fsync=True) as f:
            savez(f, state)
    except OSError as exc:
        raise FileError(f"cannot write the checkpoint {path!r}: {exc.strerror or exc}; the previous checkpoint "
                        "is left as it was") from None
    _fsync_dir(os.path.dirname(path) or ".")


def _read_log(path: str) -> List[Tuple[str, Any]]:
    """The log's (line, record) pairs; a line cut short by a crash (the last one) is dropped."""
    records = []
    with open(path, "rb") as f:
        for line in f:
            try:
                records.append((line.decode("utf-8"), json.loads(line)))
            except (ValueError, UnicodeDecodeError):
                continue
    return records


def _rewrite_log(path: str, lines: Iterable[str]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(ln if ln.endswith("\n") else ln + "\n" for ln in lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _log_line(log: IO[str], record: Mapping[str, Any]) -> None:
    """One JSON line, flushed at once: a killed run keeps every line it logged."""
    try:
        log.write(json.dumps(record) + "\n")
        log.flush()
    except OSError as exc:
        raise FileError(f"cannot write the log {log.name!r}: {exc.strerror}") from None


def _prepare_work_dir(work: str) -> None:
    """Create work_dir and check that it takes files, before any training, with a clear error."""
    try:
        os.makedirs(work, exist_ok=True)
        probe = os.path.join(work, f".write-test-{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.remove(probe)
    except OSError as exc:
        raise FileError(f"work_dir {str(work)!r} is not writable: {exc.strerror or exc}") from None
    # temporary files of writes a crash interrupted
    for name in ("checkpoint.npz.tmp", "log.jsonl.tmp"):
        if os.path.exists(os.path.join(work, name)):
            os.remove(os.path.join(work, name))
    for name in os.listdir(work):
        if name.startswith(("last.ctrgcn.tmp", "best.ctrgcn.tmp")):
            os.remove(os.path.join(work, name))


def train(config: Union[PathLike, Mapping[str, Any], None] = None, resume: bool = False,
          stop_after: Optional[int] = None, **overrides: Any) -> TrainResult:
    """Train a model as the config says (a dict, or a path to a YAML / JSON file; keyword
    arguments override it). Writes into work_dir: ``log.jsonl`` (one JSON object per logged step
    and per epoch), ``checkpoint.npz`` (every epoch, atomically), ``best.ctrgcn`` and
    ``last.ctrgcn``. ``resume=True`` continues from the checkpoint exactly. Returns a dict with
    the history and the trained model(s). ``stop_after`` ends the run after that many epochs of
    this call, as an interruption would (the checkpoint is written)."""
    cfg = load_config(config) if isinstance(config, (str, os.PathLike)) else dict(config or {})
    cfg.update(overrides)
    if cfg.get("dataset") == "sequences":
        cfg.update(sequences_defaults(cfg))
    cfg = merged_config(cfg)
    work = os.fspath(cfg["work_dir"])
    _prepare_work_dir(work)
    K = int(cfg["num_classes"])
    names = ["a", "b"] if cfg["dml"] else ["a"]
    models = [Model(cfg["variant"], num_classes=K, graph=cfg["graph"], num_person=int(cfg["num_person"]),
                    in_channels=int(cfg["in_channels"]), seed=int(cfg["seed"]) + 7919 * i, device=cfg["device"])
              for i in range(len(names))]
    trainers = [m.trainer(float(cfg["momentum"]), float(cfg["weight_decay"]), bool(cfg["nesterov"]),
                          int(cfg["threads"])) for m in models]
    start_epoch, iteration, best_acc = 0, 0, -1.0
    history: List[Dict[str, Any]] = []
    ckpt_path = os.path.join(work, "checkpoint.npz")
    log_path = os.path.join(work, "log.jsonl")
    if cfg["init_weights"] is not None and not (resume and os.path.exists(ckpt_path)):
        fresh = init_from(models, cfg["init_weights"])  # a resumed run has them in its checkpoint
        if cfg["progress"]:
            print(f"weights from {os.fspath(cfg['init_weights'])}" + (f"; new classifier ({', '.join(fresh)})"
                  if fresh else ""), file=sys.stderr, flush=True)
    if resume and os.path.exists(ckpt_path):
        ck = read_npz(ckpt_path)
        try:
            saved = json.loads(str(ck["meta"]))
            for i, m in enumerate(models):
                m.set_flat_params(ck[f"params_{names[i]}"])
                trainers[i].set_velocity(ck[f"velocity_{names[i]}"], saved["iteration"])
            int(saved["epoch"]), int(saved["iteration"]), float(saved["best_acc"]), list(saved["history"])
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"checkpoint {ckpt_path!r} does not belong to this config or is damaged "
                             f"({type(exc).__name__}: {exc})") from None
        start_epoch, iteration, best_acc, history = (saved["epoch"] + 1, saved["iteration"], saved["best_acc"],
                                                     saved["history"])
        # the log keeps only what the checkpoint covers: a crash mid-epoch leaves lines to drop
        if os.path.exists(log_path):
            _rewrite_log(log_path, [ln for ln, rec in _read_log(log_path)
                                    if isinstance(rec, dict) and rec.get("epoch", 0) < start_epoch])
    elif os.path.exists(log_path):
        os.remove(log_path)
    try:
        log = open(log_path, "a")
    except OSError as exc:
        raise FileError(f"cannot write the log {log_path!r}: {exc.strerror}") from None
    try:
        train_ds, val_ds = make_datasets(cfg)
        classes = getattr(train_ds, "classes", None)
        for m in models:  # the saved models name their classes when the data does
            if classes is not None and len(classes) == K:
                m.classes = list(classes)
        loader = batches(train_ds, int(cfg["batch_size"]), shuffle=True, seed=int(cfg["seed"]), drop_last=True)
        if len(loader) == 0:  # whole batches only: fewer samples than one batch would train nothing
            raise _core.InputError(f"the training set has {len(train_ds)} samples, fewer than one batch of "
                                   f"{cfg['batch_size']}: lower batch_size or use more data")
        for epoch in range(start_epoch, int(cfg["epochs"])):
            loader.epoch = epoch  # order and augmentation of this epoch
            iters = len(loader)
            if cfg["max_iters_per_epoch"]:
                iters = min(iters, int(cfg["max_iters_per_epoch"]))
            rng = np.random.default_rng([int(cfg["seed"]), epoch, 12345])
            bar = Progress(iters, f"epoch {epoch + 1}/{cfg['epochs']}", cfg["progress"])
            t0, correct, seen = time.time(), 0, 0
            losses: List[float] = []
            for step, (x, y) in enumerate(loader):
                if step >= iters:
                    break
                lr = lr_at(cfg["lr"], cfg["epochs"], iters, iteration)
                if cfg["mixup_alpha"]:
                    x, targets = mixup(x, y, K, float(cfg["mixup_alpha"]), float(cfg["label_smoothing"]), rng)
                else:
                    targets = soft_targets(y, K, float(cfg["label_smoothing"]))
                logits = [t.forward(x) for t in trainers]
                step_loss = []
                for i, t in enumerate(trainers):
                    extra: Optional[F32Array] = None
                    kl = 0.0
                    if len(trainers) == 2:  # each pulled toward the other's (fixed) prediction
                        kl, extra = kl_toward(logits[i], logits[1 - i], float(cfg["dml_temperature"]))
                    loss = t.backward(targets, extra) + kl
                    t.sgd_step(lr)
                    step_loss.append(loss)
                losses.append(step_loss[0])
                correct += int((logits[0].argmax(1) == y).sum())
                seen += len(y)
                iteration += 1
                if step % int(cfg["log_every"]) == 0:
                    _log_line(log, {"epoch": epoch, "iter": iteration, "lr": lr, "loss": step_loss})
                bar.update(step + 1, f"loss {np.mean(losses[-20:]):.4f} lr {lr:.4f}")
            train_time = time.time() - t0
            for t in trainers:  # the models evaluate, save and checkpoint the trained weights
                t.sync()
            record: Dict[str, float] = {"epoch": epoch, "iter": iteration, "train_loss": float(np.mean(losses)),
                      "train_acc": correct / max(seen, 1), "train_samples_per_s": seen / train_time,
                      "train_seconds": train_time}
            for i, m in enumerate(models):
                acc, vloss = evaluate(m, val_ds, int(cfg["test_batch_size"]))
                record[f"val_acc{'' if i == 0 else '_' + names[i]}"] = acc
                record[f"val_loss{'' if i == 0 else '_' + names[i]}"] = vloss
            history.append(record)
            _log_line(log, record)
            if cfg["progress"]:
                print(f"epoch {epoch + 1}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f} | "
                      f"val acc {record['val_acc']:.4f} loss {record['val_loss']:.4f} | "
                      f"{record['train_samples_per_s']:.1f} samples/s", file=sys.stderr, flush=True)
            models[0].save(os.path.join(work, "last.ctrgcn"))
            if record["val_acc"] > best_acc:
                best_acc = record["val_acc"]
                models[0].save(os.path.join(work, "best.ctrgcn"))
            meta = {"epoch": epoch, "iteration": iteration, "best_acc": best_acc, "history": history, "config": cfg}
            state: Dict[str, ArrayLike] = {"meta": json.dumps(meta)}
            for i, m in enumerate(models):
                state[f"params_{names[i]}"] = m.flat_params()
                state[f"velocity_{names[i]}"] = trainers[i].velocity()[0]
            _save_checkpoint(ckpt_path, state)
            if stop_after is not None and epoch + 1 - start_epoch >= int(stop_after):
                break
    finally:
        log.close()
    return {"history": history, "models": models, "best_acc": best_acc, "work_dir": work}

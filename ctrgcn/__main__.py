"""Command line: ``python -m ctrgcn COMMAND ...``. Each command lives in ``ctrgcn/commands/``."""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

COMMANDS = {
    "bench": ("ctrgcn.commands.bench", "size and CPU latency of the four variants at NTU size"),
    "prepare-ntu": ("ctrgcn.commands.prepare_ntu", "NTU RGB+D raw .skeleton files -> training arrays"),
    "convert": ("ctrgcn.commands.convert", "convert weights between formats and dtypes, export ONNX"),
    "train": ("ctrgcn.commands.train", "train a model from a config file"),
    "eval": ("ctrgcn.commands.evaluate", "accuracy, per-class accuracy and confusion matrix of a model on a split"),
    "ensemble": ("ctrgcn.commands.ensemble", "fuse the saved scores of several streams"),
    "profile": ("ctrgcn.commands.profile", "time every op of a forward or a training step"),
    "predict": ("ctrgcn.commands.predict", "name the action in skeleton files (.skeleton, .json, .npy, .npz)"),
}


def usage() -> str:
    """The top-level help: the usage line and one line per command."""
    lines = ["usage: python -m ctrgcn COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<12} {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``python -m ctrgcn COMMAND ...`` with ``argv`` (default: the process's arguments) and
    return the exit status: 0 done, 1 a ctrgcn.Error (printed), 2 an unknown command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as exc:
        if exc.name != COMMANDS[name][0]:
            raise
        print(f"command {name!r} is not available in this build", file=sys.stderr)
        return 2
    from ctrgcn import Error
    try:
        status: Optional[int] = module.main(argv[1:])
        return status or 0
    except Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

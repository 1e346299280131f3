"""Command line: ``python -m ctrgcn COMMAND ...``. Each command lives in ``ctrgcn/commands/``."""
import importlib
import sys

COMMANDS = {
    "bench": ("ctrgcn.commands.bench", "size and CPU latency of the four variants at NTU size"),
    "prepare-ntu": ("ctrgcn.commands.prepare_ntu", "NTU RGB+D raw .skeleton files -> training arrays"),
    "convert": ("ctrgcn.commands.convert", "convert weights between formats and dtypes, export ONNX"),
    "train": ("ctrgcn.commands.train", "train a model from a config file"),
    "eval": ("ctrgcn.commands.evaluate", "accuracy, per-class accuracy and confusion matrix of a model on a split"),
    "ensemble": ("ctrgcn.commands.ensemble", "fuse the saved scores of several streams"),
    "predict": ("ctrgcn.commands.predict", "name the action in skeleton files (.skeleton, .json, .npy, .npz)"),
}


def usage():
    lines = ["usage: python -m ctrgcn COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<12} {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
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
        return module.main(argv[1:]) or 0
    except Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

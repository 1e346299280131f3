"""``python -m ctrgcn train --config FILE``: train as a YAML / JSON config says.

A bundled recipe can be named without a path (``--config nwucla_ctrgcn_joint``); ``--set
key=value`` overrides single settings (value parsed as YAML / JSON: numbers, true/false, lists)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional, Sequence

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def resolve(config: str) -> str:
    """A config path: ``config`` itself when it exists, else the bundled recipe of that name
    (``.yaml`` / ``.json`` added); an InputError listing the recipes when there is none."""
    if os.path.exists(config):
        return config
    for ext in ("", ".yaml", ".json"):
        path = os.path.join(CONFIG_DIR, config + ext)
        if os.path.exists(path):
            return path
    from ctrgcn import InputError
    names = sorted(os.path.splitext(n)[0] for n in os.listdir(CONFIG_DIR))
    raise InputError(f"no config {config!r}; bundled: {', '.join(names)}")


def parse_value(text: str) -> Any:
    """A ``--set`` value: parsed as JSON (numbers, true / false, lists), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv: Optional[Sequence[str]]) -> int:
    """Train as the arguments say and print the best validation accuracy; the exit status (0)."""
    ap = argparse.ArgumentParser(prog="python -m ctrgcn train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="a YAML / JSON file, or a bundled recipe name")
    ap.add_argument("--resume", action="store_true", help="continue from work_dir/checkpoint.npz")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    args = ap.parse_args(argv)
    from ctrgcn.training import load_config, train
    cfg = load_config(resolve(args.config))
    for item in args.set:
        key, _, value = item.partition("=")
        if key.startswith("lr."):
            cfg.setdefault("lr", {})[key[3:]] = parse_value(value)
        else:
            cfg[key] = parse_value(value)
    result = train(cfg, resume=args.resume)
    best = result["best_acc"]
    print(f"done: best val acc {best:.4f}; models and log in {result['work_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

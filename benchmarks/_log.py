"""Appending a benchmark's printed lines to its results file."""
import os


def append_log(path, lines):
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n\n")

"""The package's typing and documentation: ``mypy --strict ctrgcn`` is clean, every public name has
a docstring, and the stub ``ctrgcn/_core.pyi`` declares what the C extension defines."""
import ast
import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ctrgcn
from ctrgcn import _core

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "ctrgcn" / "_core.pyi"


def test_mypy_strict_is_clean():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install mypy, or the package's test extra)")
    # the cache is .mypy_cache in the checkout (git-ignored): a rerun takes a fraction of a second
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "ctrgcn"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Success: no issues found" in output, output


def _public_modules():
    """ctrgcn and every module under it whose dotted name has no part starting with "_". The CUDA
    backend's shared library (ctrgcn/libctrgcn_cuda.so, loaded by the C core, not a Python module)
    looks like an extension module to pkgutil and is left out."""
    names = ["ctrgcn"] + [m.name for m in pkgutil.walk_packages(ctrgcn.__path__, "ctrgcn.")
                          if not any(part.startswith(("_", "lib")) for part in m.name.split("."))]
    return [importlib.import_module(name) for name in names]


def _ours(obj):
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "ctrgcn"


def _members(cls):
    """(name, object carrying the docstring) of the public methods and properties a class defines or
    inherits from the package's own classes."""
    seen = set()
    for base in cls.__mro__:
        if not _ours(base):
            continue
        for name, attr in vars(base).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if isinstance(attr, property) or inspect.isroutine(attr) or inspect.ismethoddescriptor(attr):
                yield name, attr


def _has_docstring(obj):
    doc = obj.__doc__
    if not doc or not doc.strip():
        return False
    # a dataclass without a docstring gets its signature as one
    return not (inspect.isclass(obj) and dataclasses.is_dataclass(obj) and doc.startswith(obj.__name__ + "("))


def test_public_names_have_docstrings():
    missing, checked = [], set()
    for module in _public_modules():
        if not _has_docstring(module):
            missing.append(f"module {module.__name__}")
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isroutine(obj)) or not _ours(obj):
                continue
            if id(obj) in checked:
                continue
            checked.add(id(obj))
            where = f"{module.__name__}.{name}"
            if not _has_docstring(obj):
                missing.append(where)
            if inspect.isclass(obj):
                missing += [f"{where}.{m}" for m, attr in _members(obj) if not _has_docstring(attr)]
    assert len(checked) > 100  # the walk found the package
    assert not missing, "public names without a docstring:\n" + "\n".join(sorted(set(missing)))


def _stub_names():
    """Top-level names the stub declares, and the members of each class it declares."""
    tree = ast.parse(STUB.read_text(), filename=str(STUB))
    names, classes = set(), {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            classes[node.name] = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            classes[node.name] |= {n.target.id for n in node.body
                                   if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names, classes


def test_stub_covers_the_extension():
    names, classes = _stub_names()
    runtime = {n for n in dir(_core) if not n.startswith("_")}
    assert not runtime - names, f"ctrgcn._core defines names _core.pyi lacks: {sorted(runtime - names)}"
    stale = {n for n in names if not n.startswith("_")} - runtime
    assert not stale, f"_core.pyi declares names ctrgcn._core does not have: {sorted(stale)}"
    for cls_name, members in classes.items():
        cls = getattr(_core, cls_name)
        inherited = set().union(*(dir(base) for base in cls.__mro__[1:]))
        own = {n for n in dir(cls) if not n.startswith("_") and n not in inherited}
        assert not own - members, f"_core.{cls_name} has members _core.pyi lacks: {sorted(own - members)}"
        assert not {m for m in members if not m.startswith("_")} - own, f"_core.pyi's {cls_name} has stale members"


def test_package_ships_its_typing_files():
    # pyproject.toml's package data carries the marker and the stub into wheels
    assert (ROOT / "ctrgcn" / "py.typed").is_file() and STUB.is_file()
    text = (ROOT / "pyproject.toml").read_text()
    assert '"py.typed"' in text and '"*.pyi"' in text

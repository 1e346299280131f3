"""Shared fixtures: where the project's shared data lives, and golden files that skip when absent."""
import os
import sys
from pathlib import Path

import pytest

# ../shared beside the checkout; CTRGCN_SHARED points elsewhere (a copy carried to another machine)
SHARED = Path(os.environ.get("CTRGCN_SHARED") or Path(__file__).resolve().parents[2] / "shared")
GOLDEN = SHARED / "golden"

# tests/ holds helper modules (reference.py) imported by plain name.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def shared():
    """Path to ../shared (data, golden vectors, docs)."""
    return SHARED


def golden_path(relpath):
    """Path of ``shared/golden/<relpath>``; skips the calling test when the file is missing."""
    path = GOLDEN / relpath
    if not path.exists():
        pytest.skip(f"golden file {relpath} not found under {GOLDEN}")
    return path


@pytest.fixture(scope="session")
def golden():
    """``golden(relpath)`` -> Path, skipping the test when the file is missing."""
    return golden_path

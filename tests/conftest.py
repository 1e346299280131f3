"""Shared fixtures: where the project's shared data lives, and golden files that skip when absent."""
import os
import sys
from pathlib import Path

import pytest

# ../shared beside the checkout; CTRGCN_SHARED points elsewhere (a copy carried to another machine)
SHARED = Path(os.environ.get("CTRGCN_SHARED") or Path(__file__).resolve().parents[2] / "shared")
GOLDEN = SHARED / "golden"
UCLA_ROOT = SHARED / "data" / "nw-ucla" / "all_sqe"

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


@pytest.fixture
def ucla_subset(tmp_path):
    """``ucla_subset(stems)`` -> a folder of links to those NW-UCLA files (``NWUCLA`` over it reads
    only them); skips the test when the NW-UCLA data is absent."""
    if not UCLA_ROOT.is_dir():
        pytest.skip("no NW-UCLA data")

    def make(stems):
        folder = tmp_path / "few"
        folder.mkdir(exist_ok=True)
        for stem in stems:
            link = folder / f"{stem}.json"
            if not link.exists():
                link.symlink_to(UCLA_ROOT / f"{stem}.json")
        return folder

    return make

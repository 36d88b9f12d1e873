"""Shared fixtures: where the official reference files live, and small helpers for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(os.environ.get("ANTISPOOF_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "reference"))


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The official reference files (``../shared/reference`` unless ANTISPOOF_REFERENCE_DIR says otherwise)."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(
            f"official reference files not found at {REFERENCE_DIR}; "
            "set ANTISPOOF_REFERENCE_DIR to the folder that holds lfcc/, metrics/, rawnet2/, aasist/"
        )
    return REFERENCE_DIR

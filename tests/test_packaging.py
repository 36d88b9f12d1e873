"""Packaging metadata: the install reads setup.cfg without warnings (issue 16: three "License classifiers are
deprecated" warnings on every `make install`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_setuptools_reads_the_metadata_without_warnings():
    done = subprocess.run([sys.executable, "-W", "default", "-c", "import setuptools; setuptools.setup()",
                           "--name", "--license"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["antispoof", "MIT"]
    assert "Warning" not in done.stderr, done.stderr

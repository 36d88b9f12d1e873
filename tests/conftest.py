"""Shared fixtures: where the official reference files live, and small helpers for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Helper modules with fixtures that test modules load as plugins: their asserts are rewritten as the tests' are.
pytest.register_assert_rewrite("service_process")

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


PLUGIN_DIR = REPO_ROOT / "tests" / "plugin_example"


@pytest.fixture
def highband_plugin(tmp_path_factory, monkeypatch):
    """Register the example plug-in through a real ``antispoof.scorers`` entry point, without pip.

    importlib.metadata finds distributions through ``*.dist-info`` folders on ``sys.path``, which is
    exactly what ``pip install`` would leave behind. Returns a PYTHONPATH value for subprocesses.
    """
    site = tmp_path_factory.mktemp("site")
    dist_info = site / "antispoof_highband-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: antispoof-highband\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[antispoof.scorers]\nhighband = antispoof_highband:HighBandScorer\n"
    )
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.syspath_prepend(str(site))
    return os.pathsep.join([str(site), str(PLUGIN_DIR)])


def synthetic_corpus(folder: Path, n_per_class: int = 4, seconds: float = 1.0, seed: int = 0) -> list:
    """Tiny labelled set: bona fide = full-band noisy harmonics, spoof = the same low-passed at 4 kHz.

    Returns trials with paths, for tests of the plumbing (not of detection quality).
    """
    import numpy as np
    import soundfile as sf
    from scipy.signal import butter, sosfilt

    from lfcc_gmm.protocols import Trial

    rng = np.random.default_rng(seed)
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    sos = butter(8, 4000, fs=rate, output="sos")
    folder.mkdir(parents=True, exist_ok=True)
    trials = []
    for i in range(2 * n_per_class):
        f0 = rng.uniform(90, 220)
        voiced = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 40) if k * f0 < rate / 2)
        x = 0.1 * voiced + 0.02 * rng.standard_normal(t.size)
        bonafide = i % 2 == 0
        if not bonafide:
            x = sosfilt(sos, x)
        x = 0.5 * x / np.max(np.abs(x))
        path = folder / f"F{i:03d}.wav"
        sf.write(path, x, rate, subtype="PCM_16")
        trials.append(Trial(path.stem, "bonafide" if bonafide else "spoof", "-" if bonafide else "S01",
                            path=path))
    return trials


@pytest.fixture
def tiny_corpus(tmp_path):
    """Eight labelled 1-s WAV trials under ``tmp_path/audio`` (see :func:`synthetic_corpus`)."""
    return synthetic_corpus(tmp_path / "audio")


@pytest.fixture
def damage_bundled(tmp_path, monkeypatch):
    """``damage_bundled(filename)`` installs a copy of the bundled weights folder (``rawnet/pretrained``) in which
    ``filename`` has one flipped byte, and returns that file's path."""

    def damage(filename: str) -> Path:
        import shutil

        from rawnet import weights

        folder = tmp_path / "pretrained"
        shutil.copytree(weights.PRETRAINED_DIR, folder)
        data = bytearray((folder / filename).read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / filename).write_bytes(bytes(data))
        monkeypatch.setattr(weights, "PRETRAINED_DIR", folder)
        return folder / filename

    return damage

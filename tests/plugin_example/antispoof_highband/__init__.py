"""Example antispoof plug-in: scores a file by its log energy ratio above a cut-off frequency.

Deliberately tiny, so that it shows the whole scorer contract — ``fit``, ``score_files``, ``save``,
``load`` — in one screen. Many vocoders and band-limited TTS voices leave little energy in the top
band, so this single feature already separates some attacks; it is a teaching example, not a
countermeasure to deploy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

from lfcc_gmm.atomic import atomic_write
from lfcc_gmm.audio import load_audio
from lfcc_gmm.protocols import Trial
from lfcc_gmm.scorers import Scorer


def high_band_log_ratio(signal: np.ndarray, sample_rate: int, cutoff_hz: float) -> float:
    """log10 of (energy above ``cutoff_hz``) / (total energy), from one FFT of the whole signal."""
    power = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(signal.shape[0], 1.0 / sample_rate)
    eps = np.finfo(np.float64).tiny
    return float(np.log10((power[freqs >= cutoff_hz].sum() + eps) / (power.sum() + eps)))


class HighBandScorer(Scorer):
    """Score = sign · (log high-band ratio − midpoint), the sign and midpoint learnt from labelled data."""

    name = "highband"
    description = "example plug-in: high-band energy ratio (tests/plugin_example)"
    default_threshold = 0.0

    def __init__(self, cutoff_hz: float = 4000.0):
        self.cutoff_hz = cutoff_hz

    def _features(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        out = []
        for path in paths:
            audio = load_audio(path, warn=False)
            out.append(high_band_log_ratio(audio.signal, audio.sample_rate, self.cutoff_hz))
        return np.asarray(out)

    def fit(self, trials: Sequence[Trial], **options) -> HighBandScorer:
        values = self._features([t.path for t in trials])
        bonafide = np.array([t.key == "bonafide" for t in trials])
        if bonafide.all() or not bonafide.any():
            raise ValueError("training needs both bona fide and spoof trials")
        mean_bonafide, mean_spoof = values[bonafide].mean(), values[~bonafide].mean()
        self.sign_ = 1.0 if mean_bonafide >= mean_spoof else -1.0
        self.midpoint_ = (mean_bonafide + mean_spoof) / 2
        return self

    def score_files(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        return self.sign_ * (self._features(paths) - self.midpoint_)

    def save(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as handle:
            json.dump({"cutoff_hz": self.cutoff_hz, "sign": self.sign_, "midpoint": self.midpoint_}, handle)

    @classmethod
    def load(cls, path: str | os.PathLike, **options) -> HighBandScorer:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        scorer = cls(state["cutoff_hz"])
        scorer.sign_, scorer.midpoint_ = state["sign"], state["midpoint"]
        return scorer

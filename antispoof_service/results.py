"""The one adapter from (scorer, audio, options) to the result object the service answers with.

Everything the service returns for a recording comes from :func:`score_file` (an upload, and a finished stream
spooled as a WAV file) and :func:`score_window` (a live segment of a stream), so that swapping the library function
behind them changes every answer at once.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from lfcc_gmm.audio import AudioError, load_audio
from lfcc_gmm.scorers import Scorer

from .errors import ServiceError, bad_audio, bad_parameter

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class ScoreOptions:
    """Per-request options (query parameters); None leaves the scorer's default.

    Attributes
    ----------
    threshold : verdict threshold instead of the scorer's own.
    """

    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise bad_parameter(f"threshold must be a finite number, got {self.threshold}")


def check_upload(path: str | os.PathLike, name: str, max_duration_s: float) -> None:
    """Refuse an uploaded file from its header, before any sample is decoded.

    Raises
    ------
    ServiceError
        400 (``empty-audio``, ``undecodable-audio``) for a file that is not audio or holds no samples, naming the
        upload ``name``; 413 (``too-long``) for a recording over ``max_duration_s``.
    """
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        cause = exc.error_string if isinstance(exc, sf.LibsndfileError) else exc
        raise bad_audio(name, f"not audio this service can decode ({cause})") from exc
    if info.frames == 0:
        raise bad_audio(name, "the audio holds no samples", empty=True)
    if info.duration > max_duration_s:
        raise ServiceError(413, "too-long", f"{name}: {info.duration:.1f} s of audio is longer than this service's "
                                            f"limit of {max_duration_s:g} s (--max-duration-s)")


def score_file(scorer: Scorer, path: str | os.PathLike, name: str,
               options: ScoreOptions = ScoreOptions()) -> dict[str, Any]:
    """The result object of the audio file at ``path``, named ``name`` (its ``file``).

    Raises
    ------
    ServiceError
        400 (``undecodable-audio``) when the samples cannot be decoded, naming ``name``.
    """
    try:
        audio = load_audio(path, SAMPLE_RATE, warn=False)
    except AudioError as exc:
        raise bad_audio(name, exc.reason) from exc
    score = float(scorer.score_files([path])[0])
    threshold = scorer.default_threshold if options.threshold is None else options.threshold
    verdict = None if threshold is None else ("bona fide" if score >= threshold else "spoof")
    return {"file": name, "scorer": scorer.name, "verdict": verdict, "score": score, "threshold": threshold,
            "mode": "whole file", "duration_s": audio.duration, "speech_s": None,
            "warnings": [f"converted on load: {note}" for note in audio.conversions], "segments": []}


def stream_grid(scorer: Scorer) -> tuple[int, int]:
    """(length, hop) in samples of a stream's windows: the deep models' input window with 50 % overlap."""
    return 64600, 32300


def scores_windows(scorer: Scorer) -> bool:
    """Whether ``scorer`` can score a stream's windows as they arrive: it scores in-memory signals (a plug-in may
    score files only; its stream then gets the file-level result alone)."""
    return type(scorer).score_signals is not Scorer.score_signals


def score_window(scorer: Scorer, window: np.ndarray) -> float:
    """The score of one window of a stream (float64 mono at 16 kHz, :func:`stream_grid` long)."""
    return float(scorer.score_signals([window], SAMPLE_RATE)[0])

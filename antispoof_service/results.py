"""The one adapter from (scorer, audio, options) to the result object the service answers with.

Everything the service returns for a recording comes from :func:`score_file` (an upload, and a finished stream
spooled as a WAV file), which calls the function behind ``antispoof score --format json``
(:func:`lfcc_gmm.analysis.analyse_files`), and :func:`score_window` (a live segment of a stream, on the same grid
as the segments of an upload).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from lfcc_gmm.analysis import analyse_files
from lfcc_gmm.scorers import Scorer
from lfcc_gmm.speech import detect_speech
from lfcc_gmm.verdicts import Threshold

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

    def verdict_threshold(self) -> Threshold | None:
        """The :class:`~lfcc_gmm.verdicts.Threshold` to decide with; None: the scorer's own."""
        return None if self.threshold is None else Threshold(self.threshold, "given with the request")


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
    """The result object of the audio file at ``path``, named ``name`` (its ``file``): what ``antispoof score
    --format json`` prints for that file, from the same function (:func:`lfcc_gmm.analysis.analyse_files`).

    Raises
    ------
    ServiceError
        400 (``unscorable-audio``) when the file cannot be decoded or scored, with the reason the command line
        gives in the result's ``error``, naming ``name``.
    """
    (result,) = analyse_files(scorer, [path], threshold=options.verdict_threshold())
    if result.error is not None:
        raise ServiceError(400, "unscorable-audio", f"{name}: {result.error}")
    return dataclasses.replace(result, file=name).to_dict()


def stream_grid(scorer: Scorer) -> tuple[int, int]:
    """(length, hop) in samples of a stream's windows: the scorer's segment grid (its model window with 50 %
    overlap), the grid of an upload's segments."""
    return scorer.default_grid().samples(SAMPLE_RATE)


def scores_windows(scorer: Scorer) -> bool:
    """Whether ``scorer`` can score a stream's windows as they arrive: it scores in-memory signals (a plug-in may
    score files only; its stream then gets the file-level result alone)."""
    return type(scorer).score_signals is not Scorer.score_signals


def score_window(scorer: Scorer, window: np.ndarray) -> float:
    """The score of one window of a stream (float64 mono at 16 kHz, :func:`stream_grid` long): the window alone on
    the scorer's grid, which for a model that reads windows (AASIST, RawNet2) is its segment of the recording."""
    speech = detect_speech(window, SAMPLE_RATE)
    (timeline,) = scorer.score_timelines([window], [speech], scorer.default_grid(), SAMPLE_RATE)
    return float(timeline.segments[0].score)

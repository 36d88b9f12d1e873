"""The one adapter from (scorer, audio, options) to the result object the service answers with.

Everything the service returns for a recording comes from :func:`score_upload` (an upload, and a finished stream
as a WAV file), which calls the functions behind ``antispoof score --format json`` (:func:`analyse_upload`: the
upload decoded from its bytes as the command decodes standard input, or from its spooled file, then
:func:`lfcc_gmm.analysis.analyse_audio`), and :func:`score_window` (a live segment of a stream, on the same grid as
the segments of an upload).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lfcc_gmm.analysis import analyse_audio, analyse_files
from lfcc_gmm.audio import DEFAULT_SAMPLE_RATE as SAMPLE_RATE
from lfcc_gmm.audio import (
    Audio,
    AudioError,
    AudioTooLongError,
    EmptyAudioError,
    check_header,
    decode_audio,
    load_audio,
)
from lfcc_gmm.scorers import Scorer
from lfcc_gmm.speech import detect_speech
from lfcc_gmm.verdicts import FileResult, Threshold

from .errors import ServiceError, bad_audio, bad_parameter
from .uploads import Upload


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

    @classmethod
    def from_query(cls, threshold: str | None) -> ScoreOptions:
        """The options of ``POST /v1/score`` from its query parameters' text (None: absent)."""
        if threshold is None:
            return cls()
        try:
            value = float(threshold)
        except ValueError:
            raise bad_parameter(f"threshold must be a number, got {threshold!r}") from None
        return cls(threshold=value)

    def verdict_threshold(self) -> Threshold | None:
        """The :class:`~lfcc_gmm.verdicts.Threshold` to decide with; None: the scorer's own."""
        return None if self.threshold is None else Threshold(self.threshold, "given with the request")


def too_long(name: str, duration: float, max_duration_s: float) -> ServiceError:
    """413 (``too-long``): a recording over the service's ``--max-duration-s``."""
    return ServiceError(413, "too-long", f"{name}: {duration:.1f} s of audio is longer than this service's limit "
                                         f"of {max_duration_s:g} s (--max-duration-s)")


def decode_upload(upload: Upload, max_duration_s: float = math.inf) -> Audio:
    """The audio of a finished upload as ``antispoof score`` loads a file (float64 mono at 16 kHz): decoded from its
    bytes when held in memory (:func:`lfcc_gmm.audio.decode_audio`, as the command reads standard input), else
    from its spooled file; a recording over ``max_duration_s`` is refused from its header, before any sample is
    decoded.

    Raises
    ------
    ServiceError
        400 (``empty-audio``, ``undecodable-audio``) for an upload that holds no samples or is not audio, naming
        the upload; 413 (``too-long``) over ``max_duration_s``.
    """
    with _audio_errors_answered(upload.filename, max_duration_s):
        if upload.path is not None:
            return load_audio(upload.path, warn=False, max_duration_s=max_duration_s)
        return decode_audio(upload.data or b"", upload.filename, warn=False, max_duration_s=max_duration_s)


def check_upload(upload: Upload, max_duration_s: float) -> None:
    """Refuse a finished upload from its header, without decoding it (for a scorer that reads files itself).

    Raises
    ------
    ServiceError
        As :func:`decode_upload`.
    """
    with _audio_errors_answered(upload.filename, max_duration_s):
        check_header(upload.source(), upload.filename, max_duration_s)


@contextlib.contextmanager
def _audio_errors_answered(name: str, max_duration_s: float) -> Iterator[None]:
    """The library's :class:`~lfcc_gmm.audio.AudioError` family as the service's answers."""
    try:
        yield
    except AudioTooLongError as exc:
        raise too_long(name, exc.duration, max_duration_s) from exc
    except AudioError as exc:
        raise bad_audio(name, exc.reason, empty=isinstance(exc, EmptyAudioError)) from exc


def analyse_upload(scorer: Scorer, upload: Upload, options: ScoreOptions = ScoreOptions(),
                   max_duration_s: float = math.inf) -> FileResult:
    """The result of a finished upload, named as the upload: the library calls that decode and score it, as
    ``antispoof score`` does a file (the bare call the service's overhead is measured against):
    :func:`decode_upload`, then :func:`lfcc_gmm.analysis.analyse_audio` (what
    :func:`lfcc_gmm.analysis.analyse_bytes` does for standard input). A scorer that reads files only gets the
    upload as a file (:func:`lfcc_gmm.analysis.analyse_files`), refused from its header first (:func:`check_upload`).

    Raises
    ------
    ServiceError
        As :func:`decode_upload`.
    """
    threshold = options.verdict_threshold()
    if scores_windows(scorer):
        return analyse_audio(scorer, decode_upload(upload, max_duration_s), upload.filename, threshold=threshold)
    check_upload(upload, max_duration_s)
    with upload.on_disk() as path:
        (result,) = analyse_files(scorer, [path], threshold=threshold)
    return dataclasses.replace(result, file=upload.filename)


def result_object(result: FileResult) -> dict[str, Any]:
    """The object ``antispoof score --format json`` prints for a result.

    Raises
    ------
    ServiceError
        400 (``unscorable-audio``) for a result that holds the reason the file could not be decoded or scored (the
        command line's ``error``), naming the file.
    """
    if result.error is not None:
        raise ServiceError(400, "unscorable-audio", f"{result.file}: {result.error}")
    return result.to_dict()


def score_upload(scorer: Scorer, upload: Upload, options: ScoreOptions = ScoreOptions(),
                 max_duration_s: float = math.inf) -> dict[str, Any]:
    """The result object of a finished upload, named as the upload: :func:`analyse_upload`, then
    :func:`result_object` (errors as they raise)."""
    return result_object(analyse_upload(scorer, upload, options, max_duration_s))


def stream_grid(scorer: Scorer) -> tuple[int, int]:
    """(length, hop) in samples of a stream's windows: the scorer's segment grid (its model window with 50 %
    overlap), the grid of an upload's segments."""
    return scorer.default_grid().samples(SAMPLE_RATE)


def scores_windows(scorer: Scorer) -> bool:
    """Whether ``scorer`` scores in-memory signals, and so a stream's windows as they arrive and an upload from its
    bytes (a plug-in may score files only; its stream then gets the file-level result alone, its uploads are
    written to a file)."""
    return type(scorer).score_signals is not Scorer.score_signals


def score_window(scorer: Scorer, window: np.ndarray) -> float:
    """The score of one window of a stream (float64 mono at 16 kHz, :func:`stream_grid` long): the window alone on
    the scorer's grid, which for a model that reads windows (AASIST, RawNet2) is its segment of the recording."""
    speech = detect_speech(window, SAMPLE_RATE)
    (timeline,) = scorer.score_timelines([window], [speech], scorer.default_grid(), SAMPLE_RATE)
    return float(timeline.segments[0].score)

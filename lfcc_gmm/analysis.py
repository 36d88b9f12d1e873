"""From recordings to verdicts a person can trust: speech and quality checks, the scorer's timeline, the result.

For each recording :func:`assess_audio` finds the speech (:func:`lfcc_gmm.speech.detect_speech`), runs the quality
checks (:func:`lfcc_gmm.checks.check_signal`) and has the scorer score the whole file and its segments
(:meth:`lfcc_gmm.scorers.Scorer.score_timelines`); the :class:`Assessment` then becomes a
:class:`~lfcc_gmm.verdicts.FileResult` at a threshold. A file with less than :data:`~lfcc_gmm.speech.MIN_SPEECH_S`
of speech gets the verdict "no speech" whatever its score; checks never change the score itself.

:func:`analyse_files` is what ``antispoof score`` prints and :func:`analyse_bytes` (or :func:`analyse_audio` for
decoded audio) what a service answers for an upload: all give the same :class:`~lfcc_gmm.verdicts.FileResult`.
Scorers are used through their methods only (this module does not import the scorer registry), so any object with
``name``, ``mode``, ``window_s``, ``threshold()``, ``default_grid()``, ``score_timelines`` and ``assess_files``
works.

The ``short`` check: the deep models repeat a file shorter than their window until it fills it. In the official
crop that is reported for every such file. In whole-file mode it is reported only when the file is shorter than
half the window, so that the model sees it more than twice over: the official training and evaluation pad their
many 2-4 s files the same way, which is the condition the model knows (407 of the 411 demo files are shorter than
the 4.04 s window).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .audio import Audio, AudioError, decode_audio, failure_reason, load_audio
from .checks import Check, check_signal
from .segments import Segment, SegmentGrid
from .speech import SpeechActivity, detect_speech
from .verdicts import OFFICIAL_CROP, FileResult, Threshold, decide

NO_SPEECH_CODE = "no-speech"


@dataclass(frozen=True)
class Assessment:
    """One recording as a scorer and the checks saw it, before a threshold turns it into a verdict.

    Attributes
    ----------
    score : the file score.
    mode : how the scorer read the file (:data:`lfcc_gmm.verdicts.MODES`).
    duration_s : length in seconds at 16 kHz.
    speech : where the speech is.
    checks : findings of :func:`lfcc_gmm.checks.check_signal`, in its order.
    conversions : what loading the file did to it (resampling, down-mixing).
    segments : the timeline.
    """

    score: float
    mode: str
    duration_s: float
    speech: SpeechActivity
    checks: tuple[Check, ...]
    conversions: tuple[str, ...] = ()
    segments: tuple[Segment, ...] = ()

    @property
    def no_speech(self) -> bool:
        return any(check.code == NO_SPEECH_CODE for check in self.checks)

    def warnings(self) -> tuple[str, ...]:
        """One sentence per check finding, then one per conversion."""
        return (*(check.message for check in self.checks),
                *(f"converted on load: {note}" for note in self.conversions))

    def result(self, file: str, scorer: str, threshold: Threshold | None) -> FileResult:
        """The :class:`~lfcc_gmm.verdicts.FileResult` of this assessment at ``threshold``."""
        value = None if threshold is None else threshold.value
        return FileResult(
            file=file, scorer=scorer, verdict=decide(self.score, value, self.no_speech), score=self.score,
            threshold=value, mode=self.mode, duration_s=self.duration_s, speech_s=self.speech.speech_s,
            warnings=self.warnings(), segments=self.segments,
            threshold_meaning=None if threshold is None else threshold.meaning,
        )


def padding_window(duration_s: float, window_s: float | None, mode: str) -> float | None:
    """The window to hand :func:`~lfcc_gmm.checks.check_signal` for its ``short`` check (module docstring): the
    model window in the official crop; in whole-file mode only for files shorter than half of it."""
    if window_s is None:
        return None
    if mode == OFFICIAL_CROP or duration_s < window_s / 2:
        return window_s
    return None


def inspect_signal(signal: np.ndarray, sample_rate: int, *, window_s: float | None = None,
                   mode: str = "whole file") -> tuple[SpeechActivity, tuple[Check, ...]]:
    """The speech in a signal and the quality findings about it."""
    speech = detect_speech(signal, sample_rate)
    window = padding_window(signal.shape[0] / sample_rate, window_s, mode)
    return speech, tuple(check_signal(signal, sample_rate, speech, window_s=window))


def assess_audio(scorer: Any, audios: Sequence[Audio], grid: SegmentGrid | None) -> list[Assessment]:
    """Check and score loaded recordings (one ``score_timelines`` call for all, so a deep scorer fills its
    batches across them); ``grid`` None leaves the segments out where they cost extra."""
    inspected = [inspect_signal(a.signal, a.sample_rate, window_s=scorer.window_s, mode=scorer.mode)
                 for a in audios]
    timelines = scorer.score_timelines([a.signal for a in audios], [speech for speech, _ in inspected], grid)
    return [Assessment(t.score, scorer.mode, a.duration, speech, checks, a.conversions, t.segments)
            for a, (speech, checks), t in zip(audios, inspected, timelines, strict=True)]


def assess_paths(scorer: Any, paths: Sequence[str | os.PathLike],
                 grid: SegmentGrid | None) -> list[Assessment | str]:
    """:func:`assess_audio` of files, one entry per path: the assessment, or why the file failed.

    The files are scored together; if that fails they are scored one by one, so that one bad file costs only
    itself. A scorer that cannot score in-memory signals (``score_signals`` not implemented, as some plug-ins)
    gets its file scores from ``score_files`` and no segments.
    """
    out: list[Assessment | str] = [""] * len(paths)
    loaded: list[tuple[int, Audio]] = []
    for index, path in enumerate(paths):
        try:
            loaded.append((index, load_audio(path, warn=False)))
        except AudioError as exc:
            out[index] = exc.reason
    try:
        for (index, _), assessment in zip(loaded, _assess_or_fall_back(scorer, loaded, paths, grid), strict=True):
            out[index] = assessment
    except Exception:
        for item in loaded:
            try:
                out[item[0]] = _assess_or_fall_back(scorer, [item], paths, grid)[0]
            except Exception as exc:
                out[item[0]] = failure_reason(exc)
    return out


def _assess_or_fall_back(scorer: Any, loaded: list[tuple[int, Audio]], paths: Sequence[str | os.PathLike],
                         grid: SegmentGrid | None) -> list[Assessment]:
    audios = [audio for _, audio in loaded]
    try:
        return assess_audio(scorer, audios, grid)
    except NotImplementedError:
        pass
    scores = np.asarray(scorer.score_files([paths[index] for index, _ in loaded]), dtype=np.float64)
    if scores.shape != (len(loaded),):
        raise ValueError(f"scorer returned {scores.shape} scores for {len(loaded)} files")
    out = []
    for audio, score in zip(audios, scores, strict=True):
        speech, checks = inspect_signal(audio.signal, audio.sample_rate, window_s=scorer.window_s, mode=scorer.mode)
        out.append(Assessment(float(score), scorer.mode, audio.duration, speech, checks, audio.conversions))
    return out


def result_of(outcome: Assessment | str, file: str, scorer: str, threshold: Threshold | None) -> FileResult:
    """A result from an assessment, or a failure result from its reason."""
    if isinstance(outcome, str):
        return FileResult(file=file, scorer=scorer, error=outcome)
    if not np.isfinite(outcome.score):
        return FileResult(file=file, scorer=scorer, error=f"scorer returned a non-finite score ({outcome.score})")
    return outcome.result(file, scorer, threshold)


Progress = Callable[[int, int], None]


def analyse_files(
    scorer: Any,
    paths: Sequence[str | os.PathLike],
    *,
    threshold: Threshold | None = None,
    grid: SegmentGrid | None = None,
    plot_paths: Sequence[str | os.PathLike] | None = None,
    chunk_size: int = 16,
    progress: Progress | None = None,
) -> Iterator[FileResult]:
    """The result of every file, in order, produced chunk by chunk (memory holds one chunk).

    Parameters
    ----------
    scorer : a ready scorer (:func:`lfcc_gmm.scorers.load_scorer`).
    paths : audio files.
    threshold : the verdict threshold; default the scorer's own (``scorer.threshold()``).
    grid : the segment grid; default the scorer's (``scorer.default_grid()``: its model window with 50 % overlap).
    plot_paths : one PNG path per file for its timeline figure (:func:`lfcc_gmm.plots.timeline_figure`).
    chunk_size : files per ``assess_files`` call.
    progress : ``progress(n_done, n_total)`` after each chunk.
    """
    threshold = scorer.threshold() if threshold is None else threshold
    grid = scorer.default_grid() if grid is None else grid
    if plot_paths is not None and len(plot_paths) != len(paths):
        raise ValueError(f"{len(plot_paths)} plot paths for {len(paths)} files")
    for start in range(0, len(paths), chunk_size):
        chunk = list(paths[start : start + chunk_size])
        for offset, outcome in enumerate(scorer.assess_files(chunk, grid)):
            path = chunk[offset]
            result = result_of(outcome, str(path), scorer.name, threshold)
            if plot_paths is not None and result.ok:
                plot_result(result, load_audio(path, warn=False), plot_paths[start + offset])
            yield result
        if progress is not None:
            progress(min(start + chunk_size, len(paths)), len(paths))


def analyse_audio(
    scorer: Any,
    audio: Audio,
    file: str,
    *,
    threshold: Threshold | None = None,
    grid: SegmentGrid | None = None,
    plot_path: str | os.PathLike | None = None,
) -> FileResult:
    """The result for one recording already in memory (an upload, standard input), named ``file``.

    Failures of the scorer come back as a result with ``error``, as in :func:`analyse_files`.
    """
    threshold = scorer.threshold() if threshold is None else threshold
    grid = scorer.default_grid() if grid is None else grid
    try:
        outcome: Assessment | str = assess_audio(scorer, [audio], grid)[0]
    except Exception as exc:
        outcome = failure_reason(exc)
    result = result_of(outcome, file, scorer.name, threshold)
    if plot_path is not None and result.ok:
        plot_result(result, audio, plot_path)
    return result


def analyse_bytes(
    scorer: Any,
    data: bytes,
    file: str = "-",
    *,
    threshold: Threshold | None = None,
    grid: SegmentGrid | None = None,
    plot_path: str | os.PathLike | None = None,
) -> FileResult:
    """:func:`analyse_audio` of a file's bytes (an upload, standard input), named ``file``; bytes that are not
    readable audio give a result with ``error``, as a bad file does in :func:`analyse_files`."""
    try:
        audio = decode_audio(data, file, warn=False)
    except AudioError as exc:
        return FileResult(file=file, scorer=scorer.name, error=exc.reason)
    return analyse_audio(scorer, audio, file, threshold=threshold, grid=grid, plot_path=plot_path)


def plot_result(result: FileResult, audio: Audio, path: str | os.PathLike) -> Path:
    """Write the timeline figure of ``result`` (:func:`lfcc_gmm.plots.timeline_figure`) as a PNG."""
    from .plots import save_png, timeline_figure

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    speech = detect_speech(audio.signal, audio.sample_rate)
    return save_png(timeline_figure(audio.signal, audio.sample_rate, speech, result), path)

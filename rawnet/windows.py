"""Scorers whose model reads fixed windows of raw waveform: everything but running the model (no torch).

A :class:`WindowScorer` needs one primitive, :meth:`WindowScorer.score_windows`: float32 rows of ``nb_samp``
samples at 16 kHz in, one score per row out (higher = more bona fide). From it this class makes the file scores,
the timelines and the verdict machinery of :mod:`lfcc_gmm.analysis`, in either mode:

``crop="none"`` (whole file, the default)
    The model window slides over the whole file with 50 % overlap (``nb_samp`` every ``nb_samp // 2`` samples,
    the last window aligned to the end: :func:`lfcc_gmm.segments.segment_spans`); a file shorter than the window
    is one repeat-padded window (:func:`rawnet.functional.pad_or_truncate`). The file score is
    :func:`lfcc_gmm.segments.aggregate_windows` of the window scores (the speech-weighted mean, chosen on data:
    ``docs/models/aasist.md``), and the windows are the timeline's segments, so the segments cost nothing more.
``crop="official"``
    The official single-window evaluation (SPEC §5-6): the first ``nb_samp`` samples, repeat-padded when the
    file is shorter; the file score is that window's score. A timeline still shows every window of the grid.

Windows of several files share batches of ``batch_size`` rows, built from strided views of each signal, so
memory holds one batch of windows (plus the signals) however long the files are.

The torch scorers (:class:`rawnet.scorers.RawWaveformScorer`) run the network in :meth:`score_windows`; a
runtime without torch (ONNX) does the same with its own session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from lfcc_gmm.audio import load_audio, resample
from lfcc_gmm.scorers import Scorer
from lfcc_gmm.segments import (
    SegmentGrid,
    Timeline,
    aggregate_windows,
    segment_spans,
    segments_from_spans,
    speech_shares,
    speech_span,
)
from lfcc_gmm.speech import SpeechActivity, detect_speech
from lfcc_gmm.verdicts import OFFICIAL_CROP, WHOLE_FILE
from rawnet.catalog import CROPS
from rawnet.functional import pad_or_truncate, sliding_windows
from rawnet.onnx_format import BONAFIDE_INDEX

SAMPLE_RATE = 16000
#: Windows per forward pass unless ``batch_size`` says otherwise.
DEFAULT_BATCH_SIZE = 8


def check_crop(crop: str) -> str:
    """``crop`` itself if it is one of :data:`CROPS`; ``ValueError`` naming them otherwise."""
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; expected one of {', '.join(CROPS)} (none = the whole file)")
    return crop


class WindowScorer(Scorer):
    """Base of the scorers whose model reads windows of :attr:`nb_samp` samples (module docstring).

    Subclasses provide :attr:`nb_samp` and :meth:`_batch_outputs` (their model's outputs for one batch), and set
    ``crop`` and ``batch_size`` in their constructor.
    """

    crop: str
    batch_size: int
    runtime_options: ClassVar[tuple[str, ...]] = ("batch_size", "crop")

    @property
    def nb_samp(self) -> int:
        """Samples per model input."""
        raise NotImplementedError

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        """One score (float64, higher = more bona fide) per float32 row of ``nb_samp`` samples, in one model run:
        output :data:`~rawnet.onnx_format.BONAFIDE_INDEX` of the model."""
        return self._batch_outputs(np.asarray(windows, dtype=np.float32))[:, BONAFIDE_INDEX].astype(np.float64)

    def outputs(self, inputs: np.ndarray) -> np.ndarray:
        """The model's (n, 2) float32 outputs for (n, nb_samp) inputs, in batches of ``batch_size``."""
        self.ready()
        inputs = np.asarray(inputs, dtype=np.float32)
        parts = [self._batch_outputs(inputs[start : start + self.batch_size])
                 for start in range(0, inputs.shape[0], self.batch_size)]
        return np.concatenate(parts) if parts else np.empty((0, 2), np.float32)

    def _batch_outputs(self, batch: np.ndarray) -> np.ndarray:
        """The model's (n, 2) float32 outputs for one batch of float32 rows."""
        raise NotImplementedError

    def ready(self) -> None:
        """Raise ``ValueError`` when the scorer cannot score yet (no weights); called before any file is read."""

    # -- what the analysis needs ---------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return OFFICIAL_CROP if check_crop(self.crop) == "official" else WHOLE_FILE

    @property
    def window_s(self) -> float:
        return self.nb_samp / SAMPLE_RATE

    def default_grid(self) -> SegmentGrid:
        """The model window with 50 % overlap: the windows a whole-file score is made of."""
        return SegmentGrid(self.nb_samp / SAMPLE_RATE, (self.nb_samp // 2) / SAMPLE_RATE)

    def _window_spans(self, n_samples: int) -> np.ndarray:
        return segment_spans(n_samples, self.nb_samp, self.nb_samp // 2)

    def model_inputs(self, signal: np.ndarray) -> np.ndarray:
        """The float32 rows (n_windows, nb_samp) the file score reads from a 16 kHz mono signal: the one official
        window, or the whole-file windows (module docstring)."""
        x = np.asarray(signal, dtype=np.float32)
        if self.mode == OFFICIAL_CROP:
            return pad_or_truncate(x, self.nb_samp)[None, :]
        return sliding_windows(x, self.nb_samp, self.nb_samp // 2)

    def _rows(self, x: np.ndarray, spans: np.ndarray) -> Iterator[np.ndarray]:
        """The model input of each span: the samples themselves, or repeat-padded when shorter than ``nb_samp``."""
        for start, stop in spans:
            piece = x[start:stop]
            yield piece if piece.shape[0] == self.nb_samp else pad_or_truncate(piece, self.nb_samp)

    def _scores_of(self, requests: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """The window scores of each (float32 signal, spans) request, rows of all requests sharing batches."""
        out = [np.empty(spans.shape[0]) for _, spans in requests]
        owners: list[tuple[int, int]] = []
        rows: list[np.ndarray] = []

        def flush() -> None:
            scores = np.asarray(self.score_windows(np.stack(rows)), dtype=np.float64)
            for (request, index), score in zip(owners, scores, strict=True):
                out[request][index] = score
            owners.clear()
            rows.clear()

        for request, (x, spans) in enumerate(requests):
            for index, row in enumerate(self._rows(x, spans)):
                rows.append(row)
                owners.append((request, index))
                if len(rows) == self.batch_size:
                    flush()
        if rows:
            flush()
        return out

    def file_windows(self, n_samples: int, speech: SpeechActivity | None, start: int = 0,
                     stop: int | None = None) -> np.ndarray:
        """The (start, stop) sample spans whose scores make the file score of ``[start, stop)`` of a signal.

        Official crop: the first window. Whole file: the model windows laid over the speech, from
        :data:`~lfcc_gmm.segments.SPEECH_MARGIN_S` before the first speech to as much after the last
        (:func:`~lfcc_gmm.segments.speech_span`; the whole stretch when it holds no speech).
        """
        stop = n_samples if stop is None else stop
        if self.mode == OFFICIAL_CROP:
            return self._window_spans(stop - start)[:1] + start
        a, b = speech_span(speech.regions if speech is not None else [], start, stop, SAMPLE_RATE)
        return self._window_spans(b - a) + a

    def score_timelines(
        self,
        signals: Sequence[np.ndarray],
        speech: Sequence[SpeechActivity | None],
        grid: SegmentGrid | None,
        sample_rate: int = SAMPLE_RATE,
    ) -> list[Timeline]:
        """File scores and segments (module docstring); ``grid`` None leaves the segments out.

        On the default grid the segments are the model windows over the whole file; on another grid each segment
        is scored as a file of its own would be. Every distinct window of a signal is scored once, so a file whose
        speech fills it (its file windows are the grid's) costs no more with its segments than without.
        """
        self.ready()
        xs = [np.asarray(resample(np.asarray(s, dtype=np.float64), sample_rate, SAMPLE_RATE), dtype=np.float32)
              for s in signals]
        own_grid = grid is not None and grid.samples(SAMPLE_RATE) == (self.nb_samp, self.nb_samp // 2)
        plans = []  # per signal: its file windows, and the windows of each segment
        for x, activity in zip(xs, speech, strict=True):
            n = x.shape[0]
            if grid is None:
                pieces = []
            elif own_grid:
                pieces = [span[None, :] for span in self._window_spans(n)]
            else:
                pieces = [self.file_windows(n, activity, a, b) for a, b in grid.spans(n, SAMPLE_RATE)]
            plans.append((self.file_windows(n, activity), pieces))
        unique = [np.unique(np.concatenate([spans, *pieces]), axis=0) for spans, pieces in plans]
        scored = self._scores_of(list(zip(xs, unique, strict=True)))
        timelines = []
        for x, activity, (spans, pieces), windows, values in zip(xs, speech, plans, unique, scored, strict=True):
            lookup = dict(zip(map(tuple, windows.tolist()), values.tolist(), strict=True))

            def combined(chosen: np.ndarray, activity: SpeechActivity | None = activity,
                         lookup: dict = lookup) -> float:
                scores = np.array([lookup[tuple(span)] for span in chosen.tolist()])
                if self.mode == OFFICIAL_CROP:
                    return float(scores[0])
                return aggregate_windows(scores, self._shares(activity, chosen))

            segments: tuple = ()
            if grid is not None:
                bounds = self._window_spans(x.shape[0]) if own_grid else grid.spans(x.shape[0], SAMPLE_RATE)
                segments = segments_from_spans(bounds, [combined(piece) for piece in pieces], SAMPLE_RATE)
            timelines.append(Timeline(combined(spans), segments))
        return timelines

    @staticmethod
    def _shares(speech: SpeechActivity | None, spans: np.ndarray) -> np.ndarray:
        if speech is None:
            return np.ones(spans.shape[0])
        return speech_shares(speech.fraction, spans, SAMPLE_RATE)

    # -- the Scorer interface --------------------------------------------------------------------------------------
    def _file_scores(self, signals: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        self.ready()
        speech: list[Any] = [None] * len(signals)
        if self.mode == WHOLE_FILE:  # the windows are weighted by their speech
            speech = [detect_speech(resample(np.asarray(s, dtype=np.float64), sample_rate, SAMPLE_RATE), SAMPLE_RATE)
                      for s in signals]
        return np.array([t.score for t in self.score_timelines(signals, speech, None, sample_rate)])

    def score_files(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """The file score of each file (module docstring): the official window's, or the aggregate of the
        whole-file windows.

        Raises
        ------
        lfcc_gmm.audio.AudioError
            for a file that cannot be read (the batch runner then scores file by file to isolate it).
        """
        self.ready()
        return self._file_scores([load_audio(path).signal for path in paths], SAMPLE_RATE)

    def score_signals(self, signals: Sequence[np.ndarray], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """As :meth:`score_files` for in-memory mono signals (resampled to 16 kHz if at another rate)."""
        return self._file_scores(signals, sample_rate)

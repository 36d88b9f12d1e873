"""Segment grids over a recording, and how window scores become one file score (pure NumPy, no I/O).

A grid of ``length`` samples every ``hop`` samples covers a signal of ``n`` samples: spans start at 0, hop,
2·hop, … while they fit, and when the last of them stops short of the end one more span is aligned to the end,
so every sample is covered and no span runs past the signal. A signal of ``length`` samples or fewer is one span,
the whole signal. The deep scorers score these spans with their model window (``length`` = ``nb_samp``) and the
LFCC-GMM scorer averages its frame log-likelihood ratios over them; either way each span is one
:class:`Segment` of a file's timeline.

:func:`aggregate_windows` turns the scores of the model windows of one file into the file score. The rule,
:data:`WINDOW_AGGREGATION`, was chosen on data (``docs/models/aasist.md``, *How a file score is made*): the mean
of the window scores weighted by the share of each window that is speech, so that silence and background
before, between or after the speech do not vote.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

#: The default grid: the official RawNet2/AASIST input window (64,600 samples at 16 kHz) with 50 % overlap.
DEFAULT_SEGMENT_S = 64600 / 16000
DEFAULT_HOP_S = DEFAULT_SEGMENT_S / 2


class Segment(NamedTuple):
    """A stretch of a recording and its score (higher = more bona fide)."""

    start_s: float
    end_s: float
    score: float

    def to_dict(self) -> dict[str, float]:
        return {"start_s": self.start_s, "end_s": self.end_s, "score": self.score}


class Timeline(NamedTuple):
    """What a scorer makes of one signal: the file score and its segments (higher = more bona fide)."""

    score: float
    segments: tuple[Segment, ...] = ()


def window_starts(n_samples: int, length: int, hop: int) -> np.ndarray:
    """Start samples of the spans of ``length`` every ``hop`` covering ``n_samples`` (module docstring).

    A signal of at most ``length`` samples has the one start 0.
    """
    if length < 1 or hop < 1:
        raise ValueError(f"length and hop must be at least 1 sample, got {length} and {hop}")
    if n_samples < 1:
        raise ValueError(f"cannot lay a grid over {n_samples} samples")
    last = n_samples - length
    if last <= 0:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, last + 1, hop, dtype=np.int64)
    return starts if starts[-1] == last else np.append(starts, last)


def segment_spans(n_samples: int, length: int, hop: int) -> np.ndarray:
    """(start, stop) sample indices, shape (n_spans, 2), of the grid over ``n_samples``; stops never pass the end."""
    starts = window_starts(n_samples, length, hop)
    return np.stack([starts, np.minimum(starts + length, n_samples)], axis=1)


@dataclass(frozen=True)
class SegmentGrid:
    """Segment length and hop in seconds (the command line's ``--segment-s`` and ``--hop-s``).

    Attributes
    ----------
    segment_s, hop_s : float
        Positive; ``hop_s`` may exceed ``segment_s`` (segments with gaps between them), but not be zero.
    """

    segment_s: float = DEFAULT_SEGMENT_S
    hop_s: float = DEFAULT_HOP_S

    def __post_init__(self) -> None:
        if not (math.isfinite(self.segment_s) and math.isfinite(self.hop_s)):
            raise ValueError(f"segment and hop must be finite, got {self.segment_s} and {self.hop_s}")
        if self.segment_s <= 0 or self.hop_s <= 0:
            raise ValueError(f"segment and hop must be positive seconds, got {self.segment_s} and {self.hop_s}")

    @classmethod
    def from_options(cls, segment_s: float | None = None, hop_s: float | None = None,
                     default: SegmentGrid | None = None) -> SegmentGrid:
        """``default`` (the module default when None) with the given values replaced; a segment length given
        alone takes a hop of half of it."""
        base = default or cls()
        if segment_s is None:
            return cls(base.segment_s, base.hop_s if hop_s is None else hop_s)
        return cls(segment_s, segment_s / 2 if hop_s is None else hop_s)

    def samples(self, sample_rate: int) -> tuple[int, int]:
        """(length, hop) in whole samples at ``sample_rate``, at least one each."""
        return max(1, round(self.segment_s * sample_rate)), max(1, round(self.hop_s * sample_rate))

    def spans(self, n_samples: int, sample_rate: int) -> np.ndarray:
        """:func:`segment_spans` of this grid over ``n_samples`` at ``sample_rate``."""
        return segment_spans(n_samples, *self.samples(sample_rate))


def segments_from_spans(spans: np.ndarray, scores: ArrayLike, sample_rate: int) -> tuple[Segment, ...]:
    """One :class:`Segment` per (start, stop) sample span, with times in seconds."""
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != (spans.shape[0],):
        raise ValueError(f"{values.shape} scores for {spans.shape[0]} spans")
    return tuple(Segment(float(a) / sample_rate, float(b) / sample_rate, float(s))
                 for (a, b), s in zip(spans, values, strict=True))


def frame_segment_means(frame_values: ArrayLike, frame_centres: ArrayLike, spans: np.ndarray) -> np.ndarray:
    """Mean of the frame values whose centre lies in each span ``[start, stop)`` (same unit as the centres).

    A span that holds no frame centre takes the value of the frame nearest to its middle, so every segment has
    a score. Computed from one cumulative sum: the cost does not grow with the number of spans.
    """
    values = np.asarray(frame_values, dtype=np.float64)
    centres = np.asarray(frame_centres, dtype=np.float64)
    if values.shape != centres.shape or values.ndim != 1 or values.size == 0:
        raise ValueError(f"need one centre per frame value and at least one frame, got {values.shape} and "
                         f"{centres.shape}")
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    first = np.searchsorted(centres, spans[:, 0], side="left")
    stop = np.searchsorted(centres, spans[:, 1], side="left")
    counts = stop - first
    means = np.empty(spans.shape[0])
    filled = counts > 0
    means[filled] = (cumulative[stop[filled]] - cumulative[first[filled]]) / counts[filled]
    if not filled.all():
        middle = spans[~filled].mean(axis=1)
        after = np.clip(np.searchsorted(centres, middle), 0, centres.size - 1)
        before = np.maximum(after - 1, 0)
        nearer = np.where(np.abs(centres[before] - middle) <= np.abs(centres[after] - middle), before, after)
        means[~filled] = values[nearer]
    return means


# -- from window scores to a file score -----------------------------------------------------------------------

def _mean(scores: np.ndarray, speech: np.ndarray) -> float:
    return float(np.mean(scores))


def _speech_weighted(scores: np.ndarray, speech: np.ndarray) -> float:
    total = float(speech.sum())
    # Without any speech every window weighs the same: the verdict is "no speech" anyway, but the score stays
    # defined (batch runs write one for every trial).
    return float(np.dot(scores, speech) / total) if total > 0 else float(np.mean(scores))


def _lower_quartile(scores: np.ndarray, speech: np.ndarray) -> float:
    return float(np.percentile(scores, 25))


def _minimum(scores: np.ndarray, speech: np.ndarray) -> float:
    return float(np.min(scores))


def _speech_windows_mean(scores: np.ndarray, speech: np.ndarray) -> float:
    mostly = speech >= 0.5
    return float(np.mean(scores[mostly])) if mostly.any() else _speech_weighted(scores, speech)


#: The rules measured for :data:`WINDOW_AGGREGATION`; each maps (window scores, speech share of each window) to a
#: file score.
AGGREGATIONS: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mean": _mean,
    "speech-weighted mean": _speech_weighted,
    "mean of speech windows": _speech_windows_mean,
    "lower quartile": _lower_quartile,
    "minimum": _minimum,
}
#: How the deep scorers turn window scores into a file score (see the module docstring).
WINDOW_AGGREGATION = "speech-weighted mean"


def aggregate_windows(scores: ArrayLike, speech_share: ArrayLike, rule: str = WINDOW_AGGREGATION) -> float:
    """One file score from its window scores and the share of each window that is speech (0 to 1).

    Parameters
    ----------
    scores : the windows' scores, at least one.
    speech_share : per window, the fraction of its span that is speech
        (:meth:`lfcc_gmm.speech.SpeechActivity.fraction`).
    rule : a key of :data:`AGGREGATIONS`.
    """
    values = np.asarray(scores, dtype=np.float64)
    shares = np.asarray(speech_share, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or shares.shape != values.shape:
        raise ValueError(f"need one speech share per window score and at least one window, got {values.shape} "
                         f"and {shares.shape}")
    try:
        aggregate = AGGREGATIONS[rule]
    except KeyError:
        raise ValueError(f"unknown aggregation {rule!r}; known: {', '.join(AGGREGATIONS)}") from None
    # One window (every file up to the window's length) is its own score under any rule, to the bit.
    return float(values[0]) if values.size == 1 else aggregate(values, shares)


#: Non-speech kept before the first and after the last speech when the windows are laid over the speech.
SPEECH_MARGIN_S = 0.5


def speech_span(regions: Sequence[tuple[float, float]], start: int, stop: int, sample_rate: int,
                margin_s: float = SPEECH_MARGIN_S) -> tuple[int, int]:
    """The samples ``[a, b)`` of ``[start, stop)`` from ``margin_s`` before its first speech to ``margin_s`` after
    its last; ``(start, stop)`` itself when no speech region (seconds) falls inside it."""
    inside = [(a * sample_rate, b * sample_rate) for a, b in regions
              if b * sample_rate > start and a * sample_rate < stop]
    if not inside:
        return start, stop
    margin = margin_s * sample_rate
    return (max(start, math.floor(inside[0][0] - margin)), min(stop, math.ceil(inside[-1][1] + margin)))


def speech_shares(speech_fraction: Callable[[float, float], float], spans: np.ndarray,
                  sample_rate: int) -> np.ndarray:
    """The speech share of each (start, stop) sample span, from ``SpeechActivity.fraction``."""
    return np.array([speech_fraction(a / sample_rate, b / sample_rate) for a, b in spans], dtype=np.float64)


def sequence_of_segments(items: Sequence[Mapping[str, float]]) -> tuple[Segment, ...]:
    """Segments back from their dictionaries (``start_s``, ``end_s``, ``score``), as JSON holds them."""
    return tuple(Segment(float(d["start_s"]), float(d["end_s"]), float(d["score"])) for d in items)

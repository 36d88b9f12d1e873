"""Quality checks on a recording: what a person should know before trusting a verdict on it.

:func:`check_signal` looks at a mono signal and its :class:`~lfcc_gmm.speech.SpeechActivity` and returns one
:class:`Check` per problem found, in this order, with these thresholds (module constants):

``no-speech``
    Less than ``min_speech_s`` (default :data:`~lfcc_gmm.speech.MIN_SPEECH_S`, 0.5 s) of detected speech.
    A scorer's verdict on such a file means nothing: it becomes "no speech".
``clipped``
    At least :data:`CLIPPED_SHARE` (0.1 %) of the samples are clipped: at or above :data:`FULL_SCALE`
    (0.999, within 0.01 dB of full scale), or in runs of :data:`FLAT_RUN` (3) or more identical samples at the
    signal's own positive or negative peak, the flat tops that clipping leaves when the gain was lowered
    afterwards. Natural speech reaches its peak once; a handful of clipped samples is inaudible.
``low-level``
    The active speech level (RMS over the detected speech; the whole signal when there is none) is below
    :data:`LOW_LEVEL_DBFS` (-45 dBFS, about 20 dB under the -26 dBFS nominal speech level; the demo corpus
    and ASVspoof sit between -32 and -24 dBFS). Levels are 20·log10(RMS), 0 dBFS being an RMS of 1.
``short``
    Only when the model's input window ``window_s`` is given: fewer samples than the window, so the model
    sees the file repeated to fill it.
``long-silence``
    Only when there is speech: a stretch without speech (the start and end of the file included) longer than
    :data:`LONG_SILENCE_S` (2 s) or than :data:`LONG_SILENCE_SHARE` (50 %) of the file. A window or segment
    inside it is scored on background alone.

Checks describe; they never change a score. Resampling and down-mixing are reported on load
(:class:`~lfcc_gmm.audio.AudioConversionWarning`), not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lfcc_gmm.pcm import as_signal
from lfcc_gmm.speech import DIGITAL_SILENCE_DBFS, MIN_SPEECH_S, SpeechActivity, true_runs

#: Samples with a magnitude at or above this are at full scale.
FULL_SCALE = 0.999
#: This many identical samples in a row at the signal's peak make a flat (clipped) top.
FLAT_RUN = 3
#: Share of clipped samples from which a file is reported as clipped.
CLIPPED_SHARE = 0.001
#: Active speech level (dBFS) below which a file is reported as very low.
LOW_LEVEL_DBFS = -45.0
#: A stretch without speech longer than this (seconds) is reported ...
LONG_SILENCE_S = 2.0
#: ... and so is one longer than this share of the file.
LONG_SILENCE_SHARE = 0.5


@dataclass(frozen=True)
class Check:
    """One finding about a recording.

    Attributes
    ----------
    code : str
        Stable machine name: ``"no-speech"``, ``"clipped"``, ``"low-level"``, ``"short"``, ``"long-silence"``.
    message : str
        One sentence for a person, with the measured value and the threshold.
    value : float
        The measured value the message quotes (seconds, a share, or dBFS).
    """

    code: str
    message: str
    value: float


def clipped_share(signal: ArrayLike) -> float:
    """Share of samples that are clipped: at or above :data:`FULL_SCALE`, or flat at the signal's peak.

    A flat top is a run of at least :data:`FLAT_RUN` identical samples equal to the signal's maximum (when
    positive) or minimum (when negative).
    """
    x = as_signal(signal)
    if x.shape[0] == 0:
        return 0.0
    clipped = np.abs(x) >= FULL_SCALE
    for peak in (x.max(), x.min()):
        if peak != 0:
            clipped |= _long_runs(x == peak, FLAT_RUN)
    return float(np.count_nonzero(clipped)) / x.shape[0]


def level_dbfs(signal: ArrayLike) -> float:
    """RMS level in dBFS (20·log10 RMS), floored at :data:`~lfcc_gmm.speech.DIGITAL_SILENCE_DBFS`."""
    x = as_signal(signal)
    mean_square = float(np.mean(np.square(x))) if x.shape[0] else 0.0
    return max(DIGITAL_SILENCE_DBFS, 10 * math.log10(mean_square + 1e-20))


def longest_pause(speech: SpeechActivity) -> tuple[float, float]:
    """(start_s, end_s) of the longest stretch without speech, the file's start and end included.

    (0, 0) when the whole file is speech; the whole file when there is none.
    """
    edges = [0.0] + [t for region in speech.regions for t in region] + [speech.duration_s]
    pauses = list(zip(edges[::2], edges[1::2], strict=True))
    return max(pauses, key=lambda pause: pause[1] - pause[0])


def check_signal(
    signal: ArrayLike,
    sample_rate: int,
    speech: SpeechActivity,
    *,
    window_s: float | None = None,
    min_speech_s: float = MIN_SPEECH_S,
) -> list[Check]:
    """Findings about a recording (module docstring: codes, order and thresholds); [] when all is well.

    Parameters
    ----------
    signal : array_like
        The mono samples that were (or will be) scored, floats in [-1, 1].
    sample_rate : int
        Rate of ``signal``.
    speech : SpeechActivity
        :func:`~lfcc_gmm.speech.detect_speech` of this signal.
    window_s : float, optional
        The model's input window in seconds; the ``short`` check runs only when it is given.
    min_speech_s : float
        Less detected speech than this is ``no-speech``.

    Raises
    ------
    ValueError
        ``speech`` describes a signal of another length, or ``signal`` is not 1-D.
    """
    x = as_signal(signal)
    duration = x.shape[0] / sample_rate
    if abs(duration - speech.duration_s) > 1e-6:
        raise ValueError(f"the speech activity describes {speech.duration_s:.3f} s but the signal is {duration:.3f} s")
    checks = []
    has_speech = speech.speech_s >= min_speech_s
    if not has_speech:
        checks.append(Check("no-speech", f"no speech: {speech.speech_s:.2f} s detected, fewer than the "
                                         f"{min_speech_s:.2f} s required", speech.speech_s))
    share = clipped_share(x)
    if share >= CLIPPED_SHARE:
        checks.append(Check("clipped", f"{100 * share:.2g} % of samples are clipped (at full scale or flat "
                                       f"at the peak; reported from {100 * CLIPPED_SHARE:g} %)", share))
    if has_speech:
        level, what = level_dbfs(_speech_samples(x, sample_rate, speech)), "active speech level"
    else:
        level, what = level_dbfs(x), "overall level"
    if level < LOW_LEVEL_DBFS:
        shown = "digital silence" if level <= DIGITAL_SILENCE_DBFS else f"{level:.1f} dBFS"
        checks.append(Check("low-level", f"very low level: {what} is {shown}, below {LOW_LEVEL_DBFS:g} dBFS",
                            level))
    if window_s is not None and x.shape[0] < round(window_s * sample_rate):
        checks.append(Check("short", f"the file is {duration:.2f} s long, shorter than the model's {window_s:.2f} s "
                                     "window: it is padded by repetition", duration))
    if has_speech:
        start, end = longest_pause(speech)
        length = end - start
        if length > LONG_SILENCE_S or length > LONG_SILENCE_SHARE * duration:
            share = 100 * length / duration
            checks.append(Check("long-silence", f"a long stretch without speech: {length:.2f} s "
                                                f"({start:.2f}-{end:.2f} s, {share:.0f} % of the file)", length))
    return checks


def _long_runs(flags: np.ndarray, length: int) -> np.ndarray:
    """The flags that belong to a run of at least ``length`` consecutive True."""
    starts, stops = true_runs(flags)
    out = np.zeros_like(flags)
    for start, stop in zip(starts, stops, strict=True):
        if stop - start >= length:
            out[start:stop] = True
    return out


def _speech_samples(x: np.ndarray, sample_rate: int, speech: SpeechActivity) -> np.ndarray:
    parts = [x[round(a * sample_rate) : round(b * sample_rate)] for a, b in speech.regions]
    return np.concatenate(parts) if parts else x[:0]

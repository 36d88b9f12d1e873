"""A light speech-activity detector: voiced speech found by its harmonics, its moving pitch and its syllables.

Energy alone cannot tell speech from a tone, a hum or loud noise, so :func:`detect_speech` asks for cues that
only a voice has together. Every threshold is relative to the file, so the level of the recording does not
matter, except one absolute floor for digital silence. The steps, with the defaults of :class:`SpeechConfig`:

1. **Frames.** 80 ms Hann windows every 10 ms (``window_s``, ``hop_s``), each centred on the 10 ms interval
   it describes: mask frame ``i`` covers ``[i·hop, (i+1)·hop)``. 80 ms holds four periods of a 50 Hz voice
   and resolves the harmonics of low male voices. The FFT is not zero-padded: on a zero-padded grid the
   side lobes of a pure tone beat with the bins into a regular ripple that looks like harmonics.
2. **Harmonic comb** (periodicity across several harmonics). The log power spectrum minus its moving
   average over ±150 Hz (``smoothing_hz``) is clipped to ±10 dB (``contrast_clip_db``): formants and tilt
   go, and no single spectral peak can contribute more than 10 dB. For each candidate F0 from 50 to 400 Hz
   (``f0_min``, ``f0_max``; 32 per octave) the comb score is the mean over its harmonics k·F0 (up to
   2.5 kHz, ``harmonic_max_hz``, but at least 8 and at most 15 harmonics) of the level around the harmonic
   minus the mean level around the two half-way points, each read through a triangle of half-width F0/4.
   Voiced speech has peaks at every harmonic and valleys between them (8-15 dB). A pure tone fills one of
   the 8-15 slots and scores 1-2 dB, noise scores 2 dB on average; two or three tones that happen to sit
   on harmonics of one candidate (DTMF, a chord) can reach 4-7 dB in some frames, which step 6 answers.
   Half and double the true F0 score about zero, so the best candidate's F0 is reliable.
3. **Persistence.** A voice holds its pitch for tens of milliseconds, noise does not: the score of each
   candidate is averaged over ±50 ms (``smooth_s``), taking the best candidate within ±0.75 semitone
   (``smooth_f0_st``) at each frame, so that a gliding pitch keeps its score. This halves the spread of
   noise scores (their maximum over 21 minutes of white, pink and brown noise is 3.9 dB) and keeps speech
   in 10 dB SNR noise above the threshold. A frame is voiced when its score reaches ``voicing_db`` (4 dB).
4. **Level gates.** A voiced frame's 100-4000 Hz energy (``band_hz``) must be within ``relative_floor_db``
   (50 dB) of the file's loud frames (99th percentile): a faint harmonic background is not speech. The
   one absolute floor, ``absolute_floor_dbfs``, is :data:`DIGITAL_SILENCE_DBFS` (-200 dBFS, a mean square
   of 1e-20): far below the -96 dBFS of one 16-bit step, so any real recording is judged against itself.
5. **Voiced runs** (minimum duration, pitch continuity). Voiced frames are chained while F0 moves by at most
   ``max_f0_jump_st`` (2 semitones) from frame to frame; chains shorter than ``min_voiced_s`` (50 ms) are
   dropped, and with them the odd frame where noise lines up with a comb.
6. **Phrases.** Runs less than ``phrase_gap_s`` (1 s) apart form a phrase; intonation and rhythm belong to a
   phrase rather than to one syllable. A phrase is speech only if
   - its pitch moves (**pitch variation**): the 10th-90th percentile spread of F0 around the median of its
     own run, pooled over the phrase's runs, is at least ``min_f0_movement_st`` (0.4 semitone; speech
     measures 0.66 and more, most of it 1-3). Intonation moves the pitch inside every syllable; hum, a
     buzz, a click train, and tones switched from one pitch to the next (DTMF dialling, a sequence of
     chords) hold it steady while they sound (below 0.2 semitone, measured);
   - its band energy rises and falls at the syllable rate (**syllabic modulation**): the RMS of the 2-8 Hz
     band-pass (``modulation_hz``) of the log band energy over the phrase and ``modulation_context_s``
     (0.25 s) around it is at least ``min_modulation_db`` (1.5 dB). Speech measures 2.3 dB and more even in
     10 dB SNR noise; steady sources measure below 0.3 dB.
7. **Hangover and gaps.** Each run of a speech phrase grows, by at most ``hangover_s`` (0.25 s) each way,
   over the adjacent 10 ms intervals whose own energy is ``hangover_db`` (10 dB) above the file's noise
   floor (10th percentile of those energies, digital silence left out): unvoiced onsets and codas (/s/,
   /t/), never the background.
   Then gaps of at most ``max_gap_s`` (0.3 s) between speech are filled: closures and short pauses.

What it does not find: whispered speech (no pitch), speech far below 5 dB SNR, speech with a flat monotone
pitch (a constant-F0 synthesiser), and single words shorter than :data:`MIN_SPEECH_S`. What it may call
speech: other voices, such as singing. It works on a whole signal (file-relative thresholds); memory is
bounded by batches of frames plus a few numbers per 10 ms. Cost: one FFT per frame and one small matrix
product, about a thousand times real time on one core (``benchmarks/bench_speech.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, sosfiltfilt

from .blas import single_blas_thread

#: Below this much detected speech (seconds) a file's verdict is "no speech".
MIN_SPEECH_S = 0.5
#: Levels (dBFS, 10·log10 of a mean square) at or below this are digital silence.
DIGITAL_SILENCE_DBFS = -200.0

# Frames go through the FFT in batches of about this many samples, so memory does not grow with the file.
_BATCH_SAMPLES = 2**20


@dataclass(frozen=True)
class SpeechConfig:
    """Every parameter of :func:`detect_speech` (see the module docstring for why each is there).

    Times in seconds, frequencies in Hz, levels in dB.
    """

    hop_s: float = 0.010
    window_s: float = 0.080
    f0_min: float = 50.0
    f0_max: float = 400.0
    f0_steps_per_octave: int = 32
    max_harmonics: int = 15
    min_harmonics: int = 8
    harmonic_max_hz: float = 2500.0
    smoothing_hz: float = 150.0
    contrast_clip_db: float = 10.0
    voicing_db: float = 4.0
    smooth_s: float = 0.05
    smooth_f0_st: float = 0.75
    band_hz: tuple[float, float] = (100.0, 4000.0)
    relative_floor_db: float = 50.0
    absolute_floor_dbfs: float = DIGITAL_SILENCE_DBFS
    max_f0_jump_st: float = 2.0
    min_voiced_s: float = 0.05
    max_gap_s: float = 0.30
    phrase_gap_s: float = 1.0
    min_f0_movement_st: float = 0.4
    modulation_hz: tuple[float, float] = (2.0, 8.0)
    modulation_context_s: float = 0.25
    min_modulation_db: float = 1.5
    hangover_s: float = 0.25
    hangover_db: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.hop_s <= self.window_s:
            problems.append(f"need 0 < hop_s <= window_s, got {self.hop_s} and {self.window_s}")
        if not 0 < self.f0_min < self.f0_max:
            problems.append(f"need 0 < f0_min < f0_max, got {self.f0_min} and {self.f0_max}")
        if self.harmonic_max_hz < self.f0_max:
            problems.append(f"harmonic_max_hz {self.harmonic_max_hz} is below f0_max {self.f0_max}")
        if self.f0_steps_per_octave < 1 or self.max_harmonics < 1:
            problems.append("f0_steps_per_octave and max_harmonics must be >= 1")
        if not 0 <= self.band_hz[0] < self.band_hz[1]:
            problems.append(f"band_hz must be (low, high) with 0 <= low < high, got {self.band_hz}")
        if not 0 < self.modulation_hz[0] < self.modulation_hz[1]:
            problems.append(f"modulation_hz must be (low, high) with 0 < low < high, got {self.modulation_hz}")
        if self.modulation_hz[1] >= 0.5 / self.hop_s:
            problems.append(f"modulation_hz {self.modulation_hz} reaches the frame rate's Nyquist {0.5 / self.hop_s}")
        negative = [f.name for f in dataclasses.fields(self) if f.name.endswith(("_s", "_db", "_st", "_hz"))
                    and not isinstance(getattr(self, f.name), tuple) and getattr(self, f.name) < 0]
        if negative:
            problems.append(f"must not be negative: {', '.join(negative)}")
        if problems:
            raise ValueError("invalid speech detector setting: " + "; ".join(problems))


_DEFAULT = SpeechConfig()


def speech_config(**params: Any) -> SpeechConfig:
    """The default :class:`SpeechConfig` with ``params`` replaced; unknown names are an error."""
    if not params:
        return _DEFAULT  # built and checked once: most calls use the defaults
    fields = {f.name for f in dataclasses.fields(SpeechConfig)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise ValueError(f"unknown speech detector parameter(s) {unknown}; valid: {', '.join(sorted(fields))}")
    return SpeechConfig(**params)


@dataclass(frozen=True, eq=False)
class SpeechActivity:
    """Where a signal holds speech, on a grid of ``frame_s`` intervals.

    Attributes
    ----------
    frame_s : float
        Frame hop in seconds; ``mask[i]`` describes ``[i·frame_s, (i+1)·frame_s)``.
    mask : np.ndarray
        bool per frame, True = speech (read-only).
    regions : list of (float, float)
        (start_s, end_s) of each run of speech frames, in seconds; the last ends at ``duration_s`` at most.
    speech_s : float
        Total length of ``regions`` in seconds.
    duration_s : float
        Length of the analysed signal in seconds.
    f0 : np.ndarray or None
        Pitch in Hz of each frame found voiced (before the region checks), NaN elsewhere.
    """

    frame_s: float
    mask: np.ndarray
    regions: list[tuple[float, float]]
    speech_s: float
    duration_s: float
    f0: np.ndarray | None = None

    @classmethod
    def from_mask(
        cls, mask: ArrayLike, frame_s: float, duration_s: float | None = None, f0: np.ndarray | None = None
    ) -> SpeechActivity:
        """Build the regions and total of a frame mask; ``duration_s`` defaults to ``len(mask)·frame_s``."""
        mask = np.array(mask, dtype=bool)
        if mask.ndim != 1:
            raise ValueError(f"mask must be 1-D, got shape {mask.shape}")
        if not frame_s > 0:
            raise ValueError(f"frame_s must be positive, got {frame_s}")
        n = mask.shape[0]
        duration = n * frame_s if duration_s is None else float(duration_s)
        # The last frame may be partial: it holds the end of the signal, and nothing lies past it.
        if n and not (n - 1) * frame_s < duration <= n * frame_s * (1 + 1e-9):
            raise ValueError(f"{n} frames of {frame_s} s cannot describe {duration} s")
        mask.setflags(write=False)
        starts, stops = true_runs(mask)
        regions = [(float(a * frame_s), float(min(b * frame_s, duration))) for a, b in zip(starts, stops, strict=True)]
        return cls(frame_s=float(frame_s), mask=mask, regions=regions,
                   speech_s=float(sum(b - a for a, b in regions)), duration_s=duration, f0=f0)

    def fraction(self, start_s: float, end_s: float) -> float:
        """Share of ``[start_s, end_s)`` that is speech; time outside the signal counts as non-speech."""
        if not end_s > start_s:
            raise ValueError(f"need end_s > start_s, got [{start_s}, {end_s})")
        covered = sum(max(0.0, min(b, end_s) - max(a, start_s)) for a, b in self.regions)
        return covered / (end_s - start_s)


def detect_speech(signal: ArrayLike, sample_rate: int = 16000, **params: Any) -> SpeechActivity:
    """Find the speech in a mono signal.

    Parameters
    ----------
    signal : array_like
        1-D samples, float in [-1, 1]; the level does not matter (above digital silence).
    sample_rate : int
        Rate of ``signal`` in Hz (at least 8000).
    **params
        :class:`SpeechConfig` fields replacing the defaults.

    Returns
    -------
    SpeechActivity
        Mask on a grid of ``hop_s`` rounded to whole samples, merged regions, total speech, voiced F0.

    Raises
    ------
    ValueError
        A signal that is not 1-D or holds NaN/Inf, a rate below 8000 Hz, an unknown or invalid parameter.
    """
    config = speech_config(**params)
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D (mono) signal, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("the signal holds NaN or Inf samples")
    if sample_rate < 8000:
        raise ValueError(f"speech detection needs a sample rate of at least 8000 Hz, got {sample_rate}")
    plan = _plan(config, int(sample_rate))
    duration = x.shape[0] / sample_rate
    n_frames = -(-x.shape[0] // plan.hop)
    if n_frames == 0:
        return SpeechActivity.from_mask(np.zeros(0, bool), plan.frame_s, 0.0, np.zeros(0))

    score, f0, band_db = _frame_features(x, plan, n_frames)
    loud = float(np.percentile(band_db, 99))
    floor = max(loud - config.relative_floor_db, config.absolute_floor_dbfs)
    f0 = np.where((score >= config.voicing_db) & (band_db > floor), f0, np.nan)
    runs = _voiced_runs(f0, config.max_f0_jump_st, plan.frames(config.min_voiced_s))
    modulation = _syllabic_modulation(np.maximum(band_db, loud - config.relative_floor_db), plan.modulation_sos)
    hop_db = _hop_energy_db(x, plan.hop, n_frames)
    # The background is measured where there is signal at all: digital silence padded around a recording
    # would otherwise make its own background noise look loud enough to extend speech over.
    audible = hop_db[hop_db > config.absolute_floor_dbfs]
    threshold = float(np.percentile(audible, 10)) + config.hangover_db if audible.size else np.inf
    context = plan.frames(config.modulation_context_s)
    mask = np.zeros(n_frames, bool)
    for phrase in _phrases(runs, plan.frames(config.phrase_gap_s)):
        first, stop = phrase[0][0], phrase[-1][1]
        around = modulation[max(0, first - context) : stop + context]
        if (_pitch_movement(f0, phrase) >= config.min_f0_movement_st
                and np.sqrt(np.mean(around**2)) >= config.min_modulation_db):
            for start, end in phrase:
                start, end = _extend(hop_db, start, end, threshold, plan.frames(config.hangover_s))
                mask[start:end] = True
    _fill_gaps(mask, plan.frames(config.max_gap_s))
    f0.setflags(write=False)
    return SpeechActivity.from_mask(mask, plan.frame_s, duration, f0)


class _Plan:
    """What a config needs at one sample rate, built once."""

    def __init__(self, config: SpeechConfig, sample_rate: int):
        self.hop = max(1, int(round(config.hop_s * sample_rate)))
        self.frame_s = self.hop / sample_rate  # hop_s rounded to whole samples
        self.frames_per_s = sample_rate / self.hop
        # No zero-padding: sampled at the zero-padded grid, the side lobes of a pure tone's window response
        # beat with the bins into a regular ripple that a harmonic comb mistakes for a voice.
        self.length = scipy.fft.next_fast_len(int(round(config.window_s * sample_rate)), real=True)
        self.n_fft = self.length
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.length) / self.length)).astype(np.float32)
        bin_hz = sample_rate / self.n_fft
        nyquist = sample_rate / 2
        # Bins the comb reads: up to half a period past the highest harmonic of the highest candidate.
        top = min(max(config.harmonic_max_hz, config.min_harmonics * config.f0_max) + config.f0_max, nyquist)
        self.n_bins = int(math.ceil(top / bin_hz)) + 2
        self.band = (int(math.ceil(config.band_hz[0] / bin_hz)),
                     int(math.floor(min(config.band_hz[1], nyquist) / bin_hz)) + 1)
        self.smooth_bins = max(1, int(round(config.smoothing_hz / bin_hz)))
        self.n_used = max(self.n_bins, self.band[1])  # bins read at all
        n_candidates = int(math.floor(config.f0_steps_per_octave * math.log2(config.f0_max / config.f0_min))) + 1
        self.steps_per_octave = config.f0_steps_per_octave
        self.f0 = config.f0_min * 2.0 ** (np.arange(n_candidates) / config.f0_steps_per_octave)
        self.comb = _comb_matrix(self.f0, bin_hz, self.n_bins, config, nyquist).astype(np.float32)
        self.clip_db = config.contrast_clip_db
        self.smooth_frames = self.frames(config.smooth_s)
        self.modulation_sos = butter(2, config.modulation_hz, btype="bandpass", fs=self.frames_per_s, output="sos")
        self.smooth_steps = int(round(config.smooth_f0_st / 12 * config.f0_steps_per_octave))
        # Energies of a Hann-windowed frame relate to mean square through the window's energy.
        self.band_scale = 2.0 / (float(np.sum(self.window.astype(np.float64) ** 2)) * self.n_fft)


    def frames(self, seconds: float) -> int:
        """A duration in whole frames."""
        return int(round(seconds * self.frames_per_s))


@functools.lru_cache(maxsize=16)
def _plan(config: SpeechConfig, sample_rate: int) -> _Plan:
    return _Plan(config, sample_rate)


def _comb_matrix(f0: np.ndarray, bin_hz: float, n_bins: int, config: SpeechConfig, nyquist: float) -> np.ndarray:
    """(n_bins, n_candidates): ``levels @ comb`` = mean over harmonics of (peak - mean of the two half-way points).

    Each tooth is a triangle of half-width F0/4 rather than one point: averaging a few bins steadies the score
    of noise, most of all for high candidates, whose teeth are wide and few.
    """
    comb = np.zeros((n_bins, f0.shape[0]))
    offsets = np.linspace(-1.0, 1.0, 17)  # across a tooth, in units of its half-width
    shape = 1.0 - np.abs(offsets)
    shape /= shape.sum()
    for j, f in enumerate(f0):
        top = min(max(config.harmonic_max_hz, config.min_harmonics * f), nyquist - f)
        n_harmonics = max(1, min(config.max_harmonics, int(top // f)))
        for k in range(1, n_harmonics + 1):
            for multiple, weight in ((k, 1.0), (k - 0.5, -0.5), (k + 0.5, -0.5)):
                # Linear interpolation between the two bins around each point of the tooth.
                position = (multiple + offsets / 4) * f / bin_hz
                low = position.astype(int)
                frac = position - low
                share = weight * shape / n_harmonics
                np.add.at(comb[:, j], low, share * (1 - frac))
                np.add.at(comb[:, j], low + 1, share * frac)
    return comb


def _frame_features(x: np.ndarray, plan: _Plan, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best smoothed comb score (dB), its F0 (Hz) and band energy (dB, mean-square units) of every frame."""
    # float32 throughout: a detector's decisions do not need float64, and it halves the FFT and product.
    score = np.empty(n_frames, np.float32)
    best = np.empty(n_frames, np.float64)
    band_power = np.empty(n_frames, np.float32)
    margin = plan.smooth_frames
    batch = max(1, _BATCH_SAMPLES // plan.n_fft)
    with single_blas_thread():  # on a busy machine a second thread made the detector three times slower
        for start in range(0, n_frames, batch):
            stop = min(start + batch, n_frames)
            # Each batch reads ``margin`` frames beyond its ends so the time smoothing sees across batches.
            first, last = max(0, start - margin), min(n_frames, stop + margin)
            spectrum = scipy.fft.rfft(_frames(x, plan, first, last), axis=1, workers=1, overwrite_x=True)
            spectrum = spectrum[:, : plan.n_used]
            power = np.square(spectrum.real) + np.square(spectrum.imag)
            band_power[start:stop] = power[start - first : stop - first, plan.band[0] : plan.band[1]].sum(axis=1)
            raw = _contrast(power[:, : plan.n_bins], plan.smooth_bins, plan.clip_db) @ plan.comb
            smoothed = _smooth_scores(raw, plan.smooth_steps, margin)
            inside = slice(start - first, stop - first)
            score[start:stop], best[start:stop] = _peak(smoothed[inside], raw[inside], plan.smooth_steps)
    band_db = 10 * np.log10(band_power.astype(np.float64) * plan.band_scale + 1e-30)
    f0 = plan.f0[0] * 2.0 ** (best / plan.steps_per_octave)
    return score.astype(np.float64), f0, band_db


def _frames(x: np.ndarray, plan: _Plan, first: int, last: int) -> np.ndarray:
    """Windowed float32 frames ``first`` .. ``last - 1``, frame i centred on the hop interval i (zeros outside x)."""
    start = first * plan.hop - (plan.length - plan.hop) // 2
    stop = start + (last - first - 1) * plan.hop + plan.length
    segment = np.zeros(stop - start, np.float32)
    segment[max(0, -start) : min(stop, x.shape[0]) - start] = x[max(0, start) : min(stop, x.shape[0])]
    return np.lib.stride_tricks.sliding_window_view(segment, plan.length)[:: plan.hop] * plan.window


def _peak(smoothed: np.ndarray, raw: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best smoothed score, and the position of the raw comb's peak near it (fractional index).

    The smoothed scores are flat-topped (a maximum over neighbouring candidates), so the position comes
    from the raw scores: their largest value within ``reach`` candidates, refined by a parabola.
    """
    rows = np.arange(smoothed.shape[0])
    index = np.argmax(smoothed, axis=1)
    if reach:
        offsets = np.arange(-reach, reach + 1)
        near = np.clip(index[:, None] + offsets, 0, raw.shape[1] - 1)
        index = near[rows, np.argmax(raw[rows[:, None], near], axis=1)]
    inner = np.clip(index, 1, raw.shape[1] - 2)
    left, centre, right = (raw[rows, inner + d].astype(np.float64) for d in (-1, 0, 1))
    curvature = left - 2 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    # At the ends of the candidate range the maximum is not bracketed: keep the candidate itself.
    shift = np.where(index == inner, np.clip(shift, -0.5, 0.5), 0.0)
    return smoothed.max(axis=1), index + shift


def _smooth_scores(scores: np.ndarray, f0_steps: int, frames: int) -> np.ndarray:
    """Mean over ±``frames`` frames of the best score within ±``f0_steps`` candidates: a pitch that persists."""
    if f0_steps:
        # Shifted maxima: several times faster than scipy.ndimage.maximum_filter1d on these short rows.
        widened = scores.copy()
        for step in range(1, f0_steps + 1):
            np.maximum(widened[:, step:], scores[:, :-step], out=widened[:, step:])
            np.maximum(widened[:, :-step], scores[:, step:], out=widened[:, :-step])
        scores = widened
    if frames:
        scores = uniform_filter1d(scores, 2 * frames + 1, axis=0, mode="nearest")
    return scores


def _contrast(power: np.ndarray, half_width: int, clip_db: float) -> np.ndarray:
    """Log power minus its moving average over ±``half_width`` bins (edge bins repeated), clipped to ±``clip_db``."""
    # A floor relative to each frame keeps the result independent of the level (and finite for zeros).
    floor = 1e-10 * power.mean(axis=1, keepdims=True) + np.finfo(power.dtype).tiny
    levels = np.log10(power + floor)
    levels *= 10
    levels -= uniform_filter1d(levels, 2 * half_width + 1, axis=1, mode="nearest")
    return np.clip(levels, -clip_db, clip_db, out=levels)


def _hop_energy_db(x: np.ndarray, hop: int, n_frames: int) -> np.ndarray:
    """Mean square (dB) of each hop interval's own samples: exact time alignment for the hangover."""
    whole = x.shape[0] // hop
    rows = x[: whole * hop].reshape(whole, hop)
    mean_square = np.einsum("ij,ij->i", rows, rows) / hop
    if n_frames > whole:  # the last interval is partial
        tail = x[whole * hop :]
        mean_square = np.append(mean_square, np.dot(tail, tail) / tail.shape[0])
    return 10 * np.log10(mean_square + 1e-30)


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) indices of the runs of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _voiced_runs(f0: np.ndarray, max_jump_st: float, min_frames: int) -> list[tuple[int, int]]:
    """(start, stop) of the chains of voiced frames whose pitch moves by at most ``max_jump_st`` per frame."""
    linked = np.abs(np.diff(12 * np.log2(f0))) <= max_jump_st  # NaN (unvoiced) compares False
    starts, stops = true_runs(linked)  # links i .. j-1 chain frames i .. j
    return [(int(a), int(b) + 1) for a, b in zip(starts, stops, strict=True) if b + 1 - a >= max(1, min_frames)]


def _pitch_movement(f0: np.ndarray, phrase: list[tuple[int, int]]) -> float:
    """10th-90th percentile spread (semitones) of the pitch around the mean of its own run, over a phrase.

    Measured within runs, so that steady tones switched from one pitch to the next (DTMF dialling, a
    sequence of chords) do not count as movement.
    """
    starts, stops = np.array(phrase).T
    index = np.concatenate([np.arange(start, stop) for start, stop in phrase])
    semitones = 12 * np.log2(f0[index])
    means = np.add.reduceat(semitones, np.cumsum(stops - starts) - (stops - starts)) / (stops - starts)
    low, high = np.percentile(semitones - np.repeat(means, stops - starts), [10, 90])
    return float(high - low)


def _phrases(runs: list[tuple[int, int]], max_gap: int) -> list[list[tuple[int, int]]]:
    """The runs grouped into phrases: consecutive runs at most ``max_gap`` frames apart."""
    phrases: list[list[tuple[int, int]]] = []
    for run in runs:
        if phrases and run[0] - phrases[-1][-1][1] <= max_gap:
            phrases[-1].append(run)
        else:
            phrases.append([run])
    return phrases


def _syllabic_modulation(envelope_db: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """The zero-phase band-pass ``sos`` of a log energy envelope: its syllable-rate rise and fall, in dB."""
    if envelope_db.shape[0] <= 3 * 2 * sos.shape[0]:  # too short for sosfiltfilt's edge padding
        return np.zeros_like(envelope_db)
    return sosfiltfilt(sos, envelope_db - envelope_db.mean())


def _fill_gaps(mask: np.ndarray, max_gap: int) -> None:
    """Set the runs of False of at most ``max_gap`` frames that lie between two runs of True."""
    starts, stops = true_runs(~mask)
    for start, stop in zip(starts, stops, strict=True):
        if start > 0 and stop < mask.shape[0] and stop - start <= max_gap:
            mask[start:stop] = True


def _extend(hop_db: np.ndarray, first: int, stop: int, threshold: float, limit: int) -> tuple[int, int]:
    """Grow [first, stop) over adjacent frames above ``threshold``, at most ``limit`` frames each way."""
    for _ in range(limit):
        if first == 0 or hop_db[first - 1] < threshold:
            break
        first -= 1
    for _ in range(limit):
        if stop == hop_db.shape[0] or hop_db[stop] < threshold:
            break
        stop += 1
    return first, stop

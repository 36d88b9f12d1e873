"""Training augmentation: RawBoost, speed and tempo perturbation, and a seeded :class:`Augmenter`.

RawBoost follows Tak et al., "RawBoost: A Raw Data Boosting and Augmentation Method applied to Automatic
Speaker Verification Anti-Spoofing", ICASSP 2022, as released with their ASVspoof 2021 systems: the same
three noise types, parameter ranges, defaults and combinations (algorithms 1-8). Differences: randomness comes
from an explicit ``np.random.Generator``, and FIR filtering removes the exact group delay of the
(odd-length, linear-phase) filters, where the official code is off by one sample.

Everything is pure NumPy/SciPy and deterministic given the generator; an :class:`Augmenter` is a small
picklable object, so DataLoader workers can each hold a copy.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy.signal import fftconvolve, firwin, freqz, resample_poly

from lfcc_gmm import degrade, lossy_codecs
from lfcc_gmm.degrade import RngLike


@dataclass(frozen=True)
class RawBoostParams:
    """RawBoost parameters; the defaults are the official ones (``--nBands 5 --minF 20 ...``).

    Ranges are ``[min, max]`` drawn uniformly, except the FIR lengths, drawn from ``[min_coeffs, max_coeffs)``
    and made odd as in the official code.
    """

    n_bands: int = 5  # notch filters cascaded per filter bank
    min_freq: float = 20.0  # notch centre frequency, Hz
    max_freq: float = 8000.0
    min_bandwidth: float = 100.0  # notch width, Hz
    max_bandwidth: float = 1000.0
    min_coeffs: int = 10  # FIR length of each notch
    max_coeffs: int = 100
    min_gain_db: float = 0.0  # peak gain of the linear term's filter bank
    max_gain_db: float = 0.0
    min_bias_lin_nonlin: float = 5.0  # how much lower the non-linear terms' gain is, dB
    max_bias_lin_nonlin: float = 20.0
    n_f: int = 5  # highest power of the signal in the convolutive noise (1 = linear only)
    p_max: float = 10.0  # impulsive noise: at most this percentage of the samples is hit
    g_sd: float = 2.0  # impulsive noise gain
    snr_min: float = 10.0  # stationary noise SNR range, dB
    snr_max: float = 40.0


def _peak_normalise(x: np.ndarray) -> np.ndarray:
    """Scale down to a peak of 1 only when the peak exceeds 1 (the official ``normWav(x, 0)``)."""
    peak = np.max(np.abs(x), initial=0.0)
    return x / peak if peak > 1 else x


def notch_filter_bank(
    rng: np.random.Generator,
    params: RawBoostParams,
    sample_rate: int,
    gain_range_db: tuple[float, float],
) -> np.ndarray:
    """Taps of ``params.n_bands`` random FIR notch (band-stop) filters in cascade, peak gain from ``gain_range_db``.

    Each notch has a random centre, width and odd length (Hamming-window design); the cascade is scaled so
    that its peak magnitude response is the drawn gain.
    """
    nyquist = sample_rate / 2
    taps = np.ones(1)
    for _ in range(params.n_bands):
        centre = rng.uniform(params.min_freq, min(params.max_freq, nyquist))
        width = rng.uniform(params.min_bandwidth, params.max_bandwidth)
        length = int(rng.integers(params.min_coeffs, params.max_coeffs)) | 1  # band-stop FIRs need odd length
        low = max(centre - width / 2, 1e-3)
        high = min(centre + width / 2, nyquist - 1e-3)
        taps = np.convolve(taps, firwin(length, [low, high], window="hamming", fs=sample_rate))
    gain_db = rng.uniform(min(gain_range_db), max(gain_range_db))
    _, response = freqz(taps, 1, fs=sample_rate)
    return taps * 10.0 ** (gain_db / 20.0) / np.max(np.abs(response))


def _filter(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    # 'same' on an odd-length linear-phase filter removes its (integer) group delay exactly
    return fftconvolve(x, taps, mode="same")


def lnl_convolutive_noise(
    signal: np.ndarray, rng: RngLike = None, params: RawBoostParams = RawBoostParams(), sample_rate: int = 16000
) -> np.ndarray:
    """RawBoost (1): linear and non-linear convolutive noise.

    Sum over k = 1..n_f of signal^k filtered by its own random notch filter bank; the linear term's peak gain
    is drawn from [min_gain_db, max_gain_db], the higher-order terms' from that range lowered by
    [min_bias_lin_nonlin, max_bias_lin_nonlin]. The mean is removed and the result scaled to a peak of 1
    if it exceeds 1.
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(signal, dtype=np.float64)
    linear_gain = (params.min_gain_db, params.max_gain_db)
    nonlinear_gain = (
        params.min_gain_db - params.min_bias_lin_nonlin,
        params.max_gain_db - params.max_bias_lin_nonlin,
    )
    y = np.zeros_like(x)
    power = x
    for order in range(1, params.n_f + 1):
        taps = notch_filter_bank(rng, params, sample_rate, linear_gain if order == 1 else nonlinear_gain)
        y += _filter(power, taps)
        power = power * x
    return _peak_normalise(y - y.mean())


def isd_additive_noise(
    signal: np.ndarray, rng: RngLike = None, params: RawBoostParams = RawBoostParams()
) -> np.ndarray:
    """RawBoost (2): impulsive signal-dependent additive noise.

    A random share (uniform in [0, p_max] %) of the samples is hit: x[i] += g_sd · x[i] · (u1·u2), with
    u1, u2 uniform in [-1, 1]. The result is scaled to a peak of 1 if it exceeds 1.
    """
    rng = np.random.default_rng(rng)
    y = np.array(signal, dtype=np.float64)
    count = int(y.shape[0] * rng.uniform(0, params.p_max) / 100)
    hit = rng.choice(y.shape[0], size=count, replace=False)
    factor = rng.uniform(-1, 1, count) * rng.uniform(-1, 1, count)
    y[hit] += params.g_sd * y[hit] * factor
    return _peak_normalise(y)


def ssi_additive_noise(
    signal: np.ndarray, rng: RngLike = None, params: RawBoostParams = RawBoostParams(), sample_rate: int = 16000
) -> np.ndarray:
    """RawBoost (3): stationary signal-independent additive noise.

    White Gaussian noise coloured by a random notch filter bank, added at an SNR uniform in
    [snr_min, snr_max] dB (over the whole signal).
    """
    rng = np.random.default_rng(rng)
    x = np.asarray(signal, dtype=np.float64)
    taps = notch_filter_bank(rng, params, sample_rate, (params.min_gain_db, params.max_gain_db))
    noise = _filter(rng.standard_normal(len(x)), taps)
    return degrade.add_noise(x, noise, rng.uniform(params.snr_min, params.snr_max))


_STAGES: dict[str, Callable[[np.ndarray, np.random.Generator, RawBoostParams, int], np.ndarray]] = {
    "lnl": lambda x, rng, params, fs: lnl_convolutive_noise(x, rng, params, fs),
    "isd": lambda x, rng, params, fs: isd_additive_noise(x, rng, params),
    "ssi": lambda x, rng, params, fs: ssi_additive_noise(x, rng, params, fs),
}

# The official algorithm numbers: stages in series, except 8 (1 and 2 in parallel, summed).
RAWBOOST_ALGOS: dict[int, tuple[str, tuple[str, ...]]] = {
    0: ("series", ()),
    1: ("series", ("lnl",)),
    2: ("series", ("isd",)),
    3: ("series", ("ssi",)),
    4: ("series", ("lnl", "isd", "ssi")),
    5: ("series", ("lnl", "isd")),
    6: ("series", ("lnl", "ssi")),
    7: ("series", ("isd", "ssi")),
    8: ("parallel", ("lnl", "isd")),
}


def rawboost(
    signal: np.ndarray,
    algo: int,
    rng: RngLike = None,
    params: RawBoostParams = RawBoostParams(),
    sample_rate: int = 16000,
) -> np.ndarray:
    """Apply RawBoost algorithm ``algo`` (0 = none, 1-8 as in :data:`RAWBOOST_ALGOS`); same length out."""
    if algo not in RAWBOOST_ALGOS:
        raise ValueError(f"RawBoost algorithm must be one of {sorted(RAWBOOST_ALGOS)}, got {algo!r}")
    rng = np.random.default_rng(rng)
    x = np.asarray(signal, dtype=np.float64)
    mode, stages = RAWBOOST_ALGOS[algo]
    if mode == "parallel":
        return _peak_normalise(np.sum([_STAGES[stage](x, rng, params, sample_rate) for stage in stages], axis=0))
    y = x.copy()
    for stage in stages:
        y = _STAGES[stage](y, rng, params, sample_rate)
    return y


# ------------------------------------------------------------------------------------- speed and tempo
def speed_perturb(signal: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster by resampling (pitch and formants shift too); length ≈ n / factor.

    The factor is approximated by a fraction with denominator at most 100 (``resample_poly``).
    """
    if not factor > 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    ratio = Fraction(factor).limit_denominator(100)
    return resample_poly(np.asarray(signal, dtype=np.float64), ratio.denominator, ratio.numerator)


def tempo_perturb(
    signal: np.ndarray, factor: float, sample_rate: int = 16000, frame_ms: float = 20.0, tolerance_ms: float = 5.0
) -> np.ndarray:
    """Play ``factor`` times faster keeping the pitch (WSOLA); length = round(n / factor).

    Waveform-similarity overlap-add (Verhelst & Roelands 1993): Hann frames of ``frame_ms`` written every half
    frame; each analysis frame is taken within ±``tolerance_ms`` of its nominal place where it best continues
    the previous one (maximum cross-correlation), so periods line up and the pitch is kept.
    """
    if not factor > 0:
        raise ValueError(f"tempo factor must be positive, got {factor}")
    x = np.asarray(signal, dtype=np.float64)
    frame = 2 * max(int(round(frame_ms * sample_rate / 2000)), 1)
    hop = frame // 2
    tolerance = int(round(tolerance_ms * sample_rate / 1000))
    out_length = int(round(x.shape[0] / factor))
    n_frames = out_length // hop + 2
    # frame k nominally starts at k·hop·factor - hop in the signal; the padding keeps every search in range
    front = tolerance + hop
    back = int(math.ceil(n_frames * hop * factor)) + frame + 2 * tolerance
    padded = np.pad(x, (front, back))
    window = np.hanning(frame + 1)[:-1]  # periodic Hann: overlapping at half a frame it sums to one
    out = np.zeros(n_frames * hop + frame)
    position = tolerance
    for k in range(n_frames):
        if k > 0:
            template = padded[position + hop : position + hop + frame]
            start = int(round(k * hop * factor))  # nominal place minus the tolerance, in padded coordinates
            region = padded[start : start + frame + 2 * tolerance]
            position = start + int(np.argmax(np.correlate(region, template, mode="valid")))
        out[k * hop : k * hop + frame] += window * padded[position : position + frame]
    return out[hop : hop + out_length]


# ------------------------------------------------------------------------------------------------ Augmenter
SNR_RANGE_DB = (5.0, 30.0)
RT60_RANGE_S = (0.1, 0.6)
GAIN_RANGE_DB = (-10.0, 10.0)
CLIP_RANGE = (0.3, 0.9)  # clipping level as a fraction of the peak
SPEED_FACTORS = (0.9, 1.1)
TEMPO_FACTORS = (0.9, 1.1)


def _random_codec(x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Any codec of :data:`lfcc_gmm.lossy_codecs.CODECS` at a bit rate drawn from its ASVspoof 5 condition's range."""
    name = str(rng.choice(list(lossy_codecs.CODECS)))
    return lossy_codecs.round_trip(x, name, lossy_codecs.draw_bitrate(name, rng), sample_rate)


# Bare names in a spec draw their parameters at random from these ranges.
_RANDOM: dict[str, Callable[[np.ndarray, np.random.Generator, int], np.ndarray]] = {
    "noise": lambda x, rng, fs: degrade.add_white_noise(x, rng.uniform(*SNR_RANGE_DB), rng),
    "pink": lambda x, rng, fs: degrade.add_coloured_noise(x, rng.uniform(*SNR_RANGE_DB), 1.0, rng),
    "brown": lambda x, rng, fs: degrade.add_coloured_noise(x, rng.uniform(*SNR_RANGE_DB), 2.0, rng),
    "reverb": lambda x, rng, fs: degrade.add_reverb(x, rng.uniform(*RT60_RANGE_S), fs, rng=rng),
    "gain": lambda x, rng, fs: degrade.apply_gain(x, rng.uniform(*GAIN_RANGE_DB)),
    "clip": lambda x, rng, fs: degrade.clip(x, rng.uniform(*CLIP_RANGE) * np.max(np.abs(x))),
    "rawboost": lambda x, rng, fs: rawboost(x, int(rng.integers(1, 9)), rng, sample_rate=fs),
    "speed": lambda x, rng, fs: speed_perturb(x, rng.choice(SPEED_FACTORS)),
    "tempo": lambda x, rng, fs: tempo_perturb(x, rng.choice(TEMPO_FACTORS), fs),
    # A bare opus-wb, amr-nb, ... is the degrade condition that draws its bit rate; "codec" draws the codec too
    # (MP3 at random bit rates included, which a bare "mp3", libsndfile's, is not).
    "codec": _random_codec,
}


def _require_codecs(name: str) -> None:
    """Fail at parse time, not mid-training, when a random codec family cannot run here."""
    for codec in lossy_codecs.CODECS if name == "codec" else ():
        problem = lossy_codecs.unavailable(codec)
        if problem is not None:
            raise degrade.CodecUnavailableError(f"augmentation {name!r}: {codec} {problem}")

# Augmentations with a parameter that are not degrade conditions.
_WITH_PARAMETER: dict[str, Callable[[np.ndarray, np.random.Generator, int, float], np.ndarray]] = {
    "rawboost": lambda x, rng, fs, algo: rawboost(x, int(algo), rng, sample_rate=fs),
    "speed": lambda x, rng, fs, factor: speed_perturb(x, factor),
    "tempo": lambda x, rng, fs, factor: tempo_perturb(x, factor, fs),
}
_PARAMETER_CHECKS: dict[str, tuple[Callable[[float], bool], str]] = {
    "rawboost": (lambda v: v in RAWBOOST_ALGOS, f"a RawBoost algorithm, one of {sorted(RAWBOOST_ALGOS)}"),
    "speed": (lambda v: 0.5 <= v <= 2, "a speed factor in [0.5, 2]"),
    "tempo": (lambda v: 0.5 <= v <= 2, "a tempo factor in [0.5, 2]"),
}


@dataclass(frozen=True)
class _Choice:
    """One entry of an Augmenter spec: a random family (parameter None), a parametrised one, or a condition."""

    name: str
    parameter: float | None = None
    condition: degrade.Condition | None = None

    def __call__(self, x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
        if self.condition is not None:
            return self.condition(x, rng=rng, sample_rate=sample_rate)
        if self.parameter is None:
            return _RANDOM[self.name](x, rng, sample_rate)
        return _WITH_PARAMETER[self.name](x, rng, sample_rate, self.parameter)


def _parse_choice(item: str) -> _Choice:
    name, sep, value = item.partition(":")
    if not sep and name in _RANDOM:
        _require_codecs(name)
        return _Choice(name)
    if name in _WITH_PARAMETER:
        check, meaning = _PARAMETER_CHECKS[name]
        try:
            parameter = float(value)
        except ValueError:
            raise ValueError(f"augmentation {item!r}: {name} takes {meaning}") from None
        if not check(parameter):
            raise ValueError(f"augmentation {item!r}: {name} takes {meaning}")
        return _Choice(name, parameter)
    if name == "babble":
        raise ValueError("babble needs other utterances and is not available as an augmentation")
    try:
        return _Choice(item, condition=degrade.parse_condition(item))
    except ValueError as error:
        raise ValueError(
            f"augmentation {item!r}: {error}; random ones: {', '.join(_RANDOM)}, "
            f"or rawboost:<algo>, speed:<factor>, tempo:<factor>"
        ) from None


def item_seed(base_seed: int, epoch: int, item: int) -> np.random.SeedSequence:
    """The seed of one training example: independent streams for every (base seed, epoch, item index)."""
    return np.random.SeedSequence((base_seed, epoch, item))


def named_seed(base_seed: int, *names: str) -> np.random.SeedSequence:
    """Independent streams for every (base seed, names...), e.g. (seed, file ID, condition name).

    Unlike a position in a list, a name stays the same when the list is reordered, cut or extended. The names
    enter through SHA-256 of their JSON list (Python's ``hash`` of a string changes from one process to the next).
    """
    digest = hashlib.sha256(json.dumps(names).encode()).digest()
    return np.random.SeedSequence((base_seed, *np.frombuffer(digest, dtype="<u4").tolist()))


class Augmenter:
    """Draw one augmentation from a spec at random and apply it, with probability ``probability``.

    ``spec`` is comma-separated: bare names draw random parameters (``noise``, ``pink``, ``brown`` at an SNR
    in :data:`SNR_RANGE_DB`; ``reverb`` RT60 in :data:`RT60_RANGE_S`; ``gain``; ``clip``; ``speed``;
    ``tempo``; ``rawboost`` a random algorithm 1-8; ``opus-wb``, ``amr-nb``, ... a codec of
    :data:`lfcc_gmm.lossy_codecs.CODECS` at a bit rate from its ASVspoof 5 condition's range (the degrade
    condition of that name), and ``codec`` any of them); ``rawboost:5``, ``speed:1.1``, ``tempo:0.9`` fix the
    parameter; anything else is a fixed :func:`lfcc_gmm.degrade.parse_condition` (``noise:20``, ``mulaw``,
    ``amr-nb:7.95``, ``tel8k+mulaw``, …).
    Output lengths equal the input's except after ``speed`` and ``tempo``.

    Calls are deterministic given ``seed`` (see :func:`item_seed`); the object holds only the parsed spec,
    so it pickles cheaply.
    """

    def __init__(self, spec: str, probability: float = 1.0, sample_rate: int = 16000):
        if not 0 <= probability <= 1:
            raise ValueError(f"augmentation probability must be in [0, 1], got {probability}")
        items = [item.strip().lower() for item in spec.split(",")]
        if not all(items):
            raise ValueError(f"empty item in augmentation spec {spec!r}")
        self.spec = spec
        self.probability = probability
        self.sample_rate = sample_rate
        self.choices = tuple(_parse_choice(item) for item in items)

    def __repr__(self) -> str:
        return f"Augmenter({self.spec!r}, probability={self.probability}, sample_rate={self.sample_rate})"

    def __call__(
        self, signal: np.ndarray, seed: int | Sequence[int] | np.random.SeedSequence | np.random.Generator
    ) -> np.ndarray:
        """Augment one signal; ``seed`` is typically ``item_seed(base_seed, epoch, index)``."""
        rng = np.random.default_rng(seed)
        x = np.asarray(signal, dtype=np.float64)
        # a silent clip has no level to set noise or normalise against
        if rng.random() >= self.probability or not np.any(x):
            return x.copy()
        return self.choices[rng.integers(len(self.choices))](x, rng, self.sample_rate)

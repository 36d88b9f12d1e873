"""Signal degradations for robustness tests: noise, band-limiting, companding, codecs, gain, clipping, reverb.

Every function takes a 1-D signal (converted to float64, 16 kHz unless a ``sample_rate`` argument says
otherwise) and returns a new float64 signal of the same length. Random ones take ``rng``: a
``np.random.Generator`` or anything :func:`numpy.random.default_rng` accepts (an int seed gives
reproducible output; ``None`` draws fresh entropy, as in NumPy).

:func:`parse_condition` turns the CLI's condition strings (``"noise:20"``, ``"mulaw"``, ``"tel8k+mulaw"``)
into :class:`Condition` objects. The ASVspoof 5 codecs at a bit rate (``"opus-wb:12"``, ``"amr-nb:7.95"``,
``"mp3:64"``, ...) come from :mod:`lfcc_gmm.lossy_codecs`; a bare ``"opus-wb"``, ``"amr-nb"``, ... draws the bit
rate from its ASVspoof 5 condition's range with the condition's ``rng`` (a bare ``"mp3"`` is libsndfile's).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

import numpy as np
import soundfile as sf

from lfcc_gmm import lossy_codecs
from lfcc_gmm.audio import resample
from lfcc_gmm.pcm import CodecUnavailableError, as_signal, fit_length, to_pcm16

RngLike = np.random.Generator | np.random.SeedSequence | int | Sequence[int] | None

# Measured with the g722 package (libg722): its QMF analysis + synthesis pair delays the output by this
# many 16 kHz samples; the same at 64, 56 and 48 kbit/s.
G722_DELAY = 22
G722_BITRATES = (64000, 56000, 48000)

# libsndfile format/subtype pairs for the lossy codecs it may be built with.
_SNDFILE_CODECS = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}


def _energy(x: np.ndarray) -> float:
    # einsum rather than np.dot: a multithreaded BLAS dot pays a thread wake-up that dwarfs one sum of squares
    return float(np.einsum("i,i->", x, x))


# --------------------------------------------------------------------------------------------- additive noise
def add_noise(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Add ``noise`` scaled so that the SNR over the whole signal is exactly ``snr_db``.

    SNR = 10·log10(Σ signal² / Σ (scaled noise)²). A silent signal has no level to set the noise against
    and is returned unchanged (the limit of the formula).
    """
    x = as_signal(signal)
    noise = as_signal(noise)
    if noise.shape != x.shape:
        raise ValueError(f"noise has {noise.shape[0]} samples, the signal {x.shape[0]}")
    if not math.isfinite(snr_db):
        raise ValueError(f"SNR must be finite, got {snr_db}")
    noise_energy = _energy(noise)
    if noise_energy == 0.0:
        raise ValueError("the noise is silent: it cannot be scaled to an SNR")
    gain = math.sqrt(_energy(x) / noise_energy * 10.0 ** (-snr_db / 10.0))
    return x + gain * noise


def coloured_noise(n: int, exponent: float, rng: RngLike = None) -> np.ndarray:
    """Gaussian noise of unit RMS whose power spectral density falls as 1/f^exponent.

    0 = white, 1 = pink, 2 = brown (red); negative values give blue/violet noise. Shaped in the frequency
    domain; the DC bin is set to zero.
    """
    rng = np.random.default_rng(rng)
    if n == 0:
        return np.zeros(0)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    shape = np.zeros(spectrum.shape[0])
    shape[1:] = np.arange(1, spectrum.shape[0]) ** (-exponent / 2.0)
    spectrum *= shape
    noise = np.fft.irfft(spectrum, n)
    rms = math.sqrt(_energy(noise) / n)
    return noise / rms if rms > 0 else noise


def add_white_noise(signal: np.ndarray, snr_db: float, rng: RngLike = None) -> np.ndarray:
    """Add white Gaussian noise at ``snr_db`` (over the whole signal)."""
    x = as_signal(signal)
    return add_noise(x, np.random.default_rng(rng).standard_normal(len(x)), snr_db)


def add_coloured_noise(signal: np.ndarray, snr_db: float, exponent: float = 1.0, rng: RngLike = None) -> np.ndarray:
    """Add 1/f^exponent noise (see :func:`coloured_noise`) at ``snr_db``."""
    x = as_signal(signal)
    return add_noise(x, coloured_noise(x.shape[0], exponent, rng), snr_db)


def babble(others: Sequence[np.ndarray], n: int, rng: RngLike = None, n_talkers: int | None = None) -> np.ndarray:
    """Babble of ``n`` samples: the sum of several utterances, each brought to unit RMS.

    Each utterance is looped (or cropped) to ``n`` samples from a random start. ``n_talkers`` utterances are
    drawn from ``others`` without replacement; ``None`` uses all of them.
    """
    rng = np.random.default_rng(rng)
    if len(others) == 0:
        raise ValueError("babble needs at least one other utterance")
    n_talkers = len(others) if n_talkers is None else n_talkers
    if not 1 <= n_talkers <= len(others):
        raise ValueError(f"n_talkers must be between 1 and {len(others)} (the utterances given), got {n_talkers}")
    total = np.zeros(n)
    for index in rng.choice(len(others), size=n_talkers, replace=False):
        talker = as_signal(others[index])
        rms = math.sqrt(_energy(talker) / talker.shape[0]) if talker.shape[0] else 0.0
        if rms == 0.0:
            raise ValueError(f"babble utterance {index} is empty or silent")
        start = rng.integers(talker.shape[0])
        total += np.take(talker, np.arange(start, start + n), mode="wrap") / rms
    return total


def add_babble(
    signal: np.ndarray,
    others: Sequence[np.ndarray],
    snr_db: float,
    rng: RngLike = None,
    n_talkers: int | None = None,
) -> np.ndarray:
    """Add babble built from ``others`` (see :func:`babble`) at ``snr_db``."""
    x = as_signal(signal)
    return add_noise(x, babble(others, x.shape[0], rng, n_talkers), snr_db)


# ------------------------------------------------------------------------------------------- channel effects
@functools.lru_cache(maxsize=16)
def telephone_filter(sample_rate: int = 16000, low_hz: float = 300.0, high_hz: float = 3400.0) -> np.ndarray:
    """Taps of the linear-phase band-pass used by :func:`telephone_band` (odd length, read-only).

    Kaiser-window FIR: passband ``low_hz``–``high_hz`` with ripple below 0.1 dB, 40 dB stopband below
    ``low_hz - 100`` and above ``high_hz + 100`` Hz.
    """
    if not 0 < low_hz < high_hz < sample_rate / 2 - 100:
        raise ValueError(
            f"telephone band {low_hz}-{high_hz} Hz does not fit below the Nyquist frequency of {sample_rate} Hz"
        )
    # scipy.signal is imported where it is used: it takes about a second to import, and the command line reads
    # this module's list of conditions for its --help.
    from scipy.signal import firwin, kaiserord

    transition = 100.0
    numtaps, beta = kaiserord(40.0, transition / (sample_rate / 2))
    numtaps |= 1  # odd: an integer group delay that 'same' convolution removes exactly
    taps = firwin(
        numtaps,
        [low_hz - transition / 2, high_hz + transition / 2],
        window=("kaiser", beta),
        pass_zero=False,
        fs=sample_rate,
    )
    taps.setflags(write=False)
    return taps


def telephone_band(
    signal: np.ndarray, sample_rate: int = 16000, low_hz: float = 300.0, high_hz: float = 3400.0
) -> np.ndarray:
    """Band-limit to telephone bandwidth with a zero-phase (delay-compensated linear-phase) FIR band-pass.

    See :func:`telephone_filter` for the design. The sample rate is unchanged.
    """
    from scipy.signal import fftconvolve

    x = as_signal(signal)
    return fftconvolve(x, telephone_filter(sample_rate, low_hz, high_hz), mode="same")


def resample_round_trip(signal: np.ndarray, sample_rate: int = 16000, via_rate: int = 8000) -> np.ndarray:
    """Resample to ``via_rate`` and back (``scipy.signal.resample_poly``): removes content above via_rate/2."""
    x = as_signal(signal)
    y = resample(resample(x, sample_rate, via_rate), via_rate, sample_rate)
    return fit_length(y, x.shape[0])


def apply_gain(signal: np.ndarray, gain_db: float) -> np.ndarray:
    """Multiply by 10^(gain_db / 20)."""
    return as_signal(signal) * 10.0 ** (gain_db / 20.0)


def clip(signal: np.ndarray, level: float) -> np.ndarray:
    """Hard-clip to ±``level`` (absolute amplitude)."""
    if not level > 0:
        raise ValueError(f"clipping level must be positive, got {level}")
    return np.clip(as_signal(signal), -level, level)


def clip_fraction(signal: np.ndarray, fraction: float) -> np.ndarray:
    """Hard-clip at the level that the largest ``fraction`` of the samples (by magnitude) exceed."""
    if not 0 <= fraction < 1:
        raise ValueError(f"clipping fraction must be in [0, 1), got {fraction}")
    x = as_signal(signal)
    if x.shape[0] == 0 or fraction == 0:
        return x.copy()
    level = float(np.quantile(np.abs(x), 1.0 - fraction))
    return np.clip(x, -level, level)


# --------------------------------------------------------------------------------------------- reverberation
def synthetic_rir(rt60: float, sample_rate: int = 16000, drr_db: float = 0.0, rng: RngLike = None) -> np.ndarray:
    """A synthetic room impulse response: a unit direct path followed by an exponentially decaying noise tail.

    The tail is Gaussian noise under an envelope that falls by 60 dB in ``rt60`` seconds (where it ends);
    its energy is ``drr_db`` below the direct path's (direct-to-reverberant ratio).
    """
    if not rt60 > 0:
        raise ValueError(f"RT60 must be positive, got {rt60} s")
    rng = np.random.default_rng(rng)
    length = max(int(math.ceil(rt60 * sample_rate)), 1)
    decay = 3.0 * math.log(10.0) / rt60  # amplitude exp(-decay·t) is -60 dB at t = rt60
    tail = rng.standard_normal(length) * np.exp(-decay * np.arange(1, length + 1) / sample_rate)
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / _energy(tail))
    return np.concatenate([[1.0], tail])


def add_reverb(
    signal: np.ndarray, rt60: float, sample_rate: int = 16000, drr_db: float = 0.0, rng: RngLike = None
) -> np.ndarray:
    """Convolve with :func:`synthetic_rir` and rescale to the input's RMS.

    The direct path sits at lag 0, so the output is aligned with the input; the reverberant tail past the
    end of the signal is cut.
    """
    from scipy.signal import fftconvolve

    x = as_signal(signal)
    y = fftconvolve(x, synthetic_rir(rt60, sample_rate, drr_db, rng))[: x.shape[0]]
    out_energy = _energy(y)
    return y * math.sqrt(_energy(x) / out_energy) if out_energy > 0 else y


# ------------------------------------------------------------------------------------------ G.711 companding
# ITU-T G.711 on 16-bit PCM as in the ITU software tool library (G.191): negative samples use the one's
# complement, so the quantiser is symmetric; codes are the transmitted octets (bit 7 = sign, 1 = positive).
_MULAW_SEGMENT_STARTS = 64 << np.arange(7)  # biased 14-bit magnitude where segments 1..7 start
_ALAW_SEGMENT_STARTS = 32 << np.arange(7)  # 13-bit magnitude where segments 1..7 start


def _split_sign(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pcm = to_pcm16(as_signal(signal))
    positive = pcm >= 0
    return positive.astype(np.int32), np.where(positive, pcm, ~pcm)


def mulaw_encode(signal: np.ndarray) -> np.ndarray:
    """G.711 μ-law (μ = 255, 8 segments of 16 steps) codes, uint8, of a signal in [-1, 1)."""
    positive, magnitude = _split_sign(signal)
    biased = np.minimum((magnitude >> 2) + 33, 0x1FFF)
    segment = np.searchsorted(_MULAW_SEGMENT_STARTS, biased, side="right")
    mantissa = (biased >> (segment + 1)) & 0xF
    return ((~((segment << 4) | mantissa) & 0x7F) | (positive << 7)).astype(np.uint8)


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """Expand G.711 μ-law codes to float64 in [-1, 1) (each code's interval midpoint)."""
    codes = np.asarray(codes, dtype=np.int32)
    inverted = ~codes & 0x7F
    segment, mantissa = inverted >> 4, inverted & 0xF
    magnitude = ((2 * mantissa + 33) << segment) - 33
    return np.where(codes & 0x80, magnitude, -magnitude) / 8192.0


def alaw_encode(signal: np.ndarray) -> np.ndarray:
    """G.711 A-law (A = 87.6, 13-segment) codes, uint8 with the even bits inverted, of a signal in [-1, 1)."""
    positive, magnitude = _split_sign(signal)
    magnitude >>= 3
    segment = np.searchsorted(_ALAW_SEGMENT_STARTS, magnitude, side="right")
    mantissa = (magnitude >> np.maximum(segment, 1)) & 0xF
    return (((segment << 4) | mantissa | (positive << 7)) ^ 0x55).astype(np.uint8)


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """Expand G.711 A-law codes to float64 in [-1, 1) (each code's interval midpoint)."""
    codes = np.asarray(codes, dtype=np.int32) ^ 0x55
    segment, mantissa = (codes >> 4) & 0x7, codes & 0xF
    magnitude = np.where(segment == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(segment - 1, 0))
    return np.where(codes & 0x80, magnitude, -magnitude) / 32768.0


def mulaw(signal: np.ndarray) -> np.ndarray:
    """μ-law round trip: quantise through the 8-bit G.711 codes and expand."""
    return mulaw_decode(mulaw_encode(signal))


def alaw(signal: np.ndarray) -> np.ndarray:
    """A-law round trip: quantise through the 8-bit G.711 codes and expand."""
    return alaw_decode(alaw_encode(signal))


# ------------------------------------------------------------------------------------------------ codecs
def _g722_module() -> ModuleType:
    try:
        return importlib.import_module("G722")
    except ImportError as error:
        raise CodecUnavailableError(
            "G.722 needs the optional 'g722' package: pip install g722 (or pip install 'antispoof[dev]')"
        ) from error


def _sndfile_codec_supported(codec: str) -> bool:
    return sf.check_format(*_SNDFILE_CODECS[codec])


def available_codecs() -> tuple[str, ...]:
    """The codecs this installation can run: always ``mulaw`` and ``alaw``; ``g722``, ``mp3``, ``opus`` if able."""
    optional = {
        "g722": importlib.util.find_spec("G722") is not None,
        **{codec: _sndfile_codec_supported(codec) for codec in _SNDFILE_CODECS},
    }
    return ("mulaw", "alaw", *(codec for codec, available in optional.items() if available))


def g722_round_trip(signal: np.ndarray, sample_rate: int = 16000, bitrate: int = 64000) -> np.ndarray:
    """Encode with G.722 (wide-band ADPCM, 16 kHz) and decode; the output is aligned to the input.

    Needs the optional ``g722`` package. The codec's :data:`G722_DELAY` is removed by encoding the signal
    followed by that many zeros and dropping the first decoded samples.
    """
    if sample_rate != 16000:
        raise ValueError(f"G.722 codes 16 kHz audio; resample the {sample_rate} Hz signal first")
    if bitrate not in G722_BITRATES:
        raise ValueError(f"G.722 bit rate must be one of {G722_BITRATES}, got {bitrate}")
    codec = _g722_module()
    x = as_signal(signal)
    n = x.shape[0]
    # the codec works on sample pairs and drops an odd last sample: pad to an even length as well
    padded = np.pad(x, (0, G722_DELAY + (n + G722_DELAY) % 2))
    encoded = codec.G722(16000, bitrate).encode(to_pcm16(padded).astype(np.int16))
    decoded = np.asarray(codec.G722(16000, bitrate).decode(encoded), dtype=np.float64) / 32768.0
    return decoded[G722_DELAY : G722_DELAY + n]


def _sndfile_round_trip(
    codec: str, signal: np.ndarray, sample_rate: int, compression_level: float | None
) -> np.ndarray:
    file_format, subtype = _SNDFILE_CODECS[codec]
    if not _sndfile_codec_supported(codec):
        raise CodecUnavailableError(
            f"{codec} ({file_format}/{subtype}) is not supported by this libsndfile ({sf.__libsndfile_version__}); "
            f"available codecs: {', '.join(available_codecs())}"
        )
    x = as_signal(signal)
    buffer = io.BytesIO()
    try:
        sf.write(buffer, x, sample_rate, format=file_format, subtype=subtype, compression_level=compression_level)
        buffer.seek(0)
        decoded, _ = sf.read(buffer, dtype="float64")
    except sf.LibsndfileError as error:
        raise ValueError(f"{codec} round trip at {sample_rate} Hz failed in libsndfile: {error}") from error
    # libsndfile's decoders remove the encoder delay and padding, so only the length may need fixing
    return fit_length(decoded, x.shape[0])


def mp3_round_trip(signal: np.ndarray, sample_rate: int = 16000, compression_level: float | None = None) -> np.ndarray:
    """Encode as MP3 (libsndfile/LAME) and decode. ``compression_level`` in [0, 1): 0 = highest bit rate."""
    return _sndfile_round_trip("mp3", signal, sample_rate, compression_level)


def opus_round_trip(signal: np.ndarray, sample_rate: int = 16000, compression_level: float | None = None) -> np.ndarray:
    """Encode as Ogg/Opus (libsndfile) and decode. ``compression_level`` in [0, 1): 0 = highest bit rate."""
    return _sndfile_round_trip("opus", signal, sample_rate, compression_level)


# ------------------------------------------------------------------------------------------ condition strings
class _Context(NamedTuple):
    rng: np.random.Generator
    babble: Sequence[np.ndarray] | None
    sample_rate: int


def _given(parameter: float | None) -> float:
    # parse_condition always sets it for these kinds; a Condition built by hand may not.
    if parameter is None:
        raise ValueError("this degradation condition needs a parameter")
    return parameter


def _babble_condition(x: np.ndarray, snr_db: float | None, context: _Context) -> np.ndarray:
    if not context.babble:
        raise ValueError("the babble condition needs other utterances: pass babble=[array, ...]")
    return add_babble(x, context.babble, _given(snr_db), context.rng)


@dataclass(frozen=True)
class _Kind:
    apply: Callable[[np.ndarray, float | None, _Context], np.ndarray]
    parameter: str | None = None  # what the parameter means; None when the condition takes none
    valid: Callable[[float], bool] = math.isfinite
    codec: str | None = None  # an optional codec the condition needs
    optional: bool = False  # the parameter may be left out (apply then gets None)


_KINDS: dict[str, _Kind] = {
    "clean": _Kind(lambda x, p, c: x.copy()),
    "noise": _Kind(lambda x, p, c: add_white_noise(x, _given(p), c.rng), "SNR in dB"),
    "pink": _Kind(lambda x, p, c: add_coloured_noise(x, _given(p), 1.0, c.rng), "SNR in dB"),
    "brown": _Kind(lambda x, p, c: add_coloured_noise(x, _given(p), 2.0, c.rng), "SNR in dB"),
    "babble": _Kind(_babble_condition, "SNR in dB"),
    "telephone": _Kind(lambda x, p, c: telephone_band(x, c.sample_rate)),
    "tel8k": _Kind(lambda x, p, c: resample_round_trip(x, c.sample_rate, 8000)),
    "mulaw": _Kind(lambda x, p, c: mulaw(x), codec="mulaw"),
    "alaw": _Kind(lambda x, p, c: alaw(x), codec="alaw"),
    "g722": _Kind(lambda x, p, c: g722_round_trip(x, c.sample_rate), codec="g722"),
    "mp3": _Kind(lambda x, p, c: mp3_round_trip(x, c.sample_rate), codec="mp3"),
    "opus": _Kind(lambda x, p, c: opus_round_trip(x, c.sample_rate), codec="opus"),
    "gain": _Kind(lambda x, p, c: apply_gain(x, _given(p)), "gain in dB"),
    "clip": _Kind(
        lambda x, p, c: clip(x, _given(p) * np.max(np.abs(x))) if np.any(x) else x.copy(),
        "level as a fraction of the peak, in (0, 1]",
        lambda v: 0 < v <= 1,
    ),
    "clipfrac": _Kind(
        lambda x, p, c: clip_fraction(x, _given(p)), "fraction of samples clipped, in [0, 1)", lambda v: 0 <= v < 1
    ),
    # the upper bound catches RT60 given in milliseconds, which would build an impulse response of minutes
    "reverb": _Kind(
        lambda x, p, c: add_reverb(x, _given(p), c.sample_rate, rng=c.rng), "RT60 in seconds, in (0, 10]",
        lambda v: 0 < v <= 10,
    ),
}


def _codec_condition(x: np.ndarray, kbps: float | None, context: _Context, *, name: str) -> np.ndarray:
    """Codec ``name`` at ``kbps``; without it at a bit rate drawn from the ASVspoof 5 condition's range with the
    condition's generator (in a robustness run: per file, seeded by (seed, file ID, condition name))."""
    if kbps is None:
        kbps = lossy_codecs.draw_bitrate(name, context.rng)
    return lossy_codecs.round_trip(x, name, kbps, context.sample_rate)


def _mp3_condition(x: np.ndarray, kbps: float | None, context: _Context) -> np.ndarray:
    if kbps is None:
        return mp3_round_trip(x, context.sample_rate)
    return lossy_codecs.round_trip(x, "mp3", kbps, context.sample_rate)


# The codecs of the ASVspoof 5 evaluation set: opus-wb:12, amr-nb:7.95, mp3:64, ... at that bit rate, or a bare
# opus-wb, amr-nb, ... at a random one from the ASVspoof 5 range. A bare "mp3" keeps its meaning (libsndfile's LAME
# at its default quality).
_KINDS.update({
    name: _Kind(functools.partial(_codec_condition, name=name), f"bit rate in kbit/s, {lossy_codecs.bitrates(name)}",
                functools.partial(lossy_codecs.accepts, name), optional=True)
    for name in lossy_codecs.CODECS
})
_KINDS["mp3"] = dataclasses.replace(_KINDS["mp3"], apply=_mp3_condition, codec="mp3")
CONDITIONS = tuple(_KINDS)


def describe_conditions() -> str:
    """The conditions :func:`parse_condition` accepts, with what each parameter means, as one line.

    A parameter that may be left out is shown in brackets (``mp3[:<...>]``).
    """
    return ", ".join(
        name if kind.parameter is None else f"{name}[:<{kind.parameter}>]" if kind.optional
        else f"{name}:<{kind.parameter}>"
        for name, kind in _KINDS.items()
    )


@dataclass(frozen=True)
class Condition:
    """A parsed degradation condition: ``name`` is the string it came from, ``steps`` (kind, parameter) pairs.

    Calling it applies the steps in order: ``condition(signal, rng=None, babble=None, sample_rate=16000)``.
    """

    name: str
    steps: tuple[tuple[str, float | None], ...]

    def __call__(
        self,
        signal: np.ndarray,
        rng: RngLike = None,
        babble: Sequence[np.ndarray] | None = None,
        sample_rate: int = 16000,
    ) -> np.ndarray:
        context = _Context(np.random.default_rng(rng), babble, sample_rate)
        y = as_signal(signal)
        for kind, parameter in self.steps:
            y = _KINDS[kind].apply(y, parameter, context)
        return y


def _parse_step(text: str) -> tuple[str, float | None]:
    name, sep, value = text.partition(":")
    kind = _KINDS.get(name)
    if kind is None:
        raise ValueError(f"unknown condition {name!r}; available: {describe_conditions()}")
    if kind.parameter is None or (kind.optional and not sep):
        if sep:
            raise ValueError(f"condition {name!r} takes no parameter, got {text!r}")
        parameter = None
    else:
        try:
            parameter = float(value)
        except ValueError:
            raise ValueError(
                f"condition {name!r} needs a parameter ({kind.parameter}), e.g. {name}:10; got {text!r}"
            ) from None
        if not (math.isfinite(parameter) and kind.valid(parameter)):
            raise ValueError(f"bad parameter in {text!r}: {name} takes the {kind.parameter}")
    # A bare mp3 is libsndfile's (kind.codec); every other use of an ASVspoof 5 codec runs lossy_codecs.
    if name in lossy_codecs.CODECS and (parameter is not None or kind.codec is None):
        problem = lossy_codecs.unavailable(name)
        if problem is not None:
            raise CodecUnavailableError(f"condition {text!r}: {problem}")
    elif kind.codec is not None and kind.codec not in available_codecs():
        if kind.codec == "g722":
            _g722_module()
        raise CodecUnavailableError(
            f"condition {name!r}: {kind.codec} is not supported by this libsndfile ({sf.__libsndfile_version__}); "
            f"available codecs: {', '.join(available_codecs())}"
        )
    return name, parameter


def parse_condition(text: str) -> Condition:
    """Parse one condition: ``"noise:20"``, ``"mulaw"``, … or several chained with ``+`` (``"tel8k+mulaw"``).

    Raises ``ValueError`` listing the available conditions for an unknown name or a bad parameter, and
    :class:`CodecUnavailableError` for a codec this installation cannot run.
    """
    name = text.strip().lower()
    if not name:
        raise ValueError(f"empty condition; available: {describe_conditions()}")
    return Condition(name, tuple(_parse_step(step.strip()) for step in name.split("+")))


def parse_conditions(text: str) -> list[Condition]:
    """Parse a comma-separated list of conditions, e.g. ``"clean,noise:20,tel8k+mulaw"``."""
    return [parse_condition(part) for part in text.split(",")]

"""The lossy codecs of the ASVspoof 5 evaluation set as round trips on arrays: encode at a bit rate, decode.

Every function takes a 1-D float signal (16 kHz unless ``sample_rate`` says otherwise) and returns a float64
signal of the same length, aligned with the input: the encoder's delay and padding are removed, so a sample of
the output sits where its source sample sat. Narrow-band codecs run at 8 kHz: the signal is resampled there and
back (:func:`lfcc_gmm.audio.resample`, zero-phase), so everything above 4 kHz is gone. Codecs are deterministic.

Encoders (nothing is downloaded at run time):

- PyAV (``pip install av``, in the ``codecs`` and ``dev`` extras) bundles FFmpeg with libopus (Opus), OpenCORE
  AMR-NB, LAME (MP3) and FFmpeg's native AAC encoder (M4A), and the decoders of all of them and of AMR-WB.
- Its wheels have no AMR-WB or Speex encoder: those use the reference libraries through ctypes, VisualOn
  AMR-WB (``libvo-amrwbenc``, decoded by FFmpeg's AMR-WB decoder) and Speex (``libspeex``, both ways). On
  Debian/Ubuntu: ``apt-get install libvo-amrwbenc0 libspeex1`` (``make install`` does it when run as root).

:data:`CODECS` lists each codec with its sample rate, the bit rates it takes, the ASVspoof 5 evaluation condition
it stands for and that condition's bit-rate range: C01 Opus, C02 AMR-WB, C03 Speex, C05 MP3, C06 M4A in wide
band; C08 Opus, C09 AMR-NB, C10 Speex in narrow band. The neural codec of C04 and C07 (EnCodec) is not here: no
maintained package ships its weights, and fetching them at run time is not allowed in this toolkit.

Source of the ranges. The organisers describe the conditions in Wang et al., "ASVspoof 5: crowdsourced speech
data, deepfakes, and adversarial attacks at scale", ASVspoof 2024 workshop (doi:10.21437/ASVspoof.2024-1), and
Wang et al., "ASVspoof 5: Design, collection and validation of resources for spoofing, deepfake, and adversarial
attack detection using crowdsourced speech", Computer Speech & Language 95, 2025 (doi:10.1016/j.csl.2025.101825);
the database README sends readers to ``ASVspoof5.codec.config.csv`` (in ``ASVspoof5_protocols.tar.gz``) for the
bit rate of each codec and quality level (``CODEC_Q`` 1-5, lowest to highest). Neither paper's codec table nor the
CSV could be read where this was written; the ranges below are those of a public summary of the CSV
(github.com/Jmqcooper1/asvspoof5-domain-invariant-cm, ``docs/asvspoof5_domains.md`` at commit 702c607): Opus
6-30 (WB) and 4-20 (NB), AMR 6.6-23.05 (WB; the summary rounds it to 23) and 4.75-12.2 (NB), Speex 5.75-34.2
(WB) and 3.95-24.6 (NB), MP3 45-260, M4A 16-128 kbit/s. Only the two ends are known, not the five levels between
them, so random draws (:func:`draw_bitrate`) are uniform over a range, or over the codec's modes inside it.
Check the CSV of your copy of the database before relying on exact rates.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from lfcc_gmm.audio import resample
from lfcc_gmm.pcm import CodecUnavailableError, as_signal, fit_length, to_pcm16

# Bit rates (kbit/s) of the codecs' modes. AMR: 3GPP TS 26.071 / 26.171. Speex: the distinct rates of quality
# 0-10 as libspeex 1.2 reports them (SPEEX_GET_BITRATE), narrow band then wide band.
AMR_NB_MODES = (4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2)
AMR_WB_MODES = (6.6, 8.85, 12.65, 14.25, 15.85, 18.25, 19.85, 23.05, 23.85)
SPEEX_NB_MODES = (2.15, 3.95, 5.95, 8.0, 11.0, 15.0, 18.2, 24.6)
SPEEX_WB_MODES = (3.95, 5.75, 7.75, 9.8, 12.8, 16.8, 20.6, 23.8, 27.8, 34.2, 42.2)

# Delays (in samples at the codec's rate) of the encoder + decoder pairs whose output carries them, measured by
# cross-correlating speech with its round trip; the same at every mode. AMR-NB: the encoder's 5 ms look-ahead.
# AMR-WB: look-ahead and the decoder's resampling filters. Speex: twice the encoder look-ahead in narrow band
# (40 samples), plus the QMF band-split in wide band. Opus, MP3 and M4A go through containers (Ogg pre-skip,
# LAME's encoder-delay tag, the MP4 edit list) from which FFmpeg removes the delay itself.
AMR_NB_DELAY = 40
AMR_WB_DELAY = 95
SPEEX_NB_DELAY = 80
SPEEX_WB_DELAY = 223


@dataclass(frozen=True)
class Codec:
    """One codec condition.

    Attributes
    ----------
    name : the condition name (``opus-wb:KBPS``, ...).
    description : one line: codec, band, encoder.
    rate : sample rate the codec runs at (8000 narrow band, 16000 wide band).
    kbps : the lowest and highest bit rate it takes, kbit/s.
    modes : the bit rates of a codec with fixed modes (the bit rate must be one of them); empty otherwise.
    asvspoof5 : the ASVspoof 5 evaluation condition it stands for.
    asvspoof5_kbps : that condition's bit-rate range, kbit/s (random augmentation draws from it).
    """

    name: str
    description: str
    rate: int
    kbps: tuple[float, float]
    modes: tuple[float, ...]
    asvspoof5: str
    asvspoof5_kbps: tuple[float, float]


CODECS: dict[str, Codec] = {
    "opus-wb": Codec("opus-wb", "Opus, wide band (16 kHz), libopus via PyAV", 16000, (6.0, 256.0), (), "C01",
                     (6.0, 30.0)),
    "amr-wb": Codec("amr-wb", "AMR-WB (16 kHz), VisualOn encoder (libvo-amrwbenc), FFmpeg decoder", 16000,
                    (6.6, 23.85), AMR_WB_MODES, "C02", (6.6, 23.05)),
    "speex-wb": Codec("speex-wb", "Speex, wide band (16 kHz), libspeex", 16000, (3.95, 42.2), SPEEX_WB_MODES,
                      "C03", (5.75, 34.2)),
    # MPEG-2 layer III at 16 kHz tops out at 160 kbit/s, and FFmpeg's AAC at 16 kHz mono at 96: above that the
    # encoders would silently clamp, so such rates are refused (random draws stop there too).
    "mp3": Codec("mp3", "MP3 (16 kHz, CBR), LAME via PyAV", 16000, (8.0, 160.0), (), "C05", (45.0, 260.0)),
    "m4a": Codec("m4a", "AAC-LC in MP4 (16 kHz), FFmpeg's AAC encoder via PyAV", 16000, (8.0, 96.0), (), "C06",
                 (16.0, 128.0)),
    "opus-nb": Codec("opus-nb", "Opus, narrow band (8 kHz), libopus via PyAV", 8000, (4.0, 128.0), (), "C08",
                     (4.0, 20.0)),
    "amr-nb": Codec("amr-nb", "AMR-NB (8 kHz), OpenCORE encoder via PyAV", 8000, (4.75, 12.2), AMR_NB_MODES, "C09",
                    (4.75, 12.2)),
    "speex-nb": Codec("speex-nb", "Speex, narrow band (8 kHz), libspeex", 8000, (2.15, 24.6), SPEEX_NB_MODES, "C10",
                      (3.95, 24.6)),
}


def bitrates(name: str) -> str:
    """The bit rates codec ``name`` takes, in words (for help texts and errors)."""
    codec = CODECS[name]
    if codec.modes:
        return "one of " + ", ".join(f"{mode:g}" for mode in codec.modes)
    return f"{codec.kbps[0]:g} to {codec.kbps[1]:g}"


def accepts(name: str, kbps: float) -> bool:
    """Whether codec ``name`` takes the bit rate ``kbps`` (kbit/s)."""
    codec = CODECS[name]
    if codec.modes:
        return any(abs(kbps - mode) < 1e-9 for mode in codec.modes)
    return codec.kbps[0] <= kbps <= codec.kbps[1]


def available() -> tuple[str, ...]:
    """The codecs of :data:`CODECS` this installation can run."""
    return tuple(name for name in CODECS if unavailable(name) is None)


def describe() -> str:
    """One line per codec condition: its syntax, codec, band, encoder, bit rates and ASVspoof 5 condition."""
    return "\n".join(
        f"{name + ':KBPS':<14} {codec.description}; {bitrates(name)} kbit/s "
        f"(ASVspoof 5 {codec.asvspoof5}: {codec.asvspoof5_kbps[0]:g}-{codec.asvspoof5_kbps[1]:g})"
        for name, codec in CODECS.items()
    )


def draw_bitrate(name: str, rng: np.random.Generator) -> float:
    """A random bit rate of codec ``name`` in its ASVspoof 5 condition's range: one of the modes there, or
    uniform over the range (kbit/s)."""
    codec = CODECS[name]
    low, high = max(codec.asvspoof5_kbps[0], codec.kbps[0]), min(codec.asvspoof5_kbps[1], codec.kbps[1])
    if codec.modes:
        return float(rng.choice([mode for mode in codec.modes if low <= mode <= high]))
    return float(rng.uniform(low, high))


def check_bitrate(name: str, kbps: float) -> None:
    """Raise ``ValueError`` (saying what is allowed) unless codec ``name`` takes ``kbps``."""
    if not accepts(name, kbps):
        raise ValueError(f"{name} takes a bit rate of {bitrates(name)} kbit/s, got {kbps:g}")


def round_trip(signal: np.ndarray, name: str, kbps: float, sample_rate: int = 16000) -> np.ndarray:
    """Encode ``signal`` with codec ``name`` (a key of :data:`CODECS`) at ``kbps`` kbit/s and decode it.

    Returns float64 of the input's length at ``sample_rate``, aligned with the input.

    Raises
    ------
    ValueError
        unknown codec or a bit rate it does not take.
    CodecUnavailableError
        the encoder is not installed (the message says how to install it).
    """
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; available: {', '.join(CODECS)}")
    check_bitrate(name, kbps)
    problem = unavailable(name)
    if problem is not None:
        raise CodecUnavailableError(f"{name}: {problem}")
    codec = CODECS[name]
    x = as_signal(signal)
    if x.shape[0] == 0:
        return x.copy()
    pcm = to_pcm16(resample(x, sample_rate, codec.rate)).astype(np.int16)
    bit_rate = int(round(kbps * 1000))
    if name in _PYAV_ENCODERS:
        decoded = _pyav_round_trip(pcm, codec.rate, bit_rate, *_PYAV_ENCODERS[name])
    elif name == "amr-wb":
        decoded = _amr_wb_round_trip(pcm, codec.rate, bit_rate)
    else:
        decoded = _speex_round_trip(pcm, codec.rate, bit_rate)
    return fit_length(resample(decoded, codec.rate, sample_rate), x.shape[0])


def unavailable(name: str) -> str | None:
    """Why codec ``name`` cannot run here (with how to install what it needs), or None when it can."""
    if name in _PYAV_ENCODERS:
        return _pyav_problem(_PYAV_ENCODERS[name][0])
    if name == "amr-wb":
        return _pyav_problem(None) or _library_problem("vo-amrwbenc")
    return _library_problem("speex")


def missing_system_packages() -> list[str]:
    """The Debian/Ubuntu packages of the reference libraries (:data:`SYSTEM_LIBRARIES`) that cannot be loaded here;
    ``make install`` installs them with apt-get when it runs as root."""
    return [package for name, (_, package) in SYSTEM_LIBRARIES.items() if _library_problem(name) is not None]


# ---------------------------------------------------------------------------------------------------- PyAV
#: codec name → (FFmpeg encoder, container, delay the decoder output keeps, in samples at the codec's rate)
_PYAV_ENCODERS = {
    "opus-wb": ("libopus", "ogg", 0),
    "opus-nb": ("libopus", "ogg", 0),
    "mp3": ("libmp3lame", "mp3", 0),
    "m4a": ("aac", "mp4", 0),
    "amr-nb": ("libopencore_amrnb", "amr", AMR_NB_DELAY),
}


@functools.cache
def _pyav_problem(encoder: str | None) -> str | None:
    try:
        import av
    except ImportError:
        return "needs PyAV: pip install av (or pip install 'antispoof[codecs]')"
    if encoder is not None and encoder not in av.codecs_available:
        return f"this PyAV ({av.__version__}) has no {encoder} encoder; reinstall PyAV from its wheels (pip install av)"
    return None


def _pyav_round_trip(pcm: np.ndarray, rate: int, bit_rate: int, encoder: str, container: str,
                     delay: int) -> np.ndarray:
    import av

    # A codec whose decoder output keeps the delay gets that many zeros more, so the whole signal comes back.
    padded = np.concatenate([pcm, np.zeros(delay, np.int16)])
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream: Any = output.add_stream(encoder, rate=rate)
        stream.bit_rate = bit_rate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(padded[None, :], format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        for packet in (*stream.encode(frame), *stream.encode(None)):
            output.mux(packet)
    return _pyav_decode(buffer.getvalue(), container, rate)[delay:]


def _pyav_decode(data: bytes, container: str, rate: int) -> np.ndarray:
    """Decode a mono file in memory to float64 at ``rate`` (Opus decoders always give 48 kHz)."""
    import av

    parts, decoded_rate = [], rate
    with av.open(io.BytesIO(data), "r", format=container) as source:
        for frame in source.decode(audio=0):
            samples = frame.to_ndarray().reshape(-1)
            parts.append(samples / 32768.0 if samples.dtype == np.int16 else samples.astype(np.float64))
            decoded_rate = frame.sample_rate
    decoded = np.concatenate(parts) if parts else np.zeros(0)
    return resample(decoded, decoded_rate, rate)


# ------------------------------------------------------------------------------------- reference libraries
#: The reference libraries read through ctypes: name (as ``ctypes.util.find_library`` takes it) → (the soname
#: Debian/Ubuntu install, their package).
SYSTEM_LIBRARIES = {"vo-amrwbenc": ("libvo-amrwbenc.so.0", "libvo-amrwbenc0"), "speex": ("libspeex.so.1", "libspeex1")}


def _library_problem(library: str) -> str | None:
    try:
        _library(library)
    except OSError:
        return (f"needs the {library} library, which is not installed: apt-get install {SYSTEM_LIBRARIES[library][1]} "
                "(make install does it when run as root), or your system's package of it")
    return None


@functools.cache
def _library(name: str) -> ctypes.CDLL:
    # find_library reads the ldconfig cache (or asks a compiler); where neither helps, dlopen of the soname still
    # searches the standard library folders, so a library counts as absent only when neither finds it.
    found = ctypes.util.find_library(name)
    for candidate in ([found] if found else []) + [SYSTEM_LIBRARIES[name][0]]:
        try:
            return _declare(name, ctypes.CDLL(candidate))
        except OSError:
            continue
    raise OSError(f"lib{name} not found")


class _SpeexBits(ctypes.Structure):
    # speex/speex_bits.h
    _fields_ = [("chars", ctypes.c_char_p), ("nbBits", ctypes.c_int), ("charPtr", ctypes.c_int),
                ("bitPtr", ctypes.c_int), ("owner", ctypes.c_int), ("overflow", ctypes.c_int),
                ("buf_size", ctypes.c_int), ("reserved1", ctypes.c_int), ("reserved2", ctypes.c_void_p)]


_SHORTS = ctypes.POINTER(ctypes.c_short)
_BITS = ctypes.POINTER(_SpeexBits)


def _declare(name: str, lib: ctypes.CDLL) -> ctypes.CDLL:
    """Set the C signatures of the functions used (ctypes would otherwise truncate pointers to int)."""
    void_p, c_int = ctypes.c_void_p, ctypes.c_int
    signatures: dict[str, tuple[Any, list[Any]]]
    if name == "vo-amrwbenc":  # enc_if.h
        signatures = {
            "E_IF_init": (void_p, []),
            "E_IF_encode": (c_int, [void_p, c_int, _SHORTS, ctypes.POINTER(ctypes.c_ubyte), c_int]),
            "E_IF_exit": (None, [void_p]),
        }
    else:  # speex.h, speex_bits.h
        signatures = {
            "speex_lib_get_mode": (void_p, [c_int]),
            "speex_encoder_init": (void_p, [void_p]),
            "speex_decoder_init": (void_p, [void_p]),
            "speex_encoder_ctl": (c_int, [void_p, c_int, void_p]),
            "speex_encode_int": (c_int, [void_p, _SHORTS, _BITS]),
            "speex_decode_int": (c_int, [void_p, _BITS, _SHORTS]),
            "speex_bits_init": (None, [_BITS]),
            "speex_bits_reset": (None, [_BITS]),
            "speex_bits_destroy": (None, [_BITS]),
            "speex_bits_write": (c_int, [_BITS, ctypes.c_char_p, c_int]),
            "speex_bits_read_from": (None, [_BITS, ctypes.c_char_p, c_int]),
            "speex_encoder_destroy": (None, [void_p]),
            "speex_decoder_destroy": (None, [void_p]),
        }
    for function, (restype, argtypes) in signatures.items():
        getattr(lib, function).restype = restype
        getattr(lib, function).argtypes = argtypes
    return lib


def _frames(pcm: np.ndarray, size: int, delay: int) -> np.ndarray:
    """``pcm`` followed by ``delay`` zeros, zero-padded to whole frames of ``size``: (n_frames, size) int16."""
    n = pcm.shape[0] + delay
    return np.ascontiguousarray(np.pad(pcm, (0, -(-n // size) * size - pcm.shape[0])).reshape(-1, size))


def _amr_wb_round_trip(pcm: np.ndarray, rate: int, bit_rate: int) -> np.ndarray:
    lib = _library("vo-amrwbenc")
    mode = AMR_WB_MODES.index(bit_rate / 1000)
    out = ctypes.create_string_buffer(64)  # a 23.85 kbit/s frame is 61 bytes with its header
    packets = [b"#!AMR-WB\n"]  # the storage format (RFC 4867 §5) that FFmpeg's amr demuxer reads
    state = lib.E_IF_init()
    try:
        for frame in _frames(pcm, 320, AMR_WB_DELAY):
            size = lib.E_IF_encode(state, mode, frame.ctypes.data_as(_SHORTS),
                                   ctypes.cast(out, ctypes.POINTER(ctypes.c_ubyte)), 0)
            packets.append(out.raw[:size])
    finally:
        lib.E_IF_exit(state)
    return _pyav_decode(b"".join(packets), "amr", rate)[AMR_WB_DELAY:]


_SPEEX_SET_BITRATE, _SPEEX_GET_FRAME_SIZE = 18, 3


def _speex_round_trip(pcm: np.ndarray, rate: int, bit_rate: int) -> np.ndarray:
    lib = _library("speex")
    mode = lib.speex_lib_get_mode(0 if rate == 8000 else 1)  # SPEEX_MODEID_NB, SPEEX_MODEID_WB
    delay = SPEEX_NB_DELAY if rate == 8000 else SPEEX_WB_DELAY
    encoder, decoder = lib.speex_encoder_init(mode), lib.speex_decoder_init(mode)
    bits = _SpeexBits()
    lib.speex_bits_init(ctypes.byref(bits))
    try:
        # The encoder takes the highest mode whose rate does not exceed this, which is this (a mode's rate).
        value = ctypes.c_int(bit_rate)
        lib.speex_encoder_ctl(encoder, _SPEEX_SET_BITRATE, ctypes.byref(value))
        frame_size = ctypes.c_int()
        lib.speex_encoder_ctl(encoder, _SPEEX_GET_FRAME_SIZE, ctypes.byref(frame_size))
        frames = _frames(pcm, frame_size.value, delay)
        decoded = np.empty_like(frames)
        packet = ctypes.create_string_buffer(256)
        for frame, target in zip(frames, decoded, strict=True):
            lib.speex_bits_reset(ctypes.byref(bits))
            lib.speex_encode_int(encoder, frame.ctypes.data_as(_SHORTS), ctypes.byref(bits))
            size = lib.speex_bits_write(ctypes.byref(bits), packet, len(packet))
            # decode from the bytes, as a receiver would
            lib.speex_bits_read_from(ctypes.byref(bits), packet.raw[:size], size)
            lib.speex_decode_int(decoder, ctypes.byref(bits), target.ctypes.data_as(_SHORTS))
    finally:
        lib.speex_bits_destroy(ctypes.byref(bits))
        lib.speex_encoder_destroy(encoder)
        lib.speex_decoder_destroy(decoder)
    return decoded.reshape(-1)[delay:] / 32768.0

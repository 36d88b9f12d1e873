"""Audio loading: any format libsndfile reads, returned as float64 mono at the rate the models expect.

Integer PCM is scaled to [-1, 1) by 2^(bits-1), as soundfile's float64 read does (SPEC §1). A file at
another rate is resampled with a polyphase filter and a multichannel file is averaged to mono; both are
reported, in :attr:`Audio.conversions` and as an :class:`AudioConversionWarning`, never done silently.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

DEFAULT_SAMPLE_RATE = 16000


class AudioError(Exception):
    """A file that cannot be used as audio; the message names the file and the cause."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[AudioError], tuple[str, str]]:
        # Rebuilt from (path, reason) so the error survives crossing joblib's process boundary.
        return (type(self), (self.path, self.reason))


def failure_reason(exc: Exception) -> str:
    """Why a file failed, in one line: an :class:`AudioError`'s reason (its message already names the file, which
    every report of a failure shows), else the exception's type and message."""
    return exc.reason if isinstance(exc, AudioError) else f"{type(exc).__name__}: {exc}"


class EmptyAudioError(AudioError):
    """A file that holds no audio: 0 bytes, or a header and zero samples."""


class AudioTooLongError(AudioError):
    """A recording longer than the caller's limit, refused from its header before any sample is decoded."""

    def __init__(self, path: str | os.PathLike, duration: float, limit: float):
        self.duration, self.limit = duration, limit
        super().__init__(path, f"{duration:.1f} s of audio is longer than the limit of {limit:g} s")

    def __reduce__(self) -> tuple[type[AudioError], tuple[str, float, float]]:  # type: ignore[override]
        return (type(self), (self.path, self.duration, self.limit))


class AudioConversionWarning(UserWarning):
    """Emitted when a file is resampled or down-mixed on load."""


@dataclass(frozen=True)
class Audio:
    """A loaded recording.

    Attributes
    ----------
    signal : np.ndarray
        float64, shape (samples,), at ``sample_rate``.
    sample_rate : int
        Rate of ``signal``.
    source_rate : int
        Rate stored in the file.
    source_channels : int
        Channels stored in the file (averaged to mono when > 1).
    conversions : tuple of str
        Human-readable description of every conversion applied; empty when none was needed.
    """

    signal: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    conversions: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.signal.shape[0] / self.sample_rate


def resample(signal: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample along the first axis with :func:`scipy.signal.resample_poly` (polyphase, Kaiser window).

    Returns the input unchanged when the rates are equal.
    """
    if source_rate == target_rate:
        return signal
    if source_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {source_rate} and {target_rate}")
    # Imported here: scipy.signal takes ~1 s to import and most files need no resampling.
    from scipy.signal import resample_poly

    common = math.gcd(int(source_rate), int(target_rate))
    return resample_poly(signal, target_rate // common, source_rate // common, axis=0)


def to_mono(signal: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) array; a 1-D array is returned as is."""
    return signal if signal.ndim == 1 else signal.mean(axis=1)


def check_signal(signal: np.ndarray, path: str | os.PathLike) -> None:
    """Raise :class:`AudioError` if ``signal`` is empty or holds NaN/Inf samples."""
    if signal.shape[0] == 0:
        raise EmptyAudioError(path, "contains zero samples")
    finite = np.isfinite(signal)
    if not finite.all():
        bad = int(signal.size - np.count_nonzero(finite))
        raise AudioError(path, f"contains {bad} non-finite sample(s) (NaN or Inf)")


def _open_error(path: Path) -> AudioError | None:
    """Diagnose the file-system reasons a path cannot be read, before libsndfile gives a vaguer message."""
    if not path.exists():
        return AudioError(path, "file not found")
    if path.is_dir():
        return AudioError(path, "is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        return AudioError(path, "permission denied (file is not readable)")
    if path.stat().st_size == 0:
        return EmptyAudioError(path, "is an empty file (0 bytes)")
    return None


@contextlib.contextmanager
def _reading(source: str | io.BytesIO, name: str | os.PathLike) -> Iterator[sf.SoundFile]:
    """The file open for reading; libsndfile's errors, opening or reading, as an :class:`AudioError` naming
    ``name``."""
    try:
        with sf.SoundFile(source) as file:
            yield file
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        # libsndfile's own message starts "Error opening '<path>': "; the AudioError names the file once.
        cause = exc.error_string if isinstance(exc, sf.LibsndfileError) else exc
        raise AudioError(name, f"not a readable audio file or corrupt ({cause})") from exc


def _refuse_longer(file: sf.SoundFile, name: str | os.PathLike, max_duration_s: float | None) -> None:
    if max_duration_s is not None and file.frames > max_duration_s * file.samplerate:
        raise AudioTooLongError(name, file.frames / file.samplerate, max_duration_s)


def _decode(source: str | io.BytesIO, name: str | os.PathLike,
            max_duration_s: float | None) -> tuple[np.ndarray, int]:
    """All samples of a file or a file's bytes (float64, always 2-D) and its rate; a recording over
    ``max_duration_s`` is refused from its header, before its samples are decoded."""
    with _reading(source, name) as file:
        _refuse_longer(file, name, max_duration_s)
        return file.read(dtype="float64", always_2d=True), int(file.samplerate)


def check_header(source: str | os.PathLike | io.BytesIO, name: str | os.PathLike,
                 max_duration_s: float | None = None) -> None:
    """Refuse from its header alone what :func:`load_audio` would refuse about a file there (for a reader that
    decodes the file itself); ``name`` stands for the file in messages.

    Raises
    ------
    AudioError
        Not audio; :class:`EmptyAudioError` for zero samples; :class:`AudioTooLongError` over ``max_duration_s``.
    """
    with _reading(source if isinstance(source, io.BytesIO) else str(source), name) as file:
        if file.frames == 0:
            raise EmptyAudioError(name, "contains zero samples")
        _refuse_longer(file, name, max_duration_s)


def describe_conversions(source_rate: int, channels: int, target_rate: int) -> tuple[str, ...]:
    """Say which conversions :func:`load_audio` applies to a file with these properties."""
    notes = []
    if channels > 1:
        notes.append(f"averaged {channels} channels to mono")
    if source_rate != target_rate:
        notes.append(f"resampled {source_rate} Hz -> {target_rate} Hz")
    return tuple(notes)


def probe_conversions(path: str | os.PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE) -> tuple[str, ...]:
    """The conversions :func:`load_audio` would apply, read from the header only; () if unreadable."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return ()
    return describe_conversions(int(info.samplerate), int(info.channels), sample_rate)


def load_audio(
    path: str | os.PathLike,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    *,
    warn: bool = True,
    max_duration_s: float | None = None,
) -> Audio:
    """Read a file into float64 mono at ``sample_rate``.

    Parameters
    ----------
    path : path-like
        Any format libsndfile reads (WAV, FLAC, OGG, …).
    sample_rate : int
        Rate of the returned signal; other rates are resampled.
    warn : bool
        Emit an :class:`AudioConversionWarning` when a conversion was applied.
    max_duration_s : float, optional
        Refuse a longer recording (:class:`AudioTooLongError`) from its header, before decoding it.

    Raises
    ------
    AudioError
        Missing, unreadable, not audio / corrupt, or non-finite samples; :class:`EmptyAudioError` for an empty
        file or zero samples; :class:`AudioTooLongError` over ``max_duration_s``.
    """
    path = Path(path)
    error = _open_error(path)
    if error is not None:
        raise error
    data, source_rate = _decode(str(path), path, max_duration_s)
    return _as_audio(data, source_rate, path, sample_rate, warn)


def decode_audio(
    data: bytes,
    name: str = "-",
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    *,
    warn: bool = True,
    max_duration_s: float | None = None,
) -> Audio:
    """:func:`load_audio` of a file's bytes held in memory (an upload, standard input); ``name`` stands for the
    file in messages.

    Raises
    ------
    AudioError
        Not audio / corrupt, or non-finite samples; :class:`EmptyAudioError` for no bytes or zero samples;
        :class:`AudioTooLongError` over ``max_duration_s``.
    """
    if not data:
        raise EmptyAudioError(name, "is empty (0 bytes)")
    decoded, source_rate = _decode(io.BytesIO(data), name, max_duration_s)
    return _as_audio(decoded, source_rate, name, sample_rate, warn)


def _as_audio(data: np.ndarray, source_rate: int, name: str | os.PathLike, sample_rate: int, warn: bool) -> Audio:
    channels = data.shape[1]
    check_signal(data, name)
    signal = resample(to_mono(data), source_rate, sample_rate)
    conversions = describe_conversions(source_rate, channels, sample_rate)
    if conversions and warn:
        warnings.warn(f"{name}: {'; '.join(conversions)}", AudioConversionWarning, stacklevel=3)
    return Audio(
        signal=np.ascontiguousarray(signal, dtype=np.float64),
        sample_rate=sample_rate,
        source_rate=source_rate,
        source_channels=channels,
        conversions=conversions,
    )


#: File name extensions of the formats libsndfile reads (checked case-insensitively by :func:`find_audio_files`).
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf",
    ".w64", ".rf64", ".sf", ".voc", ".paf", ".svx", ".nist", ".sph", ".ircam", ".mat", ".pvf", ".xi", ".htk",
    ".sds", ".avr", ".wve",
})


def find_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Every audio file below ``folder``, at any depth, sorted by path.

    A file counts as audio when its extension is one of :data:`AUDIO_EXTENSIONS` (so a damaged recording is still
    found, and reported when it is read) or, whatever its name, when libsndfile recognises its header. Hidden
    files and folders (names starting with ".") are left out.

    Raises
    ------
    AudioError
        ``folder`` is not a readable directory.
    """
    root = Path(folder)
    if not root.is_dir():
        raise AudioError(root, "is not a directory")
    found = []
    for current, folders, files in os.walk(root, onerror=_raise_walk_error):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            path = Path(current) / name
            if not name.startswith(".") and (path.suffix.lower() in AUDIO_EXTENSIONS or _is_audio(path)):
                found.append(path)
    return sorted(found)


def expand_audio_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The paths with each folder replaced by :func:`find_audio_files` of it (files stay as given, in order).

    A folder without any audio file stays as it is, so that it fails as one entry of the batch, not the batch.
    """
    expanded: list[Path] = []
    for path in map(Path, paths):
        found = find_audio_files(path) if path.is_dir() else []
        expanded.extend(found or [path])
    return expanded


def _raise_walk_error(error: OSError) -> None:
    raise AudioError(error.filename or "?", f"cannot list the folder ({error.strerror})")


def _is_audio(path: Path) -> bool:
    try:
        sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
        return False
    return True


def iter_blocks(
    path: str | os.PathLike, block_seconds: float = 60.0, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Yield consecutive float64 mono blocks of a long file without reading it whole.

    Only files already at ``sample_rate`` are streamed (resampling block by block would change the
    result at block edges); for other rates use :func:`load_audio`.

    Raises
    ------
    AudioError
        As :func:`load_audio`, plus a rate mismatch.
    """
    path = Path(path)
    error = _open_error(path)
    if error is not None:
        raise error
    block = max(1, int(block_seconds * sample_rate))
    produced = 0
    with _reading(str(path), path) as file:
        if file.samplerate != sample_rate:
            raise AudioError(
                path, f"is {file.samplerate} Hz; streaming needs {sample_rate} Hz (load it whole to resample)"
            )
        try:
            for data in file.blocks(blocksize=block, dtype="float64", always_2d=True):
                check_signal(data, path)
                produced += data.shape[0]
                yield to_mono(data)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(path, f"corrupt after {produced} samples ({exc})") from exc
    if produced == 0:
        raise EmptyAudioError(path, "contains zero samples")

"""LFCC extraction at scale: many files in parallel, an on-disk cache, per-file failures, long files.

Results come back in the order of the input paths and are streamed from the workers (joblib's
generator mode), so :func:`iter_features` holds at most a few files' features at a time.

The cache stores one ``.npy`` per (config, sample rate, dtype, absolute path, file size, mtime, package
version) under ``cache_dir``; a changed file gets a new key, so stale entries are never read. Entries are
written atomically and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from joblib import Parallel, delayed
from numpy.typing import DTypeLike

from . import __version__
from .atomic import atomic_write
from .audio import AudioConversionWarning, AudioError, iter_blocks, load_audio
from .augment import Augmenter, item_seed
from .features import LFCCConfig, iter_lfcc, lfcc, resolve_settings

ON_ERROR = ("raise", "collect")


@dataclass(frozen=True)
class FileFeatures:
    """The outcome for one file.

    Attributes
    ----------
    path : str
        The path as given.
    features : np.ndarray or None
        (frames, n_features); None when the file failed.
    error : str or None
        Why the file failed.
    conversions : tuple of str or None
        Resampling / down-mixing applied on load (see :class:`lfcc_gmm.audio.Audio`); None for a cache
        hit, where the audio was not read.
    """

    path: str
    features: np.ndarray | None
    error: str | None = None
    conversions: tuple[str, ...] | None = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def cache_key(path: str | os.PathLike, config: LFCCConfig, sample_rate: int, dtype: DTypeLike) -> str:
    """Hex digest naming the cache entry for the file as it is now on disk."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    identity = {
        "config": dataclasses.asdict(config),
        "sample_rate": sample_rate,
        "dtype": np.dtype(dtype).str,
        "path": str(resolved),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _read_cached(entry: Path, n_features: int, dtype: np.dtype) -> np.ndarray | None:
    try:
        features = np.load(entry, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # missing or unreadable: recompute and overwrite
    if features.ndim != 2 or features.shape[1] != n_features or features.dtype != dtype:
        return None
    return features


def _extract_one(
    path: str, config: LFCCConfig, sample_rate: int, dtype: np.dtype, cache_dir: str | None, collect: bool
) -> FileFeatures:
    # Runs in a worker. Failures come back as values: AudioError does not survive pickling, and a
    # collected failure must not stop the batch.
    try:
        entry = key = None
        if cache_dir is not None:
            key = cache_key(path, config, sample_rate, dtype)
            entry = Path(cache_dir) / f"{key}.npy"
            cached = _read_cached(entry, config.n_features, dtype)
            if cached is not None:
                return FileFeatures(path, cached, conversions=None)
        audio = load_audio(path, sample_rate, warn=False)
        try:
            features = lfcc(audio.signal, sample_rate, config, dtype)
        except ValueError as exc:
            raise AudioError(path, f"too short for LFCC: {exc}") from exc
        # A file rewritten while it was read must not be cached under its old size and mtime.
        if entry is not None and cache_key(path, config, sample_rate, dtype) == key:
            with atomic_write(entry, "wb") as handle:
                np.save(handle, features, allow_pickle=False)
        return FileFeatures(path, features, conversions=audio.conversions)
    except AudioError as exc:
        return FileFeatures(path, None, error=exc.reason)
    except FileNotFoundError:  # from the cache key's stat, before load_audio could say so
        return FileFeatures(path, None, error="file not found")
    except Exception as exc:
        if not collect:
            raise
        return FileFeatures(path, None, error=f"{type(exc).__name__}: {exc}")


def iter_features(
    paths: Sequence[str | os.PathLike],
    preset: str | LFCCConfig = "asvspoof2019",
    *,
    sample_rate: int = 16000,
    jobs: int = 1,
    cache_dir: str | os.PathLike | None = None,
    dtype: DTypeLike = np.float32,
    progress: Callable[[int, int], None] | None = None,
    on_error: str = "raise",
    **overrides: Any,
) -> Iterator[FileFeatures]:
    """A :class:`FileFeatures` per path, in order, computing up to ``jobs`` files at once.

    Results are produced as they are consumed, so memory is bounded by a few files, not the set.

    Parameters
    ----------
    paths : sequence of path-like
        Audio files (anything :func:`lfcc_gmm.audio.load_audio` reads; other rates are resampled).
    preset : str or LFCCConfig
        See :func:`lfcc_gmm.features.lfcc`; ``**overrides`` replace its fields.
    sample_rate : int
        Rate the audio is brought to before the features.
    jobs : int
        Worker processes (joblib ``n_jobs``; -1 = all cores, 1 = in this process).
    cache_dir : path-like, optional
        Folder for cached features (created if missing).
    dtype : float32 or float64
        Precision of the features.
    progress : callable, optional
        Called as ``progress(n_done, n_total)`` after each file.
    on_error : {"raise", "collect"}
        ``"raise"``: the first bad file raises :class:`lfcc_gmm.audio.AudioError`. ``"collect"``: it is
        yielded with ``features=None`` and ``error`` set, and the batch goes on.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    config, dtype = resolve_settings(preset, sample_rate, dtype, **overrides)
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        cache_dir = str(cache_dir)
    paths = [str(p) for p in paths]
    collect = on_error == "collect"
    tasks = (delayed(_extract_one)(p, config, sample_rate, dtype, cache_dir, collect) for p in paths)
    return _deliver(Parallel(n_jobs=jobs, return_as="generator")(tasks), len(paths), collect, progress)


def _deliver(
    results: Iterator[FileFeatures], total: int, collect: bool, progress: Callable[[int, int], None] | None
) -> Iterator[FileFeatures]:
    # A separate generator so that iter_features checks its arguments when called, not when first iterated.
    for done, result in enumerate(results, start=1):
        if result.error is not None and not collect:
            raise AudioError(result.path, result.error)
        if result.conversions:
            warnings.warn(f"{result.path}: {'; '.join(result.conversions)}", AudioConversionWarning, stacklevel=2)
        if progress is not None:
            progress(done, total)
        yield result


def extract_features(
    paths: Sequence[str | os.PathLike],
    preset: str | LFCCConfig = "asvspoof2019",
    **options: Any,
) -> list[FileFeatures]:
    """:func:`iter_features` collected into a list (one entry per path, in order)."""
    return list(iter_features(paths, preset, **options))


def _augmented_lfcc(path: str | os.PathLike, index: int, spec: str, copies: int, preset: str,
                    seed: int) -> list[np.ndarray]:
    augmenter = Augmenter(spec)
    signal = load_audio(path, warn=False).signal
    return [lfcc(augmenter(signal, item_seed(seed, copy, index)), preset=preset, dtype=np.float32)
            for copy in range(copies)]


def augmented_features(
    paths: Sequence[str | os.PathLike],
    indices: Sequence[int],
    spec: str,
    copies: int,
    preset: str,
    seed: int,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[list[np.ndarray]]:
    """LFCCs of ``copies`` augmented versions of each file; copy c of file i is seeded by (seed, c, indices[i])."""
    tasks = (delayed(_augmented_lfcc)(p, i, spec, copies, preset, seed) for p, i in zip(paths, indices, strict=True))
    results = []
    for done, result in enumerate(Parallel(n_jobs=jobs, return_as="generator")(tasks), start=1):
        results.append(result)
        if progress is not None:
            progress(done, len(paths))
    return results


def iter_file_lfcc(
    path: str | os.PathLike,
    preset: str | LFCCConfig = "asvspoof2019",
    *,
    sample_rate: int = 16000,
    block_seconds: float = 60.0,
    dtype: DTypeLike = np.float64,
    **overrides: Any,
) -> Iterator[np.ndarray]:
    """LFCC rows of one (long) file in chunks; their concatenation equals ``lfcc`` of the loaded file.

    A file already at ``sample_rate`` is read ``block_seconds`` at a time (multichannel averaged), so
    memory stays bounded however long it is; the rows then match the whole-file ``lfcc`` to 1e-12. A
    file at another rate must be resampled whole (block-wise resampling would change the samples at
    block edges): it is loaded with :func:`lfcc_gmm.audio.load_audio`, which reports the conversion,
    and its rows come as one chunk.

    Raises
    ------
    AudioError
        Missing, unreadable or corrupt file, or too short for one frame.
    ValueError
        Bad LFCC settings (before the file is touched).
    """
    config, dtype = resolve_settings(preset, sample_rate, dtype, **overrides)
    try:
        if _stored_rate(path) == sample_rate:
            yield from iter_lfcc(iter_blocks(path, block_seconds, sample_rate), sample_rate, config, dtype)
        else:
            yield lfcc(load_audio(path, sample_rate).signal, sample_rate, config, dtype)
    except ValueError as exc:  # settings were checked above: this is a recording too short for a frame
        raise AudioError(path, f"too short for LFCC: {exc}") from exc


def _stored_rate(path: str | os.PathLike) -> int | None:
    try:
        return sf.info(str(path)).samplerate
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None  # not readable: load_audio names the cause

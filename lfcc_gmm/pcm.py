"""Signals as the degradations and codecs handle them: a checked 1-D float64 array, 16-bit PCM, and the input's
length restored after a resampler or a codec.

Shared by :mod:`lfcc_gmm.degrade`, :mod:`lfcc_gmm.lossy_codecs` (which imports nothing from ``degrade``:
``degrade`` builds its codec conditions from it) and :mod:`lfcc_gmm.checks`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


class CodecUnavailableError(RuntimeError):
    """A codec this installation cannot run (optional package missing, libsndfile built without it)."""


def as_signal(signal: ArrayLike) -> np.ndarray:
    """``signal`` as a float64 array; ``ValueError`` unless it is 1-D (mono)."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D mono signal, got an array of shape {x.shape}")
    return x


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad ``y`` at the end to ``n`` samples (resamplers and codecs may be off by a few)."""
    return y[:n] if y.shape[0] >= n else np.pad(y, (0, n - y.shape[0]))


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """16-bit PCM codes (as int32) of a float signal in [-1, 1): scaled by 32768, rounded, clipped to the range."""
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int32)

"""Fixed-length views of a waveform for the raw-waveform models (pure NumPy, no torch).

The official RawNet2 and AASIST pipelines feed exactly ``nb_samp`` samples: shorter signals are repeated
(``np.tile``) and cut, longer ones truncated at evaluation or randomly cropped in training (SPEC §5).
"""

from __future__ import annotations

import numpy as np

from lfcc_gmm.segments import window_starts


def _check(signal: np.ndarray, nb_samp: int) -> np.ndarray:
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {signal.shape}")
    if signal.size == 0:
        raise ValueError("cannot pad an empty signal")
    if nb_samp < 1:
        raise ValueError(f"nb_samp must be at least 1, got {nb_samp}")
    return signal


def pad_or_truncate(signal: np.ndarray, nb_samp: int) -> np.ndarray:
    """Evaluation input: the first ``nb_samp`` samples of the signal repeated end to end.

    Parameters
    ----------
    signal : 1-D waveform.
    nb_samp : output length.

    Returns
    -------
    np.ndarray
        shape (nb_samp,), same dtype as ``signal``.
    """
    signal = _check(signal, nb_samp)
    if signal.size >= nb_samp:
        return signal[:nb_samp].copy()
    return np.tile(signal, -(-nb_samp // signal.size))[:nb_samp]


def random_crop_or_pad(signal: np.ndarray, nb_samp: int, rng: np.random.Generator) -> np.ndarray:
    """Training input: a uniformly random window of ``nb_samp`` samples, or the repeat-padded signal if shorter.

    Parameters
    ----------
    signal : 1-D waveform.
    nb_samp : output length.
    rng : source of the random window start.

    Returns
    -------
    np.ndarray
        shape (nb_samp,), same dtype as ``signal``.
    """
    signal = _check(signal, nb_samp)
    if signal.size <= nb_samp:
        return pad_or_truncate(signal, nb_samp)
    start = int(rng.integers(0, signal.size - nb_samp + 1))
    return signal[start : start + nb_samp].copy()


def sliding_windows(signal: np.ndarray, nb_samp: int, hop: int) -> np.ndarray:
    """Windows of ``nb_samp`` samples every ``hop`` samples covering the whole signal, for whole-file scoring.

    Windows start where :func:`lfcc_gmm.segments.window_starts` says: 0, hop, 2 hop, ..., and when the last of
    them stops short of the end, one more window aligned to the end. A signal shorter than ``nb_samp`` gives one
    repeat-padded window (:func:`pad_or_truncate`).

    Parameters
    ----------
    signal : 1-D waveform.
    nb_samp : window length.
    hop : step between window starts.

    Returns
    -------
    np.ndarray
        shape (n_windows, nb_samp), same dtype as ``signal``.
    """
    signal = _check(signal, nb_samp)
    if hop < 1:
        raise ValueError(f"hop must be at least 1, got {hop}")
    if signal.size <= nb_samp:
        return pad_or_truncate(signal, nb_samp)[None, :]
    windows = np.lib.stride_tricks.sliding_window_view(signal, nb_samp)
    return windows[window_starts(signal.size, nb_samp, hop)].copy()

"""LFCC features: the official ASVspoof 2019 and 2021 front ends as pure NumPy/SciPy steps.

Each step is a public function (arrays in, arrays out) so every stage can be inspected or plotted;
:func:`lfcc` composes them and :class:`LFCCStream` computes the same rows from consecutive blocks of
a long recording. Exact definitions: SPEC §2 (preset ``"asvspoof2019"``) and §3 (``"asvspoof2021"``).

Framing follows the official MATLAB code (``buffer(x, L, L - hop, 'nodelay')``): frames start at
0, hop, 2·hop, …, and a new frame is started as long as the previous one did not reach the end of the
signal, so a signal of N samples gives ``ceil((N - (L - hop)) / hop)`` frames (see :func:`frame_count`)
and the last frame is zero-padded. A signal of ``L - hop`` samples or fewer gives no frame and is an
error; one longer than that but shorter than a window gives a single zero-padded frame.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

#: Added to filterbank energies before the log (MATLAB's ``eps``, float64 machine epsilon).
EPS = float(np.finfo(np.float64).eps)

DELTA_STYLES = ("asvspoof2019", "htk")
#: Precisions the features are computed in: float64 reproduces the official features, float32 is faster.
DTYPES = ("float64", "float32")

# Frames go through the FFT in batches of about this many bytes (see _static_rows).
_BATCH_BYTES = 2**21


@dataclass(frozen=True)
class LFCCConfig:
    """Every parameter of the LFCC front end. Lengths are in seconds, frequencies in Hz.

    Attributes
    ----------
    win_length, hop_length : float
        Frame length and hop in seconds, rounded to whole samples at the signal's rate.
    n_fft : int
        FFT size; frames are zero-padded to it.
    n_filters : int
        Number of triangular filters.
    n_ceps : int
        Cepstral coefficients kept (c0 included), at most ``n_filters``.
    f_min, f_max : float
        Band covered by the filter edges; ``f_max=None`` means the Nyquist frequency. Only FFT bins
        inside the band get any weight, which is what the official 2021 bin selection amounts to.
    pre_emphasis : float or None
        Coefficient a of y[n] = x[n] - a·x[n-1]; 0 or None turns it off.
    log_floor : float
        Added to the filterbank energies before ``log10``.
    delta_style : {"asvspoof2019", "htk"}
        ``"asvspoof2019"``: d[t] = Σ_k k·(c[t+k] - c[t-k]), undivided; ``"htk"``: the same divided
        by 2·Σ_k k². Both repeat the first/last frame at the edges.
    delta_half_length : int
        k runs over 1 … this.
    static, delta, delta_delta : bool
        Which blocks appear in the output, in the order [static | delta | delta-delta].
    """

    win_length: float = 0.020
    hop_length: float = 0.010
    n_fft: int = 512
    n_filters: int = 20
    n_ceps: int = 20
    f_min: float = 0.0
    f_max: float | None = None
    pre_emphasis: float | None = 0.97
    log_floor: float = EPS
    delta_style: str = "asvspoof2019"
    delta_half_length: int = 1
    static: bool = True
    delta: bool = True
    delta_delta: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not self.win_length > 0 or not self.hop_length > 0:
            problems.append("win_length and hop_length must be positive")
        if self.hop_length > self.win_length:
            problems.append(f"hop_length {self.hop_length} exceeds win_length {self.win_length}")
        if self.n_fft < 2 or self.n_fft % 2:
            problems.append(f"n_fft must be an even number >= 2, got {self.n_fft}")
        if self.n_filters < 1 or not 1 <= self.n_ceps <= self.n_filters:
            problems.append(f"need 1 <= n_ceps <= n_filters, got n_ceps={self.n_ceps}, n_filters={self.n_filters}")
        if self.f_min < 0 or (self.f_max is not None and self.f_max <= self.f_min):
            problems.append(f"need 0 <= f_min < f_max, got f_min={self.f_min}, f_max={self.f_max}")
        if not self.log_floor >= 0:
            problems.append(f"log_floor must be >= 0, got {self.log_floor}")
        if self.delta_style not in DELTA_STYLES:
            problems.append(f"delta_style must be one of {DELTA_STYLES}, got {self.delta_style!r}")
        if self.delta_half_length < 1:
            problems.append(f"delta_half_length must be >= 1, got {self.delta_half_length}")
        if not (self.static or self.delta or self.delta_delta):
            problems.append("at least one of static, delta, delta_delta must be True")
        if problems:
            raise ValueError("invalid LFCCConfig: " + "; ".join(problems))

    @property
    def n_features(self) -> int:
        """Columns of the output."""
        return self.n_ceps * (int(self.static) + int(self.delta) + int(self.delta_delta))

    @property
    def context_frames(self) -> int:
        """Frames of look-ahead (and look-back) one output row depends on, through the deltas."""
        order = 2 if self.delta_delta else 1 if self.delta else 0
        return order * self.delta_half_length

    def frame_lengths(self, sample_rate: int) -> tuple[int, int]:
        """Window and hop in samples at ``sample_rate`` (rounded half up)."""
        length = int(np.floor(self.win_length * sample_rate + 0.5))
        hop = int(np.floor(self.hop_length * sample_rate + 0.5))
        if hop < 1:
            raise ValueError(f"hop_length {self.hop_length} s is less than one sample at {sample_rate} Hz")
        if length > self.n_fft:
            raise ValueError(f"window of {length} samples at {sample_rate} Hz is longer than n_fft={self.n_fft}")
        return length, hop


PRESETS: dict[str, LFCCConfig] = {
    # ASVspoof 2019 LFCC-GMM baseline (extract_lfcc.m), SPEC §2.
    "asvspoof2019": LFCCConfig(),
    # ASVspoof 2021 LA/DF baseline (lfcc_bp.m), SPEC §3.
    "asvspoof2021": LFCCConfig(
        win_length=0.030,
        hop_length=0.015,
        n_fft=1024,
        n_filters=70,
        n_ceps=19,
        f_max=4000.0,
        pre_emphasis=None,
        delta_style="htk",
    ),
}


def get_config(preset: str | LFCCConfig = "asvspoof2019", **overrides: Any) -> LFCCConfig:
    """A named preset (or a config) with some fields replaced.

    Raises
    ------
    ValueError
        Unknown preset name, unknown field, or an invalid value.
    """
    if isinstance(preset, LFCCConfig):
        config = preset
    elif preset in PRESETS:
        config = PRESETS[preset]
    else:
        raise ValueError(f"unknown LFCC preset {preset!r}; known presets: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(LFCCConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown LFCC parameter(s) {unknown}; valid: {', '.join(sorted(fields))}")
    return dataclasses.replace(config, **overrides) if overrides else config


def frame_count(n_samples: int, frame_length: int, hop_length: int) -> int:
    """Frames the official framing gives for ``n_samples``: ``max(0, ceil((N - (L - hop)) / hop))``."""
    if hop_length < 1:
        raise ValueError(f"hop_length must be >= 1, got {hop_length}")
    return max(0, -(-(n_samples - frame_length + hop_length) // hop_length))


def pre_emphasis(signal: ArrayLike, coefficient: float | None = 0.97) -> np.ndarray:
    """y[n] = x[n] - a·x[n-1] with x[-1] = 0; a float ``signal`` is returned as is when a is 0 or None."""
    x = _as_float(signal)
    if not coefficient:
        return x
    return _emphasise(x, coefficient, np.zeros(1, x.dtype))


def _as_float(values: ArrayLike) -> np.ndarray:
    # Integer input would truncate (pre-emphasis) or pick an integer DCT basis (cepstra).
    array = np.asarray(values)
    return array if array.dtype.kind == "f" else array.astype(np.float64)


def _emphasise(x: np.ndarray, coefficient: float, previous: np.ndarray) -> np.ndarray:
    # ``previous`` is the sample before x[0], so consecutive blocks give the same numbers as one call.
    y = np.empty_like(x)
    y[:1] = x[:1] - coefficient * previous
    np.subtract(x[1:], coefficient * x[:-1], out=y[1:])
    return y


def frame_signal(
    signal: ArrayLike,
    frame_length: int,
    hop_length: int,
    window: ArrayLike | None = None,
    *,
    pad_to: int | None = None,
) -> np.ndarray:
    """Cut a 1-D signal into windowed frames, shape (frames, frame_length) or (frames, pad_to).

    The complete frames are read through a strided view (no copy before the window product); the
    last frame is zero-padded. ``window=None`` is the symmetric Hamming window (``np.hamming``).
    ``pad_to`` (e.g. the FFT size) appends zeros to every frame, which lets :func:`power_spectrum`
    transform the frames in place.

    Raises
    ------
    ValueError
        The signal is too short to give one frame, or a length does not fit.
    """
    x = np.asarray(signal)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {x.shape}")
    if not 1 <= hop_length <= frame_length:
        raise ValueError(f"need 1 <= hop_length <= frame_length, got {hop_length} and {frame_length}")
    width = frame_length if pad_to is None else pad_to
    if width < frame_length:
        raise ValueError(f"pad_to={pad_to} is shorter than the frame length {frame_length}")
    w = np.hamming(frame_length) if window is None else np.asarray(window)
    if w.shape != (frame_length,):
        raise ValueError(f"window has shape {w.shape}, expected ({frame_length},)")
    n_frames = frame_count(x.shape[0], frame_length, hop_length)
    if n_frames == 0:
        raise ValueError(_too_short(x.shape[0], frame_length, hop_length))
    frames = np.empty((n_frames, width), np.result_type(x, w))
    frames[:, frame_length:] = 0
    n_whole = (x.shape[0] - frame_length) // hop_length + 1 if x.shape[0] >= frame_length else 0
    if n_whole:
        view = np.lib.stride_tricks.sliding_window_view(x, frame_length)[::hop_length]
        np.multiply(view[:n_whole], w, out=frames[:n_whole, :frame_length])
    # With hop <= L at most one frame runs past the end.
    for k in range(n_whole, n_frames):
        tail = x[k * hop_length :]
        np.multiply(tail, w[: tail.shape[0]], out=frames[k, : tail.shape[0]])
        frames[k, tail.shape[0] :] = 0
    return frames


def _too_short(n_samples: int, frame_length: int, hop_length: int) -> str:
    return (
        f"signal of {n_samples} samples gives no LFCC frame: it needs more than "
        f"{frame_length - hop_length} samples (window {frame_length}, hop {hop_length})"
    )


def power_spectrum(frames: ArrayLike, n_fft: int | None = None, *, overwrite: bool = False) -> np.ndarray:
    """|FFT|² of each frame zero-padded to ``n_fft``, bins 0 … n_fft/2: shape (frames, n_fft//2 + 1).

    ``n_fft=None`` uses the frame length. ``overwrite=True`` lets the FFT reuse ``frames`` as scratch
    space (faster; ``frames`` is then garbage).
    """
    # scipy.fft is imported where it is used: the command line reads this module's presets for its --help,
    # which SciPy would slow down several times.
    import scipy.fft

    frames = np.asarray(frames)
    n_fft = frames.shape[-1] if n_fft is None else n_fft
    if frames.shape[-1] > n_fft:
        raise ValueError(f"frames of {frames.shape[-1]} samples are longer than n_fft={n_fft}")
    spectrum = scipy.fft.rfft(frames, n=n_fft, axis=-1, workers=1, overwrite_x=overwrite)
    # Square the interleaved real/imaginary parts in place rather than building abs() temporaries.
    parts = spectrum.view(spectrum.real.dtype).reshape(*spectrum.shape, 2)
    np.square(parts, out=parts)
    return np.add(parts[..., 0], parts[..., 1])


def fft_frequencies(sample_rate: float, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each rfft bin 0 … n_fft/2."""
    return (sample_rate / 2) * np.linspace(0.0, 1.0, n_fft // 2 + 1)


def triangular_filters(frequencies: ArrayLike, edges: ArrayLike) -> np.ndarray:
    """Triangles on ``frequencies``: filter i rises from edges[i] to 1 at edges[i+1], falls to edges[i+2].

    Returns shape (len(edges) - 2, len(frequencies)), zero outside each triangle.
    """
    f = np.asarray(frequencies, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    lower, centre, upper = e[:-2, None], e[1:-1, None], e[2:, None]
    rising = (f - lower) / (centre - lower)
    falling = (upper - f) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def linear_filterbank(
    sample_rate: float, n_fft: int, n_filters: int, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """Triangular filters with edges equally spaced in Hz, shape (n_filters, n_fft//2 + 1).

    ``n_filters + 2`` edges from ``f_min`` to ``f_max`` (default Nyquist); weights are zero outside
    [f_min, f_max], so bins outside the band are unused, as in the official 2021 band-limited code.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    _check_band(sample_rate, f_min, f_max)
    edges = np.linspace(f_min, f_max, n_filters + 2)
    return triangular_filters(fft_frequencies(sample_rate, n_fft), edges)


def hz_to_mel(hz: ArrayLike) -> np.ndarray:
    """HTK mel scale: 2595·log10(1 + f/700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: ArrayLike) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: float, n_fft: int, n_filters: int, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """As :func:`linear_filterbank` but with edges equally spaced on the mel scale (for comparisons)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    _check_band(sample_rate, f_min, f_max)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_filters + 2))
    return triangular_filters(fft_frequencies(sample_rate, n_fft), edges)


def _check_band(sample_rate: float, f_min: float, f_max: float) -> None:
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= {sample_rate / 2} Hz, got {f_min} and {f_max}")


def dct_matrix(n_inputs: int, n_outputs: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix, shape (n_outputs, n_inputs): ``D @ v`` = ``dct(v, norm='ortho')[:n]``."""
    import scipy.fft

    return scipy.fft.dct(np.eye(n_inputs), type=2, norm="ortho", axis=0)[:n_outputs]


def cepstra(energies: ArrayLike, n_ceps: int, log_floor: float = EPS) -> np.ndarray:
    """log10(energies + floor), then the orthonormal DCT-II over the filter axis; keep ``n_ceps``."""
    energies = _as_float(energies)
    # log10(E) @ D computed as ln(E) @ (D·log10(e)): the natural log is several times faster.
    basis = _log10_dct_basis(energies.shape[-1], n_ceps, energies.dtype)
    return np.log(energies + log_floor) @ basis


def deltas(features: ArrayLike, half_length: int = 1, style: str = "asvspoof2019") -> np.ndarray:
    """Regression deltas along the frame axis, first/last frame repeated at the edges.

    ``"asvspoof2019"``: d[t] = Σ_{k=1..h} k·(c[t+k] - c[t-k]) (undivided, as the 2019 baseline);
    ``"htk"``: the same divided by 2·Σ k² (the 2021 baseline).
    """
    if style not in DELTA_STYLES:
        raise ValueError(f"delta style must be one of {DELTA_STYLES}, got {style!r}")
    if half_length < 1:
        raise ValueError(f"half_length must be >= 1, got {half_length}")
    c = _as_float(features)
    n = c.shape[0]
    if n == 0:
        return c.copy()
    h = half_length
    padded = np.concatenate([np.repeat(c[:1], h, axis=0), c, np.repeat(c[-1:], h, axis=0)])
    d = padded[h + 1 : h + 1 + n] - padded[h - 1 : h - 1 + n]
    for k in range(2, h + 1):
        d += k * (padded[h + k : h + k + n] - padded[h - k : h - k + n])
    if style == "htk":
        d /= 2 * sum(k * k for k in range(1, h + 1))
    return d


class _Plan(NamedTuple):
    """What a config needs at one rate and dtype, built once (read-only arrays)."""

    frame_length: int
    hop_length: int
    window: np.ndarray
    first_bin: int
    stop_bin: int
    filterbank: np.ndarray  # (stop_bin - first_bin, n_filters): power @ filterbank


@functools.lru_cache(maxsize=64)
def _plan(config: LFCCConfig, sample_rate: int, dtype: np.dtype) -> _Plan:
    length, hop = config.frame_lengths(sample_rate)
    bank = linear_filterbank(sample_rate, config.n_fft, config.n_filters, config.f_min, config.f_max)
    empty = np.flatnonzero(~bank.any(axis=1))
    if empty.size:
        raise ValueError(
            f"LFCC filter(s) {empty.tolist()} contain no FFT bin at {sample_rate} Hz with n_fft={config.n_fft}: "
            "use fewer filters, a wider band or a larger n_fft"
        )
    used = np.flatnonzero(bank.any(axis=0))
    first, stop = int(used[0]), int(used[-1]) + 1
    window = np.hamming(length).astype(dtype)
    filterbank = np.ascontiguousarray(bank[:, first:stop].T, dtype=dtype)
    window.setflags(write=False)
    filterbank.setflags(write=False)
    return _Plan(length, hop, window, first, stop, filterbank)


@functools.lru_cache(maxsize=64)
def _log10_dct_basis(n_inputs: int, n_outputs: int, dtype: np.dtype) -> np.ndarray:
    basis = np.ascontiguousarray(dct_matrix(n_inputs, n_outputs).T * np.log10(np.e), dtype=dtype)
    basis.setflags(write=False)
    return basis


def resolve_settings(
    preset: str | LFCCConfig = "asvspoof2019",
    sample_rate: int = 16000,
    dtype: DTypeLike = np.float64,
    **overrides: Any,
) -> tuple[LFCCConfig, np.dtype]:
    """Check settings once, before any audio: the config with ``overrides`` applied, and the dtype.

    Raises
    ------
    ValueError
        Anything :func:`lfcc` would reject for these settings (preset, fields, rate, dtype).
    """
    config = get_config(preset, **overrides)
    dtype = np.dtype(dtype)
    if dtype.name not in DTYPES:
        raise ValueError(f"LFCC dtype must be float32 or float64, got {dtype}")
    _plan(config, sample_rate, dtype)
    return config, dtype


def _as_signal(signal: ArrayLike, dtype: np.dtype) -> np.ndarray:
    x = np.asarray(signal, dtype=dtype)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D (mono) signal, got shape {x.shape}")
    return x


def _static_rows(emphasised: np.ndarray, config: LFCCConfig, plan: _Plan) -> np.ndarray:
    length, hop = plan.frame_length, plan.hop_length
    n_frames = frame_count(emphasised.shape[0], length, hop)
    if n_frames == 0:
        raise ValueError(_too_short(emphasised.shape[0], length, hop))
    rows = np.empty((n_frames, config.n_ceps), emphasised.dtype)
    # Batches small enough that the frames and their spectra stay in cache: faster than one batch of a
    # long signal's frames, and the peak memory no longer grows with the signal.
    batch = max(1, _BATCH_BYTES // (config.n_fft * emphasised.dtype.itemsize))
    for start in range(0, n_frames, batch):
        stop = min(start + batch, n_frames)
        segment = emphasised[start * hop : (stop - 1) * hop + length]
        frames = frame_signal(segment, length, hop, plan.window, pad_to=config.n_fft)
        power = power_spectrum(frames, overwrite=True)[:, plan.first_bin : plan.stop_bin]
        rows[start:stop] = cepstra(power @ plan.filterbank, config.n_ceps, config.log_floor)
    return rows


def _assemble(static: np.ndarray, config: LFCCConfig) -> np.ndarray:
    blocks = [static] if config.static else []
    if config.delta or config.delta_delta:
        d = deltas(static, config.delta_half_length, config.delta_style)
        if config.delta:
            blocks.append(d)
        if config.delta_delta:
            blocks.append(deltas(d, config.delta_half_length, config.delta_style))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)


def lfcc(
    signal: ArrayLike,
    sample_rate: int = 16000,
    preset: str | LFCCConfig = "asvspoof2019",
    dtype: DTypeLike = np.float64,
    **overrides: Any,
) -> np.ndarray:
    """LFCC of a mono signal: shape (frames, n_features), [static | delta | delta-delta].

    Parameters
    ----------
    signal : array_like
        1-D samples (float, typically in [-1, 1)).
    sample_rate : int
        Rate of ``signal``; the presets reproduce the official features at 16000.
    preset : str or LFCCConfig
        ``"asvspoof2019"`` (60 columns) or ``"asvspoof2021"`` (57 columns), see :data:`PRESETS`.
    dtype : float64 or float32
        Precision of the whole computation; float32 is about twice as fast.
    **overrides
        :class:`LFCCConfig` fields replacing the preset's.

    Raises
    ------
    ValueError
        A signal too short for one frame (see :func:`frame_count`), a bad preset or parameter.
    """
    config, dtype = resolve_settings(preset, sample_rate, dtype, **overrides)
    plan = _plan(config, sample_rate, dtype)
    x = _as_signal(signal, dtype)
    return _assemble(_static_rows(pre_emphasis(x, config.pre_emphasis), config, plan), config)


class LFCCStream:
    """LFCC of a signal that arrives in consecutive blocks of any size, with memory bounded by the block.

    The concatenation of everything :meth:`push` and :meth:`flush` return equals ``lfcc`` of the whole
    signal. Rows are held back until the deltas' look-ahead (:attr:`LFCCConfig.context_frames`) is
    known; :meth:`flush` ends the signal, adds the zero-padded last frame and repeats the last frame
    for the deltas.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        preset: str | LFCCConfig = "asvspoof2019",
        dtype: DTypeLike = np.float64,
        **overrides: Any,
    ):
        self.sample_rate = sample_rate
        self.config, self.dtype = resolve_settings(preset, sample_rate, dtype, **overrides)
        self._plan = _plan(self.config, sample_rate, self.dtype)
        self.reset()

    def reset(self) -> None:
        """Forget everything and start a new signal."""
        self._previous = np.zeros(1, self.dtype)
        self._pending = np.zeros(0, self.dtype)  # emphasised samples from the next frame's start
        self._static = np.zeros((0, self.config.n_ceps), self.dtype)
        self._static_start = 0  # frame index of self._static[0]
        self._n_frames = 0
        self._n_emitted = 0
        self._n_samples = 0
        self._finished = False

    def push(self, block: ArrayLike) -> np.ndarray:
        """Add the next samples; return the rows now complete (possibly none)."""
        if self._finished:
            raise RuntimeError("LFCCStream was flushed; call reset() before pushing a new signal")
        x = _as_signal(block, self.dtype)
        if x.shape[0]:
            emphasised = _emphasise(x, self.config.pre_emphasis, self._previous) if self.config.pre_emphasis else x
            self._previous = x[-1:].copy()
            self._n_samples += x.shape[0]
            pending = np.concatenate([self._pending, emphasised])
            length, hop = self._plan.frame_length, self._plan.hop_length
            n_whole = (pending.shape[0] - length) // hop + 1 if pending.shape[0] >= length else 0
            if n_whole:
                self._add_static(pending[: (n_whole - 1) * hop + length])
            self._pending = pending[n_whole * hop :].copy()
        return self._emit(final=False)

    def flush(self) -> np.ndarray:
        """End the signal and return the remaining rows.

        Raises
        ------
        ValueError
            The whole signal was too short for one frame.
        """
        if self._finished:
            raise RuntimeError("LFCCStream was already flushed; call reset() to start a new signal")
        self._finished = True
        length, hop = self._plan.frame_length, self._plan.hop_length
        if self._pending.shape[0] > length - hop:
            self._add_static(self._pending)
        self._pending = self._pending[:0]
        if self._n_frames == 0:
            raise ValueError(_too_short(self._n_samples, length, hop))
        return self._emit(final=True)

    def _add_static(self, emphasised: np.ndarray) -> None:
        rows = _static_rows(emphasised, self.config, self._plan)
        self._static = np.concatenate([self._static, rows])
        self._n_frames += rows.shape[0]

    def _emit(self, final: bool) -> np.ndarray:
        context = self.config.context_frames
        stop = self._n_frames if final else self._n_frames - context
        if stop <= self._n_emitted:
            return np.zeros((0, self.config.n_features), self.dtype)
        # Rows within `context` of a cut that is not a real edge of the signal would see a false edge,
        # so the window reaches `context` rows back and only rows that far from its end are returned.
        start = max(0, self._n_emitted - context)
        window = self._static[start - self._static_start :]
        rows = _assemble(window, self.config)[self._n_emitted - start : stop - start]
        keep = max(0, stop - context)
        self._static = self._static[keep - self._static_start :].copy()
        self._static_start = keep
        self._n_emitted = stop
        return rows


def iter_lfcc(
    blocks: Iterable[ArrayLike],
    sample_rate: int = 16000,
    preset: str | LFCCConfig = "asvspoof2019",
    dtype: DTypeLike = np.float64,
    **overrides: Any,
) -> Iterator[np.ndarray]:
    """Yield LFCC rows of consecutive signal blocks; their concatenation equals :func:`lfcc` of the whole."""
    stream = LFCCStream(sample_rate, preset, dtype, **overrides)
    for block in blocks:
        rows = stream.push(block)
        if rows.shape[0]:
            yield rows
    rows = stream.flush()
    if rows.shape[0]:
        yield rows

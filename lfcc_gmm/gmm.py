"""Diagonal-covariance Gaussian mixture with a chunked EM, sized for ASVspoof training sets.

The E-step never holds more than ``chunk_size x n_components`` responsibilities. A pass over the data
reduces to :class:`SufficientStatistics` (counts, first and second moments, log-likelihood), which add
up across chunks, utterances or machines; :func:`m_step` turns their sum into new parameters. This
split lets a distributed E-step (one :func:`sufficient_statistics` call per feature shard, summed on
the client) share every line of the M-step with :class:`DiagonalGMM.fit`::

    params = initial_params(sample, variance, 512, random_state=0)
    for _ in range(10):
        params = m_step(sum(client.gather(client.map(sufficient_statistics, shards, params=params))))

Log-densities use the expansion
``log N(x | k) = c_k + y . (nu_k / s_k) - 1/2 y**2 . (1 / s_k)`` with ``y = x - center``,
``nu_k = mu_k - center``, ``s_k`` the variances, so one matrix product per chunk gives all of them.
``center`` is the mixture mean ``sum_k w_k mu_k`` (the data mean after any M-step): centring keeps the
terms of the expansion small, which is what makes float32 products accurate enough for the log-densities.
The moments (responsibilities times [y, y**2, 1]) are always summed in float64: a component collapsing
onto frames far from the center (digital silence) gets its variance from a difference of large sums.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, NamedTuple, Union

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

ArrayOrSequence = Union[np.ndarray, Sequence[np.ndarray]]
# What np.dtype() accepts for the precision arguments: np.float32, np.dtype("float64"), "float32", ...
FloatDType = Union[np.dtype, type, str]

# VLFeat's rule (vl/gmm.c): a component whose soft count falls below 1 % of an even share of the frames
# is treated as empty and re-seeded.
_EMPTY_SHARE = 1e-2
_LOG_2PI = math.log(2.0 * math.pi)
# float32 log-densities and moments lose about eps32 * (squared Mahalanobis distance of the component's
# mean from the center) nats: 1e4 keeps that near 1e-3 and leaves only degenerate components (digital
# silence, conditions of 1e7 and more on real LFCCs) to float64.
_FLOAT32_MAX_CONDITION = 1e4


class GMMParams(NamedTuple):
    """Parameters of a diagonal GMM: ``weights`` (K,), ``means`` (K, d), ``covariances`` (K, d)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


@dataclass(frozen=True, eq=False)
class SufficientStatistics:
    """What the E-step over some frames contributes to the M-step; ``a + b`` pools two sets of frames.

    Moments are taken about ``center`` (the mixture mean of the parameters that produced them), so only
    statistics computed with the same parameters can be added. ``sum()`` works too (its start 0 is ignored).

    Attributes
    ----------
    n_frames : int
    log_likelihood : float
        Sum over the frames of log p(x).
    counts : ndarray (K,)
        Soft counts, sum_n r_nk.
    first : ndarray (K, d)
        sum_n r_nk (x_n - center).
    second : ndarray (K, d)
        sum_n r_nk (x_n - center) ** 2.
    center : ndarray (d,)
    """

    n_frames: int
    log_likelihood: float
    counts: np.ndarray
    first: np.ndarray
    second: np.ndarray
    center: np.ndarray

    def __add__(self, other: SufficientStatistics) -> SufficientStatistics:
        if not isinstance(other, SufficientStatistics):
            return NotImplemented
        if self.counts.shape != other.counts.shape or self.first.shape != other.first.shape:
            raise ValueError(
                f"cannot add statistics of a {self.first.shape} model to those of a {other.first.shape} model"
            )
        # Workers with another BLAS may round the center differently; that changes nothing that matters.
        if not np.allclose(self.center, other.center, rtol=1e-9, atol=1e-12):
            raise ValueError("cannot add statistics computed with different parameters (their centers differ)")
        return SufficientStatistics(
            n_frames=self.n_frames + other.n_frames,
            log_likelihood=self.log_likelihood + other.log_likelihood,
            counts=self.counts + other.counts,
            first=self.first + other.first,
            second=self.second + other.second,
            center=self.center,
        )

    def __radd__(self, other: object) -> SufficientStatistics:
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


def check_params(params: GMMParams | Mapping[str, np.ndarray], n_features: int | None = None) -> GMMParams:
    """Validate GMM parameters and return them as float64 :class:`GMMParams`.

    Parameters
    ----------
    params : GMMParams or mapping with keys "weights", "means", "covariances"
    n_features : int, optional
        Required dimensionality of the means.

    Raises
    ------
    ValueError
        Naming the array and what is wrong with it.
    """
    if isinstance(params, GMMParams):
        params = params._asdict()
    missing = [key for key in GMMParams._fields if key not in params]
    if missing:
        raise ValueError(f"GMM parameters lack {', '.join(missing)} (need weights, means, covariances)")
    weights, means, covariances = (np.array(params[key], dtype=np.float64) for key in GMMParams._fields)
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError(f"weights must be a non-empty 1-D array, got shape {weights.shape}")
    k = weights.size
    for name, value in (("means", means), ("covariances", covariances)):
        if value.ndim != 2 or value.shape[0] != k or value.shape[1] == 0:
            raise ValueError(f"{name} must have shape ({k}, n_features) to match weights, got {value.shape}")
    if covariances.shape != means.shape:
        raise ValueError(f"covariances have shape {covariances.shape} but means have {means.shape}")
    if n_features is not None and means.shape[1] != n_features:
        raise ValueError(f"means have {means.shape[1]} features, expected {n_features}")
    for name, value in zip(GMMParams._fields, (weights, means, covariances), strict=True):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contain NaN or infinity")
    if (weights < 0).any() or abs(weights.sum() - 1.0) > 1e-6:
        raise ValueError(f"weights must be non-negative and sum to 1, they sum to {weights.sum():.9g}")
    if (covariances <= 0).any():
        raise ValueError("covariances must be positive")
    return GMMParams(weights, means, covariances)


def _as_sequence(X: ArrayOrSequence, n_features: int | None = None) -> list[np.ndarray]:
    """Accept an (n, d) array or a sequence of them without copying float arrays; check shape only."""
    if isinstance(X, np.ndarray):
        arrays = [X]
        names = ["X"]
    elif isinstance(X, Sequence) and not isinstance(X, str):
        arrays = list(X)
        names = [f"X[{i}]" for i in range(len(arrays))]
    else:
        raise TypeError(f"X must be an (n_frames, n_features) array or a sequence of them, not {type(X).__name__}")
    if not arrays:
        raise ValueError("X is an empty sequence: no frames to work on")
    checked = []
    for name, array in zip(names, arrays, strict=True):
        array = np.asarray(array)
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_frames, n_features), got shape {array.shape}")
        if n_features is None:
            n_features = array.shape[1]
        if array.shape[1] != n_features or n_features == 0:
            raise ValueError(f"{name} has {array.shape[1]} features, expected {n_features}")
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
        checked.append(array)
    return checked


def _center(params: GMMParams) -> np.ndarray:
    """The mixture mean: the data mean after any M-step, so the centred frames stay small."""
    return params.weights @ params.means


class Design(NamedTuple):
    """A GMM laid out for scoring (see :func:`design`); build it once and score many utterances with it."""

    center: np.ndarray
    groups: list[tuple[np.ndarray, np.ndarray]]
    dtype: np.dtype


def design(params: GMMParams, dtype: FloatDType = np.float32) -> Design:
    """The center and, per precision group, (component indices, (2d+1, k) matrix mapping [y, y**2, 1] rows
    to weighted log-densities log w_k + log N(x | k)).

    Building it costs about as much as scoring a few seconds of audio, so callers that score many
    utterances with the same parameters should build it once and pass it to :func:`log_likelihood`.

    With float32, components whose mean lies far from the center in units of their own spread (squared
    Mahalanobis distance above ``_FLOAT32_MAX_CONDITION``) get a float64 group of their own.
    """
    dtype = np.dtype(dtype)
    weights, means, covariances = params
    center = _center(params)
    n_features = means.shape[1]
    precisions = 1.0 / covariances
    shifted = means - center
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    matrix = np.empty((2 * n_features + 1, weights.size))
    matrix[:n_features] = (shifted * precisions).T
    matrix[n_features:-1] = -0.5 * precisions.T
    condition = (shifted**2 * precisions).sum(axis=1)
    matrix[-1] = log_weights - 0.5 * (n_features * _LOG_2PI + np.log(covariances).sum(axis=1) + condition)
    precise = condition > _FLOAT32_MAX_CONDITION if dtype == np.float32 else np.zeros(weights.size, bool)
    if not precise.any():
        return Design(center, [(np.arange(weights.size), matrix.astype(dtype))], dtype)
    groups = [
        (np.flatnonzero(mask), np.ascontiguousarray(matrix[:, mask], dtype=group_dtype))
        for mask, group_dtype in ((~precise, dtype), (precise, np.dtype(np.float64)))
        if mask.any()
    ]
    return Design(center, groups, dtype)


def _chunks(arrays: Sequence[np.ndarray], center: np.ndarray, chunk_size: int) -> Iterator[np.ndarray]:
    """Yield float64 rows [x - center, (x - center)**2, 1] of all frames, in order, ``chunk_size`` at a time.

    The yielded array is a reused buffer: it is valid only until the next one is requested. Chunks span
    utterance boundaries, so the chunking (and every float result) depends only on the frame sequence.
    """
    n_features = center.size
    buffer = np.empty((chunk_size, 2 * n_features + 1))
    buffer[:, -1] = 1.0
    filled = 0
    for array in arrays:
        start = 0
        while start < len(array):
            take = min(len(array) - start, chunk_size - filled)
            np.subtract(array[start : start + take], center, out=buffer[filled : filled + take, :n_features])
            filled += take
            start += take
            if filled == chunk_size:
                np.square(buffer[:, :n_features], out=buffer[:, n_features:-1])
                yield buffer
                filled = 0
    if filled:
        np.square(buffer[:filled, :n_features], out=buffer[:filled, n_features:-1])
        yield buffer[:filled]


def _log_prob_chunks(
    arrays: Sequence[np.ndarray], params: GMMParams | Design, dtype: FloatDType, chunk_size: int
) -> Iterator[tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]]:
    """Per chunk: the float64 design rows and, per precision group, (component indices, (rows, k)
    weighted log-densities).

    All yielded arrays are reused buffers, valid until the next chunk is requested.
    """
    if not isinstance(params, Design):
        params = design(params, dtype)
    elif params.dtype != np.dtype(dtype):
        # A Design keeps no parameters to rebuild from.
        raise ValueError(f"a Design built for {params.dtype} cannot score in {np.dtype(dtype)}: "
                         "build one with design(params, dtype) for that precision")
    center, groups, _ = params
    width = groups[0][1].shape[0]
    # Buffers no larger than the input: scoring one short utterance should not touch megabytes.
    chunk_size = max(1, min(chunk_size, sum(len(a) for a in arrays)))
    # _chunks yields float64 rows; only a float32 group needs a rounded copy.
    rounded = np.empty((chunk_size, width), dtype=np.float32) if np.dtype(dtype) == np.float32 else None
    log_prob = [np.empty((chunk_size, matrix.shape[1]), dtype=matrix.dtype) for _, matrix in groups]
    for chunk in _chunks(arrays, center, chunk_size):
        rows = len(chunk)
        if rounded is not None:
            np.copyto(rounded[:rows], chunk, casting="same_kind")
        parts = []
        for (index, matrix), lp in zip(groups, log_prob, strict=True):
            rows_in = rounded[:rows] if rounded is not None and matrix.dtype != np.float64 else chunk
            np.matmul(rows_in, matrix, out=lp[:rows])
            parts.append((index, lp[:rows]))
        yield chunk, parts


def _exp_normalise(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Replace log-densities by exp(log-density - peak) in place; return the frame log-likelihoods' parts
    (peak, sum of the exponentials), both float64, with log p(x) = peak + log(sum)."""
    peak = np.max([lp.max(axis=1) for _, lp in parts], axis=0)
    # Round the peak to the coarsest group's precision (the first) so that every group subtracts the
    # same number and peak + log(sum) is consistent.
    peak = peak.astype(parts[0][1].dtype).astype(np.float64)
    total = np.zeros(len(peak))
    for _, lp in parts:
        lp -= peak.astype(lp.dtype)[:, None]
        np.exp(lp, out=lp)
        total += lp.sum(axis=1)
    return peak, total


def sufficient_statistics(
    X: ArrayOrSequence, params: GMMParams, *, dtype: FloatDType = np.float32, chunk_size: int = 4096
) -> SufficientStatistics:
    """E-step over frames: the statistics of ``X`` under ``params``, accumulated in float64.

    Parameters
    ----------
    X : ndarray (n, d) or sequence of them
        Frames (float32 or float64); a sequence is read in place, never concatenated.
    params : GMMParams
    dtype : float32 or float64
        Precision of the log-density product. With float32, components too narrow for it (far from the
        data mean relative to their spread, e.g. digital silence) are computed in float64. The moments
        are always float64.
    chunk_size : int
        Frames per chunk; memory is about ``chunk_size * K * 12`` bytes.

    Returns
    -------
    SufficientStatistics
    """
    arrays = _as_sequence(X, params.means.shape[1])
    n_components, n_features = params.means.shape
    moments = np.zeros((n_components, 2 * n_features + 1))
    responsibilities = np.empty((max(1, min(chunk_size, sum(len(a) for a in arrays))), n_components))
    total_log_likelihood = 0.0
    n_frames = 0
    for chunk, parts in _log_prob_chunks(arrays, params, dtype, chunk_size):
        peak, total = _exp_normalise(parts)
        total_log_likelihood += float(peak.sum() + np.log(total).sum())
        n_frames += len(peak)
        inverse = (1.0 / total)[:, None]
        for index, exponentials in parts:
            resp = np.multiply(exponentials, inverse, out=responsibilities[: len(peak), : len(index)])
            moments[index] += resp.T @ chunk
    return SufficientStatistics(
        n_frames=n_frames,
        log_likelihood=total_log_likelihood,
        counts=moments[:, -1].copy(),
        first=moments[:, :n_features].copy(),
        second=moments[:, n_features:-1].copy(),
        center=_center(params),
    )


def initial_params(
    sample: np.ndarray,
    variance: np.ndarray,
    n_components: int,
    *,
    init: str = "kmeans++",
    var_floor: float = 1e-4,
    random_state: int | np.random.RandomState | None = None,
) -> GMMParams:
    """Starting point of EM as VLFeat's ``'rand'`` initialisation builds it.

    Parameters
    ----------
    sample : ndarray (m, d)
        Frames to draw the means from (all frames, or a random subsample of them).
    variance : ndarray (d,)
        Per-dimension variance of all frames; every component starts with it (floored at ``var_floor``).
    n_components : int
    init : {"kmeans++", "random"}
        Means seeded by plain k-means++ (one candidate per seed, as VLFeat), or distinct frames drawn
        uniformly.
    var_floor : float
    random_state : int, RandomState or None

    Returns
    -------
    GMMParams
        Uniform weights.
    """
    rng = check_random_state(random_state)
    if len(sample) < n_components:
        raise ValueError(f"cannot seed {n_components} components from {len(sample)} frames")
    if init == "kmeans++":
        means = kmeans_plusplus(sample, n_components, random_state=rng, n_local_trials=1)[0]
    elif init == "random":
        means = sample[rng.choice(len(sample), n_components, replace=False)]
    else:
        raise ValueError(f"init must be 'kmeans++' or 'random', not {init!r}")
    covariances = np.tile(np.maximum(variance, var_floor), (n_components, 1))
    return GMMParams(np.full(n_components, 1.0 / n_components), np.array(means, dtype=np.float64), covariances)


def near_empty(stats: SufficientStatistics) -> np.ndarray:
    """Boolean mask of the components :func:`m_step` re-seeds: soft count below 1 % of an even share."""
    n_components = stats.counts.size
    return stats.counts < _EMPTY_SHARE * max(1.0, stats.n_frames / n_components)


def m_step(stats: SufficientStatistics, *, var_floor: float = 1e-4) -> GMMParams:
    """Maximum-likelihood parameters from pooled statistics, with variances floored at ``var_floor``.

    Near-empty components (:func:`near_empty`) are re-seeded by splitting the heaviest component along its
    highest-variance dimension into the two halves of a Gaussian cut at its mean (means mu +/- sigma
    sqrt(2/pi), variance sigma**2 (1 - 2/pi) along that dimension, half the weight each); together the
    halves keep the split component's mean and variance. This is the moment-matched form of VLFeat's
    split, which needs the frames themselves.

    Parameters
    ----------
    stats : SufficientStatistics
    var_floor : float
        Lower bound on every variance, applied after the update (the constrained maximum).

    Returns
    -------
    GMMParams
    """
    if stats.n_frames <= 0:
        raise ValueError("m_step needs statistics of at least one frame")
    empty = near_empty(stats)
    counts = np.where(empty, 1.0, stats.counts)[:, None]
    shifted_means = stats.first / counts
    covariances = np.maximum(stats.second / counts - shifted_means**2, var_floor)
    means = shifted_means + stats.center
    weights = np.where(empty, 0.0, stats.counts)
    for component in np.flatnonzero(empty):
        donor = int(np.argmax(weights))
        dim = int(np.argmax(covariances[donor]))
        sigma2 = covariances[donor, dim]
        offset = math.sqrt(sigma2 * 2.0 / math.pi)
        means[component] = means[donor]
        covariances[component] = covariances[donor]
        means[component, dim] += offset
        means[donor, dim] -= offset
        pair = [int(component), donor]
        covariances[pair, dim] = max(sigma2 * (1.0 - 2.0 / math.pi), var_floor)
        weights[pair] = weights[donor] / 2.0
    return GMMParams(weights / weights.sum(), means, covariances)


def log_likelihood(
    X: ArrayOrSequence, params: GMMParams | Design, *, dtype: FloatDType = np.float32, chunk_size: int = 4096
) -> np.ndarray:
    """Per-frame log p(x) = log-sum-exp over components, as float64 of shape (n,).

    Parameters
    ----------
    X : ndarray (n, d) or sequence of them
        A sequence gives the frames of all its arrays in order (score many utterances in one call, then
        ``np.add.reduceat`` by utterance: one large product is faster than many small ones).
    params : GMMParams or Design
        A :class:`Design` (from :func:`design`) skips rebuilding it; it must be built for ``dtype``.
    dtype : float32 or float64
        Precision of the matrix product (see :func:`sufficient_statistics`).
    chunk_size : int
    """
    arrays = _as_sequence(X, params.center.size if isinstance(params, Design) else params.means.shape[1])
    out = np.empty(sum(len(a) for a in arrays))
    start = 0
    for _, parts in _log_prob_chunks(arrays, params, dtype, chunk_size):
        peak, total = _exp_normalise(parts)
        out[start : start + len(peak)] = peak + np.log(total)
        start += len(peak)
    return out


class DiagonalGMM(DensityMixin, BaseEstimator):
    """Gaussian mixture with diagonal covariances, trained by chunked EM (scikit-learn API).

    Defaults follow the ASVspoof 2019 LFCC-GMM baseline (VLFeat ``vl_gmm(X, 512, 'MaxNumIterations', 10)``):
    512 components, 10 EM iterations, variances floored at 1e-4, uniform initial weights, every initial
    variance equal to the data's (unbiased) variance, and means seeded by k-means++ (what VLFeat's
    ``'rand'`` initialisation actually does: ``vl_kmeans_init_centers_plus_plus``, one candidate per
    seed). Seeding runs on a random subsample of ``init_samples`` frames instead of all frames.

    Parameters
    ----------
    n_components : int
    max_iter : int
        EM iterations (M-steps).
    init : {"kmeans++", "random"} or GMMParams or mapping
        "kmeans++": plain k-means++ seeds (spread out, as VLFeat); "random": uniformly drawn frames;
        or explicit initial weights/means/covariances.
    init_samples : int or None
        Frames drawn for seeding; None uses all (this copies them in float64).
    var_floor : float
        Lower bound on every variance, applied at initialisation and after every M-step.
    chunk_size : int
        Frames per E-step chunk; the E-step holds about ``chunk_size * n_components`` values (12 bytes
        each with float32).
    dtype : float32 or float64
        Precision of the E-step log-density product (the moments are always summed in float64).
    tol : float or None
        Stop when the mean per-frame log-likelihood changes by less than this; None runs ``max_iter``.
    random_state : int, RandomState or None
    verbose : int
        Print one line per iteration to stderr when > 0.
    callback : callable or None
        Called as ``callback(iteration, mean_log_likelihood)`` after every iteration.

    Attributes
    ----------
    weights_ : ndarray (K,)
    means_ : ndarray (K, d)
    covariances_ : ndarray (K, d)
        Diagonal variances.
    lower_bounds_ : ndarray (n_iter_,)
        Mean per-frame log-likelihood at each E-step (of the parameters entering that iteration).
    lower_bound_ : float
        The last of ``lower_bounds_`` (as scikit-learn's GaussianMixture).
    n_iter_ : int
    converged_ : bool
        Whether ``tol`` stopped EM (always False when ``tol`` is None).
    n_features_in_ : int

    Notes
    -----
    Near-empty components are re-seeded by splitting the heaviest one (see :func:`m_step`).
    """

    def __init__(
        self,
        n_components: int = 512,
        *,
        max_iter: int = 10,
        init: str | GMMParams | Mapping[str, np.ndarray] = "kmeans++",
        init_samples: int | None = 100_000,
        var_floor: float = 1e-4,
        chunk_size: int = 4096,
        dtype: FloatDType = np.float32,
        tol: float | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
        callback: Callable[[int, float], None] | None = None,
    ) -> None:
        self.n_components = n_components
        self.max_iter = max_iter
        self.init = init
        self.init_samples = init_samples
        self.var_floor = var_floor
        self.chunk_size = chunk_size
        self.dtype = dtype
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    def fit(self, X: ArrayOrSequence, y: None = None) -> DiagonalGMM:
        """Estimate the mixture from frames.

        Parameters
        ----------
        X : ndarray (n, d) or sequence of ndarrays (n_i, d)
            Frames, e.g. one array per utterance; float32 input is used in place.
        y : ignored

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        arrays = _validated_frames(X, self.chunk_size)
        n_frames = sum(len(a) for a in arrays)
        if n_frames < self.n_components:
            raise ValueError(f"X has {n_frames} frames, fewer than n_components={self.n_components}")
        start = self._initial_params(arrays, n_frames, check_random_state(self.random_state))
        return self.run_em(
            lambda params: sufficient_statistics(arrays, params, dtype=self.dtype, chunk_size=self.chunk_size), start
        )

    def run_em(self, e_step: Callable[[GMMParams], SufficientStatistics], start: GMMParams) -> DiagonalGMM:
        """EM from ``start``, where ``e_step(params)`` returns the statistics of all training frames.

        :meth:`fit` passes a local chunked E-step; a distributed fit passes one that maps
        :func:`sufficient_statistics` over shards and sums the results. Sets the fitted attributes.

        Parameters
        ----------
        e_step : callable
        start : GMMParams

        Returns
        -------
        self
        """
        self._check_hyperparameters()
        params = check_params(start)
        lower_bounds: list[float] = []
        converged = False
        for iteration in range(1, self.max_iter + 1):
            started = time.perf_counter()
            stats = e_step(params)
            lower_bounds.append(stats.log_likelihood / stats.n_frames)
            params = m_step(stats, var_floor=self.var_floor)
            if self.verbose > 0:
                print(
                    f"DiagonalGMM iteration {iteration}: mean log-likelihood {lower_bounds[-1]:.6f}, "
                    f"{int(near_empty(stats).sum())} components re-seeded, "
                    f"{time.perf_counter() - started:.2f} s",
                    file=sys.stderr,
                )
            if self.callback is not None:
                self.callback(iteration, lower_bounds[-1])
            if self.tol is not None and iteration > 1 and abs(lower_bounds[-1] - lower_bounds[-2]) < self.tol:
                converged = True
                break
        if self.tol is not None and not converged:
            warnings.warn(
                f"DiagonalGMM did not converge to tol={self.tol} in {self.max_iter} iterations",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._set_params(params)
        self.lower_bounds_ = np.array(lower_bounds)
        self.lower_bound_ = lower_bounds[-1]
        self.n_iter_ = len(lower_bounds)
        self.converged_ = converged
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Per-frame log-likelihood log p(x), float64 of shape (n,)."""
        return log_likelihood(self._check_frames(X), self.params_, dtype=self.dtype, chunk_size=self.chunk_size)

    def score(self, X: np.ndarray, y: None = None) -> float:
        """Mean per-frame log-likelihood."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of the most responsible component for each frame (as GaussianMixture.predict)."""
        X = self._check_frames(X)
        labels = []
        for _, parts in _log_prob_chunks([X], self.params_, self.dtype, self.chunk_size):
            best = np.stack([lp.max(axis=1) for _, lp in parts])
            winner = best.argmax(axis=0)
            group_labels = np.stack([index[lp.argmax(axis=1)] for index, lp in parts])
            labels.append(group_labels[winner, np.arange(len(winner))])
        return np.concatenate(labels) if labels else np.empty(0, dtype=np.intp)

    @property
    def params_(self) -> GMMParams:
        """The fitted parameters as :class:`GMMParams` (for :func:`sufficient_statistics` and friends)."""
        check_is_fitted(self, ["weights_", "means_", "covariances_"])
        return GMMParams(self.weights_, self.means_, self.covariances_)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted parameters as float64 arrays: "weights", "means", "covariances" (for .npz files)."""
        return {key: value.copy() for key, value in self.params_._asdict().items()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], **params: Any) -> DiagonalGMM:
        """A fitted model from :meth:`to_arrays` output; ``params`` are constructor arguments.

        ``n_components`` comes from the arrays. Training diagnostics (``lower_bounds_``, ``n_iter_``,
        ``converged_``) are not part of the arrays and stay unset.
        """
        checked = check_params(arrays)
        model = cls(n_components=checked.weights.size, **params)
        model._set_params(checked)
        return model

    def _set_params(self, params: GMMParams) -> None:
        self.weights_, self.means_, self.covariances_ = params
        self.n_features_in_ = params.means.shape[1]

    def _check_frames(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, ["weights_", "means_", "covariances_"])
        X = check_array(X, dtype=(np.float64, np.float32), ensure_min_samples=0)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but this DiagonalGMM expects {self.n_features_in_}")
        return X

    def _check_hyperparameters(self) -> None:
        def count(value: object, minimum: int) -> bool:
            return isinstance(value, Integral) and int(value) >= minimum

        def positive(value: object, allow_zero: bool = False) -> bool:
            return isinstance(value, Real) and (float(value) >= 0 if allow_zero else float(value) > 0)

        checks = (
            ("n_components", self.n_components, count(self.n_components, 1)),
            ("max_iter", self.max_iter, count(self.max_iter, 1)),
            ("chunk_size", self.chunk_size, count(self.chunk_size, 1)),
            ("var_floor", self.var_floor, positive(self.var_floor)),
            ("tol", self.tol, self.tol is None or positive(self.tol, allow_zero=True)),
            (
                "init_samples",
                self.init_samples,
                self.init_samples is None or count(self.init_samples, self.n_components),
            ),
            ("dtype", self.dtype, np.dtype(self.dtype) in (np.float32, np.float64)),
        )
        for name, value, ok in checks:
            if not ok:
                raise ValueError(f"DiagonalGMM: invalid {name}={value!r}")
        if isinstance(self.init, str) and self.init not in ("kmeans++", "random"):
            raise ValueError(f"DiagonalGMM: init must be 'kmeans++', 'random' or parameters, not {self.init!r}")

    def _initial_params(self, arrays: list[np.ndarray], n_frames: int, rng: np.random.RandomState) -> GMMParams:
        n_features = arrays[0].shape[1]
        if not isinstance(self.init, str):
            params = check_params(self.init, n_features)
            if params.weights.size != self.n_components:
                raise ValueError(f"init has {params.weights.size} components but n_components={self.n_components}")
            return params
        n_samples = n_frames if self.init_samples is None else min(self.init_samples, n_frames)
        sample = _subsample(arrays, n_frames, n_samples, rng)
        variance = _variance(arrays, n_frames, sample.mean(axis=0), self.chunk_size)
        return initial_params(
            sample, variance, self.n_components, init=self.init, var_floor=self.var_floor, random_state=rng
        )


def _validated_frames(X: ArrayOrSequence, chunk_size: int) -> list[np.ndarray]:
    """Frames as a list of float arrays, with every value checked finite (block-wise: no big temporaries)."""
    arrays = _as_sequence(X)
    checked = []
    for index, array in enumerate(arrays):
        name = "X" if isinstance(X, np.ndarray) else f"X[{index}]"
        if array.dtype not in (np.float32, np.float64):
            array = array.astype(np.float64)
        for start in range(0, len(array), chunk_size):
            block = array[start : start + chunk_size]
            bad = ~np.isfinite(block).all(axis=1)
            if bad.any():
                raise ValueError(f"{name} row {start + int(np.argmax(bad))} contains NaN or infinity")
        checked.append(array)
    return checked


def _subsample(arrays: list[np.ndarray], n_frames: int, n_samples: int, rng: np.random.RandomState) -> np.ndarray:
    """``n_samples`` distinct frames drawn uniformly from all arrays, in frame order, as float64."""
    if n_samples == n_frames:
        indices = np.arange(n_frames)
    else:
        indices = np.sort(rng.choice(n_frames, n_samples, replace=False))
    offsets = np.cumsum([0] + [len(a) for a in arrays])
    owners = np.searchsorted(offsets, indices, side="right") - 1
    sample = np.empty((n_samples, arrays[0].shape[1]))
    bounds = np.searchsorted(owners, np.arange(len(arrays) + 1))
    for index, array in enumerate(arrays):
        lo, hi = bounds[index], bounds[index + 1]
        if hi > lo:
            sample[lo:hi] = array[indices[lo:hi] - offsets[index]]
    return sample


def _variance(arrays: list[np.ndarray], n_frames: int, shift: np.ndarray, chunk_size: int) -> np.ndarray:
    """Unbiased per-dimension variance of all frames, accumulated about ``shift`` in float64."""
    total = np.zeros_like(shift)
    total_sq = np.zeros_like(shift)
    for array in arrays:
        for start in range(0, len(array), chunk_size):
            block = array[start : start + chunk_size] - shift
            total += block.sum(axis=0)
            total_sq += np.einsum("ij,ij->j", block, block)
    return (total_sq - total**2 / n_frames) / max(n_frames - 1, 1)

"""Rounding-error bounds that the tests' float tolerances are derived from (CONTRIBUTING.md, "Tolerances").

``u`` is the unit roundoff, 2**-24 in float32 and 2**-53 in float64. A sum of n terms computed in any order, with
or without fused multiply-adds, is within ``gamma(n, u) * sum(|terms|)`` of the exact sum, with
``gamma(n, u) = n u / (1 - n u)`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1 and
§4.2); two evaluations in different orders (another BLAS kernel, thread count, batch or chunk) are within twice
that of each other. Elementwise +, -, *, / and sqrt are correctly rounded, so they give the same bits everywhere;
``exp`` and ``log`` are not, and are allowed ``TRANSCENDENTAL_ULPS`` ulps here (NumPy documents its SIMD float32
loops within 4).

The functions below turn these rules into elementwise bounds for the computations whose results the tests compare
across summation orders: the LFCC (either precision), the GMM log-likelihood of :mod:`lfcc_gmm.gmm`, its EM
statistics and the LFCC-GMM score. For deep networks, :func:`rawnet.precision.order_tolerance` measures the
rounding instead.
"""

from __future__ import annotations

import numpy as np

from lfcc_gmm.features import EPS, LFCCConfig, _plan, dct_matrix, frame_signal, get_config, power_spectrum, pre_emphasis
from lfcc_gmm.gmm import GMMParams, design

U32 = 2.0**-24
U64 = 2.0**-53
TRANSCENDENTAL_ULPS = 4


def unit_roundoff(dtype) -> float:
    """u of a float dtype: half its machine epsilon."""
    return float(np.finfo(dtype).eps) / 2


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n: the relative error bound of a sum of ``n`` terms (any order) or of n roundings."""
    assert n * u < 1
    return n * u / (1 - n * u)


def _deltas_bound(magnitude: np.ndarray, bound: np.ndarray, config: LFCCConfig, u: float,
                  evaluations: int = 2) -> tuple[np.ndarray, ...]:
    """For deltas (as :func:`lfcc_gmm.features.deltas`) of rows bounded by ``magnitude`` whose inputs differ by at
    most ``bound``: a bound on |d| and on the difference of the deltas. The inputs' differences add with the
    weights k (/ 2 sum k**2 for HTK), and each of the ``evaluations`` that rounds (two compared with each other,
    or one compared with exact) rounds 2h - 1 sums, h products and the division: gamma_(3h+1) of the |terms|."""
    h = config.delta_half_length
    n = len(magnitude)

    def pad(a: np.ndarray) -> np.ndarray:
        return np.concatenate([np.repeat(a[:1], h, axis=0), a, np.repeat(a[-1:], h, axis=0)])

    padded, padded_bound = pad(magnitude), pad(bound)
    spread, moved = np.zeros_like(magnitude), np.zeros_like(magnitude)
    for k in range(1, h + 1):
        spread += k * (padded[h + k : h + k + n] + padded[h - k : h - k + n])
        moved += k * (padded_bound[h + k : h + k + n] + padded_bound[h - k : h - k + n])
    norm = 2 * sum(k * k for k in range(1, h + 1)) if config.delta_style == "htk" else 1
    return spread / norm, (moved + evaluations * gamma(3 * h + 1, u) * spread) / norm


def lfcc_order_bound(signal: np.ndarray, preset: str = "asvspoof2019", dtype=np.float64, sample_rate: int = 16000,
                     **overrides) -> np.ndarray:
    """Elementwise bound on |x' - x| between two evaluations of ``lfcc(signal, sample_rate, preset, dtype,
    **overrides)`` whose matrix products run in other batches or kernels (LFCCStream blocks, another BLAS).

    Each frame goes through the same elementwise steps and the same FFT in every evaluation (pocketfft transforms
    every frame with the same operations, whatever its batch); only the two products depend on the order.
    Filterbank energies E = P F sum non-negative terms: relative error gamma_nbins in each evaluation. The log
    adds ``TRANSCENDENTAL_ULPS`` ulps; the cepstra c = log(E) B sum n_filters terms; the deltas subtract rows
    (:func:`_deltas_bound`). Magnitudes are bounded from |log E| of a float64 evaluation, with 1 % to spare for
    the evaluations' own error.
    """
    config = get_config(preset, **overrides)
    u = unit_roundoff(dtype)
    plan = _plan(config, sample_rate, np.dtype(np.float64))
    x = np.asarray(signal, dtype=dtype).astype(np.float64)
    emphasised = pre_emphasis(x, config.pre_emphasis)
    frames = frame_signal(emphasised, plan.frame_length, plan.hop_length, plan.window, pad_to=config.n_fft)
    energies = power_spectrum(frames)[:, plan.first_bin : plan.stop_bin] @ plan.filterbank
    log_energy = np.abs(np.log(energies + EPS)) * 1.01
    n_bins = int(np.count_nonzero(plan.filterbank, axis=0).max())
    g = gamma(n_bins, u)
    # |ln E' - ln E| <= ln((1 + g) / (1 - g)) (the products) + 2 u (adding the floor) + both logs' ulps.
    log_bound = np.log1p(2 * g / (1 - g)) + 2 * u + 2 * TRANSCENDENTAL_ULPS * 2 * u * log_energy
    basis = np.abs(dct_matrix(config.n_filters, config.n_ceps).T * np.log10(np.e))
    static_magnitude = log_energy @ basis
    static = log_bound @ basis + 2 * gamma(config.n_filters, u) * ((log_energy + log_bound) @ basis)
    delta_magnitude, delta = _deltas_bound(static_magnitude, static, config, u)
    _, delta_delta = _deltas_bound(delta_magnitude, delta, config, u)
    blocks = [b for b, on in ((static, config.static), (delta, config.delta), (delta_delta, config.delta_delta)) if on]
    return np.concatenate(blocks, axis=1)


def _design_rows(frames: np.ndarray, center: np.ndarray) -> np.ndarray:
    y = frames.astype(np.float64) - center
    return np.concatenate([y, y**2, np.ones((len(y), 1))], axis=1)


def gmm_order_bound(frames: np.ndarray, params: GMMParams, frame_bound: np.ndarray | float = 0.0,
                    dtype=np.float32) -> np.ndarray:
    """Per frame: a bound on |LL'(x') - LL(x)| for two evaluations of :func:`lfcc_gmm.gmm.log_likelihood` in
    ``dtype`` (any BLAS kernel, chunking or thread count) at frames x and x' with |x' - x| <= ``frame_bound``.

    Each evaluation: log w_k N(x | k) is a dot product of m = 2d + 1 terms [y, y**2, 1] . M_k, rounded to its
    group's precision (float64 for the components float32 cannot hold, see ``lfcc_gmm.gmm.design``), so within
    (gamma_m + u) sum_j |r_j M_jk| (the extra u: rounding r to float32). The log-sum-exp is 1-Lipschitz in the
    max norm and its own steps (subtract the peak, exp, sum of K, log) add (K + 2 TRANSCENDENTAL_ULPS + 2) u.
    Between the frames, each Gaussian moves by exactly (|x - mu| |dx| + dx**2 / 2) / var summed over dimensions.
    """
    weights, means, covariances = params
    center, groups, _ = design(params, dtype)
    rows = _design_rows(frames, center)
    dx = np.broadcast_to(np.asarray(frame_bound, dtype=np.float64), frames.shape)
    x = frames.astype(np.float64)
    bound = np.zeros(len(frames))
    for index, matrix in groups:
        u = unit_roundoff(matrix.dtype)
        # The rows of the two evaluations differ by at most what dx changes in [y, y**2, 1].
        abs_rows = np.abs(rows) + np.concatenate([dx, dx * (2 * np.abs(rows[:, : dx.shape[1]]) + dx),
                                                  np.zeros((len(dx), 1))], axis=1)
        products = 2 * (gamma(matrix.shape[0], u) + u) * (abs_rows @ np.abs(matrix.astype(np.float64)))
        for column, k in enumerate(index):
            moved = ((np.abs(x - means[k]) * dx + dx**2 / 2) / covariances[k]).sum(axis=1)
            bound = np.maximum(bound, products[:, column] + moved)
    return bound + 2 * (weights.size + 2 * TRANSCENDENTAL_ULPS + 2) * unit_roundoff(dtype)


def expansion_bound(frames: np.ndarray, params: GMMParams, center: np.ndarray | float, u: float) -> np.ndarray:
    """Per frame: a bound on the error of any evaluation of log p(x) that expands the squares about ``center``
    (:mod:`lfcc_gmm.gmm` about the mixture mean, scikit-learn about 0; ``center=frames`` is the direct formula,
    sum (x - mu)**2 / var) with unit roundoff ``u``.

    log w_k N(x | k) sums 3d + 3 terms (the expansion of each square, log w_k, the log-determinant and d log 2 pi)
    whose absolute values add up to at most (|x - c| + |mu_k - c|)**2 / (2 var) per dimension plus
    |log w_k| + |log det| / 2 + d log(2 pi) / 2; the log-sum-exp adds (K + 2 TRANSCENDENTAL_ULPS + 2) u.
    """
    weights, means, covariances = params
    x = frames.astype(np.float64) - center
    n_features = means.shape[1]
    bound = np.zeros(len(frames))
    for k in range(weights.size):
        terms = (((np.abs(x) + np.abs(means[k] - center)) ** 2) / (2 * covariances[k])).sum(axis=1)
        terms += abs(np.log(weights[k])) + 0.5 * np.abs(np.log(2 * np.pi * covariances[k])).sum()
        bound = np.maximum(bound, gamma(3 * n_features + 3, u) * terms)
    return bound + (weights.size + 2 * TRANSCENDENTAL_ULPS + 2) * u


def statistics_order_bound(frames: np.ndarray, params: GMMParams, dtype=np.float64,
                           beta: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Bounds on the differences of two evaluations of :func:`lfcc_gmm.gmm.sufficient_statistics` over the same
    frames, summed in other groups (shards, chunks) and with per-row products of another kernel.

    Each frame's log-likelihood differs by at most beta_n (:func:`gmm_order_bound`), so its responsibilities by a
    factor within exp(+-2 beta_n); the float64 sums of n terms add 2 gamma_n of the sum of |terms|. Returns bounds
    for "log_likelihood" (scalar), "counts" (K,), "first" and "second" (K, d). ``beta`` replaces the per-frame
    bound (e.g. by :func:`expansion_bound` terms when the other evaluation is scikit-learn's).
    """
    from lfcc_gmm.gmm import _center

    x = frames.astype(np.float64)
    n = len(x)
    beta = gmm_order_bound(frames, params, dtype=dtype) if beta is None else beta
    resp_bound = np.expm1(2 * beta)[:, None]
    log_likelihood, responsibilities = _float64_posteriors(x, params)
    y = x - _center(params)
    g = 2 * gamma(n, U64)
    bounds = {"log_likelihood": beta.sum() + g * np.abs(log_likelihood).sum()}
    for name, values in (("counts", np.ones((n, 1))), ("first", np.abs(y)), ("second", y**2)):
        weighted = responsibilities.T @ values
        bounds[name] = ((responsibilities * resp_bound).T @ values + g * weighted).squeeze()
    return bounds


def m_step_bound(stats, bounds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Bounds on the differences of two :func:`lfcc_gmm.gmm.m_step` results from statistics within ``bounds``
    (:func:`statistics_order_bound`) of each other, none of them near-empty: weights n_k / n, means
    first_k / n_k + center, variances second_k / n_k - (first_k / n_k)**2, each operation adding its rounding."""
    counts, first, second = stats.counts, stats.first, stats.second
    c = counts[:, None]
    relative_count = bounds["counts"] / counts + 3 * U64
    shifted = first / c
    shifted_bound = (bounds["first"] + np.abs(shifted) * bounds["counts"][:, None]) / c + 2 * U64 * np.abs(shifted)
    mean_square = second / c
    square_bound = (bounds["second"] + mean_square * bounds["counts"][:, None]) / c + 2 * U64 * mean_square
    return {
        "weights": (relative_count + bounds["counts"].sum() / counts.sum()) * counts / counts.sum(),
        "means": shifted_bound + 2 * U64 * np.abs(shifted + stats.center),
        "covariances": square_bound + (2 * np.abs(shifted) + shifted_bound) * shifted_bound
        + 4 * U64 * (mean_square + shifted**2),
    }


def em_bound(frames: np.ndarray, params: GMMParams, iterations: int, beta: np.ndarray | None = None
             ) -> dict[str, np.ndarray]:
    """Bounds on the parameters of two float64 EM runs of ``iterations`` iterations over the same frames whose
    sums are grouped differently (chunks, shards, another implementation: ``beta``, see
    :func:`statistics_order_bound`), at parameters near ``params``.

    Each iteration adds at most one :func:`m_step_bound` of its own rounding. That the differences then add up
    over the iterations, rather than grow, assumes EM does not amplify a perturbation of its parameters: near a
    fixed point its Jacobian's spectral radius is the fraction of missing information, below 1.
    """
    from lfcc_gmm.gmm import sufficient_statistics

    stats = sufficient_statistics(frames, params, dtype=np.float64)
    bounds = m_step_bound(stats, statistics_order_bound(frames, params, beta=beta))
    return {name: iterations * value for name, value in bounds.items()}


def _float64_posteriors(x: np.ndarray, params: GMMParams) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame log p(x) and responsibilities in float64, directly from the definition (for magnitudes)."""
    from scipy.special import logsumexp

    weights, means, covariances = params
    log_densities = np.log(weights) - 0.5 * (np.log(2 * np.pi * covariances).sum(1)
                                             + ((x[:, None] - means) ** 2 / covariances).sum(-1))
    total = logsumexp(log_densities, axis=1)
    return total, np.exp(log_densities - total[:, None])


def mean_llr_order_bound(frames: np.ndarray, bonafide: GMMParams, spoof: GMMParams,
                         frame_bound: np.ndarray | float = 0.0) -> float:
    """Bound on the difference of two evaluations of the LFCC-GMM score, mean_t LL_bona(x_t) - LL_spoof(x_t), at
    frames within ``frame_bound`` of each other: the per-frame bounds of both models, averaged, plus the float64
    means of n log-likelihoods (2 gamma_n sum |LL| / n)."""
    n = len(frames)
    total = 0.0
    for params in (bonafide, spoof):
        total += float(gmm_order_bound(frames, params, frame_bound).mean())
        magnitude = np.abs(_float64_posteriors(frames.astype(np.float64), params)[0]).sum()
        total += 2 * gamma(n, U64) * float(magnitude) / n
    return total


def assert_within(actual: np.ndarray, expected: np.ndarray, bound: np.ndarray | float, err_msg: str = "") -> None:
    """Assert |actual - expected| <= bound elementwise, reporting the worst element against its bound."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{err_msg} shapes {actual.shape} and {expected.shape} differ"
    excess = np.abs(actual - expected) / np.broadcast_to(bound, actual.shape)
    worst = np.unravel_index(np.argmax(excess), excess.shape) if excess.size else ()
    assert not excess.size or excess[worst] <= 1, (
        f"{err_msg} element {worst}: {actual[worst]!r} vs {expected[worst]!r}, "
        f"difference {abs(actual[worst] - expected[worst]):.3g} exceeds its bound {excess[worst]:.3g} times"
    )

"""Rounding-error bounds that the tests' float tolerances are derived from (CONTRIBUTING.md, "Tolerances").

``u`` is the unit roundoff, 2**-24 in float32 and 2**-53 in float64. A sum of n terms computed in any order, with
or without fused multiply-adds, is within ``gamma(n, u) * sum(|terms|)`` of the exact sum, with
``gamma(n, u) = n u / (1 - n u)`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1 and
§4.2); two evaluations in different orders (another BLAS kernel, thread count, batch or chunk) are within twice
that of each other. Elementwise +, -, *, / and sqrt are correctly rounded, so they give the same bits everywhere;
``exp`` and ``log`` are not, and are allowed ``TRANSCENDENTAL_ULPS`` ulps here (NumPy's SIMD float32 loops
document at most 4).

The functions below turn these rules into elementwise bounds for the two computations whose results the tests
compare across summation orders: the float32 LFCC and the GMM log-likelihood of :mod:`lfcc_gmm.gmm`.
"""

from __future__ import annotations

import numpy as np

from lfcc_gmm.features import PRESETS, dct_matrix
from lfcc_gmm.gmm import GMMParams, design

U32 = 2.0**-24
U64 = 2.0**-53
TRANSCENDENTAL_ULPS = 4


def unit_roundoff(dtype) -> float:
    return float(np.finfo(dtype).eps) / 2


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n: the relative error bound of a sum of ``n`` terms (any order) or of n roundings."""
    assert n * u < 1
    return n * u / (1 - n * u)


def _deltas_bound(values: np.ndarray, bound: np.ndarray, u: float) -> tuple[np.ndarray, np.ndarray]:
    """ASVspoof 2019 deltas d[t] = c[t+1] - c[t-1] (edges repeated) and the bound on |d' - d| when |c' - c| <= bound:
    the inputs' differences add, and each evaluation rounds the difference once (u |d|)."""
    padded = np.concatenate([values[:1], values, values[-1:]])
    padded_bound = np.concatenate([bound[:1], bound, bound[-1:]])
    d = padded[2:] - padded[:-2]
    return d, padded_bound[2:] + padded_bound[:-2] + 2 * u * np.abs(d)


def lfcc_order_bound(rows: np.ndarray, preset: str = "asvspoof2019") -> np.ndarray:
    """Elementwise bound on |x' - x| for two float32 evaluations of the same ``lfcc(..., dtype=float32)`` rows
    whose matrix products run in other batches or kernels (LFCCStream blocks, another BLAS).

    Only the two products depend on the order: the filterbank energies E = P F (non-negative terms: relative
    error gamma_nbins in each evaluation) and the cepstra c = log(E) B (20 terms). The log adds its own ulps;
    the deltas subtract rows (the differences add, plus one rounding each). ``rows`` are the float32 rows of
    one evaluation (``[static | delta | delta-delta]``, as many cepstra as filters, 2019 delta style).
    """
    config = PRESETS[preset]
    assert config.n_ceps == config.n_filters and config.delta_style == "asvspoof2019"
    assert config.delta_half_length == 1 and config.static and config.delta and config.delta_delta
    u = U32
    n = config.n_ceps
    x = rows.astype(np.float64)
    basis = dct_matrix(n, n).T * np.log10(np.e)  # c = ln(E) @ basis
    log_energy = x[:, :n] @ np.linalg.inv(basis)
    n_bins = config.n_fft // 2 + 1
    # |ln E' - ln E| <= |ln((1 + g) / (1 - g))| (the products) + 2 u (adding the floor) + the two logs' ulps.
    g = gamma(n_bins, u)
    log_bound = np.log1p(2 * g / (1 - g)) + 2 * u + 2 * TRANSCENDENTAL_ULPS * 2 * u * np.abs(log_energy)
    abs_basis = np.abs(basis)
    static = log_bound @ abs_basis + 2 * gamma(n, u) * ((np.abs(log_energy) + log_bound) @ abs_basis)
    delta_values, delta = _deltas_bound(x[:, :n], static, u)
    _, delta_delta = _deltas_bound(delta_values, delta, u)
    return np.concatenate([static, delta, delta_delta], axis=1)


def _design_rows(frames: np.ndarray, center: np.ndarray) -> np.ndarray:
    y = frames.astype(np.float64) - center
    return np.concatenate([y, y**2, np.ones((len(y), 1))], axis=1)


def gmm_order_bound(frames: np.ndarray, params: GMMParams, frame_bound: np.ndarray | float = 0.0) -> np.ndarray:
    """Per frame: a bound on |LL'(x') - LL(x)| for two evaluations of :func:`lfcc_gmm.gmm.log_likelihood` (float32
    design, any BLAS kernel, chunking or thread count) at frames x and x' with |x' - x| <= ``frame_bound``.

    Each evaluation: log w_k N(x | k) is a dot product of m = 2d + 1 terms [y, y**2, 1] . M_k, rounded to its
    group's precision (float64 for the components float32 cannot hold, see ``lfcc_gmm.gmm.design``), so within
    (gamma_m + u) sum_j |r_j M_jk| (the extra u: rounding r to float32). The log-sum-exp is 1-Lipschitz in the
    max norm and its own float32 steps (subtract the peak, exp, sum of K, log) add (K + 2 TRANSCENDENTAL_ULPS + 2) u.
    Between the frames, each Gaussian moves by exactly (|x - mu| |dx| + dx**2 / 2) / var summed over dimensions.
    """
    weights, means, covariances = params
    center, groups, _ = design(params)
    rows = _design_rows(frames, center)
    dx = np.broadcast_to(np.asarray(frame_bound, dtype=np.float64), frames.shape)
    x = frames.astype(np.float64)
    n_components = weights.size
    bound = np.zeros(len(frames))
    for index, matrix in groups:
        u = unit_roundoff(matrix.dtype)
        m = matrix.shape[0]
        # The rows of the two evaluations differ by at most what dx changes [y, y**2, 1].
        abs_rows = np.abs(rows) + np.concatenate([dx, dx * (2 * np.abs(rows[:, : dx.shape[1]]) + dx),
                                                  np.zeros((len(dx), 1))], axis=1)
        products = 2 * (gamma(m, u) + u) * (abs_rows @ np.abs(matrix.astype(np.float64)))
        for column, k in enumerate(index):
            moved = ((np.abs(x - means[k]) * dx + dx**2 / 2) / covariances[k]).sum(axis=1)
            bound = np.maximum(bound, products[:, column] + moved)
    return bound + 2 * (n_components + 2 * TRANSCENDENTAL_ULPS + 2) * U32

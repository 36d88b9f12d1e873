"""DiagonalGMM and its chunked EM: parity with scikit-learn's GaussianMixture, EM invariants, persistence."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from error_bounds import (
    U64,
    assert_within,
    em_bound,
    expansion_bound,
    gamma,
    gmm_order_bound,
    m_step_bound,
    statistics_order_bound,
)
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.mixture import GaussianMixture

from lfcc_gmm.gmm import (
    DiagonalGMM,
    GMMParams,
    check_params,
    initial_params,
    log_likelihood,
    m_step,
    near_empty,
    sufficient_statistics,
)


def _clusters(n: int, n_clusters: int, n_features: int, seed: int, spread: float = 4.0) -> np.ndarray:
    """Frames from a mixture of axis-aligned Gaussians with unequal widths per dimension."""
    rng = np.random.RandomState(seed)
    centers = rng.normal(scale=spread, size=(n_clusters, n_features))
    widths = rng.uniform(0.3, 2.0, size=(n_clusters, n_features))
    labels = rng.randint(n_clusters, size=n)
    return centers[labels] + rng.normal(size=(n, n_features)) * widths[labels]


def _lfcc_like(n: int, seed: int) -> np.ndarray:
    """LFCC-shaped frames: 20 statics (c0 spread ~9, higher cepstra shrinking), deltas, delta-deltas, and
    10 % digital-silence frames (c0 = -70, the rest 0) as the official extractor produces for zeros."""
    rng = np.random.RandomState(seed)
    scale = np.concatenate([[9.0], 0.15 + 3.0 * np.exp(-np.arange(19) / 2.0)])
    scale = np.concatenate([scale, 0.6 * scale, 0.9 * scale])
    centers = rng.normal(size=(12, 60)) * scale
    centers[:, 0] -= 12.0
    frames = centers[rng.randint(12, size=n)] + 0.4 * scale * rng.normal(size=(n, 60))
    silent = rng.rand(n) < 0.1
    frames[silent] = 0.0
    frames[silent, 0] = -70.0
    return frames


def _random_params(n_components: int, n_features: int, seed: int) -> GMMParams:
    rng = np.random.RandomState(seed)
    weights = rng.uniform(0.5, 2.0, n_components)
    return GMMParams(
        weights / weights.sum(),
        rng.normal(scale=3.0, size=(n_components, n_features)),
        rng.uniform(0.2, 3.0, size=(n_components, n_features)),
    )


def _sklearn_with(params: GMMParams) -> GaussianMixture:
    reference = GaussianMixture(params.weights.size, covariance_type="diag")
    reference.weights_, reference.means_, reference.covariances_ = params
    reference.precisions_cholesky_ = 1.0 / np.sqrt(params.covariances)
    return reference


def test_score_samples_matches_sklearn_in_float64():
    params = _random_params(7, 5, seed=1)
    X = _clusters(500, 7, 5, seed=2)
    gmm = DiagonalGMM.from_arrays(params._asdict(), dtype=np.float64)
    expected = _sklearn_with(params).score_samples(X)
    result = gmm.score_samples(X)
    assert result.dtype == np.float64
    # Two float64 expansions of the same formula (ours about the mixture mean, scikit-learn's about 0).
    bound = _both_expansions_bound(X, params)
    assert_within(result, expected, bound)
    assert gmm.score(X) == pytest.approx(expected.mean(), abs=bound.mean() + _mean_bound(expected))


def _both_expansions_bound(X, params: GMMParams) -> np.ndarray:
    """How far our float64 log p(x) and scikit-learn's can be apart: each within its expansion's rounding bound."""
    return expansion_bound(X, params, params.weights @ params.means, U64) + expansion_bound(X, params, 0.0, U64)


def _mean_bound(values) -> float:
    """Two float64 means of the same n values, summed in different orders."""
    return 2 * gamma(len(values), U64) * float(np.abs(values).mean())


def test_score_samples_in_float32_within_1e3_nats_even_with_digital_silence():
    # A component sitting on the silence frames has floored variances and lies far from the data mean in
    # units of them; plain float32 products would be off by tens of nats there.
    X = _lfcc_like(2000, seed=3)
    speech = DiagonalGMM(15, dtype=np.float64, random_state=0).fit(X[X[:, 0] > -60]).params_
    silence_mean = np.zeros((1, 60))
    silence_mean[0, 0] = -70.0
    params = GMMParams(
        np.append(0.9 * speech.weights, 0.1),
        np.vstack([speech.means, silence_mean]),
        np.vstack([speech.covariances, np.full((1, 60), 1e-4)]),
    )
    expected = _sklearn_with(params).score_samples(X)
    result = DiagonalGMM.from_arrays(params._asdict(), dtype=np.float32).score_samples(X)
    assert result.dtype == np.float64
    # The accuracy gmm.design promises: float32 only for components within _FLOAT32_MAX_CONDITION = 1e4 (squared
    # Mahalanobis distance of their mean from the center), whose log-densities then lose about eps32 * 1e4 = 6e-4
    # nats; the others are computed in float64.
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-3)


def test_predict_matches_sklearn_component_assignment():
    params = _random_params(6, 4, seed=4)
    X = _clusters(400, 6, 4, seed=5)
    expected = _sklearn_with(params).predict(X)
    for dtype in (np.float64, np.float32):
        np.testing.assert_array_equal(DiagonalGMM.from_arrays(params._asdict(), dtype=dtype).predict(X), expected)


def test_em_matches_sklearn_from_the_same_initialisation():
    X = _clusters(2000, 6, 4, seed=6)
    rng = np.random.RandomState(7)
    init = GMMParams(np.full(6, 1 / 6), X[rng.choice(len(X), 6, replace=False)], np.tile(X.var(axis=0), (6, 1)))
    ours = DiagonalGMM(6, init=init, max_iter=7, var_floor=1e-12, dtype=np.float64).fit(X)
    reference = GaussianMixture(
        6,
        covariance_type="diag",
        weights_init=init.weights,
        means_init=init.means,
        precisions_init=1.0 / init.covariances,
        reg_covar=0.0,
        max_iter=7,
        tol=0.0,
        init_params="random_from_data",
    )
    with pytest.warns(Warning):  # sklearn: "did not converge" after 7 iterations
        reference.fit(X)
    assert reference.n_iter_ == ours.n_iter_ == 7
    # Seven iterations, each E-step evaluated by two expansions and summed in other orders.
    bounds = em_bound(X, ours.params_, 7, beta=_both_expansions_bound(X, ours.params_))
    for name in ("weights", "means", "covariances"):
        assert_within(getattr(ours, f"{name}_"), getattr(reference, f"{name}_"), bounds[name], name)
    last = _sklearn_with(ours.params_).score_samples(X)
    tolerance = _both_expansions_bound(X, ours.params_).mean() + _mean_bound(last)
    assert ours.lower_bound_ == pytest.approx(reference.lower_bound_, abs=7 * tolerance)


def test_default_fit_reaches_the_likelihood_of_sklearn_default_fit():
    X = _clusters(4000, 5, 3, seed=8, spread=6.0)
    ours = DiagonalGMM(5, max_iter=30, random_state=0).fit(X)
    reference = GaussianMixture(5, covariance_type="diag", max_iter=100, random_state=0).fit(X)
    assert ours.score(X) == pytest.approx(reference.score(X), abs=1e-3)


def test_lower_bound_never_decreases():
    X = _clusters(3000, 10, 4, seed=9, spread=2.0)
    gmm = DiagonalGMM(16, max_iter=25, random_state=1, dtype=np.float64).fit(X)
    assert gmm.n_iter_ == 25 and not gmm.converged_
    # EM never lowers the likelihood in exact arithmetic; each float64 E-step rounds by at most this much.
    rounding = statistics_order_bound(X, gmm.params_)["log_likelihood"] / len(X)
    assert np.all(np.diff(gmm.lower_bounds_) >= -2 * rounding)
    assert gmm.lower_bounds_[-1] > gmm.lower_bounds_[0] + 0.1


def test_tol_stops_early_and_sets_converged():
    X = _clusters(1500, 3, 2, seed=10, spread=8.0)
    gmm = DiagonalGMM(3, max_iter=200, tol=1e-8, random_state=0, dtype=np.float64).fit(X)
    assert gmm.converged_ and gmm.n_iter_ < 200
    assert abs(gmm.lower_bounds_[-1] - gmm.lower_bounds_[-2]) < 1e-8
    with pytest.warns(Warning, match="did not converge"):
        DiagonalGMM(3, max_iter=2, tol=1e-12, random_state=0).fit(X)


def test_chunk_size_does_not_change_the_result():
    X = _clusters(1000, 4, 3, seed=11)
    fits = [
        DiagonalGMM(4, max_iter=5, random_state=2, chunk_size=size, dtype=np.float64).fit(X) for size in (7, 256, 5000)
    ]
    # Chunks change how the sums are grouped (and the products' batches): five iterations of that rounding.
    bounds = em_bound(X, fits[0].params_, 5)
    likelihood = 5 * statistics_order_bound(X, fits[0].params_)["log_likelihood"] / len(X)
    for other in fits[1:]:
        assert_within(other.means_, fits[0].means_, bounds["means"])
        assert_within(other.covariances_, fits[0].covariances_, bounds["covariances"])
        assert_within(other.lower_bounds_, fits[0].lower_bounds_, likelihood)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_list_of_utterances_equals_their_concatenation(dtype):
    X = _clusters(1200, 4, 3, seed=12).astype(dtype)
    cuts = [0, 0, 5, 300, 301, 777, 1200]  # includes an empty utterance and a one-frame one
    utterances = [X[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    whole = DiagonalGMM(4, max_iter=4, random_state=3, chunk_size=128, init_samples=500).fit(X)
    parts = DiagonalGMM(4, max_iter=4, random_state=3, chunk_size=128, init_samples=500).fit(utterances)
    for name in ("weights_", "means_", "covariances_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(whole, name))


def test_same_seed_same_model_other_seed_other_model():
    X = _clusters(1500, 8, 4, seed=13)
    first, second, other = (DiagonalGMM(8, max_iter=3, random_state=seed).fit(X) for seed in (5, 5, 6))
    np.testing.assert_array_equal(first.means_, second.means_)
    np.testing.assert_array_equal(first.covariances_, second.covariances_)
    assert not np.array_equal(first.means_, other.means_)


def test_float32_does_not_change_the_trained_model_materially():
    X = _lfcc_like(2500, seed=14)
    f64 = DiagonalGMM(16, random_state=1, dtype=np.float64).fit(X)
    f32 = DiagonalGMM(16, random_state=1, dtype=np.float32).fit(X)
    assert np.any(np.all(f64.covariances_ == f64.var_floor, axis=1))  # a silence component was learnt
    # The accuracy gmm.design promises for float32 E-steps (about eps32 * 1e4 nats, see the silence test above).
    np.testing.assert_allclose(f32.lower_bounds_, f64.lower_bounds_, rtol=0, atol=1e-3)
    np.testing.assert_allclose(f32.score_samples(X), f64.score_samples(X), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_variance_floor_is_honoured(init):
    X = _clusters(800, 4, 3, seed=15)
    X[:, 1] = 2.5  # a constant dimension: its ML variance is zero
    gmm = DiagonalGMM(4, max_iter=5, var_floor=1e-3, init=init, random_state=0).fit(X)
    assert np.all(gmm.covariances_ >= 1e-3)
    np.testing.assert_array_equal(gmm.covariances_[:, 1], 1e-3)
    assert np.all(np.isfinite(gmm.score_samples(X)))


def test_initial_params_follow_vlfeat_rand():
    rng = np.random.RandomState(26)
    centers = rng.normal(scale=10.0, size=(6, 3))
    sample = np.repeat(centers, 50, axis=0) + 0.01 * rng.normal(size=(300, 3))
    variance = np.array([4.0, 1e-9, 2.0])
    seeded = initial_params(sample, variance, 6, var_floor=1e-4, random_state=0)
    np.testing.assert_array_equal(seeded.weights, np.full(6, 1 / 6))
    np.testing.assert_array_equal(seeded.covariances, np.tile([4.0, 1e-4, 2.0], (6, 1)))
    # k-means++ means are frames of the sample, one in each of the six far-apart clusters.
    assert all(any(np.array_equal(mean, row) for row in sample) for mean in seeded.means)
    assert sorted(np.argmin(((seeded.means[:, None] - centers) ** 2).sum(-1), axis=1)) == list(range(6))
    drawn = initial_params(sample, variance, 6, init="random", random_state=0)
    assert len({tuple(m) for m in drawn.means}) == 6
    assert all(any(np.array_equal(mean, row) for row in sample) for mean in drawn.means)
    with pytest.raises(ValueError, match="cannot seed 6 components from 5 frames"):
        initial_params(sample[:5], variance, 6)


def test_first_lower_bound_is_the_likelihood_of_the_initial_model():
    X = _clusters(600, 3, 2, seed=16)
    gmm = DiagonalGMM(3, max_iter=1, init_samples=None, random_state=0, dtype=np.float64).fit(X)
    start = initial_params(X, X.var(axis=0, ddof=1), 3, random_state=0)
    expected = _sklearn_with(start).score_samples(X)
    bound = _both_expansions_bound(X, start).mean() + _mean_bound(expected)
    assert gmm.lower_bounds_[0] == pytest.approx(expected.mean(), abs=bound)


def test_near_empty_component_is_reseeded_by_splitting_the_heaviest():
    X = _clusters(1000, 3, 2, seed=17)
    rng = np.random.RandomState(0)
    means = X[rng.choice(len(X), 3, replace=False)]
    means[2] = [1e3, 1e3]  # nothing near it: its soft count is zero
    init = GMMParams(np.full(3, 1 / 3), means, np.tile(X.var(axis=0), (3, 1)))
    stats = sufficient_statistics(X, init, dtype=np.float64)
    assert near_empty(stats).tolist() == [False, False, True]
    updated = m_step(stats)
    assert np.all(np.isfinite(updated.means)) and updated.weights.sum() == pytest.approx(1.0)
    donor = int(np.argmax(stats.counts))
    assert updated.weights[2] == pytest.approx(updated.weights[donor])
    # The two halves together keep the heaviest component's ML mean and variance (a moment-matched split),
    # and differ only along its widest dimension.
    mean = stats.first[donor] / stats.counts[donor]
    variance = stats.second[donor] / stats.counts[donor] - mean**2
    np.testing.assert_allclose((updated.means[2] + updated.means[donor]) / 2, mean + stats.center, atol=1e-9)
    spread = (updated.means[2] - updated.means[donor]) ** 2 / 4
    np.testing.assert_allclose(updated.covariances[2] + spread, variance, rtol=1e-9)
    np.testing.assert_allclose(updated.covariances[donor] + spread, variance, rtol=1e-9)
    assert np.count_nonzero(spread) == 1 and np.argmax(spread) == np.argmax(variance)
    gmm = DiagonalGMM(3, init=init, max_iter=3).fit(X)
    assert np.all(np.abs(gmm.means_) < 50)


def test_statistics_of_shards_add_up_to_those_of_all_frames():
    X = _clusters(900, 4, 3, seed=18)
    params = _random_params(4, 3, seed=19)
    whole = sufficient_statistics(X, params, dtype=np.float64)
    pooled = sum(sufficient_statistics(shard, params, dtype=np.float64) for shard in np.array_split(X, 4))
    assert pooled.n_frames == whole.n_frames == 900
    # Shards sum the same terms in other groups (and other BLAS calls): their rounding bounds.
    bounds = statistics_order_bound(X, params)
    assert pooled.log_likelihood == pytest.approx(whole.log_likelihood, rel=0, abs=bounds["log_likelihood"])
    for name in ("counts", "first", "second"):
        assert_within(getattr(pooled, name), getattr(whole, name), bounds[name], name)
    # Soft counts are responsibilities: they sum to the number of frames (each frame's to 1 within (K + 2) u; the
    # sum of the 900 K of them adds gamma_900K).
    assert whole.counts.sum() == pytest.approx(900, rel=(4 + 2) * U64 + gamma(900 * 4, U64))
    expected = _sklearn_with(params).score_samples(X)
    bound = _both_expansions_bound(X, params)
    tolerance = bound.sum() + len(X) * _mean_bound(expected)
    assert whole.log_likelihood == pytest.approx(expected.sum(), rel=0, abs=tolerance)
    assert_within(log_likelihood(X, params, dtype=np.float64), expected, bound)
    with pytest.raises(ValueError, match="different parameters"):
        _ = whole + sufficient_statistics(X, _random_params(4, 3, seed=20))
    # Scoring many utterances in one call equals scoring them one by one.
    shards = np.array_split(X, 5)
    one_call = log_likelihood(shards, params, dtype=np.float64)
    one_by_one = np.concatenate([log_likelihood(s, params, dtype=np.float64) for s in shards])
    assert_within(one_call, one_by_one, gmm_order_bound(X, params, dtype=np.float64))


def test_m_step_on_pooled_shards_is_one_fit_iteration():
    X = _clusters(700, 3, 2, seed=21)
    init = _random_params(3, 2, seed=22)
    shards = np.array_split(X, 3)
    pooled = sum(sufficient_statistics(s, init, dtype=np.float64) for s in shards)
    updated = m_step(pooled, var_floor=1e-4)
    gmm = DiagonalGMM(3, init=init, max_iter=1, dtype=np.float64).fit(X)
    # One E-step summed in other groups, then the same M-step: the statistics' bounds carried through it.
    assert not near_empty(pooled).any() and np.all(updated.covariances > 1e-4)
    bounds = m_step_bound(pooled, statistics_order_bound(X, init))
    for name in ("means", "covariances", "weights"):
        assert_within(getattr(gmm, f"{name}_"), getattr(updated, name), bounds[name], name)


def test_run_em_with_a_sharded_e_step_equals_fit():
    X = _clusters(800, 3, 2, seed=28)
    init = _random_params(3, 2, seed=29)
    shards = np.array_split(X, 4)
    seen = []

    def e_step(params):
        seen.append(params)
        return sum(sufficient_statistics(shard, params, dtype=np.float64) for shard in shards)

    sharded = DiagonalGMM(3, max_iter=4, dtype=np.float64).run_em(e_step, init)
    local = DiagonalGMM(3, init=init, max_iter=4, dtype=np.float64).fit(X)
    assert len(seen) == 4 and sharded.n_iter_ == 4
    # Shards group the sums otherwise: four iterations of that rounding.
    bounds = em_bound(X, local.params_, 4)
    assert_within(sharded.means_, local.means_, bounds["means"])
    assert_within(sharded.lower_bounds_, local.lower_bounds_,
                  4 * statistics_order_bound(X, local.params_)["log_likelihood"] / len(X))


def test_e_step_never_holds_more_than_a_chunk_of_responsibilities():
    n, n_components = 30_000, 64
    X = _clusters(n, 8, 6, seed=23).astype(np.float32)
    tracemalloc.start()
    DiagonalGMM(n_components, max_iter=1, chunk_size=1024, init_samples=3000, random_state=0).fit(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.2 * n * n_components * 8  # a full float64 responsibility matrix would be 15 MB


def test_to_arrays_from_arrays_round_trip_through_npz(tmp_path):
    X = _clusters(500, 3, 4, seed=24)
    gmm = DiagonalGMM(3, max_iter=3, random_state=0).fit(X)
    arrays = gmm.to_arrays()
    assert set(arrays) == {"weights", "means", "covariances"}
    assert all(a.dtype == np.float64 for a in arrays.values())
    path = tmp_path / "model.npz"
    np.savez(path, **{f"bonafide/{k}": v for k, v in arrays.items()})
    with np.load(path, allow_pickle=False) as stored:
        loaded = DiagonalGMM.from_arrays({k.split("/")[1]: stored[k] for k in stored.files}, chunk_size=100)
    assert loaded.n_components == 3 and loaded.chunk_size == 100
    np.testing.assert_array_equal(loaded.score_samples(X), gmm.score_samples(X))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": np.array([0.5, 0.6, -0.1])}, "non-negative and sum to 1"),
        ({"weights": np.array([0.2, 0.2, 0.2])}, "sum to 1"),
        ({"means": np.zeros((2, 4))}, r"means must have shape \(3, n_features\)"),
        ({"covariances": np.zeros((3, 4))}, "covariances must be positive"),
        ({"covariances": np.ones((3, 5))}, "covariances have shape"),
        ({"means": np.full((3, 4), np.nan)}, "means contain NaN"),
    ],
)
def test_from_arrays_rejects_inconsistent_parameters(change, message):
    arrays = {"weights": np.full(3, 1 / 3), "means": np.zeros((3, 4)), "covariances": np.ones((3, 4)), **change}
    with pytest.raises(ValueError, match=message):
        DiagonalGMM.from_arrays(arrays)
    with pytest.raises(ValueError, match="lack covariances"):
        check_params({"weights": np.ones(1), "means": np.zeros((1, 2))})


def test_bad_input_is_rejected_with_a_clear_message():
    X = _clusters(100, 2, 3, seed=25)
    gmm = DiagonalGMM(4, max_iter=1)
    with pytest.raises(ValueError, match=r"X must be 2-D .* got shape \(100,\)"):
        gmm.fit(X[:, 0])
    with pytest.raises(ValueError, match="X must be 2-D"):
        gmm.fit(X[None])
    bad = X.copy()
    bad[37, 1] = np.nan
    with pytest.raises(ValueError, match=r"X\[1\] row 7 contains NaN or infinity"):
        gmm.fit([X[:30], bad[30:]])
    bad[37, 1] = np.inf
    with pytest.raises(ValueError, match="X row 37 contains NaN or infinity"):
        gmm.fit(bad)
    with pytest.raises(ValueError, match="3 frames, fewer than n_components=4"):
        gmm.fit(X[:3])
    with pytest.raises(ValueError, match=r"X\[1\] has 2 features, expected 3"):
        gmm.fit([X, X[:, :2]])
    with pytest.raises(ValueError, match="empty sequence"):
        gmm.fit([])
    with pytest.raises(TypeError, match="sequence"):
        gmm.fit(row for row in X)
    with pytest.raises(ValueError, match="real numbers"):
        gmm.fit(X.astype(complex))
    bad_params = (
        {"init": "kmeans"},
        {"dtype": np.int32},
        {"var_floor": 0.0},
        {"var_floor": None},
        {"init_samples": 2},
        {"max_iter": 0},
        {"chunk_size": 2.5},
    )
    for bad_param in bad_params:
        with pytest.raises(ValueError, match="DiagonalGMM"):
            DiagonalGMM(4, **bad_param).fit(X)
    with pytest.raises(NotFittedError):
        gmm.score_samples(X)
    gmm.fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but this DiagonalGMM expects 3"):
        gmm.score_samples(X[:, :2])


def test_sklearn_clone_and_params():
    gmm = DiagonalGMM(8, max_iter=3, random_state=4, dtype=np.float64)
    copy = clone(gmm)
    assert copy.get_params() == gmm.get_params()
    assert DiagonalGMM().get_params()["n_components"] == 512 and DiagonalGMM().max_iter == 10
    assert not hasattr(copy, "means_")
    # NumPy integers are valid counts.
    X = _clusters(200, 2, 2, seed=27)
    assert DiagonalGMM(np.int64(2), max_iter=np.int32(2), chunk_size=np.int64(64)).fit(X).n_iter_ == 2


def test_official_lfcc_frames_fit_and_score_consistently(reference_dir):
    utterances = [
        np.load(p, allow_pickle=False) for p in sorted((reference_dir / "lfcc" / "official_2019").glob("*.npy"))
    ]
    frames = np.concatenate(utterances)
    f64 = DiagonalGMM(16, random_state=0, dtype=np.float64).fit(utterances)
    f32 = DiagonalGMM(16, random_state=0).fit(utterances)
    # Models trained in float32 and float64 agree to 1e-3 nats per frame in likelihood and to 0.1 % in
    # every frame's log-likelihood; the same model scored both ways agrees to 1e-3 nats.
    assert f32.lower_bound_ == pytest.approx(f64.lower_bound_, abs=1e-3)
    np.testing.assert_allclose(f32.score_samples(frames), f64.score_samples(frames), rtol=1e-3, atol=1e-3)
    same_model = DiagonalGMM.from_arrays(f64.to_arrays()).score_samples(frames)
    np.testing.assert_allclose(same_model, f64.score_samples(frames), rtol=0, atol=1e-3)
    # Against the direct formula (no expansion): the float64 expansion loses eps * condition, ~4e-8 nats
    # on the floored silence components (scikit-learn's expansion loses as much); both within their bounds.
    weights, means, covariances = f64.params_
    direct = logsumexp(
        np.log(weights)
        - 0.5 * (np.log(2 * np.pi * covariances).sum(1) + ((frames[:, None] - means) ** 2 / covariances).sum(-1)),
        axis=1,
    )
    bound = expansion_bound(frames, f64.params_, weights @ means, U64) + expansion_bound(frames, f64.params_, frames,
                                                                                       U64)
    assert_within(f64.score_samples(frames), direct, bound)
    np.testing.assert_allclose(f32.score_samples(frames), direct, rtol=1e-3, atol=1e-3)
    # The digital-silence frames (c0 = sqrt(20) log10(eps)) get their own floored component.
    silence = np.isclose(frames[:, 0], 20**0.5 * math.log10(np.finfo(float).eps), atol=1e-6)
    assert silence.any()
    assert np.any(np.all(f64.covariances_ == f64.var_floor, axis=1))


def test_design_of_another_precision_is_refused():
    from lfcc_gmm.gmm import GMMParams, design, log_likelihood

    params = GMMParams(np.array([0.5, 0.5]), np.zeros((2, 3)), np.ones((2, 3)))
    x = np.zeros((4, 3))
    # Scoring with parameters builds the same design first: the same computation, the same bits.
    np.testing.assert_array_equal(log_likelihood(x, design(params, np.float64), dtype=np.float64),
                                  log_likelihood(x, params, dtype=np.float64))
    with pytest.raises(ValueError, match="a Design built for float32 cannot score in float64"):
        log_likelihood(x, design(params, np.float32), dtype=np.float64)

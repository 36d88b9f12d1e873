"""Fusion and calibration: analytic LLRs recovered, Cllr vs min Cllr, complementary systems, JSON round trip."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from lfcc_gmm import __version__
from lfcc_gmm.fusion import LinearFusion
from lfcc_gmm.metrics import cllr, compute_eer, min_cllr
from lfcc_gmm.scorefiles import read_scores

MU_BONA, MU_SPOOF, SIGMA = 2.0, -1.0, 1.5
# With equal variances the true LLR is linear: log N(s; μ1, σ²) - log N(s; μ0, σ²).
TRUE_SLOPE = (MU_BONA - MU_SPOOF) / SIGMA**2
TRUE_OFFSET = -(MU_BONA**2 - MU_SPOOF**2) / (2 * SIGMA**2)


def _gaussian_scores(n_bona: int, n_spoof: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.concatenate((rng.normal(MU_BONA, SIGMA, n_bona), rng.normal(MU_SPOOF, SIGMA, n_spoof)))
    return scores, np.concatenate((np.ones(n_bona, dtype=int), np.zeros(n_spoof, dtype=int)))


@pytest.mark.parametrize("prior", [0.5, 0.1, 0.9])
def test_calibration_recovers_the_analytic_llr(prior):
    # 1 bona fide in 6: the prior weighting, not the class proportions, must set the offset.
    scores, labels = _gaussian_scores(4000, 20000, seed=0)
    fusion = LinearFusion(prior=prior).fit(scores, labels)
    assert fusion.coef_[0] == pytest.approx(TRUE_SLOPE, rel=0.05)
    grid = np.linspace(-3, 4, 15)
    np.testing.assert_allclose(fusion.transform(grid), TRUE_SLOPE * grid + TRUE_OFFSET, rtol=0, atol=0.15)


def test_calibration_keeps_the_eer_and_reaches_min_cllr():
    scores, labels = _gaussian_scores(3000, 9000, seed=1)
    llr = LinearFusion().fit_transform(3 * scores + 5, labels)  # badly scaled input
    bona, spoof = llr[labels == 1], llr[labels == 0]
    assert compute_eer(bona, spoof)[0] == compute_eer(scores[labels == 1], scores[labels == 0])[0]
    assert min_cllr(bona, spoof) <= cllr(bona, spoof) < min_cllr(bona, spoof) + 0.01
    raw = 3 * scores + 5
    assert cllr(raw[labels == 1], raw[labels == 0]) > cllr(bona, spoof) + 0.5


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-20, 20), min_size=1, max_size=40),
    st.lists(st.floats(-20, 20), min_size=1, max_size=40),
    st.floats(0.01, 10),
    st.floats(-10, 10),
)
def test_min_cllr_never_exceeds_cllr(bona, spoof, scale, shift):
    bona, spoof = np.round(bona), np.round(spoof)  # rounding makes ties common
    assert min_cllr(bona, spoof) <= cllr(scale * bona + shift, scale * spoof + shift) + 1e-12


def test_cllr_equals_min_cllr_for_calibrated_llrs():
    # LLRs of N(±μ, 2μ) are their own LLRs: perfectly calibrated, so only PAV's overfit separates the two.
    rng = np.random.default_rng(2)
    mu = 2.0
    bona, spoof = rng.normal(mu, math.sqrt(2 * mu), 20000), rng.normal(-mu, math.sqrt(2 * mu), 20000)
    assert min_cllr(bona, spoof) <= cllr(bona, spoof) < min_cllr(bona, spoof) + 0.005
    assert cllr(bona + 2, spoof + 2) > min_cllr(bona, spoof) + 0.05  # a shifted copy is miscalibrated


def _complementary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two systems, each blind to a different half of the attacks."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 0, 0], n)
    attack_b = np.repeat([False, False, True], n)
    mean_a = np.where(labels == 1, 2.0, np.where(attack_b, 1.5, -2.0))
    mean_b = np.where(labels == 1, 2.0, np.where(attack_b, -2.0, 1.5))
    scores = np.column_stack((rng.normal(mean_a, 1.0), rng.normal(mean_b, 1.0)))
    return scores, labels


def test_fusing_complementary_systems_beats_each():
    dev, dev_labels = _complementary(2000, seed=3)
    scores, labels = _complementary(2000, seed=4)
    fusion = LinearFusion().fit(dev, dev_labels, system_names=["a", "b"])
    fused = fusion.transform(scores)
    fused_eer = compute_eer(fused[labels == 1], fused[labels == 0])[0]
    single = [compute_eer(scores[labels == 1, i], scores[labels == 0, i])[0] for i in range(2)]
    assert fused_eer < 0.5 * min(single)
    assert (fusion.coef_ > 0).all()


def test_rawgat_eval_scores(reference_dir):
    table = read_scores(reference_dir / "metrics" / "rawgat_st_add.eval.scores.txt")
    labels = (np.asarray(table.keys) == "bonafide").astype(int)
    bona, spoof = table.scores[labels == 1], table.scores[labels == 0]
    raw_cllr = cllr(bona, spoof)
    assert math.isfinite(raw_cllr) and raw_cllr > 0
    # Calibrate on the even trials, check on the odd ones.
    fusion = LinearFusion().fit(table.scores[::2], labels[::2])
    llr, held_out = fusion.transform(table.scores[1::2]), labels[1::2]
    odd_bona, odd_spoof = llr[held_out == 1], llr[held_out == 0]
    assert fusion.coef_[0] > 0
    assert min_cllr(odd_bona, odd_spoof) <= cllr(odd_bona, odd_spoof) < raw_cllr


def test_json_round_trip(tmp_path):
    dev, dev_labels = _complementary(500, seed=5)
    fusion = LinearFusion(prior=0.3).fit(dev, dev_labels, system_names=["lfcc-gmm", "rawnet2"])
    path = tmp_path / "fusion.json"
    fusion.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "antispoof.linear_fusion" and data["version"] == __version__
    assert data["system_names"] == ["lfcc-gmm", "rawnet2"] and data["prior"] == 0.3
    loaded = LinearFusion.load(path)
    np.testing.assert_array_equal(loaded.transform(dev), fusion.transform(dev))
    assert loaded.get_params() == fusion.get_params()
    assert loaded.system_names_ == fusion.system_names_


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{\n\"format\": ", r"fusion\.json:2: not valid JSON"),
        ('{"format": "something else"}', "not a linear fusion file"),
        ('{"format": "antispoof.linear_fusion", "weights": [1.0]}', "missing field.*offset"),
        (
            '{"format": "antispoof.linear_fusion", "version": "0", "prior": 0.5, "regularization": 0,'
            ' "system_names": ["a", "b"], "weights": [1.0], "offset": 0.0}',
            "2 system names for 1 weights",
        ),
        (
            '{"format": "antispoof.linear_fusion", "version": "0", "prior": 0.5, "regularization": 0,'
            ' "system_names": ["a"], "weights": [1.0], "offset": "x"}',
            "must be numbers",
        ),
    ],
)
def test_load_rejects_malformed_files(tmp_path, text, message):
    path = tmp_path / "fusion.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        LinearFusion.load(path)
    assert str(path) in str(info.value)


def test_estimator_conventions_and_input_checks():
    fusion = LinearFusion(prior=0.2, regularization=1e-3)
    assert fusion.get_params() == {"prior": 0.2, "regularization": 1e-3}
    assert not hasattr(fusion, "coef_")
    with pytest.raises(NotFittedError):
        fusion.transform([1.0])
    scores, labels = _gaussian_scores(200, 300, seed=6)
    keys = np.where(labels == 1, "bonafide", "spoof")
    by_key = clone(fusion).fit(scores, keys)
    by_int = clone(fusion).fit(scores, labels)
    np.testing.assert_array_equal(by_key.coef_, by_int.coef_)
    assert by_int.system_names_ == ["system0"] and by_int.n_features_in_ == 1
    with pytest.raises(ValueError, match="2 system"):
        by_int.transform(np.ones((3, 2)))
    with pytest.raises(ValueError, match="non-finite value.*trial 1"):
        by_int.transform([0.0, np.nan])
    with pytest.raises(ValueError, match="both classes"):
        LinearFusion().fit([1.0, 2.0], [1, 1])
    with pytest.raises(ValueError, match="label 2 at trial 1"):
        LinearFusion().fit([1.0, 2.0], [1, 2])
    with pytest.raises(ValueError, match="prior"):
        LinearFusion(prior=1.0).fit(scores, labels)
    with pytest.raises(ValueError, match="system names"):
        LinearFusion().fit(scores, labels, system_names=["a", "b"])


def test_separable_training_data_stays_finite():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fusion = LinearFusion().fit([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1])
    llr = fusion.transform([0.0, 1.0, 2.0, 3.0])
    assert np.isfinite(llr).all() and llr[1] < 0 < llr[2]

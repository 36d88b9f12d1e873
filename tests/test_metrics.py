"""Metrics: the official ASVspoof 2019 numbers reproduced, hand-computed cases, tie handling, invariants."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logit
from sklearn.isotonic import IsotonicRegression

from lfcc_gmm.metrics import (
    ASVSPOOF2019_COST_MODEL,
    CostModel,
    act_dcf,
    asv_error_rates,
    cllr,
    compute_eer,
    compute_min_tdcf,
    det_curve,
    det_points,
    evaluate,
    min_cllr,
    min_dcf,
    operating_points,
    per_attack_eer,
    roc_points,
)
from lfcc_gmm.protocols import read_protocol
from lfcc_gmm.scorefiles import label_scores, read_asv_scores, read_scores

# Against the official scripts' float64 results: the accuracy the README promises (kind 3 in CONTRIBUTING,
# "Tolerances"); the same counts and a few float64 operations in another order differ by some 1e-16 (observed: 0).
REL = 1e-9


def _official_det_curve(bona, spoof, bona_first=True):
    """The official compute_det_curve's approach: stable sort of the concatenation [bona fide, spoof]."""
    if bona_first:
        scores = np.concatenate((bona, spoof))
        labels = np.concatenate((np.ones(len(bona)), np.zeros(len(spoof))))
    else:
        scores = np.concatenate((spoof, bona))
        labels = np.concatenate((np.zeros(len(spoof)), np.ones(len(bona))))
    order = np.argsort(scores, kind="mergesort")
    bona_seen = np.cumsum(labels[order])
    spoof_left = len(spoof) - (np.arange(1, scores.size + 1) - bona_seen)
    frr = np.concatenate(([0], bona_seen / len(bona)))
    far = np.concatenate(([1], spoof_left / len(spoof)))
    return frr, far, np.concatenate(([scores[order[0]] - 0.001], scores[order]))


@pytest.fixture(scope="module")
def metrics_dir(reference_dir):
    return reference_dir / "metrics"


@pytest.fixture(scope="module")
def asv(metrics_dir):
    return {split: read_asv_scores(metrics_dir / f"ASVspoof2019.LA.asv.{split}.gi.trl.scores.txt")
            for split in ("dev", "eval")}


def test_every_official_result_reproduced(metrics_dir, asv):
    references = sorted(metrics_dir.glob("official.*.json"))
    assert references, f"no official.*.json under {metrics_dir}"
    for reference in references:
        _check_official(metrics_dir, asv, reference)


def _check_official(metrics_dir, asv, reference):
    name = reference.name.removeprefix("official.").removesuffix(".json")  # e.g. rawgat_st_add.eval
    expected = json.loads(reference.read_text())
    table = read_scores(metrics_dir / f"{name}.scores.txt")
    split_asv = asv[name.rsplit(".", 1)[1]]
    result = evaluate(table.scores, table.keys, table.attacks, split_asv)

    assert result.eer * 100 == pytest.approx(expected["eer_cm_percent"], rel=REL), name
    assert result.min_tdcf == pytest.approx(expected["min_tdcf"], rel=REL), name
    assert (result.n_bonafide, result.n_spoof) == (expected["n_bonafide"], expected["n_spoof"]), name
    assert result.per_attack_eer.keys() == expected["eer_per_attack_percent"].keys(), name
    for attack, eer_percent in expected["eer_per_attack_percent"].items():
        assert result.per_attack_eer[attack] * 100 == pytest.approx(eer_percent, rel=REL), (name, attack)

    # The stand-alone functions agree with the single entry point.
    keys = np.asarray(table.keys)
    bona, spoof = table.scores[keys == "bonafide"], table.scores[keys == "spoof"]
    assert compute_eer(bona, spoof) == (result.eer, result.threshold)
    assert compute_min_tdcf(bona, spoof, split_asv.target, split_asv.nontarget, split_asv.spoof) == result.min_tdcf
    assert per_attack_eer(table.scores, table.keys, table.attacks) == result.per_attack_eer


def test_ties_file_is_tie_heavy_and_tie_order_matters(metrics_dir):
    table = read_scores(metrics_dir / "synthetic_ties.dev.scores.txt")
    assert np.unique(table.scores).size < table.scores.size / 100
    keys = np.asarray(table.keys)
    bona, spoof = table.scores[keys == "bonafide"], table.scores[keys == "spoof"]
    # Had spoof come first among equal scores, the EER would differ: the reference really tests tie order.
    frr, far, _ = _official_det_curve(bona, spoof, bona_first=False)
    k = np.argmin(np.abs(frr - far))
    assert not math.isclose((frr[k] + far[k]) / 2, compute_eer(bona, spoof)[0], rel_tol=1e-3)


def test_two_column_file_joined_with_protocol_matches_four_column(metrics_dir, asv):
    four = read_scores(metrics_dir / "rawgat_st_add.eval.scores.txt")
    two = read_scores(metrics_dir / "rawgat_st_add.eval.scores.2col.txt")
    assert two.keys is None
    joined = label_scores(two, read_protocol(metrics_dir / "ASVspoof2019.LA.cm.eval.trl.txt"))
    from_two = evaluate(joined.scores, joined.keys, joined.attacks, asv["eval"]).to_dict()
    from_four = evaluate(four.scores, four.keys, four.attacks, asv["eval"]).to_dict()
    assert from_two == from_four


@pytest.mark.parametrize(
    ("bona", "spoof", "eer", "threshold"),
    [
        ([3.0, 4.0], [1.0, 2.0], 0.0, 2.0),  # perfectly separated
        ([1.0, 2.0], [3.0, 4.0], 1.0, 2.0),  # perfectly wrong
        # Ties: bona fide sorts first among equal scores, so the crossing sits at frr = far = 2/3.
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 2 / 3, 2.0),
        # |FRR - FAR| = 0.5 twice (points 1 and 2): the first one wins, (0.5 + 1) / 2.
        ([1.0, 3.0], [2.0], 0.75, 1.0),
        ([5.0], [1.0, 2.0, 3.0, 4.0], 0.0, 4.0),
        # The reported threshold is the last rejected score: rejecting the bona fide 1 gives frr = far = 1.
        ([1.0], [2.0], 1.0, 1.0),
        ([1.0, 1.0], [0.0], 0.0, 0.0),
        ([0.0], [0.0], 1.0, 0.0),
    ],
)
def test_eer_hand_computed(bona, spoof, eer, threshold):
    got = compute_eer(bona, spoof)
    assert got[0] == pytest.approx(eer, abs=1e-15) and got[1] == threshold


def test_det_curve_hand_computed_with_ties():
    frr, far, thresholds = det_curve([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(frr, [0, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 1, 1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(far, [1, 1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(thresholds, [1 - 0.001, 1, 1, 2, 2, 3, 3])
    assert det_curve([7.0], [8.0, 9.0])[2][0] == 7.0 - 0.001


tied_scores = st.lists(st.integers(-4, 4).map(float), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(tied_scores, tied_scores)
def test_det_curve_and_eer_equal_the_official_algorithm(bona, spoof):
    expected = _official_det_curve(np.array(bona), np.array(spoof))
    for got, want in zip(det_curve(bona, spoof), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    frr, far, thresholds = expected
    k = np.argmin(np.abs(frr - far))
    assert compute_eer(bona, spoof) == (np.mean((frr[k], far[k])), thresholds[k])


def test_identical_continuous_distributions_give_half():
    rng = np.random.default_rng(0)
    eer, _ = compute_eer(rng.normal(size=20_000), rng.normal(size=20_000))
    assert abs(eer - 0.5) < 0.02


@pytest.fixture
def rounded_scores():
    # Rounded to create ties inside and across classes.
    rng = np.random.default_rng(1)
    return np.round(rng.normal(1.0, 1.0, 500), 1), np.round(rng.normal(-1.0, 1.0, 3000), 1)


@pytest.mark.parametrize("transform", [lambda x: 3 * x + 7, np.exp, np.arctan, lambda x: x**3])
def test_eer_unchanged_by_strictly_increasing_transforms(rounded_scores, transform):
    bona, spoof = rounded_scores
    eer, threshold = compute_eer(bona, spoof)
    eer_t, threshold_t = compute_eer(transform(bona), transform(spoof))
    assert eer_t == eer
    assert threshold_t == pytest.approx(transform(threshold), rel=1e-12)


def test_eer_symmetric_under_negation_and_class_swap():
    rng = np.random.default_rng(2)
    bona, spoof = rng.normal(1.0, 1.0, 700), rng.normal(-0.5, 1.3, 2300)
    assert compute_eer(-spoof, -bona)[0] == pytest.approx(compute_eer(bona, spoof)[0], abs=1e-15)


def test_eer_symmetry_breaks_only_with_equal_minima():
    # The first of two equal minima is taken; reversing the curve picks the other one (official behaviour).
    assert compute_eer([1.0, 3.0], [2.0])[0] == 0.75
    assert compute_eer([-2.0], [-3.0, -1.0])[0] == 0.25


# Hand-made ASV scores. Merged: 1t 1.5n 2t 2.5n -> |FRR - FAR| is 0 after two trials, threshold 1.5.
ASV_TARGET, ASV_NONTARGET, ASV_SPOOF = [1.0, 2.0], [1.5, 2.5], [1.5, 3.0, 4.0, 5.0]


def test_asv_error_rates_count_at_threshold_as_accepted():
    rates = asv_error_rates(ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)
    # non-targets >= 1.5: both; targets < 1.5: one of two; spoofs < 1.5: none (1.5 itself is accepted).
    assert rates == (1.5, 1.0, 0.5, 0.0)


def test_min_tdcf_hand_computed():
    cm_bona, cm_spoof = [1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 1.2, 5.0]
    c = ASVSPOOF2019_COST_MODEL
    c1 = c.p_tar * (c.c_miss_cm - c.c_miss_asv * 0.5) - c.p_non * c.c_fa_asv * 1.0
    c2 = c.c_fa_cm * c.p_spoof * (1 - 0.0)
    # (P_miss_cm, P_fa_cm) after rejecting 0, 0.5, 1 (bona fide), 1.2, 2, 3, 4 (bona fide), 5 in turn.
    points = [(0, 1), (0, 0.75), (0, 0.5), (0.25, 0.5), (0.25, 0.25), (0.5, 0.25), (0.75, 0.25), (1, 0.25), (1, 0)]
    expected = min((c1 * pm + c2 * pf) / min(c1, c2) for pm, pf in points)
    assert c1 < c2  # normalised by C1, so both weights shape the answer
    got = compute_min_tdcf(cm_bona, cm_spoof, ASV_TARGET, ASV_NONTARGET, ASV_SPOOF)
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(0.25 + 0.25 * c2 / c1, rel=1e-12)


def test_min_tdcf_of_uninformative_cm_is_one_and_of_perfect_cm_is_zero():
    rng = np.random.default_rng(3)
    target, nontarget, spoof = rng.normal(3, 1, 200), rng.normal(0, 1, 200), rng.normal(2, 1, 200)
    assert compute_min_tdcf(np.zeros(50), np.zeros(80), target, nontarget, spoof) == pytest.approx(1.0, rel=1e-12)
    assert compute_min_tdcf(np.ones(50), np.zeros(80), target, nontarget, spoof) == 0.0


def test_cost_model_and_asv_validation():
    with pytest.raises(ValueError, match="sum to 1"):
        CostModel(p_spoof=0.5)
    with pytest.raises(ValueError, match="non-negative"):
        CostModel(c_fa_cm=-1)
    # A reversed ASV: at its EER threshold (1) it misses 9 of 10 targets and accepts every non-target.
    with pytest.raises(ValueError, match="negative t-DCF weight"):
        compute_min_tdcf([1.0, 2.0], [0.0, 1.5], [0.0] * 9 + [1.0], [2.0] * 10, [0.5])


def test_operating_points_never_split_ties():
    frr, far, thresholds = operating_points([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(frr, [0, 1 / 3, 2 / 3, 1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(far, [1, 2 / 3, 1 / 3, 0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(thresholds, [1, 2, 3, np.inf])
    far_roc, tpr = roc_points([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(tpr, [1, 2 / 3, 1 / 3, 0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(far_roc, far)
    x, y = det_points([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])  # the two infinite ends are dropped
    np.testing.assert_allclose(x, [0.4307272992954576, -0.4307272992954576], rtol=1e-12)
    np.testing.assert_allclose(y, [-0.4307272992954576, 0.4307272992954576], rtol=1e-12)


def test_calibration_metrics_hand_computed():
    assert cllr(np.zeros(3), np.zeros(5)) == pytest.approx(1.0, rel=1e-15)
    assert cllr([math.log(3)], [-math.log(3)]) == pytest.approx(math.log2(4 / 3), rel=1e-15)
    # Tied scores are pooled: bins -1 (spoof), 0 (one of each), 1 (bona fide) -> LLRs -inf, 0, +inf.
    assert min_cllr([0.0, 1.0], [0.0, -1.0]) == pytest.approx(0.5, rel=1e-15)
    assert min_cllr([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert min_cllr(np.zeros(4), np.zeros(9)) == pytest.approx(1.0, rel=1e-15)
    # Bayes threshold 0 at prior 0.5: LLR 0 is accepted.
    assert act_dcf([0.0, 1.0], [0.0, -1.0]) == pytest.approx(0.5)
    assert act_dcf(np.zeros(3), np.zeros(3)) == 1.0
    # Prior 0.9: threshold log(1/9) = -2.197; a spoof at -2 is accepted, a bona fide at -3 rejected.
    dcf = (0.9 * 0.5 + 0.1 * 0.5) / 0.1
    assert act_dcf([-3.0, 1.0], [-2.0, -5.0], prior=0.9) == pytest.approx(dcf, rel=1e-12)
    # Operating points: (P_miss, P_fa) = (0, 1), (0, .5), (.5, 0), (1, 0) -> P_miss + P_fa at least 0.5.
    assert min_dcf([0.0, 1.0], [0.0, -1.0]) == pytest.approx(0.5, rel=1e-15)
    # Costs fold into the prior: C_fa = 10 at P(bona fide) = 0.95 is P_eff = 0.95 / 1.45.
    assert min_dcf([0.0, 1.0], [0.0, -1.0], prior=0.95, c_fa=10) == pytest.approx(
        min_dcf([0.0, 1.0], [0.0, -1.0], prior=0.95 / 1.45), rel=1e-12
    )


@settings(max_examples=100, deadline=None)
@given(tied_scores, tied_scores)
def test_min_cllr_equals_cllr_of_pav_calibrated_scores(bona, spoof):
    # Independent route: scikit-learn's IsotonicRegression (which averages tied inputs) on trial level.
    scores = np.array(bona + spoof)
    labels = np.r_[np.ones(len(bona)), np.zeros(len(spoof))]
    posterior = IsotonicRegression().fit_transform(scores, labels)
    with np.errstate(divide="ignore"):
        llr = logit(posterior) - math.log(len(bona) / len(spoof))
    expected = cllr(llr[: len(bona)], llr[len(bona) :])
    assert min_cllr(bona, spoof) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(tied_scores, tied_scores, st.floats(0.01, 0.99))
def test_min_dcf_bounds(bona, spoof, prior):
    minimum = min_dcf(bona, spoof, prior)
    assert minimum <= act_dcf(bona, spoof, prior) + 1e-12
    assert 0 <= minimum <= 1 + 1e-12


def test_evaluate_without_asv_or_attacks():
    result = evaluate([3.0, 4.0, 1.0, 2.0], ["bonafide", "bonafide", "spoof", "spoof"])
    assert result.min_tdcf is None and result.per_attack_eer == {}
    summary = result.to_dict()
    assert summary["eer_percent"] == 0.0 and summary["min_tdcf"] is None
    assert {"per_attack_eer_percent", "n_bonafide", "n_spoof", "cllr", "min_cllr", "act_dcf", "min_dcf"} <= set(
        summary
    )
    json.dumps(summary)


@pytest.mark.parametrize(
    ("scores", "keys", "attacks", "message"),
    [
        ([1.0, 2.0], ["spoof", "spoof"], None, "no bona fide trials"),
        ([1.0, 2.0], ["bonafide", "bonafide"], None, "no spoof trials"),
        ([1.0, np.nan, np.nan], ["bonafide", "spoof", "spoof"], None, "2 NaN value.*index 1"),
        ([1.0, 2.0], ["bonafide", "genuine"], None, "'genuine' at trial 1"),
        ([1.0, 2.0], ["bonafide"], None, "2 scores but 1 keys"),
        ([1.0, 2.0], ["bonafide", "spoof"], ["-"], "2 scores but 1 attacks"),
        ([], [], None, "no scores"),
    ],
)
def test_evaluate_rejects_bad_input(scores, keys, attacks, message):
    with pytest.raises(ValueError, match=message):
        evaluate(scores, keys, attacks)


def test_functions_reject_empty_classes_and_nan():
    with pytest.raises(ValueError, match="no bona fide scores"):
        compute_eer([], [1.0])
    with pytest.raises(ValueError, match="spoof scores contain 1 NaN"):
        compute_eer([1.0], [np.nan])
    with pytest.raises(ValueError, match="no spoof LLRs"):
        cllr([1.0], [])
    with pytest.raises(ValueError, match="prior"):
        act_dcf([1.0], [0.0], prior=1.0)

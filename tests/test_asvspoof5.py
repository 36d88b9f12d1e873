"""ASVspoof 5 metrics: the official package's results on the shared set, and brute-force definitions on sets the
package never saw (tie-heavy, tiny, real scores resampled), plus breakdowns, invariants and errors."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lfcc_gmm.asvspoof5 import (
    ORGANISERS_ASV_RATES,
    SASV_COST_MODEL,
    TRACK1_COST_MODEL,
    AsvRates,
    DCFCostModel,
    SASVCostModel,
    a_dcf,
    asv_rates,
    evaluate_sasv,
    evaluate_track1,
    min_tdcf_revised,
    t_eer,
    track1_act_dcf,
    track1_min_dcf,
)
from lfcc_gmm.metrics import cllr
from lfcc_gmm.protocols import read_protocol

REL = 1e-9  # the bound against the official results
# Brute force against the library: each DCF value is a few roundings (≤ 1e-15 relative) on either side, and the
# minimum may fall on another point whose value is equal to within those roundings.
DCF_REL = 1e-12
LABELS = ("target", "nontarget", "spoof")


# ------------------------------------------------------------------------------------- brute-force definitions


def sorted_points(classes, offset):
    """Counts of each class among the k lowest scores, k = 0..n, sorting by (score, class) so that among equal
    scores the earlier class comes first (the package's stable sort of the concatenation), and the thresholds."""
    items = sorted((float(s), c) for c, scores in enumerate(classes) for s in scores)
    seen = [0] * len(classes)
    points = [tuple(seen)]
    for _, c in items:
        seen[c] += 1
        points.append(tuple(seen))
    return points, [items[0][0] - offset] + [s for s, _ in items]


def brute_eer(bona, spoof):
    (points, _), nb, ns = sorted_points([bona, spoof], 0.001), len(bona), len(spoof)
    rates = [(b / nb, (ns - s) / ns) for b, s in points]
    frr, far = min(rates, key=lambda r: abs(r[0] - r[1]))  # min() keeps the first of equal keys
    return (frr + far) / 2


def brute_min_dcf(bona, spoof, p_spoof=0.05, c_miss=1.0, c_fa=10.0):
    (points, _), nb, ns = sorted_points([bona, spoof], 0.001), len(bona), len(spoof)
    costs = [c_miss * (1 - p_spoof) * b / nb + c_fa * p_spoof * (ns - s) / ns for b, s in points]
    return min(costs) / min(c_miss * (1 - p_spoof), c_fa * p_spoof)


def brute_act_dcf(bona, spoof, p_spoof=0.05, c_miss=1.0, c_fa=10.0):
    threshold = -math.log(c_miss * (1 - p_spoof) / (c_fa * p_spoof))
    p_miss = sum(s < threshold for s in bona) / len(bona)
    p_fa = sum(s >= threshold for s in spoof) / len(spoof)
    return (c_miss * (1 - p_spoof) * p_miss + c_fa * p_spoof * p_fa) / min(c_miss * (1 - p_spoof), c_fa * p_spoof)


def softplus(x):
    return x if x > 700 else math.log1p(math.exp(x))


def brute_cllr(bona, spoof):
    return (sum(softplus(-s) for s in bona) / len(bona) + sum(softplus(s) for s in spoof) / len(spoof)) / (
        2 * math.log(2))


def brute_a_dcf(target, nontarget, spoof, c=SASV_COST_MODEL):
    points, _ = sorted_points([target, nontarget, spoof], 1e-8)
    nt, nn, ns = len(target), len(nontarget), len(spoof)
    costs = [c.c_miss * c.p_tar * t / nt + c.c_fa * c.p_non * (nn - n) / nn + c.c_fa_spoof * c.p_spoof * (ns - s) / ns
             for t, n, s in points]
    return min(costs) / min(c.c_fa * c.p_non + c.c_fa_spoof * c.p_spoof, c.c_miss * c.p_tar)


def brute_min_tdcf(bona, spoof, rates=ORGANISERS_ASV_RATES, c=SASV_COST_MODEL):
    (points, _), nb, ns = sorted_points([bona, spoof], 0.001), len(bona), len(spoof)
    c0 = c.p_tar * c.c_miss * rates.p_miss + c.p_non * c.c_fa * rates.p_fa_non
    c1 = c.p_tar * c.c_miss - c0
    c2 = c.p_spoof * c.c_fa_spoof * rates.p_fa_spoof
    if min(c0, c1, c2) < 0:
        return None  # an ASV worse than chance at its EER threshold: the t-DCF has a negative weight
    return min((c0 + c1 * b / nb + c2 * (ns - s) / ns) / (c0 + min(c1, c2)) for b, s in points)


def divide(x, y):
    """IEEE division, as NumPy does it: x/0 is ±inf, 0/0 is NaN."""
    if y == 0:
        return math.nan if x == 0 else math.copysign(math.inf, x)
    return x / y


def brute_t_eer(cm, asv):
    """The package's exhaustive compute_teer (rho = 0.5), transcribed: every ASV threshold, every CM threshold.

    ``cm`` and ``asv`` are (target, nontarget, spoof) score lists. Returns (t-EER, ASV threshold, CM threshold), or
    None where no pair qualifies. The arithmetic is written in the package's order, since the choice of point
    depends on which of two nearly equal gaps rounds smaller.
    """
    nt, nn, ns = (len(x) for x in asv)
    asv_points, tau_asv = sorted_points(asv, 0.001)
    cm_points, tau_cm = sorted_points([list(cm[0]) + list(cm[1]), cm[2]], 0.001)
    nb = nt + nn
    p_miss_cm = np.array([b / nb for b, _ in cm_points])
    p_fa_cm = np.array([(ns - s) / ns for _, s in cm_points])
    best, found = math.inf, None
    for i, (t, n, s) in enumerate(asv_points):
        a, b, c = t / nt, 1 - n / nn, 1 - s / ns
        gap = (p_miss_cm + (1 - p_miss_cm) * a) - (0.5 * (1 - p_miss_cm) * b + 0.5 * p_fa_cm * c)
        j = int(np.argmin(np.abs(gap)))
        if a < 0.5 * b + 0.5 * c:
            crit = abs(divide(b, c) - divide(float(p_fa_cm[j]), 1 - float(p_miss_cm[j])))
            if crit < best:
                best, found = crit, (c * float(p_fa_cm[j]), tau_asv[i], tau_cm[j])
    return found


def split(values, labels):
    labels = np.asarray(labels)
    return [np.asarray(values)[labels == name] for name in LABELS]


def check_track2(cm, asv, sasv, labels):
    """Every Track 2 function against its brute-force definition."""
    cm_classes, asv_classes, sasv_classes = split(cm, labels), split(asv, labels), split(sasv, labels)
    bona, spoof = np.concatenate(cm_classes[:2]), cm_classes[2]
    expected = brute_t_eer(cm_classes, asv_classes)
    assert expected is not None  # the first ASV point always qualifies (see lfcc_gmm.asvspoof5._t_eer)
    assert tuple(t_eer(cm, asv, labels)) == expected
    assert a_dcf(sasv, labels) == pytest.approx(brute_a_dcf(*sasv_classes), rel=DCF_REL)
    assert min_tdcf_revised(cm, labels) == pytest.approx(brute_min_tdcf(bona, spoof), rel=DCF_REL)
    rates = asv_rates(asv, labels)
    expected = brute_min_tdcf(bona, spoof, rates)
    if expected is None:
        with pytest.raises(ValueError, match="negative t-DCF weight"):
            min_tdcf_revised(cm, labels, rates)
    else:
        assert min_tdcf_revised(cm, labels, rates) == pytest.approx(expected, rel=DCF_REL)


def check_track1(bona, spoof):
    scores = np.concatenate((bona, spoof))
    keys = ["bonafide"] * len(bona) + ["spoof"] * len(spoof)
    result = evaluate_track1(scores, keys)
    assert result.eer_percent == pytest.approx(100 * brute_eer(bona, spoof), rel=1e-15)
    assert result.min_dcf == pytest.approx(brute_min_dcf(bona, spoof), rel=DCF_REL)
    assert result.act_dcf == pytest.approx(brute_act_dcf(bona, spoof), rel=DCF_REL)
    assert result.cllr_bits == pytest.approx(brute_cllr(bona, spoof), rel=DCF_REL)
    assert (result.pooled.n_bonafide, result.pooled.n_spoof) == (len(bona), len(spoof))


# ------------------------------------------------------------------------------------------- the shared set


def read_tsv(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def shared(reference_dir):
    folder = reference_dir / "asvspoof5"
    keys = {t.file_id: t.key for t in read_protocol(folder / "dev_half.cm.keys.tsv")}
    header, rows = read_tsv(folder / "dev_half.cm.scores.tsv")
    assert header == ["filename", "cm-score"]
    cm_scores = np.array([float(r[1]) for r in rows])
    cm_keys = [keys[r[0]] for r in rows]
    labels = {(t.speaker, t.file_id): t.metadata["asv_label"] for t in read_protocol(folder / "dev_half.sasv.keys.tsv")}
    header, rows = read_tsv(folder / "dev_half.sasv.scores.tsv")
    assert header == ["spk", "filename", "cm-score", "asv-score", "sasv-score"]
    sasv = {name: np.array([float(r[i]) for r in rows]) for i, name in ((2, "cm"), (3, "asv"), (4, "sasv"))}
    sasv["labels"] = np.array([labels[(r[0], r[1])] for r in rows])
    return {"cm_scores": cm_scores, "cm_keys": cm_keys, "sasv": sasv,
            "official": json.loads((folder / "dev_half.official.json").read_text())}


def test_track1_equals_the_official_package_on_the_shared_set(shared):
    result = evaluate_track1(shared["cm_scores"], shared["cm_keys"])
    for name, value in shared["official"]["track1"].items():
        assert getattr(result, name) == pytest.approx(value, rel=REL), name
    assert result.to_dict()["min_dcf"] == result.min_dcf


def test_track2_equals_the_official_package_on_the_shared_set(shared):
    s = shared["sasv"]
    result = evaluate_sasv(s["sasv"], s["labels"], s["cm"], s["asv"])
    for name, value in shared["official"]["track2"].items():
        assert getattr(result, name) == pytest.approx(value, rel=REL), name
    assert result.asv_rates == ORGANISERS_ASV_RATES
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["asv_rates"] == {"p_fa_non": 0.01881016557566423, "p_miss": 0.01880141010575793,
                                    "p_fa_spoof": 0.4607082907604729}
    assert (summary["n_target"], summary["t_eer_thresholds"]["cm"]) == (result.n_target, result.t_eer_thresholds[1])
    # The stand-alone functions agree with the single entry point.
    assert a_dcf(s["sasv"], s["labels"]) == result.a_dcf
    assert min_tdcf_revised(s["cm"], s["labels"]) == result.min_tdcf
    tandem = t_eer(s["cm"], s["asv"], s["labels"])
    assert tandem.t_eer * 100 == result.t_eer_percent
    assert (tandem.asv_threshold, tandem.cm_threshold) == result.t_eer_thresholds


def test_shared_set_scores_are_the_cm_scores_of_the_sasv_file(shared):
    # The two files describe the same trials, so Track 1 on the SASV file's CM scores is the same evaluation.
    s = shared["sasv"]
    keys = np.where(s["labels"] == "spoof", "spoof", "bonafide")
    assert evaluate_track1(s["cm"], keys).min_dcf == pytest.approx(shared["official"]["track1"]["min_dcf"], rel=REL)


@pytest.mark.parametrize("seed", range(4))
def test_track2_on_unseen_subsets_of_real_scores(shared, seed):
    # Sets the package never scored: random subsets of real scores, half of them rounded to one decimal (ties).
    rng = np.random.default_rng(seed)
    s = shared["sasv"]
    chosen = rng.choice(s["labels"].size, size=rng.integers(500, 2500), replace=False)
    cm, asv = s["cm"][chosen], s["asv"][chosen]
    if seed % 2:
        cm, asv = np.round(cm, 1), np.round(asv, 1)
    check_track2(cm, asv, asv + 0.1 * cm, s["labels"][chosen])
    keys = s["labels"][chosen] != "spoof"
    check_track1(cm[keys], cm[~keys])


# ------------------------------------------------------------------------------------------ random score sets


tied = st.integers(-3, 3).map(float)
spread = st.floats(-50, 50, allow_nan=False).map(lambda x: round(x, 1))


def trial_lists(score):
    """(cm, asv) score pairs for one class; ties within and across classes are common."""
    return st.lists(st.tuples(score, score), min_size=1, max_size=25)


def as_arrays(target, nontarget, spoof):
    pairs = target + nontarget + spoof
    labels = np.repeat(LABELS, [len(target), len(nontarget), len(spoof)])
    cm, asv = (np.array([p[k] for p in pairs]) for k in (0, 1))
    return cm, asv, labels


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_track2_equals_the_brute_force_definitions(data):
    score = data.draw(st.sampled_from([tied, spread]))
    cm, asv, labels = as_arrays(*(data.draw(trial_lists(score)) for _ in range(3)))
    check_track2(cm, asv, asv + 0.1 * cm, labels)


@settings(max_examples=300, deadline=None)
@given(st.lists(tied | spread, min_size=1, max_size=30), st.lists(tied | spread, min_size=1, max_size=30))
def test_track1_equals_the_brute_force_definitions(bona, spoof):
    check_track1(bona, spoof)


def test_tiny_sets():
    check_track2(np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0]), np.zeros(3), np.array(LABELS))
    check_track2(np.array([2.0, 1.0, 0.0]), np.array([2.0, 0.0, 1.0]), np.zeros(3), np.array(LABELS))
    check_track1([0.0], [0.0])
    check_track1([1.0], [-1.0])


def test_t_eer_on_a_larger_tie_heavy_set():
    rng = np.random.default_rng(7)
    labels = rng.choice(LABELS, size=1500, p=[0.3, 0.2, 0.5])
    cm = np.round(rng.normal(np.where(labels == "spoof", -1.0, 1.0), 1.0), 1)
    asv = np.round(rng.normal(np.select([labels == "target", labels == "spoof"], [2.0, 1.0], -1.0), 1.0), 1)
    check_track2(cm, asv, asv + 0.1 * cm, labels)


# ------------------------------------------------------------------------------------ hand-computed and invariants


def test_track2_hand_computed():
    # Perfect CM (spoofs lowest) and perfect ASV (targets highest): every error can be driven to 0 at once.
    cm = np.array([5.0, 4.0, 3.0, 0.0, -1.0])
    asv = np.array([9.0, 1.0, 0.0, 5.0, 4.0])
    labels = np.array(["target", "nontarget", "nontarget", "spoof", "spoof"])
    assert t_eer(cm, asv, labels).t_eer == 0.0
    assert a_dcf(asv, labels) == 0.0
    # a-DCF on SASV scores where one spoof outscores the target: rejecting up to the target (score 9) leaves the
    # spoof at 10 accepted, C_fa,spoof·P_spoof·1/2 = 0.25, against min(10·0.0095 + 0.5, 0.9405) = 0.595.
    sasv = np.array([9.0, 1.0, 0.0, 10.0, -3.0])
    assert a_dcf(sasv, labels) == pytest.approx(0.25 / 0.595, rel=1e-14)


def test_asv_rates_and_min_tdcf_from_given_asv_scores_hand_computed():
    # ASV: targets 1, 2; non-targets 1.5, 2.5 -> EER threshold 1.5 (after rejecting 1t and 1.5n the rates cross).
    asv = np.array([1.0, 2.0, 1.5, 2.5, 1.5, 3.0, 4.0, 0.0])
    labels = np.array(["target"] * 2 + ["nontarget"] * 2 + ["spoof"] * 4)
    rates = asv_rates(asv, labels)
    # Accept when score >= 1.5: both non-targets, one target rejected, spoofs 1.5, 3, 4 accepted, 0 rejected.
    assert rates == AsvRates(p_fa_non=1.0, p_miss=0.5, p_fa_spoof=0.75)
    cm = np.array([3.0, 4.0, 1.0, 2.0, 0.0, 0.5, 1.2, 5.0])
    c = SASV_COST_MODEL
    c0 = c.p_tar * 0.5 + c.p_non * 10 * 1.0
    c1, c2 = c.p_tar - c0, 0.05 * 10 * 0.75
    # CM points (P_miss, P_fa): reject nothing, then 0, 0.5, 1 (bona fide), 1.2, 2, 3, 4 (bona fide), 5.
    points = [(0, 1), (0, .75), (0, .5), (.25, .5), (.25, .25), (.5, .25), (.75, .25), (1, .25), (1, 0)]
    expected = min(c0 + c1 * pm + c2 * pf for pm, pf in points) / (c0 + min(c1, c2))
    result = evaluate_sasv(asv, labels, cm, asv=rates)
    assert result.min_tdcf == pytest.approx(expected, rel=1e-14)
    assert result.asv_rates == rates and result.t_eer_percent is None


def test_track1_act_dcf_threshold_convention():
    # Scores exactly at the Bayes threshold −ln 1.9: a bona fide trial there is accepted, a spoof there too.
    threshold = -np.log(1.9)
    assert track1_act_dcf([threshold], [threshold - 1]) == 0.0
    assert track1_act_dcf([threshold + 1], [threshold]) == pytest.approx(0.5 / 0.5, rel=1e-15)
    assert track1_act_dcf([threshold - 1e-9], [threshold - 1]) == pytest.approx(0.95 / 0.5, rel=1e-15)


def test_cllr_is_finite_where_the_package_formula_overflows():
    # log(1 + e^1000) = 1000 to double precision; the package's log1p(exp(1000)) is inf.
    expected = 0.5 * ((1000 + math.log1p(math.exp(-2.0))) / 2 + (1000 + math.log1p(math.exp(-3.0))) / 2) / math.log(2)
    assert cllr([-1000.0, 2.0], [1000.0, -3.0]) == pytest.approx(expected, rel=1e-15)
    assert math.isfinite(evaluate_track1([-1e300, 1.0], ["bonafide", "spoof"]).cllr_bits)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-700, 700), min_size=1, max_size=20), st.lists(st.floats(-700, 700), min_size=1, max_size=20))
def test_cllr_equals_the_package_formula_where_it_is_finite(bona, spoof):
    bona, spoof = np.array(bona), np.array(spoof)
    package = 0.5 * (np.mean(np.log1p(np.exp(-bona))) + np.mean(np.log1p(np.exp(spoof)))) / np.log(2)
    assert cllr(bona, spoof) == package


def test_tandem_metrics_depend_only_on_score_order():
    rng = np.random.default_rng(3)
    labels = rng.choice(LABELS, size=400)
    cm, asv = np.round(rng.normal(size=(2, 400)), 1)
    reference = t_eer(cm, asv, labels).t_eer
    assert t_eer(np.exp(cm), 5 * asv - 2, labels).t_eer == reference
    assert a_dcf(np.arctan(asv), labels) == a_dcf(asv, labels)
    assert min_tdcf_revised(cm ** 3, labels) == min_tdcf_revised(cm, labels)


def test_min_dcf_bounds_and_cost_model():
    rng = np.random.default_rng(4)
    bona, spoof = rng.normal(1, 1, 300), rng.normal(-1, 1, 900)
    assert 0 < track1_min_dcf(bona, spoof) <= track1_act_dcf(bona, spoof)
    assert track1_min_dcf(bona, spoof) <= 1.0
    # Other costs: compared with the brute force at P_spoof 0.3, C_fa 2.
    cost = DCFCostModel(p_spoof=0.3, c_miss=1.0, c_fa=2.0)
    assert track1_min_dcf(bona, spoof, cost) == pytest.approx(brute_min_dcf(bona, spoof, 0.3, 1.0, 2.0), rel=DCF_REL)
    assert track1_act_dcf(bona, spoof, cost) == pytest.approx(brute_act_dcf(bona, spoof, 0.3, 1.0, 2.0),
                                                              rel=DCF_REL)
    assert DCFCostModel(0.05, 1.0, 10.0) == TRACK1_COST_MODEL


# ----------------------------------------------------------------------------------------------- breakdowns


def test_breakdowns_equal_the_metrics_of_each_subset():
    rng = np.random.default_rng(5)
    n = 3000
    keys = np.where(rng.random(n) < 0.3, "bonafide", "spoof")
    attacks = np.where(keys == "bonafide", "-", rng.choice(["A17", "A18", "A19"], n))
    codecs = rng.choice(["-", "C01", "C05"], n)
    qualities = np.where(codecs == "-", "-", rng.choice(["1", "2"], n))
    scores = rng.normal(np.where(keys == "bonafide", 1.0, -1.0) + (codecs == "C05"), 1.0)
    result = evaluate_track1(scores, keys, attacks, codecs, qualities)

    assert sorted(result.per_attack) == ["A17", "A18", "A19"]
    for attack, metrics in result.per_attack.items():
        chosen = (keys == "bonafide") | (attacks == attack)
        assert metrics == evaluate_track1(scores[chosen], keys[chosen]).pooled
    assert sorted(result.per_codec) == ["-", "C01", "C05"]
    for codec, metrics in result.per_codec.items():
        chosen = codecs == codec
        assert metrics == evaluate_track1(scores[chosen], keys[chosen]).pooled
        for quality, nested in result.per_codec_quality[codec].items():
            both = chosen & (qualities == quality)
            assert nested == evaluate_track1(scores[both], keys[both]).pooled
    assert sorted(result.per_codec_quality["C01"]) == ["1", "2"] and list(result.per_codec_quality["-"]) == ["-"]
    summary = result.to_dict()
    json.dumps(summary)
    assert summary["per_codec_quality"]["C05"]["2"]["eer_percent"] == result.per_codec_quality["C05"]["2"].eer_percent
    assert summary["cost_model"] == {"p_spoof": 0.05, "c_miss": 1.0, "c_fa": 10.0}


def test_breakdowns_do_not_depend_on_how_labels_are_spelt():
    # Short labels (up to three characters) are grouped as integers, longer ones as strings: same tables.
    rng = np.random.default_rng(9)
    keys = np.where(rng.random(2000) < 0.3, "bonafide", "spoof")
    attacks = np.where(keys == "bonafide", "-", rng.choice(["A1", "A02", "B", "Ω9"], 2000))
    codecs = rng.choice(["-", "C01", "C1"], 2000)
    scores = np.round(rng.normal(np.where(keys == "bonafide", 1.0, -1.0), 1.0), 1)
    short = evaluate_track1(scores, keys, attacks, codecs)
    long = evaluate_track1(scores, keys, np.char.add("attack ", attacks), np.char.add("codec ", codecs))
    assert list(short.per_attack) == ["A02", "A1", "B", "Ω9"]
    assert {f"attack {k}": v for k, v in short.per_attack.items()} == long.per_attack
    assert {f"codec {k}": v for k, v in short.per_codec.items()} == long.per_codec


def test_track1_text_report_shows_every_table():
    keys = np.array(["bonafide", "spoof", "bonafide", "spoof", "spoof", "bonafide", "spoof", "bonafide"])
    attacks = np.where(keys == "bonafide", "-", np.array(["", "A01", "", "A02", "A01", "", "A02", ""]))
    codecs = np.array(["C01", "C01", "C01", "C01", "C02", "C02", "C02", "C02"])
    qualities = np.array(["1", "1", "2", "2", "0", "0", "0", "0"])
    scores = np.array([2.0, -1.0, 0.5, 1.0, 0.0, 3.0, -2.0, 0.25])
    result = evaluate_track1(scores, keys, attacks, codecs, qualities)
    text = result.to_text("t.tsv").splitlines()
    assert text[0] == "t.tsv: 8 trials (4 bona fide, 4 spoof)"
    assert text[1].startswith(f"  min DCF    {result.min_dcf:8.5f}     (primary; P_spoof 0.05, C_miss 1, C_fa 10)")
    assert text[4] == f"  EER        {result.eer_percent:8.4f} %   (threshold {result.pooled.eer_threshold:.6g})"
    a02 = result.per_attack["A02"]
    assert (f"    {'A02':<6}  {a02.min_dcf:8.5f}  {a02.act_dcf:8.5f}  {a02.cllr_bits:8.5f}  {a02.eer_percent:8.4f}  "
            f"{4:9,}  {2:7,}") in text
    # Qualities are tabulated for C01, which has two; C02 has one, whose row would repeat the codec's.
    assert [line.split()[:2] for line in text if line.startswith("    C0")] == [
        ["C01", f"{result.per_codec['C01'].min_dcf:.5f}"], ["C02", f"{result.per_codec['C02'].min_dcf:.5f}"],
        ["C01", "1"], ["C01", "2"]]


def test_sasv_text_report_says_what_is_missing_and_where_the_asv_rates_come_from():
    cm = np.array([3.0, 2.0, 1.0, 0.0, -1.0, 0.5])
    asv = np.array([2.0, 1.5, 0.0, -1.0, 1.0, 0.2])
    labels = np.array(["target", "target", "nontarget", "nontarget", "spoof", "spoof"])
    full = evaluate_sasv(asv + cm, labels, cm, asv).to_text("s.tsv").splitlines()
    assert full[0] == "s.tsv: 6 trials (2 target, 2 non-target, 2 spoof)"
    assert "ASV error rates: the organisers' pooled ones:" in full[2]
    assert full[3].strip() == "P_fa,non 0.0188, P_miss 0.0188, P_fa,spoof 0.4607)"
    assert full[4].startswith("  t-EER ")
    given = evaluate_sasv(asv + cm, labels, cm, asv=asv_rates(asv, labels)).to_text()
    assert "computed from the given ASV scores" in given
    assert "t-EER           n/a     (needs the CM and the ASV scores)" in given
    assert "min t-DCF       n/a     (needs the CM scores)" in evaluate_sasv(asv, labels).to_text()


def test_a_condition_with_one_class_has_no_entry():
    keys = ["bonafide", "spoof", "bonafide", "spoof", "spoof"]
    result = evaluate_track1([1.0, 0.0, 2.0, 1.5, -1.0], keys, codecs=["C01", "C01", "C02", "C02", "C03"])
    assert sorted(result.per_codec) == ["C01", "C02"]
    assert result.per_attack == {} and result.per_codec_quality == {}


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: evaluate_track1([1.0, 2.0], ["spoof", "spoof"]), "no bona fide trials among 2"),
        (lambda: evaluate_track1([1.0, 2.0], ["bonafide", "bonafide"]), "no spoof trials among 2"),
        (lambda: evaluate_track1([1.0, 2.0], ["bonafide", "human"]), "'human' at trial 1"),
        (lambda: evaluate_track1([1.0, np.nan], ["bonafide", "spoof"]), "1 NaN value"),
        (lambda: evaluate_track1([1.0, 2.0], ["bonafide", "spoof"], codecs=["C01"]), "2 scores but 1 codecs"),
        (lambda: evaluate_track1([1.0, 2.0], ["bonafide", "spoof"], codec_qualities=["1", "2"]), "give the codecs"),
        (lambda: track1_min_dcf([], [1.0]), "no bona fide scores"),
        (lambda: a_dcf([1.0, 2.0], ["target", "spoof"]), "no nontarget trials among 2"),
        (lambda: a_dcf([1.0, 2.0, 3.0], ["target", "impostor", "spoof"]), "'impostor' at trial 1"),
        (lambda: t_eer([1.0, 2.0], [1.0, 2.0], ["target", "nontarget"]), "no spoof trials"),
        (lambda: min_tdcf_revised([1.0, 2.0], ["spoof", "spoof"]), "no bona fide trials among 2"),
        (lambda: evaluate_sasv([1.0, 2.0, 3.0], LABELS, asv_scores=[1.0, 2.0, 3.0]), "needs the CM scores"),
        (lambda: min_tdcf_revised([1.0, 2.0, 3.0], LABELS, AsvRates(1.0, 1.0, 0.5)), "negative t-DCF weight"),
        (lambda: DCFCostModel(p_spoof=1.0), "p_spoof"),
        (lambda: SASVCostModel(p_spoof=0.5), "sum to 1"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_exported_lazily_and_without_torch():
    import lfcc_gmm
    from lfcc_gmm import asvspoof5, bootstrap

    assert lfcc_gmm.evaluate_track1 is asvspoof5.evaluate_track1 and lfcc_gmm.t_eer is asvspoof5.t_eer
    assert lfcc_gmm.paired_bootstrap is bootstrap.paired_bootstrap
    code = ("import sys, lfcc_gmm; lfcc_gmm.evaluate_sasv; lfcc_gmm.bootstrap_ci; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)

"""Bootstrap intervals: every replicate is the metric of its resample, coverage and width on Gaussian scores with a
known EER, determinism, paired comparisons, speakers resampled as clusters, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from lfcc_gmm.asvspoof5 import AsvRates, a_dcf, min_tdcf_revised, track1_min_dcf
from lfcc_gmm.bootstrap import (
    bootstrap_ci,
    cluster_speakers,
    paired_bootstrap,
    resample_counts,
    sasv_bootstrap_ci,
)
from lfcc_gmm.metrics import compute_eer, compute_min_tdcf, evaluate, min_dcf
from lfcc_gmm.protocols import Trial
from lfcc_gmm.scorefiles import ASVScores


def gaussian_trials(seed, n_bona=200, n_spoof=200, separation=2.0, decimals=None):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(separation, 1, n_bona), rng.normal(0, 1, n_spoof)])
    if decimals is not None:
        scores = np.round(scores, decimals)
    return scores, np.array(["bonafide"] * n_bona + ["spoof"] * n_spoof)


def resampled(scores, keys, copies):
    """The resample itself: each trial repeated as often as it was drawn."""
    bona = keys == "bonafide"
    return np.repeat(scores[bona], copies[bona]), np.repeat(scores[~bona], copies[~bona])


@pytest.mark.parametrize("speakers", [False, True])
def test_every_replicate_is_the_metric_of_its_resample(speakers):
    # Tie-heavy scores (one decimal), so that copies and ties meet at the EER.
    scores, keys = gaussian_trials(0, 120, 280, separation=1.0, decimals=1)
    spk = np.random.default_rng(1).choice([f"S{i}" for i in range(15)], keys.size) if speakers else None
    result = bootstrap_ci(scores, keys, spk, n_resamples=150, seed=4)
    counts = resample_counts(keys, spk, n_resamples=150, seed=4)
    assert result.unit == ("speaker" if speakers else "trial")
    for r, copies in enumerate(counts):
        bona, spoof = resampled(scores, keys, copies)
        assert result.replicates["eer_percent"][r] == 100 * compute_eer(bona, spoof)[0]
        assert result.replicates["min_dcf"][r] == track1_min_dcf(bona, spoof)
    assert result.intervals["eer_percent"].estimate == 100 * compute_eer(scores[keys == "bonafide"],
                                                                         scores[keys == "spoof"])[0]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=12), st.lists(st.integers(-3, 3), min_size=1, max_size=12),
       st.integers(0, 2**32 - 1), st.booleans())
def test_replicates_of_small_tied_sets(bona, spoof, seed, by_speaker):
    # Small sets and few distinct scores: the EER often falls between two copies of one trial, and the two
    # points around it are often equally far from FRR = FAR.
    scores = np.array(bona + spoof, dtype=float)
    keys = np.array(["bonafide"] * len(bona) + ["spoof"] * len(spoof))
    speakers = np.arange(keys.size) % 3 if by_speaker and keys.size > 2 else None
    result = bootstrap_ci(scores, keys, speakers, n_resamples=20, seed=seed)
    for r, copies in enumerate(resample_counts(keys, speakers, n_resamples=20, seed=seed)):
        resample = resampled(scores, keys, copies)
        assert result.replicates["eer_percent"][r] == 100 * compute_eer(*resample)[0]
        assert result.replicates["min_dcf"][r] == track1_min_dcf(*resample)


def test_min_tdcf_replicates_with_asv_scores():
    scores, keys = gaussian_trials(2, 90, 210, separation=1.5, decimals=1)
    rng = np.random.default_rng(3)
    asv = ASVScores(rng.normal(3, 1, 200), rng.normal(0, 1, 200), rng.normal(2, 1, 300))
    result = bootstrap_ci(scores, keys, asv=asv, n_resamples=60, seed=1)
    assert set(result.intervals) == {"eer_percent", "min_tdcf"}
    for r, copies in enumerate(resample_counts(keys, n_resamples=60, seed=1)):
        bona, spoof = resampled(scores, keys, copies)
        assert result.replicates["min_tdcf"][r] == compute_min_tdcf(bona, spoof, asv.target, asv.nontarget,
                                                                    asv.spoof)


@pytest.mark.parametrize("prior", [0.5, 0.3, 0.9])
def test_min_dcf_at_a_prior_replicates_and_equals_what_evaluate_reports(prior):
    # The DCF of antispoof evaluate's ASVspoof 2019 report: unit costs at P(bona fide) = prior.
    scores, keys = gaussian_trials(12, 70, 150, separation=1.2, decimals=1)
    result = bootstrap_ci(scores, keys, prior=prior, n_resamples=60, seed=3)
    assert set(result.intervals) == {"eer_percent", "min_dcf"}
    for r, copies in enumerate(resample_counts(keys, n_resamples=60, seed=3)):
        assert result.replicates["min_dcf"][r] == min_dcf(*resampled(scores, keys, copies), prior=prior)
    assert result.intervals["min_dcf"].estimate == evaluate(scores, keys, prior=prior).min_dcf


def test_trials_are_resampled_within_each_class():
    _, keys = gaussian_trials(0, 30, 70)
    counts = resample_counts(keys, n_resamples=50, seed=0)
    assert (counts[:, keys == "bonafide"].sum(axis=1) == 30).all()
    assert (counts[:, keys == "spoof"].sum(axis=1) == 70).all()


def test_speakers_are_resampled_as_clusters():
    rng = np.random.default_rng(5)
    speakers = rng.choice([f"S{i}" for i in range(12)], 300)
    keys = np.where(rng.random(300) < 0.4, "bonafide", "spoof")
    counts = resample_counts(keys, speakers, n_resamples=200, seed=2)
    for name in np.unique(speakers):
        mine = counts[:, speakers == name]
        assert (mine == mine[:, :1]).all()  # all trials of a speaker are drawn together
    # 12 speakers drawn 12 times: the copies of each speaker sum to 12 in every resample.
    per_speaker = np.stack([counts[:, np.flatnonzero(speakers == s)[0]] for s in np.unique(speakers)], axis=1)
    assert (per_speaker.sum(axis=1) == 12).all()


def test_speaker_intervals_are_wider_when_speakers_shift_scores():
    # Each speaker moves all its scores by a common offset: trials of one speaker are correlated, and an interval
    # that resamples them independently is too narrow.
    rng = np.random.default_rng(6)
    speakers = rng.integers(0, 20, 4000)
    offset = rng.normal(0, 1.5, 20)[speakers]
    keys = np.where(rng.random(4000) < 0.3, "bonafide", "spoof")
    scores = np.where(keys == "bonafide", 1.5, -1.5) + offset + rng.normal(0, 1, 4000)
    trials = bootstrap_ci(scores, keys, n_resamples=300).intervals["eer_percent"]
    clusters = bootstrap_ci(scores, keys, speakers.astype(str), n_resamples=300).intervals["eer_percent"]
    assert clusters.high - clusters.low > 2 * (trials.high - trials.low)


def test_same_seed_same_intervals_other_seed_other_resamples():
    scores, keys = gaussian_trials(7)
    first = bootstrap_ci(scores, keys, n_resamples=200, seed=11)
    again = bootstrap_ci(scores, keys, n_resamples=200, seed=11)
    other = bootstrap_ci(scores, keys, n_resamples=200, seed=12)
    assert first == again
    np.testing.assert_array_equal(first.replicates["eer_percent"], again.replicates["eer_percent"])
    assert not np.array_equal(first.replicates["eer_percent"], other.replicates["eer_percent"])


@pytest.mark.slow
def test_coverage_and_width_on_gaussian_scores_with_a_known_eer():
    # Bona fide N(2, 1) against spoof N(0, 1): the EER is Φ(−1) = 15.87 %.
    true_eer = 100 * norm.cdf(-1.0)
    # Independent reference for the width: the spread of the EER over fresh data sets.
    spread = np.std([100 * compute_eer(*np.split(gaussian_trials(10_000 + s)[0], 2))[0] for s in range(400)])
    for confidence, low, high in ((0.95, 0.92, 0.99), (0.8, 0.72, 0.9)):
        hits, widths = 0, []
        for seed in range(200):
            scores, keys = gaussian_trials(seed)
            interval = bootstrap_ci(scores, keys, confidence=confidence, n_resamples=200, seed=seed)
            eer = interval.intervals["eer_percent"]
            hits += eer.low <= true_eer <= eer.high
            widths.append(eer.high - eer.low)
        assert low <= hits / 200 <= high, (confidence, hits / 200)
        expected_width = 2 * norm.ppf((1 + confidence) / 2) * spread
        assert np.mean(widths) == pytest.approx(expected_width, rel=0.2), confidence


def two_systems(own_noise_of_worse):
    """Two systems on the same 3,000 trials that find the same trials hard (the shared term); the first adds more
    noise of its own."""
    rng = np.random.default_rng(8)
    truth = np.where(rng.random(3000) < 0.3, "bonafide", "spoof")
    shared = np.where(truth == "bonafide", 1.0, -1.0) + rng.normal(0, 1.0, 3000)
    better = shared + rng.normal(0, 0.3, 3000)
    return shared + rng.normal(0, own_noise_of_worse, 3000), better, truth


def test_paired_bootstrap_detects_a_real_difference():
    worse, better, truth = two_systems(0.8)
    result = paired_bootstrap(worse, better, truth, n_resamples=300)
    assert result.significant == {"eer_percent": True, "min_dcf": True}
    assert result.differences["eer_percent"].low > 0  # A (worse) has the higher EER


def test_pairing_finds_a_difference_that_separate_intervals_miss():
    worse, better, truth = two_systems(0.6)
    paired = paired_bootstrap(worse, better, truth, n_resamples=300).differences["eer_percent"]
    alone = [bootstrap_ci(x, truth, n_resamples=300, seed=seed) for seed, x in enumerate((worse, better), start=1)]
    # Each system's interval overlaps the other's, and so does the difference of two independent bootstraps;
    # resampling the same trials for both cancels what they share.
    assert alone[0].intervals["eer_percent"].low < alone[1].intervals["eer_percent"].high
    unpaired = np.quantile(alone[0].replicates["eer_percent"] - alone[1].replicates["eer_percent"], [0.025, 0.975])
    assert unpaired[0] < 0 < paired.low


def test_paired_bootstrap_finds_no_difference_between_equally_good_systems():
    # Two systems of the same quality on the same trials: a 95 % interval should exclude 0 rarely (5 % nominal).
    significant = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        truth = np.where(rng.random(800) < 0.3, "bonafide", "spoof")
        signal = np.where(truth == "bonafide", 1.0, -1.0) + rng.normal(0, 0.7, 800)  # what both systems see
        a, b = signal + rng.normal(0, 0.7, 800), signal + rng.normal(0, 0.7, 800)
        significant += paired_bootstrap(a, b, truth, n_resamples=200, seed=seed).significant["eer_percent"]
    assert significant <= 6


def test_identical_systems_differ_by_exactly_zero():
    scores, keys = gaussian_trials(9)
    result = paired_bootstrap(scores, 3 * scores + 1, keys, n_resamples=100)  # same ranking, same metrics
    assert result.differences["eer_percent"] == result.differences["eer_percent"].__class__(0.0, 0.0, 0.0)
    assert result.significant == {"eer_percent": False, "min_dcf": False}


def test_to_dict_is_json_ready():
    scores, keys = gaussian_trials(10, 20, 40)
    ci = bootstrap_ci(scores, keys, n_resamples=50).to_dict()
    assert {"confidence", "n_resamples", "resampled", "seed", "eer_percent", "min_dcf"} <= set(ci)
    assert set(ci["eer_percent"]) == {"estimate", "low", "high"}
    paired = paired_bootstrap(scores, -scores, keys, n_resamples=50).to_dict()
    assert paired["eer_percent"]["significant"] is True
    json.dumps([ci, paired])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, k: bootstrap_ci(s, k, confidence=1.0), "confidence"),
        (lambda s, k: bootstrap_ci(s, k, n_resamples=0), "n_resamples"),
        (lambda s, k: bootstrap_ci(s, k[:-1]), "4 scores but 3 keys"),
        (lambda s, k: bootstrap_ci(s, ["spoof"] * 4), "no bona fide trials"),
        (lambda s, k: bootstrap_ci(s, k, ["S1"] * 4), "at least two speakers"),
        (lambda s, k: bootstrap_ci(s, k, ["S1", "S2"]), "4 scores but 2 speakers"),
        (lambda s, k: paired_bootstrap(s, s[:-1], k), "3 scores but 4 keys"),
        (lambda s, k: bootstrap_ci(s, k, asv=ASVScores(s, s, s), prior=0.5), "not both"),
        (lambda s, k: bootstrap_ci(s, k, prior=1.0), "prior"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    scores, keys = np.array([0.0, 1.0, 2.0, 3.0]), np.array(["spoof", "bonafide", "spoof", "bonafide"])
    with pytest.raises(ValueError, match=message):
        call(scores, keys)


def test_to_text_gives_each_interval_and_verdict():
    scores, keys = gaussian_trials(13, 30, 40)
    ci = bootstrap_ci(scores, keys, n_resamples=50, seed=5)
    eer = ci.intervals["eer_percent"]
    text = ci.to_text("no protocol names the speakers")
    assert text.splitlines()[0] == ("  95 % percentile bootstrap intervals, 50 resamples of trials, seed 5 (no "
                                    "protocol names the speakers):")
    assert f"EER %     {eer.estimate:10.4f}   [{eer.low:.4f}, {eer.high:.4f}]" in text
    paired = paired_bootstrap(scores, -scores, keys, n_resamples=50).to_text("good", "reversed")
    assert paired.splitlines()[0] == "  good − reversed:"
    assert paired.count("   significant") == 2


def test_speakers_are_clusters_only_when_the_protocol_names_two_or_more():
    trials = [Trial("a", "bonafide", speaker="S1"), Trial("b", "spoof", "A01", "S2"), Trial("c", "spoof", "A01", "S1")]
    assert cluster_speakers(trials, ["c", "a", "b"]) == (["S1", "S1", "S2"], "the protocol names 2 speakers")
    one = [Trial(t.file_id, t.key, t.attack, "S1") for t in trials]
    assert cluster_speakers(one, ["a", "b", "c"]) == (None, "the protocol names one speaker")
    unnamed = [Trial(t.file_id, t.key, t.attack) for t in trials]
    assert cluster_speakers(unnamed, ["a", "b", "c"]) == (None, "the protocol names no speakers")
    assert cluster_speakers(None, ["a"]) == (None, "no protocol names the speakers")


@pytest.mark.parametrize("by_speaker", [False, True])
def test_sasv_replicates_are_the_a_dcf_and_min_tdcf_of_their_resamples(by_speaker):
    rng = np.random.default_rng(14)
    labels = rng.choice(["target", "nontarget", "spoof"], 240, p=[0.3, 0.3, 0.4])
    # One decimal: ties within and across the classes, where the package's order among equal scores matters.
    asv = np.round(rng.normal(np.select([labels == "target", labels == "spoof"], [2.0, 1.0], 0.0), 1.0), 1)
    cm = np.round(rng.normal(np.where(labels == "spoof", -1.0, 1.0), 1.0), 1)
    sasv = asv + cm
    speakers = rng.choice([f"S{i}" for i in range(10)], 240) if by_speaker else None
    rates = AsvRates(0.05, 0.1, 0.3)
    result = sasv_bootstrap_ci(sasv, labels, speakers, cm_scores=cm, asv=rates, n_resamples=40, seed=6)
    assert result.unit == ("speaker" if by_speaker else "trial")
    assert result.intervals["a_dcf"].estimate == a_dcf(sasv, labels)
    assert result.intervals["min_tdcf"].estimate == min_tdcf_revised(cm, labels, rates)
    counts = resample_counts(labels, speakers, n_resamples=40, seed=6)
    for label in ("target", "nontarget", "spoof"):  # every class in every resample
        assert (counts[:, labels == label].sum(axis=1) > 0).all()
    for r, copies in enumerate(counts):
        drawn = np.repeat(np.arange(240), copies)
        assert result.replicates["a_dcf"][r] == a_dcf(sasv[drawn], labels[drawn])
        assert result.replicates["min_tdcf"][r] == min_tdcf_revised(cm[drawn], labels[drawn], rates)
    assert set(sasv_bootstrap_ci(sasv, labels, n_resamples=5).intervals) == {"a_dcf"}


def test_sasv_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="no nontarget trials among 2"):
        sasv_bootstrap_ci([1.0, 2.0], ["target", "spoof"])
    with pytest.raises(ValueError, match="'impostor' at trial 1"):
        sasv_bootstrap_ci([1.0, 2.0, 3.0], ["target", "impostor", "spoof"])
    with pytest.raises(ValueError, match="3 SASV scores but 2 CM scores"):
        sasv_bootstrap_ci([1.0, 2.0, 3.0], ["target", "nontarget", "spoof"], cm_scores=[1.0, 2.0])

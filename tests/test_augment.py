"""Training augmentation: RawBoost noise types and algorithms, speed and tempo, the seeded Augmenter."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from test_degrade import FS, sine, speech_like  # the synthetic test signals

from lfcc_gmm import augment, degrade


def level_db(y: np.ndarray, freq: float) -> float:
    """Amplitude (dB re 1) of the component at ``freq``, from a Hann-windowed spectrum."""
    window = np.hanning(y.shape[0])
    spectrum = np.abs(np.fft.rfft(y * window)) * 2 / window.sum()
    bins = np.fft.rfftfreq(y.shape[0], 1 / FS)
    return 20 * np.log10(spectrum[np.argmin(np.abs(bins - freq))] + 1e-300)


def peak_frequency(y: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.shape[0]), 8 * y.shape[0]))
    return float(np.fft.rfftfreq(8 * y.shape[0], 1 / FS)[np.argmax(spectrum)])


# -------------------------------------------------------------------------------------------------- RawBoost
@pytest.mark.parametrize("algo", range(1, 9))
def test_rawboost_algorithms_change_the_signal(algo):
    x = speech_like()
    y = augment.rawboost(x, algo, rng=1)
    assert y.shape == x.shape
    assert np.all(np.isfinite(y))
    assert not np.allclose(y, x)
    np.testing.assert_array_equal(y, augment.rawboost(x, algo, rng=1))
    assert not np.allclose(y, augment.rawboost(x, algo, rng=2))


def test_rawboost_algorithm_zero_and_bad_numbers():
    x = speech_like(1000)
    np.testing.assert_array_equal(augment.rawboost(x, 0, rng=0), x)
    with pytest.raises(ValueError, match="one of"):
        augment.rawboost(x, 9)


def test_notch_filter_bank_is_a_band_stop():
    # one notch with every parameter pinned: 1500-2500 Hz, 101 taps, 0 dB peak gain
    params = augment.RawBoostParams(
        n_bands=1, min_freq=2000, max_freq=2000, min_bandwidth=1000, max_bandwidth=1000, min_coeffs=101, max_coeffs=102
    )
    taps = augment.notch_filter_bank(np.random.default_rng(0), params, FS, (0.0, 0.0))
    assert taps.shape == (101,)
    np.testing.assert_allclose(taps, taps[::-1])  # linear phase
    linear = augment.RawBoostParams(**{**params.__dict__, "n_f": 1})
    for freq, expected in ((500, 0.0), (2000, None), (5000, 0.0)):
        x = sine(freq, 4000)
        y = augment.lnl_convolutive_noise(x, rng=0, params=linear)
        change = level_db(y[500:-500], freq) - level_db(x[500:-500], freq)
        if expected is None:
            assert change < -30.0
        else:
            assert abs(change) < 0.5


def test_convolutive_noise_adds_harmonics_only_when_non_linear():
    # the notch sits at 7 kHz, far from the 500 Hz tone and its 1 kHz second harmonic
    base = dict(n_bands=1, min_freq=7000, max_freq=7000, min_bandwidth=200, max_bandwidth=200)
    x = sine(500, 8000)
    linear = augment.lnl_convolutive_noise(x, rng=3, params=augment.RawBoostParams(**base, n_f=1))
    quadratic = augment.lnl_convolutive_noise(x, rng=3, params=augment.RawBoostParams(**base, n_f=2))
    assert level_db(linear, 1000) < -80
    # x² = (1 - cos 2ωt) / 8 at amplitude 0.5: a 1 kHz term of 0.125, filtered 5-20 dB down
    assert -20 * np.log10(8) - 21 < level_db(quadratic, 1000) < -20 * np.log10(8) - 4


def test_impulsive_noise_hits_few_samples_by_bounded_amounts():
    params = augment.RawBoostParams(p_max=10.0, g_sd=2.0)
    x = speech_like(20000) * 0.3  # peak stays below 1 after the impulses: no renormalisation
    for seed in range(5):
        y = augment.isd_additive_noise(x, rng=seed, params=params)
        changed = y != x
        assert np.count_nonzero(changed) <= 0.10 * x.shape[0]
        assert np.all(np.abs(y - x) <= params.g_sd * np.abs(x) + 1e-15)
    loud = augment.isd_additive_noise(np.full(1000, 0.9), rng=1, params=augment.RawBoostParams(p_max=50.0))
    assert np.max(np.abs(loud)) <= 1.0


def test_stationary_noise_snr_and_colour():
    x = speech_like()
    params = augment.RawBoostParams(snr_min=20.0, snr_max=20.0)
    y = augment.ssi_additive_noise(x, rng=4, params=params)
    assert 10 * np.log10(np.sum(x**2) / np.sum((y - x) ** 2)) == pytest.approx(20.0, abs=0.1)
    ranged = augment.ssi_additive_noise(x, rng=5)
    assert 10 <= 10 * np.log10(np.sum(x**2) / np.sum((ranged - x) ** 2)) <= 40
    # notched noise: coloured, not white (its spectrum has bands far below its median level)
    notched = augment.ssi_additive_noise(np.ones(2**15), rng=6, params=params) - 1
    spectrum = np.abs(np.fft.rfft(notched)) ** 2
    smoothed = np.convolve(spectrum, np.ones(64) / 64, mode="valid")
    assert smoothed.min() < 0.01 * np.median(smoothed)


# ------------------------------------------------------------------------------------------ speed and tempo
@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_pitch_and_length(factor):
    x = sine(1000)
    y = augment.speed_perturb(x, factor)
    assert abs(y.shape[0] - x.shape[0] / factor) <= 1
    assert peak_frequency(y) == pytest.approx(1000 * factor, abs=2)


@pytest.mark.parametrize("factor", [0.8, 0.9, 1.1, 1.25])
def test_tempo_keeps_pitch_and_level(factor):
    x = sine(440)
    y = augment.tempo_perturb(x, factor)
    assert y.shape[0] == round(x.shape[0] / factor)
    assert peak_frequency(y) == pytest.approx(440, abs=2)
    # steady amplitude: overlap-added frames stay in phase
    frames = y[: y.shape[0] // 800 * 800].reshape(-1, 800)
    np.testing.assert_allclose(np.sqrt(np.mean(frames**2, axis=1)), 0.5 / np.sqrt(2), rtol=0.05)


def test_tempo_keeps_speech_harmonics():
    x = speech_like(2 * FS)
    y = augment.tempo_perturb(x, 1.2)
    for harmonic in (150, 300, 450):
        assert level_db(y, harmonic) > level_db(y, harmonic * 1.2 + 40) + 20


def test_speed_and_tempo_reject_bad_factors():
    with pytest.raises(ValueError, match="positive"):
        augment.speed_perturb(np.ones(10), 0.0)
    with pytest.raises(ValueError, match="positive"):
        augment.tempo_perturb(np.ones(10), -1.0)


# ------------------------------------------------------------------------------------------------ Augmenter
SPEC = "rawboost:5,noise,pink,reverb,speed,tempo,gain,clip,mulaw,noise:20,rawboost"


def test_augmenter_is_deterministic_per_seed_epoch_item():
    x = speech_like()
    augmenter = augment.Augmenter(SPEC)
    outputs = {}
    for epoch in range(2):
        for item in range(6):
            y = augmenter(x, augment.item_seed(7, epoch, item))
            np.testing.assert_array_equal(y, augmenter(x, augment.item_seed(7, epoch, item)))
            np.testing.assert_array_equal(y, augmenter(x, (7, epoch, item)))  # same SeedSequence
            outputs[epoch, item] = y
    distinct = {(y.shape[0], round(float(np.sum(y**2)), 9)) for y in outputs.values()}
    assert len(distinct) >= 10


def test_item_seeds_are_independent():
    states = {
        tuple(augment.item_seed(base, epoch, item).generate_state(2))
        for base in range(2)
        for epoch in range(3)
        for item in range(3)
    }
    assert len(states) == 18


def test_augmenter_pickles():
    augmenter = augment.Augmenter(SPEC, probability=0.7)
    restored = pickle.loads(pickle.dumps(augmenter))
    x = speech_like()
    for item in range(5):
        seed = augment.item_seed(0, 0, item)
        np.testing.assert_array_equal(restored(x, seed), augmenter(x, seed))
    assert repr(restored) == repr(augmenter)


def test_augmenter_probability_and_fixed_conditions():
    x = speech_like()
    never = augment.Augmenter("noise,reverb", probability=0.0)
    np.testing.assert_array_equal(never(x, 1), x)
    always = augment.Augmenter("mulaw", probability=1.0)
    np.testing.assert_array_equal(always(x, 1), degrade.mulaw(x))
    half = augment.Augmenter("mulaw", probability=0.5)
    changed = sum(not np.array_equal(half(x, (0, 0, item)), x) for item in range(200))
    assert 70 <= changed <= 130
    np.testing.assert_array_equal(augment.Augmenter("noise")(np.zeros(50), 3), np.zeros(50))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("echo", "unknown condition 'echo'"),
        ("noise,", "empty item"),
        ("babble", "not available as an augmentation"),
        ("rawboost:9", "RawBoost algorithm"),
        ("speed:fast", "speed factor"),
        ("tempo:3", "tempo factor"),
        ("noise:abc", "needs a parameter"),
    ],
)
def test_augmenter_spec_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        augment.Augmenter(spec)
    with pytest.raises(ValueError, match=r"probability"):
        augment.Augmenter("noise", probability=1.5)

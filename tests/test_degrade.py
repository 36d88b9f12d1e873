"""Degradations: achieved SNRs, filter responses, G.711 codes, codec round trips, reverb decay, conditions."""

from __future__ import annotations

import importlib.util
import pickle
import sys

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import correlate, welch

from lfcc_gmm import degrade

FS = 16000
HAS_G722 = importlib.util.find_spec("G722") is not None


def sine(freq: float, n: int = FS, amplitude: float = 0.5, fs: int = FS) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(n) / fs)


def speech_like(n: int = FS, seed: int = 0) -> np.ndarray:
    """Voiced-speech stand-in: a 150 Hz harmonic series with a syllable-rate envelope and a little noise."""
    t = np.arange(n) / FS
    voiced = sum(np.sin(2 * np.pi * 150 * k * t + k) / k for k in range(1, 20))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return 0.1 * voiced * envelope + 0.002 * np.random.default_rng(seed).standard_normal(n)


def snr_db(clean: np.ndarray, degraded: np.ndarray) -> float:
    return 10 * np.log10(np.sum(clean**2) / np.sum((degraded - clean) ** 2))


def gain_db(x: np.ndarray, y: np.ndarray, margin: int = 2000) -> float:
    """Level change of a steady signal, away from the edges where filters ring in."""
    return 20 * np.log10(np.std(y[margin:-margin]) / np.std(x[margin:-margin]))


# ---------------------------------------------------------------------------------------------- additive noise
@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 20.0, 40.0])
def test_white_noise_reaches_the_snr(snr):
    x = speech_like()
    assert abs(snr_db(x, degrade.add_white_noise(x, snr, rng=1)) - snr) < 0.1


@pytest.mark.parametrize(("exponent", "snr"), [(1.0, 10.0), (2.0, 5.0), (-1.0, 20.0)])
def test_coloured_noise_reaches_the_snr(exponent, snr):
    x = speech_like()
    assert abs(snr_db(x, degrade.add_coloured_noise(x, snr, exponent, rng=2)) - snr) < 0.1


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0, -1.0])
def test_coloured_noise_spectral_slope(exponent):
    noise = degrade.coloured_noise(2**17, exponent, rng=3)
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0)
    freqs, psd = welch(noise, fs=FS, nperseg=4096)
    band = (freqs >= 50) & (freqs <= 6000)
    slope = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.15)


def test_babble_reaches_the_snr_and_loops_short_talkers():
    x = speech_like(FS)
    talkers = [speech_like(5000, seed=1), speech_like(30000, seed=2), sine(300, 7000)]
    y = degrade.add_babble(x, talkers, 10.0, rng=4)
    assert abs(snr_db(x, y) - 10.0) < 0.1
    looped = degrade.babble([sine(300, 7000)], FS, rng=5)
    # one talker, looped: periodic with the talker's length and at unit RMS
    np.testing.assert_allclose(looped[:-7000], looped[7000:], atol=1e-12)
    assert np.sqrt(np.mean(looped[:7000] ** 2)) == pytest.approx(1.0)


def test_babble_chooses_n_talkers_and_rejects_bad_input():
    talkers = [np.full(100, float(k + 1)) for k in range(5)]
    mix = degrade.babble(talkers, 50, rng=6, n_talkers=3)
    # each constant talker is 1 at unit RMS, so the mix counts the talkers drawn
    np.testing.assert_allclose(mix, 3.0)
    with pytest.raises(ValueError, match="at least one"):
        degrade.babble([], 10)
    with pytest.raises(ValueError, match="n_talkers"):
        degrade.babble(talkers, 10, n_talkers=6)
    with pytest.raises(ValueError, match="silent"):
        degrade.babble([np.zeros(10)], 10)


def test_noise_edge_cases():
    silent = np.zeros(100)
    np.testing.assert_array_equal(degrade.add_white_noise(silent, 10, rng=0), silent)
    with pytest.raises(ValueError, match="noise is silent"):
        degrade.add_noise(np.ones(10), np.zeros(10), 10)
    with pytest.raises(ValueError, match="samples"):
        degrade.add_noise(np.ones(10), np.ones(9), 10)
    with pytest.raises(ValueError, match="1-D"):
        degrade.add_white_noise(np.ones((10, 2)), 10)


# ------------------------------------------------------------------------------------------ channel effects
@pytest.mark.parametrize("freq", [300, 500, 1000, 2000, 3000, 3400])
def test_telephone_band_passes_the_band(freq):
    x = sine(freq)
    assert abs(gain_db(x, degrade.telephone_band(x))) <= 1.0


@pytest.mark.parametrize("freq", [50, 100, 200, 4000, 5000, 7000])
def test_telephone_band_stops_outside(freq):
    x = sine(freq)
    assert gain_db(x, degrade.telephone_band(x)) <= -20.0


def test_telephone_band_is_zero_phase_and_works_at_8k():
    x = sine(1000)
    np.testing.assert_allclose(degrade.telephone_band(x)[2000:-2000], x[2000:-2000], atol=0.02 * 0.5)
    at_8k = sine(3800, 8000, fs=8000)
    assert gain_db(at_8k, degrade.telephone_band(at_8k, sample_rate=8000), margin=1000) <= -20.0
    with pytest.raises(ValueError, match="Nyquist"):
        degrade.telephone_band(x, sample_rate=6000)


def test_8k_round_trip_removes_content_above_4k():
    for freq in (5000, 6000, 7500):
        x = sine(freq, FS + 1)
        y = degrade.resample_round_trip(x)
        assert y.shape == x.shape
        assert gain_db(x, y) <= -40.0
    speech = sine(1000, FS + 1)
    assert snr_db(speech[2000:-2000], degrade.resample_round_trip(speech)[2000:-2000]) > 40.0


def test_gain_and_clipping():
    x = speech_like()
    np.testing.assert_allclose(degrade.apply_gain(x, -6.0), x * 10 ** (-6 / 20))
    clipped = degrade.clip(x, 0.05)
    assert np.max(np.abs(clipped)) == pytest.approx(0.05)
    small = np.abs(x) <= 0.05
    np.testing.assert_array_equal(clipped[small], x[small])
    noise = np.random.default_rng(7).standard_normal(10000)
    level = np.max(np.abs(degrade.clip_fraction(noise, 0.05)))
    assert np.count_nonzero(np.abs(noise) > level) == pytest.approx(500, abs=1)
    with pytest.raises(ValueError, match="positive"):
        degrade.clip(x, 0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        degrade.clip_fraction(x, 1.0)


# --------------------------------------------------------------------------------------------- G.711
# Hand-computed from the G.711 tables, 16-bit PCM in: μ-law 1000 → 1000>>2 = 250, +33 = 283 → segment 3,
# mantissa (283>>4)&15 = 1 → 0x31 complemented with the sign bit → 0xCE; decodes to ((2·1+33)<<3) - 33 = 247
# (14-bit) = 988. A-law 1000 → 1000>>3 = 125 → segment 2, mantissa (125>>2)&15 = 15 → 0xAF ^ 0x55 = 0xFA;
# decodes to ((15<<4) + 0x108) << 1 = 1008.
G711_CASES = [
    # pcm, μ-law code, μ-law decoded, A-law code, A-law decoded
    (0, 0xFF, 0, 0xD5, 8),
    (1000, 0xCE, 988, 0xFA, 1008),
    (-1000, 0x4E, -988, 0x7A, -1008),
    (-1, 0x7F, 0, 0x55, -8),
    (32767, 0x80, 32124, 0xAA, 32256),
    (-32768, 0x00, -32124, 0x2A, -32256),
]


@pytest.mark.parametrize(("pcm", "mu_code", "mu_value", "a_code", "a_value"), G711_CASES)
def test_g711_hand_computed_codes(pcm, mu_code, mu_value, a_code, a_value):
    x = np.array([pcm / 32768])
    assert degrade.mulaw_encode(x)[0] == mu_code
    assert degrade.mulaw(x)[0] * 32768 == mu_value
    assert degrade.alaw_encode(x)[0] == a_code
    assert degrade.alaw(x)[0] * 32768 == a_value


def test_g711_codes_round_trip():
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(degrade.alaw_encode(degrade.alaw_decode(codes)), codes)
    mu = degrade.mulaw_encode(degrade.mulaw_decode(codes))
    # μ-law has two zeros (0xFF and 0x7F); zero encodes as 0xFF
    np.testing.assert_array_equal(np.where(codes == 0x7F, 0xFF, codes), mu)
    # every code decodes to its own level inside (-1, 1), but for μ-law's two zeros
    for decode, levels in ((degrade.mulaw_decode, 255), (degrade.alaw_decode, 256)):
        values = decode(codes)
        assert np.unique(values).size == levels
        assert np.all(np.abs(values) < 1)


def test_g711_error_within_the_segment_step():
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.uniform(-0.99, 0.99, 20000), np.geomspace(1e-5, 0.99, 2000) * rng.choice([-1, 1], 2000)])
    rounding = 0.5 / 32768
    # half a quantisation step: μ-law steps are 2^(s+1) in 14-bit units where the biased magnitude
    # |x|·8192 + 33 ≥ 32·2^s, so half a step ≤ (|x|·8192 + 33) / 32; A-law: 16 steps per doubling, at least
    # 2 (13-bit units) wide, so half a step ≤ max(|x|/32, 1/4096)
    mu_bound = (np.abs(x) + 33 / 8192) / 32 + rounding
    a_bound = np.maximum(np.abs(x) / 32, 1 / 4096) + rounding
    assert np.all(np.abs(degrade.mulaw(x) - x) <= mu_bound + 1e-12)
    assert np.all(np.abs(degrade.alaw(x) - x) <= a_bound + 1e-12)
    loud = np.abs(x) > 0.1
    assert np.max(np.abs(degrade.mulaw(x) - x)[loud] / np.abs(x[loud])) < 0.036


# --------------------------------------------------------------------------------------------- codecs
def test_available_codecs():
    codecs = degrade.available_codecs()
    assert codecs[:2] == ("mulaw", "alaw")
    assert ("g722" in codecs) == HAS_G722
    assert ("mp3" in codecs) == sf.check_format("MP3", "MPEG_LAYER_III")


@pytest.mark.skipif(not HAS_G722, reason="the optional g722 package is not installed (pip install g722)")
def test_g722_round_trip_is_aligned_and_close():
    x = speech_like(FS + 1)
    y = degrade.g722_round_trip(x)
    assert y.shape == x.shape
    assert snr_db(x, y) > 20.0
    # one sample of misalignment costs far more than the coding noise
    assert snr_db(x[:-1], y[1:]) < snr_db(x, y) - 10
    with pytest.raises(ValueError, match="16 kHz"):
        degrade.g722_round_trip(x, sample_rate=8000)


def test_g722_missing_package_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "G722", None)  # makes the import fail
    with pytest.raises(degrade.CodecUnavailableError, match="pip install g722"):
        degrade.g722_round_trip(np.zeros(100))


@pytest.mark.parametrize("codec", ["mp3", "opus"])
def test_lossy_codec_round_trip(codec):
    if codec not in degrade.available_codecs():
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) was built without {codec}")
    x = speech_like(FS + 7)
    y = degrade.parse_condition(codec)(x)
    assert y.shape == x.shape
    assert snr_db(x, y) > 15.0  # aligned: libsndfile removes the encoder delay


def test_lossy_codec_unsupported_error(monkeypatch):
    monkeypatch.setattr(sf, "check_format", lambda *args, **kwargs: False)
    assert "mp3" not in degrade.available_codecs()
    with pytest.raises(degrade.CodecUnavailableError, match="not supported by this libsndfile"):
        degrade.mp3_round_trip(np.zeros(100))
    with pytest.raises(degrade.CodecUnavailableError, match="not supported by this libsndfile"):
        degrade.parse_condition("opus")


# --------------------------------------------------------------------------------------------- reverb
def schroeder_rt60(h: np.ndarray, fs: int = FS) -> float:
    """RT60 from the T20 slope (-5 to -25 dB) of the Schroeder backward-integrated energy decay curve."""
    energy = np.cumsum(h[::-1] ** 2)[::-1]
    edc = 10 * np.log10(energy / energy[0])
    fit = (edc <= -5) & (edc >= -25)
    slope = np.polyfit(np.arange(h.shape[0])[fit] / fs, edc[fit], 1)[0]
    return -60.0 / slope


@pytest.mark.parametrize("rt60", [0.2, 0.5, 0.8])
def test_reverb_rt60_by_schroeder_integration(rt60):
    h = degrade.synthetic_rir(rt60, rng=9)
    assert schroeder_rt60(h) == pytest.approx(rt60, rel=0.1)
    impulse = np.zeros(FS)
    impulse[0] = 1.0
    assert schroeder_rt60(degrade.add_reverb(impulse, rt60, rng=10)) == pytest.approx(rt60, rel=0.1)


def test_reverb_direct_path_level_and_alignment():
    h = degrade.synthetic_rir(0.3, drr_db=6.0, rng=11)
    assert h[0] == 1.0
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(6.0)
    x = speech_like()
    y = degrade.add_reverb(x, 0.3, rng=12)
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)))
    correlation = correlate(y[50:-50], x[100:-100], mode="valid", method="fft")  # lags -50..50
    assert np.argmax(correlation) - 50 == 0
    with pytest.raises(ValueError, match="RT60"):
        degrade.synthetic_rir(0.0)


# --------------------------------------------------------------------------------------------- conditions
ALL_CONDITIONS = [
    "clean",
    "noise:20",
    "pink:10",
    "brown:5",
    "babble:10",
    "telephone",
    "tel8k",
    "mulaw",
    "alaw",
    "gain:-6",
    "clip:0.5",
    "clipfrac:0.01",
    "reverb:0.3",
    "tel8k+mulaw",
] + [codec for codec in ("g722", "mp3", "opus") if codec in degrade.available_codecs()]
RANDOM_CONDITIONS = ["noise:20", "pink:10", "brown:5", "babble:10", "reverb:0.3"]
BABBLE = [speech_like(9000, seed=20), speech_like(20000, seed=21)]


@pytest.mark.parametrize("text", ALL_CONDITIONS)
def test_conditions_keep_length_and_are_deterministic(text):
    condition = degrade.parse_condition(text)
    x = speech_like(FS + 3)
    y = condition(x, rng=13, babble=BABBLE)
    assert y.shape == x.shape
    assert y.dtype == np.float64
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, condition(x, rng=13, babble=BABBLE))
    if text != "clean":
        assert not np.allclose(y, x)


@pytest.mark.parametrize("text", RANDOM_CONDITIONS)
def test_random_conditions_differ_between_seeds(text):
    condition = degrade.parse_condition(text)
    x = speech_like()
    assert not np.allclose(condition(x, rng=1, babble=BABBLE), condition(x, rng=2, babble=BABBLE))


def test_parse_conditions():
    conditions = degrade.parse_conditions("clean, Noise:20,tel8k+mulaw")
    assert [c.name for c in conditions] == ["clean", "noise:20", "tel8k+mulaw"]
    assert conditions[2].steps == (("tel8k", None), ("mulaw", None))
    x = speech_like()
    np.testing.assert_array_equal(conditions[2](x), degrade.mulaw(degrade.resample_round_trip(x)))
    np.testing.assert_array_equal(degrade.parse_condition("gain:-6")(x), degrade.apply_gain(x, -6.0))
    clipped = degrade.parse_condition("clip:0.5")(x)
    assert np.max(np.abs(clipped)) == pytest.approx(0.5 * np.max(np.abs(x)))
    restored = pickle.loads(pickle.dumps(conditions[1]))
    np.testing.assert_array_equal(restored(x, rng=3), conditions[1](x, rng=3))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("echo:3", "unknown condition 'echo'; available: clean, noise:<SNR in dB>"),
        ("noise", "needs a parameter"),
        ("noise:loud", "needs a parameter"),
        ("noise:nan", "bad parameter"),
        ("mulaw:8", "takes no parameter"),
        ("clip:1.5", "fraction of the peak"),
        ("reverb:300", "RT60 in seconds"),
        ("", "empty condition"),
        ("tel8k+", "unknown condition ''"),
    ],
)
def test_parse_condition_errors(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        degrade.parse_condition(text)


def test_babble_condition_needs_utterances():
    with pytest.raises(ValueError, match="babble=.array"):
        degrade.parse_condition("babble:10")(speech_like())

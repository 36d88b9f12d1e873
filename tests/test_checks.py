"""lfcc_gmm.checks: each check fires on constructed signals just past its threshold and not just before it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lfcc_gmm import checks
from lfcc_gmm.checks import Check, check_signal, clipped_share, level_dbfs, longest_pause
from lfcc_gmm.speech import DIGITAL_SILENCE_DBFS, MIN_SPEECH_S, SpeechActivity, detect_speech

RATE = 16000
FRAME = 0.01
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "flac"


def sine(seconds: float, amplitude: float = 0.1, freq: float = 220.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(round(seconds * RATE)) / RATE)


def activity(seconds: float, speech: list[tuple[float, float]]) -> SpeechActivity:
    """A speech activity with exactly these regions (seconds, on the 10 ms grid)."""
    mask = np.zeros(math.ceil(round(seconds * RATE) / (FRAME * RATE)), bool)
    for start, end in speech:
        mask[round(start / FRAME) : round(end / FRAME)] = True
    return SpeechActivity.from_mask(mask, FRAME, seconds)


def codes(found: list[Check]) -> list[str]:
    return [check.code for check in found]


# ------------------------------------------------------------------------------------------------ no speech
def test_no_speech_below_the_minimum_only():
    x = sine(3.0)
    below = check_signal(x, RATE, activity(3.0, [(1.0, 1.49)]))
    assert codes(below) == ["no-speech"]
    assert below[0].value == pytest.approx(0.49)
    assert "0.49 s" in below[0].message and "0.50 s" in below[0].message
    assert codes(check_signal(x, RATE, activity(3.0, [(1.0, 1.5)]))) == []
    # The caller's own minimum replaces the default.
    assert codes(check_signal(x, RATE, activity(3.0, [(1.0, 1.5)]), min_speech_s=0.8)) == ["no-speech"]
    assert MIN_SPEECH_S == 0.5


# ------------------------------------------------------------------------------------------------- clipping
def test_clipped_share_counts_full_scale_samples():
    x = sine(10.0)  # 160,000 samples, peak 0.1
    x[::1000] = 1.0  # 160 isolated full-scale samples: exactly 0.1 %
    assert clipped_share(x) == pytest.approx(160 / 160000)
    x[::1000] = -checks.FULL_SCALE  # at the threshold still counts
    assert clipped_share(x) == pytest.approx(160 / 160000)
    x[::1000] = 0.998  # below it does not, and a single sample at the peak is no flat top
    assert clipped_share(x) == 0.0


def test_clipped_check_both_sides_of_its_threshold():
    speech = activity(10.0, [(0.5, 9.5)])
    x = sine(10.0)
    x[::1000] = 1.0  # 160 samples = 0.1 %
    found = check_signal(x, RATE, speech)
    assert codes(found) == ["clipped"]
    assert found[0].value == pytest.approx(0.001)
    assert "0.1 % of samples are clipped" in found[0].message
    x[::1000][0] = 0.0  # 159 samples
    assert codes(check_signal(x, RATE, speech)) == []


def test_flat_tops_left_by_clipping_then_lowering_the_gain():
    x = sine(1.0, amplitude=1.0, freq=50.0)
    clipped = 0.5 * np.clip(x, -0.8, 0.8)  # peak 0.4, nowhere near full scale, but flat-topped
    expected = np.count_nonzero(np.abs(x) >= 0.8) / x.shape[0]  # every such sample lies in a long flat run
    assert expected > 0.1
    assert clipped_share(clipped) == pytest.approx(expected)
    # Two equal samples at the peak are not a flat top; three are.
    y = sine(1.0)
    y[100:102] = 0.2
    assert clipped_share(y) == 0.0
    y[100:103] = 0.2
    assert clipped_share(y) == pytest.approx(3 / y.shape[0])
    assert clipped_share(np.zeros(10)) == 0.0


# ---------------------------------------------------------------------------------------------------- level
def test_level_dbfs_by_hand():
    assert level_dbfs(np.ones(100)) == pytest.approx(0.0, abs=1e-9)
    assert level_dbfs(sine(1.0, amplitude=1.0)) == pytest.approx(-10 * math.log10(2), abs=1e-6)
    assert level_dbfs(np.zeros(100)) == DIGITAL_SILENCE_DBFS == -200.0


@pytest.mark.parametrize("level", [-44.9, -45.1])
def test_low_level_on_the_speech_both_sides_of_the_threshold(level):
    # A sine of RMS a/√2 is at 20·log10(a/√2) dBFS.
    x = sine(4.0, amplitude=math.sqrt(2) * 10 ** (level / 20))
    x[: RATE // 2] = 0.5  # loud non-speech before the speech: the level is taken over the speech only
    found = check_signal(x, RATE, activity(4.0, [(1.0, 3.0)]))
    if level < checks.LOW_LEVEL_DBFS:
        assert codes(found) == ["clipped", "low-level"]  # the constant 0.5 is one long flat top
        assert found[1].value == pytest.approx(level, abs=0.01)
        assert f"active speech level is {level:.1f} dBFS" in found[1].message
    else:
        assert codes(found) == ["clipped"]


def test_low_level_without_speech_uses_the_whole_signal():
    quiet = sine(2.0, amplitude=1e-3)  # -63 dBFS
    found = check_signal(quiet, RATE, activity(2.0, []))
    assert codes(found) == ["no-speech", "low-level"]
    assert "overall level is -63.0 dBFS" in found[1].message
    silent = check_signal(np.zeros(RATE), RATE, activity(1.0, []))
    assert codes(silent) == ["no-speech", "low-level"]
    assert "digital silence" in silent[1].message


# ---------------------------------------------------------------------------------------------------- short
def test_short_only_when_the_window_is_given_and_not_filled():
    window_s = 64600 / RATE  # the official RawNet2 / AASIST input
    speech = [(0.5, 2.5)]
    exact = sine(64600 / RATE)
    assert codes(check_signal(exact, RATE, activity(exact.shape[0] / RATE, speech), window_s=window_s)) == []
    short = exact[:-1]
    found = check_signal(short, RATE, activity(short.shape[0] / RATE, speech), window_s=window_s)
    assert codes(found) == ["short"]
    assert "padded by repetition" in found[0].message and "4.04 s window" in found[0].message
    assert found[0].value == pytest.approx(64599 / RATE)
    assert codes(check_signal(short, RATE, activity(short.shape[0] / RATE, speech))) == []


# --------------------------------------------------------------------------------------------- long silence
def test_long_pause_longer_than_two_seconds():
    x = sine(10.0)
    found = check_signal(x, RATE, activity(10.0, [(0.0, 3.0), (5.01, 10.0)]))
    assert codes(found) == ["long-silence"]
    assert found[0].value == pytest.approx(2.01)
    assert "2.01 s (3.00-5.01 s, 20 % of the file)" in found[0].message
    assert codes(check_signal(x, RATE, activity(10.0, [(0.0, 3.0), (4.99, 10.0)]))) == []


def test_leading_silence_counts_as_a_pause():
    """Issue 18's case: 5 s of near-silence, then a sentence."""
    found = check_signal(sine(7.7), RATE, activity(7.7, [(5.0, 7.7)]))
    assert codes(found) == ["long-silence"]
    assert "(0.00-5.00 s, 65 % of the file)" in found[0].message


def test_pause_longer_than_half_the_file():
    x = sine(3.0)
    assert codes(check_signal(x, RATE, activity(3.0, [(0.0, 1.0), (2.51, 3.0)]))) == ["long-silence"]
    assert codes(check_signal(x, RATE, activity(3.0, [(0.0, 1.0), (2.49, 3.0)]))) == []


def test_longest_pause():
    assert longest_pause(activity(10.0, [(1.0, 2.0), (6.0, 9.0)])) == pytest.approx((2.0, 6.0))
    assert longest_pause(activity(10.0, [(0.0, 10.0)])) == pytest.approx((0.0, 0.0))
    assert longest_pause(activity(10.0, [])) == pytest.approx((0.0, 10.0))


# ------------------------------------------------------------------------------------------------ together
def test_clean_speech_has_no_findings():
    x, rate = sf.read(DEMO / "DEMO_E_0001.flac")
    assert check_signal(x, rate, detect_speech(x, rate)) == []


def test_several_findings_come_in_a_fixed_order():
    x = np.zeros(RATE)
    x[:16] = 0.1  # a flat top of 0.1 % of the samples, and -50 dBFS overall
    found = check_signal(x, RATE, detect_speech(x, RATE), window_s=4.0)
    assert codes(found) == ["no-speech", "clipped", "low-level", "short"]
    assert all(check.message and math.isfinite(check.value) for check in found)


def test_activity_of_another_signal_is_refused():
    with pytest.raises(ValueError, match="describes 2.000 s but the signal is 3.000 s"):
        check_signal(sine(3.0), RATE, activity(2.0, []))
    with pytest.raises(ValueError, match="1-D"):
        check_signal(np.zeros((2, RATE)), RATE, activity(1.0, []))

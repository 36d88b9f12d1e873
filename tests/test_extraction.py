"""LFCC extraction at scale: order, parallel == serial, the cache and its invalidation, bad files."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from error_bounds import assert_within, lfcc_order_bound

from lfcc_gmm.audio import AudioConversionWarning, AudioError, load_audio
from lfcc_gmm.extraction import FileFeatures, cache_key, extract_features, iter_features, iter_file_lfcc
from lfcc_gmm.features import PRESETS, lfcc


def _write(path, n_samples, seed, rate=16000):
    signal = np.random.default_rng(seed).uniform(-0.5, 0.5, n_samples)
    sf.write(path, signal, rate, subtype="PCM_16")
    return str(path)


@pytest.fixture
def wavs(tmp_path):
    """Five short files of different lengths, so a mix-up of order shows in the shapes."""
    return [_write(tmp_path / f"utt{i}.wav", 1600 + 700 * i, seed=i) for i in range(5)]


def _expected(path, preset="asvspoof2019", dtype=np.float32):
    return lfcc(load_audio(path, warn=False).signal, 16000, preset, dtype)


def test_features_in_input_order_and_equal_to_lfcc(wavs):
    calls = []
    results = extract_features(wavs[::-1], progress=lambda done, total: calls.append((done, total)))
    assert [r.path for r in results] == wavs[::-1]
    for result in results:
        assert result.ok and result.conversions == ()
        assert result.features.dtype == np.float32
        np.testing.assert_array_equal(result.features, _expected(result.path))
    assert calls == [(i, 5) for i in range(1, 6)]


def test_parallel_equals_serial_and_collects_failures(wavs, tmp_path):
    bad = tmp_path / "not_audio.wav"
    bad.write_text("this is not a RIFF file")
    paths = [wavs[0], str(bad), *wavs[1:], str(tmp_path / "missing.flac")]
    serial = extract_features(paths, "asvspoof2021", dtype=np.float64, on_error="collect")
    parallel = extract_features(paths, "asvspoof2021", dtype=np.float64, on_error="collect", jobs=2)
    assert [r.path for r in parallel] == paths
    for one, other in zip(serial, parallel, strict=True):
        assert one.error == other.error
        if one.ok:
            np.testing.assert_array_equal(one.features, other.features)
    assert [r.ok for r in parallel] == [True, False, True, True, True, True, False]
    assert "not a readable audio file" in parallel[1].error
    assert parallel[-1].error == "file not found"
    assert parallel[-1].features is None


def test_raise_mode_names_the_file(wavs, tmp_path):
    short = _write(tmp_path / "short.wav", 100, seed=9)
    with pytest.raises(AudioError, match=r"short\.wav: too short for LFCC: signal of 100 samples"):
        extract_features([wavs[0], short])
    (result,) = extract_features([short], on_error="collect")
    assert not result.ok and "too short" in result.error


def test_cache_hit_returns_the_stored_array(wavs, tmp_path):
    cache = tmp_path / "cache"
    first = extract_features(wavs, cache_dir=cache)
    assert len(list(cache.glob("*.npy"))) == len(wavs)
    second = extract_features(wavs, cache_dir=cache)
    for a, b in zip(first, second, strict=True):
        assert b.conversions is None  # served from the cache: the audio was not read
        np.testing.assert_array_equal(a.features, b.features)
    # Prove the second run reads the entry: plant a recognisable array in it.
    entry = cache / f"{cache_key(wavs[0], PRESETS['asvspoof2019'], 16000, np.float32)}.npy"
    planted = np.full_like(first[0].features, 7.0)
    np.save(entry, planted)
    np.testing.assert_array_equal(extract_features(wavs[:1], cache_dir=cache)[0].features, planted)
    # Another preset or dtype is another entry.
    assert extract_features(wavs[:1], "asvspoof2021", cache_dir=cache)[0].conversions == ()
    assert extract_features(wavs[:1], cache_dir=cache, dtype=np.float64)[0].conversions == ()


def test_changed_file_invalidates_the_cache(wavs, tmp_path):
    cache = tmp_path / "cache"
    extract_features(wavs[:1], cache_dir=cache)
    stat = os.stat(wavs[0])
    os.utime(wavs[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5 * 10**9))  # touched, same content
    result = extract_features(wavs[:1], cache_dir=cache)[0]
    assert result.conversions == ()  # recomputed
    _write(wavs[0], 4321, seed=42)  # new content and size
    result = extract_features(wavs[:1], cache_dir=cache)[0]
    assert result.conversions == ()
    np.testing.assert_array_equal(result.features, _expected(wavs[0]))


def test_corrupt_cache_entry_is_recomputed(wavs, tmp_path):
    cache = tmp_path / "cache"
    expected = extract_features(wavs[:1], cache_dir=cache)[0].features
    (entry,) = cache.glob("*.npy")
    entry.write_bytes(b"\x93NUMPY garbage")
    result = extract_features(wavs[:1], cache_dir=cache)[0]
    assert result.conversions == ()
    np.testing.assert_array_equal(result.features, expected)
    np.testing.assert_array_equal(np.load(entry, allow_pickle=False), expected)  # rewritten


def test_resampled_file_is_reported(tmp_path):
    path = _write(tmp_path / "8k.wav", 8000, seed=3, rate=8000)
    with pytest.warns(AudioConversionWarning, match="8k.wav: resampled 8000 Hz -> 16000 Hz"):
        (result,) = extract_features([path])
    assert result.conversions == ("resampled 8000 Hz -> 16000 Hz",)
    np.testing.assert_array_equal(result.features, _expected(path))


def test_bad_arguments_fail_before_any_work(wavs):
    with pytest.raises(ValueError, match="on_error"):
        extract_features(wavs, on_error="ignore")
    with pytest.raises(ValueError, match="unknown LFCC preset"):
        extract_features(wavs, "asvspoof2015")
    with pytest.raises(ValueError, match="float32 or float64"):
        iter_features(wavs, dtype=np.int32)


def test_file_features_ok_flag():
    assert FileFeatures("a", np.zeros((1, 60))).ok
    assert not FileFeatures("a", None, error="bad").ok


def test_iter_file_lfcc_equals_whole_file(tmp_path):
    path = _write(tmp_path / "long.wav", 5 * 16000 + 77, seed=5)
    whole = lfcc(load_audio(path).signal)
    rows = list(iter_file_lfcc(path, block_seconds=0.37))
    assert len(rows) > 10
    assert_within(np.concatenate(rows), whole, lfcc_order_bound(load_audio(path).signal))


def test_iter_file_lfcc_resamples_other_rates_whole(tmp_path):
    path = _write(tmp_path / "8k.wav", 3 * 8000, seed=6, rate=8000)
    with pytest.warns(AudioConversionWarning, match="resampled 8000 Hz -> 16000 Hz"):
        (rows,) = list(iter_file_lfcc(path, block_seconds=0.5))
    np.testing.assert_array_equal(rows, lfcc(load_audio(path, warn=False).signal))


def test_iter_file_lfcc_errors(tmp_path):
    with pytest.raises(AudioError, match="too short for LFCC"):
        list(iter_file_lfcc(_write(tmp_path / "tiny.wav", 150, seed=1)))
    with pytest.raises(AudioError, match="missing.wav: file not found"):
        list(iter_file_lfcc(tmp_path / "missing.wav"))
    with pytest.raises(ValueError, match="unknown LFCC parameter"):
        next(iter_file_lfcc(tmp_path / "tiny.wav", n_filterz=3))


def test_extraction_never_imports_torch():
    code = "import sys, lfcc_gmm.extraction; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

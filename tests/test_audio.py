"""Audio loading: conversions are applied and reported, bad files raise AudioError naming the cause."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pytest
import soundfile as sf

from lfcc_gmm.audio import (
    AudioConversionWarning,
    AudioError,
    AudioTooLongError,
    EmptyAudioError,
    check_header,
    decode_audio,
    expand_audio_paths,
    find_audio_files,
    iter_blocks,
    load_audio,
    resample,
    to_mono,
)


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def test_pcm16_is_scaled_by_two_to_the_fifteen(tmp_path):
    ints = np.array([0, 1, -1, 16384, -32768, 32767], dtype=np.int16)
    sf.write(tmp_path / "a.wav", ints, 16000, subtype="PCM_16")
    audio = load_audio(tmp_path / "a.wav")
    np.testing.assert_array_equal(audio.signal, ints / 32768.0)
    assert audio.signal.dtype == np.float64
    assert audio.conversions == ()


def test_24_bit_and_float_wav_read_exactly(tmp_path):
    x = tone(0.5, 16000)
    sf.write(tmp_path / "f.wav", x.astype(np.float32), 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "f.wav").signal, x.astype(np.float32))
    sf.write(tmp_path / "i24.wav", x, 16000, subtype="PCM_24")
    np.testing.assert_allclose(load_audio(tmp_path / "i24.wav").signal, x, atol=2.0**-23)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_rates_are_resampled_and_reported(tmp_path, rate):
    sf.write(tmp_path / "r.wav", tone(1.0, rate), rate, subtype="PCM_16")
    with pytest.warns(AudioConversionWarning, match=f"resampled {rate} Hz -> 16000 Hz"):
        audio = load_audio(tmp_path / "r.wav")
    assert audio.sample_rate == 16000 and audio.source_rate == rate
    assert audio.signal.shape[0] == 16000
    # The tone survives: its spectral peak stays at 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio.signal))
    assert abs(np.argmax(spectrum) * 16000 / audio.signal.shape[0] - 440) <= 1


def test_stereo_is_averaged_and_reported(tmp_path):
    left, right = tone(0.25, 16000), tone(0.25, 16000, 1000.0)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    with pytest.warns(AudioConversionWarning, match="averaged 2 channels"):
        audio = load_audio(tmp_path / "s.wav")
    np.testing.assert_allclose(audio.signal, ((left + right) / 2).astype(np.float32), atol=1e-7)
    assert audio.source_channels == 2


def test_no_warning_when_asked(tmp_path):
    sf.write(tmp_path / "r.wav", tone(0.1, 8000), 8000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audio = load_audio(tmp_path / "r.wav", warn=False)
    assert audio.conversions == ("resampled 8000 Hz -> 16000 Hz",)


def test_resample_and_to_mono_are_pure():
    x = np.arange(10.0)
    assert resample(x, 16000, 16000) is x
    assert resample(np.ones(441), 44100, 16000).shape == (160,)
    np.testing.assert_array_equal(to_mono(np.array([[1.0, 3.0], [2.0, 4.0]])), [2.0, 3.0])


def write_bad(tmp_path, kind: str):
    path = tmp_path / f"{kind}.wav"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_audio":
        path.write_bytes(b"this is a text file, not audio\n" * 20)
    elif kind == "zero_samples":
        sf.write(path, np.zeros(0), 16000)
    elif kind == "nan":
        x = tone(0.1, 16000)
        x[7] = np.nan
        x[9] = np.inf
        sf.write(path, x, 16000, subtype="DOUBLE")
    elif kind == "truncated_flac":
        path = tmp_path / "t.flac"
        sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 16000), 16000, subtype="PCM_16")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("missing", "file not found"),
        ("directory", "is a directory"),
        ("empty", "empty file"),
        ("not_audio", "not a readable audio file"),
        ("zero_samples", "zero samples"),
        ("nan", "2 non-finite sample"),
        ("truncated_flac", "corrupt"),
    ],
)
def test_bad_files_raise_audio_error_naming_file_and_cause(tmp_path, kind, cause):
    path = write_bad(tmp_path, kind)
    with pytest.raises(AudioError, match=cause) as info:
        load_audio(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files without read permission")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.wav"
    sf.write(path, tone(0.1, 16000), 16000)
    path.chmod(0)
    with pytest.raises(AudioError, match="permission denied"):
        load_audio(path)


def test_wav_whose_header_lies_about_its_length_reads_the_samples_present(tmp_path):
    path = tmp_path / "lie.wav"
    x = tone(1.0, 16000)
    sf.write(path, x, 16000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + 2 * 4000])  # header still claims 16000 samples
    audio = load_audio(path)
    assert audio.signal.shape[0] == 4000
    np.testing.assert_allclose(audio.signal, x[:4000], atol=1 / 32768)


def test_iter_blocks_concatenates_to_the_whole_file(tmp_path):
    path = tmp_path / "long.flac"
    x = np.random.default_rng(1).uniform(-0.9, 0.9, 40000)
    sf.write(path, x, 16000, subtype="PCM_16")
    blocks = list(iter_blocks(path, block_seconds=0.3))
    assert [b.shape[0] for b in blocks[:-1]] == [4800] * (len(blocks) - 1)
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path).signal)


def test_iter_blocks_refuses_other_rates(tmp_path):
    sf.write(tmp_path / "r.wav", tone(0.1, 8000), 8000)
    with pytest.raises(AudioError, match="8000 Hz"):
        next(iter_blocks(tmp_path / "r.wav"))


def test_audio_error_survives_pickling_across_processes():
    import pickle

    error = pickle.loads(pickle.dumps(AudioError("/data/x.flac", "contains zero samples")))
    assert (error.path, error.reason, str(error)) == ("/data/x.flac", "contains zero samples",
                                                     "/data/x.flac: contains zero samples")


def test_decode_audio_is_load_audio_of_the_same_bytes(tmp_path):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (12_000, 2))
    sf.write(tmp_path / "s.flac", x, 22050, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        loaded = load_audio(tmp_path / "s.flac")
        decoded = decode_audio((tmp_path / "s.flac").read_bytes(), "upload")
    np.testing.assert_array_equal(decoded.signal, loaded.signal)  # the same samples through the same conversion
    assert decoded.conversions == loaded.conversions and decoded.source_rate == 22050
    for data, reason in ((b"", "is empty"), (b"RIFF not really", "not a readable audio file")):
        with pytest.raises(AudioError, match=reason) as caught:
            decode_audio(data, "upload")
        assert caught.value.path == "upload"


def test_audio_files_below_a_folder(tmp_path):
    for name in ("b/two.FLAC", "a.wav", "c/.hidden.wav", ".git/x.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / name, np.zeros(160), 16000, format="FLAC" if name.endswith("FLAC") else "WAV")
    sf.write(tmp_path / "headerless_name", np.zeros(160), 16000, format="WAV")
    (tmp_path / "readme.txt").write_text("no audio")
    assert find_audio_files(tmp_path) == [tmp_path / "a.wav", tmp_path / "b" / "two.FLAC",
                                          tmp_path / "headerless_name"]
    empty = tmp_path / "empty"
    empty.mkdir()
    # A folder without audio stays itself, to fail as one entry of a batch; files keep their order.
    assert expand_audio_paths([tmp_path / "readme.txt", empty, tmp_path / "b"]) == [
        tmp_path / "readme.txt", empty, tmp_path / "b" / "two.FLAC"]
    with pytest.raises(AudioError, match="is not a directory"):
        find_audio_files(tmp_path / "a.wav")


def test_a_duration_limit_refuses_from_the_header_before_any_sample_is_decoded(tmp_path, monkeypatch):
    """5 s at 22.05 kHz (110,250 frames): refused under a 4.99 s limit with its duration, by load_audio,
    decode_audio and check_header alike, without reading a sample; at exactly 5 s it loads (and passes the check)."""
    import pickle

    path = tmp_path / "five.flac"
    sf.write(path, tone(5.0, 22050), 22050, subtype="PCM_16")
    data = path.read_bytes()
    assert load_audio(path, warn=False, max_duration_s=5.0).signal.shape == (80_000,)
    assert decode_audio(data, "upload", warn=False, max_duration_s=5.0).signal.shape == (80_000,)
    check_header(path, str(path), max_duration_s=5.0)

    def no_samples(*args, **kwargs):
        raise AssertionError("samples were decoded")

    monkeypatch.setattr(sf.SoundFile, "read", no_samples)
    for name, load in ((str(path), lambda: load_audio(path, max_duration_s=4.99)),
                       ("upload", lambda: decode_audio(data, "upload", max_duration_s=4.99)),
                       ("header", lambda: check_header(path, "header", max_duration_s=4.99)),
                       ("bytes", lambda: check_header(io.BytesIO(data), "bytes", max_duration_s=4.99))):
        with pytest.raises(AudioTooLongError) as caught:
            load()
        assert (caught.value.path, caught.value.duration, caught.value.limit) == (name, 5.0, 4.99)
        assert str(caught.value) == f"{name}: 5.0 s of audio is longer than the limit of 4.99 s"
        again = pickle.loads(pickle.dumps(caught.value))
        assert (type(again), again.duration, again.limit, str(again)) == (AudioTooLongError, 5.0, 4.99,
                                                                          str(caught.value))


def test_no_audio_at_all_is_an_empty_audio_error(tmp_path):
    """0 bytes, or a header and zero samples: EmptyAudioError (an AudioError), which bytes that are not audio are
    not (check_header sees both from the header)."""
    sf.write(tmp_path / "none.wav", np.zeros(0), 16000)
    (tmp_path / "zero.wav").write_bytes(b"")
    for load in (lambda: load_audio(tmp_path / "none.wav"), lambda: load_audio(tmp_path / "zero.wav"),
                 lambda: decode_audio((tmp_path / "none.wav").read_bytes()), lambda: decode_audio(b""),
                 lambda: check_header(tmp_path / "none.wav", "none.wav")):
        with pytest.raises(EmptyAudioError):
            load()
    for load in (lambda: decode_audio(b"RIFF not really"), lambda: check_header(io.BytesIO(b"RIFF not"), "x")):
        with pytest.raises(AudioError, match="not a readable audio file") as caught:
            load()
        assert not isinstance(caught.value, EmptyAudioError)

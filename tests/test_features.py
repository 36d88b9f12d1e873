"""LFCC features: parity with the official MATLAB baselines, each step against hand-computed values,
float32 against float64, and the streaming form against the whole-signal form."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.fft
import soundfile as sf
from error_bounds import assert_within, lfcc_order_bound
from hypothesis import given, settings
from hypothesis import strategies as st

from lfcc_gmm.features import (
    EPS,
    PRESETS,
    LFCCConfig,
    LFCCStream,
    cepstra,
    dct_matrix,
    deltas,
    fft_frequencies,
    frame_count,
    frame_signal,
    get_config,
    hz_to_mel,
    iter_lfcc,
    lfcc,
    linear_filterbank,
    mel_filterbank,
    mel_to_hz,
    power_spectrum,
    pre_emphasis,
    triangular_filters,
)

REFERENCE_NAMES = ["LA_T_1272637", "chirp_noise", "espeak_en", "short_1377", "silence_burst"]
OFFICIAL_DIRS = {"asvspoof2019": "official_2019", "asvspoof2021": "official_2021"}
WIDTHS = {"asvspoof2019": 60, "asvspoof2021": 57}


def _reference_audio(reference_dir, name):
    (path,) = (reference_dir / "lfcc" / "audio").glob(f"{name}.*")
    signal, rate = sf.read(path, dtype="float64")
    return signal, rate


def _chunks(signal, sizes):
    """Split ``signal`` into consecutive blocks whose sizes cycle through ``sizes``."""
    blocks, start, i = [], 0, 0
    while start < signal.shape[0]:
        blocks.append(signal[start : start + sizes[i % len(sizes)]])
        start += sizes[i % len(sizes)]
        i += 1
    return blocks


# --- parity with the official implementations -------------------------------------------------


@pytest.mark.parametrize("preset", sorted(OFFICIAL_DIRS))
@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_matches_official_features(reference_dir, preset, name):
    signal, rate = _reference_audio(reference_dir, name)
    expected = np.load(reference_dir / "lfcc" / OFFICIAL_DIRS[preset] / f"{name}.npy", allow_pickle=False)
    features = lfcc(signal, rate, preset)
    assert features.dtype == np.float64
    assert features.shape == expected.shape
    assert expected.shape[1] == WIDTHS[preset]
    np.testing.assert_allclose(features, expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("preset", sorted(OFFICIAL_DIRS))
@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_official_frame_counts_follow_the_formula(reference_dir, preset, name):
    signal, rate = _reference_audio(reference_dir, name)
    expected = np.load(reference_dir / "lfcc" / OFFICIAL_DIRS[preset] / f"{name}.npy", allow_pickle=False)
    length, hop = PRESETS[preset].frame_lengths(rate)
    assert frame_count(signal.shape[0], length, hop) == expected.shape[0]


@pytest.mark.parametrize("preset", sorted(OFFICIAL_DIRS))
def test_float32_close_to_float64(reference_dir, preset):
    for name in REFERENCE_NAMES:
        signal, rate = _reference_audio(reference_dir, name)
        single = lfcc(signal, rate, preset, dtype=np.float32)
        assert single.dtype == np.float32
        np.testing.assert_allclose(single, lfcc(signal, rate, preset), rtol=0, atol=1e-3, err_msg=name)


# --- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(OFFICIAL_DIRS))
@pytest.mark.parametrize("sizes", [[1], [7], [160], [239, 1, 4000], [333], [4096], [10**6]])
def test_stream_equals_whole_signal(reference_dir, preset, sizes):
    signal, rate = _reference_audio(reference_dir, "silence_burst")
    whole = lfcc(signal, rate, preset)
    rows = list(iter_lfcc(_chunks(signal, sizes), rate, preset))
    assert all(r.shape[0] > 0 for r in rows)
    # Blocks change only how frames are batched into the products: their rounding bound (about 1e-12 here).
    assert_within(np.concatenate(rows), whole, lfcc_order_bound(signal, preset, sample_rate=rate))


def test_stream_of_reference_files_in_odd_blocks(reference_dir):
    for name in REFERENCE_NAMES:
        signal, rate = _reference_audio(reference_dir, name)
        for preset in OFFICIAL_DIRS:
            rows = np.concatenate(list(iter_lfcc(_chunks(signal, [97, 1, 500]), rate, preset)))
            assert_within(rows, lfcc(signal, rate, preset), lfcc_order_bound(signal, preset, sample_rate=rate), name)


@pytest.mark.parametrize(
    "overrides",
    [
        {"delta": False, "delta_delta": False},
        {"static": False, "delta_delta": False},
        {"static": False, "delta": False},
        {"delta_half_length": 2},
        {"delta_half_length": 3, "delta_style": "htk", "pre_emphasis": 0.5},
    ],
)
def test_stream_equals_whole_for_other_delta_settings(overrides):
    signal = np.random.default_rng(1).standard_normal(5000)
    whole = lfcc(signal, **overrides)
    for sizes in ([1], [50, 3], [1000]):
        rows = np.concatenate(list(iter_lfcc(_chunks(signal, sizes), **overrides)))
        assert_within(rows, whole, lfcc_order_bound(signal, **overrides))


def test_stream_float32_close_to_float64(reference_dir):
    signal, rate = _reference_audio(reference_dir, "espeak_en")
    rows = np.concatenate(list(iter_lfcc(_chunks(signal, [1234]), rate, dtype=np.float32)))
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, lfcc(signal, rate), rtol=0, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(
    n_samples=st.integers(min_value=1, max_value=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8),
    preset=st.sampled_from(sorted(PRESETS)),
    seed=st.integers(0, 2**16),
)
def test_stream_equals_whole_for_any_split(n_samples, cuts, preset, seed):
    signal = np.random.default_rng(seed).uniform(-1, 1, n_samples)
    length, hop = PRESETS[preset].frame_lengths(16000)
    blocks = np.split(signal, sorted(cuts))
    if n_samples <= length - hop:
        with pytest.raises(ValueError, match="no LFCC frame"):
            list(iter_lfcc(blocks, preset=preset))
        return
    rows = np.concatenate(list(iter_lfcc(blocks, preset=preset)))
    assert_within(rows, lfcc(signal, preset=preset), lfcc_order_bound(signal, preset))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_long_signal_rows_depend_only_on_their_frame(dtype):
    # 15 s: the frames pass through the FFT in several batches; every row must still be its own frame's.
    signal = np.random.default_rng(4).uniform(-1, 1, 15 * 16000).astype(dtype)
    static = {"pre_emphasis": None, "delta": False, "delta_delta": False, "dtype": dtype}
    whole = lfcc(signal, **static)
    assert whole.shape == (1499, 20)
    for t in (0, 255, 256, 511, 512, 513, 1023, 1024, 1025, 1497):
        alone = lfcc(signal[t * 160 : t * 160 + 320], **static)
        # The same frame in another batch of the products: their rounding bound in that precision.
        assert_within(alone[0], whole[t], lfcc_order_bound(signal, **static)[t], f"frame {t}")


def test_stream_of_a_long_signal_in_large_blocks():
    signal = np.random.default_rng(5).uniform(-1, 1, 15 * 16000)
    rows = np.concatenate(list(iter_lfcc(_chunks(signal, [3 * 16000 + 11]))))
    assert_within(rows, lfcc(signal), lfcc_order_bound(signal))


def test_stream_holds_back_only_the_delta_context():
    stream = LFCCStream()
    # 1810 samples: 10 whole frames (the last ends at 1760) and an 11th, zero-padded one.
    assert frame_count(1810, 320, 160) == 11
    assert stream.push(np.ones(1810)).shape == (10 - 2, 60)  # 2 held back for the delta-deltas
    assert stream.flush().shape == (2 + 1, 60)


def test_stream_state_errors():
    stream = LFCCStream()
    assert stream.push(np.zeros(0)).shape == (0, 60)
    stream.push(np.ones(100))
    with pytest.raises(ValueError, match="100 samples gives no LFCC frame"):
        stream.flush()
    with pytest.raises(RuntimeError, match="flushed"):
        stream.push(np.ones(10))
    stream.reset()
    stream.push(np.ones(161))
    assert stream.flush().shape == (1, 60)
    with pytest.raises(ValueError, match="1-D"):
        LFCCStream().push(np.ones((10, 2)))


# --- framing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "length", "hop", "expected"),
    [
        (1377, 320, 160, 8),  # ceil(1217 / 160)
        (1377, 480, 240, 5),
        (160, 320, 160, 0),  # N <= L - hop: nothing
        (161, 320, 160, 1),  # shorter than a window: one zero-padded frame
        (320, 320, 160, 1),
        (321, 320, 160, 2),
        (16000, 320, 160, 99),
        (10, 4, 2, 4),  # Octave: buffer(1:10, 4, 2, 'nodelay') has 4 columns
        (10, 4, 3, 3),  # Octave: buffer(1:10, 4, 1, 'nodelay') (overlap 1, hop 3) has 3 columns
        (10, 4, 4, 3),  # no overlap: ceil(10 / 4)
        (0, 4, 2, 0),
    ],
)
def test_frame_count(n, length, hop, expected):
    assert frame_count(n, length, hop) == expected


def test_frame_signal_matches_octave_buffer():
    # buffer(1:11, 4, 2, 'nodelay'): columns 1:4, 3:6, 5:8, 7:10, [9 10 11 0]
    frames = frame_signal(np.arange(1.0, 12.0), 4, 2, window=np.ones(4))
    expected = [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 8], [7, 8, 9, 10], [9, 10, 11, 0]]
    np.testing.assert_array_equal(frames, expected)


def test_frame_signal_applies_hamming_and_pads():
    x = np.arange(1.0, 12.0)
    frames = frame_signal(x, 4, 2, pad_to=6)
    assert frames.shape == (5, 6)
    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(4) / 3)
    np.testing.assert_allclose(frames[1, :4], x[2:6] * window, rtol=1e-15)
    np.testing.assert_array_equal(frames[:, 4:], 0)
    np.testing.assert_allclose(frames[4, :3], x[8:] * window[:3], rtol=1e-15)
    assert frames[4, 3] == 0


def test_frame_signal_errors():
    with pytest.raises(ValueError, match="2 samples gives no LFCC frame"):
        frame_signal(np.ones(2), 4, 2)
    with pytest.raises(ValueError, match="window has shape"):
        frame_signal(np.ones(10), 4, 2, window=np.ones(5))
    with pytest.raises(ValueError, match="hop_length"):
        frame_signal(np.ones(10), 4, 5)
    with pytest.raises(ValueError, match="pad_to"):
        frame_signal(np.ones(10), 4, 2, pad_to=3)


def test_short_signal_gives_one_frame_and_too_short_is_an_error():
    assert lfcc(np.ones(161)).shape == (1, 60)
    features = lfcc(np.ones(161))
    np.testing.assert_array_equal(features[:, 20:], 0)  # one frame: its deltas are zero
    with pytest.raises(ValueError, match="160 samples gives no LFCC frame: it needs more than 160"):
        lfcc(np.ones(160))
    with pytest.raises(ValueError, match="needs more than 240"):
        lfcc(np.ones(240), preset="asvspoof2021")


# --- the other steps ---------------------------------------------------------------------------


def test_pre_emphasis_by_hand():
    np.testing.assert_allclose(pre_emphasis([1.0, 2.0, 3.0]), [1.0, 2.0 - 0.97, 3.0 - 1.94], rtol=1e-15)
    x = np.array([1.0, 2.0])
    assert pre_emphasis(x, None) is x
    assert pre_emphasis(x, 0) is x
    np.testing.assert_allclose(pre_emphasis(np.array([100, 200])), [100.0, 103.0], rtol=1e-15)  # ints: no truncation


def test_power_spectrum_of_a_cosine():
    n_fft, k = 512, 10
    n = np.arange(n_fft)
    frames = np.stack([np.cos(2 * np.pi * k * n / n_fft), np.ones(n_fft)])
    power = power_spectrum(frames)
    assert power.shape == (2, 257)
    expected = np.zeros((2, 257))
    expected[0, k] = (n_fft / 2) ** 2
    expected[1, 0] = n_fft**2
    np.testing.assert_allclose(power, expected, rtol=0, atol=1e-8)


def test_power_spectrum_zero_pads_and_overwrite_gives_same_values():
    frames = np.random.default_rng(0).standard_normal((3, 320))
    expected = np.abs(np.fft.fft(frames, 512)[:, :257]) ** 2
    np.testing.assert_allclose(power_spectrum(frames, 512), expected, rtol=1e-12)
    padded = np.pad(frames, ((0, 0), (0, 192)))
    np.testing.assert_allclose(power_spectrum(padded.copy(), overwrite=True), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="longer than n_fft"):
        power_spectrum(frames, 256)


def test_triangles_peak_at_one_at_their_centres():
    edges = np.array([0.0, 100.0, 300.0, 350.0, 1000.0])
    at_edges = triangular_filters(edges, edges)
    np.testing.assert_array_equal(at_edges, [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]])
    np.testing.assert_allclose(triangular_filters([50.0, 200.0, 325.0], edges)[:, 0], [0.5, 0, 0])
    np.testing.assert_allclose(triangular_filters([50.0, 200.0, 325.0], edges)[:, 1], [0.5, 0.5, 0])


def test_linear_filterbank_2019_by_hand():
    bank = linear_filterbank(16000, 512, 20)
    assert bank.shape == (20, 257)
    spacing = 8000 / 21  # 22 edges from 0 to 8000 Hz
    assert bank[0, 1] == pytest.approx(31.25 / spacing, rel=1e-14)  # bin 1 on the rising slope
    assert bank[0, 0] == 0 and bank[-1, -1] == 0
    assert bank.max() <= 1
    # Equally spaced triangles overlap by half: inside the outer centres they sum to 1.
    f = fft_frequencies(16000, 512)
    inside = (f >= spacing) & (f <= 20 * spacing)
    np.testing.assert_allclose(bank[:, inside].sum(axis=0), 1.0, rtol=1e-12)


def test_linear_filterbank_2021_uses_only_bins_up_to_4000_hz():
    config = PRESETS["asvspoof2021"]
    bank = linear_filterbank(16000, config.n_fft, config.n_filters, config.f_min, config.f_max)
    f = fft_frequencies(16000, config.n_fft)
    assert bank.shape == (70, 513)
    assert f[256] == 4000
    assert not bank[:, f >= 4000].any()
    assert bank[:, (f > 0) & (f < 4000)].any(axis=0).all()


def test_mel_filterbank_shape_and_spacing():
    bank = mel_filterbank(16000, 512, 20)
    assert bank.shape == linear_filterbank(16000, 512, 20).shape
    assert hz_to_mel(700.0) == pytest.approx(2595 * np.log10(2))
    np.testing.assert_allclose(mel_to_hz(hz_to_mel([0.0, 440.0, 8000.0])), [0.0, 440.0, 8000.0], atol=1e-9)
    widths = (bank > 0).sum(axis=1)
    assert widths[0] < widths[-1]  # narrow at low frequencies
    edges = mel_to_hz(np.linspace(0, hz_to_mel(8000.0), 22))
    np.testing.assert_allclose(triangular_filters(edges, edges)[np.arange(20), np.arange(1, 21)], 1.0)
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(16000, 512, 20, f_max=9000.0)


def test_cepstra_is_log10_then_orthonormal_dct():
    energies = np.random.default_rng(0).uniform(0, 5, (6, 20))
    expected = scipy.fft.dct(np.log10(energies + EPS), type=2, norm="ortho", axis=1)[:, :13]
    np.testing.assert_allclose(cepstra(energies, 13), expected, rtol=1e-12, atol=1e-13)
    flat = cepstra(np.full((1, 20), 100.0), 20)
    assert flat[0, 0] == pytest.approx(2 * np.sqrt(20), rel=1e-14)  # only c0 for a flat spectrum
    np.testing.assert_allclose(flat[0, 1:], 0, atol=1e-13)
    np.testing.assert_allclose(cepstra(np.zeros((1, 4)), 1), [[np.log10(EPS) * 2]], rtol=1e-14)


def test_dct_matrix_is_orthonormal():
    basis = dct_matrix(20, 20)
    np.testing.assert_allclose(basis @ basis.T, np.eye(20), atol=1e-14)
    assert basis[0, 0] == pytest.approx(1 / np.sqrt(20))


def test_deltas_by_hand():
    c = np.array([[0.0], [1.0], [4.0], [9.0]])
    # Edges repeated: [0, 0, 1, 4, 9, 9] -> c[t+1] - c[t-1]
    np.testing.assert_array_equal(deltas(c), [[1.0], [4.0], [8.0], [5.0]])
    np.testing.assert_array_equal(deltas(c, style="htk"), [[0.5], [2.0], [4.0], [2.5]])
    # Half-length 2 on [0, 0, 0, 1, 4, 9, 9, 9]: t=1 -> 1·(4 - 0) + 2·(9 - 0) = 22
    assert deltas(c, half_length=2)[1, 0] == 22.0
    assert deltas(c, half_length=2, style="htk")[1, 0] == 22.0 / 10
    ramp = np.arange(10.0)[:, None] * 3
    np.testing.assert_allclose(deltas(ramp, 3, "htk")[3:-3], 3.0)  # HTK delta of a line is its slope
    assert deltas(np.zeros((0, 3))).shape == (0, 3)
    np.testing.assert_array_equal(deltas(np.array([[1], [2], [4]]), style="htk"), [[0.5], [1.5], [1.0]])
    with pytest.raises(ValueError, match="delta style"):
        deltas(c, style="kaldi")


def test_output_layout_is_static_delta_delta_delta():
    signal = np.random.default_rng(2).standard_normal(4000)
    features = lfcc(signal)
    static = lfcc(signal, delta=False, delta_delta=False)
    np.testing.assert_array_equal(features[:, :20], static)
    np.testing.assert_array_equal(features[:, 20:40], deltas(static))
    np.testing.assert_array_equal(features[:, 40:], deltas(deltas(static)))
    np.testing.assert_array_equal(lfcc(signal, static=False, delta=False), features[:, 40:])


def test_pre_emphasis_is_the_only_2019_step_before_framing():
    signal = np.random.default_rng(3).standard_normal(3000)
    np.testing.assert_array_equal(lfcc(pre_emphasis(signal), pre_emphasis=None), lfcc(signal))
    assert not np.allclose(lfcc(signal, pre_emphasis=None), lfcc(signal))


# --- configuration -----------------------------------------------------------------------------


def test_presets_and_overrides():
    assert PRESETS["asvspoof2019"].n_features == 60
    assert PRESETS["asvspoof2021"].n_features == 57
    assert PRESETS["asvspoof2019"].frame_lengths(16000) == (320, 160)
    assert PRESETS["asvspoof2021"].frame_lengths(16000) == (480, 240)
    assert get_config("asvspoof2019", n_ceps=13).n_features == 39
    assert lfcc(np.ones(1000), n_ceps=13, delta_delta=False).shape == (6, 26)
    custom = LFCCConfig(n_filters=30, n_ceps=10)
    assert lfcc(np.ones(1000), preset=custom).shape == (6, 30)
    assert lfcc(np.ones(2000), 8000).shape == (24, 60)  # 20 ms at 8 kHz = 160 samples, hop 80


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"preset": "asvspoof2015"}, "unknown LFCC preset 'asvspoof2015'; known presets: asvspoof2019"),
        ({"n_filterz": 3}, "unknown LFCC parameter"),
        ({"n_ceps": 30}, "n_ceps <= n_filters"),
        ({"hop_length": 0.05}, "exceeds win_length"),
        ({"delta_style": "kaldi"}, "delta_style must be one of"),
        ({"static": False, "delta": False, "delta_delta": False}, "at least one"),
        ({"n_fft": 256}, "longer than n_fft=256"),
        ({"f_max": 9000.0}, "f_max <= 8000"),
        ({"f_min": 100.0, "f_max": 110.0}, r"filter\(s\) \[0, 1, .*\] contain no FFT bin"),
        ({"dtype": np.int16}, "float32 or float64"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lfcc(np.ones(2000), **kwargs)


def test_rejects_multichannel_signal():
    with pytest.raises(ValueError, match="1-D"):
        lfcc(np.ones((2000, 2)))


def test_presets_are_immutable_and_plans_read_only():
    with pytest.raises(AttributeError):
        PRESETS["asvspoof2019"].n_fft = 1024  # type: ignore[misc]
    before = lfcc(np.ones(1000))
    features = lfcc(np.ones(1000))
    features[:] = 0  # the caller owns its output; nothing cached is shared with it
    np.testing.assert_array_equal(lfcc(np.ones(1000)), before)


def test_features_never_import_torch():
    code = "import sys, lfcc_gmm.features; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

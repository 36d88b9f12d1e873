"""Properties that must hold for any input: LFCC framing, finiteness and gain behaviour; EER invariances on
tie-heavy data; exact round trips of score files and protocols.

Complements tests/test_features.py and tests/test_metrics.py (fixed examples and the official references)
with hypothesis-generated inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lfcc_gmm.features import EPS, PRESETS, lfcc
from lfcc_gmm.metrics import compute_eer
from lfcc_gmm.protocols import Trial, read_protocol, write_protocol
from lfcc_gmm.scorefiles import read_scores, write_scores

# Window, hop and output columns at 16 kHz, straight from SPEC §2 and §3.
FRAMING = {"asvspoof2019": (320, 160, 60), "asvspoof2021": (480, 240, 57)}
presets = st.sampled_from(sorted(FRAMING))
seeds = st.integers(0, 2**32 - 1)
SETTINGS = settings(max_examples=40, deadline=None)


# --------------------------------------------------------------------------------------------------------------
# LFCC


@SETTINGS
@given(preset=presets, n=st.integers(0, 3000), seed=seeds, dtype=st.sampled_from([np.float32, np.float64]))
@example(preset="asvspoof2019", n=160, seed=0, dtype=np.float64)  # L - hop: no frame yet
@example(preset="asvspoof2019", n=161, seed=0, dtype=np.float64)  # one sample more: one zero-padded frame
@example(preset="asvspoof2019", n=320, seed=0, dtype=np.float64)  # exactly one window
@example(preset="asvspoof2019", n=321, seed=0, dtype=np.float64)
@example(preset="asvspoof2021", n=240, seed=0, dtype=np.float64)
@example(preset="asvspoof2021", n=241, seed=0, dtype=np.float64)
@example(preset="asvspoof2021", n=481, seed=0, dtype=np.float32)
def test_frame_count_is_the_official_formula_and_too_short_is_a_clear_error(preset, n, seed, dtype):
    length, hop, columns = FRAMING[preset]
    x = np.random.default_rng(seed).uniform(-1, 1, n)
    if n > length - hop:
        features = lfcc(x, preset=preset, dtype=dtype)
        assert features.shape == (math.ceil((n - (length - hop)) / hop), columns)
        assert features.dtype == dtype
    else:
        message = f"signal of {n} samples gives no LFCC frame: it needs more than {length - hop} samples"
        with pytest.raises(ValueError, match=message):
            lfcc(x, preset=preset, dtype=dtype)


def _signals(n: int, amplitude: float) -> st.SearchStrategy[np.ndarray]:
    """Arbitrary finite samples and the classic hard cases: silence, DC, full-scale noise, clipped squares,
    a lone impulse."""
    t = np.arange(n) / 16000
    arbitrary = hnp.arrays(np.float64, n, elements=st.floats(-amplitude, amplitude, allow_nan=False))
    silence = st.just(np.zeros(n))
    dc = st.floats(-amplitude, amplitude, allow_nan=False).map(lambda c: np.full(n, c))
    noise = seeds.map(lambda s: np.random.default_rng(s).uniform(-1.0, 1.0, n))
    square = st.tuples(st.floats(20, 7900), st.floats(1, 1e6)).map(
        lambda fk: np.clip(fk[1] * np.sin(2 * np.pi * fk[0] * t), -1.0, 1.0))
    impulse = st.tuples(st.integers(0, n - 1), st.floats(-amplitude, amplitude, allow_nan=False)).map(
        lambda ia: np.where(np.arange(n) == ia[0], ia[1], 0.0))
    return st.one_of(arbitrary, silence, dc, noise, square, impulse)


# float64 stays finite far beyond audio levels; float32 powers overflow once |x| reaches ~1e18, so it is held to
# the largest level audio files use (a float WAV holding unscaled 16-bit values).
AMPLITUDE = {np.float64: 1e100, np.float32: 2.0**15}


@SETTINGS
@given(data=st.data(), preset=presets, dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(481, 2400))
def test_lfcc_is_finite_for_any_finite_signal(data, preset, dtype, n):
    x = data.draw(_signals(n, AMPLITUDE[dtype]), label="signal")
    features = lfcc(x, preset=preset, dtype=dtype)
    assert np.isfinite(features).all()


def _log_energy_floor_error(x: np.ndarray, preset: str) -> float:
    """Upper bound of log10(E + eps) - log10(E) over every filter and frame of ``x``.

    The full static cepstrum (n_ceps = n_filters) is the orthonormal DCT of log10(E + eps), so the inverse
    DCT gives back the log energies; log10(1 + eps/E) <= eps / (E ln 10).
    """
    n_filters = PRESETS[preset].n_filters
    statics = lfcc(x, preset=preset, n_ceps=n_filters, delta=False, delta_delta=False)
    log_energies = scipy.fft.idct(statics, type=2, norm="ortho", axis=1)
    smallest = 10.0 ** log_energies.min() - EPS
    return math.inf if smallest <= 0 else EPS / (smallest * math.log(10))


@SETTINGS
@given(preset=presets, seed=seeds, n=st.integers(500, 4000), log_level=st.floats(-2, 0),
       log_gain=st.floats(-3, 3))
def test_gain_moves_only_c0_by_sqrt_n_filters_times_log10_of_g_squared(preset, seed, n, log_level, log_gain):
    """Scaling x by g scales every filterbank energy by g² (pre-emphasis, window and FFT are linear), adding
    log10(g²) to every log energy while the floor eps is negligible. The orthonormal DCT-II row 0 is
    sqrt(1/N) in each of the N filters, so c0 moves by N·sqrt(1/N)·log10(g²) = sqrt(N)·log10(g²); rows k ≥ 1
    are cosines summing to zero, so c1… do not move. A constant shift of c0 cancels in
    d[t] = c[t+1] - c[t-1] (either delta style), so deltas and delta-deltas do not move either.
    """
    config = PRESETS[preset]
    x = 10.0**log_level * np.random.default_rng(seed).standard_normal(n)
    g = 10.0**log_gain
    before, after = lfcc(x, preset=preset), lfcc(g * x, preset=preset)

    # What eps can change, propagated: each cepstrum moves by at most sum_m |D[k, m]|·err <= sqrt(N)·err per
    # signal, a delta doubles it (c[t+1] - c[t-1]), a delta-delta doubles it again: 2 signals · 2 · 2.
    floor = max(_log_energy_floor_error(x, preset), _log_energy_floor_error(g * x, preset))
    tolerance = 8 * math.sqrt(config.n_filters) * floor + 1e-10  # + float64 rounding of values up to ~1e2
    assume(tolerance < 1e-6)  # the property is about signals well above the floor
    expected_shift = math.sqrt(config.n_filters) * math.log10(g * g)
    np.testing.assert_allclose(after[:, 0] - before[:, 0], expected_shift, rtol=0, atol=tolerance)
    np.testing.assert_allclose(after[:, 1:], before[:, 1:], rtol=0, atol=tolerance)


def test_gain_property_needs_the_floor_to_be_negligible():
    # Below the floor the log saturates at log10(eps): c0 moves by far less than sqrt(N)·log10(g²).
    x = 1e-12 * np.random.default_rng(0).standard_normal(2000)
    shift = lfcc(100 * x)[:, 0] - lfcc(x)[:, 0]
    assert (shift < 0.5 * math.sqrt(20) * math.log10(100.0**2)).all()


# --------------------------------------------------------------------------------------------------------------
# EER


tie_heavy = st.lists(st.integers(-6, 6), min_size=1, max_size=40)


@st.composite
def increasing_maps(draw) -> tuple[str, object]:
    """Strictly increasing (in floating point, on the integers -6..6) maps, including arbitrary ones."""
    kind = draw(st.sampled_from(["affine", "exp", "arctan", "cube", "table"]))
    if kind == "affine":
        a, b = draw(st.integers(1, 1000)), draw(st.integers(-1000, 1000))
        return kind, lambda v: a * v + b
    if kind == "table":
        values = sorted(draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=13, max_size=13,
                                      unique=True)))
        table = np.array(values)
        return kind, lambda v: table[np.asarray(v, dtype=int) + 6]
    return kind, {"exp": np.exp, "arctan": np.arctan, "cube": lambda v: np.asarray(v, dtype=float) ** 3}[kind]


@SETTINGS
@given(bona=tie_heavy, spoof=tie_heavy, transform=increasing_maps())
def test_eer_is_unchanged_by_any_strictly_increasing_map_even_with_ties(bona, spoof, transform):
    _, f = transform
    bona, spoof = np.array(bona, dtype=float), np.array(spoof, dtype=float)
    eer, threshold = compute_eer(bona, spoof)
    mapped_bona, mapped_spoof = np.asarray(f(bona), dtype=float), np.asarray(f(spoof), dtype=float)
    mapped_eer, mapped_threshold = compute_eer(mapped_bona, mapped_spoof)
    assert mapped_eer == eer
    # The threshold is a score (mapped with it), or 0.001 below the lowest score when everything is accepted.
    if threshold in set(bona) | set(spoof):
        assert mapped_threshold == float(np.asarray(f(threshold), dtype=float))
    else:
        assert mapped_threshold == min(mapped_bona.min(), mapped_spoof.min()) - 0.001


def _det_by_definition(bona: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FRR and FAR after rejecting the k lowest scores, k = 0..n, counted directly. Only valid when no score
    is shared by the two classes (ties inside a class do not change the counts)."""
    merged = sorted([(v, "b") for v in bona] + [(v, "s") for v in spoof], key=lambda pair: pair[0])
    labels = [label for _, label in merged]
    frr = np.array([labels[:k].count("b") / len(bona) for k in range(len(labels) + 1)])
    far = np.array([labels[k:].count("s") / len(spoof) for k in range(len(labels) + 1)])
    return frr, far


@SETTINGS
@given(bona=st.lists(st.integers(-5, 5).map(lambda v: 2.0 * v), min_size=1, max_size=30),
       spoof=st.lists(st.integers(-5, 5).map(lambda v: 2.0 * v + 1), min_size=1, max_size=30))
def test_eer_under_negation_and_class_swap_picks_the_last_minimum(bona, spoof):
    """Bona fide scores even and spoof scores odd: many ties inside each class, none across.

    Negating every score and swapping the classes walks the same DET points backwards with FRR and FAR
    exchanged, so |FRR - FAR| has the same minima; the official rule takes the first minimum, hence the
    mirrored EER is the original curve's value at its *last* minimum. The two agree exactly when all minima
    give the same (FRR + FAR) / 2 (tests/test_metrics.py shows a case where they do not).
    """
    bona, spoof = np.array(bona), np.array(spoof)
    frr, far = _det_by_definition(bona, spoof)
    gap = np.abs(frr - far)
    minima = np.flatnonzero(gap == gap.min())
    assert compute_eer(bona, spoof)[0] == (frr[minima[0]] + far[minima[0]]) / 2
    mirrored = compute_eer(-spoof, -bona)[0]
    assert mirrored == (frr[minima[-1]] + far[minima[-1]]) / 2
    if len({frr[k] + far[k] for k in minima}) == 1:
        assert mirrored == compute_eer(bona, spoof)[0]


# --------------------------------------------------------------------------------------------------------------
# Score files and protocols


# Any text but lone surrogates (not encodable): whitespace, "%" and control characters are percent-encoded.
tokens = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)  # -0.0, subnormals and ±max included


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("round_trips")


@SETTINGS
@given(rows=st.lists(st.tuples(tokens, finite_floats, tokens, st.sampled_from(["bonafide", "spoof"])),
                     min_size=1, max_size=25, unique_by=lambda row: row[0]),
       labelled=st.booleans())
def test_score_file_round_trip_is_exact(folder, rows, labelled):
    ids, scores, attacks, keys = (list(column) for column in zip(*rows, strict=True))
    path = folder / "scores.txt"
    if labelled:
        write_scores(path, ids, scores, attacks, keys)
    else:
        write_scores(path, ids, scores)
    table = read_scores(path)
    assert table.ids == ids
    # Bit for bit: repr keeps every digit, and the sign of -0.0.
    np.testing.assert_array_equal(table.scores.view(np.uint64), np.array(scores, dtype=np.float64).view(np.uint64))
    assert table.labelled == labelled
    if labelled:
        assert (table.attacks, table.keys) == (attacks, keys)


@SETTINGS
@given(rows=st.lists(st.tuples(tokens, tokens, tokens, st.sampled_from(["bonafide", "spoof"])),
                     min_size=1, max_size=25, unique_by=lambda row: row[1]))
def test_protocol_round_trip_is_exact(folder, rows):
    trials = [Trial(file_id, key, attack, speaker) for speaker, file_id, attack, key in rows]
    path = folder / "protocol.txt"
    write_protocol(path, trials)
    assert read_protocol(path) == trials

"""Segment grids and the rules that turn window scores into a file score (lfcc_gmm.segments)."""

from __future__ import annotations

import numpy as np
import pytest
from error_bounds import gamma
from hypothesis import given
from hypothesis import strategies as st

from lfcc_gmm.segments import (
    AGGREGATIONS,
    DEFAULT_HOP_S,
    DEFAULT_SEGMENT_S,
    WINDOW_AGGREGATION,
    Segment,
    SegmentGrid,
    aggregate_windows,
    frame_segment_means,
    segment_spans,
    segments_from_spans,
    window_starts,
)


def test_window_starts_by_hand():
    assert window_starts(10, 4, 3).tolist() == [0, 3, 6]  # the last one ends exactly at the end
    assert window_starts(10, 4, 4).tolist() == [0, 4, 6]  # 8 would run past the end: one aligned to the end
    assert window_starts(4, 4, 2).tolist() == [0]
    assert window_starts(3, 5, 2).tolist() == [0]  # shorter than a window: one span, the whole signal
    assert segment_spans(3, 5, 2).tolist() == [[0, 3]]
    assert segment_spans(10, 4, 4).tolist() == [[0, 4], [4, 8], [6, 10]]
    # The official grid on 60 s: 29 windows of 64,600 every 32,300 samples, the last aligned to the end.
    starts = window_starts(960_000, 64_600, 32_300)
    assert len(starts) == 29 and starts[-1] == 960_000 - 64_600 and starts[-2] == 27 * 32_300
    for bad in ((0, 4, 2), (10, 0, 2), (10, 4, 0)):
        with pytest.raises(ValueError):
            window_starts(*bad)


@given(n=st.integers(1, 5000), length=st.integers(1, 600), hop=st.integers(1, 700))
def test_spans_cover_every_sample_and_never_pass_the_end(n, length, hop):
    spans = segment_spans(n, length, hop)
    covered = np.zeros(n, bool)
    for start, stop in spans:
        assert 0 <= start < stop <= n
        assert stop - start == min(length, n)
        covered[start:stop] = True
    # Hops larger than a segment leave gaps by design; otherwise nothing is left out.
    assert covered.all() or hop > length
    assert covered[-1] and covered[0]
    assert np.all(np.diff(spans[:, 0]) > 0) and np.all(np.diff(spans[:, 0]) <= hop)


def test_grid_options():
    assert SegmentGrid() == SegmentGrid(DEFAULT_SEGMENT_S, DEFAULT_HOP_S)
    assert SegmentGrid().samples(16000) == (64_600, 32_300)
    model = SegmentGrid(2.0, 1.0)
    assert SegmentGrid.from_options(default=model) == model
    assert SegmentGrid.from_options(3.0, default=model) == SegmentGrid(3.0, 1.5)  # half of the segment
    assert SegmentGrid.from_options(None, 0.5, default=model) == SegmentGrid(2.0, 0.5)
    for bad in ((0.0, 1.0), (1.0, -1.0), (float("nan"), 1.0), (1.0, float("inf"))):
        with pytest.raises(ValueError, match="segment and hop"):
            SegmentGrid(*bad)


def test_segments_carry_seconds():
    spans = np.array([[0, 16000], [8000, 24000]])
    assert segments_from_spans(spans, [1.5, -2.0], 16000) == (Segment(0.0, 1.0, 1.5), Segment(0.5, 1.5, -2.0))
    assert Segment(0.0, 1.0, 1.5).to_dict() == {"start_s": 0.0, "end_s": 1.0, "score": 1.5}
    with pytest.raises(ValueError, match="2 spans"):
        segments_from_spans(spans, [1.0], 16000)


def test_frame_means_against_a_loop():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 10, 1000)
    centres = np.arange(1000) * 160 + 160.0  # 20 ms frames every 10 ms, centres in samples
    spans = segment_spans(1000 * 160 + 160, 6400, 3200)
    means = frame_segment_means(values, centres, spans)
    expected = [values[(centres >= a) & (centres < b)].mean() for a, b in spans]
    # A difference of two running sums against a direct mean: the same terms summed in other orders. Each running
    # sum is within gamma(N) sum|v| of exact, the mean within gamma(n) sum|v_span| (CONTRIBUTING, kind 2).
    counts = np.array([np.count_nonzero((centres >= a) & (centres < b)) for a, b in spans])
    bound = (2 * gamma(values.size, 2**-53) * np.abs(values).sum() + gamma(40, 2**-53) * np.abs(values).max() * counts
             ) / counts
    assert np.all(np.abs(means - expected) <= bound)
    # A span holding no frame centre takes its nearest frame.
    assert frame_segment_means(values, centres, np.array([[161, 162]]))[0] == values[0]
    assert frame_segment_means(values, centres, np.array([[400, 401]]))[0] == values[2]  # 400 is nearer 480
    with pytest.raises(ValueError):
        frame_segment_means(values[:3], centres, spans)


def test_each_rule_by_hand():
    scores = np.array([2.0, -4.0, 1.0, 3.0])
    speech = np.array([0.0, 1.0, 0.5, 0.5])
    assert aggregate_windows(scores, speech, "mean") == 0.5
    assert aggregate_windows(scores, speech, "speech-weighted mean") == pytest.approx((-4 + 0.5 + 1.5) / 2)
    assert aggregate_windows(scores, speech, "mean of speech windows") == pytest.approx(0.0)  # -4, 1, 3
    assert aggregate_windows(scores, speech, "lower quartile") == pytest.approx(np.percentile(scores, 25))
    assert aggregate_windows(scores, speech, "minimum") == -4.0
    # Silence weighs nothing; with no speech at all every window counts the same (the verdict is "no speech").
    assert aggregate_windows(scores, np.zeros(4)) == 0.5
    assert WINDOW_AGGREGATION == "speech-weighted mean" and WINDOW_AGGREGATION in AGGREGATIONS


def test_one_window_is_its_own_score_under_every_rule():
    value = -0.7497581839561464
    for rule in AGGREGATIONS:
        assert aggregate_windows([value], [0.3], rule) == value


def test_bad_aggregation_inputs():
    with pytest.raises(ValueError, match="one speech share per window"):
        aggregate_windows([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one window"):
        aggregate_windows([], [])
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        aggregate_windows([1.0], [1.0], "median")

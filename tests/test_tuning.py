"""Measured CPU fast paths: the timed choice among candidates, when fast paths may run, the scoped thread count."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from rawnet.threads import intra_op_threads
from rawnet.tuning import FastestChoice, cpu_inference, fast_paths_off, is_exporting


def drive(choice: FastestChoice, key, candidates, seconds, calls: int) -> list:
    """Run ``calls`` choices, each recorded with ``seconds(candidate, call index)``; the candidates chosen."""
    chosen = []
    for i in range(calls):
        candidate = choice.choose(key, candidates)
        chosen.append(candidate)
        choice.record(key, candidate, seconds(candidate, i))
    return chosen


def test_warm_up_times_every_candidate_several_times_in_turn():
    choice = FastestChoice(rounds=3, clear_margin=None)
    candidates = ("a", "b", "c")
    chosen = drive(choice, "k", candidates, lambda c, i: {"a": 3.0, "b": 1.0, "c": 2.0}[c], 9)
    # Interleaved, so that a change of load during the warm-up falls on every candidate alike.
    assert chosen == ["a", "b", "c"] * 3
    assert choice.ranking("k", candidates) == ["b", "c", "a"]
    assert choice.choose("k", candidates) == "b"
    # Another key starts its own warm-up; one candidate alone is always chosen.
    assert choice.choose("other", candidates) == "a"
    assert [choice.choose("solo", ("x",)) for _ in range(4)] == ["x"] * 4


def test_ranked_by_the_second_fastest_recent_time():
    choice = FastestChoice(rounds=3, window=4)
    for seconds in (1.0, 9.0, 9.0):  # one lucky call among slow ones
        choice.record("k", "lucky", seconds)
    for seconds in (2.0, 8.0, 2.5):  # one slow outlier among fast ones
        choice.record("k", "steady", seconds)
    assert (choice.statistic("k", "lucky"), choice.statistic("k", "steady")) == (9.0, 2.5)
    assert choice.ranking("k", ("lucky", "steady")) == ["steady", "lucky"]
    # Only the last `window` timings count: four fast calls later, "lucky" is fast for real.
    for _ in range(4):
        choice.record("k", "lucky", 1.5)
    assert list(choice.samples["k"]["lucky"]) == [1.5] * 4
    assert choice.ranking("k", ("lucky", "steady")) == ["lucky", "steady"]
    # Ties keep the order given (the plain computation is listed first by the callers).
    choice.record("k2", "x", 1.0), choice.record("k2", "y", 1.0)
    assert FastestChoice(rounds=1).ranking("k2", ("y", "x")) is None
    assert choice.ranking("k", ("steady", "missing")) is None


def test_one_outlier_never_picks_a_path():
    choice = FastestChoice(rounds=3, explore_every=4, clear_margin=None)
    times = {"plain": 2.0, "fast": 1.0}
    # During the warm-up the truly fast candidate has one very slow call, the plain one a very lucky one.
    outliers = {(1, "fast"): 50.0, (2, "plain"): 0.01}
    chosen = drive(choice, "k", ("plain", "fast"), lambda c, i: outliers.get((i, c), times[c]), 6)
    assert chosen == ["plain", "fast"] * 3
    assert choice.fastest("k", ("plain", "fast")) == "fast"
    # Later a re-timing of the slower candidate is lucky once: it is timed again at the next call, is slow again,
    # and the fastest keeps running.
    choice = FastestChoice(rounds=3, explore_every=4, clear_margin=None)
    drive(choice, "k", ("plain", "fast"), lambda c, i: times[c], 6)
    chosen = drive(choice, "k", ("plain", "fast"), lambda c, i: 0.01 if (i, c) == (3, "plain") else times[c], 10)
    assert chosen == ["fast"] * 3 + ["plain", "plain"] + ["fast"] * 3 + ["plain"] + ["fast"]
    assert choice.fastest("k", ("plain", "fast")) == "fast"


def test_a_clearly_slower_candidate_is_set_aside_after_one_call():
    choice = FastestChoice(rounds=3, explore_every=4)
    candidates = ("fused", "official", "other")
    seconds = {"fused": 1.0, "official": 3.5, "other": 1.5}
    chosen = drive(choice, "k", candidates, lambda c, i: seconds[c], 8)
    # "official" took 3.5 times the fastest call: one call only; the two close candidates are warmed up in turn.
    assert chosen[:7] == ["fused", "official", "other", "fused", "other", "fused", "other"]
    assert choice.ranking("k", candidates) == ["fused", "other", "official"]
    # Within the margin nobody is set aside; from exactly twice the fastest call on, a candidate is.
    near = FastestChoice(rounds=2)
    assert drive(near, "k", ("a", "b"), lambda c, i: {"a": 1.0, "b": 1.9}[c], 4) == ["a", "b", "a", "b"]
    twice = FastestChoice(rounds=2)
    assert drive(twice, "k", ("a", "b"), lambda c, i: {"a": 1.0, "b": 2.0}[c], 4) == ["a", "b", "a", "a"]


def test_a_candidate_set_aside_by_an_unlucky_first_call_wins_at_its_re_timing():
    choice = FastestChoice(rounds=3, explore_every=4)
    times = {"plain": 2.0, "fast": 1.0}
    # The truly fast candidate's first call is very slow (a cold start): it is set aside ...
    chosen = drive(choice, "k", ("plain", "fast"), lambda c, i: 50.0 if (i, c) == (1, "fast") else times[c], 4)
    assert chosen == ["plain", "fast", "plain", "plain"]
    assert choice.fastest("k", ("plain", "fast")) == "plain"
    # ... until its first re-timing, which is faster than the leader, is repeated at once and takes over.
    chosen = drive(choice, "k", ("plain", "fast"), lambda c, i: times[c], 8)
    assert chosen == ["plain"] * 3 + ["fast", "fast"] + ["fast"] * 3
    assert choice.fastest("k", ("plain", "fast")) == "fast"


def test_slower_candidates_are_re_timed_less_and_less_often_and_in_turn():
    choice = FastestChoice(rounds=2, explore_every=4, max_explore_every=16, clear_margin=None)
    candidates = ("nn.GRU/2", "split/2", "nn.GRU/1", "split/1")
    seconds = dict(zip(candidates, (4.0, 1.0, 3.0, 2.0), strict=True))
    chosen = drive(choice, "k", candidates, lambda c, i: seconds[c], 80)
    assert chosen[:8] == list(candidates) * 2
    retimed = [(i - 8 + 1, c) for i, c in enumerate(chosen) if i >= 8 and c != "split/2"]
    # Every re-timing finds its candidate still slower: the interval doubles from 4 to at most 16 calls; the
    # slower candidates come back in turn, fastest of them first.
    assert retimed == [(4, "split/1"), (12, "nn.GRU/1"), (28, "nn.GRU/2"), (44, "split/1"), (60, "nn.GRU/1")]


def test_a_far_slower_candidate_is_re_timed_four_times_less_often_each_time():
    choice = FastestChoice(rounds=2, explore_every=4, max_explore_every=64)
    seconds = {"fft": 1.0, "direct": 10.0}
    chosen = drive(choice, "k", ("direct", "fft"), lambda c, i: seconds[c], 100)
    retimed = [i for i, c in enumerate(chosen) if c == "direct"]
    # One warm-up call (set aside: ten times slower) and fft's two; re-timed 4 calls after the warm-up, then 16
    # and 64 (the cap) calls after the previous re-timing.
    assert retimed == [0, 6, 22, 86]
    # A candidate within the margin is re-timed twice as rarely each time instead: 4, 8, 16, 32, 64 calls apart.
    near = FastestChoice(rounds=2, explore_every=4, max_explore_every=64)
    chosen = drive(near, "k", ("b", "a"), lambda c, i: {"a": 1.0, "b": 1.5}[c], 140)
    assert [i for i, c in enumerate(chosen) if c == "b"] == [0, 2, 7, 15, 31, 63, 127]


def test_a_change_of_load_is_followed_both_ways():
    choice = FastestChoice(rounds=2, window=4, explore_every=2, max_explore_every=64, clear_margin=None)
    drive(choice, "k", ("one thread", "two threads"), lambda c, i: {"one thread": 2.0, "two threads": 1.0}[c], 4)
    assert choice.fastest("k", ("one thread", "two threads")) == "two threads"
    # Another process takes a core: two threads now cost 5 s. Once three of its last four calls were slow (its
    # second-fastest recent time is then slow) it no longer ranks first, and one thread runs. Calls 2 and 6 are
    # scheduled re-timings of the other candidate (the schedule restarts when the ranking changes).
    busy = {"one thread": 2.0, "two threads": 5.0}
    chosen = drive(choice, "k", ("one thread", "two threads"), lambda c, i: busy[c], 6)
    assert chosen == ["two threads", "one thread", "two threads", "two threads", "one thread", "two threads"]
    assert choice.fastest("k", ("one thread", "two threads")) == "one thread"
    # The core comes back: the next re-timing of two threads (after 4 calls: the last one found it slower) is fast,
    # is repeated at once, and two threads take over.
    idle = {"one thread": 2.0, "two threads": 1.0}
    chosen = drive(choice, "k", ("one thread", "two threads"), lambda c, i: idle[c], 6)
    assert chosen == ["one thread"] * 3 + ["two threads"] * 3
    assert choice.fastest("k", ("one thread", "two threads")) == "two threads"


@pytest.mark.parametrize("other", [0.9, 1.1])
def test_on_a_noisy_machine_the_choice_costs_no_more_than_the_plain_path(other):
    """A simulated shared machine: every call gets up to 5 % jitter, and one call in ten a delay of twice its cost
    on average (exponential), whichever candidate runs. The other candidate is 10 % faster or 10 % slower than the
    plain one. Over 2,000 calls the measured choice runs the faster one nearly always, and its total time, warm-up
    and re-timings included, is below the plain path's on the same noise (or within 1 % where plain is fastest)."""
    rng = np.random.default_rng(7)
    calls = 2000
    jitter = 1 + 0.05 * rng.random(calls)
    delay = np.where(rng.random(calls) < 0.1, rng.exponential(2.0, calls), 0.0)
    cost = {"plain": 1.0, "other": other}
    choice = FastestChoice()
    chosen = drive(choice, "k", ("plain", "other"), lambda c, i: cost[c] * (jitter[i] + delay[i]), calls)
    spent = sum(cost[c] * (jitter[i] + delay[i]) for i, c in enumerate(chosen))
    plain = float(np.sum(jitter + delay))
    faster = "other" if other < 1 else "plain"
    assert chosen.count(faster) >= 0.97 * calls
    assert spent <= plain * (1.0 if other < 1 else 1.01)


def test_only_the_candidates_asked_about_are_ranked():
    choice = FastestChoice(rounds=1)
    for candidate, seconds in (("nn.GRU/2", 1.0), ("nn.GRU/1", 2.0), ("nn.GRU/4", 0.5)):
        choice.record("k", candidate, seconds)
    # The thread count changed from 4 to 2: the 4-thread timing is kept but not a candidate.
    assert choice.choose("k", ("nn.GRU/2", "nn.GRU/1")) == "nn.GRU/2"
    assert choice.choose("k", ("nn.GRU/2", "nn.GRU/1", "split/2")) == "split/2"  # untimed: the warm-up goes on


def test_timed_measures_the_block_with_its_clock_and_skips_failed_calls():
    ticks = iter([10.0, 10.25, 20.0])
    choice = FastestChoice(clock=lambda: next(ticks))
    with choice.timed("k", ("a", "b")) as candidate:
        assert candidate == "a"
    assert choice.samples == {"k": {"a": deque([0.25])}}
    with pytest.raises(RuntimeError), choice.timed("k", ("a", "b")):
        raise RuntimeError("boom")
    assert choice.samples == {"k": {"a": deque([0.25])}}


def test_intra_op_threads_restores_the_previous_count_also_on_error():
    previous = torch.get_num_threads()
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == previous
    with pytest.raises(RuntimeError), intra_op_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == previous
    with intra_op_threads(None):
        assert torch.get_num_threads() == previous


SEEN: list[tuple[bool, bool]] = []


class _Probe(torch.nn.Module):
    """Records in SEEN whether its forward could take a measured fast path (export runs it on a copy)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN.append((cpu_inference(self, x), is_exporting()))
        return x * 2


def test_fast_paths_only_in_eval_mode_without_autograd_and_never_while_exporting():
    SEEN.clear()
    probe = _Probe()
    x = torch.ones(2, 3)
    with torch.no_grad():
        probe.eval()(x)
        probe.train()(x)
    probe.eval()(x)  # autograd on
    with torch.inference_mode():
        probe(x)
    assert SEEN == [(True, False), (False, False), (False, False), (True, False)]
    SEEN.clear()
    with torch.no_grad():
        torch.export.export(probe, (x,))
    assert SEEN and all(seen == (False, True) for seen in SEEN)


def test_fast_paths_off_for_the_block_only():
    probe = _Probe().eval()
    x = torch.ones(1, 2)
    SEEN.clear()
    with torch.no_grad():
        with fast_paths_off():
            probe(x)
        probe(x)
        with pytest.raises(RuntimeError), fast_paths_off():
            raise RuntimeError("boom")
        probe(x)
    assert [seen[0] for seen in SEEN] == [False, True, True]
    assert not torch.are_deterministic_algorithms_enabled()

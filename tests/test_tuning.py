"""Measured CPU fast paths: the timed choice among candidates, when fast paths may run, the scoped thread count."""

from __future__ import annotations

import pytest
import torch

from rawnet.threads import intra_op_threads
from rawnet.tuning import FastestChoice, cpu_inference, fast_paths_off, is_exporting


def test_each_candidate_is_timed_then_the_fastest_runs_and_the_others_are_re_timed_less_and_less_often():
    choice = FastestChoice(explore_every=4, max_explore_every=8)
    seconds = {1: 3.0, 2: 1.0}
    chosen = []
    for _ in range(40):
        n = choice.choose("b1", (2, 1))
        chosen.append(n)
        choice.record("b1", n, seconds[n])
    # Calls 1 and 2 time each candidate once, in the order given; then the faster, and the slower one again after
    # 4 calls, then after 8 (it stayed slower), then every 8 (the longest interval).
    assert chosen[:2] == [2, 1]
    assert [i + 1 for i, n in enumerate(chosen) if n == 1] == [2, 6, 14, 22, 30, 38]
    assert choice.seconds == {("b1", 1): 3.0, ("b1", 2): 1.0}
    # A key of its own starts again; one candidate is always chosen.
    assert choice.choose("b8", (2, 1)) == 2
    assert [choice.choose("solo", (2,)) for _ in range(9)] == [2] * 9


def test_re_timing_soon_again_after_the_ranking_changes():
    choice = FastestChoice(explore_every=2, max_explore_every=64)
    choice.record("k", 1, 2.0)
    choice.record("k", 2, 1.0)
    chosen = []
    for _ in range(5):
        chosen.append(choice.choose("k", (1, 2)))
        choice.record("k", chosen[-1], 1.0)
    assert chosen == [2, 1, 2, 2, 2]  # the re-timing confirmed the ranking: the interval doubled to 4
    # The next re-timing finds 1 much faster now (the machine got busy): it becomes the fastest and the interval
    # is back to 2.
    n = choice.choose("k", (1, 2))
    assert n == 1
    choice.record("k", n, 0.1)
    assert choice.seconds[("k", 1)] < choice.seconds[("k", 2)]
    assert [choice.choose("k", (1, 2)) for _ in range(2)] == [1, 2]


def test_a_change_of_load_is_followed():
    choice = FastestChoice(explore_every=2)
    choice.record("k", 1, 2.0)
    choice.record("k", 2, 1.0)
    for _ in range(3):  # 2 becomes slow: the running average soon ranks 1 first
        choice.record("k", 2, 8.0)
    assert choice.seconds[("k", 2)] == pytest.approx(7.125)
    assert choice.choose("k", (1, 2)) == 1


def test_several_slower_candidates_are_re_timed_in_turn():
    choice = FastestChoice(explore_every=2, max_explore_every=2)
    candidates = (("nn.GRU", 2), ("split", 2), ("nn.GRU", 1), ("split", 1))
    seconds = dict(zip(candidates, (4.0, 1.0, 3.0, 2.0), strict=True))
    assert choice.fastest("k", candidates) is None
    chosen = []
    for _ in range(10):
        candidate = choice.choose("k", candidates)
        chosen.append(candidate)
        choice.record("k", candidate, seconds[candidate])
    assert chosen[:4] == list(candidates)
    # After each re-timing the fastest runs once; the slower ones come back in turn, fastest of them first.
    assert chosen[4:] == [("split", 2), ("split", 1), ("split", 2), ("nn.GRU", 1), ("split", 2), ("nn.GRU", 2)]
    assert choice.fastest("k", candidates) == ("split", 2)


def test_timed_records_the_block_and_skips_failed_calls():
    choice = FastestChoice()
    with choice.timed("k", ("a", "b")) as candidate:
        assert candidate == "a"
    assert set(choice.seconds) == {("k", "a")}
    with pytest.raises(RuntimeError), choice.timed("k", ("a", "b")):
        raise RuntimeError("boom")
    assert set(choice.seconds) == {("k", "a")}


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

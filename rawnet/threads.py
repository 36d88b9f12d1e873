"""torch's intra-op thread count: changed for one stretch of work, or chosen for it by timing."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Hashable, Iterator, Sequence

import torch


@contextlib.contextmanager
def intra_op_threads(n_threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (a process-wide setting); ``None`` leaves it alone.

    Used where a model runs hundreds of tiny ops (a GRU step, graph attention): a second thread only adds
    synchronisation there.
    """
    previous = torch.get_num_threads()
    if n_threads is None or n_threads == previous:
        yield
        return
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class ThreadCountTuner:
    """Picks the faster intra-op thread count for a repeated stretch of work by timing the real calls.

    A loop of short multithreaded steps wins on an idle machine and loses badly when another process holds a
    core, because every step then waits for the descheduled thread. Each candidate count is tried once; after
    that the one with the lowest running average is used, and now and then another one is timed again, so that
    a change of load is noticed: after ``explore_every`` calls at first, then after twice as many each time the
    re-timed count stays slower (up to ``max_explore_every``), since every re-timing of a slower count costs
    time. Timings are kept apart by ``key`` (a batch size, say).

    Parameters
    ----------
    explore_every : calls (per key) before the first re-timing, and again after the ranking changes.
    max_explore_every : the longest interval between re-timings.
    """

    def __init__(self, explore_every: int = 8, max_explore_every: int = 128) -> None:
        self.explore_every = explore_every
        self.max_explore_every = max_explore_every
        self.seconds: dict[tuple[Hashable, int], float] = {}
        self._calls: dict[Hashable, int] = {}  # since the last re-timing
        self._interval: dict[Hashable, int] = {}
        self._retimed: dict[Hashable, int] = {}  # count of re-timings, to take the slower counts in turn
        self._pending: dict[Hashable, tuple[int, int]] = {}  # (re-timed count, fastest count) of the current call

    def choose(self, key: Hashable, candidates: Sequence[int]) -> int:
        """The thread count to use for this call (and count the call)."""
        ranked = sorted(set(candidates))
        untimed = [n for n in ranked if (key, n) not in self.seconds]
        if untimed:
            return untimed[0]
        ranked.sort(key=lambda n: self.seconds[(key, n)])
        calls = self._calls[key] = self._calls.get(key, 0) + 1
        if len(ranked) < 2 or calls < self._interval.get(key, self.explore_every):
            return ranked[0]
        self._calls[key] = 0
        turn = self._retimed[key] = self._retimed.get(key, 0) + 1
        other = ranked[1 + (turn - 1) % (len(ranked) - 1)]
        self._pending[key] = (other, ranked[0])
        return other

    def record(self, key: Hashable, n_threads: int, seconds: float) -> None:
        """Fold one measured call into the running average (equal weight to the past and to the new time)."""
        past = self.seconds.get((key, n_threads))
        self.seconds[(key, n_threads)] = seconds if past is None else 0.5 * (past + seconds)
        pending = self._pending.pop(key, None)
        if pending is not None and pending[0] == n_threads:
            fastest = pending[1]
            still_slower = self.seconds[(key, n_threads)] >= self.seconds[(key, fastest)]
            interval = self._interval.get(key, self.explore_every)
            self._interval[key] = min(2 * interval, self.max_explore_every) if still_slower else self.explore_every

    @contextlib.contextmanager
    def timed_threads(self, key: Hashable, candidates: Sequence[int]) -> Iterator[int]:
        """Run the block on the chosen thread count (yielded) and record how long it took; failures are not timed."""
        n_threads = self.choose(key, candidates)
        start = time.perf_counter()
        with intra_op_threads(n_threads):
            yield n_threads
        self.record(key, n_threads, time.perf_counter() - start)

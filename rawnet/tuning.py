"""CPU fast paths chosen by measurement: which implementation of a stretch of work runs, timed on the real calls.

The same network can be computed several ways that agree to float rounding (an FFT or a direct convolution, a
custom GRU recurrence or ``nn.GRU``, one thread or several), and which is fastest depends on the CPU and on what
else it is running: the custom recurrence that halves RawNet2's time on an AMD EPYC loses to ``nn.GRU`` on an Intel
Xeon, and two threads that synchronise at every step lose to one when another process holds a core. So each fast
path names its candidates, the plain torch computation among them, and :class:`FastestChoice` runs the one that has
been fastest so far, re-timing the others now and then. Timings on a shared machine are noisy, so the choice rests
on several timings of each candidate, taken in turn, and ranks them by a low order statistic: one slow or lucky
call never picks a path.

The fast paths only run where they can be measured and where nothing records the computation:
:func:`cpu_inference` is false in training, with autograd on, on a GPU, and while a model is traced, compiled or
exported (TorchScript, ``torch.export``, ONNX), which therefore see the plain, exportable operations.

Since the choice follows timings, two runs may compute a score along different paths, equal to float32 rounding
but not bit for bit (:func:`rawnet.precision.order_tolerance` measures how far apart two float32 evaluations may
lie).
``torch.use_deterministic_algorithms(True)`` turns the measured choices off: every forward then takes one fixed
path, the one training takes.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TypeVar

import torch
from torch import Tensor, nn

Candidate = TypeVar("Candidate", bound=Hashable)


def is_exporting() -> bool:
    """Whether the current forward is being traced, compiled or exported rather than computed."""
    return (
        torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
        or torch.compiler.is_exporting()
    )


def cpu_inference(module: nn.Module, x: Tensor) -> bool:
    """Whether ``module``'s forward on ``x`` may take a measured CPU fast path.

    True for a module in eval mode, autograd off, ``x`` on the CPU, no tracing, compiling or exporting, and
    deterministic algorithms not requested (``torch.use_deterministic_algorithms``).
    """
    if module.training or torch.is_grad_enabled() or x.device.type != "cpu":
        return False
    return not (is_exporting() or torch.are_deterministic_algorithms_enabled())


@contextlib.contextmanager
def fast_paths_off() -> Iterator[None]:
    """Run the block with every measured fast path off: one fixed path, the one training takes, bit for bit the same
    on every call.

    It turns on ``torch.use_deterministic_algorithms`` for the block (process-wide, like that setting itself) and
    restores the previous setting afterwards, also on error.
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=previous[1] if previous[0] else False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


class FastestChoice:
    """Picks, for each key, the fastest of a few candidate implementations by timing the real calls.

    A shared machine adds time to calls at random (another process takes the core, the allocator faults pages in),
    so no single timing decides anything:

    1. Warm-up: every candidate is timed ``rounds`` times, the candidates taken in turn (a, b, a, b, ...) so that a
       change of load falls on all of them alike. A candidate whose every call so far took at least
       ``clear_margin`` times another's fastest call is set aside after one call: more warm-up calls of a path
       three times slower (AASIST's official encoder beside the fused one) would cost a one-file user more than
       the whole answer; a wrong call is undone by the re-timings below.
    2. Ranking: by each candidate's second-fastest time among its last ``window`` calls. Noise only adds time, so
       a low order statistic sees through slow outliers; taking the second-fastest rather than the fastest means
       a candidate ranks first only if two of its recent calls were that fast, so one lucky call cannot pick it.
    3. The first-ranked runs; another is re-timed after ``explore_every`` calls, then after twice as many each time
       it still ranks below (four times as many when it took ``clear_margin`` times the first-ranked's time or
       more; up to ``max_explore_every``), since every re-timing of a slower candidate costs time: a model with
       several measured stretches re-times each on its own, and at batch 1 RawNet2's mean call was 15 % above its
       median while its FFT sinc layer's direct rival (ten times slower) was re-timed as often as the close ones.
       Slower candidates take turns. A re-timing faster than the first-ranked's time is repeated on the next call,
       so that a real change of load is followed at once; when the ranking changes, re-timing starts again from
       ``explore_every``.

    Timings are kept apart by ``key`` (a batch size and input length, say); a key's candidates may differ between
    calls (a thread count that changed), and only those asked about are ranked.

    Parameters
    ----------
    rounds : timings of every candidate before the ranking is trusted.
    window : recent timings kept per candidate; older ones are forgotten, so the ranking follows the load.
    explore_every, max_explore_every : the first and the longest interval, in calls, between re-timings.
    clear_margin : how many times slower than another candidate's fastest call a candidate's fastest call must be
        for it to be set aside in the warm-up; None times every candidate ``rounds`` times.
    clock : seconds for :meth:`timed` (``time.perf_counter``; tests pass a fake).

    Attributes
    ----------
    samples : dict
        ``key`` → candidate → its last ``window`` timings in seconds (oldest first).
    """

    def __init__(
        self,
        rounds: int = 3,
        window: int = 6,
        explore_every: int = 8,
        max_explore_every: int = 128,
        clear_margin: float | None = 2.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.rounds = rounds
        self.window = window
        self.explore_every = explore_every
        self.max_explore_every = max_explore_every
        self.clear_margin = clear_margin
        self.clock = clock
        self.samples: dict[Hashable, dict[Hashable, deque[float]]] = {}
        self._calls: dict[Hashable, int] = {}  # since the last re-timing
        self._interval: dict[Hashable, int] = {}
        self._turn: dict[Hashable, int] = {}  # re-timings so far, so that the slower candidates take turns
        self._leader: dict[Hashable, Hashable] = {}
        self._retiming: dict[Hashable, Hashable] = {}  # the slower candidate the current call re-times
        self._repeat: dict[Hashable, Hashable] = {}  # a re-timed candidate to time again at the next call

    def statistic(self, key: Hashable, candidate: Hashable) -> float:
        """What ``candidate`` is ranked by: its second-fastest recent time (its only one, if timed once)."""
        times = sorted(self.samples[key][candidate])
        return times[min(1, len(times) - 1)]

    def _warming_up(self, key: Hashable, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates that still need warm-up calls: fewer than ``rounds`` timings and not clearly slower."""
        timed = self.samples.get(key, {})
        fastest = {c: min(timed[c]) for c in candidates if timed.get(c)}

        def clearly_slower(c: Candidate) -> bool:
            others = [t for other, t in fastest.items() if other != c]
            return self.clear_margin is not None and c in fastest and bool(others) and (
                fastest[c] >= self.clear_margin * min(others))

        return [c for c in candidates if len(timed.get(c, ())) < self.rounds and not clearly_slower(c)]

    def ranking(self, key: Hashable, candidates: Sequence[Candidate]) -> list[Candidate] | None:
        """``candidates`` fastest first, or None while one of them is still in its warm-up."""
        unique = list(dict.fromkeys(candidates))
        if self._warming_up(key, unique):
            return None
        return sorted(unique, key=lambda c: self.statistic(key, c))  # stable: ties keep the given order

    def fastest(self, key: Hashable, candidates: Sequence[Candidate]) -> Candidate | None:
        """The first-ranked candidate, or None during the warm-up (counts no call)."""
        ranked = self.ranking(key, candidates)
        return None if ranked is None else ranked[0]

    def choose(self, key: Hashable, candidates: Sequence[Candidate]) -> Candidate:
        """The candidate to run for this call (and count the call)."""
        unique = list(dict.fromkeys(candidates))
        ranked = self.ranking(key, unique)
        if ranked is None:  # warm-up: the least-timed candidate still warming up, the first given on ties
            timed = self.samples.get(key, {})
            return min(self._warming_up(key, unique), key=lambda c: len(timed.get(c, ())))
        if len(ranked) == 1:
            return ranked[0]
        if self._leader.get(key, ranked[0]) != ranked[0]:
            self._calls[key], self._interval[key] = 0, self.explore_every
        self._leader[key] = ranked[0]
        repeat = self._repeat.pop(key, None)
        if repeat in ranked[1:]:
            return repeat
        calls = self._calls[key] = self._calls.get(key, 0) + 1
        if calls < self._interval.get(key, self.explore_every):
            return ranked[0]
        self._calls[key] = 0
        turn = self._turn[key] = self._turn.get(key, 0) + 1
        other = ranked[1 + (turn - 1) % (len(ranked) - 1)]
        self._retiming[key] = other
        return other

    def record(self, key: Hashable, candidate: Hashable, seconds: float) -> None:
        """Add one measured call to the candidate's recent timings; judge a re-timing of a slower candidate."""
        times = self.samples.setdefault(key, {}).setdefault(candidate, deque(maxlen=self.window))
        times.append(seconds)
        if self._retiming.get(key) != candidate:
            return
        del self._retiming[key]
        leader = self._leader[key]
        interval = self._interval.get(key, self.explore_every)
        if seconds < self.statistic(key, leader):
            self._repeat[key] = candidate
            self._interval[key] = self.explore_every
        elif self.statistic(key, candidate) >= self.statistic(key, leader):
            far = self.clear_margin is not None and (
                self.statistic(key, candidate) >= self.clear_margin * self.statistic(key, leader))
            self._interval[key] = min((4 if far else 2) * interval, self.max_explore_every)

    @contextlib.contextmanager
    def timed(self, key: Hashable, candidates: Sequence[Candidate]) -> Iterator[Candidate]:
        """Yield the candidate to run and record how long the block took; a block that raises is not timed."""
        candidate = self.choose(key, candidates)
        start = self.clock()
        yield candidate
        self.record(key, candidate, self.clock() - start)

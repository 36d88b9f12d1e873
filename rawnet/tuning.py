"""CPU fast paths chosen by measurement: which implementation of a stretch of work runs, timed on the real calls.

The same network can be computed several ways that agree to float rounding (an FFT or a direct convolution, a
custom GRU recurrence or ``nn.GRU``, one thread or several), and which is fastest depends on the CPU and on what
else it is running: the custom recurrence that halves RawNet2's time on an AMD EPYC loses to ``nn.GRU`` on an Intel
Xeon, and two threads that synchronise at every step lose to one when another process holds a core. So each fast
path names its candidates, the plain torch computation among them, and :class:`FastestChoice` runs the one that has
been fastest so far, re-timing the others now and then.

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
from collections.abc import Hashable, Iterator, Sequence
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

    Each candidate is tried once; after that the one with the lowest running average runs, and now and then
    another one is timed again so that a change of load is noticed: after ``explore_every`` calls at first, then
    after twice as many each time the re-timed candidate stays slower (up to ``max_explore_every``), since every
    re-timing of a slower candidate costs time. Slower candidates are re-timed in turn. Timings are kept apart by
    ``key`` (a batch size and input length, say).

    Parameters
    ----------
    explore_every : calls (per key) before the first re-timing, and again after the ranking changes.
    max_explore_every : the longest interval between re-timings.

    Attributes
    ----------
    seconds : dict
        ``(key, candidate)`` → running average of its measured seconds per call.
    """

    def __init__(self, explore_every: int = 8, max_explore_every: int = 128) -> None:
        self.explore_every = explore_every
        self.max_explore_every = max_explore_every
        self.seconds: dict[tuple[Hashable, Hashable], float] = {}
        self._calls: dict[Hashable, int] = {}  # since the last re-timing
        self._interval: dict[Hashable, int] = {}
        self._retimed: dict[Hashable, int] = {}  # count of re-timings, to take the slower candidates in turn
        self._pending: dict[Hashable, tuple[Hashable, Hashable]] = {}  # (re-timed, fastest) of the current call

    def choose(self, key: Hashable, candidates: Sequence[Candidate]) -> Candidate:
        """The candidate to run for this call (and count the call); untimed candidates first, in the given order."""
        ranked = list(dict.fromkeys(candidates))
        untimed = [c for c in ranked if (key, c) not in self.seconds]
        if untimed:
            return untimed[0]
        ranked.sort(key=lambda c: self.seconds[(key, c)])
        calls = self._calls[key] = self._calls.get(key, 0) + 1
        if len(ranked) < 2 or calls < self._interval.get(key, self.explore_every):
            return ranked[0]
        self._calls[key] = 0
        turn = self._retimed[key] = self._retimed.get(key, 0) + 1
        other = ranked[1 + (turn - 1) % (len(ranked) - 1)]
        self._pending[key] = (other, ranked[0])
        return other

    def record(self, key: Hashable, candidate: Hashable, seconds: float) -> None:
        """Fold one measured call into the running average (equal weight to the past and to the new time)."""
        past = self.seconds.get((key, candidate))
        self.seconds[(key, candidate)] = seconds if past is None else 0.5 * (past + seconds)
        pending = self._pending.pop(key, None)
        if pending is not None and pending[0] == candidate:
            still_slower = self.seconds[(key, candidate)] >= self.seconds[(key, pending[1])]
            interval = self._interval.get(key, self.explore_every)
            self._interval[key] = min(2 * interval, self.max_explore_every) if still_slower else self.explore_every

    def fastest(self, key: Hashable, candidates: Sequence[Candidate]) -> Candidate | None:
        """The candidate with the lowest average so far, or None while one of them is untimed (counts nothing)."""
        if any((key, c) not in self.seconds for c in candidates):
            return None
        return min(candidates, key=lambda c: self.seconds[(key, c)])

    @contextlib.contextmanager
    def timed(self, key: Hashable, candidates: Sequence[Candidate]) -> Iterator[Candidate]:
        """Yield the candidate to run and record how long the block took; a block that raises is not timed."""
        candidate = self.choose(key, candidates)
        start = time.perf_counter()
        yield candidate
        self.record(key, candidate, time.perf_counter() - start)

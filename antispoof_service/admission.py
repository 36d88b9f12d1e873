"""Bounded inference: a fixed number of slots, a bounded queue of requests waiting for one, and 503 beyond it.

Scoring runs in exactly as many threads as slots, so the event loop only ever awaits; a request holds its place in
the queue from the moment it is admitted (before its upload is read, so that a flood is refused before it costs
disk) until it gets a slot. The threads take jobs from a queue and hand each outcome back with one
``call_soon_threadsafe``: half the Python of ``run_in_executor``'s future chaining, which on 2 cores was 40 µs of a
request's round trip to a thread (measured: 44 µs vs 90 µs for a no-op).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

from .errors import ServiceError, overloaded

T = TypeVar("T")


class Admission:
    """``slots`` concurrent inferences and at most ``queue`` requests waiting for one.

    Use :meth:`admit` around a whole request and :meth:`run` for its inference. ``waiting`` and ``running`` are
    read by the metrics.
    """

    def __init__(self, slots: int, queue: int, retry_after_s: int = 1):
        self.slots, self.queue, self.retry_after_s = slots, queue, retry_after_s
        self.waiting = self.running = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._jobs: SimpleQueue[_Job | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def _started(self) -> asyncio.Semaphore:
        # Made on first use, inside the server's event loop (a semaphore binds to the loop that first waits on it).
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.slots)
            self._threads = [threading.Thread(target=self._serve, name=f"antispoof-score-{n}", daemon=True)
                             for n in range(self.slots)]
            for thread in self._threads:
                thread.start()
        return self._semaphore

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """A place in the queue for the duration of a request; 503 (:func:`~antispoof_service.errors.overloaded`)
        when the slots are busy and the queue is full."""
        if self.waiting + self.running >= self.slots + self.queue:
            raise overloaded(self.retry_after_s, f"all {self.slots} scoring slots are busy and {self.waiting} "
                                                 f"request(s) are waiting (--queue {self.queue}); retry later")
        self.waiting += 1
        try:
            yield
        finally:
            self.waiting -= 1

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` in a slot's thread, once one is free (the caller must be inside :meth:`admit`)."""
        async with self._started():
            if self._closed:
                raise ServiceError(503, "shutting-down", "the service is shutting down; retry shortly",
                                   {"Retry-After": str(self.retry_after_s)})
            self.waiting -= 1
            self.running += 1
            try:
                loop = asyncio.get_running_loop()
                outcome: asyncio.Future[T] = loop.create_future()
                self._jobs.put(_Job(loop, outcome, function, args))
                return await outcome
            finally:
                self.running -= 1
                self.waiting += 1

    def _serve(self) -> None:
        """A slot's thread: run jobs until :meth:`close` sends ``None``."""
        while (job := self._jobs.get()) is not None:
            job.run()
            del job  # hold nothing of a finished request while idle

    def close(self) -> None:
        """Let the running jobs finish and stop the threads; jobs not started are cancelled, and requests still
        waiting for a slot get 503."""
        self._closed = True
        with contextlib.suppress(Empty):
            while (job := self._jobs.get_nowait()) is not None:
                job.hand_back(None, cancelled=True)
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []


class _Job:
    """``function(*args)`` for a request awaiting ``outcome`` on ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, outcome: asyncio.Future[Any],
                 function: Callable[..., Any], args: tuple[object, ...]):
        self.loop, self.outcome, self.function, self.args = loop, outcome, function, args

    def run(self) -> None:
        try:
            value = self.function(*self.args)
        except BaseException as exc:  # noqa: BLE001 (raised again in the awaiting request)
            self.hand_back(exc, failed=True)
        else:
            self.hand_back(value)

    def hand_back(self, value: Any, failed: bool = False, cancelled: bool = False) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody awaits any more
            self.loop.call_soon_threadsafe(_settle, self.outcome, value, failed, cancelled)


def _settle(outcome: asyncio.Future[Any], value: Any, failed: bool, cancelled: bool) -> None:
    if outcome.done():  # the request was cancelled meanwhile
        return
    if cancelled:
        outcome.cancel()
    elif failed:
        outcome.set_exception(value)
    else:
        outcome.set_result(value)

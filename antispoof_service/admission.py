"""Bounded inference: a fixed number of slots, a bounded queue of requests waiting for one, and 503 beyond it.

Scoring runs in a thread pool of exactly as many threads as slots, so the event loop only ever awaits; a request
holds its place in the queue from the moment it is admitted (before its upload is read, so that a flood is refused
before it costs disk) until it gets a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .errors import overloaded

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
        self._executor: ThreadPoolExecutor | None = None

    def _started(self) -> tuple[asyncio.Semaphore, ThreadPoolExecutor]:
        # Made on first use, inside the server's event loop (a semaphore binds to the loop that first waits on it).
        if self._semaphore is None or self._executor is None:
            self._semaphore = asyncio.Semaphore(self.slots)
            self._executor = ThreadPoolExecutor(self.slots, thread_name_prefix="antispoof-score")
        return self._semaphore, self._executor

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
        semaphore, executor = self._started()
        async with semaphore:
            self.waiting -= 1
            self.running += 1
            try:
                return await asyncio.get_running_loop().run_in_executor(executor, function, *args)
            finally:
                self.running -= 1
                self.waiting += 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

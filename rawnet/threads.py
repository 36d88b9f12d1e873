"""torch's intra-op thread count, changed for one stretch of work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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

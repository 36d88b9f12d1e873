"""torch's intra-op thread count, changed for one stretch of work and then restored."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def intra_op_threads(n_threads: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for the ``with`` block, then restore the previous count.

    The previous count comes back when the block ends, also when it raises. ``None``, or the count already in
    force, changes nothing. This is the only place where the toolkit changes the count: the models do it inside
    their forward only where a measured fast path runs on fewer threads (a GRU step, the graph attention: hundreds
    of tiny ops where a second thread only adds synchronisation), and say so in their docstrings.

    torch's count is a process-wide setting (a thread started meanwhile inherits it), so do not enter this from
    several Python threads at once; models used that way should be built with their thread options off.
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

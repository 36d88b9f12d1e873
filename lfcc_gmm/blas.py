"""BLAS on one thread for the small matrix products of one file."""

from __future__ import annotations

import functools
from typing import Any

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    # Listing the loaded libraries reads the process's memory map: ~2 ms in a process with torch loaded, a quarter of
    # an LFCC-GMM request's scoring when done per call (as threadpoolctl.threadpool_limits does). Once per process.
    return ThreadpoolController()


def single_blas_thread() -> Any:
    """A context manager in which BLAS runs on one thread, and which restores the previous counts on exit.

    One file's products are small (hundreds of frames): a second BLAS thread only adds wake-ups, and on a busy
    machine it made them several times slower; parallelism comes from scoring files in separate processes.
    """
    return _controller().limit(limits=1, user_api="blas")

"""One BLAS thread for one file's small products, restored afterwards."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_info

from lfcc_gmm.blas import single_blas_thread


def _blas_threads() -> list[tuple[str, int]]:
    return [(info["filepath"], info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas"]


def test_single_blas_thread_limits_every_blas_library_and_restores_it():
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS is loaded
    before = _blas_threads()
    assert before, "numpy's BLAS library is not visible to threadpoolctl"
    with single_blas_thread():
        assert {threads for _, threads in _blas_threads()} == {1}
        with single_blas_thread():  # nested, as the batch runner and a scorer may
            pass
        assert {threads for _, threads in _blas_threads()} == {1}
    assert _blas_threads() == before

"""How far apart two float32 evaluations of a network may lie: the tolerance of the export check and the tests.

Two evaluations of the same network that sum in other orders (batches, threads, BLAS kernels, a measured fast path
of :mod:`rawnet.tuning`, ONNX Runtime's kernels) round differently. A worst-case bound for a deep network is orders
of magnitude looser than any useful check, so :func:`order_tolerance` measures instead: the rounding error of one
float32 evaluation against a float64 copy of the model on the same inputs, times :data:`ORDER_FACTOR`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

#: How many times one float32 evaluation's measured rounding error two evaluations may differ by: their difference
#: is at most the sum of their two errors, and the largest error of a few outputs varies between orders by a factor
#: of a few.
ORDER_FACTOR = 16
#: Float32 machine epsilons (2**-23) of the largest output: the floor, for outputs a float64 copy happens to match.
FLOOR_EPSILONS = 4


def order_tolerance(
    model: nn.Module, inputs: Tensor, call: Callable[[nn.Module, Tensor], Tensor] | None = None
) -> float:
    """Tolerance for two float32 evaluations of ``call(model, inputs)`` (default ``model(inputs)``) that sum in
    other orders.

    :data:`ORDER_FACTOR` times the largest rounding error of this evaluation, measured against a float64 copy of
    the model on the same inputs, and at least :data:`FLOOR_EPSILONS` float32 epsilons of the largest output. An a
    posteriori estimate: the measurement runs on the kernels of the machine at hand, so the tolerance follows them.

    Parameters
    ----------
    model : a float32 module (not changed; use eval mode for inference outputs).
    inputs : the inputs, cast to float32 and float64.
    call : what to evaluate, e.g. ``lambda m, x: m.encode(x)``.
    """
    call = call or (lambda module, x: module(x))
    with torch.no_grad():
        single = call(model, inputs.float()).double()
        exact = call(copy.deepcopy(model).double(), inputs.double())
    error = float((single - exact).abs().max())
    epsilon = float(torch.finfo(torch.float32).eps)
    return max(ORDER_FACTOR * error, FLOOR_EPSILONS * epsilon * float(exact.abs().max()))

"""GRU inference with a thread-split recurrent product."""

from __future__ import annotations

import pytest
import torch

from rawnet.gru import KeptLayers, gru_last_output, gru_layers
from rawnet.precision import order_tolerance


def _last_output(gru: torch.nn.GRU, x: torch.Tensor) -> torch.Tensor:
    return gru(x)[0][:, -1]


def _gru(input_size: int = 5, hidden: int = 7, layers: int = 3) -> torch.nn.GRU:
    torch.manual_seed(0)
    gru = torch.nn.GRU(input_size, hidden, num_layers=layers, batch_first=True).eval()
    with torch.no_grad():
        for parameter in gru.parameters():  # larger than the default init, so the gates do not all sit near 0.5
            parameter.mul_(3)
    return gru


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("n_parts", [1, 2, 3, 7, 50])
def test_last_output_equals_nn_gru(batch, n_parts):
    gru = _gru()
    x = torch.randn(batch, 11, 5)
    with torch.no_grad():
        expected = gru(x)[0][:, -1]
        got = gru_last_output(x, gru_layers(gru), n_parts)
    # nn.GRU's gate equations summed in another order (parts, fused steps).
    torch.testing.assert_close(got, expected, rtol=0, atol=order_tolerance(gru, x, _last_output))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("batch", [1, 3])
def test_autocast_runs_the_recurrence_in_the_weights_precision(dtype, batch):
    # Under autocast the input comes in a lower precision (as from RawNet2's convolutions); the batch-1 embedding
    # bag once refused it. The result is the float32 GRU of the input cast back, as if autocast were off.
    gru = _gru()
    x = torch.randn(batch, 11, 5).to(dtype)
    layers = gru_layers(gru)
    with torch.no_grad():
        expected = gru(x.float())[0][:, -1]
        with torch.autocast("cpu", dtype=dtype):
            got = gru_last_output(x, layers, n_parts=2)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=0, atol=order_tolerance(gru, x.float(), _last_output))


def test_float64_and_a_single_step():
    gru = _gru().double()
    x = torch.randn(1, 1, 5, dtype=torch.float64)
    with torch.no_grad():
        # One step: gates from sums of at most 5 + 7 terms of size <= 3 (weights x3), sigmoid and tanh: their
        # float64 rounding is a few 1e-15 in either order, 1e-12 allows a thousand times that.
        torch.testing.assert_close(gru_last_output(x, gru_layers(gru)), gru(x)[0][:, -1], rtol=0, atol=1e-12)


def test_one_or_two_threads_agree():
    gru = _gru(64, 256, 2)
    x = torch.randn(1, 9, 64)
    layers = gru_layers(gru)
    previous = torch.get_num_threads()
    try:
        with torch.no_grad():
            torch.set_num_threads(1)
            one = gru_last_output(x, layers, n_parts=2)
            torch.set_num_threads(2)
            two = gru_last_output(x, layers, n_parts=2)
    finally:
        torch.set_num_threads(previous)
    # The parts are fixed (n_parts=2), so the sums group alike; another thread count may still pick other kernels.
    torch.testing.assert_close(one, two, rtol=0, atol=order_tolerance(gru, x, _last_output))


def test_unsupported_grus_and_inputs_are_refused():
    for gru in (
        torch.nn.GRU(4, 4, bidirectional=True, batch_first=True),
        torch.nn.GRU(4, 4, bias=False, batch_first=True),
        torch.nn.GRU(4, 4),
    ):
        with pytest.raises(ValueError, match="unidirectional, batch-first"):
            gru_layers(gru)
    layers = gru_layers(_gru())
    with pytest.raises(ValueError, match=r"\(batch, time >= 1, features\)"):
        gru_last_output(torch.zeros(1, 0, 5), layers)
    with pytest.raises(ValueError, match=r"\(batch, time >= 1, features\)"):
        gru_last_output(torch.zeros(10, 5), layers)


def test_packed_recurrent_product_at_batch_above_one():
    gru = _gru(16, 48, 2)
    x = torch.randn(4, 9, 16)
    layers = gru_layers(gru)
    if not torch.backends.mkldnn.is_available():
        assert all(layer.weight_hh_packed is None for layer in layers)
        return
    assert all(layer.weight_hh_packed is not None for layer in layers)
    unpacked = [layer._replace(weight_hh_packed=None) for layer in layers]
    with torch.no_grad():
        packed, plain, expected = gru_last_output(x, layers), gru_last_output(x, unpacked), gru(x)[0][:, -1]
    tolerance = order_tolerance(gru, x, _last_output)
    torch.testing.assert_close(packed, expected, rtol=0, atol=tolerance)
    torch.testing.assert_close(plain, expected, rtol=0, atol=tolerance)
    # float64 weights are never packed (oneDNN's product is float32): the matrix product runs instead.
    assert all(layer.weight_hh_packed is None for layer in gru_layers(_gru(16, 48, 2).double()))


def test_kept_layers_follow_the_weights_and_are_not_copied():
    import copy
    import io
    import pickle

    gru = _gru(16, 48, 2)
    kept = KeptLayers()
    first = kept.of(gru)
    assert kept.of(gru) is first  # same weights: kept
    with torch.no_grad():
        gru.weight_hh_l0.mul_(0.5)  # in place: a new version
    second = kept.of(gru)
    assert second is not first and torch.equal(second[0].weight_hh_t, gru.weight_hh_l0.t())
    # oneDNN's packed tensors can be neither copied nor pickled: a copy starts empty and lays them out again.
    holder = torch.nn.Module()
    holder.kept = kept
    twin = copy.deepcopy(holder)
    assert twin.kept is not kept and twin.kept._layers is None
    assert pickle.loads(pickle.dumps(kept))._layers is None
    torch.save(holder, io.BytesIO())

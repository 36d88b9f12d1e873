"""rawnet.attribution: integrated gradients and Grad-CAM against their definitions.

The completeness tests use a one-hidden-layer tanh network, f(x) = Σ_j a_j tanh(w_j·x + c_j), whose path integrand
is known in closed form, so the quadrature error has a proven bound rather than a tolerance read off one run:
along x' + α d, g(α) = Σ_j a_j v_j sech²(u_j + α v_j) with u_j = w_j·x' + c_j, v_j = w_j·d, and since
|d²/du² sech² u| ≤ 2, |g''| ≤ 2 Σ_j |a_j| |v_j|³. The midpoint rule with m steps errs by at most max|g''| / (24 m²),
the trapezoid rule by max|g''| / (12 m²).

Rounding: every term summed on the way (the gradient's products a_j sech² w_ji d_i, the outputs' a_j tanh) is at
most S = Σ_ij |a_j w_ji d_i| + Σ_j |a_j| in absolute value, and the longest chain of additions has
N = n + H + steps terms, so float arithmetic adds at most N·u·S (u: the unit roundoff) times a small constant for
the tanh/sech² evaluations, each correct to a few ulps: we allow 4·N·u·S.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rawnet.aasist import AASIST, CONFIGS
from rawnet.attribution import Attribution, grad_cam, integrated_gradients, path_quadrature, sinc_layer, sum_frames
from rawnet.rawnet2 import RawNet2

N_INPUTS, N_HIDDEN = 256, 16


class TanhNet(nn.Module):
    """(batch, n) → (batch, 2): [0, Σ_j a_j tanh(w_j·x + c_j)], optionally on a function of the input."""

    def __init__(self, n_inputs: int = N_INPUTS, n_hidden: int = N_HIDDEN, seed: int = 0, view=None):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.hidden = nn.Linear(n_inputs, n_hidden).double()
        with torch.no_grad():
            self.hidden.weight.copy_(torch.randn(n_hidden, n_inputs, generator=g, dtype=torch.float64) / 16)
            self.hidden.bias.copy_(torch.randn(n_hidden, generator=g, dtype=torch.float64))
        self.a = nn.Parameter(torch.randn(n_hidden, generator=g, dtype=torch.float64))
        self.view = view
        self.dropout = nn.Dropout(0.5)  # acts only in training mode: attributions must not see it

    def forward(self, x):
        if self.view is not None:
            x = self.view(x)
        f = torch.tanh(self.hidden(self.dropout(x))) @ self.a
        return torch.stack([torch.zeros_like(f), f], dim=1)


def _numpy(net: TanhNet):
    return (net.hidden.weight.detach().numpy(), net.hidden.bias.detach().numpy(), net.a.detach().numpy())


def _tolerance(net: TanhNet, x: np.ndarray, x0: np.ndarray, steps: int, rule: str, unit_roundoff: float) -> tuple:
    w, c, a = _numpy(net)
    v = w @ (x - x0)
    quadrature = 2 * np.sum(np.abs(a) * np.abs(v) ** 3) / ((24 if rule == "midpoint" else 12) * steps**2)
    scale = np.sum(np.abs(a)[:, None] * np.abs(w) * np.abs(x - x0)[None, :]) + np.sum(np.abs(a))
    rounding = 4 * (x.size + a.size + steps) * unit_roundoff * scale
    return quadrature, rounding


def _f(net: TanhNet, x: np.ndarray) -> float:
    w, c, a = _numpy(net)
    return float(a @ np.tanh(w @ x + c))


@pytest.fixture
def clip():
    rng = np.random.default_rng(1)
    return rng.standard_normal(N_INPUTS), 0.1 * rng.standard_normal(N_INPUTS)


@pytest.mark.parametrize("rule", ["midpoint", "trapezoid"])
@pytest.mark.parametrize("steps", [16, 64])
def test_completeness_within_the_quadrature_bound_float64(clip, rule, steps):
    net = TanhNet()
    x, x0 = clip
    result = integrated_gradients(net, x, x0, steps=steps, rule=rule, batch_size=5)
    quadrature, rounding = _tolerance(net, x, x0, steps, rule, np.finfo(np.float64).eps / 2)
    difference = _f(net, x) - _f(net, x0)
    # The bound is a useful one (a small fraction of what is being explained), not a vacuous one.
    assert quadrature < 0.05 * abs(difference)
    assert result.output == pytest.approx(_f(net, x), abs=rounding)
    assert result.baseline_output == pytest.approx(_f(net, x0), abs=rounding)
    assert abs(result.values.sum() - difference) <= quadrature + rounding
    assert abs(result.completeness_gap) <= quadrature + 2 * rounding


def test_completeness_float32(clip):
    net = TanhNet().float()
    x, x0 = clip
    x32, x032 = x.astype(np.float32), x0.astype(np.float32)
    steps = 32
    result = integrated_gradients(net, x32, x032, steps=steps)
    net64 = TanhNet()  # the same parameters, rounded to float32 and back, so the exact reference matches
    net64.load_state_dict({k: v.double() for k, v in net.state_dict().items()})
    quadrature, rounding = _tolerance(net64, x32.astype(np.float64), x032.astype(np.float64), steps, "midpoint",
                                      np.finfo(np.float32).eps / 2)
    difference = _f(net64, x32.astype(np.float64)) - _f(net64, x032.astype(np.float64))
    assert abs(result.values.sum() - difference) <= quadrature + rounding


def test_gap_shrinks_as_one_over_steps_squared(clip):
    # For a smooth integrand the midpoint error is c/m² + O(1/m⁴): quadrupling m divides it by about 16.
    net = TanhNet()
    x, x0 = clip
    coarse = integrated_gradients(net, x, x0, steps=4).completeness_gap
    fine = integrated_gradients(net, x, x0, steps=16).completeness_gap
    assert abs(coarse) > 1e-6
    assert 10 < coarse / fine < 22


def test_linear_model_is_exact_with_one_step():
    rng = np.random.default_rng(2)
    weight = rng.standard_normal(100)
    linear = nn.Linear(100, 2).double()
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.stack([np.zeros(100), weight])))
        linear.bias.copy_(torch.tensor([0.0, 0.7]))
    x, x0 = rng.standard_normal(100), rng.standard_normal(100)
    u = np.finfo(np.float64).eps / 2
    for steps, rule in ((1, "midpoint"), (3, "trapezoid")):
        result = integrated_gradients(linear, x, x0, steps=steps, rule=rule)
        expected = weight * (x - x0)
        # The gradient is the weight exactly; only the weights' sum (1 up to steps·u) and two products round.
        np.testing.assert_allclose(result.values, expected, rtol=(steps + 3) * u, atol=0)
        assert abs(result.completeness_gap) <= 4 * 100 * u * np.sum(np.abs(expected) + np.abs(weight * x0))


def test_ignored_inputs_get_exactly_zero(clip):
    half = N_INPUTS // 2
    net = TanhNet(n_inputs=half, view=lambda x: x[:, :half])
    x, x0 = clip
    values = integrated_gradients(net, x, x0, steps=8).values
    assert np.all(values[half:] == 0)
    assert np.all(values[:half] != 0)


def test_symmetric_inputs_get_equal_attributions():
    # f depends on x_i + x_{i+h} only: swapping the halves changes nothing, so equal halves share equally.
    half = N_INPUTS // 2
    net = TanhNet(n_inputs=half, view=lambda x: x[:, :half] + x[:, half:])
    rng = np.random.default_rng(3)
    x = np.tile(rng.standard_normal(half), 2)
    values = integrated_gradients(net, x, steps=8).values
    np.testing.assert_array_equal(values[:half], values[half:])


def test_deterministic_and_in_eval_mode_whatever_the_model_mode(clip):
    net = TanhNet()
    x, x0 = clip
    net.train()
    first = integrated_gradients(net, x, x0, steps=6, batch_size=4)
    second = integrated_gradients(net, x, x0, steps=6, batch_size=4)
    assert net.training and net.dropout.training  # the caller's mode is restored
    np.testing.assert_array_equal(first.values, second.values)
    net.eval()
    np.testing.assert_array_equal(integrated_gradients(net, x, x0, steps=6, batch_size=4).values, first.values)
    assert all(p.grad is None for p in net.parameters())  # parameter gradients are left untouched


def test_quadrature_weights():
    points, weights = path_quadrature(4, "midpoint")
    np.testing.assert_array_equal(points, [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_array_equal(weights, [0.25] * 4)
    points, weights = path_quadrature(4, "trapezoid")
    np.testing.assert_array_equal(points, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(weights, [0.125, 0.25, 0.25, 0.25, 0.125])


def _small_rawnet2() -> RawNet2:
    torch.manual_seed(0)
    config = {"nb_samp": 1000, "first_conv": 33, "in_channels": 1, "filts": [4, [4, 4], [4, 8], [8, 8]],
              "blocks": [1, 1], "nb_fc_node": 8, "gru_node": 8, "nb_gru_layer": 1, "nb_classes": 2}
    return RawNet2(config, variant="icassp2021").double()


def _consistent(model, signal, steps=8):
    """Waveform IG and sinc-layer IG: the same path, so the same total at every step (up to rounding)."""
    on_input = integrated_gradients(model, signal, steps=steps)
    on_layer = integrated_gradients(model, signal, steps=steps, layer=sinc_layer(model))
    sinc = sinc_layer(model)
    assert on_input.values.shape == signal.shape
    assert on_layer.values.shape == (sinc.out_channels, signal.size - sinc.kernel_size + 1)
    assert on_layer.output == on_input.output and on_layer.baseline_output == on_input.baseline_output
    # The sinc output along the path is computed two ways (filter the interpolated waveform, or interpolate the
    # filtered ends): they differ by K·u relative, and so do the gradients' sums; allow 100·(K + samples)·u.
    scale = np.sum(np.abs(on_input.values)) + np.sum(np.abs(on_layer.values))
    unit_roundoff = torch.finfo(sinc.filters.dtype).eps / 2
    tolerance = 100 * (sinc.kernel_size + signal.size) * unit_roundoff * scale
    assert abs(on_input.values.sum() - on_layer.values.sum()) <= tolerance
    return on_input, on_layer


def test_rawnet2_waveform_and_band_attributions_agree():
    model = _small_rawnet2()
    signal = np.random.default_rng(4).standard_normal(1000) * 0.1
    _, on_layer = _consistent(model, signal)
    assert np.all(np.isfinite(on_layer.values))


@pytest.mark.slow  # AASIST-L with autograd: a few seconds
def test_aasist_waveform_and_band_attributions_agree():
    torch.manual_seed(0)
    model = AASIST(CONFIGS["AASIST-L"])  # float32: the double-precision convolutions are many times slower
    signal = np.random.default_rng(5).standard_normal(2500) * 0.1
    _consistent(model, signal, steps=2)
    cam = grad_cam(model, signal, model.encoder)
    assert cam.shape[0] == CONFIGS["AASIST-L"]["filts"][0] // 3  # one row per group of three sinc bands
    assert np.all(cam >= 0)


class ConvMean(nn.Module):
    """x → conv (C channels) → mean over time → v · means, so ∂y/∂A[c, t] = v_c / T."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(6)
        self.conv = nn.Conv1d(1, 3, 5).double()
        self.v = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def forward(self, x):
        y = self.conv(x[:, None]).mean(dim=2) @ self.v
        return torch.stack([-y, y], dim=1)


def test_grad_cam_matches_its_definition():
    model = ConvMean()
    signal = np.random.default_rng(7).standard_normal(40)
    with torch.no_grad():
        activations = model.conv(torch.from_numpy(signal)[None, None])[0].numpy()
    steps = activations.shape[1]
    expected = np.maximum(model.v.numpy() @ activations / steps, 0)
    np.testing.assert_allclose(grad_cam(model, signal, model.conv), expected, rtol=1e-12, atol=1e-15)
    # The other class has the opposite weights, so the opposite map before the ReLU.
    other = grad_cam(model, signal, model.conv, target=0)
    np.testing.assert_allclose(other, np.maximum(-model.v.numpy() @ activations / steps, 0), rtol=1e-12, atol=1e-15)


def test_sum_frames_keeps_the_total():
    values = np.arange(23.0).reshape(1, 23)
    framed = sum_frames(values, 5)
    np.testing.assert_array_equal(framed, [[10, 35, 60, 85, 63]])
    assert framed.sum() == values.sum()


def test_errors_name_the_problem():
    net = TanhNet()
    x = np.zeros(N_INPUTS)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        integrated_gradients(net, x, steps=0)
    with pytest.raises(ValueError, match="unknown quadrature rule 'simpson'"):
        integrated_gradients(net, x, rule="simpson")
    with pytest.raises(ValueError, match="baseline has 3 samples, the signal 256"):
        integrated_gradients(net, x, np.zeros(3))
    with pytest.raises(ValueError, match="must be one 1-D waveform"):
        integrated_gradients(net, np.zeros((2, N_INPUTS)))
    with pytest.raises(ValueError, match="target 2 is not one of its classes"):
        integrated_gradients(net, x, target=2)
    with pytest.raises(ValueError, match="has no SincConv front end"):
        sinc_layer(net)
    with pytest.raises(ValueError, match="needs a layer output"):
        grad_cam(net, x, net.hidden)
    unused = nn.Linear(2, 2)
    net.unused = unused
    with pytest.raises(ValueError, match="ran 0 times"):
        integrated_gradients(net, x, layer=unused)


def test_attribution_gap_property():
    result = Attribution(np.array([1.0, 2.0]), output=5.0, baseline_output=1.5, steps=1, rule="midpoint")
    assert result.completeness_gap == -0.5

"""Why did the model say spoof? Gradient attributions for the raw-waveform models (RawNet2, AASIST, any model
mapping float (batch, samples) to (batch, classes)).

- :func:`integrated_gradients` (Sundararajan et al., ICML 2017) over the waveform, or over the output of any layer
  (``layer=``): with the sinc front end (:func:`sinc_layer`) the attribution is a (sinc band, time) map, because the
  front end is linear, so a straight path between two waveforms is a straight path between their filter outputs.
  Either way the attributions add up to ``f(x) - f(baseline)`` up to the quadrature error of the path integral
  (``Attribution.completeness_gap`` reports it).
- :func:`grad_cam` (Selvaraju et al., ICCV 2017) over the time (and, for AASIST, frequency) axes of a
  convolutional stage: one forward and backward pass, where integrated gradients needs ``steps`` of them.
- :func:`sum_frames` adds attributions over blocks of time steps, keeping their total.

Every function evaluates the model in eval mode (the mode that scores) and restores the mode it found.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from rawnet.sinc import SincConv

#: Quadrature rules for the path integral: ``"midpoint"`` (steps evaluations at (k + 1/2) / steps) and
#: ``"trapezoid"`` (steps + 1 evaluations at k / steps, the end points weighted 1/2).
RULES = ("midpoint", "trapezoid")


@dataclass(frozen=True)
class Attribution:
    """Integrated gradients of one input.

    Attributes
    ----------
    values : float64, the attributed tensor's shape without the batch axis: (samples,) for the waveform,
        (n_filters, samples - kernel_size + 1) for a sinc front end.
    output, baseline_output : the explained output at the input and at the baseline.
    steps : gradient evaluations along the path (``steps + 1`` for the trapezoid rule).
    rule : the quadrature rule, one of :data:`RULES`.
    """

    values: np.ndarray
    output: float
    baseline_output: float
    steps: int
    rule: str

    @property
    def completeness_gap(self) -> float:
        """``values.sum() - (output - baseline_output)``: zero for the exact integral; the quadrature error."""
        return float(self.values.sum() - (self.output - self.baseline_output))


def path_quadrature(steps: int, rule: str = "midpoint") -> tuple[np.ndarray, np.ndarray]:
    """Points in [0, 1] and weights of the quadrature of ``∫₀¹ g(α) dα`` (the weights sum to 1).

    The error is at most ``max|g''| / (24 steps²)`` for the midpoint rule and ``max|g''| / (12 steps²)`` for the
    trapezoid rule when ``g`` is twice differentiable; through ReLUs, max-pooling and ``abs`` the integrand jumps and
    only more steps help.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if rule == "midpoint":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    if rule == "trapezoid":
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2
        return np.arange(steps + 1) / steps, weights
    raise ValueError(f"unknown quadrature rule {rule!r}; expected one of {RULES}")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def _layer_output(layer: nn.Module, replace: Tensor | None = None) -> Iterator[list[Tensor]]:
    """Record the output of every call of ``layer`` (replaced by ``replace`` when given)."""
    seen: list[Tensor] = []

    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor | None:
        if not isinstance(output, Tensor):
            raise TypeError(f"{type(module).__name__} returns {type(output).__name__}; a layer to attribute to "
                            "must return one tensor")
        if replace is not None:
            if replace.shape != output.shape:
                raise ValueError(f"the layer output has shape {tuple(output.shape)}, expected {tuple(replace.shape)}")
            output = replace
        seen.append(output)
        return output

    handle = layer.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _only_output(seen: list[Tensor], layer: nn.Module) -> Tensor:
    if len(seen) != 1:
        raise ValueError(f"the layer {type(layer).__name__} ran {len(seen)} times in one forward pass; "
                         "attribution needs a layer that runs exactly once")
    return seen[0]


def _as_input(signal: np.ndarray | Tensor, like: Tensor, what: str) -> Tensor:
    x = torch.as_tensor(signal).detach().to(dtype=like.dtype, device=like.device)
    if x.dim() != 1:
        raise ValueError(f"{what} must be one 1-D waveform, got shape {tuple(x.shape)}")
    return x


def _reference_tensor(model: nn.Module) -> Tensor:
    """A tensor with the model's floating dtype and device."""
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor
    return torch.empty(0)


def _target_output(model: nn.Module, x: Tensor, target: int) -> Tensor:
    out = model(x)
    if out.dim() != 2 or not 0 <= target < out.shape[1]:
        raise ValueError(f"the model returns shape {tuple(out.shape)}; target {target} is not one of its classes")
    return out[:, target]


def integrated_gradients(
    model: nn.Module,
    signal: np.ndarray | Tensor,
    baseline: np.ndarray | Tensor | None = None,
    *,
    target: int = 1,
    steps: int = 32,
    rule: str = "midpoint",
    batch_size: int = 8,
    layer: nn.Module | None = None,
) -> Attribution:
    """Integrated gradients of output ``target`` of ``model`` for one waveform.

    ``values[i] = (x_i - x'_i) · ∫₀¹ ∂f/∂x_i(x' + α (x - x')) dα`` with ``f`` the model's output ``target``,
    ``x`` the input and ``x'`` the baseline; the integral is a quadrature of ``steps`` gradients
    (:func:`path_quadrature`). With ``layer``, ``x`` and ``x'`` are that layer's outputs for the two waveforms
    and the path runs between them (the layer's output is replaced along the path), so the values have the
    layer's output shape.

    Parameters
    ----------
    model : maps (batch, samples) to (batch, classes); evaluated in eval mode, with its dtype and device.
    signal : the waveform, 1-D (e.g. the ``nb_samp`` samples a scorer feeds the model).
    baseline : the reference waveform, same length; default silence (zeros).
    target : the output explained; 1 (bona fide) is the score of the toolkit's scorers.
    steps : points of the quadrature; the completeness gap shrinks as 1/steps² for smooth models.
    rule : ``"midpoint"`` or ``"trapezoid"``.
    batch_size : path points per forward/backward pass (memory grows with it).
    layer : a submodule of ``model`` that runs once per forward pass and returns one tensor, e.g.
        :func:`sinc_layer` of the model.

    Returns
    -------
    Attribution
    """
    alphas, weights = path_quadrature(steps, rule)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    reference = _reference_tensor(model)
    x = _as_input(signal, reference, "signal")
    x0 = torch.zeros_like(x) if baseline is None else _as_input(baseline, reference, "baseline")
    if x0.shape != x.shape:
        raise ValueError(f"baseline has {x0.shape[0]} samples, the signal {x.shape[0]}")
    ends = torch.stack([x0, x])
    total: Tensor | None = None
    with _eval_mode(model), torch.enable_grad():
        if layer is None:
            start, delta = x0, x - x0
            ends_out = _target_output(model, ends, target).detach()
        else:
            with _layer_output(layer) as seen:
                ends_out = _target_output(model, ends, target).detach()
            z = _only_output(seen, layer).detach()
            start, delta = z[0], z[1] - z[0]
        for first in range(0, alphas.size, batch_size):
            a = torch.as_tensor(alphas[first : first + batch_size], dtype=start.dtype, device=start.device)
            w = torch.as_tensor(weights[first : first + batch_size], dtype=torch.float64, device=start.device)
            points = (start + a.view(-1, *[1] * start.dim()) * delta).requires_grad_(True)
            if layer is None:
                out = _target_output(model, points, target)
            else:
                # The layer's input is irrelevant (its output is replaced); the signal keeps the shapes right.
                with _layer_output(layer, replace=points) as seen:
                    out = _target_output(model, x.expand(len(a), -1), target)
                _only_output(seen, layer)
            (grad,) = torch.autograd.grad(out.sum(), points)
            part = torch.tensordot(w, grad.to(torch.float64), dims=1)
            total = part if total is None else total + part
    assert total is not None  # path_quadrature gives at least one point
    values = (delta.to(torch.float64) * total).cpu().numpy()
    return Attribution(values, float(ends_out[1]), float(ends_out[0]), steps, rule)


def grad_cam(model: nn.Module, signal: np.ndarray | Tensor, layer: nn.Module, *, target: int = 1) -> np.ndarray:
    """Grad-CAM of output ``target`` at ``layer``: ``ReLU(Σ_c w_c A_c)``, ``w_c`` the mean gradient over channel c.

    Parameters
    ----------
    model : maps (batch, samples) to (batch, classes); evaluated in eval mode.
    signal : one 1-D waveform.
    layer : a submodule with output (batch, channels, ...) that runs once per forward pass, e.g. RawNet2's
        ``block5`` (channels, time) or AASIST's ``encoder`` (channels, sinc band groups, time).
    target : the output explained (1: bona fide).

    Returns
    -------
    np.ndarray
        float64, the layer output's shape without the batch and channel axes; non-negative, where the layer's
        features pushed the output up.
    """
    x = _as_input(signal, _reference_tensor(model), "signal")
    with _eval_mode(model), torch.enable_grad(), _layer_output(layer) as seen:
        out = _target_output(model, x[None], target)
        activations = _only_output(seen, layer)
        if activations.dim() < 3:
            raise ValueError(f"Grad-CAM needs a layer output (batch, channels, ...), got {tuple(activations.shape)}")
        (grad,) = torch.autograd.grad(out.sum(), activations)
    weights = grad[0].flatten(1).mean(dim=1)
    cam = torch.tensordot(weights, activations[0].detach(), dims=1).clamp(min=0)
    return cam.to(torch.float64).cpu().numpy()


def sinc_layer(model: nn.Module) -> SincConv:
    """The sinc front end of a model (RawNet2's ``sinc_conv``, AASIST's ``conv_time``)."""
    for module in model.modules():
        if isinstance(module, SincConv):
            return module
    raise ValueError(f"{type(model).__name__} has no SincConv front end")


def sum_frames(values: np.ndarray, frame_length: int) -> np.ndarray:
    """Sums of consecutive blocks of ``frame_length`` steps along the last axis (the last block may be shorter).

    The total is unchanged, so summed integrated gradients still add up to the output difference.
    """
    if frame_length < 1:
        raise ValueError(f"frame_length must be at least 1, got {frame_length}")
    values = np.asarray(values)
    starts = np.arange(0, values.shape[-1], frame_length)
    return np.add.reduceat(values, starts, axis=-1)

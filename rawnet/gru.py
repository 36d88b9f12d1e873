"""GRU inference on the CPU with the recurrent product spread over torch's intra-op threads.

``nn.GRU`` on the CPU computes each step's recurrent product ``W_hh h`` with one BLAS matrix-vector call, which
gains next to nothing from a second thread at RawNet2's sizes (3,072 x 1,024: 0.31 ms on 2 threads, 0.34 ms on 1,
measured on a 2-core EPYC): at batch 1 the 3 x 29 steps of RawNet2's GRU each read 12 MiB of weights on one core,
and that is most of the network's CPU time. Here that product is an
embedding bag over the rows of ``W_hhᵀ`` weighted by ``h``, summed in ``n_parts`` bags that torch computes on
separate threads. For a batch of several sequences the product is one matrix-matrix call: oneDNN's, on weights it
packed once for it where torch has oneDNN (MKL's ``h @ W_hhᵀ``, what ``nn.GRU`` calls, repacks the weights at every
step: at batch 8 on 2 cores RawNet2's GRU took 59 ms with the packed weights, 130 ms with ``nn.GRU``), else
``h @ W_hhᵀ``.

The gate equations are ``nn.GRU``'s; outputs agree with it to float rounding. The recurrence runs in the weights'
precision, also under autocast (whose lower-precision input is cast back): the batch-1 embedding bag is no autocast
op and needs one dtype, and a recurrence is where rounding accumulates.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GRULayer(NamedTuple):
    """One GRU layer's weights laid out for :func:`gru_last_output`.

    ``weight_ih``: (3H, in) and ``weight_hh``: (3H, H), the ``nn.GRU`` parameters themselves (detached, same
    storage); ``weight_hh_t``: (H, 3H), a contiguous copy of the transposed recurrent weights, the table of the
    batch-1 embedding bag; ``bias``: (3H,), ``b_ih`` with ``b_hh`` added to its reset and update parts;
    ``bias_hn``: (H,), the new-gate part of ``b_hh``, which the reset gate scales; ``weight_hh_packed``:
    ``weight_hh`` packed by oneDNN for its matrix product at batch > 1 (float32 on a CPU whose torch has oneDNN;
    else None). A packed tensor cannot be copied or saved: keep these tuples out of what is copied.
    """

    weight_ih: Tensor
    weight_hh: Tensor
    weight_hh_t: Tensor
    bias: Tensor
    bias_hn: Tensor
    weight_hh_packed: Tensor | None = None


def _onednn_linear() -> bool:
    """Whether this torch has oneDNN's packed linear (internal operators that torch.compile uses)."""
    try:
        ops = torch.ops.mkldnn
        return bool(torch.backends.mkldnn.is_available()) and all(
            hasattr(ops, name) for name in ("_linear_pointwise", "_reorder_linear_weight"))
    except (AttributeError, RuntimeError):
        return False


def _packed(weight: Tensor) -> Tensor | None:
    if weight.dtype != torch.float32 or weight.device.type != "cpu" or not _onednn_linear():
        return None
    return torch.ops.mkldnn._reorder_linear_weight(weight, None)


def gru_layers(gru: nn.GRU) -> list[GRULayer]:
    """The layers of a unidirectional, batch-first ``nn.GRU`` with biases, as :class:`GRULayer` tuples.

    Build them again after changing the GRU's weights: the transposed copy and the biases do not follow.

    Raises
    ------
    ValueError
        for a GRU this implementation does not cover (bidirectional, no bias, time-major, projections).
    """
    if gru.bidirectional or not gru.bias or not gru.batch_first or gru.proj_size:
        raise ValueError("gru_layers needs a unidirectional, batch-first nn.GRU with biases")
    hidden = gru.hidden_size
    layers = []
    with torch.no_grad():
        for i in range(gru.num_layers):
            b_hh = getattr(gru, f"bias_hh_l{i}")
            bias = getattr(gru, f"bias_ih_l{i}").clone()
            bias[: 2 * hidden] += b_hh[: 2 * hidden]
            weight_hh = getattr(gru, f"weight_hh_l{i}").detach()
            layers.append(
                GRULayer(
                    getattr(gru, f"weight_ih_l{i}").detach(),
                    weight_hh,
                    weight_hh.t().contiguous(),
                    bias,
                    b_hh[2 * hidden :].clone(),
                    _packed(weight_hh),
                )
            )
    return layers


class KeptLayers:
    """The :func:`gru_layers` of a GRU, kept between calls and laid out again whenever a weight is replaced or
    changed in place.

    A copy or a pickle of the owner starts with none kept: oneDNN's packed weights can be neither copied nor saved.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._layers: list[GRULayer] | None = None

    def __deepcopy__(self, memo: dict) -> KeptLayers:
        return KeptLayers()

    def __reduce__(self) -> tuple:
        return (KeptLayers, ())

    def of(self, gru: nn.GRU) -> list[GRULayer]:
        """The layers of ``gru``, laid out now or kept from an earlier call on the same weights."""
        parameters = list(gru.parameters())
        if any(p.is_inference() for p in parameters):
            # Weights made under torch.inference_mode keep no version counter, so a kept copy could not notice an
            # in-place change: lay them out afresh (its cost is timed with the candidate that uses them).
            return gru_layers(gru)
        key = tuple((p.data_ptr(), p._version, p.dtype) for p in parameters)
        if self._layers is None or self._key != key:
            self._key, self._layers = key, gru_layers(gru)
        return self._layers


def gru_last_output(x: Tensor, layers: list[GRULayer], n_parts: int = 2) -> Tensor:
    """Output of the last layer at the last time step of a multi-layer GRU started from a zero state.

    Parameters
    ----------
    x : (batch, time, features), batch first.
    layers : from :func:`gru_layers`.
    n_parts : the input projections, and at batch 1 the recurrent products, are split into this many independent
        parts, which torch spreads over its intra-op threads.

    Returns
    -------
    Tensor
        (batch, hidden) in the layers' dtype, equal to ``gru(x)[0][:, -1]`` to float rounding; under autocast
        (``x`` then often bfloat16 or float16) equal to the GRU of ``x`` cast to the layers' dtype.
    """
    if x.dim() != 3 or x.shape[1] == 0:
        raise ValueError(f"expected input of shape (batch, time >= 1, features), got {tuple(x.shape)}")
    with torch.autocast(x.device.type, enabled=False):
        return _last_output(x.to(layers[0].weight_hh.dtype), layers, n_parts)


def _last_output(x: Tensor, layers: list[GRULayer], n_parts: int) -> Tensor:
    batch, steps, _ = x.shape
    hidden = layers[0].bias_hn.shape[0]
    parts = max(1, min(n_parts, hidden))
    rows = torch.arange(hidden, device=x.device)
    offsets = torch.arange(parts, device=x.device) * hidden // parts
    sequence = x
    for layer in layers:
        # The input projection of all steps at once: one matrix product, not one per step.
        gates_in = _input_projection(sequence.reshape(batch * steps, -1), layer, parts)
        # Per-step views made once per layer rather than sliced in the loop: every small op costs microseconds.
        inputs_rz, inputs_n = (part.unbind(1) for part in gates_in.view(batch, steps, 3 * hidden).split(2 * hidden, 2))
        h = x.new_zeros(batch, hidden)
        outputs = x.new_empty(batch, steps, hidden)
        for t, h_next in enumerate(outputs.unbind(1)):
            if batch == 1:
                partial = F.embedding_bag(rows, layer.weight_hh_t, offsets, mode="sum", per_sample_weights=h[0])
                gates_h = partial.sum(0, keepdim=True)
            elif layer.weight_hh_packed is not None:
                gates_h = torch.ops.mkldnn._linear_pointwise(h, layer.weight_hh_packed, None, "none", [], "")
            else:
                # The layout nn.GRU uses (h times a transposed view): MKL was faster with it than with the copy.
                gates_h = h @ layer.weight_hh.t()
            gates_h_rz, gates_h_n = gates_h.split(2 * hidden, 1)
            reset, update = torch.sigmoid_(gates_h_rz.add_(inputs_rz[t])).chunk(2, 1)
            new = torch.tanh_(torch.addcmul(inputs_n[t], reset, gates_h_n.add_(layer.bias_hn)))
            # h' = (1 - z) n + z h
            h = torch.lerp(new, h, update, out=h_next)
        sequence = outputs
    return h


def _input_projection(inputs: Tensor, layer: GRULayer, n_parts: int) -> Tensor:
    """``inputs @ weight_ihᵀ + bias`` for (rows, features) inputs, the weight's rows split in ``n_parts`` batches.

    For RawNet2's 29 x 1,024 by 1,024 x 3,072 product on 2 cores, weights not in cache: 2.3 ms as a batch of two
    products (one per thread), 3.0 ms as one ``addmm``.
    """
    rows = layer.weight_ih.shape[0]
    if n_parts < 2 or rows % n_parts:
        return torch.addmm(layer.bias, inputs, layer.weight_ih.t())
    weights = layer.weight_ih.view(n_parts, rows // n_parts, -1).transpose(1, 2)
    out = torch.baddbmm(layer.bias.view(n_parts, 1, -1), inputs.expand(n_parts, *inputs.shape), weights)
    return out.transpose(0, 1).reshape(inputs.shape[0], rows)

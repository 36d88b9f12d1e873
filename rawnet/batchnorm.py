"""Eval-mode batch norms as the per-channel affine maps they are, for the CPU inference paths of RawNet2 and AASIST:
applied in place, or folded into the convolution before them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

BatchNorm = nn.BatchNorm1d | nn.BatchNorm2d


def running_stats(bn: BatchNorm) -> tuple[Tensor, Tensor]:
    """``bn``'s running mean and variance; ValueError for a batch norm that keeps none."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"{bn} keeps no running statistics (track_running_stats=False)")
    return bn.running_mean, bn.running_var


def batchnorm_affine(bn: BatchNorm) -> tuple[Tensor, Tensor]:
    """(gain, shift), each of shape (channels,), with ``bn(x) = gain * x + shift`` per channel in eval mode."""
    running_mean, running_var = running_stats(bn)
    gain = bn.weight / torch.sqrt(running_var + bn.eps)
    return gain, bn.bias - running_mean * gain


def fold_batchnorm(weight: Tensor, bias: Tensor, bn: BatchNorm) -> tuple[Tensor, Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one convolution (any dimension), with ``bn`` in eval mode."""
    running_mean, running_var = running_stats(bn)
    gain = bn.weight / torch.sqrt(running_var + bn.eps)
    return weight * gain.view(-1, *[1] * (weight.dim() - 1)), (bias - running_mean) * gain + bn.bias


def conv_bias(conv: nn.Conv1d | nn.Conv2d) -> Tensor:
    """``conv``'s bias (every convolution of RawNet2 and AASIST has one)."""
    if conv.bias is None:
        raise ValueError(f"{conv} has no bias")
    return conv.bias

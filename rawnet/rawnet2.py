"""RawNet2 for spoofing detection, both official variants (SPEC §5).

``asvspoof2021`` is the ASVspoof 2021 challenge baseline (log-softmax output, and a residual block whose first
convolution reads the block input, so the pre-activation is computed for nothing); ``icassp2021`` is Tak et al.,
ICASSP 2021 (raw logits, pre-activation used). Module and parameter names equal the official ones, so official
state_dicts load with ``strict=True``; the sinc filters are fixed and not part of the state_dict.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rawnet.catalog import RAWNET2_VARIANTS as VARIANTS
from rawnet.checkpoint import ConfigError, read_config_file, require_keys
from rawnet.gru import GRULayer, gru_last_output, gru_layers
from rawnet.sinc import SincConv
from rawnet.threads import ThreadCountTuner, intra_op_threads

# `model:` sections of the official configs (model_config_RawNet.yaml of the 2021 baseline; Tak et al.'s release).
ASVSPOOF2021_CONFIG: dict[str, Any] = {
    "nb_samp": 64600,
    "first_conv": 1024,
    "in_channels": 1,
    "filts": [20, [20, 20], [20, 128], [128, 128]],
    "blocks": [2, 4],
    "nb_fc_node": 1024,
    "gru_node": 1024,
    "nb_gru_layer": 3,
    "nb_classes": 2,
}
ICASSP2021_CONFIG: dict[str, Any] = {
    "margin": 2,
    "nb_samp": 64000,
    "first_conv": 128,
    "in_channels": 1,
    "filts": [128, [128, 128], [128, 512], [512, 512]],
    "blocks": [2, 4],
    "nb_fc_node": 1024,
    "gru_node": 1024,
    "nb_gru_layer": 3,
    "nb_classes": 2,
}
DEFAULT_CONFIGS = {"asvspoof2021": ASVSPOOF2021_CONFIG, "icassp2021": ICASSP2021_CONFIG}

_POSITIVE_INT_KEYS = ("nb_samp", "first_conv", "nb_fc_node", "gru_node", "nb_gru_layer", "nb_classes")
REQUIRED_KEYS = (*_POSITIVE_INT_KEYS, "in_channels", "filts", "blocks")


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_pair(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) == 2 and all(map(_is_positive_int, value))


def validate_config(config: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Check a RawNet2 model config and return a deep copy of it (extra keys such as ``margin`` are kept).

    Raises
    ------
    ConfigError
        naming ``source`` and the missing or bad key.
    """
    require_keys(config, REQUIRED_KEYS, source)
    for key in _POSITIVE_INT_KEYS:
        if not _is_positive_int(config[key]):
            raise ConfigError(f"{source}: {key!r} must be a positive integer, got {config[key]!r}")
    if config["in_channels"] != 1:
        raise ConfigError(f"{source}: 'in_channels' must be 1 (the sinc front end reads mono audio)")
    filts = config["filts"]
    if not (
        isinstance(filts, list | tuple)
        and len(filts) >= 3
        and _is_positive_int(filts[0])
        and _is_pair(filts[1])
        and _is_pair(filts[2])
    ):
        raise ConfigError(f"{source}: 'filts' must look like [n_sinc, [in, out], [in, out], ...], got {filts!r}")
    if filts[0] != filts[1][0] or filts[1][1] != filts[2][0]:
        raise ConfigError(
            f"{source}: 'filts' channel counts do not chain: the sinc layer gives {filts[0]}, the first blocks "
            f"take {filts[1][0]} and give {filts[1][1]}, the next blocks take {filts[2][0]}"
        )
    if not _is_pair(config["blocks"]):
        raise ConfigError(f"{source}: 'blocks' must be two positive integers, got {config['blocks']!r}")
    return copy.deepcopy(dict(config))


def load_config(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """Read a RawNet2 model config from a YAML or JSON file, or take a dict, and validate it.

    An official YAML file (settings at the top, the model under ``model:``) is accepted as it is.

    Parameters
    ----------
    source : path to a ``.yaml``/``.yml``/``.json`` file, or a mapping.

    Returns
    -------
    dict
        the model settings (a copy).
    """
    raw, where = read_config_file(source, "model")
    return validate_config(raw, where)


class ResidualBlock(nn.Module):
    """Pre-activation residual block: [BN → LeakyReLU] → conv3 → BN → LeakyReLU → conv3, + identity, max-pool 3.

    Parameters
    ----------
    in_channels, out_channels : channel counts; a kernel-1 ``conv_downsample`` maps the identity when they differ.
    first : the first block of the network has no pre-activation.
    conv_reads_input : reproduce the 2021 baseline, whose first convolution reads the block input, leaving ``bn1``
        unused (it stays for state_dict compatibility).
    """

    def __init__(self, in_channels: int, out_channels: int, first: bool = False, conv_reads_input: bool = False):
        super().__init__()
        self.first = first
        self.conv_reads_input = conv_reads_input
        if not first:
            self.bn1 = nn.BatchNorm1d(in_channels)
        self.lrelu = nn.LeakyReLU(negative_slope=0.3)
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size=3, padding=1)
        if in_channels != out_channels:
            self.conv_downsample = nn.Conv1d(in_channels, out_channels, kernel_size=1)
        self.mp = nn.MaxPool1d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The baseline computes bn1/LeakyReLU and then throws them away; skipping them changes no output.
        out = x if self.first or self.conv_reads_input else self.lrelu(self.bn1(x))
        out = self.conv2(self.lrelu(self.bn2(self.conv1(out))))
        identity = self.conv_downsample(x) if hasattr(self, "conv_downsample") else x
        return self.mp(out + identity)


class RawNet2(nn.Module):
    """RawNet2 anti-spoofing network on raw 16 kHz waveforms.

    Parameters
    ----------
    config : model settings (see :func:`load_config`); ``None`` takes the official full config of ``variant``.
    variant : ``"asvspoof2021"`` or ``"icassp2021"``.
    sinc_scale : band-edge scale of the sinc filters; ``"mel"``, or for ``icassp2021`` also ``"inverse-mel"``
        or ``"linear"``.
    sinc_method : how the sinc filters are applied, see :class:`rawnet.sinc.SincConv`.
    recurrent_threads : intra-op threads for the GRU in CPU inference (eval mode, no autograd), where the
        recurrence runs as :func:`rawnet.gru.gru_last_output` with its product split over threads. ``"auto"``
        times one thread against torch's current count on the real calls and keeps the faster
        (:class:`rawnet.threads.ThreadCountTuner`): on an idle 2-core machine two threads halve the recurrence,
        on a busy one every step would wait for the descheduled thread (benchmarks/bench_rawnet2.py). An
        integer fixes the count; ``None`` leaves torch's setting. Outputs agree to float rounding for any choice.

    ``forward(x)`` takes (batch, samples) float32 and returns (batch, nb_classes): log-softmax for
    ``asvspoof2021``, logits for ``icassp2021``. Class 1 is bona fide.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        variant: str = "asvspoof2021",
        sinc_scale: str = "mel",
        sinc_method: str = "auto",
        recurrent_threads: int | str | None = "auto",
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown RawNet2 variant {variant!r}; expected one of {VARIANTS}")
        if not (recurrent_threads in (None, "auto") or _is_positive_int(recurrent_threads)):
            raise ValueError(f"recurrent_threads must be 'auto', None or a positive integer, got {recurrent_threads!r}")
        self.config = validate_config(DEFAULT_CONFIGS[variant] if config is None else config)
        self.variant = variant
        self.recurrent_threads = recurrent_threads
        self._thread_tuner = ThreadCountTuner()
        self._packed_gru: tuple[tuple, list[GRULayer]] | None = None
        cfg = self.config
        filts = cfg["filts"]
        self.sinc_conv = SincConv(filts[0], cfg["first_conv"], layout=variant, scale=sinc_scale, method=sinc_method)
        self.first_bn = nn.BatchNorm1d(filts[0])
        self.selu = nn.SELU()
        channels: list[tuple[int, int]] = []
        for (in_channels, out_channels), count in zip(filts[1:3], cfg["blocks"], strict=True):
            channels += [(in_channels, out_channels)] + [(out_channels, out_channels)] * (count - 1)
        self.n_blocks = len(channels)
        # Official names and order: every block{i}.0.*, then every fc_attention{i}.0.* (one-module Sequentials).
        for i, (in_channels, out_channels) in enumerate(channels):
            block = ResidualBlock(in_channels, out_channels, first=i == 0, conv_reads_input=variant == "asvspoof2021")
            self.add_module(f"block{i}", nn.Sequential(block))
        for i, (_, out_channels) in enumerate(channels):
            self.add_module(f"fc_attention{i}", nn.Sequential(nn.Linear(out_channels, out_channels)))
        self.bn_before_gru = nn.BatchNorm1d(filts[2][1])
        self.gru = nn.GRU(filts[2][1], cfg["gru_node"], num_layers=cfg["nb_gru_layer"], batch_first=True)
        self.fc1_gru = nn.Linear(cfg["gru_node"], cfg["nb_fc_node"])
        self.fc2_gru = nn.Linear(cfg["nb_fc_node"], cfg["nb_classes"])

    @staticmethod
    def default_config(variant: str = "asvspoof2021") -> dict[str, Any]:
        """A copy of the official full config of ``variant``."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown RawNet2 variant {variant!r}; expected one of {VARIANTS}")
        return copy.deepcopy(DEFAULT_CONFIGS[variant])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"RawNet2 expects input of shape (batch, samples), got {tuple(x.shape)}")
        x = self.sinc_conv(x.unsqueeze(1))
        x = self.selu(self.first_bn(F.max_pool1d(torch.abs(x), 3)))
        for i in range(self.n_blocks):
            x = getattr(self, f"block{i}")(x)
            # Filter-wise feature-map scaling: x * s + s with s = sigmoid(fc(mean over time)).
            scale = torch.sigmoid(getattr(self, f"fc_attention{i}")(F.adaptive_avg_pool1d(x, 1).flatten(1)))
            scale = scale.unsqueeze(-1)
            x = x * scale + scale
        x = self.selu(self.bn_before_gru(x)).transpose(1, 2)
        x = self._recurrent_inference(x) if self._cpu_inference(x) else self.gru(x)[0][:, -1]
        x = self.fc2_gru(self.fc1_gru(x))
        if self.variant == "asvspoof2021":
            return F.log_softmax(x, dim=1)
        return x

    def _cpu_inference(self, x: torch.Tensor) -> bool:
        grad_or_trace = self.training or torch.is_grad_enabled() or torch.jit.is_tracing()
        return x.device.type == "cpu" and not grad_or_trace

    def _gru_layers(self) -> list[GRULayer]:
        """The GRU weights laid out for inference, rebuilt whenever a weight is replaced or changed in place."""
        key = tuple((p.data_ptr(), p._version, p.dtype) for p in self.gru.parameters())
        if self._packed_gru is None or self._packed_gru[0] != key:
            self._packed_gru = (key, gru_layers(self.gru))
        return self._packed_gru[1]

    def _recurrent_inference(self, x: torch.Tensor) -> torch.Tensor:
        """The GRU's last output, (batch, gru_node), for (batch, time, features) input, on the chosen threads."""
        layers = self._gru_layers()
        # The split of the product follows the caller's thread count, not the tuner's pick: the pick then only
        # decides how many threads share the parts, not how the sums are grouped.
        n_parts = torch.get_num_threads()
        threads = self.recurrent_threads
        if isinstance(threads, str):  # "auto"
            with self._thread_tuner.timed_threads(x.shape[0], (1, n_parts)):
                return gru_last_output(x, layers, n_parts)
        with intra_op_threads(threads):
            return gru_last_output(x, layers, n_parts)

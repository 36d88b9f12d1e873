"""RawNet2 for spoofing detection, the three official variants (SPEC §5 and §9).

``asvspoof2021`` is the ASVspoof 2021 challenge baseline (log-softmax output, and a residual block whose first
convolution reads the block input, so the pre-activation is computed for nothing); ``icassp2021`` is Tak et al.,
ICASSP 2021 (raw logits, pre-activation used); ``asvspoof5`` is the ASVspoof 5 organisers' baseline
(``asvspoof-challenge/asvspoof5`` ``Baseline-RawNet2``): the 2021 topology and sinc front end with the
pre-activation used, 64,000-sample input, logits out, and the official score the softmax probability of class 1.
Module and parameter names equal the official ones, so official state_dicts load with ``strict=True``; the sinc
filters are fixed and not part of the state_dict. The variants' names and training recipes are listed in the
torch-free :mod:`rawnet.catalog`.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rawnet.batchnorm import batchnorm_affine, conv_bias, fold_batchnorm, running_stats
from rawnet.catalog import RAWNET2_VARIANTS as VARIANTS
from rawnet.checkpoint import ConfigError, read_config_file, require_keys
from rawnet.gru import GRULayer, KeptLayers, gru_last_output
from rawnet.sinc import SincConv, fft_block_length
from rawnet.threads import intra_op_threads
from rawnet.tuning import FastestChoice, cpu_inference

# `model:` sections of the official configs (model_config_RawNet.yaml of the 2021 baseline; Tak et al.'s release);
# the ASVspoof 5 baseline hard-codes its architecture in model.py and its input length in data_utils_RawNet2.py.
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
ASVSPOOF5_CONFIG: dict[str, Any] = {**ASVSPOOF2021_CONFIG, "nb_samp": 64000}
DEFAULT_CONFIGS = {"asvspoof2021": ASVSPOOF2021_CONFIG, "icassp2021": ICASSP2021_CONFIG, "asvspoof5": ASVSPOOF5_CONFIG}

#: Values of the sinc output computed at once by the chunked CPU front end (a stretch of time of all clips).
FRONT_END_CHUNK_ELEMENTS = 1 << 20

#: Band-edge layout of each variant's sinc filters (:func:`rawnet.sinc.band_edges`).
SINC_LAYOUTS = {"asvspoof2021": "asvspoof2021", "icassp2021": "icassp2021", "asvspoof5": "asvspoof2021"}

#: What ``RawNet2.forward`` returns for each variant.
OUTPUTS = {"asvspoof2021": "log-softmax", "icassp2021": "logits", "asvspoof5": "logits"}
#: What the variant's official evaluation scores with (class 1 of it), see :func:`scoring_network`.
SCORE_OUTPUTS = {"asvspoof2021": "log-softmax", "icassp2021": "logits", "asvspoof5": "softmax"}
#: The decision threshold on that score: the equal-posterior point log(0.5) and 0.5 for log-probabilities and
#: probabilities; for raw logits 0, the sign of the bona fide logit (see rawnet.scorers.AASISTScorer).
DEFAULT_THRESHOLDS = {"asvspoof2021": math.log(0.5), "icassp2021": 0.0, "asvspoof5": 0.5}

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
        # The 2021 baseline computes bn1/LeakyReLU and then throws them away; skipping them changes no output.
        out = x if self.first or self.conv_reads_input else self.lrelu(self.bn1(x))
        out = self.conv2(self.lrelu(self.bn2(self.conv1(out))))
        identity = self.conv_downsample(x) if hasattr(self, "conv_downsample") else x
        return self.mp(out + identity)

    def forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode :meth:`forward` on (batch, channels, 1, time) channels-last tensors, channels-last out.

        The convolutions run as (1, 3) two-dimensional ones in the layout oneDNN is fastest in (on 2 cores, 20
        channels over 21,000 steps: 4 ms against 16 ms for ``conv1d``), with ``bn2`` folded into ``conv1``.
        """
        out = x
        if not (self.first or self.conv_reads_input):
            out = F.leaky_relu(_batch_norm(x, self.bn1), 0.3)
        weight, bias = fold_batchnorm(self.conv1.weight, conv_bias(self.conv1), self.bn2)
        out = F.leaky_relu_(F.conv2d(out, _conv_weight_2d(weight), bias, padding=(0, 1)), 0.3)
        out = F.conv2d(out, _conv_weight_2d(self.conv2.weight), conv_bias(self.conv2), padding=(0, 1))
        if hasattr(self, "conv_downsample"):
            out += F.conv2d(x, _conv_weight_2d(self.conv_downsample.weight), conv_bias(self.conv_downsample))
        else:
            out += x
        return F.max_pool2d(out, (1, 3))


def _batch_norm(x: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
    """Eval-mode ``bn`` on a tensor of any rank (``nn.BatchNorm1d`` refuses four dimensions)."""
    running_mean, running_var = running_stats(bn)
    return F.batch_norm(x, running_mean, running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _conv_weight_2d(weight: torch.Tensor) -> torch.Tensor:
    """A ``conv1d`` weight (out, in, k) as the channels-last weight of a (1, k) ``conv2d``."""
    return weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)


class RawNet2(nn.Module):
    """RawNet2 anti-spoofing network on raw 16 kHz waveforms.

    Parameters
    ----------
    config : model settings (see :func:`load_config`); ``None`` takes the official full config of ``variant``.
    variant : ``"asvspoof2021"``, ``"icassp2021"`` or ``"asvspoof5"``.
    sinc_scale : band-edge scale of the sinc filters; ``"mel"``, or for ``icassp2021`` also ``"inverse-mel"``
        or ``"linear"``.
    sinc_method : how the sinc filters are applied, see :class:`rawnet.sinc.SincConv`.
    recurrent_threads : intra-op threads for the GRU in CPU inference (eval mode, no autograd). There the GRU runs
        as ``nn.GRU`` or as :func:`rawnet.gru.gru_last_output` (its product split over threads), whichever is faster
        as timed on the real calls (:class:`rawnet.tuning.FastestChoice`): the split wins on an idle AMD EPYC,
        ``nn.GRU`` on an Intel Xeon. ``"auto"`` also times both on one thread: on a busy machine every step of a
        two-thread recurrence waits for the descheduled thread. An integer runs the GRU on that many threads;
        ``None`` keeps torch's count. Outputs agree to float rounding for any choice.

    ``forward(x)`` takes (batch, samples) float32 and returns (batch, nb_classes), class 1 bona fide: log-softmax
    for ``asvspoof2021``, logits for ``icassp2021`` and ``asvspoof5`` (whose official evaluation scores with their
    softmax: :func:`scoring_network`).

    Threads: with ``recurrent_threads`` other than None, forward sets torch's intra-op thread count for the GRU
    and restores the previous count when the GRU is done, also on error (:func:`rawnet.threads.intra_op_threads`).
    torch's count is process-wide: build models that several Python threads run at once with
    ``recurrent_threads=None``, which never changes it.
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
        self._choice = FastestChoice()
        self._kept_gru = KeptLayers()
        cfg = self.config
        filts = cfg["filts"]
        self.sinc_conv = SincConv(
            filts[0], cfg["first_conv"], layout=SINC_LAYOUTS[variant], scale=sinc_scale, method=sinc_method
        )
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
        x = self._blocks(self._front_end(x))
        x = self._recurrence(self.selu(self.bn_before_gru(x)).transpose(1, 2))
        x = self.fc2_gru(self.fc1_gru(x))
        return F.log_softmax(x, dim=1) if OUTPUTS[self.variant] == "log-softmax" else x

    def _front_end(self, x: torch.Tensor) -> torch.Tensor:
        """|sinc conv| → max-pool 3 → BN → SELU: (batch, samples) → (batch, filts[0], steps)."""
        if not cpu_inference(self, x):
            return self._front_end_batch(x)
        with self._choice.timed(("front end", *x.shape), ("batch", "chunked")) as how:
            return self._front_end_batch(x) if how == "batch" else self._front_end_chunked(x)

    def _front_end_batch(self, x: torch.Tensor) -> torch.Tensor:
        return self.selu(self.first_bn(F.max_pool1d(torch.abs(self.sinc_conv(x.unsqueeze(1))), 3)))

    def _front_end_chunked(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode :meth:`_front_end_batch` a stretch of time at a time, in place, into one output.

        The whole sinc output of a batch of 8 official clips is 10 million values: its fresh memory, and that of
        its absolute value, cost more page faults than the FFTs (``torch.abs`` of it: 16 ms on 2 cores, the
        max-pool after it 3 ms). Stretches of about ``FRONT_END_CHUNK_ELEMENTS`` values are reused instead.
        """
        sinc = self.sinc_conv
        kernel, channels = sinc.kernel_size, sinc.out_channels
        steps = (x.shape[1] - kernel + 1) // 3
        gain, shift = (v[:, None] for v in batchnorm_affine(self.first_bn))
        # Stretches of whole overlap-save blocks, so that no FFT block is padded and half thrown away.
        hop = (fft_block_length(kernel) - kernel + 1) // 3
        chunk = hop * max(1, round(FRONT_END_CHUNK_ELEMENTS / (3 * x.shape[0] * channels * hop)))
        out = x.new_empty(x.shape[0], channels, steps)
        for start in range(0, steps, chunk):
            stop = min(steps, start + chunk)
            y = sinc(x[:, None, 3 * start : 3 * stop + kernel - 1])
            pooled = F.max_pool1d(y.abs_(), 3)
            out[..., start:stop] = torch.selu_(pooled.mul_(gain).add_(shift))
        return out

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        """The residual blocks, each followed by its filter-wise feature-map scaling: (batch, channels, steps) in
        and out. In CPU inference in (batch, channels, steps) or channels-last, whichever is faster as timed."""
        if not cpu_inference(self, x):
            return self._blocks_plain(x)
        with self._choice.timed(("blocks", *x.shape), ("ncw", "nwc")) as layout:
            return self._blocks_channels_last(x) if layout == "nwc" else self._blocks_plain(x)

    def _blocks_plain(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.n_blocks):
            x = getattr(self, f"block{i}")(x)
            # Filter-wise feature-map scaling: x * s + s with s = sigmoid(fc(mean over time)).
            scale = torch.sigmoid(getattr(self, f"fc_attention{i}")(F.adaptive_avg_pool1d(x, 1).flatten(1)))
            scale = scale.unsqueeze(-1)
            x = x * scale + scale
        return x

    def _blocks_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, channels, 1, steps) channels-last: the memory of (batch, steps, channels), the GRU's input layout.
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        for i in range(self.n_blocks):
            x = getattr(self, f"block{i}")[0].forward_channels_last(x)
            scale = torch.sigmoid(getattr(self, f"fc_attention{i}")(x.mean(dim=(2, 3))))[:, :, None, None]
            x = x.mul_(scale).add_(scale)
        return x.squeeze(2)

    def _recurrence(self, x: torch.Tensor) -> torch.Tensor:
        """The GRU's last output, (batch, gru_node), for (batch, time, features) input."""
        if not cpu_inference(self, x):
            return self.gru(x)[0][:, -1]
        callers = torch.get_num_threads()
        threads = self.recurrent_threads
        counts = (callers, 1) if threads == "auto" else (callers if threads is None else int(threads),)
        candidates = [(path, n) for n in counts for path in ("nn.GRU", "split")]
        with self._choice.timed(tuple(x.shape[:2]), candidates) as (path, n), intra_op_threads(n):
            if path == "nn.GRU":
                return self.gru(x)[0][:, -1]
            # Split by the caller's count whatever the pick: the pick decides how many threads share the parts,
            # not how the sums are grouped.
            return gru_last_output(x, self._gru_layers(), callers)

    def _gru_layers(self) -> list[GRULayer]:
        """The GRU weights laid out for inference, rebuilt whenever a weight is replaced or changed in place."""
        return self._kept_gru.of(self.gru)


def score_head(variant: str) -> nn.Module:
    """What the official evaluation of ``variant`` applies to the network's outputs before it reads class 1
    (:data:`SCORE_OUTPUTS`): a softmax for ``asvspoof5``, so class 1 is P(bona fide); nothing for the others."""
    return nn.Softmax(dim=1) if SCORE_OUTPUTS[variant] == "softmax" else nn.Identity()


def scoring_network(model: RawNet2) -> nn.Module:
    """``model`` followed by its variant's :func:`score_head`; ``model`` itself where the head does nothing.

    Scorers, the export and the trainer's dev EER rank trials by class 1 of this network's output, as the official
    evaluation of each variant does.
    """
    head = score_head(model.variant)
    return model if isinstance(head, nn.Identity) else nn.Sequential(model, head)

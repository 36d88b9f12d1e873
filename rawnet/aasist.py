"""AASIST and AASIST-L (Jung et al., ICASSP 2022), loading the official pretrained weights (SPEC §6).

Module and parameter names equal the official ``models/AASIST.py`` ones, so ``AASIST.pth`` and ``AASIST-L.pth``
load with ``strict=True``; the fixed sinc filters are not part of the state_dict. The forward returns logits
(batch, 2), bona fide = index 1.

Training, autograd, GPUs, tracing and export (ONNX, TorchScript, ``torch.export``) use the official order of
operations. CPU inference (eval mode without autograd) can compute the same function faster: batch norms folded
into the preceding convolutions, channels-last convolutions, no discarded pre-activations, and the encoder pulled
through time segments so that no intermediate tensor exceeds 16 MB. The official forward allocates about 0.8 GB of
fresh tensors per 4 s clip (66 MB each in the first block); on CPU the page faults on that memory cost more than
the convolutions. Which encoder runs, and on how many threads the graph layers run, is chosen by timing the real
calls (:mod:`rawnet.tuning`), the official computation among the candidates.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rawnet.batchnorm import batchnorm_affine, conv_bias, fold_batchnorm
from rawnet.checkpoint import ConfigError, load_state_dict_file, read_config_file, require_keys
from rawnet.sinc import SincConv
from rawnet.threads import intra_op_threads
from rawnet.tuning import FastestChoice, cpu_inference

# The published model configs (clovaai/aasist config/AASIST.conf and AASIST-L.conf, "model_config").
CONFIGS: dict[str, dict[str, Any]] = {
    "AASIST": {
        "architecture": "AASIST",
        "nb_samp": 64600,
        "first_conv": 128,
        "filts": [70, [1, 32], [32, 32], [32, 64], [64, 64]],
        "gat_dims": [64, 32],
        "pool_ratios": [0.5, 0.7, 0.5, 0.5],
        "temperatures": [2.0, 2.0, 100.0, 100.0],
    },
    "AASIST-L": {
        "architecture": "AASIST",
        "nb_samp": 64600,
        "first_conv": 128,
        "filts": [70, [1, 32], [32, 32], [32, 24], [24, 24]],
        "gat_dims": [24, 32],
        "pool_ratios": [0.4, 0.5, 0.7, 0.5],
        "temperatures": [2.0, 2.0, 100.0, 100.0],
    },
}

# Official frequency-mask augmentation: up to 19 consecutive sinc channels zeroed per training batch.
FREQ_MASK_MAX = 20
# Elements per intermediate tensor at inference: 16 MB of float32, below glibc's 32 MB ceiling for memory it
# recycles (larger blocks are mmapped and page-faulted afresh on every call), yet few enough chunks that the
# per-op threading overhead stays small.
INFERENCE_CHUNK_ELEMENTS = 1 << 22


def validate_config(config: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Check an AASIST model config (the official ``model_config`` section) and return a deep copy.

    Raises
    ------
    ConfigError
        naming ``source`` and the missing or bad key.
    """
    require_keys(config, ("first_conv", "filts", "gat_dims", "pool_ratios", "temperatures"), source)
    filts = config["filts"]
    pairs_ok = isinstance(filts, list | tuple) and len(filts) == 5
    pairs_ok = pairs_ok and all(isinstance(p, list | tuple) and len(p) == 2 for p in filts[1:])
    if not pairs_ok or filts[1][0] != 1 or any(filts[i][1] != filts[i + 1][0] for i in range(1, 4)):
        raise ConfigError(
            f"{source}: 'filts' must be [n_sinc, [1, c1], [c1, c2], [c2, c3], [c3, c3]] with chained channel "
            f"counts, got {filts!r}"
        )
    for key, size in (("gat_dims", 2), ("pool_ratios", 4), ("temperatures", 4)):
        if not (isinstance(config[key], list | tuple) and len(config[key]) == size):
            raise ConfigError(f"{source}: {key!r} must hold {size} numbers, got {config[key]!r}")
    if not all(0 < r <= 1 for r in config["pool_ratios"]):
        raise ConfigError(f"{source}: 'pool_ratios' must lie in (0, 1], got {config['pool_ratios']!r}")
    return copy.deepcopy(dict(config))


def load_config(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """An AASIST model config from a mapping or a file (JSON/YAML; an official ``.conf`` gives its
    ``model_config``), validated."""
    return validate_config(*read_config_file(source, "model_config"))


def frequency_mask(n_channels: int, generator: torch.Generator | None = None) -> Tensor:
    """The official sinc-channel mask of one training batch: ones, with a run of zeros of uniform width
    0 … ``FREQ_MASK_MAX`` - 1 at a uniform start, as a (n_channels, 1) float tensor."""
    width = int(torch.randint(0, min(FREQ_MASK_MAX, n_channels + 1), (), generator=generator))
    start = int(torch.randint(0, n_channels - width + 1, (), generator=generator))
    mask = torch.ones(n_channels, 1)
    mask[start : start + width] = 0
    return mask


def max_pool_time(x: Tensor, size: int = 3) -> Tensor:
    """``F.max_pool2d(x, (1, size))`` for a channels-last (batch, channels, freq, time) tensor, channels-last out."""
    n, c, h, w = x.shape
    steps = w // size
    windows = x.permute(0, 2, 3, 1)[:, :, : steps * size].reshape(n, h, steps, size, c)
    return windows.amax(3).permute(0, 3, 1, 2)


def abs_max_pool(y: Tensor) -> Tensor:
    """``F.max_pool2d(y.abs().unsqueeze(1), (3, 3))`` for sinc outputs ``y`` (batch, channels, time).

    As elementwise maxima of strided slices, about 5x faster on 2 cores than the pooling kernel on this
    one-channel image, and exact (a maximum does not round).
    """
    rows, steps = y.shape[1] // 3, y.shape[2] // 3
    y = y[:, : 3 * rows, : 3 * steps]
    freq = torch.maximum(torch.maximum(y[:, 0::3].abs(), y[:, 1::3].abs()), y[:, 2::3].abs())
    return torch.maximum(torch.maximum(freq[..., 0::3], freq[..., 1::3]), freq[..., 2::3]).unsqueeze(1)


def conv2d_channels_last(x: Tensor, weight: Tensor, bias: Tensor, pad_freq: int = 0) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=(pad_freq, 0))`` with a channels-last result (pass channels-last weights).

    oneDNN returns the output of a one-channel input in NCHW, and mixing layouts later costs more than the
    convolution itself; such a convolution reads its ``kh`` kernel rows as ``kh`` input channels of a (1, kw)
    convolution over each output row instead, which oneDNN runs channels-last (about 3x faster than a matrix
    product over the taps, measured on 2 cores).
    """
    if x.shape[1] != 1:
        return F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, bias, padding=(pad_freq, 0))
    n, out_channels, (kh, kw) = x.shape[0], weight.shape[0], weight.shape[2:]
    x = F.pad(x[:, 0], (0, 0, pad_freq, pad_freq))
    rows, width = x.shape[1] - kh + 1, x.shape[2]
    # (n, rows, width, kh): row r + i of the input as channel i of output row r, channels-last as (n rows, kh, 1, w).
    shifted = torch.stack([x[:, i : i + rows] for i in range(kh)], dim=-1) if kh > 1 else x[..., None]
    stacked = shifted.reshape(n * rows, 1, width, kh).permute(0, 3, 1, 2)
    by_row = weight.reshape(out_channels, kh, 1, kw).contiguous(memory_format=torch.channels_last)
    out = F.conv2d(stacked, by_row, bias)  # (n rows, out, 1, width - kw + 1), channels-last
    return out.permute(0, 2, 3, 1).reshape(n, rows, -1, out_channels).permute(0, 3, 1, 2)


def _autocast_on(x: Tensor) -> bool:
    try:
        return torch.is_autocast_enabled(x.device.type)
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_cpu_enabled() if x.device.type == "cpu" else torch.is_autocast_enabled()


_WORKERS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _encoder_workers(count: int) -> ThreadPoolExecutor:
    """A pool of ``count`` threads for :meth:`AASIST._encode_parallel`, one per process (a forked child's copy of
    its parent's pool has no threads)."""
    key = (os.getpid(), count)
    if key not in _WORKERS:
        _WORKERS[key] = ThreadPoolExecutor(count, thread_name_prefix="aasist-encoder")
    return _WORKERS[key]


def graph_pool(h: Tensor, scores: Tensor, ratio: float) -> Tensor:
    """Keep the ``max(int(nodes * ratio), 1)`` best-scored nodes of ``h * scores``, best first.

    Parameters
    ----------
    h : (batch, nodes, dim) node features.
    scores : (batch, nodes, 1) node scores in (0, 1).
    ratio : fraction of nodes kept.
    """
    keep = max(int(h.shape[1] * ratio), 1)
    index = torch.topk(scores, keep, dim=1).indices
    return torch.gather(h * scores, 1, index.expand(-1, -1, h.shape[2]))


class GraphAttention(nn.Module):
    """Graph attention over fully connected nodes (official ``GraphAttentionLayer``).

    Attention of node i to node j: softmax over j of ``tanh(att_proj(x_i * x_j)) · att_weight / temperature``;
    output ``SELU(BN(proj_with_att(attention @ x) + proj_without_att(x)))``.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float = 1.0):
        super().__init__()
        self.temperature = temperature
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(p=0.2)

    def forward(self, x: Tensor) -> Tensor:
        """(batch, nodes, in_dim) → (batch, nodes, out_dim)."""
        x = self.input_drop(x)
        logits = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1))) @ self.att_weight
        attention = F.softmax(logits.squeeze(-1) / self.temperature, dim=-1)
        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        return F.selu(self.bn(out.transpose(1, 2)).transpose(1, 2))


class HeteroGraphAttention(nn.Module):
    """Heterogeneous graph attention with a master node (official ``HtrgGraphAttentionLayer``).

    The two node types are projected separately and joined; pairs within type 1, within type 2 and across types
    have their own attention weights (``att_weight11``, ``att_weight22``, ``att_weight12``). The master node attends
    to all nodes with ``att_projM``/``att_weightM``.
    """

    def __init__(self, in_dim: int, out_dim: int, temperature: float = 1.0):
        super().__init__()
        self.temperature = temperature
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        # Assigned one by one (in the official order, which fixes the initial values drawn) so that their type is known.
        self.att_weight11 = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.att_weight22 = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.att_weight12 = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.att_weightM = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, 1)))
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(p=0.2)

    def forward(self, x1: Tensor, x2: Tensor, master: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(batch, n1, in_dim), (batch, n2, in_dim), (batch or 1, 1, in_dim) → the same with out_dim."""
        n1, n2 = x1.shape[1], x2.shape[1]
        x = self.input_drop(torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1))

        pair = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))
        weights = torch.cat([self.att_weight11, self.att_weight12, self.att_weight22], dim=1)
        node_type = torch.cat([x.new_zeros(n1, dtype=torch.long), x.new_ones(n2, dtype=torch.long)])
        # Pair (i, j) uses weight 0 (type 1–type 1), 1 (across types) or 2 (type 2–type 2).
        pair_type = (node_type[:, None] + node_type[None, :]).expand(x.shape[0], -1, -1)
        logits = torch.gather(pair @ weights, -1, pair_type.unsqueeze(-1)).squeeze(-1)
        attention = F.softmax(logits / self.temperature, dim=-1)

        master_logits = torch.tanh(self.att_projM(x * master)) @ self.att_weightM
        master_attention = F.softmax(master_logits / self.temperature, dim=1)
        master = self.proj_with_attM(master_attention.transpose(1, 2) @ x) + self.proj_without_attM(master)

        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        out = F.selu(self.bn(out.transpose(1, 2)).transpose(1, 2))
        return out[:, :n1], out[:, n1:], master


class GraphPool(nn.Module):
    """Score nodes with ``sigmoid(proj(dropout(h)))`` and keep the best ``ratio`` of them (official ``GraphPool``)."""

    def __init__(self, ratio: float, in_dim: int, dropout: float):
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(in_dim, 1)
        self.drop = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()

    def forward(self, h: Tensor) -> Tensor:
        """(batch, nodes, dim) → (batch, kept nodes, dim)."""
        return graph_pool(h, torch.sigmoid(self.proj(self.drop(h))), self.ratio)


#: :meth:`ResidualBlock.fused_weights`: (conv1 weight, bias, conv2 weight, bias, (downsample weight, bias) or None).
FusedWeights = tuple[Tensor, Tensor, Tensor, Tensor, tuple[Tensor, Tensor] | None]


def _channels_last(weight: Tensor) -> Tensor:
    return weight.contiguous(memory_format=torch.channels_last)


class ResidualBlock(nn.Module):
    """Residual block on (batch, channels, freq, time): conv (2, 3) → BN → SELU → conv (2, 3), + identity
    (through a (1, 3) ``conv_downsample`` where the channel counts differ), then max-pool (1, 3) over time.

    As in the official code, the first convolution reads the block input: the pre-activation ``bn1`` of non-first
    blocks is computed there and thrown away, so it is skipped here and only kept for state_dict compatibility
    (its running statistics, which no output depends on, therefore stay as loaded during training).
    """

    def __init__(self, in_channels: int, out_channels: int, first: bool = False):
        super().__init__()
        if not first:
            self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(2, 3), padding=(0, 1))
        self.conv_downsample = (
            nn.Conv2d(in_channels, out_channels, kernel_size=(1, 3), padding=(0, 1))
            if in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        identity = x if self.conv_downsample is None else self.conv_downsample(x)
        return F.max_pool2d(out + identity, (1, 3))

    def fused_weights(self) -> FusedWeights:
        """Eval-mode weights for :func:`residual_block_segment`: ``bn2`` folded into ``conv1``, channels-last.

        Returns (conv1 weight, conv1 bias, conv2 weight, conv2 bias, (downsample weight, downsample bias)); the
        last is None without ``conv_downsample``.
        """
        w1, b1 = fold_batchnorm(self.conv1.weight, conv_bias(self.conv1), self.bn2)
        ds = self.conv_downsample
        downsample = None if ds is None else (_channels_last(ds.weight), conv_bias(ds))
        return _channels_last(w1), b1, _channels_last(self.conv2.weight), conv_bias(self.conv2), downsample


def residual_block_segment(seg: Tensor, weights: FusedWeights, signal_start: bool, signal_end: bool) -> Tensor:
    """Eval-mode :class:`ResidualBlock` on a time segment, channels-last in and out.

    Parameters
    ----------
    seg : (batch, channels, freq, 3 n + 4): the block input for times [3 a - 2, 3 a + 3 n + 2), zero outside the
        signal, i.e. the n pooled outputs from step a with a 2-step margin on each side.
    weights : :meth:`ResidualBlock.fused_weights`.
    signal_start, signal_end : whether the segment touches the start (a = 0) or end of the block input; there
        the first convolution's outputs just outside the signal are the zero padding of the second.

    Returns
    -------
    Tensor
        (batch, out_channels, freq, n).
    """
    w1, b1, w2, b2, downsample = weights
    seg = seg.contiguous(memory_format=torch.channels_last)
    hidden = torch.selu_(conv2d_channels_last(seg, w1, b1, pad_freq=1))
    if signal_start:
        hidden[..., 0] = 0
    if signal_end:
        hidden[..., -1] = 0
    y = conv2d_channels_last(hidden, w2, b2)
    # The downsampling convolution runs over the margins too (two extra steps) so that seg is not copied again.
    y += seg[..., 2:-2] if downsample is None else conv2d_channels_last(seg, *downsample)[..., 1:-1]
    return max_pool_time(y)


class AASIST(nn.Module):
    """AASIST spoofing countermeasure on raw 16 kHz waveforms (official ``models/AASIST.py``).

    Parameters
    ----------
    model_config : the official ``model_config`` (see :data:`CONFIGS`, or the reference ``AASIST.json``).
    freq_aug : in training mode, zero a random run of up to 19 sinc channels per batch (official ``Freq_aug``).
    threads : intra-op threads of the encoder and of the graph layers in CPU inference (eval mode, no autograd).
        ``"auto"`` runs each on torch's count or on one thread, whichever is faster as timed on the real calls: the
        graph layers are a few hundred tiny ops, where a second thread mostly adds synchronisation, and while
        another process holds a core the encoder's two threads wait for each other at every operation (measured on
        2 cores with one busy process: 0.45-0.5 s a window on two threads, 0.3 s on one; 0.17 s on two when idle).
        An integer fixes the count; ``None`` keeps torch's count.

    Input (batch, samples) float32, normally ``nb_samp`` = 64,600 samples; output logits (batch, 2), bona fide =
    index 1. Dropout and the frequency mask act only in training mode.

    Threads: with ``threads`` other than None, forward sets torch's intra-op thread count for the encoder and the
    graph layers and restores the previous count when they are done, also on error
    (:func:`rawnet.threads.intra_op_threads`). torch's count is process-wide: build models that several Python
    threads run at once with ``threads=None``, which never changes it.
    """

    def __init__(self, model_config: Mapping[str, Any], freq_aug: bool = False,
                 threads: int | str | None = "auto"):
        super().__init__()
        if not (threads in (None, "auto") or (type(threads) is int and threads > 0)):
            raise ValueError(f"threads must be 'auto', None or a positive integer, got {threads!r}")
        config = validate_config(model_config)
        self.config = config
        self.nb_samp = int(config.get("nb_samp", 64600))
        self.freq_aug = freq_aug
        self.threads = threads
        self._choice = FastestChoice()
        filts, gat_dims = config["filts"], config["gat_dims"]
        pool_ratios, temperatures = config["pool_ratios"], config["temperatures"]

        self.conv_time = SincConv(filts[0], config["first_conv"])
        self.first_bn = nn.BatchNorm2d(1)
        self.drop = nn.Dropout(0.5)
        self.drop_way = nn.Dropout(0.2)
        # Nested Sequentials reproduce the official parameter names (encoder.<i>.0.<name>).
        channels = [filts[1], filts[2], filts[3], filts[4], filts[4], filts[4]]
        self.encoder = nn.Sequential(
            *(nn.Sequential(ResidualBlock(c_in, c_out, first=i == 0)) for i, (c_in, c_out) in enumerate(channels))
        )
        encoded = filts[4][1]
        # One spectral node per sinc channel left after the (3, 3) max-pool (23 for 70 filters).
        self.pos_S = nn.Parameter(torch.randn(1, filts[0] // 3, encoded))
        self.master1 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.master2 = nn.Parameter(torch.randn(1, 1, gat_dims[0]))
        self.GAT_layer_S = GraphAttention(encoded, gat_dims[0], temperatures[0])
        self.GAT_layer_T = GraphAttention(encoded, gat_dims[0], temperatures[1])
        self.HtrgGAT_layer_ST11 = HeteroGraphAttention(gat_dims[0], gat_dims[1], temperatures[2])
        self.HtrgGAT_layer_ST12 = HeteroGraphAttention(gat_dims[1], gat_dims[1], temperatures[2])
        self.HtrgGAT_layer_ST21 = HeteroGraphAttention(gat_dims[0], gat_dims[1], temperatures[2])
        self.HtrgGAT_layer_ST22 = HeteroGraphAttention(gat_dims[1], gat_dims[1], temperatures[2])
        # As in the official model, pool_ratios[3] is never used and all four hetero-graph pools use [2].
        self.pool_S = GraphPool(pool_ratios[0], gat_dims[0], 0.3)
        self.pool_T = GraphPool(pool_ratios[1], gat_dims[0], 0.3)
        self.pool_hS1 = GraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.pool_hT1 = GraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.pool_hS2 = GraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.pool_hT2 = GraphPool(pool_ratios[2], gat_dims[1], 0.3)
        self.out_layer = nn.Linear(5 * gat_dims[1], 2)

    @classmethod
    def from_pretrained(cls, weights_path: str | os.PathLike, config: str | Mapping[str, Any] | None = None) -> AASIST:
        """Build the model for an official weight file and load it strictly, in eval mode.

        Parameters
        ----------
        weights_path : a state_dict saved by the official code (``AASIST.pth``, ``AASIST-L.pth``).
        config : a name from :data:`CONFIGS`, a model config, or None to pick the built-in config whose parameter
            shapes match the file.
        """
        state = load_state_dict_file(weights_path)
        if isinstance(config, str):
            if config not in CONFIGS:
                raise ConfigError(f"unknown AASIST config {config!r}; expected one of {sorted(CONFIGS)}")
            config = CONFIGS[config]
        # The initial values are overwritten at once: draw them without moving the global generator.
        with torch.random.fork_rng(devices=[]):
            if config is None:
                shapes = {key: tuple(value.shape) for key, value in state.items()}
                matches = [
                    name
                    for name, candidate in CONFIGS.items()
                    if {k: tuple(v.shape) for k, v in cls(candidate).state_dict().items()} == shapes
                ]
                if not matches:
                    raise ValueError(
                        f"{weights_path}: parameter names and shapes match none of the built-in configs "
                        f"{sorted(CONFIGS)}; pass its model config explicitly"
                    )
                config = CONFIGS[matches[0]]
            model = cls(config)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{weights_path}: does not fit the AASIST config: {err}") from err
        return model.eval()

    def _front_end(self, x: Tensor) -> Tensor:
        """(batch, samples) → |sinc conv| max-pooled (3, 3): (batch, 1, n_sinc // 3, (samples - K + 1) // 3)."""
        x = self.conv_time(x.unsqueeze(1))
        if self.training and self.freq_aug:
            x = x * frequency_mask(x.shape[1]).to(x)
        return F.max_pool2d(torch.abs(x).unsqueeze(1), (3, 3))

    def encode(self, x: Tensor) -> Tensor:
        """The convolutional encoder: (batch, samples) → (batch, channels, n_sinc // 3, time steps)."""
        # Six pooling stages of 3 after the (3, 3) front-end pool must leave at least one time step.
        shortest = 3**7 + self.conv_time.kernel_size - 1
        if x.dim() != 2 or x.shape[1] < shortest:
            raise ValueError(f"AASIST expects waveforms of shape (batch, >= {shortest} samples), got {tuple(x.shape)}")
        if not cpu_inference(self, x):
            return self._official_encoder(x)
        # CPU inference, one item at a time on any path: every intermediate stays small enough to be reused, not
        # re-faulted, and trying the official path on a large batch cannot exhaust the memory. Timed per item, so
        # that every batch size shares one warm-up.
        # Autocast is a per-thread setting that the worker threads of the parallel candidate would not share.
        if x.shape[0] > 1 and self.threads == "auto" and torch.get_num_threads() > 1 and not _autocast_on(x):
            with self._choice.timed(("encoder batch", *x.shape), ("items", "parallel")) as how:
                if how == "parallel":
                    return self._encode_parallel(x)
                return torch.cat([self._encode_item(x[i : i + 1]) for i in range(x.shape[0])])
        return torch.cat([self._encode_item(x[i : i + 1]) for i in range(x.shape[0])])

    def _encode_parallel(self, x: Tensor) -> Tensor:
        """The fused encoder of torch's thread count of items at once, each on one thread.

        No synchronisation between threads at each of the encoder's few hundred operations, and each item's
        working set in its own core's cache: at batch 8 on 2 idle cores, 147 ms an item against 174 ms for the
        items one after another on two threads.
        """
        # The sinc layer's measured choice is made by one thread at a time: the workers take its fixed method.
        method = self.conv_time.resolved_method
        items = [x[i : i + 1] for i in range(x.shape[0])]
        workers = _encoder_workers(torch.get_num_threads())
        with intra_op_threads(1):
            encoded = list(workers.map(
                lambda item: self._infer_encoder(item, method), items))
        return torch.cat(encoded)

    def _encode_item(self, x: Tensor) -> Tensor:
        counts = self._thread_counts()
        # The fused path first: a single call (one short file) runs it while the warm-up has not ranked anything.
        candidates = [("fused", n) for n in counts] + [("official", counts[0])]
        with self._choice.timed(("encoder", x.shape[1]), candidates) as (path, n), intra_op_threads(n):
            return self._official_encoder(x) if path == "official" else self._infer_encoder(x)

    def _thread_counts(self) -> tuple[int | None, ...]:
        """The intra-op thread counts a measured stretch of CPU inference may run on (None: torch's, untouched)."""
        if self.threads is None:
            return (None,)
        if self.threads == "auto":
            return tuple(dict.fromkeys((torch.get_num_threads(), 1)))
        return (int(self.threads),)

    def _official_encoder(self, x: Tensor) -> Tensor:
        return self.encoder(F.selu(self.first_bn(self._front_end(x))))

    @torch.no_grad()
    def _infer_encoder(self, x: Tensor, sinc_method: str | None = None) -> Tensor:
        """Eval-mode encoder: the front end in a few chunks, then the blocks pulled backwards in time segments.

        A segment of n steps of block i reads 3 n + 4 steps of stage i - 1, computed on demand (the few
        overlapping steps are recomputed), so no block output is ever held whole; all intermediates stay near
        ``INFERENCE_CHUNK_ELEMENTS`` values. ``sinc_method`` applies the sinc layer by that method rather than by
        its measured choice.
        """
        kernel, n_sinc = self.conv_time.kernel_size, self.conv_time.out_channels
        lengths = [(x.shape[-1] - kernel + 1) // 3]
        for _ in self.encoder:
            lengths.append(lengths[-1] // 3)
        # The blocks in order (each sits alone in its nested Sequential).
        weights = [m.fused_weights() for m in self.encoder.modules() if isinstance(m, ResidualBlock)]
        chunks = [max(1, INFERENCE_CHUNK_ELEMENTS // (3 * x.shape[0] * n_sinc))]
        chunks += [
            max(1, INFERENCE_CHUNK_ELEMENTS // (3 * x.shape[0] * w[0].shape[0] * (n_sinc // 3 + 1))) for w in weights
        ]

        def split(lo: int, hi: int, chunk: int) -> list[tuple[int, int]]:
            # Equal segments of about `chunk` steps (never a sliver of a few steps at the end).
            n_parts = max(1, round((hi - lo) / chunk))
            return list(itertools.pairwise(lo + (hi - lo) * k // n_parts for k in range(n_parts + 1)))

        gain, shift = batchnorm_affine(self.first_bn)
        front = x.new_empty(x.shape[0], 1, n_sinc // 3, lengths[0])
        for a, b in split(0, lengths[0], chunks[0]):
            segment = x[:, None, 3 * a : 3 * b + kernel - 1]
            y = self.conv_time(segment) if sinc_method is None else self.conv_time.correlate(segment, sinc_method)
            front[..., a:b] = torch.selu_(abs_max_pool(y).mul_(gain).add_(shift))

        def stage(level: int, start: int, stop: int) -> Tensor:
            # Steps [start, stop) of stage `level` (0: front end, i: block i), zero outside the signal.
            lo, hi = max(start, 0), min(stop, lengths[level])
            if level == 0:
                return F.pad(front[..., lo:hi], (lo - start, stop - hi))
            out = None
            for a, b in split(lo, hi, chunks[level]):
                seg = stage(level - 1, 3 * a - 2, 3 * b + 2)
                part = residual_block_segment(seg, weights[level - 1], a == 0, 3 * b == lengths[level - 1])
                if (a, b) == (start, stop):
                    return part
                if out is None:
                    shape = (*part.shape[:3], stop - start)
                    out = torch.empty(shape, dtype=part.dtype, device=part.device, memory_format=torch.channels_last)
                    if lo > start:
                        out[..., : lo - start] = 0
                    if hi < stop:
                        out[..., hi - start :] = 0
                out[..., a - start : b - start] = part
            assert out is not None  # split() always yields at least one segment
            return out

        return stage(len(weights), 0, lengths[-1])

    def embed(self, x: Tensor) -> Tensor:
        """The last hidden layer fed to ``out_layer``: (batch, samples) → (batch, 5 · gat_dims[1])."""
        e = self.encode(x)
        if not cpu_inference(self, x) or self.threads is None:
            return self._graph_embedding(e)
        with self._choice.timed(("graph", x.shape[0]), self._thread_counts()) as n, intra_op_threads(n):
            return self._graph_embedding(e)

    def _graph_embedding(self, e: Tensor) -> Tensor:
        e = torch.abs(e)
        spectral = e.amax(dim=3).transpose(1, 2) + self.pos_S
        out_S = self.pool_S(self.GAT_layer_S(spectral))
        temporal = e.amax(dim=2).transpose(1, 2)
        out_T = self.pool_T(self.GAT_layer_T(temporal))

        branches = []
        for first, second, master, pool_S, pool_T in (
            (self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12, self.master1, self.pool_hS1, self.pool_hT1),
            (self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22, self.master2, self.pool_hS2, self.pool_hT2),
        ):
            t, s, m = first(out_T, out_S, master)
            s, t = pool_S(s), pool_T(t)
            t_aug, s_aug, m_aug = second(t, s, m)
            branches.append([self.drop_way(t + t_aug), self.drop_way(s + s_aug), self.drop_way(m + m_aug)])
        (t1, s1, m1), (t2, s2, m2) = branches
        out_T, out_S, out_M = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        return torch.cat(
            [
                out_T.abs().amax(dim=1),
                out_T.mean(dim=1),
                out_S.abs().amax(dim=1),
                out_S.mean(dim=1),
                out_M.squeeze(1),
            ],
            dim=1,
        )

    def forward(self, x: Tensor) -> Tensor:
        """(batch, samples) float waveforms → logits (batch, 2); index 1 is bona fide."""
        return self.out_layer(self.drop(self.embed(x)))

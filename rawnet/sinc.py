"""Fixed sinc band-pass front end shared by RawNet2 and AASIST (SPEC §5).

The official models rebuild their sinc filters on every forward call although the filters never change; here
they are built once, in NumPy, bit-identical to the official float32 filters, and applied either by a direct
convolution or by an overlap-save FFT convolution (much faster for long kernels). In CPU inference the ``"auto"``
method runs whichever of the two its timing finds faster (:mod:`rawnet.tuning`); traced or exported, the layer is
always the direct convolution, since complex FFT tensors do not export.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rawnet.catalog import SINC_SCALES as SCALES
from rawnet.tuning import FastestChoice, cpu_inference, is_exporting

LAYOUTS = ("asvspoof2021", "icassp2021")
METHODS = ("auto", "direct", "fft")

# The official constructions sample the mel axis from the 257 bins of a 512-point FFT.
_N_GRID = 257
# Outside measured CPU inference (training, autograd, GPUs): FFT for kernels of at least this length. Measured on 2
# CPU cores: FFT about 5x faster than conv1d for 20 x 1,025 taps, no faster for 70-128 x 129 taps.
_FFT_MIN_KERNEL = 256
# Complex values per FFT chunk (2 MiB in complex64). With 8 MiB chunks the intermediates were fresh memory on every
# call: RawNet2's front end then spent more time in page faults (about 3,000 per clip) than in the FFTs.
_FFT_CHUNK = 1 << 18


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """HTK mel scale, ``2595 log10(1 + f / 700)``."""
    return 2595 * np.log10(1 + hz / 700)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700 * (10 ** (mel / 2595) - 1)


def band_edges(
    n_filters: int, sample_rate: int = 16000, layout: str = "asvspoof2021", scale: str = "mel"
) -> np.ndarray:
    """Band edges in Hz of the official sinc filter banks.

    Parameters
    ----------
    n_filters : number of band-pass filters N.
    sample_rate : sampling rate in Hz.
    layout : ``"asvspoof2021"`` (2021 challenge baseline and AASIST: N+1 edges equally spaced in mel from 0 to
        fs/2) or ``"icassp2021"`` (Tak et al.: the first N+1 of N+3 equally spaced points).
    scale : ``"mel"``, ``"inverse-mel"`` or ``"linear"``; only ``"mel"`` exists for ``"asvspoof2021"``.

    Returns
    -------
    np.ndarray
        float64, shape (N + 1,); filter i passes edge i to edge i + 1.
    """
    if n_filters < 1:
        raise ValueError(f"n_filters must be at least 1, got {n_filters}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown sinc layout {layout!r}; expected one of {LAYOUTS}")
    if scale not in SCALES:
        raise ValueError(f"unknown sinc scale {scale!r}; expected one of {SCALES}")
    if layout == "asvspoof2021" and scale != "mel":
        raise ValueError(f"layout 'asvspoof2021' only has the 'mel' scale, got {scale!r}")
    f = int(sample_rate / 2) * np.linspace(0, 1, _N_GRID)
    if layout == "asvspoof2021":
        mel = hz_to_mel(f)
        return mel_to_hz(np.linspace(mel.min(), mel.max(), n_filters + 1))
    if scale == "linear":
        return np.linspace(f.min(), f.max(), n_filters + 3)[: n_filters + 1]
    mel = hz_to_mel(f)
    edges = mel_to_hz(np.linspace(mel.min(), mel.max(), n_filters + 3))[: n_filters + 1]
    if scale == "inverse-mel":
        # The official "inversion" mirrors the edge list and shifts it by 1 Hz; kept as published.
        return np.abs(np.flip(edges) - 1)
    return edges


def sinc_filters(edges: np.ndarray, kernel_size: int, sample_rate: int = 16000) -> np.ndarray:
    """Hamming-windowed ideal band-pass filters between consecutive edges.

    Filter i is ``hamming(K) * (lp(edges[i+1]) - lp(edges[i]))`` with the ideal low-pass
    ``lp(fc)[n] = 2 fc / fs * sinc(2 fc n / fs)`` on ``n = -(K-1)/2 ... (K-1)/2``. The rounding follows the
    official construction step by step (float32 time support and sinc, float64 scaling, float32 product), so the
    values equal the official float32 filters exactly.

    Parameters
    ----------
    edges : band edges in Hz, shape (N + 1,).
    kernel_size : number of taps K (odd for a symmetric filter).
    sample_rate : sampling rate in Hz.

    Returns
    -------
    np.ndarray
        float64, shape (N, K), every value exactly representable in float32.
    """
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(f"edges must be a 1-D array of at least 2 values, got shape {edges.shape}")
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be at least 1, got {kernel_size}")
    support = np.arange(kernel_size, dtype=np.float32) - np.float32((kernel_size - 1) / 2)
    arg = (2 * edges[:, None]).astype(np.float32) * support / np.float32(sample_rate)
    lowpass = (2 * edges[:, None] / sample_rate) * np.sinc(arg).astype(np.float64)
    ideal = (lowpass[1:] - lowpass[:-1]).astype(np.float32)
    window = np.hamming(kernel_size).astype(np.float32)
    return (window * ideal).astype(np.float64)


def fft_block_length(kernel_size: int) -> int:
    """Overlap-save block length: the power of two of at least 8 K (about 7/8 of each block is output)."""
    return 1 << int(np.ceil(np.log2(8 * kernel_size)))


def fft_correlate(x: torch.Tensor, spectra: torch.Tensor, kernel_size: int, block: int) -> torch.Tensor:
    """Valid cross-correlation of single-channel signals with a filter bank, by overlap-save FFT.

    Parameters
    ----------
    x : (batch, 1, samples).
    spectra : (n_filters, block // 2 + 1) complex, the conjugated ``rfft(filters, block)``.
    kernel_size : filter length K.
    block : FFT length of one overlap-save block (> K).

    Returns
    -------
    torch.Tensor
        (batch, n_filters, samples - K + 1), equal to ``F.conv1d(x, filters)`` up to float rounding.
    """
    batch, _, length = x.shape
    n_filters = spectra.shape[0]
    n_out = length - kernel_size + 1
    hop = block - kernel_size + 1
    n_blocks = -(-n_out // hop)
    # Circular correlation of a block is exact for its first `hop` outputs, which never wrap around.
    frames = F.pad(x[:, 0], (0, (n_blocks - 1) * hop + block - length)).unfold(-1, block, hop)
    # A few blocks at a time: the (batch, blocks, filters, bins) product of a whole input would not stay in cache.
    step = max(1, _FFT_CHUNK // (batch * n_filters * spectra.shape[1]))
    out = torch.empty(batch, n_filters, n_blocks, hop, dtype=torch.result_type(x, spectra.real), device=x.device)
    for start in range(0, n_blocks, step):
        product = torch.fft.rfft(frames[:, start : start + step], block)[:, :, None, :] * spectra
        out[:, :, start : start + step] = torch.fft.irfft(product, block)[..., :hop].transpose(1, 2)
    return out.view(batch, n_filters, n_blocks * hop)[..., :n_out]


class SincConv(nn.Module):
    """Fixed (untrained) sinc band-pass filter bank applied as a valid 1-D cross-correlation.

    Parameters
    ----------
    out_channels : number of filters.
    kernel_size : filter length; an even length is made odd (+1), as in the official code.
    sample_rate : sampling rate in Hz.
    layout, scale : band-edge construction, see :func:`band_edges`.
    method : ``"direct"`` (``F.conv1d``), ``"fft"`` (overlap-save FFT) or ``"auto"``: in CPU inference (eval mode,
        no autograd) the faster of the two as timed on the calls of each input shape
        (:class:`rawnet.tuning.FastestChoice`), elsewhere :attr:`resolved_method`.

    The filters are a non-persistent buffer: they are not part of the state_dict, like in the official models.
    Input (batch, 1, samples) → output (batch, out_channels, samples - kernel_size + 1). Traced or exported (ONNX,
    TorchScript, ``torch.export``) the layer is the direct convolution whatever the method: the same function,
    without complex tensors.
    """

    # Registered as a buffer in __init__; declared so that type checkers see a Tensor, not Tensor | Module.
    filters: torch.Tensor

    def __init__(
        self,
        out_channels: int,
        kernel_size: int,
        sample_rate: int = 16000,
        layout: str = "asvspoof2021",
        scale: str = "mel",
        method: str = "auto",
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown SincConv method {method!r}; expected one of {METHODS}")
        if kernel_size % 2 == 0:
            kernel_size += 1
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.sample_rate = sample_rate
        self.layout = layout
        self.scale = scale
        self.method = method
        edges = band_edges(out_channels, sample_rate, layout, scale)
        filters = torch.from_numpy(sinc_filters(edges, kernel_size, sample_rate)).to(torch.float32)
        self.register_buffer("filters", filters.unsqueeze(1), persistent=False)
        self._spectra: dict[tuple, torch.Tensor] = {}
        self._choice = FastestChoice()

    def extra_repr(self) -> str:
        return (
            f"{self.out_channels}, kernel_size={self.kernel_size}, sample_rate={self.sample_rate}, "
            f"layout={self.layout!r}, scale={self.scale!r}, method={self.method!r}"
        )

    @property
    def resolved_method(self) -> str:
        """The method ``forward`` uses outside timed CPU inference: ``"direct"`` or ``"fft"``."""
        if self.method != "auto":
            return self.method
        return "fft" if self.kernel_size >= _FFT_MIN_KERNEL else "direct"

    def _filter_spectra(self, block: int) -> torch.Tensor:
        filters = self.filters
        key = (block, filters.dtype, filters.device, filters.data_ptr())
        spectra = self._spectra.get(key)
        if spectra is None:
            # A normal tensor even when first built under inference_mode, so later autograd use can save it.
            with torch.inference_mode(False), torch.no_grad():
                spectra = torch.fft.rfft(filters[:, 0, :], block).conj_physical()
            self._spectra = {key: spectra}
        return spectra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"SincConv expects input of shape (batch, 1, samples), got {tuple(x.shape)}")
        if x.shape[-1] < self.kernel_size:
            raise ValueError(
                f"SincConv input has {x.shape[-1]} samples, fewer than the kernel size {self.kernel_size}"
            )
        if is_exporting():
            return F.conv1d(x, self.filters)
        if self.method == "auto" and cpu_inference(self, x):
            with self._choice.timed(tuple(x.shape), ("direct", "fft")) as method:
                return self.correlate(x, method)
        return self.correlate(x, self.resolved_method)

    def correlate(self, x: torch.Tensor, method: str) -> torch.Tensor:
        """The layer's output by ``method`` (``"direct"`` or ``"fft"``), without any measured choice (which one
        Python thread at a time may make)."""
        if method == "direct":
            return F.conv1d(x, self.filters)
        block = fft_block_length(self.kernel_size)
        return fft_correlate(x, self._filter_spectra(block), self.kernel_size, block)

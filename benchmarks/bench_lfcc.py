"""LFCC throughput on one thread: lfcc_gmm.features against a per-frame Python loop, spafe, torchaudio and
the bare FFT of the frames (the ceiling), measured side by side in one run.

Throughput is seconds of audio per second of compute on one core ("x real time"). The methods are timed
in interleaved rounds, so a load change on a shared machine hits all of them alike; the table shows the
median of the rounds. Before timing, the per-frame loop and the streaming form are checked against
``lfcc`` (the loop to 1e-8, the stream to 1e-12, float32 to 1e-3); a mismatch is an error (exit 1).
spafe and torchaudio compute a related but different LFCC (natural log, static coefficients only) and are
timed, not compared.

Run from the repository root: ``python benchmarks/bench_lfcc.py [--quick] [--clock cpu]``. The output is
a Markdown table.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import platform
import sys
from collections.abc import Callable

import numpy as np
import scipy
import scipy.fft
from common import interleaved_medians, throughput_arguments

from lfcc_gmm.features import frame_signal, iter_lfcc, lfcc

SAMPLE_RATE = 16000
TARGETS = {"float64": 1500, "float32": 3000}  # x real time, 2019 preset, one thread

# (label, dtype, callable, note)
Method = tuple[str, str, Callable[[], object], str]


def loop_lfcc(signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The 2019 preset written the straightforward way: one frame at a time, as a first version would."""
    length, hop, n_fft, n_filters = 320, 160, 512, 20
    emphasised = np.append(signal[0], signal[1:] - 0.97 * signal[:-1])
    window = np.hamming(length)
    freqs = (sample_rate / 2) * np.linspace(0, 1, n_fft // 2 + 1)
    edges = np.linspace(0, sample_rate / 2, n_filters + 2)
    bank = np.zeros((n_filters, freqs.size))
    for i in range(n_filters):
        left, centre, right = edges[i], edges[i + 1], edges[i + 2]
        for k, f in enumerate(freqs):
            if left < f <= centre:
                bank[i, k] = (f - left) / (centre - left)
            elif centre < f < right:
                bank[i, k] = (right - f) / (right - centre)
    n_frames = math.ceil((emphasised.size - (length - hop)) / hop)
    static = np.empty((n_frames, n_filters))
    for t in range(n_frames):
        frame = np.zeros(length)
        chunk = emphasised[t * hop : t * hop + length]
        frame[: chunk.size] = chunk
        power = np.abs(np.fft.rfft(frame * window, n_fft)) ** 2
        log_energies = np.log10(bank @ power + np.finfo(float).eps)
        static[t] = scipy.fft.dct(log_energies, type=2, norm="ortho")

    def delta(c: np.ndarray) -> np.ndarray:
        d = np.empty_like(c)
        for t in range(c.shape[0]):
            d[t] = c[min(t + 1, c.shape[0] - 1)] - c[max(t - 1, 0)]
        return d

    d = delta(static)
    return np.hstack([static, d, delta(d)])


def _optional_methods(signal: np.ndarray) -> tuple[list[Method], list[str]]:
    methods: list[Method] = []
    skipped: list[str] = []
    if importlib.util.find_spec("spafe") is None:
        skipped.append("spafe `lfcc`")
    else:
        from spafe.features.lfcc import lfcc as spafe_lfcc
        from spafe.utils.preprocessing import SlidingWindow

        window = SlidingWindow(win_len=0.02, win_hop=0.01, win_type="hamming")

        def run_spafe():
            return spafe_lfcc(signal, SAMPLE_RATE, num_ceps=20, pre_emph_coeff=0.97, window=window, nfilts=20, nfft=512)

        methods.append(("spafe `lfcc`", "float64", run_spafe, "static only, ln; builds its filterbank per call"))
    if importlib.util.find_spec("torchaudio") is None:
        skipped.append("torchaudio `LFCC`")
    else:
        import torch
        import torchaudio

        torch.set_num_threads(1)
        transform = torchaudio.transforms.LFCC(
            sample_rate=SAMPLE_RATE,
            n_filter=20,
            n_lfcc=20,
            speckwargs={"n_fft": 512, "win_length": 320, "hop_length": 160, "window_fn": torch.hamming_window},
        )
        tensor = torch.from_numpy(signal)

        def run_torchaudio():
            with torch.no_grad():
                return transform(tensor)

        methods.append((f"torchaudio `LFCC` {torchaudio.__version__}", "float64", run_torchaudio, "static only"))
    return methods, skipped


def _check(name: str, got: np.ndarray, expected: np.ndarray, atol: float) -> None:
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=0, atol=atol):
        error = np.abs(got - expected).max() if got.shape == expected.shape else f"shape {got.shape}"
        sys.exit(f"error: {name} differs from lfcc() beyond {atol}: {error}")


def main() -> None:
    seconds, rounds, clock_name, clock = throughput_arguments(__doc__.splitlines()[0])

    signal = np.random.default_rng(0).uniform(-0.5, 0.5, int(seconds * SAMPLE_RATE))
    single = signal.astype(np.float32)
    frames = {dtype: frame_signal(x, 320, 160) for dtype, x in (("float64", signal), ("float32", single))}
    blocks = [signal[i : i + SAMPLE_RATE] for i in range(0, signal.size, SAMPLE_RATE)]

    reference = lfcc(signal)
    _check("per-frame loop", loop_lfcc(signal), reference, 1e-8)
    _check("iter_lfcc (1 s blocks)", np.concatenate(list(iter_lfcc(blocks))), reference, 1e-12)
    _check("lfcc float32", lfcc(single, dtype=np.float32), reference, 1e-3)

    methods: list[Method] = [
        ("ours `lfcc` asvspoof2019", "float64", lambda: lfcc(signal), "60 columns"),
        ("ours `lfcc` asvspoof2019", "float32", lambda: lfcc(single, dtype=np.float32), "60 columns"),
        ("ours `lfcc` asvspoof2021", "float64", lambda: lfcc(signal, preset="asvspoof2021"), "57 columns"),
        (
            "ours `lfcc` asvspoof2021",
            "float32",
            lambda: lfcc(single, preset="asvspoof2021", dtype=np.float32),
            "57 columns",
        ),
        ("ours `iter_lfcc`, 1 s blocks", "float64", lambda: list(iter_lfcc(blocks)), "streaming, 2019"),
        ("per-frame Python loop", "float64", lambda: loop_lfcc(signal), "2019, same values (1e-8)"),
    ]
    for dtype, framed in frames.items():
        padded = np.pad(framed, ((0, 0), (0, 512 - framed.shape[1])))
        methods += [
            (
                "bare `scipy.fft.rfft` of the frames, n=512",
                dtype,
                functools.partial(scipy.fft.rfft, framed, n=512, axis=-1, workers=1),
                "ceiling: the FFT alone",
            ),
            (
                "bare `scipy.fft.rfft` of frames stored zero-padded",
                dtype,
                functools.partial(scipy.fft.rfft, padded, axis=-1, workers=1),
                "ceiling, as `lfcc` lays frames out",
            ),
        ]
    extra, skipped = _optional_methods(signal)
    methods += extra

    medians = interleaved_medians([fn for _, _, fn, _ in methods], rounds, clock)
    ours = {methods[i][1]: medians[i] for i in (0, 1)}
    print(
        f"LFCC throughput, one thread ({clock_name} clock), {seconds:g} s of 16 kHz audio, median of {rounds} "
        f"interleaved rounds; numpy {np.__version__}, scipy {scipy.__version__}, {platform.machine()}"
    )
    print()
    print("| implementation | dtype | ms per call | x real time | time / ours 2019 (same dtype) | note |")
    print("|---|---|---:|---:|---:|---|")
    for (label, dtype, _, note), median in zip(methods, medians, strict=True):
        print(
            f"| {label} | {dtype} | {1e3 * median:.2f} | {seconds / median:,.0f} | "
            f"{median / ours[dtype]:.2f} | {note} |"
        )
    for label in skipped:
        print(f"| {label} | | | | | skipped: not installed |")
    print()
    for dtype, target in TARGETS.items():
        achieved = seconds / ours[dtype]
        verdict = "met" if achieved >= target else "NOT met"
        print(f"- 2019 preset, {dtype}: {achieved:,.0f}x real time (target {target:,}x: {verdict})")


if __name__ == "__main__":
    main()

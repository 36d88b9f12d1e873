"""RawNet2 CPU inference: the official computation against rawnet.rawnet2.RawNet2, side by side.

The baseline below transcribes what the official forward computes on every call: it rebuilds the sinc filters
filter by filter (NumPy sinc on a float32 support, copied into a float32 tensor), applies them by a direct
``conv1d``, and in the 2021 baseline also evaluates the discarded pre-activation of every residual block. It is
timed twice: without autograd, and with it, as the official main.py scores (its ``produce_evaluation_file`` calls
the model in eval mode but not under ``torch.no_grad``). Beside it: the module with its measured fast paths off
(*plain*: FFT sinc, ``nn.GRU`` on torch's threads, what :func:`rawnet.tuning.fast_paths_off` runs) and the default
(*ours*: each fast path the fastest of its candidates as timed on the calls, the plain ones among them). The plain
module is timed twice, as *plain* and *plain again*: the ratio of the two (*A/A*) is what noise alone makes of a
ratio, the band against which *vs plain* (plain / ours) is read. All use the same random weights and inputs; their
outputs must agree to 1e-4 before any timing is printed.

Run from the repository root: ``python benchmarks/bench_rawnet2.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from common import competing_processes, machine_summary, paired_ratio

from rawnet.rawnet2 import SINC_LAYOUTS, VARIANTS, RawNet2
from rawnet.sinc import band_edges
from rawnet.tuning import FastestChoice, fast_paths_off

TOLERANCE = 1e-4
#: Calls before the timing: the measured choice's warm-up, every candidate timed `rounds` times (the GRU has four).
WARM_UP_CALLS = 4 * FastestChoice().rounds


def official_sinc_filters(edges: np.ndarray, kernel_size: int, sample_rate: int = 16000) -> torch.Tensor:
    """The official per-call filter construction (one filter at a time, mixed NumPy/torch arithmetic)."""
    support = torch.arange(-(kernel_size - 1) / 2, (kernel_size - 1) / 2 + 1)
    bank = torch.zeros(len(edges) - 1, kernel_size)
    for i in range(len(edges) - 1):
        low, high = edges[i], edges[i + 1]
        high_pass = (2 * high / sample_rate) * np.sinc(2 * high * support / sample_rate)
        low_pass = (2 * low / sample_rate) * np.sinc(2 * low * support / sample_rate)
        bank[i, :] = torch.Tensor(np.hamming(kernel_size)) * torch.Tensor(high_pass - low_pass)
    return bank.view(len(edges) - 1, 1, kernel_size)


def official_forward(model: RawNet2, edges: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    """The official forward in eval mode, computed straightforwardly with ``model``'s weights."""
    kernel_size = model.sinc_conv.kernel_size
    x = F.conv1d(x.view(x.shape[0], 1, x.shape[1]), official_sinc_filters(edges, kernel_size))
    x = model.selu(model.first_bn(F.max_pool1d(torch.abs(x), 3)))
    for i in range(model.n_blocks):
        block = getattr(model, f"block{i}")[0]
        pre = x if block.first else block.lrelu(block.bn1(x))
        # The 2021 baseline computes the pre-activation and then convolves the block input instead.
        out = block.conv1(x if model.variant == "asvspoof2021" else pre)
        out = block.conv2(block.lrelu(block.bn2(out)))
        identity = block.conv_downsample(x) if hasattr(block, "conv_downsample") else x
        x = block.mp(out + identity)
        scale = torch.sigmoid(getattr(model, f"fc_attention{i}")(F.adaptive_avg_pool1d(x, 1).view(x.shape[0], -1)))
        scale = scale.view(scale.shape[0], scale.shape[1], -1)
        x = x * scale + scale
    x = model.selu(model.bn_before_gru(x))
    x, _ = model.gru(x.permute(0, 2, 1))
    x = model.fc2_gru(model.fc1_gru(x[:, -1, :]))
    return F.log_softmax(x, dim=1) if model.variant == "asvspoof2021" else x


def randomize_batchnorm(model: torch.nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial statistics so that the comparison is not degenerate."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            n = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.weight.data.copy_(1 + 0.1 * torch.randn(n, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(n, generator=generator))


def paired_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each function, timed in alternation so that load changes hit all of them alike."""
    for fn in fns.values():
        fn()  # warm-up: allocator, FFT plans, filter spectra
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, batch 1 only")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--competing", type=int, default=0,
                        help="other processes kept busy during the timing (a shared machine); default 0")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Batch 1 gets many repeats (its timings on a shared VM spread widely); batch 8 few: one official icassp2021
    # call takes seconds on 2 cores.
    repeats = {1: 3} if args.quick else {1: 25, 8: 5}
    batches = tuple(repeats)

    with competing_processes(args.competing):
        run(batches, repeats, args.competing)


def in_inference_mode(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run under ``torch.inference_mode()``."""

    def wrapped() -> object:
        with torch.inference_mode():
            return fn()

    return wrapped


def plain(model: RawNet2, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with the measured fast paths off."""
    with fast_paths_off():
        return model(x)


def first_ranked(choice: FastestChoice, batch: int) -> dict[object, object]:
    """The candidate ``choice`` ranks first, by key, for the keys of a batch of ``batch``."""
    ranked = {}
    for key, timings in choice.samples.items():
        if key[0] == batch or (isinstance(key[0], str) and key[1] == batch):  # ("front end", batch, ...)
            ranked[key] = choice.fastest(key, list(timings))
    return ranked


def choices(model: RawNet2, x: torch.Tensor) -> str:
    """The GRU, sinc, front-end and block candidates the timing ranks first for ``x`` (e.g. ``split/2t, fft,
    chunked, nwc``)."""
    ranked = {**first_ranked(model._choice, x.shape[0]), **first_ranked(model.sinc_conv._choice, x.shape[0])}
    gru = next(c for c in ranked.values() if isinstance(c, tuple))
    front = [c for c in ranked.values() if c in ("batch", "chunked")]
    blocks = [c for c in ranked.values() if c in ("ncw", "nwc")]
    sinc = next((c for c in ranked.values() if c in ("direct", "fft")), "sinc not timed")
    return f"{gru[0]}/{gru[1]}t, {sinc}" + "".join(f", {c}" for c in front + blocks)


def run(batches: tuple[int, ...], repeats: dict[int, int], competing: int) -> None:
    counts = ", ".join(f"batch {b}: {repeats[b]}" for b in batches)
    load = f"{competing} other busy process(es) competing for the cores" if competing else "nothing else running"
    print(f"Machine: {machine_summary()}\n")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, {load}; median seconds per call of "
        f"{counts} timed repeats, all five alternating. *official*: the official computation without autograd; "
        "*as scored*: the same with autograd on, as the official main.py scores (it calls the model without "
        "torch.no_grad); *plain*: the module with its measured fast paths off (fixed filters, FFT sinc, nn.GRU on "
        "torch's threads); *ours*: the default, every fast path the fastest of its candidates (sinc: FFT or "
        "direct; the front end whole or in stretches of time; the blocks in (batch, channels, time) or "
        "channels-last; GRU: nn.GRU or the split recurrence, on "
        f"torch's count or one thread) as timed on the calls, after its {WARM_UP_CALLS} warm-up calls; *mean* "
        "includes its re-timings of slower candidates. Speed-up = official / ours (without autograd on both sides), "
        "of the medians and of the best times (the best times suffer less from other load on a shared machine); "
        "*vs plain* = plain / ours and *A/A* = plain / plain again, the median and quartiles of the ratios of "
        "calls made moments apart (A/A shows the noise); *chosen* = the candidates ranked first.\n"
    )
    print(
        "| variant | batch | official s | as scored s | plain s | ours s | ours mean s | speed-up | "
        "best-time speed-up | vs plain | A/A | chosen | max diff |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for seed, variant in enumerate(VARIANTS):
        torch.manual_seed(seed)
        model = RawNet2(variant=variant).eval()
        randomize_batchnorm(model, seed)
        config = model.config
        edges = band_edges(config["filts"][0], layout=SINC_LAYOUTS[variant])
        for batch in batches:
            x = 0.1 * torch.randn(batch, config["nb_samp"], generator=torch.Generator().manual_seed(batch))
            with torch.inference_mode():
                reference = official_forward(model, edges, x)
                outputs = [plain(model, x)] + [model(x) for _ in range(WARM_UP_CALLS)]
            diff = max((reference - output).abs().max().item() for output in outputs)
            if not diff <= TOLERANCE:
                raise SystemExit(f"{variant}, batch {batch}: outputs differ by {diff:.3g} > {TOLERANCE}")
            fns = {
                "official": in_inference_mode(lambda: official_forward(model, edges, x)),  # noqa: B023
                "as-scored": lambda: official_forward(model, edges, x),  # noqa: B023
                "plain": in_inference_mode(lambda: plain(model, x)),  # noqa: B023
                "ours": in_inference_mode(lambda: model(x)),  # noqa: B023
                "plain again": in_inference_mode(lambda: plain(model, x)),  # noqa: B023
            }
            times = paired_times(fns, repeats[batch])
            t = {name: statistics.median(values) for name, values in times.items()}
            best = min(times["official"]) / min(times["ours"])
            print(
                f"| {variant} | {batch} | {t['official']:.3f} | {t['as-scored']:.3f} | {t['plain']:.3f} | "
                f"{t['ours']:.3f} | {statistics.mean(times['ours']):.3f} | {t['official'] / t['ours']:.2f}x | "
                f"{best:.2f}x | {paired_ratio(times['plain'], times['ours'])} | "
                f"{paired_ratio(times['plain'], times['plain again'])} | {choices(model, x)} | {diff:.1e} |"
            )


if __name__ == "__main__":
    main()

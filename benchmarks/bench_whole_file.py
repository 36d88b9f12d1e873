"""Whole-file scoring: AASIST over a 60 s recording, and what LFCC-GMM's segment scores cost.

1. AASIST, whole file: ``AASISTScorer.score_files`` on a 60 s FLAC (decode, speech detection, 29 windows of
   64,600 samples with 50 % overlap, batches of 8, the speech-weighted mean), beside the official single-window
   forward (the transcription in ``bench_aasist.py``) repeated over the same 29 windows in the same batches. The
   window scores must agree to 1e-4 before anything is timed. Target: at least 12× real time (≤ 5 s) on 2 cores.
   With the ``onnx`` extra, ``--scorer aasist-onnx`` (the bundled ONNX graph by ONNX Runtime) on the same file too.
2. LFCC-GMM: ``score_timelines`` of 3-4 s and 60 s signals with the default segment grid against the same without
   segments (the plain file score), with 512-component GMMs. Target: segments cost less than 10 % more.

Medians of interleaved runs; torch and BLAS threads fixed (2 by default). Run from the repository root:
``python benchmarks/bench_whole_file.py [--quick] [--only aasist|lfcc]``. Part 1 needs ``../shared/reference``
(or ``ANTISPOOF_REFERENCE_DIR``) for the official weights; without it that part says so and is skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from bench_aasist import official_band_pass, official_forward
from common import REFERENCE_DIR, speech_like
from threadpoolctl import threadpool_limits

from lfcc_gmm.baseline import LFCCGMMScorer
from lfcc_gmm.gmm import DiagonalGMM
from lfcc_gmm.segments import SegmentGrid
from rawnet.checkpoint import read_torch_file
from rawnet.scorers import AASISTScorer

SECONDS = 60.0
TARGET_REAL_TIME = 12.0
TARGET_SEGMENT_COST = 0.10
TOLERANCE = 1e-4


def interleaved(fns: dict[str, object], runs: int) -> dict[str, float]:
    """Median seconds of each callable, the callables run in turn ``runs`` times after one warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # type: ignore[operator]
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def aasist_part(folder: Path, runs: int) -> None:
    weights = REFERENCE_DIR / "aasist" / "AASIST.pth"
    if not weights.is_file():
        print(f"AASIST part skipped: no official weights at {weights} (set ANTISPOOF_REFERENCE_DIR).\n")
        return
    rng = np.random.default_rng(0)
    path = folder / "sixty.flac"
    sf.write(path, speech_like(SECONDS, rng), 16000, subtype="PCM_16")
    scorer = AASISTScorer.load(weights, device="cpu", batch_size=8)
    signal = sf.read(path, dtype="float64")[0]
    windows = scorer.model_inputs(signal)
    state = read_torch_file(weights)
    config = scorer.spec_.config
    band_pass = official_band_pass(config)
    batches = [torch.from_numpy(windows[i : i + 8]) for i in range(0, windows.shape[0], 8)]

    def official() -> np.ndarray:
        with torch.inference_mode():
            return np.concatenate([official_forward(state, config, band_pass, b)[:, 1].numpy() for b in batches])

    ours = scorer.score_windows(windows)
    gap = float(np.max(np.abs(official() - ours)))
    if gap > TOLERANCE:
        raise SystemExit(f"window scores differ from the official forward by {gap:.2e} > {TOLERANCE}")
    fns = {"ours": lambda: scorer.score_files([path]), "official": official}
    if importlib.util.find_spec("onnxruntime") is not None:  # the onnx extra: the same scoring by ONNX Runtime
        from rawnet.onnx_scorers import AASISTONNXScorer

        graph = AASISTONNXScorer.load("aasist", batch_size=8, threads=torch.get_num_threads())
        fns["onnx"] = lambda: graph.score_files([path])
    medians = interleaved(fns, runs)
    real_time = SECONDS / medians["ours"]
    print(f"AASIST, whole file: a {SECONDS:.0f} s FLAC, {windows.shape[0]} windows of 64,600 samples (50 % overlap), "
          f"batches of 8, {torch.get_num_threads()} torch threads; window scores equal the official forward's to "
          f"{gap:.1e}.\n")
    print("| path | seconds | × real time | target |")
    print("|---|---:|---:|---|")
    print(f"| `score_files` (decode, speech detection, windows, aggregation) | {medians['ours']:.2f} | "
          f"{real_time:.1f} | {'≥' if real_time >= TARGET_REAL_TIME else '<'} {TARGET_REAL_TIME:g}× |")
    if "onnx" in medians:
        onnx_real_time = SECONDS / medians["onnx"]
        print(f"| `score_files` of `--scorer aasist-onnx` (the same, by ONNX Runtime) | {medians['onnx']:.2f} | "
              f"{onnx_real_time:.1f} | {'≥' if onnx_real_time >= TARGET_REAL_TIME else '<'} {TARGET_REAL_TIME:g}× |")
    print(f"| official forward over the same windows (network only) | {medians['official']:.2f} | "
          f"{SECONDS / medians['official']:.1f} | |")
    print(f"\nRatio official / ours: {medians['official'] / medians['ours']:.2f}.\n")


def random_gmm(rng: np.random.Generator, dims: int = 60, components: int = 512) -> DiagonalGMM:
    # Timing does not depend on the values: a random mixture of the official size.
    weights = rng.dirichlet(np.ones(components))
    return DiagonalGMM.from_arrays({"weights": weights, "means": rng.standard_normal((components, dims)),
                                    "covariances": rng.uniform(0.5, 2.0, (components, dims))})


def lfcc_part(runs: int, quick: bool) -> None:
    rng = np.random.default_rng(1)
    scorer = LFCCGMMScorer()
    scorer.bonafide_gmm_, scorer.spoof_gmm_ = random_gmm(rng), random_gmm(rng)
    sets = {"100 files of 3-4 s": [speech_like(rng.uniform(3, 4), rng) for _ in range(30 if quick else 100)],
            "one 60 s file": [speech_like(SECONDS, rng)]}
    grid = SegmentGrid()
    print("LFCC-GMM, 512 components per class, one process: the file score alone against the file score with its "
          f"segments ({grid.segment_s:.4g} s every {grid.hop_s:.4g} s).\n")
    print("| signals | file score (s) | with segments (s) | extra cost | target |")
    print("|---|---:|---:|---:|---|")
    for name, signals in sets.items():
        speech = [None] * len(signals)
        medians = interleaved({
            "plain": lambda s=signals, sp=speech: scorer.score_timelines(s, sp, None),
            "segments": lambda s=signals, sp=speech: scorer.score_timelines(s, sp, grid),
        }, runs)
        cost = medians["segments"] / medians["plain"] - 1
        print(f"| {name} | {medians['plain']:.3f} | {medians['segments']:.3f} | {100 * cost:+.1f} % | "
              f"{'<' if cost < TARGET_SEGMENT_COST else '≥'} {100 * TARGET_SEGMENT_COST:.0f} % |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs, fewer files")
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads (default 2)")
    parser.add_argument("--only", choices=("aasist", "lfcc"), help="run one part")
    args = parser.parse_args()
    runs = 3 if args.quick else 7
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(args.threads):
        if args.only != "lfcc":
            aasist_part(Path(tmp), runs)
        if args.only != "aasist":
            lfcc_part(runs, args.quick)


if __name__ == "__main__":
    main()

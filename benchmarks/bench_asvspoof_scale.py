"""ASVspoof-size dry run of the LFCC-GMM pipeline: extract features, train the 512-component GMMs, score.

Generates a synthetic stand-in for ASVspoof 2019 LA train — 25,380 clips of 3–4 s, 10.2 % bona fide —
or the fraction given by ``--fraction`` (default 0.1, with the full-size figures extrapolated linearly:
every stage is linear in the number of clips), then times each stage of the toolkit on it and reports
the process's peak RSS after each stage. Audio generation is not part of the toolkit and is not counted.

Run from the repository root: ``python benchmarks/bench_asvspoof_scale.py [--fraction F] [--jobs N] [--quick]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import self_peak_rss_mib, write_clip

from lfcc_gmm.baseline import LFCCGMMScorer
from lfcc_gmm.batch import score_trials
from lfcc_gmm.protocols import Trial

LA_TRAIN_CLIPS = 25_380
LA_BONAFIDE_SHARE = 2_580 / 25_380


def generate(folder: Path, n: int, seed: int = 0) -> list[Trial]:
    rng = np.random.default_rng(seed)
    # The class is drawn before the clip, as the generator has always done, so the data stay the same.
    return [write_clip(folder, f"LA_T_{i:07d}", rng.random() >= LA_BONAFIDE_SHARE, "A0X", rng) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the 25,380 clips to generate")
    parser.add_argument("--jobs", type=int, default=2, help="processes for extraction and scoring")
    parser.add_argument("--components", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="1 %% of the clips, 64 components, 3 iterations")
    args = parser.parse_args()
    if args.quick:
        args.fraction, args.components, args.iterations = 0.01, 64, 3
    n = max(20, round(LA_TRAIN_CLIPS * args.fraction))
    scale = LA_TRAIN_CLIPS / n
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        trials = generate(Path(tmp), n)
        generation = time.perf_counter() - start
        stamps: dict[str, float] = {}
        rss: dict[str, float] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in stamps:
                stamps[stage] = time.perf_counter()
                rss[f"before {stage}"] = self_peak_rss_mib()

        scorer = LFCCGMMScorer(n_components=args.components, max_iter=args.iterations, jobs=args.jobs)
        start = time.perf_counter()
        scorer.fit(trials, progress=progress)
        trained = time.perf_counter()
        rss["after training"] = self_peak_rss_mib()
        result = score_trials(scorer, trials, Path(tmp) / "scores.txt", chunk_size=256)
        scored = time.perf_counter()
        rss["after scoring"] = self_peak_rss_mib()
        assert result.ok, result.failures[:3]

    frames = scorer.training_summary_["bonafide"]["frames"] + scorer.training_summary_["spoof"]["frames"]
    stages = [
        ("LFCC extraction (train set)", stamps["bonafide"] - start, rss["before bonafide"]),
        (f"EM, {args.components} components × {args.iterations} iterations, both classes",
         trained - stamps["bonafide"], rss["after training"]),
        ("scoring every clip (batch runner, features included)", scored - trained, rss["after scoring"]),
    ]
    print(f"{n:,} synthetic clips of 3–4 s ({100 * n / LA_TRAIN_CLIPS:.1f} % of ASVspoof 2019 LA train), "
          f"{frames:,} frames of 60 dims; jobs={args.jobs}. Generating the audio took {generation:.0f} s "
          "(not counted).\n")
    print("| stage | wall (s) | extrapolated to 25,380 clips (s) | peak RSS so far (MiB) |")
    print("|---|---:|---:|---:|")
    for label, seconds, peak in stages:
        print(f"| {label} | {seconds:.1f} | {seconds * scale:.0f} | {peak:.0f} |")
    total = scored - start
    print(f"| **total** | {total:.1f} | {total * scale:.0f} | {max(rss.values()):.0f} |")
    print(f"\nScoring: {n / (scored - trained):.0f} files/s. Peak RSS is the whole process's high-water mark; "
          "EM memory grows with the frames held (float32), about "
          f"{frames * scale * 60 * 4 / 2**30:.1f} GiB at full size.")


if __name__ == "__main__":
    main()

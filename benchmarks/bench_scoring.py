"""End-to-end LFCC-GMM scoring throughput: files per second on 3–4 s FLAC files, features included.

A 512-component model per class (the official size) is trained briefly on the generated files, then the
same files are scored through ``LFCCGMMScorer.score_files`` (decode + LFCC + two GMM log-likelihoods) and
through the resumable batch runner that ``antispoof score`` uses (which adds the score-file I/O), with 1 and
2 worker processes. Target: ≥ 200 files/s on a 2-core machine.

Run from the repository root: ``python benchmarks/bench_scoring.py [--quick]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from common import median_seconds, write_clip

from lfcc_gmm.baseline import LFCCGMMScorer
from lfcc_gmm.batch import score_trials
from lfcc_gmm.protocols import Trial

TARGET_FILES_PER_SECOND = 200


def make_files(folder: Path, n: int, seed: int = 0) -> list[Trial]:
    rng = np.random.default_rng(seed)
    return [write_clip(folder, f"B_{i:05d}", i % 2 == 1, "X01", rng) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 files, 2 repeats")
    parser.add_argument("--files", type=int, help="number of files (default 600, quick 100)")
    args = parser.parse_args()
    n_files = args.files or (100 if args.quick else 600)
    repeats = 2 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trials = make_files(folder, n_files)
        audio_seconds = sum(sf.info(str(t.path)).duration for t in trials)
        start = time.perf_counter()
        scorer = LFCCGMMScorer(n_components=512, max_iter=2, init_samples=20_000, jobs=2).fit(trials)
        train_seconds = time.perf_counter() - start
        paths = [t.path for t in trials]
        print(f"{n_files} files, {audio_seconds / n_files:.2f} s each on average; 512 components per class "
              f"(trained for the benchmark in {train_seconds:.0f} s).\n")
        print("| path | jobs | files/s | × real time | target |")
        print("|---|---:|---:|---:|---|")
        for jobs in (1, 2):
            scorer.jobs = jobs
            seconds = median_seconds(lambda: scorer.score_files(paths), repeats)  # noqa: B023
            rate = n_files / seconds
            print(f"| score_files | {jobs} | {rate:.0f} | {audio_seconds / seconds:.0f} | "
                  f"{'≥' if rate >= TARGET_FILES_PER_SECOND else '<'} {TARGET_FILES_PER_SECOND} |")

            def batch(jobs=jobs):
                out = folder / f"scores_{jobs}.txt"
                score_trials(scorer, trials, out, chunk_size=128)

            seconds = median_seconds(batch, repeats)
            rate = n_files / seconds
            print(f"| batch runner (antispoof score) | {jobs} | {rate:.0f} | {audio_seconds / seconds:.0f} | "
                  f"{'≥' if rate >= TARGET_FILES_PER_SECOND else '<'} {TARGET_FILES_PER_SECOND} |")


if __name__ == "__main__":
    main()

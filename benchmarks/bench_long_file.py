"""Memory of scoring one long recording with LFCC-GMM: streamed block by block vs loaded whole.

Writes a 1-hour 16 kHz FLAC (``--minutes`` to change), then scores it in two fresh child processes, each
measured by the kernel's peak-RSS accounting: (a) the toolkit's ``LFCCGMMScorer.score_files``, which
streams 30 s blocks through ``LFCCStream`` and sums frame log-likelihoods; (b) the straightforward way, the
whole file decoded to float64 and its LFCC matrix computed at once. Both must give the same score.
Target for (a): peak RSS ≤ 1 GB.

Run from the repository root: ``python benchmarks/bench_long_file.py [--quick]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from common import run_child, speech_like

from lfcc_gmm.gmm import DiagonalGMM

TARGET_MIB = 1024

STREAMED = """
import sys
from lfcc_gmm.baseline import LFCCGMMScorer
print(LFCCGMMScorer.load(sys.argv[1]).score_files([sys.argv[2]])[0])
"""

WHOLE = """
import sys, numpy as np
from lfcc_gmm.audio import load_audio
from lfcc_gmm.baseline import LFCCGMMScorer
from lfcc_gmm.features import lfcc
scorer = LFCCGMMScorer.load(sys.argv[1])
frames = lfcc(load_audio(sys.argv[2]).signal).astype(np.float32)
print(scorer.bonafide_gmm_.score_samples(frames).mean() - scorer.spoof_gmm_.score_samples(frames).mean())
"""


def write_long_file(path: Path, minutes: float, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16", format="FLAC") as handle:
        for _ in range(int(minutes * 6)):  # 10 s pieces keep this process small too
            handle.write(speech_like(10.0, rng))


def random_model(path: Path) -> None:
    """A 512-component model per class with plausible LFCC-like parameters (memory does not depend on values)."""
    from lfcc_gmm.baseline import LFCCGMMScorer

    rng = np.random.default_rng(1)
    scorer = LFCCGMMScorer(n_components=512)
    for key in ("bonafide", "spoof"):
        arrays = {"weights": np.full(512, 1 / 512), "means": rng.normal(0, 3, (512, 60)),
                  "covariances": rng.uniform(0.5, 4, (512, 60))}
        setattr(scorer, f"{key}_gmm_", DiagonalGMM.from_arrays(arrays))
    scorer.training_summary_ = {"note": "random parameters for a memory benchmark"}
    scorer.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10-minute file")
    parser.add_argument("--minutes", type=float, help="length of the recording (default 60, quick 10)")
    args = parser.parse_args()
    minutes = args.minutes or (10 if args.quick else 60)
    with tempfile.TemporaryDirectory() as tmp:
        audio, model = Path(tmp) / "long.flac", Path(tmp) / "model.npz"
        write_long_file(audio, minutes)
        random_model(model)
        streamed, t_streamed, rss_streamed = run_child(STREAMED, str(model), str(audio))
        whole, t_whole, rss_whole = run_child(WHOLE, str(model), str(audio))
        difference = abs(float(streamed) - float(whole))
        print(f"{minutes:g}-minute 16 kHz FLAC, 512 components per class.\n")
        print("| method | peak RSS (MiB) | wall (s) | score |")
        print("|---|---:|---:|---:|")
        print(f"| streamed (LFCCGMMScorer.score_files) | {rss_streamed:.0f} | {t_streamed:.1f} | "
              f"{float(streamed):.6f} |")
        print(f"| whole file in memory | {rss_whole:.0f} | {t_whole:.1f} | {float(whole):.6f} |")
        print(f"\nStreaming uses {rss_whole / rss_streamed:.1f}× less memory; target ≤ {TARGET_MIB} MiB: "
              f"{'met' if rss_streamed <= TARGET_MIB else 'NOT met'}. Score difference {difference:.2e}.")
        if difference > 1e-4 * max(1.0, abs(float(whole))):
            raise SystemExit("streamed and whole-file scores differ")


if __name__ == "__main__":
    main()

"""Speech-activity detector throughput on one thread: ``detect_speech`` beside the bare FFT of its frames (the
ceiling) and the LFCC front end (what the baseline computes on every file anyway), in one run.

The signal is 60 s of real speech: demo corpus files, bona fide and spoof, end to end (their own pauses
included). Throughput is seconds of audio per second of compute ("x real time"). The methods are timed in
interleaved rounds, so a load change on a shared machine hits all of them alike; the table shows the median
of the rounds. Target (issue 18 §3): at least 500x real time.

Run from the repository root: ``python benchmarks/bench_speech.py [--quick] [--clock cpu]``. The output is a
Markdown table.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import scipy
import scipy.fft
import soundfile as sf
from common import interleaved_medians, throughput_arguments

from lfcc_gmm.features import lfcc
from lfcc_gmm.speech import MIN_SPEECH_S, detect_speech, speech_config

RATE = 16000
TARGET = 500  # x real time, one thread
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "flac"


def demo_speech(seconds: float) -> np.ndarray:
    """The demo files in name order, end to end, cut to ``seconds``."""
    parts, total = [], 0
    for path in sorted(DEMO.glob("*.flac")):
        x, rate = sf.read(path)
        assert rate == RATE, path
        parts.append(x)
        total += x.shape[0]
        if total >= seconds * RATE:
            break
    return np.concatenate(parts)[: int(seconds * RATE)]


def main() -> None:
    seconds, rounds, clock_name, clock = throughput_arguments(__doc__.splitlines()[0])

    signal = demo_speech(seconds)
    activity = detect_speech(signal, RATE)
    if activity.speech_s < MIN_SPEECH_S:
        raise SystemExit("error: no speech detected in the demo speech")
    config = speech_config()
    length, hop = round(config.window_s * RATE), round(config.hop_s * RATE)
    frames = np.lib.stride_tricks.sliding_window_view(signal.astype(np.float32), length)[::hop].copy()
    methods = [
        ("ours `detect_speech`", lambda: detect_speech(signal, RATE), "the whole detector"),
        (f"bare `scipy.fft.rfft` of its {length}-sample float32 frames",
         lambda: scipy.fft.rfft(frames, axis=-1, workers=1), "ceiling: its FFT alone"),
        ("`lfcc` asvspoof2019, float64", lambda: lfcc(signal), "the baseline's front end, for scale"),
    ]
    medians = interleaved_medians([fn for _, fn, _ in methods], rounds, clock)
    print(
        f"Speech detection throughput, one thread ({clock_name} clock), {seconds:g} s of demo speech at 16 kHz "
        f"({activity.speech_s:.1f} s detected as speech), median of {rounds} interleaved rounds; "
        f"numpy {np.__version__}, scipy {scipy.__version__}, {platform.machine()}"
    )
    print()
    print("| method | ms per call | x real time | time / `detect_speech` | note |")
    print("|---|---:|---:|---:|---|")
    for (label, _, note), median in zip(methods, medians, strict=True):
        print(f"| {label} | {1e3 * median:.1f} | {seconds / median:,.0f} | {median / medians[0]:.2f} | {note} |")
    print()
    achieved = seconds / medians[0]
    verdict = "met" if achieved >= TARGET else "NOT met"
    print(f"- `detect_speech`: {achieved:,.0f}x real time (target {TARGET}x: {verdict})")


if __name__ == "__main__":
    main()

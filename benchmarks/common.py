"""Helpers shared by the benchmark scripts: timing, peak memory of child processes, synthetic speech, machine info."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

from lfcc_gmm.protocols import Trial

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(os.environ.get("ANTISPOOF_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "reference"))


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Throughput(NamedTuple):
    """What a throughput benchmark measures on: signal length, timing rounds, and the clock."""

    seconds: float
    rounds: int
    clock_name: str
    clock: Callable[[], float]


def throughput_arguments(description: str) -> Throughput:
    """Parse the command line of a one-thread throughput benchmark: ``--quick`` (10 s of audio, 5 rounds, instead
    of 60 s and 15), ``--seconds``, ``--rounds`` and ``--clock wall|cpu``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="10 s of audio, 5 rounds")
    parser.add_argument("--seconds", type=float, help="length of the test signal (default 60, quick 10)")
    parser.add_argument("--rounds", type=int, help="timing rounds (default 15, quick 5)")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="wall time, or this process's CPU time"
    )
    args = parser.parse_args()
    return Throughput(args.seconds or (10.0 if args.quick else 60.0), args.rounds or (5 if args.quick else 15),
                      args.clock, time.perf_counter if args.clock == "wall" else time.process_time)


def interleaved_medians(functions: Sequence[Callable[[], object]], rounds: int,
                        clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Median time of each function on one thread, after one warm-up call each, timed in interleaved rounds so
    that a load change on a shared machine hits all of them alike."""
    times: list[list[float]] = [[] for _ in functions]
    with threadpool_limits(limits=1):
        for fn in functions:
            fn()  # warm-up: caches, imports, page faults
        for _ in range(rounds):
            for elapsed, fn in zip(times, functions, strict=True):
                start = clock()
                fn()
                elapsed.append(clock() - start)
    return [statistics.median(t) for t in times]


def run_child(code: str, *args: str, env: dict | None = None) -> tuple[str, float, float]:
    """Run ``python -c code args`` in a fresh process; return (stdout, wall seconds, peak RSS in MiB).

    Peak RSS comes from the kernel's accounting of the child alone (``wait4``), so it is the child's true
    high-water mark, unaffected by this process.
    """
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child failed (exit {os.waitstatus_to_exitcode(status)}): {code[:80]}…")
    return out, wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def self_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speech_like(seconds: float, rng: np.random.Generator, sample_rate: int = 16000, band_limit: bool = False
                ) -> np.ndarray:
    """A crude speech-like signal: a gliding harmonic source through moving formant resonances, with pauses.

    Only meant to give the DSP realistic spectra and dynamics for timing; it is not speech.
    """
    from scipy.signal import lfilter

    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    source = sum(np.sin(k * phase) / k for k in range(1, 30)) + 0.05 * rng.standard_normal(n)
    y = np.zeros(n)
    for formant in rng.uniform([300, 900, 2200], [900, 2200, 3500]):
        r, theta = 0.97, 2 * np.pi * formant / sample_rate
        y += lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], source)
    envelope = (np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, np.pi)) > -0.3).astype(float)
    y *= np.convolve(envelope, np.hanning(800) / 400, mode="same")
    if band_limit:
        from scipy.signal import butter, sosfilt

        y = sosfilt(butter(8, 4000, fs=sample_rate, output="sos"), y)
    return 0.5 * y / (np.max(np.abs(y)) + 1e-12)


def write_clip(folder: Path, file_id: str, spoof: bool, attack: str, rng: np.random.Generator) -> Trial:
    """Write a 3–4 s speech-like 16 kHz FLAC (band-limited when ``spoof``) and return its trial."""
    x = speech_like(rng.uniform(3.0, 4.0), rng, band_limit=spoof)
    path = folder / f"{file_id}.flac"
    sf.write(path, x, 16000, subtype="PCM_16")
    return Trial(file_id, "spoof" if spoof else "bonafide", attack if spoof else "-", path=path)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), e.g. "AMD EPYC" or "Intel(R) Xeon(R) Platinum 8488C"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> str:
    """One Markdown paragraph: CPU, cores, memory, OS and library versions."""
    cpu = cpu_name()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for name in ("numpy", "scipy", "sklearn", "soundfile", "joblib", "torch"):
        try:
            module = __import__(name)
            versions.append(f"{name} {module.__version__}")
        except ImportError:
            versions.append(f"{name} (not installed)")
    return (f"{cpu}; {os.cpu_count()} logical cores; {mem:.1f} GiB RAM; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; " + ", ".join(versions))


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def competing_processes(n: int) -> Iterator[None]:
    """Keep ``n`` other processes spinning on the CPU while the block runs, as on a shared machine.

    Multithreaded kernels (BLAS, torch intra-op) degrade very differently when a core is taken by someone
    else; timing both situations side by side shows it.
    """
    workers = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(n)]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()


def paired_ratio(numerator: list[float], denominator: list[float]) -> str:
    """Median and quartiles of the per-repeat ratios of two lists of times taken in alternation, e.g.
    ``"1.12x (1.05-1.20)"``: each ratio compares two calls made moments apart, so a change of load between
    repeats cancels out, and the quartiles show how far the ratio of two such calls scatters."""
    ratios = np.asarray(numerator) / np.asarray(denominator)
    low, mid, high = np.percentile(ratios, [25, 50, 75])
    return f"{mid:.2f}x ({low:.2f}-{high:.2f})"

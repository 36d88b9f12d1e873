"""Run every benchmark and write benchmarks/RESULTS.md (``make bench``).

Each script runs in its own process (so one's memory or threads cannot affect the next) and prints a
Markdown section; this collects them under a header naming the machine and library versions. A script
that fails is reported in the file and makes this exit non-zero; the others still run.

Usage: ``python benchmarks/run_all.py [--quick] [--only NAME ...] [--output PATH]``. With ``--only``, the
sections of the other benchmarks already in the output file are kept, so one benchmark can be re-run alone. The
deep models' CPU sections are titled with the CPU's model name, and those measured on another CPU are always kept:
their speed-ups differ between CPU vendors. The "GPU" section, which ``benchmarks/gpu_check.py --write`` writes on a
machine with a GPU, is always kept too.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

from common import cpu_name, machine_summary

HERE = Path(__file__).resolve().parent

#: Sections whose results depend on the CPU model: titled with its name, one section per CPU measured.
PER_CPU = ("RawNet2 CPU inference", "AASIST CPU inference")

#: (script, extra arguments, title, what it shows). Order: cheap and core first.
BENCHMARKS: list[tuple[str, list[str], str, str]] = [
    ("bench_lfcc.py", [], "LFCC throughput",
     "issue 3: ≥ 1,500× real time (float64) and ≥ 3,000× (float32), one thread"),
    ("bench_speech.py", [], "Speech detection throughput", "issue 18 §3: ≥ 500× real time, one thread"),
    ("bench_metrics.py", [], "Metrics on 71,237 trials", "issue 2: full evaluation well under 2 s"),
    # Compares with the organisers' package when ASVSPOOF5_OFFICIAL_DIR names a checkout of it; else only the
    # bootstrap part runs.
    ("bench_asvspoof5_metrics.py", [], "ASVspoof 5 metrics and bootstrap intervals",
     "issue 20: Track 1 on 680,774 and Track 2 on 400,000 trials each within the official package's time; "
     "1,000 bootstrap resamples well under 1 s (122 trials) and a few seconds (71,237)"),
    ("bench_gmm.py", [], "GMM training at ASVspoof 2019 LA scale",
     "issue 3: both classes (8.6 M × 60 frames, 512 components, 10 iterations) ≤ 15 min, peak RSS ≤ 4 GB"),
    ("bench_scoring.py", [], "End-to-end LFCC-GMM scoring", "issue 3: ≥ 200 files/s on 3–4 s files"),
    ("bench_long_file.py", [], "One-hour recording", "issue 7: LFCC-GMM peak RSS ≤ 1 GB"),
    ("bench_asvspoof_scale.py", [], "ASVspoof-size dry run",
     "issue 8: every stage timed, extrapolated to 25,380 clips"),
    ("bench_dask.py", [], "Dask backend", "issue 8: cluster vs local, identical results"),
    ("bench_rawnet2.py", [], "RawNet2 CPU inference",
     "issues 4 and 22: asvspoof2021 ≥ 2× faster than the official forward at batch 1 and batch 8"),
    # The spec's official timings (1.63 s RawNet2, 2.25 s AASIST per clip) are far slower than a quiet run
    # here; one busy process competing for the cores shows how both sides fare on a shared machine.
    ("bench_rawnet2.py", ["--competing", "1"], "RawNet2 CPU inference, one competing process",
     "issues 4 and 22: ≥ 2× faster than the official forward, on a shared machine"),
    ("bench_aasist.py", [], "AASIST CPU inference",
     "issues 5 and 22: ≥ 3× faster than the official forward at batch 1 (torch or ONNX Runtime)"),
    ("bench_aasist.py", ["--competing", "1"], "AASIST CPU inference, one competing process",
     "issues 5 and 22: ≥ 3× faster than the official forward, on a shared machine"),
    ("bench_whole_file.py", [], "Whole-file scoring and segment timelines",
     "issue 18: AASIST over a 60 s file ≥ 12× real time (≤ 5 s) on 2 cores, beside the official forward over the "
     "same windows; LFCC-GMM segment scores < 10 % over the plain file score"),
    ("bench_service.py", [], "HTTP scoring service",
     "issue 19: requests/s and p50/p95 latency with 1, 4 and 16 clients; overhead over the bare scorer call "
     "≤ 10 % at 1 client"),
]


PER_CPU_TITLES = {title for _, _, title, _ in BENCHMARKS if title.startswith(PER_CPU)}


def run(script: str, extra: list[str], quick: bool) -> tuple[str, bool, float]:
    command = [sys.executable, str(HERE / script), *extra] + (["--quick"] if quick else [])
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        return f"**FAILED** (exit {done.returncode}):\n\n```\n{tail}\n```\n", False, seconds
    out = done.stdout.strip()
    # Scripts that print a plain-text table are shown verbatim; Markdown ones are embedded as they are.
    return (out if "|---" in out or "| ---" in out else f"```\n{out}\n```") + "\n", True, seconds


#: Sections other scripts write into RESULTS.md (gpu_check.py, on a machine with a GPU): always carried over.
EXTERNAL_SECTIONS = ("GPU",)


def previous_sections(path: Path) -> dict[str, str]:
    """The sections of an earlier RESULTS.md by title (a section's body may hold ``##`` headings of its own)."""
    if not path.exists():
        return {}
    titles = {title for _, _, title, _ in BENCHMARKS} | set(EXTERNAL_SECTIONS)
    sections: dict[str, str] = {}
    current: str | None = None
    for line in path.read_text().splitlines(keepends=True):
        heading = line[3:].strip() if line.startswith("## ") else None
        if heading in titles or (heading or "").split(" — ")[0] in PER_CPU_TITLES:
            current = heading
            sections[current] = ""
        if current is not None:
            sections[current] += line
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these scripts (e.g. bench_lfcc)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    previous = previous_sections(args.output)
    kept = previous if args.only else {}
    sections, failed = [], []
    for script, extra, title, target in BENCHMARKS:
        if title in PER_CPU_TITLES:
            base, title = title, f"{title} — {cpu_name()}"
            sections += [text.rstrip("\n") + "\n" for t, text in previous.items() if t.startswith(f"{base} — ")
                         and t != title]
        if args.only and Path(script).stem not in args.only and script not in args.only:
            if title in kept:
                sections.append(kept[title].rstrip("\n") + "\n")
            continue
        if not (HERE / script).exists():
            continue
        command = " ".join([script, *extra] + (["--quick"] if args.quick else []))
        print(f"running {command} …", file=sys.stderr, flush=True)
        body, ok, seconds = run(script, extra, args.quick)
        if not ok:
            failed.append(command)
        sections.append(f"## {title}\n\n*Target — {target}.* `python benchmarks/{command}`, {seconds:.0f} s."
                        f"\n\n{body}")
    sections += [previous[title].rstrip("\n") + "\n" for title in EXTERNAL_SECTIONS if title in previous]
    header = (
        "# Benchmark results\n\n"
        f"Last written by `benchmarks/run_all.py{' --quick' if args.quick else ''}"
        f"{' --only ' + ' '.join(args.only) if args.only else ''}` on "
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}.\n\n"
        f"Machine: {machine_summary()}.\n\n"
        "Every ratio below compares implementations measured side by side in the same run; medians of repeats.\n"
    )
    args.output.write_text(header + "\n" + "\n".join(sections))
    print(f"wrote {args.output}", file=sys.stderr)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

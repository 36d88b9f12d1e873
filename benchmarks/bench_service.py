"""``antispoof serve`` under 1, 4 and 16 concurrent clients, beside the library and the command line on the same files.

A real service process on 127.0.0.1 (default slots: one per core) serves lfcc-gmm (a 64-component model trained
here on the demo train split) and the bundled AASIST. For each scorer the same demo eval files are scored

* through the service, one client sending them one after another on a kept-alive connection, then 4 and 16
  clients at once. The service's overhead is the median time from a request's arrival to its answer over the
  median time of its decoding and scoring, both logged by the service for the same requests (HTTP, receiving the
  multipart upload, the header check, the hops to the inference thread and back, the result's JSON; target
  ≤ 10 %); beside it the median of each request's own difference, in milliseconds;
* by ``antispoof score`` over all the files in one run (wall time / files, start-up included).

The bare call is timed inside the service, on the same requests, so that the overhead compares the same process on
the same inputs at the same moments; a load change on a shared machine hits both sides. It is the library call that
decodes the upload's bytes and scores them (``lfcc_gmm.analysis.analyse_bytes``, what ``antispoof score -`` does with
standard input). LFCC-GMM requests take milliseconds, so the one-client phase sends each file several times more
for it than for AASIST: the medians then hold still under a changing load.

Run from the repository root: ``python benchmarks/bench_service.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection, RemoteDisconnected
from pathlib import Path

import soundfile as sf
from common import REPO_ROOT

from lfcc_gmm.baseline import LFCCGMMScorer
from lfcc_gmm.protocols import Trial

DEMO = REPO_ROOT / "data" / "demo"
ANTISPOOF = [sys.executable, "-c", "from cli.main import main; main()"]
TARGET_OVERHEAD = 0.10


def demo_files(split: str) -> list[Trial]:
    rows = [line.split("\t") for line in (DEMO / "metadata.tsv").read_text().splitlines()[1:]]
    return [Trial(r[0], "bonafide" if r[4] == "-" else "spoof", r[4], path=DEMO / "flac" / f"{r[0]}.flac")
            for r in rows if r[1] == split]


def start_service(folder: Path, *args: str) -> tuple[subprocess.Popen, str]:
    log = open(folder / "service.log", "w")  # noqa: SIM115 (lives as long as the process)
    process = subprocess.Popen([*ANTISPOOF, "serve", "--port", "0", "--tmp-dir", str(folder / "spool"), *args],
                               cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    url = None
    while time.monotonic() < deadline:
        match = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", (folder / "service.log").read_text())
        if match:
            url = match.group(1)
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=5):
                    return process, url
            except OSError:
                pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    sys.exit(f"the service did not start:\n{(folder / 'service.log').read_text()}")


_connections = threading.local()


def post(url: str, scorer: str, path: Path) -> float:
    """One multipart upload on this thread's kept-alive connection (as a client library would); its latency in
    seconds, from building the body to the parsed JSON answer."""
    start = time.perf_counter()
    boundary = uuid.uuid4().hex
    body = b"".join([f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
                     f"Content-Type: audio/flac\r\n\r\n".encode(), path.read_bytes(), f"\r\n--{boundary}--\r\n"
                     .encode()])
    for attempt in range(2):  # the server closes a connection idle for 5 s (uvicorn's keep-alive): reconnect
        connection = getattr(_connections, "connection", None)
        if connection is None:
            connection = _connections.connection = HTTPConnection(url.removeprefix("http://"), timeout=600)
        try:
            connection.request("POST", f"/v1/score?scorer={scorer}", body,
                               {"Content-Type": f"multipart/form-data; boundary={boundary}"})
            response = connection.getresponse()
            answer = response.read()
            break
        except (BrokenPipeError, ConnectionResetError, RemoteDisconnected):
            connection.close()
            _connections.connection = None
            if attempt:
                raise
    if response.status != 200:
        sys.exit(f"{path}: {response.status} {answer[:300]!r}")
    json.loads(answer)
    return time.perf_counter() - start


def clients(url: str, scorer: str, paths: list[Path], n_clients: int, n_requests: int) -> tuple[float, list[float]]:
    """``n_requests`` uploads spread over ``n_clients`` concurrent clients: (wall seconds, latencies)."""
    jobs = [paths[i % len(paths)] for i in range(n_requests)]
    start = time.perf_counter()
    with ThreadPoolExecutor(n_clients) as pool:
        latencies = list(pool.map(lambda p: post(url, scorer, p), jobs))
    return time.perf_counter() - start, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def service_log(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "service.log").read_text().splitlines()
            if line.startswith('{"event": "request"')]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer files and requests")
    args = parser.parse_args()
    n_files = 8 if args.quick else 16
    rounds = 2 if args.quick else 3
    eval_files = demo_files("eval")
    paths = [t.path for t in eval_files[:n_files // 2] + eval_files[-(n_files - n_files // 2):]]
    seconds_of_audio = sum(sf.info(str(p)).duration for p in paths)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = folder / "lfcc.npz"
        LFCCGMMScorer(n_components=64, max_iter=5, init_samples=20_000, random_state=0).fit(
            demo_files("train")).save(model)
        process, url = start_service(folder, "--scorer", "lfcc-gmm", "--model", str(model), "--scorer", "aasist")
        print(f"{len(paths)} demo eval files ({seconds_of_audio / len(paths):.2f} s each on average); the service "
              f"with {os.cpu_count()} inference slots (one per core); lfcc-gmm with 64 components per class.\n")
        throughput = ["| scorer | clients | requests | requests/s | p50 latency (ms) | p95 latency (ms) |",
                      "|---|---:|---:|---:|---:|---:|"]
        overhead = ["| scorer | bare call, p50 (ms) | service, p50 (ms) | client, p50 (ms) | service / bare call | "
                    "service − bare call per request, p50 (ms) | `antispoof score`, per file (ms) |",
                    "|---|---:|---:|---:|---:|---:|---:|"]
        try:
            for name, model_path in (("lfcc-gmm", str(model)), ("aasist", None)):
                post(url, name, paths[0])  # warm-up
                logged_before = len(service_log(folder))
                served: list[float] = []
                for _ in range(rounds if name == "aasist" else 4 * rounds):
                    served += clients(url, name, paths, 1, len(paths))[1]
                records = service_log(folder)[logged_before:]
                inside = statistics.median(r["score_ms"] for r in records)
                whole = statistics.median(r["duration_ms"] for r in records)
                added = statistics.median(r["duration_ms"] - r["score_ms"] for r in records)
                throughput.append(f"| {name} | 1 | {len(served)} | {1 / statistics.median(served):.1f} | "
                                  f"{1000 * statistics.median(served):.1f} | {1000 * percentile(served, 95):.1f} |")
                for n_clients in (4, 16):
                    n_requests = 2 * max(n_clients, len(paths)) if name == "aasist" else 4 * max(n_clients, 8)
                    wall, latencies = clients(url, name, paths, n_clients, n_requests)
                    throughput.append(f"| {name} | {n_clients} | {n_requests} | {n_requests / wall:.1f} | "
                                      f"{1000 * statistics.median(latencies):.1f} | "
                                      f"{1000 * percentile(latencies, 95):.1f} |")
                cli_args = ["--model", str(model)] if model_path else []
                start = time.perf_counter()
                subprocess.run([*ANTISPOOF, "score", "--scorer", name, *cli_args, *map(str, paths)], check=True,
                               cwd=REPO_ROOT, capture_output=True)
                cli = (time.perf_counter() - start) / len(paths)
                ratio = whole / inside
                overhead.append(f"| {name} | {inside:.1f} | {whole:.1f} | {1000 * statistics.median(served):.1f} | "
                                f"{ratio:.3f} ({'≤' if ratio - 1 <= TARGET_OVERHEAD else '>'} "
                                f"{1 + TARGET_OVERHEAD:.2f}) | {added:.2f} | {1000 * cli:.1f} |")
        finally:
            process.terminate()
            process.wait(60)
        print("Throughput and latency seen by the clients (each client sends its requests one after another on a "
              "kept-alive connection):\n")
        print("\n".join(throughput))
        print("\nOverhead at one client. *Bare call*: the library call that decodes and scores each upload, timed "
              "inside the service (`score_ms` of its log: the call `antispoof score -` makes for a file on standard "
              "input); *service*: the same requests from arrival to answer (`duration_ms`); *client*: as the client "
              "saw them. Beside them `antispoof score` over all the files in one run (start-up included).\n")
        print("\n".join(overhead))


if __name__ == "__main__":
    main()

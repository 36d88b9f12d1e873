"""``antispoof serve`` under 1, 4 and 16 concurrent clients, beside the library and the command line on the same files.

A real service process on 127.0.0.1 (default slots: one per core) serves lfcc-gmm (a 64-component model trained
here on the demo train split) and the bundled AASIST. For each scorer the same demo eval files are scored

* through the service, one client sending them one after another on a kept-alive connection, then 4 and 16
  clients at once. The service's overhead is the median time from a request's arrival to its answer over the
  median time of its decoding and scoring, both logged by the service for the same requests (HTTP, receiving the
  multipart upload, the hops to the inference thread and back, the result's JSON; target ≤ 10 %); beside it the
  median of each request's own difference, in milliseconds. It is measured with a lean client at idle CPU
  priority, and again with an ordinary one (below);
* by ``antispoof score`` over all the files in one run (wall time / files, start-up included).

The bare call is timed inside the service, on the same requests, so that the overhead compares the same process on
the same inputs at the same moments; a load change on a shared machine hits both sides. It is the library calls that
decode the upload's bytes and score them (``lfcc_gmm.audio.decode_audio``, which also refuses a recording over
``--max-duration-s`` from its header, then ``lfcc_gmm.analysis.analyse_audio``: what ``antispoof score -`` does with
standard input). LFCC-GMM requests take milliseconds, so the one-client phase sends each file several times more
for it than for AASIST: the medians then hold still under a changing load.

The client shares the 2 cores with the service, and an ordinary Python client (``http.client``) puts its own work
inside the service's time: it writes the headers and the body of a request separately, so the service, woken by
the headers, waits for the body while the client waits for the CPU; and the scheduler wakes the client on the core
that is writing it an answer, mid-answer, to parse the headers. The overhead is therefore measured with a client as
a load generator is written (wrk, ab: one write per request, the answer read by its length) running at idle CPU
priority (``SCHED_IDLE``: it runs only on CPU time the service leaves unused, as a client on another machine
would), in rounds alternating with the ordinary client, whose figure is printed beside it.

Run from the repository root: ``python benchmarks/bench_service.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
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


def multipart_body(path: Path) -> tuple[bytes, str]:
    """The upload of ``path`` as the multipart field ``file``: (body, content type)."""
    boundary = uuid.uuid4().hex
    body = b"".join([f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
                     f"Content-Type: audio/flac\r\n\r\n".encode(), path.read_bytes(), f"\r\n--{boundary}--\r\n"
                     .encode()])
    return body, f"multipart/form-data; boundary={boundary}"


class LeanClient:
    """One kept-alive connection used as a load generator uses it: each request written with one ``sendall``
    (headers and body together), each answer read by its ``Content-Length``."""

    def __init__(self, url: str):
        self.host, _, port = url.removeprefix("http://").partition(":")
        self.port = int(port)
        self.sock: socket.socket | None = None
        self.pending = b""

    def post(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        request = (f"POST {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: {content_type}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for attempt in range(2):  # the server closes a connection idle for 5 s (uvicorn's keep-alive): reconnect
            if self.sock is None:
                self.sock = socket.create_connection((self.host, self.port), timeout=600)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.pending = b""
            try:
                self.sock.sendall(request)
                return self._answer()
            except (BrokenPipeError, ConnectionResetError):
                self.sock.close()
                self.sock = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _answer(self) -> tuple[int, bytes]:
        assert self.sock is not None
        while b"\r\n\r\n" not in self.pending:
            self.pending += self._receive()
        head, _, rest = self.pending.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            rest += self._receive()
        self.pending = rest[length:]
        return int(lines[0].split()[1]), rest[:length]

    def _receive(self) -> bytes:
        assert self.sock is not None
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionResetError("the service closed the connection")
        return data

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def lean_one_client(url: str, scorer: str, paths: list[Path]) -> tuple[list[float], str]:
    """Each file uploaded once by a :class:`LeanClient` at idle CPU priority, in a thread of its own (the policy
    is a thread's; its errors are raised here): (latencies, the priority it ran at)."""

    def run() -> tuple[list[float], str]:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            priority = "SCHED_IDLE"
        except (AttributeError, OSError):  # not Linux, or refused: the lowest nice value instead
            os.nice(19)
            priority = "nice 19"
        client, latencies = LeanClient(url), []
        try:
            for path in paths:
                start = time.perf_counter()
                body, content_type = multipart_body(path)
                status, answer = client.post(f"/v1/score?scorer={scorer}", body, content_type)
                if status != 200:
                    sys.exit(f"{path}: {status} {answer[:300]!r}")
                json.loads(answer)
                latencies.append(time.perf_counter() - start)
        finally:
            client.close()
        return latencies, priority

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def post(url: str, scorer: str, path: Path) -> float:
    """One multipart upload on this thread's kept-alive connection (as a client library would); its latency in
    seconds, from building the body to the parsed JSON answer."""
    start = time.perf_counter()
    body, content_type = multipart_body(path)
    for attempt in range(2):  # the server closes a connection idle for 5 s (uvicorn's keep-alive): reconnect
        connection = getattr(_connections, "connection", None)
        if connection is None:
            connection = _connections.connection = HTTPConnection(url.removeprefix("http://"), timeout=600)
        try:
            connection.request("POST", f"/v1/score?scorer={scorer}", body, {"Content-Type": content_type})
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
        overhead = ["| scorer | client | bare call, p50 (ms) | service, p50 (ms) | client, p50 (ms) | service / bare "
                    "call | service − bare call per request, p50 (ms) | `antispoof score`, per file (ms) |",
                    "|---|---|---:|---:|---:|---:|---:|---:|"]
        try:
            for name, model_path in (("lfcc-gmm", str(model)), ("aasist", None)):
                post(url, name, paths[0])  # warm-up
                served: dict[str, list[float]] = {"lean": [], "ordinary": []}
                records: dict[str, list[dict]] = {"lean": [], "ordinary": []}
                for _ in range(rounds if name == "aasist" else 4 * rounds):
                    logged = len(service_log(folder))
                    latencies, priority = lean_one_client(url, name, paths)
                    served["lean"] += latencies
                    records["lean"] += service_log(folder)[logged:]
                    logged = len(service_log(folder))
                    served["ordinary"] += clients(url, name, paths, 1, len(paths))[1]
                    records["ordinary"] += service_log(folder)[logged:]
                ordinary = served["ordinary"]
                throughput.append(f"| {name} | 1 | {len(ordinary)} | {1 / statistics.median(ordinary):.1f} | "
                                  f"{1000 * statistics.median(ordinary):.1f} | {1000 * percentile(ordinary, 95):.1f} |")
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
                for kind, label in (("lean", f"lean, {priority}"), ("ordinary", "http.client")):
                    inside = statistics.median(r["score_ms"] for r in records[kind])
                    whole = statistics.median(r["duration_ms"] for r in records[kind])
                    added = statistics.median(r["duration_ms"] - r["score_ms"] for r in records[kind])
                    ratio = whole / inside
                    verdict = f" ({'≤' if ratio - 1 <= TARGET_OVERHEAD else '>'} {1 + TARGET_OVERHEAD:.2f})"
                    overhead.append(f"| {name} | {label} | {inside:.1f} | {whole:.1f} | "
                                    f"{1000 * statistics.median(served[kind]):.1f} | {ratio:.3f}"
                                    f"{verdict if kind == 'lean' else ''} | {added:.2f} | {1000 * cli:.1f} |")
        finally:
            process.terminate()
            process.wait(60)
        print("Throughput and latency seen by the clients (each client sends its requests one after another on a "
              "kept-alive connection):\n")
        print("\n".join(throughput))
        print("\nOverhead at one client. *Bare call*: the library calls that decode and score each upload, timed "
              "inside the service (`score_ms` of its log: what `antispoof score -` does for a file on standard "
              "input); *service*: the same requests from arrival to answer (`duration_ms`); *client*: as the client "
              "saw them. *lean*: one write per request, at idle CPU priority, so that the client's own work stays "
              "out of the service's time (the measure of the target); *http.client*: an ordinary client on the same "
              "cores (rounds alternate between the two). Beside them `antispoof score` over all the files in one run "
              "(start-up included).\n")
        print("\n".join(overhead))


if __name__ == "__main__":
    main()

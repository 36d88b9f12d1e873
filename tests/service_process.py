"""A real ``antispoof serve`` process on 127.0.0.1 for the service tests, and small HTTP helpers around it.

Every wait here is bounded in time; the process's stderr (uvicorn's lines and the service's JSON log) goes to a
file the tests read.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parents[1]
ANTISPOOF = [sys.executable, "-c", "from cli.main import main; main()"]
#: A generous bound on start-up (imports, loading the scorers, the warm-up) on a busy 2-core machine.
START_TIMEOUT_S = 90.0
API_KEY = "test-key-0123456789"
DEMO = REPO_ROOT / "data" / "demo"
#: --max-duration-s of the tests' services; the fixture's too-long.wav is 5 s longer.
MAX_DURATION_S = 30


class ServiceProcess:
    """``antispoof serve ARGS --port 0`` with its temporary folder and log under ``folder``."""

    def __init__(self, folder: Path, *args: str, key: bool = True, env: dict[str, str] | None = None):
        self.folder = folder
        self.tmp_dir = folder / "spool"
        self.log_path = folder / "service.log"
        self.key = API_KEY if key else None
        environment = {**os.environ, **(env or {}), "SERVICE_TEST_KEY": API_KEY}
        command = [*ANTISPOOF, "serve", "--port", "0", "--tmp-dir", str(self.tmp_dir), *args]
        if key:
            command += ["--api-key-env", "SERVICE_TEST_KEY"]
        folder.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=environment)
        self.port = self._wait_for_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_ready()

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", self.log())
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise TimeoutError(f"the service did not start in {START_TIMEOUT_S} s:\n{self.log()}")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.get("/readyz")[0] == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the service was not ready in {START_TIMEOUT_S} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """The service's JSON log lines."""
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def records_until(self, predicate: Any, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The log records matching ``predicate`` once there are ``count`` of them (the line of a request is
        written just after its answer) or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while True:
            records = [r for r in self.log_records() if predicate(r)]
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.05)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 60.0) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={**self.headers(), **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        try:
            return self.request("GET", path, timeout=10.0)
        except (urllib.error.URLError, ConnectionError):
            return 0, {}, b""

    def score(self, path: Path, scorer: str | None = None, name: str | None = None,
              content_type: str = "audio/wav", query: str = "") -> tuple[int, dict[str, Any]]:
        """POST a file as the multipart field ``file``; (status, JSON body)."""
        body, form_type = multipart({"file": (name or path.name, path.read_bytes(), content_type)})
        target = "/v1/score?" + "&".join(part for part in (f"scorer={scorer}" if scorer else "", query) if part)
        status, _, answer = self.request("POST", target, body, {"Content-Type": form_type})
        return status, json.loads(answer)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode

    def rss_bytes(self) -> int:
        """Resident memory of the service process (Linux)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def spooled(self) -> list[str]:
        return sorted(p.name for p in self.tmp_dir.iterdir()) if self.tmp_dir.exists() else []

    def wait_spool_empty(self, timeout: float = 10.0) -> list[str]:
        """The temporary folder's content once it is empty or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while self.spooled() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.spooled()


def multipart(fields: dict[str, tuple[str, bytes, str]], boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body of file fields ``name: (filename, data, content type)``; (body, content type)."""
    boundary = boundary or uuid.uuid4().hex
    chunks = []
    for name, (filename, data, content_type) in fields.items():
        chunks += [f"--{boundary}\r\n".encode(),
                   f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode(),
                   f"Content-Type: {content_type}\r\n\r\n".encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def raw_exchange(port: int, head: bytes, body_chunks: list[bytes], *, close_early: bool = False,
                 timeout: float = 30.0) -> bytes:
    """Send ``head`` and then ``body_chunks`` on a bare socket and return what came back (b"" when
    ``close_early``: the client leaves mid-upload). A send the server refused, because it already answered and
    closed, ends the sending; the answer is still read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        if close_early:
            return b""
        received = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and not _complete(received):
                data = sock.recv(65536)
                if not data:
                    break
                received += data
        except (ConnectionResetError, TimeoutError):
            pass
        return received


def _complete(raw: bytes) -> bool:
    head, sep, body = raw.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    return bool(sep) and match is not None and len(body) >= int(match.group(1))


def status_of(raw: bytes) -> int:
    """The status code of a raw HTTP answer (0 when nothing came back)."""
    match = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(match.group(1)) if match else 0


def demo_trials(split: str, n: int) -> list:
    from lfcc_gmm.protocols import Trial

    rows = [line.split("\t") for line in (DEMO / "metadata.tsv").read_text().splitlines()[1:]]
    rows = [r for r in rows if r[1] == split]
    bonafide = [r for r in rows if r[4] == "-"][: n // 2]
    spoof = [r for r in rows if r[4] != "-"][: n - n // 2]
    return [Trial(r[0], "bonafide" if r[4] == "-" else "spoof", r[4], path=DEMO / "flac" / f"{r[0]}.flac")
            for r in bonafide + spoof]


@pytest.fixture(scope="session")
def service_files(tmp_path_factory) -> dict[str, Path]:
    """Demo files, a small LFCC-GMM model trained on the demo train split, and made-up recordings."""
    from lfcc_gmm.baseline import LFCCGMMScorer

    folder = tmp_path_factory.mktemp("service-files")
    model = folder / "lfcc.npz"
    LFCCGMMScorer(n_components=4, max_iter=5, init_samples=2000, random_state=0).fit(
        demo_trials("train", 20)).save(model)
    rng = np.random.default_rng(0)
    eval_files = [t.path for t in demo_trials("eval", 4)]
    joined = np.concatenate([sf.read(p)[0] for p in eval_files])  # ~11 s: several segments
    sf.write(folder / "joined.wav", joined, 16000, subtype="PCM_16")
    stereo = np.stack([joined[:48000], 0.5 * joined[:48000]], axis=1)
    from scipy.signal import resample_poly

    sf.write(folder / "stereo-44k.wav", resample_poly(stereo, 441, 160, axis=0), 44100, subtype="PCM_16")
    sf.write(folder / "noise-60s.wav", 0.1 * rng.standard_normal(60 * 16000), 16000, subtype="PCM_16")
    sf.write(folder / "one-second.wav", 0.1 * rng.standard_normal(16000), 16000, subtype="PCM_16")
    sf.write(folder / "too-long.wav", np.zeros((MAX_DURATION_S + 5) * 16000), 16000, subtype="PCM_16")
    (folder / "text.wav").write_text("this is not audio\n")
    (folder / "empty.wav").write_bytes(b"")
    return {"model": model, "demo0": eval_files[0], "demo1": eval_files[2], "joined": folder / "joined.wav",
            "stereo": folder / "stereo-44k.wav", "noise60": folder / "noise-60s.wav",
            "one": folder / "one-second.wav", "too_long": folder / "too-long.wav", "text": folder / "text.wav",
            "empty": folder / "empty.wav"}

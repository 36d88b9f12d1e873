"""Weights cache and verified download, against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import urllib.error
from pathlib import Path

import pytest

from rawnet import weights
from rawnet.weights import WeightsError, cache_dir, fetch, find_weights, require_weights


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; ``/broken/...`` answers 500 and ``/truncated/NAME`` promises more bytes than it sends."""

    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        if self.path.startswith("/broken/"):
            self.send_error(500, "simulated server failure")
            return
        if self.path.startswith("/truncated/"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\0" * 1000)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """``serve(folder) -> (base_url, requests)``: a threaded HTTP server on a free port of 127.0.0.1."""
    servers = []

    def start(folder: Path):
        handler = type("Handler", (_Handler,), {"requests": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 functools.partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/", handler.requests

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def aasist_dir(reference_dir):
    return reference_dir / "aasist"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTISPOOF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ANTISPOOF_WEIGHTS_URL", raising=False)
    return tmp_path / "home"


#: Where each published file lies in the reference folder, and the official URL it was published under.
OFFICIAL = {
    "aasist": ("aasist/AASIST.pth", "https://raw.githubusercontent.com/clovaai/aasist/", "/models/weights/AASIST.pth"),
    "aasist-l": ("aasist/AASIST-L.pth", "https://raw.githubusercontent.com/clovaai/aasist/",
                 "/models/weights/AASIST-L.pth"),
    "aasist-asvspoof5": ("asvspoof5/aasist/AASIST-ASVspoof5.pth",
                         "https://raw.githubusercontent.com/asvspoof-challenge/asvspoof5/",
                         "/Baseline-AASIST/models/weights/AASIST/best.pth"),
}


def test_table_hashes_are_those_of_the_reference_files(reference_dir):
    assert set(OFFICIAL) == set(weights.KNOWN_WEIGHTS)
    for name, entry in weights.KNOWN_WEIGHTS.items():
        relative, prefix, suffix = OFFICIAL[name]
        assert hashlib.sha256((reference_dir / relative).read_bytes()).hexdigest() == entry.sha256
        assert entry.url.startswith(prefix) and entry.url.endswith(suffix)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("ANTISPOOF_HOME", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "a" / "weights"
    monkeypatch.delenv("ANTISPOOF_HOME")
    assert cache_dir() == tmp_path / "x" / "antispoof" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert cache_dir() == tmp_path / "h" / ".cache" / "antispoof" / "weights"


def test_fetch_from_mirror_verifies_and_caches(home, aasist_dir, serve, monkeypatch):
    base, requests = serve(aasist_dir)
    monkeypatch.setenv("ANTISPOOF_WEIGHTS_URL", base)
    assert find_weights("aasist-l") is None
    seen = []
    path = fetch("aasist-l", progress=lambda done, total: seen.append((done, total)))
    size = (aasist_dir / "AASIST-L.pth").stat().st_size
    assert path == home / "weights" / "AASIST-L.pth"
    assert path.read_bytes() == (aasist_dir / "AASIST-L.pth").read_bytes()
    assert seen[-1] == (size, size)
    assert find_weights("aasist-l") == path == require_weights("aasist-l")
    assert sorted(p.name for p in path.parent.iterdir()) == ["AASIST-L.pth"]
    assert requests == ["/AASIST-L.pth"]

    # Present with the right hash: no second request, unless forced.
    assert fetch("aasist-l") == path
    assert requests == ["/AASIST-L.pth"]
    fetch("aasist-l", force=True)
    assert requests == ["/AASIST-L.pth"] * 2


def test_explicit_url_beats_environment(home, aasist_dir, serve, tmp_path, monkeypatch):
    base, requests = serve(aasist_dir)
    monkeypatch.setenv("ANTISPOOF_WEIGHTS_URL", "http://127.0.0.1:9/unused/")
    dest = tmp_path / "elsewhere"
    path = fetch("aasist", url=base + "AASIST.pth", dest_dir=dest)
    assert path == dest / "AASIST.pth"
    assert weights.file_sha256(path) == weights.KNOWN_WEIGHTS["aasist"].sha256
    assert requests == ["/AASIST.pth"]


def test_corrupted_download_is_refused_and_leaves_nothing(home, aasist_dir, serve, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = bytearray((aasist_dir / "AASIST.pth").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (mirror / "AASIST.pth").write_bytes(bytes(data))
    base, _ = serve(mirror)
    with pytest.raises(WeightsError) as info:
        fetch("aasist", url=base + "AASIST.pth")
    message = str(info.value)
    assert weights.KNOWN_WEIGHTS["aasist"].sha256 in message
    assert hashlib.sha256(bytes(data)).hexdigest() in message
    assert list((home / "weights").iterdir()) == []


def test_failed_forced_download_keeps_the_good_file(home, aasist_dir, serve, tmp_path):
    good_base, _ = serve(aasist_dir)
    path = fetch("aasist", url=good_base + "AASIST.pth")
    bad_base, _ = serve(tmp_path)  # serves an empty folder: 404
    with pytest.raises(WeightsError, match="HTTP 404"):
        fetch("aasist", url=bad_base + "AASIST.pth", force=True)
    assert find_weights("aasist") == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["AASIST.pth"]


@pytest.mark.parametrize("route, error", [("broken/", "HTTP 500"), ("missing/", "HTTP 404"),
                                          ("truncated/", "1000")])
def test_server_errors_are_clear_and_leave_nothing(home, serve, tmp_path, route, error):
    base, _ = serve(tmp_path)
    with pytest.raises(WeightsError, match=error) as info:
        fetch("aasist", url=f"{base}{route}AASIST.pth")
    assert f"{base}{route}AASIST.pth" in str(info.value)
    assert list((home / "weights").iterdir()) == []


def test_unreachable_server_says_how_to_proceed_offline(home):
    with pytest.raises(WeightsError, match="download failed") as info:
        fetch("aasist", url="http://127.0.0.1:9/AASIST.pth")
    message = str(info.value)
    assert "127.0.0.1 cannot be reached" in message and "no network" in message
    _assert_offline_ways(message, "aasist", "AASIST.pth")
    assert list((home / "weights").iterdir()) == []


def test_no_network_is_named_as_such(home, monkeypatch):
    # What a machine without network answers: the host name does not resolve.
    def no_dns(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(WeightsError) as info:
        fetch("aasist-asvspoof5")
    message = str(info.value)
    assert message.startswith(weights.KNOWN_WEIGHTS["aasist-asvspoof5"].url)
    assert "raw.githubusercontent.com does not resolve" in message and "there is no network" in message
    _assert_offline_ways(message, "aasist-asvspoof5", "AASIST-ASVspoof5.pth")
    assert isinstance(info.value.__cause__, urllib.error.URLError)

    result = run_cli("weights", "fetch", "aasist")
    assert result.exit_code == 1
    assert "there is no network" in result.output and "Traceback" not in result.output
    assert "`antispoof weights fetch aasist --url file:///path/to/AASIST.pth`" in result.output


def _assert_offline_ways(message: str, name: str, filename: str) -> None:
    assert f"the copy bundled with antispoof needs no download (`--weights {name}`" in message
    assert f"`antispoof weights fetch {name} --url file:///path/to/{filename}`" in message
    assert "ANTISPOOF_WEIGHTS_URL" in message


def test_fetch_from_a_file_url(home, aasist_dir):
    path = fetch("aasist-l", url=(aasist_dir / "AASIST-L.pth").as_uri())
    assert path == home / "weights" / "AASIST-L.pth"
    assert path.read_bytes() == (aasist_dir / "AASIST-L.pth").read_bytes()
    with pytest.raises(WeightsError, match="download failed after 0 bytes") as info:
        fetch("aasist", url=(aasist_dir / "no-such.pth").as_uri())
    assert "no network" not in str(info.value)  # a missing local file is not a network problem


def test_stale_cached_file_is_reported_then_replaced(home, aasist_dir, serve):
    (home / "weights").mkdir(parents=True)
    (home / "weights" / "AASIST.pth").write_bytes(b"not the weights")
    with pytest.raises(WeightsError, match="--force"):
        find_weights("aasist")
    base, requests = serve(aasist_dir)
    path = fetch("aasist", url=base + "AASIST.pth")
    assert requests == ["/AASIST.pth"]
    assert find_weights("aasist") == path


def test_missing_weights_say_how_to_fetch(home):
    with pytest.raises(FileNotFoundError, match="antispoof weights fetch aasist"):
        require_weights("aasist")


def test_unknown_name():
    with pytest.raises(WeightsError, match="aasist, aasist-l"):
        fetch("rawnet3")



# -- antispoof weights ... ----------------------------------------------------------------------------------------

def run_cli(*args):
    from click.testing import CliRunner

    from cli.deep import weights as weights_group
    from cli.main import AntispoofGroup

    group = AntispoofGroup("antispoof", commands=[weights_group])
    return CliRunner().invoke(group, list(args))


def test_cli_fetch_path_and_list(home, aasist_dir, serve, monkeypatch, tmp_path):
    base, _ = serve(aasist_dir)
    monkeypatch.setenv("ANTISPOOF_WEIGHTS_URL", base)
    # An installation without its bundled copies: `path` then needs the cache.
    monkeypatch.setattr(weights, "PRETRAINED_DIR", tmp_path / "not-installed")
    missing = run_cli("weights", "path", "aasist-l")
    assert missing.exit_code == 1 and "antispoof weights fetch aasist-l" in missing.output

    fetched = run_cli("weights", "fetch", "aasist-l")
    assert fetched.exit_code == 0, fetched.output
    cached = home / "weights" / "AASIST-L.pth"
    assert fetched.stdout.strip() == str(cached)
    assert f"from {base}AASIST-L.pth" in fetched.stderr and "SHA-256 verified" in fetched.stderr
    assert run_cli("weights", "path", "aasist-l").stdout.strip() == str(cached)

    rows = {row["name"]: row for row in json.loads(run_cli("weights", "list", "--json").stdout)}
    assert (rows["aasist-l"]["status"], rows["aasist"]["status"]) == ("cached", "missing")
    assert (rows["aasist-l"]["bundled"], rows["aasist-l"]["loads_from"]) == ("absent", str(cached))
    assert rows["aasist"]["loads_from"] is None
    assert rows["aasist"]["sha256"] == weights.KNOWN_WEIGHTS["aasist"].sha256
    assert rows["aasist"]["url"] == base + "AASIST.pth"
    table = run_cli("weights", "list").stdout
    assert "aasist-l          bundled: absent, cache: cached" in table
    assert f"loads from {cached}" in table and "loads from (nothing: fetch it)" in table


def test_cli_refuses_a_corrupted_download(home, serve, tmp_path):
    (tmp_path / "AASIST.pth").write_bytes(b"garbage")
    base, _ = serve(tmp_path)
    result = run_cli("weights", "fetch", "aasist", "--url", base + "AASIST.pth")
    assert result.exit_code == 1
    assert f"expected {weights.KNOWN_WEIGHTS['aasist'].sha256}" in result.output
    assert not (home / "weights" / "AASIST.pth").exists()


def test_cli_modules_do_not_import_torch():
    code = "import sys, cli.deep, rawnet.weights; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0

"""Published pretrained weights: where they come from, where they are cached, and a verified download.

A download streams into a temporary file beside its destination while hashing, and only a file whose SHA-256
equals the published one is renamed into place (:func:`lfcc_gmm.atomic.atomic_write`): an interrupted or corrupted
download never leaves a partial file behind. Pure standard library (``urllib``); torch is not imported here.

Environment
-----------
``ANTISPOOF_HOME``
    The cache is ``$ANTISPOOF_HOME/weights``; without it, ``$XDG_CACHE_HOME/antispoof/weights`` or
    ``~/.cache/antispoof/weights``.
``ANTISPOOF_WEIGHTS_URL``
    A base URL (a mirror, or a local server in tests) to which the file name is appended, used instead of the
    official location.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lfcc_gmm.atomic import atomic_write

HOME_ENV = "ANTISPOOF_HOME"
URL_ENV = "ANTISPOOF_WEIGHTS_URL"
# Pinned to a commit of clovaai/aasist so the URL always serves the bytes the hashes below describe.
AASIST_BASE_URL = (
    "https://raw.githubusercontent.com/clovaai/aasist/a04c9863f63d44471dde8a6abcb3b082b07cd1d1/models/weights/"
)
_CHUNK = 1 << 20
_TIMEOUT_S = 60

#: ``progress(bytes_done, bytes_total)``; ``bytes_total`` is None when the server does not say.
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class KnownWeights:
    """One published weights file.

    Attributes
    ----------
    name : the name used on the command line (``antispoof weights fetch NAME``).
    filename : file name in the cache and at the source.
    base_url : folder URL of the official source; ``base_url + filename`` is the download.
    sha256 : hex digest of the published file.
    description : one line for ``antispoof weights list``.
    """

    name: str
    filename: str
    base_url: str
    sha256: str
    description: str

    @property
    def url(self) -> str:
        """The official download URL."""
        return self.base_url + self.filename


KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    "aasist": KnownWeights(
        "aasist", "AASIST.pth", AASIST_BASE_URL,
        "51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0",
        "AASIST (clovaai, MIT), ASVspoof 2019 LA train; 2019 LA eval EER 0.83 %",
    ),
    "aasist-l": KnownWeights(
        "aasist-l", "AASIST-L.pth", AASIST_BASE_URL,
        "814331d088032bb4c3fa61cc014789eadeed464209dd094ab3a2dd6ffbdce27a",
        "AASIST-L (clovaai, MIT), 85k parameters; 2019 LA eval EER 0.99 %",
    ),
}


class WeightsError(ValueError):
    """A weights file that cannot be fetched, or whose content is not the published one."""


class WeightsNotFoundError(FileNotFoundError):
    """Known weights that are not in the cache yet; the message says how to fetch them."""


def known(name: str) -> KnownWeights:
    """The table entry of ``name``; a clear error listing the known names otherwise."""
    try:
        return KNOWN_WEIGHTS[name]
    except KeyError:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(KNOWN_WEIGHTS)}") from None


def cache_dir() -> Path:
    """The weights cache folder (see the module docstring); it is not created here."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / "weights"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "antispoof" / "weights"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_weights(name: str, dest_dir: str | os.PathLike | None = None) -> Path | None:
    """The cached file of ``name``, or None when it has not been fetched.

    Raises
    ------
    WeightsError
        when the cached file is there but is not the published file (its hash differs).
    """
    entry = known(name)
    path = Path(dest_dir or cache_dir()) / entry.filename
    if not path.is_file():
        return None
    got = file_sha256(path)
    if got != entry.sha256:
        raise WeightsError(
            f"{path}: SHA-256 {got} is not the published {entry.sha256}; "
            f"fetch it again with `antispoof weights fetch {name} --force`"
        )
    return path


def require_weights(name: str) -> Path:
    """The cached file of ``name``; :class:`WeightsNotFoundError` saying how to fetch it when absent."""
    path = find_weights(name)
    if path is None:
        raise WeightsNotFoundError(
            f"no {name} weights in the cache ({cache_dir() / known(name).filename}); fetch them with "
            f"`antispoof weights fetch {name}` or pass the file with --weights"
        )
    return path


def source_url(name: str, url: str | None = None) -> str:
    """Where :func:`fetch` downloads ``name`` from: ``url``, else ``$ANTISPOOF_WEIGHTS_URL`` + file name, else
    the official URL."""
    if url:
        return url
    entry = known(name)
    base = os.environ.get(URL_ENV)
    if base:
        return base.rstrip("/") + "/" + entry.filename
    return entry.url


def fetch(
    name: str,
    *,
    url: str | None = None,
    dest_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Download the weights ``name`` into the cache, verify their SHA-256 and return their path.

    Parameters
    ----------
    name : a key of :data:`KNOWN_WEIGHTS`.
    url : exact URL of the file, overriding ``$ANTISPOOF_WEIGHTS_URL`` and the official location.
    dest_dir : destination folder (created if needed); default :func:`cache_dir`.
    progress : ``progress(bytes_done, bytes_total)`` called after each chunk.
    force : download even when a file with the right hash is already there.

    Raises
    ------
    WeightsError
        unknown name, HTTP or network error, truncated download or hash mismatch (expected vs got); no partial
        file is left in ``dest_dir`` and an existing file is left as it was.
    """
    entry = known(name)
    folder = Path(dest_dir or cache_dir())
    target = folder / entry.filename
    if not force and target.is_file() and file_sha256(target) == entry.sha256:
        return target
    where = source_url(name, url)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, "wb") as handle:
        got, size = _download(where, handle, progress)
        if got != entry.sha256:
            raise WeightsError(
                f"{where}: downloaded {size} bytes with SHA-256 {got}, expected {entry.sha256} "
                f"(the published {entry.filename}); nothing was saved"
            )
    return target


def _download(url: str, handle, progress: Progress | None) -> tuple[str, int]:
    """Stream ``url`` into ``handle``; returns (hex SHA-256, bytes)."""
    digest = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                handle.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise WeightsError(f"{url}: download failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(f"{url}: download failed after {done} bytes: {reason}") from exc
    if total is not None and done != total:
        raise WeightsError(f"{url}: download truncated: got {done} of {total} bytes")
    return digest.hexdigest(), done

"""Published pretrained weights: the copies bundled with the package, the cache, and a verified download.

The official AASIST and AASIST-L (ASVspoof 2019 LA) weights and the ASVspoof 5 organisers' AASIST ship inside the
package (``rawnet/pretrained/``) as safetensors files: plain tensors and a JSON header, read without unpickling and
without torch (:func:`read_bundled`). Each was converted from the official ``.pth`` by ``data/bundle_weights.py``;
:data:`KNOWN_WEIGHTS` records for every name the bundled file and its SHA-256 (checked whenever it is opened), the
official file's SHA-256 and URL, the licence, what the model was trained on and its model config. The licence
texts lie beside the weights. This module imports neither torch nor safetensors at import time.

A download streams into a temporary file beside its destination while hashing, and only a file whose SHA-256
equals the published one is renamed into place (:func:`lfcc_gmm.atomic.atomic_write`): an interrupted or corrupted
download never leaves a partial file behind. Pure standard library (``urllib``); torch is not imported here.

Environment
-----------
``ANTISPOOF_HOME``
    The cache is ``$ANTISPOOF_HOME/weights``; without it, ``$XDG_CACHE_HOME/antispoof/weights`` or
    ``~/.cache/antispoof/weights``.
``ANTISPOOF_WEIGHTS_URL``
    A base URL (a mirror, a ``file://`` folder, or a local server in tests) to which the file name is appended,
    used instead of the official location.
``ANTISPOOF_AASIST_WEIGHTS``
    The weights the AASIST scorer reads when none are named (a file, or a name of :data:`KNOWN_WEIGHTS`);
    without it, the bundled ``aasist``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfcc_gmm.atomic import atomic_write

HOME_ENV = "ANTISPOOF_HOME"
URL_ENV = "ANTISPOOF_WEIGHTS_URL"
AASIST_ENV = "ANTISPOOF_AASIST_WEIGHTS"
#: Where the bundled weights and their licence texts are installed (package data of ``rawnet``).
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: The safetensors header key holding this toolkit's JSON description of a bundled file.
METADATA_KEY = "antispoof"
# Pinned to commits so the URLs always serve the bytes the hashes below describe.
AASIST_BASE_URL = (
    "https://raw.githubusercontent.com/clovaai/aasist/a04c9863f63d44471dde8a6abcb3b082b07cd1d1/models/weights/"
)
ASVSPOOF5_BASE_URL = (
    "https://raw.githubusercontent.com/asvspoof-challenge/asvspoof5/fe23d3053a0889b305d98c9e4cadf418c213d972/"
    "Baseline-AASIST/models/weights/AASIST/"
)
_CHUNK = 1 << 20
_TIMEOUT_S = 60

#: ``progress(bytes_done, bytes_total)``; ``bytes_total`` is None when the server does not say.
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class KnownWeights:
    """One published weights file, and the copy of it bundled with the package.

    Attributes
    ----------
    name : the name used on the command line (``--weights NAME``, ``antispoof weights fetch NAME``).
    filename : file name in the cache (and on a mirror, see ``ANTISPOOF_WEIGHTS_URL``).
    base_url : folder URL of the official source; ``base_url + remote_name`` is the download.
    sha256 : hex digest of the published file.
    description : one line for ``antispoof weights list``.
    remote_name : file name at the official source when it differs from ``filename``.
    bundled : file name of the bundled safetensors copy in :data:`PRETRAINED_DIR`; None when not bundled.
    bundled_sha256 : hex digest of that file (written by ``data/bundle_weights.py``, checked at every load).
    bundled_onnx : file name of the bundled ONNX graph of the same weights in :data:`PRETRAINED_DIR` (what the
        torch-free ``aasist-onnx`` scorer runs); None when there is none.
    bundled_onnx_sha256 : hex digest of that graph (written by ``data/bundle_weights.py``, checked at every load).
    licence : SPDX identifier of the weights' licence.
    licence_files : the licence texts in :data:`PRETRAINED_DIR` that must travel with the weights.
    source : the project that published the weights.
    trained_on : the training data.
    architecture : the network (the ``--scorer`` that reads them).
    config : the model config the weights fit (the official one).
    """

    name: str
    filename: str
    base_url: str
    sha256: str
    description: str
    remote_name: str | None = None
    bundled: str | None = None
    bundled_sha256: str | None = None
    bundled_onnx: str | None = None
    bundled_onnx_sha256: str | None = None
    licence: str = ""
    licence_files: tuple[str, ...] = ()
    source: str = ""
    trained_on: str = ""
    architecture: str = "aasist"
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def url(self) -> str:
        """The official download URL."""
        return self.base_url + (self.remote_name or self.filename)


# The published model configs: clovaai/aasist config/AASIST.conf and AASIST-L.conf ("model_config"); the
# ASVspoof 5 baseline's config/AASIST_ASVspoof5.conf has AASIST's. Written out here so that the registry needs
# no torch; a test checks them against rawnet.aasist.CONFIGS and the official files.
_AASIST_CONFIG = {
    "architecture": "AASIST", "nb_samp": 64600, "first_conv": 128,
    "filts": [70, [1, 32], [32, 32], [32, 64], [64, 64]], "gat_dims": [64, 32],
    "pool_ratios": [0.5, 0.7, 0.5, 0.5], "temperatures": [2.0, 2.0, 100.0, 100.0],
}
_AASIST_L_CONFIG = {
    "architecture": "AASIST", "nb_samp": 64600, "first_conv": 128,
    "filts": [70, [1, 32], [32, 32], [32, 24], [24, 24]], "gat_dims": [24, 32],
    "pool_ratios": [0.4, 0.5, 0.7, 0.5], "temperatures": [2.0, 2.0, 100.0, 100.0],
}

# What the two clovaai/aasist files share.
_CLOVAAI: dict[str, Any] = {
    "licence": "MIT", "licence_files": ("LICENSE-AASIST.txt",),
    "source": "https://github.com/clovaai/aasist (NAVER Corp.)",
    "trained_on": "ASVspoof 2019 LA train (English, VCTK speakers; 6 TTS/VC attacks A01-A06)",
}

KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    "aasist": KnownWeights(
        "aasist", "AASIST.pth", AASIST_BASE_URL,
        "51d2d9cf0738172f61e2a384ec50a54a55363240f67c971ed55a92435bc1a1c0",
        "AASIST (clovaai, MIT), ASVspoof 2019 LA train; 2019 LA eval EER 0.83 %",
        bundled="aasist.safetensors",
        bundled_onnx="aasist.onnx",
        bundled_onnx_sha256="2d0f4f318e457e8a575d22eadc45d9fe32b375b7df5a57be81d8ca8d88a38dc5",
        bundled_sha256="4ee7fce500095fc436bba5b7e9f24471e54ba3e04dff30c1445e3db56da7431c",
        **_CLOVAAI, config=_AASIST_CONFIG,
    ),
    "aasist-l": KnownWeights(
        "aasist-l", "AASIST-L.pth", AASIST_BASE_URL,
        "814331d088032bb4c3fa61cc014789eadeed464209dd094ab3a2dd6ffbdce27a",
        "AASIST-L (clovaai, MIT), 85k parameters; 2019 LA eval EER 0.99 %",
        bundled="aasist-l.safetensors",
        bundled_onnx="aasist-l.onnx",
        bundled_onnx_sha256="f6079c0bc6b9d26a7c0a9a1be2a07ec6b5e2f05a0c4b301e74ee679c04ada6f2",
        bundled_sha256="05d370fbe0dd332b884d22a1245f309bef2d75f6263334ab7cf46a2fa15eab21",
        **_CLOVAAI, config=_AASIST_L_CONFIG,
    ),
    "aasist-asvspoof5": KnownWeights(
        "aasist-asvspoof5", "AASIST-ASVspoof5.pth", ASVSPOOF5_BASE_URL,
        "8f10fe1d1ce3ac62c19f00b86dfaf79f86f464301d23e08726b16b02edbb601c",
        "AASIST, ASVspoof 5 organisers' baseline (MIT, NAVER), ASVspoof 5 train; generalises poorly elsewhere",
        remote_name="best.pth",
        bundled="aasist-asvspoof5.safetensors",
        bundled_onnx="aasist-asvspoof5.onnx",
        bundled_onnx_sha256="8b167b80f6bf4b3d5eb3fdc222fe7e2a1054f26707ac2deda6c6d04aab04934c",
        bundled_sha256="26c958b2e37b5eeb06d0867e74bbc06edbc09194c92171bfd628200146a5a924",
        licence="MIT", licence_files=("LICENSE-AASIST-ASVspoof5.txt", "NOTICE-AASIST-ASVspoof5.txt"),
        source="https://github.com/asvspoof-challenge/asvspoof5 (Baseline-AASIST)",
        trained_on="ASVspoof 5 train (crowdsourced English, MLS; attacks A01-A08)",
        config=_AASIST_CONFIG,
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
    return _verified(Path(dest_dir or cache_dir()) / entry.filename, entry.sha256,
                     f"published {entry.sha256}; fetch it again with `antispoof weights fetch {name} --force`")


def _verified(path: Path, expected: str | None, explanation: str) -> Path | None:
    """``path`` when it holds the bytes whose SHA-256 is ``expected``; None when there is no such file.

    Raises :class:`WeightsError` ("PATH: SHA-256 GOT is not the EXPLANATION") for any other content.
    """
    if not path.is_file():
        return None
    got = file_sha256(path)
    if got != expected:
        raise WeightsError(f"{path}: SHA-256 {got} is not the {explanation}")
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


# -------------------------------------------------------------------------------------------- bundled copies
def bundled_file(name: str) -> Path | None:
    """The verified bundled file of ``name``; None when ``name`` has no bundled copy or the install lacks it.

    Raises
    ------
    WeightsError
        when the file is there but its SHA-256 is not the one recorded in :data:`KNOWN_WEIGHTS` (a damaged
        installation or a hand-edited file: it is never used).
    """
    entry = known(name)
    if entry.bundled is None:
        return None
    return _verified(PRETRAINED_DIR / entry.bundled, entry.bundled_sha256,
                     f"bundled {entry.bundled_sha256}: the file is damaged; reinstall antispoof, or rebuild it "
                     f"with `python data/bundle_weights.py` from the official {entry.filename}")


def bundled_onnx_file(name: str) -> Path:
    """The verified bundled ONNX graph of the weights ``name`` (for ONNX Runtime, without torch).

    Raises
    ------
    WeightsNotFoundError
        ``name`` has no bundled graph, or the installation lacks it (says how to make one).
    WeightsError
        unknown name, or a graph whose SHA-256 is not the one recorded in :data:`KNOWN_WEIGHTS` (never used).
    """
    entry = known(name)
    path = None if entry.bundled_onnx is None else _verified(
        PRETRAINED_DIR / entry.bundled_onnx, entry.bundled_onnx_sha256,
        f"bundled {entry.bundled_onnx_sha256}: the file is damaged; reinstall antispoof, or rebuild it with "
        f"`python data/bundle_weights.py`")
    if path is None:
        with_graphs = ", ".join(n for n, e in KNOWN_WEIGHTS.items() if e.bundled_onnx) or "none"
        raise WeightsNotFoundError(
            f"no bundled ONNX graph of {name} in {PRETRAINED_DIR} (bundled graphs: {with_graphs}); export one with "
            f"`antispoof export --scorer {entry.architecture} --weights {name} --format onnx -o {name}.onnx`")
    return path


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """The NumPy arrays of a safetensors file and its antispoof description (``{}`` if it has none).

    Needs the ``safetensors`` package, not torch; nothing is unpickled.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            names = handle.keys()  # a safe_open handle is not iterable itself
            tensors = {key: handle.get_tensor(key) for key in names}
    except Exception as exc:  # safetensors raises its own error types for a malformed header
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        description = json.loads(metadata.get(METADATA_KEY, "{}"))
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{path}: the {METADATA_KEY!r} header entry is not JSON ({exc})") from exc
    return tensors, description


def read_bundled(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The tensors (NumPy arrays, the official state_dict names) and description of the bundled ``name``.

    The file's SHA-256 is checked first (:func:`bundled_file`); torch is not needed.
    """
    path = bundled_file(name)
    if path is None:
        raise WeightsNotFoundError(f"no bundled copy of {name} in {PRETRAINED_DIR}; {_how_to_get(name)}")
    return read_safetensors(path)


def weights_file(name: str) -> Path:
    """The file the weights ``name`` load from: the bundled copy, else the cached official file.

    Raises
    ------
    WeightsNotFoundError
        neither is there (an installation without its package data and an empty cache): says how to fetch.
    WeightsError
        unknown name, or a file whose SHA-256 is wrong.
    """
    path = bundled_file(name)
    if path is not None:
        return path
    cached = find_weights(name)
    if cached is None:
        raise WeightsNotFoundError(f"no {name} weights: {_how_to_get(name)}")
    return cached


def resolve_weights(value: str | os.PathLike, onnx: bool = False) -> Path:
    """What ``--weights VALUE`` means: an existing file, else a name of :data:`KNOWN_WEIGHTS` (see
    :func:`weights_file`; with ``onnx``, the name's bundled ONNX graph, :func:`bundled_onnx_file`); a clear error
    listing the names otherwise."""
    path = Path(value)
    if path.is_file():
        return path
    if str(value) in KNOWN_WEIGHTS:
        return bundled_onnx_file(str(value)) if onnx else weights_file(str(value))
    raise WeightsNotFoundError(f"{value}: no such {'ONNX' if onnx else 'weights'} file, and not a weights name "
                               f"(known: {', '.join(KNOWN_WEIGHTS)})")


def default_aasist_weights(variant: str | None = None, onnx: bool = False) -> Path:
    """The weights the AASIST scorer reads when given none (with ``onnx``, the graph the ``aasist-onnx`` scorer
    reads).

    ``variant`` (``"aasist"``, ``"aasist-l"``) names them; without it ``$ANTISPOOF_AASIST_WEIGHTS`` (a file
    or a name) when set, else the bundled ``aasist``.
    """
    if variant is None:
        configured = os.environ.get(AASIST_ENV)
        if configured:
            try:
                return resolve_weights(configured, onnx)
            except WeightsNotFoundError as exc:
                raise WeightsNotFoundError(f"{AASIST_ENV}={configured}: {exc}") from None
    name = variant or "aasist"
    return bundled_onnx_file(name) if onnx else weights_file(name)


def identify(path: str | os.PathLike) -> str | None:
    """The name of the published weights ``path`` holds (their official file, bundled copy or bundled ONNX graph, by
    SHA-256), or None for any other file."""
    digest = file_sha256(path)
    return next((name for name, entry in KNOWN_WEIGHTS.items()
                 if digest in (entry.sha256, entry.bundled_sha256, entry.bundled_onnx_sha256)), None)


def weights_status(name: str) -> dict[str, Any]:
    """What ``antispoof weights list`` shows for ``name``: bundled copy, cache, source, licence, training data.

    ``bundled`` is ``"verified"``, ``"damaged"`` (wrong SHA-256), ``"absent"`` (an installation without its
    package data) or None (not bundled); ``onnx`` is the same for the bundled ONNX graph that ``aasist-onnx``
    runs; ``status`` is the cache's: ``"cached"``, ``"missing"`` or ``"corrupt"``; ``loads_from`` is the file
    ``--weights NAME`` reads (None: neither is usable).
    """
    entry = known(name)
    bundled_path = PRETRAINED_DIR / entry.bundled if entry.bundled else None
    bundled = _bundled_state(bundled_path, entry.bundled_sha256)
    onnx_path = PRETRAINED_DIR / entry.bundled_onnx if entry.bundled_onnx else None
    cached = cache_dir() / entry.filename
    status = "missing"
    if cached.is_file():
        status = "cached" if file_sha256(cached) == entry.sha256 else "corrupt"
    loads_from = bundled_path if bundled == "verified" else cached if status == "cached" else None
    return {
        "name": name, "description": entry.description,
        "bundled": bundled, "bundled_path": None if bundled_path is None else str(bundled_path),
        "bundled_sha256": entry.bundled_sha256,
        "onnx": _bundled_state(onnx_path, entry.bundled_onnx_sha256),
        "onnx_path": None if onnx_path is None else str(onnx_path),
        "status": status, "path": str(cached), "sha256": entry.sha256, "url": source_url(name),
        "licence": entry.licence, "licence_files": [str(PRETRAINED_DIR / f) for f in entry.licence_files],
        "trained_on": entry.trained_on, "source": entry.source,
        "loads_from": None if loads_from is None else str(loads_from),
    }


def _bundled_state(path: Path | None, sha256: str | None) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        return "absent"
    return "verified" if file_sha256(path) == sha256 else "damaged"


def _how_to_get(name: str) -> str:
    entry = known(name)
    return (f"fetch the official file with `antispoof weights fetch {name}` (into "
            f"{cache_dir() / entry.filename}), or pass a file with --weights")


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
        try:
            got, size = _download(where, handle, progress)
        except _Unreachable as exc:
            raise WeightsError(f"{exc} {offline_hint(name)}") from exc.__cause__
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
    except urllib.error.URLError as exc:
        if done == 0 and _is_connection_failure(url, exc.reason):
            raise _Unreachable(f"{url}: download failed: {_no_connection(url, exc.reason)}.") from exc
        raise WeightsError(f"{url}: download failed after {done} bytes: {exc.reason}") from exc
    except (http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(f"{url}: download failed after {done} bytes: {reason}") from exc
    if total is not None and done != total:
        raise WeightsError(f"{url}: download truncated: got {done} of {total} bytes")
    return digest.hexdigest(), done


class _Unreachable(WeightsError):
    """No connection to the server at all (no network, no DNS, nothing listening): :func:`fetch` says what to do."""


def _is_connection_failure(url: str, reason: object) -> bool:
    # socket.gaierror (the name does not resolve), refused or unreachable connections and timeouts are all
    # OSErrors; a file:// URL that names no file is not a network problem.
    return urllib.parse.urlsplit(url).scheme in ("http", "https") and isinstance(reason, OSError)


def _no_connection(url: str, reason: object) -> str:
    host = urllib.parse.urlsplit(url).hostname or url
    if isinstance(reason, socket.gaierror):
        return f"the host name {host} does not resolve ({reason.strerror or reason}): there is no network (or no DNS)"
    detail = getattr(reason, "strerror", None) or reason
    return f"{host} cannot be reached ({detail}): no network, or the server is down"


def offline_hint(name: str) -> str:
    """How to get the weights ``name`` without a network connection (one or two sentences)."""
    entry = known(name)
    ways = []
    if entry.bundled is not None:
        ways.append(f"the copy bundled with antispoof needs no download (`--weights {name}`"
                    + (", the default of --scorer aasist" if name == "aasist" else "") + ")")
    ways.append(f"or copy {entry.filename} from a machine that has it and run "
                f"`antispoof weights fetch {name} --url file:///path/to/{entry.filename}`")
    ways.append(f"or set {URL_ENV} to a folder (file:// or http://) that holds {entry.filename}")
    return "To proceed offline: " + "; ".join(ways) + ". The SHA-256 is checked either way."

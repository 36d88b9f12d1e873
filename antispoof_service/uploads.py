"""Request bodies received under a size cap that is checked while they stream in, held in memory while small.

A body is either the raw audio file (any ``audio/*`` type or ``application/octet-stream``) or
``multipart/form-data`` with the audio in the field ``file``; the multipart form is parsed incrementally
(:mod:`antispoof_service.multipart`). An upload stays in memory up to :data:`MEMORY_LIMIT` bytes and is spooled to a
temporary file beyond (as :class:`tempfile.SpooledTemporaryFile` does), so that a clip of a few seconds costs no
file system calls and a body of tens of megabytes no memory. A spooled file is removed here on any failure and by
the caller (:meth:`Upload.remove`) after the request, whatever happened.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from lfcc_gmm.audio import DEFAULT_SAMPLE_RATE as SAMPLE_RATE

from .errors import ServiceError, bad_audio, bad_parameter
from .multipart import MultipartError, MultipartReader

#: Name of the multipart field that holds the audio.
FILE_FIELD = "file"
#: The ``file`` of a raw-body upload, as ``antispoof score -`` names standard input.
RAW_BODY_NAME = "-"
#: Content types accepted for the audio itself (``audio/*`` and ``video/*`` containers are accepted too: browsers
#: label .webm and .ogg recordings either way); anything else is 415.
AUDIO_TYPES = ("application/octet-stream",)
#: Largest upload kept in memory (1 MiB: half a minute of 16 kHz 16-bit WAV, minutes of FLAC); larger ones are
#: spooled to a file as they arrive. At most ``--max-concurrency`` + ``--queue`` uploads are held at once.
MEMORY_LIMIT = 1 << 20


class Upload:
    """An uploaded audio file named ``filename`` by the client: its bytes in memory (:attr:`data`) while it is at
    most ``memory_limit`` bytes, else in a temporary file in ``directory`` (:attr:`path`).

    Bytes arrive through :meth:`write`; :meth:`finish` ends the upload, :meth:`remove` deletes its file (if any).
    """

    def __init__(self, directory: str | os.PathLike, filename: str = RAW_BODY_NAME,
                 memory_limit: int = MEMORY_LIMIT):
        self.directory, self.filename, self.memory_limit = directory, filename, memory_limit
        self.size = 0
        #: The bytes, once :meth:`finish` ran on an upload held in memory; None for a spooled one.
        self.data: bytes | None = None
        #: The temporary file of an upload spooled to disk; None for one held in memory.
        self.path: Path | None = None
        self._chunks: list[bytes] = []
        self._file: BinaryIO | None = None

    @classmethod
    def of_bytes(cls, data: bytes, filename: str, directory: str | os.PathLike) -> Upload:
        """A finished upload held in memory, whatever its size (audio the service made itself)."""
        upload = cls(directory, filename, memory_limit=len(data))
        upload.write(data)
        upload.finish()
        return upload

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._file is None and self.size > self.memory_limit:
            self.path, self._file = _temporary_file(self.directory)
            self._file.writelines(self._chunks)
            self._chunks = []
        if self._file is not None:
            self._file.write(data)
        else:
            self._chunks.append(data)

    def finish(self) -> None:
        """All bytes have arrived: close the spooled file, or join the bytes held in memory."""
        if self._file is not None:
            self._file.close()
        elif self.path is None:
            self.data = b"".join(self._chunks)
            self._chunks = []

    def source(self) -> str | io.BytesIO:
        """What soundfile reads the finished upload from: its file, or its bytes."""
        return str(self.path) if self.path is not None else io.BytesIO(self.data or b"")

    @contextlib.contextmanager
    def on_disk(self) -> Iterator[Path]:
        """The path of the finished upload as a file, for a scorer that reads files only: its spooled file, or
        its bytes written to a temporary file that is removed afterwards."""
        if self.path is not None:
            yield self.path
            return
        path, out = _temporary_file(self.directory)
        try:
            with out:
                out.write(self.data or b"")
            yield path
        finally:
            path.unlink()

    def remove(self) -> None:
        """Delete the spooled file (if any) and drop the bytes; safe to call more than once."""
        if self._file is not None:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._chunks, self.data = [], None


def _temporary_file(directory: str | os.PathLike) -> tuple[Path, BinaryIO]:
    handle, name = tempfile.mkstemp(prefix="antispoof-upload-", suffix=".audio", dir=directory)
    return Path(name), os.fdopen(handle, "wb")


def accepts_audio(content_type: str) -> bool:
    """Whether a part or body of this (already lower-cased, parameter-free) type may hold audio."""
    return content_type.startswith(("audio/", "video/")) or content_type in AUDIO_TYPES


def too_large(limit: int, what: str = "the request body") -> ServiceError:
    return ServiceError(413, "too-large", f"{what} is larger than this service's limit of {limit:,} bytes "
                                          f"(--max-upload-mb)")


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    main, *rest = content_type.split(";")
    params = {}
    for item in rest:
        key, _, value = item.strip().partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), params


def _disposition(value: str) -> dict[str, str]:
    return _media_type(value)[1]


async def spool_body(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    content_length: int | None,
    directory: str | os.PathLike,
    limit: int,
    memory_limit: int = MEMORY_LIMIT,
) -> Upload:
    """Receive the audio of a request body and return it, held in memory up to ``memory_limit`` bytes, beyond that
    spooled to a new file in ``directory``.

    Raises
    ------
    ServiceError
        413 when ``content_length`` or the bytes received pass ``limit`` (reading stops there); 415 for a
        content type that cannot hold audio; 422 for a multipart body without a ``file`` field; 400 for a
        truncated multipart body or an empty file. A spooled file is removed before raising.
    """
    if content_length is not None and content_length > limit:
        raise too_large(limit)
    media, params = _media_type(content_type or "application/octet-stream")
    multipart = media == "multipart/form-data"
    if not multipart and not accepts_audio(media):
        raise ServiceError(415, "unsupported-type", f"content type {media!r} is not audio: send the file as the "
                                                    f"multipart field {FILE_FIELD!r} or as a raw audio/* body")
    if multipart and not params.get("boundary"):
        raise bad_parameter("multipart/form-data without a boundary")
    upload = Upload(directory, RAW_BODY_NAME, memory_limit)
    try:
        if multipart:
            await _spool_multipart(chunks, params["boundary"], upload, limit)
        else:
            received = 0
            async for chunk in chunks:
                received += len(chunk)
                if received > limit:
                    raise too_large(limit)
                if chunk:
                    upload.write(chunk)
        upload.finish()
        if upload.size == 0:
            raise bad_audio(upload.filename, "the file is empty (0 bytes)", empty=True)
        return upload
    except BaseException:
        upload.remove()
        raise


async def _spool_multipart(chunks: AsyncIterator[bytes], boundary: str, upload: Upload, limit: int) -> None:
    found = False

    def on_part(headers: dict[str, str]) -> bool:
        nonlocal found
        disposition = _disposition(headers.get("content-disposition", ""))
        if disposition.get("name") != FILE_FIELD or found:
            return False
        part_type = _media_type(headers.get("content-type", "application/octet-stream"))[0]
        filename = os.path.basename(disposition.get("filename", "").replace("\\", "/")) or RAW_BODY_NAME
        if not accepts_audio(part_type):
            raise ServiceError(415, "unsupported-type", f"{filename}: content type {part_type!r} is not audio")
        upload.filename = filename
        found = True
        return True

    received = 0
    try:
        reader = MultipartReader(boundary.encode("latin-1"), on_part, upload.write)
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            reader.feed(chunk)
    except (MultipartError, UnicodeEncodeError) as exc:
        raise ServiceError(400, "malformed-body", f"malformed multipart body: {exc}") from exc
    if not reader.finished:
        raise ServiceError(400, "truncated-body", f"the multipart body ended before its closing boundary "
                                                  f"({received:,} bytes received): the upload was cut short")
    if not found:
        raise bad_parameter(f"the multipart body has no field {FILE_FIELD!r} holding the audio")


def spool_signal(signal: np.ndarray, subtype: str, directory: str | os.PathLike, name: str) -> Upload:
    """A finished stream as an upload of a WAV file (16 kHz mono) held in memory, scored as an upload is;
    ``directory`` is where it is written should a scorer read files only. ``subtype`` ``PCM_16`` for int16 streams
    and ``FLOAT`` for float32 ones: soundfile reads back exactly the samples streamed."""
    buffer = io.BytesIO()
    sf.write(buffer, signal, SAMPLE_RATE, subtype=subtype, format="WAV")
    return Upload.of_bytes(buffer.getvalue(), name, directory)

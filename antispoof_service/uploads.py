"""Request bodies spooled to a temporary file under a size cap that is checked while they stream in.

A body is either the raw audio file (any ``audio/*`` type or ``application/octet-stream``) or
``multipart/form-data`` with the audio in the field ``file``; the multipart form is parsed incrementally
(python-multipart's push parser), so neither form is ever held in memory whole. The temporary file is removed
here on any failure and by the caller (:meth:`Upload.remove`) after the request, whatever happened.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from .errors import ServiceError, bad_audio, bad_parameter

#: Name of the multipart field that holds the audio.
FILE_FIELD = "file"
#: The ``file`` of a raw-body upload, as ``antispoof score -`` names standard input.
RAW_BODY_NAME = "-"
#: Content types accepted for the audio itself (``audio/*`` and ``video/*`` containers are accepted too: browsers
#: label .webm and .ogg recordings either way); anything else is 415.
AUDIO_TYPES = ("application/octet-stream",)


@dataclass
class Upload:
    """An audio file spooled to ``path``; ``filename`` is what the client called it."""

    path: Path
    filename: str
    size: int

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


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
) -> Upload:
    """Write the audio of a request body to a new file in ``directory`` and return it.

    Raises
    ------
    ServiceError
        413 when ``content_length`` or the bytes received pass ``limit`` (reading stops there); 415 for a
        content type that cannot hold audio; 422 for a multipart body without a ``file`` field; 400 for a
        truncated multipart body or an empty file. The file is removed before raising.
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
    handle, name = tempfile.mkstemp(prefix="antispoof-upload-", suffix=".audio", dir=directory)
    upload = Upload(Path(name), RAW_BODY_NAME, 0)
    try:
        with os.fdopen(handle, "wb") as out:
            if multipart:
                await _spool_multipart(chunks, params["boundary"], out, upload, limit)
            else:
                received = 0
                async for chunk in chunks:
                    received += len(chunk)
                    if received > limit:
                        raise too_large(limit)
                    out.write(chunk)
                upload.size = received
        if upload.size == 0:
            raise bad_audio(upload.filename, "the file is empty (0 bytes)", empty=True)
        return upload
    except BaseException:
        upload.remove()
        raise


@dataclass
class _Parts:
    """What the multipart callbacks have seen so far."""

    field: bytes = b""
    value: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    writing: bool = False
    found: bool = False
    ended: bool = False
    error: ServiceError | None = None


async def _spool_multipart(chunks: AsyncIterator[bytes], boundary: str, out: BinaryIO, upload: Upload,
                           limit: int) -> None:
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser

    parts = _Parts()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        parts.field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        parts.value += data[start:end]

    def on_header_end() -> None:
        parts.headers[parts.field.decode("latin-1").strip().lower()] = parts.value.decode("utf-8", "replace")
        parts.field = parts.value = b""

    def on_headers_finished() -> None:
        headers, parts.headers = parts.headers, {}
        disposition = _disposition(headers.get("content-disposition", ""))
        if disposition.get("name") != FILE_FIELD or parts.found:
            return
        part_type = _media_type(headers.get("content-type", "application/octet-stream"))[0]
        filename = os.path.basename(disposition.get("filename", "").replace("\\", "/")) or RAW_BODY_NAME
        if not accepts_audio(part_type):
            parts.error = ServiceError(415, "unsupported-type", f"{filename}: content type {part_type!r} is not audio")
            return
        upload.filename = filename
        parts.found = parts.writing = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if parts.writing:
            out.write(data[start:end])
            upload.size += end - start

    def on_part_end() -> None:
        parts.writing = False

    def on_end() -> None:
        parts.ended = True

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_end": on_end,
    })
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            parser.write(chunk)
            if parts.error is not None:
                raise parts.error
    except MultipartParseError as exc:
        raise ServiceError(400, "malformed-body", f"malformed multipart body: {exc}") from exc
    if not parts.ended:
        raise ServiceError(400, "truncated-body", f"the multipart body ended before its closing boundary "
                                                  f"({received:,} bytes received): the upload was cut short")
    if not parts.found:
        raise bad_parameter(f"the multipart body has no field {FILE_FIELD!r} holding the audio")


def spool_signal(signal: np.ndarray, subtype: str, directory: str | os.PathLike, name: str) -> Upload:
    """A finished stream as a WAV file in ``directory`` (16 kHz mono), scored as an upload is. ``subtype``
    ``PCM_16`` for int16 streams and ``FLOAT`` for float32 ones: soundfile reads back exactly the samples streamed."""
    handle, path = tempfile.mkstemp(prefix="antispoof-stream-", suffix=".wav", dir=directory)
    os.close(handle)
    upload = Upload(Path(path), name, 0)
    try:
        sf.write(path, signal, 16000, subtype=subtype, format="WAV")
        upload.size = upload.path.stat().st_size
        return upload
    except BaseException:
        upload.remove()
        raise

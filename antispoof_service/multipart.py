"""An incremental ``multipart/form-data`` reader (RFC 7578, framed as RFC 2046 says) for request bodies.

The body's bytes are pushed in as they arrive (:meth:`MultipartReader.feed`), cut anywhere. Each part's headers go to
a callback that says whether its data is wanted; wanted data goes to a sink as it arrives and is never held whole.
Delimiters are found with ``bytes.find`` over what has arrived, so a part costs a search and a copy per chunk, not
Python work per byte: python-multipart, used before, walked the part headers byte by byte and called back a dozen
times a request, a tenth of the service's own time for a request of a few seconds of audio (measured).
"""

from __future__ import annotations

from collections.abc import Callable

#: Longest header block of one part (its headers are held until the blank line that ends them).
MAX_HEADER_BYTES = 16 * 1024
#: Longest run of bytes after a delimiter before its line ends (RFC 2046 allows spaces and tabs there).
MAX_PADDING_BYTES = 1024

_PREAMBLE, _DELIMITER, _HEADERS, _DATA, _EPILOGUE = range(5)


class MultipartError(ValueError):
    """A body that is not ``multipart/form-data`` framed by its boundary."""


class MultipartReader:
    """Push parser of one ``multipart/form-data`` body.

    Parameters
    ----------
    boundary : the ``boundary`` parameter of the body's content type (RFC 2046: 1 to 70 characters).
    on_part : called with each part's headers (names lower-cased); returns whether the part's data is wanted.
        An exception it raises propagates out of :meth:`feed`.
    on_data : receives the wanted parts' data, in order, in pieces.

    Attributes
    ----------
    finished : whether the closing delimiter has arrived (anything after it, the epilogue, is ignored).
    """

    def __init__(self, boundary: bytes, on_part: Callable[[dict[str, str]], bool],
                 on_data: Callable[[bytes], None]):
        if not 1 <= len(boundary) <= 70:
            raise MultipartError(f"the boundary must be 1 to 70 characters long, not {len(boundary)}")
        self._delimiter = b"\r\n--" + boundary
        # Every delimiter but the first follows a CRLF that belongs to it; this one lets the first be found alike.
        self._buffer = b"\r\n"
        self._state = _PREAMBLE
        self._wanted = False
        self._on_part, self._on_data = on_part, on_data
        self.finished = False

    def feed(self, data: bytes) -> None:
        """Parse the next bytes of the body.

        Raises
        ------
        MultipartError
            Bytes that break the framing: garbage after a delimiter, a header line without a colon, a header
            block over :data:`MAX_HEADER_BYTES`.
        """
        buffer = self._buffer + data if self._buffer else data
        while buffer:
            if self._state in (_PREAMBLE, _DATA):
                at = buffer.find(self._delimiter)
                if at < 0:
                    # All but what could be the start of a delimiter cut by the chunk's end.
                    keep = min(len(buffer), len(self._delimiter) - 1)
                    if self._state == _DATA and self._wanted and len(buffer) > keep:
                        self._on_data(buffer[: len(buffer) - keep])
                    buffer = buffer[len(buffer) - keep :]
                    break
                if self._state == _DATA and self._wanted and at:
                    self._on_data(buffer[:at])
                buffer = buffer[at + len(self._delimiter) :]
                self._state = _DELIMITER
            elif self._state == _DELIMITER:
                if buffer.startswith(b"--"):
                    self.finished, self._state, buffer = True, _EPILOGUE, b""
                    break
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > MAX_PADDING_BYTES:
                        raise MultipartError("no line end after a boundary")
                    break
                if buffer[:end].strip(b" \t"):
                    raise MultipartError(f"unexpected bytes after a boundary: {buffer[:min(end, 40)]!r}")
                buffer = buffer[end + 2 :]
                self._state = _HEADERS
            elif self._state == _HEADERS:
                if buffer.startswith(b"\r\n"):  # a part without headers
                    block, buffer = b"", buffer[2:]
                else:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buffer) > MAX_HEADER_BYTES:
                            raise MultipartError(f"a part's headers are longer than {MAX_HEADER_BYTES:,} bytes")
                        break
                    block, buffer = buffer[:end], buffer[end + 4 :]
                self._wanted = self._on_part(_headers(block))
                self._state = _DATA
            else:
                buffer = b""
        self._buffer = buffer


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n") if block else ():
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise MultipartError(f"malformed part header line {line[:80]!r}")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", "replace")
    return headers

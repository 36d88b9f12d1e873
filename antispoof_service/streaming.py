"""Windows of a live PCM stream, complete as soon as their last sample arrives (pure NumPy, no I/O).

A stream is 16 kHz mono PCM, float32 or int16 little-endian, declared in the client's first message. Segment ``k``
spans samples ``[k·hop, k·hop + length)``, the grid of an uploaded file's timeline without the last, end-aligned
segment that only the end of the recording fixes; that one comes with the file-level result when the stream
ends. int16 samples are scaled by 1/32768, as soundfile reads 16-bit PCM, so a streamed recording is the same
float64 signal as the WAV file it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lfcc_gmm.audio import DEFAULT_SAMPLE_RATE as SAMPLE_RATE

#: Sample encodings a client may declare, and their NumPy types (little-endian).
ENCODINGS: dict[str, np.dtype] = {"float32": np.dtype("<f4"), "int16": np.dtype("<i2")}
#: The WAV subtype that holds each encoding's samples exactly (a finished stream is scored as a WAV upload).
WAV_SUBTYPES = {"float32": "FLOAT", "int16": "PCM_16"}


class StreamError(ValueError):
    """A stream the service cannot take: a bad first message, bytes that are not whole samples, too long."""


@dataclass(frozen=True)
class StreamFormat:
    """What the client's first message declares."""

    encoding: str
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise StreamError(f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if self.sample_rate != SAMPLE_RATE:
            raise StreamError(f"the stream must be {SAMPLE_RATE} Hz mono PCM (resample on the client), "
                              f"got sample_rate {self.sample_rate!r}")


class StreamBuffer:
    """Collects the PCM of one stream and says which windows each new chunk completes.

    Parameters
    ----------
    encoding : a key of :data:`ENCODINGS`.
    length, hop : window length and hop in samples (the scorer's segment grid).
    max_samples : longest stream taken; :meth:`feed` raises :class:`StreamError` past it.
    """

    def __init__(self, encoding: str, length: int, hop: int, max_samples: int):
        if length < 1 or hop < 1:
            raise ValueError(f"length and hop must be at least 1 sample, got {length} and {hop}")
        self.dtype = ENCODINGS[encoding]
        self.scale = 1.0 / 32768 if encoding == "int16" else 1.0
        self.length, self.hop, self.max_samples = length, hop, max_samples
        self._samples = np.empty(min(max_samples, 4 * length), dtype=np.float64)
        self.n = 0
        self.emitted = 0  # windows already returned by feed
        self._pending = b""  # bytes of a sample split across two chunks

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        """Append a chunk; return the (start, stop) sample spans of the windows it completed, in order."""
        data = self._pending + data
        whole = len(data) - len(data) % self.dtype.itemsize
        self._pending = data[whole:]
        values = np.frombuffer(data[:whole], dtype=self.dtype)
        if self.n + values.shape[0] > self.max_samples:
            raise StreamError(f"the stream passed this service's limit of {self.max_samples / SAMPLE_RATE:g} s "
                              f"(--max-duration-s)")
        if self.n + values.shape[0] > self._samples.shape[0]:
            grown = np.empty(min(self.max_samples, max(2 * self._samples.shape[0], self.n + values.shape[0])))
            grown[: self.n] = self._samples[: self.n]
            self._samples = grown
        self._samples[self.n : self.n + values.shape[0]] = values * self.scale
        self.n += values.shape[0]
        spans = []
        while self.emitted * self.hop + self.length <= self.n:
            start = self.emitted * self.hop
            spans.append((start, start + self.length))
            self.emitted += 1
        return spans

    def window(self, start: int, stop: int) -> np.ndarray:
        """A copy of samples ``[start, stop)``."""
        return self._samples[start:stop].copy()

    def signal(self) -> np.ndarray:
        """Everything received so far (float64); raises :class:`StreamError` if a sample is incomplete."""
        if self._pending:
            raise StreamError(f"the stream ended inside a sample ({len(self._pending)} stray byte(s) of a "
                              f"{self.dtype.itemsize}-byte {self.dtype.name} sample)")
        return self._samples[: self.n].copy()

"""What a person or a program gets for one recording: the verdict, the evidence behind it, and its renderings.

:class:`FileResult` is the result of one file: its JSON form (:meth:`FileResult.to_dict`, described by
:data:`RESULT_SCHEMA`) is what ``antispoof score --format json`` prints and what a service answers, field for
field. Its fields, in order:

``file``
    The path as given (``-`` for standard input).
``scorer``
    The registered scorer name.
``verdict``
    ``"bona fide"`` (score at or above the threshold), ``"spoof"`` (below it), ``"no speech"`` (less than
    :data:`lfcc_gmm.speech.MIN_SPEECH_S` of speech was found, whatever the score), or null when there is no
    threshold to decide with.
``score``
    The file score, higher = more bona fide; written even for "no speech" (checks never change a score).
``threshold``
    The threshold the verdict used (null when there is none).
``mode``
    ``"whole file"`` (every scorer's default) or ``"official crop"`` (the deep models' official evaluation:
    the first ``nb_samp`` samples, repeat-padded).
``duration_s``, ``speech_s``
    Length of the recording and of the speech found in it, in seconds (after conversion to 16 kHz mono).
``warnings``
    One sentence per finding of :func:`lfcc_gmm.checks.check_signal` (no speech, clipped, low level, short and
    padded, long stretches without speech) and per conversion the audio needed (resampling, down-mixing).
``segments``
    ``{"start_s", "end_s", "score"}`` of each segment of the timeline (:mod:`lfcc_gmm.segments`).

A file that could not be scored has ``error`` (why) with the other fields null or empty.

:func:`write_results` streams results as text, JSON or CSV, so that printing thousands of files holds one at a
time.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from .segments import Segment

WHOLE_FILE = "whole file"
OFFICIAL_CROP = "official crop"
#: How a scorer reads a file: the value of ``mode``.
MODES = (WHOLE_FILE, OFFICIAL_CROP)

BONA_FIDE = "bona fide"
SPOOF = "spoof"
NO_SPEECH = "no speech"
VERDICTS = (BONA_FIDE, SPOOF, NO_SPEECH)

#: The fields of a result's JSON object, in order (an ``error`` field follows on a failure).
RESULT_FIELDS = ("file", "scorer", "verdict", "score", "threshold", "mode", "duration_s", "speech_s", "warnings",
                 "segments")
#: ``--format`` values of :func:`write_results`.
FORMATS = ("text", "json", "csv")

_NUMBER_OR_NULL = {"type": ["number", "null"]}
#: JSON Schema (draft 2020-12) of one result object, for programs that read them.
RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "antispoof file result",
    "type": "object",
    "required": list(RESULT_FIELDS),
    "additionalProperties": False,
    "properties": {
        "file": {"type": "string"},
        "scorer": {"type": "string"},
        "verdict": {"enum": [*VERDICTS, None]},
        "score": _NUMBER_OR_NULL,
        "threshold": _NUMBER_OR_NULL,
        "mode": {"enum": [*MODES, None]},
        "duration_s": _NUMBER_OR_NULL,
        "speech_s": _NUMBER_OR_NULL,
        "warnings": {"type": "array", "items": {"type": "string"}},
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["start_s", "end_s", "score"],
                "additionalProperties": False,
                "properties": {"start_s": {"type": "number"}, "end_s": {"type": "number"},
                               "score": {"type": "number"}},
            },
        },
        "error": {"type": "string"},
    },
}


@dataclass(frozen=True)
class Threshold:
    """A verdict threshold and what it means, in words a person can check.

    Attributes
    ----------
    value : float
        Scores at or above it are "bona fide".
    meaning : str
        Where it comes from, e.g. "the equal error rate point of these weights on the demo dev split".
    """

    value: float
    meaning: str

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise ValueError(f"a threshold must be a finite number, got {self.value}")


def decide(score: float, threshold: float | None, no_speech: bool) -> str | None:
    """The verdict: "no speech" when the checks found none, else "bona fide" at or above ``threshold``, else
    "spoof"; None when there is no threshold."""
    if no_speech:
        return NO_SPEECH
    if threshold is None:
        return None
    return BONA_FIDE if score >= threshold else SPOOF


@dataclass(frozen=True)
class FileResult:
    """The result of one recording (module docstring: the meaning of each field)."""

    file: str
    scorer: str
    verdict: str | None = None
    score: float | None = None
    threshold: float | None = None
    mode: str | None = None
    duration_s: float | None = None
    speech_s: float | None = None
    warnings: tuple[str, ...] = ()
    segments: tuple[Segment, ...] = ()
    error: str | None = None
    #: What ``threshold`` means (shown in the text rendering; not part of the JSON object).
    threshold_meaning: str | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: :data:`RESULT_FIELDS`, then ``error`` for a failure."""
        out: dict[str, Any] = {
            "file": self.file, "scorer": self.scorer, "verdict": self.verdict, "score": self.score,
            "threshold": self.threshold, "mode": self.mode, "duration_s": self.duration_s,
            "speech_s": self.speech_s, "warnings": list(self.warnings),
            "segments": [s.to_dict() for s in self.segments],
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileResult:
        """A result read back from its JSON object."""
        unknown = sorted(set(data) - {*RESULT_FIELDS, "error"})
        if unknown:
            raise ValueError(f"not a file result: unknown field(s) {', '.join(unknown)}")
        return cls(
            file=data["file"], scorer=data["scorer"], verdict=data.get("verdict"), score=data.get("score"),
            threshold=data.get("threshold"), mode=data.get("mode"), duration_s=data.get("duration_s"),
            speech_s=data.get("speech_s"), warnings=tuple(data.get("warnings", ())),
            segments=tuple(Segment(float(s["start_s"]), float(s["end_s"]), float(s["score"]))
                           for s in data.get("segments", ())),
            error=data.get("error"),
        )

    def to_text(self) -> str:
        """Lines for a person: the verdict with its score and what the threshold means, then each warning and the
        lowest segment when there are several."""
        if self.error is not None:
            return f"{self.file}: FAILED ({self.error})"
        about = f"{self.mode}, {self.duration_s:.2f} s, {self.speech_s:.2f} s of speech"
        if self.verdict == NO_SPEECH:
            head = f"no speech (score {self.score:.4f} not used; {about})"
        elif self.verdict is None:
            head = f"score {self.score:.4f} (no threshold: give --threshold for a verdict; {about})"
        else:
            side = "at or above" if self.verdict == BONA_FIDE else "below"
            meaning = f", {self.threshold_meaning}" if self.threshold_meaning else ""
            head = (f"{self.verdict} (score {self.score:.4f} {side} the threshold {self.threshold:g}{meaning}; "
                    f"{about})")
        lines = [f"{self.file}: {head}"]
        lines += [f"  warning: {w}" for w in self.warnings]
        if len(self.segments) > 1:
            low = min(self.segments, key=lambda s: s.score)
            lines.append(f"  {len(self.segments)} segments; the lowest scores {low.score:.4f} "
                         f"({low.start_s:.2f}-{low.end_s:.2f} s)")
        return "\n".join(lines)

    def csv_row(self) -> list[str]:
        """The CSV columns of :data:`CSV_FIELDS`; lists (warnings, segments) as JSON text."""
        row = self.to_dict()
        row.setdefault("error", None)
        return [_csv_cell(row[name]) for name in CSV_FIELDS]


#: Columns of the CSV rendering.
CSV_FIELDS = (*RESULT_FIELDS, "error")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class ResultWriter:
    """Writes results to a text stream as they come, in one of :data:`FORMATS`; :meth:`close` ends the document.

    ``json`` writes one array with each object on its own line; ``csv`` a header and one row per file
    (:data:`CSV_FIELDS`); ``text`` :meth:`FileResult.to_text` of each. The stream is flushed after each result, so
    a long run shows its progress. :attr:`written` and :attr:`failed` count the results and the failures.
    """

    def __init__(self, stream: IO[str], fmt: str = "text"):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.stream, self.fmt = stream, fmt
        self.written = self.failed = 0
        self._csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(CSV_FIELDS)
        elif fmt == "json":
            stream.write("[")

    def write(self, result: FileResult) -> None:
        if self.fmt == "json":
            self.stream.write(("," if self.written else "") + "\n" + json.dumps(result.to_dict()))
        elif self._csv is not None:
            self._csv.writerow(result.csv_row())
        else:
            self.stream.write(result.to_text() + "\n")
        self.written += 1
        self.failed += not result.ok
        self.stream.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.stream.write("\n]\n" if self.written else "]\n")
        self.stream.flush()


def write_results(results: Iterable[FileResult], stream: IO[str], fmt: str = "text") -> ResultWriter:
    """Write ``results`` with a :class:`ResultWriter` as they come; returns it (for its counts)."""
    writer = ResultWriter(stream, fmt)
    for result in results:
        writer.write(result)
    writer.close()
    return writer

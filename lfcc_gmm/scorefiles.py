"""Score files (SPEC §8): read, write atomically, and join with a protocol.

Two layouts, detected from the column count:

- 2 columns ``FILE_ID SCORE`` (the ASVspoof 2021 submission format);
- 4 columns ``FILE_ID ATTACK KEY SCORE`` (the AASIST / RawGAT-ST releases), self-labelled.

Higher score = more bona fide, always. ``FILE_ID`` and ``ATTACK`` are written by
:func:`lfcc_gmm.protocols.encode_id` and read by :func:`~lfcc_gmm.protocols.decode_id`: ``%``, whitespace and
non-printable characters are percent-encoded as UTF-8 (the clip ``my clip (1).wav`` has the ID ``my clip (1)``,
written ``my%20clip%20(1)``), so every line splits into its columns. ASVspoof IDs, and any other text without
those characters, are written unchanged: the files are then byte for byte the official layouts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .protocols import BONAFIDE, NO_ATTACK, SPOOF, Trial, decode_id, encode_id, parse_label


class ScoreFileError(ValueError):
    """A malformed score file, or score and protocol IDs that do not match."""


@dataclass(frozen=True)
class ScoreTable:
    """Scores in file order; ``attacks`` and ``keys`` are None for a 2-column file."""

    ids: list[str]
    scores: np.ndarray
    attacks: list[str] | None = None
    keys: list[str] | None = None

    @property
    def labelled(self) -> bool:
        return self.keys is not None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class LabelledScores:
    """Scores aligned with their keys and attacks, ready for :mod:`lfcc_gmm.metrics`."""

    ids: list[str]
    scores: np.ndarray
    keys: np.ndarray
    attacks: np.ndarray

    @property
    def bonafide(self) -> np.ndarray:
        return self.scores[self.keys == BONAFIDE]

    @property
    def spoof(self) -> np.ndarray:
        return self.scores[self.keys == SPOOF]


@dataclass(frozen=True)
class ASVScores:
    """The organisers' ASV scores, split by key (``target``, ``nontarget``, ``spoof``)."""

    target: np.ndarray
    nontarget: np.ndarray
    spoof: np.ndarray


def _parse_float(text: str, path: Path, number: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScoreFileError(f"{path}:{number}: score {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ScoreFileError(f"{path}:{number}: score is {text} (scores must be finite)")
    return value


def _rows(path: Path, what: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-separated columns) of each non-blank line; a binary file is a clear error."""
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                cols = line.split()
                if cols:
                    yield number, cols
    except UnicodeDecodeError as exc:
        raise ScoreFileError(f"{path}: not a UTF-8 text {what} ({exc.reason} at byte {exc.start})") from None


def read_scores(path: str | os.PathLike) -> ScoreTable:
    """Read a 2- or 4-column score file.

    Raises
    ------
    ScoreFileError
        Wrong or inconsistent column counts, non-numeric or non-finite scores, duplicate IDs, bad keys.
    """
    path = Path(path)
    if not path.is_file():
        raise ScoreFileError(f"{path}: score file not found")
    ids, scores, attacks, keys = [], [], [], []
    width = None
    seen: dict[str, int] = {}
    for number, cols in _rows(path, "score file"):
        if width is None:
            if len(cols) not in (2, 4):
                raise ScoreFileError(
                    f"{path}:{number}: {len(cols)} columns; expected 2 (FILE_ID SCORE) "
                    "or 4 (FILE_ID ATTACK KEY SCORE)"
                )
            width = len(cols)
        elif len(cols) != width:
            raise ScoreFileError(f"{path}:{number}: {len(cols)} columns where earlier lines have {width}")
        try:
            cols[:-1] = [decode_id(col) for col in cols[:-1]]
        except UnicodeDecodeError:
            raise ScoreFileError(f"{path}:{number}: %-escapes that are not UTF-8 text") from None
        file_id = cols[0]
        if file_id in seen:
            first = seen[file_id]
            raise ScoreFileError(f"{path}:{number}: duplicate ID {file_id!r} (first on line {first})")
        seen[file_id] = number
        ids.append(file_id)
        scores.append(_parse_float(cols[-1], path, number))
        if width == 4:
            try:
                keys.append(parse_label(cols[2]))
            except ValueError as exc:
                raise ScoreFileError(f"{path}:{number}: {exc}") from None
            attacks.append(cols[1])
    if not ids:
        raise ScoreFileError(f"{path}: contains no scores")
    labelled = width == 4
    return ScoreTable(ids, np.asarray(scores, dtype=np.float64),
                      attacks if labelled else None, keys if labelled else None)


def format_score_line(
    file_id: str, score: float, attack: str | None = None, key: str | None = None
) -> str:
    """One line of a score file; 4 columns when ``key`` is given. The ID and the attack are encoded by
    :func:`~lfcc_gmm.protocols.encode_id`; ``repr`` keeps every digit of the score."""
    if not file_id:
        raise ValueError("a trial ID cannot be empty")
    if key is None:
        return f"{encode_id(file_id)} {float(score)!r}\n"
    return f"{encode_id(file_id)} {encode_id(attack or NO_ATTACK)} {key} {float(score)!r}\n"


def write_scores(
    path: str | os.PathLike,
    ids: Sequence[str],
    scores: Sequence[float] | np.ndarray,
    attacks: Sequence[str] | None = None,
    keys: Sequence[str | None] | None = None,
) -> None:
    """Write a score file atomically: 4 columns when every trial has a key, else 2 columns."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(ids) != scores.shape[0]:
        raise ValueError(f"{len(ids)} IDs but {scores.shape[0]} scores")
    if not np.isfinite(scores).all():
        raise ValueError("refusing to write non-finite scores")
    full_keys = keys if keys is not None and all(k is not None for k in keys) else None
    with atomic_write(path) as handle:
        for i, file_id in enumerate(ids):
            if full_keys is not None:
                handle.write(format_score_line(file_id, scores[i], attacks[i] if attacks else None, full_keys[i]))
            else:
                handle.write(format_score_line(file_id, scores[i]))


def mismatch_message(label: str, ids: Sequence[str], total: int) -> str:
    examples = ", ".join(list(ids)[:5])
    return f"{len(ids)} of {total} {label}: {examples}{' …' if len(ids) > 5 else ''}"


def label_scores(table: ScoreTable, trials: Sequence[Trial] | None = None) -> LabelledScores:
    """Attach keys and attacks to scores, from ``trials`` if given, else from a 4-column table.

    Raises
    ------
    ScoreFileError
        No labels available, or IDs present on one side only (count and examples for each side).
    """
    if trials is None:
        if not table.labelled:
            raise ScoreFileError("a 2-column score file needs a protocol to supply keys and attacks")
        keys, attacks = np.asarray(table.keys), np.asarray(table.attacks)
        return LabelledScores(list(table.ids), table.scores, keys, attacks)
    by_id = {t.file_id: t for t in trials}
    unlabelled = [t.file_id for t in trials if t.key is None]
    if unlabelled:
        raise ScoreFileError(mismatch_message("protocol trials have no key", unlabelled, len(trials)))
    score_ids = set(table.ids)
    only_scores = [i for i in table.ids if i not in by_id]
    only_protocol = [t.file_id for t in trials if t.file_id not in score_ids]
    if only_scores or only_protocol:
        parts = []
        if only_scores:
            parts.append(mismatch_message("scored IDs are not in the protocol", only_scores, len(table)))
        if only_protocol:
            parts.append(mismatch_message("protocol IDs have no score", only_protocol, len(trials)))
        raise ScoreFileError("; ".join(parts))
    keys = np.asarray([by_id[i].key for i in table.ids])
    attacks = np.asarray([by_id[i].attack for i in table.ids])
    return LabelledScores(list(table.ids), table.scores, keys, attacks)


def read_asv_scores(path: str | os.PathLike) -> ASVScores:
    """Read an organisers' ASV score file (``SOURCE KEY SCORE``, KEY ∈ target|nontarget|spoof)."""
    path = Path(path)
    if not path.is_file():
        raise ScoreFileError(f"{path}: ASV score file not found")
    groups: dict[str, list[float]] = {"target": [], "nontarget": [], "spoof": []}
    for number, cols in _rows(path, "ASV score file"):
        if len(cols) != 3:
            raise ScoreFileError(f"{path}:{number}: {len(cols)} columns; expected SOURCE KEY SCORE")
        if cols[1] not in groups:
            raise ScoreFileError(f"{path}:{number}: key {cols[1]!r} is not target, nontarget or spoof")
        groups[cols[1]].append(_parse_float(cols[2], path, number))
    empty = [k for k, v in groups.items() if not v]
    if empty:
        raise ScoreFileError(f"{path}: no {', '.join(empty)} trials; min t-DCF needs all three")
    return ASVScores(*(np.asarray(groups[k], dtype=np.float64) for k in ("target", "nontarget", "spoof")))


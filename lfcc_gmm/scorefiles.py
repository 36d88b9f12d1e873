"""Score files (SPEC §8, §9): read, write atomically, and join with a protocol.

Four layouts, detected from the first line:

- 2 columns ``FILE_ID SCORE`` (the ASVspoof 2021 submission format);
- 4 columns ``FILE_ID ATTACK KEY SCORE`` (the AASIST / RawGAT-ST releases), self-labelled;
- the ASVspoof 5 evaluation package's CM score file: a header line ``filename cm-score``, then one line per trial
  (tab-separated);
- the package's SASV score file: a header line ``spk filename cm-score asv-score sasv-score``, one line per trial
  of a target speaker and a file, so a file recurs once per speaker it is tested against (:func:`read_sasv_scores`).

Header files are read by their column names, in any order and beside other columns, as the package reads them
(``trial_anon`` and ``tar_spk_anon`` are its other names for ``filename`` and ``spk``). A SASV file may lack some
of its three scores, as a column or as ``-`` on every line of it, the challenge's submission format for a system
without a CM or an ASV of its own (the a-DCF needs only ``sasv-score``, min t-DCF ``cm-score``, the t-EER
``cm-score`` and ``asv-score``).

Higher score = more bona fide, always (for ASV and SASV scores: more likely the claimed speaker). ``FILE_ID``,
``ATTACK`` and speakers are written by :func:`lfcc_gmm.protocols.encode_id` and read by
:func:`~lfcc_gmm.protocols.decode_id`: ``%``, whitespace and non-printable characters are percent-encoded as UTF-8
(the clip ``my clip (1).wav`` has the ID ``my clip (1)``, written ``my%20clip%20(1)``), so every line splits into
its columns. ASVspoof IDs, and any other text without those characters, are written unchanged: the files are then
byte for byte the official layouts.
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


@dataclass(frozen=True)
class SASVScoreTable:
    """An ASVspoof 5 SASV score file in file order: one trial per target speaker and file. A score column the file
    lacks is None."""

    speakers: list[str]
    ids: list[str]
    cm_scores: np.ndarray | None = None
    asv_scores: np.ndarray | None = None
    sasv_scores: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class LabelledSASVScores:
    """SASV scores and the ASV label of each trial (``target``, ``nontarget``, ``spoof``), in the table's order,
    ready for :func:`lfcc_gmm.asvspoof5.evaluate_sasv`."""

    table: SASVScoreTable
    labels: np.ndarray


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


# What score_file_layout() reports.
PLAIN, LABELLED, ASVSPOOF5_CM, ASVSPOOF5_SASV = "2-column", "4-column", "asvspoof5-cm", "asvspoof5-sasv"
UNKNOWN = "unknown"

# Header names of the package's score files (and its loader's renamings) → the column's role.
_HEADER_NAMES = {"filename": "file", "trial_anon": "file", "spk": "speaker", "tar_spk_anon": "speaker",
                 "cm-score": "cm", "asv-score": "asv", "sasv-score": "sasv"}
_SCORE_ROLES = ("cm", "asv", "sasv")


def _header_roles(cols: list[str], path: Path, number: int) -> dict[str, int] | None:
    """Column index of each role a header line names; None when the line is not a header (names no column)."""
    roles: dict[str, int] = {}
    for index, name in enumerate(cols):
        role = _HEADER_NAMES.get(name.lower())
        if role is None:
            continue
        if role in roles:
            raise ScoreFileError(f"{path}:{number}: the header names the {name} column twice")
        roles[role] = index
    if not roles:
        return None
    if "file" not in roles:
        raise ScoreFileError(f"{path}:{number}: the header names no filename column")
    if not any(role in roles for role in _SCORE_ROLES):
        raise ScoreFileError(f"{path}:{number}: the header names no score column (cm-score, asv-score or "
                             "sasv-score)")
    return roles


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise ScoreFileError(f"{path}: score file {'not found' if not path.exists() else 'is not a file'}")


def score_file_layout(path: str | os.PathLike) -> str:
    """Which layout of the module docstring ``path`` has, from its first line: ``"2-column"``, ``"4-column"``,
    ``"asvspoof5-cm"`` or ``"asvspoof5-sasv"``; ``"unknown"`` for a first line of another width, which
    :func:`read_scores` rejects with the line number.

    Raises
    ------
    ScoreFileError
        No such file, an empty file, or a header line that names no filename or no score column.
    """
    path = Path(path)
    _check_exists(path)
    first = next(_rows(path, "score file"), None)
    if first is None:
        raise ScoreFileError(f"{path}: contains no scores")
    number, cols = first
    roles = _header_roles(cols, path, number)
    if roles is not None:
        return ASVSPOOF5_SASV if "speaker" in roles else ASVSPOOF5_CM
    return {2: PLAIN, 4: LABELLED}.get(len(cols), UNKNOWN)


def _decoded(text: str, path: Path, number: int) -> str:
    try:
        return decode_id(text)
    except UnicodeDecodeError:
        raise ScoreFileError(f"{path}:{number}: %-escapes that are not UTF-8 text") from None


def _read_header_table(path: Path) -> tuple[list[str] | None, list[str], dict[str, np.ndarray]]:
    """(speakers or None, file IDs, scores by role) of a score file with a header line."""
    rows = _rows(path, "score file")
    number, names = next(rows)
    roles = _header_roles(names, path, number)
    assert roles is not None  # the caller read the layout
    speakers: list[str] | None = [] if "speaker" in roles else None
    ids: list[str] = []
    texts: dict[str, list[str]] = {role: [] for role in _SCORE_ROLES if role in roles}
    seen: dict[tuple[str, str], int] = {}
    for number, cols in rows:
        if len(cols) != len(names):
            raise ScoreFileError(f"{path}:{number}: {len(cols)} fields where the header names {len(names)}")
        file_id = _decoded(cols[roles["file"]], path, number)
        speaker = "" if speakers is None else _decoded(cols[roles["speaker"]], path, number)
        if (speaker, file_id) in seen:
            what = f"trial {speaker} {file_id}" if speakers is not None else f"ID {file_id!r}"
            raise ScoreFileError(f"{path}:{number}: duplicate {what} (first on line {seen[speaker, file_id]})")
        seen[speaker, file_id] = number
        ids.append(file_id)
        if speakers is not None:
            speakers.append(speaker)
        for role, column in texts.items():
            column.append(cols[roles[role]])
    if not ids:
        raise ScoreFileError(f"{path}: contains no scores (only a header line)")
    lines = list(seen.values())
    return speakers, ids, {role: _score_column(column, lines, path) for role, column in texts.items()
                           if any(text != _ABSENT for text in column)}


# What a submission writes in every line of a score column it leaves out (an end-to-end SASV system has no CM or
# ASV score of its own).
_ABSENT = "-"


def _score_column(texts: list[str], lines: list[int], path: Path) -> np.ndarray:
    values = []
    for text, number in zip(texts, lines, strict=True):
        if text == _ABSENT:
            raise ScoreFileError(f"{path}:{number}: no score ('-') in a column that other lines fill; a column is "
                                 "left out with '-' on every line")
        values.append(_parse_float(text, path, number))
    return np.asarray(values, dtype=np.float64)


def read_scores(path: str | os.PathLike) -> ScoreTable:
    """Read a CM score file: 2 or 4 columns, or the ASVspoof 5 package's ``filename cm-score`` with its header.

    Raises
    ------
    ScoreFileError
        Wrong or inconsistent column counts, non-numeric or non-finite scores, duplicate IDs, bad keys; a SASV
        score file (read it with :func:`read_sasv_scores`).
    """
    path = Path(path)
    layout = score_file_layout(path)
    if layout == ASVSPOOF5_SASV:
        raise ScoreFileError(f"{path}: an ASVspoof 5 SASV score file (one line per target speaker and file); "
                             "the SASV metrics read it (antispoof evaluate --metrics sasv, read_sasv_scores)")
    if layout == ASVSPOOF5_CM:
        _, ids, columns = _read_header_table(path)
        if "cm" not in columns:
            raise ScoreFileError(f"{path}: the header names no cm-score column")
        return ScoreTable(ids, columns["cm"])
    ids, scores, attacks, keys = [], [], [], []
    width = None
    seen: dict[str, int] = {}
    for number, cols in _rows(path, "score file"):
        if width is None:
            if layout == UNKNOWN:
                raise ScoreFileError(f"{path}:{number}: {len(cols)} columns; expected 2 (FILE_ID SCORE), "
                                     "4 (FILE_ID ATTACK KEY SCORE) or a header line (filename cm-score, or spk "
                                     "filename cm-score asv-score sasv-score)")
            width = len(cols)
        elif len(cols) != width:
            raise ScoreFileError(f"{path}:{number}: {len(cols)} columns where earlier lines have {width}")
        cols[:-1] = [_decoded(col, path, number) for col in cols[:-1]]
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


def _finite_column(values: Sequence[float] | np.ndarray, n: int, name: str) -> np.ndarray:
    column = np.asarray(values, dtype=np.float64)
    if column.shape != (n,):
        raise ValueError(f"{n} trials but {column.size} {name}")
    if not np.isfinite(column).all():
        raise ValueError(f"refusing to write non-finite {name}")
    return column


def write_asvspoof5_scores(path: str | os.PathLike, ids: Sequence[str], scores: Sequence[float] | np.ndarray) -> None:
    """Write a CM score file as the ASVspoof 5 evaluation package reads it, atomically: the header
    ``filename<TAB>cm-score``, then one tab-separated line per trial."""
    column = _finite_column(scores, len(ids), "scores")
    if len(set(ids)) != len(ids):
        raise ValueError("an ID occurs twice; each trial of a CM score file has its own")
    with atomic_write(path) as handle:
        handle.write("filename\tcm-score\n")
        handle.writelines(f"{encode_id(file_id)}\t{value!r}\n" for file_id, value in zip(ids, column.tolist(),
                                                                                          strict=True))


def write_sasv_scores(
    path: str | os.PathLike,
    speakers: Sequence[str],
    ids: Sequence[str],
    cm_scores: Sequence[float] | np.ndarray | None = None,
    asv_scores: Sequence[float] | np.ndarray | None = None,
    sasv_scores: Sequence[float] | np.ndarray | None = None,
) -> None:
    """Write a SASV score file as the ASVspoof 5 evaluation package reads it, atomically: the header
    ``spk filename cm-score asv-score sasv-score`` (the columns given), tab-separated, one line per trial."""
    if len(speakers) != len(ids):
        raise ValueError(f"{len(speakers)} speakers but {len(ids)} IDs")
    if len(set(zip(speakers, ids, strict=True))) != len(ids):
        raise ValueError("a (speaker, file) trial occurs twice")
    columns = [(name, _finite_column(values, len(ids), name).tolist())
               for name, values in (("cm-score", cm_scores), ("asv-score", asv_scores), ("sasv-score", sasv_scores))
               if values is not None]
    if not columns:
        raise ValueError("no scores to write: give CM, ASV or SASV scores")
    with atomic_write(path) as handle:
        handle.write("\t".join(["spk", "filename", *(name for name, _ in columns)]) + "\n")
        for i, (speaker, file_id) in enumerate(zip(speakers, ids, strict=True)):
            values = "\t".join(repr(column[i]) for _, column in columns)
            handle.write(f"{encode_id(speaker)}\t{encode_id(file_id)}\t{values}\n")


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
            raise ScoreFileError("a score file without keys (2 columns, or filename cm-score) needs a protocol to "
                                 "supply keys and attacks")
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



def read_sasv_scores(path: str | os.PathLike) -> SASVScoreTable:
    """Read an ASVspoof 5 SASV score file (header ``spk filename cm-score asv-score sasv-score``, any subset of
    the three scores).

    Raises
    ------
    ScoreFileError
        Not a SASV score file, fields that do not match the header, non-numeric or non-finite scores, a trial
        (speaker and file) twice.
    """
    path = Path(path)
    if score_file_layout(path) != ASVSPOOF5_SASV:
        raise ScoreFileError(f"{path}: not an ASVspoof 5 SASV score file (expected a header line naming spk, "
                             "filename and the scores: spk filename cm-score asv-score sasv-score)")
    speakers, ids, columns = _read_header_table(path)
    assert speakers is not None  # the layout names the speaker column
    return SASVScoreTable(speakers, ids, columns.get("cm"), columns.get("asv"), columns.get("sasv"))


def label_sasv_scores(table: SASVScoreTable, trials: Sequence[Trial]) -> LabelledSASVScores:
    """Attach the ASV label of each trial from an ASVspoof 5 SASV key (``spk filename cm-label asv-label``, read
    by :func:`~lfcc_gmm.protocols.read_protocol`), matching trials on (speaker, file).

    Raises
    ------
    ScoreFileError
        Trials without an ASV label (not a SASV key), or trials present on one side only (count and examples).
    """
    unlabelled = [t for t in trials if "asv_label" not in t.metadata or t.speaker is None]
    if unlabelled:
        raise ScoreFileError(
            f"{len(unlabelled)} of {len(trials)} key trials have no speaker or ASV label (e.g. "
            f"{unlabelled[0].file_id!r}): the SASV metrics need the package's SASV key file "
            "(spk filename cm-label asv-label)")
    by_pair = {(t.speaker, t.file_id): t.metadata["asv_label"] for t in trials}
    pairs = list(zip(table.speakers, table.ids, strict=True))
    scored = set(pairs)
    only_scores = [f"{spk} {file_id}" for spk, file_id in pairs if (spk, file_id) not in by_pair]
    only_keys = [f"{spk} {file_id}" for spk, file_id in by_pair if (spk, file_id) not in scored]
    if only_scores or only_keys:
        parts = []
        if only_scores:
            parts.append(mismatch_message("scored trials (spk filename) are not in the key", only_scores,
                                          len(table)))
        if only_keys:
            parts.append(mismatch_message("key trials (spk filename) have no score", only_keys, len(by_pair)))
        raise ScoreFileError("; ".join(parts))
    return LabelledSASVScores(table, np.asarray([by_pair[pair] for pair in pairs]))

"""ASVspoof protocols and plain file lists → a list of :class:`Trial`.

Recognised layouts (whitespace-separated unless noted; the format is detected from the first line):

==========  =============================================================================  ========================
columns     layout                                                                         source
==========  =============================================================================  ========================
1           ``FILE_ID``                                                                    unlabelled 2021 lists
4           ``flac FILE_ID SYSTEM KEY``                                                    RawNet2 releases
5           ``SPEAKER FILE_ID - SYSTEM KEY``                                               2019 LA CM protocols
10          ``SPEAKER FILE_ID GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK KEY TMP``  ASVspoof 5 protocols
8 or more   ``SPEAKER FILE_ID CODEC TRANSMISSION ATTACK KEY TRIM SUBSET [...]``            2021 LA/DF keys
header      ``filename cm-label`` or ``spk filename cm-label asv-label``                   ASVspoof 5 package keys
CSV / TSV   ``path,label[,attack]`` with an optional header line                           your own lists
==========  =============================================================================  ========================

``SYSTEM``/``ATTACK`` is ``-`` for bona fide trials. A 10-column line is ASVspoof 5 unless its sixth column is a
key (then it is a 2021 key with extra columns), even in a ``.tsv`` file, as the released protocols are named.

The ASVspoof 5 evaluation package's key files are recognised by their header line, which names a ``cm-label``
column; further columns of a full key table are kept, ``attack_anon`` as :attr:`Trial.attack` and the others
(``codec``, …) in :attr:`Trial.metadata` under their header names. A Track 2 (SASV) key names its trials by target
speaker and file, so a file may recur once per target speaker; its ASV label (``target``, ``nontarget`` or
``spoof``) is ``metadata["asv_label"]``.

A CSV/TSV list is recognised by its ``.csv`` or ``.tsv`` extension; its paths are taken relative to the list's
folder.

IDs (and the other text columns) of whitespace-separated files, protocols here and score files in
:mod:`lfcc_gmm.scorefiles`, are written with :func:`encode_id` and read with :func:`decode_id`: ``%``, whitespace
and non-printable characters are percent-encoded as UTF-8 bytes (``my clip (1)`` is written ``my%20clip%20(1)``),
so any file name gives an ID that stays one column. Text without those characters, such as every ASVspoof ID, is
written unchanged.
"""

from __future__ import annotations

import csv
import os
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from .atomic import atomic_write

BONAFIDE = "bonafide"
SPOOF = "spoof"
NO_ATTACK = "-"
# ASV labels of ASVspoof 5 Track 2 (SASV) trials; spoof trials carry SPOOF.
TARGET = "target"
NONTARGET = "nontarget"
ASV_LABELS = (TARGET, NONTARGET, SPOOF)

# Spellings seen in user lists; anything else is an error rather than a guess.
_LABEL_ALIASES = {
    "bonafide": BONAFIDE,
    "bona-fide": BONAFIDE,
    "bona_fide": BONAFIDE,
    "genuine": BONAFIDE,
    "real": BONAFIDE,
    "spoof": SPOOF,
    "spoofed": SPOOF,
    "fake": SPOOF,
}


class ProtocolError(ValueError):
    """A malformed protocol or list; the message names the file and, where it applies, the line."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class MissingAudioError(FileNotFoundError):
    """Audio files named by a protocol are missing; raised once, with the count and the first examples."""

    def __init__(self, missing: Sequence[Path], total: int, audio_dir: str | os.PathLike | None = None):
        self.missing = list(missing)
        examples = ", ".join(str(p) for p in self.missing[:5])
        more = f" (+{len(self.missing) - 5} more)" if len(self.missing) > 5 else ""
        where = f" under {audio_dir}" if audio_dir is not None else ""
        super().__init__(
            f"{len(self.missing)} of {total} audio files are missing{where}: {examples}{more}"
        )


@dataclass(frozen=True)
class Trial:
    """One protocol line.

    Attributes
    ----------
    file_id : str
        Utterance identifier (the file name without extension for ASVspoof data).
    key : str or None
        ``"bonafide"``, ``"spoof"``, or None for an unlabelled trial.
    attack : str
        Attack/system identifier, ``"-"`` for bona fide or unknown.
    speaker : str or None
        Speaker identifier where the format carries one.
    path : Path or None
        The audio file, once resolved.
    metadata : dict
        Extra columns of the format (2021 keys: codec, transmission, trim, subset, …; ASVspoof 5 protocols:
        gender, codec, codec_quality, codec_seed, attack_tag; ASVspoof 5 SASV keys: asv_label).
    """

    file_id: str
    key: str | None
    attack: str = NO_ATTACK
    speaker: str | None = None
    path: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_bonafide(self) -> bool:
        return self.key == BONAFIDE


def _needs_escape(char: str) -> bool:
    # str.split() splits on every str.isspace() character; "%" must be escaped for decoding to be exact.
    return char == "%" or char.isspace() or not char.isprintable()


def encode_id(file_id: str) -> str:
    """The ID as one whitespace-free column: ``%``, whitespace and non-printable characters as ``%XX`` (UTF-8).

    Injective and undone by :func:`decode_id`; an ID without such characters comes back unchanged.
    """
    if not any(_needs_escape(char) for char in file_id):
        return file_id
    return "".join(urllib.parse.quote(char, safe="") if _needs_escape(char) else char for char in file_id)


def decode_id(column: str) -> str:
    """The ID that :func:`encode_id` wrote as ``column`` (``%XX`` sequences decoded as UTF-8)."""
    return urllib.parse.unquote(column, errors="strict") if "%" in column else column


def parse_label(label: str) -> str:
    """Map a label spelling to ``"bonafide"`` or ``"spoof"``; raise ValueError otherwise."""
    try:
        return _LABEL_ALIASES[label.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(_LABEL_ALIASES))
        raise ValueError(f"unknown label {label!r} (expected one of: {known})") from None


_2021_COLUMNS = ("codec", "transmission", "attack", "key", "trim", "subset")
_ASVSPOOF5_METADATA = ("gender", "codec", "codec_quality", "codec_seed", "attack_tag")


def _is_label(text: str) -> bool:
    return text.strip().lower() in _LABEL_ALIASES


def _is_asvspoof5(cols: list[str]) -> bool:
    # A 2021 key has its KEY sixth; an ASVspoof 5 protocol has CODEC_SEED there ("-" or a number).
    return len(cols) == 10 and not _is_label(cols[5])


def _asvspoof5_trial(cols: list[str]) -> Trial:
    speaker, file_id, *named, attack, key, _ = cols  # the last column (TMP) is an unused placeholder
    return Trial(file_id, parse_label(key), attack, speaker,
                 metadata=dict(zip(_ASVSPOOF5_METADATA, named, strict=True)))


def _trial_from_columns(cols: list[str]) -> Trial:
    n = len(cols)
    if n == 1:
        return Trial(cols[0], None)
    if n == 4:
        _, file_id, system, key = cols
        return Trial(file_id, parse_label(key), system)
    if n == 5:
        speaker, file_id, _, system, key = cols
        return Trial(file_id, parse_label(key), system, speaker)
    if n >= 8:
        speaker, file_id = cols[:2]
        named = dict(zip(_2021_COLUMNS, cols[2:8], strict=True))
        extra = {"codec": named["codec"], "transmission": named["transmission"],
                 "trim": named["trim"], "subset": named["subset"]}
        extra.update({f"column{i + 1}": value for i, value in enumerate(cols[8:], start=8)})
        return Trial(file_id, parse_label(named["key"]), named["attack"], speaker, metadata=extra)
    raise ValueError(
        f"{n} columns; expected 1 (FILE_ID), 4 (flac FILE_ID SYSTEM KEY), "
        "5 (SPEAKER FILE_ID - SYSTEM KEY), 10 (ASVspoof 5) or 8+ (ASVspoof 2021 trial_metadata)"
    )


def _read_whitespace(path: Path) -> tuple[list[Trial], list[int]]:
    trials, lines = [], []
    width = None
    parse = _trial_from_columns
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            cols = line.split()
            if not cols:
                continue
            if width is None:
                width = len(cols)
                # The layout is fixed by the first line, so a bad key later is reported as such.
                parse = _asvspoof5_trial if _is_asvspoof5(cols) else _trial_from_columns
            elif len(cols) != width:
                raise ProtocolError(path, f"{len(cols)} columns where earlier lines have {width}", number)
            try:
                trials.append(parse([decode_id(col) for col in cols]))
            except ValueError as exc:
                raise ProtocolError(path, str(exc), number) from None
            lines.append(number)
    return trials, lines


# Header names of the ASVspoof 5 package's key tables (and the renamings its loader applies) → Trial fields.
_KEY_TABLE_FIELDS = {
    "filename": "file_id", "trial_anon": "file_id",
    "spk": "speaker", "tar_spk_anon": "speaker",
    "cm-label": "key", "cm_label": "key",
    "asv-label": "asv_label", "asv_label": "asv_label",
    "attack_anon": "attack",
}


def _header(path: Path) -> list[str] | None:
    """The first non-blank line's fields, or None for a file without one."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                return line.split()
    return None


def _is_key_table(header: list[str] | None) -> bool:
    return header is not None and any(_KEY_TABLE_FIELDS.get(name.lower()) == "key" for name in header)


def _key_table_trial(fields: dict[str, str], extra: dict[str, str]) -> Trial:
    key = parse_label(fields["key"])
    metadata = dict(extra)
    if "asv_label" in fields:
        asv_label = fields["asv_label"].lower()
        if asv_label not in ASV_LABELS:
            raise ValueError(f"ASV label {fields['asv_label']!r} is not one of {', '.join(ASV_LABELS)}")
        if (asv_label == SPOOF) != (key == SPOOF):
            raise ValueError(f"ASV label {asv_label!r} contradicts CM label {key!r}")
        metadata["asv_label"] = asv_label
    return Trial(fields["file_id"], key, fields.get("attack", NO_ATTACK), fields.get("speaker"), metadata=metadata)


def _read_key_table(path: Path) -> tuple[list[Trial], list[int]]:
    trials, lines = [], []
    names: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            cols = line.split()
            if not cols:
                continue
            if not names:
                names = cols
                targets = [_KEY_TABLE_FIELDS.get(name.lower()) for name in names]
                if "file_id" not in targets:
                    raise ProtocolError(path, "the header names a cm-label column but no filename column", number)
                duplicated = {t for t in targets if t is not None and targets.count(t) > 1}
                if duplicated:
                    raise ProtocolError(path, f"the header names the {sorted(duplicated)[0]} column twice", number)
                continue
            if len(cols) != len(names):
                raise ProtocolError(path, f"{len(cols)} fields where the header names {len(names)}", number)
            fields = {t: value for t, value in zip(targets, cols, strict=True) if t is not None}
            extra = {name: value for name, t, value in zip(names, targets, cols, strict=True) if t is None}
            try:
                trials.append(_key_table_trial(fields, extra))
            except ValueError as exc:
                raise ProtocolError(path, str(exc), number) from None
            lines.append(number)
    return trials, lines


def _read_delimited(path: Path) -> tuple[list[Trial], list[int]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    trials, lines = [], []
    with open(path, encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
            row = [cell.strip() for cell in row]
            if not any(row):
                continue
            if number == 1 and row[0].lower() in ("path", "file", "filename"):
                continue
            if len(row) not in (2, 3):
                raise ProtocolError(path, f"{len(row)} fields; expected path,label[,attack]", number)
            try:
                key = parse_label(row[1])
            except ValueError as exc:
                raise ProtocolError(path, str(exc), number) from None
            audio = Path(row[0]).expanduser()
            if not audio.is_absolute():
                audio = path.parent / audio
            attack = row[2] if len(row) == 3 and row[2] else NO_ATTACK
            if key == BONAFIDE and attack != NO_ATTACK:
                raise ProtocolError(path, f"a bona fide file has attack {attack!r}", number)
            trials.append(Trial(audio.stem, key, attack, path=audio))
            lines.append(number)
    return trials, lines


# What protocol_layout() reports.
IDS, RAWNET2, ASVSPOOF2019, ASVSPOOF2021, LIST = "ids", "rawnet2", "asvspoof2019", "asvspoof2021", "list"
UNKNOWN = "unknown"
ASVSPOOF5, ASVSPOOF5_CM_KEYS, ASVSPOOF5_SASV_KEYS = "asvspoof5", "asvspoof5-cm-keys", "asvspoof5-sasv-keys"
#: The layouts whose trials are scored with the ASVspoof 5 metrics (:mod:`lfcc_gmm.asvspoof5`).
ASVSPOOF5_LAYOUTS = frozenset({ASVSPOOF5, ASVSPOOF5_CM_KEYS, ASVSPOOF5_SASV_KEYS})


def protocol_layout(path: str | os.PathLike) -> str:
    """Which layout of the module docstring :func:`read_protocol` reads ``path`` as, from its first line.

    One of ``"ids"``, ``"rawnet2"``, ``"asvspoof2019"``, ``"asvspoof2021"``, ``"asvspoof5"`` (the released
    protocols), ``"asvspoof5-cm-keys"``, ``"asvspoof5-sasv-keys"`` (the evaluation package's key files) or
    ``"list"`` (CSV/TSV); see :data:`ASVSPOOF5_LAYOUTS`. ``"unknown"`` for an empty file or a first line of
    another width, which :func:`read_protocol` rejects with the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise ProtocolError(path, "protocol file not found" if not path.exists() else "is not a file")
    try:
        header = _header(path)
    except UnicodeDecodeError as exc:
        raise ProtocolError(path, f"not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    if _is_key_table(header):
        named = {_KEY_TABLE_FIELDS.get(name.lower()) for name in header or []}
        return ASVSPOOF5_SASV_KEYS if "asv_label" in named else ASVSPOOF5_CM_KEYS
    if header is not None and _is_asvspoof5(header):
        # The released ASVspoof 5 protocols are named .tsv but are whitespace-separated protocols, not lists.
        return ASVSPOOF5
    if path.suffix.lower() in (".csv", ".tsv"):
        return LIST
    width = 0 if header is None else len(header)
    return {1: IDS, 4: RAWNET2, 5: ASVSPOOF2019}.get(width, ASVSPOOF2021 if width >= 8 else UNKNOWN)


def trial_column(trials: Sequence[Trial], name: str, ids: Sequence[str] | None = None) -> list[str] | None:
    """One label per trial, for breakdowns and resampling: ``"speaker"``, ``"attack"`` or a metadata name
    (``"codec"``, ``"codec_quality"``, ``"gender"``, …), in the order of ``ids`` (file IDs, e.g. a score file's)
    or of the trials. A SASV key repeats file IDs (one trial per target speaker): take its trials' order.

    Returns None when no trial carries the label. Raises ValueError when only some do, or an ID has no trial.
    """
    by_id = {t.file_id: t for t in trials}
    missing = [] if ids is None else [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} ID(s) are not among the trials, e.g. {missing[0]!r}")
    chosen = list(trials) if ids is None else [by_id[i] for i in ids]
    if name == "attack":
        return [t.attack for t in chosen]
    values = [t.speaker if name == "speaker" else t.metadata.get(name) for t in chosen]
    present = [v is not None for v in values]
    if not any(present):
        return None
    if not all(present):
        lacking = chosen[present.index(False)]
        raise ValueError(f"{present.count(False)} of {len(values)} trials have no {name}, e.g. {lacking.file_id!r}")
    return [str(v) for v in values]


def read_protocol(
    path: str | os.PathLike,
    audio_dir: str | os.PathLike | None = None,
    extensions: Sequence[str] = (".flac",),
    check_audio: bool = True,
) -> list[Trial]:
    """Read a protocol or list into trials, optionally resolving and checking the audio files.

    Parameters
    ----------
    path : path-like
        Protocol (any layout in the module docstring) or ``.csv``/``.tsv`` list.
    audio_dir : path-like, optional
        Folder holding ``FILE_ID<ext>`` for whitespace protocols. Ignored for CSV/TSV lists, whose
        rows carry paths.
    extensions : sequence of str
        Extensions tried in order when resolving ``FILE_ID`` (e.g. ``(".flac", ".wav")``).
    check_audio : bool
        Raise :class:`MissingAudioError` if any resolved file is missing (all are checked first).

    Raises
    ------
    ProtocolError
        Malformed lines or duplicate IDs, with line numbers.
    MissingAudioError
        Some audio files do not exist.
    """
    path = Path(path)
    layout = protocol_layout(path)
    key_table = layout in (ASVSPOOF5_CM_KEYS, ASVSPOOF5_SASV_KEYS)
    delimited = layout == LIST
    try:
        if key_table:
            trials, lines = _read_key_table(path)
        else:
            trials, lines = _read_delimited(path) if delimited else _read_whitespace(path)
    except UnicodeDecodeError as exc:
        raise ProtocolError(path, f"not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    if not trials:
        raise ProtocolError(path, "contains no trials")
    # A SASV key pairs files with target speakers: a file recurs once per speaker it is tested against.
    _check_unique(trials, lines, path, by_speaker=key_table and trials[0].speaker is not None)
    if not delimited and audio_dir is not None:
        trials = resolve_audio(trials, audio_dir, extensions)
    if check_audio and (delimited or audio_dir is not None):
        check_audio_exists(trials, audio_dir)
    return trials


def _check_unique(trials: Sequence[Trial], lines: Sequence[int], path: Path, by_speaker: bool = False) -> None:
    first_line: dict[tuple[str | None, str], int] = {}
    for trial, number in zip(trials, lines, strict=True):
        identity = (trial.speaker if by_speaker else None, trial.file_id)
        if identity in first_line:
            what = f"trial {trial.speaker} {trial.file_id}" if by_speaker else f"ID {trial.file_id!r}"
            raise ProtocolError(path, f"duplicate {what} (first on line {first_line[identity]})", number)
        first_line[identity] = number


def resolve_audio(
    trials: Iterable[Trial], audio_dir: str | os.PathLike, extensions: Sequence[str] = (".flac",)
) -> list[Trial]:
    """Point each trial at ``audio_dir/FILE_ID<ext>``, the first extension that exists (else the first)."""
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"{audio_dir}: audio folder not found")
    extensions = [e if e.startswith(".") else f".{e}" for e in extensions]
    present = {entry.name for entry in os.scandir(audio_dir)}
    resolved = []
    for trial in trials:
        name = next((trial.file_id + e for e in extensions if trial.file_id + e in present),
                    trial.file_id + extensions[0])
        resolved.append(replace(trial, path=audio_dir / name))
    return resolved


def audio_paths(trials: Iterable[Trial]) -> list[Path]:
    """The trials' audio paths; ValueError naming a trial that has none (a protocol read without an audio folder)."""
    trials = list(trials)
    unresolved = [t.file_id for t in trials if t.path is None]
    if unresolved:
        raise ValueError(f"{len(unresolved)} trial(s) have no audio path (e.g. {unresolved[0]!r}); "
                         "give the folder of their audio files")
    return [t.path for t in trials if t.path is not None]


def check_audio_exists(trials: Sequence[Trial], audio_dir: str | os.PathLike | None = None) -> None:
    """Raise :class:`MissingAudioError` listing every trial whose audio file does not exist.

    Something that exists but is not a readable audio file (a directory, say) is left to the batch to
    report for that file alone; a trial with no path at all is listed under its ID.
    """
    missing = [Path(t.file_id) if t.path is None else t.path for t in trials if t.path is None or not t.path.exists()]
    if missing:
        raise MissingAudioError(missing, len(trials), audio_dir)


def trials_from_paths(paths: Iterable[str | os.PathLike]) -> list[Trial]:
    """Unlabelled trials for loose audio files: ID = file name without extension, or the paths as given when
    two files share that name (``a/x.wav`` and ``b/x.wav``, ``tts.mp3`` and ``tts.ogg``).

    Raises
    ------
    ValueError
        A path given more than once (its two scores would share one ID).
    """
    trials = [Trial(Path(p).stem, None, path=Path(p)) for p in paths]
    repeated = [(path, n) for path, n in Counter(t.path for t in trials).items() if n > 1]
    if repeated:
        path, n = repeated[0]
        raise ValueError(f"{path} is given {n} times; name each audio file once")
    if len({t.file_id for t in trials}) != len(trials):
        trials = [replace(t, file_id=str(t.path)) for t in trials]
    return trials


def write_protocol(path: str | os.PathLike, trials: Sequence[Trial]) -> None:
    """Write trials in the 2019 LA CM layout (``SPEAKER FILE_ID - SYSTEM KEY``), atomically.

    Speakers, IDs and attacks are written by :func:`encode_id`, so any text reads back unchanged.
    """
    with atomic_write(path) as handle:
        for t in trials:
            if t.key is None:
                raise ValueError(f"trial {t.file_id!r} has no key; the 2019 layout needs one")
            speaker, file_id, attack = (encode_id(text) for text in (t.speaker or NO_ATTACK, t.file_id, t.attack))
            handle.write(f"{speaker} {file_id} - {attack} {t.key}\n")

"""Batch work that survives bad files and interruptions: scores into a score file, features into a folder.

Scores are appended to ``OUTPUT.partial`` and flushed chunk by chunk as they are produced, so an
interrupted run loses at most the chunk in flight; ``resume=True`` skips the IDs already there.
A file that fails is recorded in ``OUTPUT.errors.tsv`` (ID, path, reason) and the run goes on.
Every file is also checked (:mod:`lfcc_gmm.analysis`: speech, clipping, level, padding, long pauses): each finding
is one row of ``OUTPUT.checks.tsv`` (ID, path, check, value, message), kept across interruptions in
``OUTPUT.checks.partial``. Checks never change a score: a file without speech is scored like any other.
When every trial has been tried, the final score file and the checks are written atomically in protocol order
and the partial files are removed. :class:`TrialScore` is one trial's score or failure, and
:func:`converted_files` names the files that are resampled or down-mixed on load, once, before the work.

:func:`extract_to_folder` writes one LFCC ``.npy`` per file in the same spirit: existing files are kept (a rerun
continues), failures are listed in ``lfcc.errors.tsv`` and the others go on.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import atomic_write
from .audio import failure_reason, probe_conversions
from .protocols import Trial, audio_paths, decode_id, encode_id
from .scorefiles import format_score_line, write_scores
from .scorers import Scorer
from .segments import SegmentGrid
from .verdicts import FileResult, Threshold

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from .checks import Check

Progress = Callable[[int, int], None]


class PartialRunExistsError(FileExistsError):
    """A partial file from an interrupted run is in the way and ``resume`` was not asked for."""


@dataclass
class BatchResult:
    """What a batch run produced."""

    output: Path
    n_total: int
    n_scored: int
    n_resumed: int
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    #: Score of every trial in the output (this run's and the resumed ones), by file ID.
    scores: dict[str, float] = field(default_factory=dict, repr=False)
    #: (file ID, path, check code, value, message) of every check finding, in protocol order.
    findings: list[tuple[str, str, str, str, str]] = field(default_factory=list, repr=False)

    @property
    def errors_path(self) -> Path:
        return errors_path(self.output)

    @property
    def checks_path(self) -> Path:
        return checks_path(self.output)

    @property
    def no_speech(self) -> list[str]:
        """IDs of the trials whose check found no speech."""
        return [row[0] for row in self.findings if row[2] == "no-speech"]

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class TrialScore:
    """One trial's outcome: its score, or why it could not be scored."""

    trial: Trial
    score: float | None
    reason: str | None = None


def partial_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}.partial")


def errors_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}.errors.tsv")


def checks_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}.checks.tsv")


def checks_partial_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}.checks.partial")


CHECK_COLUMNS = ("file_id", "path", "check", "value", "message")


def read_checks_partial(path: Path) -> list[tuple[str, str, str, str, str]]:
    """Check rows already in a partial file (IDs percent-encoded there); a torn last line is ignored."""
    rows: list[tuple[str, str, str, str, str]] = []
    if not path.exists():
        return rows
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            cols = line.rstrip("\n").split("\t")
            if len(cols) == len(CHECK_COLUMNS):
                rows.append((decode_id(cols[0]), *cols[1:]))  # type: ignore[arg-type]
    return rows


def _check_line(row: Sequence[str]) -> str:
    # The ID may hold any character: percent-encoded, as in score files (the other fields are flattened).
    return "\t".join([encode_id(row[0]), *row[1:]]) + "\n"


def _finding(trial: Trial, check: Check) -> tuple[str, str, str, str, str]:
    # Whitespace flattened, so that a row read back from the partial file is the row that was written.
    return (trial.file_id, *(" ".join(text.split()) for text in (str(trial.path), check.code, f"{check.value:.6g}",
                                                                  check.message)))  # type: ignore[return-value]


def write_checks(path: Path, rows: Sequence[Sequence[str]]) -> None:
    """Write check rows as TSV (:data:`CHECK_COLUMNS`) atomically; remove a stale file when there are none."""
    if not rows:
        path.unlink(missing_ok=True)
        return
    with atomic_write(path) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(CHECK_COLUMNS)
        writer.writerows(rows)


def read_partial(path: Path) -> dict[str, float]:
    """Scores already in a partial file; a torn last line (the writer was killed mid-line) is ignored."""
    done: dict[str, float] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            cols = line.split()
            if cols:
                done[decode_id(cols[0])] = float(cols[-1])
    return done


def write_errors(path: Path, failures: Sequence[tuple[str, str, str]]) -> None:
    """Write (ID, path, reason) rows as TSV atomically; remove a stale file when there are none."""
    if not failures:
        path.unlink(missing_ok=True)
        return
    with atomic_write(path) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["file_id", "path", "reason"])
        writer.writerows(failures)


def score_isolating_failures(scorer: Scorer, chunk: Sequence[Trial]) -> list[TrialScore]:
    """Score a chunk in one call; if that fails, score file by file to isolate the bad ones.

    Returns one :class:`TrialScore` per trial, in order: the score, or for a failure the reason.
    """
    results: list[TrialScore]
    try:
        scores = np.asarray(scorer.score_files(audio_paths(chunk)), dtype=np.float64)
        if scores.shape != (len(chunk),):
            raise ValueError(f"scorer returned {scores.shape} scores for {len(chunk)} files")
        results = [TrialScore(t, float(s)) for t, s in zip(chunk, scores, strict=True)]
    except Exception:
        results = []
        for trial in chunk:
            try:
                results.append(TrialScore(trial, float(scorer.score_files(audio_paths([trial]))[0])))
            except Exception as exc:
                results.append(TrialScore(trial, None, failure_reason(exc)))
    return [
        TrialScore(r.trial, None, f"scorer returned a non-finite score ({r.score})")
        if r.score is not None and not np.isfinite(r.score) else r
        for r in results
    ]


def converted_files(trials: Sequence[Trial]) -> list[tuple[Trial, tuple[str, ...]]]:
    """The trials whose audio is not 16 kHz mono, each with the conversions loading it applies (headers only)."""
    return [(t, notes) for t in trials if t.path is not None and (notes := probe_conversions(t.path))]


def write_conversions(path: str | os.PathLike, converted: Sequence[tuple[Trial, Sequence[str]]]) -> None:
    """Write (file ID, path, conversions) rows as TSV, atomically."""
    with atomic_write(path) as handle:
        handle.write("file_id\tpath\tconversions\n")
        handle.writelines(f"{t.file_id}\t{t.path}\t{'; '.join(notes)}\n" for t, notes in converted)


@dataclass(frozen=True)
class _Outcome:
    trial: Trial
    score: float | None
    reason: str | None = None
    findings: tuple[tuple[str, str, str, str, str], ...] = ()
    result: FileResult | None = None


def _score_chunk(scorer: Scorer, chunk: Sequence[Trial], checks: bool, grid: SegmentGrid | None,
                 threshold: Threshold | None) -> list[_Outcome]:
    if not checks:
        return [_Outcome(r.trial, r.score, r.reason) for r in score_isolating_failures(scorer, chunk)]
    from .analysis import result_of

    outcomes = []
    for trial, assessed in zip(chunk, scorer.assess_files(audio_paths(chunk), grid), strict=True):
        result = result_of(assessed, str(trial.path), scorer.name, threshold)
        if result.error is not None or isinstance(assessed, str):
            outcomes.append(_Outcome(trial, None, result.error, result=result))  # printed with --format too
            continue
        findings = tuple(_finding(trial, check) for check in assessed.checks)
        outcomes.append(_Outcome(trial, assessed.score, None, findings, result))
    return outcomes


def score_trials(
    scorer: Scorer,
    trials: Sequence[Trial],
    output: str | os.PathLike,
    *,
    chunk_size: int = 32,
    resume: bool = False,
    progress: Progress | None = None,
    checks: bool = True,
    grid: SegmentGrid | None = None,
    threshold: Threshold | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> BatchResult:
    """Score ``trials`` into ``output`` (4 columns when every trial is labelled, else 2), with their checks.

    Parameters
    ----------
    scorer : Scorer
        Any scorer of the registry.
    trials : sequence of Trial
        Each with ``path`` set.
    output : path-like
        Final score file; ``OUTPUT.errors.tsv`` lists the failures, ``OUTPUT.checks.tsv`` the check findings.
    chunk_size : int
        Files per :meth:`Scorer.assess_files` (or ``score_files``) call, and per flush of the partial files.
    resume : bool
        Continue from ``output.partial``; without it an existing partial file is an error, so that
        finished work is never overwritten by accident.
    progress : callable(n_done, n_total), optional
        Called after each chunk.
    checks : bool
        Check every file (speech, clipping, level, ...) and list the findings; False only scores
        (:meth:`Scorer.score_files`), as fast as the scorer goes.
    grid, threshold : the segment grid and verdict threshold of the results given to ``on_result`` (default:
        no segments; the scorer's threshold).
    on_result : callable(FileResult), optional
        Called with each file's result as it is scored (with ``checks``; resumed files have none).
    """
    output = Path(output)
    partial, checks_partial = partial_path(output), checks_partial_path(output)
    if partial.exists() and not resume:
        raise PartialRunExistsError(
            f"{partial} holds scores from an interrupted run; resume it (--resume) or delete it"
        )
    if checks and threshold is None:
        threshold = scorer.threshold()
    done = read_partial(partial) if resume else {}
    found = [row for row in read_checks_partial(checks_partial) if row[0] in done] if resume else []
    n_resumed = sum(t.file_id in done for t in trials)
    todo = [t for t in trials if t.file_id not in done]
    failures: list[tuple[str, str, str]] = []
    n_done = len(trials) - len(todo)
    if progress:
        progress(n_done, len(trials))
    # Rewrite the partial files without any torn last line before appending to them.
    with atomic_write(partial) as handle:
        handle.writelines(format_score_line(i, s) for i, s in done.items())
    with atomic_write(checks_partial) as handle:
        handle.writelines(_check_line(row) for row in found)
    with open(partial, "a", encoding="utf-8") as handle, open(checks_partial, "a", encoding="utf-8") as notes:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            for outcome in _score_chunk(scorer, chunk, checks, grid, threshold):
                trial = outcome.trial
                if outcome.reason is not None:
                    failures.append((trial.file_id, str(trial.path), outcome.reason))
                elif outcome.score is not None:
                    done[trial.file_id] = outcome.score
                    handle.write(format_score_line(trial.file_id, outcome.score))
                    notes.writelines(_check_line(row) for row in outcome.findings)
                    found.extend(outcome.findings)
                if on_result is not None and outcome.result is not None:
                    on_result(outcome.result)
            # Checks first: a score in the partial file means its checks are on disk too.
            for stream in (notes, handle):
                stream.flush()
                os.fsync(stream.fileno())
            n_done += len(chunk)
            if progress:
                progress(n_done, len(trials))
    scored = [t for t in trials if t.file_id in done]
    labelled = all(t.key is not None for t in trials)
    if scored:
        write_scores(
            output,
            [t.file_id for t in scored],
            [done[t.file_id] for t in scored],
            [t.attack for t in scored] if labelled else None,
            [t.key for t in scored] if labelled else None,
        )
    order = {t.file_id: i for i, t in enumerate(trials)}
    found.sort(key=lambda row: order.get(row[0], len(order)))  # stable: each file's findings keep their order
    write_errors(errors_path(output), failures)
    write_checks(checks_path(output), found)
    partial.unlink()
    checks_partial.unlink()
    return BatchResult(output, len(trials), len(scored) - n_resumed, n_resumed, failures,
                       {t.file_id: done[t.file_id] for t in scored}, found)


def output_paths(trials: Sequence[Trial], output_dir: str | os.PathLike, suffix: str) -> list[Path]:
    """One file per trial under ``output_dir``, named after the trial with ``suffix`` added; never twice.

    ``FILE_ID{suffix}`` when every ID is a plain relative name (a protocol's IDs; loose files with distinct stems).
    Loose files whose stems collide get path IDs (:func:`lfcc_gmm.protocols.trials_from_paths`); their outputs mirror
    the files' layout below the folder they share, with the full file name kept: ``a/x.flac`` and ``b/x.flac`` give
    ``a/x.flac.npy`` and ``b/x.flac.npy``, ``tts.mp3`` and ``tts.ogg`` give ``tts.mp3.npy`` and ``tts.ogg.npy``.

    Raises
    ------
    ValueError
        when two trials would still share a file (the same audio given twice).
    """
    folder = Path(output_dir)
    names = [Path(t.file_id) for t in trials]
    if not all(name.parts and not name.is_absolute() and ".." not in name.parts for name in names):
        # IDs are absolute paths, or climb out of the folder: take the audio's layout below its common folder.
        files = [Path(os.path.abspath(path)) for path in audio_paths(trials)]
        common = Path(os.path.commonpath([f.parent for f in files])) if files else Path()
        names = [f.relative_to(common) for f in files]
    targets = [folder / f"{name}{suffix}" for name in names]
    seen: dict[Path, Trial] = {}
    for trial, target in zip(trials, targets, strict=True):
        if target in seen:
            raise ValueError(f"{seen[target].path} and {trial.path} would both write {target}; give each file once")
        seen[target] = trial
    return targets


def feature_paths(trials: Sequence[Trial], output_dir: str | os.PathLike) -> list[Path]:
    """Where :func:`extract_to_folder` writes each trial's features: :func:`output_paths` with ``.npy``."""
    return output_paths(trials, output_dir, ".npy")


@dataclass(frozen=True)
class FolderExtraction:
    """What :func:`extract_to_folder` did.

    Attributes
    ----------
    output_dir : the folder.
    n_total, n_written, n_skipped : trials given; feature files written; trials whose file existed and was kept.
    failures : (file ID, path, reason) of each file that could not be processed, also in :attr:`errors_path`.
    """

    output_dir: Path
    n_total: int
    n_written: int
    n_skipped: int
    failures: list[tuple[str, str, str]]

    @property
    def errors_path(self) -> Path:
        return errors_path(self.output_dir / "lfcc")


def extract_to_folder(
    trials: Sequence[Trial],
    output_dir: str | os.PathLike,
    preset: str = "asvspoof2019",
    *,
    dtype: DTypeLike = np.float64,
    jobs: int = 1,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> FolderExtraction:
    """Write the LFCCs of every trial as one ``.npy`` under ``output_dir`` (names: :func:`feature_paths`).

    Files whose ``.npy`` exists are skipped unless ``overwrite``, so an interrupted run continues where it stopped.
    A file that fails is listed in ``output_dir/lfcc.errors.tsv`` (rewritten each run) and the others go on; every
    ``.npy`` is written atomically.

    Parameters
    ----------
    trials : sequence of Trial
        With paths.
    output_dir : path-like
        Created if missing.
    preset, dtype, jobs : see :func:`iter_features`.
    overwrite : bool
        Recompute files whose ``.npy`` already exists.
    progress : callable(n_done, n_total), optional
        Called after each file computed (skipped files are not counted).
    """
    # SciPy, which the features need, takes a second to import: only when features are asked for.
    from .extraction import iter_features
    from .features import resolve_settings

    folder = Path(output_dir)
    targets = feature_paths(trials, folder)
    resolve_settings(preset, dtype=dtype)  # bad settings fail before any folder is made
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(t, target) for t, target in zip(trials, targets, strict=True) if overwrite or not target.exists()]
    failures = []
    results = iter_features(audio_paths([t for t, _ in todo]), preset, jobs=jobs, dtype=dtype, on_error="collect",
                            progress=progress)
    for (trial, target), result in zip(todo, results, strict=True):
        if result.error is not None:
            failures.append((trial.file_id, str(trial.path), result.error))
        elif result.features is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(target, "wb") as handle:
                np.save(handle, result.features, allow_pickle=False)
    extraction = FolderExtraction(folder, len(trials), len(todo) - len(failures), len(trials) - len(todo), failures)
    write_errors(extraction.errors_path, failures)
    return extraction

"""Batch scoring that survives bad files and interruptions.

Scores are appended to ``OUTPUT.partial`` and flushed chunk by chunk as they are produced, so an
interrupted run loses at most the chunk in flight; ``resume=True`` skips the IDs already there.
A file that fails is recorded in ``OUTPUT.errors.tsv`` (ID, path, reason) and the run goes on.
When every trial has been tried, the final score file is written atomically in protocol order and
the partial file is removed.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .protocols import Trial, audio_paths, decode_id
from .scorefiles import format_score_line, write_scores
from .scorers import Scorer

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

    @property
    def errors_path(self) -> Path:
        return errors_path(self.output)

    @property
    def ok(self) -> bool:
        return not self.failures


def partial_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}.partial")


def errors_path(output: str | os.PathLike) -> Path:
    return Path(f"{output}.errors.tsv")


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


def score_isolating_failures(
    scorer: Scorer, chunk: Sequence[Trial]
) -> list[tuple[Trial, float | None, str | None]]:
    """Score a chunk in one call; if that fails, score file by file to isolate the bad ones.

    Returns ``(trial, score, None)`` for each success and ``(trial, None, reason)`` for each failure.
    """
    results: list[tuple[Trial, float | None, str | None]]
    try:
        scores = np.asarray(scorer.score_files(audio_paths(chunk)), dtype=np.float64)
        if scores.shape != (len(chunk),):
            raise ValueError(f"scorer returned {scores.shape} scores for {len(chunk)} files")
        results = list(zip(chunk, scores, [None] * len(chunk), strict=True))
    except Exception:
        results = []
        for trial in chunk:
            try:
                results.append((trial, float(scorer.score_files(audio_paths([trial]))[0]), None))
            except Exception as exc:
                results.append((trial, None, f"{type(exc).__name__}: {exc}"))
    return [
        (t, None, f"scorer returned a non-finite score ({s})") if s is not None and not np.isfinite(s) else (t, s, r)
        for t, s, r in results
    ]


def score_trials(
    scorer: Scorer,
    trials: Sequence[Trial],
    output: str | os.PathLike,
    *,
    chunk_size: int = 32,
    resume: bool = False,
    progress: Progress | None = None,
) -> BatchResult:
    """Score ``trials`` into ``output`` (4 columns when every trial is labelled, else 2).

    Parameters
    ----------
    scorer : Scorer
        Any scorer of the registry.
    trials : sequence of Trial
        Each with ``path`` set.
    output : path-like
        Final score file.
    chunk_size : int
        Files per :meth:`Scorer.score_files` call, and per flush of the partial file.
    resume : bool
        Continue from ``output.partial``; without it an existing partial file is an error, so that
        finished work is never overwritten by accident.
    progress : callable(n_done, n_total), optional
        Called after each chunk.
    """
    output = Path(output)
    partial = partial_path(output)
    if partial.exists() and not resume:
        raise PartialRunExistsError(
            f"{partial} holds scores from an interrupted run; resume it (--resume) or delete it"
        )
    done = read_partial(partial) if resume else {}
    n_resumed = sum(t.file_id in done for t in trials)
    todo = [t for t in trials if t.file_id not in done]
    failures: list[tuple[str, str, str]] = []
    n_done = len(trials) - len(todo)
    if progress:
        progress(n_done, len(trials))
    # Rewrite the partial file without any torn last line before appending to it.
    with atomic_write(partial) as handle:
        handle.writelines(format_score_line(i, s) for i, s in done.items())
    with open(partial, "a", encoding="utf-8") as handle:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            for trial, score, reason in score_isolating_failures(scorer, chunk):
                if reason is not None:
                    failures.append((trial.file_id, str(trial.path), reason))
                elif score is not None:
                    done[trial.file_id] = score
                    handle.write(format_score_line(trial.file_id, score))
            handle.flush()
            os.fsync(handle.fileno())
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
    write_errors(errors_path(output), failures)
    partial.unlink()
    return BatchResult(output, len(trials), len(scored) - n_resumed, n_resumed, failures)

"""Robustness: score a labelled set under degradation conditions and tabulate EER per condition × attack.

Degraded copies are made in memory (one condition at a time, a chunk of files at a time) and scored
with :meth:`lfcc_gmm.scorers.Scorer.score_signals`, so nothing is written to disk unless asked. Each
degradation is seeded by (seed, file ID, condition name), never by a position in a list: reruns reproduce the
same noise and reverb, and a condition's result is the same whatever other conditions or files come with it.
:func:`write_robustness_report` writes a result's report folder.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .audio import AudioError, load_audio
from .augment import named_seed
from .degrade import Condition
from .metrics import evaluate
from .protocols import BONAFIDE, Trial, audio_paths
from .scorers import Scorer

POOLED = "pooled"
#: Bona fide utterances mixed into babble noise (drawn from the set itself, excluding the target file).
BABBLE_TALKERS = 6


@dataclass
class RobustnessResult:
    """EER (fraction) per condition (rows) for the pooled set and each attack (columns)."""

    conditions: list[str]
    columns: list[str]
    eer: np.ndarray
    scores: dict[str, np.ndarray] = field(repr=False)
    file_ids: list[str] = field(repr=False)
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "eer_percent": {
                cond: {col: float(100 * self.eer[i, j]) for j, col in enumerate(self.columns)}
                for i, cond in enumerate(self.conditions)
            },
            "n_trials": len(self.file_ids),
            "failures": [{"file_id": f, "path": p, "reason": r} for f, p, r in self.failures],
        }

    def to_text(self) -> str:
        """Aligned table of EER % (rows: conditions; columns: pooled, then attacks)."""
        width = max(len(c) for c in self.conditions) + 2
        head = "condition".ljust(width) + "".join(f"{c:>9}" for c in self.columns)
        rows = [cond.ljust(width) + "".join(f"{100 * v:9.2f}" for v in self.eer[i])
                for i, cond in enumerate(self.conditions)]
        return "\n".join(["EER (%) by condition and attack", head, *rows])

    def write_csv(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["condition", *(f"eer_percent_{c}" for c in self.columns)])
            for i, cond in enumerate(self.conditions):
                writer.writerow([cond, *(f"{100 * v:.6f}" for v in self.eer[i])])

    def write_scores(self, folder: str | os.PathLike, trials: Sequence[Trial]) -> None:
        """One 4-column score file per condition (``scores_<condition>.txt``)."""
        from .scorefiles import write_scores

        by_id = {t.file_id: t for t in trials}
        for cond, values in self.scores.items():
            kept = [by_id[i] for i in self.file_ids]
            write_scores(Path(folder) / f"scores_{_safe(cond)}.txt", self.file_ids, values,
                         [t.attack for t in kept], [t.key for t in kept])


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _load(trials: Sequence[Trial]) -> tuple[list[np.ndarray], list[int], list[tuple[str, str, str]]]:
    signals, kept, failures = [], [], []
    for index, (trial, path) in enumerate(zip(trials, audio_paths(trials), strict=True)):
        try:
            signals.append(load_audio(path, warn=False).signal)
            kept.append(index)
        except AudioError as exc:
            failures.append((trial.file_id, str(trial.path), exc.reason))
    return signals, kept, failures


def _babble_pool(trials: Sequence[Trial], seed: int) -> list[tuple[str, np.ndarray]]:
    """(file ID, signal) of the talkers, drawn from the bona fide trials by ID (not by their order)."""
    bonafide = sorted((t for t in trials if t.key == BONAFIDE), key=lambda t: t.file_id)
    rng = np.random.default_rng(named_seed(seed, "babble talkers"))
    chosen = rng.choice(len(bonafide), size=min(len(bonafide), BABBLE_TALKERS + 1), replace=False)
    talkers = [bonafide[i] for i in sorted(chosen)]
    return [(t.file_id, load_audio(path, warn=False).signal) for t, path in zip(talkers, audio_paths(talkers),
                                                                               strict=True)]


def evaluate_robustness(
    scorer: Scorer,
    trials: Sequence[Trial],
    conditions: Sequence[Condition],
    *,
    seed: int = 0,
    chunk_size: int = 32,
    audio_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RobustnessResult:
    """Score every labelled trial under every condition and compute EER per condition and attack.

    Parameters
    ----------
    scorer : Scorer
        Must implement :meth:`~lfcc_gmm.scorers.Scorer.score_signals`.
    trials : sequence of Trial
        Labelled, with paths.
    conditions : sequence of Condition
        From :func:`lfcc_gmm.degrade.parse_conditions`.
    seed : int
        Base seed of the random degradations; file ``f`` under condition ``c`` is degraded with
        :func:`~lfcc_gmm.augment.named_seed` ``(seed, f.file_id, c.name)``, so its result does not depend on the
        other files or conditions, nor on their order.
    chunk_size : int
        Files held in memory (and scored per call) at a time.
    audio_dir : path-like, optional
        Also write the degraded audio here, as ``<condition>/<FILE_ID>.flac`` (off by default).
    progress : callable(n_done, n_total), optional
        Counts file × condition pairs.
    """
    if any(t.key is None for t in trials):
        raise ValueError("robustness evaluation needs labelled trials (bonafide/spoof keys)")
    names = [c.name for c in conditions]
    if len(set(names)) != len(names):
        raise ValueError(f"conditions repeat: {', '.join(names)}")
    needs_babble = any(kind == "babble" for c in conditions for kind, _ in c.steps)
    pool = _babble_pool(trials, seed) if needs_babble else []
    scores = {name: np.full(len(trials), np.nan) for name in names}
    failures: list[tuple[str, str, str]] = []
    total, done = len(trials) * len(conditions), 0
    for start in range(0, len(trials), chunk_size):
        chunk = trials[start : start + chunk_size]
        signals, kept, chunk_failures = _load(chunk)
        failures.extend(chunk_failures)
        for condition in conditions:
            degraded = []
            for local, signal in zip(kept, signals, strict=True):
                file_id = chunk[local].file_id
                others = [x for talker, x in pool if talker != file_id][:BABBLE_TALKERS]
                degraded.append(condition(signal, rng=named_seed(seed, file_id, condition.name), babble=others))
            if audio_dir is not None:
                _write_audio(Path(audio_dir) / _safe(condition.name), [chunk[i] for i in kept], degraded)
            if degraded:
                values = scorer.score_signals(degraded)
                scores[condition.name][[start + i for i in kept]] = values
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    ok = ~np.isnan(scores[names[0]])
    kept_trials = [t for t, good in zip(trials, ok, strict=True) if good]
    keys = np.array([t.key for t in kept_trials])
    attacks = np.array([t.attack for t in kept_trials])
    columns = [POOLED, *sorted(set(attacks[keys != BONAFIDE]))]
    eer = np.empty((len(names), len(columns)))
    for i, name in enumerate(names):
        result = evaluate(scores[name][ok], keys, attacks)
        eer[i] = [result.eer, *(result.per_attack_eer[a] for a in columns[1:])]
    return RobustnessResult(names, columns, eer, {n: s[ok] for n, s in scores.items()},
                            [t.file_id for t in kept_trials], failures)


def _write_audio(folder: Path, trials: Sequence[Trial], signals: Sequence[np.ndarray]) -> None:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    for trial, signal in zip(trials, signals, strict=True):
        peak = np.max(np.abs(signal)) if signal.size else 0.0
        # FLAC is integer PCM: scale down only if the degradation pushed the signal past full scale.
        scaled = signal / peak if peak > 1.0 else signal
        with atomic_write(folder / f"{trial.file_id}.flac", "wb") as handle:
            sf.write(handle, scaled, 16000, format="FLAC", subtype="PCM_16")


def plot_heatmap(result: RobustnessResult, path: str | os.PathLike, title: str = "EER (%)") -> None:
    """Heat map of EER % (conditions × pooled/attacks), each cell annotated; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = 100 * result.eer
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(result.columns), 1.2 + 0.45 * len(result.conditions)))
    image = ax.imshow(values, cmap="magma_r", vmin=0, vmax=max(50.0, float(values.max())), aspect="auto")
    ax.set_xticks(range(len(result.columns)), result.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(result.conditions)), result.conditions)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8, color="white" if v > 25 else "black")
    fig.colorbar(image, ax=ax, label="EER (%)")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)


def write_robustness_report(
    result: RobustnessResult, trials: Sequence[Trial], output_dir: str | os.PathLike, *, title: str = "EER (%)"
) -> list[Path]:
    """Write the report folder of a robustness run and return the files written.

    ``robustness.csv`` and ``robustness.json`` (the table), ``robustness.png`` (the heat map, titled ``title``) and
    one 4-column ``scores_<condition>.txt`` per condition; every file atomically.
    """
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    result.write_csv(folder / "robustness.csv")
    with atomic_write(folder / "robustness.json") as handle:
        json.dump(result.to_dict(), handle, indent=1)
    result.write_scores(folder, trials)
    plot_heatmap(result, folder / "robustness.png", title=title)
    return [folder / name for name in ("robustness.csv", "robustness.json", "robustness.png")] + [
        folder / f"scores_{_safe(name)}.txt" for name in result.conditions]

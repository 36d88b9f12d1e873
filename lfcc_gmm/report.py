"""Comparing countermeasure systems, and several systems' score files joined by trial ID for fusion.

- :func:`compare_systems` evaluates each system (:func:`lfcc_gmm.metrics.evaluate`) and lays the pooled and
  per-attack results side by side, marking attacks seen or unseen in training; :func:`write_report` writes a
  folder with a Markdown report, DET and histogram figures, and the table as JSON and CSV.
- :func:`align_score_files` joins score files of several systems on the same trials into one
  (n_trials, n_systems) matrix; :func:`fuse_score_files` trains :class:`lfcc_gmm.fusion.LinearFusion` on
  development files and applies it to evaluation files (calibration is the one-system case).

Scores: higher = more bona fide.
"""

from __future__ import annotations

import csv
import io
import json
import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .atomic import atomic_write
from .bootstrap import (
    METRIC_LABELS,
    BootstrapCI,
    PairedBootstrap,
    bootstrap_ci,
    cluster_speakers,
    format_metric,
    paired_bootstrap,
)
from .fusion import LinearFusion
from .metrics import Evaluation, bonafide_mask, compute_eer, evaluate
from .plots import det_figure, histogram_figure, save_png
from .protocols import SPOOF, Trial
from .scorefiles import (
    ASVScores,
    LabelledScores,
    ScoreFileError,
    ScoreTable,
    label_scores,
    mismatch_message,
    read_scores,
    write_scores,
)

PathLike = str | os.PathLike


class SystemScores(NamedTuple):
    """One system's labelled trials: scores (higher = more bona fide), keys, and attacks (None if unknown)."""

    scores: np.ndarray
    keys: np.ndarray
    attacks: np.ndarray | None = None


def as_system_scores(value: Any) -> SystemScores:
    """Accept :class:`~lfcc_gmm.scorefiles.LabelledScores`, :class:`SystemScores` or a tuple
    ``(scores, keys[, attacks])``."""
    if hasattr(value, "scores") and hasattr(value, "keys"):
        scores, keys, attacks = value.scores, value.keys, getattr(value, "attacks", None)
    elif isinstance(value, tuple) and len(value) in (2, 3):
        scores, keys, attacks = (*value, None)[:3]
    else:
        raise TypeError(f"expected labelled scores or a (scores, keys[, attacks]) tuple, got {type(value).__name__}")
    return SystemScores(np.asarray(scores, dtype=np.float64), np.asarray(keys),
                        None if attacks is None else np.asarray(attacks))


def spoof_attacks(trials: Iterable[Trial]) -> frozenset[str]:
    """The attacks of the spoof trials, e.g. the attacks a system was trained on."""
    return frozenset(t.attack for t in trials if t.key == SPOOF)


def load_systems(
    paths: Sequence[PathLike], trials: Sequence[Trial] | None = None, names: Sequence[str] | None = None
) -> dict[str, LabelledScores]:
    """Read and label one score file per system, named by ``names`` or else by the file stems.

    ``trials`` (a protocol) labels every file; without it each file must have 4 columns. Errors name the file.
    """
    names = [Path(p).stem for p in paths] if names is None else list(names)
    if len(names) != len(paths):
        raise ValueError(f"{len(names)} system names for {len(paths)} score files")
    systems: dict[str, LabelledScores] = {}
    first_path: dict[str, PathLike] = {}
    for name, path in zip(names, paths, strict=True):
        if name in systems:
            raise ValueError(f"system name {name!r} is given to both {first_path[name]} and {path}; "
                             "give each system its own name")
        try:
            systems[name] = label_scores(read_scores(path), trials)
        except ScoreFileError as exc:
            message = str(exc)
            raise ScoreFileError(message if message.startswith(str(path)) else f"{path}: {message}") from None
        first_path[name] = path
    return systems


class _Column(NamedTuple):
    header: str
    mark: str  # "seen" / "unseen" for attack columns when the training attacks are known
    values: list[float | None]
    percent: bool  # values are fractions shown as %


def _cell(value: float | None, percent: bool) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.4f}" if percent else f"{value:.4f}"


def _csv_cell(value: float | None, percent: bool) -> str:
    if value is None:
        return ""
    return repr(100 * value if percent else value)


def _markdown_text(text: str) -> str:
    return text.replace("|", "\\|")


def _labelled(label: str, lines: list[str], width: int) -> list[str]:
    """``lines`` indented under a column holding ``label`` on the first line."""
    return [f"  {label if i == 0 else '':<{width}}  {line}" for i, line in enumerate(lines)]


@dataclass(frozen=True)
class Comparison:
    """Results of several systems side by side (see :func:`compare_systems`).

    Attributes
    ----------
    evaluations : dict of str to Evaluation
        Each system's :func:`lfcc_gmm.metrics.evaluate` result, in input order.
    attacks : list of str
        Every attack seen in any system's spoof trials, sorted.
    seen_attacks : frozenset of str or None
        Attacks present in training; None when unknown (nothing is marked).
    group_eer : dict of str to dict
        Per system, the pooled EER (fraction) over the spoofs of seen and of unseen attacks, None where the
        group is empty; empty when ``seen_attacks`` is None.
    intervals : dict of str to BootstrapCI
        Per system, bootstrap intervals of the EER and the DCF of the table; empty unless asked for.
    differences : dict of (str, str) to PairedBootstrap
        For each pair of systems (A before B in input order), the paired bootstrap of A − B.
    resampling : str
        Why speakers or trials were resampled.
    """

    evaluations: dict[str, Evaluation]
    attacks: list[str]
    seen_attacks: frozenset[str] | None = None
    group_eer: dict[str, dict[str, float | None]] = field(default_factory=dict)
    intervals: dict[str, BootstrapCI] = field(default_factory=dict)
    differences: dict[tuple[str, str], PairedBootstrap] = field(default_factory=dict)
    resampling: str = ""

    def status(self, attack: str) -> str | None:
        """``"seen"``/``"unseen"`` in training, or None when the training attacks are unknown."""
        if self.seen_attacks is None:
            return None
        return "seen" if attack in self.seen_attacks else "unseen"

    def _columns(self) -> list[_Column]:
        results = list(self.evaluations.values())
        columns = [_Column("EER %", "", [r.eer for r in results], True)]
        if any(r.min_tdcf is not None for r in results):
            columns.append(_Column("min t-DCF", "", [r.min_tdcf for r in results], False))
        columns += [
            _Column("min DCF", "", [r.min_dcf for r in results], False),
            _Column("Cllr", "", [r.cllr for r in results], False),
            _Column("min Cllr", "", [r.min_cllr for r in results], False),
        ]
        if self.seen_attacks is not None:
            columns += [_Column(f"{group} EER %", "", [self.group_eer[name][group] for name in self.evaluations],
                                True) for group in ("seen", "unseen")]
        columns += [_Column(attack, self.status(attack) or "", [r.per_attack_eer.get(attack) for r in results], True)
                    for attack in self.attacks]
        return columns

    def _legend(self) -> str:
        prior = next(iter(self.evaluations.values())).dcf_prior
        text = (f"EERs in %; an attack's EER pits its spoofs against all bona fide trials. min DCF at "
                f"P(bona fide) = {prior:g}. Cllr reads scores as LLRs (only meaningful after calibration).")
        if self.seen_attacks is not None:
            text += " seen/unseen: the attack is / is not in the training data."
        return text

    def to_text(self) -> str:
        """An aligned table for the terminal: one row per system, a second header row marks seen/unseen."""
        columns = self._columns()
        names = list(self.evaluations)
        name_width = max(len("system"), *(len(n) for n in names))
        cells = [[_cell(v, c.percent) for v in c.values] for c in columns]
        widths = [max(len(c.header), len(c.mark), *(len(s) for s in col)) for c, col in zip(columns, cells,
                                                                                              strict=True)]
        lines = ["system".ljust(name_width) + "".join(f"  {c.header:>{w}}" for c, w in zip(columns, widths,
                                                                                             strict=True))]
        if self.seen_attacks is not None:
            lines.append(" " * name_width + "".join(f"  {c.mark:>{w}}" for c, w in zip(columns, widths,
                                                                                        strict=True)))
        for i, name in enumerate(names):
            lines.append(name.ljust(name_width) + "".join(f"  {col[i]:>{w}}" for col, w in zip(cells, widths,
                                                                                                strict=True)))
        return "\n".join(lines + [textwrap.fill(self._legend(), 110), *self._intervals_text()])

    def _intervals_text(self) -> list[str]:
        if not self.intervals:
            return []
        width = max(len(name) for name in self.intervals)
        lines = [next(iter(self.intervals.values())).describe(self.resampling) + ":"]
        for name, ci in self.intervals.items():
            lines += _labelled(name, ci.lines(), width)
        if self.differences:
            lines.append("Differences A − B, paired bootstrap on the same resamples (significant: the interval "
                         "excludes 0):")
            width = max(len(f"{a} − {b}") for a, b in self.differences)
            for (a, b), paired in self.differences.items():
                lines += _labelled(f"{a} − {b}", paired.lines(), width)
        return lines

    def _headers(self) -> list[str]:
        return ["system"] + [f"{c.header} ({c.mark})" if c.mark else c.header for c in self._columns()]

    def to_markdown(self) -> str:
        """A Markdown table (attack headers say seen/unseen) followed by a one-paragraph legend."""
        columns = self._columns()
        lines = ["| " + " | ".join(self._headers()) + " |", "|---|" + "---:|" * len(columns)]
        for i, name in enumerate(self.evaluations):
            row = [_markdown_text(name)] + [_cell(c.values[i], c.percent) for c in columns]
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines) + "\n\n" + self._legend() + "\n" + self._intervals_markdown()

    def _intervals_markdown(self) -> str:
        if not self.intervals:
            return ""
        lines = ["", next(iter(self.intervals.values())).describe(self.resampling) + ":", "",
                 "| system | metric | estimate | low | high |", "|---|---|---:|---:|---:|"]
        for name, ci in self.intervals.items():
            lines += [f"| {_markdown_text(name)} | {METRIC_LABELS[metric]} | "
                      + " | ".join(format_metric(metric, v) for v in (i.estimate, i.low, i.high)) + " |"
                      for metric, i in ci.intervals.items()]
        if self.differences:
            lines += ["", "Differences A − B, paired bootstrap on the same resamples:", "",
                      "| A − B | metric | difference | low | high | significant |", "|---|---|---:|---:|---:|---|"]
            for (a, b), paired in self.differences.items():
                lines += [f"| {_markdown_text(f'{a} − {b}')} | {METRIC_LABELS[metric]} | "
                          + " | ".join(format_metric(metric, v, signed=True) for v in (i.estimate, i.low, i.high))
                          + f" | {'yes' if i.excludes_zero else 'no'} |" for metric, i in paired.differences.items()]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """The table as CSV with full-precision values (EERs in %); empty cells where an attack is absent."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self._headers())
        columns = self._columns()
        for i, name in enumerate(self.evaluations):
            writer.writerow([name] + [_csv_cell(c.values[i], c.percent) for c in columns])
        return buffer.getvalue()

    def to_dict(self) -> dict:
        """JSON-ready: each system's :meth:`Evaluation.to_dict` plus seen/unseen pooled EERs, and the attacks."""
        systems = []
        for name, result in self.evaluations.items():
            entry = {"name": name, **result.to_dict()}
            if self.seen_attacks is not None:
                for group in ("seen", "unseen"):
                    eer = self.group_eer[name][group]
                    entry[f"{group}_eer_percent"] = None if eer is None else 100 * eer
            systems.append(entry)
            if name in self.intervals:
                entry["bootstrap"] = {**self.intervals[name].to_dict(), "resampling": self.resampling}
        summary = {
            "seen_attacks": None if self.seen_attacks is None else sorted(self.seen_attacks),
            "attacks": [{"name": attack, "status": self.status(attack)} for attack in self.attacks],
            "systems": systems,
        }
        if self.differences:
            summary["differences"] = [{"a": a, "b": b, **paired.to_dict(), "resampling": self.resampling}
                                      for (a, b), paired in self.differences.items()]
        return summary


def _group_eers(data: SystemScores, seen: frozenset[str]) -> dict[str, float | None]:
    if data.attacks is None:
        return {"seen": None, "unseen": None}
    bona = bonafide_mask(data.keys)
    spoof, attacks = data.scores[~bona], data.attacks[~bona]
    is_seen = np.isin(attacks, list(seen))
    return {group: compute_eer(data.scores[bona], spoof[chosen])[0] if chosen.any() else None
            for group, chosen in (("seen", is_seen), ("unseen", ~is_seen))}


def compare_systems(
    systems: Mapping[str, Any],
    seen_attacks: Iterable[str] | None = None,
    *,
    asv: ASVScores | None = None,
    prior: float = 0.5,
    confidence: float | None = None,
    trials: Sequence[Trial] | None = None,
    n_resamples: int = 1000,
    seed: int | None = 0,
) -> Comparison:
    """Evaluate each system and put the results side by side, with bootstrap intervals on request.

    Parameters
    ----------
    systems : mapping of name to labelled scores
        :class:`~lfcc_gmm.scorefiles.LabelledScores`, :class:`SystemScores` or ``(scores, keys[, attacks])``.
        Systems may be scored on different trials, but only the same trials make a fair comparison.
    seen_attacks : iterable of str, optional
        Attacks present in the training (and development) data; the others are marked unseen, and the pooled
        EER over each group is added.
    asv : ASVScores, optional
        The organisers' ASV scores, for the min t-DCF of every system.
    prior : float
        P(bona fide) of the DCFs.
    confidence : float, optional
        Coverage of bootstrap intervals (e.g. 0.95) of each system's EER and DCF (min t-DCF with ``asv``, else min
        DCF at ``prior``), and of a paired bootstrap of every pair's differences. The systems must then be scored
        on the same trials.
    trials : sequence of Trial, optional
        The protocol: when it names two or more speakers, speakers are resampled with all their trials (the
        systems need their trial IDs, as :class:`~lfcc_gmm.scorefiles.LabelledScores` have).
    n_resamples, seed : int
        Bootstrap resamples, and the seed that makes them repeatable.
    """
    if not systems:
        raise ValueError("no systems to compare")
    seen = None if seen_attacks is None else frozenset(seen_attacks)
    evaluations, group_eer = {}, {}
    for name, value in systems.items():
        data = as_system_scores(value)
        try:
            evaluations[name] = evaluate(data.scores, data.keys, data.attacks, asv=asv, prior=prior)
        except ValueError as exc:
            raise ValueError(f"system {name!r}: {exc}") from None
        if seen is not None:
            group_eer[name] = _group_eers(data, seen)
    attacks = sorted(set().union(*(r.per_attack_eer for r in evaluations.values())))
    if confidence is None:
        return Comparison(evaluations, attacks, seen, group_eer)
    keys, columns, ids = _same_trials(systems)
    speakers, resampling = cluster_speakers(trials, ids) if ids is not None else (None, "the systems' IDs are unknown")
    settings: dict[str, Any] = {"asv": asv, "prior": None if asv is not None else prior, "confidence": confidence,
                                "n_resamples": n_resamples, "seed": seed}
    intervals = {name: bootstrap_ci(scores, keys, speakers, **settings) for name, scores in columns.items()}
    names = list(columns)
    differences = {(a, b): paired_bootstrap(columns[a], columns[b], keys, speakers, **settings)
                   for i, a in enumerate(names) for b in names[i + 1:]}
    return Comparison(evaluations, attacks, seen, group_eer, intervals, differences, resampling)


def _same_trials(systems: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray], list[str] | None]:
    """(keys, each system's scores, trial IDs), for a paired bootstrap.

    Systems with IDs are joined on them, in ID order (so that the order of a file's lines does not change the
    resamples); without, they must list the same keys in the same order.
    """
    data = {name: as_system_scores(value) for name, value in systems.items()}
    (first_name, first), *others = data.items()
    ids = {name: getattr(value, "ids", None) for name, value in systems.items()}
    reference = ids[first_name]
    if reference is None or any(own is None for own in ids.values()):
        for name, other in others:
            if other.keys.shape != first.keys.shape or np.any(other.keys != first.keys):
                raise ValueError(f"bootstrap intervals compare systems on the same trials: system {name!r} has "
                                 f"other trials than {first_name!r} (give the systems with their trial IDs)")
        return first.keys, {name: value.scores for name, value in data.items()}, None
    reference = sorted(reference)
    position = {trial: k for k, trial in enumerate(reference)}
    columns, keys = {}, None
    for name, other in data.items():
        own = list(ids[name] or [])
        present = set(own)
        missing = [trial for trial in reference if trial not in present]
        extra = [trial for trial in own if trial not in position]
        if missing or extra:
            problem = (mismatch_message(f"trials of {first_name!r} are missing", missing, len(reference)) if missing
                       else mismatch_message(f"trials are not among those of {first_name!r}", extra, len(own)))
            raise ValueError(f"bootstrap intervals compare systems on the same trials: system {name!r}: {problem}")
        order = np.argsort([position[trial] for trial in own])
        columns[name] = other.scores[order]
        if keys is None:
            keys = other.keys[order]
        elif np.any(other.keys[order] != keys):
            differ = [reference[k] for k in np.flatnonzero(other.keys[order] != keys)]
            raise ValueError(f"system {name!r}: " + mismatch_message(f"trials have another key than in {first_name!r}",
                                                                     differ, len(reference)))
    assert keys is not None  # there is a first system
    return keys, columns, reference


_HOW_TO_READ = """\
## How to read this

- **Score polarity.** Every system's score is higher for more bona fide speech. A trial is accepted as bona fide
  when its score reaches the threshold; a spoof accepted is a false acceptance, a bona fide trial rejected a false
  rejection.
- **EER** (equal error rate): the error rate at the threshold where false acceptances and false rejections are
  equally frequent, computed as the official ASVspoof scripts do. Lower is better; 50 % is chance.
- **Per-attack EER**: the EER of one attack's spoofs against all bona fide trials. It shows which attacks a system
  misses. *Unseen* attacks are absent from the training data, so they measure generalisation; the pooled
  *seen*/*unseen* EERs group the spoofs accordingly.
- **DET curve**: every threshold's false rejection rate against its false acceptance rate, on probit (normal
  deviate) axes so that Gaussian-like score distributions give straight lines. Closer to the lower left is better;
  the circle marks the EER, where the curve meets the dotted diagonal.
- **Histograms**: how far apart the bona fide and spoof scores lie; the dashed line is the EER threshold.
- **min DCF**: the lowest normalised detection cost over thresholds (1 = no better than deciding from the prior).
- **Cllr / min Cllr** (bits): Cllr scores the scores as log-likelihood ratios, min Cllr is what the best monotone
  calibration would reach. A gap means the scores are miscalibrated (`antispoof calibrate` fixes that); raw scores
  of most systems are not LLRs, so their Cllr is only a warning sign.
"""

_HOW_TO_READ_INTERVALS = """\
- **Bootstrap intervals**: the trials (or the speakers, with all their trials) are drawn again with replacement
  many times and each metric is recomputed on every draw; the interval holds the middle share of those values. It
  says how much the number would move on another set of the same size from the same source. With a hundred or
  so trials an EER interval spans many points: a difference between two systems inside it says nothing.
- **Paired differences**: both systems are scored on the same draws, so what the trials share cancels out; a
  difference is *significant* when its interval excludes 0.
"""


def _system_details(name: str, result: Evaluation) -> str:
    lines = [
        f"### {name}",
        "",
        f"- {result.n_bonafide + result.n_spoof:,} trials: {result.n_bonafide:,} bona fide, {result.n_spoof:,} spoof",
        f"- EER {100 * result.eer:.4f} % at threshold {result.threshold:.6g}",
    ]
    if result.min_tdcf is not None:
        lines.append(f"- min t-DCF {result.min_tdcf:.5f}")
    lines += [
        f"- Cllr {result.cllr:.4f} bits, min Cllr {result.min_cllr:.4f} bits "
        f"(calibration loss {result.cllr - result.min_cllr:.4f})",
        f"- actual DCF {result.act_dcf:.4f}, min DCF {result.min_dcf:.4f} at P(bona fide) = {result.dcf_prior:g}",
    ]
    if result.per_attack_eer:
        hardest = max(result.per_attack_eer, key=result.per_attack_eer.__getitem__)
        easiest = min(result.per_attack_eer, key=result.per_attack_eer.__getitem__)
        lines.append(f"- hardest attack {hardest} (EER {100 * result.per_attack_eer[hardest]:.4f} %), "
                     f"easiest {easiest} (EER {100 * result.per_attack_eer[easiest]:.4f} %)")
    return "\n".join(lines) + "\n"


def write_report(
    output_dir: PathLike,
    comparison: Comparison,
    systems: Mapping[str, Any],
    title: str = "Countermeasure comparison",
    notes: str | None = None,
) -> Path:
    """Write a report folder and return the path of its ``report.md``.

    The folder gets ``report.md`` (the table, the figures by relative links, per-system details and a short
    guide), ``det.png``, ``histograms.png`` (and ``histograms_by_attack.png`` when there are several attacks),
    ``comparison.json`` and ``comparison.csv``. ``systems`` are the labelled scores ``comparison`` was made from.
    """
    if list(systems) != list(comparison.evaluations):
        raise ValueError(f"the systems {list(systems)} are not those compared ({list(comparison.evaluations)})")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {name: as_system_scores(value) for name, value in systems.items()}
    figures = {"det.png": ("DET curves", det_figure(data)),
               "histograms.png": ("Score histograms, bona fide against spoof", histogram_figure(data))}
    if len(comparison.attacks) > 1:
        figures["histograms_by_attack.png"] = ("Score histograms by attack", histogram_figure(data, by_attack=True))
    for file_name, (_, figure) in figures.items():
        save_png(figure, out / file_name)

    parts = [f"# {title}\n"]
    if notes:
        parts.append(notes.strip() + "\n")
    parts += ["## Results\n", comparison.to_markdown(), "## Figures\n"]
    parts += [f"![{caption}]({file_name})\n" for file_name, (caption, _) in figures.items()]
    parts.append("## Systems\n")
    parts += [_system_details(name, result) for name, result in comparison.evaluations.items()]
    parts += [_HOW_TO_READ + (_HOW_TO_READ_INTERVALS if comparison.intervals else ""),
              "The table is also in `comparison.json` and `comparison.csv`.\n"]
    with atomic_write(out / "comparison.json") as handle:
        handle.write(json.dumps(comparison.to_dict(), indent=1) + "\n")
    with atomic_write(out / "comparison.csv") as handle:
        handle.write(comparison.to_csv())
    report = out / "report.md"
    with atomic_write(report) as handle:
        handle.write("\n".join(parts))
    return report


@dataclass(frozen=True)
class AlignedScores:
    """Several systems' scores on the same trials: one column per system, rows in the first file's order.

    ``keys``/``attacks`` come from a protocol or the 4-column files, None when neither supplied them.
    """

    names: list[str]
    ids: list[str]
    matrix: np.ndarray
    keys: np.ndarray | None = None
    attacks: np.ndarray | None = None


def _mismatches(paths: Sequence[PathLike], tables: Sequence[ScoreTable]) -> list[str]:
    reference = set(tables[0].ids)
    problems = []
    for path, table in zip(paths[1:], tables[1:], strict=True):
        present = set(table.ids)
        extra = [i for i in table.ids if i not in reference]
        missing = [i for i in tables[0].ids if i not in present]
        if extra:
            problems.append(f"{path}: " + mismatch_message(f"IDs are not in {paths[0]}", extra, len(table)))
        if missing:
            problems.append(f"{path}: " + mismatch_message(f"IDs of {paths[0]} are missing", missing,
                                                            len(tables[0])))
    return problems


def _file_labels(
    paths: Sequence[PathLike], tables: Sequence[ScoreTable], orders: Sequence[np.ndarray], ids: list[str]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Keys and attacks of the first 4-column file, checked against the keys of the other 4-column files."""
    labelled = [(path, table, order) for path, table, order in zip(paths, tables, orders, strict=True)
                if table.labelled]
    if not labelled:
        return None, None
    first_path, first, order = labelled[0]
    keys = np.asarray(first.keys)[order]
    for path, table, other_order in labelled[1:]:
        differ = np.flatnonzero(np.asarray(table.keys)[other_order] != keys)
        if differ.size:
            raise ScoreFileError(f"{path}: " + mismatch_message(f"trials have another key than in {first_path}",
                                                                 [ids[i] for i in differ], len(ids)))
    return keys, np.asarray(first.attacks)[order]


def align_score_files(paths: Sequence[PathLike], trials: Sequence[Trial] | None = None) -> AlignedScores:
    """Read one score file per system and join them by trial ID.

    Every file must hold exactly the IDs of the first (in any order); otherwise :class:`ScoreFileError` lists,
    per file, how many IDs are extra or missing, with examples. Keys and attacks come from ``trials`` when given
    (which must then cover exactly those IDs), else from the 4-column files (which must agree on the keys).
    System names are the file stems.
    """
    if not paths:
        raise ValueError("no score files")
    tables = [read_scores(path) for path in paths]
    problems = _mismatches(paths, tables)
    if problems:
        raise ScoreFileError("score files do not hold the same trials:\n  " + "\n  ".join(problems))
    ids = list(tables[0].ids)
    orders = []
    for table in tables:
        position = {file_id: i for i, file_id in enumerate(table.ids)}
        orders.append(np.fromiter((position[file_id] for file_id in ids), dtype=np.intp, count=len(ids)))
    matrix = np.column_stack([table.scores[order] for table, order in zip(tables, orders, strict=True)])
    keys: np.ndarray | None
    attacks: np.ndarray | None
    if trials is not None:
        try:
            labelled = label_scores(ScoreTable(ids, matrix[:, 0]), trials)
        except ScoreFileError as exc:
            raise ScoreFileError(f"{paths[0]}: {exc}") from None
        keys, attacks = labelled.keys, labelled.attacks
    else:
        keys, attacks = _file_labels(paths, tables, orders, ids)
    return AlignedScores([Path(p).stem for p in paths], ids, matrix, keys, attacks)


def _quality(scores: np.ndarray, keys: np.ndarray, prior: float) -> dict:
    result = evaluate(scores, keys, prior=prior)
    return {"eer_percent": 100 * result.eer, "cllr": result.cllr, "min_cllr": result.min_cllr,
            "act_dcf": result.act_dcf, "min_dcf": result.min_dcf}


@dataclass(frozen=True)
class FusionRun:
    """A fusion trained on ``train`` and applied to ``apply``; ``fused`` are the LLRs of the apply trials."""

    fusion: LinearFusion
    train: AlignedScores
    apply: AlignedScores
    fused: np.ndarray

    def fused_table(self) -> ScoreTable:
        """The fused LLRs as a score table, labelled when the apply files were."""
        keys, attacks = self.apply.keys, self.apply.attacks
        if keys is None:
            return ScoreTable(list(self.apply.ids), self.fused)
        return ScoreTable(list(self.apply.ids), self.fused, None if attacks is None else list(attacks), list(keys))

    def write(self, output: PathLike, model_out: PathLike | None = None) -> Path:
        """Write the fused LLRs to the score file ``output`` (4 columns when labelled) and the fusion model as JSON
        to ``model_out`` (default :func:`fusion_model_path` of ``output``); both atomically. Returns the model's
        path."""
        fused = self.fused_table()
        write_scores(output, fused.ids, fused.scores, fused.attacks, fused.keys)
        model_path = fusion_model_path(output) if model_out is None else Path(model_out)
        self.fusion.save(model_path)
        return model_path

    def _sets(self) -> dict[str, tuple[AlignedScores, np.ndarray]]:
        train_llr = self.fusion.transform(self.train.matrix)
        return {"train": (self.train, train_llr), "apply": (self.apply, self.fused)}

    def summary(self) -> dict:
        """The model, and for each labelled set the fused and the input systems' EER, Cllr, min Cllr and DCFs."""
        summary: dict = {"model": self.fusion.to_dict()}
        for label, (aligned, llr) in self._sets().items():
            entry: dict = {"n_trials": len(aligned.ids), "labelled": aligned.keys is not None}
            if aligned.keys is not None:
                prior = self.fusion.prior
                entry["fused"] = _quality(llr, aligned.keys, prior)
                entry["systems"] = {name: _quality(aligned.matrix[:, i], aligned.keys, prior)
                                    for i, name in enumerate(aligned.names)}
            summary[label] = entry
        return summary

    def to_text(self) -> str:
        """The fused LLR formula, then one line per set and system (the fused or calibrated output first)."""
        terms = " ".join(f"{w:+.6g}·[{name}]" for w, name in zip(self.fusion.coef_, self.fusion.system_names_,
                                                                   strict=True))
        lines = [f"LLR = {terms} {self.fusion.intercept_:+.6g}   "
                 f"(natural log; trained at P(bona fide) = {self.fusion.prior:g})"]
        summary = self.summary()
        output = "fused" if len(self.fusion.coef_) > 1 else "calibrated"
        rows = []
        for label in ("train", "apply"):
            entry = summary[label]
            if not entry["labelled"]:
                rows.append((label, output, None))
                continue
            rows.append((label, output, entry["fused"]))
            rows += [(label, name, quality) for name, quality in entry["systems"].items()]
        width = max(len(name) for _, name, _ in rows)
        lines.append(f"{'set':<6} {'system':<{width}} {'EER %':>9} {'Cllr':>8} {'min Cllr':>8}")
        for label, name, quality in rows:
            if quality is None:
                lines.append(f"{label:<6} {name:<{width}} (no keys: {summary[label]['n_trials']:,} trials)")
            else:
                lines.append(f"{label:<6} {name:<{width}} {quality['eer_percent']:9.4f} {quality['cllr']:8.4f} "
                             f"{quality['min_cllr']:8.4f}")
        lines.append("Cllr of an input system reads its raw scores as LLRs; the gap to min Cllr is what "
                     "calibration removes.")
        return "\n".join(lines)


def fusion_model_path(output: PathLike) -> Path:
    """Where :meth:`FusionRun.write` saves the model by default: ``output`` with its suffix replaced by
    ``.fusion.json`` (``fused.txt`` gives ``fused.fusion.json``)."""
    return Path(output).with_suffix(".fusion.json")


def fuse_score_files(
    train_paths: Sequence[PathLike],
    apply_paths: Sequence[PathLike],
    *,
    train_trials: Sequence[Trial] | None = None,
    prior: float = 0.5,
) -> FusionRun:
    """Train linear logistic-regression fusion on development score files and apply it to evaluation files.

    Parameters
    ----------
    train_paths, apply_paths : sequences of paths
        One score file per system, the same systems in the same order in both; within each sequence every file
        holds the same trial IDs (:func:`align_score_files`). One file each calibrates a single system.
    train_trials : sequence of Trial, optional
        The development protocol, for keys; without it the training files must have 4 columns.
    prior : float
        P(bona fide) the training is weighted to (:class:`~lfcc_gmm.fusion.LinearFusion`).
    """
    train = align_score_files(train_paths, train_trials)
    if train.keys is None:
        raise ScoreFileError(f"{train_paths[0]}: training needs keys; give a protocol or 4-column "
                             "(FILE_ID ATTACK KEY SCORE) score files")
    apply = align_score_files(apply_paths)
    fusion = LinearFusion(prior=prior).fit(train.matrix, train.keys, system_names=train.names)
    return FusionRun(fusion, train, apply, fusion.transform(apply.matrix))

"""Bootstrap confidence intervals for the EER and the primary DCF, a paired bootstrap to compare two systems, and
intervals of the ASVspoof 5 Track 2 a-DCF and min t-DCF (:func:`sasv_bootstrap_ci`).

Percentile bootstrap (Efron): the metric is recomputed on resampled trial sets and the interval is read off the
quantiles of the replicates. Trials are resampled within each class, so that every resample keeps the numbers of
bona fide and spoof trials; when the trials name their speakers, speakers are resampled instead with all their
trials (a cluster bootstrap), since trials of one speaker are not independent and an interval that ignores it is
too narrow. A speaker resample that lacks a class is drawn again.

The primary DCF is the ASVspoof 5 Track 1 min DCF (:func:`lfcc_gmm.asvspoof5.track1_min_dcf`), the min DCF at a
given P(bona fide) with unit costs (:func:`lfcc_gmm.metrics.min_dcf`, as :func:`lfcc_gmm.metrics.evaluate`
reports it) or, given the organisers' ASV scores, the ASVspoof 2019 min t-DCF
(:func:`lfcc_gmm.metrics.compute_min_tdcf`, the ASV rates held fixed). Each replicate equals the metric computed
on the resampled score arrays exactly: a resample is a count per trial, the DET curve of all resamples is a
cumulative sum over the trials in score order, and the EER, which may fall between two copies of one trial, is
located inside that trial's run of copies. Resamples are processed in blocks of matrices, so 1,000 resamples of
71,237 trials take a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .asvspoof5 import (
    ORGANISERS_ASV_RATES,
    SASV_COST_MODEL,
    TRACK1_COST_MODEL,
    AsvRates,
    DCFCostModel,
    SASVCostModel,
    a_dcf_normaliser,
    a_dcf_points,
    dcf_normaliser,
    dcf_points,
    revised_tdcf_weights,
)
from .metrics import (
    ASVSPOOF2019_COST_MODEL,
    ArrayLike,
    _check_dcf_params,
    _normalised_dcf,
    _scores,
    _tdcf_norm,
    asv_error_rates,
    bonafide_mask,
)
from .protocols import ASV_LABELS, SPOOF, Trial, trial_column

if TYPE_CHECKING:
    from .scorefiles import ASVScores

Labels = Sequence[str] | np.ndarray
# (P_miss, P_fa) arrays -> normalised cost at each point, the same shape.
DetCost = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Matrix elements per block of resamples: intermediate arrays of 2 MB stay in the CPU's caches.
_BLOCK_ELEMENTS = 250_000


@dataclass(frozen=True)
class Interval:
    """A point estimate on all trials and its percentile bootstrap interval [low, high]."""

    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class BootstrapCI:
    """Confidence intervals of one system (see :func:`bootstrap_ci`).

    Attributes
    ----------
    intervals : dict of str to Interval
        ``"eer_percent"`` and the primary DCF, ``"min_dcf"`` (ASVspoof 5) or ``"min_tdcf"`` (2019, with ASV scores).
    replicates : dict of str to np.ndarray
        The metric on each resample, same keys.
    unit : {"trial", "speaker"}
        What was resampled.
    """

    intervals: dict[str, Interval]
    confidence: float
    n_resamples: int
    unit: str
    seed: int | None
    replicates: dict[str, np.ndarray] = field(compare=False, repr=False)

    def to_dict(self) -> dict:
        return {"confidence": self.confidence, "n_resamples": self.n_resamples, "resampled": self.unit,
                "seed": self.seed, **{name: i.to_dict() for name, i in self.intervals.items()}}

    def describe(self, why: str = "") -> str:
        """How the intervals were drawn, in words; ``why`` (what decided the resampling unit) in parentheses."""
        return _describe(self.confidence, self.n_resamples, self.unit, self.seed, why)

    def lines(self) -> list[str]:
        """One line per metric: ``name  estimate  [low, high]``."""
        return [f"{METRIC_LABELS[name]:<10}{format_metric(name, i.estimate):>10}   [{format_metric(name, i.low)}, "
                f"{format_metric(name, i.high)}]" for name, i in self.intervals.items()]

    def to_text(self, why: str = "") -> str:
        """The intervals under a line saying how they were drawn."""
        return "\n".join([f"  {self.describe(why)}:", *(f"    {line}" for line in self.lines())])


@dataclass(frozen=True)
class PairedBootstrap:
    """Differences between two systems on the same trials, system A minus system B (see :func:`paired_bootstrap`).

    ``differences`` hold, per metric, the difference on all trials and its interval; a difference is significant at
    the chosen confidence when its interval excludes 0.
    """

    differences: dict[str, Interval]
    confidence: float
    n_resamples: int
    unit: str
    seed: int | None
    replicates: dict[str, np.ndarray] = field(compare=False, repr=False)

    @property
    def significant(self) -> dict[str, bool]:
        return {name: interval.excludes_zero for name, interval in self.differences.items()}

    def to_dict(self) -> dict:
        return {"confidence": self.confidence, "n_resamples": self.n_resamples, "resampled": self.unit,
                "seed": self.seed,
                **{name: {**i.to_dict(), "significant": i.excludes_zero} for name, i in self.differences.items()}}

    def lines(self) -> list[str]:
        """One line per metric: the difference A − B, its interval, and whether it is significant."""
        return [f"{METRIC_LABELS[name]:<10}{format_metric(name, i.estimate, signed=True):>10}   "
                f"[{format_metric(name, i.low, signed=True)}, {format_metric(name, i.high, signed=True)}]   "
                f"{'significant' if i.excludes_zero else 'not significant'}" for name, i in self.differences.items()]

    def to_text(self, name_a: str = "A", name_b: str = "B") -> str:
        """The differences under a line naming the two systems."""
        return "\n".join([f"  {name_a} − {name_b}:", *(f"    {line}" for line in self.lines())])


def sasv_bootstrap_ci(
    sasv_scores: ArrayLike,
    labels: Labels,
    speakers: Labels | None = None,
    *,
    cm_scores: ArrayLike | None = None,
    asv: AsvRates = ORGANISERS_ASV_RATES,
    cost_model: SASVCostModel = SASV_COST_MODEL,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int | None = 0,
) -> BootstrapCI:
    """Percentile bootstrap intervals of the ASVspoof 5 Track 2 a-DCF and, given the CM scores, the revised min t-DCF.

    Trials are resampled within each class (target, non-target, spoof), or target speakers with all their trials.
    Each replicate equals :func:`lfcc_gmm.asvspoof5.a_dcf` (and :func:`~lfcc_gmm.asvspoof5.min_tdcf_revised`) of
    the resampled trials. The t-EER has no interval: its concurrent point is a search over pairs of thresholds,
    not a sum over the trials that resamples share.

    Parameters
    ----------
    sasv_scores : array-like, shape (n,)
    labels : sequence of {"target", "nontarget", "spoof"}
    speakers : sequence of str, optional
        The target speaker of each trial (the SASV file's ``spk``), to resample speakers as clusters.
    cm_scores : array-like, shape (n,), optional
    asv, cost_model
        As :func:`lfcc_gmm.asvspoof5.evaluate_sasv`.
    confidence, n_resamples, seed
        As :func:`bootstrap_ci`.
    """
    _check_settings(confidence, n_resamples)
    sasv = _scores(sasv_scores, "SASV scores")
    column = np.asarray(labels)
    if column.shape != sasv.shape:
        raise ValueError(f"{sasv.size} scores but {column.size} labels")
    classes = _sasv_classes(column)
    missing = [label for code, label in enumerate(ASV_LABELS) if not np.any(classes == code)]
    if missing:
        raise ValueError(f"no {' or '.join(missing)} trials among {sasv.size}: the SASV metrics need all three")
    speaker_column = _speaker_column(speakers, sasv.size)
    # The package's stable sort of [target, non-target, spoof]: among equal scores, target first, spoof last.
    by_score = np.lexsort((classes, sasv))
    cm = None
    if cm_scores is not None:
        cm_values = _scores(cm_scores, "CM scores")
        if cm_values.shape != sasv.shape:
            raise ValueError(f"{sasv.size} SASV scores but {cm_values.size} CM scores")
        cm = _system(cm_values, classes != ASV_LABELS.index(SPOOF))
        c0, c1, c2 = revised_tdcf_weights(asv, cost_model)

        def tdcf(frr: np.ndarray, far: np.ndarray) -> np.ndarray:
            return (c0 + c1 * frr + c2 * far) / (c0 + min(c1, c2))

    def metrics(counts: np.ndarray, column_of: np.ndarray) -> dict[str, np.ndarray]:
        """The metrics of resamples ``counts`` (r, columns); ``column_of`` gives each trial's column."""
        found = {"a_dcf": _a_dcf_of_resamples(np.take(counts, column_of[by_score], axis=1), classes[by_score],
                                              cost_model)}
        if cm is not None:
            found["min_tdcf"] = _eer_and_cost(cm._replace(order=column_of[cm.order]), counts, tdcf)[1]
        return found

    estimates = metrics(np.ones((1, sasv.size), dtype=np.int64), np.arange(sasv.size))
    layout, blocks = _blocks(classes, speaker_column, n_resamples, np.random.default_rng(seed))
    column_of = np.empty_like(layout)
    column_of[layout] = np.arange(layout.size)
    parts = [metrics(counts, column_of) for counts in blocks]
    replicates = {name: np.concatenate([part[name] for part in parts]) for name in estimates}
    return BootstrapCI(
        intervals={name: _interval(float(estimates[name][0]), replicates[name], confidence) for name in estimates},
        confidence=confidence, n_resamples=n_resamples, unit="trial" if speakers is None else "speaker", seed=seed,
        replicates=replicates,
    )


def _a_dcf_of_resamples(seen: np.ndarray, classes: np.ndarray, cost_model: SASVCostModel) -> np.ndarray:
    """Minimum normalised a-DCF of each resample; ``seen`` (r, n) are the copies of each trial in score order.

    Along the copies of one trial the cost only rises (a target) or only falls (a non-target or a spoof), so its
    minimum over the resample's curve is after some trial's last copy or before any trial: those points suffice.
    """
    target, nontarget, spoof = (np.cumsum(seen * (classes == code), axis=1) for code in range(len(ASV_LABELS)))
    costs = a_dcf_points(target, nontarget, spoof, target[:, -1:], nontarget[:, -1:], spoof[:, -1:], cost_model)
    nothing_rejected = a_dcf_points(np.zeros(1), np.zeros(1), np.zeros(1), 1, 1, 1, cost_model)
    return np.minimum(costs.min(axis=1), nothing_rejected) / a_dcf_normaliser(cost_model)


#: How each metric of the intervals is named in text.
METRIC_LABELS = {"eer_percent": "EER %", "min_dcf": "min DCF", "min_tdcf": "min t-DCF", "a_dcf": "a-DCF"}


def format_metric(name: str, value: float, signed: bool = False) -> str:
    """A metric of the intervals as text: EERs (%) to 4 decimals, DCFs to 5, with a sign for differences."""
    return f"{value:{'+' if signed else ''}.{4 if name == 'eer_percent' else 5}f}"


def _describe(confidence: float, n_resamples: int, unit: str, seed: int | None, why: str = "") -> str:
    return (f"{100 * confidence:g} % percentile bootstrap intervals, {n_resamples:,} resamples of {unit}s"
            f"{'' if seed is None else f', seed {seed}'}{f' ({why})' if why else ''}")


def cluster_speakers(trials: Sequence[Trial] | None, ids: Sequence[str]) -> tuple[list[str] | None, str]:
    """The speaker of each trial of ``ids`` (file IDs, e.g. a score file's), to resample speakers as clusters, when
    the ``trials`` (a protocol) name two or more; else None, and trials are resampled. Also says why, in words.
    """
    if trials is None:
        return None, "no protocol names the speakers"
    return speaker_clusters(trial_column(trials, "speaker", ids), "the protocol")


def speaker_clusters(speakers: Sequence[str] | None, source: str,
                     noun: str = "speakers") -> tuple[list[str] | None, str]:
    """``speakers`` when they are two or more (resample them as clusters), else None; and why, in words, naming
    the ``source`` of the speakers."""
    if speakers is None:
        return None, f"{source} names no {noun}"
    count = len(set(speakers))
    if count < 2:
        return None, f"{source} names one {noun.removesuffix('s')}"
    return list(speakers), f"{source} names {count:,} {noun}"


class _System(NamedTuple):
    """One system's trials in the official DET order: scores ascending, bona fide first among equal scores."""

    order: np.ndarray
    is_spoof: np.ndarray  # in that order
    # Where a run of spoof trials ends: the cost falls along a run of spoofs and rises along one of bona fide
    # trials, so its minimum is at one of these points or at the start (nothing rejected).
    run_ends: np.ndarray


def _system(scores: np.ndarray, bona: np.ndarray) -> _System:
    order = np.lexsort((~bona, scores))
    is_spoof = ~bona[order]
    return _System(order, is_spoof, np.flatnonzero(is_spoof & np.append(~is_spoof[1:], True)))


def _eer_and_cost(system: _System, counts: np.ndarray, cost: DetCost) -> tuple[np.ndarray, np.ndarray]:
    """EER (fraction) and minimum normalised cost of each resample; ``counts`` (r, n) are copies per trial.

    The official DET curve has a point after every copy of every trial. Counts after each trial's last copy
    are two cumulative sums; the cost is evaluated where runs of spoof trials end (copies of a trial that is not
    drawn change nothing, so the minimum is among these), and the EER point is found by bisection, then inside
    the run of copies of one trial.
    """
    seen = np.take(counts, system.order, axis=1)
    spoof_seen = np.cumsum(seen * system.is_spoof, axis=1)
    np.cumsum(seen, axis=1, out=seen)
    r, n = seen.shape
    rows = np.arange(r)
    n_s = spoof_seen[:, -1]
    n_b = seen[:, -1] - n_s

    def rates_after(trial: np.ndarray, extra_bona: np.ndarray | int = 0,
                    extra_spoof: np.ndarray | int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(FRR, FAR) once the trials up to ``trial`` (−1: none) and the extra copies are rejected."""
        before = trial >= 0
        at = np.maximum(trial, 0)
        s = np.where(before, spoof_seen[rows, at], 0) + extra_spoof
        b = np.where(before, seen[rows, at], 0) - np.where(before, spoof_seen[rows, at], 0) + extra_bona
        return b / n_b, (n_s - s) / n_s

    ends = np.take(spoof_seen, system.run_ends, axis=1)
    bona_at_ends = np.take(seen, system.run_ends, axis=1) - ends
    min_cost = np.minimum(np.min(cost(bona_at_ends / n_b[:, None], (n_s[:, None] - ends) / n_s[:, None]), axis=1),
                          cost(np.zeros(1), np.ones(1)))

    # FRR − FAR never falls from one trial to the next: bisect for the first trial after which it is ≥ 0 (the
    # last trial, with FRR 1 and FAR 0, is one; before any trial it is −1).
    below, above = np.full(r, -1), np.full(r, n - 1)
    while np.any(above - below > 1):
        middle = (below + above) // 2
        frr, far = rates_after(middle)
        reached = frr - far >= 0
        above, below = np.where(reached, middle, above), np.where(reached, below, middle)
    trial = above
    copies = seen[rows, trial] - np.where(trial > 0, seen[rows, trial - 1], 0)
    is_spoof = system.is_spoof[trial]

    # Inside that trial's run of copies, t copies rejected: find the first t with FRR − FAR ≥ 0, then compare it
    # with t − 1 as np.argmin(|FRR − FAR|) does (the earlier point wins a tie).
    def rates(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rates_after(trial - 1, np.where(is_spoof, 0, t), np.where(is_spoof, t, 0))

    # Each copy moves FRR − FAR by 1/n_b (bona fide) or 1/n_s (spoof): solve for the first t. Rounding can only
    # push the solution one too far where FRR = FAR exactly at t; that point then wins the comparison below
    # either way, as it would against t − 1. Elsewhere the solution is at least 1/(n_b·n_s) from an integer.
    frr0, far0 = rates(np.zeros(r, dtype=np.int64))
    t = np.clip(np.ceil((far0 - frr0) * np.where(is_spoof, n_s, n_b)), 1, copies).astype(np.int64)
    frr_t, far_t = rates(t)
    frr_p, far_p = rates(t - 1)
    take_previous = np.abs(frr_p - far_p) <= np.abs(frr_t - far_t)
    eer = np.where(take_previous, (frr_p + far_p) / 2, (frr_t + far_t) / 2)
    return eer, min_cost


def _blocks(classes: np.ndarray, speakers: np.ndarray | None, n_resamples: int,
            rng: np.random.Generator) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """Blocks of resamples as copies per trial, shape (r, n_trials), drawn from ``rng`` block after block.

    ``classes`` numbers each trial's class from 0 (bona fide, spoof; or target, non-target, spoof). Returns the
    column layout (the trial of each column: the trials class by class for a trial bootstrap, which saves
    scattering the draws) and the blocks.
    """
    if speakers is None:
        groups = [np.flatnonzero(classes == c) for c in range(classes.max() + 1)]
        return np.concatenate(groups), _trial_blocks([g.size for g in groups], n_resamples, rng)
    return np.arange(classes.size), _speaker_blocks(classes, speakers, n_resamples, rng)


def _block_rows(n_trials: int, n_resamples: int) -> Iterator[int]:
    block = max(1, _BLOCK_ELEMENTS // n_trials)
    for start in range(0, n_resamples, block):
        yield min(block, n_resamples - start)


def _trial_blocks(sizes: list[int], n_resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    for rows in _block_rows(sum(sizes), n_resamples):
        yield np.concatenate([_multinomial_rows(rng, rows, size) for size in sizes], axis=1)


def _speaker_blocks(classes: np.ndarray, speakers: np.ndarray, n_resamples: int,
                    rng: np.random.Generator) -> Iterator[np.ndarray]:
    names, code = np.unique(speakers, return_inverse=True)
    # Which speakers have trials of each class: a resample is drawn again until it has every class.
    has = [np.bincount(code[classes == c], minlength=names.size) > 0 for c in range(classes.max() + 1)]
    for rows in _block_rows(classes.size, n_resamples):
        copies = _multinomial_rows(rng, rows, names.size)
        complete = np.logical_and.reduce([copies[:, mine].any(axis=1) for mine in has])
        for r in np.flatnonzero(~complete):
            while not all(copies[r, mine].any() for mine in has):
                copies[r] = _multinomial_rows(rng, 1, names.size)[0]
        yield np.take(copies, code, axis=1)


def _multinomial_rows(rng: np.random.Generator, rows: int, size: int) -> np.ndarray:
    """(rows, size) counts of ``size`` draws with replacement from ``size`` items, one row per resample."""
    draws = rng.integers(0, size, size=(rows, size), dtype=np.int32)
    draws += size * np.arange(rows, dtype=np.int32)[:, None]
    return np.bincount(draws.ravel(), minlength=rows * size).reshape(rows, size)


def resample_counts(
    keys: Labels, speakers: Labels | None = None, *, n_resamples: int = 1000, seed: int | None = 0
) -> np.ndarray:
    """The resamples :func:`bootstrap_ci`, :func:`paired_bootstrap` (``keys``: bona fide or spoof) and
    :func:`sasv_bootstrap_ci` (``keys``: the ASV labels) draw with these arguments, as the number of copies of each
    trial, shape (n_resamples, n_trials): to apply another metric to the same resamples."""
    column = np.asarray(keys)
    # Bona fide is class 0 and spoof 1; the ASV labels are classes 0 to 2.
    classes = (_sasv_classes(column) if np.isin(column, ASV_LABELS[:2]).any()
               else (~bonafide_mask(column)).astype(np.intp))
    speaker_column = None if speakers is None else np.asarray(speakers)
    layout, blocks = _blocks(classes, speaker_column, n_resamples, np.random.default_rng(seed))
    counts = np.empty((n_resamples, classes.size), dtype=np.int64)
    counts[:, layout] = np.concatenate(list(blocks))
    return counts


def _sasv_classes(labels: np.ndarray) -> np.ndarray:
    """0 for target, 1 for non-target, 2 for spoof (the order of the package's sort among equal scores)."""
    classes = np.full(labels.shape, -1, dtype=np.intp)
    for code, label in enumerate(ASV_LABELS):
        classes[labels == label] = code
    unknown = np.flatnonzero(classes < 0)
    if unknown.size:
        raise ValueError(f"label {str(labels[unknown[0]])!r} at trial {unknown[0]} is not one of "
                         f"{', '.join(ASV_LABELS)}")
    return classes


def _cost_function(asv: ASVScores | None, cost_model: DCFCostModel, prior: float | None) -> tuple[str, DetCost]:
    if asv is not None:
        if prior is not None:
            raise ValueError("give the ASV scores (min t-DCF) or a prior (min DCF), not both")
        rates = asv_error_rates(asv.target, asv.nontarget, asv.spoof)
        return "min_tdcf", lambda frr, far: _tdcf_norm(frr, far, rates, ASVSPOOF2019_COST_MODEL)
    if prior is not None:
        _check_dcf_params(prior, 1.0, 1.0)
        return "min_dcf", lambda frr, far: np.asarray(_normalised_dcf(frr, far, prior, 1.0, 1.0))
    norm = dcf_normaliser(cost_model)
    return "min_dcf", lambda frr, far: dcf_points(frr, far, cost_model) / norm


def _prepare(scores: ArrayLike, keys: Labels, speakers: Labels | None) -> tuple[np.ndarray, np.ndarray,
                                                                               np.ndarray | None]:
    values = _scores(scores, "scores")
    keys = np.asarray(keys)
    if keys.shape != values.shape:
        raise ValueError(f"{values.size} scores but {keys.size} keys")
    bona = bonafide_mask(keys)
    if not bona.any() or bona.all():
        raise ValueError(f"no {'bona fide' if not bona.any() else 'spoof'} trials among {values.size}: "
                         "each class needs at least one trial")
    return values, bona, _speaker_column(speakers, values.size)


def _speaker_column(speakers: Labels | None, n: int) -> np.ndarray | None:
    if speakers is None:
        return None
    column = np.asarray(speakers)
    if column.shape != (n,):
        raise ValueError(f"{n} scores but {column.size} speakers")
    if np.unique(column).size < 2:
        raise ValueError("a speaker bootstrap needs at least two speakers")
    return column


def _check_settings(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")


def _replicates(systems: Sequence[_System], bona: np.ndarray, speakers: np.ndarray | None, n_resamples: int,
                seed: int | None, cost: DetCost) -> list[tuple[np.ndarray, np.ndarray]]:
    """(EER %, DCF) of every resample for each system; all systems see the same resamples."""
    layout, blocks = _blocks((~bona).astype(np.intp), speakers, n_resamples, np.random.default_rng(seed))
    column = np.empty_like(layout)
    column[layout] = np.arange(layout.size)
    # Each system reads the block's columns in its own score order.
    in_layout = [system._replace(order=column[system.order]) for system in systems]
    parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in systems]
    for counts in blocks:
        for part, system in zip(parts, in_layout, strict=True):
            part.append(_eer_and_cost(system, counts, cost))
    return [(100 * np.concatenate([p[0] for p in part]), np.concatenate([p[1] for p in part])) for part in parts]


def _interval(estimate: float, replicates: np.ndarray, confidence: float) -> Interval:
    low, high = np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(float(estimate), float(low), float(high))


class _Run(NamedTuple):
    dcf_name: str
    unit: str
    estimates: list[tuple[float, float]]  # (EER %, DCF) of each system on all trials
    replicates: list[tuple[np.ndarray, np.ndarray]]  # the same on every resample


def _run(systems: Sequence[ArrayLike], keys: Labels, speakers: Labels | None, asv: ASVScores | None,
         cost_model: DCFCostModel, prior: float | None, confidence: float, n_resamples: int,
         seed: int | None) -> _Run:
    _check_settings(confidence, n_resamples)
    prepared = [_prepare(scores, keys, speakers) for scores in systems]
    _, bona, speaker_column = prepared[0]
    name, cost = _cost_function(asv, cost_model, prior)
    ordered = [_system(values, bona) for values, _, _ in prepared]
    everything = np.ones((1, bona.size), dtype=np.int64)
    estimates = []
    for system in ordered:
        eer, dcf = _eer_and_cost(system, everything, cost)
        estimates.append((float(100 * eer[0]), float(dcf[0])))
    replicates = _replicates(ordered, bona, speaker_column, n_resamples, seed, cost)
    return _Run(name, "trial" if speakers is None else "speaker", estimates, replicates)


def bootstrap_ci(
    scores: ArrayLike,
    keys: Labels,
    speakers: Labels | None = None,
    *,
    asv: ASVScores | None = None,
    cost_model: DCFCostModel = TRACK1_COST_MODEL,
    prior: float | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int | None = 0,
) -> BootstrapCI:
    """Percentile bootstrap intervals of the EER (%) and the primary DCF of one system.

    Parameters
    ----------
    scores : array-like, shape (n,)
        CM scores, higher = more bona fide.
    keys : sequence of {"bonafide", "spoof"}
    speakers : sequence of str, optional
        The speaker of each trial (the protocol's SPEAKER column); speakers are then resampled with all their
        trials. Without it, trials are resampled within each class.
    asv : ASVScores, optional
        The organisers' ASV scores: the DCF is then the ASVspoof 2019 min t-DCF.
    cost_model : DCFCostModel
        Without ``asv`` or ``prior``, the DCF is the ASVspoof 5 Track 1 min DCF of this cost model.
    prior : float, optional
        The DCF is then the min DCF at P(bona fide) = ``prior`` with unit costs, the ``min_dcf`` of
        :func:`lfcc_gmm.metrics.evaluate`.
    confidence : float
        Coverage of each interval, e.g. 0.95.
    n_resamples : int
    seed : int or None
        Seed of the resampling; the same seed gives the same intervals.
    """
    run = _run([scores], keys, speakers, asv, cost_model, prior, confidence, n_resamples, seed)
    (eer, dcf), ((eer_replicates, dcf_replicates),) = run.estimates[0], run.replicates
    return BootstrapCI(
        intervals={"eer_percent": _interval(eer, eer_replicates, confidence),
                   run.dcf_name: _interval(dcf, dcf_replicates, confidence)},
        confidence=confidence, n_resamples=n_resamples, unit=run.unit, seed=seed,
        replicates={"eer_percent": eer_replicates, run.dcf_name: dcf_replicates},
    )


def paired_bootstrap(
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    keys: Labels,
    speakers: Labels | None = None,
    *,
    asv: ASVScores | None = None,
    cost_model: DCFCostModel = TRACK1_COST_MODEL,
    prior: float | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int | None = 0,
) -> PairedBootstrap:
    """Paired bootstrap of the difference A − B in EER (%) and primary DCF between two systems on the same trials.

    Both systems are scored on the same resamples, so what the trials have in common cancels and the interval of
    the difference is narrower than two independent bootstraps would give. The difference is significant when its
    interval excludes 0. Parameters as :func:`bootstrap_ci`; ``scores_a`` and ``scores_b`` are aligned trial by
    trial with ``keys`` (and ``speakers``).
    """
    run = _run([scores_a, scores_b], keys, speakers, asv, cost_model, prior, confidence, n_resamples, seed)
    (eer_a, dcf_a), (eer_b, dcf_b) = run.estimates
    (eer_rep_a, dcf_rep_a), (eer_rep_b, dcf_rep_b) = run.replicates
    eer_difference, dcf_difference = eer_rep_a - eer_rep_b, dcf_rep_a - dcf_rep_b
    return PairedBootstrap(
        differences={"eer_percent": _interval(eer_a - eer_b, eer_difference, confidence),
                     run.dcf_name: _interval(dcf_a - dcf_b, dcf_difference, confidence)},
        confidence=confidence, n_resamples=n_resamples, unit=run.unit, seed=seed,
        replicates={"eer_percent": eer_difference, run.dcf_name: dcf_difference},
    )

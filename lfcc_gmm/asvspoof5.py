"""ASVspoof 5 metrics, exact to the organisers' evaluation package (SPEC §9).

- Track 1, a stand-alone countermeasure (CM): min DCF (primary), actual DCF, Cllr in bits and EER, pooled and per
  attack, codec and codec quality (:func:`evaluate_track1`).
- Track 2, spoofing-robust speaker verification (SASV): a-DCF of the SASV score (primary), the revised min t-DCF
  of the CM score with the organisers' pooled ASV error rates or rates from given ASV scores, and the t-EER of the
  CM and ASV scores together (:func:`evaluate_sasv`).

The judge is ``asvspoof-challenge/asvspoof5`` at fe23d30, ``evaluation-package/``. Every curve is the package's: a
stable sort of the concatenated classes (bona fide before spoof, target before non-target before spoof among equal
scores) with one point per trial plus one below the lowest score, and every formula is evaluated in the package's
order of operations, so the numbers agree to the last bit in practice. Where this module differs, it does so on
purpose:

- Cllr stays finite where the package's ``log1p(exp(s))`` overflows (|s| ≳ 710) and equals it elsewhere.
- The t-EER is the package's exhaustive ``compute_teer``, found in O(n log n) instead of by its O(n²) loop; the
  package's own evaluation calls ``compute_teer_accelerated``, a coarse-to-fine search that equals it on the
  reference sets but is not guaranteed to.
- ASV error rates computed from given ASV scores use the spoof false-acceptance rate, as the pooled defaults do;
  the package's ``calculate_aDCF_tdcf_tEER`` passes the spoof *miss* rate (``obtain_asv_error_rates(...)[2]``)
  in that case, which its own pooled defaults and the t-DCF definition contradict.
- The package refuses CM scores with fewer than three distinct values (``compute_tDCF``); the revised t-DCF is
  defined for them, and is computed.

Scores: higher = more bona fide (CM), more likely the claimed speaker (ASV), or both (SASV). The actual DCF and
Cllr read CM scores as natural-log likelihood ratios; the other metrics depend only on the order of the scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

from .metrics import (
    ArrayLike,
    _Curve,
    _curve,
    _eer,
    _merge,
    _official_thresholds,
    _scores,
    _softplus,
    bonafide_mask,
    check_tandem_costs,
    cllr_from_costs,
    compute_eer,
    error_rates_at,
)
from .protocols import ASV_LABELS, SPOOF

Labels = Sequence[str] | np.ndarray


# ---------------------------------------------------------------------------------------------------- Track 1


@dataclass(frozen=True)
class DCFCostModel:
    """Track 1 detection cost: the prior of a spoof, the cost of rejecting bona fide speech and of accepting a spoof."""

    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.p_spoof < 1:
            raise ValueError(f"p_spoof must lie strictly between 0 and 1, got {self.p_spoof}")
        if self.c_miss <= 0 or self.c_fa <= 0:
            raise ValueError(f"DCF costs must be positive, got c_miss={self.c_miss}, c_fa={self.c_fa}")


#: The ASVspoof 5 Track 1 cost model (P_spoof 0.05, C_miss 1, C_fa 10).
TRACK1_COST_MODEL = DCFCostModel()


def dcf_points(frr: np.ndarray, far: np.ndarray, cost_model: DCFCostModel = TRACK1_COST_MODEL) -> np.ndarray:
    """Unnormalised DCF, C_miss·(1 − P_spoof)·P_miss + C_fa·P_spoof·P_fa, at each point, as ``compute_mindcf``.

    Works on arrays of any shape (one row per bootstrap resample, say); divide the minimum by
    :func:`dcf_normaliser`.
    """
    p_target = 1 - cost_model.p_spoof
    return cost_model.c_miss * frr * p_target + cost_model.c_fa * far * (1 - p_target)


def dcf_normaliser(cost_model: DCFCostModel = TRACK1_COST_MODEL) -> float:
    """The DCF of the better trivial system (accept all or reject all), by which min DCF is divided."""
    p_target = 1 - cost_model.p_spoof
    return min(cost_model.c_miss * p_target, cost_model.c_fa * (1 - p_target))


def _min_dcf(curve: _Curve, cost_model: DCFCostModel) -> float:
    # Dividing the minimum equals the minimum of the divided curve: rounding is monotone.
    return float(np.min(dcf_points(curve.frr, curve.far, cost_model)) / dcf_normaliser(cost_model))


def track1_min_dcf(
    bonafide: ArrayLike, spoof: ArrayLike, cost_model: DCFCostModel = TRACK1_COST_MODEL
) -> float:
    """Minimum normalised DCF over the official DET thresholds (``compute_mindcf``); ≤ 1."""
    return _min_dcf(_curve(bonafide, spoof), cost_model)


def track1_act_dcf(
    bonafide_llr: ArrayLike, spoof_llr: ArrayLike, cost_model: DCFCostModel = TRACK1_COST_MODEL
) -> float:
    """Normalised DCF of Bayes decisions on LLRs (``compute_actDCF``).

    Threshold −ln β with β = C_miss·(1 − P_spoof) / (C_fa·P_spoof); a bona fide trial below it is a miss, a spoof
    at or above it a false alarm.
    """
    bona, spoof = _scores(bonafide_llr, "bona fide LLRs"), _scores(spoof_llr, "spoof LLRs")
    return _act_dcf(*error_rates_at(bona, spoof, _bayes_threshold(cost_model)), cost_model)


def _bayes_threshold(cost_model: DCFCostModel) -> float:
    c = cost_model
    return float(-np.log(c.c_miss * (1 - c.p_spoof) / (c.c_fa * c.p_spoof)))


def _act_dcf(p_miss: float, p_fa: float, cost_model: DCFCostModel) -> float:
    c = cost_model
    return float((c.c_miss * (1 - c.p_spoof) * p_miss + c.c_fa * c.p_spoof * p_fa)
                 / min(c.c_fa * c.p_spoof, c.c_miss * (1 - c.p_spoof)))


class _Bonafide(NamedTuple):
    """What the Track 1 metrics need of the bona fide trials, computed once for all the attacks they face."""

    scores: np.ndarray
    sorted: np.ndarray
    log_loss: float  # mean log(1 + e^−s), the bona fide half of Cllr (nats)
    p_miss: float  # at the Bayes threshold of the actual DCF


def _bonafide(scores: np.ndarray, cost_model: DCFCostModel) -> _Bonafide:
    p_miss = np.count_nonzero(scores < _bayes_threshold(cost_model)) / scores.size
    return _Bonafide(scores, np.sort(scores), float(np.mean(_softplus(-scores))), p_miss)


@dataclass(frozen=True)
class Track1Result:
    """Track 1 metrics of one set of trials (``calculate_minDCF_EER_CLLR_actDCF``)."""

    min_dcf: float
    act_dcf: float
    cllr_bits: float
    eer_percent: float
    eer_threshold: float
    n_bonafide: int
    n_spoof: int

    def to_dict(self) -> dict:
        return asdict(self)


def _track1(bonafide: _Bonafide, spoof: np.ndarray, cost_model: DCFCostModel) -> Track1Result:
    curve = _merge(bonafide.sorted, np.sort(spoof))
    eer, threshold = _eer(curve)
    p_fa = np.count_nonzero(spoof >= _bayes_threshold(cost_model)) / spoof.size
    return Track1Result(
        min_dcf=_min_dcf(curve, cost_model),
        act_dcf=_act_dcf(bonafide.p_miss, p_fa, cost_model),
        cllr_bits=cllr_from_costs(bonafide.log_loss, np.mean(_softplus(spoof))),
        eer_percent=eer * 100,
        eer_threshold=threshold,
        n_bonafide=int(bonafide.scores.size),
        n_spoof=int(spoof.size),
    )


@dataclass(frozen=True)
class Track1Evaluation:
    """Track 1 results, pooled and broken down (see :func:`evaluate_track1`).

    A breakdown is empty when the trials do not carry that label; a codec (or codec quality) whose trials are all
    of one class has no entry, since neither DCF nor EER is defined there.
    """

    pooled: Track1Result
    per_attack: dict[str, Track1Result] = field(default_factory=dict)
    per_codec: dict[str, Track1Result] = field(default_factory=dict)
    per_codec_quality: dict[str, dict[str, Track1Result]] = field(default_factory=dict)
    cost_model: DCFCostModel = TRACK1_COST_MODEL

    @property
    def min_dcf(self) -> float:
        return self.pooled.min_dcf

    @property
    def act_dcf(self) -> float:
        return self.pooled.act_dcf

    @property
    def cllr_bits(self) -> float:
        return self.pooled.cllr_bits

    @property
    def eer_percent(self) -> float:
        return self.pooled.eer_percent

    def to_dict(self) -> dict:
        """JSON-ready: the pooled metrics at the top level, then ``per_attack``, ``per_codec``,
        ``per_codec_quality`` (codec → quality → metrics) and the ``cost_model``."""
        return {
            **self.pooled.to_dict(),
            "per_attack": {name: r.to_dict() for name, r in self.per_attack.items()},
            "per_codec": {name: r.to_dict() for name, r in self.per_codec.items()},
            "per_codec_quality": {codec: {q: r.to_dict() for q, r in qualities.items()}
                                  for codec, qualities in self.per_codec_quality.items()},
            "cost_model": asdict(self.cost_model),
        }

    def to_text(self, title: str = "scores") -> str:
        """The human-readable report: pooled metrics under ``title``, then a table per breakdown."""
        p, c = self.pooled, self.cost_model
        lines = [
            f"{title}: {p.n_bonafide + p.n_spoof:,} trials ({p.n_bonafide:,} bona fide, {p.n_spoof:,} spoof)",
            f"  min DCF    {p.min_dcf:8.5f}     (primary; P_spoof {c.p_spoof:g}, C_miss {c.c_miss:g}, "
            f"C_fa {c.c_fa:g})",
            f"  act DCF    {p.act_dcf:8.5f}     (scores read as natural-log LLRs, threshold "
            f"{_bayes_threshold(c):.4f})",
            f"  Cllr       {p.cllr_bits:8.5f}     bits",
            f"  EER        {p.eer_percent:8.4f} %   (threshold {p.eer_threshold:.6g})",
        ]
        qualities = {f"{codec} {quality}": result for codec, by_quality in self.per_codec_quality.items()
                     if len(by_quality) > 1 for quality, result in by_quality.items()}
        tables = [("attack", "each attack's spoofs against all bona fide trials", self.per_attack),
                  ("codec", "the bona fide and spoof trials of each codec condition", self.per_codec),
                  ("codec quality", "within each codec, the trials of each quality", qualities)]
        for header, meaning, results in tables:
            if results:
                lines.append(f"  per {header} ({meaning}):")
                lines.extend(_track1_table(header, results))
        return "\n".join(lines)


def _track1_table(header: str, results: dict[str, Track1Result]) -> list[str]:
    width = max(len(header), *(len(name) for name in results))
    lines = [f"    {header:<{width}}  {'min DCF':>8}  {'act DCF':>8}  {'Cllr':>8}  {'EER %':>8}  "
             f"{'bona fide':>9}  {'spoof':>7}"]
    lines += [f"    {name:<{width}}  {r.min_dcf:8.5f}  {r.act_dcf:8.5f}  {r.cllr_bits:8.5f}  {r.eer_percent:8.4f}  "
              f"{r.n_bonafide:9,}  {r.n_spoof:7,}" for name, r in results.items()]
    return lines


def _labels_column(values: Labels, n: int, name: str) -> np.ndarray:
    column = np.asarray(values)
    if column.shape != (n,):
        raise ValueError(f"{n} scores but {column.size} {name}")
    return column


def _groups(column: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Each distinct label, in sorted order, with the indices of its entries (one sort of the labels, not a
    comparison of every trial with every label)."""
    if column.dtype.kind == "U" and column.dtype.itemsize <= 12:
        # Labels of up to three characters (A01, C05, 4, -) as one integer each, three 21-bit code points, the
        # first the most significant: integers sort as the strings do, several times faster.
        points = column.view(np.uint32).reshape(column.size, -1).astype(np.int64)
        key = np.zeros(column.size, dtype=np.int64)
        for j in range(3):
            key = (key << 21) | (points[:, j] if j < points.shape[1] else 0)
        _, first, codes = np.unique(key, return_index=True, return_inverse=True)
        names = column[first]
    else:
        names, codes = np.unique(column, return_inverse=True)
    # A stable sort of 16-bit codes is a radix sort, several times faster than one of 64-bit ones.
    order = np.argsort(codes.astype(np.int16) if names.size < 2**15 else codes, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(codes, minlength=names.size))[:-1])
    return [(str(name), indices) for name, indices in zip(names, members, strict=True)]


def _condition(scores: np.ndarray, bona: np.ndarray, cost_model: DCFCostModel) -> Track1Result | None:
    """The metrics of one condition's trials; None when they are all of one class."""
    bonafide, spoof = scores[bona], scores[~bona]
    if not (bonafide.size and spoof.size):
        return None
    return _track1(_bonafide(bonafide, cost_model), spoof, cost_model)


def evaluate_track1(
    scores: ArrayLike,
    keys: Labels,
    attacks: Labels | None = None,
    codecs: Labels | None = None,
    codec_qualities: Labels | None = None,
    *,
    cost_model: DCFCostModel = TRACK1_COST_MODEL,
) -> Track1Evaluation:
    """ASVspoof 5 Track 1 metrics: min DCF, actual DCF, Cllr (bits), EER (%), pooled and broken down.

    Parameters
    ----------
    scores : array-like, shape (n,)
        CM scores, higher = more bona fide; natural-log LLRs for the actual DCF and Cllr to mean something.
    keys : sequence of {"bonafide", "spoof"}
    attacks : sequence of str, optional
        Attack of each trial (``"-"`` for bona fide). Each attack's spoofs are scored against all bona fide trials.
    codecs, codec_qualities : sequences of str, optional
        Codec condition and codec quality of each trial (the ASVspoof 5 protocol's CODEC and CODEC_Q columns,
        ``Trial.metadata["codec"]`` and ``["codec_quality"]``). Each codec's bona fide trials are scored against
        its spoofs; qualities are broken down within each codec.
    cost_model : DCFCostModel
        Defaults to the ASVspoof 5 one (P_spoof 0.05, C_miss 1, C_fa 10).
    """
    values = _scores(scores, "scores")
    bona = bonafide_mask(_labels_column(keys, values.size, "keys"))
    if not bona.any() or bona.all():
        missing = "bona fide" if not bona.any() else "spoof"
        raise ValueError(f"no {missing} trials among {values.size}: each class needs at least one trial")
    attack_column, codec_column, quality_column = (
        None if column is None else _labels_column(column, values.size, name)
        for column, name in ((attacks, "attacks"), (codecs, "codecs"), (codec_qualities, "codec qualities")))
    if quality_column is not None and codec_column is None:
        raise ValueError("codec qualities are broken down within codecs: give the codecs too")

    bonafide, spoof = _bonafide(values[bona], cost_model), values[~bona]
    pooled = _track1(bonafide, spoof, cost_model)
    per_attack = {}
    if attack_column is not None:
        per_attack = {name: _track1(bonafide, spoof[members], cost_model)
                      for name, members in _groups(attack_column[~bona])}
    per_codec, per_quality = {}, {}
    for codec, members in [] if codec_column is None else _groups(codec_column):
        codec_scores, codec_bona = values[members], bona[members]
        result = _condition(codec_scores, codec_bona, cost_model)
        if result is None:
            continue
        per_codec[codec] = result
        if quality_column is not None:
            qualities = ((quality, _condition(codec_scores[chosen], codec_bona[chosen], cost_model))
                         for quality, chosen in _groups(quality_column[members]))
            per_quality[codec] = {quality: r for quality, r in qualities if r is not None}
    return Track1Evaluation(pooled, per_attack, per_codec, per_quality, cost_model)


# ---------------------------------------------------------------------------------------------------- Track 2


@dataclass(frozen=True)
class SASVCostModel:
    """Track 2 priors (target, non-target, spoof) and costs of the tandem's errors: missing a target, accepting a
    non-target, accepting a spoof. The a-DCF and the revised t-DCF share it, as in the package."""

    p_spoof: float = 0.05
    # Written as the package writes them, so the floats are identical.
    p_tar: float = (1 - 0.05) * 0.99
    p_non: float = (1 - 0.05) * 0.01
    c_miss: float = 1.0
    c_fa: float = 10.0
    c_fa_spoof: float = 10.0

    def __post_init__(self) -> None:
        check_tandem_costs("SASV", (self.p_tar, self.p_non, self.p_spoof), (self.c_miss, self.c_fa, self.c_fa_spoof))


#: The ASVspoof 5 Track 2 cost model.
SASV_COST_MODEL = SASVCostModel()


class AsvRates(NamedTuple):
    """Error rates of an ASV system at a fixed threshold: non-targets accepted, targets rejected, spoofs accepted."""

    p_fa_non: float
    p_miss: float
    p_fa_spoof: float


#: The organisers' ASV error rates pooled over all conditions, the package's default for the min t-DCF.
ORGANISERS_ASV_RATES = AsvRates(0.01881016557566423, 0.01880141010575793, 0.4607082907604729)


def _sasv_classes(values: ArrayLike, labels: Labels, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split scores into (target, nontarget, spoof) by the SASV labels; every class must be present."""
    array = _scores(values, name)
    column = _sasv_labels(labels, array.size)
    target, nontarget, spoof = (array[column == label] for label in ASV_LABELS)
    empty = [label for label, group in zip(ASV_LABELS, (target, nontarget, spoof), strict=True) if not group.size]
    if empty:
        raise ValueError(f"no {' or '.join(empty)} trials among {array.size}: the SASV metrics need target, "
                         "nontarget and spoof trials")
    return target, nontarget, spoof


def asv_rates(asv_scores: ArrayLike, labels: Labels) -> AsvRates:
    """ASV error rates at the ASV's EER threshold (target against non-target), as ``obtain_asv_error_rates``.

    Accept means score ≥ threshold. Use it on the organisers' ASV scores of the same trials to replace
    :data:`ORGANISERS_ASV_RATES` (``--asv-scores``).
    """
    target, nontarget, spoof = _sasv_classes(asv_scores, labels, "ASV scores")
    _, threshold = compute_eer(target, nontarget)
    p_miss, p_fa_non = error_rates_at(target, nontarget, threshold)
    return AsvRates(p_fa_non, p_miss, error_rates_at(target, spoof, threshold)[1])


class _ThreeClassCurve(NamedTuple):
    """Counts of each class among the k lowest scores of the package's stable sort of [target, nontarget, spoof],
    k = 0..n, and the thresholds (lowest score − ``offset``, then the sorted scores)."""

    target: np.ndarray
    nontarget: np.ndarray
    spoof: np.ndarray
    thresholds: np.ndarray


def _three_class_curve(target: np.ndarray, nontarget: np.ndarray, spoof: np.ndarray,
                       offset: float) -> _ThreeClassCurve:
    scores = np.concatenate((target, nontarget, spoof))
    order = np.argsort(scores, kind="stable")
    labels = np.repeat(np.arange(3, dtype=np.int8), (target.size, nontarget.size, spoof.size))[order]
    counts = []
    for label in range(3):
        seen = np.zeros(scores.size + 1, dtype=np.int64)
        np.cumsum(labels == label, out=seen[1:])
        counts.append(seen)
    ordered = scores[order]
    return _ThreeClassCurve(counts[0], counts[1], counts[2], np.concatenate(([ordered[0] - offset], ordered)))


def a_dcf_points(target_rejected: np.ndarray, nontarget_rejected: np.ndarray, spoof_rejected: np.ndarray,
                 n_target: np.ndarray | int, n_nontarget: np.ndarray | int, n_spoof: np.ndarray | int,
                 cost_model: SASVCostModel = SASV_COST_MODEL) -> np.ndarray:
    """Unnormalised a-DCF at operating points given by the counts of each class rejected, as
    ``compute_a_det_curve`` and ``_calculate_a_dcf`` compute it; divide the minimum by :func:`a_dcf_normaliser`.

    Works on arrays of any shape that broadcast (one row per bootstrap resample, the class sizes a column).
    """
    c = cost_model
    frr = target_rejected / n_target
    far_asv = (n_nontarget - nontarget_rejected) / n_nontarget
    far_cm = (n_spoof - spoof_rejected) / n_spoof
    return (c.c_miss * c.p_tar) * frr + (c.c_fa * c.p_non) * far_asv + (c.c_fa_spoof * c.p_spoof) * far_cm


def a_dcf_normaliser(cost_model: SASVCostModel = SASV_COST_MODEL) -> float:
    """The a-DCF of the better trivial system (accept all or reject all), by which the a-DCF is divided."""
    c = cost_model
    return min(c.c_fa * c.p_non + c.c_fa_spoof * c.p_spoof, c.c_miss * c.p_tar)


def _a_dcf(target: np.ndarray, nontarget: np.ndarray, spoof: np.ndarray, cost_model: SASVCostModel) -> float:
    curve = _three_class_curve(target, nontarget, spoof, 1e-8)
    costs = a_dcf_points(curve.target, curve.nontarget, curve.spoof, target.size, nontarget.size, spoof.size,
                         cost_model)
    return float(np.min(costs) / a_dcf_normaliser(cost_model))


def a_dcf(sasv_scores: ArrayLike, labels: Labels, cost_model: SASVCostModel = SASV_COST_MODEL) -> float:
    """Minimum normalised a-DCF (architecture-agnostic DCF, Shim et al. 2024) of one SASV score per trial.

    a-DCF(τ) = C_miss·P_tar·P_miss,tar(τ) + C_fa·P_non·P_fa,non(τ) + C_fa,spoof·P_spoof·P_fa,spoof(τ), over the
    thresholds of the package's ``compute_a_det_curve``, divided by min(C_fa·P_non + C_fa,spoof·P_spoof,
    C_miss·P_tar).

    Parameters
    ----------
    sasv_scores : array-like, shape (n,)
        Higher = more likely a bona fide trial of the claimed speaker.
    labels : sequence of {"target", "nontarget", "spoof"}
    """
    return _a_dcf(*_sasv_classes(sasv_scores, labels, "SASV scores"), cost_model)


def revised_tdcf_weights(rates: AsvRates = ORGANISERS_ASV_RATES,
                         cost_model: SASVCostModel = SASV_COST_MODEL) -> tuple[float, float, float]:
    """(C0, C1, C2) of the revised t-DCF, C0 + C1·P_miss,cm + C2·P_fa,cm, as ``compute_tDCF``; its normaliser is
    C0 + min(C1, C2).

    Raises
    ------
    ValueError
        A negative weight: ASV error rates worse than chance.
    """
    c = cost_model
    c0 = c.p_tar * c.c_miss * rates.p_miss + c.p_non * c.c_fa * rates.p_fa_non
    c1 = c.p_tar * c.c_miss - c0
    c2 = c.p_spoof * c.c_fa_spoof * rates.p_fa_spoof
    if min(c0, c1, c2) < 0:
        raise ValueError(f"negative t-DCF weight (C0={c0:.6g}, C1={c1:.6g}, C2={c2:.6g}): check the ASV error "
                         f"rates {tuple(rates)}")
    return c0, c1, c2


def _revised_tdcf_min(curve: _Curve, rates: AsvRates, cost_model: SASVCostModel) -> float:
    c0, c1, c2 = revised_tdcf_weights(rates, cost_model)
    tdcf = c0 + c1 * curve.frr + c2 * curve.far
    return float(np.min(tdcf) / (c0 + min(c1, c2)))


def min_tdcf_revised(
    cm_scores: ArrayLike,
    labels: Labels,
    asv: AsvRates = ORGANISERS_ASV_RATES,
    cost_model: SASVCostModel = SASV_COST_MODEL,
) -> float:
    """Minimum normalised revised t-DCF (Kinnunen et al. 2020) of a CM in tandem with a fixed ASV (``compute_tDCF``).

    With C0 = P_tar·C_miss·P_miss,asv + P_non·C_fa·P_fa,asv, C1 = P_tar·C_miss − C0 and
    C2 = P_spoof·C_fa,spoof·P_fa,spoof,asv: t-DCF(τ) = (C0 + C1·P_miss,cm(τ) + C2·P_fa,cm(τ)) / (C0 + min(C1, C2)),
    minimised over the CM thresholds. Target and non-target trials are the CM's bona fide class.

    Parameters
    ----------
    cm_scores : array-like, shape (n,)
    labels : sequence of {"target", "nontarget", "spoof"}
    asv : AsvRates
        The ASV's error rates: the organisers' pooled ones by default, or :func:`asv_rates` of given ASV scores.
    """
    cm = _scores(cm_scores, "CM scores")
    bona = _sasv_bonafide(labels, cm.size)
    return _revised_tdcf_min(_curve(cm[bona], cm[~bona]), asv, cost_model)


def _sasv_labels(labels: Labels, n: int) -> np.ndarray:
    column = _labels_column(labels, n, "labels")
    known = np.isin(column, ASV_LABELS)
    if not known.all():
        bad = np.flatnonzero(~known)
        raise ValueError(f"label {str(column[bad[0]])!r} at trial {bad[0]} is not one of "
                         f"{', '.join(ASV_LABELS)} ({bad.size} such trial(s))")
    return column


def _sasv_bonafide(labels: Labels, n: int) -> np.ndarray:
    bona: np.ndarray = _sasv_labels(labels, n) != SPOOF
    if not bona.any() or bona.all():
        raise ValueError(f"no {'bona fide' if not bona.any() else 'spoof'} trials among {n}")
    return bona


class TandemEER(NamedTuple):
    """The concurrent t-EER (a fraction) and the ASV and CM thresholds where it is read off."""

    t_eer: float
    asv_threshold: float
    cm_threshold: float


def t_eer(cm_scores: ArrayLike, asv_scores: ArrayLike, labels: Labels) -> TandemEER:
    """Concurrent tandem equal error rate (Kinnunen et al. 2023), exactly as the package's exhaustive
    ``compute_teer``, in O(n log n).

    For every ASV threshold with P_miss,asv < (P_fa,non,asv + P_fa,spoof,asv) / 2, the CM threshold is the DET
    point (first of equals) where the tandem miss rate P_miss,cm + (1 − P_miss,cm)·P_miss,asv is closest to the
    tandem false-alarm rate [(1 − P_miss,cm)·P_fa,non,asv + P_fa,cm·P_fa,spoof,asv] / 2. Of these pairs, the first
    that minimises |P_fa,non,asv / P_fa,spoof,asv − P_fa,cm / (1 − P_miss,cm)| is the concurrent point, and the
    t-EER is P_fa,spoof,asv·P_fa,cm there.

    For a fixed ASV threshold the tandem difference grows with the CM threshold (by at least 1/(2n²) a step, far
    above rounding for n < 10⁷), so a bisection finds the package's argmin for every ASV threshold at once.

    Parameters
    ----------
    cm_scores, asv_scores : array-like, shape (n,)
        The CM and the ASV score of each trial.
    labels : sequence of {"target", "nontarget", "spoof"}
    """
    cm = _sasv_classes(cm_scores, labels, "CM scores")
    asv = _sasv_classes(asv_scores, labels, "ASV scores")
    return _t_eer(_curve(np.concatenate(cm[:2]), cm[2]), *asv)


def _t_eer(cm: _Curve, asv_target: np.ndarray, asv_nontarget: np.ndarray, asv_spoof: np.ndarray) -> TandemEER:
    curve = _three_class_curve(asv_target, asv_nontarget, asv_spoof, 0.001)
    # The package's compute_Pmiss_Pfa_Pspoof_curves, rounding included: 1 − (count / n), not (n − count) / n.
    p_miss_asv = curve.target / asv_target.size
    p_fa_non = 1 - curve.nontarget / asv_nontarget.size
    p_fa_spoof = 1 - curve.spoof / asv_spoof.size
    p_miss_cm, p_fa_cm = cm.frr, cm.far

    rho = 0.5  # any spoof prevalence gives the same concurrent point; the package uses 0.5
    # Where no spoof passes the ASV, the concurrency criterion divides by P_fa,spoof,asv = 0 and is inf or NaN,
    # which the package's `crit < best` never takes: those ASV points are left out at once.
    candidates = np.flatnonzero((p_miss_asv < (1 - rho) * p_fa_non + rho * p_fa_spoof) & (p_fa_spoof > 0))
    a, b, c = p_miss_asv[candidates], p_fa_non[candidates], p_fa_spoof[candidates]

    def gap(j: np.ndarray) -> np.ndarray:
        """Tandem miss rate minus tandem false-alarm rate at each candidate ASV point and its CM point j."""
        m, f = p_miss_cm[j], p_fa_cm[j]
        return (m + (1 - m) * a) - ((1 - rho) * (1 - m) * b + rho * f * c)

    # The gap grows with the CM point j (strictly, as P_fa,spoof,asv > 0); it is negative at j = 0 for every
    # candidate and 1 at the last point. Bisect for the last negative and the first non-negative gap.
    below = np.zeros(candidates.size, dtype=np.intp)
    above = np.full(candidates.size, p_miss_cm.size - 1, dtype=np.intp)
    while np.any(above - below > 1):
        middle = (below + above) // 2
        non_negative = gap(middle) >= 0
        above = np.where(non_negative, middle, above)
        below = np.where(non_negative, below, middle)
    # np.argmin(|gap|) takes the first of equal values, so the negative side wins a tie.
    cm_index = np.where(np.abs(gap(below)) <= np.abs(gap(above)), below, above)

    with np.errstate(divide="ignore"):
        # P_fa,cm / (1 − P_miss,cm) is inf once every bona fide trial is rejected: never the minimum. The first ASV
        # point (accept all) always has a finite criterion, since with two or more bona fide trials its CM point
        # keeps one, so the minimum is finite.
        crit = np.abs(b / c - p_fa_cm[cm_index] / (1 - p_miss_cm[cm_index]))
    best = int(np.argmin(crit))
    i, j = candidates[best], cm_index[best]
    return TandemEER(float(p_fa_spoof[i] * p_fa_cm[j]), float(curve.thresholds[i]),
                     float(_official_thresholds(cm)[j]))


@dataclass(frozen=True)
class SASVEvaluation:
    """Track 2 results (see :func:`evaluate_sasv`); ``min_tdcf`` and ``t_eer_percent`` are None without the CM
    (and, for the t-EER, ASV) scores."""

    a_dcf: float
    min_tdcf: float | None
    t_eer_percent: float | None
    n_target: int
    n_nontarget: int
    n_spoof: int
    asv_rates: AsvRates
    t_eer_thresholds: tuple[float, float] | None = None  # (ASV, CM) at the concurrent point
    cost_model: SASVCostModel = SASV_COST_MODEL

    def to_dict(self) -> dict:
        """JSON-ready; ``asv_rates`` are those the min t-DCF used."""
        result = asdict(self)
        result["asv_rates"] = self.asv_rates._asdict()
        result["t_eer_thresholds"] = (None if self.t_eer_thresholds is None
                                      else dict(zip(("asv", "cm"), self.t_eer_thresholds, strict=True)))
        return result

    def to_text(self, title: str = "scores") -> str:
        """The human-readable report of the three metrics under ``title``; what is missing says why."""
        rates = self.asv_rates
        source = ("the organisers' pooled ones" if rates == ORGANISERS_ASV_RATES
                  else "computed from the given ASV scores")
        lines = [
            f"{title}: {self.n_target + self.n_nontarget + self.n_spoof:,} trials ({self.n_target:,} target, "
            f"{self.n_nontarget:,} non-target, {self.n_spoof:,} spoof)",
            f"  a-DCF      {self.a_dcf:8.5f}     (primary, of the SASV score)",
        ]
        if self.min_tdcf is None:
            lines.append("  min t-DCF       n/a     (needs the CM scores)")
        else:
            lines.append(f"  min t-DCF  {self.min_tdcf:8.5f}     (revised, of the CM score; ASV error rates: "
                         f"{source}:")
            lines.append(f"{'':28}P_fa,non {rates.p_fa_non:.4f}, P_miss {rates.p_miss:.4f}, "
                         f"P_fa,spoof {rates.p_fa_spoof:.4f})")
        if self.t_eer_percent is None or self.t_eer_thresholds is None:
            lines.append("  t-EER           n/a     (needs the CM and the ASV scores)")
        else:
            asv, cm = self.t_eer_thresholds
            lines.append(f"  t-EER      {self.t_eer_percent:8.4f} %   (of the CM and ASV scores together; "
                         f"thresholds ASV {asv:.6g}, CM {cm:.6g})")
        return "\n".join(lines)


def evaluate_sasv(
    sasv_scores: ArrayLike,
    labels: Labels,
    cm_scores: ArrayLike | None = None,
    asv_scores: ArrayLike | None = None,
    *,
    asv: AsvRates = ORGANISERS_ASV_RATES,
    cost_model: SASVCostModel = SASV_COST_MODEL,
) -> SASVEvaluation:
    """ASVspoof 5 Track 2 metrics: a-DCF (of the SASV score), min t-DCF (of the CM score), t-EER (of both).

    As the package's ``calculate_aDCF_tdcf_tEER``: without CM scores only the a-DCF is computed (its
    ``t2_single`` mode); the t-EER needs the ASV scores too.

    Parameters
    ----------
    sasv_scores : array-like, shape (n,)
        One spoofing-robust verification score per trial (the package's ``sasv-score``).
    labels : sequence of {"target", "nontarget", "spoof"}
        The ASV label of each trial (``Trial.metadata["asv_label"]`` of an ASVspoof 5 SASV key).
    cm_scores, asv_scores : array-like, shape (n,), optional
        The tandem's CM and ASV scores of the same trials.
    asv : AsvRates
        The ASV error rates of the min t-DCF: the organisers' pooled rates by default, or :func:`asv_rates` of the
        organisers' ASV scores.
    cost_model : SASVCostModel
        Defaults to the ASVspoof 5 one.
    """
    target, nontarget, spoof = _sasv_classes(sasv_scores, labels, "SASV scores")
    if asv_scores is not None and cm_scores is None:
        raise ValueError("the t-EER needs the CM scores as well as the ASV scores")
    min_tdcf = tandem = None
    if cm_scores is not None:
        cm = _sasv_classes(cm_scores, labels, "CM scores")
        curve = _curve(np.concatenate(cm[:2]), cm[2])
        min_tdcf = _revised_tdcf_min(curve, asv, cost_model)
        if asv_scores is not None:
            tandem = _t_eer(curve, *_sasv_classes(asv_scores, labels, "ASV scores"))
    return SASVEvaluation(
        a_dcf=_a_dcf(target, nontarget, spoof, cost_model),
        min_tdcf=min_tdcf,
        t_eer_percent=None if tandem is None else tandem.t_eer * 100,
        n_target=target.size,
        n_nontarget=nontarget.size,
        n_spoof=spoof.size,
        asv_rates=asv,
        t_eer_thresholds=None if tandem is None else (tandem.asv_threshold, tandem.cm_threshold),
        cost_model=cost_model,
    )

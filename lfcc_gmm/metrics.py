"""Detection metrics: the official ASVspoof 2019 EER and min t-DCF, per-attack EERs, DET/ROC points, and
calibration metrics (Cllr, min Cllr, actual and minimum DCF).

EER and t-DCF reproduce the official ``eval_metrics.py`` (``compute_det_curve``, ``compute_eer``,
``obtain_asv_error_rates``, ``compute_tDCF`` in its 2019 "legacy" form) number for number, ties included
(SPEC §7). The official code sorts the concatenation [bona fide, spoof] with a stable sort; here each class is
sorted on its own and the two are merged with bona fide first among equal scores, which gives the same curve
with one fast unstable sort per class and lets the per-attack EERs share the sorted bona fide scores.

Scores: higher = more bona fide; bona fide is the target class. Calibration metrics read scores as
log-likelihood ratios in natural-log units; Cllr and the actual DCF only mean something for calibrated scores
(see :mod:`lfcc_gmm.fusion`), while EER, min t-DCF, min Cllr and min DCF ignore calibration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy.special import ndtri
from sklearn.isotonic import isotonic_regression

from .protocols import BONAFIDE, SPOOF

if TYPE_CHECKING:
    from .scorefiles import ASVScores

ArrayLike = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class CostModel:
    """t-DCF cost model: priors of target / non-target / spoof trials and the costs of each error."""

    p_spoof: float = 0.05
    # Written as the official code writes them, so the floats are identical.
    p_tar: float = (1 - 0.05) * 0.99
    p_non: float = (1 - 0.05) * 0.01
    c_miss_asv: float = 1.0
    c_fa_asv: float = 10.0
    c_miss_cm: float = 1.0
    c_fa_cm: float = 10.0

    def __post_init__(self) -> None:
        check_tandem_costs("t-DCF", (self.p_tar, self.p_non, self.p_spoof),
                           (self.c_miss_asv, self.c_fa_asv, self.c_miss_cm, self.c_fa_cm))


def check_tandem_costs(what: str, priors: tuple[float, ...], costs: tuple[float, ...]) -> None:
    """The official codes' checks of a tandem cost model: priors non-negative and summing to 1 (to 1e-10, their
    tolerance), costs non-negative."""
    if min(priors) < 0 or abs(sum(priors) - 1) > 1e-10:
        raise ValueError(f"{what} priors must be non-negative and sum to 1, got {priors}")
    if min(costs) < 0:
        raise ValueError(f"{what} costs must be non-negative, got {costs}")


ASVSPOOF2019_COST_MODEL = CostModel()


class AsvErrorRates(NamedTuple):
    """ASV error rates at its EER threshold (accept when score >= threshold), as the official code counts them."""

    threshold: float
    p_fa: float
    p_miss: float
    p_miss_spoof: float


class _Curve(NamedTuple):
    frr: np.ndarray  # n + 1 points: after rejecting the k lowest of the merged scores, k = 0..n
    far: np.ndarray
    merged: np.ndarray  # all n scores in official sort order
    is_spoof: np.ndarray  # class of each merged score


def _scores(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"no {name}: each class needs at least one trial")
    nan = np.flatnonzero(np.isnan(array))
    if nan.size:
        raise ValueError(f"{name} contain {nan.size} NaN value(s), the first at index {nan[0]}")
    return array


def _merge(bona_sorted: np.ndarray, spoof_sorted: np.ndarray) -> _Curve:
    n_b, n_s = bona_sorted.size, spoof_sorted.size
    n = n_b + n_s
    # side="right" puts bona fide scores before equal spoof scores: the official stable sort of [bona, spoof].
    spoof_at = np.arange(n_s) + np.searchsorted(bona_sorted, spoof_sorted, side="right")
    is_spoof = np.zeros(n, dtype=bool)
    is_spoof[spoof_at] = True
    merged = np.empty(n)
    merged[is_spoof] = spoof_sorted
    merged[~is_spoof] = bona_sorted
    spoof_seen = np.cumsum(is_spoof)
    frr = np.empty(n + 1)
    far = np.empty(n + 1)
    frr[0], far[0] = 0.0, 1.0
    np.divide(np.arange(1, n + 1) - spoof_seen, n_b, out=frr[1:])
    np.divide(n_s - spoof_seen, n_s, out=far[1:])
    return _Curve(frr, far, merged, is_spoof)


def _curve(bonafide: ArrayLike, spoof: ArrayLike) -> _Curve:
    return _merge(np.sort(_scores(bonafide, "bona fide scores")), np.sort(_scores(spoof, "spoof scores")))


def _official_thresholds(curve: _Curve) -> np.ndarray:
    return np.concatenate(([curve.merged[0] - 0.001], curve.merged))


def _eer(curve: _Curve) -> tuple[float, float]:
    # np.argmin takes the first of equal minima, as the official code does.
    k = int(np.argmin(np.abs(curve.frr - curve.far)))
    eer = (curve.frr[k] + curve.far[k]) / 2
    threshold = curve.merged[0] - 0.001 if k == 0 else curve.merged[k - 1]
    return float(eer), float(threshold)


def det_curve(bonafide: ArrayLike, spoof: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The official DET curve: one point per sorted score, plus one below the lowest.

    Returns
    -------
    frr, far, thresholds : np.ndarray
        ``n + 1`` points each (n = all trials). Point k rejects the k lowest scores of the stable sort of
        [bona fide, spoof]; ``thresholds[k]`` is the k-th sorted score (the lowest score minus 0.001 for k = 0).
        Inside a run of tied scores the points split the run, as the official code does.
    """
    curve = _curve(bonafide, spoof)
    return curve.frr, curve.far, _official_thresholds(curve)


def compute_eer(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> tuple[float, float]:
    """Equal error rate (a fraction) and its threshold, exactly as the official ASVspoof 2019 code.

    The DET point where |FRR - FAR| is smallest (the first such point), reported as (FRR + FAR) / 2.
    """
    return _eer(_curve(bonafide_scores, spoof_scores))


def operating_points(bonafide: ArrayLike, spoof: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The achievable operating points "accept when score >= t", for every distinct score t and t = +inf.

    Unlike :func:`det_curve`, tied scores are never split. Returns ``(frr, far, thresholds)``.
    """
    return _operating(_curve(bonafide, spoof))


def _tie_starts(curve: _Curve) -> np.ndarray:
    """True at the first of each run of equal merged scores."""
    starts = np.empty(curve.merged.size, dtype=bool)
    starts[0] = True
    np.not_equal(curve.merged[1:], curve.merged[:-1], out=starts[1:])
    return starts


def _operating(curve: _Curve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = np.append(_tie_starts(curve), True)
    return curve.frr[keep], curve.far[keep], np.append(curve.merged, np.inf)[keep]


def det_points(bonafide: ArrayLike, spoof: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """DET plot coordinates (probit(FAR), probit(FRR)) of the operating points, dropping the infinite ends."""
    frr, far, _ = operating_points(bonafide, spoof)
    x, y = ndtri(far), ndtri(frr)
    finite = np.isfinite(x) & np.isfinite(y)
    return x[finite], y[finite]


def roc_points(bonafide: ArrayLike, spoof: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """ROC coordinates (FAR, 1 - FRR) of the operating points, from (1, 1) down to (0, 0)."""
    frr, far, _ = operating_points(bonafide, spoof)
    return far, 1 - frr


def asv_error_rates(target: ArrayLike, nontarget: ArrayLike, spoof: ArrayLike) -> AsvErrorRates:
    """ASV false-alarm, miss and spoof-miss rates at the ASV EER threshold (target vs non-target).

    As the official ``obtain_asv_error_rates``: a non-target is a false alarm when score >= threshold, a target
    or a spoof is missed when score < threshold.
    """
    target = _scores(target, "ASV target scores")
    nontarget = _scores(nontarget, "ASV non-target scores")
    spoof = _scores(spoof, "ASV spoof scores")
    _, threshold = compute_eer(target, nontarget)
    p_miss, p_fa = error_rates_at(target, nontarget, threshold)
    # A spoof is "missed" (rejected) by the ASV like a target: below the threshold.
    return AsvErrorRates(threshold, p_fa, p_miss, error_rates_at(spoof, nontarget, threshold)[0])


def error_rates_at(positive: np.ndarray, negative: np.ndarray, threshold: float) -> tuple[float, float]:
    """(miss rate, false-alarm rate) when "accept" means score >= threshold, counted as the official code counts.

    Miss: a positive (bona fide, target) trial scored below the threshold; false alarm: a negative trial at or
    above it. Each is a count divided by its class size, so equal inputs give equal floats.
    """
    return (np.count_nonzero(positive < threshold) / positive.size,
            np.count_nonzero(negative >= threshold) / negative.size)


def _tdcf_norm(frr: np.ndarray, far: np.ndarray, asv: AsvErrorRates, cost: CostModel) -> np.ndarray:
    c1 = cost.p_tar * (cost.c_miss_cm - cost.c_miss_asv * asv.p_miss) - cost.p_non * cost.c_fa_asv * asv.p_fa
    c2 = cost.c_fa_cm * cost.p_spoof * (1 - asv.p_miss_spoof)
    if c1 < 0 or c2 < 0:
        raise ValueError(
            f"negative t-DCF weight (C1={c1:.6g}, C2={c2:.6g}): the ASV error rates "
            f"(P_fa={asv.p_fa:.4g}, P_miss={asv.p_miss:.4g}) are worse than chance; check the ASV scores"
        )
    return (c1 * frr + c2 * far) / min(c1, c2)


def tdcf_curve(
    bonafide_cm: ArrayLike, spoof_cm: ArrayLike, asv: AsvErrorRates, cost_model: CostModel | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised 2019 ("legacy") t-DCF at every CM threshold of :func:`det_curve`.

    t-DCF = C1·P_miss_cm + C2·P_fa_cm, divided by min(C1, C2), with
    C1 = P_tar·(C_miss_cm − C_miss_asv·P_miss_asv) − P_non·C_fa_asv·P_fa_asv and
    C2 = C_fa_cm·P_spoof·(1 − P_miss_spoof_asv). Returns ``(tdcf_norm, thresholds)``.
    """
    curve = _curve(bonafide_cm, spoof_cm)
    return _tdcf_norm(curve.frr, curve.far, asv, cost_model or ASVSPOOF2019_COST_MODEL), _official_thresholds(curve)


def compute_min_tdcf(
    bonafide_cm: ArrayLike,
    spoof_cm: ArrayLike,
    asv_target: ArrayLike,
    asv_nontarget: ArrayLike,
    asv_spoof: ArrayLike,
    cost_model: CostModel | None = None,
) -> float:
    """Minimum normalised 2019 t-DCF over CM thresholds, the ASV fixed at its EER threshold.

    ``cost_model`` defaults to the official ASVspoof 2019 one (:data:`ASVSPOOF2019_COST_MODEL`).
    """
    asv = asv_error_rates(asv_target, asv_nontarget, asv_spoof)
    return float(np.min(tdcf_curve(bonafide_cm, spoof_cm, asv, cost_model)[0]))


def bonafide_mask(keys: Sequence[str] | np.ndarray) -> np.ndarray:
    """True where the key is ``"bonafide"``, False for ``"spoof"``; any other key is an error."""
    keys = np.asarray(keys)
    bona = keys == BONAFIDE
    bad = np.flatnonzero(~bona & (keys != SPOOF))
    if bad.size:
        raise ValueError(
            f"key {str(keys[bad[0]])!r} at trial {bad[0]} is neither {BONAFIDE!r} nor {SPOOF!r} "
            f"({bad.size} such trial(s))"
        )
    return bona


def _per_attack(bona_sorted: np.ndarray, spoof: np.ndarray, attacks: np.ndarray) -> dict[str, float]:
    names, codes = np.unique(attacks, return_inverse=True)
    return {
        str(name): _eer(_merge(bona_sorted, np.sort(spoof[codes == i])))[0] for i, name in enumerate(names)
    }


def _check_trials(
    scores: ArrayLike, keys: Sequence[str] | np.ndarray, attacks: Sequence[str] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    scores = _scores(scores, "scores")
    keys = np.asarray(keys)
    if keys.shape != scores.shape:
        raise ValueError(f"{scores.size} scores but {keys.size} keys")
    if attacks is not None:
        attacks = np.asarray(attacks)
        if attacks.shape != scores.shape:
            raise ValueError(f"{scores.size} scores but {attacks.size} attacks")
    bona = bonafide_mask(keys)
    return scores, bona, attacks


def per_attack_eer(
    scores: ArrayLike, keys: Sequence[str] | np.ndarray, attacks: Sequence[str] | np.ndarray
) -> dict[str, float]:
    """EER (fraction) of each attack's spoof trials against all bona fide trials, keyed by attack name."""
    values, bona, attack_names = _check_trials(scores, keys, attacks)
    if attack_names is None:
        raise ValueError("per-attack EER needs the attack of every trial")
    if not bona.any():
        raise ValueError("no bona fide trials: each class needs at least one trial")
    return _per_attack(np.sort(values[bona]), values[~bona], attack_names[~bona])


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) without overflow.

    Written as the ASVspoof 5 package writes it, ``log1p(exp(x))``, so the two agree bit for bit wherever e^x is
    finite; where e^x overflows (x > 709.78) the package gives inf and the exact value is x (the correction
    log1p(e^-x) is below 1e-308).
    """
    with np.errstate(over="ignore"):
        e = np.exp(x)
    out = np.log1p(e)
    overflow = np.isinf(e) & np.isfinite(x)
    out[overflow] = x[overflow]
    return out


def cllr(bonafide_llr: ArrayLike, spoof_llr: ArrayLike) -> float:
    """Log-likelihood-ratio cost in bits (Brümmer): 0 is perfect, 1 is what LLR = 0 everywhere scores.

    Cllr = [mean log2(1 + e^-llr) over bona fide + mean log2(1 + e^llr) over spoof] / 2, evaluated in the
    ASVspoof 5 package's order of operations; finite for any finite LLRs, where the package's formula overflows
    to inf beyond |llr| ≈ 710.
    """
    bona = _scores(bonafide_llr, "bona fide LLRs")
    spoof = _scores(spoof_llr, "spoof LLRs")
    return cllr_from_costs(np.mean(_softplus(-bona)), np.mean(_softplus(spoof)))


def cllr_from_costs(bonafide_cost: float, spoof_cost: float) -> float:
    """Cllr in bits from each class's mean log loss in nats (mean log(1 + e^∓llr)), so that one class's share can
    be computed once and paired with several others (per-attack tables)."""
    return float(0.5 * (bonafide_cost + spoof_cost) / np.log(2))


def min_cllr(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> float:
    """Cllr after the optimal monotone calibration (PAV), i.e. the discrimination part of Cllr.

    Tied scores are pooled before PAV, since a calibration maps equal scores to equal LLRs. The PAV posteriors
    are turned into LLRs by removing the empirical prior log odds.
    """
    return _min_cllr(_curve(bonafide_scores, spoof_scores))


def _min_cllr(curve: _Curve) -> float:
    starts = np.flatnonzero(_tie_starts(curve))
    counts = np.diff(np.append(starts, curve.merged.size))
    n_non = np.add.reduceat(curve.is_spoof.astype(np.intp), starts)
    n_tar = counts - n_non
    n_bona, n_spoof = n_tar.sum(), n_non.sum()
    posterior = isotonic_regression(n_tar / counts, sample_weight=counts)
    with np.errstate(divide="ignore"):
        llr = np.log(posterior) - np.log1p(-posterior) - math.log(n_bona / n_spoof)
    # Blocks with posterior 0 or 1 hold one class only: skip the other class to avoid 0·inf.
    tar_cost = np.sum(n_tar[n_tar > 0] * _softplus(-llr[n_tar > 0])) / n_bona
    non_cost = np.sum(n_non[n_non > 0] * _softplus(llr[n_non > 0])) / n_spoof
    return float((tar_cost + non_cost) / (2 * math.log(2)))


def _check_dcf_params(prior: float, c_miss: float, c_fa: float) -> None:
    if not 0 < prior < 1:
        raise ValueError(f"prior (of bona fide) must lie strictly between 0 and 1, got {prior}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"DCF costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")


def _normalised_dcf(
    p_miss: float | np.ndarray, p_fa: float | np.ndarray, prior: float, c_miss: float, c_fa: float
) -> float | np.ndarray:
    return (prior * c_miss * p_miss + (1 - prior) * c_fa * p_fa) / min(prior * c_miss, (1 - prior) * c_fa)


def act_dcf(
    bonafide_llr: ArrayLike, spoof_llr: ArrayLike, prior: float = 0.5, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """Normalised DCF of Bayes decisions on LLRs: accept as bona fide when llr >= log((1-π)·C_fa / (π·C_miss)).

    ``prior`` is π = P(bona fide). 1.0 is the cost of deciding from the prior alone.
    """
    _check_dcf_params(prior, c_miss, c_fa)
    bona = _scores(bonafide_llr, "bona fide LLRs")
    spoof = _scores(spoof_llr, "spoof LLRs")
    threshold = math.log((1 - prior) * c_fa) - math.log(prior * c_miss)
    p_miss, p_fa = error_rates_at(bona, spoof, threshold)
    return float(_normalised_dcf(p_miss, p_fa, prior, c_miss, c_fa))


def min_dcf(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    prior: float = 0.5,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """Minimum normalised DCF over all achievable thresholds (:func:`operating_points`); at most 1."""
    _check_dcf_params(prior, c_miss, c_fa)
    return _min_dcf(_curve(bonafide_scores, spoof_scores), prior, c_miss, c_fa)


def _min_dcf(curve: _Curve, prior: float, c_miss: float, c_fa: float) -> float:
    frr, far, _ = _operating(curve)
    return float(np.min(_normalised_dcf(frr, far, prior, c_miss, c_fa)))


@dataclass(frozen=True)
class Evaluation:
    """Everything :func:`evaluate` measures. Rates are fractions; :meth:`to_dict` gives percentages."""

    eer: float
    threshold: float
    min_tdcf: float | None
    n_bonafide: int
    n_spoof: int
    cllr: float
    min_cllr: float
    act_dcf: float
    min_dcf: float
    dcf_prior: float
    per_attack_eer: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready summary (EERs in percent, as the official tools print them)."""
        return {
            "eer_percent": self.eer * 100,
            "eer_threshold": self.threshold,
            "min_tdcf": self.min_tdcf,
            "per_attack_eer_percent": {name: eer * 100 for name, eer in self.per_attack_eer.items()},
            "n_bonafide": self.n_bonafide,
            "n_spoof": self.n_spoof,
            "cllr": self.cllr,
            "min_cllr": self.min_cllr,
            "act_dcf": self.act_dcf,
            "min_dcf": self.min_dcf,
            "dcf_prior": self.dcf_prior,
        }

    def to_text(self, title: str = "scores") -> str:
        """The human-readable report: pooled figures under ``title``, then one line per attack."""
        lines = [
            f"{title}: {self.n_bonafide + self.n_spoof:,} trials "
            f"({self.n_bonafide:,} bona fide, {self.n_spoof:,} spoof)",
            f"  EER        {100 * self.eer:8.4f} %   (threshold {self.threshold:.6g})",
        ]
        if self.min_tdcf is not None:
            lines.append(f"  min t-DCF  {self.min_tdcf:8.5f}")
        lines.append(f"  Cllr       {self.cllr:8.4f}     min Cllr {self.min_cllr:.4f}   (scores read as LLRs)")
        lines.append(f"  act DCF    {self.act_dcf:8.4f}     min DCF  {self.min_dcf:.4f}   "
                     f"(P_bonafide {self.dcf_prior:g})")
        if self.per_attack_eer:
            lines.append("  per-attack EER (each attack against all bona fide trials):")
            lines.extend(f"    {attack:<8} {100 * eer:8.4f} %" for attack, eer in self.per_attack_eer.items())
        return "\n".join(lines)


def evaluate(
    scores: ArrayLike,
    keys: Sequence[str] | np.ndarray,
    attacks: Sequence[str] | np.ndarray | None = None,
    asv: ASVScores | None = None,
    *,
    prior: float = 0.5,
) -> Evaluation:
    """EER, min t-DCF (when ``asv`` scores are given), per-attack EERs and calibration metrics in one pass.

    Parameters
    ----------
    scores : array-like, shape (n,)
        CM scores, higher = more bona fide.
    keys : sequence of {"bonafide", "spoof"}
    attacks : sequence of str, optional
        Attack of each trial (``"-"`` for bona fide); without it ``per_attack_eer`` is empty.
    asv : object with ``target``, ``nontarget``, ``spoof`` arrays, optional
        The organisers' ASV scores (:func:`lfcc_gmm.scorefiles.read_asv_scores`); without them
        ``min_tdcf`` is None.
    prior : float
        P(bona fide) for the actual and minimum DCF.

    Cllr, min Cllr and the DCFs read the scores as natural-log LLRs; Cllr and the actual DCF are only
    meaningful for calibrated scores.
    """
    _check_dcf_params(prior, 1.0, 1.0)
    scores, bona, attacks = _check_trials(scores, keys, attacks)
    if not bona.any() or bona.all():
        missing = "bona fide" if not bona.any() else "spoof"
        raise ValueError(f"no {missing} trials among {scores.size}: each class needs at least one trial")
    bona_scores, spoof_scores = scores[bona], scores[~bona]
    bona_sorted = np.sort(bona_scores)
    curve = _merge(bona_sorted, np.sort(spoof_scores))
    eer, threshold = _eer(curve)
    min_tdcf = None
    if asv is not None:
        rates = asv_error_rates(asv.target, asv.nontarget, asv.spoof)
        min_tdcf = float(np.min(_tdcf_norm(curve.frr, curve.far, rates, ASVSPOOF2019_COST_MODEL)))
    return Evaluation(
        eer=eer,
        threshold=threshold,
        min_tdcf=min_tdcf,
        n_bonafide=int(bona_scores.size),
        n_spoof=int(spoof_scores.size),
        cllr=cllr(bona_scores, spoof_scores),
        min_cllr=_min_cllr(curve),
        act_dcf=act_dcf(bona_scores, spoof_scores, prior),
        min_dcf=_min_dcf(curve, prior, 1.0, 1.0),
        dcf_prior=prior,
        per_attack_eer={} if attacks is None else _per_attack(bona_sorted, spoof_scores, attacks[~bona]),
    )

"""Evaluating one score file against its protocol with the metrics the data calls for (``antispoof evaluate``).

Three metric sets (:data:`METRIC_SETS`):

- ``asvspoof2019``: EER, min t-DCF (given the organisers' ASV scores), per-attack EER, Cllr, min Cllr, actual and
  minimum DCF at a chosen prior (:func:`lfcc_gmm.metrics.evaluate`);
- ``asvspoof5``: ASVspoof 5 Track 1, min DCF, actual DCF, Cllr and EER, per attack and, when the protocol names
  codecs, per codec and codec quality (:func:`lfcc_gmm.asvspoof5.evaluate_track1`);
- ``sasv``: ASVspoof 5 Track 2, a-DCF, min t-DCF and t-EER of a SASV score file against a SASV key
  (:func:`lfcc_gmm.asvspoof5.evaluate_sasv`).

``auto`` picks ``sasv`` for a SASV score file or key, ``asvspoof5`` for the released ASVspoof 5 protocols, the
package's CM key files and CM score files, and ``asvspoof2019`` otherwise; the result says what it picked and why.
Bootstrap intervals (:mod:`lfcc_gmm.bootstrap`) of the EER and the primary DCF (``sasv``: the a-DCF and min t-DCF)
are added on request, resampling speakers when the protocol (``sasv``: the score file's target speakers) names
them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .asvspoof5 import (
    ORGANISERS_ASV_RATES,
    AsvRates,
    SASVEvaluation,
    Track1Evaluation,
    asv_rates,
    evaluate_sasv,
    evaluate_track1,
)
from .bootstrap import BootstrapCI, bootstrap_ci, cluster_speakers, sasv_bootstrap_ci, speaker_clusters
from .metrics import Evaluation, evaluate
from .protocols import (
    ASVSPOOF5,
    ASVSPOOF5_CM_KEYS,
    ASVSPOOF5_SASV_KEYS,
    NO_ATTACK,
    Trial,
    protocol_layout,
    read_protocol,
    trial_column,
)
from .scorefiles import (
    ASVSPOOF5_CM,
    ASVSPOOF5_SASV,
    LabelledScores,
    SASVScoreTable,
    ScoreFileError,
    label_sasv_scores,
    label_scores,
    read_asv_scores,
    read_sasv_scores,
    read_scores,
    score_file_layout,
)

PathLike = str | os.PathLike

#: The metric sets :func:`evaluate_score_file` computes, and what each holds.
METRIC_SETS = {
    "auto": "ASVspoof 5 metrics for ASVspoof 5 files, else ASVspoof 2019",
    "asvspoof2019": "EER, min t-DCF (with --asv-scores), per-attack EER, Cllr, DCF",
    "asvspoof5": "Track 1: min DCF, act DCF, Cllr, EER; per attack, codec, codec quality",
    "sasv": "Track 2: a-DCF, min t-DCF, t-EER of a SASV score file",
}
_TITLES = {"asvspoof2019": "ASVspoof 2019 metrics", "asvspoof5": "ASVspoof 5 Track 1 metrics",
           "sasv": "ASVspoof 5 Track 2 (SASV) metrics"}


class MetricsOptionError(ValueError):
    """An option that the chosen metric set does not use, or a metric set that does not fit the files."""


@dataclass(frozen=True)
class ScoreFileEvaluation:
    """A score file's metrics (see :func:`evaluate_score_file`).

    Attributes
    ----------
    source : str
        The score file's name, the title of the text report.
    metrics : {"asvspoof2019", "asvspoof5", "sasv"}
    chosen_because : str or None
        Why ``auto`` chose ``metrics``; None when the metric set was asked for.
    result : Evaluation, Track1Evaluation or SASVEvaluation
    intervals : BootstrapCI or None
        Bootstrap intervals of the EER and the primary DCF, when asked for.
    resampling : str
        Why trials or speakers were resampled (empty without intervals).
    """

    source: str
    metrics: str
    chosen_because: str | None
    result: Evaluation | Track1Evaluation | SASVEvaluation
    intervals: BootstrapCI | None = None
    resampling: str = ""

    def to_dict(self) -> dict:
        """JSON-ready: ``metrics`` and ``metrics_chosen_because``, the result's own fields at the top level, and
        ``bootstrap`` (the intervals, and ``resampling``: why that unit) when computed."""
        summary = {"metrics": self.metrics, "metrics_chosen_because": self.chosen_because, **self.result.to_dict()}
        if self.intervals is not None:
            summary["bootstrap"] = {**self.intervals.to_dict(), "resampling": self.resampling}
        return summary

    def to_text(self) -> str:
        """The result's report, under a line naming the metric set when ``auto`` chose ASVspoof 5 (the ASVspoof 2019
        report is the familiar default), then the intervals."""
        parts = []
        if self.chosen_because is not None and self.metrics != "asvspoof2019":
            parts.append(f"{_TITLES[self.metrics]} (chosen automatically: {self.chosen_because}; --metrics "
                         "overrides)")
        parts.append(self.result.to_text(self.source))
        if self.intervals is not None:
            parts.append(self.intervals.to_text(self.resampling))
        return "\n".join(parts)


def choose_metrics(scores: PathLike, protocol: PathLike | None = None) -> tuple[str, str]:
    """The metric set ``auto`` means for this score file and protocol, and why, in words."""
    layout = score_file_layout(scores)
    keys = None if protocol is None else protocol_layout(protocol)
    if layout == ASVSPOOF5_SASV:
        return "sasv", "the score file is an ASVspoof 5 SASV score file"
    if keys == ASVSPOOF5_SASV_KEYS:
        return "sasv", "the protocol is an ASVspoof 5 SASV key file"
    if keys == ASVSPOOF5:
        return "asvspoof5", "the protocol is an ASVspoof 5 protocol"
    if keys == ASVSPOOF5_CM_KEYS:
        return "asvspoof5", "the protocol is an ASVspoof 5 CM key file"
    if layout == ASVSPOOF5_CM:
        return "asvspoof5", "the score file is an ASVspoof 5 CM score file"
    return "asvspoof2019", "no ASVspoof 5 protocol or score file"


def evaluate_score_file(
    scores: PathLike,
    protocol: PathLike | None = None,
    *,
    metrics: str = "auto",
    asv_scores: PathLike | None = None,
    prior: float | None = None,
    confidence: float | None = None,
    n_resamples: int = 1000,
    seed: int | None = 0,
) -> ScoreFileEvaluation:
    """Evaluate one score file with the metric set it calls for.

    Parameters
    ----------
    scores : path-like
        A score file of :mod:`lfcc_gmm.scorefiles` (2 or 4 columns, or the ASVspoof 5 package's CM or SASV file).
    protocol : path-like, optional
        Keys (and attacks, speakers, codecs) of the trials: any layout of :func:`lfcc_gmm.protocols.read_protocol`.
        Needed unless the score file has 4 columns.
    metrics : {"auto", "asvspoof2019", "asvspoof5", "sasv"}
    asv_scores : path-like, optional
        ``asvspoof2019``: the organisers' ASV scores (``SOURCE KEY SCORE``), for the min t-DCF. ``sasv``: an ASV
        system's scores of the SASV trials (a SASV score file with an ``asv-score`` column, labelled by the key,
        or a ``SOURCE KEY SCORE`` file), whose error rates replace the organisers' pooled ones in the min t-DCF.
    prior : float, optional
        ``asvspoof2019`` only: P(bona fide) of the actual and minimum DCF (default 0.5). ASVspoof 5 fixes its costs.
    confidence : float, optional
        Coverage of bootstrap intervals (e.g. 0.95) of the EER and the primary DCF, or for ``sasv`` of the a-DCF
        and the min t-DCF; None computes none.
    n_resamples, seed : int
        Bootstrap resamples, and the seed that makes them repeatable.

    Raises
    ------
    MetricsOptionError
        An option the metric set does not use, or files of another metric set.
    ScoreFileError, ProtocolError
        Bad files; the message names the file.
    """
    if metrics not in METRIC_SETS:
        raise MetricsOptionError(f"unknown metric set {metrics!r}; choose one of {', '.join(METRIC_SETS)}")
    chosen_because = None
    if metrics == "auto":
        metrics, chosen_because = choose_metrics(scores, protocol)
    if prior is not None and metrics != "asvspoof2019":
        raise MetricsOptionError(f"a prior applies to the asvspoof2019 metrics; the {metrics} metrics fix their "
                                 "cost model")
    source = Path(scores).name
    trials = None if protocol is None else read_protocol(protocol)
    if metrics == "sasv":
        return _sasv(scores, protocol, trials, asv_scores, chosen_because, confidence, n_resamples, seed)
    _check_cm_files(scores, protocol)
    labelled = label_scores(read_scores(scores), trials)
    asv = None
    if metrics == "asvspoof5":
        if asv_scores is not None:
            raise MetricsOptionError("ASV scores are used by the asvspoof2019 (min t-DCF) and sasv metrics, not by "
                                     "the ASVspoof 5 Track 1 metrics")
        result: Evaluation | Track1Evaluation = _track1(labelled, trials)
    else:
        asv = None if asv_scores is None else read_asv_scores(asv_scores)
        prior = 0.5 if prior is None else prior
        result = evaluate(labelled.scores, labelled.keys, labelled.attacks, asv, prior=prior)
    if confidence is None:
        return ScoreFileEvaluation(source, metrics, chosen_because, result)
    # Trials in ID order: the same trials and seed give the same intervals whatever the order of the file's lines
    # (and the same as antispoof compare's for this system).
    order = np.argsort(np.asarray(labelled.ids), kind="stable")
    speakers, resampling = cluster_speakers(trials, [labelled.ids[i] for i in order])
    # The DCF of the result: ASVspoof 5's own (no ASV scores, no prior), the 2019 min t-DCF, or min DCF at the prior.
    intervals = bootstrap_ci(labelled.scores[order], labelled.keys[order], speakers, asv=asv,
                             prior=None if asv else prior, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return ScoreFileEvaluation(source, metrics, chosen_because, result, intervals, resampling)


def _check_cm_files(scores: PathLike, protocol: PathLike | None) -> None:
    """CM metrics were asked for: refuse SASV files, whose trials are (speaker, file) pairs."""
    if score_file_layout(scores) == ASVSPOOF5_SASV:
        raise MetricsOptionError(f"{scores} is an ASVspoof 5 SASV score file: evaluate it with the sasv metrics")
    if protocol is not None and protocol_layout(protocol) == ASVSPOOF5_SASV_KEYS:
        raise MetricsOptionError(f"{protocol} is an ASVspoof 5 SASV key (one trial per target speaker and file): "
                                 "it labels a SASV score file, for the sasv metrics")


def _named_conditions(column: Sequence[str] | None) -> np.ndarray | None:
    """The column, unless no trial names a condition (every entry ``-``): no breakdown then."""
    if column is None or all(value == NO_ATTACK for value in column):
        return None
    return np.asarray(column)


def _track1(labelled: LabelledScores, trials: Sequence[Trial] | None) -> Track1Evaluation:
    attacks = _named_conditions(labelled.attacks[labelled.keys != "bonafide"].tolist())
    codecs = qualities = None
    if trials is not None:
        codecs = _named_conditions(trial_column(trials, "codec", labelled.ids))
        if codecs is not None:
            qualities = _named_conditions(trial_column(trials, "codec_quality", labelled.ids))
    return evaluate_track1(labelled.scores, labelled.keys, None if attacks is None else labelled.attacks, codecs,
                           qualities)


def _sasv(scores: PathLike, protocol: PathLike | None, trials: Sequence[Trial] | None, asv_scores: PathLike | None,
          chosen_because: str | None, confidence: float | None, n_resamples: int,
          seed: int | None) -> ScoreFileEvaluation:
    if trials is None:
        raise MetricsOptionError("the sasv metrics need the SASV key file (spk filename cm-label asv-label) as the "
                                 "protocol")
    table, labels = _labelled_sasv(scores, trials, protocol)
    if table.sasv_scores is None:
        raise ScoreFileError(f"{scores}: no sasv-score column; the a-DCF, the primary Track 2 metric, needs it")
    rates = ORGANISERS_ASV_RATES if asv_scores is None else _given_asv_rates(asv_scores, trials)
    result = evaluate_sasv(table.sasv_scores, labels, table.cm_scores,
                           table.asv_scores if table.cm_scores is not None else None, asv=rates)
    if confidence is None:
        return ScoreFileEvaluation(Path(scores).name, "sasv", chosen_because, result)
    # Trials in (speaker, file) order, so that the order of the file's lines changes nothing.
    order = np.lexsort((np.asarray(table.ids), np.asarray(table.speakers)))
    speakers, resampling = speaker_clusters([table.speakers[i] for i in order], "the score file", "target speakers")
    intervals = sasv_bootstrap_ci(
        table.sasv_scores[order], labels[order], speakers,
        cm_scores=None if table.cm_scores is None else table.cm_scores[order], asv=rates, confidence=confidence,
        n_resamples=n_resamples, seed=seed)
    return ScoreFileEvaluation(Path(scores).name, "sasv", chosen_because, result, intervals, resampling)


def _labelled_sasv(path: PathLike, trials: Sequence[Trial],
                   keys: PathLike | None = None) -> tuple[SASVScoreTable, np.ndarray]:
    """A SASV score file and the ASV label of each of its trials; errors name the file (and the key file)."""
    table = read_sasv_scores(path)
    try:
        return table, label_sasv_scores(table, trials).labels
    except ScoreFileError as exc:
        raise ScoreFileError(f"{path}{'' if keys is None else f' against {keys}'}: {exc}") from None


def _given_asv_rates(path: PathLike, trials: Sequence[Trial]) -> AsvRates:
    """ASV error rates of an ASV system's scores: a SASV score file labelled by the key, or ``SOURCE KEY SCORE``."""
    if score_file_layout(path) == ASVSPOOF5_SASV:
        table, labels = _labelled_sasv(path, trials)
        if table.asv_scores is None:
            raise ScoreFileError(f"{path}: no asv-score column to compute the ASV error rates from")
        return asv_rates(table.asv_scores, labels)
    groups = read_asv_scores(path)
    classes = (groups.target, groups.nontarget, groups.spoof)
    return asv_rates(np.concatenate(classes), np.repeat(["target", "nontarget", "spoof"], [c.size for c in classes]))

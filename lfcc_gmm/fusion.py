"""Linear logistic-regression fusion and calibration of scores into log-likelihood ratios (BOSARIS style).

The fused output is ``llr = scores @ coef_ + intercept_``, trained by prior-weighted logistic regression
(Brümmer's FoCal/BOSARIS objective): each class's trials are weighted so the classes carry the target
prior π, and the learnt log posterior odds at that prior minus logit(π) is the LLR (natural log). The output
is therefore a calibrated LLR whatever the class proportions of the training scores. Calibrating a single
system is fusion with one input.

Models are saved as JSON (weights, offset, prior, input system names, package version); nothing is pickled.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from . import __version__
from .atomic import atomic_write
from .metrics import bonafide_mask

_FORMAT = "antispoof.linear_fusion"
_FIELDS = ("format", "version", "prior", "regularization", "system_names", "weights", "offset")


def _score_matrix(scores: ArrayLike, n_systems: int | None = None) -> np.ndarray:
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(f"scores must be (n_trials,) or (n_trials, n_systems) and non-empty, got {matrix.shape}")
    if n_systems is not None and matrix.shape[1] != n_systems:
        raise ValueError(f"scores have {matrix.shape[1]} system(s) but the fusion was trained on {n_systems}")
    bad = np.argwhere(~np.isfinite(matrix))
    if bad.size:
        trial, system = bad[0]
        raise ValueError(
            f"scores contain {len(bad)} non-finite value(s), the first at trial {trial}, system {system}"
        )
    return matrix


def _labels(labels: ArrayLike, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{n} score rows but labels of shape {labels.shape}")
    if labels.dtype.kind in "US":
        return bonafide_mask(labels)
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if bad.size:
        raise ValueError(f"label {labels[bad[0]].item()!r} at trial {bad[0]}: use 1 (bona fide) and 0 (spoof)")
    return labels.astype(bool)


class LinearFusion(BaseEstimator):
    """Fuse or calibrate detection scores into LLRs by prior-weighted linear logistic regression.

    Parameters
    ----------
    prior : float
        Effective prior P(bona fide) the training objective is weighted to (BOSARIS "prior"); 0.5 weights
        both classes equally. The output LLRs do not depend on it when the linear model is right.
    regularization : float
        L2 weight λ on the fusion weights of standardised scores (never the offset), added to the mean
        prior-weighted cross-entropy as λ/2·‖w‖². Tiny by default: enough to keep separable training data
        finite, too small to bias the calibration.

    Attributes
    ----------
    coef_ : np.ndarray, shape (n_systems,)
        Weight of each input system.
    intercept_ : float
        Offset, so that ``scores @ coef_ + intercept_`` is the LLR.
    system_names_ : list of str
        Names of the input systems, in column order.
    n_features_in_ : int
    """

    def __init__(self, prior: float = 0.5, regularization: float = 1e-6):
        self.prior = prior
        self.regularization = regularization

    def fit(self, scores: ArrayLike, labels: ArrayLike, system_names: Sequence[str] | None = None) -> LinearFusion:
        """Train on development scores.

        Parameters
        ----------
        scores : array-like, shape (n_trials,) or (n_trials, n_systems)
            Higher = more bona fide in every system.
        labels : array-like, shape (n_trials,)
            1 / 0 (bona fide / spoof) or the keys ``"bonafide"`` / ``"spoof"``.
        system_names : sequence of str, optional
            One per column; ``system0``, ``system1``, … by default.
        """
        if not 0 < self.prior < 1:
            raise ValueError(f"prior must lie strictly between 0 and 1, got {self.prior}")
        if self.regularization < 0:
            raise ValueError(f"regularization must be >= 0, got {self.regularization}")
        matrix = _score_matrix(scores)
        bona = _labels(labels, matrix.shape[0])
        n_bona, n_spoof = int(bona.sum()), int((~bona).sum())
        if n_bona == 0 or n_spoof == 0:
            raise ValueError(f"training needs both classes; got {n_bona} bona fide and {n_spoof} spoof trials")
        names = [f"system{i}" for i in range(matrix.shape[1])] if system_names is None else list(system_names)
        if len(names) != matrix.shape[1]:
            raise ValueError(f"{len(names)} system names for {matrix.shape[1]} score columns")

        # Standardising only helps the optimiser; the weights are mapped back to raw scores below.
        mean = matrix.mean(axis=0)
        scale = matrix.std(axis=0)
        scale[scale == 0] = 1.0
        n = matrix.shape[0]
        # Class weights that give the classes masses π·n and (1-π)·n: effective prior π, mean weight 1.
        weights = {1: self.prior * n / n_bona, 0: (1 - self.prior) * n / n_spoof}
        # sklearn minimises Σ w_i·loss_i + ‖w‖²/(2C); with Σ w_i = n, C = 1/(λn) gives mean loss + λ/2·‖w‖².
        c = math.inf if self.regularization == 0 else 1.0 / (self.regularization * n)
        model = LogisticRegression(C=c, class_weight=weights, tol=1e-10, max_iter=10_000)
        model.fit((matrix - mean) / scale, bona.astype(int))
        coef = model.coef_[0] / scale
        # The fitted log odds are posterior odds at prior π; removing logit(π) leaves the LLR.
        self.coef_ = coef
        self.intercept_ = float(model.intercept_[0] - coef @ mean - math.log(self.prior / (1 - self.prior)))
        self.system_names_ = names
        self.n_features_in_ = matrix.shape[1]
        return self

    def transform(self, scores: ArrayLike) -> np.ndarray:
        """Fused, calibrated LLRs (natural log), shape (n_trials,)."""
        check_is_fitted(self, "coef_")
        return _score_matrix(scores, self.n_features_in_) @ self.coef_ + self.intercept_

    def fit_transform(
        self, scores: ArrayLike, labels: ArrayLike, system_names: Sequence[str] | None = None
    ) -> np.ndarray:
        return self.fit(scores, labels, system_names).transform(scores)

    def to_dict(self) -> dict:
        check_is_fitted(self, "coef_")
        return {
            "format": _FORMAT,
            "version": __version__,
            "prior": self.prior,
            "regularization": self.regularization,
            "system_names": list(self.system_names_),
            "weights": [float(w) for w in self.coef_],
            "offset": self.intercept_,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the trained fusion as JSON, atomically."""
        text = json.dumps(self.to_dict(), indent=1)
        with atomic_write(path) as handle:
            handle.write(text + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> LinearFusion:
        """Read a fusion written by :meth:`save`; a malformed file raises ValueError naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not a linear fusion file (not UTF-8 JSON: {exc.reason} at byte {exc.start})"
                             ) from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a linear fusion file (expected \"format\": \"{_FORMAT}\")")
        missing = [name for name in _FIELDS if name not in data]
        if missing:
            raise ValueError(f"{path}: missing field(s) {', '.join(missing)}")
        try:
            weights = np.asarray(data["weights"], dtype=np.float64)
            offset = float(data["offset"])
        except (TypeError, ValueError):
            raise ValueError(f"{path}: weights and offset must be numbers") from None
        names = data["system_names"]
        if weights.ndim != 1 or weights.size == 0 or len(names) != weights.size:
            raise ValueError(f"{path}: {len(names)} system names for {weights.size} weights")
        if not (np.isfinite(weights).all() and math.isfinite(offset)):
            raise ValueError(f"{path}: weights and offset must be finite")
        fusion = cls(prior=data["prior"], regularization=data["regularization"])
        fusion.coef_ = weights
        fusion.intercept_ = offset
        fusion.system_names_ = [str(name) for name in names]
        fusion.n_features_in_ = weights.size
        return fusion
